//! "What it shows": one sentence per plotted figure of each sweep, computed from the
//! medians: how each series moves along x, and where it could not be measured.

use super::sweep::{column, numeric, place, sweep_rows, unmeasured, x_value};
use crate::experiment::{Column, Experiment, Results, Row};
use crate::report::number;

pub fn sentences(exp: &Experiment, results: &Results) -> Vec<String> {
    let mut out = Vec::new();
    for sweep in &exp.sweeps {
        let rows = sweep_rows(sweep, results);
        let mut labels: Vec<&str> = Vec::new();
        for (_, l) in &rows {
            place(&mut labels, l.as_str());
        }
        for key in &sweep.plots {
            let column = column(results, key);
            let parts: Vec<String> = labels
                .iter()
                .map(|label| {
                    let mine: Vec<&Row> = rows
                        .iter()
                        .filter(|(_, l)| l == label)
                        .map(|(r, _)| *r)
                        .collect();
                    match *label {
                        "" => trend(&mine, sweep.x, column),
                        label => format!("{label}: {}", trend(&mine, sweep.x, column)),
                    }
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
/// against the first for names; then where it has no value, and why.
fn trend(rows: &[&Row], x: &str, column: &Column) -> String {
    let (measured, missing): (Vec<&Row>, Vec<&Row>) = rows
        .iter()
        .partition(|r| r.figures.contains_key(column.key));
    let mut parts = Vec::new();
    if !measured.is_empty() {
        parts.push(moves(
            &measured,
            numeric(rows.iter().copied(), x),
            x,
            column,
        ));
    }
    if let Some(first) = missing.first() {
        let xs: Vec<String> = missing.iter().map(|r| x_value(r, x)).collect();
        parts.push(format!("{} at {}", unmeasured(first), xs.join(", ")));
    }
    parts.join("; ")
}

/// The measured values of a series along x, numbers or names.
fn moves(rows: &[&Row], numeric: bool, x: &str, column: &Column) -> String {
    let median = |r: &Row| r.figures.get(column.key).map_or(0.0, |s| s.median);
    let at = |r: &Row| {
        let v = number(median(r), column.decimals);
        match numeric {
            true => format!("{v} at {}", x_value(r, x)),
            false => format!("{} {v}", x_value(r, x)),
        }
    };
    // A change whose two min-max ranges overlap is within this machine's noise: say so
    // rather than let a median-to-median figure pass for an effect.
    let ratio = |first: &Row, r: &Row| {
        let text = change(median(first), median(r));
        match (first.figures.get(column.key), r.figures.get(column.key)) {
            (Some(a), Some(b)) if a.min <= b.max && b.min <= a.max => {
                format!("{text}, ranges overlap")
            }
            _ => text,
        }
    };
    match rows {
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
        [] => String::new(),
    }
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
    } else if r == 0.0 {
        // Its logarithm, below, would ask for infinitely many digits.
        "0x".to_string()
    } else {
        // Two significant digits, so that 1 call against 20,481 is not 0.000x.
        let decimals = (1.0 - r.log10().floor()).max(0.0) as usize;
        format!("{r:.decimals$}x")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn changes_read_as_percentages_or_factors() {
        assert_eq!(super::change(100.0, 100.2), "±0%");
        assert_eq!(super::change(100.0, 150.0), "+50%");
        assert_eq!(super::change(100.0, 1500.0), "15x");
        assert_eq!(super::change(100.0, 25.0), "0.25x");
        assert_eq!(super::change(20481.0, 1.0), "0.000049x");
        assert_eq!(super::change(0.0, 1.0), "-");
        assert_eq!(super::change(3.0, 0.0), "0x");
    }
}
