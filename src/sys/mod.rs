//! The counting layer: every system call an event loop makes goes through a [`Sys`]
//! handle, which counts it by kind in the calling thread's [`Counters`] and then makes
//! it. Backends count their own multiplexer calls with [`Sys::counted`]. With a
//! [`Tracer`] attached, each call is also printed as it happens, strace-like.
//!
//! Layer: the bottom (beside `protocol`); uses only `names`; errors are io::Result,
//! context is added above.

mod counters;
mod cpu;
mod limits;
pub mod terminal;
mod trace;
pub mod uring;

pub use counters::{Call, Counters, Registry, RingOp, Stat, ThreadCounts};
pub use cpu::{check_cpu, layout_unavailable, machine_cpus, pin_to_cpu, pin_to_cpus};
pub use limits::{inherited_descriptors, raise_nofile_limit};
pub use trace::{Tracer, outcome, shown};

use nix::sys::socket::{setsockopt, sockopt};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;

/// One thread's door to the kernel: counts, then calls.
#[derive(Clone)]
pub struct Sys {
    counters: Arc<Counters>,
    tracer: Option<Arc<Tracer>>,
}

impl Sys {
    pub fn new(counters: Arc<Counters>) -> Self {
        Sys {
            counters,
            tracer: None,
        }
    }

    /// The same counters, with every call also printed by `tracer`.
    pub fn traced(self, tracer: Option<Arc<Tracer>>) -> Self {
        Sys { tracer, ..self }
    }

    /// Prints one trace line when tracing; `describe` runs only then.
    #[inline]
    pub fn trace(&self, describe: impl FnOnce() -> String) {
        if let Some(t) = &self.tracer {
            t.line(&describe());
        }
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
        let r = self.counted(Call::Read, || raw_read(fd, buf));
        if self.tracer.is_some() {
            self.trace_transfer("read", fd, buf, &r);
        }
        r
    }

    /// write(2), not send(2): /proc/PID/io counts read/write calls, so using them keeps
    /// our counts comparable with the kernel's. SIGPIPE is ignored by the server.
    #[inline]
    pub fn write(&self, fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
        let r = self.counted(Call::Write, || raw_write(fd, buf));
        if self.tracer.is_some() {
            self.trace_transfer("write", fd, buf, &r);
        }
        r
    }

    /// The trace line of a read or write: out of line, so that the formatting code
    /// does not weigh on every untraced call (its registers and stack frame cost
    /// about 20 instructions per call even when unused).
    #[cold]
    #[inline(never)]
    fn trace_transfer(&self, name: &str, fd: BorrowedFd<'_>, buf: &[u8], r: &io::Result<usize>) {
        self.trace(|| {
            let data = r.as_ref().map_or(String::new(), |&n| shown(&buf[..n]));
            format!(
                "{name}(fd {}, {}) {}{data}",
                fd.as_raw_fd(),
                buf.len(),
                outcome(r)
            )
        });
    }

    /// Writes all of `data` to a blocking descriptor, retrying EINTR.
    pub fn write_all(&self, fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match self.write(fd, data) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `data` to a blocking descriptor that nobody may be reading (a
    /// full pipe on stdout), giving up at `deadline` with TimedOut: each piece waits
    /// in poll(2) for room, and is at most PIPE_BUF bytes, which a pipe (or terminal,
    /// or file) that polls writable takes without blocking.
    pub fn write_all_by(
        &self,
        fd: BorrowedFd<'_>,
        mut data: &[u8],
        deadline: std::time::Instant,
    ) -> io::Result<()> {
        while !data.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut pfd = [libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            }];
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
            // SAFETY: one initialised pollfd, its length passed; the kernel writes
            // only its revents.
            let ready = self.counted(Call::Poll, || {
                match unsafe { libc::poll(pfd.as_mut_ptr(), 1, ms) } {
                    -1 => Err(io::Error::last_os_error()),
                    n => Ok(n),
                }
            });
            match ready {
                Ok(0) => return Err(io::ErrorKind::TimedOut.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let piece = &data[..data.len().min(libc::PIPE_BUF)];
            match self.write(fd, piece) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC: the new descriptor is ready for an
    /// event loop without a further fcntl call.
    pub fn accept4(&self, listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
        let r = self.counted(Call::Accept4, || {
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
        });
        self.trace(|| {
            let fd = r.as_ref().map(|fd| fd.as_raw_fd());
            format!("accept4(fd {}) {}", listener.as_raw_fd(), outcome(&fd))
        });
        r
    }

    pub fn set_nodelay(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let r = self.counted(Call::Setsockopt, || {
            Ok(setsockopt(&fd, sockopt::TcpNoDelay, &true)?)
        });
        self.trace(|| {
            format!(
                "setsockopt(fd {}, TCP_NODELAY) {}",
                fd.as_raw_fd(),
                outcome(&r.as_ref().map(|_| 0))
            )
        });
        r
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
        let raw = fd.as_raw_fd();
        drop(fd);
        self.trace(|| format!("close(fd {raw}) = 0"));
    }

    /// A whole (small) file, every call counted: the statistics a server reports
    /// read /proc, and those reads must be in our count as they are in the kernel's.
    pub fn read_file(&self, path: &str) -> io::Result<String> {
        let file: OwnedFd = self.counted(Call::Open, || Ok(std::fs::File::open(path)?.into()))?;
        let mut text = Vec::new();
        let mut chunk = [0u8; 4096];
        let result = loop {
            match self.read(file.as_fd(), &mut chunk) {
                Ok(0) => break Ok(()),
                Ok(n) => text.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        };
        self.close(file);
        result.map(|()| String::from_utf8_lossy(&text).into_owned())
    }

    /// getrusage(RUSAGE_SELF), counted.
    pub fn getrusage(&self) -> io::Result<nix::sys::resource::Usage> {
        use nix::sys::resource::{UsageWho, getrusage};
        self.counted(Call::Getrusage, || Ok(getrusage(UsageWho::RUSAGE_SELF)?))
    }

    /// The calling thread ends: its context switches so far (getrusage's
    /// RUSAGE_THREAD) go into its counters, where a report finds them after
    /// /proc/self/task/TID is gone.
    pub fn thread_ends(&self) {
        use nix::sys::resource::{UsageWho, getrusage};
        if let Ok(u) = self.counted(Call::Getrusage, || Ok(getrusage(UsageWho::RUSAGE_THREAD)?)) {
            let switches = (
                u.voluntary_context_switches(),
                u.involuntary_context_switches(),
            );
            self.counters
                .mark_exit((switches.0 as u64, switches.1 as u64));
        }
    }

    /// Opens /dev/null: the reserve descriptor that lets a server out of EMFILE.
    pub fn open_dev_null(&self) -> io::Result<OwnedFd> {
        self.counted(Call::Open, || Ok(std::fs::File::open("/dev/null")?.into()))
    }
}

// read(2) and write(2) through glibc's generic syscall(3), not its read() and write().
// Those are thread cancellation points: in a process with more than one thread (ours
// has a control thread) glibc brackets every call with
// __pthread_enable_asynccancel/__pthread_disable_asynccancel, about 60 instructions
// per call pair in all (benches/callgrind.sh). We never cancel threads, and the kernel
// sees exactly the same system call.

fn raw_read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable memory of `buf.len()` bytes, borrowed for the call.
    let n = unsafe { libc::syscall(libc::SYS_read, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
    syscall_result(n)
}

fn raw_write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is readable memory of `buf.len()` bytes, borrowed for the call.
    let n = unsafe { libc::syscall(libc::SYS_write, fd.as_raw_fd(), buf.as_ptr(), buf.len()) };
    syscall_result(n)
}

/// syscall(3)'s result: -1 with errno set, or the byte count.
#[inline]
fn syscall_result(n: libc::c_long) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
