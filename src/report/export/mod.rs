//! Bench results as files, one format per module, like hyperfine's exporters.

mod csv;
mod json;
mod markdown;

use crate::bench::BenchReport;
use anyhow::{Context, Result};
use std::path::Path;

type Render = fn(&BenchReport) -> Result<String>;

/// Writes each export that was asked for.
pub fn write_all(
    report: &BenchReport,
    markdown: Option<&Path>,
    csv: Option<&Path>,
    json: Option<&Path>,
) -> Result<()> {
    let outputs: [(Option<&Path>, Render); 3] = [
        (markdown, markdown::render),
        (csv, csv::render),
        (json, json::render),
    ];
    for (path, render) in outputs {
        if let Some(path) = path {
            let text = render(report)?;
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
