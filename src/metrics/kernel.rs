//! What the kernel says about another process, for a measured window: /proc (free,
//! always), and with `--kernel-counts` perf_event_open counters on every thread: all
//! system calls (the raw_syscalls:sys_enter tracepoint), io_uring requests submitted
//! and completions posted (the io_uring tracepoints), and context switches.

use anyhow::{Context, Result, anyhow, bail};
use perf_event::events::{Software, Tracepoint};
use perf_event::{Builder, Counter};
use serde::{Deserialize, Serialize};
use std::fs;

/// A reading of /proc/PID for the whole process (all threads).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct ProcSample {
    /// CPU time of every thread, from the scheduler's nanosecond accounting
    /// (/proc/PID/task/*/schedstat): the figure to divide by requests.
    pub cpu_s: f64,
    /// The same split into user and kernel time (/proc/PID/stat): counted in clock
    /// ticks ([`ProcSample::TICK_S`] each), so only as fine as that.
    pub user_s: f64,
    pub sys_s: f64,
    pub voluntary_cs: u64,
    pub involuntary_cs: u64,
    /// read-family system calls (/proc/PID/io syscr)
    pub syscr: u64,
    /// write-family system calls (/proc/PID/io syscw)
    pub syscw: u64,
    pub peak_rss_kib: u64,
    pub rss_kib: u64,
    /// The whole machine's CPU time (/proc/stat, all CPUs, in ticks) and the part of
    /// it the hypervisor gave to other guests (steal): on a VM, a run with much steal
    /// is a slow run whatever the code did.
    pub machine_ticks: u64,
    pub steal_ticks: u64,
}

impl ProcSample {
    /// One clock tick, the resolution of `user_s` and `sys_s`.
    pub fn tick_s() -> f64 {
        1.0 / clock_ticks_per_second()
    }

    pub fn read(pid: i32) -> Result<ProcSample> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("process {pid} is gone"))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| -> Result<f64> {
            let v: f64 = fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))?;
            Ok(v / clock_ticks_per_second())
        };
        let mut s = ProcSample {
            // utime and stime are the 14th and 15th fields; 12th and 13th after ')'.
            user_s: ticks(11)?,
            sys_s: ticks(12)?,
            ..ProcSample::default()
        };
        (s.syscr, s.syscw) = Self::read_io(pid)?;
        (s.machine_ticks, s.steal_ticks) = machine_ticks()?;
        let status = fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        s.peak_rss_kib = field(&status, "VmHWM:").unwrap_or(0);
        s.rss_kib = field(&status, "VmRSS:").unwrap_or(0);
        // Context switches and scheduler time are per thread: add up every task.
        for tid in threads(pid)? {
            if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")) {
                s.voluntary_cs += field(&status, "voluntary_ctxt_switches:").unwrap_or(0);
                s.involuntary_cs += field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
            }
            // schedstat: time on the CPU (ns), time waiting for it (ns), timeslices.
            if let Ok(schedstat) = fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat"))
                && let Some(ns) = schedstat
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            {
                s.cpu_s += ns as f64 / 1e9;
            }
        }
        Ok(s)
    }

    /// Read and write system calls so far (/proc/PID/io syscr, syscw): cheap enough
    /// to read right before and right after a snapshot.
    pub fn read_io(pid: i32) -> Result<(u64, u64)> {
        let io = fs::read_to_string(format!("/proc/{pid}/io"))
            .with_context(|| format!("reading /proc/{pid}/io"))?;
        Ok((
            field(&io, "syscr:").unwrap_or(0),
            field(&io, "syscw:").unwrap_or(0),
        ))
    }

    /// The change from `earlier` to `self` (peak and current RSS: the later value).
    pub fn since(&self, earlier: &ProcSample) -> ProcSample {
        ProcSample {
            cpu_s: self.cpu_s - earlier.cpu_s,
            user_s: self.user_s - earlier.user_s,
            sys_s: self.sys_s - earlier.sys_s,
            voluntary_cs: self.voluntary_cs - earlier.voluntary_cs,
            involuntary_cs: self.involuntary_cs - earlier.involuntary_cs,
            syscr: self.syscr - earlier.syscr,
            syscw: self.syscw - earlier.syscw,
            peak_rss_kib: self.peak_rss_kib,
            rss_kib: self.rss_kib,
            machine_ticks: self.machine_ticks - earlier.machine_ticks,
            steal_ticks: self.steal_ticks - earlier.steal_ticks,
        }
    }
}

/// All CPUs' time and its steal part, in ticks: /proc/stat's first line is
/// `cpu user nice system idle iowait irq softirq steal guest guest_nice` (guest time
/// is already counted in user).
fn machine_ticks() -> Result<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let values: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if values.len() < 8 {
        bail!("unexpected /proc/stat: no steal column");
    }
    Ok((values[..8].iter().sum(), values[7]))
}

pub(super) fn field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf takes no pointers and only reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

pub(super) fn threads(pid: i32) -> Result<Vec<i32>> {
    let dir = fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("listing the threads of process {pid}"))?;
    Ok(dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

/// perf_event_open counters on every thread of a process.
pub struct PerfCounters {
    /// The raw_syscalls:sys_enter tracepoint's id.
    sys_enter: u64,
    /// The io_uring submission and completion tracepoints' ids, where the kernel has
    /// them.
    ring: Option<(u64, u64)>,
    /// The threads counted, in the order of the counters.
    tids: Vec<i32>,
    syscalls: Vec<Counter>,
    switches: Vec<Counter>,
    ring_submitted: Vec<Counter>,
    ring_completed: Vec<Counter>,
}

/// Kernel counts read from perf counters.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct PerfSample {
    pub syscalls: u64,
    pub context_switches: u64,
    /// io_uring requests the kernel took from submission rings, and completions it
    /// posted (0 for a process without rings, or a kernel without the tracepoints).
    #[serde(default)]
    pub ring_submitted: u64,
    #[serde(default)]
    pub ring_completed: u64,
}

impl PerfCounters {
    /// Opens the counters on every thread `pid` has now (ours starts all its threads
    /// before it says `listening on`; [`PerfCounters::follow`] adds later ones). Err
    /// says why the kernel refused.
    pub fn open(pid: i32) -> Result<PerfCounters, String> {
        let mut counters = PerfCounters {
            sys_enter: tracepoint_id(&["raw_syscalls/sys_enter"])?,
            // The submission tracepoint was renamed in 5.19; either is one per request.
            ring: tracepoint_id(&[
                "io_uring/io_uring_submit_req",
                "io_uring/io_uring_submit_sqe",
            ])
            .and_then(|submit| Ok((submit, tracepoint_id(&["io_uring/io_uring_complete"])?)))
            .ok(),
            tids: Vec::new(),
            syscalls: Vec::new(),
            switches: Vec::new(),
            ring_submitted: Vec::new(),
            ring_completed: Vec::new(),
        };
        for tid in threads(pid).map_err(|e| format!("{e:#}"))? {
            counters.add(tid)?;
        }
        Ok(counters)
    }

    /// Counts, from now, the threads `pid` started since: an external server may
    /// start some after its port accepts (Redis its I/O threads).
    pub fn follow(&mut self, pid: i32) -> Result<()> {
        for tid in threads(pid)? {
            if !self.tids.contains(&tid) {
                // The kernel took the first threads' counters: a refusal now is a
                // thread that ended since it was listed, with nothing to count.
                let _ = self.add(tid);
            }
        }
        Ok(())
    }

    fn add(&mut self, tid: i32) -> Result<(), String> {
        let syscalls = open_on(tid, &mut Builder::new(Tracepoint::with_id(self.sys_enter)))?;
        let switches = open_on(tid, &mut Builder::new(Software::CONTEXT_SWITCHES))?;
        if let Some((submit, complete)) = self.ring {
            let submitted = open_on(tid, &mut Builder::new(Tracepoint::with_id(submit)))?;
            let completed = open_on(tid, &mut Builder::new(Tracepoint::with_id(complete)))?;
            self.ring_submitted.push(submitted);
            self.ring_completed.push(completed);
        }
        self.tids.push(tid);
        self.syscalls.push(syscalls);
        self.switches.push(switches);
        Ok(())
    }

    /// Each thread's system calls so far, by TID.
    pub fn per_thread(&mut self) -> Result<Vec<(i32, u64)>> {
        self.tids
            .iter()
            .zip(&mut self.syscalls)
            .map(|(&tid, c)| Ok((tid, c.read().context("reading a perf counter")?)))
            .collect()
    }

    pub fn read(&mut self) -> Result<PerfSample> {
        let mut s = PerfSample::default();
        for c in &mut self.syscalls {
            s.syscalls += c.read().context("reading a perf counter")?;
        }
        for c in &mut self.switches {
            s.context_switches += c.read().context("reading a perf counter")?;
        }
        for c in &mut self.ring_submitted {
            s.ring_submitted += c.read().context("reading a perf counter")?;
        }
        for c in &mut self.ring_completed {
            s.ring_completed += c.read().context("reading a perf counter")?;
        }
        Ok(s)
    }
}

/// One counter, enabled, on one thread.
fn open_on(tid: i32, builder: &mut Builder) -> Result<Counter, String> {
    let mut c = builder
        .observe_pid(tid)
        .any_cpu()
        .include_kernel()
        .build()
        .map_err(|e| format!("perf_event_open: {e}"))?;
    c.enable()
        .map_err(|e| format!("enabling a perf counter: {e}"))?;
    Ok(c)
}

/// One system call's count on one thread: the syscalls:sys_enter_NAME tracepoint,
/// e.g. the writes by which memcached's listener hands connections to its workers.
pub struct CallCounter(Counter);

impl CallCounter {
    /// Err says why the kernel refused.
    pub fn open(tid: i32, call: &str) -> Result<CallCounter, String> {
        let id = tracepoint_id(&[&format!("syscalls/sys_enter_{call}")])?;
        open_on(tid, &mut Builder::new(Tracepoint::with_id(id))).map(CallCounter)
    }

    pub fn read(&mut self) -> Result<u64> {
        self.0.read().context("reading a perf counter")
    }
}

impl PerfSample {
    /// Halfway between two readings: the best estimate of the counts at a moment
    /// between them.
    pub fn midpoint(&self, other: &PerfSample) -> PerfSample {
        PerfSample {
            syscalls: (self.syscalls + other.syscalls) / 2,
            context_switches: (self.context_switches + other.context_switches) / 2,
            ring_submitted: (self.ring_submitted + other.ring_submitted) / 2,
            ring_completed: (self.ring_completed + other.ring_completed) / 2,
        }
    }

    pub fn since(&self, earlier: &PerfSample) -> PerfSample {
        PerfSample {
            syscalls: self.syscalls - earlier.syscalls,
            context_switches: self.context_switches - earlier.context_switches,
            ring_submitted: self.ring_submitted - earlier.ring_submitted,
            ring_completed: self.ring_completed - earlier.ring_completed,
        }
    }
}

/// The id of the first of `names` (`group/event`) this kernel has. perf-event2's
/// `with_name` looks only under /sys/kernel/debug/tracing, so read it ourselves;
/// mount tracefs (as perf does) when it is not mounted yet.
fn tracepoint_id(names: &[&str]) -> Result<u64, String> {
    const TRACEFS: &str = "/sys/kernel/tracing";
    let read = |dir: &str| {
        names
            .iter()
            .find_map(|name| fs::read_to_string(format!("{dir}/events/{name}/id")).ok())
    };
    let text = read(TRACEFS)
        .or_else(|| read("/sys/kernel/debug/tracing"))
        .or_else(|| {
            nix::mount::mount(
                Some("nodev"),
                TRACEFS,
                Some("tracefs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .ok()?;
            read(TRACEFS)
        })
        .ok_or_else(|| {
            format!(
                "the {} tracepoint is not available (tracefs is not mounted and could not be)",
                names[0].replace('/', ":")
            )
        })?;
    text.trim()
        .parse()
        .map_err(|_| format!("unexpected tracepoint id {text:?}"))
}
