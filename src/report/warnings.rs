//! The warnings a bench finds (`bench::Warning`), in words: the terminal table's
//! notes, the experiment READMEs' notes and data.json all print this text.

use super::{number, plural};
use crate::bench::{
    Disagreed, Disagreement, KernelCount, SATURATED_CLIENT_PERCENT, Shortfall, Warning,
};
use std::fmt;

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::SaturatedClient { subjects } => write!(
                f,
                "the client used over {SATURATED_CLIENT_PERCENT:.0}% of its CPU ({}): it, not \
                 the server, may have set the pace; compare the per-request costs",
                subjects.join(", ")
            ),
            Warning::UncountedCalls { backend } => write!(
                f,
                "{backend} makes system calls of its own inside each wait: our layer counts \
                 the calls into it, the kernel counts them all."
            ),
            Warning::RunsVaried {
                subject,
                relative_range,
                min,
                max,
            } => write!(
                f,
                "{subject}: requests/s varied by {:.0}% between runs (min {min:.0}, max \
                 {max:.0}): compare ratios within a run, or add --runs",
                relative_range * 100.0
            ),
            Warning::Steal {
                subject,
                max_percent,
            } => write!(
                f,
                "{subject}: the hypervisor gave up to {max_percent:.0}% of the machine's CPU \
                 time to other guests during a run (steal, /proc/stat): such runs are slower \
                 whatever the code does"
            ),
            Warning::EchoErrors {
                subject,
                run,
                mismatched_bytes,
                lost_bytes,
                unexpected_closes,
            } => write!(
                f,
                "{subject} run {}: {mismatched_bytes} mismatched bytes, {lost_bytes} lost \
                 bytes, {unexpected_closes} unexpected closes",
                run + 1
            ),
            Warning::RateNotKept {
                subject,
                run,
                shortfall,
            } => write!(f, "{subject} run {}: {shortfall}", run + 1),
            Warning::CoarseCpuSplit {
                subject,
                ticks,
                tick_ms,
            } => write!(
                f,
                "{subject}: the user/kernel split of server CPU rests on {ticks} clock ticks \
                 ({tick_ms:.0} ms each) in a run's window: take \"of which in the kernel\" as \
                 rough (the total is the scheduler's nanosecond count); measure longer for a \
                 finer split"
            ),
            Warning::NoKernelCount { subject, reason } => {
                write!(f, "{subject}: kernel count: unavailable ({reason})")
            }
            Warning::Disagreement(d) => d.fmt(f),
            Warning::PageCache { state } => write!(f, "page cache: {state}"),
        }
    }
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} run {}: ", self.subject, self.run + 1)?;
        match self.about {
            Disagreed::EchoedBytes { client, server } => write!(
                f,
                "the client completed {client} bytes of echo, the server wrote {server}"
            ),
            Disagreed::Calls {
                count,
                ours,
                kernel,
            } => {
                let (what, source) = named(count);
                let percent = off_by(ours, kernel);
                write!(
                    f,
                    "{what}: our count {ours}, the kernel's ({source}) {kernel} ({percent:+.1}%)"
                )
            }
        }
    }
}

/// What a kernel count counts, and where it comes from.
fn named(count: KernelCount) -> (&'static str, &'static str) {
    match count {
        KernelCount::Reads => ("read calls", "/proc syscr"),
        KernelCount::Writes => ("write calls", "/proc syscw"),
        KernelCount::All => ("all system calls", "raw_syscalls:sys_enter"),
        KernelCount::RingSubmitted => ("io_uring operations submitted", "io_uring tracepoint"),
        KernelCount::RingCompleted => ("io_uring completions", "io_uring:io_uring_complete"),
    }
}

/// How far our count is from the kernel's, in percent of the kernel's.
fn off_by(ours: u64, kernel: u64) -> f64 {
    (ours as f64 - kernel as f64) / kernel.max(1) as f64 * 100.0
}

/// One line for every subject whose requests/s varied between runs, for a screen
/// that has no room for one each; None when none did.
pub fn varied_in_brief(warnings: &[&Warning]) -> Option<String> {
    let varied: Vec<String> = warnings
        .iter()
        .filter_map(|w| match w {
            Warning::RunsVaried {
                subject,
                relative_range,
                ..
            } => Some(format!("{subject} {:.0}%", relative_range * 100.0)),
            _ => None,
        })
        .collect();
    (!varied.is_empty()).then(|| {
        format!(
            "requests/s varied between runs ({}): compare ratios within a run, or add --runs",
            varied.join(", ")
        )
    })
}

/// One line for a subject's disagreements on call counts, for a screen that has no
/// room for one per run (the exports keep them all); None when it has none.
pub fn calls_in_brief(subject: &str, all: &[Disagreement]) -> Option<String> {
    let mut counts: Vec<&str> = Vec::new();
    let mut runs: Vec<usize> = Vec::new();
    let mut worst: f64 = 0.0;
    for d in all {
        if let Disagreed::Calls {
            count,
            ours,
            kernel,
        } = d.about
        {
            let (what, _) = named(count);
            if !counts.contains(&what) {
                counts.push(what);
            }
            if !runs.contains(&d.run) {
                runs.push(d.run);
            }
            worst = worst.max(off_by(ours, kernel).abs());
        }
    }
    (!counts.is_empty()).then(|| {
        format!(
            "{subject}: our counts of {} and the kernel's differ by up to {worst:.1}% in {} \
             (--figures all and the exports show each)",
            counts.join(" and "),
            plural(runs.len(), "run")
        )
    })
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "achieved {} of {} requests/s: the connections cannot sustain it",
            number(self.achieved, 0),
            number(self.requested, 0)
        )?;
        if self.missed > 0 {
            write!(
                f,
                " ({} could not even be sent; they are in the corrected latency, with their \
                 wait to the end)",
                plural(number(self.missed as f64, 0), "request")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;

    #[test]
    fn warnings_read_as_sentences() {
        let d = Disagreement {
            subject: "polling".into(),
            run: 0,
            about: Disagreed::Calls {
                count: KernelCount::Reads,
                ours: 97,
                kernel: 100,
            },
        };
        assert_eq!(
            Warning::Disagreement(d).to_string(),
            "polling run 1: read calls: our count 97, the kernel's (/proc syscr) 100 (-3.0%)"
        );
        let w = Warning::SaturatedClient {
            subjects: vec!["poll".into(), "epoll-et".into()],
        };
        assert!(
            w.to_string()
                .starts_with("the client used over 90% of its CPU (poll, epoll-et)")
        );
        let w = Warning::UncountedCalls {
            backend: Backend::Polling,
        };
        assert!(w.to_string().starts_with("polling makes system calls"));
    }
}
