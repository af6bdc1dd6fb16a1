//! The `polling` crate in level mode: "what a portable library costs". On Linux it
//! wraps epoll, but each `wait` also arms a timerfd, re-arms its own notification
//! eventfd and makes two more epoll_ctl calls. Our layer counts the calls we make into
//! the crate; the system calls it makes inside show up in the kernel's count.

use super::{Event, Interest, Multiplexer, Trigger, WaitStats, describe_timeout, trace_wait};
use crate::sys::{Call, Sys};
use polling::{PollMode, Poller};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

const MAX_EVENTS: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

pub struct Polling {
    sys: Sys,
    poller: Poller,
    ready: polling::Events,
}

impl Polling {
    pub fn new(sys: Sys) -> io::Result<Self> {
        Ok(Polling {
            sys,
            poller: Poller::new()?,
            ready: polling::Events::with_capacity(MAX_EVENTS),
        })
    }
}

fn interest_event(fd: BorrowedFd<'_>, interest: Interest) -> polling::Event {
    polling::Event::new(fd.as_raw_fd() as usize, interest.read, interest.write)
}

impl Multiplexer for Polling {
    fn name(&self) -> &'static str {
        "polling"
    }

    fn trigger(&self) -> Trigger {
        Trigger::Level
    }

    fn register(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        let event = interest_event(fd, interest);
        self.sys.counted(Call::PollingCtl, || {
            // SAFETY: `add_with_mode`'s contract is that the source is deleted from
            // the poller before it is closed: the crate's poll(2)-based backends keep
            // the raw number and would otherwise watch whatever file reuses it. On
            // Linux the crate wraps epoll, whose `add` needs only a descriptor valid
            // for the call (polling 3.11 src/epoll.rs: "the usual condition of
            // remaining registered in the Poller doesn't apply to epoll"), and `fd`
            // is borrowed until we return. The portable contract is kept as well, by
            // the Multiplexer rule: the event loop and the load client deregister a
            // connection before they close it, and what lives as long as a loop (its
            // listener, its wake pipe) is dropped after the loop's multiplexer.
            unsafe {
                self.poller
                    .add_with_mode(fd.as_raw_fd(), event, PollMode::Level)
            }
        })
    }

    fn modify(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        let event = interest_event(fd, interest);
        self.sys.counted(Call::PollingCtl, || {
            self.poller.modify_with_mode(fd, event, PollMode::Level)
        })
    }

    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.sys
            .counted(Call::PollingCtl, || self.poller.delete(fd))
    }

    fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<WaitStats> {
        events.clear();
        self.ready.clear();
        let n = self.sys.counted(Call::PollingWait, || {
            match self.poller.wait(&mut self.ready, timeout) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
                result => result,
            }
        })?;
        for ev in self.ready.iter() {
            let hangup = ev.is_err() == Some(true);
            events.push(Event {
                fd: ev.key as i32,
                readable: ev.readable || hangup,
                writable: ev.writable || hangup,
                hangup,
            });
        }
        let call = || format!("polling::wait(timeout={})", describe_timeout(timeout));
        trace_wait(&self.sys, call, n, events);
        Ok(WaitStats {
            handed: 0,
            scanned: n,
            ready: n,
        })
    }
}
