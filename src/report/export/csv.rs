//! CSV: one row per subject; for each figure its median, min and max.

use crate::bench::{BenchReport, FIGURES};
use crate::report::table;
use anyhow::Result;

pub fn render(report: &BenchReport) -> Result<String> {
    let keys = || FIGURES.iter().map(|f| f.key);
    let mut header = vec![
        "subject".to_string(),
        "runs".into(),
        "not_applicable".into(),
    ];
    header.extend(table::spread_columns(keys()));
    let rows: Vec<Vec<String>> = report
        .summaries
        .iter()
        .map(|s| {
            let mut row = vec![
                s.subject.clone(),
                s.runs.to_string(),
                s.not_applicable.clone().unwrap_or_default(),
            ];
            row.extend(table::spread_cells(
                FIGURES.iter().map(|f| (f.key, f.decimals)),
                &s.figures,
            ));
            row
        })
        .collect();
    table::csv(&header, &rows)
}
