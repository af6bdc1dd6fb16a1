//! The counting layer: every system call an event loop makes goes through a [`Sys`]
//! handle, which counts it by kind in the calling thread's [`Counters`] and then makes
//! it. Backends count their own multiplexer calls with [`Sys::counted`].

mod counters;
mod limits;

pub use counters::{Call, Counters, Registry, Stat, ThreadCounts};
pub use limits::raise_nofile_limit;

use nix::sys::socket::{setsockopt, sockopt};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;

/// One thread's door to the kernel: counts, then calls.
#[derive(Clone)]
pub struct Sys {
    counters: Arc<Counters>,
}

impl Sys {
    pub fn new(counters: Arc<Counters>) -> Self {
        Sys { counters }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counts one call of `call`, then runs `f`, which makes exactly that call.
    #[inline]
    pub fn counted<T>(&self, call: Call, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        self.counters.call(call);
        f()
    }

    #[inline]
    pub fn read(&self, fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
        self.counted(Call::Read, || Ok(nix::unistd::read(fd, buf)?))
    }

    /// write(2), not send(2): /proc/PID/io counts read/write calls, so using them keeps
    /// our counts comparable with the kernel's. SIGPIPE is ignored by the server.
    #[inline]
    pub fn write(&self, fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
        self.counted(Call::Write, || Ok(nix::unistd::write(fd, buf)?))
    }

    /// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC: the new descriptor is ready for an
    /// event loop without a further fcntl call.
    pub fn accept4(&self, listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
        self.counted(Call::Accept4, || {
            let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            // SAFETY: null address pointers are allowed (we do not want the peer
            // address); the listener is a valid descriptor for the call's duration.
            let fd = unsafe {
                libc::accept4(
                    listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    flags,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: accept4 just returned this descriptor; nothing else owns it.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        })
    }

    pub fn set_nodelay(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.counted(Call::Setsockopt, || {
            Ok(setsockopt(&fd, sockopt::TcpNoDelay, &true)?)
        })
    }

    /// SO_SNDBUF: the kernel doubles the value for its own bookkeeping.
    pub fn set_send_buffer(&self, fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
        self.counted(Call::Setsockopt, || {
            Ok(setsockopt(&fd, sockopt::SndBuf, &bytes)?)
        })
    }

    /// Closes a descriptor, counted (dropping an `OwnedFd` would close it uncounted).
    pub fn close(&self, fd: OwnedFd) {
        self.counters.call(Call::Close);
        drop(fd);
    }

    /// Opens /dev/null: the reserve descriptor that lets a server out of EMFILE.
    pub fn open_dev_null(&self) -> io::Result<OwnedFd> {
        self.counted(Call::Open, || Ok(std::fs::File::open("/dev/null")?.into()))
    }
}
