//! The connections of one loop, readiness or completion, indexed by descriptor (as
//! Redis indexes its events), and the bookkeeping every loop does with them: each
//! counted in and out, the idle sweep, the largest holders of input past the
//! budget, and why a failed one was closed.

use super::input::InputBudget;
use super::log_once;
use crate::sys::{Stat, Sys};
use std::io::{self, ErrorKind};
use std::os::fd::{OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// What the table asks of a loop's connection.
pub trait Served {
    /// Bytes of unfinished messages it holds.
    fn held_input(&self) -> usize;
    /// Whether it has answered nothing and sent nothing for `timeout` (never, when
    /// untimed or already closing).
    fn idle_for(&self, timeout: Duration, now: Instant) -> bool;
}

pub struct Table<C> {
    conns: Vec<Option<C>>,
    open: usize,
    /// A connection closed since the last turn: accepting may resume.
    freed: bool,
    /// With --idle-timeout: the timeout, and when idle connections are next looked for.
    idle_timeout: Option<Duration>,
    next_sweep: Option<Instant>,
}

impl<C: Served> Table<C> {
    pub fn new(idle_timeout: Option<Duration>) -> Table<C> {
        Table {
            conns: Vec::new(),
            open: 0,
            freed: false,
            idle_timeout,
            next_sweep: idle_timeout.map(|t| Instant::now() + sweep_interval(t)),
        }
    }

    /// Connections served now.
    pub fn open(&self) -> usize {
        self.open
    }

    pub fn get(&self, fd: RawFd) -> Option<&C> {
        self.conns.get(fd as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, fd: RawFd) -> Option<&mut C> {
        self.conns.get_mut(fd as usize)?.as_mut()
    }

    /// Takes on a new connection (counted).
    pub fn insert(&mut self, sys: &Sys, fd: RawFd, conn: C) {
        let slot = fd as usize;
        if slot >= self.conns.len() {
            self.conns.resize_with(slot + 1, || None);
        }
        self.conns[slot] = Some(conn);
        self.open += 1;
        sys.counters().add(Stat::Accepted, 1);
    }

    /// Takes a connection out for good (counted), giving its input back to the
    /// budget; the caller closes its descriptor.
    pub fn remove(&mut self, sys: &Sys, fd: RawFd, budget: &InputBudget) -> Option<C> {
        let conn = self.conns.get_mut(fd as usize)?.take()?;
        budget.change(conn.held_input(), 0);
        self.open -= 1;
        self.freed = true;
        sys.counters().add(Stat::Closed, 1);
        Some(conn)
    }

    /// Takes a connection out for a while (an I/O thread's round), not counted.
    pub fn lend(&mut self, fd: RawFd) -> Option<C> {
        self.conns.get_mut(fd as usize)?.take()
    }

    /// Puts a lent connection back.
    pub fn put_back(&mut self, fd: RawFd, conn: C) {
        self.conns[fd as usize] = Some(conn);
    }

    /// Whether a connection has closed since the last call.
    pub fn take_freed(&mut self) -> bool {
        std::mem::take(&mut self.freed)
    }

    /// Past the server's input budget: the connection holding the most unfinished
    /// input, for the loop to close (until the server is back within it, or this loop
    /// has none left; the loop whose client made it grow finds it first).
    pub fn over_budget(&self, budget: &InputBudget) -> Option<RawFd> {
        if !budget.exceeded() {
            return None;
        }
        let (fd, _) = self
            .served()
            .filter(|(_, c)| c.held_input() > 0)
            .max_by_key(|(_, c)| c.held_input())?;
        log_once(
            "input-budget",
            "closing the connections holding the most unfinished input: past --input-budget \
             (counted in the statistics)",
        );
        Some(fd)
    }

    /// When idle connections are next looked for, with --idle-timeout.
    pub fn next_sweep(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// When it is time to look (`now` is the turn's time, kept only when connections
    /// are timed): every connection that has not completed a message for
    /// --idle-timeout (silent clients and slowloris tricklers), for the loop to close.
    pub fn idle(&mut self, now: Option<Instant>) -> Vec<RawFd> {
        let (Some(timeout), Some(at), Some(now)) = (self.idle_timeout, self.next_sweep, now) else {
            return Vec::new();
        };
        if now < at {
            return Vec::new();
        }
        self.next_sweep = Some(now + sweep_interval(timeout));
        self.served()
            .filter(|(_, c)| c.idle_for(timeout, now))
            .map(|(fd, _)| fd)
            .collect()
    }

    fn served(&self) -> impl Iterator<Item = (RawFd, &C)> {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(fd, c)| Some((fd as RawFd, c.as_ref()?)))
    }
}

/// How often idle connections are looked for: a quarter of the timeout, so that
/// none lives more than 25% past it.
fn sweep_interval(timeout: Duration) -> Duration {
    (timeout / 4).max(Duration::from_millis(10))
}

/// How a connection closed after `e` is counted (said once per kind, in words).
pub fn failure(e: &io::Error) -> Stat {
    match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => Stat::Resets,
        ErrorKind::InvalidData => {
            log_once("protocol", &format!("closing a connection: {e}"));
            Stat::ProtocolErrors
        }
        _ => {
            log_once("io-error", &format!("closing a connection after: {e}"));
            Stat::IoErrors
        }
    }
}

/// Closes a connection that will not be served, counting why.
pub fn refuse(sys: &Sys, fd: OwnedFd, why: Stat) {
    sys.close(fd);
    sys.counters().add(why, 1);
}
