//! Readiness multiplexers: one small trait, one file per system call.
//!
//! Like Redis's ae_select.c / ae_epoll.c, the event loop knows nothing of any system
//! call: it registers descriptors with an [`Interest`], waits, and handles the
//! [`Event`]s it gets back. The differences between the models *are* the differences
//! between the files of this folder.
//!
//! Layer: above `sys`; the only place that names a multiplexing system call.

mod dense;
mod epoll;
mod poll;
mod polling;
mod select;

use crate::names::named_enum;
use crate::sys::Sys;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

named_enum! {
    /// When the kernel reports a descriptor.
    pub enum Trigger {
        /// Reported on every wait while the condition holds (data unread, space to write).
        Level => "level",
        /// Reported once per change of state: the program must read (or write) until
        /// EAGAIN, or what is left is never reported again.
        Edge => "edge",
        /// Not a report of readiness at all: the kernel reports operations done (an
        /// accept, a recv with its bytes, a send), reaped from a completion ring.
        Completion => "completion",
    }
}

/// What a descriptor is watched for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
    pub const BOTH: Interest = Interest {
        read: true,
        write: true,
    };
}

/// One ready descriptor, as reported by one wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub fd: RawFd,
    /// Data (or end of file, or an error) can be read.
    pub readable: bool,
    /// Space in the send buffer (or an error) to be found by writing.
    pub writable: bool,
    /// The peer hung up (closed or half-closed its side; EPOLLRDHUP/EPOLLHUP), or
    /// an error: end of file may follow the data still queued.
    pub hangup: bool,
}

/// What one wait cost, beyond the system call itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitStats {
    /// Descriptors handed to the kernel by this call (select, poll: all watched ones;
    /// epoll: none, the interest set already lives in the kernel).
    pub handed: usize,
    /// Entries our code looked at after the call to find the ready ones.
    pub scanned: usize,
    /// Ready events returned.
    pub ready: usize,
}

/// A readiness multiplexer. Contract: a descriptor is deregistered before it is
/// closed, or outlives the multiplexer (the `polling` crate's rule; select and poll
/// would otherwise keep a stale entry in their tables).
pub trait Multiplexer: Send {
    /// The name it is chosen by on the command line.
    fn name(&self) -> &'static str;
    fn trigger(&self) -> Trigger;
    fn register(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()>;
    fn modify(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()>;
    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()>;
    /// Waits until at least one watched descriptor is ready or `timeout` passes
    /// (`None`: forever), replacing the contents of `events` with the ready ones.
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>)
    -> io::Result<WaitStats>;
}

named_enum! {
    /// The backends, chosen by name at run time.
    pub enum Backend {
        /// select(2): fd_set bitmaps rebuilt before every call, level-triggered, fds < 1024
        Select => "select",
        /// poll(2): a pollfd array, level-triggered
        Poll => "poll",
        /// epoll(7) level-triggered
        EpollLt => "epoll-lt",
        /// epoll(7) edge-triggered (EPOLLET)
        EpollEt => "epoll-et",
        /// the `polling` crate (level mode): what a portable library costs
        Polling => "polling",
        /// io_uring(7): the completion model, operations submitted and reaped through
        /// rings (its own event loop, not a multiplexer); reactor, reuseport and
        /// dispatch models
        IoUring => "io-uring",
    }
}

impl Backend {
    /// A readiness multiplexer of this backend. io-uring has none: it is served by
    /// the completion loop (`server::uring`), and asking it for one is refused.
    pub fn create(self, sys: Sys) -> io::Result<Box<dyn Multiplexer>> {
        Ok(match self {
            Backend::Select => Box::new(select::Select::new(sys)),
            Backend::Poll => Box::new(poll::Poll::new(sys)),
            Backend::EpollLt => Box::new(epoll::Epoll::new(sys, Trigger::Level)?),
            Backend::EpollEt => Box::new(epoll::Epoll::new(sys, Trigger::Edge)?),
            Backend::Polling => Box::new(polling::Polling::new(sys)?),
            Backend::IoUring => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "io-uring is a completion model, not a readiness multiplexer: it has \
                     an event loop of its own",
                ));
            }
        })
    }

    pub fn trigger(self) -> Trigger {
        match self {
            Backend::EpollEt => Trigger::Edge,
            Backend::IoUring => Trigger::Completion,
            _ => Trigger::Level,
        }
    }

    /// The backends that are readiness multiplexers (every one but io-uring).
    pub fn readiness() -> impl Iterator<Item = Backend> {
        Backend::ALL
            .iter()
            .copied()
            .filter(|b| b.trigger() != Trigger::Completion)
    }

    /// The highest descriptor this backend can watch, when it has a limit of its own
    /// (select: an fd_set holds descriptors 0..FD_SETSIZE-1).
    pub fn max_fd(self) -> Option<usize> {
        match self {
            Backend::Select => Some(select::MAX_FD),
            _ => None,
        }
    }

    /// Descriptors one multiplexer of this backend holds open: select and poll keep
    /// their interest set in our memory (none); epoll has its own; the polling crate
    /// adds an eventfd (its notifier) and a timerfd (its timeouts) to its epoll;
    /// io_uring's loop holds its ring's descriptor.
    pub fn descriptors(self) -> usize {
        match self {
            Backend::Select | Backend::Poll => 0,
            Backend::EpollLt | Backend::EpollEt | Backend::IoUring => 1,
            Backend::Polling => 3,
        }
    }

    /// Whether our counting layer sees every system call this backend makes. The
    /// polling crate makes calls of its own inside each wait (timerfd_settime,
    /// epoll_ctl, an eventfd read), which only the kernel's count sees.
    pub fn counts_every_call(self) -> bool {
        self != Backend::Polling
    }
}

/// Prints one wait as strace would: the call, what it returned, and the events:
/// `poll(nfds=2, timeout=-1) = 1 [fd 5: IN]`. `call` runs only when tracing.
fn trace_wait(sys: &Sys, call: impl FnOnce() -> String, returned: usize, events: &[Event]) {
    sys.trace(|| format!("{} = {returned} {}", call(), describe_events(events)));
}

/// Events as a trace shows them: `[fd 5: IN, fd 7: IN|OUT]`.
fn describe_events(events: &[Event]) -> String {
    let list: Vec<String> = events
        .iter()
        .map(|e| {
            let mut what = Vec::new();
            if e.readable {
                what.push("IN");
            }
            if e.writable {
                what.push("OUT");
            }
            if e.hangup {
                what.push("HUP");
            }
            format!("fd {}: {}", e.fd, what.join("|"))
        })
        .collect();
    format!("[{}]", list.join(", "))
}

/// An interest as a trace shows it.
fn describe_interest(i: Interest) -> &'static str {
    match (i.read, i.write) {
        (true, true) => "IN|OUT",
        (true, false) => "IN",
        (false, true) => "OUT",
        (false, false) => "-",
    }
}

/// A timeout as a trace shows it.
fn describe_timeout(timeout: Option<Duration>) -> String {
    timeout.map_or("-1".into(), |t| format!("{}us", t.as_micros()))
}

/// A wait timeout in milliseconds as poll(2) and epoll_wait(2) take it: -1 is forever;
/// a sub-millisecond remainder rounds up so that a short timeout never spins.
fn timeout_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(t) => i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
    }
}

/// The result of a wait call as a count of ready descriptors (a `c_long`, as
/// syscall(2) returns it; select, poll and epoll_wait return a `c_int`). An
/// interrupted wait is an empty one: the loop simply waits again.
fn ready_count(n: libc::c_long) -> io::Result<usize> {
    if n >= 0 {
        return Ok(n as usize);
    }
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::Interrupted => Ok(0),
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Registry;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsFd, AsRawFd};

    fn mux(backend: Backend) -> Box<dyn Multiplexer> {
        backend
            .create(Sys::new(Registry::new().register("test")))
            .unwrap()
    }

    /// A connected loopback pair; the second end is non-blocking.
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    fn wait(m: &mut dyn Multiplexer, ms: u64) -> (Vec<Event>, WaitStats) {
        let mut events = Vec::new();
        let stats = m
            .wait(&mut events, Some(Duration::from_millis(ms)))
            .unwrap();
        (events, stats)
    }

    #[test]
    fn level_reports_unread_data_again_edge_does_not() {
        for backend in Backend::readiness() {
            let mut m = mux(backend);
            let (mut peer, sock) = pair();
            m.register(sock.as_fd(), Interest::READ).unwrap();
            peer.write_all(b"hello").unwrap();
            let (events, _) = wait(m.as_mut(), 2000);
            assert_eq!(events.len(), 1, "{backend:?}");
            assert_eq!(events[0].fd, sock.as_raw_fd());
            assert!(events[0].readable && !events[0].writable, "{backend:?}");
            // Nothing was read: level triggering says so again, edge triggering not.
            let (again, _) = wait(m.as_mut(), 50);
            if backend.trigger() == Trigger::Level {
                assert_eq!(again.len(), 1, "{backend:?}");
            } else {
                assert!(again.is_empty(), "{backend:?}");
            }
            // New data is a new edge: every backend reports it.
            peer.write_all(b"more").unwrap();
            let (more, _) = wait(m.as_mut(), 2000);
            assert_eq!(more.len(), 1, "{backend:?}");
            m.deregister(sock.as_fd()).unwrap();
        }
    }

    #[test]
    fn interest_changes_are_honoured() {
        for backend in Backend::readiness() {
            let mut m = mux(backend);
            let (_peer, sock) = pair();
            m.register(sock.as_fd(), Interest::READ).unwrap();
            assert!(
                wait(m.as_mut(), 20).0.is_empty(),
                "{backend:?}: idle socket"
            );
            m.modify(sock.as_fd(), Interest::BOTH).unwrap();
            let (events, _) = wait(m.as_mut(), 2000);
            assert_eq!(events.len(), 1, "{backend:?}");
            assert!(events[0].writable && !events[0].readable, "{backend:?}");
            m.deregister(sock.as_fd()).unwrap();
            assert!(
                wait(m.as_mut(), 20).0.is_empty(),
                "{backend:?}: deregistered"
            );
        }
    }

    #[test]
    fn select_and_poll_scan_everything_epoll_only_the_ready() {
        for backend in Backend::readiness() {
            let mut m = mux(backend);
            let pairs: Vec<_> = (0..20).map(|_| pair()).collect();
            for (_, sock) in &pairs {
                m.register(sock.as_fd(), Interest::READ).unwrap();
            }
            // Make the first registered one ready: the scan of select and poll stops
            // there, so wake the last one to see the whole array walked.
            let (mut peer, sock) = (pairs[19].0.try_clone().unwrap(), &pairs[19].1);
            peer.write_all(b"x").unwrap();
            let (events, stats) = wait(m.as_mut(), 2000);
            assert_eq!(events.len(), 1, "{backend:?}");
            assert_eq!(events[0].fd, sock.as_raw_fd());
            assert_eq!(stats.ready, 1);
            match backend {
                Backend::Select | Backend::Poll => {
                    assert_eq!(stats.handed, 20, "{backend:?}");
                    assert_eq!(stats.scanned, 20, "{backend:?}");
                }
                _ => {
                    assert_eq!(stats.handed, 0, "{backend:?}");
                    assert_eq!(stats.scanned, 1, "{backend:?}");
                }
            }
        }
    }

    /// The completion model has no readiness multiplexer to give: asking is refused,
    /// with the reason, not answered with a stand-in.
    #[test]
    fn io_uring_is_no_readiness_multiplexer() {
        let err = Backend::IoUring
            .create(Sys::new(Registry::new().register("test")))
            .err()
            .expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(Backend::readiness().all(|b| b != Backend::IoUring));
    }
}
