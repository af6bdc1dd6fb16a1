//! The reactor echo server on real loopback sockets, for every backend and read
//! strategy: many clients, slow readers, half-close, resets.

mod common;

use common::*;
use iobench::backend::{Backend, Trigger};
use iobench::server::ReadStrategy;
use iobench::sys::{Call, Stat};
use nix::sys::socket::{setsockopt, sockopt};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

const CLIENTS: usize = 200;
const ROUNDS: usize = 10;

/// 200 concurrent clients, requests of 1..3000 bytes against a 1000-byte read
/// buffer (so a request can take several reads), every byte compared; the server's
/// counts must match what the clients did.
fn many_clients(backend: Backend, strategy: ReadStrategy) {
    let server = Server::start(&[
        "--backend",
        backend.name(),
        "--read-strategy",
        strategy.name(),
        "--buffer-size",
        "1000",
    ]);
    let addr = server.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut sent = 0;
                for round in 0..ROUNDS {
                    let len = 1 + (id * 131 + round * 977) % 3000;
                    let data = pattern((id * ROUNDS + round) as u64, len);
                    assert_eq!(round_trip(&mut s, &data), data, "client {id} round {round}");
                    sent += len;
                }
                assert!(
                    finish(s).is_empty(),
                    "client {id}: bytes after the last echo"
                );
                sent as u64
            })
        })
        .collect();
    let total: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let (stats, _) = server.stop();
    let ctx = format!("{backend}/{strategy}: {stats:?}");
    assert_eq!(counter(&stats, Stat::Accepted), CLIENTS as u64, "{ctx}");
    assert_eq!(counter(&stats, Stat::Closed), CLIENTS as u64, "{ctx}");
    assert_eq!(counter(&stats, Stat::BytesIn), total, "{ctx}");
    assert_eq!(counter(&stats, Stat::BytesOut), total, "{ctx}");
    assert_eq!(
        counter(&stats, Stat::Resets) + counter(&stats, Stat::IoErrors),
        0,
        "{ctx}"
    );
    let wakeups = counter(&stats, Stat::Wakeups);
    assert!(wakeups > 0, "{ctx}");
    assert_eq!(syscalls(&stats, Call::Setsockopt), CLIENTS as u64, "{ctx}");
    assert_eq!(syscalls(&stats, Call::Close), CLIENTS as u64, "{ctx}");
    let requests = (CLIENTS * ROUNDS) as u64;
    if backend.trigger() == Trigger::Completion {
        // The kernel accepts, reads and writes; the loop only enters, and reaps at
        // least a recv and a send completion per request. (The few reads and writes
        // left are the control thread's wake byte and the report's /proc reading.)
        assert_eq!(syscalls(&stats, Call::Accept4), 0, "{ctx}");
        for call in [Call::Read, Call::Write] {
            assert!(syscalls(&stats, call) < 10, "{ctx}");
        }
        assert!(syscalls(&stats, Call::IoUringEnter) > 0, "{ctx}");
        assert!(counter(&stats, Stat::Events) >= 2 * requests, "{ctx}");
        return;
    }
    // One successful accept4 per connection, plus at most one EAGAIN per wakeup.
    let accepts = syscalls(&stats, Call::Accept4);
    assert!(
        accepts >= CLIENTS as u64 && accepts <= CLIENTS as u64 + wakeups,
        "{ctx}"
    );
    // Every request needs at least one read and one write.
    assert!(syscalls(&stats, Call::Read) >= requests, "{ctx}");
    assert!(syscalls(&stats, Call::Write) >= requests, "{ctx}");
    assert!(counter(&stats, Stat::Events) >= wakeups, "{ctx}");
}

/// 1 MiB echoed to a client that reads slowly, through a 16 KiB server send buffer
/// (autotuning would otherwise take it all): the server must keep what the kernel
/// does not take (partial writes), stop reading the client (backpressure), resume,
/// and deliver every byte in order.
fn slow_reader(backend: Backend, strategy: ReadStrategy) {
    const LEN: usize = 1 << 20;
    let server = Server::start(&[
        "--backend",
        backend.name(),
        "--read-strategy",
        strategy.name(),
        "--sndbuf",
        "16K",
    ]);
    let mut s = server.connect();
    let data = pattern(7, LEN);
    let mut writer = s.try_clone().unwrap();
    let to_send = data.clone();
    let sender = thread::spawn(move || {
        for chunk in to_send.chunks(64 * 1024) {
            writer.write_all(chunk).expect("send");
        }
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    // Let every buffer on the way fill up before reading anything.
    thread::sleep(Duration::from_millis(100));
    let mut back = Vec::with_capacity(LEN);
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).expect("read the echo");
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
        if back.len() % (64 * 1024) < n {
            thread::sleep(Duration::from_millis(5));
        }
    }
    sender.join().unwrap();
    assert!(back == data, "{backend}/{strategy}: echo differs");
    let (stats, _) = server.stop();
    let ctx = format!("{backend}/{strategy}: {stats:?}");
    assert!(counter(&stats, Stat::PartialWrites) > 0, "{ctx}");
    assert!(counter(&stats, Stat::ReadPauses) > 0, "{ctx}");
    assert_eq!(counter(&stats, Stat::Closed), 1, "{ctx}");
}

/// The client sends everything and half-closes before reading a byte: the server
/// must echo it all and only then close.
fn half_close(backend: Backend) {
    let server = Server::start(&["--backend", backend.name()]);
    let mut s = server.connect();
    let data = pattern(3, 100_000);
    s.write_all(&data).unwrap();
    assert!(
        finish(s) == data,
        "{backend}: echo after half-close differs"
    );
    let (stats, _) = server.stop();
    assert_eq!(counter(&stats, Stat::Closed), 1, "{backend}: {stats:?}");
}

/// A client resets mid-stream and another vanishes with output pending; a third,
/// connected all along, keeps getting correct echoes, and so does a new one.
fn resets_and_vanished_clients(backend: Backend) {
    let mut server = Server::start(&["--backend", backend.name()]);
    let mut keeper = server.connect();
    assert_eq!(round_trip(&mut keeper, b"before"), b"before");

    let mut reset = server.connect();
    reset.write_all(&pattern(1, 10_000)).unwrap();
    setsockopt(
        &reset,
        sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    )
    .unwrap();
    drop(reset); // SO_LINGER 0: close sends RST

    let mut vanish = server.connect();
    setsockopt(&vanish, sockopt::RcvBuf, &4096).unwrap();
    vanish.set_nonblocking(true).unwrap();
    let junk = pattern(2, 64 * 1024);
    let deadline = Instant::now() + Duration::from_secs(5);
    // Send until both directions are full: the server holds output for us.
    'fill: while Instant::now() < deadline {
        match vanish.write(&junk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20));
                match vanish.write(&junk) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break 'fill,
                    _ => {}
                }
            }
            Err(e) => panic!("{backend}: {e}"),
        }
    }
    drop(vanish); // unread data: the kernel resets the connection

    let data = pattern(4, 50_000);
    assert!(round_trip(&mut keeper, &data) == data, "{backend}: keeper");
    let mut fresh = server.connect();
    assert!(
        round_trip(&mut fresh, &data) == data,
        "{backend}: new client"
    );
    assert!(finish(fresh).is_empty());
    assert!(finish(keeper).is_empty());

    // Wait (bounded) until the server has noticed all four closes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&server.snapshot(), Stat::Closed) < 4 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let (stats, err) = server.stop();
    let ctx = format!("{backend}: {stats:?} {err}");
    assert_eq!(counter(&stats, Stat::Accepted), 4, "{ctx}");
    assert_eq!(counter(&stats, Stat::Closed), 4, "{ctx}");
    assert!(counter(&stats, Stat::Resets) >= 1, "{ctx}");
}

macro_rules! per_backend {
    ($($name:ident => $backend:ident,)*) => {
        $(mod $name {
            use iobench::backend::Backend;

            #[test]
            fn many_clients_every_strategy() {
                for (b, s) in super::combinations() {
                    if b == Backend::$backend {
                        super::many_clients(b, s);
                    }
                }
            }

            #[test]
            fn slow_reader_every_strategy() {
                for (b, s) in super::combinations() {
                    if b == Backend::$backend {
                        super::slow_reader(b, s);
                    }
                }
            }

            #[test]
            fn half_close() {
                super::half_close(Backend::$backend);
            }

            #[test]
            fn resets_and_vanished_clients() {
                super::resets_and_vanished_clients(Backend::$backend);
            }
        })*

        /// A backend added to the library gets these tests only once it is listed.
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
