//! External servers and CPU layouts end to end: the per-thread kernel figures of
//! a server iobench did not build (ours, started as an external command), the real
//! servers' n/a where they are not installed, and CPU layouts this machine cannot
//! give (n/a) or that are malformed (refused). That the presets start, serve and
//! leave nothing behind is tested beside them, in src/bench/real.rs.

mod common;

use common::Reaped;
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_iobench");
/// Long enough for a short run on a busy machine.
const LIMIT: Duration = Duration::from_secs(120);

/// `iobench ARGS` (wide output, see tests/bench.rs), run to its end within LIMIT.
fn iobench(args: &[&str], tweak: impl FnOnce(&mut Command)) -> std::process::Output {
    let mut cmd = Command::new(EXE);
    cmd.env("COLUMNS", "1000")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tweak(&mut cmd);
    Reaped::new(cmd.spawn().unwrap()).wait_within(LIMIT, &format!("iobench {args:?}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("iobench-ext-{}-{name}", std::process::id()))
}

/// A short run's flags: a window long enough that a busy machine (other tests'
/// servers on the same CPUs) still completes requests in it.
const SHORT: &[&str] = &[
    "--runs",
    "1",
    "--duration",
    "1s",
    "--warmup",
    "500ms",
    "--connections",
    "8",
];

/// The CPUs of this machine as a list flag and as the workload line says it.
fn all_cpus() -> (String, String) {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    match n {
        1 => ("0".into(), "CPU 0".into()),
        2 => ("0-1".into(), "CPUs 0,1".into()),
        n => (format!("0-{}", n - 1), format!("CPUs 0-{}", n - 1)),
    }
}

/// Our dispatch server as an external command, with kernel counts: each of its
/// threads is in the table and the export with its name, CPU time, context
/// switches and system calls for the window, and they add up to the process's
/// figures; the server is gone afterwards, and the CPU lists are said.
#[test]
fn an_external_servers_threads_are_measured_one_by_one() {
    let json = temp("threads.json");
    let command =
        format!("ours={EXE} serve --model dispatch --threads 2 --listen 127.0.0.1:{{port}}");
    let (cpus, said) = all_cpus();
    let mut args = vec!["compare", "--backends", "epoll-et", "--kernel-counts"];
    args.extend(SHORT);
    args.extend(["--server-cpus", &cpus, "--client-cpus", &cpus]);
    args.extend([
        "--external",
        &command,
        "--export-json",
        json.to_str().unwrap(),
    ]);
    let out = iobench(&args, |_| {});
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("server {said}, client {said}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("ours: threads (run 1, the kernel's)"),
        "{stdout}"
    );
    // The kernel's count of calls is in the default table, for the external server
    // too (which has no count of our own).
    let row = stdout
        .lines()
        .find(|l| l.contains("calls/req, kernel"))
        .unwrap_or_else(|| panic!("no kernel calls row: {stdout}"));
    let cells: Vec<&str> = row.split(['│', '┆', '|']).map(str::trim).collect();
    assert!(
        cells
            .iter()
            .filter(|c| c.parse::<f64>().is_ok_and(|n| n > 1.0))
            .count()
            >= 2,
        "{row}"
    );

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    let subject = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == "ours")
        .expect("the external subject");
    let run = &subject["runs"][0];
    let server = &run["server"];
    let tasks = server["tasks"].as_array().unwrap();
    // The acceptor, two workers, the control thread.
    assert!(tasks.len() >= 3, "{tasks:?}");
    let workers: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["name"] == "event-loop" && t["cpu_s"].as_f64().unwrap() > 0.0)
        .collect();
    assert!(workers.len() >= 2, "two workers at work: {tasks:?}");
    for w in &workers {
        assert!(w["syscalls"].as_u64().unwrap() > 0, "{w}");
        // A worker sleeps in its wait between requests.
        assert!(w["voluntary_cs"].as_u64().unwrap() > 0, "{w}");
    }
    // The threads add up to the process (read at nearly the same moments).
    let sum = |key: &str| {
        tasks
            .iter()
            .map(|t| t[key].as_f64().unwrap_or(0.0))
            .sum::<f64>()
    };
    let near = |part: f64, whole: f64, what: &str| {
        assert!(
            (part - whole).abs() <= 0.25 * whole + 50.0,
            "{what}: threads {part}, process {whole}"
        )
    };
    near(
        sum("cpu_s") * 1e6,
        server["proc"]["cpu_s"].as_f64().unwrap() * 1e6,
        "CPU us",
    );
    near(
        sum("voluntary_cs"),
        server["proc"]["voluntary_cs"].as_f64().unwrap(),
        "voluntary context switches",
    );
    near(
        sum("syscalls"),
        server["perf"]["syscalls"].as_f64().unwrap(),
        "system calls",
    );
    // Not memcached: no hand-off counted.
    assert!(server["handoff"].is_null());
    // The main thread's TID is the server's PID: reaped, nothing left.
    let pid = tasks[0]["tid"].as_i64().unwrap() as i32;
    assert_eq!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH));
    assert_eq!(kill(Pid::from_raw(-pid), None), Err(Errno::ESRCH));
}

/// With a PATH that lacks them, the real servers are n/a with how to install
/// them, in compare and in experiments, and everything else runs.
#[test]
fn real_servers_not_installed_are_not_applicable() {
    let empty = temp("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let no_path = |cmd: &mut Command| {
        cmd.env("PATH", &empty);
    };
    let mut args = vec!["compare", "--backends", "epoll-et"];
    args.extend(SHORT);
    args.extend(["--external", "redis", "--external", "memcached"]);
    let out = iobench(&args, no_path);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for says in [
        "n/a (redis-server not installed: apt-get install redis-server)",
        "n/a (memcached not installed: apt-get install memcached)",
    ] {
        assert!(stdout.contains(says), "{stdout}");
    }
    assert!(stdout.contains("redis x2") && stdout.contains("memcached x2"));

    let file = empty.join("real.toml");
    std::fs::write(
        &file,
        "question = \"q\"\nruns = 1\n[workload]\nduration = \"200ms\"\nwarmup = \"100ms\"\n\
         connections = 4\n[[sweep]]\nexternal = [\"redis\", \"memcached\"]\n",
    )
    .unwrap();
    let out_dir = empty.join("results");
    let out = iobench(
        &[
            "experiment",
            "run",
            file.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        no_path,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("data.json")).unwrap()).unwrap();
    let rows = data["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in rows {
        let binary = match row["settings"]["external"].as_str().unwrap() {
            "redis" => "redis-server",
            other => other,
        };
        let why = row["not_applicable"].as_str().unwrap_or_default();
        assert!(why.contains(&format!("{binary} not installed")), "{row}");
    }
    std::fs::remove_dir_all(&empty).unwrap();
}

/// A layout needing more CPUs than the machine has is n/a, saying how many, in run
/// and in experiments (where the points that fit are measured); a malformed list
/// is refused before anything runs.
#[test]
fn cpu_layouts_past_the_machine_are_not_applicable_and_bad_lists_refused() {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Three CPUs, so that the list reads back as a range.
    let past = format!("{n}-{}", n + 2);
    let says = format!("n/a (needs {} CPUs, this machine has {n})", n + 3);
    for flag in ["--server-cpus", "--client-cpus"] {
        let mut args = vec!["run"];
        args.extend(SHORT);
        args.extend([flag, &past]);
        let out = iobench(&args, |_| {});
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
        assert!(stdout.contains(&says), "{flag}: {stdout}");
        assert!(!stdout.contains("requests/s, median"), "{stdout}");
    }

    for (args, error) in [
        (["run", "--server-cpus", "3-1"], "`3-1` is not a CPU list"),
        (
            ["compare", "--client-cpus", "0,,1"],
            "`0,,1` is not a CPU list",
        ),
        (["run", "--server-cpus", "0,0"], "`0,0` names a CPU twice"),
        (["compare", "--server-cpus", "x"], "`x` is not a CPU list"),
    ] {
        let out = iobench(&args, |_| {});
        assert!(!out.status.success(), "{args:?} ran");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        assert!(text(&out.stderr).contains(error), "{}", text(&out.stderr));
    }

    let dir = temp("layouts");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("layouts.toml");
    let experiment = |cpus: &str| {
        std::fs::write(
            &file,
            format!(
                "question = \"q\"\nruns = 1\n[workload]\nduration = \"1s\"\n\
                 warmup = \"500ms\"\nconnections = 4\n[[sweep]]\nserver_cpus = [{cpus}]\n"
            ),
        )
        .unwrap();
        let out_dir = dir.join("results");
        let out = iobench(
            &[
                "experiment",
                "run",
                file.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ],
            |_| {},
        );
        (out, out_dir)
    };
    let (out, out_dir) = experiment(&format!("\"0\", \"{past}\""));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("data.json")).unwrap()).unwrap();
    let rows = data["rows"].as_array().unwrap();
    let row = |cpus: &str| {
        rows.iter()
            .find(|r| r["settings"]["server_cpus"] == cpus)
            .unwrap_or_else(|| panic!("no row for {cpus}: {rows:?}"))
    };
    assert!(row("0")["not_applicable"].is_null(), "{}", row("0"));
    assert!(row("0")["measurements"].as_u64().unwrap() >= 1);
    assert_eq!(row(&past)["not_applicable"], says.as_str());

    let (out, _) = experiment("\"1-0\"");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("`1-0` is not a CPU list"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
