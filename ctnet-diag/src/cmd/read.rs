//! Read commands: `snapshot`, `veths`, `show`, live or `--from FILE`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

use anyhow::Context;
use ctnet_core::model::Snapshot;
use ctnet_core::source::{self, ScanOptions};
use ctnet_core::topology::Topology;

use crate::cli::{ShowArgs, SnapshotArgs, SourceArgs, VethsArgs};
use crate::render;

/// Load the snapshot the arguments ask for: the file, or a live scan of this host.
pub fn load(args: &SourceArgs) -> anyhow::Result<Snapshot> {
    if let Some(path) = &args.from {
        return Ok(Snapshot::load(path)?);
    }
    let mut opts = ScanOptions::default();
    for dir in &args.netns_dirs {
        source::check_netns_dir(dir)?;
        opts.netns_dirs.push(dir.clone());
    }
    opts.host_netns = args.host_netns.clone();
    let snap = source::snapshot(&opts)?;
    warn_partial(&snap);
    Ok(snap)
}

/// One line on stderr when some sources could not be read, so a partial view is never
/// mistaken for a complete one.
fn warn_partial(snap: &Snapshot) {
    let failed: Vec<_> = snap.sources.iter().filter(|s| s.status == "failed").collect();
    if failed.is_empty() {
        return;
    }
    let denied = failed
        .iter()
        .filter(|s| s.detail.as_deref().is_some_and(|d| d.contains("CAP_SYS_ADMIN")))
        .count();
    let mut msg = format!(
        "ctnet-diag: note: {} source(s) could not be read (see \"sources\" in `ctnet-diag snapshot`)",
        failed.len()
    );
    if denied > 0 {
        msg.push_str(&format!(
            "; {denied} netns could not be entered without CAP_SYS_ADMIN: run as root for the full picture"
        ));
    }
    eprintln!("{msg}");
}

/// `ctnet-diag snapshot [-o FILE]`.
pub fn snapshot(args: SnapshotArgs) -> anyhow::Result<ExitCode> {
    let snap = load(&args.source)?;
    let text = snap.to_json() + "\n";
    match &args.output {
        None => std::io::stdout().write_all(text.as_bytes())?,
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("writing snapshot to {}", path.display()))?;
            f.write_all(text.as_bytes())?;
            eprintln!(
                "snapshot of {} netns written to {} (read it back with --from {})",
                snap.netns.len(),
                path.display(),
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ctnet-diag veths [--json]`.
pub fn veths(args: VethsArgs) -> anyhow::Result<ExitCode> {
    let snap = load(&args.source)?;
    let topo = Topology::build(&snap);
    if args.json {
        let doc = serde_json::json!({ "schema": "ctnet.veths/v1", "veths": topo.veths });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render::veths_table(&topo));
    }
    Ok(ExitCode::SUCCESS)
}

/// `ctnet-diag show [--json]`.
pub fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let snap = load(&args.source)?;
    let topo = Topology::build(&snap);
    if args.json {
        let doc = serde_json::json!({ "schema": "ctnet.topology/v1", "topology": topo });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render::show_tree(&snap, &topo));
    }
    Ok(ExitCode::SUCCESS)
}
