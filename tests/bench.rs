//! `compare` and `run` end to end: real server processes, real load, and the
//! figures checked against each other and against the kernel's.

use iobench::backend::{Backend, Trigger};
use iobench::load::LoadConfig;
use iobench::sys::{Call, RingOp};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The binary, its output as wide as it needs (tests/presentation.rs checks the
/// wrapping), so that a phrase is found whole and a table in one piece.
fn iobench() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iobench"));
    cmd.env("COLUMNS", "1000");
    cmd
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("iobench-{}-{name}", std::process::id()))
}

/// The stdout of a command that must succeed.
fn succeeded(out: std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn figure(summary: &Value, key: &str) -> f64 {
    summary["figures"][key]["median"]
        .as_f64()
        .unwrap_or_else(|| panic!("no {key} in {summary}"))
}

/// How far the server's own snapshot of a window and the parent's readings of it
/// (the client's counts, /proc/PID/io) may differ: the snapshot waits for the
/// server's control thread to get its (busy) CPU. A call left uncounted would be off
/// by far more (a read per request is half of them).
const EDGE_SKEW: f64 = 0.02;

#[test]
fn compare_all_backends_gives_a_complete_consistent_table() {
    let (json, csv, md) = (temp("c.json"), temp("c.csv"), temp("c.md"));
    let out = iobench()
        .args([
            "compare",
            "--runs",
            "1",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
        ])
        .args(["--connections", "16", "--kernel-counts", "--figures", "all"])
        .arg("--export-json")
        .arg(&json)
        .arg("--export-csv")
        .arg(&csv)
        .arg("--export-markdown")
        .arg(&md)
        .output()
        .unwrap();
    let stdout = succeeded(out);
    for b in Backend::ALL {
        assert!(
            stdout.contains(&format!("{b} (1 run)")),
            "{b} missing: {stdout}"
        );
    }
    // Our count is marked as a lower bound where the backend makes calls we cannot
    // see (polling), and only there; the footnote says why, in the export too.
    let ours = stdout
        .lines()
        .find(|l| l.contains("system calls/request (our count)"))
        .unwrap();
    let uncounting = Backend::ALL
        .iter()
        .filter(|b| !b.counts_every_call())
        .count();
    assert_eq!(ours.matches("≥ ").count(), uncounting, "{ours}");
    assert!(stdout.contains("marks a lower bound: polling"), "{stdout}");
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(
        markdown.contains("marks a lower bound: polling"),
        "{markdown}"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(
        report["machine"]["kernel"]
            .as_str()
            .unwrap()
            .starts_with("Linux")
    );
    assert!(report["command"].as_str().unwrap().contains("compare"));
    let perf_available = !stdout.contains("kernel count: unavailable");
    // Each subject is one backend, in the reactor: its name is the backend's.
    let backend = |name: &str| -> Backend { name.parse().unwrap() };
    for s in report["summaries"].as_array().unwrap() {
        let name = s["subject"].as_str().unwrap();
        assert!(figure(s, "requests_per_s") > 0.0, "{name}");
        assert!(figure(s, "server_cpu_us_per_request") > 0.0, "{name}");
        assert!(figure(s, "wakeups_per_request") > 0.0, "{name}");
        // A completion loop's operations: the kinds add up to the total, and the
        // kernel's tracepoints count what ours do.
        if backend(name).trigger() == Trigger::Completion {
            for (ours, side, kernel) in [
                (
                    "ring_ops_per_request",
                    "submitted",
                    "kernel_ring_ops_per_request",
                ),
                (
                    "ring_completions_per_request",
                    "completions",
                    "kernel_ring_completions_per_request",
                ),
            ] {
                let total = figure(s, ours);
                let kinds: f64 = RingOp::ALL
                    .iter()
                    .map(|op| figure(s, &format!("ring_{op}_{side}_per_request")))
                    .sum();
                assert!((total - kinds).abs() < 1e-3, "{name}: {total} vs {kinds}");
                assert!(total >= 0.9, "{name}: {total} {side}/request");
                if perf_available {
                    let theirs = figure(s, kernel);
                    assert!(
                        (total - theirs).abs() / theirs < 0.01,
                        "{name} {side}: ours {total}, kernel {theirs}"
                    );
                }
            }
        }
        if perf_available && backend(name).counts_every_call() {
            let ours = figure(s, "syscalls_per_request");
            let kernel = figure(s, "kernel_syscalls_per_request");
            assert!(
                (ours - kernel).abs() / kernel < 0.01,
                "{name}: {ours} vs {kernel}"
            );
        }
    }
    let payload = LoadConfig::DEFAULT.payload;
    for subject in report["runs"].as_array().unwrap() {
        let name = subject["subject"].as_str().unwrap();
        for run in subject["runs"].as_array().unwrap() {
            // Every request the client completed is a message the server echoed.
            let client = run["load"]["requests_total"].as_u64().unwrap();
            let echoed = run["server"]["lifetime_bytes_out"].as_u64().unwrap() / payload as u64;
            assert_eq!(client, echoed, "{name}");
            // In the window too, up to the skew of its edges.
            let client = run["load"]["requests"].as_f64().unwrap();
            let own = &run["server"]["own"];
            let echoed = own["counters"]["bytes_out"].as_f64().unwrap() / payload as f64;
            assert!(
                (client - echoed).abs() / client < EDGE_SKEW,
                "{name}: {client} vs {echoed}"
            );
            // Our read/write counts against /proc/PID/io. polling reads its own eventfd
            // inside every wait, so there the kernel's count is higher, and flagged.
            let proc = &run["server"]["proc"];
            for (call, kernel) in [(Call::Read, "syscr"), (Call::Write, "syscw")] {
                let ours = own["syscalls"][call.name()].as_f64().unwrap();
                let theirs = proc[kernel].as_f64().unwrap();
                let diff = (ours - theirs).abs() / theirs;
                if !backend(name).counts_every_call() && call == Call::Read {
                    assert!(theirs > ours, "{name}: {ours} vs {theirs}");
                } else {
                    // Read at the window's edges by two parties: skewed like the bytes.
                    assert!(
                        diff < EDGE_SKEW,
                        "{name} {call}: ours {ours}, kernel {theirs}"
                    );
                }
            }
        }
    }
    let polling = report["summaries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == Backend::Polling.name())
        .unwrap_or_else(|| panic!("no polling summary: {report}"));
    assert!(
        !polling["disagreements"].as_array().unwrap().is_empty(),
        "{polling}"
    );
    let csv = std::fs::read_to_string(&csv).unwrap();
    // A header, then a line per backend.
    assert_eq!(csv.lines().count(), 1 + Backend::COUNT, "{csv}");
    assert!(
        csv.starts_with("subject,runs,not_applicable,requests_per_s_median"),
        "{csv}"
    );
    assert!(
        csv.contains(",ring_recv_completions_per_request_median,"),
        "{csv}"
    );
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| requests/s |"), "{md}");
    for f in [json, md.into(), temp("c.csv")] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn idle_connections_cost_select_and_poll_not_epoll() {
    let json = temp("idle.json");
    let backends = [Backend::Select, Backend::Poll, Backend::EpollEt].map(Backend::name);
    let out = iobench()
        .args(["compare", "--backends", &backends.join(","), "--runs", "1"])
        .args([
            "--duration",
            "400ms",
            "--warmup",
            "200ms",
            "--connections",
            "8",
        ])
        .args(["--idle-connections", "2000", "--export-json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = succeeded(out);
    assert!(stdout.contains("n/a (fd limit 1024)"), "{stdout}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = report["summaries"].as_array().unwrap();
    assert_eq!(s[0]["not_applicable"], "n/a (fd limit 1024)");
    assert!(figure(&s[1], "fds_handed_per_wakeup") >= 2000.0, "{}", s[1]);
    assert!(
        figure(&s[1], "fds_scanned_per_wakeup") >= 2000.0,
        "{}",
        s[1]
    );
    assert!(figure(&s[2], "events_per_wakeup") <= 8.0, "{}", s[2]);
    assert_eq!(figure(&s[2], "fds_handed_per_wakeup"), 0.0);
    let _ = std::fs::remove_file(json);
}

/// The server child is killed mid-run: `run` says so and exits non-zero.
#[test]
fn a_server_that_dies_mid_run_is_reported() {
    let run = iobench()
        .args([
            "run",
            "--backend",
            Backend::EpollLt.name(),
            "--runs",
            "1",
            "--duration",
            "3s",
        ])
        .args(["--warmup", "200ms", "--connections", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let children = format!("/proc/{0}/task/{0}/children", run.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let server: i32 = loop {
        let text = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(pid) = text.split_whitespace().next() {
            break pid.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no server child appeared");
        thread::sleep(Duration::from_millis(20));
    };
    thread::sleep(Duration::from_millis(700));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("died mid-run"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Anyone's server in the same table: started on a free port, measured from the
/// kernel's side, our own counts n/a. Here: `iobench serve` itself, as an outsider.
#[test]
fn an_external_server_is_measured_beside_ours() {
    let exe = env!("CARGO_BIN_EXE_iobench");
    let json = temp("ext.json");
    let out = iobench()
        .args([
            "compare",
            "--backends",
            Backend::EpollLt.name(),
            "--runs",
            "1",
            "--duration",
            "400ms",
        ])
        .args(["--warmup", "200ms", "--connections", "8", "--external"])
        .arg(format!(
            "outsider={exe} serve --backend {} --listen 127.0.0.1:{{port}}",
            Backend::Poll
        ))
        .arg("--export-json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = succeeded(out);
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let outsider = &report["summaries"][1];
    assert_eq!(outsider["subject"], "outsider");
    assert!(figure(outsider, "requests_per_s") > 0.0);
    assert!(figure(outsider, "server_cpu_us_per_request") > 0.0);
    // About one read per request (the window edges are not exact: no snapshot here).
    assert!(figure(outsider, "kernel_reads_per_request") > 0.9);
    assert!(
        outsider["figures"]["syscalls_per_request"].is_null(),
        "{outsider}"
    );
    let header = stdout.lines().find(|l| l.contains("epoll-lt")).unwrap();
    assert!(header.contains("outsider"), "{stdout}");
    let _ = std::fs::remove_file(json);
    // A command without {port} is refused before anything starts.
    let bad = iobench()
        .args(["compare", "--external", "x=sleep 1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("{port}"));
}

/// A run by request count measures that many requests, after its warm-up: before,
/// `--requests 20000` printed requests/s 0 with exit 0 (the warm-up used them).
#[test]
fn a_run_by_request_count_measures_that_many() {
    let json = temp("requests.json");
    let out = iobench()
        .args(["run", "--backend", Backend::EpollEt.name(), "--runs", "1"])
        .args(["--requests", "20000", "--warmup", "300ms", "--export-json"])
        .arg(&json)
        .output()
        .unwrap();
    succeeded(out);
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let load = &report["runs"][0]["runs"][0]["load"];
    assert_eq!(load["requests"], 20000, "{load}");
    assert!(figure(&report["summaries"][0], "requests_per_s") > 0.0);
    // Durations are seconds, named so (before: {"secs": 0, "nanos": 300000000}).
    let workload = &report["plan"]["load"];
    assert_eq!(workload["warmup_s"], 0.3, "{workload}");
    assert_eq!(workload["duration_s"], Value::Null, "{workload}");
    assert_eq!(workload["timeout_s"], 10.0, "{workload}");
    let _ = std::fs::remove_file(json);
}

/// compare in open loop ends with the same achieved-against-requested line as load
/// when the rate was not kept.
#[test]
fn compare_says_when_its_rate_was_not_kept() {
    let out = iobench()
        .args([
            "compare",
            "--backends",
            Backend::EpollEt.name(),
            "--runs",
            "1",
        ])
        .args(["--rate", "1e8", "--connections", "2"])
        // The window must outlast the backlog left from the warm-up (1,024 requests
        // per connection, intended before the window and not counted in it) even on
        // a busy machine.
        .args(["--duration", "1s", "--warmup", "100ms"])
        .args(["--read-strategy", "drain"])
        .output()
        .unwrap();
    let stdout = succeeded(out);
    // The workload line says the protocol and the server's own flags.
    assert!(
        stdout.contains("B raw, pipeline 1") && stdout.contains("server --read-strategy drain"),
        "{stdout}"
    );
    // Open loop: the uncorrected latency and both send lags are in the table too.
    for row in [
        "p99 uncorrected",
        "p99 lag: generator",
        "p99 lag: conn busy",
    ] {
        assert!(stdout.contains(row), "no {row} row: {stdout}");
    }
    assert!(
        stdout.contains("epoll-et run 1: achieved")
            && stdout.contains("of 100,000,000 requests/s: the connections cannot sustain it"),
        "{stdout}"
    );
}

/// Bad input is refused before any server starts or anything is measured: each of
/// these failed only after the runs, or with the kernel's "Invalid argument".
#[test]
fn bad_input_is_refused_before_anything_runs() {
    for (args, says) in [
        (
            vec!["run", "--export-json", "/nonexistent/x.json"],
            "--export-json /nonexistent/x.json: there is no folder /nonexistent",
        ),
        (
            vec!["serve", "--cpu", "999"],
            "CPU 999 is not one this process may use",
        ),
        (
            vec!["run", "--duration", "0s"],
            "--duration must be longer than 0",
        ),
        (
            vec!["serve", "--duration", "0s"],
            "--duration must be longer than 0",
        ),
        (
            vec!["run", "--threads", "0"],
            "--threads must be at least 1",
        ),
        (
            vec!["compare", "--backends", "epoll-et", "--ring", "sqpoll"],
            "--ring sqpoll sets up io_uring rings, and no io-uring server is asked for",
        ),
        (
            vec!["serve", "--backend", "poll", "--ring", "plain"],
            "--ring plain sets up io_uring rings, and no io-uring server is asked for",
        ),
        (
            vec!["soak", "--out", "/proc/iobench"],
            "--out /proc/iobench: cannot create",
        ),
    ] {
        let out = iobench().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        // Nothing ran: no table, no listening line, one line of error.
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    }
}

/// Server CPU comes from the scheduler's nanosecond accounting, and its user/kernel
/// split (counted in 10 ms clock ticks) is never more than the total and is called
/// rough when a window holds few ticks (before: "of which in the kernel" could equal
/// the whole, shown to three digits, from a handful of ticks).
#[test]
fn server_cpu_is_measured_finer_than_clock_ticks() {
    let json = temp("cpu.json");
    let out = iobench()
        .args(["run", "--backend", Backend::EpollEt.name(), "--runs", "1"])
        .args([
            "--figures",
            "server_cpu_us_per_request,server_sys_us_per_request",
        ])
        .args(["--duration", "300ms", "--warmup", "100ms", "--export-json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = succeeded(out);
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let proc = &report["runs"][0]["runs"][0]["server"]["proc"];
    let cpu = proc["cpu_s"].as_f64().unwrap();
    assert!(cpu > 0.0, "{proc}");
    // Nanoseconds: not a whole number of 10 ms ticks (as user_s + sys_s is).
    assert!(((cpu * 100.0).round() - cpu * 100.0).abs() > 1e-6, "{proc}");
    let s = &report["summaries"][0];
    assert!(
        figure(s, "server_sys_us_per_request") <= figure(s, "server_cpu_us_per_request"),
        "{s}"
    );
    assert!(
        stdout.contains("clock ticks"),
        "a 300 ms window is rough: {stdout}"
    );
    let _ = std::fs::remove_file(json);
}
