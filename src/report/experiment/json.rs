//! data.json: the experiment, the machine, and every point with each of its
//! measurements' own figures; the warnings in words, as the README has them.

use crate::experiment::{Column, Experiment, Kind, Results, Row, Scale, Setting};
use crate::metrics::{Machine, Spread};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

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
