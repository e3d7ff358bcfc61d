//! `ctnet-diag`: parse, dispatch, map errors to the exit codes of DESIGN.md.

mod cli;
mod cmd;
mod exit;
#[cfg(test)]
mod mutation;
mod out;
mod render;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    // Worlds must be entered while this process is still single-threaded, so these
    // two run before any runtime starts.
    // A panic that reaches here (a worker's, resumed on this thread) is a bug: it exits
    // 4 like any internal error, never 0 and never 101.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cli.command {
        None => cmd::tui::run(cli.dashboard),
        Some(command) => dispatch(command),
    }))
    .unwrap_or_else(|p| Err(ctnet_core::Error::panic("ctnet-diag", &*p).into()));
    match result {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}

/// A usage error on stderr (exit 2), or `--help`/`--version` on stdout through the one
/// writer, so a closed pipe or a full disk is handled like any other output.
fn usage(e: &clap::Error) -> ExitCode {
    if e.use_stderr() {
        let _ = e.print();
        return ExitCode::from(exit::USAGE);
    }
    match out::rendered(&e.render().to_string()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => exit::report(&err),
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Tui(args) => cmd::tui::run(args),
        Command::World(args) => cmd::world::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Lab(cli::LabCommand::Break(args)) => cmd::fault::apply(args),
        Command::Lab(cli::LabCommand::Fix(args)) => cmd::fault::fix(args),
        Command::Lab(lab) => runtime().and_then(|rt| rt.block_on(cmd::lab::run(lab))),
        Command::Veths(args) => cmd::read::veths(args),
        Command::Show(args) => cmd::read::show(args),
        Command::Snapshot(args) => cmd::read::snapshot(args),
        Command::Capture(args) => cmd::capture::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Checks(args) => cmd::check::catalog(args),
        Command::Trace(args) => cmd::trace::run(args),
    }
}

/// The tokio runtime for commands that talk netlink.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
