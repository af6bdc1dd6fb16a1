//! The soak's table, and its record under results/.

use super::{count, plural};
use crate::bench::SoakRow;
use crate::load::LoadConfig;
use crate::metrics::Machine;
use crate::style::Style;
use comfy_table::CellAlignment;
use serde::Serialize;

#[derive(Serialize)]
pub struct SoakReport {
    pub machine: Machine,
    pub command: String,
    /// The requests asked for in all (each pair runs its share, rounded up).
    pub asked: u64,
    /// What every pair ran (its target and request count set per pair).
    pub workload: LoadConfig,
    pub rows: Vec<SoakRow>,
}

impl SoakReport {
    pub fn requests(&self) -> u64 {
        self.rows.iter().map(|r| r.requests).sum()
    }

    pub fn errors(&self) -> u64 {
        self.rows.iter().map(SoakRow::errors).sum()
    }
}

const HEADER: [&str; 7] = [
    "backend",
    "model",
    "requests",
    "errors",
    "seconds",
    "server RSS start (KiB)",
    "server RSS end (KiB)",
];

fn rows(report: &SoakReport) -> Vec<Vec<String>> {
    report
        .rows
        .iter()
        .map(|r| {
            vec![
                r.backend.clone(),
                r.model.clone(),
                count(r.requests),
                count(r.errors()),
                format!("{:.1}", r.seconds),
                count(r.server_rss_start_kib),
                count(r.server_rss_end_kib),
            ]
        })
        .collect()
}

/// The sentence under the table: how many, how long, how many errors.
fn summary(report: &SoakReport) -> String {
    let seconds: f64 = report.rows.iter().map(|r| r.seconds).sum();
    let asked = match report.requests() == report.asked {
        true => String::new(),
        false => format!(
            " ({} asked for: each of the {} pairs ran an equal share, rounded up)",
            count(report.asked),
            report.rows.len()
        ),
    };
    format!(
        "{}{asked} in {seconds:.0} s, {} (mismatched, lost or unaccounted bytes, unexpected \
         closes).",
        plural(count(report.requests()), "verified request"),
        plural(count(report.errors()), "error")
    )
}

/// The table and its summary, for the terminal.
pub fn render(report: &SoakReport, style: &Style) -> String {
    let mut t = style.table();
    t.set_header(HEADER.to_vec());
    for row in rows(report) {
        t.add_row(row);
    }
    for col in 2..HEADER.len() {
        if let Some(c) = t.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    style.render(t) + &style.wrap(&summary(report), 2)
}

/// The README of results/soak: what was run, where, and what came out.
pub fn readme(report: &SoakReport) -> String {
    format!(
        "# Soak: verified requests across every backend and model\n\n\
         Every backend with every threading model served its share of the requests from \
         {} of `iobench load` ({} in flight on each, {} B {} requests), which \
         compared every echoed byte with what it sent; the server's own count of bytes \
         written must equal the client's verified bytes. RSS is the server's resident \
         memory right after it started and right before it stopped.\n\n\
         Command: `{}`\n\nMachine: {}\n\n{}\n{}\n",
        plural(report.workload.connections, "connection"),
        report.workload.pipeline,
        report.workload.payload,
        report.workload.protocol,
        report.command,
        report.machine.one_line(),
        super::table::markdown(&HEADER.map(String::from), &rows(report)),
        summary(report)
    )
}
