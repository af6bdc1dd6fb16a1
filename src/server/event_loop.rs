//! One event loop: a multiplexer, the connections it owns, and its role in the
//! threading model. It knows nothing of any particular system call: everything goes
//! through the `Multiplexer` trait and the counting layer.
//!
//! [`Core`] is what every loop has: the multiplexer, the connections, the wake pipe,
//! the idle sweep. [`Role`] is what a loop does besides serving its connections; each
//! role's own steps live in its model's file.

use super::accept::{Accepting, admissible};
use super::connection::{Connection, Outcome, Workspace};
use super::dispatch::{Inbox, Workers};
use super::input::Shared;
use super::io_threads::IoThreads;
use super::{LoopOptions, log_once};
use crate::backend::{Event, Interest, Multiplexer, Trigger};
use crate::sys::{Stat, Sys};
use anyhow::{Context, Result};
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A loop's part in its threading model.
pub enum Role {
    /// Accepts and serves its own connections: the reactor, each reuseport reactor.
    Reactor(Accepting),
    /// memcached's main thread: accepts, and hands every connection to a worker.
    Acceptor(Accepting, Workers),
    /// A memcached worker: serves the connections the acceptor hands it.
    Worker(Inbox),
    /// Redis 6's main thread: accepts, and serves its ready clients in rounds shared
    /// with I/O threads.
    IoThreadsMain(Accepting, IoThreads),
}

impl Role {
    fn accepting(&mut self) -> Option<&mut Accepting> {
        match self {
            Role::Reactor(a) | Role::Acceptor(a, _) | Role::IoThreadsMain(a, _) => Some(a),
            Role::Worker(_) => None,
        }
    }
}

pub struct EventLoop {
    core: Core,
    role: Role,
}

impl EventLoop {
    pub fn new(core: Core, role: Role) -> EventLoop {
        EventLoop { core, role }
    }

    /// Runs until the stop flag is set (and the wake pipe says so).
    pub fn run(&mut self) -> Result<()> {
        self.core.sys.counters().mark_thread();
        while !self.core.stop.load(Ordering::Acquire) {
            let retry = self.role.accepting().and_then(|a| a.retry_at());
            self.core.wait(retry)?;
            for i in 0..self.core.events.len() {
                let ev = self.core.events[i];
                self.handle(&ev);
            }
            if let Role::IoThreadsMain(_, threads) = &mut self.role {
                threads.serve_ready(&mut self.core);
            }
            self.core.keep_to_budget();
            self.core.sweep_idle();
            if let Some(accepting) = self.role.accepting() {
                accepting.resume_if_due(&mut self.core);
            }
        }
        Ok(())
    }

    /// This loop's door to the kernel (its thread's counters).
    pub fn sys(&self) -> &Sys {
        &self.core.sys
    }

    /// One event, to whoever it is for.
    fn handle(&mut self, ev: &Event) {
        let core = &mut self.core;
        if ev.fd == core.wake.as_raw_fd() {
            core.drain_wake();
            return;
        }
        match &mut self.role {
            Role::Reactor(a) | Role::IoThreadsMain(a, _) if a.is(ev.fd) => {
                a.accept_all(core, Core::admit)
            }
            Role::Acceptor(a, workers) if a.is(ev.fd) => {
                a.accept_all(core, |core, fd| workers.hand_off(core, fd))
            }
            Role::Worker(inbox) if inbox.is(ev.fd) => inbox.take_connections(core),
            Role::IoThreadsMain(_, threads) => threads.queue(*ev),
            _ => core.serve(ev),
        }
    }
}

/// What every event loop has, whatever its role.
pub struct Core {
    pub sys: Sys,
    mux: Box<dyn Multiplexer>,
    /// The multiplexer's notification mode, asked once (not per event).
    trigger: Trigger,
    /// Read end of the wake pipe: a byte here means "look at the stop flag".
    wake: OwnedFd,
    stop: Arc<AtomicBool>,
    pub opts: LoopOptions,
    /// Connections indexed by descriptor, as Redis indexes its events.
    conns: Vec<Option<Connection>>,
    open: usize,
    pub space: Workspace,
    events: Vec<Event>,
    /// With --idle-timeout: when idle connections are next looked for.
    next_sweep: Option<Instant>,
    /// A connection closed since the last turn: accepting may resume.
    freed: bool,
}

impl Core {
    pub fn new(
        sys: Sys,
        mut mux: Box<dyn Multiplexer>,
        wake: OwnedFd,
        stop: Arc<AtomicBool>,
        opts: LoopOptions,
        shared: Arc<Shared>,
    ) -> Result<Core> {
        mux.register(wake.as_fd(), Interest::READ)
            .context("watching the wake pipe")?;
        Ok(Core {
            sys,
            trigger: mux.trigger(),
            mux,
            wake,
            stop,
            space: Workspace::new(&opts, shared),
            opts,
            conns: Vec::new(),
            open: 0,
            events: Vec::with_capacity(1024),
            next_sweep: opts
                .idle_timeout
                .map(|t| Instant::now() + sweep_interval(t)),
            freed: false,
        })
    }

    /// Watches a descriptor of the loop's own (listener, pipe) for `interest`.
    pub fn watch(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        self.mux.register(fd, interest)
    }

    /// Changes what one of the loop's own descriptors is watched for.
    pub fn rewatch(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        self.mux.modify(fd, interest)
    }

    /// One wait, counted; `retry` is when accepting is to be tried again, if paused.
    fn wait(&mut self, retry: Option<Instant>) -> Result<()> {
        let next_timer = match (self.next_sweep, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = next_timer.map(|t| t.saturating_duration_since(Instant::now()));
        let cost = self
            .mux
            .wait(&mut self.events, timeout)
            .with_context(|| format!("{} wait failed", self.mux.name()))?;
        if self.next_sweep.is_some() {
            self.space.now = Some(Instant::now());
        }
        let c = self.sys.counters();
        c.add(Stat::Waits, 1);
        c.add(Stat::Wakeups, (cost.ready > 0) as u64);
        c.add(Stat::Events, cost.ready as u64);
        c.add(Stat::Handed, cost.handed as u64);
        c.add(Stat::Scanned, cost.scanned as u64);
        Ok(())
    }

    /// Empties the wake pipe (its bytes only wake the loop).
    fn drain_wake(&mut self) {
        let mut bytes = [0u8; 16];
        while let Ok(n) = self.sys.read(self.wake.as_fd(), &mut bytes) {
            if n == 0 {
                break;
            }
        }
    }

    /// Serves one readiness report of a connection at once: read, answer, write.
    pub fn serve(&mut self, ev: &Event) {
        let Some(conn) = self.conns.get_mut(ev.fd as usize).and_then(Option::as_mut) else {
            return; // closed earlier in this batch
        };
        let outcome = conn.on_event(ev, &mut self.space.io(&self.sys, &self.opts));
        // The common case, settled here: still open and watched for what it needs.
        if matches!(outcome, Outcome::Open) && conn.wanted(self.trigger) == conn.registered() {
            return;
        }
        self.settle(ev.fd, outcome);
    }

    /// Whether a connection has closed since the last call.
    pub fn take_freed(&mut self) -> bool {
        std::mem::take(&mut self.freed)
    }

    /// Takes a connection out of the table for a while (an I/O thread's round).
    pub fn lend(&mut self, fd: RawFd) -> Option<Connection> {
        self.conns.get_mut(fd as usize)?.take()
    }

    /// Puts a lent connection back and settles what its round did to it; returns
    /// whether it is still open.
    pub fn give_back(
        &mut self,
        fd: RawFd,
        conn: Connection,
        outcome: Outcome,
    ) -> Option<&Connection> {
        self.conns[fd as usize] = Some(conn);
        self.settle(fd, outcome);
        self.conns[fd as usize].as_ref()
    }

    /// After a connection's turn: watch what it now needs, or close it.
    fn settle(&mut self, fd: RawFd, outcome: Outcome) {
        let Some(conn) = self.conns.get_mut(fd as usize).and_then(Option::as_mut) else {
            return;
        };
        match outcome {
            Outcome::Open => {
                let wanted = conn.wanted(self.trigger);
                if wanted != conn.registered() {
                    match self.mux.modify(conn.fd(), wanted) {
                        Ok(()) => conn.set_registered(wanted),
                        Err(e) => {
                            log_once("modify", &format!("cannot change interest: {e}"));
                            self.close(fd);
                        }
                    }
                }
            }
            Outcome::Finished => self.close(fd),
            Outcome::Failed(e) => {
                let stat = match e.kind() {
                    ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => Stat::Resets,
                    ErrorKind::InvalidData => {
                        log_once("protocol", &format!("closing a connection: {e}"));
                        Stat::ProtocolErrors
                    }
                    _ => {
                        log_once("io-error", &format!("closing a connection after: {e}"));
                        Stat::IoErrors
                    }
                };
                self.sys.counters().add(stat, 1);
                self.close(fd);
            }
        }
    }

    fn close(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(fd as usize).and_then(Option::take) else {
            return;
        };
        // Deregistering an open descriptor cannot fail unless our own tables are
        // wrong; the descriptor is closed either way.
        let _ = self.mux.deregister(conn.fd());
        self.space.shared.budget.change(conn.held_input(), 0);
        self.sys.close(conn.into_fd());
        self.open -= 1;
        self.sys.counters().add(Stat::Closed, 1);
        self.freed = true;
    }

    /// Takes on a new connection: this loop serves it from now on.
    pub fn admit(&mut self, fd: OwnedFd) {
        if !admissible(&self.sys, &self.opts, self.open, fd.as_fd()) {
            return self.refuse(fd, Stat::RefusedMaxConns);
        }
        let interest = Connection::initial_interest(self.trigger);
        if let Err(e) = self.mux.register(fd.as_fd(), interest) {
            log_once(
                "register",
                &format!(
                    "refusing a connection: {e} (further refusals are counted in the statistics)"
                ),
            );
            return self.refuse(fd, Stat::RefusedUnwatchable);
        }
        let slot = fd.as_raw_fd() as usize;
        if slot >= self.conns.len() {
            self.conns.resize_with(slot + 1, || None);
        }
        let clock = self.opts.idle_timeout.map(|_| Instant::now());
        self.conns[slot] = Some(Connection::new(fd, interest, clock));
        self.open += 1;
        self.sys.counters().add(Stat::Accepted, 1);
    }

    /// Closes a connection that will not be served, counting why.
    pub fn refuse(&mut self, fd: OwnedFd, why: Stat) {
        self.sys.close(fd);
        self.sys.counters().add(why, 1);
    }

    /// Past the server's input budget: closes this loop's connections that hold the
    /// most unfinished input until the server is back within it (or this loop has
    /// none left; the loop whose client made it grow finds it first).
    fn keep_to_budget(&mut self) {
        while self.space.shared.budget.exceeded() {
            let largest = self
                .conns
                .iter()
                .flatten()
                .filter(|c| c.held_input() > 0)
                .max_by_key(|c| c.held_input())
                .map(|c| c.fd().as_raw_fd());
            let Some(fd) = largest else { return };
            log_once(
                "input-budget",
                "closing the connections holding the most unfinished input: past --input-budget \
                 (counted in the statistics)",
            );
            self.sys.counters().add(Stat::InputBudgetCloses, 1);
            self.close(fd);
        }
    }

    /// Closes every connection that has not completed a message for --idle-timeout
    /// (silent clients and slowloris tricklers), when it is time to look.
    fn sweep_idle(&mut self) {
        let (Some(timeout), Some(at), Some(now)) =
            (self.opts.idle_timeout, self.next_sweep, self.space.now)
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
            .filter(|c| c.idle_for(timeout, now))
            .map(|c| c.fd().as_raw_fd())
            .collect();
        for fd in idle {
            self.sys.counters().add(Stat::IdleTimeouts, 1);
            self.close(fd);
        }
        self.next_sweep = Some(now + sweep_interval(timeout));
    }
}

/// How often idle connections are looked for: a quarter of the timeout, so that
/// none lives more than 25% past it.
pub(super) fn sweep_interval(timeout: Duration) -> Duration {
    (timeout / 4).max(Duration::from_millis(10))
}
