//! JSON: everything, including each run's raw figures.

use crate::bench::BenchReport;
use anyhow::Result;

pub fn render(report: &BenchReport) -> Result<String> {
    Ok(serde_json::to_string_pretty(report)? + "\n")
}
