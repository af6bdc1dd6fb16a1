//! libevent's benchmark (test/bench.c), which isolates the multiplexer from TCP:
//! descriptors in a ring, a few of them active; each readiness callback reads its
//! byte and writes one to the next descriptor of the ring, until a fixed number of
//! writes. What one dispatch pass (a wait that does not block, and its callbacks)
//! costs with N descriptors watched is the multiplexer's cost, nearly alone.
//!
//! Unlike libevent, both ends of each socketpair are watched (writing to one end
//! makes the other readable): N watched descriptors take N descriptors, not 2N, so
//! that 10,000 fit under this machine's 20,000 limit and select reaches ~1,000.

use crate::backend::{Backend, Interest};
use crate::sys::{Registry, Sys};
use anyhow::{Context, Result, bail};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use serde::Serialize;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Serialize)]
pub struct DispatchConfig {
    pub backend: Backend,
    /// Watched descriptors in the ring (even: both ends of N/2 socketpairs).
    pub descriptors: usize,
    /// Descriptors made readable at the start, evenly spaced around the ring.
    pub active: usize,
    /// One-byte writes each iteration makes after the first `active` ones.
    pub writes: usize,
    /// Timed iterations (one untimed iteration comes first).
    pub iterations: usize,
}

/// One timed iteration.
#[derive(Clone, Debug, Serialize)]
pub struct DispatchIteration {
    /// Dispatch passes: waits, each with the callbacks of what it reported.
    pub passes: u64,
    pub us: f64,
    /// Readiness events handled.
    pub events: u64,
    /// System calls, all kinds (our count): the waits, reads and writes.
    pub syscalls: u64,
    /// Entries our code looked at after the waits to find the ready ones.
    pub scanned: u64,
}

impl DispatchConfig {
    /// Why this configuration cannot run here, if it cannot.
    pub fn cannot_run(&self) -> Option<String> {
        let open = std::fs::read_dir("/proc/self/fd").map_or(8, |d| d.count());
        // The ring, what is open already, the multiplexer's own descriptor.
        let highest = open + self.descriptors + 1;
        if self.backend == Backend::Select && highest >= libc::FD_SETSIZE {
            return Some(format!("n/a (fd limit {})", libc::FD_SETSIZE));
        }
        let limit = crate::sys::raise_nofile_limit().unwrap_or(0) as usize;
        (highest > limit).then(|| format!("n/a (RLIMIT_NOFILE {limit})"))
    }
}

/// Builds the ring, registers it, and runs one untimed then `iterations` timed
/// iterations; every byte written is read back before an iteration ends.
pub fn measure(cfg: &DispatchConfig) -> Result<Vec<DispatchIteration>> {
    if cfg.descriptors < 2 || cfg.descriptors % 2 == 1 {
        bail!("descriptors must be an even number, at least 2 (both ends of socketpairs)");
    }
    if cfg.active == 0 || cfg.active > cfg.descriptors {
        bail!("active must be between 1 and the number of descriptors");
    }
    if let Some(why) = cfg.cannot_run() {
        bail!(
            "{} with {} descriptors: {why}",
            cfg.backend.name(),
            cfg.descriptors
        );
    }
    let counters = Registry::new().register("dispatch");
    let sys = Sys::new(counters);
    let mut ring: Vec<OwnedFd> = Vec::with_capacity(cfg.descriptors);
    for _ in 0..cfg.descriptors / 2 {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        )
        .context("socketpair")?;
        ring.extend([a, b]);
    }
    // Events name descriptors; this finds their place in the ring.
    let highest = ring.iter().map(|fd| fd.as_raw_fd()).max().unwrap_or(0) as usize;
    let mut place = vec![usize::MAX; highest + 1];
    for (i, fd) in ring.iter().enumerate() {
        place[fd.as_raw_fd() as usize] = i;
    }
    let mut mux = cfg.backend.create(sys.clone())?;
    for fd in &ring {
        mux.register(fd.as_fd(), Interest::READ)
            .context("registering the ring")?;
    }
    let mut events = Vec::new();
    let mut out = Vec::with_capacity(cfg.iterations);
    for i in 0..=cfg.iterations {
        let before = sys.counters().snapshot();
        let started = Instant::now();
        let mut it = DispatchIteration {
            passes: 0,
            us: 0.0,
            events: 0,
            syscalls: 0,
            scanned: 0,
        };
        // Writing to a descriptor's socketpair peer makes it readable.
        let poke = |at: usize| sys.write(ring[at ^ 1].as_fd(), b"e");
        let space = cfg.descriptors / cfg.active;
        for a in 0..cfg.active {
            poke(a * space).context("write")?;
        }
        let (mut fired, mut count, mut writes) = (cfg.active, 0, cfg.writes);
        let mut byte = [0u8; 1];
        while count < fired {
            let cost = mux.wait(&mut events, Some(Duration::ZERO))?;
            it.passes += 1;
            it.scanned += cost.scanned as u64;
            for ev in events.iter().filter(|e| e.readable) {
                it.events += 1;
                let at = place[ev.fd as usize];
                count += sys.read(ring[at].as_fd(), &mut byte).context("read")?;
                if writes > 0 {
                    poke((at + 1) % cfg.descriptors).context("write")?;
                    writes -= 1;
                    fired += 1;
                }
            }
            if it.passes > 100 * (cfg.writes + cfg.active) as u64 {
                bail!(
                    "{}: {count} of {fired} bytes came back after {} passes: readiness was lost",
                    cfg.backend.name(),
                    it.passes
                );
            }
        }
        it.us = started.elapsed().as_secs_f64() * 1e6;
        it.syscalls = sys.counters().snapshot().total_calls() - before.total_calls();
        // The first iteration warms caches and the kernel's structures, as libevent's
        // untimed pass does.
        if i > 0 {
            out.push(it);
        }
    }
    for fd in &ring {
        mux.deregister(fd.as_fd())?;
    }
    Ok(out)
}

/// Reported figures of one iteration.
pub const DISPATCH_FIGURES: &[crate::metrics::Figure<DispatchIteration>] = &[
    crate::metrics::Figure {
        key: "us_per_pass",
        label: "time per dispatch pass (us)",
        decimals: 2,
        value: |r| per_pass(r, r.us),
    },
    crate::metrics::Figure {
        key: "us_per_iteration",
        label: "time per iteration (us)",
        decimals: 0,
        value: |r| Some(r.us),
    },
    crate::metrics::Figure {
        key: "passes",
        label: "dispatch passes per iteration",
        decimals: 0,
        value: |r| Some(r.passes as f64),
    },
    crate::metrics::Figure {
        key: "events_per_pass",
        label: "events per pass",
        decimals: 2,
        value: |r| per_pass(r, r.events as f64),
    },
    crate::metrics::Figure {
        key: "syscalls_per_pass",
        label: "system calls per pass (our count)",
        decimals: 2,
        value: |r| per_pass(r, r.syscalls as f64),
    },
    crate::metrics::Figure {
        key: "fds_scanned_per_pass",
        label: "fds scanned by us per pass",
        decimals: 1,
        value: |r| per_pass(r, r.scanned as f64),
    },
];

fn per_pass(r: &DispatchIteration, x: f64) -> Option<f64> {
    (r.passes > 0).then(|| x / r.passes as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every backend carries every byte around the ring: one active descriptor means
    /// one event per pass and a write per event.
    #[test]
    fn every_backend_runs_the_ring() {
        for backend in [
            Backend::Select,
            Backend::Poll,
            Backend::EpollLt,
            Backend::EpollEt,
            Backend::Polling,
        ] {
            let cfg = DispatchConfig {
                backend,
                descriptors: 100,
                active: 1,
                writes: 50,
                iterations: 2,
            };
            let its = measure(&cfg).unwrap();
            assert_eq!(its.len(), 2);
            for it in its {
                assert_eq!(it.events, 51, "{}", backend.name());
                // Each event's callback comes on its own pass (the next descriptor
                // becomes readable only after it), plus the pass that finds nothing.
                assert!(it.passes >= 51 && it.passes <= 52, "{it:?}");
            }
        }
    }

    #[test]
    fn bad_rings_are_refused() {
        let mut cfg = DispatchConfig {
            backend: Backend::Poll,
            descriptors: 7,
            active: 1,
            writes: 1,
            iterations: 1,
        };
        assert!(measure(&cfg).is_err());
        cfg.descriptors = 8;
        cfg.active = 9;
        assert!(measure(&cfg).is_err());
        cfg.backend = Backend::Select;
        cfg.descriptors = 2000;
        cfg.active = 1;
        assert!(cfg.cannot_run().unwrap().contains("fd limit"));
    }
}
