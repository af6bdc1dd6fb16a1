//! Measuring every point of an experiment, by kind: runs are interleaved across all
//! points (run 1 of every point, then run 2, ...) so that the machine's slow drifts
//! spread over all of them.

mod echo;
mod ring;
mod transfer;

use super::setting::{Kind, Setting};
use super::{Column, Experiment, Row};
use crate::bench::{FIGURES, RING_FIGURES, Step};
use crate::metrics::{Figure, spreads};
use serde::Serialize;

/// The figures an experiment of `kind` measures, in the order tables show them.
pub fn columns(kind: Kind) -> Vec<Column> {
    fn of<R>(figures: &[Figure<R>]) -> Vec<Column> {
        figures
            .iter()
            .map(|f| Column {
                key: f.key,
                label: f.label,
                decimals: f.decimals,
            })
            .collect()
    }
    match kind {
        Kind::Echo => of(FIGURES),
        Kind::Ring => of(RING_FIGURES),
        Kind::Transfer => of(crate::transfer::FIGURES),
    }
}

/// One row per point of `exp`, in its order.
pub fn all(exp: &Experiment, progress: &mut dyn FnMut(Step)) -> Vec<Row> {
    match exp.kind {
        Kind::Echo => echo::measure(exp, progress),
        Kind::Ring => ring::measure(exp, progress),
        Kind::Transfer => transfer::measure(exp, progress),
    }
}

/// A point's row before anything is measured.
fn row(settings: &[Setting]) -> Row {
    Row {
        settings: settings.to_vec(),
        not_applicable: None,
        failures: Vec::new(),
        warnings: Vec::new(),
        measurements: 0,
        figures: Default::default(),
        raw: serde_json::Value::Null,
    }
}

/// Fills a row's figures from its measurements.
fn summarise<R: Serialize>(row: &mut Row, figures: &[Figure<R>], measured: &[R]) {
    row.measurements = measured.len();
    row.figures = spreads(figures, measured);
    row.raw = serde_json::to_value(measured).unwrap_or_default();
}
