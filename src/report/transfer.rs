//! The table `iobench transfer` prints: measured beside predicted.

use super::{count, number, plural};
use crate::transfer::TransferResult;
use crate::units::Size;

/// Bytes in decimal megabytes, as the MB/s beside them: `335.5 MB`.
fn decimal_mb(bytes: u64) -> String {
    format!("{} MB", number(bytes as f64 / 1e6, 1))
}
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

pub fn render(results: &[TransferResult], chunk: usize) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "method",
            "MB/s",
            "system calls (measured)",
            "the article predicts",
            "mode switches",
            "context switches (vol + invol)",
            "CPU user / sys (ms)",
            "page cache",
        ]);
    for r in results {
        let calls: Vec<String> = r
            .calls
            .iter()
            .map(|(k, v)| format!("{k} {}", count(*v)))
            .collect();
        t.add_row(vec![
            r.method.name().to_string(),
            number(r.mb_per_s, 0),
            format!("{} ({})", count(r.calls_total), calls.join(", ")),
            format!("{} ({})", count(r.predicted_calls), r.prediction),
            count(2 * r.calls_total),
            format!("{} + {}", r.voluntary_cs, r.involuntary_cs),
            format!("{:.1} / {:.1}", r.user_s * 1e3, r.sys_s * 1e3),
            r.cache.clone(),
        ]);
    }
    let bytes = results.first().map_or(0, |r| r.bytes);
    format!(
        "{} ({}) in {} chunks over loopback TCP; the sink verified size and checksum each \
         time. MB and MB/s are decimal (10^6 bytes), sizes in K/M binary. Calls are the \
         sender's transfer loop; a mode switch (user->kernel->user) is two per call, not a \
         context switch.\n{t}\n",
        decimal_mb(bytes),
        plural(number(bytes as f64, 0), "byte"),
        Size(chunk)
    )
}
