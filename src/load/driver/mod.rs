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
