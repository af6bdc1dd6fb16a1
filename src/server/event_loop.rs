//! One event loop: a multiplexer, the connections it owns, and (in the reactor) the
//! listener. It knows nothing of any particular system call: everything goes through
//! the `Multiplexer` trait and the counting layer. The threading models give a loop
//! a role: hand accepted connections to workers (dispatch), take them from an inbox
//! (a dispatch worker), or share reads and writes with I/O threads (io-threads).

use super::connection::{Connection, Outcome, Workspace};
use super::dispatch::{Dispatcher, Inbox};
use super::io_threads::{IoPool, Item, Phase};
use super::listener::Listener;
use super::{LoopOptions, log_once};
use crate::backend::{Event, Interest, Multiplexer, Trigger};
use crate::sys::{Stat, Sys};
use anyhow::{Context, Result};
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct EventLoop {
    sys: Sys,
    mux: Box<dyn Multiplexer>,
    /// The multiplexer's notification mode, asked once (not per event).
    trigger: Trigger,
    listener: Option<Listener>,
    /// Read end of the wake pipe: a byte here means "look at the stop flag".
    wake: OwnedFd,
    stop: Arc<AtomicBool>,
    opts: LoopOptions,
    /// Connections indexed by descriptor, as Redis indexes its events.
    conns: Vec<Option<Connection>>,
    open: usize,
    /// A spare descriptor, given up to accept-and-close one client when out of them.
    reserve: Option<OwnedFd>,
    /// Accepting stopped (out of descriptors and no reserve): retried when one of
    /// our connections closes, or at this time (another thread may free one).
    accept_retry: Option<Instant>,
    space: Workspace,
    events: Vec<Event>,
    /// dispatch, main thread: accepted connections go to the workers.
    dispatcher: Option<Dispatcher>,
    /// dispatch, worker: connections handed over by the main thread.
    inbox: Option<Arc<Inbox>>,
    /// io-threads: the I/O threads, and this wakeup's ready connections.
    io_pool: Option<IoPool>,
    pending: Vec<Event>,
    /// With --idle-timeout: when idle connections are next looked for.
    next_sweep: Option<Instant>,
}

impl EventLoop {
    pub fn new(
        sys: Sys,
        mut mux: Box<dyn Multiplexer>,
        listener: Option<Listener>,
        wake: OwnedFd,
        stop: Arc<AtomicBool>,
        opts: LoopOptions,
    ) -> Result<EventLoop> {
        mux.register(wake.as_fd(), Interest::READ)
            .context("watching the wake pipe")?;
        if let Some(l) = &listener {
            mux.register(l.fd(), Interest::READ)
                .context("watching the listening socket")?;
        }
        let reserve = Some(
            sys.open_dev_null()
                .context("opening the reserve descriptor")?,
        );
        Ok(EventLoop {
            sys,
            trigger: mux.trigger(),
            mux,
            listener,
            wake,
            stop,
            space: Workspace::new(&opts),
            opts,
            conns: Vec::new(),
            open: 0,
            reserve,
            accept_retry: None,
            events: Vec::with_capacity(1024),
            dispatcher: None,
            inbox: None,
            io_pool: None,
            pending: Vec::new(),
            next_sweep: opts
                .idle_timeout
                .map(|t| Instant::now() + sweep_interval(t)),
        })
    }

    /// This loop accepts, and hands every connection to the dispatcher's workers.
    pub fn with_dispatcher(mut self, d: Dispatcher) -> Self {
        self.dispatcher = Some(d);
        self
    }

    /// This loop takes its connections from `inbox` (its wake pipe says when).
    pub fn with_inbox(mut self, inbox: Arc<Inbox>) -> Self {
        self.inbox = Some(inbox);
        self
    }

    /// This loop shares its reads and writes with I/O threads.
    pub fn with_io_threads(mut self, pool: IoPool) -> Self {
        self.io_pool = Some(pool);
        self
    }

    /// Runs until the stop flag is set (and the wake pipe says so).
    pub fn run(&mut self) -> Result<()> {
        self.sys.counters().mark_thread();
        while !self.stop.load(Ordering::Acquire) {
            let next_timer = match (self.next_sweep, self.accept_retry) {
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
            for i in 0..self.events.len() {
                let ev = self.events[i];
                self.dispatch(&ev);
            }
            while !self.pending.is_empty() {
                self.serve_pending();
            }
            if let (Some(at), Some(now)) = (self.next_sweep, self.space.now)
                && now >= at
            {
                self.close_idle(now);
            }
            if self.accept_retry.is_some_and(|at| Instant::now() >= at) {
                self.resume_accepting();
            }
        }
        Ok(())
    }

    /// Closes every connection that has not completed a message for --idle-timeout:
    /// silent clients and slowloris tricklers.
    fn close_idle(&mut self, now: Instant) {
        let Some(timeout) = self.opts.idle_timeout else {
            return;
        };
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

    fn dispatch(&mut self, ev: &Event) {
        if ev.fd == self.wake.as_raw_fd() {
            self.drain_wake();
        } else if self.listener.as_ref().map(|l| l.fd().as_raw_fd()) == Some(ev.fd) {
            self.accept_all();
        } else {
            self.serve(ev);
        }
    }

    fn serve(&mut self, ev: &Event) {
        if self.io_pool.is_some() {
            // io-threads: clients are queued and served together after the wait.
            self.pending.push(*ev);
            return;
        }
        self.serve_now(ev);
    }

    fn serve_now(&mut self, ev: &Event) {
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

    /// io-threads: with enough ready clients (twice the threads, as Redis decides),
    /// their reads are split over the I/O threads, the main thread answers every
    /// request in arrival order, and the writes are split the same way. Otherwise the
    /// main thread serves them alone.
    fn serve_pending(&mut self) {
        let batch = std::mem::take(&mut self.pending);
        let pool = self.io_pool.take().expect("pending only with io-threads");
        if batch.len() < 2 * pool.threads() {
            for ev in &batch {
                self.serve_now(ev);
            }
            self.io_pool = Some(pool);
            return;
        }
        let mut items: Vec<Item> = batch
            .iter()
            .filter_map(|ev| {
                let conn = self.conns.get_mut(ev.fd as usize)?.take()?;
                Some(Item::new(*ev, conn, self.space.now))
            })
            .collect();
        let mut io = self.space.io(&self.sys, &self.opts);
        pool.run(Phase::Read, &mut items, &mut io);
        for item in items.iter_mut() {
            item.answer(&mut io);
        }
        let writes = items.iter().filter(|i| i.wants_write()).count();
        if writes >= 2 * pool.threads() {
            pool.run(Phase::Write, &mut items, &mut io);
        } else {
            for item in items.iter_mut() {
                item.step(Phase::Write, &mut io);
            }
        }
        self.io_pool = Some(pool);
        for item in items {
            let (fd, conn, outcome) = item.finish();
            self.conns[fd as usize] = Some(conn);
            self.settle(fd, outcome);
            if self.conns[fd as usize]
                .as_ref()
                .is_some_and(Connection::stalled)
            {
                // Its kept input filled the round's bound: it goes on next round.
                self.pending.push(Event {
                    fd,
                    readable: false,
                    writable: false,
                    hangup: false,
                });
            }
        }
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
        self.sys.close(conn.into_fd());
        self.open -= 1;
        self.sys.counters().add(Stat::Closed, 1);
        if self.accept_retry.is_some() {
            self.resume_accepting();
        }
    }

    /// Empties the wake pipe; a dispatch worker then takes its new connections.
    fn drain_wake(&mut self) {
        let mut byte = [0u8; 16];
        while let Ok(n) = self.sys.read(self.wake.as_fd(), &mut byte) {
            if n == 0 {
                break;
            }
        }
        let Some(inbox) = self.inbox.clone() else {
            return;
        };
        while let Some(fd) = inbox.pop() {
            self.admit(fd);
        }
    }

    /// Accepts until EAGAIN: required under edge triggering, and it empties a burst
    /// of connections in one wakeup under level triggering too.
    fn accept_all(&mut self) {
        while let Some(listener) = &self.listener {
            match self.sys.accept4(listener.fd()) {
                Ok(fd) => match &mut self.dispatcher {
                    Some(d) => d.hand_off(&self.sys, fd),
                    None => self.admit(fd),
                },
                Err(e) => match e.kind() {
                    ErrorKind::WouldBlock => return,
                    ErrorKind::Interrupted | ErrorKind::ConnectionAborted => continue,
                    _ if is_out_of_fds(&e) => {
                        if !self.shed_one() {
                            return;
                        }
                    }
                    _ => {
                        log_once("accept", &format!("accept4 failed: {e}"));
                        return;
                    }
                },
            }
        }
    }

    fn admit(&mut self, fd: OwnedFd) {
        if self.open >= self.opts.max_conns {
            log_once(
                "max-conns",
                &format!(
                    "refusing connections past --max-conns {} (counted in the statistics)",
                    self.opts.max_conns
                ),
            );
            return self.refuse(fd, Stat::RefusedMaxConns);
        }
        if let Err(e) = self.sys.set_nodelay(fd.as_fd()) {
            log_once("nodelay", &format!("TCP_NODELAY not set: {e}"));
        }
        if let Some(bytes) = self.opts.send_buffer
            && let Err(e) = self.sys.set_send_buffer(fd.as_fd(), bytes)
        {
            log_once("sndbuf", &format!("SO_SNDBUF not set: {e}"));
        }
        let interest = Connection::initial_interest(self.trigger);
        if let Err(e) = self.mux.register(fd.as_fd(), interest) {
            log_once(
                "register",
                &format!(
                    "refusing a connection: {e} (further refusals are counted in the statistics)"
                ),
            );
            return self.refuse(fd, Stat::RefusedFdLimit);
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

    fn refuse(&mut self, fd: OwnedFd, why: Stat) {
        self.sys.close(fd);
        self.sys.counters().add(why, 1);
    }

    /// Out of descriptors: give up the reserve, accept the waiting client into it and
    /// close it at once (it learns immediately, and the listener stops being ready
    /// instead of making the loop spin), then take the reserve back. Returns whether
    /// a client was shed, i.e. whether more may be waiting. (accept4 says EMFILE
    /// before it looks at the backlog, so EMFILE alone does not mean anyone waits.)
    fn shed_one(&mut self) -> bool {
        log_once(
            "emfile",
            "out of file descriptors: closing new connections at once until some are freed",
        );
        let Some(reserve) = self.reserve.take() else {
            self.pause_accepting();
            return false;
        };
        self.sys.close(reserve);
        let shed = match &self.listener {
            Some(listener) => self.sys.accept4(listener.fd()).ok(),
            None => None,
        };
        let more = shed.is_some();
        if let Some(fd) = shed {
            self.refuse(fd, Stat::RefusedNoFds);
        }
        self.reserve = self.sys.open_dev_null().ok();
        more
    }

    /// Without a reserve descriptor (another thread took the one we freed), stop
    /// watching the listener until one of our connections closes or a retry 100 ms
    /// later: better a queue in the kernel's backlog than a busy loop.
    fn pause_accepting(&mut self) {
        if let Some(l) = &self.listener
            && self.mux.modify(l.fd(), Interest::default()).is_ok()
        {
            self.accept_retry = Some(Instant::now() + ACCEPT_RETRY);
        }
    }

    fn resume_accepting(&mut self) {
        if self.reserve.is_none() {
            self.reserve = self.sys.open_dev_null().ok();
        }
        if self.reserve.is_none() {
            // Still out of descriptors: try again later.
            self.accept_retry = Some(Instant::now() + ACCEPT_RETRY);
            return;
        }
        if let Some(l) = &self.listener
            && self.mux.modify(l.fd(), Interest::READ).is_ok()
        {
            self.accept_retry = None;
        }
    }
}

/// How soon a loop out of descriptors tries to accept again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// How often idle connections are looked for: a quarter of the timeout, so that
/// none lives more than 25% past it.
fn sweep_interval(timeout: Duration) -> Duration {
    (timeout / 4).max(Duration::from_millis(10))
}

fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}
