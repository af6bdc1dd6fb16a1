//! What the kernel says about each thread of another process (/proc/PID/task/TID):
//! its name, CPU time and context switches, so that a table can set a real server's
//! listener beside its workers, or Redis's main thread beside its I/O threads.

use super::kernel::{field, threads};
use serde::{Deserialize, Serialize};
use std::fs;

/// One thread at a moment, or over a window ([`window`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskSample {
    pub tid: i32,
    /// Its name (/proc/PID/task/TID/comm), e.g. `mc-worker`, `io_thd_1`.
    pub name: String,
    /// Time on a CPU, from the scheduler's nanosecond accounting (schedstat).
    pub cpu_s: f64,
    pub voluntary_cs: u64,
    pub involuntary_cs: u64,
    /// System calls (the raw_syscalls:sys_enter tracepoint on this thread), with
    /// `--kernel-counts`.
    pub syscalls: Option<u64>,
}

impl TaskSample {
    /// Every thread of `pid` now, the main one first; a thread that ends while it
    /// is read is left out.
    pub fn read_all(pid: i32) -> anyhow::Result<Vec<TaskSample>> {
        let mut tids = threads(pid)?;
        tids.sort_unstable();
        Ok(tids.into_iter().filter_map(|tid| read(pid, tid)).collect())
    }
}

fn read(pid: i32, tid: i32) -> Option<TaskSample> {
    let dir = format!("/proc/{pid}/task/{tid}");
    let status = fs::read_to_string(format!("{dir}/status")).ok()?;
    // schedstat: time on the CPU (ns), time waiting for it (ns), timeslices.
    let cpu_ns: u64 = fs::read_to_string(format!("{dir}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(TaskSample {
        tid,
        name: fs::read_to_string(format!("{dir}/comm"))
            .ok()?
            .trim()
            .to_string(),
        cpu_s: cpu_ns as f64 / 1e9,
        voluntary_cs: field(&status, "voluntary_ctxt_switches:")?,
        involuntary_cs: field(&status, "nonvoluntary_ctxt_switches:")?,
        syscalls: None,
    })
}

/// Each thread's change from `start` to `end`, matched by TID; a thread that began
/// in the window counts from zero, one that ended in it is not there.
pub fn window(end: &[TaskSample], start: &[TaskSample]) -> Vec<TaskSample> {
    let zero = TaskSample::default();
    end.iter()
        .map(|e| {
            let s = start.iter().find(|s| s.tid == e.tid).unwrap_or(&zero);
            TaskSample {
                tid: e.tid,
                name: e.name.clone(),
                cpu_s: e.cpu_s - s.cpu_s,
                voluntary_cs: e.voluntary_cs.saturating_sub(s.voluntary_cs),
                involuntary_cs: e.involuntary_cs.saturating_sub(s.involuntary_cs),
                syscalls: e
                    .syscalls
                    .map(|n| n.saturating_sub(s.syscalls.unwrap_or(0))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test's own process: its threads are listed, named, and a thread that
    /// started and worked after the first reading shows CPU time in the window.
    #[test]
    fn threads_of_a_process_are_read_and_windowed() {
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
        let pid = std::process::id() as i32;
        let spins = std::sync::Arc::new(AtomicU64::new(0));
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let before = TaskSample::read_all(pid).unwrap();
        let spin = {
            let spins = spins.clone();
            std::thread::Builder::new()
                .name("spinner".into())
                .spawn(move || {
                    for _ in 0..100_000 {
                        spins.fetch_add(1, Relaxed);
                    }
                    // Alive until read.
                    let _ = wait.recv();
                })
                .unwrap()
        };
        while spins.load(Relaxed) < 100_000 {
            std::thread::yield_now();
        }
        let after = TaskSample::read_all(pid).unwrap();
        done.send(()).unwrap();
        spin.join().unwrap();
        assert_eq!(after[0].tid, pid, "the main thread first: {after:?}");
        let w = window(&after, &before);
        let spinner = w.iter().find(|t| t.name == "spinner").expect("listed");
        assert!(!before.iter().any(|t| t.tid == spinner.tid));
        assert!(spinner.cpu_s > 0.0, "{spinner:?}");
        assert!(w.iter().all(|t| t.cpu_s >= 0.0), "{w:?}");
    }
}
