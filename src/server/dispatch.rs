//! memcached's dispatch model. The main thread owns the listening socket and only
//! accepts. Each accepted descriptor goes to a worker chosen round-robin: the main
//! thread pushes it onto that worker's mutex-protected queue, then wakes the worker
//! by writing one byte ('c') into the worker's notification pipe. Each worker runs its
//! own event loop with its own multiplexer (or its own io_uring, which polls the
//! pipe), watches its pipe, pops one queue item per byte when woken, and from then on
//! owns the connection.

use super::accept::Accepting;
use super::event_loop::{EventLoop, Role};
use super::listener::Listener;
use super::table::refuse;
use super::{Loop, LoopMaker, log_once, uring};
use crate::backend::Interest;
use crate::sys::{Stat, Sys};
use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

/// The byte that says "a new connection is in your queue" (memcached's 'c').
const NEW_CONNECTION: u8 = b'c';

/// The acceptor first (it runs on the calling thread), then `threads` workers:
/// completion loops for io-uring, else readiness loops.
pub fn build(maker: &mut LoopMaker, listener: Listener) -> Result<Vec<Box<dyn Loop>>> {
    let mut handles = Vec::new();
    let mut loops: Vec<Box<dyn Loop>> = Vec::new();
    for i in 0..maker.threads() {
        let name = format!("worker-{i}");
        let (inbox, handle) = Inbox::new()?;
        handles.push(handle);
        loops.push(if maker.completion() {
            Box::new(maker.ring(&name, uring::Role::Worker(inbox))?)
        } else {
            let mut core = maker.core(&name)?;
            core.watch(inbox.notify.as_fd(), Interest::READ)
                .context("watching the notification pipe")?;
            Box::new(EventLoop::new(core, Role::Worker(inbox)))
        });
    }
    let workers = Workers {
        workers: handles,
        next: 0,
    };
    let acceptor: Box<dyn Loop> = if maker.completion() {
        Box::new(maker.ring("main", uring::Role::Acceptor(listener, workers))?)
    } else {
        let mut core = maker.core("main")?;
        let accepting = Accepting::new(listener, &mut core)?;
        Box::new(EventLoop::new(core, Role::Acceptor(accepting, workers)))
    };
    loops.insert(0, acceptor);
    Ok(loops)
}

/// A worker's connection queue (memcached's CQ), shared with the acceptor.
#[derive(Default)]
struct Queue(Mutex<VecDeque<OwnedFd>>);

impl Queue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<OwnedFd>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the acceptor keeps of one worker: its queue, and its pipe's write end.
struct WorkerHandle {
    queue: Arc<Queue>,
    notify: OwnedFd,
}

/// The acceptor's side: where the next connection goes.
pub struct Workers {
    workers: Vec<WorkerHandle>,
    next: usize,
}

impl Workers {
    /// memcached's dispatch_conn_new: the next worker round-robin, the connection
    /// onto its queue, then one byte down its pipe.
    pub fn hand_off(&mut self, sys: &Sys, fd: OwnedFd) {
        let worker = &self.workers[self.next];
        self.next = (self.next + 1) % self.workers.len();
        worker.queue.lock().push_back(fd);
        match sys.write(worker.notify.as_fd(), &[NEW_CONNECTION]) {
            Ok(_) => sys.counters().add(Stat::Dispatched, 1),
            Err(e) => {
                // No byte, no pop: the worker would never take it. Take it back (it is
                // the last one queued, and no byte stands for it) and close it. A full
                // pipe means the worker is 64 KiB of notices behind.
                log_once("notify", &format!("cannot notify a worker ({e}): closing"));
                if let Some(fd) = worker.queue.lock().pop_back() {
                    refuse(sys, fd, Stat::RefusedWorkerBusy);
                }
            }
        }
    }
}

/// A worker's side: its queue and the read end of its notification pipe.
pub struct Inbox {
    queue: Arc<Queue>,
    notify: OwnedFd,
}

impl Inbox {
    /// A notification pipe (for the worker's loop to watch), and the acceptor's
    /// handle.
    fn new() -> Result<(Inbox, WorkerHandle)> {
        let (rx, tx) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
                .context("creating a worker's notification pipe")?;
        let queue = Arc::new(Queue::default());
        let handle = WorkerHandle {
            queue: Arc::clone(&queue),
            notify: tx,
        };
        Ok((Inbox { queue, notify: rx }, handle))
    }

    pub fn is(&self, fd: RawFd) -> bool {
        self.notify.as_raw_fd() == fd
    }

    /// The read end of the notification pipe.
    pub fn fd(&self) -> RawFd {
        self.notify.as_raw_fd()
    }

    /// memcached's thread_libevent_process: each byte read from the pipe stands for
    /// one connection in the queue; pop them, for the worker to serve from now on.
    pub fn take_connections(&self, sys: &Sys) -> Vec<OwnedFd> {
        let mut taken = Vec::new();
        let mut notices = [0u8; 64];
        loop {
            let n = match sys.read(self.notify.as_fd(), &mut notices) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return taken, // EAGAIN: every notice is read
            };
            for _ in notices[..n].iter().filter(|&&b| b == NEW_CONNECTION) {
                match self.queue.lock().pop_front() {
                    Some(fd) => taken.push(fd),
                    None => log_once("queue", "a notice without a queued connection"),
                }
            }
            // A pipe that returns less than asked is empty: skip the EAGAIN read
            // (under edge triggering, bytes written later make a new edge).
            if n < notices.len() {
                return taken;
            }
        }
    }
}
