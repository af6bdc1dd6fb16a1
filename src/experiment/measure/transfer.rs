//! Transfer points: a file over loopback TCP, by method.

use super::{row, summarise};
use crate::bench::{Step, Warning};
use crate::experiment::{Experiment, Row, Setting};
use crate::transfer::{self, Method, TransferConfig};
use crate::units::Size;

/// Points that share a file (size, chunk, cache state) are one `transfer` run of
/// their methods, so that the file is written once per run.
pub fn measure(exp: &Experiment, progress: &mut dyn FnMut(Step)) -> Vec<Row> {
    let mut rows: Vec<Row> = exp.points.iter().map(|p| row(p)).collect();
    let groups = groups(&exp.points);
    let mut measured = vec![Vec::new(); rows.len()];
    let total = groups.len() * exp.runs;
    for run in 0..exp.runs {
        for (g, (cfg, members)) in groups.iter().enumerate() {
            progress(Step {
                done: run * groups.len() + g,
                total,
                what: &format!("run {}/{}: {}", run + 1, exp.runs, Size(cfg.file_size)),
                // How long a run takes depends on the machine: no plan to go by.
                planned: None,
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

/// The transfers to run: each with its methods, and the points they measure.
fn groups(points: &[Vec<Setting>]) -> Vec<(TransferConfig, Vec<usize>)> {
    let mut groups: Vec<(TransferConfig, Vec<usize>)> = Vec::new();
    for (i, point) in points.iter().enumerate() {
        let (mut cfg, method) = config(point);
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
    groups
}

/// One point's file and method.
fn config(point: &[Setting]) -> (TransferConfig, Method) {
    let mut cfg = TransferConfig::DEFAULT;
    let mut method = Method::ReadWrite;
    for s in point {
        match *s {
            Setting::Method(m) => method = m,
            Setting::FileSize(n) => cfg.file_size = n,
            Setting::Chunk(n) => cfg.chunk = n,
            Setting::Cold(c) => cfg.cold = c,
            _ => unreachable!("{} is not a transfer setting", s.key()),
        }
    }
    (cfg, method)
}
