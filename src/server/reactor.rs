//! The reactor: one thread, one multiplexer, everything in one loop (Redis before
//! 6.0): accept, read, answer, write.

use super::LoopMaker;
use super::accept::Accepting;
use super::event_loop::{EventLoop, Role};
use super::listener::Listener;
use anyhow::Result;

/// One loop, on the calling thread.
pub fn build(maker: &mut LoopMaker, listener: Listener) -> Result<Vec<EventLoop>> {
    Ok(vec![reactor(maker, "main", listener)?])
}

/// A reactor loop for thread `name`, accepting on `listener`.
pub fn reactor(maker: &mut LoopMaker, name: &str, listener: Listener) -> Result<EventLoop> {
    let mut core = maker.core(name)?;
    let accepting = Accepting::new(listener, &mut core)?;
    Ok(EventLoop::new(core, Role::Reactor(accepting)))
}
