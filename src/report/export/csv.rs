//! CSV: one row per subject; for each figure its median, min and max.

use crate::bench::{BenchReport, FIGURES};
use anyhow::Result;

pub fn render(report: &BenchReport) -> Result<String> {
    let mut header = vec![
        "subject".to_string(),
        "runs".into(),
        "not_applicable".into(),
    ];
    for f in FIGURES {
        for stat in ["median", "min", "max"] {
            header.push(format!("{}_{stat}", f.key));
        }
    }
    let mut out = header.join(",") + "\n";
    for s in &report.summaries {
        let mut row = vec![
            quote(&s.subject),
            s.runs.to_string(),
            quote(s.not_applicable.as_deref().unwrap_or("")),
        ];
        for f in FIGURES {
            match s.figures.get(f.key) {
                Some(v) => row.extend([v.median, v.min, v.max].map(|x| x.to_string())),
                None => row.extend(["", "", ""].map(String::from)),
            }
        }
        out += &(row.join(",") + "\n");
    }
    Ok(out)
}

pub fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
