//! The summary `iobench load` prints.

use super::{count, number, plural};
use crate::bench::{SATURATED_CLIENT_PERCENT, Shortfall};
use crate::load::{Latency, LoadReport};
use crate::style::Style;
use comfy_table::{Cell, CellAlignment, Table};

pub fn render(r: &LoadReport, style: &Style) -> String {
    let open_loop = r.requested_rate.is_some();
    let mut out = style.wrap(
        &format!(
            "{} in {:.2} s: {} requests/s, {:.2} MB/s",
            plural(count(r.requests), "request"),
            r.window_s,
            number(r.requests_per_s, 0),
            r.mb_per_s
        ),
        2,
    );
    if let Some(requested) = r.requested_rate {
        out += &match Shortfall::of(r) {
            Some(shortfall) => style.labelled("warning", &shortfall.to_string()),
            None => style.wrap(
                &format!(
                    "achieved {} of {} requests/s",
                    number(r.requests_per_s, 0),
                    number(requested, 0)
                ),
                2,
            ),
        };
    }
    let series: Vec<(&str, &Latency)> = match open_loop {
        true => vec![
            ("from intended send (corrected)", &r.latency),
            ("from actual send (uncorrected)", &r.uncorrected),
            ("send lag: the generator's own", &r.send_lag),
            ("send lag: waiting for the connection", &r.backpressure),
        ],
        false => vec![("round trip, closed loop", &r.latency)],
    };
    out += &style.render(latency_table(style, &series));
    out += &style.wrap(
        &format!(
            "client: {:.2} us CPU per request ({:.0}% of its CPUs), {:.2} system calls per \
             request",
            r.client_cpu_us_per_request,
            r.client_cpu_share * 100.0,
            r.client_syscalls_per_request
        ),
        2,
    );
    if r.client_cpu_share * 100.0 > SATURATED_CLIENT_PERCENT {
        out += &style.labelled(
            "warning",
            "the client was near saturation: the server may be able to do more than this shows",
        );
    }
    out += &style.wrap(&format!("verified: {}", echo_errors(r)), 2);
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

/// Latency percentiles in microseconds: a row per percentile, a column per series
/// (so that four series fit 80 columns).
fn latency_table(style: &Style, series: &[(&str, &Latency)]) -> Table {
    let mut t = style.table();
    let mut header = vec!["latency (us)".to_string()];
    header.extend(series.iter().map(|(name, _)| name.to_string()));
    t.set_header(header);
    type Percentile = fn(&Latency) -> f64;
    let rows: [(&str, Percentile); 7] = [
        ("p50", |l| l.p50),
        ("p90", |l| l.p90),
        ("p99", |l| l.p99),
        ("p99.9", |l| l.p999),
        ("p99.99", |l| l.p9999),
        ("max", |l| l.max),
        ("mean", |l| l.mean),
    ];
    for (name, value) in rows {
        let mut row = vec![Cell::new(name)];
        row.extend(
            series
                .iter()
                .map(|(_, l)| Cell::new(number(value(l), 1)).set_alignment(CellAlignment::Right)),
        );
        t.add_row(row);
    }
    t
}

/// Percentiles of a merged histogram.
pub fn render_latency(title: &str, l: &Latency, style: &Style) -> String {
    style.wrap(&plural(count(l.count), "sample"), 2)
        + &style.render(latency_table(style, &[(title, l)]))
}
