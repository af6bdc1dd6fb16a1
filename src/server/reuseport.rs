//! N independent reactors, each with its own SO_REUSEPORT listener on the same port:
//! the kernel spreads new connections over the listeners, and nothing is shared.

use super::listener::{Listener, PortSharing};
use super::reactor::reactor;
use super::{Loop, LoopMaker};
use anyhow::Result;

/// `threads` reactors; the first runs on the calling thread, on `listener`.
pub fn build(maker: &mut LoopMaker, listener: Listener) -> Result<Vec<Box<dyn Loop>>> {
    let addr = listener.local_addr();
    let mut loops = vec![reactor(maker, "reactor-0", listener)?];
    for i in 1..maker.threads() {
        let more = Listener::bind(addr, PortSharing::Shared)?;
        loops.push(reactor(maker, &format!("reactor-{i}"), more)?);
    }
    Ok(loops)
}
