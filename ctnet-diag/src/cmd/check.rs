//! `ctnet-diag check TARGET [--peer TARGET] [--json] [--strict]` and `ctnet-diag checks`.

use std::fmt::Write as _;
use std::process::ExitCode;

use ctnet_core::check::{self, CATALOG, Report, Status};
use ctnet_core::topology::Topology;

use crate::cli::{CheckArgs, JsonArg};
use crate::cmd::read::{load_with, resolve_pair, scan_options};
use anyhow::Context as _;

fn word(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
        Status::Skip => "SKIP",
    }
}

/// Text for people: the verdict first, then each finding, worst first, with its
/// evidence, the commands that show the same by hand, and what to do.
///
/// ```text
/// verdict: FAIL (2 failed, 1 warning, 14 passed) for web1
/// FAIL link.host_veth_up  host veth vethab12 is down: nothing crosses it
///      evidence: vethab12 in host: operstate down
///      check:    ip link show vethab12
///      fix:      ip link set vethab12 up
/// ```
pub fn render(r: &Report, color: bool) -> String {
    // Names inside findings come from the kernel, a runtime or a file: escaped here,
    // once, so the colours below are the only escape sequences in the text.
    let escaped = ctnet_core::text::escaped(r);
    let r = escaped.as_ref().unwrap_or(r);
    let paint = |s: Status, text: &str| {
        if !color {
            return text.to_string();
        }
        let code = match s {
            Status::Fail => "31",
            Status::Warn => "33",
            Status::Pass => "32",
            Status::Skip => "90",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    };
    let count = |s: Status| r.checks.iter().filter(|c| c.status == s).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "verdict: {} ({} failed, {} warning(s), {} passed, {} skipped) for {}{}",
        paint(r.verdict, word(r.verdict)),
        count(Status::Fail),
        count(Status::Warn),
        count(Status::Pass),
        count(Status::Skip),
        r.target,
        r.peer.as_ref().map(|p| format!(" and {p}")).unwrap_or_default()
    );
    for c in &r.checks {
        let _ = writeln!(
            out,
            "{} {:<26} {}",
            paint(c.status, word(c.status)),
            c.id,
            c.summary
        );
        if matches!(c.status, Status::Fail | Status::Warn) {
            for e in &c.evidence {
                let _ = writeln!(out, "     evidence: {e}");
            }
            for cmd in &c.commands {
                let _ = writeln!(out, "     check:    {cmd}");
            }
            if let Some(h) = &c.hint {
                let _ = writeln!(out, "     fix:      {h}");
            }
        }
    }
    out
}

/// A snapshot for `check`, with its target and peer resolved in it.
type Read = (
    ctnet_core::model::Snapshot,
    ctnet_core::target::Resolved,
    Option<ctnet_core::target::Resolved>,
);

/// Read what `check` needs: every netns for links and addresses (the veth map,
/// containers, duplicate addresses on the bridge), then the target's and the peer's in
/// full with their own rules, and the netns of their nameservers. The exit code when a
/// target did not resolve (the error is printed).
fn read(args: &CheckArgs) -> anyhow::Result<Result<Read, ExitCode>> {
    // Every netns is read for links and addresses (the veth map, containers, duplicate
    // addresses on the bridge); then the target's and the peer's in full.
    let mut snap = load_with(&args.source, ctnet_core::source::Depth::Links)?;
    let (target, peer) = match resolve_pair(&snap, &args.target, args.peer.as_deref()) {
        Ok(pair) => pair,
        Err(code) => return Ok(Err(code)),
    };
    if args.source.from.is_none() {
        let keys: Vec<_> = [target.netns, peer.as_ref().and_then(|p| p.netns)]
            .into_iter()
            .flatten()
            .collect();
        // Their own rules too: Docker's embedded DNS is a DNAT in the container's nat
        // table, and a container's INPUT rules decide what reaches it.
        let mut opts = scan_options(&args.source);
        opts.netns_firewall = true;
        ctnet_core::source::deepen(&mut snap, &keys, &opts)?;
        // The netns the target talks to (its neighbour table), when it serves a port:
        // port.listening traces from each, through their routes and rules.
        let talkers: Vec<_> = target
            .netns
            .filter(|k| {
                snap.netns_by_key(*k)
                    .is_some_and(|n| n.listening.as_ref().is_some_and(|l| !l.is_empty()))
            })
            .map(|k| ctnet_core::check::talkers(&snap, k))
            .unwrap_or_default()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| !keys.contains(k))
            .collect();
        if !talkers.is_empty() {
            ctnet_core::source::deepen(&mut snap, &talkers, &opts)?;
        }
        // The netns that hold their nameservers (a resolver container, a LAN server in a
        // netns) are read in full too, so the DNS check sees what listens there.
        let servers: Vec<_> = keys
            .iter()
            .filter_map(|k| snap.netns_by_key(*k)?.resolver.as_ref())
            .flat_map(|r| r.nameservers.iter().take(3).copied())
            .filter(|ip| !ip.is_loopback())
            .collect();
        let holders: Vec<_> = snap
            .netns
            .iter()
            .filter(|n| n.key != snap.host && !keys.contains(&n.key))
            .filter(|n| n.addresses.iter().any(|a| servers.contains(&a.address)))
            .map(|n| n.key)
            .collect();
        if !holders.is_empty() {
            ctnet_core::source::deepen(&mut snap, &holders, &scan_options(&args.source))?;
        }
        // The netns between the pair (an overlay's underlay switch, the peer's node):
        // read those the walk of a ping from target to peer needs, as `trace` does.
        if let (Some(a), Some(b)) = (target.netns, peer.as_ref().and_then(|p| p.netns)) {
            use ctnet_core::flow::{self, Destination, FlowSpec, L4, Source};
            let spec = FlowSpec::new(
                Source::Netns { netns: a, addr: None },
                Destination::Netns { netns: b },
                L4::Icmp,
            );
            for _ in 0..8 {
                let needs = flow::trace(&snap, &spec).map(|t| t.needs).unwrap_or_default();
                if needs.is_empty() {
                    break;
                }
                ctnet_core::source::deepen(&mut snap, &needs, &opts)?;
            }
        }
        crate::cmd::read::warn_partial(&snap);
    }
    Ok(Ok((snap, target, peer)))
}

/// Ctrl-C, SIGTERM or SIGHUP during a probe: its trace table and its tracefs instance
/// are removed before the process ends (a probe killed outright leaves them to the next
/// run). Call before the probe starts (`check --probe`, `trace --probe`).
pub(crate) fn guard_probe(snap: &ctnet_core::model::Snapshot) -> anyhow::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .context("blocking SIGINT, SIGTERM and SIGHUP")?;
    let host = snap
        .host_netns()
        .and_then(|h| ctnet_core::netns::Netns::open_any(&h.refs, snap.host).ok());
    let tools = ctnet_core::source::default_tool_path();
    std::thread::Builder::new()
        .name("ctnet-signals".into())
        .spawn(move || {
            if let Ok(sig) = signals.wait() {
                if let Some(h) = &host {
                    ctnet_core::probe::nftrace::remove_own(h, &tools);
                }
                ctnet_core::probe::drops::remove_own();
                std::process::exit(128 + sig as i32);
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// `ctnet-diag check`.
pub fn run(mut args: CheckArgs) -> anyhow::Result<ExitCode> {
    crate::cmd::read::pick_node(&mut args.source, &args.target);
    let (snap, target, peer) = match read(&args)? {
        Ok(read) => read,
        Err(code) => return Ok(code),
    };
    let mut snap = snap;
    let mut topo = Topology::build(&snap);
    let mut report = check::run(&snap, &topo, &target, peer.as_ref());
    if args.probe {
        crate::exit::require_lab_caps("check --probe")?;
        guard_probe(&snap)?;
        let rescan = || ctnet_core::source::snapshot(&crate::cmd::read::scan_options(&args.source));
        let flow = args.port.unwrap_or_default();
        let to = match &peer {
            Some(p) => ctnet_core::probe::To::Peer(p),
            None => ctnet_core::probe::To::Gateway,
        };
        let found =
            ctnet_core::probe::run_to(&snap, &topo, &target, to, flow, !args.no_kernel_trace, &rescan);
        // The static checks are judged on the state after the probe: its own pings
        // taught the bridge and the neighbours what a fresh network had not learned yet.
        if found.is_ok()
            && let Ok((after, t2, p2)) = read(&args)?
        {
            snap = after;
            topo = Topology::build(&snap);
            report = check::run(&snap, &topo, &t2, p2.as_ref());
        }
        match found {
            Ok(found) => {
                let path = ctnet_core::probe::finding_with(&found, &report.checks);
                report.add(path);
                report.add(ctnet_core::probe::agreement(&found, &snap, &target));
            }
            // The rest of the report stands; the probe says why it did not run.
            Err(e) => report.add(ctnet_core::probe::skipped(&e.to_string())),
        }
        // One real DNS query from inside, where the target has a nameserver to ask.
        if let Some(f) = ctnet_core::probe::dns_query(&snap, &target) {
            report.add(f);
        }
    }
    if args.json {
        crate::out::json(&report)?;
    } else {
        let color = crate::out::color();
        crate::out::rendered(&render(&report, color))?;
    }
    // The process ends here: freeing hundreds of netns worth of snapshot and topology
    // one allocation at a time would take longer than the checks did.
    std::mem::forget(topo);
    std::mem::forget(snap);
    Ok(match report.verdict {
        Status::Fail => ExitCode::from(crate::exit::CHECK_FAILED),
        Status::Warn if args.strict => ExitCode::from(crate::exit::CHECK_FAILED),
        _ => ExitCode::SUCCESS,
    })
}

/// `ctnet-diag checks`.
pub fn catalog(args: JsonArg) -> anyhow::Result<ExitCode> {
    if args.json {
        let list: Vec<_> = CATALOG
            .iter()
            .map(|(id, cat, what)| serde_json::json!({ "id": id, "category": cat, "checks": what }))
            .collect();
        crate::out::json(&serde_json::json!({ "schema": "ctnet.checks/v1", "checks": list }))?;
    } else {
        let mut text = String::new();
        for (id, cat, what) in CATALOG {
            let _ = writeln!(text, "{id:<26} {cat:<9} {what}");
        }
        crate::out::text(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctnet_core::model::Snapshot;

    #[test]
    fn text_report_puts_the_verdict_and_failures_first() {
        let snap = Snapshot::load(format!(
            "{}/../fixtures/lab-faults.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let topo = Topology::build(&snap);
        let t = ctnet_core::target::resolve(&snap, "c1").unwrap();
        let p = ctnet_core::target::resolve(&snap, "c4").unwrap();
        let r = check::run(&snap, &topo, &t, Some(&p));
        let text = render(&r, false);
        assert!(text.starts_with("verdict: FAIL"), "{text}");
        assert!(!text.contains('\x1b'), "no colour unless asked");
        assert!(render(&r, true).contains("\x1b[31mFAIL"));
        insta::assert_snapshot!("check-c1-c4-faults", text);
        insta::assert_snapshot!(
            "check-c1-c4-faults-json",
            serde_json::to_string_pretty(&r).unwrap()
        );
    }
}
