//! Hostile clients against every backend and model, while normal clients run
//! verified load: each is survived, the normal clients keep getting exact echoes,
//! memory stays bounded, nothing panics. Every loop here is bounded in time and count.

mod common;

use common::*;
use iobench::backend::Backend;
use iobench::load::LoadReport;
use iobench::protocol::Protocol;
use iobench::server::Model;
use iobench::sys::Stat;
use nix::sys::socket::{setsockopt, sockopt};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const REQUESTS: u64 = 5000;

/// True once the server has closed (or reset) the connection; false after `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

fn survive(backend: Backend, model: Model) {
    let ctx = format!("{backend}/{model}");
    let mut args = model_args(backend, model);
    args.extend(
        [
            "--idle-timeout",
            "400ms",
            // A small send buffer: the hog fills it long before it could fill the
            // megabytes the kernel would otherwise autotune, so the bound is reached.
            "--sndbuf",
            "16K",
        ]
        .map(String::from),
    );
    let mut server = Server::start(&strs(&args));
    let addr = server.addr;
    let load = Reaped::new(
        Command::new(env!("CARGO_BIN_EXE_iobench"))
            .args([
                "load",
                "--target",
                &addr.to_string(),
                "--connections",
                "6",
                "--pipeline",
                "2",
            ])
            .args([
                "--requests",
                &REQUESTS.to_string(),
                "--warmup",
                "0s",
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );

    // Silent clients (slowloris that sends nothing): closed by the idle timeout.
    let mut silent: Vec<TcpStream> = (0..3).map(|_| server.connect()).collect();
    // A client that sends and never reads: the server stops reading it at the bound.
    let mut hog = server.connect();
    hog.set_nonblocking(true).unwrap();
    let chunk = pattern(9, 64 * 1024);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut stalls = 0;
    while Instant::now() < deadline && stalls < 10 {
        match hog.write(&chunk) {
            Ok(_) => stalls = 0,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stalls += 1;
                thread::sleep(Duration::from_millis(20));
            }
            Err(_) => break,
        }
    }
    // A reset in the middle of a large echo.
    let mut rst = server.connect();
    rst.write_all(&pattern(5, 256 * 1024)).unwrap();
    let mut some = [0u8; 1024];
    rst.read_exact(&mut some).unwrap();
    setsockopt(
        &rst,
        sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    )
    .unwrap();
    drop(rst);
    // Half-close: everything sent comes back, then the end.
    let mut half = server.connect();
    let data = pattern(6, 100_000);
    half.write_all(&data).unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    if let Err(e) = half.read_to_end(&mut back) {
        panic!(
            "{ctx}: half-close: {e} after {} bytes: {:?}",
            back.len(),
            server.snapshot()
        );
    }
    assert!(back == data, "{ctx}: half-close");
    // A connect-and-close storm.
    for _ in 0..200 {
        drop(TcpStream::connect(addr).unwrap());
    }

    for s in silent.iter_mut() {
        assert!(
            closed_within(s, Duration::from_secs(5)),
            "{ctx}: a silent client was not timed out"
        );
    }
    // Reading the hog's echo drains the server's pending output, which lets it read
    // (and echo) more of what the hog sent: the hog is idle only once all of its
    // buffered megabytes have come back, which on a loaded machine takes seconds.
    assert!(
        closed_within(&mut hog, Duration::from_secs(30)),
        "{ctx}: the hog was not timed out"
    );

    let out = load.wait_with_output();
    assert!(
        out.status.success(),
        "{ctx}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: LoadReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.requests_total, REQUESTS, "{ctx}: {r:?}");

    let snapshot = server.snapshot();
    assert!(
        counter(&snapshot, Stat::ReadPauses) >= 1,
        "{ctx}: the hog was never paused: {snapshot:?}"
    );
    let (stats, err) = server.stop();
    assert!(counter(&stats, Stat::IdleTimeouts) >= 4, "{ctx}: {stats:?}");
    assert!(
        counter(&stats, Stat::Resets) + counter(&stats, Stat::IoErrors) >= 1,
        "{ctx}: {stats:?}"
    );
    let rss = stats.process.max_rss_kib;
    assert!(rss < 64 * 1024, "{ctx}: {rss} KiB resident");
    assert!(!err.contains("panicked"), "{ctx}: {err}");
}

macro_rules! per_backend {
    ($($name:ident => $backend:ident,)*) => {
        $(#[test]
        fn $name() {
            for &model in Model::ALL {
                if iobench::server::unsupported(Backend::$backend, model).is_none() {
                    survive(Backend::$backend, model);
                }
            }
        })*

        /// A backend added to the library is tested only once it is listed.
        #[test]
        fn every_backend_is_tested() {
            assert_eq!([$(Backend::$backend),*].as_slice(), Backend::ALL);
        }
    };
}

per_backend! {
    select => Select,
    poll => Poll,
    epoll_lt => EpollLt,
    epoll_et => EpollEt,
    polling => Polling,
    io_uring => IoUring,
}

/// A line client that trickles a byte at a time and never finishes a line is a
/// slowloris: the idle timeout counts completed messages, not bytes.
#[test]
fn a_trickling_line_client_is_timed_out() {
    let server = Server::start(&[
        "--protocol",
        Protocol::Line.name(),
        "--idle-timeout",
        "300ms",
    ]);
    let mut slow = server.connect();
    let mut good = server.connect();
    let start = Instant::now();
    let mut closed = false;
    while start.elapsed() < Duration::from_secs(5) {
        if slow.write_all(b"x").is_err() {
            closed = true;
            break;
        }
        assert_eq!(round_trip(&mut good, b"ok\n"), b"ok\n");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        closed || closed_within(&mut slow, Duration::from_secs(1)),
        "the trickler lived on"
    );
    assert!(start.elapsed() < Duration::from_secs(4));
    let (stats, _) = server.stop();
    assert_eq!(counter(&stats, Stat::IdleTimeouts), 1, "{stats:?}");
}

/// A TLV notice (type 3) has no reply, but it is a whole message: a client that
/// sends one every 100 ms is active, and outlives several idle timeouts.
#[test]
fn tlv_notices_are_activity() {
    use iobench::protocol::{TLV_NOTICE, tlv_header};
    let server = Server::start(&[
        "--protocol",
        Protocol::Tlv.name(),
        "--idle-timeout",
        "300ms",
    ]);
    let mut notifier = server.connect();
    let mut notice = Vec::new();
    tlv_header(TLV_NOTICE, 4, &mut notice);
    notice.extend_from_slice(b"ping");
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        notifier
            .write_all(&notice)
            .expect("the notifier was closed");
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !closed_within(&mut notifier, Duration::from_millis(100)),
        "a client sending notices was timed out"
    );
    let (stats, _) = server.stop();
    assert_eq!(counter(&stats, Stat::IdleTimeouts), 0, "{stats:?}");
}

/// 200 clients each holding 1 MiB of a TLV frame they never finish would hold
/// 200 MiB; the default input budget (16 frames, at least 64 MiB) closes the ones
/// holding the most instead, counted, and the server goes on serving.
#[test]
fn unfinished_frames_are_held_within_the_input_budget() {
    use iobench::protocol::{TLV_REQUEST, tlv_header};
    const CLIENTS: usize = 200;
    const FRAME: usize = 1 << 20;
    let mut server = Server::start(&["--protocol", Protocol::Tlv.name()]);
    let mut header = Vec::new();
    tlv_header(TLV_REQUEST, FRAME, &mut header);
    let value = vec![b'v'; FRAME - 1];
    let hogs: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut s = server.connect();
            // Closed by the server part way: what is left of the write fails.
            let _ = s.write_all(&header).and_then(|()| s.write_all(&value));
            s
        })
        .collect();
    // Until the server has read what it will read: its input stops growing.
    let mut read = 0;
    for _ in 0..50 {
        thread::sleep(Duration::from_millis(200));
        let now = counter(&server.snapshot(), Stat::BytesIn);
        if now == read {
            break;
        }
        read = now;
    }
    let mut good = server.connect();
    let mut request = Vec::new();
    tlv_header(TLV_REQUEST, 2, &mut request);
    request.extend_from_slice(b"ok");
    let mut reply = Vec::new();
    tlv_header(iobench::protocol::TLV_RESPONSE, 2, &mut reply);
    reply.extend_from_slice(b"ok");
    assert_eq!(round_trip(&mut good, &request), reply);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    drop(hogs);
    let (stats, _) = server.stop();
    let closed = counter(&stats, Stat::InputBudgetCloses);
    assert!(
        closed as usize >= CLIENTS - 64,
        "{closed} connections closed for the budget: {stats:?}"
    );
    assert!(
        peak_kib < 160 << 10,
        "the server's peak RSS was {peak_kib} KiB for a 64 MiB budget"
    );
}
