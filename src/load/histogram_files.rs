//! Latency histograms on disk: the `.hgrm` percentile spectrum that HdrHistogram's
//! plotter reads, and interval logs, which runs on several client hosts write so that
//! their histograms can be added up later (percentiles are never averaged).

use crate::words::plural;
use anyhow::{Context, Result, bail};
use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, LogIteratorError,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Writes the percentile spectrum in microseconds, in the layout of HdrHistogram's
/// `outputPercentileDistribution` (Value, Percentile, TotalCount, 1/(1-Percentile)).
pub fn write_hgrm(path: &Path, h: &Histogram<u64>) -> Result<()> {
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = v.value_iterated_to() as f64 / 1e3;
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / 1e3,
        h.stdev() / 1e3
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / 1e3,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    out.push_str("# values in microseconds\n");
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Writes one interval (the measured window) as an HdrHistogram interval log, values
/// in nanoseconds.
pub fn write_interval_log(
    path: &Path,
    h: &Histogram<u64>,
    window_start: SystemTime,
    window: Duration,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment("iobench load: echo round-trip latency, values in nanoseconds")
            .with_start_time(window_start)
            .with_base_time(window_start)
            .begin_log_with(&mut buf, &mut serializer)
            .context("starting the interval log")?;
        log.write_histogram(h, Duration::ZERO, window, None)
            .context("writing the interval log")?;
    }
    std::fs::write(path, buf).with_context(|| format!("writing {}", path.display()))
}

/// Adds up every interval of every log into one histogram.
pub fn merge_logs(paths: &[impl AsRef<Path>]) -> Result<Histogram<u64>> {
    let mut total = super::client::new_histogram();
    let mut intervals = 0;
    for path in paths {
        let path = path.as_ref();
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for entry in IntervalLogIterator::new(&bytes) {
            let entry = entry.map_err(|e| {
                let LogIteratorError::ParseError { offset } = e;
                let (line, text) = line_at(&bytes, offset);
                anyhow::anyhow!(
                    "{}, line {line}: not an HdrHistogram interval log entry: {text:?} (write \
                     one with `iobench load --histogram-log FILE`)",
                    path.display()
                )
            })?;
            let LogEntry::Interval(interval) = entry else {
                continue;
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(interval.encoded_histogram())
                .with_context(|| format!("{}: bad base64 in an interval", path.display()))?;
            let h: Histogram<u64> = Deserializer::new()
                .deserialize(&mut raw.as_slice())
                .map_err(|e| anyhow::anyhow!("{}: bad histogram ({e:?})", path.display()))?;
            total
                .add(&h)
                .map_err(|e| anyhow::anyhow!("{}: cannot add ({e:?})", path.display()))?;
            intervals += 1;
        }
    }
    if intervals == 0 {
        bail!("no histogram intervals in {}", plural(paths.len(), "file"));
    }
    Ok(total)
}

/// The line number (from 1) at byte `offset`, and that line (at most 60 bytes).
fn line_at(bytes: &[u8], offset: usize) -> (usize, String) {
    let offset = offset.min(bytes.len());
    let number = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
    let start = bytes[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let rest = &bytes[start..];
    let end = rest
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(rest.len())
        .min(60);
    (number, String::from_utf8_lossy(&rest[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_logs_merge_by_adding_histograms() {
        let dir = std::env::temp_dir().join(format!("iobench-hlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut a = super::super::client::new_histogram();
        let mut b = super::super::client::new_histogram();
        for v in 1..=1000u64 {
            a.record(v * 1000).unwrap();
        }
        for _ in 0..1000 {
            b.record(5_000_000).unwrap();
        }
        let (pa, pb) = (dir.join("a.hlog"), dir.join("b.hlog"));
        write_interval_log(&pa, &a, SystemTime::now(), Duration::from_secs(1)).unwrap();
        write_interval_log(&pb, &b, SystemTime::now(), Duration::from_secs(1)).unwrap();
        let merged = merge_logs(&[&pa, &pb]).unwrap();
        assert_eq!(merged.len(), 2000);
        assert_eq!(merged.max(), b.max());
        // The median of the union, not the average of the medians.
        assert!(merged.value_at_quantile(0.5) >= 999_000);
        write_hgrm(&dir.join("m.hgrm"), &merged).unwrap();
        let text = std::fs::read_to_string(dir.join("m.hgrm")).unwrap();
        assert!(text.contains("Total count    =         2000"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
