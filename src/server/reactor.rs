//! The reactor: one thread, one multiplexer (or one io_uring), everything in one
//! loop (Redis before 6.0): accept, read, answer, write.

use super::accept::Accepting;
use super::event_loop::{EventLoop, Role};
use super::listener::Listener;
use super::{Loop, LoopMaker, uring};
use anyhow::Result;

/// One loop, on the calling thread.
pub fn build(maker: &mut LoopMaker, listener: Listener) -> Result<Vec<Box<dyn Loop>>> {
    Ok(vec![reactor(maker, "main", listener)?])
}

/// A reactor loop for thread `name`, accepting on `listener`: a completion loop
/// for io-uring, which accepts and serves by itself, else a readiness loop.
pub fn reactor(maker: &mut LoopMaker, name: &str, listener: Listener) -> Result<Box<dyn Loop>> {
    if maker.completion() {
        return Ok(Box::new(maker.ring(name, uring::Role::Reactor(listener))?));
    }
    let mut core = maker.core(name)?;
    let accepting = Accepting::new(listener, &mut core)?;
    Ok(Box::new(EventLoop::new(core, Role::Reactor(accepting))))
}
