//! epoll(7). The interest set lives in the kernel (a red-black tree): each descriptor
//! is registered once with epoll_ctl, and epoll_wait copies out only the ready ones
//! (kept on a ready list), so a wakeup costs in proportion to what is *ready*, not to
//! what is watched. With EPOLLET a descriptor is reported once per change of state.

use super::{
    Event, Interest, Multiplexer, Trigger, WaitStats, describe_interest, describe_timeout,
    ready_count, timeout_ms, trace_wait,
};
use crate::sys::outcome;
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

impl Epoll {
    fn trace_ctl(&self, op: &str, fd: BorrowedFd<'_>, interest: Interest, r: &io::Result<()>) {
        self.sys.trace(|| {
            let et = if self.trigger == Trigger::Edge {
                "|ET"
            } else {
                ""
            };
            let r = r.as_ref().map(|_| 0);
            format!(
                "epoll_ctl({op}, fd {}, {}{et}) {}",
                fd.as_raw_fd(),
                describe_interest(interest),
                outcome(&r)
            )
        });
    }

    fn wait_precise(&mut self, t: Duration) -> io::Result<usize> {
        let ts = libc::timespec {
            tv_sec: t.as_secs() as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        };
        self.sys.counted(Call::EpollPwait2, || {
            // SAFETY: the event buffer is ours, initialised, and its length is passed;
            // the timespec lives across the call; a null sigmask leaves the mask alone.
            let n = unsafe {
                libc::epoll_pwait2(
                    self.epoll.0.as_raw_fd(),
                    self.ready.as_mut_ptr().cast(),
                    self.ready.len() as libc::c_int,
                    &ts,
                    std::ptr::null(),
                )
            };
            ready_count(n)
        })
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
        let r = self
            .sys
            .counted(Call::EpollCtl, || Ok(self.epoll.add(fd, event)?));
        self.trace_ctl("ADD", fd, interest, &r);
        r
    }

    fn modify(&mut self, fd: BorrowedFd<'_>, interest: Interest) -> io::Result<()> {
        let mut event = self.event(fd, interest);
        let r = self
            .sys
            .counted(Call::EpollCtl, || Ok(self.epoll.modify(fd, &mut event)?));
        self.trace_ctl("MOD", fd, interest, &r);
        r
    }

    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let r = self
            .sys
            .counted(Call::EpollCtl, || Ok(self.epoll.delete(fd)?));
        self.trace_ctl("DEL", fd, Interest::default(), &r);
        r
    }

    fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<WaitStats> {
        events.clear();
        let n = match timeout {
            // A timeout with a sub-millisecond part (an open-loop client pacing its
            // requests) needs epoll_pwait2's nanoseconds: epoll_wait would round it.
            Some(t) if t.subsec_nanos() % 1_000_000 != 0 => self.wait_precise(t)?,
            _ => {
                let ms = EpollTimeout::try_from(timeout_ms(timeout)).unwrap_or(EpollTimeout::MAX);
                self.sys.counted(Call::EpollWait, || {
                    match self.epoll.wait(&mut self.ready, ms) {
                        Err(Errno::EINTR) => Ok(0),
                        result => Ok(result?),
                    }
                })?
            }
        };
        // Only the ready descriptors come back: nothing to scan but them. (One
        // `extend` reserves once, where a `push` per event checks the capacity each time.)
        events.extend(self.ready[..n].iter().map(|ev| {
            let flags = ev.events();
            let error = flags.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR);
            Event {
                fd: ev.data() as i32,
                readable: flags.contains(EpollFlags::EPOLLIN) || error,
                writable: flags.contains(EpollFlags::EPOLLOUT) || error,
                hangup: error || flags.contains(EpollFlags::EPOLLRDHUP),
            }
        }));
        let max = self.ready.len();
        let call = || {
            format!(
                "epoll_wait(max={max}, timeout={})",
                describe_timeout(timeout)
            )
        };
        trace_wait(&self.sys, call, n, events);
        Ok(WaitStats {
            handed: 0,
            scanned: n,
            ready: n,
        })
    }
}
