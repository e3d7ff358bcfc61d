//! `ctnet-diag`: parse, dispatch, map errors to the exit codes of DESIGN.md.

mod cli;
mod cmd;
mod exit;
#[cfg(test)]
mod mutation;
mod out;
mod render;

use std::process::ExitCode;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    // Worlds must be entered while this process is still single-threaded, so these
    // two run before any runtime starts.
    // A panic that reaches here (a worker's, resumed on this thread) is a bug: it exits
    // 4 like any internal error, never 0 and never 101.
    out::set_color(cli.color);
    let dashboard = matches!(
        cli.command,
        None | Some(Command::Tui(_)) | Some(Command::Demo(cli::DemoArgs { no_tui: false, .. }))
    );
    out::init_log(cli.verbose, dashboard);
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

/// The command line. The dashboard's own options (before any command) and a command
/// do not mix: `ctnet-diag --interval 5 check web1` is a usage error, not a silently
/// ignored option. `--color` is global and goes anywhere.
fn parse() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let mut cmd = Cli::command();
    let m = cmd.try_get_matches_from_mut(std::env::args_os())?;
    if let Some((name, _)) = m.subcommand() {
        let dashboard: Vec<String> = m
            .ids()
            .filter(|id| !matches!(id.as_str(), "color" | "verbose"))
            .filter(|id| m.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
            .map(|id| {
                cmd.get_arguments()
                    .find(|a| a.get_id() == id)
                    .and_then(|a| a.get_long())
                    .map_or_else(|| id.to_string(), |l| format!("--{l}"))
            })
            .collect();
        if !dashboard.is_empty() {
            return Err(cmd.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "options before the command are the dashboard's ({}): give them after `{name}` \
                     (see ctnet-diag {name} --help)",
                    dashboard.join(", ")
                ),
            ));
        }
    }
    Cli::from_arg_matches(&m).map_err(|e| e.format(&mut cmd))
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
        Command::Bundle(args) => cmd::bundle::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Checks(args) => cmd::check::catalog(args),
        Command::Trace(args) => cmd::trace::run(args),
        Command::Completions(args) => cmd::docs::completions(args),
        Command::Man(args) => cmd::docs::man(args),
    }
}

/// The tokio runtime for commands that talk netlink.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
