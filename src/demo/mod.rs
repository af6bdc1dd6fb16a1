//! The article demos, live: each one sets up a server socket and a client on
//! loopback, drives one multiplexer through the counting layer, and returns what
//! happened as lines of text (and, for tests, the facts it shows).
//!
//! Layer: above `backend` and `sys` (beside `server`); its transcripts are its output.

mod ctl_mod;
mod epollout;
mod et_lt;
mod fd_setsize;
mod scan_cost;
mod uring;

pub use et_lt::{EtLtOptions, Mode};

use crate::backend::{Backend, Multiplexer};
use crate::style::Style;
use crate::sys::{Call, Registry, Sys, Tracer};
use anyhow::{Context, Result, bail};
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every demo, with the line `iobench demo` lists it with.
pub const DEMOS: &[(&str, &str)] = &[
    (
        "et-lt",
        "the article's experiment: one client sends \"A\", then 17 bytes, to a 10-byte buffer, in ET and LT mode",
    ),
    (
        "et-pitfall",
        "ET with one read per wakeup: the rest of the data is stranded until more arrives",
    ),
    (
        "epollout",
        "write readiness: when EPOLLOUT is reported after a full send buffer drains, in ET and LT",
    ),
    (
        "ctl-mod",
        "in ET, EPOLL_CTL_MOD on a descriptor that still holds unread data produces a new report",
    ),
    (
        "fd-setsize",
        "select cannot watch descriptor 1024; poll and epoll can",
    ),
    (
        "scan-cost",
        "one ready descriptor among N idle ones: select's and poll's work per wait grows with N, epoll's does not",
    ),
    (
        "uring",
        "the completion model: the article's inputs through io_uring, told what was read, and a batch in one enter",
    ),
];

/// Where a demo's lines and its trace go, in the order they happen.
#[derive(Clone)]
pub struct Sink(Arc<Mutex<Box<dyn Write + Send>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

/// What every demo runs with.
pub struct DemoContext {
    out: Sink,
    style: Style,
    tracer: Option<Arc<Tracer>>,
    registry: Registry,
}

impl DemoContext {
    pub fn new(out: Box<dyn Write + Send>, style: Style) -> DemoContext {
        DemoContext {
            out: Sink(Arc::new(Mutex::new(out))),
            style,
            tracer: None,
            registry: Registry::new(),
        }
    }

    pub fn style(&self) -> &Style {
        &self.style
    }

    /// The same, with every system call printed among the demo's lines (--trace).
    pub fn traced(self) -> DemoContext {
        let tracer = Tracer::new(Box::new(self.out.clone()));
        DemoContext {
            tracer: Some(Arc::new(tracer)),
            ..self
        }
    }

    /// Prints one line of the demo (wrapped, indented, if wider than the terminal).
    pub fn say(&self, line: impl AsRef<str>) {
        self.print(&self.style.wrap(line.as_ref(), 2));
    }

    /// Prints a paragraph wrapped to the terminal, and an empty line after it.
    pub fn paragraph(&self, text: &str) {
        self.print(&(self.style.wrap(text, 0) + "\n"));
    }

    /// Prints text as it is.
    fn print(&self, text: &str) {
        let mut out = self.out.clone();
        // Nobody left to read a demo is no reason to fail it.
        let _ = out.write_all(text.as_bytes());
    }

    /// A counted (and, with --trace, traced) door to the kernel.
    pub fn sys(&self) -> Sys {
        Sys::new(self.registry.register("demo")).traced(self.tracer.clone())
    }

    pub fn mux(&self, backend: Backend) -> Result<Box<dyn Multiplexer>> {
        backend
            .create(self.sys())
            .with_context(|| format!("creating {}", backend.name()))
    }
}

/// Runs the demo called `name`.
pub fn run(name: &str, ctx: &DemoContext, et_lt: &EtLtOptions) -> Result<()> {
    match name {
        "et-lt" => et_lt::run(ctx, et_lt),
        "et-pitfall" => et_lt::pitfall(ctx, et_lt),
        "epollout" => epollout::run(ctx),
        "ctl-mod" => ctl_mod::run(ctx),
        "fd-setsize" => fd_setsize::run(ctx),
        "scan-cost" => scan_cost::run(ctx),
        "uring" => uring::run(ctx),
        _ => bail!(
            "no demo called `{name}`: run `iobench demo` for the list ({})",
            DEMOS.iter().map(|d| d.0).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A connected loopback pair: the client end (blocking) and the server end
/// (non-blocking, as an event loop has it).
fn loopback_pair() -> Result<(TcpStream, OwnedFd)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    let client = TcpStream::connect(listener.local_addr()?).context("connecting")?;
    let (server, _) = listener.accept().context("accepting")?;
    server.set_nonblocking(true)?;
    client.set_nodelay(true)?;
    Ok((client, server.into()))
}

/// Bytes waiting in a socket's receive queue (ioctl FIONREAD), counted.
fn queued(sys: &Sys, fd: BorrowedFd<'_>) -> io::Result<usize> {
    sys.counted(Call::Ioctl, || {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer, which is ours.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    })
}

/// How long a demo waits for a report that must come.
const MUST_COME: Duration = Duration::from_secs(5);

/// How long a demo waits to show that no report comes: a wait, not just a poll.
const QUIET: Duration = Duration::from_millis(200);
