//! Markdown: the side-by-side table, with the workload, the machine and the command.

use crate::bench::BenchReport;
use crate::report::grid::grid;
use anyhow::Result;

pub fn render(report: &BenchReport) -> Result<String> {
    let g = grid(report);
    let mut out = format!(
        "Measured by `{}` on {}.\n\n",
        report.command,
        report.machine.one_line()
    );
    out += &format!("| {} |\n", g.header.join(" | "));
    out += &format!("|{}\n", " --- |".repeat(g.header.len()));
    for (label, cells) in &g.rows {
        let cells: Vec<String> = cells
            .iter()
            .map(|c| match &c.range {
                Some(r) => format!("{} ({r})", c.main),
                None => c.main.clone(),
            })
            .collect();
        out += &format!("| {} | {} |\n", label.trim(), cells.join(" | "));
    }
    out += "\nMedian over runs, (min–max) in brackets.\n";
    Ok(out)
}
