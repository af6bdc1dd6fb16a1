//! Per-thread counters: one `Counters` per event-loop thread, read by anyone.
//!
//! The owning thread is the only writer, so an increment is a relaxed load and a
//! relaxed store (two plain `mov`s on x86), never a locked read-modify-write. Other
//! threads (the control thread taking a snapshot) only load.

use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Arc, Mutex};

use crate::names::named_enum;

named_enum! {
    /// A system call (or, for the `polling` backend, a call into that crate) made
    /// by an event loop, counted by kind.
    pub enum Call {
        Accept4 => "accept4",
        Read => "read",
        Write => "write",
        Close => "close",
        Setsockopt => "setsockopt",
        Select => "select",
        Poll => "poll",
        EpollWait => "epoll_wait",
        EpollPwait2 => "epoll_pwait2",
        EpollCtl => "epoll_ctl",
        PollingWait => "polling::wait",
        PollingCtl => "polling::add/modify/delete",
        Open => "open",
        Ioctl => "ioctl",
        Getrusage => "getrusage",
        Sendfile => "sendfile",
        Splice => "splice",
        Mmap => "mmap",
        Munmap => "munmap",
        IoUringSetup => "io_uring_setup",
        IoUringEnter => "io_uring_enter",
        IoUringRegister => "io_uring_register",
    }
}

named_enum! {
    /// What an event loop counts besides system calls.
    pub enum Stat {
        Waits => "waits",
        Wakeups => "wakeups",
        Events => "events",
        Handed => "fds_handed",
        Scanned => "fds_scanned",
        Accepted => "accepted",
        Dispatched => "dispatched",
        Closed => "closed",
        RefusedUnwatchable => "refused_unwatchable",
        RefusedWorkerBusy => "refused_worker_busy",
        RefusedMaxConns => "refused_max_conns",
        RefusedNoFds => "refused_out_of_fds",
        Resets => "resets",
        IoErrors => "io_errors",
        ProtocolErrors => "protocol_errors",
        IdleTimeouts => "idle_timeouts",
        InputBudgetCloses => "closed_input_budget",
        BytesIn => "bytes_in",
        BytesOut => "bytes_out",
        PartialWrites => "partial_writes",
        ReadPauses => "read_pauses",
        /// io_uring: a multishot recv that ended because the buffer ring was empty
        /// (ENOBUFS), and was armed again
        RecvNoBuffers => "recv_enobufs",
    }
}

named_enum! {
    /// An io_uring operation of a completion loop, counted by kind as it is
    /// submitted and as its completions are reaped (a multishot one completes many
    /// times).
    pub enum RingOp {
        Accept => "accept",
        Recv => "recv",
        Send => "send",
        Cancel => "cancel",
        /// a poll: on the wake pipe, or on the listener while out of descriptors
        Poll => "poll",
    }
}

/// The counters of one thread.
pub struct Counters {
    thread: String,
    /// The kernel's id of the thread, once it runs (0 before).
    tid: AtomicU64,
    calls: [AtomicU64; Call::COUNT],
    stats: [AtomicU64; Stat::COUNT],
    /// io_uring operations submitted and completions reaped, by kind.
    submitted: [AtomicU64; RingOp::COUNT],
    completed: [AtomicU64; RingOp::COUNT],
    /// The thread's context switches (voluntary, involuntary) as it ended: once it
    /// has, the kernel's per-thread files are gone.
    at_exit: [AtomicU64; 2],
    exited: AtomicBool,
}

impl Counters {
    #[inline]
    pub fn call(&self, call: Call) {
        bump(&self.calls[call as usize], 1);
    }

    #[inline]
    pub fn add(&self, stat: Stat, n: u64) {
        bump(&self.stats[stat as usize], n);
    }

    #[inline]
    pub fn submitted(&self, op: RingOp) {
        bump(&self.submitted[op as usize], 1);
    }

    #[inline]
    pub fn completed(&self, op: RingOp) {
        bump(&self.completed[op as usize], 1);
    }

    /// Records the calling thread as the one these counters are for, so that the
    /// kernel's per-thread figures (/proc/self/task/TID) can be shown beside ours.
    pub fn mark_thread(&self) {
        self.tid
            .store(nix::unistd::gettid().as_raw() as u64, Relaxed);
    }

    /// Records the thread's last context switch counts, just before it ends.
    pub fn mark_exit(&self, (voluntary, involuntary): (u64, u64)) {
        self.at_exit[0].store(voluntary, Relaxed);
        self.at_exit[1].store(involuntary, Relaxed);
        // Release: whoever sees `exited` sees the counts stored before it.
        self.exited.store(true, Release);
    }

    pub fn snapshot(&self) -> ThreadCounts {
        ThreadCounts {
            thread: self.thread.clone(),
            tid: self.tid.load(Relaxed) as i32,
            calls: self.calls.iter().map(|c| c.load(Relaxed)).collect(),
            stats: self.stats.iter().map(|c| c.load(Relaxed)).collect(),
            submitted: self.submitted.iter().map(|c| c.load(Relaxed)).collect(),
            completed: self.completed.iter().map(|c| c.load(Relaxed)).collect(),
            switches_at_exit: self
                .exited
                .load(Acquire)
                .then(|| (self.at_exit[0].load(Relaxed), self.at_exit[1].load(Relaxed))),
        }
    }
}

/// Single-writer increment: no read-modify-write instruction is needed because
/// only the owning thread ever stores.
#[inline]
fn bump(cell: &AtomicU64, n: u64) {
    // The `uncounted` feature exists only to measure what counting costs
    // (benches/yardsticks.sh builds the server both ways).
    if cfg!(not(feature = "uncounted")) {
        cell.store(cell.load(Relaxed) + n, Relaxed);
    }
}

/// A copy of one thread's counters at one moment.
#[derive(Clone, Debug, Default)]
pub struct ThreadCounts {
    pub thread: String,
    /// 0 when the thread never ran.
    pub tid: i32,
    pub calls: Vec<u64>,
    pub stats: Vec<u64>,
    /// By [`RingOp`].
    pub submitted: Vec<u64>,
    pub completed: Vec<u64>,
    /// (voluntary, involuntary) context switches, once the thread has ended.
    pub switches_at_exit: Option<(u64, u64)>,
}

impl ThreadCounts {
    pub fn call(&self, call: Call) -> u64 {
        self.calls[call as usize]
    }

    pub fn stat(&self, stat: Stat) -> u64 {
        self.stats[stat as usize]
    }

    pub fn total_calls(&self) -> u64 {
        self.calls.iter().sum()
    }
}

/// All counters of one server (or one demo): threads register here once, at start.
#[derive(Clone, Default)]
pub struct Registry {
    threads: Arc<Mutex<Vec<Arc<Counters>>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the counters of a new thread. Not on any hot path.
    pub fn register(&self, thread: &str) -> Arc<Counters> {
        let counters = Arc::new(Counters {
            thread: thread.to_string(),
            tid: AtomicU64::new(0),
            calls: std::array::from_fn(|_| AtomicU64::new(0)),
            stats: std::array::from_fn(|_| AtomicU64::new(0)),
            submitted: std::array::from_fn(|_| AtomicU64::new(0)),
            completed: std::array::from_fn(|_| AtomicU64::new(0)),
            at_exit: [AtomicU64::new(0), AtomicU64::new(0)],
            exited: AtomicBool::new(false),
        });
        self.threads
            .lock()
            .expect("counter registry poisoned")
            .push(Arc::clone(&counters));
        counters
    }

    pub fn snapshot(&self) -> Vec<ThreadCounts> {
        let threads = self.threads.lock().expect("counter registry poisoned");
        threads.iter().map(|c| c.snapshot()).collect()
    }
}
