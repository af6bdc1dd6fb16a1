//! What a bench found, as rules over its data: the sentences a student reads aloud
//! after the table are [`Finding`]s found here and worded by `report`. Every rule
//! reads only the medians and ranges the table shows, so no sentence can say what
//! the table does not.

use super::warning::SATURATED_CLIENT_PERCENT;
use super::{BenchPlan, Subject, Summary};
use crate::backend::Backend;
use crate::metrics::Spread;
use serde::Serialize;

/// The figure the bars and the speed findings compare.
pub const HEADLINE: &str = "requests_per_s";

/// Most findings worth reading aloud (and fitting a classroom screen).
const MOST: usize = 3;

/// A cost this many times another's is worth a sentence (when beyond the spread).
const NOTABLE: f64 = 1.1;

/// System calls per request this many times another's are a different model, not
/// noise in the same one (every readiness backend makes about two).
const FEWER_CALLS: f64 = 1.5;

/// How a subject's figure stands against the baseline's, judged by the runs' spread
/// (hyperfine's "times faster", or "within the noise").
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Baseline,
    /// A side had one run: no spread to judge by. `ratio` is this / baseline.
    OneRun {
        ratio: f64,
    },
    /// The ranges overlap.
    WithinNoise {
        ratio: f64,
    },
    /// The ranges are apart.
    Apart {
        ratio: f64,
    },
}

/// `s`'s figure `key` against `base`'s, when both have it.
pub fn verdict(s: &Summary, base: &Summary, key: &str) -> Option<Verdict> {
    if s.subject == base.subject {
        return Some(Verdict::Baseline);
    }
    let (a, b) = (s.figures.get(key)?, base.figures.get(key)?);
    if b.median <= 0.0 {
        return None;
    }
    let ratio = a.median / b.median;
    Some(match judged(s, base, a, b) {
        None => Verdict::OneRun { ratio },
        Some(true) => Verdict::Apart { ratio },
        Some(false) => Verdict::WithinNoise { ratio },
    })
}

/// Whether `a` (of `s`) and `b` (of `t`) are apart; None with a single run on a side.
fn judged(s: &Summary, t: &Summary, a: &Spread, b: &Spread) -> Option<bool> {
    (s.runs >= 2 && t.runs >= 2).then(|| !a.overlaps(b))
}

/// One thing the data shows, for a sentence after the table.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// The load generator used at least `percent` of its CPUs for every subject: it
    /// set the pace, so requests/s (the fastest `times` the slowest, with several
    /// subjects) says little about the servers.
    ClientSetThePace { percent: f64, times: Option<f64> },
    /// `fast` served `times` the requests/s of `slow`, beyond the runs' spread.
    Faster {
        fast: String,
        slow: String,
        times: f64,
    },
    /// Every subject's requests/s is within the others' runs' spread.
    SameSpeed,
    /// `most` handed the kernel `handed` descriptors per wakeup and scanned `scanned`
    /// to find `events` ready ones; `least`, if another subject, scanned the fewest.
    Scanned {
        most: String,
        handed: f64,
        scanned: f64,
        events: f64,
        least: Option<(String, f64)>,
    },
    /// `high` spent `times` the server CPU per request of `low`, beyond the spread.
    CostlierCpu {
        high: String,
        high_us: f64,
        low: String,
        low_us: f64,
        times: f64,
    },
    /// `low` made `low_calls` system calls per request, `high` `high_calls` (at least
    /// [`FEWER_CALLS`] times as many), beyond the spread.
    FewerCalls {
        low: String,
        low_calls: f64,
        high: String,
        high_calls: f64,
    },
    /// Nothing told the backends apart by speed, and there were few idle
    /// connections: `select_fits` idle connections keep select under its limit,
    /// `poll_shows` show poll's cost.
    TryIdle {
        select_fits: usize,
        select_limit: usize,
        poll_shows: usize,
    },
}

/// Idle connections past which poll's scan dominates (the idle-scaling experiment's
/// last point).
const POLL_SHOWS: usize = 10_000;

/// At most [`MOST`] findings, in the order a reader needs them: what set the pace,
/// what the scan cost, what the CPU and the system calls cost, what to try next.
pub fn findings(plan: &BenchPlan, summaries: &[Summary]) -> Vec<Finding> {
    let measured: Vec<&Summary> = summaries
        .iter()
        .filter(|s| s.figures.contains_key(HEADLINE))
        .collect();
    let mut out = Vec::new();
    if measured.is_empty() {
        return out;
    }
    let pace = pace(&measured);
    let told_apart = matches!(pace, Some(Finding::Faster { .. }));
    match pace {
        // One subject is the same speed as itself: nothing to say.
        Some(Finding::SameSpeed) if measured.len() == 1 => {}
        Some(pace) => out.push(pace),
        None => {}
    }
    if let Some(scan) = scanned(&measured) {
        out.push(scan);
    }
    if let Some((low, l, high, h)) = costlier(&measured, "server_cpu_us_per_request", NOTABLE) {
        out.push(Finding::CostlierCpu {
            high: high.subject.clone(),
            high_us: h,
            low: low.subject.clone(),
            low_us: l,
            times: h / l,
        });
    }
    // Only where our count sees every call: a lower bound could not be the fewest.
    let counted: Vec<&Summary> = plan
        .subjects
        .iter()
        .zip(summaries)
        .filter(|(subject, _)| match subject {
            Subject::Ours { backend, .. } => backend.counts_every_call(),
            Subject::External { .. } => true,
        })
        .map(|(_, s)| s)
        .filter(|s| measured.iter().any(|m| m.subject == s.subject))
        .collect();
    if let Some((low, l, high, h)) = costlier(&counted, "syscalls_per_request", FEWER_CALLS) {
        out.push(Finding::FewerCalls {
            low: low.subject.clone(),
            low_calls: l,
            high: high.subject.clone(),
            high_calls: h,
        });
    }
    let select = Subject::Ours {
        backend: Backend::Select,
        model: crate::server::DEFAULT_MODEL,
        threads: crate::server::DEFAULT_THREADS,
    };
    // The suggestion names select and poll: made only where one of them ran.
    let scanning = plan.subjects.iter().any(|s| {
        matches!(
            s,
            Subject::Ours {
                backend: Backend::Select | Backend::Poll,
                ..
            }
        )
    });
    if !told_apart
        && scanning
        && measured.len() > 1
        && plan.load.idle_connections < 100
        && let (Some(most), Some(limit)) = (select.most_clients(), Backend::Select.max_fd())
        && let Some(fits) = most.checked_sub(plan.load.connections)
    {
        out.push(Finding::TryIdle {
            // A round number a student can type, under the limit.
            select_fits: fits / 100 * 100,
            select_limit: limit + 1,
            poll_shows: POLL_SHOWS,
        });
    }
    // Past the most, the CPU cost goes first, then the calls, then the scan: the
    // table shows them, while what set the pace and what to try next are not in it.
    let costs: [fn(&Finding) -> bool; 3] = [
        |f| matches!(f, Finding::CostlierCpu { .. }),
        |f| matches!(f, Finding::FewerCalls { .. }),
        |f| matches!(f, Finding::Scanned { .. }),
    ];
    for cost in costs {
        if out.len() > MOST {
            out.retain(|f| !cost(f));
        }
    }
    out
}

/// Who set the pace: the client, a faster server, or nobody apart (None: a single
/// run gives no spread to tell).
fn pace(measured: &[&Summary]) -> Option<Finding> {
    let client = |s: &Summary| s.figures.get("client_cpu_percent").map(|c| c.median);
    let busiest_least = measured
        .iter()
        .map(|s| client(s).unwrap_or(0.0))
        .fold(f64::INFINITY, f64::min);
    let (slow, fast) = extremes(measured, HEADLINE)?;
    let (s, f) = (slow.figures[HEADLINE], fast.figures[HEADLINE]);
    if busiest_least.is_finite() && busiest_least > SATURATED_CLIENT_PERCENT && s.median > 0.0 {
        return Some(Finding::ClientSetThePace {
            percent: busiest_least,
            times: (measured.len() > 1).then(|| f.median / s.median),
        });
    }
    Some(match judged(slow, fast, &s, &f)? {
        true if s.median > 0.0 => Finding::Faster {
            fast: fast.subject.clone(),
            slow: slow.subject.clone(),
            times: f.median / s.median,
        },
        _ => Finding::SameSpeed,
    })
}

/// The subject that scanned the most descriptors per wakeup, when it scanned many
/// more than were ready, against the one that scanned the fewest.
fn scanned(measured: &[&Summary]) -> Option<Finding> {
    const KEY: &str = "fds_scanned_per_wakeup";
    let (least, most) = extremes(measured, KEY)?;
    let median = |s: &Summary, key| s.figures.get(key).map_or(0.0, |v| v.median);
    let (scanned, events) = (median(most, KEY), median(most, "events_per_wakeup"));
    // Scanning is the lesson when most of what was scanned was not ready.
    (scanned >= 10.0 && scanned >= 5.0 * events).then(|| Finding::Scanned {
        most: most.subject.clone(),
        handed: median(most, "fds_handed_per_wakeup"),
        scanned,
        events,
        least: (least.subject != most.subject && median(least, KEY) * 5.0 <= scanned)
            .then(|| (least.subject.clone(), median(least, KEY))),
    })
}

/// The subjects with the smallest and the largest median of `key`, with those
/// medians, when the runs set them apart and the larger is at least `ratio` times
/// the smaller.
fn costlier<'a>(
    measured: &[&'a Summary],
    key: &str,
    ratio: f64,
) -> Option<(&'a Summary, f64, &'a Summary, f64)> {
    let (low, high) = extremes(measured, key)?;
    let (l, h) = (low.figures[key], high.figures[key]);
    (judged(low, high, &l, &h) == Some(true) && l.median > 0.0 && h.median >= ratio * l.median)
        .then_some((low, l.median, high, h.median))
}

/// The subjects with the smallest and the largest median of `key`.
fn extremes<'a>(measured: &[&'a Summary], key: &str) -> Option<(&'a Summary, &'a Summary)> {
    let with: Vec<(&Summary, f64)> = measured
        .iter()
        .filter_map(|s| Some((*s, s.figures.get(key)?.median)))
        .collect();
    let low = with.iter().min_by(|a, b| a.1.total_cmp(&b.1))?.0;
    let high = with.iter().max_by(|a, b| a.1.total_cmp(&b.1))?.0;
    Some((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LoadConfig;
    use std::collections::BTreeMap;

    fn summary(name: &str, runs: usize, figures: &[(&'static str, f64, f64, f64)]) -> Summary {
        Summary {
            subject: name.to_string(),
            not_applicable: None,
            runs,
            figures: figures
                .iter()
                .map(|&(k, median, min, max)| (k, Spread { median, min, max }))
                .collect(),
            syscalls_per_request: BTreeMap::new(),
            disagreements: Vec::new(),
            warnings: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// select and epoll-et, as the summaries of most tests name them.
    fn plan(idle: usize) -> BenchPlan {
        BenchPlan {
            subjects: [Backend::Select, Backend::EpollEt]
                .map(|b| Subject::ours(b, crate::server::DEFAULT_MODEL, 1))
                .to_vec(),
            runs: 3,
            load: LoadConfig {
                idle_connections: idle,
                ..LoadConfig::DEFAULT
            },
            server_cpus: Vec::new(),
            server_args: Vec::new(),
            kernel_counts: false,
            label: None,
        }
    }

    #[test]
    fn a_saturated_client_is_said_to_set_the_pace_and_idle_is_suggested() {
        let s = [
            summary(
                "select",
                3,
                &[
                    (HEADLINE, 100.0, 90.0, 110.0),
                    ("client_cpu_percent", 99.0, 98.0, 100.0),
                ],
            ),
            summary(
                "epoll-et",
                3,
                &[
                    (HEADLINE, 120.0, 115.0, 125.0),
                    ("client_cpu_percent", 97.0, 96.0, 99.0),
                ],
            ),
        ];
        let f = findings(&plan(0), &s);
        assert_eq!(
            f[0],
            Finding::ClientSetThePace {
                percent: 97.0,
                times: Some(1.2)
            }
        );
        assert!(
            matches!(f.last(), Some(Finding::TryIdle { select_limit: 1024, select_fits, .. }) if *select_fits < 1024 - 64)
        );
        // Without select or poll, idle connections would show nothing the sentence says.
        let mut epolls = plan(0);
        epolls.subjects = [Backend::EpollLt, Backend::EpollEt]
            .map(|b| Subject::ours(b, crate::server::DEFAULT_MODEL, 1))
            .to_vec();
        let f = findings(&epolls, &s);
        assert!(
            !f.iter().any(|f| matches!(f, Finding::TryIdle { .. })),
            "{f:?}"
        );
    }

    #[test]
    fn apart_is_faster_and_overlapping_is_the_same_speed() {
        let fast = |lo| summary("poll", 3, &[(HEADLINE, 150.0, lo, 160.0)]);
        let slow = summary("select", 3, &[(HEADLINE, 100.0, 90.0, 110.0)]);
        let f = findings(&plan(1000), &[slow.clone(), fast(140.0)]);
        assert_eq!(
            f[0],
            Finding::Faster {
                fast: "poll".into(),
                slow: "select".into(),
                times: 1.5
            }
        );
        let f = findings(&plan(1000), &[slow.clone(), fast(105.0)]);
        assert_eq!(f, [Finding::SameSpeed]);
        assert_eq!(
            verdict(&fast(105.0), &slow, HEADLINE),
            Some(Verdict::WithinNoise { ratio: 1.5 })
        );
        let one = summary("poll", 1, &[(HEADLINE, 150.0, 150.0, 150.0)]);
        assert_eq!(
            verdict(&one, &slow, HEADLINE),
            Some(Verdict::OneRun { ratio: 1.5 })
        );
    }

    /// Pace, scan, CPU and what to try: one too many, and the CPU cost gives way.
    #[test]
    fn at_most_three_and_the_table_keeps_the_costs() {
        let figures = |rps, cpu, scanned| {
            vec![
                (HEADLINE, rps, rps - 1.0, rps + 1.0),
                ("server_cpu_us_per_request", cpu, cpu - 0.1, cpu + 0.1),
                ("fds_scanned_per_wakeup", scanned, scanned, scanned),
                ("events_per_wakeup", 1.0, 1.0, 1.0),
                ("client_cpu_percent", 99.0, 99.0, 99.0),
            ]
        };
        let s = [
            summary("select", 3, &figures(100.0, 9.0, 66.0)),
            summary("epoll-et", 3, &figures(101.0, 4.0, 1.0)),
        ];
        let f = findings(&plan(0), &s);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(matches!(f[0], Finding::ClientSetThePace { .. }), "{f:?}");
        assert!(matches!(f[1], Finding::Scanned { .. }), "{f:?}");
        assert!(matches!(f[2], Finding::TryIdle { .. }), "{f:?}");
    }

    /// Fewer calls is said where our count sees them all, and only there.
    #[test]
    fn a_model_with_fewer_calls_is_named() {
        let calls = |v: f64| [(HEADLINE, 1.0, 0.9, 1.1), ("syscalls_per_request", v, v, v)];
        let s = [
            summary("epoll-et", 3, &calls(2.0)),
            summary("io-uring", 3, &calls(0.3)),
            summary("polling", 3, &calls(0.1)),
        ];
        let mut p = plan(1000);
        p.subjects = [Backend::EpollEt, Backend::IoUring, Backend::Polling]
            .map(|b| Subject::ours(b, crate::server::DEFAULT_MODEL, 1))
            .to_vec();
        let f = findings(&p, &s);
        assert!(
            f.contains(&Finding::FewerCalls {
                low: "io-uring".into(),
                low_calls: 0.3,
                high: "epoll-et".into(),
                high_calls: 2.0
            }),
            "{f:?}"
        );
    }

    #[test]
    fn a_wasteful_scan_is_named_with_its_counts() {
        let s = [
            summary(
                "poll",
                1,
                &[
                    (HEADLINE, 1.0, 1.0, 1.0),
                    ("fds_scanned_per_wakeup", 2065.0, 2065.0, 2065.0),
                    ("fds_handed_per_wakeup", 2065.0, 2065.0, 2065.0),
                    ("events_per_wakeup", 1.5, 1.5, 1.5),
                ],
            ),
            summary(
                "epoll-et",
                1,
                &[
                    (HEADLINE, 1.0, 1.0, 1.0),
                    ("fds_scanned_per_wakeup", 1.4, 1.4, 1.4),
                    ("events_per_wakeup", 1.4, 1.4, 1.4),
                ],
            ),
        ];
        let f = findings(&plan(2000), &s);
        assert!(
            f.contains(&Finding::Scanned {
                most: "poll".into(),
                handed: 2065.0,
                scanned: 2065.0,
                events: 1.5,
                least: Some(("epoll-et".into(), 1.4)),
            }),
            "{f:?}"
        );
        // Scanning only what is ready is no finding.
        assert!(scanned(&[&s[1]]).is_none());
    }
}
