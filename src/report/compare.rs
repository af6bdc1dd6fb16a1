//! The side-by-side table `run` and `compare` print, with the notes a reader needs.

use super::grid::grid;
use crate::bench::{self, BenchReport};
use crate::sys::Stat;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

pub fn render(report: &BenchReport) -> String {
    let g = grid(report);
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(g.header.clone());
    for (label, cells) in &g.rows {
        let mut row = vec![Cell::new(label)];
        row.extend(cells.iter().map(|c| {
            let text = match &c.range {
                Some(r) => format!("{}\n({r})", c.main),
                None => c.main.clone(),
            };
            Cell::new(text).set_alignment(CellAlignment::Right)
        }));
        t.add_row(row);
    }
    let load = &report.plan.load;
    let mut out = format!(
        "{} connections ({} idle), {} B payload, pipeline {}, {} per run after {} warm-up, {}\n",
        load.connections,
        load.idle_connections,
        load.payload,
        load.pipeline,
        load.duration.map_or_else(
            || format!("{} requests", load.requests.unwrap_or(0)),
            |d| format!("{:.1} s", d.as_secs_f64())
        ),
        format_args!("{:.1} s", load.warmup.as_secs_f64()),
        match load.rate {
            Some(r) => format!("open loop at {r:.0} requests/s"),
            None => "closed loop".to_string(),
        }
    );
    out += &format!("{t}\n");
    out += "Median over runs, (min–max) below it. Per-request figures divide by the requests \
            the client completed in the window. A user/kernel mode switch (two per system call) \
            is not a context switch (the scheduler changing threads).\n";
    if let Some(note) = super::grid::lower_bound_note(report) {
        out += &note;
    }
    out += &threads_section(report);
    if let Some(w) = bench::saturated_client(&report.summaries) {
        out += &format!("warning: {w}\n");
    }
    for s in &report.summaries {
        for w in &s.warnings {
            out += &format!("warning: {w}\n");
        }
        for d in &s.disagreements {
            out += &format!("disagreement: {d}\n");
        }
        for f in &s.failures {
            out += &format!("failed: {f}\n");
        }
    }
    for n in bench::uncounted_calls(&report.plan.subjects, &report.summaries) {
        out += &format!("note: {n}\n");
    }
    if report.plan.kernel_counts {
        out += "note: kernel counts use the raw_syscalls:sys_enter tracepoint, which itself costs \
                the server CPU (15-20% at high rates here).\n";
    }
    out
}

/// For models with several threads: how the work was spread, from the first run.
fn threads_section(report: &BenchReport) -> String {
    let mut out = String::new();
    for subject in &report.runs {
        let Some(run) = subject.runs.first() else {
            continue;
        };
        let busy: Vec<_> = run
            .server
            .threads
            .iter()
            .filter(|t| t.counts.syscalls_total > 0 && t.thread != "control")
            .collect();
        if busy.len() < 2 {
            continue;
        }
        out += &format!("per thread, {} (run 1):\n", subject.subject);
        let requests = run.load.requests.max(1) as f64;
        for t in busy {
            out += &format!(
                "  {:<10} {:>6} connections, {:>6.3} system calls/request, {:>9} wakeups, {} voluntary + {} involuntary context switches\n",
                t.thread,
                t.connections,
                t.counts.syscalls_total as f64 / requests,
                t.counts.counter(Stat::Wakeups),
                t.voluntary_cs,
                t.involuntary_cs
            );
        }
    }
    out
}
