//! `ctnet-diag world -- CMD`: run a command inside a fresh rootless world.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::WorldArgs;

/// Enter a world in this (still single-threaded) process and exec the command there.
pub fn run(args: WorldArgs) -> anyhow::Result<ExitCode> {
    let mut argv = args.command;
    if argv.is_empty() {
        argv.push(std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()));
    }
    crate::exit::enter_world()?;
    let err = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    // exec only returns on failure.
    if matches!(
        err.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
    ) {
        crate::say!("ctnet-diag: cannot run {:?} inside the world: {err}", argv[0]);
        return Ok(ExitCode::from(crate::exit::USAGE));
    }
    Err(err).with_context(|| format!("starting {:?} inside the world", argv[0]))
}
