//! The control thread: turns signals into actions for the event loops.
//!
//! SIGINT, SIGTERM and SIGUSR1 are blocked in every thread (the mask is set before
//! any thread is spawned and inherited), and this thread alone takes them with
//! sigtimedwait, so an event loop is never interrupted in the middle of a call.
//! SIGUSR1 prints a snapshot of the statistics (a parent measuring a window asks for
//! one at each end); SIGINT, SIGTERM or the end of `--duration` stop the loops.

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sys::Sys;

fn control_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGUSR1);
    set
}

/// Blocks the control signals in the calling thread and every thread it spawns
/// later. Call it before any other thread exists.
/// The control thread's name: it serves statistics and stops the loops, no clients.
pub const THREAD: &str = "control";

pub fn block_signals() -> Result<()> {
    control_signals()
        .thread_block()
        .context("blocking SIGINT/SIGTERM/SIGUSR1")
}

/// How the loops are told to stop: a flag, and one byte into each loop's wake pipe.
pub struct Stopper {
    pub flag: Arc<AtomicBool>,
    pub wakers: Vec<OwnedFd>,
}

impl Stopper {
    pub fn stop(&self, sys: &Sys) {
        self.flag.store(true, Ordering::Release);
        for w in &self.wakers {
            // A full pipe already holds a wake-up; nothing else can fail here.
            let _ = sys.write(w.as_fd(), b"s");
        }
    }
}

/// Starts the control thread. `snapshot` prints the statistics; it runs on SIGUSR1.
pub fn spawn(
    sys: Sys,
    stopper: Stopper,
    duration: Option<Duration>,
    snapshot: impl Fn(&Sys) + Send + 'static,
) -> Result<JoinHandle<()>> {
    let deadline = duration.map(|d| Instant::now() + d);
    std::thread::Builder::new()
        .name(THREAD.into())
        .spawn(move || {
            sys.counters().mark_thread();
            let set = control_signals();
            // Anything but SIGUSR1 (SIGINT, SIGTERM, or the deadline) means stop.
            while let Some(Signal::SIGUSR1) = wait_signal(&set, deadline) {
                snapshot(&sys);
            }
            stopper.stop(&sys);
            sys.thread_ends();
        })
        .context("spawning the control thread")
}

/// The next control signal, or None once the deadline has passed.
fn wait_signal(set: &SigSet, deadline: Option<Instant>) -> Option<Signal> {
    loop {
        let timeout = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            }
        });
        let ts = timeout
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: the set is a valid sigset_t; siginfo may be null; ts is null (wait
        // forever) or points at a live timespec.
        let sig = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), ts) };
        if sig >= 0 {
            return Signal::try_from(sig).ok();
        }
        match nix::errno::Errno::last() {
            nix::errno::Errno::EAGAIN => return None,
            _ => continue, // EINTR: another signal's handler ran; wait again
        }
    }
}
