//! Read commands: `snapshot`, `veths`, `show`, live or `--from FILE`.

use ctnet_core::vocab::SourceState;
use std::process::ExitCode;

use ctnet_core::model::Snapshot;
use ctnet_core::source::{self, ScanOptions};
use ctnet_core::topology::Topology;

use crate::cli::{ShowArgs, SnapshotArgs, SourceArgs, VethsArgs};
use crate::render;

/// Load the snapshot the arguments ask for: the file, or a live scan of this host.
pub fn load(args: &SourceArgs) -> anyhow::Result<Snapshot> {
    load_with(args, source::Depth::Full)
}

/// [`load`], reading netns other than the host to `depth` when scanning live.
pub fn load_with(args: &SourceArgs, depth: source::Depth) -> anyhow::Result<Snapshot> {
    if let Some(path) = &args.from {
        let snap = Snapshot::load(path)?;
        // A partial snapshot read offline must still say it is partial.
        warn_partial(&snap);
        return Ok(snap);
    }
    for dir in &args.netns_dirs {
        source::check_netns_dir(dir)?;
    }
    check_node(args)?;
    let mut opts = scan_options(args);
    opts.others = depth;
    // A links-only scan is followed by `deepen`, which reads `ethtool -S` of the
    // host veths that matter.
    opts.ethtool = depth == source::Depth::Full;
    // The checks evaluate IPv4 rules only.
    opts.firewall_ipv6 = depth == source::Depth::Full;
    let snap = source::snapshot(&opts)?;
    // A links-only scan is deepened next; its caller says what stayed unread after.
    if depth == source::Depth::Full {
        warn_partial(&snap);
    }
    Ok(snap)
}

/// The scan options `args` ask for (directories already checked by [`load`]).
pub fn scan_options(args: &SourceArgs) -> ScanOptions {
    let mut opts = ScanOptions::default();
    opts.netns_dirs.extend(args.netns_dirs.iter().cloned());
    opts.host_netns = args.host_netns.clone().or_else(|| {
        args.node
            .as_ref()
            .map(|n| std::path::Path::new(ctnet_core::netns::DEFAULT_NETNS_DIR).join(n))
    });
    opts.runtime = Some(ctnet_core::runtime::RuntimeOptions {
        docker_host: args.docker_host.clone(),
        no_daemon: args.no_daemon,
    });
    opts
}

/// `--node NODE` names a netns that exists under /run/netns.
pub fn check_node(args: &SourceArgs) -> anyhow::Result<()> {
    let Some(node) = &args.node else {
        return Ok(());
    };
    ctnet_core::netns::validate_netns_name(node)?;
    let path = std::path::Path::new(ctnet_core::netns::DEFAULT_NETNS_DIR).join(node);
    if !path.exists() {
        anyhow::bail!(
            "no netns called {} in {}: --node takes a named netns, such as a node of a multi-node lab              (ctnet-diag lab list; ip netns list)",
            ctnet_core::text::escape(node),
            ctnet_core::netns::DEFAULT_NETNS_DIR
        );
    }
    Ok(())
}

/// When `target` is a pod `NAME-nI-cJ` of a multi-node lab and no host was asked for,
/// take its node as the host netns (said on stderr): from the machine's own netns the
/// pod's veth and bridge are not to be seen.
pub fn pick_node(args: &mut SourceArgs, target: &str) {
    if args.from.is_some() || args.host_netns.is_some() || args.node.is_some() {
        return;
    }
    let env = ctnet_core::lab::LabEnv::default();
    if let Some(path) = ctnet_core::lab::nodes::node_of(&env, target) {
        let node = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        crate::say!(
            "ctnet-diag: note: {} is a pod of node {node}: its netns is taken as the host (--node {node})",
            ctnet_core::text::escape(target)
        );
        args.node = Some(node);
    }
}

/// One line on stderr when some sources could not be read, so a partial view is never
/// mistaken for a complete one.
pub fn warn_partial(snap: &Snapshot) {
    let failed: Vec<_> = snap
        .sources
        .iter()
        .filter(|s| s.status == SourceState::Failed)
        .collect();
    if failed.is_empty() {
        return;
    }
    for s in failed
        .iter()
        .filter(|s| matches!(s.source.as_str(), "docker" | "podman"))
    {
        crate::say!(
            "ctnet-diag: note: {}",
            s.detail.as_deref().unwrap_or("container daemon unreachable")
        );
    }
    let denied = failed
        .iter()
        .filter(|s| s.source == "netns" && s.denied())
        .count();
    let mut msg = format!(
        "ctnet-diag: note: {} source(s) could not be read (see \"sources\" in `ctnet-diag snapshot`)",
        failed.len()
    );
    if denied > 0 {
        msg.push_str(&format!(
            "; {denied} netns could not be entered without CAP_SYS_ADMIN: run as root for the full \
             picture, or give the binary file capabilities: {}",
            ctnet_core::privilege::setcap_line(&ctnet_core::privilege::own_path())
        ));
    }
    crate::say!("{msg}");
}

/// `ctnet-diag snapshot [-o FILE]`.
pub fn snapshot(args: SnapshotArgs) -> anyhow::Result<ExitCode> {
    let snap = if args.netns_rules {
        for dir in &args.source.netns_dirs {
            source::check_netns_dir(dir)?;
        }
        let mut opts = scan_options(&args.source);
        opts.netns_firewall = true;
        let snap = source::snapshot(&opts)?;
        warn_partial(&snap);
        snap
    } else {
        load(&args.source)?
    };
    match &args.output {
        None => crate::out::json(&snap)?,
        Some(path) => {
            ctnet_core::output::OutputFile::write_all_at(path, (snap.to_json() + "\n").as_bytes())?;
            let shown = ctnet_core::text::path(path);
            crate::say!(
                "snapshot of {} netns written to {shown} (read it back with --from {shown})",
                snap.netns.len(),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ctnet-diag veths [--json]`.
pub fn veths(args: VethsArgs) -> anyhow::Result<ExitCode> {
    let snap = load(&args.source)?;
    if args.json {
        let topo = Topology::build(&snap);
        let doc = serde_json::json!({ "schema": "ctnet.veths/v1", "veths": topo.veths });
        crate::out::json(&doc)?;
    } else {
        let shown = ctnet_core::text::escaped(&snap);
        let topo = Topology::build(shown.as_ref().unwrap_or(&snap));
        crate::out::text(&render::veths_table(&topo))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ctnet-diag show [TARGET] [--json]`.
pub fn show(mut args: ShowArgs) -> anyhow::Result<ExitCode> {
    if let Some(t) = &args.target {
        pick_node(&mut args.source, t);
    }
    let snap = load(&args.source)?;
    let topo = Topology::build(&snap);
    if let Some(t) = &args.target {
        let resolved = match resolve_target(&snap, t) {
            Ok(r) => r,
            Err(code) => return Ok(code),
        };
        if args.json {
            let view = resolved
                .netns
                .and_then(|k| topo.netns.iter().find(|n| n.key == k));
            let doc = serde_json::json!({ "schema": "ctnet.target/v1", "target": resolved, "netns": view });
            crate::out::json(&doc)?;
        } else {
            // Text shows every name escaped: resolved on the raw snapshot, drawn from
            // an escaped copy (the join runs on identities, not names).
            let shown = ctnet_core::text::escaped(&snap);
            let shown_snap = shown.as_ref().unwrap_or(&snap);
            let shown_topo = Topology::build(shown_snap);
            let shown_target = ctnet_core::text::escaped(&resolved);
            crate::out::text(&render::target_view(
                shown_snap,
                &shown_topo,
                shown_target.as_ref().unwrap_or(&resolved),
            ))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        let doc = serde_json::json!({ "schema": "ctnet.topology/v1", "topology": topo });
        crate::out::json(&doc)?;
    } else {
        let shown = ctnet_core::text::escaped(&snap);
        let shown_snap = shown.as_ref().unwrap_or(&snap);
        crate::out::text(&render::show_tree(shown_snap, &Topology::build(shown_snap)))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolve a target and an optional peer, or print why not (exit codes as for
/// [`resolve_target`]).
pub fn resolve_pair(
    snap: &Snapshot,
    target: &str,
    peer: Option<&str>,
) -> Result<(ctnet_core::target::Resolved, Option<ctnet_core::target::Resolved>), ExitCode> {
    let t = resolve_target(snap, target)?;
    let p = peer.map(|p| resolve_target(snap, p)).transpose()?;
    Ok((t, p))
}

/// Resolve a target or print why not: exit 2 for an unknown or ambiguous target (and
/// for a name when no daemon was asked: it says so), 3 when a container daemon that
/// could have known it did not answer.
pub fn resolve_target(snap: &Snapshot, target: &str) -> Result<ctnet_core::target::Resolved, ExitCode> {
    match ctnet_core::target::resolve(snap, target) {
        Ok(r) => Ok(r),
        Err(e) => {
            crate::say!("ctnet-diag: {e}");
            let daemon_down: Vec<_> = snap
                .sources
                .iter()
                .filter(|s| {
                    matches!(s.source.as_str(), "docker" | "podman") && s.status == SourceState::Failed
                })
                .collect();
            if matches!(e, ctnet_core::target::TargetError::Unknown { .. }) && !daemon_down.is_empty() {
                for s in daemon_down {
                    crate::say!(
                        "ctnet-diag: {}",
                        s.detail.as_deref().unwrap_or("container daemon unreachable")
                    );
                }
                crate::say!(
                    "hint: containers were looked up through cgroups only; fix access to the daemon, or name the netns or pid:<PID>"
                );
                return Err(ExitCode::from(crate::exit::ENV));
            }
            if let ctnet_core::target::TargetError::NoRuntime { why, .. } = e {
                crate::say!(
                    "hint: {}; `ctnet-diag show` lists the netns (names, paths, pids) and host interfaces",
                    match why {
                        ctnet_core::runtime::NotAsked::NoDaemon =>
                            "drop --no-daemon to look container names up",
                        ctnet_core::runtime::NotAsked::NoSocket =>
                            "point --docker-host (or DOCKER_HOST) at the engine's socket to look container names up",
                    }
                );
            }
            Err(ExitCode::from(crate::exit::USAGE))
        }
    }
}
