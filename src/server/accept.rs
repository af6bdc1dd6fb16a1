//! Accepting connections, and what to do when the process runs out of descriptors.

use super::event_loop::Core;
use super::listener::Listener;
use super::table::refuse;
use super::{LoopOptions, log_once};
use crate::backend::Interest;
use crate::sys::{Stat, Sys};
use anyhow::{Context, Result};
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// How soon a loop out of descriptors, with no reserve, tries to accept again.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// A loop's listening socket, watched by its multiplexer, with a spare descriptor.
pub struct Accepting {
    listener: Listener,
    reserve: Reserve,
    /// Accepting stopped (out of descriptors and no reserve): retried when one of
    /// our connections closes, or at this time (another thread may free one).
    retry_at: Option<Instant>,
}

impl Accepting {
    /// Watches `listener` on `core`'s multiplexer.
    pub fn new(listener: Listener, core: &mut Core) -> Result<Accepting> {
        core.watch(listener.fd(), Interest::READ)
            .context("watching the listening socket")?;
        Ok(Accepting {
            reserve: Reserve::open(&core.sys)?,
            listener,
            retry_at: None,
        })
    }

    pub fn is(&self, fd: RawFd) -> bool {
        self.listener.fd().as_raw_fd() == fd
    }

    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Accepts until EAGAIN, giving each connection to `take`: required under edge
    /// triggering, and it empties a burst of connections in one wakeup under level
    /// triggering too.
    pub fn accept_all(&mut self, core: &mut Core, mut take: impl FnMut(&mut Core, OwnedFd)) {
        loop {
            match core.sys.accept4(self.listener.fd()) {
                Ok(fd) => take(core, fd),
                Err(e) => match e.kind() {
                    ErrorKind::WouldBlock => return,
                    ErrorKind::Interrupted | ErrorKind::ConnectionAborted => continue,
                    _ if is_out_of_fds(&e) => {
                        match self.reserve.shed_one(&core.sys, self.listener.fd()) {
                            Some(true) => {}
                            Some(false) => return,
                            None => return self.pause(core),
                        }
                    }
                    _ => {
                        log_once("accept", &format!("accept4 failed: {e}"));
                        return;
                    }
                },
            }
        }
    }

    /// Without a reserve descriptor (another thread took the one we freed), stop
    /// watching the listener until one of our connections closes or a retry 100 ms
    /// later: better a queue in the kernel's backlog than a busy loop.
    fn pause(&mut self, core: &mut Core) {
        if core
            .rewatch(self.listener.fd(), Interest::default())
            .is_ok()
        {
            self.retry_at = Some(Instant::now() + ACCEPT_RETRY);
        }
    }

    /// Once paused: resume when one of the loop's connections has closed since, or
    /// the retry time has come.
    pub fn resume_if_due(&mut self, core: &mut Core) {
        let freed = core.take_freed();
        let Some(at) = self.retry_at else { return };
        if !freed && Instant::now() < at {
            return;
        }
        if !self.reserve.refill(&core.sys) {
            // Still out of descriptors: try again later.
            self.retry_at = Some(Instant::now() + ACCEPT_RETRY);
            return;
        }
        if core.rewatch(self.listener.fd(), Interest::READ).is_ok() {
            self.retry_at = None;
        }
    }
}

/// Whether a new connection, with `open` served already, may be served (below
/// `--max-conns`; said once when not, and the caller refuses it), its socket options
/// then set: what every loop does with a client it accepts or is handed.
pub fn admissible(sys: &Sys, opts: &LoopOptions, open: usize, fd: BorrowedFd) -> bool {
    if open >= opts.max_conns {
        log_once(
            "max-conns",
            &format!(
                "refusing connections past --max-conns {} (counted in the statistics)",
                opts.max_conns
            ),
        );
        return false;
    }
    if let Err(e) = sys.set_nodelay(fd) {
        log_once("nodelay", &format!("TCP_NODELAY not set: {e}"));
    }
    if let Some(bytes) = opts.send_buffer
        && let Err(e) = sys.set_send_buffer(fd, bytes)
    {
        log_once("sndbuf", &format!("SO_SNDBUF not set: {e}"));
    }
    true
}

/// A spare descriptor, given up to accept-and-close one client when out of them.
pub struct Reserve(Option<OwnedFd>);

impl Reserve {
    pub fn open(sys: &Sys) -> Result<Reserve> {
        let fd = sys
            .open_dev_null()
            .context("opening the reserve descriptor")?;
        Ok(Reserve(Some(fd)))
    }

    /// Out of descriptors: give up the reserve, accept the waiting client into it and
    /// close it at once (it learns immediately, and the listener stops being ready
    /// instead of making the loop spin), then take the reserve back. Returns whether
    /// a client was shed, i.e. whether more may be waiting (accept4 says EMFILE
    /// before it looks at the backlog, so EMFILE alone does not mean anyone waits);
    /// None without a reserve (another thread took the descriptor we freed).
    pub fn shed_one(&mut self, sys: &Sys, listener: BorrowedFd<'_>) -> Option<bool> {
        log_once(
            "emfile",
            "out of file descriptors: closing new connections at once until some are freed",
        );
        sys.close(self.0.take()?);
        let shed = sys.accept4(listener).ok();
        let more = shed.is_some();
        if let Some(fd) = shed {
            refuse(sys, fd, Stat::RefusedNoFds);
        }
        self.0 = sys.open_dev_null().ok();
        Some(more)
    }

    /// Takes a spare descriptor again if it has none; whether it has one now.
    pub fn refill(&mut self, sys: &Sys) -> bool {
        if self.0.is_none() {
            self.0 = sys.open_dev_null().ok();
        }
        self.0.is_some()
    }
}

pub fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}
