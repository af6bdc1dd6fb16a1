//! The side-by-side grid of a bench: one row per figure, one column per subject.
//! The terminal table and the Markdown export both render this grid.

use crate::bench::{BenchReport, FIGURES, OUR_CALL_COUNTS, Subject, Summary};
use crate::metrics::Spread;
use std::collections::BTreeMap;

/// A cell: the median, and the min-max range when there were several runs.
#[derive(Clone)]
pub struct GridCell {
    pub main: String,
    pub range: Option<String>,
}

impl GridCell {
    /// On one line: `1,000 (900–1,100)`.
    pub fn inline(&self) -> String {
        match &self.range {
            Some(r) => format!("{} ({r})", self.main),
            None => self.main.clone(),
        }
    }
}

pub struct Grid {
    pub header: Vec<String>,
    pub rows: Vec<(String, Vec<GridCell>)>,
}

pub fn grid(report: &BenchReport) -> Grid {
    let subjects = &report.summaries;
    let mut header = vec!["".to_string()];
    header.extend(
        subjects
            .iter()
            .map(|s| format!("{} ({} runs)", s.subject, s.runs)),
    );
    // The first figure always, to say why a subject has none; the others where measured.
    let figures: Vec<_> = FIGURES
        .iter()
        .enumerate()
        .filter(|(i, f)| *i == 0 || subjects.iter().any(|s| s.figures.contains_key(f.key)))
        .map(|(_, f)| f)
        .collect();
    let keys: Vec<(&str, usize)> = figures.iter().map(|f| (f.key, f.decimals)).collect();
    let columns: Vec<Vec<GridCell>> = subjects
        .iter()
        .zip(&report.plan.subjects)
        .map(|(s, subject)| {
            let mut cells =
                figure_cells(&keys, &s.figures, s.not_applicable.as_deref(), &s.failures);
            if !sees_every_call(subject) {
                for (cell, (key, _)) in cells.iter_mut().zip(&keys) {
                    if OUR_CALL_COUNTS.contains(key) && s.figures.contains_key(key) {
                        cell.main = format!("{LOWER_BOUND}{}", cell.main);
                    }
                }
            }
            cells
        })
        .collect();
    let mut rows = Vec::new();
    for (i, f) in figures.iter().enumerate() {
        let cells = columns.iter().map(|c| c[i].clone()).collect();
        rows.push((f.label.to_string(), cells));
        if i == 0 {
            rows.push(ratio_row(report));
        }
    }
    rows.push((
        "top system calls/request (ours)".to_string(),
        subjects.iter().map(top_syscalls).collect(),
    ));
    Grid { header, rows }
}

/// What marks our count of a subject whose backend makes calls we cannot see.
pub const LOWER_BOUND: &str = "≥ ";

/// Whether our counting layer sees every system call of `subject` (an external
/// server has no count of ours at all).
fn sees_every_call(subject: &Subject) -> bool {
    match subject {
        Subject::Ours { backend, .. } => backend.counts_every_call(),
        Subject::External { .. } => true,
    }
}

/// The footnote of the lower-bound mark, when a column carries it.
pub fn lower_bound_note(report: &BenchReport) -> Option<String> {
    let marked: Vec<String> = report
        .plan
        .subjects
        .iter()
        .filter(|s| !sees_every_call(s))
        .map(Subject::name)
        .collect();
    (!marked.is_empty()).then(|| {
        let verb = if marked.len() == 1 { "makes" } else { "make" };
        format!(
            "{LOWER_BOUND}marks a lower bound: {} {verb} system calls of its own inside each \
             wait, which our count cannot see; the kernel's (the /proc rows, or \
             --kernel-counts for every call) has them all.\n",
            marked.join(", ")
        )
    })
}

/// Each subject's requests/s against the baseline's.
fn ratio_row(report: &BenchReport) -> (String, Vec<GridCell>) {
    let rps = |s: &Summary| s.figures.get("requests_per_s").map(|v| v.median);
    let base = report
        .summaries
        .iter()
        .find(|s| s.subject == report.baseline)
        .and_then(rps);
    let cells = report
        .summaries
        .iter()
        .map(|s| match (rps(s), base) {
            (Some(v), Some(b)) if b > 0.0 => text(&format!("{:.2}x", v / b)),
            _ => text("-"),
        })
        .collect();
    (format!("ratio to {}", report.baseline), cells)
}

/// One subject's (or experiment point's) cells for `figures` (key, decimals): each
/// figure's median and range; without any, the first cell says why (n/a, failed) and
/// the others are "-".
pub fn figure_cells(
    figures: &[(&str, usize)],
    measured: &BTreeMap<&str, Spread>,
    not_applicable: Option<&str>,
    failures: &[String],
) -> Vec<GridCell> {
    figures
        .iter()
        .enumerate()
        .map(
            |(i, (key, decimals))| match (not_applicable, measured.get(key)) {
                (Some(why), _) if i == 0 => text(why),
                (_, Some(spread)) => spread_cell(spread, *decimals),
                _ if i == 0 && !failures.is_empty() => text("failed"),
                _ => text("-"),
            },
        )
        .collect()
}

fn top_syscalls(s: &Summary) -> GridCell {
    let mut kinds: Vec<_> = s.syscalls_per_request.iter().collect();
    kinds.sort_by(|a, b| b.1.total_cmp(a.1));
    let parts: Vec<String> = kinds
        .iter()
        .filter(|(_, v)| **v >= 0.005)
        .take(4)
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect();
    text(&if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    })
}

fn text(s: &str) -> GridCell {
    GridCell {
        main: s.to_string(),
        range: None,
    }
}

/// A median, with its min-max range when the runs differed.
fn spread_cell(s: &Spread, decimals: usize) -> GridCell {
    GridCell {
        main: number(s.median, decimals),
        range: (s.min != s.max)
            .then(|| format!("{}–{}", number(s.min, decimals), number(s.max, decimals))),
    }
}

/// A number with thousands separators for large values.
/// A count as every table shows it: `20,481`.
pub fn count(n: u64) -> String {
    number(n as f64, 0)
}

pub fn number(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_grouped() {
        assert_eq!(super::number(195560.4, 0), "195,560");
        assert_eq!(super::number(1234.5678, 2), "1,234.57");
        assert_eq!(super::number(12.0, 1), "12.0");
        assert_eq!(super::number(-1000.0, 0), "-1,000");
    }
}
