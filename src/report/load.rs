//! The summary `iobench load` prints.

use super::{count, number, plural};
use crate::bench::{SATURATED_CLIENT_PERCENT, Shortfall};
use crate::load::{Latency, LoadReport};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Table};

pub fn render(r: &LoadReport) -> String {
    let open_loop = r.requested_rate.is_some();
    let mut out = format!(
        "{} in {:.2} s: {} requests/s, {:.2} MB/s\n",
        plural(count(r.requests), "request"),
        r.window_s,
        number(r.requests_per_s, 0),
        r.mb_per_s
    );
    if let Some(requested) = r.requested_rate {
        match Shortfall::of(r) {
            Some(shortfall) => out += &format!("warning: {shortfall}\n"),
            None => {
                out += &format!(
                    "achieved {} of {} requests/s\n",
                    number(r.requests_per_s, 0),
                    number(requested, 0)
                )
            }
        }
    }
    let mut t = latency_table(if open_loop {
        "latency (us)"
    } else {
        "round trip (us)"
    });
    t.add_row(latency_row(
        if open_loop {
            "from intended send (corrected)"
        } else {
            "closed loop"
        },
        &r.latency,
    ));
    if open_loop {
        t.add_row(latency_row(
            "from actual send (uncorrected)",
            &r.uncorrected,
        ));
        t.add_row(latency_row("send lag: the generator's own", &r.send_lag));
        t.add_row(latency_row(
            "send lag: waiting for the connection",
            &r.backpressure,
        ));
    }
    out += &format!("{t}\n");
    out += &format!(
        "client: {:.2} us CPU per request ({:.0}% of its CPUs), {:.2} system calls per request\n",
        r.client_cpu_us_per_request,
        r.client_cpu_share * 100.0,
        r.client_syscalls_per_request
    );
    if r.client_cpu_share * 100.0 > SATURATED_CLIENT_PERCENT {
        out += "warning: the client was near saturation: the server may be able to do more than this shows\n";
    }
    out += &format!("verified: {}\n", echo_errors(r));
    out
}

/// "0 mismatched bytes, 0 lost bytes, 0 unexpected closes": the summary's line, and
/// the error when there are any.
pub fn echo_errors(r: &LoadReport) -> String {
    [
        (r.mismatched_bytes, "mismatched byte"),
        (r.lost_bytes, "lost byte"),
        (r.unexpected_closes, "unexpected close"),
    ]
    .map(|(n, what)| plural(count(n), what))
    .join(", ")
}

/// A table with one column per percentile, rows from `latency_row`.
fn latency_table(what: &str) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_header(vec![
        what, "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean",
    ]);
    t
}

fn latency_row(name: &str, l: &Latency) -> Vec<Cell> {
    let mut row = vec![Cell::new(name)];
    for v in [l.p50, l.p90, l.p99, l.p999, l.p9999, l.max, l.mean] {
        row.push(Cell::new(format!("{v:.1}")).set_alignment(CellAlignment::Right));
    }
    row
}

/// Percentiles of a merged histogram.
pub fn render_latency(title: &str, l: &Latency) -> String {
    let mut t = latency_table("latency (us)");
    t.add_row(latency_row(title, l));
    format!("{}\n{t}\n", plural(count(l.count), "sample"))
}
