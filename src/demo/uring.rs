//! The completion model, live: the article's inputs through an io_uring. With
//! readiness the program is told that it may read; with completions it is told what
//! was read, into the buffer it lent the kernel beforehand. Then the batch: many
//! connections' receives reaped by one io_uring_enter.

use super::{DemoContext, loopback_pair};
use crate::sys::{Call, Sys};
use crate::words::plural;
use anyhow::{Context, Result, bail};
use io_uring::{IoUring, opcode, types};
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd};

/// What each receive asks for: the article's 10-byte buffer, less one.
const ASK: usize = 9;
/// Connections in the batch.
const BATCH: usize = 8;

pub fn run(ctx: &DemoContext) -> Result<()> {
    ctx.paragraph(&format!(
        "The client sends \"A\", then 17 bytes. The server does not wait to be told it may \
         read: it submits the receive itself ({ASK} bytes into a buffer it lends the kernel), \
         enters the kernel once, and is handed back what was read."
    ));
    let sys = ctx.sys();
    let mut ring = sys
        .counted(Call::IoUringSetup, || IoUring::new(BATCH as u32))
        .context("io_uring unavailable (kernel.io_uring_disabled, or a seccomp policy)")?;
    let (mut client, server) = blocking(loopback_pair()?)?;
    let mut buf = vec![[0u8; ASK]];
    for send in ["A", "ABCDEFGHIJKLMNOPQ"] {
        ctx.say(format!(
            "-- the client sends \"{send}\" ({})",
            plural(send.len(), "byte")
        ));
        client.write_all(send.as_bytes())?;
        let mut got = 0;
        while got < send.len() {
            let n;
            (n, buf) = receive_all(ctx, &sys, &mut ring, &[&server], buf)?;
            ctx.say(format!(
                "   completion: recv = {}: {}",
                n[0],
                String::from_utf8_lossy(&buf[0][..n[0]])
            ));
            got += n[0];
        }
    }
    ctx.say("");
    ctx.paragraph(&format!(
        "The batch: {BATCH} clients each send a byte; the server submits {BATCH} receives and \
         reaps them all with one io_uring_enter (a readiness loop makes a wait, then a read \
         per connection)."
    ));
    let pairs = (0..BATCH)
        .map(|_| blocking(loopback_pair()?))
        .collect::<Result<Vec<_>>>()?;
    for (client, _) in &pairs {
        (&*client).write_all(b"x")?;
    }
    let enters = || sys.counters().snapshot().call(Call::IoUringEnter);
    let before = enters();
    let servers: Vec<&TcpStream> = pairs.iter().map(|(_, s)| s).collect();
    let (got, _) = receive_all(ctx, &sys, &mut ring, &servers, vec![[0; ASK]; BATCH])?;
    ctx.say(format!(
        "{} of {} reaped by {}",
        plural(got.len(), "completion"),
        plural(got.iter().sum::<usize>(), "byte"),
        plural(enters() - before, "io_uring_enter")
    ));
    Ok(())
}

/// The server end made blocking: the ring waits for data itself, where a
/// non-blocking socket would complete a receive at once with EAGAIN.
fn blocking((client, server): (TcpStream, OwnedFd)) -> Result<(TcpStream, TcpStream)> {
    let server = TcpStream::from(server);
    server.set_nonblocking(false)?;
    Ok((client, server))
}

/// A receive on each of `servers` into its buffer of `bufs`, all submitted and reaped
/// by one enter that waits for every completion; returns each one's bytes, in order,
/// and the buffers back.
fn receive_all(
    ctx: &DemoContext,
    sys: &Sys,
    ring: &mut IoUring,
    servers: &[&TcpStream],
    mut bufs: Vec<[u8; ASK]>,
) -> Result<(Vec<usize>, Vec<[u8; ASK]>)> {
    for (i, (server, buf)) in servers.iter().zip(bufs.iter_mut()).enumerate() {
        let fd = server.as_raw_fd();
        let recv = opcode::Recv::new(types::Fd(fd), buf.as_mut_ptr(), ASK as u32)
            .build()
            .user_data(i as u64);
        // SAFETY: the buffer is on the heap, owned here, and neither moved nor freed
        // while the kernel may write into it: it is handed back only after every
        // completion is reaped, and leaked on any error once a receive is queued.
        if unsafe { ring.submission().push(&recv) }.is_err() {
            std::mem::forget(bufs);
            bail!("the submission ring is full");
        }
        if servers.len() == 1 {
            ctx.say(format!(
                "   submit: recv(fd {fd}, {ASK} bytes into our buffer)"
            ));
        }
    }
    let want = servers.len();
    let reaped = sys
        .counted(Call::IoUringEnter, || ring.submit_and_wait(want))
        .context("io_uring_enter")
        .and_then(|n| {
            ctx.say(format!(
                "   io_uring_enter(to_submit={want}, min_complete={want}) = {n}"
            ));
            let mut got = vec![None; want];
            for cqe in ring.completion() {
                got[cqe.user_data() as usize] = Some(cqe.result());
            }
            got.into_iter()
                .map(|r| match r {
                    Some(n) if n >= 0 => Ok(n as usize),
                    Some(e) => bail!("a receive failed: {}", io::Error::from_raw_os_error(-e)),
                    None => bail!("a receive did not complete"),
                })
                .collect::<Result<Vec<_>>>()
        });
    match reaped {
        Ok(got) => Ok((got, bufs)),
        Err(e) => {
            // A receive may still be in the kernel: its buffer must never be freed.
            std::mem::forget(bufs);
            Err(e)
        }
    }
}
