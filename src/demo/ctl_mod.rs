//! In ET mode a report comes once per change of state, but EPOLL_CTL_MOD re-arms the
//! descriptor: if it still holds unread data, the next wait reports it again.

use super::{DemoContext, MUST_COME, QUIET, loopback_pair};
use crate::backend::{Backend, Interest, Multiplexer};
use crate::words::plural;
use anyhow::Result;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

pub fn run(ctx: &DemoContext) -> Result<()> {
    ctx.paragraph(
        "The client sends 5 bytes and the server never reads them. Edge-triggered epoll \
         reports them once; a second wait reports nothing; EPOLL_CTL_MOD with the same \
         interest makes epoll look at the descriptor again, and the next wait reports it anew.",
    );
    let (mut client, server) = loopback_pair()?;
    let mut mux = ctx.mux(Backend::EpollEt)?;
    mux.register(server.as_fd(), Interest::READ)?;
    client.write_all(b"hello")?;
    let mux = mux.as_mut();
    wait_and_say(ctx, mux, "first wait", MUST_COME)?;
    wait_and_say(ctx, mux, "second wait, nothing read", QUIET)?;
    mux.modify(server.as_fd(), Interest::READ)?;
    wait_and_say(ctx, mux, "after EPOLL_CTL_MOD", QUIET)
}

/// One wait, and how many reports it brought.
fn wait_and_say(
    ctx: &DemoContext,
    mux: &mut dyn Multiplexer,
    what: &str,
    timeout: Duration,
) -> Result<()> {
    let mut events = Vec::new();
    mux.wait(&mut events, Some(timeout))?;
    ctx.say(format!("{what}: {}", plural(events.len(), "report")));
    Ok(())
}
