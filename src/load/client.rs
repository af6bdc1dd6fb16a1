//! One load thread: its share of the connections on one level-triggered epoll, the
//! same `Multiplexer` and counting layer the server uses.
//!
//! Each connection keeps up to `pipeline` requests in flight. Requests waiting to be
//! written sit in `pending` with their *intended* send time: in a closed loop that is
//! the moment the previous echo completed; in an open loop it is the request's slot on
//! a fixed schedule, kept even when the server stalls, so that latency measured from
//! it includes the wait (wrk2's coordinated-omission correction).

use super::payload::Payload;
use crate::backend::{Backend, Event, Interest, Multiplexer};
use crate::sys::{Registry, Stat, Sys, ThreadCounts};
use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Bytes read per read call.
const READ_SIZE: usize = 64 * 1024;
/// Unsent requests an open-loop connection may hold; past it new ones are given up
/// (counted as missed), so that a rate the connections cannot carry costs no memory.
const BACKLOG: usize = 1024;
/// Latencies are recorded in nanoseconds, up to a minute, to 3 significant digits.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

/// When things happen; shared by every thread of a run.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Requests before this are warm-up: sent, checked, not recorded.
    pub measure_from: Instant,
    /// No request is started at or after this (None: run until the quota is done).
    pub end: Option<Instant>,
    /// How long to wait for the echoes still in flight once sending has stopped.
    pub drain: Duration,
}

#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// A new request as soon as an echo completes.
    Closed,
    /// One request every `interval` (for this thread), round-robin over connections.
    Open { interval: Duration },
}

pub struct ThreadPlan<'a> {
    pub target: SocketAddr,
    /// Connection ids of this thread (they select request contents).
    pub ids: std::ops::Range<u64>,
    pub payload: &'a Payload,
    pub pipeline: usize,
    pub pace: Pace,
    pub timing: Timing,
    /// Requests this thread starts in the measured window (after the warm-up's).
    pub quota: Option<u64>,
    /// No echo byte for this long, with echoes owed: the thread stops.
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

/// What one thread measured.
pub struct ThreadResult {
    /// From intended send time to completed echo (open loop: corrected).
    pub latency: Histogram<u64>,
    /// From actual send time to completed echo.
    pub uncorrected: Histogram<u64>,
    /// From intended to actual send time, for requests the connection could take
    /// at once: how late the generator itself was.
    pub send_lag: Histogram<u64>,
    /// The same for requests that waited for the connection (pipeline or socket
    /// full): the server's backpressure.
    pub backpressure: Histogram<u64>,
    pub completed_in_window: u64,
    pub completed: u64,
    pub mismatched_bytes: u64,
    pub lost_bytes: u64,
    pub unexpected_closes: u64,
    /// Open loop: requests given up because the backlog of unsent ones was full.
    pub missed: u64,
    /// The thread stopped because no echo byte came for the plan's timeout.
    pub stalled: bool,
    /// When the last echo in the measured window completed.
    pub last_completion: Option<Instant>,
    pub counts: ThreadCounts,
}

struct Sent {
    intended: Instant,
    actual: Instant,
    /// At its intended time the connection could not take it (its pipeline was
    /// full, or the socket, or requests were queued before it): its lag is the
    /// server's backpressure, not the generator's own scheduling.
    waited: bool,
}

/// A request not written yet: its intended send time, and whether the connection
/// was busy then (see [`Sent::waited`]).
type Pending = (Instant, bool);

struct Conn {
    fd: OwnedFd,
    id: u64,
    /// Intended send times of requests not written yet.
    pending: VecDeque<Pending>,
    /// Requests written (or being written) whose echo is not complete.
    in_flight: VecDeque<Sent>,
    tx_seq: u64,
    /// Bytes of request `tx_seq` already written; non-zero only mid-request.
    tx_off: usize,
    rx_seq: u64,
    rx_off: usize,
    write_armed: bool,
    open: bool,
}

struct Worker<'a> {
    plan: &'a ThreadPlan<'a>,
    sys: Sys,
    mux: Box<dyn Multiplexer>,
    conns: Vec<Conn>,
    /// Connection index by descriptor number.
    index: Vec<u32>,
    res: ThreadResult,
    /// Where a framed request is assembled for writing.
    scratch: Vec<u8>,
    /// Requests started in the measured window, against the quota.
    started: u64,
    sending: bool,
    /// When the last echo byte arrived (or the run started).
    last_echo: Instant,
}

pub fn run_thread(plan: &ThreadPlan<'_>, registry: &Registry) -> Result<ThreadResult> {
    if let Pace::Open { .. } = plan.pace {
        // The default 50 us timer slack would make every paced send that late, and
        // the corrected latency would charge it to the server.
        nix::sys::prctl::set_timerslack(1).context("prctl(PR_SET_TIMERSLACK)")?;
    }
    let sys = Sys::new(registry.register("load"));
    let mux = Backend::EpollLt.create(sys.clone())?;
    let mut w = Worker {
        plan,
        sys: sys.clone(),
        mux,
        conns: Vec::new(),
        index: Vec::new(),
        res: ThreadResult {
            latency: new_histogram(),
            uncorrected: new_histogram(),
            send_lag: new_histogram(),
            backpressure: new_histogram(),
            completed_in_window: 0,
            completed: 0,
            mismatched_bytes: 0,
            lost_bytes: 0,
            unexpected_closes: 0,
            missed: 0,
            stalled: false,
            last_completion: None,
            counts: ThreadCounts::default(),
        },
        scratch: Vec::new(),
        started: 0,
        sending: true,
        last_echo: Instant::now(),
    };
    for id in plan.ids.clone() {
        w.connect(id)?;
    }
    w.run();
    if let Pace::Closed = plan.pace {
        // The same round trips; no send was late.
        w.res.uncorrected = w.res.latency.clone();
    }
    w.res.counts = sys.counters().snapshot();
    Ok(w.res)
}

/// A connected, non-blocking, TCP_NODELAY socket, within `timeout`.
pub fn connect(target: SocketAddr, timeout: Duration) -> Result<OwnedFd> {
    let s = TcpStream::connect_timeout(&target, timeout).with_context(|| {
        format!("cannot connect to {target} within {timeout:?} (--connect-timeout)")
    })?;
    s.set_nodelay(true).context("TCP_NODELAY")?;
    s.set_nonblocking(true).context("O_NONBLOCK")?;
    Ok(s.into())
}

impl Worker<'_> {
    fn connect(&mut self, id: u64) -> Result<()> {
        let fd = connect(self.plan.target, self.plan.connect_timeout)?;
        self.mux
            .register(fd.as_fd(), Interest::READ)
            .context("watching a load connection")?;
        let slot = fd.as_raw_fd() as usize;
        if slot >= self.index.len() {
            self.index.resize(slot + 1, u32::MAX);
        }
        self.index[slot] = self.conns.len() as u32;
        self.conns.push(Conn {
            fd,
            id,
            pending: VecDeque::new(),
            in_flight: VecDeque::new(),
            tx_seq: 0,
            tx_off: 0,
            rx_seq: 0,
            rx_off: 0,
            write_armed: false,
            open: true,
        });
        Ok(())
    }

    fn run(&mut self) {
        let start = Instant::now();
        let timing = self.plan.timing;
        let mut slot: u64 = 0;
        let mut events: Vec<Event> = Vec::with_capacity(1024);
        let mut rx = vec![0u8; READ_SIZE];
        if let Pace::Closed = self.plan.pace {
            for c in 0..self.conns.len() {
                for _ in 0..self.plan.pipeline {
                    self.schedule(c, start);
                }
                self.pump(c, start);
            }
        }
        let mut drain_until = None;
        loop {
            let now = Instant::now();
            if self.sending && timing.end.is_some_and(|end| now >= end) {
                self.stop_sending();
            }
            // The server closed every connection: no echo can come any more. (Only
            // `lose` closes one, and it counts each once: no scan of the connections.)
            if self.res.unexpected_closes == self.conns.len() as u64 {
                break;
            }
            if now.saturating_duration_since(self.last_echo) >= self.plan.timeout
                && self.stalled(now)
            {
                self.res.stalled = true;
                break;
            }
            if !self.sending {
                let until = *drain_until.get_or_insert(now + timing.drain);
                if now >= until || self.conns.iter().all(|c| c.in_flight.is_empty()) {
                    break;
                }
            }
            // Waking up to notice the end needs no precision: whole milliseconds keep
            // the plain epoll_wait (a sub-millisecond timeout takes epoll_pwait2 and a
            // finer kernel timer on every wait).
            let until = drain_until.or(timing.end);
            let left = until.map_or(Duration::from_millis(100), |u| {
                u.saturating_duration_since(now)
            });
            let mut timeout = Duration::from_millis((left.as_millis() as u64).clamp(1, 100));
            if let (Pace::Open { interval }, true) = (self.plan.pace, self.sending) {
                slot = self.give_up_beyond_backlogs(start, interval, slot, now);
                // Every slot whose time has come gets its request now.
                loop {
                    let due = start + interval.mul_f64(slot as f64);
                    if due > now {
                        timeout = timeout.min(due - now);
                        break;
                    }
                    let c = (slot % self.conns.len() as u64) as usize;
                    slot += 1;
                    if self.schedule(c, due) {
                        self.pump(c, now);
                    }
                }
            }
            if self.mux.wait(&mut events, Some(timeout)).is_err() {
                break;
            }
            if events.is_empty() {
                continue;
            }
            let now = Instant::now();
            for ev in &events {
                let c = self.index[ev.fd as usize] as usize;
                if ev.writable && self.conns[c].open {
                    self.pump(c, now);
                }
                if ev.readable && self.conns[c].open {
                    self.receive(c, &mut rx, now);
                }
            }
        }
        for c in &self.conns {
            let owed = c.rx_seq..c.rx_seq + c.in_flight.len() as u64;
            self.res.lost_bytes += self.plan.payload.replies_size(owed) - c.rx_off as u64;
        }
    }

    /// Whether a request has waited `timeout` for its echo: with no echo byte for
    /// as long (the caller's check), the server has stopped answering.
    fn stalled(&self, now: Instant) -> bool {
        self.conns.iter().any(|c| {
            c.in_flight
                .front()
                .is_some_and(|s| now.saturating_duration_since(s.actual) >= self.plan.timeout)
        })
    }

    /// Queues one request with its intended send time; false once the quota is used,
    /// or when an open-loop connection's backlog is full (the request is given up).
    fn schedule(&mut self, c: usize, intended: Instant) -> bool {
        if !self.sending || !self.conns[c].open {
            return false;
        }
        // The quota counts measured requests: the warm-up's are on top of it.
        if intended >= self.plan.timing.measure_from {
            if self.plan.quota.is_some_and(|q| self.started >= q) {
                // Requests already queued still go out: they are part of the quota.
                self.sending = false;
                return false;
            }
            self.started += 1;
        }
        if self.conns[c].pending.len() >= BACKLOG {
            self.miss(intended, intended, 1);
            return false;
        }
        let conn = &mut self.conns[c];
        let busy = !conn.pending.is_empty()
            || conn.in_flight.len() >= self.plan.pipeline
            || conn.tx_off > 0;
        conn.pending.push_back((intended, busy));
        true
    }

    /// Open loop, far above what the connections can send: the slots due by `now`
    /// that no backlog has room for are given up in one step, not one by one (at
    /// --rate 1e9, one by one would never catch up). Returns the next slot.
    fn give_up_beyond_backlogs(
        &mut self,
        start: Instant,
        interval: Duration,
        slot: u64,
        now: Instant,
    ) -> u64 {
        let due = ((now - start).as_secs_f64() / interval.as_secs_f64()) as u64 + 1;
        let overdue = due.saturating_sub(slot);
        if overdue <= self.conns.len() as u64 {
            return slot; // keeping up: no need to look at the backlogs
        }
        let room: u64 = self
            .conns
            .iter()
            .map(|c| BACKLOG.saturating_sub(c.pending.len()) as u64)
            .sum();
        let mut skip = overdue.saturating_sub(room);
        if let Some(quota) = self.plan.quota {
            skip = skip.min(quota.saturating_sub(self.started));
        }
        if skip == 0 {
            return slot;
        }
        self.started += skip;
        let intended = |k: u64| start + interval.mul_f64(k as f64);
        self.miss(intended(slot), intended(slot + skip - 1), skip);
        slot + skip
    }

    /// `n` requests intended evenly from `first` to `last` and given up: they never
    /// complete, so each enters the corrected latency with its wait until the run
    /// stops sending (until now, in a run without an end): a lower bound, and what
    /// the coordinated-omission correction is about. Spread over up to 16 values:
    /// the histogram keeps 3 significant digits, not every value.
    fn miss(&mut self, first: Instant, last: Instant, n: u64) {
        let t = self.plan.timing;
        if last < t.measure_from {
            return;
        }
        self.res.missed += n;
        let until = t.end.unwrap_or_else(Instant::now);
        let wait = |i: Instant| (until.saturating_duration_since(i).as_nanos() as u64).max(1);
        let (longest, shortest) = (wait(first), wait(last));
        let steps = n.min(16);
        for k in 0..steps {
            let count = n * (k + 1) / steps - n * k / steps;
            let value = longest - (longest - shortest) * (2 * k + 1) / (2 * steps);
            self.res.latency.saturating_record_n(value.max(1), count);
        }
    }

    fn stop_sending(&mut self) {
        self.sending = false;
        for c in &mut self.conns {
            c.pending.clear();
        }
    }

    /// Writes what connection `c` may write now: the rest of a partly written
    /// request, then pending requests while the pipeline has room.
    fn pump(&mut self, c: usize, now: Instant) {
        loop {
            let conn = &mut self.conns[c];
            if conn.tx_off == 0 {
                if conn.in_flight.len() >= self.plan.pipeline {
                    break;
                }
                let Some((intended, waited)) = conn.pending.pop_front() else {
                    break;
                };
                conn.in_flight.push_back(Sent {
                    intended,
                    actual: now,
                    waited,
                });
            }
            let msg = self.plan.payload.request(conn.id, conn.tx_seq);
            let req = msg.bytes_from(conn.tx_off, &mut self.scratch);
            match self.sys.write(conn.fd.as_fd(), req) {
                Ok(n) if n == req.len() => {
                    conn.tx_off = 0;
                    conn.tx_seq += 1;
                }
                Ok(n) => {
                    conn.tx_off += n;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return self.lose(c),
            }
        }
        let conn = &mut self.conns[c];
        let want_write = conn.tx_off > 0;
        if want_write != conn.write_armed {
            let interest = Interest {
                read: true,
                write: want_write,
            };
            if self.mux.modify(conn.fd.as_fd(), interest).is_ok() {
                conn.write_armed = want_write;
            }
        }
    }

    /// Reads once (the multiplexer is level-triggered: leftovers are reported again),
    /// checks every byte against what was sent, and completes requests.
    fn receive(&mut self, c: usize, rx: &mut [u8], now: Instant) {
        let n = match self.sys.read(self.conns[c].fd.as_fd(), rx) {
            Ok(0) => return self.lose(c),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                return;
            }
            Err(_) => return self.lose(c),
        };
        self.sys.counters().add(Stat::BytesIn, n as u64);
        self.last_echo = now;
        let payload = self.plan.payload;
        let mut data = &rx[..n];
        let mut completed = 0;
        while !data.is_empty() {
            let conn = &mut self.conns[c];
            if conn.in_flight.is_empty() {
                // Bytes nobody asked for.
                self.res.mismatched_bytes += data.len() as u64;
                break;
            }
            let expected = payload.response(conn.id, conn.rx_seq);
            let size = expected.len();
            let k = (size - conn.rx_off).min(data.len());
            self.res.mismatched_bytes += expected.mismatches(conn.rx_off, &data[..k]);
            data = &data[k..];
            conn.rx_off += k;
            if conn.rx_off < size {
                continue;
            }
            conn.rx_off = 0;
            conn.rx_seq += 1;
            let sent = conn.in_flight.pop_front().expect("checked above");
            self.record(&sent, now);
            completed += 1;
        }
        if let Pace::Closed = self.plan.pace {
            for _ in 0..completed {
                self.schedule(c, now);
            }
        }
        self.pump(c, now);
    }

    fn record(&mut self, sent: &Sent, now: Instant) {
        self.res.completed += 1;
        let t = self.plan.timing;
        if sent.intended < t.measure_from || t.end.is_some_and(|end| now > end) {
            return;
        }
        self.res.completed_in_window += 1;
        self.res.last_completion = Some(now);
        let ns = |d: Duration| (d.as_nanos() as u64).max(1);
        match self.plan.pace {
            // A closed loop has no schedule to fall behind: its latency is the round
            // trip from the actual send, filled in as "uncorrected" too at the end.
            Pace::Closed => self.res.latency.saturating_record(ns(now - sent.actual)),
            Pace::Open { .. } => {
                self.res.latency.saturating_record(ns(now - sent.intended));
                self.res
                    .uncorrected
                    .saturating_record(ns(now - sent.actual));
                let lag = match sent.waited {
                    true => &mut self.res.backpressure,
                    false => &mut self.res.send_lag,
                };
                lag.saturating_record(ns(sent.actual - sent.intended));
            }
        }
    }

    /// The server closed or reset a connection we still expected echoes on.
    fn lose(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        if !conn.open {
            return;
        }
        conn.open = false;
        self.res.unexpected_closes += 1;
        let owed = conn.rx_seq..conn.rx_seq + conn.in_flight.len() as u64;
        self.res.lost_bytes += self.plan.payload.replies_size(owed) - conn.rx_off as u64;
        conn.in_flight.clear();
        // Counted as lost once: the end of the run must not count its part again.
        conn.rx_off = 0;
        conn.pending.clear();
        let _ = self.mux.deregister(conn.fd.as_fd());
    }
}
