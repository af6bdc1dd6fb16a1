//! In ET mode a report comes once per change of state, but EPOLL_CTL_MOD re-arms the
//! descriptor: if it still holds unread data, the next wait reports it again.

use super::{DemoContext, MUST_COME, loopback_pair};
use crate::backend::{Backend, Interest};
use anyhow::Result;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

pub fn run(ctx: &DemoContext) -> Result<()> {
    for line in [
        "The client sends 5 bytes and the server never reads them. Edge-triggered epoll reports",
        "them once; a second wait reports nothing; EPOLL_CTL_MOD with the same interest makes",
        "epoll look at the descriptor again, and the next wait reports it anew.",
        "",
    ] {
        ctx.say(line);
    }
    let (mut client, server) = loopback_pair()?;
    let mut mux = ctx.mux(Backend::EpollEt)?;
    mux.register(server.as_fd(), Interest::READ)?;
    client.write_all(b"hello")?;
    let mut events = Vec::new();
    let steps = [
        ("first wait", MUST_COME, false),
        (
            "second wait, nothing read",
            Duration::from_millis(200),
            false,
        ),
        ("after EPOLL_CTL_MOD", Duration::from_millis(200), true),
    ];
    for (what, timeout, modify) in steps {
        if modify {
            mux.modify(server.as_fd(), Interest::READ)?;
        }
        mux.wait(&mut events, Some(timeout))?;
        ctx.say(format!("{what}: {} report(s)", events.len()));
    }
    Ok(())
}
