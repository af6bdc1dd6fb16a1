//! Declarative experiments, measured through `bench` and `transfer`, returned as data:
//! a file states a question, a workload and sweeps; running it measures every point
//! (runs interleaved across all points, as `compare` does) and returns each point's
//! figures and warnings; `report` writes `results/<name>/` (README.md, data.csv,
//! data.json, SVG plots).
//!
//! Layer: above `bench` and `transfer`; returns data, never formats.

mod measure;
mod setting;
mod spec;

pub use measure::columns;
pub use setting::{Kind, Setting};
pub use spec::{Experiment, Scale, Sweep};

use crate::bench::{Step, Warning};
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

/// What running an experiment measured: its figures, then one row per point, in the
/// order of [`Experiment::points`].
pub struct Results {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    pub machine: Machine,
    /// How long the measuring took.
    pub seconds: f64,
}

impl Results {
    /// Every measurement that failed, point by point.
    pub fn failures(&self) -> Vec<&str> {
        self.rows
            .iter()
            .flat_map(|r| &r.failures)
            .map(String::as_str)
            .collect()
    }
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

/// Measures every point of `exp`; `progress` hears of each measurement as it starts.
/// A measurement that fails is recorded in its row and the others go on.
pub fn run(exp: &Experiment, progress: &mut dyn FnMut(Step)) -> Result<Results> {
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
    let rows = measure::all(exp, progress);
    Ok(Results {
        columns,
        rows,
        machine: Machine::describe(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Every experiment file in `dir`: its name and title. A file that cannot be read is listed with why, and the others still are.
pub fn list(dir: &Path) -> Result<Vec<(String, Result<String>)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "cannot list {}: run from the project's folder, or pass --dir FOLDER",
                dir.display()
            )
        })?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files
        .iter()
        .map(|p| {
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, Experiment::load(p, Scale::Full).map(|e| e.title))
        })
        .collect())
}
