//! iobench's command line: parse, validate (`options`), run, render, export, exit
//! code.

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser};
use cli::{
    BenchArgs, Cli, Command, DemoArgs, ExperimentCommand, LoadArgs, ReportCommand, SoakArgs,
    TransferArgs,
};
use iobench::style::{Charset, ColorChoice, Style};
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
    let looks = (cli.style, cli.color);
    // How standard output looks, for the commands that print there.
    let out = options::style(cli.style, cli.color, options::Stream::Stdout);
    let result = match cli.command {
        Command::Serve(args) => options::serve(&args).and_then(|cfg| {
            let render = if args.json {
                report::serve::json_line
            } else {
                report::serve::render
            };
            server::serve(&cfg, render)
        }),
        Command::Load(args) => options::load(&args).and_then(|cfg| load(&cfg, &args, &out)),
        Command::Run(args) => options::run(&args).and_then(|b| bench(b, &args.bench, looks)),
        Command::Compare(args) => {
            options::compare(&args).and_then(|b| bench(b, &args.bench, looks))
        }
        Command::Demo(args) => demo(&args, out),
        Command::Soak(args) => {
            options::soak(&args).and_then(|template| soak(&template, &args, &out))
        }
        Command::Transfer(args) => transfer(&options::transfer(&args), &args, &out),
        Command::Experiment { command } => experiment(command, &out),
        Command::Report {
            command: ReportCommand::Merge { logs, hgrm },
        } => merge(&logs, hgrm.as_deref(), &out),
        Command::Completions { shell } => completions(shell),
        Command::Manpage { dir } => manpage(dir.as_deref()),
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
fn load(cfg: &load::LoadConfig, args: &LoadArgs, style: &Style) -> Result<()> {
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
        say(&report::load::render(&report, style))?;
    }
    if report.stalled {
        bail!(
            "{} sent no echo byte for {:?} (--timeout) with requests outstanding: stopped after \
             {} completed",
            cfg.target,
            cfg.timeout,
            report::plural(report.requests_total, "request")
        );
    }
    if report.errors() > 0 {
        let counts = report::load::echo_errors(&report);
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

fn merge(logs: &[std::path::PathBuf], hgrm: Option<&std::path::Path>, style: &Style) -> Result<()> {
    let merged = load::merge_logs(logs)?;
    if let Some(path) = hgrm {
        load::write_hgrm(path, &merged)?;
    }
    say(&report::load::render_latency(
        &format!("{} merged", report::plural(logs.len(), "log")),
        &load::Latency::of(&merged),
        style,
    ))
}

/// The `--style` and `--color` flags, for [`options::style`].
type Looks = (Charset, ColorChoice);

/// Runs every subject, prints the table and writes the exports `args` asks for (one
/// of them to standard output, the table then to standard error); fails when an echo
/// was wrong or a run failed.
fn bench(
    options::Bench { plan, baseline }: options::Bench,
    args: &BenchArgs,
    (charset, color): Looks,
) -> Result<()> {
    let progress = progress()?;
    let runs = bench::run(&plan, &mut on_step(&progress));
    progress.finish();
    let summaries = bench::summarise(&runs);
    let report = bench::BenchReport {
        machine: metrics::Machine::describe(),
        command: command_line(),
        baseline,
        findings: bench::findings(&plan, &summaries),
        plan,
        summaries,
        runs,
    };
    let exports = [&args.export_markdown, &args.export_csv, &args.export_json];
    let export_to_stdout = exports
        .iter()
        .any(|p| p.as_deref().is_some_and(report::export::is_stdout));
    if !args.quiet {
        let stream = match export_to_stdout {
            true => options::Stream::Stderr,
            false => options::Stream::Stdout,
        };
        let style = options::style(charset, color, stream);
        let table = report::compare::render(&report, &args.figures, &style);
        match stream {
            options::Stream::Stdout => say(&table)?,
            // The export is what matters on standard output; a closed stderr loses
            // only the human copy.
            options::Stream::Stderr => {
                let _ = std::io::stderr().write_all(table.as_bytes());
            }
        }
    }
    let exported = report::export::write_all(
        &report,
        args.export_markdown.as_deref(),
        args.export_csv.as_deref(),
        args.export_json.as_deref(),
    )?;
    if let Some(text) = exported {
        say(&text)?;
    }
    let errors: u64 = report
        .runs
        .iter()
        .flat_map(|s| &s.runs)
        .map(|r| r.load.errors())
        .sum();
    if errors > 0 {
        bail!(
            "{} in the echo (bytes or connections that went wrong): see the warnings above",
            report::plural(errors, "error")
        );
    }
    let failures: Vec<&String> = report.summaries.iter().flat_map(|s| &s.failures).collect();
    if let Some(first) = failures.first() {
        bail!("{} of the runs failed; the first: {first}", failures.len());
    }
    Ok(())
}

fn experiment(command: ExperimentCommand, style: &Style) -> Result<()> {
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
                    "{} failed (the results in {} say which); the first: {first}",
                    report::plural(failures.len(), "measurement"),
                    out.display()
                );
            }
            say(&report::experiment::summary(&exp, &results, &out, style))
        }
        ExperimentCommand::Replot { results } => {
            let files = report::experiment::replot(&results)?;
            say(&format!(
                "{} plots drawn again in {}\n",
                files.len(),
                results.display()
            ))
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
                    "{} in {} cannot be read",
                    report::plural(unreadable, "experiment file"),
                    dir.display()
                );
            }
            Ok(())
        }
    }
}

fn demo(args: &DemoArgs, style: Style) -> Result<()> {
    let Some(name) = &args.name else {
        say("iobench demo NAME: the article's claims, live\n\n")?;
        for (name, what) in demo::DEMOS {
            say(&style.wrap(&format!("  {name:<11} {what}"), 14))?;
        }
        return Ok(());
    };
    let mut ctx = demo::DemoContext::new(Box::new(std::io::stdout()), style);
    if args.trace {
        ctx = ctx.traced();
    }
    demo::run(name, &ctx, &options::demo(name, args)?)
}

/// Soaks every backend and model with `template`, prints the table and writes the
/// files `args` asks for; fails on any error.
fn soak(template: &load::LoadConfig, args: &SoakArgs, style: &Style) -> Result<()> {
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
    say(&report::soak::render(&report, style))?;
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
        bail!(
            "the soak found {}",
            report::plural(report.errors(), "error")
        );
    }
    Ok(())
}

/// Sends the file by every method and prints the table (`args`: also as JSON).
fn transfer(cfg: &transfer::TransferConfig, args: &TransferArgs, style: &Style) -> Result<()> {
    let results = transfer::run(cfg)?;
    say(&report::transfer::render(&results, cfg.chunk, style))?;
    if args.json {
        say(&format!("{}\n", serde_json::to_string(&results)?))?;
    }
    Ok(())
}

/// Generated from the clap definitions, so that the script never lags behind them.
fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cli = Cli::command();
    let name = cli.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli, name, &mut script);
    say(&String::from_utf8(script).context("the completion script is not UTF-8")?)
}

/// Without `dir`, the top page on standard output (its SUBCOMMANDS section names
/// iobench-NAME(1)); with it, that page and one per command, each with its options,
/// as git and cargo ship theirs.
fn manpage(dir: Option<&std::path::Path>) -> Result<()> {
    let Some(dir) = dir else {
        // As `generate_to` does: `help` is a flag here, not a page of its own.
        let cli = Cli::command().disable_help_subcommand(true);
        let mut page = Vec::new();
        clap_mangen::Man::new(cli)
            .render(&mut page)
            .context("rendering the man page")?;
        return say(&String::from_utf8(page).context("the man page is not UTF-8")?);
    };
    create_output_dir("--dir", dir)?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("--dir {}: cannot write the man pages there", dir.display()))?;
    let top = clap_mangen::Man::new(Cli::command()).get_filename();
    say(&format!(
        "man pages in {}: start with `man -l {}`\n",
        dir.display(),
        dir.join(top).display()
    ))
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
