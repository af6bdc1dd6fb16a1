//! README.md: the question, what the data shows, a table and the plots per sweep,
//! how it was measured (the command, the machine), and the notes from the measuring.

use super::plots::Plot;
use super::shows;
use super::sweep::{column, sweep_name, sweep_rows, x_value};
use crate::bench::COUNTS_AGREE_WITHIN;
use crate::experiment::{Column, Experiment, Kind, Results, Scale, Setting, Sweep};
use crate::metrics::TaskSample;
use crate::report::grid::figure_cells;
use crate::report::{count, number, plural, table};
use crate::server;

pub fn render(exp: &Experiment, results: &Results, command: &str, plots: &[Vec<Plot>]) -> String {
    [
        question(exp),
        what_it_shows(exp, results),
        tables(exp, results, plots),
        how_measured(exp, results, command),
        notes(results),
    ]
    .concat()
}

fn question(exp: &Experiment) -> String {
    let mut out = format!("# {}\n\n", exp.title);
    if exp.scale == Scale::Quick {
        out += "> **Quick smoke run** (`--quick`): fewer runs and points, short windows. \
                Not a reference result.\n\n";
    }
    out += &format!("**Question.** {}\n\n", exp.question);
    if let Some(b) = &exp.background {
        out += &format!("**Background.** {}\n\n", b.trim());
    }
    out
}

fn what_it_shows(exp: &Experiment, results: &Results) -> String {
    let mut out = "## What it shows\n\n\
                   Computed from the medians below (first to last value of each line, or each \
                   value against the first); \"ranges overlap\" marks a change smaller than the \
                   spread between runs:\n\n"
        .to_string();
    for line in shows::sentences(exp, results) {
        out += &format!("- {line}\n");
    }
    out
}

/// Each sweep's table, then its plots (or why a plot is missing).
fn tables(exp: &Experiment, results: &Results, plots: &[Vec<Plot>]) -> String {
    let mut out = "\n## Results\n\n".to_string();
    for (i, (sweep, plots)) in exp.sweeps.iter().zip(plots).enumerate() {
        if exp.sweeps.len() > 1 {
            out += &format!("### {}\n\n", sweep_name(sweep, i));
        }
        out += &table(sweep, results, &exp.table);
        out += "\n";
        out += &threads(sweep, results);
        for plot in plots {
            out += &plot_line(plot);
        }
        out += "\n";
    }
    out
}

/// The README's line for a plot: the image, or why there is none.
pub fn plot_line(plot: &Plot) -> String {
    match plot {
        Plot::Drawn { file, title } => format!("![{title}]({file})\n"),
        Plot::NotDrawn(why) => format!("*{why}*\n"),
    }
}

/// A sweep's points as a Markdown table: its varied settings, then the figures.
fn table(sweep: &Sweep, results: &Results, figures: &[String]) -> String {
    let keys = sweep.varied();
    let columns: Vec<&Column> = figures.iter().map(|k| column(results, k)).collect();
    let figures: Vec<(&str, usize)> = columns.iter().map(|c| (c.key, c.decimals)).collect();
    let mut header: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    header.extend(columns.iter().map(|c| c.label.trim().to_string()));
    let rows: Vec<Vec<String>> = sweep_rows(sweep, results)
        .into_iter()
        .map(|(row, _)| {
            let settings = keys.iter().map(|k| x_value(row, k));
            let cells = figure_cells(
                &figures,
                &row.figures,
                row.not_applicable.as_deref(),
                &row.failures,
            );
            settings.chain(cells.iter().map(|c| c.inline())).collect()
        })
        .collect();
    table::markdown(&header, &rows)
}

/// For the points whose server ran more than one busy thread (memcached's listener
/// and workers, Redis's main and I/O threads, our models' loops): each thread per
/// request in the first run, as the kernel counted it (/proc/PID/task).
fn threads(sweep: &Sweep, results: &Results) -> String {
    let keys = sweep.varied();
    let (mut rows, mut handoffs) = (Vec::new(), Vec::new());
    for (row, _) in sweep_rows(sweep, results) {
        let Some(run) = row.raw.get(0) else { continue };
        let requests = run["load"]["requests"].as_f64().unwrap_or(0.0).max(1.0);
        let tasks: Vec<TaskSample> =
            serde_json::from_value(run["server"]["tasks"].clone()).unwrap_or_default();
        // Our server's control thread serves statistics, not clients.
        let busy: Vec<&TaskSample> = tasks
            .iter()
            .filter(|t| t.cpu_s > 0.0 && t.name != server::CONTROL_THREAD)
            .collect();
        if busy.len() < 2 {
            continue;
        }
        let point: Vec<String> = keys.iter().map(|k| x_value(row, k)).collect();
        let handoff = &run["server"]["handoff"];
        if let (Some(accepts), Some(notifies)) =
            (handoff["accepts"].as_u64(), handoff["notifies"].as_u64())
        {
            handoffs.push(format!(
                "{}: its listener ({}) made {} {}(2) and {} {}(2) while the connections were \
                 accepted, the notification that wakes the worker each is handed to.",
                point.join(", "),
                handoff["thread"].as_str().unwrap_or("?"),
                count(notifies),
                handoff["calls"]["notify"].as_str().unwrap_or("?"),
                count(accepts),
                handoff["calls"]["accept"].as_str().unwrap_or("?"),
            ));
        }
        let per_request = |n: u64| number(n as f64 / requests, 3);
        for t in busy {
            rows.push(vec![
                point.join(", "),
                t.name.clone(),
                number(t.cpu_s * 1e6 / requests, 2),
                per_request(t.voluntary_cs + t.involuntary_cs),
                t.syscalls.map_or("n/a".to_string(), per_request),
            ]);
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let header = [
        "point",
        "thread",
        "CPU us/req",
        "ctx switches/req",
        "syscalls/req (kernel)",
    ]
    .map(String::from);
    let mut out = format!(
        "Threads with CPU time in the first run, per request, as the kernel counted them \
         (/proc/PID/task; system calls with kernel counts):\n\n{}\n",
        table::markdown(&header, &rows)
    );
    for h in handoffs {
        out += &format!("{h}\n\n");
    }
    out
}

fn how_measured(exp: &Experiment, results: &Results, command: &str) -> String {
    let m = &results.machine;
    format!(
        "## How it was measured\n\n{}\n\n\
         - Command: `{command}` ({:.0} s)\n- Machine: {}, {}, {}; {}\n- Files: `data.csv` \
         (one row per point: its settings, then each figure's median, min and max), \
         `data.json` (the same with every run's own figures, the machine and the experiment \
         file)\n",
        method(exp, m.cores),
        results.seconds,
        m.cpu,
        plural(m.cores, "CPU"),
        m.kernel,
        m.date
    )
}

fn method(exp: &Experiment, cores: usize) -> String {
    let runs = plural(exp.runs, "run");
    let set = |is: fn(&Setting) -> bool| exp.points.iter().flatten().any(is);
    let laid_out = set(|s| matches!(s, Setting::ServerCpus(_) | Setting::ClientCpus(_)));
    let pinning = match (cores >= 2, laid_out) {
        (true, false) => {
            "as a child process pinned to CPU 0, driven by the load generator pinned to CPU 1"
        }
        (true, true) => {
            "as a child process on its point's server_cpus (default CPU 0), driven by the load \
             generator on its client_cpus (default CPU 1)"
        }
        (false, _) => "as a child process, driven by the load generator (one CPU: nothing pinned)",
    };
    let server = if set(|s| matches!(s, Setting::External(_))) {
        "our echo server, or the real server a point's `external` names (found on PATH, its \
         server_threads as its threads),"
    } else {
        "our echo server"
    };
    match exp.kind {
        Kind::Echo => format!(
            "Each point: {server} {pinning} (closed loop, every echoed byte verified), \
             as `iobench compare` does. {runs} per point, interleaved across all points (run 1 of \
             every point, then run 2, ...). Figures are medians over the runs with (min–max); \
             per-request figures divide by the requests completed in the measured window; \
             system calls are our own count (the kernel's /proc count agrees within {:.0}%, or a \
             warning below says otherwise).",
            COUNTS_AGREE_WITHIN * 100.0
        ),
        Kind::Ring => format!(
            "libevent's benchmark (test/bench.c): descriptors in a ring, `active` of them made \
             readable at the start; each readiness callback reads its byte and writes one to \
             the next descriptor, until `writes` writes; every pass is a wait that does not \
             block plus its callbacks, all in one thread, no TCP. Unlike libevent, both ends of \
             each socketpair are watched (writing to one end makes the other readable), so N \
             watched descriptors take N of the process's descriptors, not 2N (10,000 fit \
             under a limit of 20,000, and select reaches about 1,000 before FD_SETSIZE). Each run \
             registers the ring once, makes one untimed iteration, then `iterations` timed \
             ones; {runs} per point, interleaved. Figures are medians over every timed \
             iteration with (min–max)."
        ),
        Kind::Transfer => format!(
            "`iobench transfer`: a generated file sent over loopback TCP to a sink thread, which \
             verifies size and checksum; system calls are the sender's transfer loop (our own \
             count), CPU time and context switches the sender thread's (getrusage). The \
             article's predictions stand beside the measured counts. {runs}, the file \
             written once per run; medians with (min–max)."
        ),
    }
}

/// Each distinct failure and warning once, with how many points it came from.
fn notes(results: &Results) -> String {
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
    if notes.is_empty() {
        return String::new();
    }
    let mut out = "\n## Notes from the measurement\n\n".to_string();
    for (n, count) in notes {
        match count {
            1 => out += &format!("- {n}\n"),
            _ => out += &format!("- {n} ({count} points)\n"),
        }
    }
    out
}
