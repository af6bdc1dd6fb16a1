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
//! The files, in the order a turn goes: [`setup`] makes the ring, [`submit`] queues
//! operations and enters the kernel, [`complete`] handles what comes back, and
//! [`conn`] is a connection's state and what it needs next. The connection table,
//! the protocol processors, the input budget, the memcache store, the counters and
//! the statistics are the readiness loop's own.

mod buffers;
mod complete;
mod conn;
mod setup;
mod submit;

pub use setup::unavailable_here;

use super::LoopOptions;
use super::accept::Reserve;
use super::dispatch::{Inbox, Workers};
use super::input::Shared;
use super::listener::Listener;
use super::table::Table;
use crate::sys::{Call, Stat, Sys, uring};
use anyhow::{Context, Result};
use buffers::Buffers;
use conn::Conn;
use io_uring::{IoUring, cqueue};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A completion loop's part in its threading model.
pub enum Role {
    /// Accepts on its listener and serves what it accepts: the reactor, each
    /// reuseport reactor.
    Reactor(Listener),
    /// Accepts on its listener and hands every connection to a worker through the
    /// worker's queue and notification pipe: memcached's main thread (dispatch).
    Acceptor(Listener, Workers),
    /// Serves the connections its inbox receives: a dispatch worker, whose ring polls
    /// the notification pipe.
    Worker(Inbox),
}

impl Role {
    fn listener(&self) -> Option<&Listener> {
        match self {
            Role::Reactor(l) | Role::Acceptor(l, _) => Some(l),
            Role::Worker(_) => None,
        }
    }
}

/// One completion loop: a ring, its buffers, its role and its connections.
pub struct Ring {
    /// Declared first, so dropped first: no operation outlives the memory below.
    ring: IoUring,
    buffers: Buffers,
    sys: Sys,
    role: Role,
    /// For a loop that accepts: the spare descriptor that sheds a client when out of
    /// them.
    reserve: Option<Reserve>,
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
    shared: Arc<Shared>,
    conns: Table<Conn>,
    /// Operations the kernel holds (a multishot one until its last completion).
    inflight: usize,
    /// The completions of one turn, reaped before any is handled.
    reaped: Vec<(u64, i32, u32)>,
    replies: Vec<u8>,
    /// The time of this turn, when idle connections are timed.
    now: Option<Instant>,
    /// A failed enter made while queueing (a full submission ring), for the turn.
    trouble: Option<io::Error>,
}

impl Ring {
    /// Sets up the ring (disabled until `run` enables it on the loop's own thread:
    /// SINGLE_ISSUER binds it to the thread that does) and registers its buffers.
    pub fn new(
        sys: Sys,
        role: Role,
        wake: OwnedFd,
        stop: Arc<AtomicBool>,
        opts: LoopOptions,
        shared: Arc<Shared>,
    ) -> Result<Ring> {
        let ring = setup::ring(&sys, &opts)?;
        let buffers = Buffers::new(opts.buffer_size);
        buffers
            .register(&sys, &ring)
            .context("registering the provided-buffer ring (Linux 5.19 or later)")?;
        let reserve = role.listener().map(|_| Reserve::open(&sys)).transpose()?;
        Ok(Ring {
            ring,
            buffers,
            role,
            reserve,
            accept_armed: false,
            listening: false,
            retry_at: None,
            wake,
            stop,
            shared,
            conns: Table::new(opts.idle_timeout),
            inflight: 0,
            reaped: Vec::with_capacity(setup::CQ_ENTRIES as usize),
            replies: Vec::new(),
            now: None,
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
        if self.role.listener().is_some() {
            self.arm_accept();
        }
        if let Role::Worker(inbox) = &self.role {
            self.arm_inbox(inbox.fd());
        }
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
        let timer = [self.conns.next_sweep(), self.retry_at]
            .into_iter()
            .flatten()
            .min();
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

    /// Past the server's input budget: closes the connections holding the most
    /// unfinished input until the server is back within it (as the readiness loop).
    fn keep_to_budget(&mut self) {
        while let Some(fd) = self.conns.over_budget(&self.shared.budget) {
            self.fail(fd, Stat::InputBudgetCloses);
            self.settle(fd);
        }
    }

    /// Closes the connections idle past --idle-timeout, when it is time to look.
    fn sweep_idle(&mut self) {
        for fd in self.conns.idle(self.now) {
            self.fail(fd, Stat::IdleTimeouts);
            self.settle(fd);
        }
    }

    /// Cancels every operation the kernel holds for this loop and reaps until the
    /// last one has ended: only then may the memory they use be freed.
    fn quiesce(&mut self) -> Result<()> {
        if self.inflight == 0 {
            return Ok(());
        }
        self.cancel_all();
        let sys = &self.sys;
        uring::quiesce(sys, &mut self.ring, &mut self.inflight, |c| {
            if let Some((op, _)) = submit::Op::untag(c.user_data()) {
                sys.counters().completed(op.kind());
            }
            !cqueue::more(c.flags())
        })
    }
}

impl Drop for Ring {
    /// A loop that ends without `run` returning normally (an error) may still have
    /// operations in the kernel: take them back first, or, failing that, leak the
    /// memory they use rather than free it under them.
    fn drop(&mut self) {
        if self.quiesce().is_err() || self.inflight > 0 {
            std::mem::forget(std::mem::replace(&mut self.conns, Table::new(None)));
            std::mem::forget(std::mem::replace(&mut self.buffers, Buffers::none()));
        }
    }
}
