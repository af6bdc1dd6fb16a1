//! The threading models on every backend, and what makes each one itself: dispatch
//! spreads connections round-robin, io-threads uses its threads only when there is
//! enough work.

mod common;

use common::*;
use iobench::backend::Backend;
use iobench::load::{LoadConfig, LoadReport};
use iobench::metrics::ThreadStats;
use iobench::server::Model;
use iobench::server::ServerStats;
use iobench::sys::{Call, Stat};
use serde_json::Value;
use std::process::Command;

fn load(server: &Server, args: &[&str]) -> LoadReport {
    let target = server.addr.to_string();
    let mut all = vec!["load", "--target", &target, "--warmup", "0s", "--json"];
    all.extend_from_slice(args);
    iobench_json(&all)
}

fn thread<'a>(stats: &'a ServerStats, name: &str) -> &'a ThreadStats {
    stats
        .threads
        .iter()
        .find(|t| t.thread == name)
        .unwrap_or_else(|| panic!("no thread {name} in {stats:?}"))
}

#[test]
fn every_model_on_every_backend_echoes_exactly() {
    for (backend, model) in combinations_with_models() {
        let server = Server::start(&strs(&model_args(backend, model)));
        let r = load(
            &server,
            &[
                "--connections",
                "24",
                "--pipeline",
                "2",
                "--payload",
                "200",
                "--requests",
                "3000",
            ],
        );
        let ctx = format!("{model}/{backend}");
        assert_eq!(r.requests_total, 3000, "{ctx}: {r:?}");
        let (stats, _) = server.stop();
        assert_eq!(stats.model, model.name(), "{ctx}");
        assert_eq!(counter(&stats, Stat::BytesOut), 3000 * 200, "{ctx}");
        assert_eq!(counter(&stats, Stat::Accepted), 24, "{ctx}");
    }
}

/// On a readiness backend and on the completion loop (whose workers' rings poll
/// their pipes) alike.
#[test]
fn dispatch_hands_connections_round_robin() {
    for backend in [Backend::EpollEt, Backend::IoUring] {
        dispatch_round_robin(backend);
    }
}

fn dispatch_round_robin(backend: Backend) {
    let mut server = Server::start(&[
        "--backend",
        backend.name(),
        "--model",
        Model::Dispatch.name(),
        "--threads",
        "3",
    ]);
    let mut clients: Vec<_> = (0..9).map(|_| server.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        // One round trip each: the worker owns it by then.
        assert_eq!(round_trip(c, &pattern(i as u64, 10)), pattern(i as u64, 10));
    }
    let stats = server.snapshot();
    assert_eq!(
        counter(thread(&stats, "main"), Stat::Dispatched),
        9,
        "{backend}: {stats:?}"
    );
    assert_eq!(
        counter(thread(&stats, "main"), Stat::Accepted),
        0,
        "{backend}: {stats:?}"
    );
    for w in ["worker-0", "worker-1", "worker-2"] {
        assert_eq!(
            counter(thread(&stats, w), Stat::Accepted),
            3,
            "{backend} {w}: {stats:?}"
        );
        // Woken through its pipe: it read the notification bytes.
        assert!(
            syscalls(thread(&stats, w), Call::Read) > 0,
            "{backend} {w}: {stats:?}"
        );
    }
    assert_eq!(
        syscalls(thread(&stats, "main"), Call::Write),
        9,
        "{backend}: one byte per hand-off: {stats:?}"
    );
    drop(clients);
    server.stop();
}

#[test]
fn io_threads_are_used_only_above_the_threshold() {
    // One client, one request at a time: never twice as many ready clients as
    // threads, so the main thread does everything.
    let server = Server::start(&["--model", Model::IoThreads.name(), "--threads", "2"]);
    load(&server, &["--connections", "1", "--requests", "300"]);
    let (stats, _) = server.stop();
    // The I/O thread read and wrote nothing (its one call is the getrusage that
    // takes its figures as it ends).
    let io = thread(&stats, "io-1");
    assert_eq!(
        syscalls(io, Call::Read) + syscalls(io, Call::Write),
        0,
        "{stats:?}"
    );
    // The workload's default payload, echoed 300 times.
    let payload = LoadConfig::DEFAULT.payload as u64;
    assert_eq!(counter(&stats, Stat::BytesOut), 300 * payload);

    // Many clients: the I/O thread reads and writes its share.
    let server = Server::start(&["--model", Model::IoThreads.name(), "--threads", "2"]);
    load(
        &server,
        &[
            "--connections",
            "48",
            "--pipeline",
            "2",
            "--requests",
            "20000",
        ],
    );
    let (stats, _) = server.stop();
    assert!(
        syscalls(thread(&stats, "io-1"), Call::Read) > 0,
        "{stats:?}"
    );
    assert!(
        syscalls(thread(&stats, "io-1"), Call::Write) > 0,
        "{stats:?}"
    );
    assert_eq!(
        counter(thread(&stats, "io-1"), Stat::Accepted),
        0,
        "the main thread owns every client"
    );
}

#[test]
fn a_short_soak_covers_every_backend_and_model() {
    let dir = std::env::temp_dir().join(format!("iobench-soak-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(["soak", "--requests", "4010", "--connections", "8", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data: Value =
        serde_json::from_slice(&std::fs::read(dir.join("data.json")).unwrap()).unwrap();
    let rows = data["rows"].as_array().unwrap();
    // Every backend with every model it serves with (io-uring: not all of them).
    let pairs = combinations_with_models().len() as u64;
    assert_eq!(rows.len() as u64, pairs);
    let total: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    // 4,010 over the pairs, an equal share each rounded up, and the soak says so.
    let expected = 4010u64.div_ceil(pairs) * pairs;
    assert_eq!(total, expected);
    for r in rows {
        assert_eq!(r["unaccounted_bytes"], 0, "{r}");
        assert_eq!(r["mismatched_bytes"], 0, "{r}");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("0 errors"), "{readme}");
    assert!(
        readme.contains(&format!(
            "{},{:03} verified requests (4,010 asked for: each of the {pairs} pairs ran an \
             equal share, rounded up)",
            expected / 1000,
            expected % 1000
        )),
        "{readme}"
    );
    // The workload it ran, not a fixed sentence (before: always "64 pipelined").
    assert!(readme.contains("from 8 connections"), "{readme}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The final report gives every thread its kernel figures, also the threads that
/// have ended by then (before: 0/0 for each worker, read after it was joined, so
/// the threads' switches fell far short of the process's), and lists only threads
/// (before: a "report" entry that was none).
#[test]
fn the_final_report_has_every_threads_context_switches() {
    for model in [Model::Dispatch, Model::IoThreads, Model::Reuseport] {
        let server = Server::start(&strs(&model_args(Backend::EpollEt, model)));
        let mut clients: Vec<_> = (0..8).map(|_| server.connect()).collect();
        for _ in 0..20 {
            for (i, c) in clients.iter_mut().enumerate() {
                assert_eq!(round_trip(c, &pattern(i as u64, 64)), pattern(i as u64, 64));
            }
        }
        drop(clients);
        let (stats, _) = server.stop();
        assert!(
            stats.threads.iter().all(|t| t.thread != "report"),
            "{stats:?}"
        );
        // The threads' own figures add up to the process's (getrusage counts the
        // ended threads too), up to what happened between the two readings.
        let threads: u64 = stats
            .threads
            .iter()
            .map(|t| t.voluntary_cs + t.involuntary_cs)
            .sum();
        let process = stats.process.voluntary_cs + stats.process.involuntary_cs;
        assert!(
            threads.abs_diff(process) <= 5 + process / 50,
            "{model}: threads {threads}, process {process}: {stats:?}"
        );
    }
}
