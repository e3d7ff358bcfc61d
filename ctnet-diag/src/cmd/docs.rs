//! `ctnet-diag completions SHELL` and `ctnet-diag man [--dir DIR]`: both generated from
//! the same clap definitions the binary parses its arguments with, so neither can drift
//! from the real flags.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// `ctnet-diag completions SHELL`: the script on stdout.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ctnet-diag", &mut script);
    let mut text = String::from_utf8(script).context("the completion script is not UTF-8")?;
    if args.shell == clap_complete::Shell::Bash {
        // clap_complete spells the state of a hyphenated program two ways: the loop
        // reaches `ctnet__diag__subcmd__check`, the case arms wait for
        // `ctnet__subcmd__diag__subcmd__check`, so no subcommand's options would ever
        // complete (clap-rs/clap#6421). Spell the arms as the loop does.
        text = text.replace("ctnet__subcmd__diag", "ctnet__diag");
    }
    // Exact: generated from this binary's own definitions (no outside name is in it),
    // and a script's tabs must stay tabs.
    crate::out::rendered(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `ctnet-diag man`: the main page on stdout, or every page into `--dir`.
pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = Cli::command();
    match args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .context("rendering the manual page")?;
            let text = String::from_utf8(page).context("the manual page is not UTF-8")?;
            crate::out::rendered(&text)?;
        }
        Some(dir) => {
            // A directory that cannot be made or written is the environment's (exit 3),
            // as any output that cannot be written.
            let failed = |e: std::io::Error| {
                anyhow::Error::new(crate::out::WriteFailed {
                    what: format!("the manual pages into {}", dir.display()),
                    source: e,
                })
            };
            std::fs::create_dir_all(&dir).map_err(failed)?;
            clap_mangen::generate_to(cmd, &dir).map_err(failed)?;
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .with_context(|| format!("listing {}", dir.display()))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ctnet-diag") && n.ends_with(".1"))
                .collect();
            names.sort();
            crate::out::text(&format!(
                "wrote {} page(s) into {}: {}\n",
                names.len(),
                dir.display(),
                names.join(" ")
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
