//! Process limits that decide how many connections a run can hold.

use anyhow::{Context, Result};
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the new soft limit:
/// 10,000 idle connections need more than the usual default of 1,024.
pub fn raise_nofile_limit() -> Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit(RLIMIT_NOFILE)")?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("setrlimit(RLIMIT_NOFILE)")?;
    }
    Ok(hard)
}

/// Descriptors of this process that a child it starts inherits (numbered 3 and up,
/// without FD_CLOEXEC: a shell's or a build tool's, passed down to us). They take
/// numbers in the child before any of its own.
pub fn inherited_descriptors() -> Result<usize> {
    let dir = std::fs::read_dir("/proc/self/fd").context("listing /proc/self/fd")?;
    let mut n = 0;
    for entry in dir {
        let name = entry.context("listing /proc/self/fd")?.file_name();
        let Some(fd) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: F_GETFD only reads the descriptor's flags; a number that is no
        // longer open (the directory's own, closed by now) fails with EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if fd >= 3 && flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            n += 1;
        }
    }
    Ok(n)
}
