//! The findings of a bench in words, sentences a student can read aloud; and the
//! verdict beside each bar. Numbers are printed as the table prints them.

use super::number;
use crate::bench::{FIGURES, Finding, Verdict};

/// A figure's median as its table row prints it.
fn shown(key: &str, v: f64) -> String {
    let decimals = FIGURES
        .iter()
        .find(|f| f.key == key)
        .map_or(1, |f| f.decimals);
    number(v, decimals)
}

pub fn sentence(f: &Finding) -> String {
    match f {
        Finding::ClientSetThePace { percent, times } => format!(
            "The load generator used {percent:.0}% of its CPU or more: it set the pace, so \
             requests/s{} says little about the server{} here; compare the per-request costs.",
            times.map_or(String::new(), |t| format!(" (at most {t:.2}x apart)")),
            if times.is_some() { "s" } else { "" }
        ),
        Finding::Faster { fast, slow, times } => format!(
            "{fast} served {times:.2} times the requests/s of {slow}, beyond the runs' spread."
        ),
        Finding::SameSpeed => "Every server's requests/s is within the others' run-to-run \
                               spread: none is faster here; compare the per-request costs."
            .to_string(),
        Finding::Scanned {
            most,
            handed,
            scanned,
            events,
            least,
        } => {
            let scan = shown("fds_scanned_per_wakeup", *scanned);
            let ready = shown("events_per_wakeup", *events);
            let mut s = match *handed > 0.0 {
                true => format!(
                    "{most} handed the kernel {} descriptors per wakeup and scanned {scan} \
                     of them to find {ready} ready",
                    shown("fds_handed_per_wakeup", *handed)
                ),
                false => {
                    format!("{most} scanned {scan} descriptors per wakeup to find {ready} ready")
                }
            };
            if let Some((name, fewest)) = least {
                s += &format!(
                    "; {name} scanned {}",
                    shown("fds_scanned_per_wakeup", *fewest)
                );
            }
            s + "."
        }
        Finding::CostlierCpu {
            high,
            high_us,
            low,
            low_us,
            times,
        } => format!(
            "{high} spent {times:.2} times the server CPU per request of {low} ({} against {} \
             us).",
            shown("server_cpu_us_per_request", *high_us),
            shown("server_cpu_us_per_request", *low_us)
        ),
        Finding::FewerCalls {
            low,
            low_calls,
            high,
            high_calls,
        } => format!(
            "{low} made {} system calls per request, {high} {}.",
            shown("syscalls_per_request", *low_calls),
            shown("syscalls_per_request", *high_calls)
        ),
        Finding::TryIdle {
            select_fits,
            select_limit,
            poll_shows,
        } => format!(
            "To tell them apart, add idle connections: --idle-connections {select_fits} fits \
             select's {} descriptors; {} shows poll's cost grow.",
            number(*select_limit as f64, 0),
            poll_shows
        ),
    }
}

/// Beside a subject's bar: how it stands against the baseline's.
pub fn verdict(v: Verdict, baseline: &str) -> String {
    match v {
        Verdict::Baseline => "baseline".to_string(),
        Verdict::OneRun { ratio } => format!("{ratio:.2}x {baseline} (1 run: no spread to judge)"),
        Verdict::WithinNoise { .. } => format!("within the noise of {baseline}"),
        Verdict::Apart { ratio } if ratio >= 1.0 => {
            format!("{ratio:.2} times faster than {baseline}")
        }
        Verdict::Apart { ratio } => format!("{:.2} times slower than {baseline}", 1.0 / ratio),
    }
}
