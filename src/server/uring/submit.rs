//! Queueing operations and entering the kernel: what each operation is, in its user
//! data, and the one counted, traced io_uring_enter of a turn.

use super::{Ring, buffers};
use crate::sys::{Call, RingOp, Stat, outcome};
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
    /// One io_uring_enter, counted and traced: submits everything queued and waits
    /// for `want` completions, or until `timeout`. A timeout is no error. The timeout
    /// is an argument of the call (IORING_ENTER_EXT_ARG), not a request of its own:
    /// the kernel's count of requests is exactly the operations queued.
    pub(super) fn enter(&mut self, want: usize, timeout: Option<Duration>) -> io::Result<()> {
        let queued = self.ring.submission().len();
        let ts = timeout.map(types::Timespec::from);
        let submitter = self.ring.submitter();
        // With `want` above 0, the crate always makes the call (even under SQPOLL),
        // so one count per call here is exact.
        let r = self.sys.counted(Call::IoUringEnter, || match &ts {
            Some(ts) => submitter.submit_with_args(want, &types::SubmitArgs::new().timespec(ts)),
            None => submitter.submit_and_wait(want),
        });
        self.sys.trace(|| {
            format!(
                "io_uring_enter(to_submit={queued}, min_complete={want}) {}",
                outcome(&r)
            )
        });
        self.sys.counters().add(Stat::Waits, 1);
        match r {
            Ok(_) => Ok(()),
            // ETIME: the timer came first; EINTR: a signal (they are blocked in the
            // loops); EBUSY: completions to reap first.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Queues one operation for the next enter; a full submission ring is submitted
    /// at once (one enter more).
    pub(super) fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every operation queued here names memory that outlives it. A
            // recv draws from `self.buffers`, which the loop owns and frees only after
            // the kernel has given back every operation (`quiesce`), or leaks. A send
            // reads its connection's `flight`, which is not touched while the send is
            // in flight, and the connection is kept until its completion (`release`
            // waits for it; dropping the loop quiesces first). Accept, poll and cancel
            // name no memory of ours.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.inflight += 1;
                // Counted as queued: with SUBMIT_ALL the next enter (or the SQPOLL
                // thread) submits every entry queued, in order.
                if let Some((op, _)) = Op::untag(entry.get_user_data()) {
                    self.sys.counters().submitted(op.kind());
                }
                return;
            }
            if let Err(e) = self.enter(0, None) {
                self.trouble.get_or_insert(e);
                return;
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
