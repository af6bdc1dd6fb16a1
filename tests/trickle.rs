//! A message trickled in many small writes costs the server time in proportion to
//! its size, not its square. Four clients each grow one unfinished line or TLV frame,
//! 16 bytes per write (some 650 KB/s together), beside a verified load; the control
//! is the same clients at the same byte and call rate, finishing a message every
//! 4 KiB. The load beside the growing frames keeps at least half its requests of
//! the control (before the fix: a twentieth to a third). A ratio within one test,
//! runs interleaved, best of two each: not a timing.

mod common;

use common::*;
use iobench::load::LoadReport;
use iobench::protocol::{Protocol, TLV_NOTICE, TLV_REQUEST, tlv_header};
use iobench::server::Model;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const TRICKLERS: usize = 4;
/// The control's messages: each finished after this many bytes.
const CAPPED: usize = 4096;
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

/// How a trickler's bytes make messages.
#[derive(Clone, Copy)]
enum Messages {
    /// One message that never ends: the attack.
    Growing,
    /// A message finished every CAPPED bytes: the control.
    Capped,
}

/// The start of a message of `len` bytes of content (TLV: its header).
fn message_head(protocol: Protocol, messages: Messages, len: usize) -> Vec<u8> {
    let mut head = Vec::new();
    if protocol == Protocol::Tlv {
        // A notice has no reply: the control's messages cost no writes back.
        let kind = match messages {
            Messages::Growing => TLV_REQUEST,
            Messages::Capped => TLV_NOTICE,
        };
        tlv_header(kind, len, &mut head);
    }
    head
}

/// One client writing 16 bytes about every 100 us until `stop`; its replies (the
/// control's lines come back) are read and dropped by a second thread.
fn trickle(
    addr: SocketAddr,
    protocol: Protocol,
    messages: Messages,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut replies = s.try_clone().unwrap();
        let reader =
            thread::spawn(
                move || while matches!(replies.read(&mut [0u8; 4096]), Ok(n) if n > 0) {},
            );
        let len = match messages {
            Messages::Growing => MOST_BYTES * 2,
            Messages::Capped => CAPPED,
        };
        let started = Instant::now();
        let (mut sent, mut in_message) = (0, 0);
        while !stop.load(Ordering::Relaxed) && sent < MOST_BYTES && started.elapsed() < MOST_TIME {
            let mut piece = Vec::new();
            if in_message == 0 {
                piece = message_head(protocol, messages, len);
            }
            piece.extend_from_slice(&[b'x'; 16]);
            in_message += 16;
            if in_message >= len {
                if protocol == Protocol::Line {
                    *piece.last_mut().unwrap() = b'\n';
                }
                in_message = 0;
            }
            if s.write_all(&piece).is_err() {
                break;
            }
            sent += 16;
            thread::sleep(Duration::from_micros(100));
        }
        let _ = s.shutdown(std::net::Shutdown::Both);
        reader.join().unwrap();
    })
}

/// The load's requests while `messages` tricklers run, after letting them run 2 s
/// (growing frames reach some 200 KB each).
fn beside(server: &Server, protocol: Protocol, messages: Messages) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let tricklers: Vec<_> = (0..TRICKLERS)
        .map(|_| trickle(server.addr, protocol, messages, Arc::clone(&stop)))
        .collect();
    thread::sleep(Duration::from_secs(2));
    let requests = load(server.addr, protocol);
    stop.store(true, Ordering::Relaxed);
    for t in tricklers {
        t.join().unwrap();
    }
    requests
}

/// The load's requests beside growing messages and beside the control, best of
/// two each, interleaved.
fn attack(protocol: Protocol, model: Model) -> (u64, u64) {
    let server = Server::start(&[
        "--protocol",
        protocol.name(),
        "--model",
        model.name(),
        "--max-frame",
        "16M",
    ]);
    let (mut control, mut attacked) = (0, 0);
    for _ in 0..2 {
        control = control.max(beside(&server, protocol, Messages::Capped));
        attacked = attacked.max(beside(&server, protocol, Messages::Growing));
    }
    server.stop();
    (attacked, control)
}

/// One test for every case, so that no two attacks (and no attack and another's
/// control) share the machine at once: the ratio compares like with like.
#[test]
fn trickled_messages_do_not_starve_a_neighbour() {
    let mut starved = Vec::new();
    for (protocol, model) in [
        (Protocol::Line, Model::Reactor),
        (Protocol::Tlv, Model::Reactor),
        (Protocol::Line, Model::IoThreads),
    ] {
        let (attacked, control) = attack(protocol, model);
        if attacked * 2 < control {
            starved.push(format!(
                "{protocol} {model}: {attacked} requests beside growing messages, {control} \
                 beside finished ones"
            ));
        }
    }
    assert!(starved.is_empty(), "{starved:#?}");
}
