//! What moves a load thread's bytes: the readiness model or the completion model.
//! The books (`client::Book`) are the same for both; a driver only writes what the
//! books hand it and reads what comes back, counting its system calls through the
//! same `Sys` as the server's loops.

mod epoll;
mod uring;

use super::client::Book;
use crate::names::named_enum;
use crate::sys::Sys;
use anyhow::Result;
use std::io;
use std::time::{Duration, Instant};

named_enum! {
    /// How the load generator drives its connections (`--driver`).
    pub enum Driver {
        /// a level-triggered epoll: wait for readiness, then read and write
        Epoll => "epoll",
        /// an io_uring per load thread: a recv always queued per connection, at most
        /// one send, and one io_uring_enter per turn that submits and reaps them all
        IoUring => "io-uring",
    }
}

/// One thread's driver, over the connections of `book`.
pub trait Drive {
    /// Connection `c` may have requests to send (`Book::fill`): send them now, or
    /// queue them for the next turn.
    fn flush(&mut self, book: &mut Book, c: usize, now: Instant);
    /// Waits up to `timeout` for I/O and tells the books what was read and written.
    /// An error ends the thread's run.
    fn turn(&mut self, book: &mut Book, timeout: Duration) -> io::Result<()>;
}

pub fn start(driver: Driver, sys: Sys, book: &Book) -> Result<Box<dyn Drive>> {
    Ok(match driver {
        Driver::Epoll => Box::new(epoll::Epoll::new(sys, book)?),
        Driver::IoUring => Box::new(uring::Uring::new(sys, book)?),
    })
}

/// A connection's output: requests taken from the books, and how much of them is
/// written. A new batch is taken only once the last is all written, so the bytes
/// stay where they are while a write of them is under way.
#[derive(Default)]
struct Output {
    bytes: Vec<u8>,
    done: usize,
}

impl Output {
    /// What is to be written next: the rest of the batch, or when it is all written,
    /// the next one (empty: nothing to send).
    fn next(&mut self, book: &mut Book, c: usize, now: Instant) -> &[u8] {
        if self.done == self.bytes.len() {
            self.bytes.clear();
            self.done = 0;
            book.fill(c, now, &mut self.bytes);
        }
        &self.bytes[self.done..]
    }

    fn wrote(&mut self, book: &mut Book, c: usize, n: usize) {
        self.done += n;
        book.wrote(c, n);
    }

    fn pending(&self) -> bool {
        self.done < self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::client::{Pace, ThreadPlan, Timing, run_thread};
    use crate::load::payload::Payload;
    use crate::protocol::Protocol;
    use crate::sys::{Call, Registry};
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};

    /// A thread-per-connection raw echo server on loopback; it lives as long as the
    /// test binary.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    while let Ok(n @ 1..) = s.read(&mut buf) {
                        if s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn plan<'a>(
        target: SocketAddr,
        payload: &'a Payload,
        pipeline: usize,
        quota: u64,
        driver: Driver,
    ) -> ThreadPlan<'a> {
        ThreadPlan {
            target,
            ids: 0..3,
            payload,
            pipeline,
            pace: Pace::Closed,
            timing: Timing {
                measure_from: Instant::now(),
                end: None,
                drain: Duration::from_secs(10),
            },
            quota: Some(quota),
            timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(5),
            driver,
        }
    }

    /// Each driver completes every request with every byte checked, small requests
    /// one at a time and large ones pipelined (each takes many writes and reads, or
    /// many sends and recvs, a short send sent again for the rest), and counts its
    /// own system calls: the readiness driver reads and writes, the completion
    /// driver does neither and enters its ring instead.
    #[test]
    fn both_drivers_echo_every_byte_and_count_their_own_calls() {
        let target = echo_server();
        // The echo server sends back what it reads: a line is its own echo.
        let cases = [
            (64, Protocol::Raw, 1, 600),
            (300 << 10, Protocol::Raw, 3, 30),
            (2 << 20, Protocol::Line, 2, 8),
        ];
        for (size, protocol, pipeline, quota) in cases {
            let payload = Payload::new(size, protocol).unwrap();
            for &driver in Driver::ALL {
                let registry = Registry::new();
                let plan = plan(target, &payload, pipeline, quota, driver);
                let r = match run_thread(&plan, &registry) {
                    Ok(r) => r,
                    Err(e) if driver == Driver::IoUring && io_uring::IoUring::new(1).is_err() => {
                        assert!(format!("{e:#}").contains("io_uring"), "{e:#}");
                        continue;
                    }
                    Err(e) => panic!("{driver}: {e:#}"),
                };
                let what = format!("{driver}, {size} B {protocol} x {pipeline}");
                assert_eq!(r.completed, quota, "{what}");
                assert_eq!(r.mismatched_bytes + r.lost_bytes, 0, "{what}");
                assert_eq!(r.unexpected_closes, 0, "{what}");
                assert_eq!(r.latency.len(), quota, "{what}");
                let bytes = quota * payload.wire_size() as u64;
                assert_eq!(r.counts.stat(crate::sys::Stat::BytesIn), bytes, "{what}");
                let c = &r.counts;
                let io = c.call(Call::Read) + c.call(Call::Write);
                match driver {
                    Driver::Epoll => {
                        assert!(io >= 2 * quota / pipeline as u64, "{what}: {io}");
                        assert_eq!(c.call(Call::IoUringEnter), 0, "{what}");
                    }
                    Driver::IoUring => {
                        assert_eq!(io, 0, "{what}");
                        assert_eq!(c.call(Call::IoUringSetup), 1, "{what}");
                        assert!(c.call(Call::IoUringEnter) > 0, "{what}");
                    }
                }
                assert!(c.total_calls() > 0, "{what}");
            }
        }
    }
}
