//! The load generator: drives any TCP echo server, checks every echoed byte, and
//! records latency in HdrHistograms.
//!
//! Layer: above `backend`, `metrics`, `protocol` and `sys`, beside `server`;
//! measures, never formats.

mod client;
mod driver;
mod histogram_files;
mod payload;

pub use client::connect;
pub use driver::Driver;
pub use histogram_files::{merge_logs, write_hgrm, write_interval_log};
pub use payload::{MAX_PAYLOAD, MEMCACHE_KEY_LEN, check_payload, limited_size};

use crate::metrics::ProcessUsage;
use crate::protocol::Protocol;
use crate::sys::{Registry, Stat, Sys};
use crate::units;
use anyhow::{Context, Result, bail};
use client::{Pace, ThreadPlan, Timing, new_histogram};
use hdrhistogram::Histogram;
use payload::Payload;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// A validated workload.
#[derive(Clone, Debug, Serialize)]
pub struct LoadConfig {
    pub target: SocketAddr,
    pub connections: usize,
    pub idle_connections: usize,
    pub payload: usize,
    pub pipeline: usize,
    /// Measured time (after warm-up); None with a request count.
    #[serde(rename = "duration_s", serialize_with = "units::as_secs_opt")]
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    #[serde(rename = "warmup_s", serialize_with = "units::as_secs")]
    pub warmup: Duration,
    pub threads: usize,
    pub cpus: Vec<usize>,
    /// Open loop: total requests per second. None: closed loop.
    pub rate: Option<f64>,
    pub protocol: Protocol,
    /// A run in which no echo byte arrives for this long, while echoes are owed,
    /// stops there and reports what completed.
    #[serde(rename = "timeout_s", serialize_with = "units::as_secs")]
    pub timeout: Duration,
    /// How long one connect may take (a listener that never accepts, a full backlog).
    #[serde(rename = "connect_timeout_s", serialize_with = "units::as_secs")]
    pub connect_timeout: Duration,
    pub driver: Driver,
}

impl LoadConfig {
    /// The workload every command starts from, its flags (or an experiment's
    /// settings) changing what they name: written once, here. Its window is a
    /// measured run's (`run`, `compare`, experiments); `load` measures one server
    /// once, for longer: [`LONG_WINDOW`].
    pub const DEFAULT: LoadConfig = LoadConfig {
        target: SocketAddr::V4(std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::LOCALHOST,
            0,
        )),
        connections: 64,
        idle_connections: 0,
        payload: 64,
        pipeline: 1,
        duration: Some(Duration::from_millis(1500)),
        requests: None,
        warmup: Duration::from_millis(500),
        threads: 1,
        cpus: Vec::new(),
        rate: None,
        protocol: Protocol::Raw,
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(3),
        driver: Driver::Epoll,
    };
}

/// `load`'s measured time and warm-up.
pub const LONG_WINDOW: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(1));

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
    pub mean: f64,
    pub count: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1e3;
        Latency {
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            p9999: us(h.value_at_quantile(0.9999)),
            max: us(h.max()),
            mean: h.mean() / 1e3,
            count: h.len(),
        }
    }
}

/// What a load run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadReport {
    /// Echoes completed inside the measured window.
    pub requests: u64,
    /// Echoes completed in all, warm-up and drain included.
    pub requests_total: u64,
    /// Bytes per reply on the wire (with framing; memcache: a `get`'s).
    pub wire_size: usize,
    /// Bytes the generator read in all (warm-up and drain included), every one of
    /// them checked: the server's replies, when there are no errors.
    #[serde(default)]
    pub bytes_in: u64,
    pub window_s: f64,
    pub requests_per_s: f64,
    pub mb_per_s: f64,
    /// Latency from the intended send time (equal to `uncorrected` in a closed loop).
    pub latency: Latency,
    /// Latency from the actual send time.
    pub uncorrected: Latency,
    /// Open loop: how late requests were sent against their intended time, for those
    /// the connection could take at once: the generator's own scheduling error.
    pub send_lag: Latency,
    /// The same for requests that had to wait for the connection (its pipeline or
    /// socket full): backpressure from the server, not the generator.
    pub backpressure: Latency,
    pub mismatched_bytes: u64,
    pub lost_bytes: u64,
    pub unexpected_closes: u64,
    /// Open loop: requests that could not even be queued (the backlog of unsent
    /// requests was full) and were given up; they still went into `latency`, each
    /// with its wait from its intended time to the end of sending (a lower bound).
    pub missed: u64,
    /// No echo byte arrived for `timeout` while echoes were owed: the run stopped.
    pub stalled: bool,
    /// Open loop: the rate asked for (None: a closed loop).
    pub requested_rate: Option<f64>,
    /// The client's own CPU over the window (all its threads).
    pub client_user_s: f64,
    pub client_sys_s: f64,
    pub client_cpu_us_per_request: f64,
    /// Client CPU use as a share of the CPUs its threads had (1.0 = saturated).
    pub client_cpu_share: f64,
    pub client_syscalls_per_request: f64,
    /// The client process's peak resident memory, so far (getrusage ru_maxrss).
    pub client_peak_rss_kib: u64,
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
}

impl LoadReport {
    pub fn errors(&self) -> u64 {
        self.mismatched_bytes + self.lost_bytes + self.unexpected_closes
    }
}

/// Called by the coordinating thread at the edges of the measured window, so that a
/// caller can take the server's figures for exactly that window.
pub trait WindowHooks {
    fn window_start(&mut self) -> Result<()>;
    fn window_end(&mut self) -> Result<()>;
}

/// No hooks: `iobench load` against someone else's server.
pub struct NoHooks;

impl WindowHooks for NoHooks {
    fn window_start(&mut self) -> Result<()> {
        Ok(())
    }
    fn window_end(&mut self) -> Result<()> {
        Ok(())
    }
}

/// How long echoes still in flight are waited for once sending stops.
const DRAIN: Duration = Duration::from_secs(3);

/// Opens the idle connections, drives the active ones from `cfg.threads` threads,
/// marks the measured window for `hooks`, and adds up what every thread saw.
pub fn run(cfg: &LoadConfig, hooks: &mut dyn WindowHooks) -> Result<LoadReport> {
    if cfg.connections == 0 {
        bail!("--connections must be at least 1");
    }
    check_descriptors(cfg)?;
    // Idle connections first: they sit in the server's interest set, silent.
    let idle: Vec<OwnedFd> = (0..cfg.idle_connections)
        .map(|_| connect(cfg.target, cfg.connect_timeout))
        .collect::<Result<_>>()
        .context("opening idle connections")?;

    let payload = Payload::new(cfg.payload, cfg.protocol)?;
    let threads = cfg.threads.clamp(1, cfg.connections);
    let measure_from = Instant::now() + cfg.warmup;
    let timing = Timing {
        measure_from,
        end: cfg.duration.map(|d| measure_from + d),
        drain: DRAIN,
    };
    let plans = plan_threads(cfg, threads, &payload, timing);
    let registry = Registry::new();
    let (results, usage) = drive(cfg, &plans, &registry, hooks)?;
    drop(idle);
    Ok(summarise(cfg, threads, &payload, timing, &results, usage))
}

fn check_descriptors(cfg: &LoadConfig) -> Result<()> {
    let limit = crate::sys::raise_nofile_limit()?;
    let needed = (cfg.connections + cfg.idle_connections) as u64 + 64;
    if needed > limit {
        bail!(
            "{} connections need about {needed} descriptors, but RLIMIT_NOFILE allows {limit}: \
             raise the hard limit (ulimit -Hn) or use fewer connections",
            cfg.connections + cfg.idle_connections
        );
    }
    Ok(())
}

/// The active connections split evenly over `threads`, and so is a request count.
fn plan_threads<'a>(
    cfg: &LoadConfig,
    threads: usize,
    payload: &'a Payload,
    timing: Timing,
) -> Vec<ThreadPlan<'a>> {
    let pace = match cfg.rate {
        None => Pace::Closed,
        Some(rate) => Pace::Open {
            interval: Duration::from_secs_f64(threads as f64 / rate),
        },
    };
    let share = |n: u64, t: usize| n * t as u64 / threads as u64;
    (0..threads)
        .map(|t| ThreadPlan {
            target: cfg.target,
            ids: share(cfg.connections as u64, t)..share(cfg.connections as u64, t + 1),
            payload,
            pipeline: cfg.pipeline.max(1),
            pace,
            timing,
            quota: cfg.requests.map(|n| share(n, t + 1) - share(n, t)),
            timeout: cfg.timeout,
            connect_timeout: cfg.connect_timeout,
            driver: cfg.driver,
        })
        .collect()
}

/// The client's CPU usage at the two edges of the measured window.
type Usage = (ProcessUsage, ProcessUsage);

/// Runs every thread's plan (each pinned to its CPU, if any) while this thread, the
/// coordinator, marks the window's edges: at the end of the warm-up and of the
/// duration, or as soon as every thread is done (a request count, or a server that
/// closed every connection).
fn drive(
    cfg: &LoadConfig,
    plans: &[ThreadPlan],
    registry: &Registry,
    hooks: &mut dyn WindowHooks,
) -> Result<(Vec<client::ThreadResult>, Usage)> {
    let timing = plans[0].timing;
    let (done_tx, done) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| -> Result<_> {
        let handles: Vec<_> = plans
            .iter()
            .enumerate()
            .map(|(t, plan)| {
                let cpu = (!cfg.cpus.is_empty()).then(|| cfg.cpus[t % cfg.cpus.len()]);
                let done_tx = done_tx.clone();
                scope.spawn(move || -> Result<client::ThreadResult> {
                    let result = match cpu {
                        Some(cpu) => crate::sys::pin_to_cpu(cpu),
                        None => Ok(()),
                    }
                    .and_then(|()| client::run_thread(plan, registry));
                    // The coordinator may wait for this; nobody listening is fine.
                    let _ = done_tx.send(());
                    result
                })
            })
            .collect();
        drop(done_tx);
        let mut finished = Finished {
            done,
            left: plans.len(),
        };
        finished.wait(Some(timing.measure_from));
        let coordinator = Sys::new(registry.register("coordinator"));
        let before = ProcessUsage::now(&coordinator);
        hooks.window_start()?;
        // Without an end (a request count), the window ends with the last thread.
        finished.wait(timing.end);
        hooks.window_end()?;
        let after = ProcessUsage::now(&coordinator);
        let results = handles
            .into_iter()
            .map(|h| h.join().expect("load thread panicked"))
            .collect::<Result<Vec<_>>>()?;
        Ok((results, (before, after)))
    })
}

/// The load threads that have not finished yet, as the coordinator waits for them.
struct Finished {
    done: std::sync::mpsc::Receiver<()>,
    left: usize,
}

impl Finished {
    /// Waits until `deadline` (None: none) or until every thread is done, whichever
    /// comes first.
    fn wait(&mut self, deadline: Option<Instant>) {
        use std::sync::mpsc::RecvTimeoutError;
        while self.left > 0 {
            let got = match deadline {
                Some(d) => self
                    .done
                    .recv_timeout(d.saturating_duration_since(Instant::now())),
                None => self.done.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(()) => self.left -= 1,
                Err(RecvTimeoutError::Timeout) => return,
                // Every thread has ended (one that panicked sent nothing).
                Err(RecvTimeoutError::Disconnected) => self.left = 0,
            }
        }
    }
}

/// Every thread's figures added up into the run's report.
fn summarise(
    cfg: &LoadConfig,
    threads: usize,
    payload: &Payload,
    timing: Timing,
    results: &[client::ThreadResult],
    (before, after): Usage,
) -> LoadReport {
    let mut latency = new_histogram();
    let mut uncorrected = new_histogram();
    let mut send_lag = new_histogram();
    let mut backpressure = new_histogram();
    let (mut requests, mut total, mut mismatched, mut lost, mut closes, mut syscalls) =
        (0, 0, 0, 0, 0, 0);
    let (mut missed, mut stalled, mut bytes_in) = (0, false, 0);
    let mut last = None;
    for r in results {
        latency.add(&r.latency).expect("same bounds");
        uncorrected.add(&r.uncorrected).expect("same bounds");
        send_lag.add(&r.send_lag).expect("same bounds");
        backpressure.add(&r.backpressure).expect("same bounds");
        requests += r.completed_in_window;
        total += r.completed;
        mismatched += r.mismatched_bytes;
        lost += r.lost_bytes;
        closes += r.unexpected_closes;
        syscalls += r.counts.total_calls();
        bytes_in += r.counts.stat(Stat::BytesIn);
        missed += r.missed;
        stalled |= r.stalled;
        last = last.max(r.last_completion);
    }
    let window_end = timing.end.or(last).unwrap_or(timing.measure_from);
    let window_s = window_end
        .saturating_duration_since(timing.measure_from)
        .as_secs_f64();
    let user = after.user_s - before.user_s;
    let sys = after.sys_s - before.sys_s;
    let ratio = |x: f64, n: f64| if n > 0.0 { x / n } else { 0.0 };
    let cpus_used = if cfg.cpus.is_empty() {
        threads
    } else {
        threads.min(cfg.cpus.len())
    };
    LoadReport {
        requests,
        requests_total: total,
        wire_size: payload.wire_size(),
        bytes_in,
        window_s,
        requests_per_s: ratio(requests as f64, window_s),
        mb_per_s: ratio(requests as f64 * payload.wire_size() as f64 / 1e6, window_s),
        latency: Latency::of(&latency),
        uncorrected: Latency::of(&uncorrected),
        send_lag: Latency::of(&send_lag),
        backpressure: Latency::of(&backpressure),
        mismatched_bytes: mismatched,
        lost_bytes: lost,
        unexpected_closes: closes,
        missed,
        stalled,
        requested_rate: cfg.rate,
        client_user_s: user,
        client_sys_s: sys,
        client_cpu_us_per_request: ratio((user + sys) * 1e6, requests as f64),
        client_cpu_share: ratio(user + sys, window_s * cpus_used as f64),
        client_syscalls_per_request: ratio(syscalls as f64, total as f64),
        client_peak_rss_kib: after.max_rss_kib,
        histogram: Some(latency),
    }
}
