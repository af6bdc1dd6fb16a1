//! The load generator against servers written here to misbehave: one that corrupts
//! a byte, one that stalls; and its errors on bad input. Each driver (epoll,
//! io-uring) must report a misbehaving server the same way.

mod common;

use common::iobench_json;
use iobench::backend::Backend;
use iobench::load::{Driver, LoadReport};
use iobench::protocol::Protocol;
use iobench::server::ReadStrategy;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

fn iobench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(args)
        .output()
        .expect("run iobench")
}

/// `--driver NAME` for each driver.
fn drivers() -> impl Iterator<Item = [&'static str; 2]> {
    Driver::ALL.iter().map(|d| ["--driver", d.name()])
}

/// A thread-per-connection echo server; `fiddle` sees each chunk before it goes back
/// and runs under one lock, so a sleep in it stalls every connection. The listener
/// stays open until the test ends (the process exits).
fn echo_server(fiddle: impl Fn(&mut [u8]) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let fiddle = Arc::new(Mutex::new(fiddle));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let fiddle = Arc::clone(&fiddle);
            thread::spawn(move || {
                s.set_nodelay(true).unwrap();
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    (fiddle.lock().unwrap())(&mut buf[..n]);
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_server_that_corrupts_one_byte_makes_load_fail() {
    for driver in drivers() {
        let corrupted = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&corrupted);
        let started = Instant::now();
        let addr = echo_server(move |chunk| {
            if started.elapsed() > Duration::from_millis(300) && !flag.swap(true, Ordering::SeqCst)
            {
                chunk[0] ^= 0x20;
            }
        });
        let args = ["load", "--target", &addr, "--connections", "4"];
        let out = iobench(
            &[
                &args[..],
                &driver,
                &["--duration", "600ms", "--warmup", "100ms"],
            ]
            .concat(),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            corrupted.load(Ordering::SeqCst),
            "{driver:?}: the server never corrupted a byte"
        );
        assert!(
            !out.status.success(),
            "{driver:?}: load passed a corrupted echo: {stdout}"
        );
        assert!(
            stdout.contains("1 mismatched byte,"),
            "{driver:?}: {stdout}"
        );
        assert!(stderr.contains("mismatched"), "{driver:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{driver:?}: {stderr}");
    }
}

#[test]
fn a_correct_server_passes_and_every_request_is_checked() {
    let addr = echo_server(|_| {});
    let out = iobench(&[
        "load",
        "--target",
        &addr,
        "--connections",
        "3",
        "--requests",
        "3000",
        "--pipeline",
        "4",
        "--payload",
        "1000",
        "--warmup",
        "0s",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: LoadReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.requests_total, 3000, "{r:?}");
    assert_eq!(r.mismatched_bytes, 0);
    assert_eq!(r.lost_bytes, 0);
}

/// Open loop at 2,000 requests/s while the server stalls once for 200 ms: the
/// requests due during the stall wait, and only latency measured from their intended
/// send time shows it; from the actual send time only the few in flight do.
#[test]
fn open_loop_shows_a_stall_only_in_corrected_latency() {
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stalled);
    let started = Instant::now();
    let addr = echo_server(move |_| {
        if started.elapsed() > Duration::from_millis(500) && !flag.swap(true, Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(200));
        }
    });
    let out = iobench(&[
        "load",
        "--target",
        &addr,
        "--connections",
        "4",
        "--rate",
        "2000",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stalled.load(Ordering::SeqCst));
    let r: LoadReport = serde_json::from_slice(&out.stdout).unwrap();
    let corrected = r.latency.p99;
    let uncorrected = r.uncorrected.p99;
    assert!(
        corrected > 100_000.0,
        "corrected p99 {corrected} us misses the stall: {r:?}"
    );
    assert!(
        uncorrected < 50_000.0,
        "uncorrected p99 {uncorrected} us shows the stall: {r:?}"
    );
    // The few requests in flight when it stalled do see it.
    assert!(r.uncorrected.max > 150_000.0, "{r:?}");
    // The requests due during the stall waited for their connection: that lag is
    // the server's backpressure, and the generator's own stays small (before, both
    // were one "send lag (generator's own)").
    assert!(r.backpressure.max > 100_000.0, "{r:?}");
    assert!(r.send_lag.p99 < 20_000.0, "{r:?}");
}

fn fails_with(args: &[&str], message: &str) {
    let out = iobench(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    let first = stderr.lines().next().unwrap_or("");
    assert!(
        first.contains(message),
        "{args:?}: the first line should say it: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    // Our own errors are one line; clap adds a hint line after a bad flag.
    if out.status.code() != Some(2) {
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: one clear line: {stderr}"
        );
    }
}

#[test]
fn bad_input_gets_one_clear_line() {
    // A port nobody listens on: bind one, note it, close it.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    fails_with(
        &["load", "--target", &free, "--duration", "100ms"],
        "cannot connect",
    );
    let addr = echo_server(|_| {});
    fails_with(
        &["load", "--target", &addr, "--payload", "0"],
        "--payload must be at least 1",
    );
    fails_with(
        &[
            "load",
            "--target",
            &addr,
            "--connections",
            "5000000",
            "--duration",
            "100ms",
        ],
        "RLIMIT_NOFILE",
    );
    fails_with(
        &["load", "--target", "nowhere"],
        "--target nowhere: give HOST:PORT",
    );
    fails_with(&["serve", "--buffer-size", "12Q"], "unknown unit");
    // Too large to allocate: refused with the range before anything runs (before,
    // an allocation failure aborted with a backtrace).
    fails_with(&["serve", "--buffer-size", "64G"], "outside 1 .. 64M");
    fails_with(&["compare", "--buffer-size", "64G"], "outside 1 .. 64M");
    fails_with(
        &["load", "--target", &addr, "--payload", "10G"],
        "more than the 16M a request may carry",
    );
    // A port in use.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    fails_with(&["serve", "--listen", &port], "the port is in use");
    fails_with(
        &[
            "serve",
            "--backend",
            Backend::EpollEt.name(),
            "--read-strategy",
            ReadStrategy::Once.name(),
        ],
        "strands data",
    );
    drop(TcpStream::connect(&addr).unwrap());
}

/// Two client "hosts" write interval logs; `report merge` adds their histograms.
#[test]
fn interval_logs_from_two_runs_merge() {
    let addr = echo_server(|_| {});
    let dir = std::env::temp_dir().join(format!("iobench-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut counts = 0;
    for name in ["a", "b"] {
        let log = dir.join(format!("{name}.hlog"));
        let log = log.to_string_lossy();
        let r: LoadReport = iobench_json(&[
            "load",
            "--target",
            &addr,
            "--connections",
            "2",
            "--duration",
            "300ms",
            "--warmup",
            "0s",
            "--json",
            "--histogram-log",
            &log,
        ]);
        counts += r.latency.count;
    }
    let hgrm = dir.join("merged.hgrm");
    let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(["report", "merge"])
        .arg(dir.join("a.hlog"))
        .arg(dir.join("b.hlog"))
        .arg("--hgrm")
        .arg(&hgrm)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: u64 = text
        .split(" samples")
        .next()
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no sample count: {text}"));
    assert_eq!(samples, counts, "{text}");
    let spectrum = std::fs::read_to_string(&hgrm).unwrap();
    assert!(
        spectrum.contains(&format!("Total count    = {counts:>12}")),
        "{spectrum}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A server that hangs up on everyone before the request count is reached: the load
/// generator stops when no connection is left, and says what happened, instead of
/// waiting forever for echoes that cannot come.
#[test]
fn load_ends_when_the_server_hangs_up_on_every_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            thread::spawn(move || {
                // Ten 64-byte echoes, then the hang-up.
                let mut left = 640;
                let mut buf = [0u8; 64];
                while left > 0 {
                    let Ok(n) = s.read(&mut buf[..64.min(left)]) else {
                        return;
                    };
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    left -= n;
                }
            });
        }
    });
    for driver in drivers() {
        let load = common::Reaped::new(
            Command::new(env!("CARGO_BIN_EXE_iobench"))
                .args(["load", "--target", &addr, "--connections", "4"])
                .args(["--requests", "1000000", "--warmup", "0s"])
                .args(driver)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let out = load.wait_within(
            Duration::from_secs(30),
            "a load generator whose server closed everything",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{driver:?}");
        assert!(
            stderr.contains("4 unexpected closes"),
            "{driver:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{driver:?}: {stderr}");
    }
}

/// Runs `iobench ARGS` as a child killed by PID if the test fails first; fails the
/// test if it runs past `limit`.
fn finishes_within(args: &[&str], limit: Duration) -> Output {
    let child = common::Reaped::new(
        Command::new(env!("CARGO_BIN_EXE_iobench"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    child.wait_within(limit, &format!("iobench {args:?}"))
}

/// A server that reads everything and answers nothing: `--requests` would wait
/// forever; with --timeout the run stops and says what completed.
#[test]
fn load_gives_up_on_a_server_that_never_answers() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            thread::spawn(move || while matches!(s.read(&mut [0u8; 4096]), Ok(n) if n > 0) {});
        }
    });
    let args = ["load", "--target", &addr, "--connections", "2"];
    let mut said = Vec::new();
    for driver in drivers() {
        let out = finishes_within(
            &[
                &args[..],
                &driver,
                &["--requests", "1000", "--timeout", "1s"],
            ]
            .concat(),
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{driver:?}: {stderr}");
        assert!(
            stderr.contains("sent no echo byte for 1s (--timeout)"),
            "{driver:?}: {stderr}"
        );
        assert!(
            stderr.contains("0 requests completed"),
            "{driver:?}: {stderr}"
        );
        said.push(stderr);
    }
    assert!(said.windows(2).all(|w| w[0] == w[1]), "{said:#?}");
}

/// A listener whose backlog is full and which never accepts: connects get no
/// answer, and --connect-timeout ends the attempt instead of the kernel's two
/// minutes of SYN retries.
#[test]
fn load_gives_up_on_a_listener_that_never_accepts() {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, getsockname, listen, socket,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        // Not to be inherited by the children other tests fork meanwhile.
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(127, 0, 0, 1, 0),
    )
    .unwrap();
    listen(&fd, Backlog::new(0).unwrap()).unwrap();
    let addr: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
    let addr = format!("127.0.0.1:{}", addr.port());
    // Fill the accept queue (backlog 0 holds one), then a little more.
    let mut fillers = Vec::new();
    for _ in 0..4 {
        match TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    let out = finishes_within(
        &[
            "load",
            "--target",
            &addr,
            "--connections",
            "2",
            "--duration",
            "4s",
        ],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("--connect-timeout"), "{stderr}");
    drop(fillers);
}

/// Open loop far above what the connections can carry: the backlog of unsent
/// requests is capped, those given up are counted as missed (and still enter the
/// corrected latency), and the generator's memory stays small. Before: 233 MB at
/// --rate 5e6, an aborted 512 MiB allocation at 1e9.
#[test]
fn open_loop_above_capacity_misses_requests_in_bounded_memory() {
    let server = common::Server::start(&[]);
    let addr = server.addr.to_string();
    let r: LoadReport = iobench_json(&[
        "load",
        "--target",
        &addr,
        "--connections",
        "4",
        "--rate",
        "1e9",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--json",
    ]);
    assert!(r.missed > 1_000_000, "{r:?}");
    assert_eq!(r.errors(), 0, "{r:?}");
    assert!(
        r.latency.count >= r.missed,
        "missed requests are in the histogram: {r:?}"
    );
    assert!(
        r.client_peak_rss_kib < 100 << 10,
        "{} KiB",
        r.client_peak_rss_kib
    );
    server.stop();
}

/// A server that closes every connection: the run ends at once, not after
/// --duration.
#[test]
fn load_reports_at_once_when_every_connection_is_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let mut said = Vec::new();
    for driver in drivers() {
        let started = Instant::now();
        let args = ["load", "--target", &addr, "--connections", "2"];
        let out = finishes_within(
            &[&args[..], &driver, &["--duration", "30s", "--warmup", "0s"]].concat(),
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{driver:?}");
        assert!(
            stderr.contains("2 unexpected closes"),
            "{driver:?}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{driver:?}: {:?}",
            started.elapsed()
        );
        said.push(stderr);
    }
    assert!(said.windows(2).all(|w| w[0] == w[1]), "{said:#?}");
}

/// `--requests N` is N measured requests, the warm-up's on top: before, the
/// warm-up used up the count (`--requests 5000 --pipeline 8` measured none and
/// failed with "no request completed in the measured window").
#[test]
fn a_request_count_is_measured_after_the_warm_up() {
    let server = common::Server::start(&[]);
    let r: LoadReport = iobench_json(&[
        "load",
        "--target",
        &server.addr.to_string(),
        "--requests",
        "5000",
        "--connections",
        "4",
        "--pipeline",
        "8",
        "--warmup",
        "300ms",
        "--json",
    ]);
    assert_eq!(r.requests, 5000, "{r:?}");
    assert!(
        r.requests_total > r.requests,
        "the warm-up's come on top: {r:?}"
    );
    assert_eq!(r.errors(), 0, "{r:?}");
    server.stop();
}

/// An open loop says what rate it achieved against what it asked for, and warns
/// when it fell short (before: "24 requests in 2.00 s: 12 requests/s" at --rate
/// 1e8, and nothing else).
#[test]
fn open_loop_prints_the_achieved_rate() {
    let server = common::Server::start(&[]);
    let addr = server.addr.to_string();
    let run = |rate: &str| {
        let out = iobench(&[
            "load",
            "--target",
            &addr,
            "--rate",
            rate,
            "--connections",
            "2",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
        ]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let kept = run("500");
    assert!(kept.contains("of 500 requests/s"), "{kept}");
    assert!(!kept.contains("cannot sustain"), "{kept}");
    let short = run("1e8");
    assert!(
        short.contains("warning: achieved")
            && short.contains("of 100,000,000 requests/s: the connections cannot sustain it"),
        "{short}"
    );
    server.stop();
}

/// A host name works as a target (before: clap refused anything but IP:PORT).
#[test]
fn a_target_may_be_a_host_name() {
    let server = common::Server::start(&[]);
    let target = format!("localhost:{}", server.addr.port());
    let r: LoadReport = iobench_json(&[
        "load",
        "--target",
        &target,
        "--requests",
        "100",
        "--warmup",
        "0s",
        "--json",
    ]);
    assert_eq!(r.requests, 100, "{r:?}");
    server.stop();
}

/// A server that answers something else (here, like an HTTP server: an error
/// response, then close) is named for what it is, besides the counts.
#[test]
fn a_server_that_is_no_echo_server_is_named_so() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let _ = s.read(&mut [0u8; 4096]);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    for driver in drivers() {
        let args = [
            "load",
            "--target",
            &addr,
            "--duration",
            "300ms",
            "--warmup",
            "0s",
        ];
        let out = iobench(&[&args[..], &driver].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{driver:?}");
        assert!(
            stderr.contains("the replies are not an echo of the requests")
                && stderr.contains("an echo server?"),
            "{driver:?}: {stderr}"
        );
    }
}

/// A malformed interval log is named with its file and line, in words (before:
/// "ParseError { offset: 0 }").
#[test]
fn a_malformed_log_is_named_by_file_and_line() {
    let path = std::env::temp_dir().join(format!("iobench-bad-{}.hlog", std::process::id()));
    std::fs::write(&path, "#[StartTime: 1]\nthis is not a log\n").unwrap();
    let out = iobench(&["report", "merge", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "{}, line 2: not an HdrHistogram interval log entry",
            path.display()
        )) && stderr.contains("this is not a log"),
        "{stderr}"
    );
    std::fs::remove_file(&path).unwrap();
}

/// Both drivers against our server, over every protocol it frames, pipelined in a
/// closed loop and paced in an open one: every request completes with every byte
/// checked, and the server wrote exactly the bytes the client verified.
#[test]
fn both_drivers_verify_every_byte_over_every_protocol() {
    for protocol in [Protocol::Raw, Protocol::Line, Protocol::Tlv] {
        let server = common::Server::start(&["--protocol", protocol.name()]);
        let addr = server.addr.to_string();
        let mut verified = 0;
        for driver in drivers() {
            let common = ["load", "--target", &addr, "--protocol", protocol.name()];
            let closed = ["--requests", "3000", "--pipeline", "4", "--payload", "1000"];
            let open = [
                "--rate",
                "2000",
                "--duration",
                "300ms",
                "--connections",
                "2",
            ];
            for workload in [&closed[..], &open[..]] {
                let args = [
                    &common[..],
                    &driver,
                    workload,
                    &["--warmup", "0s", "--json"],
                ];
                let r: LoadReport = iobench_json(&args.concat());
                let what = format!("{protocol} {driver:?} {workload:?}");
                assert!(r.requests > 0, "{what}: {r:?}");
                assert_eq!(r.errors(), 0, "{what}: {r:?}");
                assert_eq!(r.missed, 0, "{what}: {r:?}");
                if workload == closed {
                    assert_eq!(r.requests, 3000, "{what}: {r:?}");
                }
                verified += r.requests_total * r.wire_size as u64;
            }
        }
        let (stats, _) = server.stop();
        assert_eq!(
            common::counter(&stats, iobench::sys::Stat::BytesOut),
            verified,
            "{protocol}"
        );
    }
}

/// Where io_uring is refused (here by a seccomp policy on io_uring_setup, as a
/// container's may be), `--driver io-uring` fails at once with the kernel's reason
/// and the way out; the epoll driver still runs.
#[test]
fn the_io_uring_driver_where_io_uring_is_refused_says_why() {
    let addr = echo_server(|_| {});
    let run = |driver: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_iobench"));
        cmd.args(["load", "--target", &addr, "--driver", driver])
            .args(["--requests", "100", "--warmup", "0s"]);
        refuse_io_uring(&mut cmd);
        cmd.output().expect("run iobench")
    };
    let out = run(Driver::IoUring.name());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("iobench: --driver io-uring: io_uring unavailable: ")
            && stderr.contains("seccomp")
            && stderr.contains("--driver epoll needs none"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let out = run(Driver::Epoll.name());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Installs, in the forked child before exec, a seccomp filter that fails
/// io_uring_setup with EPERM and allows every other call. (Its number, 425, is the
/// same on every architecture: it came after the syscall tables were unified.)
fn refuse_io_uring(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let bpf = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let filter = [
        // Load seccomp_data.nr.
        bpf(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        bpf(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            1,
            libc::SYS_io_uring_setup as u32,
        ),
        bpf(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        bpf(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: runs in the forked child before exec; prctl is async-signal-safe,
    // and `filter` is a copy the closure owns, alive for the call that reads it.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
