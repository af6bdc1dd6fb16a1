//! The kernel's figures for each thread of a server (/proc/PID/task), from its first
//! run: memcached's listener beside its workers, Redis's main thread beside its I/O
//! threads. Shown under the main table for an external server with more than one
//! thread, and for ours too with `--figures all` (ours has its own per-thread table
//! from its counts); the JSON export has them for every run.

use super::grid::View;
use super::{count, number, plural};
use crate::bench::{BenchReport, Handoff, Subject};
use crate::metrics::TaskSample;
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
        out += &table(
            &name,
            tasks,
            run.load.requests,
            run.server.handoff.as_ref(),
            style,
        );
    }
    out
}

/// One server's threads over `requests` requests: the busy ones in a table, then
/// how many were idle and the listener's hand-off, in words.
fn table(
    name: &str,
    tasks: &[TaskSample],
    requests: u64,
    handoff: Option<&Handoff>,
    style: &Style,
) -> String {
    let requests = requests.max(1) as f64;
    let per_request = |n: f64| number(n / requests, 3);
    let counted = tasks.iter().any(|t| t.syscalls.is_some());
    let mut t = style.table();
    let mut header = vec![
        format!("{name}: threads (run 1, the kernel's)"),
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
    let mut out = style.render(t);
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
    if !notes.is_empty() {
        out += &style.paint(&style.wrap(&notes.join(" "), 0), Paint::Dim);
    }
    out
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
        // Wide: each sentence on one line.
        let style = Style {
            width: 1000,
            ..Style::PLAIN
        };
        let text = table("memcached x1", &tasks, 1000, Some(&handoff), &style);
        assert!(
            text.contains("memcached x1: threads (run 1, the kernel's)"),
            "{text}"
        );
        let worker = text.lines().find(|l| l.contains("mc-worker (11)")).unwrap();
        // 4 ms over 1,000 requests; 2,100 calls; 500 + 10 switches.
        for cell in ["4.00", "2.100", "0.500 + 0.010"] {
            assert!(worker.contains(cell), "{cell}: {worker}");
        }
        assert!(!text.contains("mc-lrumaint"), "{text}");
        assert!(text.contains("1 idle thread not shown"), "{text}");
        assert!(
            text.contains("made 1.00 write(2) per accept4(2) (64 and 64"),
            "{text}"
        );
        // Without kernel counts, no system-call column.
        let tasks = tasks.map(|t| TaskSample {
            syscalls: None,
            ..t
        });
        assert!(!table("x", &tasks, 1000, None, &style).contains("syscalls/req"));
    }
}
