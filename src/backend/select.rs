//! select(2). The interest set lives in our memory; before every call it is copied
//! into two fresh fd_set bitmaps (the kernel overwrites them with the result), the
//! kernel checks every bit up to the highest descriptor, and afterwards we scan every
//! watched descriptor to find the ready ones: O(n) in descriptors watched, ready or
//! not. An fd_set has FD_SETSIZE (1024) bits: descriptor 1024 cannot be watched at all.

use super::dense::Dense;
use super::{
    Event, Interest, Multiplexer, Trigger, WaitStats, describe_timeout, ready_count, trace_wait,
};
use crate::sys::{Call, Sys};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr;
use std::time::Duration;

/// The highest descriptor an fd_set can hold: it has FD_SETSIZE bits, 0..FD_SETSIZE-1.
pub(super) const MAX_FD: usize = libc::FD_SETSIZE - 1;

pub struct Select {
    sys: Sys,
    watched: Dense<Interest>,
}

impl Select {
    pub fn new(sys: Sys) -> Self {
        Select {
            sys,
            watched: Dense::new(),
        }
    }
}

impl Multiplexer for Select {
    fn name(&self) -> &'static str {
        "select"
    }

    fn trigger(&self) -> Trigger {
        Trigger::Level
    }

    fn register(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        check_fd(fd.as_raw_fd())?;
        self.watched.insert(fd.as_raw_fd(), interest)
    }

    fn modify(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        *self.watched.get_mut(fd.as_raw_fd())? = interest;
        Ok(())
    }

    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.watched.remove(fd.as_raw_fd())
    }

    fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<WaitStats> {
        events.clear();
        // The interest set is ours: both bitmaps are built anew for every call.
        let (mut rset, mut wset, nfds) = self.fd_sets();
        let mut tv = timeout.map(timeval);
        let ready = self.sys.counted(Call::Select, || {
            let tv = tv.as_mut().map_or(ptr::null_mut(), ptr::from_mut);
            // SAFETY: both sets are initialised and live across the call, and the
            // kernel reads and writes only their first `nfds` bits, at most FD_SETSIZE
            // (check_fd); the timeout is null or points at a live timeval.
            let n = unsafe { libc::select(nfds, &mut rset, &mut wset, ptr::null_mut(), tv) };
            ready_count(n.into())
        })?;
        // The linear scan: every watched descriptor is tested, until all ready ones
        // (select counts a descriptor once per set it is ready in) are found.
        let (mut found, mut scanned) = (0, 0);
        for (fd, _) in self.watched.iter() {
            if found == ready {
                break;
            }
            scanned += 1;
            let (r, w) = (contains(&rset, fd), contains(&wset, fd));
            if r || w {
                found += r as usize + w as usize;
                events.push(Event {
                    fd,
                    readable: r,
                    writable: w,
                    hangup: false,
                });
            }
        }
        let call = || self.describe_call(nfds, timeout);
        trace_wait(&self.sys, call, ready, events);
        Ok(WaitStats {
            handed: self.watched.len(),
            scanned,
            ready: events.len(),
        })
    }
}

impl Select {
    /// Both bitmaps from the interest table (select overwrites them with its
    /// result), and `nfds`: the highest descriptor + 1.
    fn fd_sets(&self) -> (libc::fd_set, libc::fd_set, libc::c_int) {
        let (mut rset, mut wset) = (empty_set(), empty_set());
        let mut nfds = 0;
        for (fd, interest) in self.watched.iter() {
            if interest.read {
                insert(&mut rset, fd);
            }
            if interest.write {
                insert(&mut wset, fd);
            }
            nfds = nfds.max(fd + 1);
        }
        (rset, wset, nfds)
    }

    /// The call as a trace shows it: `select(nfds=8, read={5,7}, write={}, timeout=-1)`.
    fn describe_call(&self, nfds: RawFd, timeout: Option<Duration>) -> String {
        let set = |want: fn(&Interest) -> bool| -> String {
            let fds: Vec<String> = self
                .watched
                .iter()
                .filter(|(_, i)| want(i))
                .map(|(fd, _)| fd.to_string())
                .collect();
            format!("{{{}}}", fds.join(","))
        };
        format!(
            "select(nfds={nfds}, read={}, write={}, timeout={})",
            set(|i| i.read),
            set(|i| i.write),
            describe_timeout(timeout)
        )
    }
}

/// Refuses what an fd_set cannot hold, with an error that says what to use instead
/// (C's FD_SET would write past the bitmap; the libc crate's panics).
fn check_fd(fd: RawFd) -> io::Result<()> {
    if usize::try_from(fd).is_ok_and(|fd| fd <= MAX_FD) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "select cannot watch descriptor {fd}: an fd_set holds descriptors 0..{MAX_FD} only (FD_SETSIZE); use poll or epoll"
        ),
    ))
}

fn empty_set() -> libc::fd_set {
    let mut set = MaybeUninit::<libc::fd_set>::uninit();
    // SAFETY: FD_ZERO initialises every bit of the set it is given.
    unsafe {
        libc::FD_ZERO(set.as_mut_ptr());
        set.assume_init()
    }
}

/// FD_SET for a descriptor that passed `check_fd`.
fn insert(set: &mut libc::fd_set, fd: RawFd) {
    // SAFETY: `set` is a live, initialised fd_set. (The libc crate checks the bit's
    // index against the bitmap and panics rather than write past it.)
    unsafe { libc::FD_SET(fd, set) }
}

/// FD_ISSET for a descriptor that passed `check_fd`.
fn contains(set: &libc::fd_set, fd: RawFd) -> bool {
    // SAFETY: as in `insert`; FD_ISSET only reads.
    unsafe { libc::FD_ISSET(fd, set) }
}

fn timeval(t: Duration) -> libc::timeval {
    libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    }
}
