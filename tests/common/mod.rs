//! Test helpers: an `iobench serve` child process on a loopback port, stopped by PID,
//! its statistics read into the library's own types.

#![allow(dead_code)] // each test binary uses its own part of this module

use iobench::backend::Backend;
use iobench::metrics::{Counts, ThreadStats};
use iobench::server::ServerStats;
use iobench::server::{Model, ReadStrategy};
use iobench::sys::{Call, Stat};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The threads the tests give a model that has more than one (dispatch workers,
/// I/O threads, reuseport reactors).
pub const THREADS: usize = 2;

/// `serve` flags for `backend` with `model` and [`THREADS`] threads.
pub fn model_args(backend: Backend, model: Model) -> Vec<String> {
    [
        "--backend",
        backend.name(),
        "--model",
        model.name(),
        "--threads",
    ]
    .map(String::from)
    .into_iter()
    .chain([THREADS.to_string()])
    .collect()
}

/// Borrowed, as `Server::start` takes them.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Every backend with every threading model it serves with (io-uring: not all).
pub fn combinations_with_models() -> Vec<(Backend, Model)> {
    Backend::ALL
        .iter()
        .flat_map(|&b| Model::ALL.iter().map(move |&m| (b, m)))
        .filter(|&(b, m)| iobench::server::unsupported(b, m).is_none())
        .collect()
}

/// Every backend with every read strategy it accepts without a flag (not one that
/// strands data under its trigger; io-uring takes only its own).
pub fn combinations() -> Vec<(Backend, ReadStrategy)> {
    Backend::ALL
        .iter()
        .flat_map(|&b| ReadStrategy::ALL.iter().map(move |&s| (b, s)))
        .filter(|(b, s)| !s.strands_data(b.trigger()) && s.applies_to(*b))
        .collect()
}

/// A child process the test waits for; if the test ends first (a failed assertion),
/// dropping this kills it by its PID, or its whole process group when it leads one,
/// so that nothing outlives the test.
pub struct Reaped {
    child: Option<Child>,
    group: bool,
}

impl Reaped {
    pub fn new(child: Child) -> Reaped {
        Reaped {
            child: Some(child),
            group: false,
        }
    }

    /// For a child spawned with `process_group(0)`: its own children die with it.
    pub fn group(child: Child) -> Reaped {
        Reaped {
            child: Some(child),
            group: true,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("not yet waited for").id()
    }

    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut().expect("not yet waited for");
        child.try_wait().expect("try_wait")
    }

    /// Waits for the child to end and returns its output; fails the test (and kills
    /// the child, on drop) if it runs past `limit`.
    pub fn wait_within(mut self, limit: Duration, what: &str) -> std::process::Output {
        let deadline = std::time::Instant::now() + limit;
        while self.try_wait().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "{what} still runs after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.wait_with_output()
    }

    pub fn wait_with_output(mut self) -> std::process::Output {
        let child = self.child.take().expect("not yet waited for");
        child.wait_with_output().expect("wait for the child")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            let target = if self.group { -pid } else { pid };
            let _ = kill(Pid::from_raw(target), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

/// A running server. Dropping it kills the process (by PID) if it still runs.
pub struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `iobench serve --json ARGS` and waits for its `listening on` line.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with(args, |_| {})
    }

    pub fn start_with(args: &[&str], tweak: impl FnOnce(&mut Command)) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_iobench"));
        cmd.arg("serve")
            .arg("--json")
            .args(args)
            // A test that hangs must not leave a server behind for long.
            .args(["--duration", "120s"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        tweak(&mut cmd);
        let mut child = cmd.spawn().expect("start iobench serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the first line");
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("no `listening on` line, got {line:?}; stderr: {err}");
        };
        let addr = addr.parse().expect("an IP:PORT after `listening on`");
        Server {
            child,
            stdout,
            addr,
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect to the server");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Asks for a statistics snapshot (SIGUSR1) and returns it.
    pub fn snapshot(&mut self) -> ServerStats {
        kill(self.pid(), Signal::SIGUSR1).expect("signal the server");
        self.next_stats()
    }

    fn next_stats(&mut self) -> ServerStats {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read statistics");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad statistics {line:?}: {e}"))
    }

    /// Stops the server with SIGTERM, checks it exits cleanly, returns its final
    /// statistics and its stderr.
    pub fn stop(mut self) -> (ServerStats, String) {
        kill(self.pid(), Signal::SIGTERM).expect("signal the server");
        let stats = self.next_stats();
        assert!(stats.is_final, "{stats:?}");
        let status = self.child.wait().expect("wait for the server");
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(status.success(), "server exited with {status}: {err}");
        assert!(!err.contains("panicked"), "server panicked: {err}");
        (stats, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(self.pid(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// What `serve` counts: all threads added up (`ServerStats`), or one thread.
pub trait Counted {
    fn counts(&self) -> &Counts;
}

impl Counted for ServerStats {
    fn counts(&self) -> &Counts {
        &self.totals
    }
}

impl Counted for ThreadStats {
    fn counts(&self) -> &Counts {
        &self.counts
    }
}

/// A counter; the server prints every counter, so one that is missing fails the
/// test.
pub fn counter(of: &impl Counted, stat: Stat) -> u64 {
    let counts = of.counts();
    *counts
        .counters
        .get(stat.name())
        .unwrap_or_else(|| panic!("no counter {stat} in {counts:?}"))
}

/// Calls of one kind (only kinds that were made are printed).
pub fn syscalls(of: &impl Counted, call: Call) -> u64 {
    of.counts().syscalls.get(call.name()).copied().unwrap_or(0)
}

/// Bytes that differ by connection and by position, so a misplaced byte shows.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = iobench::rng::XorShift::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// Sends `data` and reads back exactly as many bytes.
pub fn round_trip(s: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    s.write_all(data).expect("send");
    let mut back = vec![0; data.len()];
    s.read_exact(&mut back).expect("read the echo");
    back
}

/// Half-closes, then reads until EOF.
pub fn finish(mut s: TcpStream) -> Vec<u8> {
    s.shutdown(Shutdown::Write).expect("shutdown(SHUT_WR)");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("read to EOF");
    rest
}

/// Runs `iobench ARGS`, which must succeed, and parses the JSON it prints (e.g. into
/// a `LoadReport`).
pub fn iobench_json<T: DeserializeOwned>(args: &[&str]) -> T {
    let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(args)
        .output()
        .expect("run iobench");
    assert!(
        out.status.success(),
        "iobench {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("iobench {args:?} printed no JSON ({e})"))
}

/// Gives the server `limit` descriptors (soft and hard), and with `fill_to`, takes
/// every descriptor from 3 to it first: in the forked child only, before exec.
pub fn limit_descriptors(cmd: &mut Command, limit: u64, fill_to: Option<i32>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the forked child before exec; setrlimit and dup2 are
    // async-signal-safe and touch only the child's own descriptor table.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 onto every number, not dup: descriptors the parent had open at
            // fork (close-on-exec) would leave holes once exec closes them.
            for fd in 3..=fill_to.unwrap_or(2) {
                libc::dup2(0, fd);
            }
            Ok(())
        });
    }
}
