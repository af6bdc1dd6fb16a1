//! Every experiment file runs with `--quick` and writes results that parse: the
//! README with its plots, data.csv and data.json agreeing row for row, and for
//! each file the figures that must hold whatever the machine (n/a where a backend
//! cannot go, every byte of the ring read back, poll scanning what epoll does not).

use iobench::backend::{Backend, Trigger};
use iobench::bench::Subject;
use iobench::server::{Model, ReadStrategy};
use iobench::sys::RingOp;
use iobench::transfer::Method;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn experiment(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_iobench"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("experiment")
        .args(args)
        .output()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iobench-exp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `iobench experiment run FILE --out DIR [more]`, which must succeed.
fn run_ok(file: &Path, out_dir: &Path, more: &[&str]) {
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend(more);
    let out = experiment(&args);
    assert!(
        out.status.success(),
        "{}: {}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs one experiment quickly into a fresh folder and checks what it wrote; returns
/// data.json.
fn run_quick(file: &Path) -> Value {
    let name = file.file_stem().unwrap().to_string_lossy().into_owned();
    let out_dir = temp_dir(&name);
    run_ok(file, &out_dir, &["--quick"]);
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("data.json")).unwrap()).unwrap();
    let rows = data["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{name}: no rows");
    for row in rows {
        assert_eq!(
            row["failures"].as_array().unwrap().len(),
            0,
            "{name}: {row}"
        );
        if row["not_applicable"].is_null() {
            let figures = row["figures"].as_object().unwrap();
            assert!(
                !figures.is_empty(),
                "{name}: a measured row without figures: {row}"
            );
            assert!(row["measurements"].as_u64().unwrap() >= 1, "{name}: {row}");
        }
    }

    // data.csv: a header and one row per point, every row as wide as the header.
    let mut csv = csv::Reader::from_path(out_dir.join("data.csv")).unwrap();
    let width = csv.headers().unwrap().len();
    let records: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), rows.len(), "{name}: csv and json rows");
    assert!(records.iter().all(|r| r.len() == width), "{name}");

    // README.md: the question, the quick banner, and every plot it shows exists.
    let readme = std::fs::read_to_string(out_dir.join("README.md")).unwrap();
    assert!(readme.contains("**Question.**") && readme.contains("Quick smoke run"));
    assert!(readme.contains(data["title"].as_str().unwrap()), "{name}");
    let plots: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("![")?.split_once("](")?.1.strip_suffix(')'))
        .collect();
    assert!(!plots.is_empty(), "{name}: no plots");
    for plot in plots {
        let svg = std::fs::read_to_string(out_dir.join(plot)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}: {plot}"
        );
    }
    std::fs::remove_dir_all(&out_dir).unwrap();
    let mut data = data;
    data["readme"] = Value::String(readme);
    data
}

fn rows_where<'a>(data: &'a Value, key: &str, value: &str) -> Vec<&'a Value> {
    rows(data)
        .iter()
        .filter(|r| r["settings"][key] == value)
        .collect()
}

fn median(row: &Value, figure: &str) -> f64 {
    row["figures"][figure]["median"].as_f64().unwrap()
}

/// The CI smoke test of issue 7: every file in experiments/, quick, outputs parse, and
/// what each one's figures must show whatever the machine.
#[test]
fn every_experiment_runs_quick_and_writes_results_that_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        let data = run_quick(&file);
        match data["name"].as_str().unwrap() {
            "backends" => every_backend_reads_and_writes_each_request(&data),
            "buffer-size" => a_small_buffer_takes_several_reads(&data),
            "dispatch-cost" => the_ring_reads_back_every_byte(&data),
            "et-vs-lt" => one_read_per_edge_is_not_applicable(&data),
            "idle-scaling" => poll_scans_the_idle_epoll_only_the_ready(&data),
            "models" => each_model_owns_every_connection_once(&data),
            "ring-setup" => every_ring_setup_echoes(&data),
            "real-systems" => real_servers_beside_their_models(&data),
            "zero-copy" => read_write_takes_two_calls_per_chunk(&data),
            // A new experiment is still run and its files checked above; what its
            // figures must show goes here.
            _ => {}
        }
    }
}

fn rows(data: &Value) -> &Vec<Value> {
    data["rows"].as_array().unwrap()
}

/// Closed loop, one request in flight per connection: a read returns at most one
/// request's bytes, a write at most one echo. So each request is at least one read
/// and one write: in the server's own counts of one window, reads >= bytes read /
/// payload, and the same for writes. The completion loop reads and writes through
/// its ring instead: there each echo is at least one send submitted.
fn every_backend_reads_and_writes_each_request(data: &Value) {
    assert_eq!(rows(data).len(), Backend::COUNT, "every backend");
    for r in rows(data) {
        assert!(r["not_applicable"].is_null(), "{r}");
        assert!(median(r, "requests_per_s") > 0.0, "{r}");
        let backend: Backend = r["settings"]["backend"].as_str().unwrap().parse().unwrap();
        match backend.trigger() {
            Trigger::Completion => completions_per_request_at_least_one(r, 64.0),
            _ => calls_per_request_at_least(r, 64.0),
        }
    }
}

/// Redis and memcached measured beside our models, with the kernel's counts; their
/// threads and memcached's hand-off in the README; the 8-CPU sweeps n/a on a smaller
/// machine.
fn real_servers_beside_their_models(data: &Value) {
    let cores = data["machine"]["cores"].as_u64().unwrap();
    for r in rows(data) {
        let wants_8 = r["settings"]["server_cpus"].is_string();
        if wants_8 && cores < 8 {
            let why = r["not_applicable"].as_str().unwrap_or_default();
            assert!(why.contains("needs 8 CPUs"), "{r}");
            continue;
        }
        assert!(r["not_applicable"].is_null(), "{r}");
        assert!(median(r, "requests_per_s") > 0.0, "{r}");
        assert!(
            median(r, "kernel_syscalls_per_request") >= 2.0,
            "a read and a reply: {r}"
        );
    }
    for real in ["redis", "memcached"] {
        assert_eq!(
            rows_where(data, "external", real).len(),
            2 + 3 * (real == "redis") as usize
        );
    }
    let readme = data["readme"].as_str().unwrap();
    for shown in ["io_thd_1", "mc-worker", "accept4(2)"] {
        assert!(readme.contains(shown), "{shown}: {readme}");
    }
}

/// Every ring setup at every connection count served, a completion per echo.
fn every_ring_setup_echoes(data: &Value) {
    assert_eq!(rows(data).len(), 3 * 3, "3 setups x 3 connection counts");
    for r in rows(data) {
        assert!(r["not_applicable"].is_null(), "{r}");
        assert!(median(r, "requests_per_s") > 0.0, "{r}");
        completions_per_request_at_least_one(r, 64.0);
    }
}

/// In each run's window: a recv and a send complete for every echo of `payload`
/// bytes (one request at a time per connection), so at least one completion per
/// echo, however the window's edges split a request's two.
fn completions_per_request_at_least_one(row: &Value, payload: f64) {
    for run in row["raw"].as_array().unwrap() {
        let own = &run["server"]["own"];
        let count = |v: &Value| v.as_f64().unwrap_or(0.0);
        let completions: f64 = RingOp::ALL
            .iter()
            .map(|op| count(&own["ring_completed"][op.name()]))
            .sum();
        let bytes_out = count(&own["counters"]["bytes_out"]);
        assert!(bytes_out > 0.0, "{row}");
        assert!(
            completions >= bytes_out / payload,
            "{completions} completions for {bytes_out} bytes: {row}"
        );
    }
}

/// A read also returns at most the buffer, and the echo writes what it read: a
/// request takes at least payload / buffer reads, and as many writes.
fn a_small_buffer_takes_several_reads(data: &Value) {
    for r in rows(data) {
        let s = &r["settings"];
        let buffer = s["buffer_size"].as_f64().unwrap();
        calls_per_request_at_least(r, buffer.min(s["payload"].as_f64().unwrap()));
    }
}

/// In each run's window, as the server counted it: reads and writes of at most
/// `most` bytes each.
fn calls_per_request_at_least(row: &Value, most: f64) {
    for run in row["raw"].as_array().unwrap() {
        let own = &run["server"]["own"];
        let count = |v: &Value| v.as_f64().unwrap_or(0.0);
        let (reads, writes) = (
            count(&own["syscalls"]["read"]),
            count(&own["syscalls"]["write"]),
        );
        let bytes_in = count(&own["counters"]["bytes_in"]);
        let bytes_out = count(&own["counters"]["bytes_out"]);
        assert!(bytes_in > 0.0, "{row}");
        assert!(
            reads >= bytes_in / most,
            "{reads} reads for {bytes_in} bytes: {row}"
        );
        assert!(
            writes >= bytes_out / most,
            "{writes} writes for {bytes_out} bytes: {row}"
        );
    }
}

/// Every byte written is read back: active + writes events per iteration.
fn the_ring_reads_back_every_byte(data: &Value) {
    for r in rows(data) {
        if r["not_applicable"].is_string() {
            continue;
        }
        let s = &r["settings"];
        let events = s["active"].as_f64().unwrap() + s["writes"].as_f64().unwrap();
        let per_iteration = median(r, "events_per_pass") * median(r, "passes");
        assert!((per_iteration - events).abs() < 1.0, "{r}");
    }
}

/// ET with one read per wakeup strands data: n/a, and only there.
fn one_read_per_edge_is_not_applicable(data: &Value) {
    for r in rows_where(data, "backend", Backend::EpollEt.name()) {
        let once = r["settings"]["read_strategy"] == ReadStrategy::Once.name();
        assert_eq!(r["not_applicable"].is_string(), once, "{r}");
    }
}

/// select cannot go past FD_SETSIZE; poll hands the kernel every descriptor and scans
/// past every idle one; epoll hands none per call and scans only what is ready.
fn poll_scans_the_idle_epoll_only_the_ready(data: &Value) {
    // 2,000 idle connections put select's descriptors past FD_SETSIZE.
    for r in rows_where(data, "backend", Backend::Select.name()) {
        let idle = r["settings"]["idle_connections"].as_u64().unwrap();
        assert_eq!(r["not_applicable"].is_string(), idle >= 1000, "{r}");
    }
    for r in rows_where(data, "backend", Backend::Poll.name()) {
        let idle = r["settings"]["idle_connections"].as_f64().unwrap();
        // Every watched descriptor on every call: 64 active, the idle ones, the
        // listener and the wake pipe.
        assert!(median(r, "fds_handed_per_wakeup") >= 64.0 + idle, "{r}");
        // The idle connections connect first, so they sit before the active ones in
        // the pollfd array: the scan for the ready ones passes every one of them.
        let scanned = median(r, "fds_scanned_per_wakeup");
        assert!(scanned >= idle && scanned <= 64.0 + idle + 8.0, "{r}");
    }
    for backend in [Backend::EpollLt, Backend::EpollEt] {
        for r in rows_where(data, "backend", backend.name()) {
            assert_eq!(median(r, "fds_handed_per_wakeup"), 0.0, "{r}");
            let ready = median(r, "events_per_wakeup");
            assert!(median(r, "fds_scanned_per_wakeup") <= ready, "{r}");
        }
    }
}

/// Each point runs the model it names, and every connection belongs to exactly one
/// of its threads.
fn each_model_owns_every_connection_once(data: &Value) {
    for r in rows(data) {
        assert!(r["not_applicable"].is_null(), "{r}");
        let s = &r["settings"];
        let model: Model = s["model"].as_str().unwrap().parse().unwrap();
        let subject = Subject::Ours {
            backend: s["backend"].as_str().unwrap().parse().unwrap(),
            model,
            threads: s["server_threads"].as_u64().unwrap() as usize,
        }
        .name();
        for run in r["raw"].as_array().unwrap() {
            assert_eq!(run["subject"], subject.as_str(), "{r}");
            let threads = run["server"]["threads"].as_array().unwrap();
            let owned: u64 = threads
                .iter()
                .map(|t| t["connections"].as_u64().unwrap())
                .sum();
            assert_eq!(owned, 64, "{model}: {threads:?}");
        }
    }
}

/// read+write reads a chunk and writes it: at least two calls per chunk, the
/// article's count; and every method delivers the file.
fn read_write_takes_two_calls_per_chunk(data: &Value) {
    for r in rows(data) {
        assert!(median(r, "mb_per_s") > 0.0, "{r}");
        let s = &r["settings"];
        if s["method"] == Method::ReadWrite.name() {
            let chunks = s["file_size"].as_f64().unwrap() / s["chunk"].as_f64().unwrap();
            assert!(median(r, "syscalls") >= 2.0 * chunks, "{r}");
        }
    }
}

#[test]
fn experiments_are_listed_and_bad_files_explained() {
    let out = experiment(&["list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for name in ["backends", "idle-scaling", "dispatch-cost", "zero-copy"] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{text}");
    }

    let dir = temp_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    for (file, says) in [
        (
            "question = \"q\"\n[[sweep]]\nbackend = [\"kqueue\"]\n",
            "epoll-et",
        ),
        (
            "question = \"q\"\n[[sweep]]\nbackend = [\"poll\"]\nplots = [\"nope\"]\n",
            "nope",
        ),
        ("[[sweep]]\nbackend = [\"poll\"]\n", "question"),
        (
            "question = \"q\"\n[[sweep]]\nbackend = [\"poll\"\n",
            "bad.toml",
        ),
    ] {
        std::fs::write(&bad, file).unwrap();
        let out = experiment(&["run", bad.to_str().unwrap(), "--out", dir.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{file}");
        assert!(stderr.contains(says), "{file}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A figure no point has (kernel counts were not asked for): the measurements
    // are written and the README says why that plot is missing.
    std::fs::write(
        &bad,
        "question = \"q\"\nruns = 1\n[workload]\nduration = \"100ms\"\nwarmup = \"50ms\"\n\
         [[sweep]]\nbackend = [\"poll\"]\nplots = [\"kernel_syscalls_per_request\"]\n",
    )
    .unwrap();
    run_ok(&bad, &dir, &[]);
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("not plotted (chart"), "{readme}");
    assert!(dir.join("data.json").exists() && dir.join("data.csv").exists());
    // Run into the same folder with another plot: the earlier run's plot goes with it,
    // a file of the user's stays.
    std::fs::write(dir.join("p99_us-by-backend.svg"), "<svg>earlier</svg>").unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    std::fs::write(
        &bad,
        std::fs::read_to_string(&bad)
            .unwrap()
            .replace("kernel_syscalls_per_request", "requests_per_s"),
    )
    .unwrap();
    run_ok(&bad, &dir, &[]);
    assert!(!dir.join("p99_us-by-backend.svg").exists());
    assert!(dir.join("requests_per_s-by-backend.svg").exists());
    assert!(dir.join("notes.txt").exists());

    let missing = experiment(&["run", "no-such-experiment"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-experiment.toml"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One malformed experiment file is named with its error and the others are still
/// listed; outside the project, list says to pass --dir (before: the first bad file
/// ended the listing, and the hint did not mention --dir).
#[test]
fn list_names_a_bad_file_and_lists_the_rest() {
    let dir = temp_dir("list");
    std::fs::create_dir_all(&dir).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("experiments/backends.toml"),
        dir.join("backends.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("broken.toml"),
        "question = \"q\"\n[[sweep]]\nbackend = [\"kqueue\"]\n",
    )
    .unwrap();
    let out = experiment(&["list", "--dir", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("backends ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("broken") && stdout.contains("cannot be read") && stdout.contains("kqueue"),
        "{stdout}"
    );
    let elsewhere = Command::new(env!("CARGO_BIN_EXE_iobench"))
        .current_dir(&dir)
        .args(["experiment", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("pass --dir"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `replot` draws saved results' plots again from data.json alone, without measuring:
/// the committed idle-scaling results, copied, get every plot back (0 idle
/// connections on the log x axis) and keep every other file byte for byte; a README
/// that shows the plots otherwise is named, and a data.json that does not fit its
/// experiment file, or is not an experiment's, is refused.
#[test]
fn replot_draws_saved_results_again() {
    let saved = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/idle-scaling");
    let dir = temp_dir("replot");
    std::fs::create_dir_all(&dir).unwrap();
    let mut svgs = Vec::new();
    for entry in std::fs::read_dir(&saved).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match name.ends_with(".svg") {
            true => svgs.push(name),
            false => drop(std::fs::copy(&path, dir.join(&name)).unwrap()),
        }
    }
    assert!(svgs.len() >= 4, "{svgs:?}");
    let out = experiment(&["replot", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drawn = format!("{} plots drawn again", svgs.len());
    assert!(stdout.contains(&drawn), "{stdout}");
    for name in &svgs {
        let svg = std::fs::read_to_string(dir.join(name)).unwrap();
        let note = "x axis: linear from 0 to 100 (one decade wide), logarithmic above";
        assert!(svg.contains(note), "{name}");
    }
    for name in ["README.md", "data.csv", "data.json"] {
        let read = |d: &Path| std::fs::read(d.join(name)).unwrap();
        assert!(read(&saved) == read(&dir), "{name} changed");
    }

    // A README that shows a plot otherwise than it is now drawn is said to be stale.
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let other = readme.replace("![requests/s by", "![requests by");
    std::fs::write(dir.join("README.md"), other).unwrap();
    let out = experiment(&["replot", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("does not show them so"),
        "{stderr}"
    );

    let data = std::fs::read_to_string(dir.join("data.json")).unwrap();
    let moved = data.replacen(
        "\"idle_connections\": 100\n",
        "\"idle_connections\": 200\n",
        1,
    );
    assert_ne!(moved, data);
    std::fs::write(dir.join("data.json"), moved).unwrap();
    let out = experiment(&["replot", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("row 2 is"),
        "{stderr}"
    );

    std::fs::write(dir.join("data.json"), "{\"requests\": 1}").unwrap();
    let out = experiment(&["replot", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not an experiment's data.json"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The load generator's driver is a setting: each point is measured through its
/// driver, and the rows say which.
#[test]
fn the_load_generators_driver_is_a_setting() {
    let dir = temp_dir("driver");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("driver.toml");
    std::fs::write(
        &file,
        "question = \"q\"\nruns = 1\n[workload]\nduration = \"200ms\"\nwarmup = \"100ms\"\n\
         pipeline = 2\n[[sweep]]\ndriver = [\"epoll\", \"io-uring\"]\n\
         plots = [\"client_cpu_us_per_request\"]\n",
    )
    .unwrap();
    let out_dir = dir.join("out");
    run_ok(&file, &out_dir, &[]);
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("data.json")).unwrap()).unwrap();
    let names: Vec<&str> = rows(&data)
        .iter()
        .map(|r| r["settings"]["driver"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["epoll", "io-uring"], "{data}");
    for row in rows(&data) {
        assert!(
            row["not_applicable"].is_null() && row["failures"].as_array().unwrap().is_empty(),
            "{row}"
        );
        assert!(median(row, "requests_per_s") > 0.0, "{row}");
        assert!(median(row, "client_cpu_us_per_request") > 0.0, "{row}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
