//! iobench: an I/O multiplexing workbench.

mod backend;
mod cli;
mod metrics;
mod report;
mod server;
mod sys;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => args.config().and_then(|cfg| server::serve(&cfg)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iobench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
