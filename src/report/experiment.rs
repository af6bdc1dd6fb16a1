//! An experiment's results as files: README.md (the question, what the data shows,
//! tables and plots, how it was measured, the command and the machine), data.csv,
//! data.json, and one SVG per sweep and plotted figure.

use super::grid::spread_cell;
use super::number;
use super::plot::{self, Chart, Point, Series, XAxis};
use super::table;
use crate::experiment::{Column, Experiment, Kind, Results, Row, Setting, Sweep};
use crate::metrics::{Machine, Spread};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Writes `results` of `exp`, run by `command`, into `out`.
pub fn write(exp: &Experiment, results: &Results, command: &str, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    remove_old_plots(out)?;
    let save = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    save(
        "data.json",
        serde_json::to_string_pretty(&Data::of(exp, results, command))? + "\n",
    )?;
    save("data.csv", csv(results)?)?;
    // Per sweep, each plot's file and title, or why there is none (e.g. a figure no
    // point has): the measurements are never lost to a plot that cannot be drawn.
    let mut plots: Vec<Vec<Result<(String, String), String>>> = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    for (i, sweep) in exp.sweeps.iter().enumerate() {
        let mut files = Vec::new();
        for key in &sweep.plots {
            let column = column(results, key);
            let mut chart = chart(sweep, results, column);
            let mut file = format!("{key}-by-{}.svg", sweep.x);
            if taken.contains(&file) {
                let name = sweep_name(sweep, i);
                file = format!("{key}-by-{}-{}.svg", sweep.x, name.replace(' ', "-"));
                chart.title += &format!(" ({name})");
            }
            match plot::svg(&chart) {
                Ok(svg) => {
                    save(&file, svg)?;
                    taken.push(file.clone());
                    files.push(Ok((file, chart.title)));
                }
                Err(e) => files.push(Err(format!("{}: not plotted ({e:#})", chart.title))),
            }
        }
        plots.push(files);
    }
    save("README.md", readme(exp, results, command, &plots))
}

/// data.json: the experiment, the machine, and every point with each of its
/// measurements' own figures; the warnings in words, as the README has them.
#[derive(Serialize)]
struct Data<'a> {
    name: &'a str,
    title: &'a str,
    question: &'a str,
    kind: Kind,
    runs: usize,
    quick: bool,
    command: &'a str,
    machine: &'a Machine,
    seconds: f64,
    columns: &'a [Column],
    rows: Vec<RowData<'a>>,
    /// The experiment file as it was run.
    file: &'a str,
}

#[derive(Serialize)]
struct RowData<'a> {
    #[serde(serialize_with = "settings_map")]
    settings: &'a [Setting],
    not_applicable: &'a Option<String>,
    failures: &'a [String],
    warnings: Vec<String>,
    measurements: usize,
    figures: &'a BTreeMap<&'static str, Spread>,
    raw: &'a serde_json::Value,
}

impl<'a> Data<'a> {
    fn of(exp: &'a Experiment, results: &'a Results, command: &'a str) -> Data<'a> {
        Data {
            name: &exp.name,
            title: &exp.title,
            question: &exp.question,
            kind: exp.kind,
            runs: exp.runs,
            quick: exp.quick,
            command,
            machine: &results.machine,
            seconds: results.seconds,
            columns: &results.columns,
            rows: results.rows.iter().map(RowData::of).collect(),
            file: &exp.source,
        }
    }
}

impl<'a> RowData<'a> {
    fn of(row: &'a Row) -> RowData<'a> {
        RowData {
            settings: &row.settings,
            not_applicable: &row.not_applicable,
            failures: &row.failures,
            warnings: row.warnings.iter().map(|w| w.to_string()).collect(),
            measurements: row.measurements,
            figures: &row.figures,
            raw: &row.raw,
        }
    }
}

/// Settings as a JSON object: `{"backend": "poll", "idle_connections": 1000}`.
fn settings_map<S: serde::Serializer>(settings: &&[Setting], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(settings.len()))?;
    for setting in settings.iter() {
        map.serialize_entry(setting.key(), &setting.datum())?;
    }
    map.end()
}

/// A folder that holds an earlier run's results (its data.json) loses that run's
/// plots, so that none outlives the README that showed it; other files are left alone.
fn remove_old_plots(out: &Path) -> Result<()> {
    if !out.join("data.json").exists() {
        return Ok(());
    }
    let entries = std::fs::read_dir(out).with_context(|| format!("listing {}", out.display()))?;
    for path in entries.filter_map(|e| Some(e.ok()?.path())) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.contains("-by-") && n.ends_with(".svg")) {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the old plot {}", path.display()))?;
        }
    }
    Ok(())
}

/// The sweep's `name`, or its number.
fn sweep_name(sweep: &Sweep, index: usize) -> String {
    sweep
        .name
        .clone()
        .unwrap_or_else(|| format!("sweep {}", index + 1))
}

fn column<'a>(results: &'a Results, key: &str) -> &'a Column {
    results
        .columns
        .iter()
        .find(|c| c.key == key)
        .expect("figure names are checked before measuring")
}

/// Every setting column that appears, then each figure's median, min and max.
fn csv(results: &Results) -> Result<String> {
    let mut keys: Vec<&str> = Vec::new();
    for s in results.rows.iter().flat_map(|r| &r.settings) {
        if !keys.contains(&s.key()) {
            keys.push(s.key());
        }
    }
    let figures = || results.columns.iter().map(|c| c.key);
    let mut header: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    header.extend(["not_applicable".to_string(), "failures".to_string()]);
    header.extend(table::spread_columns(figures()));
    let rows: Vec<Vec<String>> = results
        .rows
        .iter()
        .map(|r| {
            let mut cells: Vec<String> = keys
                .iter()
                .map(|k| {
                    r.setting(k).map_or(String::new(), |s| match s.datum() {
                        serde_json::Value::String(t) => t,
                        v => v.to_string(),
                    })
                })
                .collect();
            cells.push(r.not_applicable.clone().unwrap_or_default());
            cells.push(r.failures.len().to_string());
            cells.extend(table::spread_cells(figures(), &r.figures));
            cells
        })
        .collect();
    table::csv(&header, &rows)
}

/// Rows of one sweep, with the label of the series each belongs to.
fn sweep_rows<'a>(sweep: &Sweep, results: &'a Results) -> Vec<(&'a Row, String)> {
    let series_keys: Vec<&str> = sweep
        .varied()
        .into_iter()
        .filter(|k| *k != sweep.x)
        .collect();
    sweep
        .points
        .iter()
        .map(|&i| {
            let row = &results.rows[i];
            // Names stand alone ("epoll-et"), numbers say what they count ("active=1").
            let label: Vec<String> = series_keys
                .iter()
                .filter_map(|k| row.setting(k))
                .map(|s| match s.number() {
                    Some(_) => format!("{}={}", s.key(), s.value()),
                    None => s.value(),
                })
                .collect();
            (row, label.join(" "))
        })
        .collect()
}

fn x_value(row: &Row, x: &str) -> String {
    row.setting(x).map_or(String::new(), |s| s.value())
}

fn chart(sweep: &Sweep, results: &Results, column: &Column) -> Chart {
    let rows = sweep_rows(sweep, results);
    let numeric = rows
        .iter()
        .all(|(r, _)| r.setting(sweep.x).and_then(|s| s.number()).is_some());
    let mut categories: Vec<String> = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    // Why a series has no value, and where.
    let mut missing: Vec<(String, Vec<String>)> = Vec::new();
    for (row, label) in &rows {
        let x = if numeric {
            row.setting(sweep.x).and_then(|s| s.number()).unwrap_or(0.0)
        } else {
            let name = x_value(row, sweep.x);
            match categories.iter().position(|c| *c == name) {
                Some(i) => i as f64,
                None => {
                    categories.push(name);
                    (categories.len() - 1) as f64
                }
            }
        };
        let name = if label.is_empty() {
            "median (min-max)"
        } else {
            label
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
        match (row.figures.get(column.key), &row.not_applicable) {
            (Some(v), None) => series[at].points.push(Point {
                x,
                median: v.median,
                min: v.min,
                max: v.max,
            }),
            (_, why) => {
                series[at].unavailable.push(x);
                let why = format!(
                    "{}: {}",
                    series[at].name,
                    why.as_deref().unwrap_or("not measured")
                );
                match missing.iter_mut().find(|(w, _)| *w == why) {
                    Some((_, xs)) => xs.push(x_value(row, sweep.x)),
                    None => missing.push((why, vec![x_value(row, sweep.x)])),
                }
            }
        }
    }
    let notes = missing
        .into_iter()
        .map(|(why, xs)| format!("{why} at {} {}", sweep.x, xs.join(", ")))
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [p.min, p.max]))
        .collect();
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.x))
        .collect();
    Chart {
        title: format!("{} by {}", column.label.trim(), sweep.x),
        x_label: sweep.x.replace('_', " "),
        y_label: column.label.trim().to_string(),
        x: if numeric {
            XAxis::Numeric {
                log: spans(&xs, 100.0),
            }
        } else {
            XAxis::Categories(categories)
        },
        y_log: spans(&ys, 50.0),
        series,
        notes,
    }
}

/// All positive, and the largest at least `ratio` times the smallest: a log axis.
fn spans(values: &[f64], ratio: f64) -> bool {
    let (lo, hi) = values.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    lo > 0.0 && hi / lo >= ratio
}

/// One sentence per plotted figure of each sweep, computed from the medians.
fn what_it_shows(exp: &Experiment, results: &Results) -> Vec<String> {
    let mut out = Vec::new();
    for sweep in &exp.sweeps {
        let rows = sweep_rows(sweep, results);
        let mut labels: Vec<&String> = Vec::new();
        for (_, l) in &rows {
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        for key in &sweep.plots {
            let column = column(results, key);
            let parts: Vec<String> = labels
                .iter()
                .map(|label| {
                    let mine: Vec<&Row> = rows
                        .iter()
                        .filter(|(_, l)| l == *label)
                        .map(|(r, _)| *r)
                        .collect();
                    let who = if label.is_empty() {
                        String::new()
                    } else {
                        format!("{label}: ")
                    };
                    format!("{who}{}", trend(&mine, sweep.x, column))
                })
                .collect();
            out.push(format!(
                "**{}** by {}: {}.",
                column.label.trim(),
                sweep.x,
                parts.join("; ")
            ));
        }
    }
    out
}

/// How one series' figure moves along x: first to last for a numeric x, each value
/// against the first for names.
fn trend(rows: &[&Row], x: &str, column: &Column) -> String {
    let numeric = rows
        .iter()
        .all(|r| r.setting(x).and_then(|s| s.number()).is_some());
    let value = |r: &Row| r.figures.get(column.key).map(|s| s.median);
    let at = |r: &Row| {
        let v = number(value(r).unwrap_or(0.0), column.decimals);
        if numeric {
            format!("{v} at {}", x_value(r, x))
        } else {
            format!("{} {v}", x_value(r, x))
        }
    };
    let measured: Vec<&Row> = rows
        .iter()
        .copied()
        .filter(|r| value(r).is_some())
        .collect();
    let missing: Vec<&Row> = rows
        .iter()
        .copied()
        .filter(|r| value(r).is_none())
        .collect();
    // A change whose two min-max ranges overlap is within this machine's noise: say so
    // rather than let a median-to-median figure pass for an effect.
    let ratio = |first: &Row, r: &Row| {
        let text = change(value(first).unwrap_or(0.0), value(r).unwrap_or(0.0));
        match (first.figures.get(column.key), r.figures.get(column.key)) {
            (Some(a), Some(b)) if a.min <= b.max && b.min <= a.max => {
                format!("{text}, ranges overlap")
            }
            _ => text,
        }
    };
    let mut text = match measured.as_slice() {
        [] => String::new(),
        [only] => at(only),
        [first, .., last] if numeric => {
            format!("{} → {} ({})", at(first), at(last), ratio(first, last))
        }
        [first, rest @ ..] => {
            let mut parts = vec![at(first)];
            parts.extend(
                rest.iter()
                    .map(|r| format!("{} ({} vs {})", at(r), ratio(first, r), x_value(first, x))),
            );
            parts.join(", ")
        }
    };
    if let Some(first) = missing.first() {
        let why = first.not_applicable.as_deref().unwrap_or("not measured");
        let xs: Vec<String> = missing.iter().map(|r| x_value(r, x)).collect();
        if !text.is_empty() {
            text += "; ";
        }
        text += &format!("{why} at {}", xs.join(", "));
    }
    text
}

/// From `a` to `b`: a percentage for moderate changes, a factor for large ones
/// (a fall to a thousandth reads better as 0.001x than as -100%).
fn change(a: f64, b: f64) -> String {
    let r = b / a;
    if !r.is_finite() {
        "-".to_string()
    } else if (0.5..=2.0).contains(&r) {
        match ((r - 1.0) * 100.0).round() {
            0.0 => "±0%".to_string(),
            p => format!("{p:+.0}%"),
        }
    } else if r >= 10.0 {
        format!("{r:.0}x")
    } else if r >= 0.1 {
        format!("{r:.2}x")
    } else {
        // Two significant digits, so that 1 call against 20,481 is not 0.000x.
        let decimals = (1.0 - r.log10().floor()).max(0.0) as usize;
        format!("{r:.decimals$}x")
    }
}

fn method(kind: Kind, runs: usize, cores: usize) -> String {
    let pinning = if cores >= 2 {
        "as a child process pinned to CPU 0, driven by the load generator pinned to CPU 1"
    } else {
        "as a child process, driven by the load generator (one CPU: nothing pinned)"
    };
    match kind {
        Kind::Echo => format!(
            "Each point: our echo server {pinning} (closed loop, every echoed byte verified), \
             as `iobench compare` does. {runs} run(s) per point, interleaved across all points (run 1 of \
             every point, then run 2, ...). Figures are medians over the runs with (min–max); \
             per-request figures divide by the requests completed in the measured window; \
             system calls are our own count (the kernel's /proc count agrees within 1%, or a \
             warning below says otherwise)."
        ),
        Kind::Dispatch => format!(
            "libevent's benchmark (test/bench.c): descriptors in a ring, `active` of them made \
             readable at the start; each readiness callback reads its byte and writes one to \
             the next descriptor, until `writes` writes; every pass is a wait that does not \
             block plus its callbacks, all in one thread, no TCP. Unlike libevent, both ends of \
             each socketpair are watched (writing to one end makes the other readable), so N \
             watched descriptors take N of the process's descriptors, not 2N (10,000 fit \
             under a limit of 20,000, and select reaches about 1,000 before FD_SETSIZE). Each run \
             registers the ring once, makes one untimed iteration, then `iterations` timed \
             ones; {runs} run(s) per point, interleaved. Figures are medians over every timed \
             iteration with (min–max)."
        ),
        Kind::Transfer => format!(
            "`iobench transfer`: a generated file sent over loopback TCP to a sink thread, which \
             verifies size and checksum; system calls are the sender's transfer loop (our own \
             count), CPU time and context switches the sender thread's (getrusage). The \
             article's predictions stand beside the measured counts. {runs} run(s), the file \
             written once per run; medians with (min–max)."
        ),
    }
}

fn readme(
    exp: &Experiment,
    results: &Results,
    command: &str,
    plots: &[Vec<Result<(String, String), String>>],
) -> String {
    let mut out = format!("# {}\n\n", exp.title);
    if exp.quick {
        out += "> **Quick smoke run** (`--quick`): fewer runs and points, short windows. \
                Not a reference result.\n\n";
    }
    out += &format!("**Question.** {}\n\n", exp.question);
    if let Some(b) = &exp.background {
        out += &format!("**Background.** {}\n\n", b.trim());
    }
    out += "## What it shows\n\n";
    out += "Computed from the medians below (first to last value of each line, or each \
            value against the first); \"ranges overlap\" marks a change smaller than the \
            spread between runs:\n\n";
    for line in what_it_shows(exp, results) {
        out += &format!("- {line}\n");
    }
    out += "\n## Results\n\n";
    for (i, (sweep, files)) in exp.sweeps.iter().zip(plots).enumerate() {
        if exp.sweeps.len() > 1 {
            out += &format!("### {}\n\n", sweep_name(sweep, i));
        }
        out += &table(sweep, results, &exp.table);
        out += "\n";
        for plot in files {
            match plot {
                Ok((file, alt)) => out += &format!("![{alt}]({file})\n"),
                Err(why) => out += &format!("*{why}*\n"),
            }
        }
        out += "\n";
    }
    out += "## How it was measured\n\n";
    out += &method(exp.kind, exp.runs, results.machine.cores);
    out += "\n\n";
    out += &format!(
        "- Command: `{}` ({:.0} s)\n- Machine: {}, {} CPUs, {}; {}\n- Files: `data.csv` (one \
         row per point: its settings, then each figure's median, min and max), `data.json` \
         (the same with every run's own figures, the machine and the experiment file)\n",
        command,
        results.seconds,
        results.machine.cpu,
        results.machine.cores,
        results.machine.kernel,
        results.machine.date
    );
    // Each distinct note once, with how many points it came from.
    let mut notes: Vec<(String, usize)> = Vec::new();
    for r in &results.rows {
        let failures = r.failures.iter().map(|f| format!("failed: {f}"));
        for n in failures.chain(r.warnings.iter().map(|w| w.to_string())) {
            match notes.iter_mut().find(|(m, _)| *m == n) {
                Some((_, count)) => *count += 1,
                None => notes.push((n, 1)),
            }
        }
    }
    if !notes.is_empty() {
        out += "\n## Notes from the measurement\n\n";
        for (n, count) in notes {
            match count {
                1 => out += &format!("- {n}\n"),
                _ => out += &format!("- {n} ({count} points)\n"),
            }
        }
    }
    out
}

/// A sweep's points as a Markdown table: its varied settings, then the figures.
fn table(sweep: &Sweep, results: &Results, figures: &[String]) -> String {
    let keys = sweep.varied();
    let columns: Vec<&Column> = figures.iter().map(|k| column(results, k)).collect();
    let mut header: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    header.extend(columns.iter().map(|c| c.label.trim().to_string()));
    let rows: Vec<Vec<String>> = sweep_rows(sweep, results)
        .into_iter()
        .map(|(row, _)| {
            let mut cells: Vec<String> = keys.iter().map(|k| x_value(row, k)).collect();
            for (i, c) in columns.iter().enumerate() {
                cells.push(match (&row.not_applicable, row.figures.get(c.key)) {
                    (Some(why), _) if i == 0 => why.clone(),
                    (_, Some(v)) => spread_cell(v, c.decimals).inline(),
                    _ if i == 0 && !row.failures.is_empty() => "failed".to_string(),
                    _ => "-".to_string(),
                });
            }
            cells
        })
        .collect();
    table::markdown(&header, &rows)
}
