//! One event loop: a multiplexer, the connections it owns, and (in the reactor) the
//! listener. It knows nothing of any particular system call: everything goes through
//! the `Multiplexer` trait and the counting layer.

use super::connection::{Connection, Io, Outcome};
use super::listener::Listener;
use super::{LoopOptions, log_once};
use crate::backend::{Event, Interest, Multiplexer};
use crate::sys::{Stat, Sys};
use anyhow::{Context, Result};
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct EventLoop {
    sys: Sys,
    mux: Box<dyn Multiplexer>,
    listener: Option<Listener>,
    /// Read end of the wake pipe: a byte here means "look at the stop flag".
    wake: OwnedFd,
    stop: Arc<AtomicBool>,
    opts: LoopOptions,
    /// Connections indexed by descriptor, as Redis indexes its events.
    conns: Vec<Option<Connection>>,
    open: usize,
    /// A spare descriptor, given up to accept-and-close one client when out of them.
    reserve: Option<OwnedFd>,
    /// Accepting stopped (out of descriptors and no reserve); resumes on a close.
    accept_paused: bool,
    buf: Box<[u8]>,
    replies: Vec<u8>,
    events: Vec<Event>,
}

impl EventLoop {
    pub fn new(
        sys: Sys,
        mut mux: Box<dyn Multiplexer>,
        listener: Option<Listener>,
        wake: OwnedFd,
        stop: Arc<AtomicBool>,
        opts: LoopOptions,
    ) -> Result<EventLoop> {
        mux.register(wake.as_fd(), Interest::READ)
            .context("watching the wake pipe")?;
        if let Some(l) = &listener {
            mux.register(l.fd(), Interest::READ)
                .context("watching the listening socket")?;
        }
        let reserve = Some(
            sys.open_dev_null()
                .context("opening the reserve descriptor")?,
        );
        Ok(EventLoop {
            sys,
            mux,
            listener,
            wake,
            stop,
            buf: vec![0; opts.buffer_size].into_boxed_slice(),
            replies: Vec::new(),
            opts,
            conns: Vec::new(),
            open: 0,
            reserve,
            accept_paused: false,
            events: Vec::with_capacity(1024),
        })
    }

    /// Runs until the stop flag is set (and the wake pipe says so).
    pub fn run(&mut self) -> Result<()> {
        while !self.stop.load(Ordering::Acquire) {
            let cost = self
                .mux
                .wait(&mut self.events, None)
                .with_context(|| format!("{} wait failed", self.mux.name()))?;
            let c = self.sys.counters();
            c.add(Stat::Waits, 1);
            c.add(Stat::Wakeups, (cost.ready > 0) as u64);
            c.add(Stat::Events, cost.ready as u64);
            c.add(Stat::Handed, cost.handed as u64);
            c.add(Stat::Scanned, cost.scanned as u64);
            for i in 0..self.events.len() {
                let ev = self.events[i];
                self.dispatch(&ev);
            }
        }
        Ok(())
    }

    fn dispatch(&mut self, ev: &Event) {
        if ev.fd == self.wake.as_raw_fd() {
            self.drain_wake();
        } else if self.listener.as_ref().map(|l| l.fd().as_raw_fd()) == Some(ev.fd) {
            self.accept_all();
        } else {
            self.serve(ev);
        }
    }

    fn serve(&mut self, ev: &Event) {
        let Some(conn) = self.conns.get_mut(ev.fd as usize).and_then(Option::as_mut) else {
            return; // closed earlier in this batch
        };
        let mut io = Io {
            sys: &self.sys,
            buf: &mut self.buf,
            strategy: self.opts.read_strategy,
            max_pending: self.opts.max_pending,
            protocol: self.opts.protocol,
            max_frame: self.opts.max_frame,
            replies: &mut self.replies,
        };
        match conn.on_event(ev, &mut io) {
            Outcome::Open => {
                let wanted = conn.wanted(self.mux.trigger());
                if wanted != conn.registered() {
                    match self.mux.modify(conn.fd(), wanted) {
                        Ok(()) => conn.set_registered(wanted),
                        Err(e) => {
                            log_once("modify", &format!("cannot change interest: {e}"));
                            self.close(ev.fd);
                        }
                    }
                }
            }
            Outcome::Finished => self.close(ev.fd),
            Outcome::Failed(e) => {
                let stat = match e.kind() {
                    ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => Stat::Resets,
                    ErrorKind::InvalidData => {
                        log_once("protocol", &format!("closing a connection: {e}"));
                        Stat::ProtocolErrors
                    }
                    _ => {
                        log_once("io-error", &format!("closing a connection after: {e}"));
                        Stat::IoErrors
                    }
                };
                self.sys.counters().add(stat, 1);
                self.close(ev.fd);
            }
        }
    }

    fn close(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(fd as usize).and_then(Option::take) else {
            return;
        };
        // Deregistering an open descriptor cannot fail unless our own tables are
        // wrong; the descriptor is closed either way.
        let _ = self.mux.deregister(conn.fd());
        self.sys.close(conn.into_fd());
        self.open -= 1;
        self.sys.counters().add(Stat::Closed, 1);
        if self.accept_paused {
            self.resume_accepting();
        }
    }

    fn drain_wake(&mut self) {
        let mut byte = [0u8; 16];
        while let Ok(n) = self.sys.read(self.wake.as_fd(), &mut byte) {
            if n == 0 {
                break;
            }
        }
    }

    /// Accepts until EAGAIN: required under edge triggering, and it empties a burst
    /// of connections in one wakeup under level triggering too.
    fn accept_all(&mut self) {
        while let Some(listener) = &self.listener {
            match self.sys.accept4(listener.fd()) {
                Ok(fd) => self.admit(fd),
                Err(e) => match e.kind() {
                    ErrorKind::WouldBlock => return,
                    ErrorKind::Interrupted | ErrorKind::ConnectionAborted => continue,
                    _ if is_out_of_fds(&e) => {
                        if !self.shed_one() {
                            return;
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

    fn admit(&mut self, fd: OwnedFd) {
        if self.open >= self.opts.max_conns {
            log_once(
                "max-conns",
                &format!(
                    "refusing connections past --max-conns {} (counted in the statistics)",
                    self.opts.max_conns
                ),
            );
            return self.refuse(fd, Stat::RefusedMaxConns);
        }
        if let Err(e) = self.sys.set_nodelay(fd.as_fd()) {
            log_once("nodelay", &format!("TCP_NODELAY not set: {e}"));
        }
        if let Some(bytes) = self.opts.send_buffer
            && let Err(e) = self.sys.set_send_buffer(fd.as_fd(), bytes)
        {
            log_once("sndbuf", &format!("SO_SNDBUF not set: {e}"));
        }
        let interest = Connection::initial_interest(self.mux.trigger());
        if let Err(e) = self.mux.register(fd.as_fd(), interest) {
            log_once(
                "register",
                &format!(
                    "refusing a connection: {e} (further refusals are counted in the statistics)"
                ),
            );
            return self.refuse(fd, Stat::RefusedFdLimit);
        }
        let slot = fd.as_raw_fd() as usize;
        if slot >= self.conns.len() {
            self.conns.resize_with(slot + 1, || None);
        }
        self.conns[slot] = Some(Connection::new(fd, interest));
        self.open += 1;
        self.sys.counters().add(Stat::Accepted, 1);
    }

    fn refuse(&mut self, fd: OwnedFd, why: Stat) {
        self.sys.close(fd);
        self.sys.counters().add(why, 1);
    }

    /// Out of descriptors: give up the reserve, accept the waiting client into it and
    /// close it at once (it learns immediately, and the listener stops being ready
    /// instead of making the loop spin), then take the reserve back. Returns whether
    /// a client was shed, i.e. whether more may be waiting. (accept4 says EMFILE
    /// before it looks at the backlog, so EMFILE alone does not mean anyone waits.)
    fn shed_one(&mut self) -> bool {
        log_once(
            "emfile",
            "out of file descriptors: closing new connections at once until some are freed",
        );
        let Some(reserve) = self.reserve.take() else {
            self.pause_accepting();
            return false;
        };
        self.sys.close(reserve);
        let shed = match &self.listener {
            Some(listener) => self.sys.accept4(listener.fd()).ok(),
            None => None,
        };
        let more = shed.is_some();
        if let Some(fd) = shed {
            self.refuse(fd, Stat::RefusedNoFds);
        }
        self.reserve = self.sys.open_dev_null().ok();
        more
    }

    /// Without a reserve descriptor, stop watching the listener until a connection
    /// closes: better a queue in the kernel's backlog than a busy loop.
    fn pause_accepting(&mut self) {
        if let Some(l) = &self.listener
            && self.mux.modify(l.fd(), Interest::default()).is_ok()
        {
            self.accept_paused = true;
        }
    }

    fn resume_accepting(&mut self) {
        if self.reserve.is_none() {
            self.reserve = self.sys.open_dev_null().ok();
        }
        if let Some(l) = &self.listener
            && self.mux.modify(l.fd(), Interest::READ).is_ok()
        {
            self.accept_paused = false;
        }
    }
}

fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}
