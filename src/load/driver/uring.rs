//! The completion driver: one io_uring per load thread. Each connection always has
//! one plain recv queued, into its own buffer (as large as the echo bytes it can be
//! owed, so one recv takes them all; a buffer ring would save nothing here), and at
//! most one send, so that its bytes go out in order; a short send is sent again for
//! the rest. One io_uring_enter per turn submits everything queued and waits, up to
//! the books' timeout, for a completion; the turn then reaps every one there is.

use super::{Drive, Output};
use crate::load::client::Book;
use crate::sys::{Call, RingOp, Stat, Sys, uring};
use anyhow::{Context, Result};
use io_uring::{IoUring, opcode, squeue, types};
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The largest submission ring the kernel sets up (its completion ring may be twice
/// as large); a thread with more connections than half of it submits early when the
/// ring fills.
const MAX_ENTRIES: u32 = 32768;

/// What an operation was, in the top half of its user data; the bottom half is the
/// connection's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Recv = 1,
    Send,
    Cancel,
}

impl Op {
    fn tag(self, c: usize) -> u64 {
        ((self as u64) << 32) | c as u32 as u64
    }

    /// The kind it is counted as.
    fn kind(self) -> RingOp {
        match self {
            Op::Recv => RingOp::Recv,
            Op::Send => RingOp::Send,
            Op::Cancel => RingOp::Cancel,
        }
    }

    fn untag(data: u64) -> Option<(Op, usize)> {
        let op = match data >> 32 {
            1 => Op::Recv,
            2 => Op::Send,
            3 => Op::Cancel,
            _ => return None,
        };
        Some((op, data as u32 as usize))
    }
}

pub struct Uring {
    /// Declared first, so dropped first, and only once the kernel holds nothing of
    /// the memory below (`Drop`).
    ring: IoUring,
    sys: Sys,
    out: Vec<Output>,
    /// Each connection's receive buffer: the kernel writes into it while its recv
    /// is queued.
    rx: Vec<Box<[u8]>>,
    /// A send of the connection's output is in the kernel: the output stays as it is.
    sending: Vec<bool>,
    /// Operations the kernel holds.
    inflight: usize,
    /// The completions of one turn, reaped before any is handled.
    reaped: Vec<(u64, i32)>,
    /// A failed enter made while queueing (a full submission ring), for the turn.
    trouble: Option<io::Error>,
}

impl Uring {
    pub fn new(sys: Sys, book: &Book) -> Result<Uring> {
        // Each connection holds at most a recv and a send; a cancel at the end.
        let ops = 2 * book.len() as u32 + 1;
        let entries = ops.next_power_of_two().min(MAX_ENTRIES);
        let mut builder = IoUring::builder();
        // Completion work runs when this thread waits, in a batch (what the server
        // measured best); the thread that sets the ring up is the only one to use it.
        builder
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(ops.next_power_of_two().min(2 * MAX_ENTRIES));
        let ring = sys
            .counted(Call::IoUringSetup, || builder.build(entries))
            .context(
                "setting up the load generator's io_uring (--driver io-uring needs Linux 6.1 \
                 or later with io_uring allowed; --driver epoll does without)",
            )?;
        // The crate maps the rings: the submission entries, and the two rings in one
        // mapping (IORING_FEAT_SINGLE_MMAP) or two.
        let maps = if ring.params().is_feature_single_mmap() {
            2
        } else {
            3
        };
        for _ in 0..maps {
            sys.counters().call(Call::Mmap);
        }
        let size = book.most_owed().min(64 * 1024);
        let mut uring = Uring {
            ring,
            sys,
            out: (0..book.len()).map(|_| Output::default()).collect(),
            rx: (0..book.len())
                .map(|_| vec![0u8; size].into_boxed_slice())
                .collect(),
            sending: vec![false; book.len()],
            inflight: 0,
            reaped: Vec::with_capacity(entries as usize),
            trouble: None,
        };
        for c in 0..book.len() {
            uring.arm_recv(book, c);
        }
        Ok(uring)
    }

    /// One io_uring_enter ([`uring::enter`]).
    fn enter(&mut self, want: usize, timeout: Option<Duration>) -> io::Result<()> {
        uring::enter(&self.sys, &mut self.ring, want, timeout)
    }

    /// Queues one operation for the next enter ([`uring::push`]); a failed enter
    /// on a full submission ring is kept for the turn.
    fn push(&mut self, entry: squeue::Entry) {
        let kind = Op::untag(entry.get_user_data()).map(|(op, _)| op.kind());
        // SAFETY: every operation queued here names memory that outlives it. A
        // recv writes into its connection's `rx` buffer and a send reads its
        // `out`, which is not changed while the send is in the kernel (`sending`;
        // `Output` takes a new batch only once the last is written). Both are
        // freed only after the kernel has given back every operation (`Drop`
        // quiesces first), or leaked. The descriptors they name belong to the
        // books, which outlive this driver (`client::run_thread`).
        match unsafe { uring::push(&self.sys, &mut self.ring, &entry, kind) } {
            Ok(()) => self.inflight += 1,
            Err(e) => {
                self.trouble.get_or_insert(e);
            }
        }
    }

    fn arm_recv(&mut self, book: &Book, c: usize) {
        let buf = &mut self.rx[c];
        let entry = opcode::Recv::new(
            types::Fd(book.fd(c).as_raw_fd()),
            buf.as_mut_ptr(),
            buf.len() as u32,
        )
        .build()
        .user_data(Op::Recv.tag(c));
        self.push(entry);
    }

    fn complete(&mut self, book: &mut Book, data: u64, res: i32, now: Instant) {
        self.inflight -= 1;
        let Some((op, c)) = Op::untag(data) else {
            return;
        };
        self.sys.counters().completed(op.kind());
        let retry = matches!(-res, libc::EINTR | libc::EAGAIN);
        match op {
            Op::Recv if !book.is_open(c) => {}
            Op::Recv if res > 0 => {
                book.received(c, &self.rx[c][..res as usize], now);
                self.arm_recv(book, c);
                self.flush(book, c, now);
            }
            Op::Recv if retry => self.arm_recv(book, c),
            // 0: the server closed; below: reset, or another error.
            Op::Recv => book.lose(c),
            Op::Send => {
                self.sending[c] = false;
                if !book.is_open(c) {
                    return;
                }
                if res >= 0 {
                    self.out[c].wrote(book, c, res as usize);
                } else if !retry {
                    return book.lose(c);
                }
                self.flush(book, c, now);
            }
            Op::Cancel => {}
        }
    }

    /// Takes back every operation the kernel holds: cancelled, then reaped.
    fn quiesce(&mut self) -> Result<()> {
        if self.inflight == 0 {
            return Ok(());
        }
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(Op::Cancel.tag(0));
        self.push(entry);
        // Its operations are single-shot: each completion is one's last.
        uring::quiesce(&self.sys, &mut self.ring, &mut self.inflight, |_| true)
    }
}

impl Drive for Uring {
    fn flush(&mut self, book: &mut Book, c: usize, now: Instant) {
        if self.sending[c] || !book.is_open(c) {
            return;
        }
        let bytes = self.out[c].next(book, c, now);
        if bytes.is_empty() {
            return;
        }
        let entry = opcode::Send::new(
            types::Fd(book.fd(c).as_raw_fd()),
            bytes.as_ptr(),
            bytes.len() as u32,
        )
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(Op::Send.tag(c));
        self.sending[c] = true;
        self.push(entry);
    }

    fn turn(&mut self, book: &mut Book, timeout: Duration) -> io::Result<()> {
        self.enter(1, Some(timeout))?;
        let mut reaped = std::mem::take(&mut self.reaped);
        reaped.clear();
        reaped.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
        let c = self.sys.counters();
        c.add(Stat::Wakeups, !reaped.is_empty() as u64);
        c.add(Stat::Events, reaped.len() as u64);
        let now = Instant::now();
        for &(data, res) in &reaped {
            self.complete(book, data, res, now);
        }
        self.reaped = reaped;
        self.trouble.take().map_or(Ok(()), Err)
    }
}

impl Drop for Uring {
    /// The kernel may still hold a recv per connection: take them back first, or,
    /// failing that, leak the memory they use rather than free it under them.
    fn drop(&mut self) {
        if self.quiesce().is_err() {
            std::mem::forget(std::mem::take(&mut self.rx));
            std::mem::forget(std::mem::take(&mut self.out));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_says_the_operation_and_the_connection() {
        for op in [Op::Recv, Op::Send, Op::Cancel] {
            assert_eq!(Op::untag(op.tag(1234)), Some((op, 1234)));
        }
        assert_eq!(Op::untag(0), None);
    }
}
