//! select(2). The interest set lives in our memory; before every call it is copied
//! into two fresh fd_set bitmaps (the kernel overwrites them with the result), the
//! kernel checks every bit up to the highest descriptor, and afterwards we scan every
//! watched descriptor to find the ready ones: O(n) in descriptors watched, ready or
//! not. An fd_set has FD_SETSIZE (1024) bits: descriptor 1024 cannot be watched at all.

use super::dense::Dense;
use super::{
    Event, Interest, Multiplexer, Trigger, WaitStats, describe_events, describe_timeout,
    ready_count,
};
use crate::sys::{Call, Sys};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

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

/// Refuses what an fd_set cannot hold: FD_SET on descriptor 1024 or higher would
/// write past the bitmap (nix's `FdSet::insert` panics there instead).
fn check_fd(fd: RawFd) -> io::Result<()> {
    if fd < 0 || fd as usize >= libc::FD_SETSIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "select cannot watch descriptor {fd}: an fd_set holds descriptors 0..{} only (FD_SETSIZE); use poll or epoll",
                libc::FD_SETSIZE - 1
            ),
        ));
    }
    Ok(())
}

fn empty_set() -> libc::fd_set {
    let mut set = MaybeUninit::<libc::fd_set>::uninit();
    // SAFETY: FD_ZERO initialises every bit of the set it is given.
    unsafe {
        libc::FD_ZERO(set.as_mut_ptr());
        set.assume_init()
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
        // Rebuild both bitmaps from the interest table: select overwrites them.
        let (mut rset, mut wset) = (empty_set(), empty_set());
        let mut max_fd = -1;
        for (fd, interest) in self.watched.iter() {
            // SAFETY: every registered fd passed check_fd, so it is inside the bitmap.
            unsafe {
                if interest.read {
                    libc::FD_SET(fd, &mut rset);
                }
                if interest.write {
                    libc::FD_SET(fd, &mut wset);
                }
            }
            max_fd = max_fd.max(fd);
        }
        let mut tv = timeout.map(|t| libc::timeval {
            tv_sec: t.as_secs() as libc::time_t,
            tv_usec: t.subsec_micros() as libc::suseconds_t,
        });
        let tv_ptr = tv
            .as_mut()
            .map_or(std::ptr::null_mut(), |tv| tv as *mut libc::timeval);
        let ready = self.sys.counted(Call::Select, || {
            // SAFETY: both sets are initialised and live across the call; the timeout
            // pointer is null or points at a live timeval.
            let n = unsafe {
                libc::select(
                    max_fd + 1,
                    &mut rset,
                    &mut wset,
                    std::ptr::null_mut(),
                    tv_ptr,
                )
            };
            ready_count(n)
        })?;
        // The linear scan: every watched descriptor is tested, until all ready ones
        // (select counts a descriptor once per set it is ready in) are found.
        let mut found = 0;
        let mut scanned = 0;
        for (fd, _) in self.watched.iter() {
            if found == ready {
                break;
            }
            scanned += 1;
            // SAFETY: fd is inside the bitmaps (check_fd), which select initialised.
            let (r, w) = unsafe { (libc::FD_ISSET(fd, &rset), libc::FD_ISSET(fd, &wset)) };
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
        self.sys.trace(|| {
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
                "select(nfds={}, read={}, write={}, timeout={}) = {ready} {}",
                max_fd + 1,
                set(|i| i.read),
                set(|i| i.write),
                describe_timeout(timeout),
                describe_events(events)
            )
        });
        Ok(WaitStats {
            handed: self.watched.len(),
            scanned,
            ready: events.len(),
        })
    }
}
