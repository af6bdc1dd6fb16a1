//! The echo server: a backend, a protocol and the echo processor, assembled into a
//! threading model:
//! - `reactor`: one thread, one multiplexer, everything in one loop (Redis before 6);
//! - `dispatch`: memcached's acceptor thread and workers;
//! - `io-threads`: Redis 6's threaded I/O around one main loop;
//! - `reuseport`: N independent reactors, each with its own SO_REUSEPORT listener.
//!
//! Two kinds of loop serve connections: the readiness loop (`event_loop`: a
//! multiplexer says which descriptors are ready, the loop reads and writes), and the
//! completion loop (`uring`: the loop submits the reads and writes themselves to an
//! io_uring and reaps their results). One file per model assembles its loops
//! (`event_loop::Role` says what each readiness loop does).
//! Its statistics are rendered by a function the caller gives.
//!
//! Layer: above `backend`, `metrics`, `protocol` and `sys`; measures, never formats.

mod accept;
mod connection;
mod control;
pub use control::THREAD as CONTROL_THREAD;
mod dispatch;
mod event_loop;
mod input;
mod io_threads;
mod listener;
mod reactor;
mod reuseport;
mod stats;
mod store;
mod table;
mod uring;

pub use input::InputBudget;
pub use stats::{Render, ServerStats};
pub use store::Store;
pub use uring::unavailable_here as io_uring_unavailable;

use crate::backend::{Backend, Trigger};
use crate::names::named_enum;
use crate::protocol::Protocol;
use crate::sys::{Registry, Sys, Tracer};
use anyhow::{Context, Result};
use event_loop::{Core, EventLoop};
use input::Shared;
use listener::{Listener, PortSharing};
use stats::{Moment, Reporter};
use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

named_enum! {
    /// How a connection reads when the multiplexer reports it readable.
    pub enum ReadStrategy {
        /// read until EAGAIN (what edge triggering demands)
        Drain => "drain",
        /// one read per readiness report (the level-triggered textbook loop)
        Once => "once",
        /// read until a read returns less than asked: the socket is then empty (epoll(7)),
        /// which saves the EAGAIN read
        ShortRead => "short-read",
    }
}

impl ReadStrategy {
    /// The default per backend, chosen by measurement: under level triggering one
    /// read per report costs the fewest calls (the next wait reports leftovers);
    /// under edge triggering `short-read` drains safely without the EAGAIN read.
    /// A completion loop has no choice to make: its multishot recv takes whatever
    /// arrives, as it arrives, which is what `drain` names.
    pub fn default_for(backend: Backend) -> ReadStrategy {
        match backend.trigger() {
            Trigger::Level => ReadStrategy::Once,
            Trigger::Edge => ReadStrategy::ShortRead,
            Trigger::Completion => ReadStrategy::Drain,
        }
    }

    /// Whether this strategy describes how `backend` reads: every one does for a
    /// readiness backend, only `drain` for the completion model (see `default_for`).
    pub fn applies_to(self, backend: Backend) -> bool {
        backend.trigger() != Trigger::Completion || self == ReadStrategy::Drain
    }

    /// Whether this strategy strands data under `trigger`: one read per edge leaves
    /// what it did not read unreported until the peer sends more (the ET pitfall).
    pub fn strands_data(self, trigger: Trigger) -> bool {
        self == ReadStrategy::Once && trigger == Trigger::Edge
    }
}

/// What the server runs when not told otherwise (`serve`, `run`, experiments).
pub const DEFAULT_BACKEND: Backend = Backend::EpollEt;
pub const DEFAULT_MODEL: Model = Model::Reactor;
/// Threads of a model other than the reactor (`--threads`, `--server-threads`).
pub const DEFAULT_THREADS: usize = 2;
/// The longest message a framed protocol accepts (`--max-frame`).
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

named_enum! {
    /// How the server uses threads.
    pub enum Model {
        /// one thread, one multiplexer, everything in one loop
        Reactor => "reactor",
        /// memcached: the main thread accepts, workers (--threads) own the connections
        Dispatch => "dispatch",
        /// Redis 6: one main loop, reads and writes split over --threads I/O threads
        IoThreads => "io-threads",
        /// --threads independent reactors, each with its own SO_REUSEPORT listener
        Reuseport => "reuseport",
    }
}

/// Why `backend` cannot serve with `model`, if it cannot: the completion loop is
/// built for the reactor, reuseport and dispatch (loops that each own their
/// connections); io-threads, whose threads share one loop's connections, is not
/// built on it yet.
pub fn unsupported(backend: Backend, model: Model) -> Option<String> {
    (backend.trigger() == Trigger::Completion && model == Model::IoThreads).then(|| {
        format!(
            "{backend} serves with the reactor, reuseport and dispatch models only: {model} \
             on a completion loop is not built yet"
        )
    })
}

named_enum! {
    /// How each io_uring ring is set up (`--ring`).
    pub enum RingSetup {
        /// no setup flags: the kernel runs completion work whenever it likes,
        /// interrupting the loop to do so
        Plain => "plain",
        /// IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN: one thread submits, and
        /// completion work runs only when it enters the kernel to wait, in a batch
        DeferTaskrun => "defer-taskrun",
        /// IORING_SETUP_SQPOLL: a kernel thread takes submissions with no system call,
        /// and sleeps after --sqpoll-idle without work; it spends CPU while it polls
        Sqpoll => "sqpoll",
    }
}

/// The ring setup that measured best here (SINGLE_ISSUER | DEFER_TASKRUN).
pub const DEFAULT_RING: RingSetup = RingSetup::DeferTaskrun;

impl Model {
    /// The threads this model runs with when `asked` for: the reactor has one.
    pub fn threads(self, asked: usize) -> usize {
        match self {
            Model::Reactor => 1,
            _ => asked.max(1),
        }
    }
}

/// The largest read buffer a loop may take (--buffer-size): one read of more is
/// no lesson, and each loop and I/O thread allocates one.
pub const MAX_BUFFER: usize = 64 << 20;

/// Refuses a read buffer outside 1 byte ..= MAX_BUFFER, saying the range.
pub fn check_buffer_size(bytes: usize) -> anyhow::Result<()> {
    if !(1..=MAX_BUFFER).contains(&bytes) {
        anyhow::bail!(
            "--buffer-size {} is outside 1 .. {}: one read asks for at most that",
            crate::units::Size(bytes),
            crate::units::Size(MAX_BUFFER)
        );
    }
    Ok(())
}

/// What every event loop of a server is configured with.
#[derive(Clone, Copy, Debug)]
pub struct LoopOptions {
    pub buffer_size: usize,
    pub read_strategy: ReadStrategy,
    /// Pending output per connection past which it is not read (backpressure).
    pub max_pending: usize,
    pub max_conns: usize,
    /// SO_SNDBUF for accepted sockets; None leaves the kernel's autotuning alone.
    pub send_buffer: Option<usize>,
    pub protocol: Protocol,
    /// Longest line or TLV value accepted; longer is a protocol error.
    pub max_frame: usize,
    /// Bytes of unfinished messages all connections may hold together.
    pub input_budget: usize,
    /// Bytes the memcache store may hold (keys and values, and what each costs).
    pub store_limit: usize,
    /// Close connections that complete no message for this long.
    pub idle_timeout: Option<Duration>,
    /// io-uring: how each ring is set up, and how long an SQPOLL thread polls
    /// without work before it sleeps.
    pub ring: RingSetup,
    pub sqpoll_idle: Duration,
}

/// A validated `serve` configuration.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub backend: Backend,
    pub model: Model,
    /// dispatch: workers; io-threads: threads including the main one; reuseport:
    /// reactors. The reactor has one.
    pub threads: usize,
    pub listen: SocketAddr,
    pub loop_options: LoopOptions,
    pub cpu: Option<usize>,
    pub duration: Option<Duration>,
    /// Print every system call of the event loop on stderr.
    pub trace: bool,
}

/// Runs the server until SIGINT/SIGTERM or the end of `duration`, then prints its
/// statistics with `render`. The first line on stdout is `listening on IP:PORT`,
/// printed once every thread runs.
pub fn serve(cfg: &ServeConfig, render: Render) -> Result<()> {
    control::block_signals()?;
    if let Some(cpu) = cfg.cpu {
        crate::sys::pin_to_cpu(cpu)?;
    }
    crate::sys::raise_nofile_limit()?;
    if let Some(why) = unsupported(cfg.backend, cfg.model) {
        anyhow::bail!("{why}");
    }

    let registry = Registry::new();
    let mut maker = LoopMaker {
        registry: registry.clone(),
        tracer: cfg
            .trace
            .then(|| Arc::new(Tracer::new(Box::new(std::io::stderr())))),
        cfg,
        stop: Arc::new(AtomicBool::new(false)),
        wakers: Vec::new(),
        shared: Arc::new(Shared {
            budget: InputBudget::new(cfg.loop_options.input_budget),
            store: Store::new(cfg.loop_options.store_limit),
        }),
    };
    let sharing = match cfg.model {
        Model::Reuseport => PortSharing::Shared,
        _ => PortSharing::Exclusive,
    };
    let listener = Listener::bind(cfg.listen, sharing)?;
    let addr = listener.local_addr();
    if !addr.ip().is_loopback() {
        to_stderr(&format!(
            "warning: listening on {addr}, which is not a loopback address: this echo server has no authentication"
        ));
    }
    let mut loops = match cfg.model {
        Model::Reactor => reactor::build(&mut maker, listener)?,
        Model::Reuseport => reuseport::build(&mut maker, listener)?,
        Model::Dispatch => dispatch::build(&mut maker, listener)?,
        Model::IoThreads => readiness(io_threads::build(&mut maker, listener)?),
    };

    let reporter = Reporter {
        cfg: cfg.clone(),
        registry,
        started: Instant::now(),
        render,
    };
    let snapshots = reporter.clone();
    let stopper = control::Stopper {
        flag: Arc::clone(&maker.stop),
        wakers: std::mem::take(&mut maker.wakers),
    };
    control::spawn(
        maker.sys(control::THREAD),
        stopper,
        cfg.duration,
        move |sys| snapshots.print(sys, Moment::Snapshot),
    )?;
    let mut main = loops.remove(0);
    let others: Vec<_> = loops
        .into_iter()
        .map(|mut l| {
            std::thread::Builder::new()
                .name("event-loop".into())
                .spawn(move || {
                    let ended = l.run();
                    l.sys().thread_ends();
                    ended
                })
                .context("starting an event loop thread")
        })
        .collect::<Result<_>>()?;
    // Only now: every thread of the server runs, so a parent that opens per-thread
    // kernel counters when it reads this line misses none.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {addr}")
        .and_then(|()| stdout.flush())
        .context("writing `listening on` to standard output: is it closed?")?;

    // The main loop returns when the control thread has told every loop to stop (or
    // on an error, which ends the process: the other loops are not waited for).
    main.run()?;
    for t in others {
        t.join().expect("event loop thread panicked")?;
    }
    // The report is written on this thread: the main loop's counters count it.
    let report_sys = main.sys().clone();
    drop(main); // closes every client (and ends any I/O threads) before the report
    reporter.print(&report_sys, Moment::Final);
    Ok(())
}

/// What a model's file builds, one per thread: a readiness loop (a multiplexer) or
/// a completion loop (an io_uring).
trait Loop: Send {
    fn run(&mut self) -> Result<()>;
    /// The loop's door to the kernel (its thread's counters).
    fn sys(&self) -> &Sys;
}

impl Loop for EventLoop {
    fn run(&mut self) -> Result<()> {
        EventLoop::run(self)
    }

    fn sys(&self) -> &Sys {
        EventLoop::sys(self)
    }
}

impl Loop for uring::Ring {
    fn run(&mut self) -> Result<()> {
        uring::Ring::run(self)
    }

    fn sys(&self) -> &Sys {
        uring::Ring::sys(self)
    }
}

fn readiness(loops: Vec<EventLoop>) -> Vec<Box<dyn Loop>> {
    loops
        .into_iter()
        .map(|l| Box::new(l) as Box<dyn Loop>)
        .collect()
}

/// Descriptors the server holds before its first client, besides stdin, stdout and
/// stderr: a client's descriptor number is at least 3 plus this. Per loop: its
/// multiplexer's own (io-uring: its ring's) and its wake pipe (both ends); per accepting loop: a listener
/// and a reserve; per memcached worker: its notification pipe (both ends).
pub fn descriptors_before_clients(backend: Backend, model: Model, threads: usize) -> usize {
    let per_loop = backend.descriptors() + 2;
    let accepting = 2;
    let threads = threads.max(1);
    match model {
        Model::Reactor | Model::IoThreads => per_loop + accepting,
        Model::Reuseport => threads * (per_loop + accepting),
        Model::Dispatch => (threads + 1) * per_loop + accepting + 2 * threads,
    }
}

/// Builds the parts of event loops that share one configuration, registry and stop
/// flag; each model's file assembles them into its loops.
pub struct LoopMaker<'a> {
    registry: Registry,
    tracer: Option<Arc<Tracer>>,
    cfg: &'a ServeConfig,
    stop: Arc<AtomicBool>,
    /// The write end of every loop's wake pipe, for the control thread.
    wakers: Vec<OwnedFd>,
    /// Shared by every loop and I/O thread.
    shared: Arc<Shared>,
}

impl LoopMaker<'_> {
    /// A counted (and maybe traced) door to the kernel for thread `name`.
    fn sys(&self, name: &str) -> Sys {
        Sys::new(self.registry.register(name)).traced(self.tracer.clone())
    }

    /// The model's threads (`--threads`).
    fn threads(&self) -> usize {
        self.cfg.threads.max(1)
    }

    fn options(&self) -> LoopOptions {
        self.cfg.loop_options
    }

    fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Whether the loops are completion loops (io-uring) rather than readiness ones.
    fn completion(&self) -> bool {
        self.cfg.backend.trigger() == Trigger::Completion
    }

    /// A wake pipe: the read end for the loop, the write end for the control thread.
    fn wake_pipe(&mut self) -> Result<OwnedFd> {
        let (wake_rx, wake_tx) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
                .context("creating a wake pipe")?;
        self.wakers.push(wake_tx);
        Ok(wake_rx)
    }

    /// A completion loop for thread `name`, in `role`.
    fn ring(&mut self, name: &str, role: uring::Role) -> Result<uring::Ring> {
        let sys = self.sys(name);
        let wake = self.wake_pipe()?;
        uring::Ring::new(
            sys,
            role,
            wake,
            Arc::clone(&self.stop),
            self.cfg.loop_options,
            self.shared(),
        )
    }

    /// What every readiness loop has, for thread `name`: a multiplexer and a wake pipe.
    fn core(&mut self, name: &str) -> Result<Core> {
        let sys = self.sys(name);
        let backend = self.cfg.backend;
        let mux = backend
            .create(sys.clone())
            .with_context(|| format!("creating the {backend} backend"))?;
        let wake_rx = self.wake_pipe()?;
        Core::new(
            sys,
            mux,
            wake_rx,
            Arc::clone(&self.stop),
            self.cfg.loop_options,
            self.shared(),
        )
    }
}

/// Logs a line on stderr the first time `key` comes up, so that a flood of the
/// same trouble is one line in the log and a count in the statistics.
pub fn log_once(key: &'static str, message: &str) {
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert(key) {
        to_stderr(&format!("iobench serve: {message}"));
    }
}

/// A line on stderr; if stderr is closed (`serve 2>&1 | head -1`), nobody is left
/// to tell, and the server serves on.
fn to_stderr(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
