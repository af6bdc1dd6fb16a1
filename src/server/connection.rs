//! One client connection: the non-blocking echo state machine.
//!
//! Bytes are read into the event loop's shared buffer and written straight back; only
//! what the kernel does not take at once is copied into this connection's own output
//! buffer, which is allocated then and freed when it drains. An idle connection costs
//! this struct and nothing more.

use super::input::{Input, Shared};
use super::table::Served;
use super::{LoopOptions, ReadStrategy};
use crate::backend::{Event, Interest, Trigger};
use crate::protocol::Protocol;
use crate::sys::{Stat, Sys};
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the event loop lends a connection while it handles one event.
pub struct Io<'a> {
    pub sys: &'a Sys,
    pub buf: &'a mut [u8],
    pub strategy: ReadStrategy,
    /// Output bytes past which a connection is not read any more (backpressure).
    pub max_pending: usize,
    pub protocol: Protocol,
    pub max_frame: usize,
    /// Scratch space for the replies to one read's messages.
    pub replies: &'a mut Vec<u8>,
    /// The time of this wakeup, when connections' progress is timed (--idle-timeout).
    pub now: Option<Instant>,
    /// The input budget and the memcache store, the server's.
    pub shared: &'a Shared,
}

/// A thread's buffers for connection I/O: the read buffer and the replies scratch,
/// and what the server's threads share.
pub struct Workspace {
    buf: Box<[u8]>,
    replies: Vec<u8>,
    /// Set once per wakeup by the loop when idle connections are timed.
    pub now: Option<Instant>,
    pub shared: Arc<Shared>,
}

impl Workspace {
    pub fn new(opts: &LoopOptions, shared: Arc<Shared>) -> Workspace {
        Workspace {
            buf: vec![0; opts.buffer_size].into_boxed_slice(),
            replies: Vec::new(),
            now: None,
            shared,
        }
    }

    /// What a connection gets to work with, on this thread.
    pub fn io<'a>(&'a mut self, sys: &'a Sys, opts: &LoopOptions) -> Io<'a> {
        Io {
            sys,
            buf: &mut self.buf,
            strategy: opts.read_strategy,
            max_pending: opts.max_pending,
            protocol: opts.protocol,
            max_frame: opts.max_frame,
            replies: &mut self.replies,
            now: self.now,
            shared: &self.shared,
        }
    }
}

/// What happened to a connection after an event.
#[derive(Debug)]
pub enum Outcome {
    /// Still open.
    Open,
    /// The peer closed its side and every byte owed to it has been written.
    Finished,
    /// Reset, broken pipe or another error: close without further ado.
    Failed(io::Error),
}

pub struct Connection {
    fd: OwnedFd,
    /// Output the kernel has not taken yet: `out[sent..]`.
    out: Vec<u8>,
    /// The start of a message not complete yet (framed protocols only), or what an
    /// I/O thread read; bounded by the protocol's frame limit.
    input: Input,
    sent: usize,
    /// The peer has half-closed: no more input will come.
    eof: bool,
    /// A report said the peer hung up (EPOLLRDHUP/HUP): a short read no longer
    /// proves the socket empty, the end of file may be waiting behind the data.
    hup_seen: bool,
    /// Reading stopped because too much output is pending; it resumes on drain.
    paused: bool,
    /// What the multiplexer currently watches this descriptor for.
    registered: Interest,
    /// When a message was last answered or output last went out (or the connection
    /// opened); kept only when idle connections are timed. Bytes that complete nothing
    /// (a slowloris trickle) do not count.
    last_progress: Option<Instant>,
}

impl Connection {
    /// A new connection; `now` starts its idle clock (None: not timed).
    pub fn new(fd: OwnedFd, registered: Interest, now: Option<Instant>) -> Self {
        Connection {
            fd,
            out: Vec::new(),
            input: Input::default(),
            sent: 0,
            eof: false,
            hup_seen: false,
            paused: false,
            registered,
            last_progress: now,
        }
    }

    /// The interest a new connection is registered with. Edge-triggered descriptors
    /// are registered for both directions once and never modified: an edge that is not
    /// wanted costs nothing, while every epoll_ctl is a system call.
    pub fn initial_interest(trigger: Trigger) -> Interest {
        if trigger == Trigger::Edge {
            Interest::BOTH
        } else {
            Interest::READ
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    pub fn registered(&self) -> Interest {
        self.registered
    }

    /// What a level-triggered multiplexer should watch now: input only while we
    /// would read it, output only while some is pending.
    pub fn wanted(&self, trigger: Trigger) -> Interest {
        if trigger == Trigger::Edge {
            return Interest::BOTH;
        }
        Interest {
            read: !self.eof && !self.paused,
            write: self.pending() > 0,
        }
    }

    pub fn set_registered(&mut self, interest: Interest) {
        self.registered = interest;
    }

    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Handles one readiness report: reads, answers and writes at once.
    pub fn on_event(&mut self, ev: &Event, io: &mut Io<'_>) -> Outcome {
        let result = self.io_step(ev, io, Step::Answer);
        self.outcome(result)
    }

    /// What a step's result means for the connection.
    pub fn outcome(&self, result: io::Result<()>) -> Outcome {
        match result {
            Ok(()) if self.eof && !self.input.is_empty() => Outcome::Failed(io::Error::new(
                ErrorKind::InvalidData,
                "truncated message: the peer closed in the middle of one",
            )),
            Ok(()) if self.eof && self.pending() == 0 => Outcome::Finished,
            Ok(()) => Outcome::Open,
            Err(e) => Outcome::Failed(e),
        }
    }

    /// The I/O of one readiness report: flush on writability, then read. With
    /// `Step::Answer` each read is answered at once; with `Step::Keep` (an I/O
    /// thread's share of the reads) it is only kept, for `answer_kept` later.
    pub fn io_step(&mut self, ev: &Event, io: &mut Io<'_>, step: Step) -> io::Result<()> {
        self.hup_seen |= ev.hangup;
        if ev.writable && self.pending() > 0 {
            // A slow reader that reads is not idle.
            self.write_pending(io)?;
        }
        if self.paused && self.pending() < io.max_pending {
            // Output drained: resume. Under ET no new edge may come for input that
            // arrived while paused, so read now rather than wait for a report.
            self.paused = false;
            self.read(io, step)?;
        } else if ev.readable && !self.paused && !self.eof {
            self.read(io, step)?;
        }
        Ok(())
    }

    /// Answers what `Step::Keep` kept, queueing the replies (the io-threads model's
    /// "commands", run by the main thread alone).
    pub fn answer_kept(&mut self, io: &mut Io<'_>) -> io::Result<()> {
        io.replies.clear();
        let (used, decoded) = self
            .input
            .answer(io.protocol, io.max_frame, io.replies, io.shared);
        self.out.extend_from_slice(io.replies);
        if used > 0 {
            self.progressed(io);
        }
        decoded
    }

    /// Writes pending output (an I/O thread's share of the writes).
    pub fn write_pending(&mut self, io: &Io<'_>) -> io::Result<()> {
        let before = self.pending();
        self.flush(io.sys)?;
        if self.pending() < before {
            self.progressed(io);
        }
        Ok(())
    }

    pub fn has_pending_output(&self) -> bool {
        self.pending() > 0
    }

    /// Paused with nothing left to write: no readiness report will come for it
    /// (under edge triggering the unread input made its edge already), so the loop
    /// must serve it again by itself.
    pub fn stalled(&self) -> bool {
        self.paused && self.pending() == 0
    }

    fn progressed(&mut self, io: &Io<'_>) {
        if io.now.is_some() {
            self.last_progress = io.now;
        }
    }

    /// Reads according to the read strategy.
    fn read(&mut self, io: &mut Io<'_>, step: Step) -> io::Result<()> {
        loop {
            let n = match io.sys.read(self.fd.as_fd(), io.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            io.sys.counters().add(Stat::BytesIn, n as u64);
            match step {
                Step::Answer => self.process(io, n)?,
                Step::Keep => self.input.keep(&io.buf[..n], &io.shared.budget),
            }
            // Answered at once, output piles up only when the socket is full, and an
            // EPOLLOUT edge will come. Kept input (an I/O thread's read) is bounded
            // too; the event loop serves such a connection again itself (`stalled`).
            let held = match step {
                Step::Answer => self.pending(),
                Step::Keep => self.pending() + self.input.len(),
            };
            if held >= io.max_pending {
                self.paused = true;
                io.sys.counters().add(Stat::ReadPauses, 1);
                return Ok(());
            }
            match io.strategy {
                ReadStrategy::Once => return Ok(()),
                // A stream socket that returns less than asked has been emptied
                // (epoll(7)): the read that would say EAGAIN can be skipped. Not so
                // once the peer hung up: its FIN may sit behind the data, and under
                // edge triggering it would never be reported again.
                ReadStrategy::ShortRead if n < io.buf.len() && !self.hup_seen => return Ok(()),
                _ => {}
            }
        }
    }

    /// Hands `n` bytes just read to the protocol and its processor, and sends
    /// the replies. Raw bytes go straight back, without a copy.
    fn process(&mut self, io: &mut Io<'_>, n: usize) -> io::Result<()> {
        if io.protocol == Protocol::Raw {
            self.progressed(io);
            return self.echo(io.sys, &io.buf[..n]);
        }
        io.replies.clear();
        let (used, decoded) = self.input.answer_read(
            io.protocol,
            io.max_frame,
            &io.buf[..n],
            io.replies,
            io.shared,
        );
        // A completed message is progress, whether it has a reply or not (a notice).
        if used > 0 {
            self.progressed(io);
        }
        if !io.replies.is_empty() {
            let replies = std::mem::take(io.replies);
            let sent = self.echo(io.sys, &replies);
            *io.replies = replies;
            sent?;
        }
        decoded
    }

    /// Writes `data` back at once when nothing is queued before it, else queues it.
    fn echo(&mut self, sys: &Sys, data: &[u8]) -> io::Result<()> {
        if self.pending() > 0 {
            self.out.extend_from_slice(data);
            return Ok(());
        }
        let written = write_some(sys, self.fd.as_fd(), data)?;
        if written < data.len() {
            sys.counters().add(Stat::PartialWrites, 1);
            self.out.extend_from_slice(&data[written..]);
        }
        Ok(())
    }

    /// Writes pending output until it is gone or the kernel's buffer is full.
    fn flush(&mut self, sys: &Sys) -> io::Result<()> {
        while self.pending() > 0 {
            let written = write_some(sys, self.fd.as_fd(), &self.out[self.sent..])?;
            if written == 0 {
                return Ok(());
            }
            self.sent += written;
        }
        // Drained: give the memory back, so a connection that was once slow does
        // not keep its buffer.
        self.out = Vec::new();
        self.sent = 0;
        Ok(())
    }
}

impl Served for Connection {
    fn held_input(&self) -> usize {
        self.input.len()
    }

    fn idle_for(&self, timeout: Duration, now: Instant) -> bool {
        self.last_progress
            .is_some_and(|t| now.saturating_duration_since(t) >= timeout)
    }
}

/// Whether a read is answered at once or kept for later.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Answer,
    Keep,
}

/// One write that treats EAGAIN as "nothing written" and retries EINTR.
fn write_some(sys: &Sys, fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    loop {
        match sys.write(fd, data) {
            Ok(n) => {
                sys.counters().add(Stat::BytesOut, n as u64);
                return Ok(n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
