//! What a reader must know before trusting a bench's numbers: a client that may have
//! set the pace, runs far apart, our counts against the kernel's. Found here, as
//! data; `report` words them (its `warnings` module), like hyperfine's warnings.

use super::{Subject, SubjectRuns, Summary};
use crate::backend::Backend;
use crate::load::LoadReport;
use crate::metrics::Spread;
use serde::Serialize;
use std::collections::BTreeMap;

/// Above this share of its CPUs (median over runs), the load generator may have been
/// the bottleneck.
pub const SATURATED_CLIENT_PERCENT: f64 = 90.0;

/// An open loop that achieved less than this share of the rate it asked for did not
/// keep it (wrk2's users look for the same).
pub const RATE_KEPT: f64 = 0.95;

/// Below this many clock ticks of server CPU in a window, its user/kernel split is
/// said to be rough (each tick is 10 ms on most kernels).
pub const SPLIT_TICKS: u64 = 100;

/// Our count and the kernel's agree when they differ by at most this share.
pub const COUNTS_AGREE_WITHIN: f64 = 0.01;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum Warning {
    /// The load generator used over [`SATURATED_CLIENT_PERCENT`] of its CPUs while
    /// measuring these subjects: its pace, not the server's, may have set requests/s.
    SaturatedClient {
        subjects: Vec<String>,
    },
    /// Our count and the kernel's disagree for a backend that makes system calls of
    /// its own, which our counting layer cannot see ([`Backend::counts_every_call`]).
    UncountedCalls {
        backend: Backend,
    },
    /// requests/s varied between runs by `relative_range` of its median.
    RunsVaried {
        subject: String,
        relative_range: f64,
        min: f64,
        max: f64,
    },
    /// The hypervisor gave up to `max_percent` of the machine's CPU time to other
    /// guests during a run.
    Steal {
        subject: String,
        max_percent: f64,
    },
    /// The echo came back wrong in a run (`run` counts from 0).
    EchoErrors {
        subject: String,
        run: usize,
        mismatched_bytes: u64,
        lost_bytes: u64,
        unexpected_closes: u64,
    },
    /// An open loop achieved less than [`RATE_KEPT`] of its requested rate: the
    /// connections could not carry it (`missed` requests were not even sent).
    RateNotKept {
        subject: String,
        run: usize,
        shortfall: Shortfall,
    },
    /// The user/kernel split of the server's CPU time rests on `ticks` clock ticks
    /// in a run's window (fewer than [`SPLIT_TICKS`]): a rough share only.
    CoarseCpuSplit {
        subject: String,
        ticks: u64,
        tick_ms: f64,
    },
    /// Kernel counts were asked for and refused.
    NoKernelCount {
        subject: String,
        reason: String,
    },
    Disagreement(Disagreement),
    /// Whether a transfer's file was in the page cache, as the transfer says.
    PageCache {
        state: String,
    },
}

/// Our count against the kernel's, or the client's bytes against the server's, in
/// one run (`run` counts from 0).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Disagreement {
    pub subject: String,
    pub run: usize,
    pub about: Disagreed,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disagreed {
    /// The bytes of echo the client completed, against those the server wrote.
    EchoedBytes { client: u64, server: u64 },
    /// Our count of some calls against the kernel's, further apart than
    /// [`COUNTS_AGREE_WITHIN`].
    Calls {
        count: KernelCount,
        ours: u64,
        kernel: u64,
    },
}

/// The kernel's counts that ours are checked against.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelCount {
    /// read calls: /proc/PID/io's syscr.
    Reads,
    /// write calls: /proc/PID/io's syscw.
    Writes,
    /// every system call: the raw_syscalls:sys_enter tracepoint.
    All,
    /// io_uring operations submitted: the io_uring:io_uring_submit_req tracepoint
    /// (io_uring_submit_sqe before Linux 5.19).
    RingSubmitted,
    /// io_uring completions: the io_uring:io_uring_complete tracepoint.
    RingCompleted,
}

/// When the load generator was the bottleneck, say so: its pace, not the server's,
/// then set requests/s.
pub fn saturated_client(summaries: &[Summary]) -> Option<Warning> {
    let subjects: Vec<String> = summaries
        .iter()
        .filter(|s| {
            s.figures
                .get("client_cpu_percent")
                .is_some_and(|c| c.median > SATURATED_CLIENT_PERCENT)
        })
        .map(|s| s.subject.clone())
        .collect();
    (!subjects.is_empty()).then_some(Warning::SaturatedClient { subjects })
}

/// Why our count and the kernel's differ, for each backend whose own calls our
/// layer cannot see and whose counts disagreed.
pub fn uncounted_calls(subjects: &[Subject], summaries: &[Summary]) -> Vec<Warning> {
    let mut backends: Vec<Backend> = Vec::new();
    for summary in summaries.iter().filter(|s| !s.disagreements.is_empty()) {
        let backend = subjects.iter().find_map(|s| match s {
            Subject::Ours { backend, .. } if s.name() == summary.subject => Some(*backend),
            _ => None,
        });
        if let Some(b) = backend
            && !b.counts_every_call()
            && !backends.contains(&b)
        {
            backends.push(b);
        }
    }
    backends
        .into_iter()
        .map(|backend| Warning::UncountedCalls { backend })
        .collect()
}

/// Every run's counts checked: ours against the kernel's, the client's bytes
/// against the server's. Only for our own server, which keeps counts.
pub(super) fn disagreements(s: &SubjectRuns) -> Vec<Disagreement> {
    let mut out = Vec::new();
    for r in &s.runs {
        let (Some(own), Some(written)) = (&r.server.own, r.server.lifetime_bytes_out) else {
            continue;
        };
        let mut disagree = |about| {
            out.push(Disagreement {
                subject: s.subject.clone(),
                run: r.run,
                about,
            })
        };
        let client = r.load.bytes_in;
        if client != written {
            disagree(Disagreed::EchoedBytes {
                client,
                server: written,
            });
        }
        let ours = |call: &str| own.syscalls.get(call).copied().unwrap_or(0);
        let mut counts = vec![
            (KernelCount::Reads, ours("read"), r.server.proc.syscr),
            (KernelCount::Writes, ours("write"), r.server.proc.syscw),
        ];
        if let Some(perf) = r.server.perf {
            counts.push((KernelCount::All, own.syscalls_total, perf.syscalls));
            let ring = [
                (
                    KernelCount::RingSubmitted,
                    own.ring_submitted_total(),
                    perf.ring_submitted,
                ),
                (
                    KernelCount::RingCompleted,
                    own.ring_completed_total(),
                    perf.ring_completed,
                ),
            ];
            // A loop without a ring: nothing to compare.
            counts.extend(
                ring.into_iter()
                    .filter(|&(_, ours, kernel)| ours + kernel > 0),
            );
        }
        for (count, ours, kernel) in counts {
            if ours.abs_diff(kernel) as f64 / kernel.max(1) as f64 > COUNTS_AGREE_WITHIN {
                disagree(Disagreed::Calls {
                    count,
                    ours,
                    kernel,
                });
            }
        }
    }
    out
}

/// A subject's measurement warnings: runs far apart, steal, echo errors, kernel
/// counts refused.
pub(super) fn warnings(s: &SubjectRuns, figures: &BTreeMap<&str, Spread>) -> Vec<Warning> {
    let mut out = Vec::new();
    let subject = || s.subject.clone();
    if let Some(rps) = figures.get("requests_per_s")
        && s.runs.len() > 1
        && rps.relative_range() > 0.25
    {
        out.push(Warning::RunsVaried {
            subject: subject(),
            relative_range: rps.relative_range(),
            min: rps.min,
            max: rps.max,
        });
    }
    if let Some(steal) = figures.get("steal_percent")
        && steal.max > 5.0
    {
        out.push(Warning::Steal {
            subject: subject(),
            max_percent: steal.max,
        });
    }
    let tick = crate::metrics::ProcSample::tick_s();
    let fewest = s
        .runs
        .iter()
        .map(|r| ((r.server.proc.user_s + r.server.proc.sys_s) / tick).round() as u64)
        .min();
    if let Some(ticks) = fewest.filter(|&t| t < SPLIT_TICKS) {
        out.push(Warning::CoarseCpuSplit {
            subject: subject(),
            ticks,
            tick_ms: tick * 1e3,
        });
    }
    for r in &s.runs {
        if r.load.errors() > 0 {
            out.push(Warning::EchoErrors {
                subject: subject(),
                run: r.run,
                mismatched_bytes: r.load.mismatched_bytes,
                lost_bytes: r.load.lost_bytes,
                unexpected_closes: r.load.unexpected_closes,
            });
        }
        if let Some(shortfall) = Shortfall::of(&r.load) {
            out.push(Warning::RateNotKept {
                subject: subject(),
                run: r.run,
                shortfall,
            });
        }
        if let Some(reason) = &r.server.perf_unavailable {
            out.push(Warning::NoKernelCount {
                subject: subject(),
                reason: reason.clone(),
            });
        }
    }
    // The same refusal comes with every run: once is enough.
    out.dedup();
    out
}

/// How far an open loop fell short of the rate it asked for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shortfall {
    pub achieved: f64,
    pub requested: f64,
    /// Requests that could not even be sent.
    pub missed: u64,
}

impl Shortfall {
    /// The shortfall of an open-loop run below [`RATE_KEPT`] of its rate, if any.
    pub fn of(load: &LoadReport) -> Option<Shortfall> {
        let requested = load.requested_rate?;
        (load.requests_per_s < RATE_KEPT * requested).then_some(Shortfall {
            achieved: load.requests_per_s,
            requested,
            missed: load.missed,
        })
    }
}
