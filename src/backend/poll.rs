//! poll(2). The interest set is an array of `struct pollfd {fd, events, revents}` in
//! our memory: no 1024 limit, but the whole array is copied into the kernel on every
//! call, which checks each entry, and we scan it afterwards for non-zero `revents`.

use super::dense::Dense;
use super::{
    Event, Interest, Multiplexer, Trigger, WaitStats, describe_timeout, ready_count, timeout_ms,
    trace_wait,
};
use crate::sys::{Call, Sys};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

pub struct Poll {
    sys: Sys,
    fds: Dense<libc::pollfd>,
}

impl Poll {
    pub fn new(sys: Sys) -> Self {
        Poll {
            sys,
            fds: Dense::new(),
        }
    }
}

fn poll_events(interest: Interest) -> libc::c_short {
    let mut events = 0;
    if interest.read {
        events |= libc::POLLIN;
    }
    if interest.write {
        events |= libc::POLLOUT;
    }
    events
}

impl Multiplexer for Poll {
    fn name(&self) -> &'static str {
        "poll"
    }

    fn trigger(&self) -> Trigger {
        Trigger::Level
    }

    fn register(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        let pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: poll_events(interest),
            revents: 0,
        };
        self.fds.insert(fd.as_raw_fd(), pfd)
    }

    fn modify(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        self.fds.get_mut(fd.as_raw_fd())?.events = poll_events(interest);
        Ok(())
    }

    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.fds.remove(fd.as_raw_fd())
    }

    fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<WaitStats> {
        events.clear();
        let pfds = self.fds.entries_mut();
        let ready = self.sys.counted(Call::Poll, || {
            // SAFETY: the pointer and length describe our own initialised pollfd array,
            // which the kernel reads and whose `revents` it writes.
            let n = unsafe {
                libc::poll(
                    pfds.as_mut_ptr(),
                    pfds.len() as libc::nfds_t,
                    timeout_ms(timeout),
                )
            };
            ready_count(n.into())
        })?;
        // The linear scan for non-zero revents, until all `ready` entries are found.
        let mut scanned = 0;
        for pfd in pfds.iter() {
            if events.len() == ready {
                break;
            }
            scanned += 1;
            events.extend(ready_event(pfd));
        }
        let nfds = pfds.len();
        let call = || format!("poll(nfds={nfds}, timeout={})", describe_timeout(timeout));
        trace_wait(&self.sys, call, ready, events);
        Ok(WaitStats {
            handed: nfds,
            scanned,
            ready,
        })
    }
}

/// An entry with non-zero `revents` as an [`Event`].
fn ready_event(pfd: &libc::pollfd) -> Option<Event> {
    let r = pfd.revents;
    if r == 0 {
        return None;
    }
    let hangup = r & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0;
    Some(Event {
        fd: pfd.fd,
        readable: r & libc::POLLIN != 0 || hangup,
        writable: r & libc::POLLOUT != 0 || hangup,
        hangup,
    })
}
