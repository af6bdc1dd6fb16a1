//! CPU pinning: the server on one CPU, the load generator on others.

use anyhow::{Context, Result, bail};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// Pins the calling thread, and every thread it starts afterwards, to one CPU.
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    check_cpu(cpu)?;
    let mut set = CpuSet::new();
    set.set(cpu).context("CPU set")?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("pinning to CPU {cpu}"))
}

/// Refuses a CPU this process may not run on, naming the ones it may: a check to
/// make before anything runs (`--server-cpu 99` said "Invalid argument").
pub fn check_cpu(cpu: usize) -> Result<()> {
    let allowed = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
    if cpu < CpuSet::count() && allowed.is_set(cpu).unwrap_or(false) {
        return Ok(());
    }
    let usable: Vec<String> = (0..CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .map(|c| c.to_string())
        .collect();
    bail!(
        "CPU {cpu} is not one this process may use; it may use CPUs {}",
        usable.join(", ")
    )
}
