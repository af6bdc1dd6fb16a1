//! The table `iobench transfer` prints: measured beside predicted.

use super::{count, number, plural};
use crate::style::Style;
use crate::transfer::TransferResult;
use crate::units::Size;
use comfy_table::{Cell, CellAlignment};

/// Bytes in decimal megabytes, as the MB/s beside them: `335.5 MB`.
fn decimal_mb(bytes: u64) -> String {
    format!("{} MB", number(bytes as f64 / 1e6, 1))
}

pub fn render(results: &[TransferResult], chunk: usize, style: &Style) -> String {
    let bytes = results.first().map_or(0, |r| r.bytes);
    let mut out = style.wrap(
        &format!(
            "{} ({}) in {} chunks over loopback TCP; the sink verified size and checksum \
             each time. MB and MB/s are decimal (10^6 bytes), sizes in K/M binary. Calls are \
             the sender's transfer loop; a mode switch (user->kernel->user) is two per call, \
             not a context switch.",
            decimal_mb(bytes),
            plural(number(bytes as f64, 0), "byte"),
            Size(chunk)
        ),
        0,
    );
    let mut t = style.table();
    t.set_header(vec![
        "method",
        "MB/s",
        "system calls (measured)",
        "predicted",
        "mode switches",
        "context switches vol + invol",
        "CPU ms user / sys",
    ]);
    for r in results {
        let calls: Vec<String> = r
            .calls
            .iter()
            .map(|(k, v)| format!("{k} {}", count(*v)))
            .collect();
        let right = |text: String| Cell::new(text).set_alignment(CellAlignment::Right);
        t.add_row(vec![
            Cell::new(r.method.name()),
            right(number(r.mb_per_s, 0)),
            Cell::new(format!("{}: {}", count(r.calls_total), calls.join(", "))),
            right(count(r.predicted_calls)),
            right(count(2 * r.calls_total)),
            right(format!("{} + {}", r.voluntary_cs, r.involuntary_cs)),
            right(format!("{:.1} / {:.1}", r.user_s * 1e3, r.sys_s * 1e3)),
        ]);
    }
    out += &style.render(t);
    out += &style.wrap("What the article predicts:", 2);
    for r in results {
        out += &style.wrap(
            &format!(
                "  {}: {} ({})",
                r.method,
                count(r.predicted_calls),
                r.prediction
            ),
            4,
        );
    }
    // The page cache's state, said once for the methods it is the same for.
    let mut states: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in results {
        match states.iter_mut().find(|(state, _)| *state == r.cache) {
            Some((_, methods)) => methods.push(r.method.name()),
            None => states.push((&r.cache, vec![r.method.name()])),
        }
    }
    let states: Vec<String> = states
        .iter()
        .map(|(state, methods)| format!("{state} for {}", methods.join(", ")))
        .collect();
    out += &style.wrap(&format!("Page cache: {}.", states.join("; ")), 2);
    out
}
