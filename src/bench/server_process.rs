//! `iobench serve` as a child process: started, asked for snapshots, stopped, and
//! never left behind (killed by PID on drop; it also dies with its parent).

use crate::metrics::ServerStats;
use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

pub struct ServerProcess {
    child: Child,
    stdout: BufReader<ChildStdout>,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `iobench serve --json ARGS`, bounded to `lifetime`, and waits for its
    /// `listening on` line (printed once all its threads run).
    pub fn start(args: &[String], cpu: Option<usize>, lifetime: Duration) -> Result<Self> {
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
        if let Some(cpu) = cpu {
            cmd.arg("--cpu").arg(cpu.to_string());
        }
        // SAFETY: prctl is async-signal-safe and runs in the forked child only.
        unsafe {
            cmd.pre_exec(|| {
                // If we die (even by SIGKILL), the server goes too.
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
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
            stdout,
            addr,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The server's statistics now (SIGUSR1).
    pub fn snapshot(&mut self) -> Result<ServerStats> {
        self.signal(Signal::SIGUSR1)?;
        self.next_stats()
    }

    /// Stops the server (SIGTERM) and returns its final statistics.
    pub fn stop(mut self) -> Result<ServerStats> {
        self.signal(Signal::SIGTERM)?;
        let stats = self.next_stats()?;
        self.child.wait().context("waiting for the server")?;
        Ok(stats)
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
        let n = self
            .stdout
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
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.pid()), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}
