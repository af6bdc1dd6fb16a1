//! Markdown: the side-by-side table, with the workload, the machine and the command.

use crate::bench::BenchReport;
use crate::report::grid::{GridCell, grid};
use crate::report::table;
use anyhow::Result;

pub fn render(report: &BenchReport) -> Result<String> {
    let g = grid(report);
    let mut out = format!(
        "Measured by `{}` on {}.\n\n",
        report.command,
        report.machine.one_line()
    );
    let rows: Vec<Vec<String>> = g
        .rows
        .iter()
        .map(|(label, cells)| {
            let mut row = vec![label.trim().to_string()];
            row.extend(cells.iter().map(GridCell::inline));
            row
        })
        .collect();
    out += &table::markdown(&g.header, &rows);
    out += "\nMedian over runs, (min–max) in parentheses.\n";
    if let Some(note) = crate::report::grid::lower_bound_note(report) {
        out += &format!("\n{note}");
    }
    Ok(out)
}
