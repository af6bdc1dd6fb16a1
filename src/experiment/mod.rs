//! Declarative experiments: a file states a question, a workload and sweeps; running
//! it measures every point (runs interleaved across all points, as `compare` does)
//! and writes `results/<name>/`: README.md, data.csv, data.json and SVG plots.

mod measure;
mod setting;
mod spec;

pub use setting::{Kind, Setting};
pub use spec::{Experiment, Sweep};

use crate::bench::Warning;
use crate::metrics::Machine;
use crate::metrics::Spread;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What one point of an experiment measured.
#[derive(Clone, Debug)]
pub struct Row {
    pub settings: Vec<Setting>,
    /// Why this point cannot be measured here (select's descriptor limit, ...).
    pub not_applicable: Option<String>,
    pub failures: Vec<String>,
    pub warnings: Vec<Warning>,
    /// Runs or iterations the figures summarise.
    pub measurements: usize,
    pub figures: BTreeMap<&'static str, Spread>,
    /// Every measurement's own figures.
    pub raw: serde_json::Value,
}

impl Row {
    pub fn setting(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.key() == key)
    }
}

/// A figure's name and how it is printed.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    pub decimals: usize,
}

/// An experiment's results.
pub struct Results<'a> {
    pub name: &'a str,
    pub title: &'a str,
    pub question: &'a str,
    pub kind: Kind,
    pub runs: usize,
    pub quick: bool,
    pub command: String,
    pub machine: Machine,
    pub seconds: f64,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    /// The experiment file as it was run.
    pub file: &'a str,
}

/// `FILE` or a bare name from `dir` (`idle-scaling` is `experiments/idle-scaling.toml`).
pub fn find(file: &str, dir: &Path) -> PathBuf {
    let path = PathBuf::from(file);
    if path.exists() || file.contains('/') || file.ends_with(".toml") {
        path
    } else {
        dir.join(format!("{file}.toml"))
    }
}

/// Runs an experiment and writes its results to `out`; returns where they went.
pub fn run(exp: &Experiment, out: &Path) -> Result<()> {
    let columns = measure::columns(exp.kind);
    for key in exp
        .table
        .iter()
        .chain(exp.sweeps.iter().flat_map(|s| &s.plots))
    {
        if !columns.iter().any(|c| c.key == key) {
            let known: Vec<&str> = columns.iter().map(|c| c.key).collect();
            bail!(
                "`{key}` is not a figure of this experiment; its figures: {}",
                known.join(", ")
            );
        }
    }
    let started = std::time::Instant::now();
    let rows = measure::all(exp);
    let results = Results {
        name: &exp.name,
        title: &exp.title,
        question: &exp.question,
        kind: exp.kind,
        runs: exp.runs,
        quick: exp.quick,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: Machine::describe(),
        seconds: started.elapsed().as_secs_f64(),
        columns,
        rows,
        file: &exp.source,
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    crate::report::experiment::write(exp, &results, out)?;
    let failures: Vec<&String> = results.rows.iter().flat_map(|r| &r.failures).collect();
    if let Some(first) = failures.first() {
        bail!(
            "{} measurements failed (the results in {} say which); the first: {first}",
            failures.len(),
            out.display()
        );
    }
    Ok(())
}

/// One line per experiment file in `dir`: its name and title.
pub fn list(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "cannot list {}: run from the project's folder",
                dir.display()
            )
        })?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let e = Experiment::load(p, false)?;
            Ok((e.name, e.title))
        })
        .collect()
}
