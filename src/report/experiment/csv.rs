//! data.csv: one row per point: every setting that appears, whether the point was
//! measured, then each figure's median, min and max.

use super::sweep::place;
use crate::experiment::Results;
use crate::report::table;
use anyhow::Result;

pub fn render(results: &Results) -> Result<String> {
    let mut keys: Vec<&str> = Vec::new();
    for s in results.rows.iter().flat_map(|r| &r.settings) {
        place(&mut keys, s.key());
    }
    let figures = || results.columns.iter().map(|c| c.key);
    let mut header: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    header.extend(["not_applicable".to_string(), "failures".to_string()]);
    header.extend(table::spread_columns(figures()));
    let rows: Vec<Vec<String>> = results
        .rows
        .iter()
        .map(|r| {
            let mut cells: Vec<String> = keys
                .iter()
                .map(|k| {
                    r.setting(k).map_or(String::new(), |s| match s.datum() {
                        serde_json::Value::String(t) => t,
                        v => v.to_string(),
                    })
                })
                .collect();
            cells.push(r.not_applicable.clone().unwrap_or_default());
            cells.push(r.failures.len().to_string());
            cells.extend(table::spread_cells(
                results.columns.iter().map(|c| (c.key, c.decimals)),
                &r.figures,
            ));
            cells
        })
        .collect();
    table::csv(&header, &rows)
}
