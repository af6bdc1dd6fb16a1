//! The measured server as a child process: `iobench serve`, or anyone's server
//! (`--external`). Started, asked for snapshots (ours only), stopped, and never left
//! behind: ours is killed by PID on drop and dies with its parent; an external
//! command runs in a process group of its own (a pipeline is several processes),
//! which is stopped as a whole, with SIGKILL after a grace period, also when we are
//! interrupted.

use crate::server::ServerStats;
use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering::SeqCst};
use std::time::Duration;

pub struct ServerProcess {
    child: Child,
    /// Our server's statistics stream; None for an external server.
    stdout: Option<BufReader<ChildStdout>>,
    /// An external server's process group.
    group: Option<Group>,
    pub addr: SocketAddr,
}

/// How long an external server may take to accept its first connection.
const STARTUP: Duration = Duration::from_secs(10);
/// How long an external server's processes get to end after SIGTERM.
const GRACE: Duration = Duration::from_secs(3);

/// In the forked child before exec: die with the parent; run on `cpus` only (none:
/// anywhere), every thread the server starts inheriting it.
fn prepare_child(cmd: &mut Command, cpus: &[usize]) {
    let cpus = cpus.to_vec();
    // SAFETY: prctl and sched_setaffinity are plain system calls, async-signal-safe,
    // and run in the forked child only.
    unsafe {
        cmd.pre_exec(move || {
            // If we die (even by SIGKILL), the server goes too.
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            if !cpus.is_empty() {
                crate::sys::pin_to_cpus(&cpus)?;
            }
            Ok(())
        });
    }
}

impl ServerProcess {
    /// Starts `iobench serve --json ARGS`, bounded to `lifetime`, and waits for its
    /// `listening on` line (printed once all its threads run).
    pub fn start(args: &[String], cpus: &[usize], lifetime: Duration) -> Result<Self> {
        let exe = std::env::current_exe().context("finding the iobench executable")?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .arg("--json")
            .args(args)
            .arg("--duration")
            .arg(format!("{}ms", lifetime.as_millis()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        prepare_child(&mut cmd, cpus);
        let mut child = cmd.spawn().context("starting iobench serve")?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .context("reading the server's first line")?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            bail!("the server did not start: {}", err.trim());
        };
        let addr = addr
            .parse()
            .with_context(|| format!("the server printed {line:?}"))?;
        Ok(ServerProcess {
            child,
            stdout: Some(stdout),
            group: None,
            addr,
        })
    }

    /// Starts `command` (through `sh -c`, with `{port}` replaced by a free port) and
    /// waits until the port accepts connections.
    pub fn external(command: &str, cpus: &[usize]) -> Result<Self> {
        if !command.contains("{port}") {
            bail!("the external command must say where to listen with {{port}}: {command}");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut cmd = Command::new("sh");
        // exec: the shell becomes the server, so its PID is the server's.
        cmd.arg("-c")
            .arg(format!(
                "exec {}",
                command.replace("{port}", &port.to_string())
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group, led by the shell: every process of a pipeline in it.
            .process_group(0);
        prepare_child(&mut cmd, cpus);
        // Their groups are not ours, so a terminal's Ctrl-C does not reach them, and
        // PDEATHSIG reaches only the shell that leads each: the handler stops them.
        super::interrupt::install()?;
        let child = cmd.spawn().with_context(|| format!("starting {command}"))?;
        let group = Group::register(child.id() as i32);
        let mut server = ServerProcess {
            child,
            stdout: None,
            group: Some(group),
            addr,
        };
        let deadline = std::time::Instant::now() + STARTUP;
        while std::net::TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(server.died(status));
            }
            if std::time::Instant::now() > deadline {
                bail!("{command}: nothing accepted connections on port {port} within {STARTUP:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Our server's statistics now (SIGUSR1); None for an external server, which
    /// is only checked to be alive.
    pub fn snapshot(&mut self) -> Result<Option<ServerStats>> {
        if self.stdout.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.died(status));
            }
            return Ok(None);
        }
        self.signal(Signal::SIGUSR1)?;
        self.next_stats().map(Some)
    }

    /// Stops the server (SIGTERM) and returns its final statistics (ours only). An
    /// external server's whole group gets SIGTERM, and SIGKILL after the grace
    /// period if its leader has not ended by then (or members outlive it).
    pub fn stop(mut self) -> Result<Option<ServerStats>> {
        if let Some(group) = &self.group {
            group.signal(Signal::SIGTERM);
            let deadline = std::time::Instant::now() + GRACE;
            while self
                .child
                .try_wait()
                .context("waiting for the server")?
                .is_none()
            {
                if std::time::Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            group.signal(Signal::SIGKILL);
            self.child.wait().context("waiting for the server")?;
            return Ok(None);
        }
        self.signal(Signal::SIGTERM)?;
        let stats = self.next_stats()?;
        self.child.wait().context("waiting for the server")?;
        Ok(Some(stats))
    }

    fn signal(&mut self, sig: Signal) -> Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(self.died(status));
        }
        kill(Pid::from_raw(self.pid()), sig)
            .with_context(|| format!("signalling the server ({sig})"))
    }

    fn next_stats(&mut self) -> Result<ServerStats> {
        let mut line = String::new();
        let stdout = self
            .stdout
            .as_mut()
            .expect("only our server has statistics");
        let n = stdout
            .read_line(&mut line)
            .context("reading the server's statistics")?;
        if n == 0 {
            let status = self.child.wait().context("waiting for the server")?;
            return Err(self.died(status));
        }
        serde_json::from_str(&line).with_context(|| format!("the server printed {line:?}"))
    }

    fn died(&mut self, status: std::process::ExitStatus) -> anyhow::Error {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        anyhow!(
            "the server (pid {}) died mid-run ({status}){}",
            self.pid(),
            if err.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", err.trim())
            }
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(group) = &self.group {
            group.signal(Signal::SIGKILL);
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.pid()), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The process groups of the external servers running now, for the handler of
/// SIGINT and SIGTERM: a fixed table of atomics, since a signal handler may not
/// lock or allocate. (One server runs at a time; the table has room to spare.)
static GROUPS: [AtomicI32; 8] = [const { AtomicI32::new(0) }; 8];

/// An external server's process group, in [`GROUPS`] while it lives.
struct Group(i32);

impl Group {
    fn register(pgid: i32) -> Group {
        if let Some(slot) = GROUPS.iter().find(|g| g.load(SeqCst) == 0) {
            slot.store(pgid, SeqCst);
        }
        Group(pgid)
    }

    /// Every process of the group: once none is left, ESRCH, which is fine.
    fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(-self.0), sig);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for g in &GROUPS {
            let _ = g.compare_exchange(self.0, 0, SeqCst, SeqCst);
        }
    }
}

/// SIGTERM to every external group, up to a second for them to end, SIGKILL to what
/// is left. For the handler of SIGINT and SIGTERM ([`super::interrupt`]): only
/// async-signal-safe calls (kill, nanosleep), and atomics.
pub(super) fn stop_groups() {
    let each = |sig: libc::c_int| {
        for g in &GROUPS {
            let pgid = g.load(SeqCst);
            if pgid > 0 {
                // SAFETY: kill(2) is async-signal-safe; a group that is gone is ESRCH.
                unsafe { libc::kill(-pgid, sig) };
            }
        }
    };
    each(libc::SIGTERM);
    let alive = || {
        GROUPS.iter().any(|g| {
            let pgid = g.load(SeqCst);
            // SAFETY: as above; signal 0 only asks whether the group exists.
            pgid > 0 && unsafe { libc::kill(-pgid, 0) } == 0
        })
    };
    let tick = libc::timespec {
        tv_sec: 0,
        tv_nsec: 10_000_000,
    };
    for _ in 0..100 {
        if !alive() {
            break;
        }
        // SAFETY: nanosleep is async-signal-safe; the timespec lives across it.
        unsafe { libc::nanosleep(&tick, std::ptr::null_mut()) };
    }
    each(libc::SIGKILL);
}
