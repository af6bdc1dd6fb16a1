//! The figures a bench reports, defined once: every table, CSV and Markdown export
//! iterates over [`FIGURES`]. Per-request figures divide by the requests the client
//! completed in the measured window.

use super::warning::{Disagreement, Warning, disagreements, warnings};
use super::{RunResult, SubjectRuns};
#[cfg(doc)]
use crate::backend::Backend;
use crate::metrics::{Counts, Figure, PerfSample, Spread, spreads};
use crate::sys::{Call, RingOp, Stat};
use serde::Serialize;
use std::collections::BTreeMap;

/// A figure only an open loop has (a closed loop's latency is its round trip).
fn open_loop(r: &RunResult, x: f64) -> Option<f64> {
    r.load.requested_rate.map(|_| x)
}

fn per_request(r: &RunResult, x: f64) -> Option<f64> {
    (r.load.requests > 0).then(|| x / r.load.requests as f64)
}

fn per_wakeup(r: &RunResult, stat: Stat) -> Option<f64> {
    let own = r.server.own.as_ref()?;
    let wakeups = own.counter(Stat::Wakeups);
    (wakeups > 0).then(|| own.counter(stat) as f64 / wakeups as f64)
}

/// Our count of `call` per request (None for an external server).
fn own_calls(r: &RunResult, call: Call) -> Option<f64> {
    let own = r.server.own.as_ref()?;
    per_request(
        r,
        own.syscalls.get(call.name()).copied().unwrap_or(0) as f64,
    )
}

/// Our count of all system calls (None for an external server).
fn own_total(r: &RunResult) -> Option<f64> {
    Some(r.server.own.as_ref()?.syscalls_total as f64)
}

/// Our count of io_uring operations (`count` of the window's counts) per request;
/// None for a loop that uses no ring, rather than a row of zeros.
fn ring_ops(r: &RunResult, count: fn(&Counts) -> u64) -> Option<f64> {
    let own = r.server.own.as_ref()?;
    if own.ring_submitted_total() == 0 && own.ring_completed_total() == 0 {
        return None;
    }
    per_request(r, count(own) as f64)
}

/// One kind's share of a ring figure, as a row under it: `of_which!(key, label,
/// submitted or completed, the RingOp)`.
macro_rules! of_which {
    ($key:literal, $kind:literal, $side:ident, $op:ident) => {
        Figure {
            key: $key,
            label: concat!("  of which ", $kind),
            decimals: 3,
            value: |r| ring_ops(r, |c| c.$side(RingOp::$op)),
        }
    };
}

/// The kernel's count of io_uring operations per request, with `--kernel-counts`;
/// None where neither the kernel nor we saw a ring at work.
fn kernel_ring_ops(r: &RunResult, count: fn(&PerfSample) -> u64) -> Option<f64> {
    let kernel = count(&r.server.perf?);
    let ours = r
        .server
        .own
        .as_ref()
        .map_or(0, Counts::ring_submitted_total);
    if kernel == 0 && ours == 0 {
        return None;
    }
    per_request(r, kernel as f64)
}

/// The figures that are our own count of system calls: for a backend that makes
/// calls we cannot see ([`Backend::counts_every_call`]), only a lower bound.
pub const OUR_CALL_COUNTS: &[&str] = &[
    "syscalls_per_request",
    "reads_per_request",
    "writes_per_request",
    "mode_switches_per_request",
];

pub const FIGURES: &[Figure<RunResult>] = &[
    Figure {
        key: "requests_per_s",
        label: "requests/s",
        decimals: 0,
        value: |r| Some(r.load.requests_per_s),
    },
    Figure {
        key: "p50_us",
        label: "latency p50 (us)",
        decimals: 1,
        value: |r| Some(r.load.latency.p50),
    },
    Figure {
        key: "p99_us",
        label: "latency p99 (us)",
        decimals: 1,
        value: |r| Some(r.load.latency.p99),
    },
    Figure {
        key: "p999_us",
        label: "latency p99.9 (us)",
        decimals: 1,
        value: |r| Some(r.load.latency.p999),
    },
    Figure {
        key: "p99_uncorrected_us",
        label: "open loop: p99 from actual send (us)",
        decimals: 1,
        value: |r| open_loop(r, r.load.uncorrected.p99),
    },
    Figure {
        key: "send_lag_p99_us",
        label: "open loop: send lag p99, generator (us)",
        decimals: 1,
        value: |r| open_loop(r, r.load.send_lag.p99),
    },
    Figure {
        key: "backpressure_p99_us",
        label: "open loop: send lag p99, waiting for the connection (us)",
        decimals: 1,
        value: |r| open_loop(r, r.load.backpressure.p99),
    },
    Figure {
        key: "server_cpu_us_per_request",
        label: "server CPU us/request (user+sys)",
        decimals: 2,
        value: |r| per_request(r, r.server.proc.cpu_s * 1e6),
    },
    Figure {
        key: "server_sys_us_per_request",
        label: "  of which in the kernel (sys)",
        decimals: 2,
        // The tick-counted split applied to the nanosecond total: never more than it.
        value: |r| {
            let p = &r.server.proc;
            let ticked = p.user_s + p.sys_s;
            if ticked > 0.0 {
                per_request(r, p.cpu_s * p.sys_s / ticked * 1e6)
            } else {
                None
            }
        },
    },
    Figure {
        key: "syscalls_per_request",
        label: "system calls/request (our count)",
        decimals: 3,
        value: |r| per_request(r, own_total(r)?),
    },
    Figure {
        key: "kernel_syscalls_per_request",
        label: "system calls/request (kernel: tracepoint)",
        decimals: 3,
        value: |r| per_request(r, r.server.perf?.syscalls as f64),
    },
    Figure {
        key: "reads_per_request",
        label: "read calls/request (our count)",
        decimals: 3,
        value: |r| own_calls(r, Call::Read),
    },
    Figure {
        key: "kernel_reads_per_request",
        label: "read calls/request (kernel: /proc syscr)",
        decimals: 3,
        value: |r| per_request(r, r.server.proc.syscr as f64),
    },
    Figure {
        key: "writes_per_request",
        label: "write calls/request (our count)",
        decimals: 3,
        value: |r| own_calls(r, Call::Write),
    },
    Figure {
        key: "kernel_writes_per_request",
        label: "write calls/request (kernel: /proc syscw)",
        decimals: 3,
        value: |r| per_request(r, r.server.proc.syscw as f64),
    },
    Figure {
        key: "mode_switches_per_request",
        label: "user/kernel mode switches/request (2 per call, ours)",
        decimals: 2,
        value: |r| per_request(r, 2.0 * own_total(r)?),
    },
    Figure {
        key: "ring_ops_per_request",
        label: "io_uring operations submitted/request (our count)",
        decimals: 3,
        value: |r| ring_ops(r, Counts::ring_submitted_total),
    },
    of_which!(
        "ring_accept_submitted_per_request",
        "accept",
        submitted,
        Accept
    ),
    of_which!("ring_recv_submitted_per_request", "recv", submitted, Recv),
    of_which!("ring_send_submitted_per_request", "send", submitted, Send),
    of_which!(
        "ring_cancel_submitted_per_request",
        "cancel",
        submitted,
        Cancel
    ),
    of_which!("ring_poll_submitted_per_request", "poll", submitted, Poll),
    Figure {
        key: "kernel_ring_ops_per_request",
        label: "io_uring operations submitted/request (kernel: tracepoint)",
        decimals: 3,
        value: |r| kernel_ring_ops(r, |p| p.ring_submitted),
    },
    Figure {
        key: "ring_completions_per_request",
        label: "io_uring completions/request (our count)",
        decimals: 3,
        value: |r| ring_ops(r, Counts::ring_completed_total),
    },
    of_which!(
        "ring_accept_completions_per_request",
        "accept",
        completed,
        Accept
    ),
    of_which!("ring_recv_completions_per_request", "recv", completed, Recv),
    of_which!("ring_send_completions_per_request", "send", completed, Send),
    of_which!(
        "ring_cancel_completions_per_request",
        "cancel",
        completed,
        Cancel
    ),
    of_which!("ring_poll_completions_per_request", "poll", completed, Poll),
    Figure {
        key: "kernel_ring_completions_per_request",
        label: "io_uring completions/request (kernel: tracepoint)",
        decimals: 3,
        value: |r| kernel_ring_ops(r, |p| p.ring_completed),
    },
    Figure {
        key: "wakeups_per_request",
        label: "wakeups/request",
        decimals: 3,
        value: |r| per_request(r, r.server.own.as_ref()?.counter(Stat::Wakeups) as f64),
    },
    Figure {
        key: "events_per_wakeup",
        label: "events/wakeup",
        decimals: 1,
        value: |r| per_wakeup(r, Stat::Events),
    },
    Figure {
        key: "fds_handed_per_wakeup",
        label: "fds handed to the kernel/wakeup",
        decimals: 1,
        value: |r| per_wakeup(r, Stat::Handed),
    },
    Figure {
        key: "fds_scanned_per_wakeup",
        label: "fds scanned by us/wakeup",
        decimals: 1,
        value: |r| per_wakeup(r, Stat::Scanned),
    },
    Figure {
        key: "voluntary_cs_per_request",
        label: "voluntary context switches/request",
        decimals: 4,
        value: |r| per_request(r, r.server.proc.voluntary_cs as f64),
    },
    Figure {
        key: "involuntary_cs_per_request",
        label: "involuntary context switches/request",
        decimals: 4,
        value: |r| per_request(r, r.server.proc.involuntary_cs as f64),
    },
    Figure {
        key: "context_switches_per_request",
        label: "context switches/request (voluntary + involuntary)",
        decimals: 4,
        value: |r| {
            let p = &r.server.proc;
            per_request(r, (p.voluntary_cs + p.involuntary_cs) as f64)
        },
    },
    Figure {
        key: "kernel_cs_per_request",
        label: "context switches/request (kernel: perf)",
        decimals: 4,
        value: |r| per_request(r, r.server.perf?.context_switches as f64),
    },
    Figure {
        key: "client_cpu_us_per_request",
        label: "client CPU us/request",
        decimals: 2,
        value: |r| Some(r.load.client_cpu_us_per_request),
    },
    Figure {
        key: "client_cpu_percent",
        label: "client CPU use (% of its CPUs)",
        decimals: 0,
        value: |r| Some(r.load.client_cpu_share * 100.0),
    },
    Figure {
        key: "steal_percent",
        label: "hypervisor steal, whole machine (%)",
        decimals: 1,
        value: |r| {
            let p = &r.server.proc;
            (p.machine_ticks > 0).then(|| p.steal_ticks as f64 / p.machine_ticks as f64 * 100.0)
        },
    },
    Figure {
        key: "server_peak_rss_kib",
        label: "server peak RSS (KiB)",
        decimals: 0,
        value: |r| Some(r.server.proc.peak_rss_kib as f64),
    },
];

/// One subject's figures over its runs.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub subject: String,
    pub not_applicable: Option<String>,
    pub runs: usize,
    /// By figure key.
    pub figures: BTreeMap<&'static str, Spread>,
    /// System calls per request by kind (our count), medians over runs.
    pub syscalls_per_request: BTreeMap<String, f64>,
    /// Where our count and the kernel's disagree, or the client's bytes and the
    /// server's.
    pub disagreements: Vec<Disagreement>,
    /// Measurement warnings: runs far apart, steal, echo errors.
    pub warnings: Vec<Warning>,
    /// Runs that failed, with what went wrong.
    pub failures: Vec<String>,
}

pub fn summarise(all: &[SubjectRuns]) -> Vec<Summary> {
    all.iter().map(summarise_one).collect()
}

fn summarise_one(s: &SubjectRuns) -> Summary {
    let figures = spreads(FIGURES, &s.runs);
    Summary {
        subject: s.subject.clone(),
        not_applicable: s.not_applicable.clone(),
        runs: s.runs.len(),
        warnings: warnings(s, &figures),
        figures,
        syscalls_per_request: syscalls_per_request(s),
        disagreements: disagreements(s),
        failures: s.failures.clone(),
    }
}

/// Each kind of system call per request (our count), medians over the runs.
fn syscalls_per_request(s: &SubjectRuns) -> BTreeMap<String, f64> {
    let mut kinds: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in &s.runs {
        for (kind, n) in r.server.own.iter().flat_map(|own| &own.syscalls) {
            if let Some(v) = per_request(r, *n as f64) {
                kinds.entry(kind.clone()).or_default().push(v);
            }
        }
    }
    kinds
        .into_iter()
        .filter_map(|(k, v)| Some((k, Spread::of(v)?.median)))
        .collect()
}
