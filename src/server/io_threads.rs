//! Redis 6's threaded I/O. One main event loop. Readable clients are not read at once
//! but queued as pending reads; the queue is split round-robin over N I/O threads,
//! the main thread taking share 0; all read in parallel, and the main thread waits
//! until every share is done. Then it runs the commands (here: echo) alone, in
//! arrival order. Replies are queued as pending writes and written out the same way.
//! Threads are used only when there is enough work (twice as many clients as
//! threads); otherwise the main thread does it all (see `EventLoop::serve_pending`).
//!
//! Like Redis's, an idle I/O thread spins before it sleeps, and the main thread spins
//! while it waits for the others: fast on cores of their own, ruinous on a shared one.

use super::LoopOptions;
use super::connection::{Connection, Io, Outcome, Step, Workspace};
use crate::backend::Event;
use crate::sys::Sys;
use anyhow::{Context, Result};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// Checks of its state an idle I/O thread makes before it parks (Redis: a million).
const SPINS: u32 = 1_000_000;

const IDLE: u8 = 0;
const READ: u8 = 1;
const WRITE: u8 = 2;
const DONE: u8 = 3;
const EXIT: u8 = 4;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Read,
    Write,
}

/// One ready client during a threaded round.
pub struct Item {
    ev: Event,
    conn: Connection,
    result: io::Result<()>,
    /// The main loop's time of this wakeup, for the connection's idle clock.
    now: Option<Instant>,
}

impl Item {
    pub fn new(ev: Event, conn: Connection, now: Option<Instant>) -> Item {
        Item {
            ev,
            conn,
            result: Ok(()),
            now,
        }
    }

    /// This client's share of a phase: read (and keep) its input, or write its replies.
    pub fn step(&mut self, phase: Phase, io: &mut Io<'_>) {
        io.now = self.now;
        if let Err(e) = &self.result {
            // A protocol error's reply (line: the ERR line) still goes out, best
            // effort, before the connection is closed.
            if phase == Phase::Write && e.kind() == io::ErrorKind::InvalidData {
                let _ = self.conn.write_pending(io);
            }
            return;
        }
        self.result = match phase {
            Phase::Read => self.conn.io_step(&self.ev, io, Step::Keep),
            Phase::Write => self.conn.write_pending(io),
        };
    }

    /// The main thread's part: answer what was read.
    pub fn answer(&mut self, io: &mut Io<'_>) {
        if self.result.is_ok() {
            self.result = self.conn.answer_kept(io);
        }
    }

    pub fn wants_write(&self) -> bool {
        self.result.is_ok() && self.conn.has_pending_output()
    }

    pub fn finish(self) -> (RawFd, Connection, Outcome) {
        let outcome = self.conn.outcome(self.result);
        (self.ev.fd, self.conn, outcome)
    }
}

/// What one I/O thread shares with the main thread.
struct Slot {
    job: Mutex<Vec<Item>>,
    state: AtomicU8,
}

impl Slot {
    fn take(&self) -> Vec<Item> {
        std::mem::take(&mut *self.job.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn put(&self, items: Vec<Item>) {
        *self.job.lock().unwrap_or_else(|p| p.into_inner()) = items;
    }
}

pub struct IoPool {
    slots: Vec<Arc<Slot>>,
    handles: Vec<JoinHandle<()>>,
}

impl IoPool {
    /// Starts `threads - 1` I/O threads (the main thread is the first of `threads`),
    /// each with its own counted `Sys` from `sys_for`.
    pub fn start(
        threads: usize,
        sys_for: impl Fn(&str) -> Sys,
        opts: LoopOptions,
    ) -> Result<IoPool> {
        let mut pool = IoPool {
            slots: Vec::new(),
            handles: Vec::new(),
        };
        for id in 1..threads.max(1) {
            let name = format!("io-{id}");
            let slot = Arc::new(Slot {
                job: Mutex::new(Vec::new()),
                state: AtomicU8::new(IDLE),
            });
            let sys = sys_for(&name);
            let mine = Arc::clone(&slot);
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || io_thread(&mine, &sys, &opts))
                .context("starting an I/O thread")?;
            pool.slots.push(slot);
            pool.handles.push(handle);
        }
        Ok(pool)
    }

    /// Threads in all, the main thread included.
    pub fn threads(&self) -> usize {
        self.slots.len() + 1
    }

    /// Runs `phase` over `items` split round-robin (item i to thread i % n, the main
    /// thread doing share 0), waits for every share, and puts them back in order.
    pub fn run(&self, phase: Phase, items: &mut Vec<Item>, io: &mut Io<'_>) {
        let n = self.threads();
        let total = items.len();
        let mut shares: Vec<Vec<Item>> = (0..n).map(|_| Vec::new()).collect();
        for (i, item) in items.drain(..).enumerate() {
            shares[i % n].push(item);
        }
        let code = match phase {
            Phase::Read => READ,
            Phase::Write => WRITE,
        };
        let mut rest = shares.split_off(1);
        for ((slot, handle), share) in self.slots.iter().zip(&self.handles).zip(rest.drain(..)) {
            slot.put(share);
            slot.state.store(code, Ordering::Release);
            handle.thread().unpark();
        }
        for item in shares[0].iter_mut() {
            item.step(phase, io);
        }
        for slot in &self.slots {
            // Redis's main thread spins here too.
            while slot.state.load(Ordering::Acquire) != DONE {
                std::hint::spin_loop();
            }
            shares.push(slot.take());
            slot.state.store(IDLE, Ordering::Release);
        }
        let mut shares: Vec<_> = shares.into_iter().map(Vec::into_iter).collect();
        items.extend((0..total).filter_map(|i| shares[i % n].next()));
    }
}

impl Drop for IoPool {
    fn drop(&mut self) {
        for (slot, handle) in self.slots.iter().zip(&self.handles) {
            slot.state.store(EXIT, Ordering::Release);
            handle.thread().unpark();
        }
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

fn io_thread(slot: &Slot, sys: &Sys, opts: &LoopOptions) {
    sys.counters().mark_thread();
    let mut space = Workspace::new(opts);
    loop {
        let phase = match wait_for_work(slot) {
            READ => Phase::Read,
            WRITE => Phase::Write,
            _ => return,
        };
        let mut job = slot.take();
        let mut io = space.io(sys, opts);
        for item in job.iter_mut() {
            item.step(phase, &mut io);
        }
        slot.put(job);
        slot.state.store(DONE, Ordering::Release);
    }
}

/// Spins, then parks, until the main thread gives work (or says exit).
fn wait_for_work(slot: &Slot) -> u8 {
    loop {
        for _ in 0..SPINS {
            let state = slot.state.load(Ordering::Acquire);
            if matches!(state, READ | WRITE | EXIT) {
                return state;
            }
            std::hint::spin_loop();
        }
        // An unpark that came first makes this return at once: no wake-up is lost.
        std::thread::park();
    }
}
