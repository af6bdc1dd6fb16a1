//! CPU pinning: the server on one CPU, the load generator on others.

use anyhow::{Context, Result, bail};

/// Pins the calling thread, and every thread it starts afterwards, to one CPU.
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    if cpu >= CpuSet::count() {
        bail!("CPU {cpu} does not exist");
    }
    set.set(cpu).context("CPU set")?;
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).with_context(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        format!(
            "cannot pin to CPU {cpu} (this machine lets us use {n} CPUs: 0..{})",
            n - 1
        )
    })
}
