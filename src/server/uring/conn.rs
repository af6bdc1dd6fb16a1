//! One connection of a completion loop: its input, its output (one send in flight,
//! the rest queued behind it), where its recv stands, and what it needs from the
//! ring after anything happened to it.

use super::submit;
use crate::protocol::Protocol;
use crate::server::LoopOptions;
use crate::server::input::{Input, Shared};
use crate::server::table::Served;
use io_uring::squeue;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Where a connection's multishot recv stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recv {
    /// None in the kernel.
    Off,
    Armed,
    /// Asked to stop; its last completion is still to come.
    Cancelling,
}

pub struct Conn {
    pub fd: OwnedFd,
    /// The start of a message not complete yet (framed protocols).
    pub input: Input,
    /// The bytes of the send in flight, or of the last one: `flight[sent..]` is what
    /// the kernel was last asked for. Untouched while `sending`: the kernel reads it.
    flight: Vec<u8>,
    sent: usize,
    pub sending: bool,
    /// Replies waiting behind the send in flight.
    queued: Vec<u8>,
    pub recv: Recv,
    /// No more input is taken: the peer half-closed, or a protocol error was answered.
    /// The connection closes once its output is out.
    pub eof: bool,
    /// Being closed: its operations are cancelled, and the descriptor is closed once
    /// the kernel holds none of them.
    pub closing: bool,
    send_cancelled: bool,
    /// When a message was last answered or output last went out; kept only when
    /// idle connections are timed (as the readiness loop's connections do).
    last_progress: Option<Instant>,
}

/// What a connection needs from the ring next.
pub struct Next {
    pub send: Option<squeue::Entry>,
    pub arm_recv: bool,
    pub cancel_recv: bool,
    pub cancel_send: bool,
    /// Its recv is being stopped because too much output waits (backpressure).
    pub paused: bool,
    /// Closing, and the kernel holds none of its operations: it may go.
    pub release: bool,
}

impl Conn {
    /// A new connection; `now` starts its idle clock (None: not timed).
    pub fn new(fd: OwnedFd, now: Option<Instant>) -> Conn {
        Conn {
            fd,
            input: Input::default(),
            flight: Vec::new(),
            sent: 0,
            sending: false,
            queued: Vec::new(),
            recv: Recv::Off,
            eof: false,
            closing: false,
            send_cancelled: false,
            last_progress: now,
        }
    }

    fn pending(&self) -> usize {
        self.flight.len() - self.sent + self.queued.len()
    }

    fn progressed(&mut self, now: Option<Instant>) {
        if now.is_some() {
            self.last_progress = now;
        }
    }

    /// Hands the bytes of one recv to the protocol and the echo processor, queueing
    /// the replies behind any output already waiting (raw bytes are their own reply).
    pub fn absorb(
        &mut self,
        data: &[u8],
        opts: &LoopOptions,
        replies: &mut Vec<u8>,
        shared: &Shared,
        now: Option<Instant>,
    ) -> io::Result<()> {
        if opts.protocol == Protocol::Raw {
            self.progressed(now);
            self.queued.extend_from_slice(data);
            return Ok(());
        }
        replies.clear();
        let (used, decoded) =
            self.input
                .answer_read(opts.protocol, opts.max_frame, data, replies, shared);
        if used > 0 {
            self.progressed(now);
        }
        self.queued.extend_from_slice(replies);
        decoded
    }

    /// `n` bytes of the send in flight went out; returns whether that was short of
    /// all of it (the rest is sent next).
    pub fn sent(&mut self, n: usize, now: Option<Instant>) -> bool {
        self.sent += n;
        self.progressed(now);
        let partial = self.sent < self.flight.len();
        if !partial {
            self.flight.clear();
            self.sent = 0;
            if self.queued.is_empty() {
                // Drained: give the memory back (an idle connection holds none).
                self.flight = Vec::new();
            }
        }
        partial
    }

    /// After anything happened to it: what to send, whether its recv is to be armed
    /// or stopped as its output requires, or what closing it still takes.
    pub fn next(&mut self, fd: RawFd, max_pending: usize) -> Next {
        if self.eof && self.pending() == 0 {
            self.closing = true;
        }
        if self.closing {
            let cancel_recv = self.recv == Recv::Armed;
            let cancel_send = self.sending && !self.send_cancelled;
            if cancel_recv {
                self.recv = Recv::Cancelling;
            }
            self.send_cancelled |= cancel_send;
            return Next {
                send: None,
                arm_recv: false,
                cancel_recv,
                cancel_send,
                paused: false,
                release: self.recv == Recv::Off && !self.sending,
            };
        }
        // Output: one send in flight at most, so bytes leave in order.
        if !self.sending && self.sent == self.flight.len() && !self.queued.is_empty() {
            std::mem::swap(&mut self.flight, &mut self.queued);
            self.sent = 0;
        }
        let send = (!self.sending && self.sent < self.flight.len()).then(|| {
            self.sending = true;
            submit::send(fd, &self.flight[self.sent..])
        });
        // Input: stopped while too much output waits (backpressure) and once no more
        // is taken; armed again when the output has drained below the bound.
        let over = self.pending() >= max_pending;
        let stop = (over || self.eof) && self.recv == Recv::Armed;
        let arm = !over && !self.eof && self.recv == Recv::Off;
        if stop {
            self.recv = Recv::Cancelling;
        } else if arm {
            self.recv = Recv::Armed;
        }
        Next {
            send,
            arm_recv: arm,
            cancel_recv: stop,
            cancel_send: false,
            paused: stop && !self.eof,
            release: false,
        }
    }
}

impl Served for Conn {
    fn held_input(&self) -> usize {
        self.input.len()
    }

    fn idle_for(&self, timeout: Duration, now: Instant) -> bool {
        !self.closing
            && self
                .last_progress
                .is_some_and(|t| now.saturating_duration_since(t) >= timeout)
    }
}
