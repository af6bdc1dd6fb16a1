//! The completion loop (io-uring) on real loopback sockets: what the readiness
//! suites do not show of it. A starved buffer ring (ENOBUFS re-arms the recv, no
//! connection is lost), each ring setup, a never-reading client next to served
//! ones, the models it refuses, its operations counted by kind and traced, and an
//! SQPOLL thread's CPU time in the server's.

mod common;

use common::*;
use iobench::backend::Backend;
use iobench::load::LoadReport;
use iobench::metrics::ProcSample;
use iobench::protocol::Protocol;
use iobench::server::{Model, RingSetup};
use iobench::sys::{Call, RingOp, Stat};
use std::io::{ErrorKind, Write};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

const URING: &str = "io-uring";

/// `iobench load` against `server`, pipelined, every byte verified by the load
/// generator; returns its report.
fn load(server: &Server, protocol: Protocol, connections: usize, requests: u64) -> LoadReport {
    let target = server.addr.to_string();
    iobench_json(&[
        "load",
        "--target",
        &target,
        "--protocol",
        protocol.name(),
        "--connections",
        &connections.to_string(),
        "--pipeline",
        "8",
        "--payload",
        "200",
        "--requests",
        &requests.to_string(),
        "--warmup",
        "0s",
        "--json",
    ])
}

/// 1 MiB buffers make a ring of 16 for 64 pipelining connections: the ring runs
/// dry, each recv that ends on ENOBUFS is armed again, and every protocol's echo
/// stays exact with no connection lost.
#[test]
fn a_starved_buffer_ring_rearms_and_loses_nothing() {
    let mut dry = 0;
    for protocol in [Protocol::Raw, Protocol::Line, Protocol::Tlv] {
        let server = Server::start(&[
            "--backend",
            URING,
            "--protocol",
            protocol.name(),
            "--buffer-size",
            "1M",
        ]);
        let r = load(&server, protocol, 64, 20_000);
        let (stats, err) = server.stop();
        let ctx = format!("{protocol}: {stats:?} {err}");
        assert_eq!(r.requests_total, 20_000, "{ctx}: {r:?}");
        assert_eq!(counter(&stats, Stat::Accepted), 64, "{ctx}");
        assert_eq!(counter(&stats, Stat::Closed), 64, "{ctx}");
        let wire = r.wire_size as u64;
        assert_eq!(counter(&stats, Stat::BytesOut), 20_000 * wire, "{ctx}");
        for stat in [Stat::Resets, Stat::IoErrors, Stat::ProtocolErrors] {
            assert_eq!(counter(&stats, stat), 0, "{ctx}");
        }
        dry += counter(&stats, Stat::RecvNoBuffers);
    }
    assert!(dry > 0, "the ring of 16 buffers never ran dry");
}

/// Every ring setup serves, and each enter is counted: fewer enters than requests
/// under pipelined load (many completions reaped per enter).
#[test]
fn every_ring_setup_echoes_exactly() {
    for &ring in RingSetup::ALL {
        let server = Server::start(&[
            "--backend",
            URING,
            "--ring",
            ring.name(),
            "--sqpoll-idle",
            "10ms",
        ]);
        let r = load(&server, Protocol::Raw, 16, 10_000);
        let (stats, err) = server.stop();
        let ctx = format!("{ring}: {stats:?} {err}");
        assert_eq!(r.requests_total, 10_000, "{ctx}: {r:?}");
        assert_eq!(counter(&stats, Stat::BytesOut), 10_000 * 200, "{ctx}");
        let enters = syscalls(&stats, Call::IoUringEnter);
        assert!(enters > 0 && enters < 10_000, "{ctx}: {enters} enters");
    }
}

/// A client that sends 32 MiB and never reads: its recv is cancelled at the
/// output bound, the server holds a bounded amount for it, and another client is
/// served exactly all the while; when the hog vanishes, the server closes it.
#[test]
fn a_never_reading_client_is_paused_not_buffered() {
    let mut server = Server::start(&["--backend", URING, "--sndbuf", "16K"]);
    let mut hog = server.connect();
    hog.set_nonblocking(true).unwrap();
    let chunk = pattern(1, 64 * 1024);
    let (mut pushed, mut stalls) = (0usize, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pushed < 32 << 20 && stalls < 10 && Instant::now() < deadline {
        match hog.write(&chunk) {
            Ok(n) => {
                pushed += n;
                stalls = 0;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stalls += 1;
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("hog: {e}"),
        }
    }
    assert!(
        stalls >= 10,
        "the server took all {pushed} bytes: no backpressure"
    );
    let mut other = server.connect();
    for round in 0..50 {
        let data = pattern(round, 4000);
        assert!(round_trip(&mut other, &data) == data, "round {round}");
    }
    let snapshot = server.snapshot();
    assert!(
        counter(&snapshot, Stat::ReadPauses) >= 1,
        "never paused: {snapshot:?}"
    );
    let rss = snapshot.process.max_rss_kib;
    assert!(rss < 48 * 1024, "{rss} KiB resident with a hog");
    drop(hog); // unread data: the kernel resets it
    assert!(finish(other).is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&server.snapshot(), Stat::Closed) < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let (stats, err) = server.stop();
    assert_eq!(counter(&stats, Stat::Closed), 2, "{stats:?} {err}");
}

/// io-threads is not built on completion loops: refused up front, saying which
/// models are.
#[test]
fn models_without_a_completion_loop_are_refused() {
    let model = Model::IoThreads;
    let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(["serve", "--backend", URING, "--model", model.name()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{model}");
    assert!(
        err.contains("reactor, reuseport and dispatch"),
        "{model}: {err}"
    );
    assert!(!err.contains("panicked"), "{model}: {err}");
    assert!(Backend::readiness().all(|b| b != Backend::IoUring));
}

/// Each operation counted by kind as submitted and as completed: one multishot
/// accept for every connection, one multishot recv per connection, a send per
/// echo and one completion for each; --trace prints each enter and completion.
#[test]
fn operations_are_counted_by_kind_and_traced() {
    let mut server = Server::start(&["--backend", URING, "--trace"]);
    let mut clients: Vec<_> = (0..4).map(|_| server.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let data = pattern(i as u64, 9);
        assert_eq!(round_trip(c, &data), data, "client {i}");
    }
    for c in clients {
        assert!(finish(c).is_empty());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&server.snapshot(), Stat::Closed) < 4 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let (stats, trace) = server.stop();
    let t = &stats.totals;
    let ctx = format!("{t:?}");
    assert_eq!(t.submitted(RingOp::Accept), 1, "{ctx}");
    // Four connections, and the last completion of the accept as the server stops.
    assert_eq!(t.completed(RingOp::Accept), 5, "{ctx}");
    assert_eq!(t.submitted(RingOp::Recv), 4, "{ctx}");
    // The 9 bytes, and the end of file that ends the multishot recv.
    assert_eq!(t.completed(RingOp::Recv), 8, "{ctx}");
    assert_eq!(
        t.submitted(RingOp::Send),
        t.completed(RingOp::Send),
        "{ctx}"
    );
    assert!(t.submitted(RingOp::Send) >= 4, "{ctx}");
    let kinds: u64 = RingOp::ALL.iter().map(|&op| t.submitted(op)).sum();
    assert_eq!(kinds, t.ring_submitted_total(), "{ctx}");
    let enter = trace
        .lines()
        .find(|l| l.contains("io_uring_enter(to_submit="))
        .unwrap_or_else(|| panic!("no enter traced: {trace}"));
    assert!(enter.contains(", min_complete=1) = "), "{enter}");
    let recv = trace
        .lines()
        .find(|l| l.contains("recv(fd ") && l.contains(" = 9 [buf "))
        .unwrap_or_else(|| panic!("no recv of 9 bytes traced: {trace}"));
    assert!(recv.ends_with("] MORE"), "{recv}");
    assert!(trace.contains("accept(fd "), "{trace}");
    assert!(
        trace.contains(") = 9\n") && trace.contains("send(fd "),
        "{trace}"
    );
}

/// Under SQPOLL a kernel thread of the server's own (`iou-sqp-PID`, a thread of the
/// process since Linux 5.12) submits and completes its operations: its CPU time is
/// the server's, both in the figure a bench divides by requests (/proc, every task)
/// and in the server's own getrusage.
#[test]
fn an_sqpoll_thread_is_counted_in_the_server_cpu() {
    let mut server = Server::start(&[
        "--backend",
        URING,
        "--ring",
        RingSetup::Sqpoll.name(),
        "--sqpoll-idle",
        "10ms",
    ]);
    let r = load(&server, Protocol::Raw, 16, 10_000);
    assert_eq!(r.requests_total, 10_000, "{r:?}");
    let pid = server.pid().as_raw();
    let tasks: Vec<(String, u64)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|task| {
            let dir = task.unwrap().path();
            let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
            let on_cpu_ns = read("schedstat").split_whitespace().next().unwrap().parse();
            (read("comm").trim().to_string(), on_cpu_ns.unwrap())
        })
        .collect();
    let sqpoll: u64 = tasks
        .iter()
        .filter(|(comm, _)| comm.starts_with("iou-sqp"))
        .map(|(_, ns)| ns)
        .sum();
    assert!(sqpoll > 0, "no SQPOLL thread at work: {tasks:?}");
    let every_task: u64 = tasks.iter().map(|(_, ns)| ns).sum();
    // Read after the tasks, whose times only grow: at least their sum (to the
    // nanosecond sums' rounding in seconds), which a sum without the SQPOLL thread
    // would fall short of by milliseconds.
    let proc = ProcSample::read(pid).unwrap();
    assert!(
        proc.cpu_s * 1e9 + 1e3 >= every_task as f64,
        "{} s of CPU for the server, its tasks had {every_task} ns: {tasks:?}",
        proc.cpu_s
    );
    let usage = server.snapshot().process;
    // getrusage's microseconds: at most 1 us short per field.
    let rusage_ns = (usage.user_s + usage.sys_s + 2e-6) * 1e9;
    assert!(
        rusage_ns >= every_task as f64,
        "getrusage {usage:?}, tasks {tasks:?}"
    );
    let (stats, err) = server.stop();
    assert_eq!(counter(&stats, Stat::BytesOut), 10_000 * 200, "{err}");
}
