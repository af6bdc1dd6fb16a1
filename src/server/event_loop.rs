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
use super::table::{self, Table};
use super::{LoopOptions, log_once};
use crate::backend::{Event, Interest, Multiplexer, Trigger};
use crate::sys::{Stat, Sys};
use anyhow::{Context, Result};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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
                a.accept_all(core, |core, fd| workers.hand_off(&core.sys, fd))
            }
            Role::Worker(inbox) if inbox.is(ev.fd) => {
                for fd in inbox.take_connections(&core.sys) {
                    core.admit(fd);
                }
            }
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
    conns: Table<Connection>,
    pub space: Workspace,
    events: Vec<Event>,
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
            conns: Table::new(opts.idle_timeout),
            opts,
            events: Vec::with_capacity(1024),
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
        let next_timer = [self.conns.next_sweep(), retry].into_iter().flatten().min();
        let timeout = next_timer.map(|t| t.saturating_duration_since(Instant::now()));
        let cost = self
            .mux
            .wait(&mut self.events, timeout)
            .with_context(|| format!("{} wait failed", self.mux.name()))?;
        if self.opts.idle_timeout.is_some() {
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
        let Some(conn) = self.conns.get_mut(ev.fd) else {
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
        self.conns.take_freed()
    }

    /// Takes a connection out of the table for a while (an I/O thread's round).
    pub fn lend(&mut self, fd: RawFd) -> Option<Connection> {
        self.conns.lend(fd)
    }

    /// Puts a lent connection back and settles what its round did to it; returns
    /// whether it is still open.
    pub fn give_back(
        &mut self,
        fd: RawFd,
        conn: Connection,
        outcome: Outcome,
    ) -> Option<&Connection> {
        self.conns.put_back(fd, conn);
        self.settle(fd, outcome);
        self.conns.get(fd)
    }

    /// After a connection's turn: watch what it now needs, or close it.
    fn settle(&mut self, fd: RawFd, outcome: Outcome) {
        let Some(conn) = self.conns.get_mut(fd) else {
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
                self.sys.counters().add(table::failure(&e), 1);
                self.close(fd);
            }
        }
    }

    fn close(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.remove(&self.sys, fd, &self.space.shared.budget) else {
            return;
        };
        // Deregistering an open descriptor cannot fail unless our own tables are
        // wrong; the descriptor is closed either way.
        let _ = self.mux.deregister(conn.fd());
        self.sys.close(conn.into_fd());
    }

    /// Takes on a new connection: this loop serves it from now on.
    pub fn admit(&mut self, fd: OwnedFd) {
        if !admissible(&self.sys, &self.opts, self.conns.open(), fd.as_fd()) {
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
        let raw = fd.as_raw_fd();
        let clock = self.opts.idle_timeout.map(|_| Instant::now());
        self.conns
            .insert(&self.sys, raw, Connection::new(fd, interest, clock));
    }

    /// Closes a connection that will not be served, counting why.
    pub fn refuse(&mut self, fd: OwnedFd, why: Stat) {
        table::refuse(&self.sys, fd, why);
    }

    /// Past the server's input budget: closes the connections holding the most
    /// unfinished input until the server is back within it ([`Table::over_budget`]).
    fn keep_to_budget(&mut self) {
        while let Some(fd) = self.conns.over_budget(&self.space.shared.budget) {
            self.sys.counters().add(Stat::InputBudgetCloses, 1);
            self.close(fd);
        }
    }

    /// Closes the connections idle past --idle-timeout, when it is time to look.
    fn sweep_idle(&mut self) {
        for fd in self.conns.idle(self.space.now) {
            self.sys.counters().add(Stat::IdleTimeouts, 1);
            self.close(fd);
        }
    }
}
