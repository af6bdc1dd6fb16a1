//! iobench's command line: parse, run, render, export, exit code.

use anyhow::{Context, Result, bail};
use clap::Parser;
use cli::{
    BenchArgs, Cli, Command, DemoArgs, ExperimentCommand, LoadArgs, ReportCommand, SoakArgs,
    TransferArgs,
};
use iobench::{bench, cli, demo, experiment, load, metrics, report, server, transfer};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => args.config().and_then(|cfg| server::serve(&cfg)),
        Command::Load(args) => load(&args),
        Command::Run(args) => args
            .bench
            .plan(&[args.backend], &[args.model], args.server_threads)
            .and_then(|plan| bench(plan, None, &args.bench)),
        Command::Compare(args) => args
            .bench
            .plan(&args.backends, &args.models, args.server_threads)
            .and_then(|plan| bench(plan, args.baseline.clone(), &args.bench)),
        Command::Demo(args) => demo(&args),
        Command::Soak(args) => soak(&args),
        Command::Transfer(args) => transfer(&args),
        Command::Experiment { command } => experiment(command),
        Command::Report {
            command: ReportCommand::Merge { logs, hgrm },
        } => merge(&logs, hgrm.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iobench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: &LoadArgs) -> Result<()> {
    let cpus = args.cpu.clone().map(|c| c.0).unwrap_or_default();
    let cfg = args.workload.config(args.target, cpus, true)?;
    let started = SystemTime::now();
    let report = load::run(&cfg, &mut load::NoHooks)?;
    if let Some(h) = &report.histogram {
        if let Some(path) = &args.hgrm {
            load::write_hgrm(path, h)?;
        }
        if let Some(path) = &args.histogram_log {
            let window_start = started + cfg.warmup;
            load::write_interval_log(
                path,
                h,
                window_start,
                Duration::from_secs_f64(report.window_s),
            )?;
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report::load::render(&report, cfg.rate.is_some()));
    }
    if report.errors() > 0 {
        bail!(
            "the echo was wrong: {} mismatched bytes, {} lost bytes, {} unexpected closes",
            report.mismatched_bytes,
            report.lost_bytes,
            report.unexpected_closes
        );
    }
    if report.requests == 0 {
        bail!(
            "no request completed in the measured window: is {} an echo server?",
            cfg.target
        );
    }
    Ok(())
}

fn merge(logs: &[std::path::PathBuf], hgrm: Option<&std::path::Path>) -> Result<()> {
    let merged = load::merge_logs(logs)?;
    if let Some(path) = hgrm {
        load::write_hgrm(path, &merged)?;
    }
    print!(
        "{}",
        report::load::render_latency(
            &format!("{} logs merged", logs.len()),
            &load::Latency::of(&merged)
        )
    );
    Ok(())
}

fn bench(plan: bench::BenchPlan, baseline: Option<String>, args: &BenchArgs) -> Result<()> {
    if let Some(b) = &baseline
        && !plan.subjects.iter().any(|s| &s.name() == b)
    {
        let names: Vec<String> = plan.subjects.iter().map(|s| s.name()).collect();
        bail!(
            "--baseline {b} is not one of the subjects: {}",
            names.join(", ")
        );
    }
    let total = plan.runs * plan.subjects.len();
    let progress = report::progress::Progress::new(total as u64);
    let runs = bench::run(&plan, &mut |done, what| progress.show(done, what));
    progress.finish();
    let summaries = bench::summarise(&runs);
    let report = bench::BenchReport {
        machine: metrics::Machine::describe(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        baseline: baseline.unwrap_or_else(|| plan.subjects[0].name()),
        plan,
        summaries,
        runs,
    };
    print!("{}", report::compare::render(&report));
    report::export::write_all(
        &report,
        args.export_markdown.as_deref(),
        args.export_csv.as_deref(),
        args.export_json.as_deref(),
    )?;
    let errors: u64 = report
        .runs
        .iter()
        .flat_map(|s| &s.runs)
        .map(|r| r.load.errors())
        .sum();
    if errors > 0 {
        bail!("{errors} bytes or connections went wrong in the echo: see the warnings above");
    }
    let failures: Vec<&String> = report.summaries.iter().flat_map(|s| &s.failures).collect();
    if let Some(first) = failures.first() {
        bail!("{} of the runs failed; the first: {first}", failures.len());
    }
    Ok(())
}

fn experiment(command: ExperimentCommand) -> Result<()> {
    match command {
        ExperimentCommand::Run {
            file,
            quick,
            out,
            dir,
        } => {
            let path = experiment::find(&file, &dir);
            let scale = match quick {
                true => experiment::Scale::Quick,
                false => experiment::Scale::Full,
            };
            let exp = experiment::Experiment::load(&path, scale)?;
            let out = out.unwrap_or_else(|| {
                let name = match scale {
                    experiment::Scale::Quick => format!("{}.quick", exp.name),
                    experiment::Scale::Full => exp.name.clone(),
                };
                std::path::Path::new("results").join(name)
            });
            let progress = report::progress::Progress::new(0);
            let results = experiment::run(&exp, &mut |step| progress.step(&step));
            progress.finish();
            let results = results?;
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            report::experiment::write(&exp, &results, &command, &out)?;
            let failures = results.failures();
            if let Some(first) = failures.first() {
                bail!(
                    "{} measurements failed (the results in {} say which); the first: {first}",
                    failures.len(),
                    out.display()
                );
            }
            println!("{}: results in {}", exp.name, out.display());
            Ok(())
        }
        ExperimentCommand::List { dir } => {
            for (name, line) in experiment::list(&dir)? {
                println!("{name:<14} {line}");
            }
            Ok(())
        }
    }
}

fn demo(args: &DemoArgs) -> Result<()> {
    let Some(name) = &args.name else {
        println!("iobench demo NAME: the article's claims, live\n");
        for (name, what) in demo::DEMOS {
            println!("  {name:<11} {what}");
        }
        return Ok(());
    };
    let ctx = demo::DemoContext::new(args.trace, Box::new(std::io::stdout()));
    demo::run(name, &ctx, &args.et_lt())
}

fn soak(args: &SoakArgs) -> Result<()> {
    let template = load::LoadConfig {
        target: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        connections: args.connections,
        idle_connections: 0,
        payload: args.payload,
        pipeline: args.pipeline.max(1),
        duration: None,
        requests: Some(args.requests),
        warmup: Duration::ZERO,
        threads: 1,
        cpus: Vec::new(),
        rate: None,
        protocol: args.protocol,
    };
    let progress = report::progress::Progress::new(20);
    let rows = bench::soak(args.requests, &template, &mut |done, what| {
        progress.show(done, what)
    })?;
    progress.finish();
    let report = report::soak::SoakReport {
        machine: metrics::Machine::describe(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        rows,
    };
    print!("{}", report::soak::table(&report));
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("README.md"), report::soak::readme(&report))?;
        std::fs::write(
            dir.join("data.json"),
            serde_json::to_string_pretty(&report)? + "\n",
        )?;
    }
    if report.errors() > 0 {
        bail!("the soak found {} errors", report.errors());
    }
    Ok(())
}

fn transfer(args: &TransferArgs) -> Result<()> {
    let cfg = transfer::TransferConfig {
        methods: args.method.clone(),
        file: args.file.clone(),
        file_size: args.file_size as u64,
        chunk: args.chunk,
        cold: args.cold,
    };
    let results = transfer::run(&cfg)?;
    print!("{}", report::transfer::render(&results, args.chunk));
    if args.json {
        println!("{}", serde_json::to_string(&results)?);
    }
    Ok(())
}
