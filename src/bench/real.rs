//! The real servers iobench models, as subjects beside ours: Redis (commands on its
//! main thread, reads and writes fanned out to I/O threads) and memcached (the main
//! thread accepts and hands each connection to a worker). Each is found on PATH and
//! started like any external command, on a free loopback port, with the run's
//! server threads.

use crate::metrics::CallCounter;
use crate::names::named_enum;
use anyhow::Result;
use serde::Serialize;

named_enum! {
    /// A real server `--external` can start by name.
    pub enum RealServer {
        /// redis-server, persistence off, --io-threads N (reads too)
        Redis => "redis",
        /// memcached -t N, no UDP
        Memcached => "memcached",
    }
}

impl RealServer {
    /// The program looked for on PATH.
    pub fn binary(self) -> &'static str {
        match self {
            RealServer::Redis => "redis-server",
            RealServer::Memcached => "memcached",
        }
    }

    /// The distribution's package that has it.
    fn package(self) -> &'static str {
        match self {
            RealServer::Redis => "redis-server",
            RealServer::Memcached => "memcached",
        }
    }

    /// Its command line with `threads` threads of its model (Redis's I/O threads,
    /// the main one included, as ours count them; memcached's workers) and `{port}`
    /// for the port: bound to loopback, in the foreground, quiet, nothing on disk.
    pub fn command(self, threads: usize) -> String {
        match self {
            RealServer::Redis => format!(
                "redis-server --save '' --appendonly no --io-threads {threads} \
                 --io-threads-do-reads yes --bind 127.0.0.1 --port {{port}} --daemonize no \
                 --protected-mode no --loglevel warning"
            ),
            // memcached refuses to run as root unless told which user to be.
            RealServer::Memcached => format!(
                "memcached -t {threads} -U 0 -l 127.0.0.1 -p {{port}}{}",
                if as_root() { " -u root" } else { "" }
            ),
        }
    }

    /// Why it cannot run here, if it cannot: its program is not on PATH.
    pub fn missing(self) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::var_os("PATH").unwrap_or_default();
        let found = std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(self.binary()))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
        (!found).then(|| {
            format!(
                "{} not installed: apt-get install {}",
                self.binary(),
                self.package()
            )
        })
    }

    /// How its listening thread (the main one) hands a new connection to a worker,
    /// when it does: memcached 1.6.18 accepts it (accept4, one per wakeup) and writes
    /// 8 bytes to the chosen worker's eventfd (older versions wrote one byte to a
    /// pipe; both are a write(2)), as strace shows. Redis's main thread serves the
    /// connections it accepts: nothing to count.
    pub fn handoff(self) -> Option<HandoffCalls> {
        match self {
            RealServer::Redis => None,
            RealServer::Memcached => Some(HandoffCalls {
                accept: "accept4",
                notify: "write",
            }),
        }
    }
}

/// The two system calls of a hand-off: the listener's accept and its notification.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct HandoffCalls {
    pub accept: &'static str,
    pub notify: &'static str,
}

/// Both calls counted on the listening thread (tracepoints, like `--kernel-counts`).
pub struct HandoffCounters {
    pub calls: HandoffCalls,
    accepts: CallCounter,
    notifies: CallCounter,
}

impl HandoffCounters {
    /// Err says why the kernel refused.
    pub fn open(tid: i32, calls: HandoffCalls) -> Result<HandoffCounters, String> {
        Ok(HandoffCounters {
            calls,
            accepts: CallCounter::open(tid, calls.accept)?,
            notifies: CallCounter::open(tid, calls.notify)?,
        })
    }

    /// Accepts and notifications so far.
    pub fn read(&mut self) -> Result<(u64, u64)> {
        Ok((self.accepts.read()?, self.notifies.read()?))
    }
}

fn as_root() -> bool {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::server_process::ServerProcess;
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    #[test]
    fn commands_listen_on_loopback_at_the_port_with_the_threads() {
        for server in RealServer::ALL {
            let command = server.command(3);
            assert!(command.starts_with(server.binary()), "{command}");
            assert!(command.contains("127.0.0.1"), "{command}");
            assert!(command.contains("{port}"), "{command}");
            assert!(command.contains(" 3 "), "{command}");
        }
    }

    /// A line asked of a real server on a fresh connection: Redis and memcached
    /// both answer an inline command, so this shows it serves, not only accepts.
    fn ask(addr: std::net::SocketAddr, command: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(command.as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line
    }

    /// Each preset starts the real server on the port it chose, pinned with all
    /// its threads to the CPU asked for, serving; stopped, its process and its
    /// group are gone.
    #[test]
    fn presets_start_pinned_serve_and_leave_nothing_behind() {
        for (server, command, answer) in [
            (RealServer::Redis, "PING\r\n", "+PONG"),
            (RealServer::Memcached, "version\r\n", "VERSION "),
        ] {
            assert_eq!(server.missing(), None, "the tests need {}", server.binary());
            let process = ServerProcess::external(&server.command(2), &[0]).unwrap();
            let pid = process.pid();
            assert!(process.addr.ip().is_loopback());
            assert!(ask(process.addr, command).starts_with(answer), "{server}");
            let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            assert!(tids.len() >= 2, "{server}: threads {tids:?}");
            for tid in tids {
                let set = nix::sched::sched_getaffinity(Pid::from_raw(tid)).unwrap();
                let on: Vec<usize> = (0..nix::sched::CpuSet::count())
                    .filter(|&c| set.is_set(c).unwrap_or(false))
                    .collect();
                assert_eq!(on, [0], "{server}: thread {tid}");
            }
            process.stop().unwrap();
            // Reaped by stop: no such process, nor any of its group.
            assert_eq!(
                kill(Pid::from_raw(pid), None),
                Err(Errno::ESRCH),
                "{server}"
            );
            assert_eq!(
                kill(Pid::from_raw(-pid), None),
                Err(Errno::ESRCH),
                "{server}"
            );
        }
    }

    /// memcached's listener, counted by tracepoints on its thread: one accept and
    /// one worker notification per connection.
    #[test]
    fn memcached_listener_notifies_a_worker_once_per_connection() {
        let server = RealServer::Memcached;
        let process = ServerProcess::external(&server.command(2), &[]).unwrap();
        // Served in order: once this one is answered, the readiness probe before it
        // has been accepted and handed off too.
        assert!(ask(process.addr, "version\r\n").starts_with("VERSION "));
        let mut counters = HandoffCounters::open(process.pid(), server.handoff().unwrap())
            .expect("perf_event_open on memcached's listener");
        let (accepts, notifies) = counters.read().unwrap();
        const CONNECTIONS: u64 = 6;
        for _ in 0..CONNECTIONS {
            assert!(ask(process.addr, "version\r\n").starts_with("VERSION "));
        }
        // Every connection was answered by a worker: its hand-off is done.
        let (a, n) = counters.read().unwrap();
        assert_eq!(a - accepts, CONNECTIONS);
        assert_eq!(n - notifies, CONNECTIONS);
        process.stop().unwrap();
    }
}
