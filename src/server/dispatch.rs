//! memcached's dispatch model. The main thread owns the listening socket and only
//! accepts. Each accepted descriptor goes to a worker chosen round-robin: the main
//! thread pushes it onto that worker's mutex-protected queue, then wakes the worker
//! by writing one byte ('c') into the worker's notification pipe. Each worker runs its
//! own event loop with its own multiplexer, watches its pipe, pops the queue when
//! woken, and from then on owns the connection.

use super::log_once;
use crate::sys::{Stat, Sys};
use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// A worker's connection queue and the write end of its notification pipe.
pub struct Inbox {
    queue: Mutex<VecDeque<OwnedFd>>,
    notify: OwnedFd,
}

impl Inbox {
    pub fn new(notify: OwnedFd) -> Arc<Inbox> {
        Arc::new(Inbox {
            queue: Mutex::new(VecDeque::new()),
            notify,
        })
    }

    /// The next connection handed over, if any (the worker's side).
    pub fn pop(&self) -> Option<OwnedFd> {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }
}

/// The main thread's side: where the next connection goes.
pub struct Dispatcher {
    workers: Vec<Arc<Inbox>>,
    next: usize,
}

impl Dispatcher {
    pub fn new(workers: Vec<Arc<Inbox>>) -> Dispatcher {
        Dispatcher { workers, next: 0 }
    }

    /// memcached's dispatch_conn_new: queue the connection, then one byte down the pipe.
    pub fn hand_off(&mut self, sys: &Sys, fd: OwnedFd) {
        let worker = &self.workers[self.next];
        self.next = (self.next + 1) % self.workers.len();
        worker
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(fd);
        if let Err(e) = sys.write(worker.notify.as_fd(), b"c") {
            // A full pipe already holds a wake-up; anything else is worth a line.
            if e.kind() != std::io::ErrorKind::WouldBlock {
                log_once("notify", &format!("cannot notify a worker: {e}"));
            }
        }
        sys.counters().add(Stat::Dispatched, 1);
    }
}
