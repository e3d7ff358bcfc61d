//! `ctnet-diag trace SRC DST [--tcp PORT | --udp PORT | --icmp] [--probe] [--json]`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use ctnet_core::check::Report;
use ctnet_core::flow::{self, Destination, FlowSpec, Hop, HopVerdict, L4, Reach, Source, Trace};
use ctnet_core::model::Snapshot;
use ctnet_core::target::TargetKind;

use crate::cli::TraceArgs;
use crate::cmd::read::{load, resolve_target, scan_options};

fn word(v: HopVerdict) -> &'static str {
    match v {
        HopVerdict::Allow => "ALLOW",
        HopVerdict::Drop => "DROP",
        HopVerdict::Reject => "REJECT",
        HopVerdict::Nat => "NAT",
        HopVerdict::Deliver => "DELIVER",
        HopVerdict::May => "MAY",
    }
}

fn verdict_word(r: Reach) -> &'static str {
    match r {
        Reach::Reachable => "REACHABLE",
        Reach::Unreachable => "UNREACHABLE",
        Reach::Ambiguous => "AMBIGUOUS",
    }
}

fn usage(msg: String) -> ExitCode {
    crate::say!("ctnet-diag: {msg}");
    ExitCode::from(crate::exit::USAGE)
}

/// `external[:IP][@IFACE]`.
fn parse_external(rest: &str) -> Result<Source, String> {
    let (addr_part, iface) = match rest.split_once('@') {
        Some((a, i)) => (a, Some(i)),
        None => (rest, None),
    };
    let addr = match addr_part.strip_prefix(':') {
        Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
            format!(
                "external:{} is not an IP address: write external:IP (external:203.0.113.7), external@IFACE or both",
                ctnet_core::text::escape(a)
            )
        })?),
        None if addr_part.is_empty() => None,
        None => {
            return Err(format!(
                "{} is not a source: write external, external:IP, external@IFACE or external:IP@IFACE",
                ctnet_core::text::escape(&format!("external{rest}"))
            ));
        }
    };
    if iface == Some("") {
        return Err("external@ needs an interface name (external@eth0)".into());
    }
    Ok(Source::External {
        addr,
        iface: iface.map(str::to_string),
    })
}

fn parse_src(snap: &Snapshot, s: &str) -> Result<Source, ExitCode> {
    if s == "host" {
        return Ok(Source::Host { addr: None });
    }
    if let Some(rest) = s.strip_prefix("external") {
        if rest.is_empty() || rest.starts_with(':') || rest.starts_with('@') {
            return parse_external(rest).map_err(usage);
        }
    }
    let r = resolve_target(snap, s)?;
    match (r.kind, r.netns) {
        (TargetKind::HostInterface, _) => {
            let name = snap
                .host_netns()
                .and_then(|h| r.ifindex.and_then(|i| h.link(i)))
                .map(|l| l.name.clone())
                .unwrap_or_else(|| s.to_string());
            Ok(Source::External {
                addr: None,
                iface: Some(name),
            })
        }
        (_, Some(netns)) if netns == snap.host => Ok(Source::Host { addr: None }),
        (_, Some(netns)) => Ok(Source::Netns { netns, addr: None }),
        (_, None) => Err(usage(format!(
            "{}: {}; it has no network to trace from",
            ctnet_core::text::escape(s),
            ctnet_core::text::escape(&r.note.unwrap_or_else(|| "not running".into()))
        ))),
    }
}

fn parse_dst(snap: &Snapshot, s: &str) -> Result<Destination, ExitCode> {
    if s == "host" {
        return Ok(Destination::Host);
    }
    if let Ok(addr) = s.parse::<IpAddr>() {
        return Ok(Destination::Addr { addr });
    }
    let r = resolve_target(snap, s)?;
    match (r.kind, r.netns) {
        (TargetKind::HostInterface, _) => {
            let host = snap.host_netns();
            let addr = host.and_then(|h| {
                h.addresses
                    .iter()
                    .find(|a| Some(a.ifindex) == r.ifindex && a.scope == "global")
                    .map(|a| a.address)
            });
            match addr {
                Some(addr) => Ok(Destination::Addr { addr }),
                None => Err(usage(format!(
                    "host interface {} has no address to trace to: give an IP address instead",
                    ctnet_core::text::escape(s)
                ))),
            }
        }
        (_, Some(netns)) if netns == snap.host => Ok(Destination::Host),
        (_, Some(netns)) => Ok(Destination::Netns { netns }),
        (_, None) => Err(usage(format!(
            "{}: {}; nothing can reach it",
            ctnet_core::text::escape(s),
            ctnet_core::text::escape(&r.note.unwrap_or_else(|| "not running".into()))
        ))),
    }
}

fn render_hops(out: &mut String, hops: &[Hop]) {
    let mut last_packet: Option<&str> = None;
    for (i, h) in hops.iter().enumerate() {
        let iface = h.iface.as_ref().map(|i| format!(" {i}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:>2}. {:<7} [{}{}] {}: {}",
            i + 1,
            word(h.verdict),
            h.netns,
            iface,
            h.step,
            h.detail
        );
        if let Some(rule) = &h.rule {
            let counters = h.rule_ref.as_ref().map(|r| r.so_far()).unwrap_or_default();
            let place = h
                .rule_ref
                .as_ref()
                .map(|r| format!("{}: ", r.place()))
                .unwrap_or_default();
            let _ = writeln!(out, "          rule:   {place}{rule}{counters}");
        }
        // The packet when it first shows and whenever a step changed it.
        if last_packet != Some(h.packet.as_str()) {
            let _ = writeln!(out, "          packet: {}", h.packet);
            last_packet = Some(&h.packet);
        }
    }
}

/// Text for people, like a packet tracer: the verdict first, then one numbered phase
/// per step.
///
/// ```text
/// verdict: UNREACHABLE  tcp 10.50.0.2:40000 > 10.50.0.3:80 (c1 to c2)
///   the first packet dies in host at forward/filter/FORWARD (...): dropped by a rule
/// first packet:
///    1. ALLOW   [c1 eth0] route: route 10.50.0.0/24 dev eth0 (table 254)
/// ```
pub fn render(t: &Trace, color: bool) -> String {
    let escaped = ctnet_core::text::escaped(t);
    let t = escaped.as_ref().unwrap_or(t);
    let paint = |text: &str| {
        if !color {
            return text.to_string();
        }
        let code = match t.verdict {
            Reach::Reachable => "32",
            Reach::Unreachable => "31",
            Reach::Ambiguous => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    };
    let f = &t.flow;
    let ports = match (f.sport, f.dport) {
        (Some(s), Some(d)) => format!("{} {}:{s} > {}:{d}", f.proto, f.src_addr, f.dst_addr),
        _ => format!("{} {} > {}", f.proto, f.src_addr, f.dst_addr),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "verdict: {}  {ports} ({} to {})",
        paint(verdict_word(t.verdict)),
        f.src,
        f.dst
    );
    let _ = writeln!(out, "  {}", t.summary);
    let _ = writeln!(out, "first packet:");
    render_hops(&mut out, &t.hops);
    if !t.reply.is_empty() {
        let _ = writeln!(out, "reply:");
        render_hops(&mut out, &t.reply);
    }
    // The handshake's ACK retraces the first packet; shown when it ends otherwise.
    let ends = |h: &[Hop]| h.last().map(|h| h.verdict);
    if !t.established.is_empty() && ends(&t.established) != ends(&t.hops) {
        let _ = writeln!(out, "handshake ACK (established):");
        render_hops(&mut out, &t.established);
    }
    if !t.assumptions.is_empty() {
        let _ = writeln!(out, "assumed:");
        for a in &t.assumptions {
            let _ = writeln!(out, "  - {a}");
        }
    }
    out
}

/// `ctnet-diag trace`.
pub fn run(mut args: TraceArgs) -> anyhow::Result<ExitCode> {
    crate::cmd::read::pick_node(&mut args.source, &args.src);
    if args.source.from.is_none() {
        crate::exit::require_read_caps("trace")?;
    }
    let snap = match &args.source.from {
        Some(_) => load(&args.source)?,
        None => {
            // Everything a trace walks, in every netns; `ethtool -S` of each veth is not
            // among it.
            for dir in &args.source.netns_dirs {
                ctnet_core::source::check_netns_dir(dir)?;
            }
            // Every netns for links and addresses (the veth map, containers by MAC); the
            // host in full; the netns the walk enters are read in full next.
            let mut opts = scan_options(&args.source);
            opts.others = ctnet_core::source::Depth::Links;
            opts.ethtool = false;
            opts.firewall_ipv6 = true;
            ctnet_core::source::snapshot(&opts)?
        }
    };
    let src = match parse_src(&snap, &args.src) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let dst = match parse_dst(&snap, &args.dst) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let l4 = match (args.tcp, args.udp) {
        (Some(p), _) => L4::Tcp(p),
        (_, Some(p)) => L4::Udp(p),
        _ => L4::Icmp,
    };
    if args.sport.is_some() && l4 == L4::Icmp {
        return Ok(usage("--sport needs --tcp PORT or --udp PORT".into()));
    }
    let spec = FlowSpec {
        src,
        dst,
        l4,
        sport: args.sport,
        size: args.size,
    };
    let mut snap = snap;
    if args.source.from.is_none() {
        let mut opts = scan_options(&args.source);
        opts.ethtool = false;
        opts.netns_firewall = true;
        // The two ends first: a walk starts and ends there.
        let mut keys = Vec::new();
        if let Source::Netns { netns, .. } = &spec.src {
            keys.push(*netns);
        }
        if let Destination::Netns { netns } = &spec.dst {
            keys.push(*netns);
        }
        ctnet_core::source::deepen(&mut snap, &keys, &opts)?;
    }
    // Live, each routing decision is the kernel's own (policy routing included).
    let router = args.source.from.is_none().then(|| flow::KernelRouter::new(&snap));
    let router_ref = router.as_ref().map(|r| r as &dyn flow::Router);
    let mut t = match flow::trace_with(&snap, &spec, router_ref) {
        Ok(t) => t,
        Err(e) => return Ok(usage(e.to_string())),
    };
    // Live: read the netns the walk needed and walk again, until it needs none more.
    let mut rounds = 0;
    while args.source.from.is_none() && !t.needs.is_empty() && rounds < 8 {
        rounds += 1;
        let mut opts = scan_options(&args.source);
        opts.ethtool = false;
        opts.netns_firewall = true;
        ctnet_core::source::deepen(&mut snap, &t.needs, &opts)?;
        t = match flow::trace_with(&snap, &spec, router_ref) {
            Ok(t) => t,
            Err(e) => return Ok(usage(e.to_string())),
        };
    }
    if args.source.from.is_none() {
        crate::cmd::read::warn_partial(&snap);
    }
    let probe = match args.probe {
        true => match probe(&args, &snap, &spec, &t)? {
            Ok(p) => Some(p),
            Err(code) => return Ok(code),
        },
        false => None,
    };
    let color = crate::out::color();
    match (&probe, args.json) {
        (None, true) => crate::out::json(&t)?,
        (Some((found, checks)), true) => {
            let mut v = serde_json::to_value(&t).context("serializing the trace")?;
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "probe".into(),
                    serde_json::to_value(found).context("serializing the probe")?,
                );
                o.insert(
                    "probe_checks".into(),
                    serde_json::to_value(&checks.checks).context("serializing the probe")?,
                );
            }
            crate::out::json(&v)?;
        }
        (None, false) => crate::out::rendered(&render(&t, color))?,
        (Some((_, checks)), false) => {
            let mut text = render(&t, color);
            text.push_str("\nlive probe:\n");
            text.push_str(&crate::cmd::check::render(checks, color));
            crate::out::rendered(&text)?;
        }
    }
    std::mem::forget(snap);
    // With --probe, reachable means the flow's own packets were answered too.
    let live_ok = match &probe {
        Some((Some(p), _)) => p.answered > 0,
        _ => true,
    };
    Ok(match t.verdict {
        Reach::Reachable if live_ok => ExitCode::SUCCESS,
        _ => ExitCode::from(crate::exit::CHECK_FAILED),
    })
}

/// `trace --probe`: the flow's own packets from the source container to the
/// destination, and the findings on them (the path, and whether it agrees with `t`).
fn probe(
    args: &TraceArgs,
    snap: &Snapshot,
    spec: &FlowSpec,
    t: &flow::Trace,
) -> anyhow::Result<Result<(Option<ctnet_core::probe::ProbeResult>, Report), ExitCode>> {
    use ctnet_core::probe::{Flow, To};
    if args.source.from.is_some() {
        return Ok(Err(usage(
            "--probe sends real packets on this host: it cannot be used with --from".into(),
        )));
    }
    if !matches!(spec.src, Source::Netns { .. }) {
        return Ok(Err(usage(format!(
            "--probe sends from a container or netns; {} is not one (trace without --probe walks it statically)",
            ctnet_core::text::escape(&args.src)
        ))));
    }
    let target = match resolve_target(snap, &args.src) {
        Ok(r) => r,
        Err(code) => return Ok(Err(code)),
    };
    let peer = match &spec.dst {
        Destination::Netns { .. } => match resolve_target(snap, &args.dst) {
            Ok(r) => Some(r),
            Err(code) => return Ok(Err(code)),
        },
        _ => None,
    };
    let to = match (&spec.dst, &peer) {
        (_, Some(p)) => To::Peer(p),
        (Destination::Addr { addr: IpAddr::V4(a) }, _) => To::Addr(*a),
        (Destination::Host, _) => To::Gateway,
        _ => {
            return Ok(Err(usage(
                "--probe sends IPv4 packets: give an IPv4 destination".into(),
            )));
        }
    };
    let flow = match spec.l4 {
        L4::Icmp => Flow::Icmp,
        L4::Tcp(p) => Flow::Tcp(p),
        L4::Udp(p) => Flow::Udp(p),
    };
    crate::exit::require_lab_caps("trace --probe")?;
    crate::cmd::check::guard_probe(snap)?;
    let topo = ctnet_core::topology::Topology::build(snap);
    let rescan = || ctnet_core::source::snapshot(&scan_options(&args.source));
    let mut report = Report {
        schema: ctnet_core::check::CHECK_SCHEMA.into(),
        target: args.src.clone(),
        peer: Some(args.dst.clone()),
        verdict: ctnet_core::check::Status::Pass,
        checks: Vec::new(),
    };
    let found =
        match ctnet_core::probe::run_to(snap, &topo, &target, to, flow, !args.no_kernel_trace, &rescan) {
            Ok(f) => f,
            // The static walk stands; the probe says why it did not run.
            Err(e) => {
                report.add(ctnet_core::probe::skipped(&e.to_string()));
                return Ok(Ok((None, report)));
            }
        };
    report.add(ctnet_core::probe::finding(&found));
    let command = format!(
        "ctnet-diag trace {} {} {}",
        args.src,
        args.dst,
        match flow {
            Flow::Icmp => "--icmp".to_string(),
            Flow::Tcp(p) => format!("--tcp {p}"),
            Flow::Udp(p) => format!("--udp {p}"),
        }
    );
    report.add(ctnet_core::probe::compare(&found, t, command));
    std::mem::forget(topo);
    Ok(Ok((Some(found), report)))
}
