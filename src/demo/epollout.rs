//! Write readiness: a socket whose send buffer is full is not writable; when the peer
//! drains it, EPOLLOUT is reported. Level-triggered: on every wait from then on, as
//! long as there is room. Edge-triggered: once per drain.

use super::{DemoContext, MUST_COME, loopback_pair};
use crate::backend::{Backend, Interest, Multiplexer};
use crate::sys::Sys;
use crate::words::plural;
use anyhow::Result;
use nix::sys::socket::{setsockopt, sockopt};
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

/// Waits made after each drain.
const WAITS: usize = 4;
const CYCLES: usize = 2;

pub fn run(ctx: &DemoContext) -> Result<()> {
    ctx.paragraph(&format!(
        "A server fills a socket's send buffer until write says EAGAIN, then the client \
         drains it. Watch how many of the next {WAITS} waits report EPOLLOUT: level-triggered, \
         every one (there is room); edge-triggered, only the first (room appeared once)."
    ));
    for backend in [Backend::EpollEt, Backend::EpollLt] {
        ctx.say(format!("== {} ==", backend.name()));
        let sys = ctx.sys();
        let (mut client, server) = loopback_pair()?;
        setsockopt(&server, sockopt::SndBuf, &4096)?;
        let mut mux = ctx.mux(backend)?;
        let write_only = Interest {
            read: false,
            write: true,
        };
        mux.register(server.as_fd(), write_only)?;
        count_reports(mux.as_mut(), Duration::ZERO, 1)?; // the empty buffer's report
        for cycle in 1..=CYCLES {
            let filled = fill(&sys, server.as_fd())?;
            let while_full = count_reports(mux.as_mut(), Duration::ZERO, 1)?;
            let drained = drain(&mut client)?;
            let first = count_reports(mux.as_mut(), MUST_COME, 1)?;
            let rest = count_reports(mux.as_mut(), Duration::ZERO, WAITS - 1)?;
            ctx.say(format!(
                "drain {cycle}: filled {}, {} while full; the client read {}; EPOLLOUT on {} of \
                 the next {WAITS} waits",
                plural(filled, "byte"),
                plural(while_full, "report"),
                plural(drained, "byte"),
                first + rest
            ));
        }
    }
    Ok(())
}

/// Writes until the kernel says EAGAIN; returns the bytes it took.
fn fill(sys: &Sys, fd: BorrowedFd<'_>) -> Result<usize> {
    let chunk = [b'x'; 65536];
    let mut total = 0;
    loop {
        match sys.write(fd, &chunk) {
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(total),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads until nothing more arrives for 50 ms.
fn drain(client: &mut TcpStream) -> Result<usize> {
    client.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut buf = [0u8; 65536];
    let mut total = 0;
    loop {
        match client.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(total);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Makes `waits` waits with `timeout` each; returns how many reported something.
fn count_reports(mux: &mut dyn Multiplexer, timeout: Duration, waits: usize) -> Result<usize> {
    let mut events = Vec::new();
    let mut reported = 0;
    for _ in 0..waits {
        mux.wait(&mut events, Some(timeout))?;
        reported += !events.is_empty() as usize;
    }
    Ok(reported)
}
