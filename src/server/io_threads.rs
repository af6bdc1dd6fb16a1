//! Redis 6's threaded I/O. One main event loop. Readable clients are not read at once
//! but queued as pending reads; the queue is split round-robin over N I/O threads,
//! the main thread taking share 0; all read in parallel, and the main thread waits
//! until every share is done. Then it runs the commands (here: echo) alone, in
//! arrival order. Replies are queued as pending writes and written out the same way.
//! Threads are used only when there is enough work (twice as many clients as
//! threads); otherwise the main thread does it all.
//!
//! Like Redis's, an idle I/O thread spins before it sleeps, and the main thread spins
//! while it waits for the others: fast on cores of their own, ruinous on a shared one.

use super::LoopMaker;
use super::LoopOptions;
use super::accept::Accepting;
use super::connection::{Connection, Io, Outcome, Step, Workspace};
use super::event_loop::{Core, EventLoop, Role};
use super::listener::Listener;
use crate::backend::Event;
use crate::sys::Sys;
use anyhow::{Context, Result};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// One main loop, and `threads - 1` I/O threads beside it.
pub fn build(maker: &mut LoopMaker, listener: Listener) -> Result<Vec<EventLoop>> {
    let pool = IoPool::start(maker)?;
    let mut core = maker.core("main")?;
    let accepting = Accepting::new(listener, &mut core)?;
    let threads = IoThreads {
        pool,
        ready: Vec::new(),
    };
    Ok(vec![EventLoop::new(
        core,
        Role::IoThreadsMain(accepting, threads),
    )])
}

/// The main loop's I/O threads, and the clients of this wakeup waiting for them.
pub struct IoThreads {
    pool: IoPool,
    ready: Vec<Event>,
}

impl IoThreads {
    /// A ready client is not served at once: it waits for the round.
    pub fn queue(&mut self, ev: Event) {
        self.ready.push(ev);
    }

    /// Every round this wakeup needs (a client whose kept input filled the round's
    /// bound goes on in the next).
    pub fn serve_ready(&mut self, core: &mut Core) {
        while !self.ready.is_empty() {
            self.round(core);
        }
    }

    /// Redis's handleClientsWithPendingReadsUsingThreads, then ...WritesUsingThreads.
    fn round(&mut self, core: &mut Core) {
        let batch = std::mem::take(&mut self.ready);
        let threads = self.pool.threads();
        // Threads only for enough work (Redis: twice the threads); else the main
        // thread serves the clients alone.
        if batch.len() < 2 * threads {
            for ev in &batch {
                core.serve(ev);
            }
            return;
        }
        let now = core.space.now;
        let mut items: Vec<Item> = batch
            .iter()
            .filter_map(|ev| Some(Item::new(*ev, core.lend(ev.fd)?, now)))
            .collect();
        let mut io = core.space.io(&core.sys, &core.opts);
        // The reads, fanned out round-robin; the main thread waits for every share.
        self.pool.run(Phase::Read, &mut items, &mut io);
        // The commands, on the main thread alone, in arrival order.
        for item in items.iter_mut() {
            item.answer(&mut io);
        }
        // The writes, fanned out the same way when there are enough of them.
        let writes = items.iter().filter(|i| i.wants_write()).count();
        if writes >= 2 * threads {
            self.pool.run(Phase::Write, &mut items, &mut io);
        } else {
            for item in items.iter_mut() {
                item.step(Phase::Write, &mut io);
            }
        }
        for item in items {
            let (fd, conn, outcome) = item.finish();
            if core
                .give_back(fd, conn, outcome)
                .is_some_and(Connection::stalled)
            {
                // Its kept input filled the round's bound: it goes on next round.
                self.ready.push(Event {
                    fd,
                    readable: false,
                    writable: false,
                    hangup: false,
                });
            }
        }
    }
}

/// Checks of its state an idle I/O thread makes before it parks (Redis: a million).
const SPINS: u32 = 1_000_000;

/// Where an I/O thread's slot stands, as the main thread and the thread see it.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum State {
    Idle,
    Read,
    Write,
    Done,
    Exit,
}

impl State {
    const ALL: [State; 5] = [
        State::Idle,
        State::Read,
        State::Write,
        State::Done,
        State::Exit,
    ];

    fn load(cell: &AtomicU8) -> State {
        State::ALL[cell.load(Ordering::Acquire) as usize]
    }

    fn store(self, cell: &AtomicU8) {
        cell.store(self as u8, Ordering::Release);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Read,
    Write,
}

/// One ready client during a threaded round.
struct Item {
    ev: Event,
    conn: Connection,
    result: io::Result<()>,
    /// The main loop's time of this wakeup, for the connection's idle clock.
    now: Option<Instant>,
}

impl Item {
    fn new(ev: Event, conn: Connection, now: Option<Instant>) -> Item {
        Item {
            ev,
            conn,
            result: Ok(()),
            now,
        }
    }

    /// This client's share of a phase: read (and keep) its input, or write its replies.
    fn step(&mut self, phase: Phase, io: &mut Io<'_>) {
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
    fn answer(&mut self, io: &mut Io<'_>) {
        if self.result.is_ok() {
            self.result = self.conn.answer_kept(io);
        }
    }

    fn wants_write(&self) -> bool {
        self.result.is_ok() && self.conn.has_pending_output()
    }

    fn finish(self) -> (RawFd, Connection, Outcome) {
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

struct IoPool {
    slots: Vec<Arc<Slot>>,
    handles: Vec<JoinHandle<()>>,
}

impl IoPool {
    /// Starts `--threads` less one I/O threads (the main thread is the first), each
    /// with its own counted `Sys` and buffers.
    fn start(maker: &LoopMaker) -> Result<IoPool> {
        let opts = maker.options();
        let mut pool = IoPool {
            slots: Vec::new(),
            handles: Vec::new(),
        };
        for id in 1..maker.threads() {
            let name = format!("io-{id}");
            let slot = Arc::new(Slot {
                job: Mutex::new(Vec::new()),
                state: AtomicU8::new(State::Idle as u8),
            });
            let sys = maker.sys(&name);
            let space = Workspace::new(&opts, maker.shared());
            let mine = Arc::clone(&slot);
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || io_thread(&mine, &sys, &opts, space))
                .context("starting an I/O thread")?;
            pool.slots.push(slot);
            pool.handles.push(handle);
        }
        Ok(pool)
    }

    /// Threads in all, the main thread included.
    fn threads(&self) -> usize {
        self.slots.len() + 1
    }

    /// Runs `phase` over `items` split round-robin (item i to thread i % n, the main
    /// thread doing share 0), waits for every share, and puts them back in order.
    fn run(&self, phase: Phase, items: &mut Vec<Item>, io: &mut Io<'_>) {
        let n = self.threads();
        let total = items.len();
        let mut shares: Vec<Vec<Item>> = (0..n).map(|_| Vec::new()).collect();
        for (i, item) in items.drain(..).enumerate() {
            shares[i % n].push(item);
        }
        let state = match phase {
            Phase::Read => State::Read,
            Phase::Write => State::Write,
        };
        let mut rest = shares.split_off(1);
        for ((slot, handle), share) in self.slots.iter().zip(&self.handles).zip(rest.drain(..)) {
            slot.put(share);
            state.store(&slot.state);
            handle.thread().unpark();
        }
        for item in shares[0].iter_mut() {
            item.step(phase, io);
        }
        for slot in &self.slots {
            // Redis's main thread spins here too.
            while State::load(&slot.state) != State::Done {
                std::hint::spin_loop();
            }
            shares.push(slot.take());
            State::Idle.store(&slot.state);
        }
        let mut shares: Vec<_> = shares.into_iter().map(Vec::into_iter).collect();
        items.extend((0..total).filter_map(|i| shares[i % n].next()));
    }
}

impl Drop for IoPool {
    fn drop(&mut self) {
        for (slot, handle) in self.slots.iter().zip(&self.handles) {
            State::Exit.store(&slot.state);
            handle.thread().unpark();
        }
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

fn io_thread(slot: &Slot, sys: &Sys, opts: &LoopOptions, mut space: Workspace) {
    sys.counters().mark_thread();
    loop {
        let phase = match wait_for_work(slot) {
            State::Read => Phase::Read,
            State::Write => Phase::Write,
            _ => return sys.thread_ends(),
        };
        let mut job = slot.take();
        let mut io = space.io(sys, opts);
        for item in job.iter_mut() {
            item.step(phase, &mut io);
        }
        slot.put(job);
        State::Done.store(&slot.state);
    }
}

/// Spins, then parks, until the main thread gives work (or says exit).
fn wait_for_work(slot: &Slot) -> State {
    loop {
        for _ in 0..SPINS {
            let state = State::load(&slot.state);
            if matches!(state, State::Read | State::Write | State::Exit) {
                return state;
            }
            std::hint::spin_loop();
        }
        // An unpark that came first makes this return at once: no wake-up is lost.
        std::thread::park();
    }
}
