//! One load thread: its share of the connections, and their books. The books are
//! the same whichever driver moves the bytes (`driver`: epoll or io_uring): what
//! each connection has pending and in flight, the pacing, the warm-up, the
//! latencies, the drain, stalls and lost connections.
//!
//! Each connection keeps up to `pipeline` requests in flight. Requests waiting to be
//! written sit in `pending` with their *intended* send time: in a closed loop that is
//! the moment the previous echo completed; in an open loop it is the request's slot on
//! a fixed schedule, kept even when the server stalls, so that latency measured from
//! it includes the wait (wrk2's coordinated-omission correction).

use super::driver::{self, Drive, Driver};
use super::payload::Payload;
use crate::sys::{Registry, Stat, Sys, ThreadCounts};
use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// Bytes handed to a driver at once for one connection, at least: pipelined
/// requests go out together up to it, a larger request in pieces.
const OUT_BATCH: usize = 64 * 1024;

/// The batch for requests of `size` bytes: [`OUT_BATCH`], or a sixteenth of a larger
/// request. A framed request's rest is assembled anew for each piece (`payload`
/// builds a message from an offset on), so that costs about eight copies of it,
/// and a connection holds a sixteenth of it, not all.
fn batch(size: usize) -> usize {
    OUT_BATCH.max(size / 16)
}

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
    pub driver: Driver,
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
    /// Intended send times of requests not handed to the driver yet.
    pending: VecDeque<Pending>,
    /// Requests handed to the driver whose echo is not complete.
    in_flight: VecDeque<Sent>,
    tx_seq: u64,
    /// Bytes of request `tx_seq` handed to the driver; non-zero only mid-request.
    tx_off: usize,
    /// Bytes handed to the driver and not written yet.
    unwritten: usize,
    rx_seq: u64,
    rx_off: usize,
    open: bool,
}

/// The books of one thread's connections, kept as the driver reports what it wrote
/// and what it read.
pub struct Book<'a> {
    plan: &'a ThreadPlan<'a>,
    sys: Sys,
    conns: Vec<Conn>,
    res: ThreadResult,
    /// Where a framed request is assembled.
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
    let mut book = Book::new(plan, sys.clone());
    for id in plan.ids.clone() {
        book.connect(id)?;
    }
    // Made after the books and so dropped before them: a driver gives back what
    // the kernel holds of the connections before their descriptors close.
    let mut driver = driver::start(plan.driver, sys.clone(), &book)?;
    book.run(driver.as_mut());
    drop(driver);
    if let Pace::Closed = plan.pace {
        // The same round trips; no send was late.
        book.res.uncorrected = book.res.latency.clone();
    }
    book.res.counts = sys.counters().snapshot();
    Ok(book.res)
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

impl<'a> Book<'a> {
    pub(super) fn new(plan: &'a ThreadPlan<'a>, sys: Sys) -> Book<'a> {
        Book {
            plan,
            sys,
            conns: Vec::new(),
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
        }
    }

    pub(super) fn connect(&mut self, id: u64) -> Result<()> {
        let fd = connect(self.plan.target, self.plan.connect_timeout)?;
        self.conns.push(Conn {
            fd,
            id,
            pending: VecDeque::new(),
            in_flight: VecDeque::new(),
            tx_seq: 0,
            tx_off: 0,
            unwritten: 0,
            rx_seq: 0,
            rx_off: 0,
            open: true,
        });
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn fd(&self, c: usize) -> BorrowedFd<'_> {
        self.conns[c].fd.as_fd()
    }

    pub fn is_open(&self, c: usize) -> bool {
        self.conns[c].open
    }

    /// The most echo bytes a connection can be owed: a read this large takes them all.
    pub fn most_owed(&self) -> usize {
        self.plan.pipeline * self.plan.payload.wire_size()
    }

    fn run(&mut self, driver: &mut dyn Drive) {
        let start = Instant::now();
        let timing = self.plan.timing;
        let mut slot: u64 = 0;
        if let Pace::Closed = self.plan.pace {
            for c in 0..self.conns.len() {
                for _ in 0..self.plan.pipeline {
                    self.schedule(c, start);
                }
                driver.flush(self, c, start);
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
                        driver.flush(self, c, now);
                    }
                }
            }
            if driver.turn(self, timeout).is_err() {
                break;
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
            || conn.tx_off > 0
            || conn.unwritten > 0;
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

    /// Appends to `out` what connection `c` may send now: the rest of a request cut
    /// into pieces, then pending requests while its pipeline has room, up to a batch
    /// ([`batch`]). Requests are in flight from their first piece; the driver says
    /// what of them it wrote (`wrote`).
    pub fn fill(&mut self, c: usize, now: Instant, out: &mut Vec<u8>) {
        let payload = self.plan.payload;
        let batch = batch(payload.wire_size());
        let conn = &mut self.conns[c];
        while conn.open && out.len() < batch {
            // Requests differ in size (memcache's first is its set).
            let msg = payload.request(conn.id, conn.tx_seq);
            let size = msg.len();
            if conn.tx_off == 0 {
                let no_room = !out.is_empty() && out.len() + size > batch;
                if no_room || conn.in_flight.len() >= self.plan.pipeline {
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
            let rest = msg.bytes_from(conn.tx_off, &mut self.scratch);
            let piece = &rest[..rest.len().min(batch - out.len())];
            out.extend_from_slice(piece);
            conn.unwritten += piece.len();
            conn.tx_off += piece.len();
            if conn.tx_off == size {
                conn.tx_off = 0;
                conn.tx_seq += 1;
            }
        }
    }

    /// `n` bytes of what `fill` handed out were written.
    pub fn wrote(&mut self, c: usize, n: usize) {
        self.conns[c].unwritten -= n;
    }

    /// Echo bytes read on connection `c`: every byte is checked against what was
    /// sent, and requests whose echo is whole complete (in a closed loop, each
    /// completion queues the next request: the driver flushes after this).
    pub fn received(&mut self, c: usize, data: &[u8], now: Instant) {
        self.sys.counters().add(Stat::BytesIn, data.len() as u64);
        self.last_echo = now;
        let payload = self.plan.payload;
        let mut data = data;
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

    /// The server closed or reset a connection we still expected echoes on. The
    /// driver stops watching it; its descriptor stays open until the thread ends.
    pub fn lose(&mut self, c: usize) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;
    use std::net::TcpListener;

    /// Requests handed out in batches are the requests' bytes, in order: small ones
    /// pipelined together, a large one in pieces no larger than a batch, each
    /// request in flight from its first piece.
    #[test]
    fn batches_hold_the_requests_in_order_and_large_ones_in_pieces() {
        // A listener to connect to; nothing is read or written through it.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        for (size, protocol, pipeline) in [(64, Protocol::Raw, 4), (2 << 20, Protocol::Line, 2)] {
            let payload = Payload::new(size, protocol).unwrap();
            let plan = ThreadPlan {
                target: listener.local_addr().unwrap(),
                ids: 7..8,
                payload: &payload,
                pipeline,
                pace: Pace::Closed,
                timing: Timing {
                    measure_from: Instant::now(),
                    end: None,
                    drain: Duration::ZERO,
                },
                quota: None,
                timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(5),
                driver: Driver::Epoll,
            };
            let registry = Registry::new();
            let mut book = Book::new(&plan, Sys::new(registry.register("test")));
            book.connect(7).unwrap();
            let now = Instant::now();
            for _ in 0..pipeline + 1 {
                assert!(book.schedule(0, now));
            }
            let (mut sent, mut batches) = (Vec::new(), 0);
            loop {
                let mut out = Vec::new();
                book.fill(0, now, &mut out);
                if out.is_empty() {
                    break;
                }
                assert!(out.len() <= batch(payload.wire_size()), "{size}");
                book.wrote(0, out.len());
                sent.extend_from_slice(&out);
                batches += 1;
            }
            let mut expected = Vec::new();
            for seq in 0..pipeline as u64 {
                let msg = payload.request(7, seq);
                expected.extend_from_slice(msg.bytes_from(0, &mut Vec::new()));
            }
            // The pipeline is full: the one request more waits for an echo.
            assert!(sent == expected, "{size} B: the bytes differ");
            assert_eq!(book.conns[0].in_flight.len(), pipeline);
            assert_eq!(book.conns[0].pending.len(), 1);
            let pieces = match size {
                64 => 1,
                _ => 2 * 16,
            };
            assert_eq!(batches, pieces, "{size} B");
        }
    }
}
