//! The readiness driver: one level-triggered epoll per thread, through the same
//! `Multiplexer` the server uses. A readable connection is read once (leftovers are
//! reported again); a connection whose socket is full waits for writability.

use super::{Drive, Output};
use crate::backend::{Backend, Event, Interest, Multiplexer};
use crate::load::client::Book;
use anyhow::{Context, Result};
use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Bytes read per read call.
const READ_SIZE: usize = 64 * 1024;

pub struct Epoll {
    sys: crate::sys::Sys,
    mux: Box<dyn Multiplexer>,
    /// Connection index by descriptor number.
    index: Vec<u32>,
    out: Vec<Output>,
    write_armed: Vec<bool>,
    events: Vec<Event>,
    rx: Vec<u8>,
}

impl Epoll {
    pub fn new(sys: crate::sys::Sys, book: &Book) -> Result<Epoll> {
        let mut mux = Backend::EpollLt.create(sys.clone())?;
        let mut index = Vec::new();
        for c in 0..book.len() {
            mux.register(book.fd(c), Interest::READ)
                .context("watching a load connection")?;
            let slot = book.fd(c).as_raw_fd() as usize;
            if slot >= index.len() {
                index.resize(slot + 1, u32::MAX);
            }
            index[slot] = c as u32;
        }
        Ok(Epoll {
            sys,
            mux,
            index,
            out: (0..book.len()).map(|_| Output::default()).collect(),
            write_armed: vec![false; book.len()],
            events: Vec::with_capacity(1024),
            rx: vec![0u8; READ_SIZE],
        })
    }

    fn receive(&mut self, book: &mut Book, c: usize, now: Instant) {
        let n = match self.sys.read(book.fd(c), &mut self.rx) {
            Ok(0) => return self.lose(book, c),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                return;
            }
            Err(_) => return self.lose(book, c),
        };
        book.received(c, &self.rx[..n], now);
        self.flush(book, c, now);
    }

    fn lose(&mut self, book: &mut Book, c: usize) {
        book.lose(c);
        let _ = self.mux.deregister(book.fd(c));
    }
}

impl Drive for Epoll {
    fn flush(&mut self, book: &mut Book, c: usize, now: Instant) {
        while book.is_open(c) {
            let bytes = self.out[c].next(book, c, now);
            if bytes.is_empty() {
                break;
            }
            match self.sys.write(book.fd(c), bytes) {
                Ok(n) => {
                    let whole = n == bytes.len();
                    self.out[c].wrote(book, c, n);
                    if !whole {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return self.lose(book, c),
            }
        }
        let want_write = book.is_open(c) && self.out[c].pending();
        if want_write != self.write_armed[c] {
            let interest = Interest {
                read: true,
                write: want_write,
            };
            if self.mux.modify(book.fd(c), interest).is_ok() {
                self.write_armed[c] = want_write;
            }
        }
    }

    fn turn(&mut self, book: &mut Book, timeout: Duration) -> io::Result<()> {
        let mut events = std::mem::take(&mut self.events);
        let waited = self.mux.wait(&mut events, Some(timeout));
        let now = Instant::now();
        // A failed wait leaves the last turn's events there.
        let ready = if waited.is_ok() { &events[..] } else { &[] };
        for ev in ready {
            let c = self.index[ev.fd as usize] as usize;
            if ev.writable && book.is_open(c) {
                self.flush(book, c, now);
            }
            if ev.readable && book.is_open(c) {
                self.receive(book, c, now);
            }
        }
        self.events = events;
        waited.map(|_| ())
    }
}
