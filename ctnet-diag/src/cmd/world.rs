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
    ctnet_core::world::enter_current_process().map_err(|e| crate::exit::Missing {
        message: format!(
            "{e}\nA rootless world needs unprivileged user namespaces \
             (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1)."
        ),
    })?;
    let err = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    Err(err).with_context(|| format!("starting {:?} inside the world", argv[0]))
}
