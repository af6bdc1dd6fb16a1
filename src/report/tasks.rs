//! The kernel's figures for each thread of a server (/proc/PID/task), from its first
//! run: memcached's listener beside its workers, Redis's main thread beside its I/O
//! threads. Shown under the main table for an external server with more than one
//! thread, and for ours too with `--figures all` (ours has its own per-thread table
//! from its counts) and in the Markdown export; the JSON export has them for every
//! run.

use super::grid::View;
use super::{count, number, plural, table};
use crate::bench::{BenchReport, Handoff, Subject};
use crate::metrics::TaskSample;
use crate::style::{Paint, Style};
use comfy_table::CellAlignment;

pub fn render(report: &BenchReport, view: &View, style: &Style) -> String {
    let mut out = String::new();
    for t in tables(report, view) {
        let mut table = style.table();
        table.set_header(t.header);
        for row in t.rows {
            table.add_row(row);
        }
        for col in 1..table.column_count() {
            if let Some(c) = table.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        out += &style.render(table);
        if !t.notes.is_empty() {
            out += &style.paint(&style.wrap(&t.notes.join(" "), 0), Paint::Dim);
        }
    }
    out
}

/// The same tables in Markdown, for the export (every subject, as `--figures all`).
pub fn markdown(report: &BenchReport) -> String {
    let mut out = String::new();
    for t in tables(report, &View::All) {
        out += &format!("\n{}", table::markdown(&t.header, &t.rows));
        if !t.notes.is_empty() {
            out += &format!("\n{}\n", t.notes.join(" "));
        }
    }
    out
}

/// One server's threads: a header, a row per busy thread, and sentences below.
struct Threads {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

/// The thread tables `view` shows, from each subject's first run.
fn tables(report: &BenchReport, view: &View) -> Vec<Threads> {
    let mut out = Vec::new();
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
        out.push(threads(
            &name,
            tasks,
            run.load.requests,
            run.server.handoff.as_ref(),
        ));
    }
    out
}

/// One server's threads over `requests` requests: the busy ones in a table, then
/// how many were idle and the listener's hand-off, in words.
fn threads(name: &str, tasks: &[TaskSample], requests: u64, handoff: Option<&Handoff>) -> Threads {
    let requests = requests.max(1) as f64;
    let per_request = |n: f64| number(n / requests, 3);
    let counted = tasks.iter().any(|t| t.syscalls.is_some());
    let mut header = vec![
        format!("{name}: threads (run 1, the kernel's)"),
        "CPU us/req".to_string(),
        "ctx switches/req vol + invol".to_string(),
    ];
    if counted {
        header.push("syscalls/req".to_string());
    }
    let busy: Vec<_> = tasks.iter().filter(|t| t.cpu_s > 0.0).collect();
    let rows = busy
        .iter()
        .map(|task| {
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
            row
        })
        .collect();
    let idle = tasks.len() - busy.len();
    let mut notes = Vec::new();
    if idle > 0 {
        notes.push(format!(
            "{} not shown: no CPU time in the window.",
            plural(idle, "idle thread")
        ));
    }
    if let Some(h) = handoff {
        notes.push(format!(
            "Its listener ({}) made {} {}(2) per {}(2) ({} and {}, from when it was ready to \
             the window's start, while it accepted the workload's connections): the \
             notification that wakes the worker a connection is handed to.",
            h.thread,
            number(h.notifies as f64 / h.accepts.max(1) as f64, 2),
            h.calls.notify,
            h.calls.accept,
            count(h.notifies),
            count(h.accepts),
        ));
    }
    Threads {
        header,
        rows,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::RealServer;

    fn task(tid: i32, name: &str, cpu_s: f64, syscalls: Option<u64>) -> TaskSample {
        TaskSample {
            tid,
            name: name.to_string(),
            cpu_s,
            voluntary_cs: 500,
            involuntary_cs: 10,
            syscalls,
        }
    }

    /// memcached's threads over 1,000 requests: the busy ones per request, the idle
    /// ones counted, the listener's hand-off in words.
    #[test]
    fn busy_threads_per_request_idle_ones_counted_and_the_handoff_said() {
        let tasks = [
            task(10, "memcached", 0.001, Some(40)),
            task(11, "mc-worker", 0.004, Some(2100)),
            task(12, "mc-lrumaint", 0.0, Some(0)),
        ];
        let handoff = Handoff {
            thread: "memcached".into(),
            calls: RealServer::Memcached.handoff().unwrap(),
            accepts: 64,
            notifies: 64,
        };
        let t = threads("memcached x1", &tasks, 1000, Some(&handoff));
        assert_eq!(t.header[0], "memcached x1: threads (run 1, the kernel's)");
        let worker = t.rows.iter().find(|r| r[0] == "mc-worker (11)").unwrap();
        // 4 ms over 1,000 requests; 500 + 10 switches; 2,100 calls.
        assert_eq!(worker[1..], ["4.00", "0.500 + 0.010", "2.100"]);
        assert!(!t.rows.iter().any(|r| r[0].contains("mc-lrumaint")));
        let notes = t.notes.join(" ");
        assert!(notes.contains("1 idle thread not shown"), "{notes}");
        assert!(
            notes.contains("made 1.00 write(2) per accept4(2) (64 and 64"),
            "{notes}"
        );
        // Without kernel counts, no system-call column.
        let tasks = tasks.map(|t| TaskSample {
            syscalls: None,
            ..t
        });
        let t = threads("x", &tasks, 1000, None);
        assert!(!t.header.iter().any(|h| h == "syscalls/req"));
    }
}
