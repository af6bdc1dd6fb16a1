//! A message trickled in many small writes costs the server time in proportion to
//! its size, not its square: four clients growing one unfinished line or TLV frame
//! each, 16 bytes at a time, leave a neighbouring verified load at least half the
//! requests it makes without them (before the fix: about a tenth). A ratio within
//! one test, runs interleaved, best of two each: not a timing.

mod common;

use common::*;
use iobench::load::LoadReport;
use iobench::protocol::{Protocol, TLV_REQUEST, tlv_header};
use iobench::server::Model;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const TRICKLERS: usize = 4;
/// Each trickler's bound, in bytes and time, whatever happens to the test.
const MOST_BYTES: usize = 4 << 20;
const MOST_TIME: Duration = Duration::from_secs(30);

fn load(addr: SocketAddr, protocol: Protocol) -> u64 {
    let report: LoadReport = iobench_json(&[
        "load",
        "--target",
        &addr.to_string(),
        "--protocol",
        protocol.name(),
        "--connections",
        "4",
        "--duration",
        "800ms",
        "--warmup",
        "200ms",
        "--json",
    ]);
    assert_eq!(report.errors(), 0, "the echo was wrong: {report:?}");
    report.requests
}

/// One client growing one message that never ends, 16 bytes per write, four writes
/// about every 100 us (some 600 KB/s), until `stop`.
fn trickle(addr: SocketAddr, protocol: Protocol, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        if protocol == Protocol::Tlv {
            let mut header = Vec::new();
            tlv_header(TLV_REQUEST, MOST_BYTES * 2, &mut header);
            s.write_all(&header).unwrap();
        }
        let started = Instant::now();
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) && sent < MOST_BYTES && started.elapsed() < MOST_TIME {
            if s.write_all(&[b'x'; 16]).is_err() {
                return;
            }
            sent += 16;
            if sent % 64 == 0 {
                thread::sleep(Duration::from_micros(100));
            }
        }
    })
}

fn attack(protocol: Protocol, model: Model) {
    let server = Server::start(&[
        "--protocol",
        protocol.name(),
        "--model",
        model.name(),
        "--max-frame",
        "16M",
    ]);
    let (mut quiet, mut attacked) = (0, 0);
    for _ in 0..2 {
        quiet = quiet.max(load(server.addr, protocol));
        let stop = Arc::new(AtomicBool::new(false));
        let tricklers: Vec<_> = (0..TRICKLERS)
            .map(|_| trickle(server.addr, protocol, Arc::clone(&stop)))
            .collect();
        // Let the frames grow before measuring.
        thread::sleep(Duration::from_millis(300));
        attacked = attacked.max(load(server.addr, protocol));
        stop.store(true, Ordering::Relaxed);
        for t in tricklers {
            t.join().unwrap();
        }
    }
    assert!(
        attacked * 2 >= quiet,
        "{protocol} {model}: {attacked} requests beside the tricklers, {quiet} without"
    );
    server.stop();
}

#[test]
fn trickled_lines_do_not_starve_the_reactor() {
    attack(Protocol::Line, Model::Reactor);
}

#[test]
fn trickled_frames_do_not_starve_the_reactor() {
    attack(Protocol::Tlv, Model::Reactor);
}

#[test]
fn trickled_lines_do_not_starve_io_threads() {
    attack(Protocol::Line, Model::IoThreads);
}
