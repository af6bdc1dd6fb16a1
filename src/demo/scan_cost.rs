//! One ready descriptor among N idle ones (eventfds: one descriptor each, idle while
//! their counter is 0). select and poll hand all N to the kernel on every call and we
//! scan them afterwards; epoll's interest set is in the kernel and only the ready one
//! comes back. Measured: time per wait and descriptors scanned per wait.

use super::DemoContext;
use crate::backend::{Backend, Interest, Multiplexer, WaitStats};
use anyhow::{Context, Result};
use comfy_table::CellAlignment;
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
const BACKENDS: [Backend; 3] = [Backend::Select, Backend::Poll, Backend::EpollLt];
/// Measuring time per cell.
const BUDGET: Duration = Duration::from_millis(150);

/// Time per wait and what it handled, for one backend and N.
pub struct Cell {
    pub us_per_wait: f64,
    pub cost: WaitStats,
}

pub fn run(ctx: &DemoContext) -> Result<()> {
    ctx.paragraph(
        "One eventfd is ready (level-triggered: on every wait); N others are idle. Per wait: \
         select and poll copy all N+1 into the kernel, which checks each, and we scan them \
         afterwards; epoll hands back only the ready one.",
    );
    let limit = crate::sys::raise_nofile_limit()? as usize;
    let mut table = ctx.style().table();
    let mut header = vec!["idle descriptors".to_string()];
    header.extend(
        BACKENDS
            .iter()
            .map(|b| format!("{}: us/wait (scanned)", b.name())),
    );
    table.set_header(header);
    for n in SIZES {
        let mut row = vec![n.to_string()];
        for backend in BACKENDS {
            let cell = if n + 64 > limit {
                "n/a (RLIMIT_NOFILE)".to_string()
            } else {
                match measure(ctx.mux(backend)?, n)? {
                    Some(c) => format!("{:.2} ({})", c.us_per_wait, c.cost.scanned),
                    None => refused(backend),
                }
            };
            row.push(cell);
        }
        table.add_row(row);
    }
    for col in 1..=BACKENDS.len() {
        if let Some(c) = table.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    ctx.print(&ctx.style().render(table));
    ctx.say("(Times include the system call; this machine is noisy, so read the trend.)");
    Ok(())
}

/// The cell of a backend that refused a descriptor: only one with a limit does.
fn refused(backend: Backend) -> String {
    match backend.max_fd() {
        Some(max) => format!("n/a (fd limit {})", max + 1),
        None => "n/a (a descriptor was refused)".to_string(),
    }
}

/// Registers `idle` idle eventfds and then a ready one, and times waits. None when
/// the backend cannot watch that many (select past FD_SETSIZE).
pub fn measure(mut mux: Box<dyn Multiplexer>, idle: usize) -> Result<Option<Cell>> {
    let flags = EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC;
    let fds: Vec<EventFd> = (0..=idle)
        .map(|_| EventFd::from_value_and_flags(0, flags))
        .collect::<Result<_, _>>()
        .context("creating eventfds")?;
    for fd in &fds {
        match mux.register(fd.as_fd(), Interest::READ) {
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => return Ok(None),
            result => result?,
        }
    }
    fds[idle].write(1).context("making one eventfd ready")?;
    let mut events = Vec::new();
    let mut cost = WaitStats::default();
    let (mut waits, start) = (0u32, Instant::now());
    while start.elapsed() < BUDGET || waits < 10 {
        cost = mux.wait(&mut events, None)?;
        waits += 1;
    }
    let elapsed = start.elapsed();
    for fd in &fds {
        mux.deregister(fd.as_fd())?;
    }
    Ok(Some(Cell {
        us_per_wait: elapsed.as_secs_f64() * 1e6 / waits as f64,
        cost,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small sizes only: unit tests share one process, and select must find all
    /// of these below its limit while other tests hold descriptors of their own.
    #[test]
    fn select_and_poll_scan_all_epoll_only_the_ready_one() {
        let ctx = DemoContext::new(Box::new(std::io::sink()), crate::style::Style::PLAIN);
        for backend in BACKENDS {
            let small = measure(ctx.mux(backend).unwrap(), 10).unwrap().unwrap();
            let large = measure(ctx.mux(backend).unwrap(), 200).unwrap().unwrap();
            assert_eq!(small.cost.ready, 1);
            match backend {
                Backend::EpollLt => assert_eq!((small.cost.scanned, large.cost.scanned), (1, 1)),
                _ => assert_eq!(
                    (small.cost.scanned, large.cost.scanned),
                    (11, 201),
                    "{backend:?}"
                ),
            }
        }
    }
}
