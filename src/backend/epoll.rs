//! epoll(7). The interest set lives in the kernel (a red-black tree): each descriptor
//! is registered once with epoll_ctl, and epoll_wait copies out only the ready ones
//! (kept on a ready list), so a wakeup costs in proportion to what is *ready*, not to
//! what is watched. With EPOLLET a descriptor is reported once per change of state.
//!
//! epoll_wait takes its timeout in milliseconds; a timeout with a finer part goes to
//! epoll_pwait2 (Linux 5.11), which takes nanoseconds, where the kernel has it, and
//! otherwise to epoll_wait rounded up.

use super::{
    Event, Interest, Multiplexer, Trigger, WaitStats, describe_interest, describe_timeout,
    ready_count, timeout_ms, trace_wait,
};
use crate::sys::outcome;
use crate::sys::{Call, Sys};
use nix::sys::epoll::{self, EpollCreateFlags, EpollEvent, EpollFlags};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr;
use std::time::Duration;

/// Ready events taken per wait; more stay on the ready list for the next call.
const MAX_EVENTS: usize = 1024;

pub struct Epoll {
    sys: Sys,
    epoll: epoll::Epoll,
    trigger: Trigger,
    /// Where the kernel copies ready events: `libc::epoll_event`s, declared as the
    /// kernel's struct (not nix's wrapper type cast to it).
    ready: Vec<libc::epoll_event>,
    timeouts: Timeouts,
}

/// The finest wait timeout this kernel is known to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timeouts {
    /// epoll_pwait2's nanoseconds: assumed until the kernel says ENOSYS.
    Nanoseconds,
    /// epoll_wait's milliseconds only (a kernel before 5.11).
    Milliseconds,
}

impl Epoll {
    pub fn new(sys: Sys, trigger: Trigger) -> io::Result<Self> {
        let epoll = epoll::Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        Ok(Epoll {
            sys,
            epoll,
            trigger,
            ready: vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS],
            timeouts: Timeouts::Nanoseconds,
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
        if self.trigger == Trigger::Edge {
            "epoll-et"
        } else {
            "epoll-lt"
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
        let n = match self.nanosecond_timeout(timeout) {
            Some(t) => self.epoll_pwait2(t)?,
            None => self.epoll_wait(timeout)?,
        };
        // Only the ready descriptors come back: nothing to scan but them. (One
        // `extend` reserves once, where a `push` per event checks the capacity each time.)
        events.extend(self.ready[..n].iter().map(ready_event));
        trace_wait(&self.sys, || self.describe_wait(timeout), n, events);
        Ok(WaitStats {
            handed: 0,
            scanned: n,
            ready: n,
        })
    }
}

/// One entry of the ready list as an [`Event`].
fn ready_event(ev: &libc::epoll_event) -> Event {
    let flags = EpollFlags::from_bits_truncate(ev.events as libc::c_int);
    let error = flags.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR);
    Event {
        fd: ev.u64 as RawFd,
        readable: flags.contains(EpollFlags::EPOLLIN) || error,
        writable: flags.contains(EpollFlags::EPOLLOUT) || error,
        hangup: error || flags.contains(EpollFlags::EPOLLRDHUP),
    }
}

/// The kernel's `struct __kernel_timespec`, which epoll_pwait2 takes: 64-bit fields
/// on every architecture (`libc::timespec` is narrower on 32-bit ones).
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

impl Epoll {
    /// The timeout to hand epoll_pwait2, when this wait needs one: a timeout with a
    /// sub-millisecond part (an open-loop client pacing its requests), which
    /// epoll_wait would round, on a kernel that takes nanoseconds.
    fn nanosecond_timeout(&self, timeout: Option<Duration>) -> Option<Duration> {
        timeout
            .filter(|t| t.subsec_nanos() % 1_000_000 != 0 && self.timeouts == Timeouts::Nanoseconds)
    }

    /// epoll_pwait2(2), made through syscall(2): glibc has a wrapper only from 2.35
    /// on, and linking it would keep the binary off older systems. A kernel before
    /// 5.11 says ENOSYS; this wait, and every later one, then uses epoll_wait.
    fn epoll_pwait2(&mut self, t: Duration) -> io::Result<usize> {
        let ts = KernelTimespec {
            tv_sec: t.as_secs() as i64,
            tv_nsec: t.subsec_nanos().into(),
        };
        let r = self.sys.counted(Call::EpollPwait2, || {
            // SAFETY: the buffer is ours, `ready.len()` entries of the kernel's struct
            // epoll_event (libc declares it as the kernel does, packed on x86-64); the
            // timespec has the kernel's layout and lives across the call; a null
            // sigmask leaves the signal mask alone (the kernel then ignores its size).
            let n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    self.epoll.0.as_raw_fd(),
                    self.ready.as_mut_ptr(),
                    self.ready.len() as libc::c_int,
                    &ts as *const KernelTimespec,
                    ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            ready_count(n)
        });
        match r {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                self.sys.trace(|| {
                    let r = Err::<usize, _>(e);
                    let call = self.describe_wait(Some(t));
                    format!("{call} {}: epoll_wait from now on", outcome(&r))
                });
                self.timeouts = Timeouts::Milliseconds;
                self.epoll_wait(Some(t))
            }
            r => r,
        }
    }

    /// epoll_wait(2): the timeout in milliseconds, a sub-millisecond part rounded up.
    fn epoll_wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.sys.counted(Call::EpollWait, || {
            // SAFETY: the buffer is ours, `ready.len()` entries of the kernel's struct
            // epoll_event (libc declares it as the kernel does, packed on x86-64).
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.0.as_raw_fd(),
                    self.ready.as_mut_ptr(),
                    self.ready.len() as libc::c_int,
                    timeout_ms(timeout),
                )
            };
            ready_count(n.into())
        })
    }

    /// The wait as a trace shows it: `epoll_wait(max=1024, timeout=-1)`.
    fn describe_wait(&self, timeout: Option<Duration>) -> String {
        let call = match self.nanosecond_timeout(timeout) {
            Some(_) => Call::EpollPwait2,
            None => Call::EpollWait,
        };
        format!(
            "{}(max={}, timeout={})",
            call.name(),
            self.ready.len(),
            describe_timeout(timeout)
        )
    }

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{Counters, Registry};
    use std::sync::Arc;
    use std::time::Instant;

    const SHORT: Option<Duration> = Some(Duration::from_micros(300));

    fn epoll() -> (Epoll, Arc<Counters>) {
        let counters = Registry::new().register("test");
        let epoll = Epoll::new(Sys::new(Arc::clone(&counters)), Trigger::Level).unwrap();
        (epoll, counters)
    }

    /// (epoll_pwait2 calls, epoll_wait calls) counted so far.
    fn calls(counters: &Counters) -> (u64, u64) {
        let counts = counters.snapshot();
        (counts.call(Call::EpollPwait2), counts.call(Call::EpollWait))
    }

    /// Makes the calling thread (only it: no TSYNC) see a kernel before 5.11: a
    /// seccomp filter answers epoll_pwait2 with ENOSYS and allows everything else.
    fn lose_epoll_pwait2_in_this_thread() {
        let insn = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        };
        let mut filter = [
            // The system call's number: seccomp_data.nr, at offset 0.
            insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
            insn(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                libc::SYS_epoll_pwait2 as u32,
                0,
                1,
            ),
            insn(
                libc::BPF_RET | libc::BPF_K,
                libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
                0,
                0,
            ),
            insn(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
        ];
        let program = libc::sock_fprog {
            len: filter.len() as libc::c_ushort,
            filter: filter.as_mut_ptr(),
        };
        // SAFETY: no pointers; without privileges a filter needs no_new_privs first.
        let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        assert_eq!(r, 0, "PR_SET_NO_NEW_PRIVS: {}", io::Error::last_os_error());
        // SAFETY: `program` and the filter it points at live across the call, which
        // copies them.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            )
        };
        assert_eq!(r, 0, "PR_SET_SECCOMP: {}", io::Error::last_os_error());
    }

    /// A sub-millisecond timeout takes epoll_pwait2 where the kernel has it.
    #[test]
    fn a_sub_millisecond_timeout_takes_epoll_pwait2() {
        let (mut epoll, counters) = epoll();
        let mut events = Vec::new();
        let start = Instant::now();
        epoll.wait(&mut events, SHORT).unwrap();
        assert!(events.is_empty());
        assert!(start.elapsed() >= SHORT.unwrap());
        match epoll.timeouts {
            Timeouts::Nanoseconds => assert_eq!(calls(&counters), (1, 0)),
            // This kernel is older than 5.11: the next test's case.
            Timeouts::Milliseconds => assert_eq!(calls(&counters), (1, 1)),
        }
    }

    /// Without epoll_pwait2 the first short wait falls back to epoll_wait, with the
    /// timeout rounded up to a millisecond (it really waits: rounded down to 0 it
    /// would spin), and later waits go there directly. Each call made is counted as
    /// what it was, the refused one included.
    #[test]
    fn without_epoll_pwait2_the_first_wait_falls_back_for_good() {
        std::thread::spawn(|| {
            lose_epoll_pwait2_in_this_thread();
            let (mut epoll, counters) = epoll();
            let mut events = Vec::new();
            let start = Instant::now();
            epoll.wait(&mut events, SHORT).unwrap();
            assert!(start.elapsed() >= Duration::from_millis(1));
            assert_eq!(calls(&counters), (1, 1));
            assert_eq!(epoll.timeouts, Timeouts::Milliseconds);
            epoll.wait(&mut events, SHORT).unwrap();
            assert_eq!(calls(&counters), (1, 2));
            assert!(events.is_empty());
        })
        .join()
        .unwrap();
    }
}
