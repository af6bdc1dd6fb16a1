//! A figure: one named, formatted number computed from a measurement, defined once
//! and used by every table, CSV, plot and export; and its median and range over
//! repeated measurements.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One reported figure of a measurement `R` (an echo run, a dispatch iteration, a
/// transfer): defined once, used by every table, CSV, plot and export.
pub struct Figure<R> {
    pub key: &'static str,
    pub label: &'static str,
    pub decimals: usize,
    pub value: fn(&R) -> Option<f64>,
}

/// Median and range of every figure over a set of measurements; figures no
/// measurement has are left out.
pub fn spreads<R>(figures: &[Figure<R>], runs: &[R]) -> BTreeMap<&'static str, Spread> {
    figures
        .iter()
        .filter_map(|f| {
            let values = runs.iter().filter_map(|r| (f.value)(r)).collect();
            Spread::of(values).map(|spread| (f.key, spread))
        })
        .collect()
}

/// Median and range of one figure over repeated measurements.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(mut v: Vec<f64>) -> Option<Spread> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// Whether the two ranges share a value: the difference of their medians is then
    /// within the runs' noise.
    pub fn overlaps(&self, other: &Spread) -> bool {
        self.min <= other.max && other.min <= self.max
    }

    /// The larger distance from the median to an end of the range, as a share of the
    /// median: `0.06` prints as `±6%`.
    pub fn relative_reach(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.median).max(self.median - self.min) / self.median.abs()
        }
    }

    /// (max - min) / median.
    pub fn relative_range(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median
        }
    }
}
