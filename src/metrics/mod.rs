//! Measured figures as plain data: what a server counted, and what the kernel says
//! about the process.
//!
//! Layer: above `backend` and `sys`; plain data, measured, never formatted.

mod figure;
mod kernel;
mod machine;
mod process;
mod tasks;

pub use figure::{Figure, Spread, spreads};
pub use kernel::{CallCounter, PerfCounters, PerfSample, ProcSample};
pub use machine::Machine;
pub use process::ProcessUsage;
pub use tasks::{TaskSample, window as task_window};

use crate::sys::{Call, RingOp, Stat, ThreadCounts};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counts of one thread, or of all threads added up, by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    /// System calls by kind (only kinds that were made).
    pub syscalls: BTreeMap<String, u64>,
    pub syscalls_total: u64,
    /// Event-loop and connection counters: waits, wakeups, events, fds_handed,
    /// fds_scanned, accepted, closed, refused_*, resets, bytes_in, bytes_out, ...
    pub counters: BTreeMap<String, u64>,
    /// io_uring operations submitted, and completions reaped, by kind ([`RingOp`];
    /// only kinds there were).
    pub ring_submitted: BTreeMap<String, u64>,
    pub ring_completed: BTreeMap<String, u64>,
}

impl Counts {
    pub fn from_threads<'a>(threads: impl IntoIterator<Item = &'a ThreadCounts>) -> Counts {
        let mut counts = Counts::default();
        for t in threads {
            for &call in Call::ALL {
                let n = t.call(call);
                if n > 0 {
                    *counts.syscalls.entry(call.name().to_string()).or_default() += n;
                }
            }
            counts.syscalls_total += t.total_calls();
            for &stat in Stat::ALL {
                *counts.counters.entry(stat.name().to_string()).or_default() += t.stat(stat);
            }
            for (i, &op) in RingOp::ALL.iter().enumerate() {
                for (map, n) in [
                    (&mut counts.ring_submitted, t.submitted[i]),
                    (&mut counts.ring_completed, t.completed[i]),
                ] {
                    if n > 0 {
                        *map.entry(op.name().to_string()).or_default() += n;
                    }
                }
            }
        }
        counts
    }

    pub fn counter(&self, stat: Stat) -> u64 {
        self.counters.get(stat.name()).copied().unwrap_or(0)
    }

    /// The change from `earlier` to `self`: the figures of a measured window.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let sub = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(k, v)| (k.clone(), v - then.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect()
        };
        Counts {
            syscalls: sub(&self.syscalls, &earlier.syscalls),
            syscalls_total: self.syscalls_total - earlier.syscalls_total,
            counters: sub(&self.counters, &earlier.counters),
            ring_submitted: sub(&self.ring_submitted, &earlier.ring_submitted),
            ring_completed: sub(&self.ring_completed, &earlier.ring_completed),
        }
    }

    /// io_uring operations of kind `op` submitted.
    pub fn submitted(&self, op: RingOp) -> u64 {
        self.ring_submitted.get(op.name()).copied().unwrap_or(0)
    }

    /// io_uring completions of kind `op` reaped.
    pub fn completed(&self, op: RingOp) -> u64 {
        self.ring_completed.get(op.name()).copied().unwrap_or(0)
    }

    /// io_uring operations submitted, all kinds.
    pub fn ring_submitted_total(&self) -> u64 {
        self.ring_submitted.values().sum()
    }

    /// io_uring completions reaped, all kinds.
    pub fn ring_completed_total(&self) -> u64 {
        self.ring_completed.values().sum()
    }

    /// `stat` per wakeup (a wait that returned at least one event).
    pub fn per_wakeup(&self, stat: Stat) -> f64 {
        ratio(self.counter(stat), self.counter(Stat::Wakeups))
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ThreadStats {
    pub thread: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// The kernel's count for this thread (/proc/self/task/TID/status).
    pub voluntary_cs: u64,
    pub involuntary_cs: u64,
    /// Connections this thread took on over its whole life.
    pub connections: u64,
}

impl ThreadStats {
    /// The change from `earlier` (the same thread) to `self`.
    pub fn since(&self, earlier: &ThreadStats) -> ThreadStats {
        ThreadStats {
            thread: self.thread.clone(),
            counts: self.counts.since(&earlier.counts),
            voluntary_cs: self.voluntary_cs - earlier.voluntary_cs,
            involuntary_cs: self.involuntary_cs - earlier.involuntary_cs,
            connections: self.connections,
        }
    }
}
