//! The IO multiplexing article's experiment: an epoll server whose buffer is 10 bytes
//! (each read asks for 9, leaving room for a terminating NUL), one client that sends
//! "A" and then "ABCDEFGHIJKLMNOPQ". In ET mode each wakeup reads until EAGAIN; in LT
//! mode each wakeup reads once. Also the ET pitfall: ET with one read per wakeup.
//!
//! Determinism: a send of fewer bytes than the loopback MSS arrives as one segment,
//! so the first report comes only when all of its bytes are in the socket; after
//! that, waits with a zero timeout tell whether another report is due.

use super::{DemoContext, MUST_COME, QUIET, loopback_pair, queued};
use crate::backend::{Backend, Interest, Multiplexer, Trigger};
use crate::names::named_enum;
use crate::sys::Sys;
use crate::words::plural;
use anyhow::{Result, bail};
use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

named_enum! {
    /// Which of the article's two runs.
    pub enum Mode {
        /// edge-triggered
        Et => "et",
        /// level-triggered
        Lt => "lt",
        /// ET, then LT
        Both => "both",
    }
}

#[derive(Clone, Debug)]
pub struct EtLtOptions {
    pub mode: Mode,
    /// One send each.
    pub inputs: Vec<String>,
    pub buffer_size: usize,
    /// Instead of epoll: select and poll behave like LT.
    pub backend: Option<Backend>,
    /// Only the transcript lines.
    pub plain: bool,
}

impl Default for EtLtOptions {
    fn default() -> Self {
        EtLtOptions {
            mode: Mode::Both,
            inputs: vec!["A".into(), "ABCDEFGHIJKLMNOPQ".into()],
            buffer_size: 10,
            backend: None,
            plain: false,
        }
    }
}

/// How many reads a wakeup does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    UntilEagain,
    One,
}

pub fn run(ctx: &DemoContext, opts: &EtLtOptions) -> Result<()> {
    if opts.buffer_size < 2 {
        bail!("--buffer-size must be at least 2 (one byte is kept for the terminating NUL)");
    }
    let backends = match (opts.backend, opts.mode) {
        (Some(b), _) => vec![b],
        (None, Mode::Et) => vec![Backend::EpollEt],
        (None, Mode::Lt) => vec![Backend::EpollLt],
        (None, Mode::Both) => vec![Backend::EpollEt, Backend::EpollLt],
    };
    for backend in backends {
        let trigger = backend.trigger();
        if trigger == Trigger::Completion {
            bail!(
                "{backend} reports completed operations, not readiness: this demo shows \
                 level and edge notification; pick a readiness backend"
            );
        }
        if !opts.plain {
            ctx.say(header(backend, opts.buffer_size));
        }
        let sys = ctx.sys();
        let (mut client, server) = loopback_pair()?;
        let mut mux = ctx.mux(backend)?;
        mux.register(server.as_fd(), Interest::READ)?;
        let reads = if trigger == Trigger::Edge {
            Reads::UntilEagain
        } else {
            Reads::One
        };
        let mut server = Server {
            sys: &sys,
            mux: mux.as_mut(),
            fd: server.as_fd(),
            buffer: opts.buffer_size,
            trigger,
            reads,
        };
        for input in &opts.inputs {
            if !opts.plain {
                ctx.say(sends(input));
            }
            server.receive(ctx, &mut client, input)?;
        }
        if !opts.plain {
            ctx.say("");
        }
    }
    Ok(())
}

fn header(backend: Backend, buffer: usize) -> String {
    let how = match backend {
        Backend::EpollEt => "ET, each wakeup reads until EAGAIN",
        Backend::EpollLt => "LT, each wakeup reads once",
        // io-uring is refused before (`run`): it is not notified at all.
        _ => "level-triggered (like LT; it has no ET), each wakeup reads once",
    };
    // Short enough for 80 columns: the reader sees the transcript, not the header.
    format!(
        "== {}: {how}; {buffer}-byte buffer, reads of {} ==",
        backend.name(),
        buffer - 1
    )
}

/// The line that announces a send.
fn sends(input: &str) -> String {
    format!(
        "-- the client sends {input:?} ({})",
        plural(input.len(), "byte")
    )
}

/// The article's server: one socket on one multiplexer, reading `buffer - 1` bytes
/// at a time, `reads` per wakeup.
struct Server<'a> {
    sys: &'a Sys,
    mux: &'a mut dyn Multiplexer,
    fd: BorrowedFd<'a>,
    buffer: usize,
    trigger: Trigger,
    reads: Reads,
}

impl Server<'_> {
    /// The client sends `input`; the server handles the reports that follow.
    fn receive(&mut self, ctx: &DemoContext, client: &mut TcpStream, input: &str) -> Result<()> {
        client.write_all(input.as_bytes())?;
        self.serve_until_quiet(ctx)
    }

    /// Handles reports until a wait after the first one reports nothing.
    fn serve_until_quiet(&mut self, ctx: &DemoContext) -> Result<()> {
        let mut events = Vec::new();
        let mut timeout = MUST_COME;
        loop {
            self.mux.wait(&mut events, Some(timeout))?;
            if events.is_empty() {
                if timeout == MUST_COME {
                    bail!("no report came within {MUST_COME:?}");
                }
                return Ok(());
            }
            timeout = Duration::ZERO;
            ctx.say(if self.trigger == Trigger::Edge {
                "-->ET Mode: it was triggered once"
            } else {
                "-->LT Mode: it was triggered once!"
            });
            self.read_report(ctx)?;
        }
    }

    /// The reads of one wakeup, as the article's server prints them.
    fn read_report(&mut self, ctx: &DemoContext) -> Result<()> {
        let mut buf = vec![0u8; self.buffer];
        loop {
            match self.sys.read(self.fd, &mut buf[..self.buffer - 1]) {
                Ok(0) => {
                    ctx.say("(the client closed the connection)");
                    return Ok(());
                }
                Ok(n) => {
                    // The article's printf, word for word ("get 1 bytes" included):
                    // --plain is compared with its transcript byte for byte.
                    ctx.say(format!(
                        "get {n} bytes of content: {}",
                        String::from_utf8_lossy(&buf[..n])
                    ));
                    if self.reads == Reads::One {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    ctx.say("-->wait to read!");
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// ET with one read per wakeup: what one read leaves is stranded until the next
/// send makes a new edge.
pub fn pitfall(ctx: &DemoContext, opts: &EtLtOptions) -> Result<()> {
    let buffer = opts.buffer_size.max(2);
    ctx.paragraph(&format!(
        "Edge-triggered epoll reports a socket once per change of state. A server that reads \
         only once per report ({} here) leaves the rest in the socket, and no report comes \
         for it: those bytes are stranded until the client sends again.",
        plural(buffer - 1, "byte")
    ));
    let sys = ctx.sys();
    let (mut client, server) = loopback_pair()?;
    let mut mux = ctx.mux(Backend::EpollEt)?;
    mux.register(server.as_fd(), Interest::READ)?;
    let mut article = Server {
        sys: &sys,
        mux: mux.as_mut(),
        fd: server.as_fd(),
        buffer,
        trigger: Trigger::Edge,
        reads: Reads::One,
    };
    for input in ["ABCDEFGHIJKLMNOPQ", "R"] {
        ctx.say(sends(input));
        article.receive(ctx, &mut client, input)?;
        // Prove that nothing more is coming.
        let mut events = Vec::new();
        article.mux.wait(&mut events, Some(QUIET))?;
        let left = queued(&sys, article.fd)?;
        ctx.say(format!(
            "{} in the next {} ms; {} still in the socket (FIONREAD){}",
            plural(events.len(), "report"),
            QUIET.as_millis(),
            plural(left, "byte"),
            if left > 0 { ": stranded" } else { "" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's output, captured.
    fn transcript(opts: &EtLtOptions) -> String {
        #[derive(Clone, Default)]
        struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Capture {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let capture = Capture::default();
        run(
            &DemoContext::new(Box::new(capture.clone()), crate::style::Style::PLAIN),
            opts,
        )
        .unwrap();
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn select_and_poll_behave_like_lt() {
        let lt = transcript(&EtLtOptions {
            mode: Mode::Lt,
            plain: true,
            ..Default::default()
        });
        assert!(lt.starts_with("-->LT Mode"), "{lt}");
        for backend in [Backend::Select, Backend::Poll] {
            let opts = EtLtOptions {
                backend: Some(backend),
                plain: true,
                ..Default::default()
            };
            assert_eq!(transcript(&opts), lt, "{backend:?}");
        }
    }
}
