//! Shutdown: SIGINT/SIGTERM make `serve` report and close its clients; a `compare`
//! interrupted with Ctrl-C (SIGINT to its process group) leaves no process and no
//! listening port behind.

mod common;

use common::*;
use iobench::backend::Backend;
use iobench::sys::Stat;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn sigint_makes_serve_report_and_close_its_clients() {
    let server = Server::start(&["--backend", Backend::Poll.name()]);
    let mut client = server.connect();
    assert_eq!(round_trip(&mut client, b"hi"), b"hi");
    kill(server.pid(), Signal::SIGINT).unwrap();
    let mut rest = Vec::new();
    client
        .read_to_end(&mut rest)
        .expect("the server closes the client");
    assert!(rest.is_empty());
    // stop() sends SIGTERM to a process already stopping: it still reports once.
    let (stats, _) = server.stop();
    assert_eq!(counter(&stats, Stat::Accepted), 1);
}

/// The listening TCP ports of process `pid` (its socket inodes, looked up in
/// /proc/net/tcp, state 0A = LISTEN).
fn listening_ports(pid: i32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().to_string();
                    Some(
                        l.strip_prefix("socket:[")?
                            .trim_end_matches(']')
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let inode = f.get(9)?;
            (f.get(3)? == &"0A" && inodes.iter().any(|i| i == inode)).then_some(port)
        })
        .collect()
}

/// Gone: no such process, or a zombie nobody has reaped yet.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

#[test]
fn ctrl_c_on_compare_leaves_no_process_and_no_port() {
    let backends = [Backend::EpollEt, Backend::Poll]
        .map(Backend::name)
        .join(",");
    let mut compare = Reaped::group(
        Command::new(env!("CARGO_BIN_EXE_iobench"))
            .args([
                "compare",
                "--backends",
                &backends,
                "--runs",
                "3",
                "--duration",
                "5s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let pgid = compare.id() as i32;
    let children = format!("/proc/{pgid}/task/{pgid}/children");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (server, ports) = loop {
        let text = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(pid) = text.split_whitespace().next() {
            let pid: i32 = pid.parse().unwrap();
            let ports = listening_ports(pid);
            if !ports.is_empty() {
                break (pid, ports);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no listening server child appeared"
        );
        thread::sleep(Duration::from_millis(20));
    };
    thread::sleep(Duration::from_millis(700)); // mid-run
    kill(Pid::from_raw(-pgid), Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = compare.try_wait() {
            break status;
        }
        assert!(Instant::now() < deadline, "compare still runs after Ctrl-C");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(server) {
        assert!(
            Instant::now() < deadline,
            "server {server} still runs after Ctrl-C"
        );
        thread::sleep(Duration::from_millis(20));
    }
    for port in ports {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts"
        );
    }
}

#[test]
fn a_non_loopback_listen_address_is_allowed_with_a_warning() {
    let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(["serve", "--listen", "0.0.0.0:0", "--duration", "100ms"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a loopback address: this echo server has no authentication"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("listening on 0.0.0.0:"), "{stdout}");
}

#[test]
fn serve_trace_prints_the_loop_turning() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iobench"));
    let mut child = cmd
        .args([
            "serve",
            "--backend",
            Backend::EpollLt.name(),
            "--trace",
            "--duration",
            "2s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let addr = listening_on(&mut stdout);
    let mut c = TcpStream::connect(&addr).unwrap();
    assert_eq!(round_trip(&mut c, b"traced"), b"traced");
    drop(c);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let trace = String::from_utf8_lossy(&out.stderr);
    for call in [
        "epoll_wait(max=1024, timeout=-1) = 1 [fd ",
        "accept4(fd ",
        "setsockopt(fd ",
        "read(fd ",
        "= 6 \"traced\"",
        "write(fd ",
        "close(fd ",
    ] {
        assert!(trace.contains(call), "{call} missing: {trace}");
    }
}

/// The address in a server's first line, `listening on IP:PORT`.
fn listening_on(stdout: &mut impl std::io::BufRead) -> String {
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    match line.trim().strip_prefix("listening on ") {
        Some(addr) => addr.to_string(),
        None => panic!("no `listening on` line: {line:?}"),
    }
}

/// A pipe whose reading end is already closed: writing into it fails with EPIPE,
/// as `serve ... 2>&1 | head -1` does once head has its line.
/// A pipe whose reading end is closed. CLOEXEC: without it, a child that another
/// test forks meanwhile inherits the reading end, which then stays open, and the
/// write that should fail succeeds (this test failed so, once in a full run).
fn closed_pipe() -> Stdio {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    drop(read);
    Stdio::from(write)
}

/// With stderr closed, the one-time log line of a malformed frame is lost, and the
/// server serves on: before, eprintln! panicked (exit 101) on the first one.
#[test]
fn a_closed_stderr_does_not_stop_the_server() {
    use iobench::protocol::Protocol;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iobench"));
    cmd.args(["serve", "--json", "--duration", "60s", "--protocol"])
        .arg(Protocol::Line.name())
        .args(["--max-frame", "16"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(closed_pipe());
    let mut child = cmd.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let server = Reaped::new(child);
    let addr = listening_on(&mut out);
    // Too long a line: a protocol error, logged once on stderr.
    let mut bad = TcpStream::connect(&addr).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(&mut bad, b"this line is longer than sixteen bytes\n").unwrap();
    let _ = bad.read_to_end(&mut Vec::new());
    let mut good = TcpStream::connect(&addr).unwrap();
    good.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(round_trip(&mut good, b"still here\n"), b"still here\n");
    kill(Pid::from_raw(server.id() as i32), Signal::SIGTERM).unwrap();
    let output = server.wait_with_output();
    assert!(output.status.success(), "{:?}", output.status);
}

/// With stdout closed, the server cannot say where it listens: it ends at once,
/// with a message and a failure status, not a panic.
#[test]
fn a_closed_stdout_ends_the_server_with_a_message() {
    let child = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(["serve", "--duration", "60s"])
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server = Reaped::new(child);
    let output = server.wait_within(Duration::from_secs(10), "a server with a closed stdout");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("standard output"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A parent that stops reading the statistics: snapshots fill the pipe, and each
/// report gives up after a while instead of blocking, so SIGTERM still ends the
/// server (before, the control thread sat in write(2) and SIGTERM was never taken).
#[test]
fn a_full_stdout_does_not_block_shutdown() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .args(["serve", "--json", "--duration", "60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let server = Reaped::new(child);
    listening_on(&mut out);
    let pid = Pid::from_raw(server.id() as i32);
    // Some 100 KB of snapshots into a 64 KiB pipe that nobody reads any more.
    for _ in 0..40 {
        kill(pid, Signal::SIGUSR1).unwrap();
        thread::sleep(Duration::from_millis(10));
    }
    kill(pid, Signal::SIGTERM).unwrap();
    server.wait_within(
        Duration::from_secs(20),
        "after SIGTERM, a server whose stdout is full",
    );
    drop(out);
}

/// An external server that is a pipeline (its processes record their PIDs and its
/// port in `dir`), and one whose shell ignores SIGTERM, as `--external` values.
fn external_servers(dir: &std::path::Path) -> [String; 2] {
    let exe = env!("CARGO_BIN_EXE_iobench");
    let d = dir.display();
    [
        format!(
            "pipe=sh -c 'echo $$ > {d}/pipe.pid; echo {{port}} > {d}/pipe.port; \
             exec {exe} serve --listen 127.0.0.1:{{port}}' | sh -c 'echo $$ > {d}/cat.pid; exec cat'"
        ),
        format!(
            "stubborn=sh -c \"trap '' TERM; echo \\$\\$ > {d}/stubborn.pid; echo {{port}} > {d}/stubborn.port; \
             {exe} serve --listen 127.0.0.1:{{port}} & while :; do sleep 0.1; done\""
        ),
    ]
}

fn read_number<T: std::str::FromStr>(path: &std::path::Path) -> Option<T> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Every recorded process is gone (within a few seconds) and no port accepts.
fn nothing_left(dir: &std::path::Path, names: &[&str]) {
    for name in names {
        let pid: i32 = read_number(&dir.join(format!("{name}.pid")))
            .unwrap_or_else(|| panic!("{name} never started"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(pid) {
            assert!(Instant::now() < deadline, "{name} (pid {pid}) still runs");
            thread::sleep(Duration::from_millis(20));
        }
        if let Some(port) = read_number::<u16>(&dir.join(format!("{name}.port"))) {
            assert!(
                TcpStream::connect(("127.0.0.1", port)).is_err(),
                "{name}'s port {port} still accepts"
            );
        }
    }
}

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("iobench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// compare stops each external server's whole process group, and SIGKILLs what
/// ignores SIGTERM: before, a pipeline's server outlived compare (its parent
/// became PID 1, still listening) and a SIGTERM-ignoring one made compare hang.
#[test]
fn external_servers_always_go_away() {
    let dir = scratch_dir("external");
    let [pipe, stubborn] = external_servers(&dir);
    let compare = Reaped::group(
        Command::new(env!("CARGO_BIN_EXE_iobench"))
            .args([
                "compare",
                "--backends",
                Backend::EpollEt.name(),
                "--runs",
                "1",
            ])
            .args(["--duration", "300ms", "--warmup", "100ms"])
            .args(["--external", &pipe, "--external", &stubborn])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let out = compare.wait_within(
        Duration::from_secs(30),
        "compare beside a server that ignores SIGTERM",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    nothing_left(&dir, &["pipe", "cat", "stubborn"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C (SIGINT to compare's process group, as a terminal sends it) while an
/// external pipeline is measured: its group is not compare's, and compare stops it
/// before it dies.
#[test]
fn ctrl_c_on_compare_stops_an_external_pipeline() {
    let dir = scratch_dir("external-ctrl-c");
    let [pipe, _] = external_servers(&dir);
    let compare = Reaped::group(
        Command::new(env!("CARGO_BIN_EXE_iobench"))
            .args([
                "compare",
                "--backends",
                Backend::EpollEt.name(),
                "--runs",
                "3",
            ])
            .args([
                "--duration",
                "500ms",
                "--warmup",
                "100ms",
                "--external",
                &pipe,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while read_number::<u16>(&dir.join("pipe.port")).is_none() {
        assert!(
            Instant::now() < deadline,
            "the external server never started"
        );
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(200)); // mid-run
    kill(Pid::from_raw(-(compare.id() as i32)), Signal::SIGINT).unwrap();
    compare.wait_within(Duration::from_secs(20), "after Ctrl-C, compare");
    nothing_left(&dir, &["pipe", "cat"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Any command whose stdout is closed (`iobench ... | head -1`) ends with a message,
/// not a panic (before: println! panicked, exit 101).
#[test]
fn a_closed_stdout_ends_any_command_with_a_message() {
    for args in [vec!["demo"], vec!["experiment", "list"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_iobench"))
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("writing to standard output"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// SIGINT to `compare` alone (as `kill -INT` does; its servers do not get it): it
/// says how far the runs had come, and ends by the signal, its servers with it.
#[test]
fn an_interrupted_compare_says_how_far_it_came() {
    let compare = Reaped::new(
        Command::new(env!("CARGO_BIN_EXE_iobench"))
            .args([
                "compare",
                "--backends",
                "select,poll",
                "--runs",
                "2",
                "--duration",
                "1s",
                "--warmup",
                "200ms",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = compare.id() as i32;
    // Under way: the first server child listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    let servers = loop {
        let servers = children(pid);
        if servers.iter().any(|&s| !listening_ports(s).is_empty()) {
            break servers;
        }
        assert!(
            Instant::now() < deadline,
            "no listening server child appeared"
        );
        thread::sleep(Duration::from_millis(20));
    };
    kill(Pid::from_raw(pid), Signal::SIGINT).unwrap();
    let out = compare.wait_within(Duration::from_secs(10), "compare after SIGINT");
    assert_eq!(
        out.status.signal(),
        Some(Signal::SIGINT as i32),
        "{:?}",
        out.status
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "iobench: interrupted after 0 of 4 runs, during run 1/2: select; no results written\n"
        ),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no table after an interrupt");
    let deadline = Instant::now() + Duration::from_secs(5);
    for server in servers {
        while !gone(server) {
            assert!(
                Instant::now() < deadline,
                "server {server} still runs after the interrupt"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The children of every thread of `pid`.
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
                .flat_map(|text| {
                    text.split_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect::<Vec<i32>>()
                })
                .collect()
        })
        .unwrap_or_default()
}
