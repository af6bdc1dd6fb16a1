//! The command line: clap's definitions and their help, nothing else. `options`
//! turns what they parse into validated configurations.
//!
//! A default that another layer owns is read from it (the workload's from
//! `LoadConfig::DEFAULT`, the demo's from `EtLtOptions::default()`), so that no
//! default is written twice; the server's own defaults (buffer, frame and output
//! bounds) are written here, once.
//!
//! Layer: above `report`; clap definitions only.

use crate::backend::Backend;
use crate::bench::RealServer;
use crate::demo::{EtLtOptions, Mode};
use crate::load::{Driver, LONG_WINDOW, LoadConfig};
use crate::protocol::Protocol;
use crate::report::View;
use crate::server::{DEFAULT_MAX_FRAME, Model, ReadStrategy, RingSetup, Store};
use crate::style::{Charset, ColorChoice};
use crate::transfer::{Method, TransferConfig};
use crate::units::{CpuList, Size, parse_cpu_list, parse_duration, parse_size};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::time::Duration;

use crate::server::{DEFAULT_BACKEND as BACKEND, DEFAULT_MODEL as MODEL, DEFAULT_THREADS};
/// Where `experiment run` and `experiment list` find experiment files.
const EXPERIMENTS: &str = "experiments";

// The help's headings. Every flag of a command with more than three sits under
// one; the smaller commands keep clap's "Options".
/// What the clients do.
const WORKLOAD: &str = "Workload";
/// The server measured or driven, and how it is built.
const SERVER: &str = "Server";
/// `serve`'s bounds on what clients may make it hold.
const LIMITS: &str = "Limits";
/// How long, how often, on which CPUs, with which counters.
const MEASUREMENT: &str = "Measurement";
/// `demo`'s and `transfer`'s own settings.
const DEMO: &str = "Demo";
const TRANSFER: &str = "Transfer";
/// What is printed or written, and where.
const OUTPUT: &str = "Output";

/// An `after_help` of example command lines, each a real one (the tests parse
/// them; the help is where people copy from).
fn examples(lines: &[&str]) -> String {
    let mut text = String::from("Examples:");
    for line in lines {
        text += "\n  ";
        text += line;
    }
    text
}

#[derive(Parser, Debug)]
#[command(
    name = "iobench",
    // The version, commit and profile, from src/build.rs.
    version = env!("IOBENCH_VERSION"),
    about = "An I/O multiplexing workbench: select, poll and epoll side by side, measured",
    after_help = examples(&[
        "iobench compare",
        "iobench demo et-lt",
        "iobench serve --backend epoll-et --listen 127.0.0.1:7000",
        "iobench completions bash > ~/.local/share/bash-completion/completions/iobench",
    ])
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Characters: unicode (box drawing, bars, ±), ascii, or auto (unicode when the
    /// locale is UTF-8)
    #[arg(long, global = true, value_enum, default_value_t = Charset::Auto, help_heading = OUTPUT)]
    pub style: Charset,
    /// Colour: auto (when printing to a terminal and NO_COLOR is not set), always,
    /// never
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, help_heading = OUTPUT)]
    pub color: ColorChoice,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the instrumented echo server on one backend
    #[command(after_help = examples(&[
        "iobench serve --backend epoll-et --listen 127.0.0.1:7000",
        "iobench serve --backend select --model reuseport --threads 4 --protocol line",
        "iobench serve --backend poll --duration 30s --json",
    ]))]
    Serve(ServeArgs),
    /// Drive any TCP echo server and verify every echoed byte
    #[command(after_help = examples(&[
        "iobench load --target 127.0.0.1:7000 --connections 50 --duration 10s",
        "iobench load --target 127.0.0.1:7000 --rate 20000 --payload 4K --hgrm latency.hgrm",
        "iobench load --target localhost:7000 --requests 100000 --protocol line --json",
    ]))]
    Load(LoadArgs),
    /// Measure one backend: server on one CPU, load generator on another
    #[command(after_help = examples(&[
        "iobench run --backend epoll-et --runs 5",
        "iobench run --backend poll --model io-threads --server-threads 2 --export-json poll.json",
        "iobench run --backend select --idle-connections 900 --duration 5s --kernel-counts",
    ]))]
    Run(RunArgs),
    /// Measure several backends on the same workload, side by side
    #[command(after_help = examples(&[
        "iobench compare",
        "iobench compare --backends select,poll,epoll-et --idle-connections 900",
        "iobench compare --backends epoll-lt,epoll-et --baseline epoll-lt --export-markdown et.md",
        "iobench compare --backends epoll-et --models reactor,dispatch --rate 20000",
        "iobench compare --figures all --export-json - --quiet > compare.json",
    ]))]
    Compare(CompareArgs),
    /// The article's demos, live (no name: the list)
    #[command(after_help = examples(&[
        "iobench demo",
        "iobench demo et-lt --plain",
        "iobench demo et-lt --mode et --input hello --buffer-size 4 --trace",
        "iobench demo scan-cost",
    ]))]
    Demo(DemoArgs),
    /// Millions of verified requests across every backend and model
    #[command(after_help = examples(&[
        "iobench soak --requests 100000",
        "iobench soak --out results/soak",
    ]))]
    Soak(SoakArgs),
    /// Send a file over loopback TCP by read+write, sendfile, splice, mmap or O_DIRECT
    #[command(after_help = examples(&[
        "iobench transfer",
        "iobench transfer --method sendfile,splice --file-size 256M --cold",
    ]))]
    Transfer(TransferArgs),
    /// Declarative experiments: run one (results/<name>/), replot one or list them
    #[command(after_help = examples(&[
        "iobench experiment list",
        "iobench experiment run idle-scaling --quick",
        "iobench experiment replot results/idle-scaling",
    ]))]
    Experiment {
        #[command(subcommand)]
        command: ExperimentCommand,
    },
    /// Work with saved results
    #[command(after_help = examples(&[
        "iobench report merge run1.hlog run2.hlog --hgrm merged.hgrm",
    ]))]
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Print a completion script for bash, zsh, fish, elvish or powershell
    #[command(after_help = examples(&[
        "iobench completions bash > ~/.local/share/bash-completion/completions/iobench",
        "iobench completions zsh > ~/.zfunc/_iobench",
        "iobench completions fish > ~/.config/fish/completions/iobench.fish",
    ]))]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the man page of iobench (roff), or write one page per command into --dir
    #[command(after_help = examples(&[
        "iobench manpage | man -l -",
        "iobench manpage --dir man && man -l man/iobench-compare.1",
    ]))]
    Manpage {
        /// Write iobench.1, iobench-compare.1, iobench-experiment-run.1 ... here
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExperimentCommand {
    /// Run an experiment file and write README.md, data.csv, data.json and SVG plots
    Run {
        /// The file, or the name of one in --dir (e.g. idle-scaling)
        file: String,
        /// Fewer runs and points, short windows (the file's [quick] table): a smoke
        /// test, written to results/<name>.quick/ unless --out says otherwise
        #[arg(long)]
        quick: bool,
        /// Where the results go (default: results/<name>)
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Where experiment files are found by name
        #[arg(long, default_value = EXPERIMENTS)]
        dir: std::path::PathBuf,
    },
    /// Draw the plots of saved results again from their data.json, without measuring
    /// (README.md, data.csv and data.json are left as they are)
    Replot {
        /// The results' folder, e.g. results/idle-scaling
        results: std::path::PathBuf,
    },
    /// The experiment files, one line each
    List {
        #[arg(long, default_value = EXPERIMENTS)]
        dir: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Add up HdrHistogram interval logs (from `load --histogram-log`) and print the
    /// percentiles of the union
    Merge {
        /// Interval log files
        #[arg(required = true)]
        logs: Vec<std::path::PathBuf>,
        /// Also write the merged percentile spectrum here
        #[arg(long)]
        hgrm: Option<std::path::PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct TransferArgs {
    // Without the flag, every method: the list lives in `Method::ALL`.
    #[arg(long, help_heading = TRANSFER, value_enum, value_delimiter = ',', help = all_help("Methods", Method::ALL))]
    pub method: Vec<Method>,
    /// Send this file (default: a generated one, removed afterwards)
    #[arg(long, help_heading = TRANSFER)]
    pub file: Option<std::path::PathBuf>,
    /// Size of the generated file
    #[arg(long, help_heading = TRANSFER, default_value_t = Size(TransferConfig::DEFAULT.file_size))]
    pub file_size: Size,
    /// Bytes per read (and write)
    #[arg(long, help_heading = TRANSFER, default_value_t = Size(TransferConfig::DEFAULT.chunk))]
    pub chunk: Size,
    /// Drop the file from the page cache before each method
    #[arg(long, help_heading = TRANSFER)]
    pub cold: bool,
    /// Also print the results as JSON
    #[arg(long, help_heading = OUTPUT)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SoakArgs {
    #[arg(long, help_heading = WORKLOAD, default_value_t = LoadConfig::DEFAULT.connections)]
    pub connections: usize,
    // Deeper than the workload's default: the soak is after volume.
    #[arg(long, help_heading = WORKLOAD, default_value_t = 4)]
    pub pipeline: usize,
    #[arg(long, help_heading = WORKLOAD, default_value_t = LoadConfig::DEFAULT.payload, value_parser = parse_size)]
    pub payload: usize,
    #[arg(long, help_heading = WORKLOAD, value_enum, default_value_t = LoadConfig::DEFAULT.protocol)]
    pub protocol: Protocol,
    /// How the load generator drives its connections
    #[arg(long, help_heading = WORKLOAD, value_enum, default_value_t = LoadConfig::DEFAULT.driver)]
    pub driver: Driver,
    /// Requests in all, split evenly over every backend and model
    #[arg(long, help_heading = MEASUREMENT, default_value_t = 10_000_000)]
    pub requests: u64,
    /// Write README.md and data.json here (e.g. results/soak)
    #[arg(long, help_heading = OUTPUT)]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The demo; without one, the list
    pub name: Option<String>,
    // Options, so that a flag given to a demo it does not apply to can be refused;
    // the defaults are `EtLtOptions::default()`'s.
    #[arg(long, help_heading = DEMO, value_enum, help = format!("et-lt: ET, LT or both (default: {})", EtLtOptions::default().mode))]
    pub mode: Option<Mode>,
    // The default is the article's, as `EtLtOptions::default()` holds it; clap
    // cannot show a default it does not fill in, so the help says it.
    #[arg(long, help_heading = DEMO, help = inputs_help())]
    pub input: Vec<String>,
    #[arg(long, help_heading = DEMO, help = format!(
        "et-lt, et-pitfall: the server's buffer; each read asks for one byte less (default: {})",
        EtLtOptions::default().buffer_size
    ))]
    pub buffer_size: Option<usize>,
    /// et-lt: run on this backend instead of epoll (select and poll behave like LT)
    #[arg(long, help_heading = DEMO, value_enum)]
    pub backend: Option<Backend>,
    /// et-lt: print only the transcript lines, to compare byte for byte with the article
    #[arg(long, help_heading = OUTPUT)]
    pub plain: bool,
    /// Print every system call as it happens
    #[arg(long, help_heading = OUTPUT)]
    pub trace: bool,
}

/// The workload: shared by `load`, `run` and `compare`.
#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// Active connections
    #[arg(long, help_heading = WORKLOAD, default_value_t = LoadConfig::DEFAULT.connections)]
    pub connections: usize,
    /// Connections opened first and left silent for the whole run
    #[arg(long, help_heading = WORKLOAD, default_value_t = LoadConfig::DEFAULT.idle_connections)]
    pub idle_connections: usize,
    /// Bytes per request (e.g. 64, 4K): raw bytes, a line with its `\n`, a TLV value
    /// (which starts with an 8-byte sequence number), the string ECHOed (resp) or the
    /// value stored and got back (memcache)
    #[arg(long, help_heading = WORKLOAD, default_value_t = LoadConfig::DEFAULT.payload, value_parser = parse_size)]
    pub payload: usize,
    /// How requests are framed (the server must speak the same): raw, line, tlv
    #[arg(long, help_heading = WORKLOAD, value_enum, default_value_t = LoadConfig::DEFAULT.protocol)]
    pub protocol: Protocol,
    /// Requests in flight per connection
    #[arg(long, help_heading = WORKLOAD, default_value_t = LoadConfig::DEFAULT.pipeline)]
    pub pipeline: usize,
    // The window's defaults depend on the command, so clap cannot show them: the
    // help reads them from the load layer.
    #[arg(long, help_heading = MEASUREMENT, value_parser = parse_duration, help = window_help(
        "Measured time, after the warm-up",
        LONG_WINDOW.0,
        LoadConfig::DEFAULT.duration.expect("a measured run lasts a duration"),
        "; not with --requests",
    ))]
    pub duration: Option<Duration>,
    /// Stop after this many measured requests (after the warm-up) instead of after a
    /// duration
    #[arg(long, help_heading = MEASUREMENT, conflicts_with = "duration")]
    pub requests: Option<u64>,
    #[arg(long, help_heading = MEASUREMENT, value_parser = parse_duration, help = window_help(
        "Time before measuring starts",
        LONG_WINDOW.1,
        LoadConfig::DEFAULT.warmup,
        "",
    ))]
    pub warmup: Option<Duration>,
    /// Client threads
    #[arg(long, help_heading = WORKLOAD, default_value_t = LoadConfig::DEFAULT.threads)]
    pub threads: usize,
    /// How the load generator drives its connections
    #[arg(long, help_heading = WORKLOAD, value_enum, default_value_t = LoadConfig::DEFAULT.driver)]
    pub driver: Driver,
    /// Open loop: total requests per second on a fixed schedule; latency is measured
    /// from each request's intended send time (coordinated-omission corrected)
    #[arg(long, help_heading = WORKLOAD)]
    pub rate: Option<f64>,
    #[arg(long, help_heading = MEASUREMENT, value_parser = parse_duration, help = with_default(
        "Stop when no echo byte arrives for this long while echoes are owed, and report \
         what completed",
        LoadConfig::DEFAULT.timeout,
    ))]
    pub timeout: Option<Duration>,
    #[arg(long, help_heading = MEASUREMENT, value_parser = parse_duration, help = with_default(
        "Give up a connect that takes longer (a server that never accepts)",
        LoadConfig::DEFAULT.connect_timeout,
    ))]
    pub connect_timeout: Option<Duration>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The echo server, HOST:PORT (127.0.0.1:7000, localhost:7000, [::1]:7000)
    #[arg(long, help_heading = SERVER)]
    pub target: String,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Pin the client threads to these CPUs (e.g. 1 or 0,1 or 2-3)
    #[arg(long, help_heading = MEASUREMENT, value_parser = parse_cpu_list)]
    pub cpu: Option<CpuList>,
    /// Write the latency percentile spectrum (.hgrm layout, microseconds)
    #[arg(long, help_heading = OUTPUT)]
    pub hgrm: Option<std::path::PathBuf>,
    /// Write an HdrHistogram interval log, to merge runs with `iobench report merge`
    #[arg(long, help_heading = OUTPUT)]
    pub histogram_log: Option<std::path::PathBuf>,
    /// Print the report as JSON
    #[arg(long, help_heading = OUTPUT)]
    pub json: bool,
}

/// What `run` and `compare` share: the workload, repetitions, pinning, exports.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Runs per backend, interleaved (A B C A B C ...); the table shows medians
    #[arg(long, help_heading = MEASUREMENT, default_value_t = 3)]
    pub runs: usize,
    /// The server's CPUs, e.g. 0 or 0-3 or 0,2: all its threads (an external
    /// server's too) run within them (default 0 when there are two CPUs or more). A
    /// layout past this machine's CPUs makes each subject n/a
    #[arg(long, visible_alias = "server-cpu", help_heading = MEASUREMENT, value_parser = parse_cpu_list)]
    pub server_cpus: Option<CpuList>,
    /// The load generator's CPUs, its threads spread over them in turn (default 1
    /// when there are two CPUs or more)
    #[arg(long, visible_alias = "client-cpu", help_heading = MEASUREMENT, value_parser = parse_cpu_list)]
    pub client_cpus: Option<CpuList>,
    /// Pin nothing
    #[arg(long, help_heading = MEASUREMENT, conflicts_with_all = ["server_cpus", "client_cpus"])]
    pub no_pin: bool,
    /// The server's read strategy (default: each backend's own)
    #[arg(long, help_heading = SERVER, value_enum)]
    pub read_strategy: Option<ReadStrategy>,
    /// The server's read buffer
    #[arg(long, help_heading = SERVER, value_parser = parse_size)]
    pub buffer_size: Option<usize>,
    /// io-uring's ring setup (plain, defer-taskrun, sqpoll; default: serve's)
    #[arg(long, help_heading = SERVER, value_enum)]
    pub ring: Option<RingSetup>,
    /// Also count every system call and context switch of the server with
    /// perf_event_open (tracepoints cost the server 15-20% at high rates)
    #[arg(long, help_heading = MEASUREMENT)]
    pub kernel_counts: bool,
    /// The figures the table shows: default (those that tell the models apart), all,
    /// or keys separated by commas (requests_per_s,p99_us,...; the exports' column
    /// names). The exports always have every figure
    #[arg(long, default_value = "default", value_parser = View::parse, help_heading = OUTPUT)]
    pub figures: View,
    /// Print no table (with an export to standard output, `-`, the table goes to
    /// standard error unless this is given)
    #[arg(long, short, help_heading = OUTPUT)]
    pub quiet: bool,
    /// Write the results as Markdown (`-`: standard output)
    #[arg(long, help_heading = OUTPUT)]
    pub export_markdown: Option<std::path::PathBuf>,
    /// Write the results as CSV (`-`: standard output)
    #[arg(long, help_heading = OUTPUT)]
    pub export_csv: Option<std::path::PathBuf>,
    /// Write every figure of every run as JSON (`-`: standard output)
    #[arg(long, help_heading = OUTPUT)]
    pub export_json: Option<std::path::PathBuf>,
    /// Also measure anyone's echo server: NAME='COMMAND ... {port}', or a real server
    /// by name: redis (redis-server --io-threads N) or memcached (-t N), N being
    /// --server-threads (repeatable). It is started with a free port for {port},
    /// driven and measured like ours, from the kernel's side (our own counts are n/a
    /// for it)
    #[arg(long, help_heading = SERVER, value_parser = parse_external)]
    pub external: Vec<External>,
}

/// An `--external` server.
#[derive(Clone, Debug)]
pub enum External {
    Command { name: String, command: String },
    Real(RealServer),
}

/// `NAME=COMMAND`, the command holding `{port}`, or a real server's name.
fn parse_external(text: &str) -> Result<External, String> {
    if let Ok(real) = text.parse() {
        return Ok(External::Real(real));
    }
    let names: Vec<&str> = RealServer::ALL.iter().map(|r| r.name()).collect();
    let (name, command) = text.split_once('=').ok_or_else(|| {
        format!(
            "`{text}` is not NAME='COMMAND {{port}}' nor a real server ({})",
            names.join(", ")
        )
    })?;
    if name.trim().is_empty() || !command.contains("{port}") {
        return Err(format!(
            "`{text}`: give a name and a command that listens on {{port}}, e.g. ys='./echo_epoll {{port}}'"
        ));
    }
    Ok(External::Command {
        name: name.trim().to_string(),
        command: command.to_string(),
    })
}

/// The help of `--duration` or `--warmup`: `load` measures one server once, for
/// longer than each run of `run` and `compare`.
fn window_help(what: &str, load: Duration, per_run: Duration, note: &str) -> String {
    format!(
        "{what} (default: {} for load, {} per run for run and compare{note})",
        secs(load),
        secs(per_run)
    )
}

/// A list flag's help, whose default is every value.
fn all_help<T: std::fmt::Display>(what: &str, all: &[T]) -> String {
    let names: Vec<String> = all.iter().map(T::to_string).collect();
    format!(
        "{what}, comma-separated (default: all: {})",
        names.join(",")
    )
}

/// A duration flag's help with its default, which lives in a lower layer.
fn with_default(what: &str, default: Duration) -> String {
    format!("{what} (default: {})", secs(default))
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// The help of the demo's `--input`, with the article's sends.
fn inputs_help() -> String {
    let sends: Vec<String> = EtLtOptions::default()
        .inputs
        .iter()
        .map(|send| format!("\"{send}\""))
        .collect();
    format!(
        "et-lt: what the client sends, one send per --input (default: {})",
        sends.join(", then ")
    )
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The backend
    #[arg(long, help_heading = SERVER, value_enum, default_value_t = BACKEND)]
    pub backend: Backend,
    /// The threading model
    #[arg(long, help_heading = SERVER, value_enum, default_value_t = MODEL)]
    pub model: Model,
    /// Threads of the model (`serve --threads`; --threads is the client's), and of
    /// --external redis (--io-threads, main included) and memcached (-t, workers)
    #[arg(long, help_heading = SERVER, default_value_t = DEFAULT_THREADS)]
    pub server_threads: usize,
    #[command(flatten)]
    pub bench: BenchArgs,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    // Without the flag, every backend: the list lives in `Backend::ALL`.
    #[arg(long, help_heading = SERVER, value_enum, value_delimiter = ',', help = all_help("Backends", Backend::ALL))]
    pub backends: Vec<Backend>,
    /// Threading models, comma-separated: each backend runs with each
    #[arg(long, help_heading = SERVER, value_enum, value_delimiter = ',', default_values_t = [MODEL])]
    pub models: Vec<Model>,
    /// Threads of the models other than the reactor (`serve --threads`; --threads is
    /// the client's), and of --external redis (--io-threads, main included) and
    /// memcached (-t, workers)
    #[arg(long, help_heading = SERVER, default_value_t = DEFAULT_THREADS)]
    pub server_threads: usize,
    #[command(flatten)]
    pub bench: BenchArgs,
    /// The subject the ratios and bars compare with, by its name in the table (default:
    /// the first)
    #[arg(long, help_heading = OUTPUT)]
    pub baseline: Option<String>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The multiplexer
    #[arg(long, help_heading = SERVER, value_enum, default_value_t = BACKEND)]
    pub backend: Backend,
    /// The threading model
    #[arg(long, help_heading = SERVER, value_enum, default_value_t = MODEL)]
    pub model: Model,
    /// Threads of the model: dispatch workers, io-threads (main included), reuseport
    /// reactors
    #[arg(long, help_heading = SERVER, default_value_t = DEFAULT_THREADS)]
    pub threads: usize,
    /// Address to listen on (port 0 picks a free one; printed as `listening on IP:PORT`)
    #[arg(long, help_heading = SERVER, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Bytes asked for by each read (e.g. 16384, 16K, 1M)
    #[arg(long, help_heading = SERVER, default_value = "16K", value_parser = parse_size)]
    pub buffer_size: usize,
    /// How to read on a readiness report. Default, from measurements: `once` for the
    /// level-triggered backends (select, poll, epoll-lt, polling), `short-read` for
    /// epoll-et (drains without the EAGAIN read); io-uring's multishot recv takes
    /// what arrives (`drain`, the only one it accepts)
    #[arg(long, help_heading = SERVER, value_enum)]
    pub read_strategy: Option<ReadStrategy>,
    /// Allow `--read-strategy once` on epoll-et, which strands data (the article's pitfall)
    #[arg(long, help_heading = SERVER)]
    pub allow_et_once: bool,
    /// io-uring: how each ring is set up. By default defer-taskrun (SINGLE_ISSUER and
    /// DEFER_TASKRUN), which measured best here: completion work waits for the loop's
    /// own enter instead of interrupting it
    #[arg(long, help_heading = SERVER, value_enum)]
    pub ring: Option<RingSetup>,
    /// io-uring with --ring sqpoll: how long the kernel's polling thread spins without
    /// work before it sleeps (and the next submission has to wake it with an enter)
    #[arg(long, help_heading = SERVER, default_value = "1s", value_parser = parse_duration)]
    pub sqpoll_idle: Duration,
    /// Most connections served at once; more are accepted and closed at once
    #[arg(long, help_heading = LIMITS, default_value_t = 100_000)]
    pub max_conns: usize,
    /// Pending output per connection past which it is not read until it drains
    #[arg(long, help_heading = LIMITS, default_value = "64K", value_parser = parse_size)]
    pub max_pending: usize,
    /// SO_SNDBUF for each accepted socket (e.g. 16K); default: the kernel autotunes
    #[arg(long, help_heading = LIMITS, value_parser = parse_size)]
    pub sndbuf: Option<usize>,
    /// How the byte stream is cut into messages: raw (echo bytes as they come), line
    /// (echo each `\n`-terminated line), tlv ([type u16][length u32][value], big-endian),
    /// resp (Redis's protocol: ECHO and PING), memcache (memcached's text protocol: set
    /// and get on an in-memory store)
    // The load generator's default, so that `serve` and `load` agree without flags.
    #[arg(long, help_heading = SERVER, value_enum, default_value_t = LoadConfig::DEFAULT.protocol)]
    pub protocol: Protocol,
    /// Longest line, TLV value, RESP command's strings or memcache value accepted;
    /// longer closes that connection
    #[arg(long, help_heading = LIMITS, default_value_t = Size(DEFAULT_MAX_FRAME))]
    pub max_frame: Size,
    /// Bytes all connections together may hold in messages not complete yet; past it
    /// the connections holding the most are closed (default: 16 times --max-frame,
    /// at least 64M)
    #[arg(long, help_heading = LIMITS, value_parser = parse_size)]
    pub input_budget: Option<usize>,
    /// Memory the memcache store may hold, keys and values; past it a set is
    /// answered SERVER_ERROR (memcached's default -m)
    #[arg(long, help_heading = LIMITS, default_value_t = Size(Store::DEFAULT_LIMIT))]
    pub store_memory: Size,
    /// Close a connection that completes no message for this long (silent clients,
    /// slowloris tricklers); default: never
    #[arg(long, help_heading = LIMITS, value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Pin the server to this CPU
    #[arg(long, help_heading = SERVER)]
    pub cpu: Option<usize>,
    /// Stop after this long (e.g. 30s, 500ms, 2m); default: until SIGINT/SIGTERM
    #[arg(long, help_heading = SERVER, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Print statistics as one JSON object per line instead of tables
    #[arg(long, help_heading = OUTPUT)]
    pub json: bool,
    /// Print every system call of the event loop on stderr as it happens
    #[arg(long, help_heading = OUTPUT)]
    pub trace: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command line parses into the types the code reads (clap checks that
    /// only at run time).
    #[test]
    fn command_lines_parse() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        for line in [
            "iobench serve --backend select --cpu 0 --duration 1s --sndbuf 16K",
            "iobench load --target 127.0.0.1:1 --cpu 1 --rate 1000 --payload 4K --hgrm x",
            "iobench report merge a.hlog b.hlog",
            "iobench experiment run idle-scaling --quick --out /tmp/x",
            "iobench experiment list --dir experiments",
            "iobench experiment replot results/idle-scaling",
            "iobench demo et-lt --plain --mode et --input A --input BC --buffer-size 4",
            "iobench demo",
            "iobench transfer --method read-write,sendfile --file-size 8M --chunk 32K --cold",
            "iobench soak --requests 1000 --out /tmp/x",
            "iobench compare --backends select,epoll-et --runs 1 --client-cpu 1 --kernel-counts",
            "iobench run --backend poll --duration 1s --export-json x.json",
            "iobench compare --external ys=./echo_epoll_{port} --external b=x_{port}",
            "iobench compare --backends epoll-et --models dispatch --external memcached --external redis",
            "iobench run --server-cpus 0-3 --client-cpus 4-7",
            "iobench compare --server-cpu 0 --client-cpu 1",
            "iobench compare --backends epoll-et --models reactor,dispatch,io-threads --server-threads 2",
            "iobench serve --model reuseport --threads 4 --protocol tlv --max-frame 64K",
            "iobench serve --backend io-uring --ring sqpoll --sqpoll-idle 10ms",
            "iobench completions zsh",
            "iobench manpage --dir /tmp/x",
        ] {
            Cli::try_parse_from(line.split(' ')).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    /// Every example in the help parses: the shell's part (a redirection, a pipe,
    /// what follows `&&`) cut off.
    #[test]
    fn examples_parse() {
        use clap::CommandFactory;
        fn check(cmd: &clap::Command, seen: &mut usize) {
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            for example in help.lines().filter_map(|l| l.strip_prefix("  ")) {
                let line = example.split(['>', '|', '&']).next().unwrap().trim();
                Cli::try_parse_from(line.split(' ')).unwrap_or_else(|e| panic!("{line}: {e}"));
                *seen += 1;
            }
            for sub in cmd.get_subcommands() {
                check(sub, seen);
            }
        }
        let mut seen = 0;
        check(&Cli::command(), &mut seen);
        assert!(seen > 20, "only {seen} examples found");
    }
}
