//! The statistics table `serve` prints at exit (and on SIGUSR1).

use super::count;
use crate::backend::Trigger;
use crate::server::ServerStats;
use crate::sys::{RingOp, Stat};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Table};

/// One JSON object on one line (`serve --json`: what a measuring parent reads).
pub fn json_line(s: &ServerStats) -> String {
    let mut line = serde_json::to_string(s).expect("statistics serialise");
    line.push('\n');
    line
}

pub fn render(s: &ServerStats) -> String {
    let t = &s.totals;
    let completion = s.trigger == Trigger::Completion.name();
    let notified = if completion {
        "the completion model".to_string()
    } else {
        format!("{}-triggered", s.trigger)
    };
    let mut out = format!(
        "iobench serve {}: backend {} ({notified}), model {}, read strategy {}, buffer {} B, {:.1} s\n",
        if s.is_final { "statistics" } else { "snapshot" },
        s.backend,
        s.model,
        s.read_strategy,
        s.buffer_size,
        s.elapsed_s
    );

    let wakeups = t.counter(Stat::Wakeups);
    let mut calls = table(&["system call (our count)", "count", "per wakeup"]);
    for (name, n) in &t.syscalls {
        calls.add_row(row(name, *n, per(*n, wakeups)));
    }
    calls.add_row(row(
        "total",
        t.syscalls_total,
        per(t.syscalls_total, wakeups),
    ));
    out += &format!("{calls}\n");

    let mut lp = table(&["event loop", "value"]);
    lp.add_row(row2("waits", count(t.counter(Stat::Waits))));
    lp.add_row(row2("wakeups (waits with events)", count(wakeups)));
    lp.add_row(row2(
        "events per wakeup",
        format!("{:.2}", t.per_wakeup(Stat::Events)),
    ));
    lp.add_row(row2(
        "fds handed to the kernel per wakeup",
        format!("{:.2}", t.per_wakeup(Stat::Handed)),
    ));
    lp.add_row(row2(
        "fds scanned by us per wakeup",
        format!("{:.2}", t.per_wakeup(Stat::Scanned)),
    ));
    let refused = [
        Stat::RefusedUnwatchable,
        Stat::RefusedWorkerBusy,
        Stat::RefusedMaxConns,
        Stat::RefusedNoFds,
    ];
    for stat in [Stat::Accepted, Stat::Closed]
        .into_iter()
        .chain(refused)
        .chain([
            Stat::Resets,
            Stat::IoErrors,
            Stat::ProtocolErrors,
            Stat::IdleTimeouts,
            Stat::InputBudgetCloses,
            Stat::BytesIn,
            Stat::BytesOut,
            Stat::PartialWrites,
            Stat::ReadPauses,
        ])
        .chain(completion.then_some(Stat::RecvNoBuffers))
    {
        lp.add_row(row2(&stat.name().replace('_', " "), count(t.counter(stat))));
    }
    out += &format!("{lp}\n");

    if completion {
        let mut ops = table(&["io_uring operation (our count)", "submitted", "completions"]);
        let right = |n: u64| Cell::new(count(n)).set_alignment(CellAlignment::Right);
        for &op in RingOp::ALL {
            let (submitted, completed) = (t.submitted(op), t.completed(op));
            ops.add_row(vec![
                Cell::new(op.name()),
                right(submitted),
                right(completed),
            ]);
        }
        let total = [t.ring_submitted_total(), t.ring_completed_total()];
        ops.add_row(vec![Cell::new("total"), right(total[0]), right(total[1])]);
        out += &format!("{ops}\n");
    }

    let p = &s.process;
    let mut pr = table(&["process (getrusage, all threads)", "value"]);
    pr.add_row(row2("user CPU", format!("{:.3} s", p.user_s)));
    pr.add_row(row2("system CPU", format!("{:.3} s", p.sys_s)));
    pr.add_row(row2("voluntary context switches", count(p.voluntary_cs)));
    pr.add_row(row2(
        "involuntary context switches",
        count(p.involuntary_cs),
    ));
    pr.add_row(row2(
        "user/kernel mode switches (2 per system call)",
        count(2 * t.syscalls_total),
    ));
    pr.add_row(row2("max RSS", format!("{} KiB", p.max_rss_kib)));
    pr.add_row(row2("RSS now", format!("{} KiB", p.rss_kib)));
    out += &format!("{pr}\n");
    out
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

fn per(n: u64, wakeups: u64) -> String {
    if wakeups == 0 {
        "-".into()
    } else {
        format!("{:.2}", n as f64 / wakeups as f64)
    }
}

fn row(name: &str, n: u64, per: String) -> Vec<Cell> {
    vec![
        Cell::new(name),
        Cell::new(count(n)).set_alignment(CellAlignment::Right),
        Cell::new(per).set_alignment(CellAlignment::Right),
    ]
}

fn row2(name: &str, value: String) -> Vec<Cell> {
    vec![
        Cell::new(name),
        Cell::new(value).set_alignment(CellAlignment::Right),
    ]
}
