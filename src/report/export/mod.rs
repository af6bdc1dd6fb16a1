//! Bench results as files, one format per module, like hyperfine's exporters.

mod csv;
mod json;
mod markdown;

use crate::bench::BenchReport;
use anyhow::{Context, Result};
use std::path::Path;

type Render = fn(&BenchReport) -> Result<String>;

/// The export path that means standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Writes each export that was asked for; the one for standard output ([`is_stdout`])
/// is returned instead, for the caller to print.
pub fn write_all(
    report: &BenchReport,
    markdown: Option<&Path>,
    csv: Option<&Path>,
    json: Option<&Path>,
) -> Result<Option<String>> {
    let outputs: [(Option<&Path>, Render); 3] = [
        (markdown, markdown::render),
        (csv, csv::render),
        (json, json::render),
    ];
    let mut stdout = None;
    for (path, render) in outputs {
        if let Some(path) = path {
            let text = render(report)?;
            if is_stdout(path) {
                stdout = Some(text);
            } else {
                std::fs::write(path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(stdout)
}
