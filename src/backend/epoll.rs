//! epoll(7). The interest set lives in the kernel (a red-black tree): each descriptor
//! is registered once with epoll_ctl, and epoll_wait copies out only the ready ones
//! (kept on a ready list), so a wakeup costs in proportion to what is *ready*, not to
//! what is watched. With EPOLLET a descriptor is reported once per change of state.

use super::{Event, Interest, Multiplexer, Trigger, WaitStats};
use crate::sys::{Call, Sys};
use nix::errno::Errno;
use nix::sys::epoll::{self, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Ready events taken per epoll_wait; more stay on the ready list for the next call.
const MAX_EVENTS: usize = 1024;

pub struct Epoll {
    sys: Sys,
    epoll: epoll::Epoll,
    trigger: Trigger,
    ready: Vec<EpollEvent>,
}

impl Epoll {
    pub fn new(sys: Sys, trigger: Trigger) -> io::Result<Self> {
        let epoll = epoll::Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        Ok(Epoll {
            sys,
            epoll,
            trigger,
            ready: vec![EpollEvent::empty(); MAX_EVENTS],
        })
    }

    fn event(&self, fd: BorrowedFd<'_>, interest: Interest) -> EpollEvent {
        let mut flags = EpollFlags::empty();
        flags.set(EpollFlags::EPOLLIN, interest.read);
        flags.set(EpollFlags::EPOLLOUT, interest.write);
        flags.set(EpollFlags::EPOLLET, self.trigger == Trigger::Edge);
        // Ask to be told when the peer half-closes: under edge triggering a FIN that
        // arrived with the last data is otherwise indistinguishable from plain data.
        flags.set(EpollFlags::EPOLLRDHUP, interest.read);
        EpollEvent::new(flags, fd.as_raw_fd() as u64)
    }
}

impl Multiplexer for Epoll {
    fn name(&self) -> &'static str {
        match self.trigger {
            Trigger::Level => "epoll-lt",
            Trigger::Edge => "epoll-et",
        }
    }

    fn trigger(&self) -> Trigger {
        self.trigger
    }

    fn register(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        let event = self.event(fd, interest);
        self.sys
            .counted(Call::EpollCtl, || Ok(self.epoll.add(fd, event)?))
    }

    fn modify(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        let mut event = self.event(fd, interest);
        self.sys
            .counted(Call::EpollCtl, || Ok(self.epoll.modify(fd, &mut event)?))
    }

    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.sys
            .counted(Call::EpollCtl, || Ok(self.epoll.delete(fd)?))
    }

    fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<WaitStats> {
        events.clear();
        let timeout = match timeout {
            None => EpollTimeout::NONE,
            Some(t) => EpollTimeout::try_from(t).unwrap_or(EpollTimeout::MAX),
        };
        let n = self.sys.counted(Call::EpollWait, || {
            match self.epoll.wait(&mut self.ready, timeout) {
                Err(Errno::EINTR) => Ok(0),
                result => Ok(result?),
            }
        })?;
        // Only the ready descriptors come back: nothing to scan but them.
        for ev in &self.ready[..n] {
            let flags = ev.events();
            let error = flags.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR);
            events.push(Event {
                fd: ev.data() as i32,
                readable: flags.contains(EpollFlags::EPOLLIN) || error,
                writable: flags.contains(EpollFlags::EPOLLOUT) || error,
                hangup: error || flags.contains(EpollFlags::EPOLLRDHUP),
            });
        }
        Ok(WaitStats {
            handed: 0,
            scanned: n,
            ready: n,
        })
    }
}
