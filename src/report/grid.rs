//! The side-by-side grid of a bench: one row per figure, one column per subject.
//! The terminal table and the Markdown export both render this grid, in one of its
//! views: the classroom's few figures that tell the models apart, or all of them.

use super::plural;
use crate::bench::{BenchReport, FIGURES, HEADLINE, OUR_CALL_COUNTS, Subject, Summary};
use crate::metrics::{Figure, Spread};
use std::collections::BTreeMap;

/// The figures a table shows.
#[derive(Clone, Debug, PartialEq)]
pub enum View {
    /// [`CLASSROOM`]: the figures that tell the models apart, short labels.
    Classroom,
    /// Every figure measured, full labels, with each figure's range below it.
    All,
    /// These figures (keys of [`FIGURES`]), in this order.
    Pick(Vec<&'static str>),
}

/// The classroom view: the figures that tell the models apart, each with a label
/// short enough for an 80-column screen.
pub const CLASSROOM: &[(&str, &str)] = &[
    ("requests_per_s", "requests/s"),
    ("p50_us", "latency p50 us"),
    ("p99_us", "latency p99 us"),
    // Open loop only: the latency without the correction, and why sends were late.
    ("p99_uncorrected_us", "p99 uncorrected us"),
    ("send_lag_p99_us", "p99 lag: generator"),
    ("backpressure_p99_us", "p99 lag: conn busy"),
    ("server_cpu_us_per_request", "server CPU us/req"),
    ("syscalls_per_request", "system calls/req"),
    // With --kernel-counts: the kernel's count beside ours, and the only one an
    // external server has.
    ("kernel_syscalls_per_request", "calls/req, kernel"),
    ("ring_ops_per_request", "ring ops/req"),
    ("wakeups_per_request", "wakeups/req"),
    ("fds_handed_per_wakeup", "fds handed/wakeup"),
    ("fds_scanned_per_wakeup", "fds scanned/wakeup"),
    ("context_switches_per_request", "ctx switches/req"),
];

impl View {
    /// Parses `--figures`: `all`, `default`, or figure keys separated by commas.
    pub fn parse(text: &str) -> Result<View, String> {
        match text {
            "default" => return Ok(View::Classroom),
            "all" => return Ok(View::All),
            _ => {}
        }
        let keys = text
            .split(',')
            .map(|key| {
                FIGURES
                    .iter()
                    .find(|f| f.key == key.trim())
                    .map(|f| f.key)
                    .ok_or_else(|| {
                        let keys: Vec<&str> = FIGURES.iter().map(|f| f.key).collect();
                        format!(
                            "`{key}` is not a figure; give all, default, or some of: {}",
                            keys.join(", ")
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(View::Pick(keys))
    }

    /// Whether this view shows the figure `key`.
    pub fn shows(&self, key: &str) -> bool {
        self.figures().iter().any(|(f, _)| f.key == key)
    }

    /// The figures shown, with their labels.
    fn figures(&self) -> Vec<(&'static Figure<crate::bench::RunResult>, &'static str)> {
        let figure = |key: &str| FIGURES.iter().find(|f| f.key == key);
        let short = |f: &'static Figure<_>| {
            CLASSROOM
                .iter()
                .find(|(key, _)| *key == f.key)
                .map_or(f.label, |(_, label)| *label)
        };
        match self {
            View::All => FIGURES.iter().map(|f| (f, f.label)).collect(),
            View::Classroom => CLASSROOM
                .iter()
                .filter_map(|(key, label)| Some((figure(key)?, *label)))
                .collect(),
            View::Pick(keys) => keys
                .iter()
                .filter_map(|key| figure(key))
                .map(|f| (f, short(f)))
                .collect(),
        }
    }
}

/// A cell: the median, the min-max range and the range's reach when there were
/// several runs that differed.
#[derive(Clone)]
pub struct GridCell {
    pub main: String,
    pub range: Option<String>,
    /// [`Spread::relative_reach`].
    pub reach: Option<f64>,
}

impl GridCell {
    /// On one line: `1,000 (900–1,100)`.
    pub fn inline(&self) -> String {
        match &self.range {
            Some(r) => format!("{} ({r})", self.main),
            None => self.main.clone(),
        }
    }

    /// The range on a line of its own under the median.
    pub fn stacked(&self) -> String {
        match &self.range {
            Some(r) => format!("{}\n({r})", self.main),
            None => self.main.clone(),
        }
    }

    /// Short: `1,000 ±10%`.
    pub fn compact(&self) -> String {
        match self.reach {
            Some(r) if r < 0.005 => format!("{} ±<1%", self.main),
            Some(r) => format!("{} ±{:.0}%", self.main, r * 100.0),
            None => self.main.clone(),
        }
    }
}

pub struct Grid {
    pub header: Vec<String>,
    pub rows: Vec<(String, Vec<GridCell>)>,
}

pub fn grid(report: &BenchReport, view: &View) -> Grid {
    let subjects = &report.summaries;
    let mut header = vec!["".to_string()];
    header.extend(subjects.iter().map(|s| match view {
        View::All => format!("{} ({})", s.subject, plural(s.runs, "run")),
        _ => s.subject.clone(),
    }));
    // The first figure always, to say why a subject has none; the others where measured.
    let figures: Vec<_> = view
        .figures()
        .into_iter()
        .enumerate()
        .filter(|(i, (f, _))| *i == 0 || subjects.iter().any(|s| s.figures.contains_key(f.key)))
        .map(|(_, f)| f)
        .collect();
    let keys: Vec<(&str, usize)> = figures.iter().map(|(f, _)| (f.key, f.decimals)).collect();
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
    for (i, (f, label)) in figures.iter().enumerate() {
        let cells = columns.iter().map(|c| c[i].clone()).collect();
        rows.push((label.to_string(), cells));
        if f.key == HEADLINE && subjects.len() > 1 {
            rows.push(ratio_row(report));
        }
    }
    if *view == View::All {
        rows.push((
            "top system calls/request (ours)".to_string(),
            subjects.iter().map(top_syscalls).collect(),
        ));
    }
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
             --kernel-counts for every call) has them all.",
            marked.join(", ")
        )
    })
}

/// The subject ratios are taken against: the baseline, or, when it measured nothing
/// (select past its limit), the first subject that did.
pub fn baseline(report: &BenchReport) -> Option<&Summary> {
    let measured = |s: &&Summary| s.figures.contains_key(HEADLINE);
    let all = &report.summaries;
    all.iter()
        .filter(measured)
        .find(|s| s.subject == report.baseline)
        .or_else(|| all.iter().find(measured))
}

/// Each subject's headline figure against the baseline's.
fn ratio_row(report: &BenchReport) -> (String, Vec<GridCell>) {
    let headline = |s: &Summary| s.figures.get(HEADLINE).map(|v| v.median);
    let base = baseline(report);
    let cells = report
        .summaries
        .iter()
        .map(|s| match (headline(s), base.and_then(headline)) {
            (Some(v), Some(b)) if b > 0.0 => text(&format!("{:.2}x", v / b)),
            _ => text("-"),
        })
        .collect();
    let name = base.map_or(report.baseline.as_str(), |b| &b.subject);
    (format!("ratio to {name}"), cells)
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
        reach: None,
    }
}

/// A median, with its min-max range when the runs differed.
fn spread_cell(s: &Spread, decimals: usize) -> GridCell {
    let differed = s.min != s.max;
    GridCell {
        main: number(s.median, decimals),
        range: differed.then(|| format!("{}–{}", number(s.min, decimals), number(s.max, decimals))),
        reach: differed.then(|| s.relative_reach()),
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
    /// A classroom label for a figure that does not exist would vanish silently.
    #[test]
    fn the_classroom_view_names_real_figures_in_short_labels() {
        for (key, label) in super::CLASSROOM {
            assert!(super::FIGURES.iter().any(|f| f.key == *key), "{key}");
            assert!(
                label.chars().count() <= 18,
                "{label}: too long for 80 columns"
            );
        }
        assert_eq!(
            super::View::parse("p99_us,requests_per_s"),
            Ok(super::View::Pick(vec!["p99_us", "requests_per_s"]))
        );
        assert!(
            super::View::parse("p99")
                .unwrap_err()
                .contains("requests_per_s")
        );
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(super::number(195560.4, 0), "195,560");
        assert_eq!(super::number(1234.5678, 2), "1,234.57");
        assert_eq!(super::number(12.0, 1), "12.0");
        assert_eq!(super::number(-1000.0, 0), "-1,000");
    }
}
