//! The kernel's figures for each thread of a server (/proc/PID/task), from its first
//! run: memcached's listener beside its workers, Redis's main thread beside its I/O
//! threads. Shown under the main table for an external server with more than one
//! thread, and for ours too with `--figures all` (ours has its own per-thread table
//! from its counts); the JSON export has them for every run.

use super::grid::View;
use super::{count, number, plural};
use crate::bench::{BenchReport, Subject};
use crate::style::{Paint, Style};
use comfy_table::CellAlignment;

pub fn render(report: &BenchReport, view: &View, style: &Style) -> String {
    let mut out = String::new();
    for subject in &report.plan.subjects {
        let shown = matches!(subject, Subject::External { .. }) || *view == View::All;
        let name = subject.name();
        let Some(run) = report
            .runs
            .iter()
            .find(|r| r.subject == name)
            .and_then(|r| r.runs.first())
        else {
            continue;
        };
        let tasks = &run.server.tasks;
        if !shown || tasks.len() < 2 {
            continue;
        }
        let requests = run.load.requests.max(1) as f64;
        let per_request = |n: f64| number(n / requests, 3);
        let counted = tasks.iter().any(|t| t.syscalls.is_some());
        let mut t = style.table();
        let mut header = vec![
            format!("{name}: threads (run 1)"),
            "CPU us/req".to_string(),
            "ctx switches/req vol + invol".to_string(),
        ];
        if counted {
            header.push("syscalls/req".to_string());
        }
        t.set_header(header);
        let busy: Vec<_> = tasks.iter().filter(|t| t.cpu_s > 0.0).collect();
        for task in &busy {
            let mut row = vec![
                format!("{} ({})", task.name, task.tid),
                number(task.cpu_s * 1e6 / requests, 2),
                format!(
                    "{} + {}",
                    per_request(task.voluntary_cs as f64),
                    per_request(task.involuntary_cs as f64)
                ),
            ];
            if counted {
                row.push(
                    task.syscalls
                        .map_or("n/a".into(), |n| per_request(n as f64)),
                );
            }
            t.add_row(row);
        }
        for col in 1..t.column_count() {
            if let Some(c) = t.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        out += &style.render(t);
        let idle = tasks.len() - busy.len();
        let mut notes = Vec::new();
        if idle > 0 {
            notes.push(format!(
                "{} not shown: no CPU time in the window.",
                plural(idle, "idle thread")
            ));
        }
        if let Some(h) = &run.server.handoff {
            notes.push(format!(
                "Its listener ({}) made {} {}(2) per {}(2) ({} and {}, from its start to the \
                 window's, while it accepted the connections): the notification that wakes the \
                 worker a connection is handed to.",
                h.thread,
                number(h.notifies as f64 / h.accepts.max(1) as f64, 2),
                h.calls.notify,
                h.calls.accept,
                count(h.notifies),
                count(h.accepts),
            ));
        }
        if !notes.is_empty() {
            out += &style.paint(&style.wrap(&notes.join(" "), 0), Paint::Dim);
        }
    }
    out
}
