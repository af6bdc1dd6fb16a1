//! What a reader sees: the default `compare` fits a classroom screen, its findings
//! say what its data says, exports go to standard output on `-`, and every command's
//! text fits the terminal's width, in ASCII or with colour when asked.

use iobench::report::number;
use serde_json::Value;
use std::process::{Command, Output};

/// Short runs: the layout is under test, not the numbers.
const SHORT: &[&str] = &["--runs", "2", "--duration", "300ms", "--warmup", "100ms"];

/// `iobench ARGS` at `columns` wide (through COLUMNS, as a shell sets it), with a
/// UTF-8 locale so that the default is Unicode.
fn at(columns: usize, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .env("COLUMNS", columns.to_string())
        .env("LC_ALL", "C.UTF-8")
        .env_remove("NO_COLOR")
        .args(args)
        .output()
        .expect("run iobench");
    assert!(
        out.status.success(),
        "iobench {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// Every line of `text` fits `columns` (counted in characters, as a terminal shows them).
fn fits(text: &str, columns: usize, what: &str) {
    for line in text.lines() {
        assert!(
            line.chars().count() <= columns,
            "{what}: a line of {} characters at {columns} columns:\n{line}\n\n{text}",
            line.chars().count()
        );
    }
}

#[test]
fn the_default_compare_fits_80_columns_for_three_and_120_for_five() {
    let mut three = vec!["compare", "--backends", "select,poll,epoll-et"];
    three.extend(SHORT);
    let out = text(&at(80, &three).stdout);
    fits(&out, 80, "3 backends");
    // One line per figure: each short label whole, on its own table line.
    for label in [
        "requests/s",
        "latency p99 us",
        "fds scanned/wakeup",
        "ctx switches/req",
    ] {
        assert_eq!(
            out.lines()
                .filter(|l| l.starts_with(&format!("│ {label} ")))
                .count(),
            1,
            "{label}: {out}"
        );
    }
    // The table, the bars and the findings in about a screen (the warnings a noisy
    // machine adds come on top).
    let before_notes = out
        .lines()
        .take_while(|l| {
            !["warning:", "note:", "disagreement:"]
                .iter()
                .any(|label| l.starts_with(label))
        })
        .count();
    assert!(before_notes <= 32, "{before_notes} lines: {out}");
    assert!(out.contains("requests/s, median"), "no bars: {out}");
    assert!(out.contains('█'), "no bars: {out}");

    let mut five = vec!["compare"];
    five.extend(SHORT);
    let out = text(&at(120, &five).stdout);
    fits(&out, 120, "5 backends");
    let header = out.lines().find(|l| l.contains("select")).unwrap();
    assert!(header.contains("polling"), "five side by side: {out}");
}

/// A poll run among 2,000 idle connections: its findings name poll's scan, with the
/// numbers of its own table; the JSON on standard output carries the same finding,
/// the table goes to standard error.
#[test]
fn findings_say_what_the_data_says() {
    let mut args = vec!["run", "--backend", "poll", "--idle-connections", "2000"];
    args.extend(["--runs", "1", "--duration", "300ms", "--warmup", "100ms"]);
    args.extend(["--export-json", "-"]);
    let out = at(1000, &args);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let table = text(&out.stderr);
    let figures = &report["summaries"][0]["figures"];
    let median = |key: &str| figures[key]["median"].as_f64().unwrap();
    let scanned = median("fds_scanned_per_wakeup");
    assert!(scanned > 2000.0, "{figures}");
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["finding"] == "scanned")
        .unwrap_or_else(|| panic!("no scan finding: {}", report["findings"]));
    assert_eq!(finding["most"], "poll");
    assert_eq!(finding["scanned"].as_f64(), Some(scanned));
    let said = format!(
        "poll handed the kernel {} descriptors per wakeup and scanned {} of them to find {} ready",
        number(median("fds_handed_per_wakeup"), 1),
        number(scanned, 1),
        number(median("events_per_wakeup"), 1)
    );
    assert!(table.contains(&said), "{said}: {table}");
    // The table shows the same number.
    let row = table
        .lines()
        .find(|l| l.contains("fds scanned/wakeup"))
        .unwrap();
    assert!(row.contains(&number(scanned, 1)), "{row}");
    // One subject: no ratio to itself, no bars.
    assert!(!table.contains("ratio to"), "{table}");
    assert!(!table.contains("requests/s, median"), "{table}");
}

/// The Markdown export is the whole report: workload, table, findings, notes, the
/// machine and the command; `--quiet` leaves standard error to errors.
#[test]
fn the_markdown_export_is_complete() {
    let mut args = vec![
        "compare",
        "--backends",
        "poll,epoll-et",
        "--idle-connections",
        "900",
        "--models",
        "reactor,dispatch",
        "--server-threads",
        "2",
    ];
    args.extend(SHORT);
    args.extend(["--export-markdown", "-", "--quiet"]);
    let out = at(80, &args);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let md = text(&out.stdout);
    for part in [
        "64 connections (900 idle)",
        "| requests/s |",
        "(min–max) in parentheses",
        "descriptors per wakeup",
        "Measured by `",
        "compare --backends poll,epoll-et",
        // A model with threads: each of them, as the kernel counted it.
        "epoll-et/dispatch x2: threads (run 1, the kernel's)",
        "| event-loop (",
    ] {
        assert!(md.contains(part), "no {part:?}: {md}");
    }
}

#[test]
fn ascii_when_asked_and_colour_only_when_asked() {
    let mut args = vec![
        "compare",
        "--backends",
        "select,epoll-et",
        "--style",
        "ascii",
    ];
    args.extend(SHORT);
    let out = text(&at(80, &args).stdout);
    assert!(out.is_ascii(), "{out}");
    assert!(out.contains('#') && out.contains("+-"), "{out}");
    fits(&out, 80, "ascii");
    assert!(!out.contains('\x1b'), "colour on a pipe: {out}");
    args.extend(["--color", "always"]);
    let out = text(&at(80, &args).stdout);
    assert!(out.contains("\x1b["), "--color always: {out}");
}

#[test]
fn every_command_fits_80_columns() {
    let load_target = {
        // A server for `load` to drive, on a free port, stopping by itself.
        use std::io::{BufRead, BufReader};
        let mut server = Command::new(env!("CARGO_BIN_EXE_iobench"))
            .args(["serve", "--duration", "5s"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_string();
        (server, addr)
    };
    let (mut server, addr) = load_target;
    // Each with words that a table squeezed evenly into 80 columns broke in two.
    let load = [
        "load",
        "--target",
        &addr,
        "--duration",
        "300ms",
        "--rate",
        "5000",
    ];
    let commands: Vec<(Vec<&str>, &[&str])> = vec![
        (load.to_vec(), &["(uncorrected)", "connection"]),
        (
            vec!["transfer", "--file-size", "2M"],
            &["read-write", "(measured)", "predicted"],
        ),
        (vec!["demo"], &[]),
        (vec!["demo", "epollout"], &[]),
        (vec!["demo", "fd-setsize"], &[]),
        (vec!["demo", "scan-cost"], &["descriptors", "(scanned)"]),
        (vec!["demo", "et-lt"], &[]),
        (vec!["demo", "uring"], &["io_uring_enter(to_submit=8,"]),
        (
            vec!["soak", "--requests", "4000", "--connections", "4"],
            &["io-threads", "requests"],
        ),
    ];
    for (args, whole) in commands {
        let out = text(&at(80, &args).stdout);
        fits(&out, 80, &args.join(" "));
        for word in whole {
            assert!(out.contains(word), "{args:?}: {word} broken: {out}");
        }
    }
    server.kill().unwrap();
    server.wait().unwrap();
}
