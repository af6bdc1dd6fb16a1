//! The table `iobench transfer` prints: measured beside predicted.

use crate::transfer::TransferResult;
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
        let calls: Vec<String> = r.calls.iter().map(|(k, v)| format!("{k} {v}")).collect();
        t.add_row(vec![
            r.method.name().to_string(),
            format!("{:.0}", r.mb_per_s),
            format!("{} ({})", r.calls_total, calls.join(", ")),
            format!("{} ({})", r.predicted_calls, r.prediction),
            (2 * r.calls_total).to_string(),
            format!("{} + {}", r.voluntary_cs, r.involuntary_cs),
            format!("{:.1} / {:.1}", r.user_s * 1e3, r.sys_s * 1e3),
            r.cache.clone(),
        ]);
    }
    let bytes = results.first().map_or(0, |r| r.bytes);
    format!(
        "{} MB in {} KiB chunks over loopback TCP; the sink verified size and checksum each time. \
         Calls are the sender's transfer loop; a mode switch (user->kernel->user) is two per call, \
         not a context switch.\n{t}\n",
        bytes >> 20,
        chunk / 1024
    )
}
