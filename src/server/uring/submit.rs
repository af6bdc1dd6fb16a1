//! Queueing operations and entering the kernel: what each operation is, in its user
//! data, and the one counted, traced io_uring_enter of a turn.

use super::{Ring, buffers};
use crate::sys::{RingOp, uring};
use io_uring::{opcode, squeue, types};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// What an operation was, in the top half of its user data; the bottom half is the
/// descriptor it was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Accept = 1,
    Recv,
    Send,
    Cancel,
    /// A poll on the wake pipe: a byte there means "look at the stop flag".
    Wake,
    /// A poll on the listener, while out of descriptors: a client is waiting.
    Listen,
    /// A poll on a dispatch worker's notification pipe: connections are queued.
    Inbox,
}

impl Op {
    pub fn tag(self, fd: RawFd) -> u64 {
        ((self as u64) << 32) | fd as u32 as u64
    }

    pub fn untag(data: u64) -> Option<(Op, RawFd)> {
        let op = match data >> 32 {
            1 => Op::Accept,
            2 => Op::Recv,
            3 => Op::Send,
            4 => Op::Cancel,
            5 => Op::Wake,
            6 => Op::Listen,
            7 => Op::Inbox,
            _ => return None,
        };
        Some((op, data as u32 as RawFd))
    }

    /// The kind it is counted and traced as.
    pub fn kind(self) -> RingOp {
        match self {
            Op::Accept => RingOp::Accept,
            Op::Recv => RingOp::Recv,
            Op::Send => RingOp::Send,
            Op::Cancel => RingOp::Cancel,
            Op::Wake | Op::Listen | Op::Inbox => RingOp::Poll,
        }
    }
}

/// A send of `bytes` on `fd`. The caller keeps `bytes` where they are, untouched,
/// until the send's completion (see `Ring::push`).
pub fn send(fd: RawFd, bytes: &[u8]) -> squeue::Entry {
    let len = bytes.len().min(u32::MAX as usize) as u32;
    opcode::Send::new(types::Fd(fd), bytes.as_ptr(), len)
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(Op::Send.tag(fd))
}

impl Ring {
    /// One io_uring_enter ([`uring::enter`]): submits everything queued and waits
    /// for `want` completions, or until `timeout`.
    pub(super) fn enter(&mut self, want: usize, timeout: Option<Duration>) -> io::Result<()> {
        uring::enter(&self.sys, &mut self.ring, want, timeout)
    }

    /// Queues one operation for the next enter ([`uring::push`]); a failed enter
    /// on a full submission ring is kept for the turn.
    pub(super) fn push(&mut self, entry: squeue::Entry) {
        let kind = Op::untag(entry.get_user_data()).map(|(op, _)| op.kind());
        // SAFETY: every operation queued here names memory that outlives it. A
        // recv draws from `self.buffers`, which the loop owns and frees only after
        // the kernel has given back every operation (`quiesce`), or leaks. A send
        // reads its connection's `flight`, which is not touched while the send is
        // in flight, and the connection is kept until its completion (`release`
        // waits for it; dropping the loop quiesces first). Accept, poll and cancel
        // name no memory of ours.
        match unsafe { uring::push(&self.sys, &mut self.ring, &entry, kind) } {
            Ok(()) => self.inflight += 1,
            Err(e) => {
                self.trouble.get_or_insert(e);
            }
        }
    }

    /// Arms the multishot accept (a loop that accepts).
    pub(super) fn arm_accept(&mut self) {
        let Some(listener) = self.role.listener() else {
            return;
        };
        let fd = listener.fd().as_raw_fd();
        self.listening = false;
        // Accepted sockets are left blocking: io_uring waits for them itself, and
        // the loop never reads or writes them with a system call of its own.
        let entry = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(Op::Accept.tag(fd));
        self.accept_armed = true;
        self.push(entry);
    }

    /// Out of descriptors with nobody waiting: a poll says when a client comes.
    pub(super) fn arm_listen(&mut self) {
        let Some(listener) = self.role.listener() else {
            return;
        };
        let fd = listener.fd().as_raw_fd();
        self.listening = true;
        self.poll(Op::Listen, fd);
    }

    /// A dispatch worker's notification pipe: a byte there is a connection queued.
    pub(super) fn arm_inbox(&mut self, fd: RawFd) {
        self.poll(Op::Inbox, fd);
    }

    pub(super) fn arm_wake(&mut self) {
        self.poll(Op::Wake, self.wake.as_raw_fd());
    }

    fn poll(&mut self, op: Op, fd: RawFd) {
        let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .build()
            .user_data(op.tag(fd));
        self.push(entry);
    }

    pub(super) fn arm_recv(&mut self, fd: RawFd) {
        let entry = opcode::RecvMulti::new(types::Fd(fd), buffers::GROUP)
            .build()
            .user_data(Op::Recv.tag(fd));
        self.push(entry);
    }

    /// Asks the kernel to stop the operation `op` of `fd` (its last completion says
    /// when it has).
    pub(super) fn cancel(&mut self, op: Op, fd: RawFd) {
        let entry = opcode::AsyncCancel::new(op.tag(fd))
            .build()
            .user_data(Op::Cancel.tag(fd));
        self.push(entry);
    }

    /// Asks the kernel to stop every operation of this ring.
    pub(super) fn cancel_all(&mut self) {
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::any().all())
            .build()
            .user_data(Op::Cancel.tag(-1));
        self.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_says_the_operation_and_the_descriptor() {
        for op in [
            Op::Accept,
            Op::Recv,
            Op::Send,
            Op::Cancel,
            Op::Wake,
            Op::Listen,
            Op::Inbox,
        ] {
            assert_eq!(Op::untag(op.tag(1234)), Some((op, 1234)));
        }
        assert_eq!(Op::untag(0), None);
    }
}
