//! The completion model: an io_uring(7) event loop beside the readiness one.
//!
//! A readiness loop asks which descriptors are ready and then reads and writes
//! itself. This loop puts the operations themselves into a submission ring and
//! reaps their results from a completion ring:
//! - one multishot accept on the listener: a completion per new connection;
//! - one multishot recv per connection, drawing a buffer from the provided-buffer
//!   ring ([`buffers`]) only when data arrives; the buffer goes back to the ring as
//!   soon as its bytes are answered or kept in the connection's input;
//! - at most one send in flight per connection, so that bytes go back in order; a
//!   short send is resubmitted for the rest;
//! - one io_uring_enter per turn submits everything queued and waits for at least
//!   one completion; the turn then reaps every completion present.
//!
//! The pitfalls of the model, handled here: a never-reading peer must stop the recv
//! (past --max-pending it is cancelled, and armed again once the output drains); a
//! multishot recv ends when the buffer ring runs dry (ENOBUFS) and is armed again;
//! a connection is closed only once the kernel holds none of its operations, since
//! a send reads the connection's memory and a recv names its descriptor number.
//!
//! The protocol processors and the input buffer and budget are the readiness
//! loop's own (`input`); so are the counters and statistics.

mod buffers;

use super::accept::admissible;
use super::input::{self, Input, InputBudget};
use super::listener::Listener;
use super::{LoopOptions, RingSetup, log_once};
use crate::protocol::Protocol;
use crate::sys::{Call, RingOp, Stat, Sys, outcome};
use anyhow::{Context, Result, anyhow};
use buffers::Buffers;
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Submission ring entries. The completion ring has four times as many: a multishot
/// operation posts many completions for one submission.
const SQ_ENTRIES: u32 = 1024;
/// How soon a loop out of descriptors, with nobody to shed, accepts again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// How long a stopping loop waits for the kernel to give back its operations.
const QUIESCE_LIMIT: Duration = Duration::from_secs(5);

/// What an operation was, in the top half of its user data; the bottom half is the
/// descriptor it was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Accept = 1,
    Recv,
    Send,
    Cancel,
    /// A poll on the wake pipe: a byte there means "look at the stop flag".
    Wake,
    /// A poll on the listener, while out of descriptors: a client is waiting.
    Listen,
}

impl Op {
    fn tag(self, fd: RawFd) -> u64 {
        ((self as u64) << 32) | fd as u32 as u64
    }

    fn untag(data: u64) -> Option<(Op, RawFd)> {
        let op = match data >> 32 {
            1 => Op::Accept,
            2 => Op::Recv,
            3 => Op::Send,
            4 => Op::Cancel,
            5 => Op::Wake,
            6 => Op::Listen,
            _ => return None,
        };
        Some((op, data as u32 as RawFd))
    }

    /// The kind it is counted and traced as.
    fn kind(self) -> RingOp {
        match self {
            Op::Accept => RingOp::Accept,
            Op::Recv => RingOp::Recv,
            Op::Send => RingOp::Send,
            Op::Cancel => RingOp::Cancel,
            Op::Wake | Op::Listen => RingOp::Poll,
        }
    }
}

/// Where a connection's multishot recv stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recv {
    /// None in the kernel.
    Off,
    Armed,
    /// Asked to stop; its last completion is still to come.
    Cancelling,
}

/// One connection of a completion loop.
struct Conn {
    fd: OwnedFd,
    /// The start of a message not complete yet (framed protocols).
    input: Input,
    /// The bytes of the send in flight, or of the last one: `flight[sent..]` is what
    /// the kernel was last asked for. Untouched while `sending`: the kernel reads it.
    flight: Vec<u8>,
    sent: usize,
    sending: bool,
    /// Replies waiting behind the send in flight.
    queued: Vec<u8>,
    recv: Recv,
    /// No more input is taken: the peer half-closed, or a protocol error was answered.
    /// The connection closes once its output is out.
    eof: bool,
    /// Being closed: its operations are cancelled, and the descriptor is closed once
    /// the kernel holds none of them.
    closing: bool,
    send_cancelled: bool,
    /// When a message was last answered or output last went out; kept only when
    /// idle connections are timed (as the readiness loop's connections do).
    last_progress: Option<Instant>,
}

impl Conn {
    fn pending(&self) -> usize {
        self.flight.len() - self.sent + self.queued.len()
    }

    fn progressed(&mut self, now: Option<Instant>) {
        if now.is_some() {
            self.last_progress = now;
        }
    }
}

/// One completion loop: a ring, its buffers, its listener and its connections.
pub struct Ring {
    /// Declared first, so dropped first: no operation outlives the memory below.
    ring: IoUring,
    buffers: Buffers,
    sys: Sys,
    listener: Listener,
    /// A spare descriptor, given up to accept-and-close one client when out of them.
    reserve: Option<OwnedFd>,
    accept_armed: bool,
    /// Out of descriptors: the listener is polled for a client to shed.
    listening: bool,
    /// Accepting stopped (out of descriptors, nobody waiting to be shed): resumed
    /// when one of our connections closes, or at this time.
    retry_at: Option<Instant>,
    /// Read end of the wake pipe.
    wake: OwnedFd,
    stop: Arc<AtomicBool>,
    opts: LoopOptions,
    budget: Arc<InputBudget>,
    /// Connections indexed by descriptor.
    conns: Vec<Option<Conn>>,
    open: usize,
    /// A connection closed since the last turn: accepting may resume.
    freed: bool,
    /// Operations the kernel holds (a multishot one until its last completion).
    inflight: usize,
    /// The completions of one turn, reaped before any is handled.
    reaped: Vec<(u64, i32, u32)>,
    replies: Vec<u8>,
    /// The time of this turn, when idle connections are timed.
    now: Option<Instant>,
    next_sweep: Option<Instant>,
    /// A failed enter made while queueing (a full submission ring), for the turn.
    trouble: Option<io::Error>,
}

impl Ring {
    /// Sets up the ring (disabled until `run` enables it on the loop's own thread:
    /// SINGLE_ISSUER binds it to the thread that does) and registers its buffers.
    pub fn new(
        sys: Sys,
        listener: Listener,
        wake: OwnedFd,
        stop: Arc<AtomicBool>,
        opts: LoopOptions,
        budget: Arc<InputBudget>,
    ) -> Result<Ring> {
        let ring = setup(&sys, &opts)?;
        let buffers = Buffers::new(opts.buffer_size);
        buffers
            .register(&sys, &ring)
            .context("registering the provided-buffer ring (Linux 5.19 or later)")?;
        let reserve = sys
            .open_dev_null()
            .context("opening the reserve descriptor")?;
        Ok(Ring {
            ring,
            buffers,
            listener,
            reserve: Some(reserve),
            accept_armed: false,
            listening: false,
            retry_at: None,
            wake,
            stop,
            budget,
            conns: Vec::new(),
            open: 0,
            freed: false,
            inflight: 0,
            reaped: Vec::with_capacity(SQ_ENTRIES as usize * 4),
            replies: Vec::new(),
            now: None,
            next_sweep: opts
                .idle_timeout
                .map(|t| Instant::now() + super::event_loop::sweep_interval(t)),
            trouble: None,
            opts,
            sys,
        })
    }

    /// This loop's door to the kernel (its thread's counters).
    pub fn sys(&self) -> &Sys {
        &self.sys
    }

    /// Runs until the stop flag is set (and the wake pipe says so), then takes every
    /// operation back from the kernel.
    pub fn run(&mut self) -> Result<()> {
        self.sys.counters().mark_thread();
        self.sys
            .counted(Call::IoUringRegister, || {
                self.ring.submitter().register_enable_rings()
            })
            .context("enabling the ring on its thread")?;
        self.arm_accept();
        self.arm_wake();
        while !self.stop.load(Ordering::Acquire) {
            self.turn()?;
            self.keep_to_budget();
            self.sweep_idle();
            self.resume_accepting();
        }
        self.quiesce()
    }

    /// One turn: publish the buffers given back, one enter (submit everything queued,
    /// wait for a completion or the next timer), then handle every completion reaped.
    fn turn(&mut self) -> Result<()> {
        self.buffers.publish();
        let timer = match (self.next_sweep, self.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = timer.map(|t| t.saturating_duration_since(Instant::now()));
        self.enter(1, timeout).context("io_uring_enter failed")?;
        if self.opts.idle_timeout.is_some() {
            self.now = Some(Instant::now());
        }
        let mut reaped = std::mem::take(&mut self.reaped);
        reaped.clear();
        reaped.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        let c = self.sys.counters();
        c.add(Stat::Wakeups, !reaped.is_empty() as u64);
        c.add(Stat::Events, reaped.len() as u64);
        for &(data, res, flags) in &reaped {
            self.complete(data, res, flags);
        }
        self.reaped = reaped;
        match self.trouble.take() {
            Some(e) => Err(e).context("io_uring_enter failed on a full submission ring"),
            None => Ok(()),
        }
    }

    /// One io_uring_enter, counted and traced: submits everything queued and waits
    /// for `want` completions, or until `timeout`. A timeout is no error.
    fn enter(&mut self, want: usize, timeout: Option<Duration>) -> io::Result<()> {
        let queued = self.ring.submission().len();
        let ts = timeout.map(types::Timespec::from);
        let submitter = self.ring.submitter();
        // With `want` above 0, the crate always makes the call (even under SQPOLL),
        // so one count per call here is exact.
        let r = self.sys.counted(Call::IoUringEnter, || match &ts {
            Some(ts) => submitter.submit_with_args(want, &types::SubmitArgs::new().timespec(ts)),
            None => submitter.submit_and_wait(want),
        });
        self.sys.trace(|| {
            format!(
                "io_uring_enter(to_submit={queued}, min_complete={want}) {}",
                outcome(&r)
            )
        });
        self.sys.counters().add(Stat::Waits, 1);
        match r {
            Ok(_) => Ok(()),
            // ETIME: the timer came first; EINTR: a signal (they are blocked in the
            // loops); EBUSY: completions to reap first.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Queues one operation for the next enter; a full submission ring is submitted
    /// at once (one enter more).
    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every operation queued here names memory that outlives it. A
            // recv draws from `self.buffers`, which the loop owns and frees only after
            // the kernel has given back every operation (`quiesce`), or leaks. A send
            // reads its connection's `flight`, which is not touched while the send is
            // in flight, and the connection is kept until its completion (`release`
            // waits for it; dropping the loop quiesces first). Accept, poll and cancel
            // name no memory of ours.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.inflight += 1;
                // Counted as queued: with SUBMIT_ALL the next enter (or the SQPOLL
                // thread) submits every entry queued, in order.
                if let Some((op, _)) = Op::untag(entry.get_user_data()) {
                    self.sys.counters().submitted(op.kind());
                }
                return;
            }
            if let Err(e) = self.enter(0, None) {
                self.trouble.get_or_insert(e);
                return;
            }
        }
    }

    fn arm_accept(&mut self) {
        self.listening = false;
        let fd = self.listener.fd().as_raw_fd();
        // Accepted sockets are left blocking: io_uring waits for them itself, and
        // the loop never reads or writes them with a system call of its own.
        let entry = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(Op::Accept.tag(fd));
        self.accept_armed = true;
        self.push(entry);
    }

    fn arm_wake(&mut self) {
        let fd = self.wake.as_raw_fd();
        let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .build()
            .user_data(Op::Wake.tag(fd));
        self.push(entry);
    }

    fn arm_recv(&mut self, fd: RawFd) {
        let entry = opcode::RecvMulti::new(types::Fd(fd), buffers::GROUP)
            .build()
            .user_data(Op::Recv.tag(fd));
        self.push(entry);
    }

    /// Asks the kernel to stop the operation `op` of `fd` (its last completion says
    /// when it has).
    fn cancel(&mut self, op: Op, fd: RawFd) {
        let entry = opcode::AsyncCancel::new(op.tag(fd))
            .build()
            .user_data(Op::Cancel.tag(fd));
        self.push(entry);
    }

    /// One completion, to whoever it is for.
    fn complete(&mut self, data: u64, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        if !more {
            self.inflight -= 1;
        }
        let Some((op, fd)) = Op::untag(data) else {
            return;
        };
        self.sys.counters().completed(op.kind());
        self.sys.trace(|| describe(op, fd, res, flags));
        match op {
            Op::Accept => self.accepted(res, more),
            Op::Recv => self.received(fd, res, flags),
            Op::Send => self.sent(fd, res),
            Op::Cancel => {}
            // The stop flag is looked at after this turn; a wake without it (none
            // is sent) would only need the poll again.
            Op::Wake => {
                if !self.stop.load(Ordering::Acquire) {
                    self.arm_wake();
                }
            }
            // A client waits while we are out of descriptors: the accept sheds it.
            Op::Listen => self.arm_accept(),
        }
    }

    fn accepted(&mut self, res: i32, more: bool) {
        self.accept_armed = more;
        if res >= 0 {
            // SAFETY: the kernel has just opened this descriptor for us; nothing
            // else owns it.
            self.admit(unsafe { OwnedFd::from_raw_fd(res) });
        } else {
            match -res {
                libc::EMFILE | libc::ENFILE => self.shed_one(),
                libc::ECONNABORTED | libc::EINTR => {}
                errno => log_once(
                    "accept",
                    &format!("accept failed: {}", io::Error::from_raw_os_error(errno)),
                ),
            }
        }
        if !self.accept_armed && self.retry_at.is_none() && !self.listening {
            self.arm_accept();
        }
    }

    /// Out of descriptors: give up the reserve, accept the waiting client into it and
    /// close it at once, then take the reserve back. The accept fails for want of a
    /// descriptor before it looks at the backlog, so nobody may be waiting: then the
    /// loop polls the listener and accepts again when a client comes, rather than
    /// fail again at once. Without a reserve (another loop took the descriptor we
    /// freed), accepting pauses until one of ours closes, or 100 ms.
    fn shed_one(&mut self) {
        log_once(
            "emfile",
            "out of file descriptors: closing new connections at once until some are freed",
        );
        let Some(reserve) = self.reserve.take() else {
            self.retry_at = Some(Instant::now() + ACCEPT_RETRY);
            return;
        };
        self.sys.close(reserve);
        let shed = self.sys.accept4(self.listener.fd()).ok();
        let waited = shed.is_some();
        if let Some(fd) = shed {
            self.refuse(fd, Stat::RefusedNoFds);
        }
        self.reserve = self.sys.open_dev_null().ok();
        if !waited {
            let fd = self.listener.fd().as_raw_fd();
            let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
                .build()
                .user_data(Op::Listen.tag(fd));
            self.listening = true;
            self.push(entry);
        }
    }

    /// Once paused: accept again when one of our connections has closed since, or
    /// the retry time has come.
    fn resume_accepting(&mut self) {
        let freed = std::mem::take(&mut self.freed);
        let Some(at) = self.retry_at else { return };
        if !freed && Instant::now() < at {
            return;
        }
        if self.reserve.is_none() {
            self.reserve = self.sys.open_dev_null().ok();
        }
        self.retry_at = None;
        if !self.accept_armed && !self.listening {
            self.arm_accept();
        }
    }

    /// Takes on a new connection and arms its recv.
    fn admit(&mut self, fd: OwnedFd) {
        if !admissible(&self.sys, &self.opts, self.open, fd.as_fd()) {
            return self.refuse(fd, Stat::RefusedMaxConns);
        }
        let raw = fd.as_raw_fd();
        let slot = raw as usize;
        if slot >= self.conns.len() {
            self.conns.resize_with(slot + 1, || None);
        }
        self.conns[slot] = Some(Conn {
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
            last_progress: self.opts.idle_timeout.map(|_| Instant::now()),
        });
        self.open += 1;
        self.sys.counters().add(Stat::Accepted, 1);
        self.settle(raw);
    }

    fn refuse(&mut self, fd: OwnedFd, why: Stat) {
        self.sys.close(fd);
        self.sys.counters().add(why, 1);
    }

    fn conn(&mut self, fd: RawFd) -> Option<&mut Conn> {
        self.conns.get_mut(fd as usize).and_then(Option::as_mut)
    }

    /// A recv completion: bytes in a provided buffer, the end of file, or the end of
    /// the multishot recv (cancelled, out of buffers, an error).
    fn received(&mut self, fd: RawFd, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        let bid = cqueue::buffer_select(flags);
        let Some(conn) = self.conns.get_mut(fd as usize).and_then(Option::as_mut) else {
            // Cannot happen (a connection is released only once its recv has ended);
            // the buffer goes back all the same.
            if let Some(bid) = bid {
                self.buffers.give_back(bid);
            }
            return;
        };
        if !more {
            conn.recv = Recv::Off;
        }
        let mut failure = None;
        match (res, bid) {
            (n, Some(bid)) if n > 0 => {
                self.sys.counters().add(Stat::BytesIn, n as u64);
                if !conn.eof && !conn.closing {
                    let data = self.buffers.bytes(bid, n as usize);
                    let r = absorb(
                        conn,
                        data,
                        &self.opts,
                        &mut self.replies,
                        &self.budget,
                        self.now,
                    );
                    if let Err(e) = r {
                        // Answered (the error line is queued): no more input, close
                        // once the answer is out.
                        log_once("protocol", &format!("closing a connection: {e}"));
                        self.sys.counters().add(Stat::ProtocolErrors, 1);
                        conn.eof = true;
                    }
                }
                self.buffers.give_back(bid);
            }
            (0, _) => {
                conn.eof = true;
                if !conn.input.is_empty() && !conn.closing {
                    log_once(
                        "protocol",
                        "closing a connection: truncated message: the peer closed in the middle of one",
                    );
                    failure = Some(Stat::ProtocolErrors);
                }
            }
            (n, _) if n == -libc::ENOBUFS => {
                // The ring ran dry for a moment: the buffers reaped this turn are back
                // in it by the next enter, which arms the recv again (`settle`).
                self.sys.counters().add(Stat::RecvNoBuffers, 1);
            }
            (n, _) if n == -libc::ECANCELED => {}
            (n, _) if n < 0 && !conn.closing => failure = Some(error_stat(-n)),
            _ => {}
        }
        if let Some(stat) = failure {
            self.fail(fd, stat);
        }
        self.settle(fd);
    }

    /// A send completion: all of it, part of it (the rest is sent next), or an error.
    fn sent(&mut self, fd: RawFd, res: i32) {
        let now = self.now;
        let Some(conn) = self.conn(fd) else { return };
        conn.sending = false;
        let mut failure = None;
        if res > 0 {
            let n = res as usize;
            conn.sent += n;
            conn.progressed(now);
            let partial = conn.sent < conn.flight.len();
            if !partial {
                conn.flight.clear();
                conn.sent = 0;
                if conn.queued.is_empty() {
                    // Drained: give the memory back (an idle connection holds none).
                    conn.flight = Vec::new();
                }
            }
            let c = self.sys.counters();
            c.add(Stat::BytesOut, n as u64);
            c.add(Stat::PartialWrites, partial as u64);
        } else if !conn.closing {
            // A send of some bytes that sends none is an error too.
            failure = Some(if res == 0 {
                Stat::IoErrors
            } else {
                error_stat(-res)
            });
        }
        if let Some(stat) = failure {
            self.fail(fd, stat);
        }
        self.settle(fd);
    }

    /// Closes a connection for `why` (counted): its input is dropped at once, its
    /// operations are cancelled, and its descriptor closes when they have ended.
    fn fail(&mut self, fd: RawFd, why: Stat) {
        let Some(conn) = self.conns.get_mut(fd as usize).and_then(Option::as_mut) else {
            return;
        };
        self.budget.change(conn.input.len(), 0);
        conn.input = Input::default();
        conn.closing = true;
        self.sys.counters().add(why, 1);
    }

    /// After anything happened to a connection: send what is owed, keep its recv
    /// armed or stopped as its output requires, or finish closing it.
    fn settle(&mut self, fd: RawFd) {
        let max_pending = self.opts.max_pending;
        let Some(conn) = self.conn(fd) else { return };
        if conn.eof && conn.pending() == 0 {
            conn.closing = true;
        }
        if conn.closing {
            let cancel_recv = conn.recv == Recv::Armed;
            let cancel_send = conn.sending && !conn.send_cancelled;
            if cancel_recv {
                conn.recv = Recv::Cancelling;
            }
            conn.send_cancelled |= cancel_send;
            let idle = conn.recv == Recv::Off && !conn.sending;
            if cancel_recv {
                self.cancel(Op::Recv, fd);
            }
            if cancel_send {
                self.cancel(Op::Send, fd);
            }
            if idle {
                self.release(fd);
            }
            return;
        }
        // Output: one send in flight at most, so bytes leave in order.
        if !conn.sending && conn.sent == conn.flight.len() && !conn.queued.is_empty() {
            std::mem::swap(&mut conn.flight, &mut conn.queued);
            conn.sent = 0;
        }
        let send = (!conn.sending && conn.sent < conn.flight.len()).then(|| {
            let rest = &conn.flight[conn.sent..];
            conn.sending = true;
            opcode::Send::new(
                types::Fd(fd),
                rest.as_ptr(),
                rest.len().min(u32::MAX as usize) as u32,
            )
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(Op::Send.tag(fd))
        });
        // Input: stopped while too much output waits (backpressure) and once no more
        // is taken; armed again when the output has drained below the bound.
        let over = conn.pending() >= max_pending;
        let stop = (over || conn.eof) && conn.recv == Recv::Armed;
        let pause = stop && !conn.eof;
        let arm = !over && !conn.eof && conn.recv == Recv::Off;
        if stop {
            conn.recv = Recv::Cancelling;
        } else if arm {
            conn.recv = Recv::Armed;
        }
        if let Some(entry) = send {
            self.push(entry);
        }
        if stop {
            self.sys.counters().add(Stat::ReadPauses, pause as u64);
            self.cancel(Op::Recv, fd);
        } else if arm {
            self.arm_recv(fd);
        }
    }

    /// Closes a connection the kernel holds no operation of.
    fn release(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(fd as usize).and_then(Option::take) else {
            return;
        };
        self.budget.change(conn.input.len(), 0);
        self.sys.close(conn.fd);
        self.open -= 1;
        self.sys.counters().add(Stat::Closed, 1);
        self.freed = true;
    }

    /// Past the server's input budget: closes the connections holding the most
    /// unfinished input until the server is back within it (as the readiness loop).
    fn keep_to_budget(&mut self) {
        while self.budget.exceeded() {
            let largest = self
                .conns
                .iter()
                .flatten()
                .filter(|c| !c.input.is_empty())
                .max_by_key(|c| c.input.len())
                .map(|c| c.fd.as_raw_fd());
            let Some(fd) = largest else { return };
            log_once(
                "input-budget",
                "closing the connections holding the most unfinished input: past --input-budget \
                 (counted in the statistics)",
            );
            self.fail(fd, Stat::InputBudgetCloses);
            self.settle(fd);
        }
    }

    /// Closes every connection that has not completed a message for --idle-timeout,
    /// when it is time to look.
    fn sweep_idle(&mut self) {
        let (Some(timeout), Some(at), Some(now)) =
            (self.opts.idle_timeout, self.next_sweep, self.now)
        else {
            return;
        };
        if now < at {
            return;
        }
        let idle: Vec<RawFd> = self
            .conns
            .iter()
            .flatten()
            .filter(|c| !c.closing)
            .filter(|c| {
                c.last_progress
                    .is_some_and(|t| now.saturating_duration_since(t) >= timeout)
            })
            .map(|c| c.fd.as_raw_fd())
            .collect();
        for fd in idle {
            self.fail(fd, Stat::IdleTimeouts);
            self.settle(fd);
        }
        self.next_sweep = Some(now + super::event_loop::sweep_interval(timeout));
    }

    /// Cancels every operation the kernel holds for this loop and reaps until the
    /// last one has ended: only then may the memory they use be freed.
    fn quiesce(&mut self) -> Result<()> {
        if self.inflight == 0 {
            return Ok(());
        }
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::any().all())
            .build()
            .user_data(Op::Cancel.tag(-1));
        self.push(entry);
        let deadline = Instant::now() + QUIESCE_LIMIT;
        while self.inflight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(anyhow!(
                    "{} io_uring operations still in the kernel after {QUIESCE_LIMIT:?}",
                    self.inflight
                ));
            }
            self.enter(1, Some(left))
                .context("io_uring_enter failed while stopping")?;
            for c in self.ring.completion() {
                if !cqueue::more(c.flags()) {
                    self.inflight -= 1;
                }
                if let Some((op, _)) = Op::untag(c.user_data()) {
                    self.sys.counters().completed(op.kind());
                }
            }
        }
        Ok(())
    }
}

impl Drop for Ring {
    /// A loop that ends without `run` returning normally (an error) may still have
    /// operations in the kernel: take them back first, or, failing that, leak the
    /// memory they use rather than free it under them.
    fn drop(&mut self) {
        if self.quiesce().is_err() || self.inflight > 0 {
            std::mem::forget(std::mem::take(&mut self.conns));
            std::mem::forget(std::mem::replace(&mut self.buffers, Buffers::none()));
        }
    }
}

/// Hands the bytes of one recv to the protocol and the echo processor, queueing the
/// replies behind any output already waiting (raw bytes are their own reply).
fn absorb(
    conn: &mut Conn,
    data: &[u8],
    opts: &LoopOptions,
    replies: &mut Vec<u8>,
    budget: &InputBudget,
    now: Option<Instant>,
) -> io::Result<()> {
    if opts.protocol == Protocol::Raw {
        conn.progressed(now);
        conn.queued.extend_from_slice(data);
        return Ok(());
    }
    replies.clear();
    let (used, decoded) = if conn.input.is_empty() {
        let (used, decoded) = input::answer(opts.protocol, opts.max_frame, data, 0, replies);
        conn.input.keep_rest(&data[used..], budget);
        (used, decoded)
    } else {
        conn.input.keep(data, budget);
        conn.input
            .answer(opts.protocol, opts.max_frame, replies, budget)
    };
    if used > 0 {
        conn.progressed(now);
    }
    conn.queued.extend_from_slice(replies);
    decoded
}

/// How a failed recv or send is counted.
fn error_stat(errno: i32) -> Stat {
    let e = io::Error::from_raw_os_error(errno);
    match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => Stat::Resets,
        _ => {
            log_once("io-error", &format!("closing a connection after: {e}"));
            Stat::IoErrors
        }
    }
}

/// Sets up a ring as `opts.ring` says, disabled until its loop's thread enables it.
fn setup(sys: &Sys, opts: &LoopOptions) -> Result<IoUring> {
    let mut builder = IoUring::builder();
    builder
        .setup_cqsize(SQ_ENTRIES * 4)
        .setup_submit_all()
        .setup_r_disabled();
    match opts.ring {
        RingSetup::Plain => {}
        RingSetup::DeferTaskrun => {
            builder.setup_single_issuer().setup_defer_taskrun();
        }
        RingSetup::Sqpoll => {
            let idle = u32::try_from(opts.sqpoll_idle.as_millis()).unwrap_or(u32::MAX);
            builder.setup_sqpoll(idle);
        }
    }
    let ring = sys
        .counted(Call::IoUringSetup, || builder.build(SQ_ENTRIES))
        .map_err(unavailable)
        .with_context(|| format!("setting up an io_uring (--ring {})", opts.ring))?;
    // The crate maps the rings: the submission entries, and the two rings in one
    // mapping (IORING_FEAT_SINGLE_MMAP) or two.
    let maps = if ring.params().is_feature_single_mmap() {
        2
    } else {
        3
    };
    for _ in 0..maps {
        sys.counters().call(Call::Mmap);
    }
    Ok(ring)
}

/// Why this process may not use io_uring at all, if it may not: the words `serve
/// --backend io-uring` fails with. Asked once, by setting up the smallest plain ring.
pub fn unavailable_here() -> Option<String> {
    static ANSWER: OnceLock<Option<String>> = OnceLock::new();
    ANSWER
        .get_or_init(|| IoUring::new(1).err().map(|e| unavailable(e).to_string()))
        .clone()
}

/// An io_uring refusal, with what it usually means.
fn unavailable(e: io::Error) -> anyhow::Error {
    let why = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into());
            format!(
                " (kernel.io_uring_disabled is {disabled}; 0 allows it, or a seccomp policy \
                 refuses it)"
            )
        }
        Some(libc::ENOSYS) => " (this kernel has no io_uring)".into(),
        Some(libc::EINVAL) => " (a setup flag this kernel does not know: try --ring plain)".into(),
        _ => String::new(),
    };
    anyhow!("io_uring unavailable: {e}{why}")
}

/// A completion as `--trace` shows it: `recv(fd 7) = 9 [buf 12] MORE`.
fn describe(op: Op, fd: RawFd, res: i32, flags: u32) -> String {
    let result = if res < 0 {
        outcome::<i32, _>(&Err(io::Error::from_raw_os_error(-res)))
    } else {
        format!("= {res}")
    };
    let buf = cqueue::buffer_select(flags).map_or(String::new(), |b| format!(" [buf {b}]"));
    let more = if cqueue::more(flags) { " MORE" } else { "" };
    format!("{}(fd {fd}) {result}{buf}{more}", op.kind())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_says_the_operation_and_the_descriptor() {
        for op in [
            Op::Accept,
            Op::Recv,
            Op::Send,
            Op::Cancel,
            Op::Wake,
            Op::Listen,
        ] {
            assert_eq!(Op::untag(op.tag(1234)), Some((op, 1234)));
        }
        assert_eq!(Op::untag(0), None);
    }

    /// A refusal says what it usually means; a kernel that disables io_uring is found
    /// out before anything runs.
    #[test]
    fn a_refused_ring_says_why() {
        let refused = unavailable(io::Error::from_raw_os_error(libc::EPERM)).to_string();
        assert!(refused.starts_with("io_uring unavailable: "), "{refused}");
        assert!(refused.contains("kernel.io_uring_disabled is"), "{refused}");
        let old = unavailable(io::Error::from_raw_os_error(libc::ENOSYS)).to_string();
        assert!(old.contains("this kernel has no io_uring"), "{old}");
        let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
            .is_ok_and(|v| v.trim() == "2");
        if disabled {
            assert!(unavailable_here().is_some());
        }
    }
}
