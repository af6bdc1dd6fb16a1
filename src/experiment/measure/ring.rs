//! Ring points: libevent's socketpair ring on one backend, in this process.

use super::{row, summarise};
use crate::bench::{self, RING_FIGURES, RingConfig, Step};
use crate::experiment::{Experiment, Row, Setting};

pub fn measure(exp: &Experiment, progress: &mut dyn FnMut(Step)) -> Vec<Row> {
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
                // How long a run takes depends on the machine: no plan to go by.
                planned: None,
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
