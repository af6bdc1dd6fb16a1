//! The load generator: drives any TCP echo server, checks every echoed byte, and
//! records latency in HdrHistograms. Measures; never formats (see `report`).

mod client;
mod histogram_files;
mod payload;

pub use client::connect;
pub use histogram_files::{merge_logs, write_hgrm, write_interval_log};

use crate::metrics::ProcessUsage;
use crate::protocol::Protocol;
use crate::sys::{Registry, Sys};
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
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub warmup: Duration,
    pub threads: usize,
    pub cpus: Vec<usize>,
    /// Open loop: total requests per second. None: closed loop.
    pub rate: Option<f64>,
    pub protocol: Protocol,
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
    /// Bytes per request on the wire (with framing).
    pub wire_size: usize,
    pub window_s: f64,
    pub requests_per_s: f64,
    pub mb_per_s: f64,
    /// Latency from the intended send time (equal to `uncorrected` in a closed loop).
    pub latency: Latency,
    /// Latency from the actual send time.
    pub uncorrected: Latency,
    /// How late requests were sent compared with their intended time (open loop:
    /// the generator's own scheduling error, part of the corrected latency; empty in
    /// a closed loop).
    pub send_lag: Latency,
    pub mismatched_bytes: u64,
    pub lost_bytes: u64,
    pub unexpected_closes: u64,
    /// The client's own CPU over the window (all its threads).
    pub client_user_s: f64,
    pub client_sys_s: f64,
    pub client_cpu_us_per_request: f64,
    /// Client CPU use as a share of the CPUs its threads had (1.0 = saturated).
    pub client_cpu_share: f64,
    pub client_syscalls_per_request: f64,
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

pub fn run(cfg: &LoadConfig, hooks: &mut dyn WindowHooks) -> Result<LoadReport> {
    if cfg.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let limit = crate::sys::raise_nofile_limit()?;
    let needed = (cfg.connections + cfg.idle_connections) as u64 + 64;
    if needed > limit {
        bail!(
            "{} connections need about {needed} descriptors, but RLIMIT_NOFILE allows {limit}: \
             raise the hard limit (ulimit -Hn) or use fewer connections",
            cfg.connections + cfg.idle_connections
        );
    }
    // Idle connections first: they sit in the server's interest set, silent.
    let idle: Vec<OwnedFd> = (0..cfg.idle_connections)
        .map(|_| connect(cfg.target))
        .collect::<Result<_>>()
        .context("opening idle connections")?;

    let payload = Payload::new(cfg.payload, cfg.protocol)?;
    let threads = cfg.threads.clamp(1, cfg.connections);
    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let timing = Timing {
        measure_from,
        end: cfg.duration.map(|d| measure_from + d),
        drain: DRAIN,
    };
    let pace = match cfg.rate {
        None => Pace::Closed,
        Some(rate) => Pace::Open {
            interval: Duration::from_secs_f64(threads as f64 / rate),
        },
    };
    let registry = Registry::new();
    let plans: Vec<ThreadPlan> = (0..threads)
        .map(|t| {
            let lo = (cfg.connections * t / threads) as u64;
            let hi = (cfg.connections * (t + 1) / threads) as u64;
            ThreadPlan {
                target: cfg.target,
                ids: lo..hi,
                payload: &payload,
                pipeline: cfg.pipeline.max(1),
                pace,
                timing,
                quota: cfg
                    .requests
                    .map(|n| n * (t as u64 + 1) / threads as u64 - n * t as u64 / threads as u64),
            }
        })
        .collect();

    let (results, usage) = std::thread::scope(|scope| -> Result<_> {
        let handles: Vec<_> = plans
            .iter()
            .enumerate()
            .map(|(t, plan)| {
                let cpu = (!cfg.cpus.is_empty()).then(|| cfg.cpus[t % cfg.cpus.len()]);
                let registry = &registry;
                scope.spawn(move || -> Result<client::ThreadResult> {
                    if let Some(cpu) = cpu {
                        crate::sys::pin_to_cpu(cpu)?;
                    }
                    client::run_thread(plan, registry)
                })
            })
            .collect();
        // The coordinator: mark the window's edges while the threads work.
        sleep_until(measure_from);
        let coordinator = Sys::new(registry.register("coordinator"));
        let before = ProcessUsage::now(&coordinator);
        hooks.window_start()?;
        let mut after = None;
        if let Some(end) = timing.end {
            sleep_until(end);
            hooks.window_end()?;
            after = Some(ProcessUsage::now(&coordinator));
        }
        let results = handles
            .into_iter()
            .map(|h| h.join().expect("load thread panicked"))
            .collect::<Result<Vec<_>>>()?;
        if after.is_none() {
            hooks.window_end()?;
            after = Some(ProcessUsage::now(&coordinator));
        }
        Ok((results, (before, after.expect("set above"))))
    })?;
    drop(idle);

    let mut latency = new_histogram();
    let mut uncorrected = new_histogram();
    let mut send_lag = new_histogram();
    let (mut requests, mut total, mut mismatched, mut lost, mut closes, mut syscalls) =
        (0, 0, 0, 0, 0, 0);
    let mut last = None;
    for r in &results {
        latency.add(&r.latency).expect("same bounds");
        uncorrected.add(&r.uncorrected).expect("same bounds");
        send_lag.add(&r.send_lag).expect("same bounds");
        requests += r.completed_in_window;
        total += r.completed;
        mismatched += r.mismatched_bytes;
        lost += r.lost_bytes;
        closes += r.unexpected_closes;
        syscalls += r.counts.total_calls();
        last = last.max(r.last_completion);
    }
    let window_end = timing.end.or(last).unwrap_or(measure_from);
    let window_s = window_end
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    let (before, after) = usage;
    let user = after.user_s - before.user_s;
    let sys = after.sys_s - before.sys_s;
    let per_req = |x: f64| {
        if requests == 0 {
            0.0
        } else {
            x / requests as f64
        }
    };
    let cpus_used = if cfg.cpus.is_empty() {
        threads
    } else {
        threads.min(cfg.cpus.len())
    };
    Ok(LoadReport {
        requests,
        requests_total: total,
        wire_size: payload.wire_size(),
        window_s,
        requests_per_s: if window_s > 0.0 {
            requests as f64 / window_s
        } else {
            0.0
        },
        mb_per_s: if window_s > 0.0 {
            requests as f64 * payload.wire_size() as f64 / window_s / 1e6
        } else {
            0.0
        },
        latency: Latency::of(&latency),
        uncorrected: Latency::of(&uncorrected),
        send_lag: Latency::of(&send_lag),
        mismatched_bytes: mismatched,
        lost_bytes: lost,
        unexpected_closes: closes,
        client_user_s: user,
        client_sys_s: sys,
        client_cpu_us_per_request: per_req((user + sys) * 1e6),
        client_cpu_share: if window_s > 0.0 {
            (user + sys) / window_s / cpus_used as f64
        } else {
            0.0
        },
        client_syscalls_per_request: if total == 0 {
            0.0
        } else {
            syscalls as f64 / total as f64
        },
        histogram: Some(latency),
    })
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}
