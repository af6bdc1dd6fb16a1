//! select's fd_set is a 1024-bit bitmap: descriptor 1024 cannot be watched at all.
//! poll and epoll take any descriptor number.

use super::{DemoContext, MUST_COME, loopback_pair};
use crate::backend::{Backend, Interest};
use crate::words::plural;
use anyhow::{Context, Result};
use nix::fcntl::{FcntlArg, fcntl};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub fn run(ctx: &DemoContext) -> Result<()> {
    let max = Backend::Select
        .max_fd()
        .expect("select has a descriptor limit") as RawFd;
    crate::sys::raise_nofile_limit()?;
    let (mut client, server) = loopback_pair()?;
    // The highest descriptor select can hold and the one past it (in a fresh
    // process both numbers are free, so these are exactly them).
    let fds = [
        dup_from(server.as_fd(), max)?,
        dup_from(server.as_fd(), max + 1)?,
    ];
    ctx.paragraph(&format!(
        "The same socket, duplicated to descriptors {} and {}, is registered with each \
         backend. select's fd_set has FD_SETSIZE = {} bits (0..{max}): it cannot hold {}.",
        fds[0].as_raw_fd(),
        fds[1].as_raw_fd(),
        max + 1,
        max + 1
    ));
    client.write_all(b"x")?;
    for backend in [Backend::Select, Backend::Poll, Backend::EpollLt] {
        let mut mux = ctx.mux(backend)?;
        let mut watched = Vec::new();
        for fd in &fds {
            match mux.register(fd.as_fd(), Interest::READ) {
                Ok(()) => watched.push(fd.as_raw_fd()),
                Err(e) => {
                    ctx.say(format!(
                        "{}: descriptor {}: refused: {e}",
                        backend.name(),
                        fd.as_raw_fd()
                    ));
                }
            }
        }
        let mut events = Vec::new();
        mux.wait(&mut events, Some(MUST_COME))?;
        let ready: Vec<String> = events.iter().map(|e| e.fd.to_string()).collect();
        ctx.say(format!(
            "{}: watching {watched:?}, the wait reports {}: {}",
            backend.name(),
            plural(ready.len(), "descriptor"),
            ready.join(" and ")
        ));
    }
    Ok(())
}

/// The socket again, at the lowest free descriptor from `min` up. F_DUPFD_CLOEXEC
/// picks the number and creates the descriptor in one step: nothing already open is
/// replaced, as a dup2 onto a number found free a moment earlier could.
fn dup_from(fd: BorrowedFd<'_>, min: RawFd) -> Result<OwnedFd> {
    let n = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(min)).with_context(|| {
        format!("duplicating a socket to descriptor {min} or above (RLIMIT_NOFILE must exceed it)")
    })?;
    // SAFETY: fcntl has just created this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}
