//! Markdown: everything the terminal shows, for a report: the workload, the full
//! table, each multi-threaded server's threads, the findings, every warning and note,
//! the machine and the command.

use crate::bench::BenchReport;
use crate::report::compare::{notes, sentences, workload};
use crate::report::grid::{GridCell, View, grid};
use crate::report::{table, tasks};
use anyhow::Result;

pub fn render(report: &BenchReport) -> Result<String> {
    let g = grid(report, &View::All);
    let mut out = format!("{}.\n\n", workload(report));
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
    out += "\nMedian over runs, (min–max) in parentheses. Per-request figures divide by the \
            requests the client completed in the window.\n";
    out += &tasks::markdown(report);
    let sentences = sentences(report);
    if !sentences.is_empty() {
        out += &format!("\n{}\n", sentences.join(" "));
    }
    let notes = notes(report, &View::All);
    if !notes.is_empty() {
        out += "\n";
        for (what, text) in notes {
            out += &format!("- {what}: {text}\n");
        }
    }
    out += &format!(
        "\nMeasured by `{}` on {}.\n",
        report.command,
        report.machine.one_line()
    );
    Ok(out)
}
