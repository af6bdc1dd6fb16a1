//! CPU pinning: the server on some CPUs, the load generator on others.

use anyhow::{Context, Result, bail};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// Pins the calling thread, and every thread it starts afterwards, to one CPU.
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    check_cpu(cpu)?;
    pin_to_cpus(&[cpu]).with_context(|| format!("pinning to CPU {cpu}"))
}

/// Lets the calling thread, and every thread (and program) it starts afterwards, run
/// on `cpus` only: the scheduler places each thread within them. Safe to call
/// between fork and exec (no allocation).
pub fn pin_to_cpus(cpus: &[usize]) -> nix::Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
}

/// CPUs this machine has, as everything else in iobench counts them.
pub fn machine_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Why a CPU layout (every CPU it names, server's and client's) cannot be had here,
/// if it cannot: it needs more CPUs than the machine has, which is said and never
/// squeezed onto fewer, or it names one this process may not use.
pub fn layout_unavailable(cpus: &[usize]) -> Option<String> {
    let needs = cpus.iter().max()? + 1;
    let has = machine_cpus();
    if needs > has {
        return Some(format!("needs {needs} CPUs, this machine has {has}"));
    }
    cpus.iter()
        .find_map(|&cpu| check_cpu(cpu).err())
        .map(|e| e.to_string())
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
