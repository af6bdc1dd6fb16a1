//! Measured runs: a server child process on one CPU, the load generator on another,
//! and for the measured window only, the server's own counts beside the kernel's.
//! `run` and `compare` are this, for one backend or several, interleaved.
//!
//! Layer: above `server`, `load` and `metrics`; returns data, warnings included, and
//! never formats.

mod figures;
mod findings;
pub mod interrupt;
mod real;
mod ring;
mod server_process;
mod soak;
mod warning;

pub use figures::{FIGURES, OUR_CALL_COUNTS, Summary, summarise};
pub use findings::{Finding, HEADLINE, Verdict, findings, verdict};
use real::HandoffCounters;
pub use real::{HandoffCalls, RealServer};
pub use ring::{RING_FIGURES, RingConfig, measure as measure_ring};
pub use soak::{SoakRow, run as soak};
pub use warning::{
    COUNTS_AGREE_WITHIN, Disagreed, Disagreement, KernelCount, SATURATED_CLIENT_PERCENT, Shortfall,
    Warning, saturated_client, uncounted_calls,
};

use crate::backend::Backend;
use crate::load::{self, LoadConfig, LoadReport, WindowHooks};
use crate::metrics::{
    Counts, PerfCounters, PerfSample, ProcSample, TaskSample, ThreadStats, task_window,
};
use crate::protocol::Protocol;
use crate::server::ServerStats;
use crate::server::{self, Model, ReadStrategy, RingSetup};
use anyhow::{Result, bail};
use serde::Serialize;
use server_process::ServerProcess;
use std::time::Duration;

/// What is measured: our server on one backend, or anyone's server.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Subject {
    Ours {
        backend: Backend,
        model: Model,
        threads: usize,
    },
    /// A command that serves echo on `{port}`; measured from the kernel's side only.
    External {
        name: String,
        command: String,
        /// The real server the command starts, when it is a preset (`--external redis`).
        #[serde(skip)]
        real: Option<RealServer>,
    },
}

impl Subject {
    /// Our server on `backend` with `model`, with the threads the model runs with.
    pub fn ours(backend: Backend, model: Model, threads: usize) -> Subject {
        Subject::Ours {
            backend,
            model,
            threads: model.threads(threads),
        }
    }

    /// A real server with `threads` threads of its model, as `--external redis` starts it.
    pub fn real(server: RealServer, threads: usize) -> Subject {
        Subject::External {
            name: format!("{server} x{threads}"),
            command: server.command(threads),
            real: Some(server),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Subject::Ours {
                backend,
                model: Model::Reactor,
                ..
            } => backend.name().to_string(),
            Subject::Ours {
                backend,
                model,
                threads,
            } => format!("{}/{} x{threads}", backend.name(), model.name()),
            Subject::External { name, .. } => name.clone(),
        }
    }

    /// Why this subject cannot run the workload, if it cannot: a backend with a
    /// descriptor limit of its own (select) cannot watch clients numbered past it,
    /// io-uring does not serve every model (`server::unsupported`), and a kernel or a
    /// container may refuse io_uring altogether (to the server, or to the load
    /// generator's io-uring driver).
    pub fn cannot_run(&self, load: &LoadConfig) -> Option<String> {
        if load.driver == load::Driver::IoUring
            && let Some(why) = server::io_uring_unavailable()
        {
            return Some(format!("n/a (driver {}: {why})", load.driver));
        }
        if let Subject::External {
            real: Some(server), ..
        } = self
        {
            return server.missing().map(|why| format!("n/a ({why})"));
        }
        if let Subject::Ours { backend, model, .. } = *self {
            if server::unsupported(backend, model).is_some() {
                return Some(format!("n/a ({backend} has no {model} model yet)"));
            }
            // Our server runs with its default --max-frame: a longer message would
            // close every connection.
            if crate::load::limited_size(load.payload, load.protocol) > server::DEFAULT_MAX_FRAME {
                let limit = crate::units::Size(server::DEFAULT_MAX_FRAME);
                return Some(format!(
                    "n/a (payload past the server's --max-frame {limit})"
                ));
            }
            // Memcache: one value per connection, in a store of the default size.
            let stored = server::Store::entry_cost(crate::load::MEMCACHE_KEY_LEN, load.payload);
            if load.protocol == crate::protocol::Protocol::Memcache
                && load.connections.saturating_mul(stored) > server::Store::DEFAULT_LIMIT
            {
                let limit = crate::units::Size(server::Store::DEFAULT_LIMIT);
                return Some(format!(
                    "n/a (the values exceed the store's --store-memory {limit})"
                ));
            }
            if backend.trigger() == crate::backend::Trigger::Completion
                && let Some(why) = server::io_uring_unavailable()
            {
                return Some(format!("n/a ({why})"));
            }
        }
        let (Subject::Ours { backend, .. }, Some(most)) = (self, self.most_clients()) else {
            return None;
        };
        let limit = backend.max_fd()? + 1;
        (load.connections + load.idle_connections > most).then(|| format!("n/a (fd limit {limit})"))
    }

    /// The most clients this subject can serve, when its backend has a descriptor
    /// limit of its own (select). Descriptors are numbered lowest-free first, so the
    /// last client's number is the count of descriptors the server holds then, less one.
    pub fn most_clients(&self) -> Option<usize> {
        let Subject::Ours {
            backend,
            model,
            threads,
        } = *self
        else {
            return None;
        };
        let held = STDIO + server::descriptors_before_clients(backend, model, threads);
        (backend.max_fd()? + 1).checked_sub(held)
    }
}

/// stdin, stdout and stderr: the server's first descriptors.
const STDIO: usize = 3;

/// How far a job has come, for a progress display: `done` of `total` steps are
/// finished, and `what` starts now.
pub struct Step<'a> {
    pub done: usize,
    pub total: usize,
    pub what: &'a str,
    /// The whole job's length as planned, when it is known: what an ETA can go by
    /// before the first step has ended.
    pub planned: Option<Duration>,
}

/// Everything a bench needs besides the subjects.
#[derive(Clone, Debug, Serialize)]
pub struct BenchPlan {
    pub subjects: Vec<Subject>,
    pub runs: usize,
    /// The workload; its target is replaced by each server's address.
    pub load: LoadConfig,
    /// The CPUs the server may run on (its threads placed within them by the
    /// scheduler); empty: any. The load generator's are `load.cpus`.
    pub server_cpus: Vec<usize>,
    /// Further `serve` flags (read strategy, buffer size, ...).
    pub server_args: Vec<String>,
    pub kernel_counts: bool,
    /// What progress calls this plan's runs (an experiment's point); None: by subject.
    #[serde(skip)]
    pub label: Option<String>,
}

/// A run's time besides its warm-up and window: starting the server, connecting,
/// draining, stopping. Measured: 1.23 s a run for 200 ms + 1 s on 2 vCPUs.
const AROUND_A_RUN: Duration = Duration::from_millis(30);

impl BenchPlan {
    /// About how long one run takes; None when its window is a request count.
    fn run_time(&self) -> Option<Duration> {
        Some(self.load.warmup + self.load.duration? + AROUND_A_RUN)
    }

    /// Why `subject` cannot run in this plan, if it cannot: the CPU layout is not to
    /// be had on this machine, or the subject cannot serve the workload.
    pub fn cannot_run(&self, subject: &Subject) -> Option<String> {
        let cpus: Vec<usize> = self
            .server_cpus
            .iter()
            .chain(&self.load.cpus)
            .copied()
            .collect();
        crate::sys::layout_unavailable(&cpus)
            .map(|why| format!("n/a ({why})"))
            .or_else(|| subject.cannot_run(&self.load))
    }
}

/// Server on CPU 0, load generator on CPU 1, when there are two CPUs; else nothing
/// pinned.
pub fn default_pinning() -> (Vec<usize>, Vec<usize>) {
    if crate::sys::machine_cpus() >= 2 {
        (vec![0], vec![1])
    } else {
        (Vec::new(), Vec::new())
    }
}

/// The `serve` flags for a read strategy and buffer (None: the server's defaults)
/// and a protocol.
pub fn server_args(
    read_strategy: Option<ReadStrategy>,
    buffer_size: Option<usize>,
    ring: Option<RingSetup>,
    protocol: Protocol,
) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(s) = read_strategy {
        args.extend(["--read-strategy".to_string(), s.name().to_string()]);
    }
    if let Some(r) = ring {
        args.extend(["--ring".to_string(), r.name().to_string()]);
    }
    if let Some(b) = buffer_size {
        args.extend(["--buffer-size".to_string(), b.to_string()]);
    }
    args.extend(["--protocol".to_string(), protocol.name().to_string()]);
    args
}

/// The server's side of one measured window.
#[derive(Clone, Debug, Serialize)]
pub struct ServerWindow {
    /// Our own counts (the counting layer), all threads; None for an external server.
    pub own: Option<Counts>,
    /// The same per thread, with each thread's context switches.
    pub threads: Vec<ThreadStats>,
    /// /proc for the same window.
    pub proc: ProcSample,
    /// perf_event_open counts, with `--kernel-counts`.
    pub perf: Option<PerfSample>,
    /// Why there are no perf counts, when asked for and refused.
    pub perf_unavailable: Option<String>,
    /// Bytes the server echoed over its whole life (warm-up and drain included):
    /// exactly the client's completed requests times the payload when nothing is lost.
    /// None for an external server.
    pub lifetime_bytes_out: Option<u64>,
    /// Each thread's kernel figures for the window (/proc/PID/task; system calls
    /// with `--kernel-counts`), the main thread first.
    pub tasks: Vec<TaskSample>,
    /// How a real server's listener hands connections to its workers, with
    /// `--kernel-counts`, where the kernel can tell (memcached).
    pub handoff: Option<Handoff>,
}

/// What a real server's listening thread did from when it was ready to the measured
/// window's start, while every connection of the workload was accepted: memcached's
/// accepts and its writes to wake the worker each connection went to.
#[derive(Clone, Debug, Serialize)]
pub struct Handoff {
    /// The listening thread's name.
    pub thread: String,
    pub calls: HandoffCalls,
    pub accepts: u64,
    pub notifies: u64,
}

/// One run of one subject.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub subject: String,
    pub run: usize,
    pub load: LoadReport,
    pub server: ServerWindow,
}

/// What a bench produced for one subject, run by run.
#[derive(Clone, Debug, Serialize)]
pub struct SubjectRuns {
    pub subject: String,
    /// Set when the subject cannot run this workload (then `runs` is empty).
    pub not_applicable: Option<String>,
    pub runs: Vec<RunResult>,
    /// Runs that failed, with what went wrong: the other runs go on.
    pub failures: Vec<String>,
}

/// Runs every subject `plan.runs` times, interleaved (A B C A B C ...), so that slow
/// drifts of a noisy machine spread over all of them. `progress` hears how many runs
/// are done and which one starts.
pub fn run(plan: &BenchPlan, progress: &mut dyn FnMut(Step)) -> Vec<SubjectRuns> {
    run_many(std::slice::from_ref(plan), progress)
        .pop()
        .unwrap_or_default()
}

/// Several plans (an experiment's sweep points), interleaved across all of them: run
/// 1 of every subject of every plan, then run 2, and so on. A run that fails is
/// recorded with its error, and the others go on.
pub fn run_many(plans: &[BenchPlan], progress: &mut dyn FnMut(Step)) -> Vec<Vec<SubjectRuns>> {
    let mut out: Vec<Vec<SubjectRuns>> = plans
        .iter()
        .map(|plan| {
            plan.subjects
                .iter()
                .map(|s| SubjectRuns {
                    subject: s.name(),
                    not_applicable: plan.cannot_run(s),
                    runs: Vec::new(),
                    failures: Vec::new(),
                })
                .collect()
        })
        .collect();
    // The runs that will be made, and how long they should take.
    let runnable: Vec<(&BenchPlan, usize)> = plans
        .iter()
        .zip(&out)
        .map(|(plan, results)| {
            let subjects = results.iter().filter(|r| r.not_applicable.is_none());
            (plan, subjects.count() * plan.runs)
        })
        .collect();
    let total = runnable.iter().map(|(_, runs)| runs).sum();
    let planned = runnable
        .iter()
        .map(|(plan, runs)| Some(plan.run_time()? * *runs as u32))
        .sum();
    let most_runs = plans.iter().map(|p| p.runs).max().unwrap_or(0);
    let mut done = 0;
    for run in 0..most_runs {
        for (plan, results) in plans.iter().zip(out.iter_mut()) {
            for (subject, result) in plan.subjects.iter().zip(results.iter_mut()) {
                if result.not_applicable.is_some() || run >= plan.runs {
                    continue;
                }
                progress(Step {
                    done,
                    total,
                    what: &format!(
                        "run {}/{}: {}",
                        run + 1,
                        plan.runs,
                        plan.label.clone().unwrap_or_else(|| subject.name())
                    ),
                    planned,
                });
                match measure(plan, subject, run) {
                    Ok(measured) => result.runs.push(measured),
                    Err(e) => {
                        result
                            .failures
                            .push(format!("{} run {}: {e:#}", subject.name(), run + 1))
                    }
                }
                done += 1;
            }
        }
    }
    out
}

fn measure(plan: &BenchPlan, subject: &Subject, run: usize) -> Result<RunResult> {
    let mut server = match subject {
        Subject::Ours {
            backend,
            model,
            threads,
        } => {
            let mut args: Vec<String> = [
                "--backend",
                backend.name(),
                "--model",
                model.name(),
                "--threads",
                &threads.to_string(),
            ]
            .map(String::from)
            .into();
            args.extend(plan.server_args.iter().cloned());
            // Long enough for the run, short enough that nothing lingers if all else fails.
            let window = plan.load.duration.unwrap_or(Duration::from_secs(60));
            let lifetime = plan.load.warmup + window + Duration::from_secs(120);
            ServerProcess::start(&args, &plan.server_cpus, lifetime)?
        }
        Subject::External { command, .. } => ServerProcess::external(command, &plan.server_cpus)?,
    };
    let (perf, perf_unavailable) = if plan.kernel_counts {
        match PerfCounters::open(server.pid()) {
            Ok(p) => (Some(p), None),
            Err(reason) => (None, Some(reason)),
        }
    } else {
        (None, None)
    };
    // The main thread's TID is the PID: where memcached listens. Counted where the
    // kernel counts the rest (perf opened), else not at all.
    let handoff = match subject {
        Subject::External {
            real: Some(real), ..
        } if perf.is_some() => real
            .handoff()
            .and_then(|calls| HandoffCounters::open(server.pid(), calls).ok()),
        _ => None,
    };
    let handoff_calls = handoff.as_ref().map(|h| h.calls);
    let mut load = plan.load.clone();
    load.target = server.addr;
    let mut hooks = Window {
        server: &mut server,
        perf,
        handoff,
        edges: Vec::new(),
    };
    let report = load::run(&load, &mut hooks)?;
    if report.stalled {
        bail!(
            "the server sent no echo byte for {:?} with requests outstanding",
            load.timeout
        );
    }
    if report.requests == 0 {
        bail!("no request completed in the measured window");
    }
    let [start, end] = <[Edge; 2]>::try_from(std::mem::take(&mut hooks.edges))
        .map_err(|_| anyhow::anyhow!("the measured window has no two edges"))?;
    let handoff = handoff_calls
        .zip(start.handoff)
        .map(|(calls, (accepts, notifies))| Handoff {
            thread: start
                .tasks
                .first()
                .map_or_else(String::new, |t| t.name.clone()),
            calls,
            accepts,
            notifies,
        });
    let last = server.stop()?;
    Ok(RunResult {
        subject: subject.name(),
        run,
        load: report,
        server: ServerWindow {
            own: end
                .own
                .as_ref()
                .zip(start.own.as_ref())
                .map(|(e, s)| e.totals.since(&s.totals)),
            threads: match (&end.own, &start.own) {
                (Some(e), Some(s)) => e
                    .threads
                    .iter()
                    .zip(&s.threads)
                    .map(|(e, s)| e.since(s))
                    .collect(),
                _ => Vec::new(),
            },
            proc: end.proc.since(&start.proc),
            perf: match (end.perf, start.perf) {
                (Some(e), Some(s)) => Some(e.since(&s)),
                _ => None,
            },
            perf_unavailable,
            lifetime_bytes_out: last.map(|l| l.totals.counter(crate::sys::Stat::BytesOut)),
            tasks: task_window(&end.tasks, &start.tasks),
            handoff,
        },
    })
}

/// The server's figures at one edge of the window.
struct Edge {
    own: Option<ServerStats>,
    proc: ProcSample,
    perf: Option<PerfSample>,
    tasks: Vec<TaskSample>,
    /// The listener's accepts and notifications so far.
    handoff: Option<(u64, u64)>,
}

struct Window<'a> {
    server: &'a mut ServerProcess,
    perf: Option<PerfCounters>,
    handoff: Option<HandoffCounters>,
    edges: Vec<Edge>,
}

impl Window<'_> {
    /// The server's own snapshot, with the kernel's counters read just before and
    /// just after it: their midpoint is the kernel's count at the moment of the
    /// snapshot, so that the two counts cover the same window.
    fn edge(&mut self) -> Result<()> {
        let pid = self.server.pid();
        if let Some(counters) = self.perf.as_mut() {
            counters.follow(pid)?;
        }
        let perf_before = self.perf.as_mut().map(PerfCounters::read).transpose()?;
        let io_before = ProcSample::read_io(pid)?;
        let own = self.server.snapshot()?;
        let io_after = ProcSample::read_io(pid)?;
        let perf_after = self.perf.as_mut().map(PerfCounters::read).transpose()?;
        let mut proc = ProcSample::read(pid)?;
        proc.syscr = (io_before.0 + io_after.0) / 2;
        proc.syscw = (io_before.1 + io_after.1) / 2;
        let perf = perf_before.zip(perf_after).map(|(b, a)| b.midpoint(&a));
        let mut tasks = TaskSample::read_all(pid)?;
        if let Some(counters) = self.perf.as_mut() {
            for (tid, calls) in counters.per_thread()? {
                if let Some(t) = tasks.iter_mut().find(|t| t.tid == tid) {
                    t.syscalls = Some(calls);
                }
            }
        }
        let handoff = self
            .handoff
            .as_mut()
            .map(HandoffCounters::read)
            .transpose()?;
        self.edges.push(Edge {
            own,
            proc,
            perf,
            tasks,
            handoff,
        });
        Ok(())
    }
}

impl WindowHooks for Window<'_> {
    fn window_start(&mut self) -> Result<()> {
        self.edge()
    }
    fn window_end(&mut self) -> Result<()> {
        self.edge()
    }
}

/// Everything a bench produced, as exported: the machine, the exact command, the
/// plan, the summaries and every run's raw figures.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub machine: crate::metrics::Machine,
    pub command: String,
    pub plan: BenchPlan,
    pub baseline: String,
    pub summaries: Vec<Summary>,
    /// What the data shows, for the sentences after the table.
    pub findings: Vec<Finding>,
    pub runs: Vec<SubjectRuns>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// memcached's layout opens more descriptors before its first client than the
    /// reactor (a loop and a notification pipe per worker), so near FD_SETSIZE the
    /// same workload fits select's reactor and not its dispatch model.
    #[test]
    fn select_limit_counts_the_models_own_descriptors() {
        let load = LoadConfig {
            connections: 1012,
            ..LoadConfig::DEFAULT
        };
        let select = |model, threads| Subject::Ours {
            backend: Backend::Select,
            model,
            threads,
        };
        assert_eq!(select(Model::Reactor, 1).cannot_run(&load), None);
        assert_eq!(
            select(Model::Dispatch, 2).cannot_run(&load),
            Some("n/a (fd limit 1024)".to_string())
        );
        let epoll = Subject::Ours {
            backend: Backend::EpollEt,
            model: Model::Dispatch,
            threads: 2,
        };
        assert_eq!(epoll.cannot_run(&load), None);
    }
}
