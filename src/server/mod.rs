//! The echo server: a backend, a protocol and the echo processor, assembled into a
//! threading model:
//! - `reactor`: one thread, one multiplexer, everything in one loop (Redis before 6);
//! - `dispatch`: memcached's acceptor thread and workers (dispatch.rs);
//! - `io-threads`: Redis 6's threaded I/O around one main loop (io_threads.rs);
//! - `reuseport`: N independent reactors, each with its own SO_REUSEPORT listener.

mod connection;
mod control;
mod dispatch;
mod event_loop;
mod io_threads;
mod listener;

use crate::backend::{Backend, Trigger};
use crate::metrics::ServerStats;
use crate::names::named_enum;
use crate::protocol::Protocol;
use crate::sys::{Registry, Sys, Tracer};
use anyhow::{Context, Result};
use event_loop::EventLoop;
use listener::Listener;
use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
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
    pub fn default_for(backend: Backend) -> ReadStrategy {
        match backend.trigger() {
            Trigger::Level => ReadStrategy::Once,
            Trigger::Edge => ReadStrategy::ShortRead,
        }
    }

    /// Whether this strategy strands data under `trigger`: one read per edge leaves
    /// what it did not read unreported until the peer sends more (the ET pitfall).
    pub fn strands_data(self, trigger: Trigger) -> bool {
        self == ReadStrategy::Once && trigger == Trigger::Edge
    }
}

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
    /// Close connections that complete no message for this long.
    pub idle_timeout: Option<Duration>,
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
    pub json: bool,
    /// Print every system call of the event loop on stderr.
    pub trace: bool,
}

/// Runs the server until SIGINT/SIGTERM or the end of `duration`, then prints its
/// statistics. The first line on stdout is `listening on IP:PORT`, printed once every
/// thread runs.
pub fn serve(cfg: &ServeConfig) -> Result<()> {
    control::block_signals()?;
    if let Some(cpu) = cfg.cpu {
        crate::sys::pin_to_cpu(cpu)?;
    }
    crate::sys::raise_nofile_limit()?;

    let registry = Registry::new();
    let tracer = cfg
        .trace
        .then(|| Arc::new(Tracer::new(Box::new(std::io::stderr()))));
    let maker = LoopMaker {
        registry: registry.clone(),
        tracer,
        cfg,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let reuse_port = cfg.model == Model::Reuseport;
    let listener = Listener::bind(cfg.listen, reuse_port)?;
    let addr = listener.local_addr();
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: listening on {addr}, which is not a loopback address: this echo server has no authentication"
        );
    }
    let threads = cfg.threads.max(1);
    let mut wakers = Vec::new();
    let mut loops = Vec::new();
    match cfg.model {
        Model::Reactor => loops.push(maker.make("main", Some(listener), &mut wakers)?),
        Model::Reuseport => {
            loops.push(maker.make("reactor-0", Some(listener), &mut wakers)?);
            for i in 1..threads {
                let more = Listener::bind(addr, true)?;
                loops.push(maker.make(&format!("reactor-{i}"), Some(more), &mut wakers)?);
            }
        }
        Model::Dispatch => {
            let mut inboxes = Vec::new();
            let mut workers = Vec::new();
            for i in 0..threads {
                let worker = maker.make(&format!("worker-{i}"), None, &mut wakers)?;
                let notify = wakers
                    .last()
                    .expect("made above")
                    .try_clone()
                    .context("duplicating a notification pipe")?;
                let inbox = dispatch::Inbox::new(notify);
                inboxes.push(Arc::clone(&inbox));
                workers.push(worker.with_inbox(inbox));
            }
            let main = maker.make("main", Some(listener), &mut wakers)?;
            loops.push(main.with_dispatcher(dispatch::Dispatcher::new(inboxes)));
            loops.extend(workers);
        }
        Model::IoThreads => {
            let pool =
                io_threads::IoPool::start(threads, |name| maker.sys(name), cfg.loop_options)?;
            loops.push(
                maker
                    .make("main", Some(listener), &mut wakers)?
                    .with_io_threads(pool),
            );
        }
    }

    let report = Reporter {
        cfg: cfg.clone(),
        registry: registry.clone(),
        started: Instant::now(),
    };
    let report_sys = maker.sys("report");
    let control_sys = maker.sys("control");
    let stopper = control::Stopper {
        flag: Arc::clone(&maker.stop),
        wakers,
    };
    let snapshot_report = report.clone();
    control::spawn(control_sys, stopper, cfg.duration, move |sys| {
        snapshot_report.print(sys, false)
    })?;
    let mut main = loops.remove(0);
    let others: Vec<_> = loops
        .into_iter()
        .map(|mut l| {
            std::thread::Builder::new()
                .name("event-loop".into())
                .spawn(move || l.run())
                .context("starting an event loop thread")
        })
        .collect::<Result<_>>()?;
    // Only now: every thread of the server runs, so a parent that opens per-thread
    // kernel counters when it reads this line misses none.
    println!("listening on {addr}");
    std::io::stdout().flush().context("writing to stdout")?;

    // The main loop returns when the control thread has told every loop to stop (or
    // on an error, which ends the process: the other loops are not waited for).
    main.run()?;
    for t in others {
        t.join().expect("event loop thread panicked")?;
    }
    drop(main); // closes every client before the final report
    report.print(&report_sys, true);
    Ok(())
}

/// Builds event loops that share one configuration, registry and stop flag.
struct LoopMaker<'a> {
    registry: Registry,
    tracer: Option<Arc<Tracer>>,
    cfg: &'a ServeConfig,
    stop: Arc<AtomicBool>,
}

impl LoopMaker<'_> {
    /// A counted (and maybe traced) door to the kernel for thread `name`.
    fn sys(&self, name: &str) -> Sys {
        Sys::new(self.registry.register(name)).traced(self.tracer.clone())
    }

    /// A loop for thread `name`, with its own multiplexer and wake pipe (whose write
    /// end goes to `wakers`).
    fn make(
        &self,
        name: &str,
        listener: Option<Listener>,
        wakers: &mut Vec<OwnedFd>,
    ) -> Result<EventLoop> {
        let sys = self.sys(name);
        let backend = self.cfg.backend;
        let mux = backend
            .create(sys.clone())
            .with_context(|| format!("creating the {} backend", backend.name()))?;
        let (wake_rx, wake_tx) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
                .context("creating a wake pipe")?;
        wakers.push(wake_tx);
        EventLoop::new(
            sys,
            mux,
            listener,
            wake_rx,
            Arc::clone(&self.stop),
            self.cfg.loop_options,
        )
    }
}

/// Prints statistics in the configured format; shared by SIGUSR1 snapshots and
/// the final report.
#[derive(Clone)]
struct Reporter {
    cfg: ServeConfig,
    registry: Registry,
    started: Instant,
}

impl Reporter {
    fn print(&self, sys: &Sys, is_final: bool) {
        let stats = ServerStats::collect(&self.cfg, &self.registry, self.started, is_final, sys);
        let text = if self.cfg.json {
            let mut line = serde_json::to_string(&stats).expect("statistics serialise");
            line.push('\n');
            line
        } else {
            crate::report::serve::render(&stats)
        };
        // Through the counting layer, so that our count of writes matches the
        // kernel's (/proc/PID/io) even for the report itself.
        let stdout = std::io::stdout();
        let _lock = stdout.lock();
        // A closed stdout leaves nobody to report to.
        let _ = sys.write_all(stdout.as_fd(), text.as_bytes());
    }
}

/// Logs a line on stderr the first time `key` comes up, so that a flood of the
/// same trouble is one line in the log and a count in the statistics.
pub fn log_once(key: &'static str, message: &str) {
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert(key) {
        eprintln!("iobench serve: {message}");
    }
}
