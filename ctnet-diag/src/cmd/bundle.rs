//! `ctnet-diag bundle -o FILE.tar.gz [--capture SECONDS] [--redact]`: everything a
//! support engineer needs from a host, in one file (see [`ctnet_core::bundle`]).
//!
//! Members: `manifest.json` (what is inside, what could not be read and why),
//! `snapshot.json` (what `--from` reads), `checks/NNN-NAME.json` and `.txt` per
//! container, `captures.pcapng` (with `--capture`), `kernel-log.txt`, `versions.txt`.

use ctnet_core::vocab::LinkKind;
use ctnet_core::vocab::SourceState;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ctnet_core::bundle::{self, Archive, redact::Redactor};
use ctnet_core::capture::{self, CaptureOptions, Control, Endpoint, Ring, Sink, pcapng};
use ctnet_core::check;
use ctnet_core::model::Snapshot;
use ctnet_core::netns::{Netns, NetnsRef};
use ctnet_core::topology::Topology;
use serde_json::{Value, json};

use crate::cli::BundleArgs;

/// Bytes kept of each captured frame.
const SNAPLEN: i32 = 512;
/// Frames kept at most, across every interface.
const MAX_FRAMES: usize = 20_000;

fn progress(what: &str) {
    crate::say!("ctnet-diag: bundle: {what}");
}

/// What went into the bundle and what did not.
#[derive(Default)]
struct Manifest {
    unread: Vec<Value>,
    checks: Vec<Value>,
    capture: Option<Value>,
}

impl Manifest {
    fn unread(&mut self, what: &str, why: impl std::fmt::Display) {
        self.unread.push(json!({ "what": what, "why": why.to_string() }));
    }
}

/// `ctnet-diag bundle`.
pub fn run(args: BundleArgs) -> anyhow::Result<ExitCode> {
    if args.source.from.is_some() {
        crate::say!(
            "ctnet-diag: bundle reads this host live; --from is how a bundle is read back \
             (ctnet-diag check web1 --from FILE.tar.gz)"
        );
        return Ok(ExitCode::from(crate::exit::USAGE));
    }
    crate::exit::require_read_caps("bundle")?;
    let started = Instant::now();
    // Made first: a path that cannot be written is said before a minute of work.
    let mut archive = Archive::create(&args.output)?;
    let mut m = Manifest::default();

    progress("reading the host and every netns (their own firewall rules too)");
    for dir in &args.source.netns_dirs {
        ctnet_core::source::check_netns_dir(dir)?;
    }
    let mut opts = crate::cmd::read::scan_options(&args.source);
    opts.netns_firewall = true;
    let snap = ctnet_core::source::snapshot(&opts)?;
    for s in snap.sources.iter().filter(|s| s.status != SourceState::Ok) {
        m.unread(
            &format!("{} {} ({})", s.source, s.netns.as_deref().unwrap_or(""), s.status),
            s.detail.as_deref().unwrap_or(""),
        );
    }
    let topo = Topology::build(&snap);
    let redactor = args.redact.then(|| Redactor::new(&snap));
    let red_text = |s: &str| match &redactor {
        Some(r) => r.text(s),
        None => s.to_string(),
    };
    let red_json = |mut v: Value| {
        if let Some(r) = &redactor {
            r.json(&mut v);
        }
        v
    };

    let targets = targets(&snap);
    progress(&format!("running the checks of {} container(s)", targets.len()));
    let mut check_files: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, name) in targets.iter().enumerate() {
        let t = match ctnet_core::target::resolve(&snap, name) {
            Ok(t) => t,
            Err(e) => {
                m.unread(&format!("check {name}"), e);
                continue;
            }
        };
        let report = check::run(&snap, &topo, &t, None);
        let shown = red_text(name);
        let base = format!("checks/{:03}-{}", i + 1, bundle::safe_member_name(&shown));
        let doc = red_json(serde_json::to_value(&report)?);
        let text = red_text(&crate::cmd::check::render(&report, false));
        m.checks.push(json!({
            "target": shown,
            "verdict": doc.get("verdict").cloned().unwrap_or(Value::Null),
            "json": format!("{base}.json"),
            "text": format!("{base}.txt"),
        }));
        check_files.push((format!("{base}.json"), pretty(&doc)?));
        check_files.push((format!("{base}.txt"), text.into_bytes()));
    }

    let pcap = match args.capture {
        Some(secs) => capture_veths(&snap, &topo, secs, redactor.as_ref(), &mut m),
        None => None,
    };

    progress("reading the kernel log and the tools' versions");
    let kernel = match bundle::kernel_log() {
        Ok(lines) => {
            let lines: Vec<String> = lines
                .iter()
                .map(|l| match (&redactor, l.find("ll header:")) {
                    // A martian's link-layer header is a hex dump of MACs.
                    (Some(_), Some(at)) => format!("{}ll header: (hex dump removed)", &l[..at]),
                    _ => red_text(l),
                })
                .collect();
            format!(
                "# kernel log lines that matter for container networking ({} found)\n{}",
                lines.len(),
                lines.iter().map(|l| format!("{l}\n")).collect::<String>()
            )
        }
        Err(e) => {
            m.unread("kernel log", &e);
            format!("# kernel log not read: {e}\n")
        }
    };
    let mut versions = vec![format!(
        "ctnet-diag: {} (git {})",
        env!("CARGO_PKG_VERSION"),
        env!("CTNET_GIT_REV")
    )];
    versions.extend(bundle::versions(&opts.tool_path));
    let versions: String = versions.iter().map(|l| format!("{}\n", red_text(l))).collect();

    let snapshot = red_json(serde_json::to_value(&snap)?);
    let snapshot = pretty(&snapshot)?;
    // What --from will read must read: a redaction that broke it is a bug, said here.
    Snapshot::from_slice(&snapshot).context("the redacted snapshot does not read back")?;

    let manifest = red_json(json!({
        "schema": bundle::BUNDLE_SCHEMA,
        "ctnet": format!("{} (git {})", env!("CARGO_PKG_VERSION"), env!("CTNET_GIT_REV")),
        "created_at_unix_ms": snap.taken_at_unix_ms,
        "hostname": snap.hostname,
        "redacted": args.redact,
        "read_with": "ctnet-diag veths|show|check|trace|tui --from THIS-FILE",
        "members": {
            "snapshot.json": "the host and every netns, their own firewall rules included (what --from reads)",
            "checks/": "the checks of every container, JSON (ctnet.check/v1) and text",
            "captures.pcapng": "every host veth, one interface block each (with --capture)",
            "kernel-log.txt": "neighbour table overflow, conntrack table full, martians, SYN floods",
            "versions.txt": "ctnet, the kernel, the OS and the tools ctnet runs",
        },
        "checks": m.checks,
        "capture": m.capture,
        "unread": m.unread,
        "limits": { "snaplen": SNAPLEN, "max_frames": MAX_FRAMES, "max_kernel_lines": bundle::MAX_KERNEL_LINES },
        "took_ms": started.elapsed().as_millis() as u64,
    }));
    progress(&format!("writing {}", ctnet_core::text::path(&args.output)));
    archive.add("manifest.json", &pretty(&manifest)?)?;
    archive.add(bundle::SNAPSHOT_MEMBER, &snapshot)?;
    for (name, bytes) in &check_files {
        archive.add(name, bytes)?;
    }
    if let Some(p) = &pcap {
        archive.add("captures.pcapng", p)?;
    }
    archive.add("kernel-log.txt", kernel.as_bytes())?;
    archive.add("versions.txt", versions.as_bytes())?;
    let members = archive.members.len();
    let size = archive.finish()?;
    progress(&format!(
        "wrote {} ({members} files, {:.1} KiB, {} not read, {:.1} s){}",
        ctnet_core::text::path(&args.output),
        size as f64 / 1024.0,
        m.unread.len(),
        started.elapsed().as_secs_f64(),
        if args.redact { ", redacted" } else { "" }
    ));
    Ok(ExitCode::SUCCESS)
}

fn pretty(v: &Value) -> anyhow::Result<Vec<u8>> {
    let mut b = serde_json::to_vec_pretty(v)?;
    b.push(b'\n');
    Ok(b)
}

/// Who gets checked: every running container with a netns of its own (one per netns),
/// then every other netns with a veth (a lab's, a runtime's that did not answer), by
/// its name or pid.
fn targets(snap: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for c in snap.containers.iter().filter(|c| c.is_running()) {
        if let Some(k) = c.netns
            && k != snap.host
            && !seen.contains(&k)
        {
            seen.push(k);
            out.push(c.name.clone());
        }
    }
    for ns in snap
        .netns
        .iter()
        .filter(|n| n.key != snap.host && !seen.contains(&n.key))
    {
        if !ns.links.iter().any(|l| l.kind == Some(LinkKind::Veth)) {
            continue;
        }
        let name = ns.refs.iter().find_map(|r| match r {
            NetnsRef::Named { name, .. } => Some(name.clone()),
            _ => None,
        });
        let name = name.or_else(|| {
            ns.refs.iter().find_map(|r| match r {
                NetnsRef::Pid { pid, .. } => Some(format!("pid:{pid}")),
                NetnsRef::Path { path } => Some(path.to_string_lossy().into_owned()),
                _ => None,
            })
        });
        if let Some(n) = name {
            out.push(n);
        }
    }
    out
}

/// Capture every host veth for `secs` seconds into one pcapng (an interface block per
/// veth, named as on the host, described by the container behind it).
fn capture_veths(
    snap: &Snapshot,
    topo: &Topology,
    secs: u64,
    redactor: Option<&Redactor>,
    m: &mut Manifest,
) -> Option<Vec<u8>> {
    let host = match snap.host_netns().map(|h| Netns::open_any(&h.refs, snap.host)) {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            m.unread("captures", e);
            return None;
        }
        None => {
            m.unread("captures", "the snapshot has no host netns");
            return None;
        }
    };
    let opts = CaptureOptions {
        snaplen: SNAPLEN,
        ..CaptureOptions::default()
    };
    let ring = Arc::new(Ring::new(MAX_FRAMES));
    let control = Control::new(None);
    let mut sessions = Vec::new();
    let mut names = Vec::new();
    for v in &topo.veths {
        let behind = match &v.peer {
            ctnet_core::topology::Peer::Resolved { netns_names, .. } => {
                format!(
                    "host netns; peer in {}",
                    netns_names.first().map_or("?", String::as_str)
                )
            }
            _ => "host netns".to_string(),
        };
        let ep = Endpoint {
            netns: host.clone(),
            iface: v.host.name.clone(),
            label: v.host.name.clone(),
            peer_mac: None,
        };
        match capture::start(
            sessions.len(),
            &ep,
            &opts,
            Sink::Ring(ring.clone()),
            control.clone(),
        ) {
            Ok(s) => {
                sessions.push(s);
                names.push((v.host.name.clone(), behind));
            }
            Err(e) => m.unread(&format!("capture {}", v.host.name), e),
        }
    }
    if sessions.is_empty() {
        if topo.veths.is_empty() {
            m.unread("captures", "no host veth to capture");
        }
        return None;
    }
    progress(&format!("capturing {} host veth(s) for {secs} s", sessions.len()));
    std::thread::sleep(Duration::from_secs(secs));
    control.stop();
    let stats: Vec<_> = sessions.into_iter().map(|s| s.join()).collect();
    let mut frames = ring.drain();
    frames.sort_by_key(|f| f.ts_us);
    let mut w = pcapng::Writer::new(&format!("ctnet-diag {} bundle", env!("CARGO_PKG_VERSION")));
    let red = |s: &str| redactor.map_or_else(|| s.to_string(), |r| r.text(s));
    for (name, behind) in &names {
        w.interface(&pcapng::Interface {
            name: red(name),
            description: red(behind),
            link_type: pcapng::LINKTYPE_ETHERNET,
            snaplen: SNAPLEN as u32,
        });
    }
    for f in &mut frames {
        if let Some(r) = redactor {
            r.frame(&mut f.data);
        }
        w.packet(f.session as u32, f.ts_us, f.len, &f.data);
    }
    m.capture = Some(json!({
        "seconds": secs,
        "interfaces": names.len(),
        "frames": frames.len(),
        "evicted": ring.evicted(),
        "dropped_by_kernel": stats.iter().map(|s| s.dropped_by_kernel).sum::<u64>(),
        "ended": stats.iter().filter_map(|s| s.ended.clone()).collect::<Vec<_>>(),
    }));
    Some(w.into_bytes())
}
