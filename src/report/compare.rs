//! What `run` and `compare` print: the workload, the side-by-side table, the
//! headline bars, the findings in words and the notes a reader needs. The Markdown
//! export reuses the workload line, the findings and the notes.

use super::bars::{self, Bar};
use super::findings;
use super::grid::{Grid, GridCell, View, baseline, grid, lower_bound_note};
use super::plural;
use super::warnings::{calls_in_brief, varied_in_brief};
use super::{count, number};
use crate::bench::{self, BenchReport, Disagreed, Finding, HEADLINE, Verdict, Warning};
use crate::style::{NBSP, Paint, Style};
use crate::sys::Stat;
use crate::units::CpuList;
use comfy_table::{Cell, CellAlignment};

/// The figure only a loop with a ring has.
const RING_OPS: &str = "ring_ops_per_request";

/// What the kernel's io_uring counts count, and why they equal ours.
const RING_COUNTS_NOTE: &str = "io_uring counts: ours are the operations the loop queued and \
    the completions it reaped, the kernel's the requests it took (io_uring:io_uring_submit_req) \
    and the completions it posted (io_uring:io_uring_complete); they are equal, since the loop \
    links no requests and its wait's timeout is an argument of io_uring_enter, not a request \
    of its own. A window's edges may split a batch: a few apart at most.";

/// The figure that rests on the tick-counted user/kernel split.
const CPU_SPLIT: &str = "server_sys_us_per_request";

pub fn render(report: &BenchReport, view: &View, style: &Style) -> String {
    let mut out = style.wrap(&workload(report), 2);
    let (tables, spreads) = tables(style, &grid(report, view), view);
    out += &tables;
    out += &style.paint(&style.wrap(&footnote(spreads), 0), Paint::Dim);
    out += &headline_bars(report, style);
    let sentences = sentences(report);
    if !sentences.is_empty() {
        out += "\n";
        for s in sentences {
            out += &style.wrap(&s, 0);
        }
    }
    out += &threads_section(report, style);
    out += &super::tasks::render(report, view, style);
    for (what, text) in notes(report, view) {
        out += &style.labelled(what, &text);
    }
    out
}

/// The workload, the repetitions and the pinning, in one sentence.
pub fn workload(report: &BenchReport) -> String {
    let plan = &report.plan;
    let load = &plan.load;
    let window = match load.duration {
        Some(d) => format!("{:.1}{NBSP}s", d.as_secs_f64()),
        None => plural(load.requests.unwrap_or(0), "request"),
    };
    let pace = match load.rate {
        Some(r) => format!("open loop at {} requests/s", super::number(r, 0)),
        None => "closed loop".to_string(),
    };
    let cpus = |list: &[usize]| match list {
        [] => "CPU any".to_string(),
        [one] => format!("CPU {one}"),
        many => format!("CPUs {}", CpuList(many.to_vec())),
    };
    let pinned = match (plan.server_cpus.as_slice(), load.cpus.as_slice()) {
        ([], []) => "nothing pinned".to_string(),
        (server, client) => format!("server {}, client {}", cpus(server), cpus(client)),
    };
    // The server's flags beyond the workload's (whose protocol is said already), as
    // they were passed: `--ring sqpoll`, `--read-strategy drain`.
    let flags: Vec<&str> = plan
        .server_args
        .chunks(2)
        .filter(|pair| pair[0] != "--protocol")
        .flatten()
        .map(String::as_str)
        .collect();
    let flags = match flags.as_slice() {
        [] => String::new(),
        flags => format!("; server {}", flags.join(" ")),
    };
    format!(
        "{} ({} idle), {}{NBSP}B {}, pipeline {}, {pace}, the client on {}; {} per run after \
         {:.1}{NBSP}s warm-up; {}, interleaved; {pinned}{flags}",
        plural(load.connections, "connection"),
        load.idle_connections,
        load.payload,
        load.protocol,
        load.pipeline,
        load.driver,
        window,
        load.warmup.as_secs_f64(),
        plural(plan.runs, "run"),
    )
}

/// How a table cell shows the runs' spread.
#[derive(Clone, Copy, PartialEq)]
enum Spreads {
    /// The (min–max) range on a line below the median: `--figures all`.
    Below,
    /// `±N%` beside the median.
    Reach,
    /// Only a mark on a median whose runs lay far from it: when `±N%` would not let
    /// every subject fit side by side.
    Marked,
}

fn footnote(spreads: Spreads) -> String {
    match spreads {
        Spreads::Below => "Median over runs, (min–max) below it. Per-request figures divide by \
                           the requests the client completed in the window. A user/kernel mode \
                           switch (two per system call) is not a context switch (the scheduler \
                           changing threads)."
            .to_string(),
        Spreads::Reach => {
            "Medians of the runs, ± the farthest run from it. --figures all: every figure."
                .to_string()
        }
        Spreads::Marked => format!(
            "Medians of the runs; {MARK}: a run lay over {:.0}% from the median (a wider \
             terminal shows ±). --figures all: every figure.",
            FAR * 100.0
        ),
    }
}

/// The mark of a median whose runs lay far from it, and how far is far.
const MARK: &str = "*";
const FAR: f64 = 0.10;

/// The grid as terminal tables, and how they show the spread: as many subjects side
/// by side as fit the width (in the shorter form when only that fits them all), the
/// rest in further tables below.
fn tables(style: &Style, g: &Grid, view: &View) -> (String, Spreads) {
    let label_w = g
        .rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let chunks = |spreads| chunks(style, g, spreads, label_w);
    let spreads = match view {
        View::All => Spreads::Below,
        _ if chunks(Spreads::Reach).len() > 1 && chunks(Spreads::Marked).len() == 1 => {
            Spreads::Marked
        }
        _ => Spreads::Reach,
    };
    let mut out = String::new();
    for chunk in chunks(spreads) {
        let mut t = style.table();
        let mut header = vec![Cell::new("")];
        header.extend(chunk.iter().map(|&i| Cell::new(&g.header[i + 1])));
        t.set_header(header);
        for (label, cells) in &g.rows {
            let mut row = vec![Cell::new(style.text(label))];
            row.extend(chunk.iter().map(|&i| {
                Cell::new(style.text(&cell(&cells[i], spreads))).set_alignment(CellAlignment::Right)
            }));
            t.add_row(row);
        }
        out += &style.render(t);
    }
    (out, spreads)
}

fn cell(c: &GridCell, spreads: Spreads) -> String {
    match spreads {
        Spreads::Below => c.stacked(),
        Spreads::Reach => c.compact(),
        Spreads::Marked => match c.reach {
            Some(r) if r > FAR => format!("{}{MARK}", c.main),
            _ => format!("{} ", c.main),
        },
    }
}

/// The subjects' columns in groups that each fit the width beside the labels.
fn chunks(style: &Style, g: &Grid, spreads: Spreads, label_w: usize) -> Vec<Vec<usize>> {
    let lines_width = |text: &str| text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let column_w = (1..g.header.len()).map(|i| {
        g.rows
            .iter()
            .map(|(_, cells)| lines_width(&style.text(&cell(&cells[i - 1], spreads))))
            .chain([g.header[i].chars().count()])
            .max()
            .unwrap_or(0)
    });
    // Each column takes its width, a space either side and a rule.
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut used = 1 + label_w + 3;
    for (i, w) in column_w.enumerate() {
        match chunks.last_mut() {
            Some(chunk) if used + w + 3 <= style.width => chunk.push(i),
            _ => {
                chunks.push(vec![i]);
                used = 1 + label_w + 3;
            }
        }
        used += w + 3;
    }
    chunks
}

/// Bars of the headline figure against the baseline, when there is more than one
/// subject to compare.
fn headline_bars(report: &BenchReport, style: &Style) -> String {
    let Some(base) = baseline(report) else {
        return String::new();
    };
    let bars: Vec<Bar> = report
        .summaries
        .iter()
        .filter_map(|s| {
            let spread = s.figures.get(HEADLINE)?;
            let verdict = bench::verdict(s, base, HEADLINE)?;
            Some(Bar {
                name: s.subject.clone(),
                value: spread.median,
                text: super::number(spread.median, 0),
                note: findings::verdict(verdict, &base.subject),
                paint: match verdict {
                    Verdict::Apart { ratio } if ratio > 1.0 => Some(Paint::Good),
                    Verdict::WithinNoise { .. } => Some(Paint::Dim),
                    _ => None,
                },
            })
        })
        .collect();
    if bars.len() < 2 {
        return String::new();
    }
    "\n".to_string() + &bars::render(style, "requests/s, median", &bars)
}

/// The findings in words.
pub fn sentences(report: &BenchReport) -> Vec<String> {
    report.findings.iter().map(findings::sentence).collect()
}

/// Every warning, disagreement, failure and note, each `(label, text)`; the warning
/// about the user/kernel split only when `view` shows the split.
pub fn notes(report: &BenchReport, view: &View) -> Vec<(&'static str, String)> {
    let shows_cpu_split = view.shows(CPU_SPLIT);
    let mut out = Vec::new();
    if let Some(note) = lower_bound_note(report) {
        out.push(("note", note));
    }
    // A finding that the client set the pace says it already.
    let said_by_finding = report
        .findings
        .iter()
        .any(|f| matches!(f, Finding::ClientSetThePace { .. }));
    if let Some(w) = bench::saturated_client(&report.summaries)
        && !said_by_finding
    {
        out.push(("warning", w.to_string()));
    }
    let brief = *view != View::All;
    // The short view says in one line which subjects' runs varied.
    let all: Vec<&Warning> = report.summaries.iter().flat_map(|s| &s.warnings).collect();
    let varied = brief.then(|| varied_in_brief(&all)).flatten();
    let mut said: Vec<(&'static str, Vec<String>, String)> = Vec::new();
    for s in &report.summaries {
        let warnings = s
            .warnings
            .iter()
            .filter(|w| shows_cpu_split || !matches!(w, Warning::CoarseCpuSplit { .. }))
            .filter(|w| varied.is_none() || !matches!(w, Warning::RunsVaried { .. }))
            .map(|w| ("warning", w.to_string()));
        // The full view and the exports give each disagreement; the short one, on
        // call counts, one line per subject.
        let in_brief = brief
            .then(|| calls_in_brief(&s.subject, &s.disagreements))
            .flatten();
        let summed = in_brief.is_some();
        let disagreements = s
            .disagreements
            .iter()
            .filter(|d| !summed || !matches!(d.about, Disagreed::Calls { .. }))
            .map(|d| d.to_string())
            .chain(in_brief)
            .map(|text| ("disagreement", text));
        for (what, text) in warnings.chain(disagreements) {
            // The same words for several subjects are said once, naming them all.
            let (subject, rest) = match text.strip_prefix(&format!("{}: ", s.subject)) {
                Some(rest) => (Some(s.subject.clone()), rest.to_string()),
                None => (None, text),
            };
            match said.iter_mut().find(|(w, _, r)| *w == what && *r == rest) {
                Some((_, subjects, _)) => subjects.extend(subject),
                None => said.push((what, subject.into_iter().collect(), rest)),
            }
        }
    }
    out.extend(varied.map(|v| ("warning", v)));
    for (what, subjects, rest) in said {
        out.push(match subjects.is_empty() {
            true => (what, rest),
            false => (what, format!("{}: {rest}", subjects.join(", "))),
        });
    }
    for s in &report.summaries {
        out.extend(s.failures.iter().map(|f| ("failed", f.clone())));
    }
    for n in bench::uncounted_calls(&report.plan.subjects, &report.summaries) {
        out.push(("note", n.to_string()));
    }
    if report.plan.kernel_counts {
        out.push((
            "note",
            "kernel counts use the raw_syscalls:sys_enter tracepoint, which itself costs the \
             server CPU (15-20% at high rates here)."
                .to_string(),
        ));
        if report
            .summaries
            .iter()
            .any(|s| s.figures.contains_key(RING_OPS))
        {
            out.push(("note", RING_COUNTS_NOTE.to_string()));
        }
    }
    out
}

/// For models with several threads: how the work was spread, from the first run.
fn threads_section(report: &BenchReport, style: &Style) -> String {
    let mut out = String::new();
    for subject in &report.runs {
        let Some(run) = subject.runs.first() else {
            continue;
        };
        let busy: Vec<_> = run
            .server
            .threads
            .iter()
            .filter(|t| t.counts.syscalls_total > 0 && t.thread != crate::server::CONTROL_THREAD)
            .collect();
        if busy.len() < 2 {
            continue;
        }
        let mut t = style.table();
        t.set_header(vec![
            format!("{}: threads (run 1, our counts)", subject.subject),
            "connections".into(),
            "calls/req".into(),
            "wakeups/req".into(),
            "ctx switches/req vol + invol".into(),
        ]);
        let requests = run.load.requests.max(1) as f64;
        // Per request, as the kernel's per-thread table below has them.
        let per_request = |n: u64| number(n as f64 / requests, 3);
        for thread in busy {
            t.add_row(vec![
                thread.thread.clone(),
                count(thread.connections),
                per_request(thread.counts.syscalls_total),
                per_request(thread.counts.counter(Stat::Wakeups)),
                format!(
                    "{} + {}",
                    per_request(thread.voluntary_cs),
                    per_request(thread.involuntary_cs)
                ),
            ]);
        }
        for col in 1..5 {
            if let Some(c) = t.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        out += &style.render(t);
    }
    out
}
