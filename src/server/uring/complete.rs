//! Handling what comes back: each completion to whoever it is for (the accept, a
//! connection's recv or send, the wake pipe, a dispatch worker's notification
//! pipe), and a connection settled after it.

use super::conn::{Conn, Recv};
use super::submit::Op;
use super::{Ring, Role};
use crate::server::accept::{ACCEPT_RETRY, admissible, is_out_of_fds};
use crate::server::log_once;
use crate::server::table::{self, refuse};
use crate::sys::{Stat, outcome};
use io_uring::cqueue;
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::time::Instant;

impl Ring {
    /// One completion, to whoever it is for.
    pub(super) fn complete(&mut self, data: u64, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        if !more {
            self.inflight -= 1;
        }
        let Some((op, fd)) = Op::untag(data) else {
            return;
        };
        self.sys.counters().completed(op.kind());
        self.sys.trace(|| describe(op, fd, res, flags));
        match op {
            Op::Accept => self.accepted(res, more),
            Op::Recv => self.received(fd, res, flags),
            Op::Send => self.sent(fd, res),
            Op::Cancel => {}
            // The stop flag is looked at after this turn; a wake without it (none
            // is sent) would only need the poll again.
            Op::Wake => {
                if !self.stop.load(Ordering::Acquire) {
                    self.arm_wake();
                }
            }
            // A client waits while we are out of descriptors: the accept sheds it.
            Op::Listen => self.arm_accept(),
            Op::Inbox => self.take_connections(fd),
        }
    }

    fn accepted(&mut self, res: i32, more: bool) {
        self.accept_armed = more;
        if res >= 0 {
            // SAFETY: the kernel has just opened this descriptor for us; nothing
            // else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            match &mut self.role {
                Role::Acceptor(_, workers) => workers.hand_off(&self.sys, fd),
                _ => self.admit(fd),
            }
        } else {
            let e = io::Error::from_raw_os_error(-res);
            match -res {
                _ if is_out_of_fds(&e) => self.shed_one(),
                libc::ECONNABORTED | libc::EINTR => {}
                _ => log_once("accept", &format!("accept failed: {e}")),
            }
        }
        if !self.accept_armed && self.retry_at.is_none() && !self.listening {
            self.arm_accept();
        }
    }

    /// Out of descriptors: shed a waiting client through the reserve descriptor. The
    /// accept fails for want of a descriptor before it looks at the backlog, so
    /// nobody may be waiting: then the loop polls the listener and accepts again when
    /// a client comes, rather than fail again at once. Without a reserve (another
    /// loop took the descriptor we freed), accepting pauses until one of ours closes,
    /// or 100 ms.
    fn shed_one(&mut self) {
        let (Some(listener), Some(reserve)) = (self.role.listener(), &mut self.reserve) else {
            return;
        };
        match reserve.shed_one(&self.sys, listener.fd()) {
            Some(true) => {}
            Some(false) => self.arm_listen(),
            None => self.retry_at = Some(Instant::now() + ACCEPT_RETRY),
        }
    }

    /// A dispatch worker's notice: serve the connections queued for it, and watch
    /// its pipe again.
    fn take_connections(&mut self, pipe: RawFd) {
        if let Role::Worker(inbox) = &self.role {
            for fd in inbox.take_connections(&self.sys) {
                self.admit(fd);
            }
        }
        self.arm_inbox(pipe);
    }

    /// Once paused: accept again when one of our connections has closed since, or
    /// the retry time has come.
    pub(super) fn resume_accepting(&mut self) {
        let freed = self.conns.take_freed();
        let Some(at) = self.retry_at else { return };
        if !freed && Instant::now() < at {
            return;
        }
        if let Some(reserve) = &mut self.reserve {
            reserve.refill(&self.sys);
        }
        self.retry_at = None;
        if !self.accept_armed && !self.listening {
            self.arm_accept();
        }
    }

    /// Takes on a new connection and arms its recv.
    fn admit(&mut self, fd: OwnedFd) {
        if !admissible(&self.sys, &self.opts, self.conns.open(), fd.as_fd()) {
            return refuse(&self.sys, fd, Stat::RefusedMaxConns);
        }
        let raw = fd.as_raw_fd();
        let clock = self.opts.idle_timeout.map(|_| Instant::now());
        self.conns.insert(&self.sys, raw, Conn::new(fd, clock));
        self.settle(raw);
    }

    /// A recv completion: bytes in a provided buffer, the end of file, or the end of
    /// the multishot recv (cancelled, out of buffers, an error).
    fn received(&mut self, fd: RawFd, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        let bid = cqueue::buffer_select(flags);
        let Some(conn) = self.conns.get_mut(fd) else {
            // Cannot happen (a connection is released only once its recv has ended);
            // the buffer goes back all the same.
            if let Some(bid) = bid {
                self.buffers.give_back(bid);
            }
            return;
        };
        if !more {
            conn.recv = Recv::Off;
        }
        let mut failure = None;
        match (res, bid) {
            (n, Some(bid)) if n > 0 => {
                self.sys.counters().add(Stat::BytesIn, n as u64);
                if !conn.eof && !conn.closing {
                    let data = self.buffers.bytes(bid, n as usize);
                    let r =
                        conn.absorb(data, &self.opts, &mut self.replies, &self.shared, self.now);
                    if let Err(e) = r {
                        // Answered (the error line is queued): no more input, close
                        // once the answer is out.
                        self.sys.counters().add(table::failure(&e), 1);
                        conn.eof = true;
                    }
                }
                self.buffers.give_back(bid);
            }
            (0, _) => {
                conn.eof = true;
                if !conn.input.is_empty() && !conn.closing {
                    failure = Some(io::Error::new(
                        ErrorKind::InvalidData,
                        "truncated message: the peer closed in the middle of one",
                    ));
                }
            }
            (n, _) if n == -libc::ENOBUFS => {
                // The ring ran dry for a moment: the buffers reaped this turn are back
                // in it by the next enter, which arms the recv again (`settle`).
                self.sys.counters().add(Stat::RecvNoBuffers, 1);
            }
            (n, _) if n == -libc::ECANCELED => {}
            (n, _) if n < 0 && !conn.closing => failure = Some(io::Error::from_raw_os_error(-n)),
            _ => {}
        }
        if let Some(e) = failure {
            self.fail(fd, table::failure(&e));
        }
        self.settle(fd);
    }

    /// A send completion: all of it, part of it (the rest is sent next), or an error.
    fn sent(&mut self, fd: RawFd, res: i32) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(fd) else {
            return;
        };
        conn.sending = false;
        if res > 0 {
            let partial = conn.sent(res as usize, now);
            let c = self.sys.counters();
            c.add(Stat::BytesOut, res as u64);
            c.add(Stat::PartialWrites, partial as u64);
        } else if !conn.closing {
            // A send of some bytes that sends none is an error too.
            let e = match res {
                0 => io::Error::new(ErrorKind::WriteZero, "a send sent nothing"),
                _ => io::Error::from_raw_os_error(-res),
            };
            self.fail(fd, table::failure(&e));
        }
        self.settle(fd);
    }

    /// Closes a connection for `why` (counted): its input is dropped at once, its
    /// operations are cancelled, and its descriptor closes when they have ended.
    pub(super) fn fail(&mut self, fd: RawFd, why: Stat) {
        let Some(conn) = self.conns.get_mut(fd) else {
            return;
        };
        self.shared.budget.change(conn.input.len(), 0);
        conn.input = Default::default();
        conn.closing = true;
        self.sys.counters().add(why, 1);
    }

    /// After anything happened to a connection: submit what it needs next, or let it
    /// go once the kernel holds none of its operations.
    pub(super) fn settle(&mut self, fd: RawFd) {
        let max_pending = self.opts.max_pending;
        let Some(conn) = self.conns.get_mut(fd) else {
            return;
        };
        let next = conn.next(fd, max_pending);
        if let Some(entry) = next.send {
            self.push(entry);
        }
        if next.cancel_recv {
            self.cancel(Op::Recv, fd);
        }
        if next.cancel_send {
            self.cancel(Op::Send, fd);
        }
        if next.arm_recv {
            self.arm_recv(fd);
        }
        self.sys
            .counters()
            .add(Stat::ReadPauses, next.paused as u64);
        if next.release
            && let Some(conn) = self.conns.remove(&self.sys, fd, &self.shared.budget)
        {
            self.sys.close(conn.fd);
        }
    }
}

/// A completion as `--trace` shows it: `recv(fd 7) = 9 [buf 12] MORE`.
fn describe(op: Op, fd: RawFd, res: i32, flags: u32) -> String {
    let result = if res < 0 {
        outcome::<i32, _>(&Err(io::Error::from_raw_os_error(-res)))
    } else {
        format!("= {res}")
    };
    let buf = cqueue::buffer_select(flags).map_or(String::new(), |b| format!(" [buf {b}]"));
    let more = if cqueue::more(flags) { " MORE" } else { "" };
    format!("{}(fd {fd}) {result}{buf}{more}", op.kind())
}
