//! libevent's benchmark (test/bench.c), which isolates the multiplexer from TCP:
//! descriptors in a ring, a few of them active; each readiness callback reads its
//! byte and writes one to the next descriptor of the ring, until a fixed number of
//! writes. What one pass (a wait that does not block, and its callbacks) costs with
//! N descriptors watched is the multiplexer's cost, nearly alone.
//!
//! Unlike libevent, both ends of each socketpair are watched (writing to one end
//! makes the other readable): N watched descriptors take N descriptors, not 2N, so
//! that 10,000 fit under this machine's 20,000 limit and select reaches ~1,000.

use crate::backend::{Backend, Event, Interest, Multiplexer, Trigger};
use crate::sys::{Registry, Sys};
use anyhow::{Context, Result, bail};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use serde::Serialize;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Serialize)]
pub struct RingConfig {
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

impl RingConfig {
    /// What an experiment's point runs with where it does not say.
    pub const DEFAULT: RingConfig = RingConfig {
        backend: Backend::EpollEt,
        descriptors: 1000,
        active: 1,
        writes: 1000,
        iterations: 5,
    };

    /// Why this configuration cannot run here, if it cannot. The ring measures a
    /// readiness multiplexer alone: the completion model has none to isolate.
    pub fn cannot_run(&self) -> Option<String> {
        if self.backend.trigger() == Trigger::Completion {
            return Some("n/a (a completion model: no multiplexer to isolate)".into());
        }
        let open = std::fs::read_dir("/proc/self/fd").map_or(8, |d| d.count());
        // The ring, what is open already, the multiplexer's own descriptor.
        let highest = open + self.descriptors + 1;
        if let Some(max) = self.backend.max_fd()
            && highest > max
        {
            return Some(format!("n/a (fd limit {})", max + 1));
        }
        let limit = crate::sys::raise_nofile_limit().unwrap_or(0) as usize;
        (highest > limit).then(|| format!("n/a (RLIMIT_NOFILE {limit})"))
    }
}

/// One timed iteration.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RingIteration {
    /// Passes: waits, each with the callbacks of what it reported.
    pub passes: u64,
    pub us: f64,
    /// Readiness events handled.
    pub events: u64,
    /// System calls, all kinds (our count): the waits, reads and writes.
    pub syscalls: u64,
    /// Entries our code looked at after the waits to find the ready ones.
    pub scanned: u64,
}

/// Builds the ring, registers it, and runs one untimed then `iterations` timed
/// iterations; every byte written is read back before an iteration ends.
pub fn measure(cfg: &RingConfig) -> Result<Vec<RingIteration>> {
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
    let sys = Sys::new(Registry::new().register("ring"));
    let ring = Ring::new(cfg.descriptors)?;
    let mut mux = cfg.backend.create(sys.clone())?;
    for fd in &ring.ends {
        mux.register(fd.as_fd(), Interest::READ)
            .context("registering the ring")?;
    }
    let mut events = Vec::new();
    let mut out = Vec::with_capacity(cfg.iterations);
    for i in 0..=cfg.iterations {
        let it = iterate(cfg, &sys, &ring, mux.as_mut(), &mut events)?;
        // The first iteration warms caches and the kernel's structures, as libevent's
        // untimed pass does.
        if i > 0 {
            out.push(it);
        }
    }
    for fd in &ring.ends {
        mux.deregister(fd.as_fd())?;
    }
    Ok(out)
}

/// Both ends of socketpairs, side by side: writing to one end makes the other
/// readable.
struct Ring {
    ends: Vec<OwnedFd>,
    /// Each descriptor's place in `ends`, by descriptor number: events name
    /// descriptors.
    place: Vec<usize>,
}

impl Ring {
    fn new(descriptors: usize) -> Result<Ring> {
        let mut ends: Vec<OwnedFd> = Vec::with_capacity(descriptors);
        for _ in 0..descriptors / 2 {
            let (a, b) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            )
            .context("socketpair")?;
            ends.extend([a, b]);
        }
        let highest = ends.iter().map(|fd| fd.as_raw_fd()).max().unwrap_or(0) as usize;
        let mut place = vec![usize::MAX; highest + 1];
        for (i, fd) in ends.iter().enumerate() {
            place[fd.as_raw_fd() as usize] = i;
        }
        Ok(Ring { ends, place })
    }

    fn place(&self, fd: RawFd) -> usize {
        self.place[fd as usize]
    }

    /// Makes the descriptor at `at` readable: one byte into its socketpair peer.
    fn poke(&self, sys: &Sys, at: usize) -> Result<()> {
        sys.write(self.ends[at ^ 1].as_fd(), b"e")
            .context("write")?;
        Ok(())
    }
}

/// One iteration: `active` descriptors poked, then every event read and passed on to
/// the next descriptor until `writes` writes, each pass a wait that does not block.
fn iterate(
    cfg: &RingConfig,
    sys: &Sys,
    ring: &Ring,
    mux: &mut dyn Multiplexer,
    events: &mut Vec<Event>,
) -> Result<RingIteration> {
    let before = sys.counters().snapshot();
    let started = Instant::now();
    let mut it = RingIteration::default();
    let space = cfg.descriptors / cfg.active;
    for a in 0..cfg.active {
        ring.poke(sys, a * space)?;
    }
    let (mut fired, mut count, mut writes) = (cfg.active, 0, cfg.writes);
    let mut byte = [0u8; 1];
    while count < fired {
        let cost = mux.wait(events, Some(Duration::ZERO))?;
        it.passes += 1;
        it.scanned += cost.scanned as u64;
        for ev in events.iter().filter(|e| e.readable) {
            it.events += 1;
            let at = ring.place(ev.fd);
            count += sys.read(ring.ends[at].as_fd(), &mut byte).context("read")?;
            if writes > 0 {
                ring.poke(sys, (at + 1) % cfg.descriptors)?;
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
    Ok(it)
}

/// Reported figures of one iteration.
pub const RING_FIGURES: &[crate::metrics::Figure<RingIteration>] = &[
    crate::metrics::Figure {
        key: "us_per_pass",
        label: "time per pass (us)",
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
        label: "passes per iteration",
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

fn per_pass(r: &RingIteration, x: f64) -> Option<f64> {
    (r.passes > 0).then(|| x / r.passes as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every backend carries every byte around the ring: one active descriptor means
    /// one event per pass and a write per event.
    #[test]
    fn every_backend_runs_the_ring() {
        for backend in Backend::readiness() {
            let cfg = RingConfig {
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
        let mut cfg = RingConfig {
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
        cfg.backend = Backend::IoUring;
        assert!(cfg.cannot_run().unwrap().contains("completion model"));
    }
}
