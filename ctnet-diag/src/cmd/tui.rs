//! `ctnet-diag` / `ctnet-diag tui`: the dashboard, live or from a snapshot file.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use ctnet_core::model::Snapshot;
use ctnet_tui::run::{self, Options, Source};

use crate::cli::TuiArgs;
use crate::cmd::read::scan_options;

/// Open the dashboard until the user quits.
pub fn run(args: TuiArgs) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(ctnet_core::error::Error::Invalid(
            "the dashboard needs a terminal: run it in one, or use `ctnet-diag show`, `veths`, \
             `check` or `snapshot` for text and JSON"
                .into()
        ));
    }
    let source = match &args.source.from {
        Some(path) => Source::File(path.clone(), Box::new(Snapshot::load(path)?)),
        None => {
            for dir in &args.source.netns_dirs {
                ctnet_core::source::check_netns_dir(dir)?;
            }
            Source::Live(scan_options(&args.source))
        }
    };
    run::run(Options {
        source,
        interval: Duration::from_secs_f64(args.interval),
        fault: None,
    })?;
    Ok(ExitCode::SUCCESS)
}
