//! The soak: millions of verified requests across every backend and model, each
//! server checked for errors and for memory that grows.

use super::Step;
use super::server_process::ServerProcess;
use crate::backend::Backend;
use crate::load::{self, LoadConfig, NoHooks};
use crate::metrics::ProcSample;
use crate::server::Model;
use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Serialize;
use std::time::{Duration, Instant};

/// One backend and model's share of the soak.
#[derive(Clone, Debug, Serialize)]
pub struct SoakRow {
    pub backend: String,
    pub model: String,
    pub requests: u64,
    pub mismatched_bytes: u64,
    pub lost_bytes: u64,
    pub unexpected_closes: u64,
    /// Bytes the server wrote minus those the client verified: 0 when nothing is lost.
    pub unaccounted_bytes: i64,
    pub seconds: f64,
    pub server_rss_start_kib: u64,
    pub server_rss_end_kib: u64,
}

impl SoakRow {
    pub fn errors(&self) -> u64 {
        self.mismatched_bytes
            + self.lost_bytes
            + self.unexpected_closes
            + self.unaccounted_bytes.unsigned_abs()
    }
}

/// Runs `total` requests split evenly over every backend and model (`template`
/// gives the workload; its target and request count are set here).
pub fn run(
    total: u64,
    template: &LoadConfig,
    progress: &mut dyn FnMut(Step),
) -> Result<Vec<SoakRow>> {
    let combos: Vec<(Backend, Model)> = Backend::value_variants()
        .iter()
        .flat_map(|&b| Model::value_variants().iter().map(move |&m| (b, m)))
        .filter(|&(b, m)| crate::server::unsupported(b, m).is_none())
        .collect();
    let share = total.div_ceil(combos.len() as u64);
    let mut rows = Vec::new();
    for (i, &(backend, model)) in combos.iter().enumerate() {
        progress(Step {
            done: i,
            total: combos.len(),
            what: &format!("{} / {}", backend.name(), model.name()),
            // Each soak runs to a request count: no plan in time.
            planned: None,
        });
        let args: Vec<String> = [
            "--backend",
            backend.name(),
            "--model",
            model.name(),
            "--protocol",
            template.protocol.name(),
        ]
        .map(String::from)
        .into();
        let server = ServerProcess::start(&args, &[], Duration::from_secs(3600))?;
        let rss_start = ProcSample::read(server.pid())?.rss_kib;
        let mut cfg = template.clone();
        cfg.target = server.addr;
        cfg.requests = Some(share);
        cfg.duration = None;
        cfg.warmup = Duration::ZERO;
        let started = Instant::now();
        let report = load::run(&cfg, &mut NoHooks)
            .with_context(|| format!("soak on {} / {}", backend.name(), model.name()))?;
        let seconds = started.elapsed().as_secs_f64();
        let rss_end = ProcSample::read(server.pid())?.rss_kib;
        let written = server
            .stop()?
            .map_or(0, |s| s.totals.counter(crate::sys::Stat::BytesOut));
        let verified = report.bytes_in;
        rows.push(SoakRow {
            backend: backend.name().into(),
            model: model.name().into(),
            requests: report.requests_total,
            mismatched_bytes: report.mismatched_bytes,
            lost_bytes: report.lost_bytes,
            unexpected_closes: report.unexpected_closes,
            unaccounted_bytes: written as i64 - verified as i64,
            seconds,
            server_rss_start_kib: rss_start,
            server_rss_end_kib: rss_end,
        });
    }
    Ok(rows)
}
