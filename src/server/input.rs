//! A connection's input that does not make a whole message yet, and the protocol's
//! processor run over what does (echo, or memcache's store).
//!
//! Bytes are appended at the back and consumed from the front, and a line's end is
//! looked for only in bytes not looked at before, so that a message arriving in many
//! small reads costs amortised O(1) per byte, not a copy and a rescan of everything
//! kept on every read.

use super::store::Store;
use crate::protocol::{self, Protocol};
use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// What every loop and I/O thread of a server shares: the input budget and the
/// memcache store.
pub struct Shared {
    pub budget: InputBudget,
    pub store: Store,
}

/// The bytes every connection of a server holds in unfinished messages, shared by
/// its threads, against `--input-budget`: without a bound, 100,000 connections each
/// holding most of a 1 MiB frame would hold 100 GiB.
pub struct InputBudget {
    held: AtomicUsize,
    limit: usize,
}

impl InputBudget {
    /// The default bound: room for 16 whole frames, and at least 64 MiB.
    pub fn default_for(max_frame: usize) -> usize {
        max_frame.saturating_mul(16).max(64 << 20)
    }

    pub fn new(limit: usize) -> InputBudget {
        InputBudget {
            held: AtomicUsize::new(0),
            limit,
        }
    }

    /// Records one connection's input going from `before` to `after` bytes. Relaxed
    /// is enough: the figure only has to be right once the threads have done it.
    pub fn change(&self, before: usize, after: usize) {
        if after > before {
            self.held.fetch_add(after - before, Relaxed);
        } else if before > after {
            self.held.fetch_sub(before - after, Relaxed);
        }
    }

    pub fn exceeded(&self) -> bool {
        self.held.load(Relaxed) > self.limit
    }
}

#[derive(Default)]
pub struct Input {
    buf: Vec<u8>,
    /// `buf[start..]` is kept; what comes before has been answered.
    start: usize,
    /// Bytes at the front of what is kept known to hold no line end.
    scanned: usize,
}

impl Input {
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps bytes read, to be answered later (after more arrive, or by the main
    /// thread of the io-threads model).
    pub fn keep(&mut self, bytes: &[u8], budget: &InputBudget) {
        budget.change(self.len(), self.len() + bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// Answers the complete messages of `data`, bytes just read, after what is kept;
    /// keeps the start of a message not complete yet. Returns how many bytes complete
    /// messages took, and a protocol error.
    pub fn answer_read(
        &mut self,
        protocol: Protocol,
        max_frame: usize,
        data: &[u8],
        replies: &mut Vec<u8>,
        shared: &Shared,
    ) -> (usize, io::Result<()>) {
        if !self.is_empty() {
            self.keep(data, &shared.budget);
            return self.answer(protocol, max_frame, replies, shared);
        }
        // The common case: whole messages, answered where they were read; only the
        // start of an incomplete one is kept, already scanned to its end.
        let (used, decoded) = answer(protocol, max_frame, &shared.store, data, 0, replies);
        self.keep(&data[used..], &shared.budget);
        self.scanned = data.len() - used;
        (used, decoded)
    }

    /// Answers the complete messages kept; see [`answer`]. Returns how many bytes
    /// they took, and a protocol error.
    pub fn answer(
        &mut self,
        protocol: Protocol,
        max_frame: usize,
        replies: &mut Vec<u8>,
        shared: &Shared,
    ) -> (usize, io::Result<()>) {
        let kept = &self.buf[self.start..];
        let (used, result) = answer(
            protocol,
            max_frame,
            &shared.store,
            kept,
            self.scanned,
            replies,
        );
        self.scanned = kept.len() - used;
        shared.budget.change(kept.len(), kept.len() - used);
        self.start += used;
        if self.start == self.buf.len() {
            // All answered: give the memory back (an idle connection holds none).
            *self = Input::default();
        } else if self.start >= self.len() {
            // Moving what is kept to the front costs no more than what was
            // consumed since the last move: amortised O(1) per byte.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        (used, result)
    }
}

/// Runs the protocol's processor (memcache's on `store`) over the complete messages
/// at the start of `data`, whose first `scanned` bytes hold no line end; the
/// replies go to `replies`. Returns the
/// bytes used (what follows is the start of a message, scanned to its end), and a
/// protocol error as an InvalidData error (after telling the peer, where the
/// protocol has a way to).
pub fn answer(
    protocol: Protocol,
    max_frame: usize,
    store: &Store,
    data: &[u8],
    scanned: usize,
    replies: &mut Vec<u8>,
) -> (usize, io::Result<()>) {
    if protocol == Protocol::Raw {
        replies.extend_from_slice(data);
        return (data.len(), Ok(()));
    }
    let mut used = 0;
    let mut scanned = scanned;
    loop {
        match protocol::decode_from(protocol, &data[used..], scanned, max_frame) {
            Ok(Some((frame, len))) => {
                protocol::reply(&frame, store, replies);
                used += len;
                scanned = 0;
            }
            Ok(None) => return (used, Ok(())),
            Err(e) => {
                if let Some(line) = protocol::error_reply(protocol, &e) {
                    replies.extend_from_slice(line.as_bytes());
                }
                return (used, Err(io::Error::new(ErrorKind::InvalidData, e)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: Protocol = Protocol::Line;

    fn shared(budget: usize) -> Shared {
        Shared {
            budget: InputBudget::new(budget),
            store: Store::new(0),
        }
    }

    /// A line trickled in one byte at a time is answered once, whole, what follows
    /// it is kept, and the budget follows what is kept.
    #[test]
    fn a_trickled_line_is_answered_once_and_the_rest_kept() {
        let shared = shared(5);
        let budget = &shared.budget;
        let mut input = Input::default();
        let mut replies = Vec::new();
        for &b in b"hello\nwor" {
            input.keep(&[b], budget);
            let (_, result) = input.answer(LINE, 1 << 20, &mut replies, &shared);
            result.unwrap();
        }
        assert_eq!(replies, b"hello\n");
        assert_eq!(input.len(), 3);
        input.keep(b"ld\n", budget);
        assert!(budget.exceeded(), "6 bytes held against a budget of 5");
        let (used, result) = input.answer(LINE, 1 << 20, &mut replies, &shared);
        result.unwrap();
        assert_eq!((used, replies.as_slice()), (6, &b"hello\nworld\n"[..]));
        assert!(input.is_empty());
        assert_eq!(budget.held.load(Relaxed), 0);
    }

    /// The scan resumes where it stopped (what is kept counts as scanned after each
    /// read), and the frame limit still applies.
    #[test]
    fn a_long_unfinished_line_hits_the_limit_without_rescans() {
        let shared = shared(usize::MAX);
        let mut input = Input::default();
        let mut replies = Vec::new();
        for _ in 0..999 {
            input.keep(b"x", &shared.budget);
            let (_, result) = input.answer(LINE, 1000, &mut replies, &shared);
            assert!(result.is_ok());
            assert_eq!(input.scanned, input.len());
        }
        input.keep(b"x", &shared.budget);
        let (_, result) = input.answer(LINE, 1000, &mut replies, &shared);
        assert_eq!(result.unwrap_err().kind(), ErrorKind::InvalidData);
    }
}
