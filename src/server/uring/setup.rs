//! Making a ring as the options say, and why a kernel refuses one.

use crate::server::{LoopOptions, RingSetup};
use crate::sys::{Call, Sys};
use anyhow::{Context, Result, anyhow};
use io_uring::IoUring;
use std::io;
use std::sync::OnceLock;

/// Submission ring entries.
pub const SQ_ENTRIES: u32 = 1024;
/// Completion ring entries: four times as many, since a multishot operation posts
/// many completions for one submission.
pub const CQ_ENTRIES: u32 = SQ_ENTRIES * 4;

/// Sets up a ring as `opts.ring` says, disabled until its loop's thread enables it.
pub fn ring(sys: &Sys, opts: &LoopOptions) -> Result<IoUring> {
    let mut builder = IoUring::builder();
    builder
        .setup_cqsize(CQ_ENTRIES)
        .setup_submit_all()
        .setup_r_disabled();
    match opts.ring {
        RingSetup::Plain => {}
        RingSetup::DeferTaskrun => {
            builder.setup_single_issuer().setup_defer_taskrun();
        }
        RingSetup::Sqpoll => {
            let idle = u32::try_from(opts.sqpoll_idle.as_millis()).unwrap_or(u32::MAX);
            builder.setup_sqpoll(idle);
        }
    }
    let ring = sys
        .counted(Call::IoUringSetup, || builder.build(SQ_ENTRIES))
        .map_err(unavailable)
        .with_context(|| format!("setting up an io_uring (--ring {})", opts.ring))?;
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
    Ok(ring)
}

/// Why this process may not use io_uring at all, if it may not: the words `serve
/// --backend io-uring` fails with. Asked once, by setting up the smallest plain ring.
pub fn unavailable_here() -> Option<String> {
    static ANSWER: OnceLock<Option<String>> = OnceLock::new();
    ANSWER
        .get_or_init(|| IoUring::new(1).err().map(|e| unavailable(e).to_string()))
        .clone()
}

/// An io_uring refusal, with what it usually means.
fn unavailable(e: io::Error) -> anyhow::Error {
    let why = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into());
            format!(
                " (kernel.io_uring_disabled is {disabled}; 0 allows it, or a seccomp policy \
                 refuses it)"
            )
        }
        Some(libc::ENOSYS) => " (this kernel has no io_uring)".into(),
        Some(libc::EINVAL) => " (a setup flag this kernel does not know: try --ring plain)".into(),
        _ => String::new(),
    };
    anyhow!("io_uring unavailable: {e}{why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal says what it usually means; a kernel that disables io_uring is found
    /// out before anything runs.
    #[test]
    fn a_refused_ring_says_why() {
        let refused = unavailable(io::Error::from_raw_os_error(libc::EPERM)).to_string();
        assert!(refused.starts_with("io_uring unavailable: "), "{refused}");
        assert!(refused.contains("kernel.io_uring_disabled is"), "{refused}");
        let old = unavailable(io::Error::from_raw_os_error(libc::ENOSYS)).to_string();
        assert!(old.contains("this kernel has no io_uring"), "{old}");
        let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
            .is_ok_and(|v| v.trim() == "2");
        if disabled {
            assert!(unavailable_here().is_some());
        }
    }
}
