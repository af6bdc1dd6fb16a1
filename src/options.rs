//! The command line's arguments turned into validated configurations (hyperfine's
//! `options.rs` beside its `cli.rs`). Every check of what a user typed is here, with
//! a message that says what to do; what clap does not fill in starts from the
//! defaults of the layer it configures. `main` runs what comes out.
//!
//! Layer: the top, above `cli`; validates, runs nothing.

use crate::backend::{Backend, Trigger};
use crate::bench::{self, BenchPlan, Subject};
use crate::cli::{
    BenchArgs, CompareArgs, DemoArgs, External, LoadArgs, RunArgs, ServeArgs, SoakArgs,
    TransferArgs, WorkloadArgs,
};
use crate::demo::{EtLtOptions, Mode};
use crate::load::{self, Driver, LONG_WINDOW, LoadConfig};
use crate::report::export;
use crate::server::{
    self, DEFAULT_RING, InputBudget, LoopOptions, Model, ReadStrategy, RingSetup, ServeConfig,
};
use crate::style::{Charset, ColorChoice, Style};
use crate::transfer::{Method, TransferConfig};
use anyhow::{Context, Result, bail};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

/// `serve`: the server, its read strategy defaulting to the backend's own.
pub fn serve(args: &ServeArgs) -> Result<ServeConfig> {
    let backend = args.backend;
    let read_strategy = args
        .read_strategy
        .unwrap_or_else(|| ReadStrategy::default_for(backend));
    if !read_strategy.applies_to(backend) {
        bail!(
            "--read-strategy {read_strategy} does not apply to {backend}: its multishot recv \
             takes what arrives, as it arrives (drain); leave the flag out"
        );
    }
    if let Some(why) = server::unsupported(backend, args.model) {
        bail!("{why}; use --model reactor or reuseport");
    }
    if read_strategy.strands_data(backend.trigger()) {
        if !args.allow_et_once {
            bail!(
                "--read-strategy {read_strategy} on {backend} strands data: an edge is reported \
                 once, and what one read leaves behind is never reported again. Add \
                 --allow-et-once to see it happen, or use drain or short-read"
            );
        }
        eprintln!(
            "warning: {backend} with one read per wakeup: data left after a read stays \
             stranded until the peer sends more"
        );
    }
    check_ring(args.ring, backend == Backend::IoUring)?;
    server::check_buffer_size(args.buffer_size)?;
    if args.max_conns == 0 {
        bail!("--max-conns must be at least 1");
    }
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    Ok(ServeConfig {
        backend,
        model: args.model,
        threads: args.threads,
        listen: args.listen,
        loop_options: LoopOptions {
            buffer_size: args.buffer_size,
            read_strategy,
            max_pending: args.max_pending.max(1),
            max_conns: args.max_conns,
            send_buffer: args.sndbuf,
            protocol: args.protocol,
            max_frame: args.max_frame.0.max(1),
            input_budget: args
                .input_budget
                .unwrap_or_else(|| InputBudget::default_for(args.max_frame.0)),
            store_limit: args.store_memory.0,
            idle_timeout: args.idle_timeout.filter(|t| !t.is_zero()),
            ring: args.ring.unwrap_or(DEFAULT_RING),
            sqpoll_idle: args.sqpoll_idle,
        },
        cpu: args.cpu.map(checked_cpu).transpose()?,
        duration: args
            .duration
            .map(|d| positive("--duration", d))
            .transpose()?,
        trace: args.trace,
    })
}

/// `--ring` only where an io-uring server runs: elsewhere it would be silently ignored.
fn check_ring(ring: Option<RingSetup>, io_uring: bool) -> Result<()> {
    match ring {
        Some(ring) if !io_uring => bail!(
            "--ring {} sets up io_uring rings, and no io-uring server is asked for: \
             choose the io-uring backend, or leave --ring out",
            ring.name()
        ),
        _ => Ok(()),
    }
}

/// `load`: one server measured once, so for longer than each run of a bench.
pub fn load(args: &LoadArgs) -> Result<LoadConfig> {
    for (flag, path) in [
        ("--hgrm", &args.hgrm),
        ("--histogram-log", &args.histogram_log),
    ] {
        if let Some(path) = path {
            check_output(flag, path)?;
        }
    }
    let (duration, warmup) = LONG_WINDOW;
    workload(
        &args.workload,
        LoadConfig {
            target: resolve(&args.target)?,
            duration: Some(duration),
            warmup,
            cpus: checked_cpus(args.cpu.as_ref().map_or(&[][..], |list| &list.0))?,
            ..LoadConfig::DEFAULT
        },
    )
}

/// What `run` and `compare` measure, and the subject the ratio column compares with.
pub struct Bench {
    pub plan: BenchPlan,
    /// A subject's name, as the table shows it.
    pub baseline: String,
}

/// `run`: one backend with one model.
pub fn run(args: &RunArgs) -> Result<Bench> {
    bench(
        &args.bench,
        &[args.backend],
        &[args.model],
        args.server_threads,
        None,
    )
}

/// `compare`: every backend with every model, then the external servers.
pub fn compare(args: &CompareArgs) -> Result<Bench> {
    bench(
        &args.bench,
        &or_all(&args.backends, Backend::ALL),
        &args.models,
        args.server_threads,
        args.baseline.as_deref(),
    )
}

/// `soak`: the workload each backend and model gets, by request count and without
/// a warm-up (`bench::soak` gives each its target and share of the requests).
pub fn soak(args: &SoakArgs) -> Result<LoadConfig> {
    for (flag, n) in [
        ("--connections", args.connections as u64),
        ("--pipeline", args.pipeline as u64),
        ("--requests", args.requests),
    ] {
        if n == 0 {
            bail!("{flag} must be at least 1");
        }
    }
    load::check_payload(args.payload, args.protocol)?;
    Ok(LoadConfig {
        connections: args.connections,
        payload: args.payload,
        pipeline: args.pipeline,
        duration: None,
        requests: Some(args.requests),
        warmup: Duration::ZERO,
        protocol: args.protocol,
        driver: driver(args.driver)?,
        ..LoadConfig::DEFAULT
    })
}

/// `transfer`: the methods and the file (its checks are made by `transfer::run`,
/// which experiments call too).
pub fn transfer(args: &TransferArgs) -> TransferConfig {
    TransferConfig {
        methods: or_all(&args.method, Method::ALL),
        file: args.file.clone(),
        file_size: args.file_size.0,
        chunk: args.chunk.0,
        cold: args.cold,
    }
}

/// `demo NAME`'s options: without --input, the article's sends. A flag the demo does
/// not take, or a --backend whose trigger is not the --mode asked for, is refused
/// (before, `--backend epoll-et --mode lt` ran ET without a word).
pub fn demo(name: &str, args: &DemoArgs) -> Result<EtLtOptions> {
    let given = [
        ("--mode", args.mode.is_some()),
        ("--backend", args.backend.is_some()),
        ("--plain", args.plain),
        ("--input", !args.input.is_empty()),
        ("--buffer-size", args.buffer_size.is_some()),
    ];
    let takes: &[&str] = match name {
        "et-lt" => &["--mode", "--backend", "--plain", "--input", "--buffer-size"],
        "et-pitfall" => &["--input", "--buffer-size"],
        _ => &[],
    };
    if let Some((flag, _)) = given.iter().find(|(f, on)| *on && !takes.contains(f)) {
        bail!("demo {name} takes no {flag} (the demos' flags: iobench demo --help)");
    }
    let defaults = EtLtOptions::default();
    let mode = args.mode.unwrap_or(defaults.mode);
    if let Some(backend) = args.backend {
        let fits = match mode {
            Mode::Et => backend.trigger() == Trigger::Edge,
            Mode::Lt => backend.trigger() == Trigger::Level,
            Mode::Both => args.mode.is_none(),
        };
        if !fits {
            bail!(
                "--backend {backend} is {}-triggered: it cannot show --mode {mode}; leave out \
                 --mode, or pick a backend that is",
                backend.trigger()
            );
        }
    }
    Ok(EtLtOptions {
        mode,
        inputs: if args.input.is_empty() {
            defaults.inputs
        } else {
            args.input.clone()
        },
        buffer_size: args.buffer_size.unwrap_or(defaults.buffer_size),
        backend: args.backend,
        plain: args.plain,
    })
}

/// The workload the flags describe; `start` holds the command's defaults for what
/// the flags leave open (target, client CPUs, the measured window).
fn workload(args: &WorkloadArgs, start: LoadConfig) -> Result<LoadConfig> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.pipeline == 0 {
        bail!("--pipeline must be at least 1");
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of requests per second");
    }
    if args.requests == Some(0) {
        bail!("--requests must be at least 1");
    }
    if args.threads == 0 {
        bail!("--threads must be at least 1 (the load generator's threads)");
    }
    if let Some(d) = args.duration {
        positive("--duration", d)?;
    }
    load::check_payload(args.payload, args.protocol)?;
    for (flag, value) in [
        ("--timeout", args.timeout),
        ("--connect-timeout", args.connect_timeout),
    ] {
        if value.is_some_and(|d| d.is_zero()) {
            bail!("{flag} must be longer than 0 (e.g. 10s)");
        }
    }
    Ok(LoadConfig {
        connections: args.connections,
        idle_connections: args.idle_connections,
        payload: args.payload,
        pipeline: args.pipeline,
        // A request count ends the run instead of a duration.
        duration: match args.requests {
            Some(_) => None,
            None => args.duration.or(start.duration),
        },
        requests: args.requests,
        warmup: args.warmup.unwrap_or(start.warmup),
        threads: args.threads.max(1),
        rate: args.rate,
        protocol: args.protocol,
        timeout: args.timeout.unwrap_or(start.timeout),
        connect_timeout: args.connect_timeout.unwrap_or(start.connect_timeout),
        driver: driver(args.driver)?,
        ..start
    })
}

/// The load generator's driver, refused with the kernel's reason where io_uring is.
fn driver(driver: Driver) -> Result<Driver> {
    if driver == Driver::IoUring
        && let Some(why) = server::io_uring_unavailable()
    {
        bail!(
            "--driver {driver}: {why}; --driver {} needs none",
            Driver::Epoll
        );
    }
    Ok(driver)
}

/// Every backend with every model, then the external servers, each run with its
/// default window; `baseline` (None: the first subject) must name one of them.
fn bench(
    args: &BenchArgs,
    backends: &[Backend],
    models: &[Model],
    threads: usize,
    baseline: Option<&str>,
) -> Result<Bench> {
    if threads == 0 {
        bail!("--server-threads must be at least 1");
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if let Some(bytes) = args.buffer_size {
        server::check_buffer_size(bytes)?;
    }
    check_ring(args.ring, backends.contains(&Backend::IoUring))?;
    let exports = [
        ("--export-markdown", &args.export_markdown),
        ("--export-csv", &args.export_csv),
        ("--export-json", &args.export_json),
    ];
    let mut to_stdout = Vec::new();
    for (flag, path) in exports {
        match path {
            Some(path) if export::is_stdout(path) => to_stdout.push(flag),
            Some(path) => check_output(flag, path)?,
            None => {}
        }
    }
    if to_stdout.len() > 1 {
        bail!(
            "{} all write to standard output (-): give all but one of them a file",
            to_stdout.join(" and ")
        );
    }
    // A layout this machine cannot give makes each subject n/a (BenchPlan::cannot_run),
    // not an error: the same line runs where it can.
    let (default_server, default_client) = if args.no_pin {
        (Vec::new(), Vec::new())
    } else {
        bench::default_pinning()
    };
    let given = |list: &Option<crate::units::CpuList>| list.as_ref().map(|l| l.0.clone());
    let server_cpus = given(&args.server_cpus).unwrap_or(default_server);
    let client_cpus = given(&args.client_cpus).unwrap_or(default_client);
    let ours = backends.iter().flat_map(|&backend| {
        models
            .iter()
            .map(move |&model| Subject::ours(backend, model, threads))
    });
    let external = args.external.iter().map(|external| match external {
        External::Command { name, command } => Subject::External {
            name: name.clone(),
            command: command.clone(),
            real: None,
        },
        External::Real(server) => Subject::real(*server, threads),
    });
    let plan = BenchPlan {
        subjects: ours.chain(external).collect(),
        runs: args.runs,
        // The target is each server's, set when it starts.
        load: workload(
            &args.workload,
            LoadConfig {
                cpus: client_cpus,
                ..LoadConfig::DEFAULT
            },
        )?,
        server_cpus,
        server_args: bench::server_args(
            args.read_strategy,
            args.buffer_size,
            args.ring,
            args.workload.protocol,
        ),
        kernel_counts: args.kernel_counts,
        label: None,
    };
    let names: Vec<String> = plan.subjects.iter().map(Subject::name).collect();
    let baseline = match baseline {
        // clap asks for at least one backend and one model: there is a first.
        None => names[0].clone(),
        Some(b) if names.iter().any(|name| name == b) => b.to_string(),
        Some(b) => bail!(
            "--baseline {b} is not one of the subjects: {}",
            names.join(", ")
        ),
    };
    Ok(Bench { plan, baseline })
}

/// HOST:PORT as an address: a name is resolved, and its first IPv4 address is taken
/// where it has one (iobench's servers listen on 127.0.0.1 by default).
fn resolve(target: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .with_context(|| {
            format!("--target {target}: give HOST:PORT, e.g. 127.0.0.1:7000 or localhost:7000")
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| anyhow::anyhow!("--target {target}: the name has no address"))
}

/// What to say when clap took a negative number for a flag it does not know
/// (`--connections -1` reads as an unknown `-1`): no count, size or duration is
/// negative.
pub fn negative_number(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    arg.parse::<f64>().ok().filter(|n| *n < 0.0).map(|_| {
        format!(
            "`{arg}` is negative: counts, sizes, rates and durations are 0 or more \
             (e.g. --connections 64, --duration 2s)"
        )
    })
}

/// A CPU the process may run on (the flag's value), or why not.
fn checked_cpu(cpu: usize) -> Result<usize> {
    crate::sys::check_cpu(cpu).map(|()| cpu)
}

fn checked_cpus(cpus: &[usize]) -> Result<Vec<usize>> {
    cpus.iter().map(|&c| checked_cpu(c)).collect()
}

/// A duration that must be longer than 0.
fn positive(flag: &str, d: Duration) -> Result<Duration> {
    if d.is_zero() {
        bail!("{flag} must be longer than 0 (e.g. 1s, 500ms)");
    }
    Ok(d)
}

/// Refuses an output file that could not be written, before anything is measured:
/// its folder must exist and be writable, and it must not be a folder itself.
fn check_output(flag: &str, path: &std::path::Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "{flag} {}: there is no folder {}",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        bail!(
            "{flag} {}: that is a folder, give a file name",
            path.display()
        );
    }
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).with_context(|| {
        format!(
            "{flag} {}: cannot write in {}",
            path.display(),
            dir.display()
        )
    })
}

/// What a list flag names, or every value when it names none.
fn or_all<T: Clone>(named: &[T], all: &[T]) -> Vec<T> {
    if named.is_empty() { all } else { named }.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(line: &str) -> Command {
        Cli::try_parse_from(line.split(' '))
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .command
    }

    fn serve_line(line: &str) -> Result<ServeConfig> {
        let Command::Serve(args) = parse(line) else {
            panic!("{line}: not serve")
        };
        serve(&args)
    }

    fn run_line(line: &str) -> Result<Bench> {
        let Command::Run(args) = parse(line) else {
            panic!("{line}: not run")
        };
        run(&args)
    }

    /// Without flags every workload is the load layer's default, in the window of
    /// its command: `load` the long one, a bench's runs the default one.
    #[test]
    fn workloads_start_from_the_load_layers_defaults() {
        let default = LoadConfig::DEFAULT;
        let Command::Load(args) = parse("iobench load --target 127.0.0.1:9") else {
            panic!("not load")
        };
        let long = load(&args).unwrap();
        assert_eq!(
            (long.duration, long.warmup),
            (Some(LONG_WINDOW.0), LONG_WINDOW.1)
        );
        let bench = run_line("iobench run --no-pin").unwrap().plan.load;
        assert_eq!(
            (bench.duration, bench.warmup),
            (default.duration, default.warmup)
        );
        for cfg in [&long, &bench] {
            assert_eq!(
                (
                    cfg.connections,
                    cfg.idle_connections,
                    cfg.payload,
                    cfg.pipeline
                ),
                (
                    default.connections,
                    default.idle_connections,
                    default.payload,
                    default.pipeline
                )
            );
            assert_eq!(
                (cfg.threads, cfg.protocol),
                (default.threads, default.protocol)
            );
            assert_eq!((cfg.requests, cfg.rate), (None, None));
        }
        // A request count ends the run instead of the duration.
        let counted = run_line("iobench run --no-pin --requests 10").unwrap();
        assert_eq!(counted.plan.load.duration, None);
        assert_eq!(counted.plan.load.requests, Some(10));
    }

    #[test]
    fn one_read_per_edge_is_refused_without_its_flag() {
        let refused = serve_line("iobench serve --backend epoll-et --read-strategy once");
        let message = format!("{:#}", refused.unwrap_err());
        assert!(message.contains("strands data"), "{message}");
        assert!(message.contains("--allow-et-once"), "{message}");
        let allowed =
            serve_line("iobench serve --backend epoll-et --read-strategy once --allow-et-once");
        assert_eq!(
            allowed.unwrap().loop_options.read_strategy,
            ReadStrategy::Once
        );
        // Under level triggering the next wait reports what one read left.
        assert!(serve_line("iobench serve --backend poll --read-strategy once").is_ok());
        let default = serve_line("iobench serve --backend epoll-et").unwrap();
        assert_eq!(default.loop_options.read_strategy, ReadStrategy::ShortRead);
    }

    #[test]
    fn the_baseline_is_a_subject_and_defaults_to_the_first() {
        let Command::Compare(args) = parse("iobench compare --no-pin --backends poll,epoll-lt")
        else {
            panic!("not compare")
        };
        assert_eq!(compare(&args).unwrap().baseline, "poll");
        let Command::Compare(args) = parse("iobench compare --no-pin --baseline nope") else {
            panic!("not compare")
        };
        let message = format!("{:#}", compare(&args).err().unwrap());
        assert!(
            message.contains("--baseline nope is not one of the subjects: select, poll"),
            "{message}"
        );
    }
}

/// Where a command's human output goes, for its [`Style`].
#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The style of output to `stream`: its width from `COLUMNS`, else the terminal's,
/// else [`Style::PLAIN`]'s; Unicode unless `--style` or the locale says otherwise;
/// colour when asked, or on a terminal without `NO_COLOR`.
pub fn style(charset: Charset, color: ColorChoice, stream: Stream) -> Style {
    fn tty(f: impl std::os::fd::AsFd + IsTerminal) -> (bool, Option<usize>) {
        (f.is_terminal(), crate::sys::terminal::columns(f.as_fd()))
    }
    let (terminal, columns) = match stream {
        Stream::Stdout => tty(std::io::stdout()),
        Stream::Stderr => tty(std::io::stderr()),
    };
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .filter(|&c: &usize| c > 0)
        .or(columns)
        .unwrap_or(Style::PLAIN.width);
    let set = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    let unicode = match charset {
        Charset::Unicode => true,
        Charset::Ascii => false,
        // The first of these that is set decides, as for every C program.
        Charset::Auto => ["LC_ALL", "LC_CTYPE", "LANG"]
            .iter()
            .find_map(|var| set(var))
            .is_some_and(|locale| {
                let locale = locale.to_ascii_lowercase();
                locale.contains("utf-8") || locale.contains("utf8")
            }),
    };
    let color = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && set("NO_COLOR").is_none(),
    };
    Style {
        width,
        unicode,
        color,
    }
}
