//! The side-by-side grid of a bench: one row per figure, one column per subject.
//! The terminal table and the Markdown export both render this grid.

use crate::bench::{BenchReport, FIGURES, Summary};
use crate::metrics::Spread;

/// A cell: the median, and the min-max range when there were several runs.
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
    let mut rows = Vec::new();
    let base = subjects
        .iter()
        .find(|s| s.subject == report.baseline)
        .and_then(|s| s.figures.get("requests_per_s"))
        .map(|s| s.median);
    for (i, f) in FIGURES.iter().enumerate() {
        if subjects.iter().all(|s| !s.figures.contains_key(f.key)) && i > 0 {
            continue;
        }
        let cells = subjects
            .iter()
            .map(|s| match (&s.not_applicable, s.figures.get(f.key)) {
                (Some(why), _) if i == 0 => text(why),
                (_, Some(spread)) => spread_cell(spread, f.decimals),
                _ if i == 0 && !s.failures.is_empty() => text("failed"),
                _ => text("-"),
            })
            .collect();
        rows.push((f.label.to_string(), cells));
        if i == 0 {
            rows.push((
                format!("ratio to {}", report.baseline),
                subjects
                    .iter()
                    .map(|s| match (s.figures.get("requests_per_s"), base) {
                        (Some(v), Some(b)) if b > 0.0 => text(&format!("{:.2}x", v.median / b)),
                        _ => text("-"),
                    })
                    .collect(),
            ));
        }
    }
    rows.push((
        "top system calls/request (ours)".to_string(),
        subjects.iter().map(top_syscalls).collect(),
    ));
    Grid { header, rows }
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
pub fn spread_cell(s: &Spread, decimals: usize) -> GridCell {
    GridCell {
        main: number(s.median, decimals),
        range: (s.min != s.max)
            .then(|| format!("{}–{}", number(s.min, decimals), number(s.max, decimals))),
    }
}

/// A number with thousands separators for large values.
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
