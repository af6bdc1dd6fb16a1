//! io_uring through the counting layer: each `io_uring_enter` counted and traced, each
//! operation counted by kind as it is queued. The server's completion loop and the
//! load generator's ring driver both enter and queue through here.

use super::{Call, RingOp, Stat, Sys, outcome};
use anyhow::{Context, Result, bail};
use io_uring::{IoUring, cqueue, squeue, types};
use std::io;
use std::time::{Duration, Instant};

/// How long a ring's operations, once cancelled, may take to come back before the
/// memory they name is leaked rather than freed under them.
const QUIESCE_LIMIT: Duration = Duration::from_secs(5);

/// One io_uring_enter: submits everything queued and waits for `want` completions, or
/// until `timeout`. A timeout is no error. The timeout is an argument of the call
/// (IORING_ENTER_EXT_ARG), not a request of its own: the kernel's count of requests
/// is exactly the operations queued.
pub fn enter(
    sys: &Sys,
    ring: &mut IoUring,
    want: usize,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let queued = ring.submission().len();
    let ts = timeout.map(types::Timespec::from);
    let submitter = ring.submitter();
    // With `want` above 0, the crate always makes the call (even under SQPOLL), so
    // one count per call here is exact.
    let r = sys.counted(Call::IoUringEnter, || match &ts {
        Some(ts) => submitter.submit_with_args(want, &types::SubmitArgs::new().timespec(ts)),
        None => submitter.submit_and_wait(want),
    });
    sys.trace(|| {
        format!(
            "io_uring_enter(to_submit={queued}, min_complete={want}) {}",
            outcome(&r)
        )
    });
    sys.counters().add(Stat::Waits, (want > 0) as u64);
    match r {
        Ok(_) => Ok(()),
        // ETIME: the timer came first; EINTR: a signal; EBUSY: completions to reap
        // first.
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

/// Queues one operation for the next enter, counted as `kind`; a full submission
/// ring is submitted at once (one enter more). Err: that enter failed, and the
/// operation is not queued.
///
/// # Safety
/// As for the crate's `SubmissionQueue::push`: the memory and descriptors `entry`
/// names must stay valid until its last completion is reaped.
pub unsafe fn push(
    sys: &Sys,
    ring: &mut IoUring,
    entry: &squeue::Entry,
    kind: Option<RingOp>,
) -> io::Result<()> {
    loop {
        // SAFETY: the caller's promise, above.
        if unsafe { ring.submission().push(entry) }.is_ok() {
            // Counted as queued: with SUBMIT_ALL the next enter (or the SQPOLL
            // thread) submits every entry queued, in order.
            if let Some(kind) = kind {
                sys.counters().submitted(kind);
            }
            return Ok(());
        }
        enter(sys, ring, 0, None)?;
    }
}

/// Reaps until none of the `inflight` operations is left in the kernel (the caller has
/// cancelled them), each completion handed to `ended`, which says whether it was its
/// operation's last. Err: they did not all come back within [`QUIESCE_LIMIT`].
pub fn quiesce(
    sys: &Sys,
    ring: &mut IoUring,
    inflight: &mut usize,
    mut ended: impl FnMut(&cqueue::Entry) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + QUIESCE_LIMIT;
    while *inflight > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("{inflight} io_uring operations still in the kernel after {QUIESCE_LIMIT:?}");
        }
        enter(sys, ring, 1, Some(left)).context("io_uring_enter failed while stopping")?;
        for c in ring.completion() {
            if ended(&c) {
                *inflight = inflight.saturating_sub(1);
            }
        }
    }
    Ok(())
}
