//! Tables as file text, for every table iobench writes: Markdown (`--export-markdown`,
//! the experiment READMEs) and CSV (`--export-csv`, an experiment's data.csv).

use crate::metrics::Spread;
use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// A Markdown table: the header, its `| --- |` line, one line per row.
pub fn markdown(header: &[String], rows: &[Vec<String>]) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut out = line(header);
    out += &format!("|{}\n", " --- |".repeat(header.len()));
    for row in rows {
        out += &line(row);
    }
    out
}

/// Records as CSV, each cell quoted only where it needs it.
pub fn csv(header: &[String], rows: &[Vec<String>]) -> Result<String> {
    let mut out = ::csv::Writer::from_writer(Vec::new());
    for record in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        out.write_record(record).context("formatting CSV")?;
    }
    let bytes = out.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes)?)
}

/// A figures table's columns after the leading ones: each figure's median, min and max.
pub fn spread_columns<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    keys.into_iter()
        .flat_map(|key| ["median", "min", "max"].map(|stat| format!("{key}_{stat}")))
        .collect()
}

/// One row's cells under [`spread_columns`], each figure (key, decimals) rounded to
/// its own precision, as the tables show it: empty where no measurement has it.
pub fn spread_cells<'a>(
    figures_shown: impl IntoIterator<Item = (&'a str, usize)>,
    figures: &BTreeMap<&str, Spread>,
) -> Vec<String> {
    figures_shown
        .into_iter()
        .flat_map(|(key, decimals)| match figures.get(key) {
            Some(v) => [v.median, v.min, v.max].map(|x| format!("{x:.decimals$}")),
            None => Default::default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_has_a_rule_under_its_header() {
        let header = ["".to_string(), "poll (3 runs)".to_string()];
        let rows = [vec![
            "requests/s".to_string(),
            "1,000 (900–1,100)".to_string(),
        ]];
        assert_eq!(
            markdown(&header, &rows),
            "|  | poll (3 runs) |\n| --- | --- |\n| requests/s | 1,000 (900–1,100) |\n"
        );
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let header = ["subject".to_string(), "not_applicable".to_string()];
        let rows = [
            vec!["poll".to_string(), String::new()],
            vec![
                "select".to_string(),
                "n/a (fd limit 1024), \"x\"".to_string(),
            ],
        ];
        assert_eq!(
            csv(&header, &rows).unwrap(),
            "subject,not_applicable\npoll,\nselect,\"n/a (fd limit 1024), \"\"x\"\"\"\n"
        );
    }

    #[test]
    fn figures_take_three_columns_each() {
        let spread = Spread {
            median: 2.04,
            min: 1.0,
            max: 3.456,
        };
        let figures = BTreeMap::from([("a", spread)]);
        assert_eq!(
            spread_columns(["a", "b"]),
            ["a_median", "a_min", "a_max", "b_median", "b_min", "b_max"]
        );
        // Each rounded to its figure's precision (before: 3.456 and 2.04 in full).
        assert_eq!(
            spread_cells([("a", 1), ("b", 0)], &figures),
            ["2.0", "1.0", "3.5", "", "", ""]
        );
    }
}
