//! Ctrl-C (SIGINT) or SIGTERM while runs are measured: every external server's group
//! is stopped, a line says how far the runs had come ("interrupted after 4 of 15
//! runs, during run 2/5: select; no results written"), and the signal then ends the
//! process as if it had not been caught (status 130 after Ctrl-C in a shell). Our
//! own servers die with us (PDEATHSIG).
//!
//! A signal handler may only make async-signal-safe calls: no lock, no allocation,
//! no formatting. So how far the runs had come is kept in atomics, and the handler
//! builds its line from them on the stack and writes it with write(2).

use super::Step;
use super::server_process::stop_groups;
use anyhow::{Result, anyhow};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};

static DONE: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);
/// The step running now: its first [`RUNNING_LEN`] bytes. Emptied while rewritten,
/// so a handler that interrupts the rewrite sees no step rather than half of one.
static RUNNING: [AtomicU8; 120] = [const { AtomicU8::new(0) }; 120];
static RUNNING_LEN: AtomicUsize = AtomicUsize::new(0);
/// Whether stderr shows a progress bar, whose line the handler clears first.
static TERMINAL: AtomicBool = AtomicBool::new(false);

/// Installs (once) the handler of SIGINT and SIGTERM.
pub fn install() -> Result<()> {
    static INSTALLED: OnceLock<nix::Result<()>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        // Asked here, not in the handler: isatty is not async-signal-safe.
        TERMINAL.store(std::io::stderr().is_terminal(), SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(stop_and_die),
            SaFlags::empty(),
            SigSet::empty(),
        );
        for sig in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: the handler only makes async-signal-safe calls (kill,
            // nanosleep, write, signal, raise) and reads atomics.
            unsafe { sigaction(sig, &action) }?;
        }
        Ok(())
    });
    installed
        .as_ref()
        .map_err(|e| anyhow!("installing the SIGINT handler: {e}"))
        .map(|_| ())
}

/// Keeps `step` for the line an interrupt leaves.
pub fn reached(step: &Step) {
    DONE.store(step.done, SeqCst);
    TOTAL.store(step.total, SeqCst);
    RUNNING_LEN.store(0, SeqCst);
    let what = &step.what.as_bytes()[..step.what.len().min(RUNNING.len())];
    for (slot, &byte) in RUNNING.iter().zip(what) {
        slot.store(byte, SeqCst);
    }
    RUNNING_LEN.store(what.len(), SeqCst);
}

/// Stops the external servers, says how far the runs had come, then lets the
/// signal's default action end the process.
extern "C" fn stop_and_die(sig: libc::c_int) {
    stop_groups();
    let mut line = Line::new();
    if TERMINAL.load(SeqCst) {
        // The bar's line: the cursor back to its start, the line erased.
        line.push(b"\r\x1b[2K");
    }
    line.push(b"iobench: interrupted after ");
    line.number(DONE.load(SeqCst));
    line.push(b" of ");
    line.number(TOTAL.load(SeqCst));
    line.push(b" runs");
    let running = RUNNING_LEN.load(SeqCst);
    if running > 0 {
        line.push(b", during ");
        for slot in &RUNNING[..running] {
            line.push(&[slot.load(SeqCst)]);
        }
    }
    line.push(b"; no results written\n");
    // SAFETY: write(2) is async-signal-safe; the buffer lives across the call and
    // holds `len` bytes. A failed write leaves nothing more to do.
    unsafe { libc::write(libc::STDERR_FILENO, line.buf.as_ptr().cast(), line.len) };
    // SAFETY: both are async-signal-safe; with the default action restored, the
    // raised signal ends the process as it would have without this handler.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// A line built on the stack, as a signal handler may; what does not fit is cut.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 256],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    /// `n` in decimal.
    fn number(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut first = digits.len();
        loop {
            first -= 1;
            digits[first] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[first..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_built_without_formatting() {
        let mut line = Line::new();
        line.push(b"after ");
        line.number(0);
        line.push(b" of ");
        line.number(usize::MAX);
        assert_eq!(
            &line.buf[..line.len],
            format!("after 0 of {}", usize::MAX).as_bytes()
        );
        line.push(&[b'x'; 300]);
        assert_eq!(line.len, 256);
    }
}
