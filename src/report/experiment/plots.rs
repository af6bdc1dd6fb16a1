//! One SVG per sweep and plotted figure: each series a line (or a group of bars over
//! names), with where it could not be measured marked and said under the plot.

use super::save;
use super::sweep::{column, numeric, place, sweep_name, sweep_rows, unmeasured, x_number, x_value};
use crate::experiment::{Column, Experiment, Results, Sweep};
use crate::report::plot::{self, Chart, Point, Series, XAxis};
use anyhow::{Context, Result};
use std::path::Path;

/// A sweep's plot: its file and title, or why it could not be drawn.
pub enum Plot {
    Drawn { file: String, title: String },
    NotDrawn(String),
}

/// Draws every sweep's plots into `out`, sweep by sweep. A plot that cannot be drawn
/// (e.g. of a figure no point has) is named with the reason: the measurements are
/// never lost to it.
pub fn draw(exp: &Experiment, results: &Results, out: &Path) -> Result<Vec<Vec<Plot>>> {
    let mut taken: Vec<String> = Vec::new();
    let mut all = Vec::new();
    for (i, sweep) in exp.sweeps.iter().enumerate() {
        let mut plots = Vec::new();
        for key in &sweep.plots {
            let mut chart = chart(sweep, results, column(results, key));
            let mut file = file_name(key, sweep.x, None);
            // Two sweeps plotting the same figure by the same x: the second says which.
            if taken.contains(&file) {
                let name = sweep_name(sweep, i);
                file = file_name(key, sweep.x, Some(&name));
                chart.title += &format!(" ({name})");
            }
            match plot::svg(&chart) {
                Ok(svg) => {
                    save(out, &file, svg)?;
                    taken.push(file.clone());
                    plots.push(Plot::Drawn {
                        file,
                        title: chart.title,
                    });
                }
                Err(e) => plots.push(Plot::NotDrawn(format!(
                    "{}: not plotted ({e:#})",
                    chart.title
                ))),
            }
        }
        all.push(plots);
    }
    Ok(all)
}

/// `requests_per_s-by-idle_connections.svg`, or with the sweep's name when two
/// sweeps would take the same file.
fn file_name(key: &str, x: &str, sweep: Option<&str>) -> String {
    match sweep {
        None => format!("{key}-by-{x}.svg"),
        Some(name) => format!("{key}-by-{x}-{}.svg", name.replace(' ', "-")),
    }
}

/// Whether a file is one of our plots, by its name (see [`file_name`]).
fn is_plot(name: &str) -> bool {
    name.contains("-by-") && name.ends_with(".svg")
}

/// A folder that holds an earlier run's results (its data.json) loses that run's
/// plots, so that none outlives the README that showed it; other files are left alone.
pub fn remove_old(out: &Path) -> Result<()> {
    if !out.join("data.json").exists() {
        return Ok(());
    }
    let entries = std::fs::read_dir(out).with_context(|| format!("listing {}", out.display()))?;
    for path in entries.filter_map(|e| Some(e.ok()?.path())) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| is_plot(&n)) {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the old plot {}", path.display()))?;
        }
    }
    Ok(())
}

/// One figure over a sweep: a series per label, x numeric or by name.
fn chart(sweep: &Sweep, results: &Results, column: &Column) -> Chart {
    let rows = sweep_rows(sweep, results);
    let numeric = numeric(rows.iter().map(|(r, _)| *r), sweep.x);
    let mut categories: Vec<String> = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    // Why a series has no value, and where.
    let mut missing: Vec<(String, Vec<String>)> = Vec::new();
    for (row, label) in &rows {
        let x = match numeric {
            true => x_number(row, sweep.x).unwrap_or(0.0),
            false => place(&mut categories, x_value(row, sweep.x)) as f64,
        };
        let series = series_named(&mut series, label);
        match (row.figures.get(column.key), &row.not_applicable) {
            (Some(v), None) => series.points.push(Point {
                x,
                median: v.median,
                min: v.min,
                max: v.max,
            }),
            _ => {
                series.unavailable.push(x);
                let why = format!("{}: {}", series.name, unmeasured(row));
                let at = x_value(row, sweep.x);
                match missing.iter_mut().find(|(w, _)| *w == why) {
                    Some((_, xs)) => xs.push(at),
                    None => missing.push((why, vec![at])),
                }
            }
        }
    }
    let notes = missing
        .into_iter()
        .map(|(why, xs)| format!("{why} at {} {}", sweep.x, xs.join(", ")))
        .collect();
    Chart {
        title: format!("{} by {}", column.label.trim(), sweep.x),
        x_label: sweep.x.replace('_', " "),
        y_label: column.label.trim().to_string(),
        x: match numeric {
            true => XAxis::Numeric {
                log: log_x(series.iter().flat_map(|s| s.points.iter().map(|p| p.x))),
            },
            false => XAxis::Categories(categories),
        },
        y_log: spans(
            series
                .iter()
                .flat_map(|s| s.points.iter().flat_map(|p| [p.min, p.max])),
            50.0,
        ),
        series,
        notes,
    }
}

/// The series of this label (a single unnamed series is the median with its range).
fn series_named<'a>(series: &'a mut Vec<Series>, label: &str) -> &'a mut Series {
    let name = match label {
        "" => "median (min-max)",
        label => label,
    };
    let at = match series.iter().position(|s| s.name == name) {
        Some(i) => i,
        None => {
            series.push(Series {
                name: name.to_string(),
                points: Vec::new(),
                unavailable: Vec::new(),
            });
            series.len() - 1
        }
    };
    &mut series[at]
}

/// A log x axis when no x is negative and the positive ones span a decade or more: on a
/// linear axis 0..10,000, the points at 0 and 100 would crowd into one corner. A 0 is
/// still drawn, left of the smallest positive x (see `plot::XAxis`).
fn log_x(xs: impl Iterator<Item = f64>) -> bool {
    let xs: Vec<f64> = xs.collect();
    xs.iter().all(|x| *x >= 0.0) && spans(xs.into_iter().filter(|x| *x > 0.0), 10.0)
}

/// All positive, and the largest at least `ratio` times the smallest: a log axis.
fn spans(values: impl Iterator<Item = f64>, ratio: f64) -> bool {
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    lo > 0.0 && hi / lo >= ratio
}

#[cfg(test)]
mod tests {
    use super::log_x;

    #[test]
    fn x_axis_is_logarithmic_over_a_decade_or_more() {
        let log = |xs: &[f64]| log_x(xs.iter().copied());
        // idle-scaling: 0 beside positive x spanning two decades.
        assert!(log(&[0.0, 100.0, 1000.0, 5000.0, 10000.0]));
        // dispatch-cost, buffer-size, et-vs-lt, zero-copy's chunk sizes.
        assert!(log(&[100.0, 1000.0, 5000.0, 10000.0]));
        assert!(log(&[16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0]));
        assert!(log(&[1.0, 10.0]));
        // models' server threads, and short ranges.
        assert!(!log(&[1.0, 2.0]));
        assert!(!log(&[1.0, 2.0, 3.0, 4.0]));
        assert!(!log(&[0.0, 1.0, 5.0]));
        assert!(!log(&[0.0]));
        assert!(!log(&[-1.0, 10.0, 1000.0]));
    }
}
