//! A sweep's points as the tables, the plots and the sentences group them: in sweep
//! order, each with the label of its series (the varied settings other than x).

use crate::experiment::{Column, Results, Row, Sweep};

/// The sweep's `name`, or its number.
pub fn sweep_name(sweep: &Sweep, index: usize) -> String {
    sweep
        .name
        .clone()
        .unwrap_or_else(|| format!("sweep {}", index + 1))
}

pub fn column<'a>(results: &'a Results, key: &str) -> &'a Column {
    results
        .columns
        .iter()
        .find(|c| c.key == key)
        .expect("figure names are checked before measuring")
}

/// Rows of one sweep, with the label of the series each belongs to.
pub fn sweep_rows<'a>(sweep: &Sweep, results: &'a Results) -> Vec<(&'a Row, String)> {
    let series_keys: Vec<&str> = sweep
        .varied()
        .into_iter()
        .filter(|k| *k != sweep.x)
        .collect();
    sweep
        .points
        .iter()
        .map(|&i| {
            let row = &results.rows[i];
            let label: Vec<String> = series_keys
                .iter()
                .filter_map(|k| row.setting(k))
                .map(|s| s.label())
                .collect();
            (row, label.join(" "))
        })
        .collect()
}

/// The row's value of setting `x`, as written.
pub fn x_value(row: &Row, x: &str) -> String {
    row.setting(x).map_or(String::new(), |s| s.value())
}

/// The row's value of setting `x` as a number, for a numeric axis.
pub fn x_number(row: &Row, x: &str) -> Option<f64> {
    row.setting(x).and_then(|s| s.number())
}

/// Whether every row has a number for `x`: then x is an axis of numbers, else of names.
pub fn numeric<'a>(mut rows: impl Iterator<Item = &'a Row>, x: &str) -> bool {
    rows.all(|r| x_number(r, x).is_some())
}

/// Why a row has no figures: n/a here, or not measured (its runs failed).
pub fn unmeasured(row: &Row) -> &str {
    row.not_applicable.as_deref().unwrap_or("not measured")
}

/// Where `item` is in `items`, added at the end the first time.
pub fn place<T: PartialEq>(items: &mut Vec<T>, item: T) -> usize {
    match items.iter().position(|i| *i == item) {
        Some(at) => at,
        None => {
            items.push(item);
            items.len() - 1
        }
    }
}
