//! data.json: the experiment, the machine, and every point with each of its
//! measurements' own figures; the warnings in words, as the README has them. Read back
//! to draw the plots again without measuring.

use crate::experiment::{self, Column, Experiment, Kind, Results, Row, Scale, Setting};
use crate::metrics::{Machine, Spread};
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub fn render(exp: &Experiment, results: &Results, command: &str) -> Result<String> {
    let data = Data {
        name: &exp.name,
        title: &exp.title,
        question: &exp.question,
        kind: exp.kind,
        runs: exp.runs,
        quick: exp.scale == Scale::Quick,
        command,
        machine: &results.machine,
        seconds: results.seconds,
        columns: &results.columns,
        rows: results.rows.iter().map(RowData::of).collect(),
        file: &exp.source,
    };
    Ok(serde_json::to_string_pretty(&data)? + "\n")
}

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

/// What [`load`] reads of data.json: what the plots need, and what checks it.
#[derive(Deserialize)]
struct Saved {
    name: String,
    quick: bool,
    machine: Machine,
    seconds: f64,
    rows: Vec<SavedRow>,
    file: String,
}

#[derive(Deserialize)]
struct SavedRow {
    settings: Map<String, Value>,
    not_applicable: Option<String>,
    failures: Vec<String>,
    measurements: usize,
    figures: BTreeMap<String, Spread>,
    raw: Value,
}

/// The experiment and results saved in `dir`/data.json: the experiment read again from
/// the file as it was run, each row checked to be its point. The warnings are saved in
/// words only, so the rows come back without them: enough for the plots, not for a
/// README.
pub fn load(dir: &Path) -> Result<(Experiment, Results)> {
    let path = dir.join("data.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: is it an experiment's results?",
            path.display()
        )
    })?;
    let saved: Saved = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an experiment's data.json", path.display()))?;
    let scale = match saved.quick {
        true => Scale::Quick,
        false => Scale::Full,
    };
    let exp = Experiment::parse(&saved.file, &saved.name, scale)
        .with_context(|| format!("the experiment file kept in {}", path.display()))?;
    if saved.rows.len() != exp.points.len() {
        bail!(
            "{} has {} rows, its experiment file {} points",
            path.display(),
            saved.rows.len(),
            exp.points.len()
        );
    }
    let columns = experiment::columns(exp.kind);
    let mut rows = Vec::new();
    for (i, (row, point)) in saved.rows.into_iter().zip(&exp.points).enumerate() {
        let settings: Map<String, Value> = (point.iter())
            .map(|s| (s.key().to_string(), s.datum()))
            .collect();
        if row.settings != settings {
            bail!(
                "{}: row {} is {}, but its experiment file's point {}",
                path.display(),
                i + 1,
                Value::Object(row.settings),
                Value::Object(settings)
            );
        }
        let figures = (row.figures.into_iter())
            .map(
                |(key, spread)| match columns.iter().find(|c| c.key == key) {
                    Some(c) => Ok((c.key, spread)),
                    None => Err(anyhow!(
                        "{}: `{key}` is not a figure of ours",
                        path.display()
                    )),
                },
            )
            .collect::<Result<_>>()?;
        rows.push(Row {
            settings: point.clone(),
            not_applicable: row.not_applicable,
            failures: row.failures,
            warnings: Vec::new(),
            measurements: row.measurements,
            figures,
            raw: row.raw,
        });
    }
    let results = Results {
        columns,
        rows,
        machine: saved.machine,
        seconds: saved.seconds,
    };
    Ok((exp, results))
}
