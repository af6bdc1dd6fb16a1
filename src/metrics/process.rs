//! What the kernel says about this process as a whole (all threads): CPU time,
//! context switches (the scheduler changing threads, not user/kernel mode switches)
//! and memory.

use crate::sys::Sys;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProcessUsage {
    pub user_s: f64,
    pub sys_s: f64,
    /// The process gave up the CPU (it blocked, e.g. in a wait).
    pub voluntary_cs: u64,
    /// The scheduler took the CPU away (time slice over, preempted).
    pub involuntary_cs: u64,
    pub max_rss_kib: u64,
    pub rss_kib: u64,
}

impl ProcessUsage {
    /// getrusage(RUSAGE_SELF) plus the current resident set from /proc/self/status,
    /// through `sys` so that these calls are counted too.
    pub fn now(sys: &Sys) -> ProcessUsage {
        let Ok(ru) = sys.getrusage() else {
            return ProcessUsage::default();
        };
        let secs = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        ProcessUsage {
            user_s: secs(ru.user_time()),
            sys_s: secs(ru.system_time()),
            voluntary_cs: ru.voluntary_context_switches() as u64,
            involuntary_cs: ru.involuntary_context_switches() as u64,
            max_rss_kib: ru.max_rss() as u64,
            rss_kib: current_rss_kib(sys).unwrap_or(0),
        }
    }
}

fn current_rss_kib(sys: &Sys) -> Option<u64> {
    let status = sys.read_file("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
