//! Measuring every point of an experiment, by kind: runs are interleaved across all
//! points (run 1 of every point, then run 2, ...) so that the machine's slow drifts
//! spread over all of them.

use super::setting::{Kind, Setting};
use super::{Column, Experiment, Row, Step};
use crate::backend::Backend;
use crate::bench::{self, BenchPlan, FIGURES, RING_FIGURES, RingConfig, Subject, Warning};
use crate::load::LoadConfig;
use crate::metrics::{Figure, spreads};
use crate::protocol::Protocol;
use crate::server::{Model, ReadStrategy};
use crate::transfer::{self, Method, TransferConfig};
use serde::Serialize;
use std::time::Duration;

pub fn columns(kind: Kind) -> Vec<Column> {
    fn of<R>(figures: &[Figure<R>]) -> Vec<Column> {
        figures
            .iter()
            .map(|f| Column {
                key: f.key,
                label: f.label,
                decimals: f.decimals,
            })
            .collect()
    }
    match kind {
        Kind::Echo => of(FIGURES),
        Kind::Ring => of(RING_FIGURES),
        Kind::Transfer => of(transfer::FIGURES),
    }
}

/// One row per point of `exp`, in its order.
pub fn all(exp: &Experiment, progress: &mut dyn FnMut(Step)) -> Vec<Row> {
    match exp.kind {
        Kind::Echo => echo(exp, progress),
        Kind::Ring => ring(exp, progress),
        Kind::Transfer => transfer(exp, progress),
    }
}

fn row(settings: &[Setting]) -> Row {
    Row {
        settings: settings.to_vec(),
        not_applicable: None,
        failures: Vec::new(),
        warnings: Vec::new(),
        measurements: 0,
        figures: Default::default(),
        raw: serde_json::Value::Null,
    }
}

/// Fills a row's figures from its measurements.
fn summarise<R: Serialize>(row: &mut Row, figures: &[Figure<R>], measured: &[R]) {
    row.measurements = measured.len();
    row.figures = spreads(figures, measured);
    row.raw = serde_json::to_value(measured).unwrap_or_default();
}

fn echo(exp: &Experiment, progress: &mut dyn FnMut(Step)) -> Vec<Row> {
    let mut rows: Vec<Row> = exp.points.iter().map(|p| row(p)).collect();
    let mut plans = Vec::new();
    let mut measured_rows = Vec::new();
    for (i, point) in exp.points.iter().enumerate() {
        match echo_plan(point, exp.runs) {
            Ok(plan) => {
                plans.push(plan);
                measured_rows.push(i);
            }
            Err(why) => rows[i].not_applicable = Some(why),
        }
    }
    let total = plans.len() * exp.runs;
    let results = bench::run_many(&plans, &mut |done, what| {
        progress(Step { done, total, what })
    });
    for ((i, plan), mut subject) in measured_rows.into_iter().zip(&plans).zip(results) {
        let Some(s) = subject.pop() else { continue };
        let summaries = bench::summarise(std::slice::from_ref(&s));
        let r = &mut rows[i];
        summarise(r, FIGURES, &s.runs);
        r.warnings.extend(bench::saturated_client(&summaries));
        let uncounted = bench::uncounted_calls(&plan.subjects, &summaries);
        for summary in summaries {
            r.warnings.extend(summary.warnings);
            r.warnings
                .extend(summary.disagreements.into_iter().map(Warning::Disagreement));
        }
        r.warnings.extend(uncounted);
        r.not_applicable = s.not_applicable;
        r.failures = s.failures;
    }
    rows
}

/// The bench of one echo point: its one subject under its workload; Err says why
/// the point cannot run.
fn echo_plan(point: &[Setting], runs: usize) -> Result<BenchPlan, String> {
    let (mut backend, mut model, mut threads) = (Backend::EpollEt, Model::Reactor, 2);
    let (mut read_strategy, mut buffer_size, mut protocol) = (None, None, Protocol::Raw);
    let (server_cpu, cpus) = bench::default_pinning();
    let mut load = LoadConfig {
        target: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        connections: 64,
        idle_connections: 0,
        payload: 64,
        pipeline: 1,
        duration: Some(Duration::from_millis(1500)),
        requests: None,
        warmup: Duration::from_millis(500),
        threads: 1,
        cpus,
        rate: None,
        protocol,
    };
    for s in point {
        match *s {
            Setting::Backend(b) => backend = b,
            Setting::Model(m) => model = m,
            Setting::ServerThreads(n) => threads = n,
            Setting::Connections(n) => load.connections = n,
            Setting::IdleConnections(n) => load.idle_connections = n,
            Setting::Payload(n) => load.payload = n,
            Setting::Pipeline(n) => load.pipeline = n,
            Setting::Protocol(p) => protocol = p,
            Setting::BufferSize(n) => buffer_size = Some(n),
            Setting::ReadStrategy(r) => read_strategy = Some(r),
            Setting::Duration(d) => load.duration = Some(d),
            Setting::Warmup(d) => load.warmup = d,
            _ => unreachable!(
                "{} is not an echo setting: Setting::parse refuses it",
                s.key()
            ),
        }
    }
    load.protocol = protocol;
    if backend == Backend::EpollEt && read_strategy == Some(ReadStrategy::Once) {
        return Err("n/a (one read per edge strands data)".to_string());
    }
    let subject = Subject::Ours {
        backend,
        model,
        threads: if model == Model::Reactor { 1 } else { threads },
    };
    if let Some(why) = subject.cannot_run(&load) {
        return Err(why);
    }
    Ok(BenchPlan {
        subjects: vec![subject],
        runs,
        load,
        server_cpu,
        server_args: bench::server_args(read_strategy, buffer_size, protocol),
        kernel_counts: false,
    })
}

fn ring(exp: &Experiment, progress: &mut dyn FnMut(Step)) -> Vec<Row> {
    let mut rows: Vec<Row> = exp.points.iter().map(|p| row(p)).collect();
    let configs: Vec<RingConfig> = exp.points.iter().map(|p| ring_config(p)).collect();
    // Decided once, not on every run: it lists /proc/self/fd and asks for the limit.
    for (r, cfg) in rows.iter_mut().zip(&configs) {
        r.not_applicable = cfg.cannot_run();
    }
    let mut measured = vec![Vec::new(); rows.len()];
    let total = rows.len() * exp.runs;
    for run in 0..exp.runs {
        for (i, cfg) in configs.iter().enumerate() {
            progress(Step {
                done: run * rows.len() + i,
                total,
                what: &format!(
                    "run {}/{}: {} with {} descriptors, {} active",
                    run + 1,
                    exp.runs,
                    cfg.backend.name(),
                    cfg.descriptors,
                    cfg.active
                ),
            });
            if rows[i].not_applicable.is_some() {
                continue;
            }
            match bench::measure_ring(cfg) {
                Ok(its) => measured[i].extend(its),
                Err(e) => rows[i].failures.push(format!("run {}: {e:#}", run + 1)),
            }
        }
    }
    for (r, m) in rows.iter_mut().zip(&measured) {
        summarise(r, RING_FIGURES, m);
    }
    rows
}

fn ring_config(point: &[Setting]) -> RingConfig {
    let mut cfg = RingConfig::DEFAULT;
    for s in point {
        match *s {
            Setting::Backend(b) => cfg.backend = b,
            Setting::Descriptors(n) => cfg.descriptors = n,
            Setting::Active(n) => cfg.active = n,
            Setting::Writes(n) => cfg.writes = n,
            Setting::Iterations(n) => cfg.iterations = n,
            _ => unreachable!("{} is not a ring setting", s.key()),
        }
    }
    cfg
}

/// Points that share a file (size, chunk, cache state) are one `transfer` run of
/// their methods, so that the file is written once per run.
fn transfer(exp: &Experiment, progress: &mut dyn FnMut(Step)) -> Vec<Row> {
    let mut rows: Vec<Row> = exp.points.iter().map(|p| row(p)).collect();
    let mut groups: Vec<(TransferConfig, Vec<usize>)> = Vec::new();
    for (i, point) in exp.points.iter().enumerate() {
        let mut cfg = TransferConfig {
            methods: Vec::new(),
            file: None,
            file_size: 320 << 20,
            chunk: 32 << 10,
            cold: false,
        };
        let mut method = Method::ReadWrite;
        for s in point {
            match *s {
                Setting::Method(m) => method = m,
                Setting::FileSize(n) => cfg.file_size = n as u64,
                Setting::Chunk(n) => cfg.chunk = n,
                Setting::Cold(c) => cfg.cold = c,
                _ => unreachable!("{} is not a transfer setting", s.key()),
            }
        }
        let same = |(g, _): &&mut (TransferConfig, Vec<usize>)| {
            (g.file_size, g.chunk, g.cold) == (cfg.file_size, cfg.chunk, cfg.cold)
        };
        match groups.iter_mut().find(same) {
            Some((g, members)) => {
                g.methods.push(method);
                members.push(i);
            }
            None => {
                cfg.methods.push(method);
                groups.push((cfg, vec![i]));
            }
        }
    }
    let mut measured = vec![Vec::new(); rows.len()];
    let total = groups.len() * exp.runs;
    for run in 0..exp.runs {
        for (g, (cfg, members)) in groups.iter().enumerate() {
            progress(Step {
                done: run * groups.len() + g,
                total,
                what: &format!("run {}/{}: {} MB", run + 1, exp.runs, cfg.file_size >> 20),
            });
            match transfer::run(cfg) {
                Ok(results) => {
                    for (&i, r) in members.iter().zip(results) {
                        measured[i].push(r);
                    }
                }
                Err(e) => {
                    for &i in members {
                        rows[i].failures.push(format!("run {}: {e:#}", run + 1));
                    }
                }
            }
        }
    }
    for (r, m) in rows.iter_mut().zip(&measured) {
        summarise(r, transfer::FIGURES, m);
        if let Some(first) = m.first() {
            r.warnings.push(Warning::PageCache {
                state: first.cache.clone(),
            });
        }
    }
    rows
}
