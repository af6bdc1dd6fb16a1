//! What `serve` reports: its own counts per thread, the kernel's per-thread context
//! switches and the process's usage, collected on request (SIGUSR1) and at exit.

use super::ServeConfig;
use crate::metrics::{Counts, ProcessUsage, ThreadStats};
use crate::protocol::Protocol;
use crate::sys::{Registry, Stat, Sys};
use serde::{Deserialize, Serialize};
use std::os::fd::AsFd;
use std::time::Instant;

/// Everything `serve` reports, as printed by `--json` (one object per line).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerStats {
    /// false for a SIGUSR1 snapshot, true for the report at exit
    #[serde(rename = "final")]
    pub is_final: bool,
    pub backend: String,
    pub trigger: String,
    pub model: String,
    pub read_strategy: String,
    pub protocol: Protocol,
    pub buffer_size: usize,
    pub max_pending: usize,
    pub elapsed_s: f64,
    pub totals: Counts,
    pub threads: Vec<ThreadStats>,
    pub process: ProcessUsage,
}

impl ServerStats {
    /// Collects everything; `sys` makes (and counts) the calls this takes.
    pub fn collect(
        cfg: &ServeConfig,
        registry: &Registry,
        started: Instant,
        moment: Moment,
        sys: &Sys,
    ) -> ServerStats {
        let threads = registry.snapshot();
        let process = ProcessUsage::now(sys);
        let opts = &cfg.loop_options;
        ServerStats {
            is_final: moment == Moment::Final,
            backend: cfg.backend.name().to_string(),
            trigger: cfg.backend.trigger().name().to_string(),
            model: cfg.model.name().to_string(),
            read_strategy: opts.read_strategy.name().to_string(),
            protocol: opts.protocol,
            buffer_size: opts.buffer_size,
            max_pending: opts.max_pending,
            elapsed_s: started.elapsed().as_secs_f64(),
            totals: Counts::from_threads(&threads),
            threads: threads
                .iter()
                .map(|t| {
                    let (voluntary_cs, involuntary_cs) = t
                        .switches_at_exit
                        .unwrap_or_else(|| thread_switches(sys, t.tid));
                    ThreadStats {
                        thread: t.thread.clone(),
                        counts: Counts::from_threads([t]),
                        voluntary_cs,
                        involuntary_cs,
                        connections: t.stat(Stat::Accepted),
                    }
                })
                .collect(),
            process,
        }
    }
}

/// Context switches of one of our running threads, from /proc (zeros for one that
/// never ran).
fn thread_switches(sys: &Sys, tid: i32) -> (u64, u64) {
    if tid == 0 {
        return (0, 0);
    }
    let status = sys
        .read_file(&format!("/proc/self/task/{tid}/status"))
        .unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

/// How long a report waits for room on standard output before it is given up.
const REPORT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// When statistics are taken.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// On SIGUSR1, while serving.
    Snapshot,
    /// At exit.
    Final,
}

/// Turns the statistics into what is printed: chosen by the caller (a table, a JSON
/// line), since the server measures and never formats.
pub type Render = fn(&ServerStats) -> String;

/// Prints statistics with the caller's renderer; shared by SIGUSR1 snapshots and the
/// final report.
#[derive(Clone)]
pub struct Reporter {
    pub cfg: ServeConfig,
    pub registry: Registry,
    pub started: Instant,
    pub render: Render,
}

impl Reporter {
    pub fn print(&self, sys: &Sys, moment: Moment) {
        let stats = ServerStats::collect(&self.cfg, &self.registry, self.started, moment, sys);
        let text = (self.render)(&stats);
        // Through the counting layer, so that our count of writes matches the
        // kernel's (/proc/PID/io) even for the report itself.
        let stdout = std::io::stdout();
        let _lock = stdout.lock();
        // A full stdout that nobody reads must not hold up SIGTERM (the control
        // thread prints snapshots) or the exit; a closed one leaves nobody to tell.
        let deadline = Instant::now() + REPORT_PATIENCE;
        if let Err(e) = sys.write_all_by(stdout.as_fd(), text.as_bytes(), deadline) {
            super::log_once(
                "stdout",
                &format!("statistics not written to standard output: {e}"),
            );
        }
    }
}
