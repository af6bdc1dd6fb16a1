//! select's fd_set is a 1024-bit bitmap: descriptor 1024 cannot be watched at all.
//! poll and epoll take any descriptor number.

use super::{DemoContext, MUST_COME, loopback_pair};
use crate::backend::{Backend, Interest};
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The socket again at exactly descriptor `at`.
fn dup_at(fd: BorrowedFd<'_>, at: i32) -> Result<OwnedFd> {
    // SAFETY: fcntl(F_GETFD) only asks whether `at` is open.
    if unsafe { libc::fcntl(at, libc::F_GETFD) } != -1 {
        bail!("descriptor {at} is already in use");
    }
    // SAFETY: dup2 onto a free number; the new descriptor is owned below.
    let n = unsafe { libc::dup2(fd.as_raw_fd(), at) };
    if n != at {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("dup2 to {at}"));
    }
    // SAFETY: dup2 just created it; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

pub fn run(ctx: &DemoContext) -> Result<()> {
    for line in [
        "The same socket, duplicated to descriptors 1023 and 1024, is registered with each",
        "backend. select's fd_set has FD_SETSIZE = 1024 bits (0..1023): it cannot hold 1024.",
        "",
    ] {
        ctx.say(line);
    }
    crate::sys::raise_nofile_limit()?;
    let (mut client, server) = loopback_pair()?;
    let fds = [dup_at(server.as_fd(), 1023)?, dup_at(server.as_fd(), 1024)?];
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
            "{}: watching {watched:?}, the wait reports descriptor(s) {}",
            backend.name(),
            ready.join(" and ")
        ));
    }
    Ok(())
}
