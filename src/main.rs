//! iobench's command line: parse, validate (`options`), run, render, export, exit
//! code.

use anyhow::{Context, Result, bail};
use clap::Parser;
use cli::{
    BenchArgs, Cli, Command, DemoArgs, ExperimentCommand, LoadArgs, ReportCommand, SoakArgs,
    TransferArgs,
};
use iobench::{bench, cli, demo, experiment, load, metrics, options, report, server, transfer};
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match options::negative_number(&e) {
            Some(message) => {
                let _ = writeln!(std::io::stderr(), "iobench: {message}");
                return ExitCode::from(2);
            }
            None => e.exit(),
        },
    };
    let result = match cli.command {
        Command::Serve(args) => options::serve(&args).and_then(|cfg| {
            let render = if args.json {
                report::serve::json_line
            } else {
                report::serve::render
            };
            server::serve(&cfg, render)
        }),
        Command::Load(args) => options::load(&args).and_then(|cfg| load(&cfg, &args)),
        Command::Run(args) => options::run(&args).and_then(|b| bench(b, &args.bench)),
        Command::Compare(args) => options::compare(&args).and_then(|b| bench(b, &args.bench)),
        Command::Demo(args) => demo(&args),
        Command::Soak(args) => options::soak(&args).and_then(|template| soak(&template, &args)),
        Command::Transfer(args) => transfer(&options::transfer(&args), &args),
        Command::Experiment { command } => experiment(command),
        Command::Report {
            command: ReportCommand::Merge { logs, hgrm },
        } => merge(&logs, hgrm.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stderr leaves nobody to tell.
            let _ = writeln!(std::io::stderr(), "iobench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Drives the server, prints the report and writes the histograms `args` asks for;
/// fails when the echo was wrong or nothing was echoed.
fn load(cfg: &load::LoadConfig, args: &LoadArgs) -> Result<()> {
    let started = SystemTime::now();
    let report = load::run(cfg, &mut load::NoHooks)?;
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
        say(&format!("{}\n", serde_json::to_string(&report)?))?;
    } else {
        say(&report::load::render(&report))?;
    }
    if report.stalled {
        bail!(
            "{} sent no echo byte for {:?} (--timeout) with requests outstanding: stopped after \
             {} requests completed",
            cfg.target,
            cfg.timeout,
            report.requests_total
        );
    }
    if report.errors() > 0 {
        let counts = format!(
            "{} mismatched bytes, {} lost bytes, {} unexpected closes",
            report.mismatched_bytes, report.lost_bytes, report.unexpected_closes
        );
        // Not one request came back right: the server is no echo server at all.
        if report.requests_total == 0 && report.mismatched_bytes > 0 {
            bail!(
                "the replies are not an echo of the requests ({counts}): is {} an echo server?",
                cfg.target
            );
        }
        bail!("the echo was wrong: {counts}");
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
    say(&report::load::render_latency(
        &format!("{} logs merged", logs.len()),
        &load::Latency::of(&merged),
    ))
}

/// Runs every subject, prints the table and writes the exports `args` asks for;
/// fails when an echo was wrong or a run failed.
fn bench(options::Bench { plan, baseline }: options::Bench, args: &BenchArgs) -> Result<()> {
    let progress = progress()?;
    let runs = bench::run(&plan, &mut on_step(&progress));
    progress.finish();
    let summaries = bench::summarise(&runs);
    let report = bench::BenchReport {
        machine: metrics::Machine::describe(),
        command: command_line(),
        baseline,
        plan,
        summaries,
        runs,
    };
    say(&report::compare::render(&report))?;
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
            create_output_dir("--out", &out)?;
            let progress = progress()?;
            let results = experiment::run(&exp, &mut on_step(&progress));
            progress.finish();
            let results = results?;
            let command = command_line();
            report::experiment::write(&exp, &results, &command, &out)?;
            let failures = results.failures();
            if let Some(first) = failures.first() {
                bail!(
                    "{} measurements failed (the results in {} say which); the first: {first}",
                    failures.len(),
                    out.display()
                );
            }
            say(&format!("{}: results in {}\n", exp.name, out.display()))?;
            Ok(())
        }
        ExperimentCommand::List { dir } => {
            let mut unreadable = 0;
            for (name, title) in experiment::list(&dir)? {
                match title {
                    Ok(title) => say(&format!("{name:<14} {title}\n"))?,
                    Err(e) => {
                        unreadable += 1;
                        say(&format!("{name:<14} cannot be read: {e:#}\n"))?;
                    }
                }
            }
            if unreadable > 0 {
                bail!(
                    "{unreadable} experiment file(s) in {} cannot be read",
                    dir.display()
                );
            }
            Ok(())
        }
    }
}

fn demo(args: &DemoArgs) -> Result<()> {
    let Some(name) = &args.name else {
        say("iobench demo NAME: the article's claims, live\n\n")?;
        for (name, what) in demo::DEMOS {
            say(&format!("  {name:<11} {what}\n"))?;
        }
        return Ok(());
    };
    let mut ctx = demo::DemoContext::new(Box::new(std::io::stdout()));
    if args.trace {
        ctx = ctx.traced();
    }
    demo::run(name, &ctx, &options::demo(name, args)?)
}

/// Soaks every backend and model with `template`, prints the table and writes the
/// files `args` asks for; fails on any error.
fn soak(template: &load::LoadConfig, args: &SoakArgs) -> Result<()> {
    if let Some(dir) = &args.out {
        create_output_dir("--out", dir)?;
    }
    let progress = progress()?;
    let rows = bench::soak(args.requests, template, &mut on_step(&progress))?;
    progress.finish();
    let report = report::soak::SoakReport {
        machine: metrics::Machine::describe(),
        command: command_line(),
        asked: args.requests,
        workload: template.clone(),
        rows,
    };
    say(&report::soak::table(&report))?;
    if let Some(dir) = &args.out {
        for (name, text) in [
            ("README.md", report::soak::readme(&report)),
            ("data.json", serde_json::to_string_pretty(&report)? + "\n"),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if report.errors() > 0 {
        bail!("the soak found {} errors", report.errors());
    }
    Ok(())
}

/// Sends the file by every method and prints the table (`args`: also as JSON).
fn transfer(cfg: &transfer::TransferConfig, args: &TransferArgs) -> Result<()> {
    let results = transfer::run(cfg)?;
    say(&report::transfer::render(&results, cfg.chunk))?;
    if args.json {
        say(&format!("{}\n", serde_json::to_string(&results)?))?;
    }
    Ok(())
}

/// The progress bar, and Ctrl-C's handler, which says how far the steps had come.
fn progress() -> Result<report::progress::Progress> {
    bench::interrupt::install()?;
    Ok(report::progress::Progress::start())
}

/// Each step to the bar, and to the line Ctrl-C leaves.
fn on_step(progress: &report::progress::Progress) -> impl FnMut(bench::Step) + '_ {
    |step| {
        bench::interrupt::reached(&step);
        progress.show(&step);
    }
}

/// The command as it was typed, for the records that reports keep.
fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// Creates an output folder before anything is measured, so that a path that cannot
/// be written fails at once, not after the runs.
fn create_output_dir(flag: &str, dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{flag} {}: cannot create that folder", dir.display()))
}

/// Prints on standard output; a closed one (`iobench compare | head -1`) ends the
/// command with a message instead of a panic.
fn say(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to standard output: is it closed?")
}
