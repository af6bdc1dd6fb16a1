//! An experiment's results as files: README.md (the question, what the data shows,
//! tables and plots, how it was measured, the command and the machine), data.csv,
//! data.json, and one SVG per sweep and plotted figure.

mod csv;
mod json;
mod plots;
mod readme;
mod shows;
mod sweep;

use crate::experiment::{Experiment, Results};
use anyhow::{Context, Result};
use std::path::Path;

/// Writes `results` of `exp`, run by `command`, into `out`.
pub fn write(exp: &Experiment, results: &Results, command: &str, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    plots::remove_old(out)?;
    save(out, "data.json", json::render(exp, results, command)?)?;
    save(out, "data.csv", csv::render(results)?)?;
    let plots = plots::draw(exp, results, out)?;
    save(
        out,
        "README.md",
        readme::render(exp, results, command, &plots),
    )
}

fn save(out: &Path, name: &str, text: String) -> Result<()> {
    let path = out.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}
