//! `sysctl`: the host forwards IPv4 for traffic leaving the bridge.

use super::ctx::Ctx;
use super::nat::subnet_masqueraded;
use super::{Finding, Status, finding};

/// `sysctl.ip_forward`: with a default route, the host forwards IPv4.
pub(super) fn ip_forward(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, _)) = c.bridge() else {
        return Vec::new();
    };
    if a.default.is_none() {
        return Vec::new();
    }
    let fwd = a.host.sysctls.ip_forward;
    // Forwarding off breaks egress that the host set up (a MASQUERADE for the
    // subnet); without one it may be on purpose (an internal network).
    let egress_intended = a.subnet().is_some_and(|s| subnet_masqueraded(c.snap, s));
    vec![
        finding(
            match fwd {
                Some(1) => Status::Pass,
                Some(_) if egress_intended => Status::Fail,
                Some(_) => Status::Warn,
                None => Status::Skip,
            },
            match fwd {
                Some(1) => "the host forwards IPv4".to_string(),
                Some(_) if egress_intended => {
                    "net.ipv4.ip_forward is 0 although the subnet is masqueraded: nothing leaves the bridge"
                        .to_string()
                }
                Some(_) => {
                    "net.ipv4.ip_forward is 0: the containers reach nothing beyond the bridge".to_string()
                }
                None => "net.ipv4.ip_forward could not be read".to_string(),
            },
        )
        .ev(format!(
            "host net.ipv4.ip_forward = {}",
            fwd.map_or("?".into(), |v| v.to_string())
        ))
        .cmd("sysctl net.ipv4.ip_forward")
        .hint("sysctl -w net.ipv4.ip_forward=1"),
    ]
}

/// Fill at which a kernel table is worth a warning.
const NEAR_FULL: f64 = 0.9;

/// `sysctl.conntrack_fill`: the connections tracked in the host's netns and in the
/// container's, each against `nf_conntrack_max` (at it, new connections are dropped:
/// "nf_conntrack: table full, dropping packet").
pub(super) fn conntrack_fill(c: &Ctx<'_>) -> Vec<Finding> {
    let Some(a) = c.iface() else {
        return Vec::new();
    };
    let Some(max) = a.host.sysctls.conntrack_max.or(a.ns.sysctls.conntrack_max) else {
        return vec![finding(
            Status::Skip,
            "nf_conntrack_max was not read (conntrack not loaded, or a snapshot older than this check)",
        )];
    };
    let mut worst = Status::Pass;
    let mut parts = Vec::new();
    let mut f = finding(Status::Pass, String::new());
    for (who, count) in [
        ("host", a.host.sysctls.conntrack_count),
        (a.view.label.as_str(), a.ns.sysctls.conntrack_count),
    ] {
        let Some(count) = count else { continue };
        let fill = count as f64 / max.max(1) as f64;
        let st = if count >= max {
            Status::Fail
        } else if fill >= NEAR_FULL {
            Status::Warn
        } else {
            Status::Pass
        };
        worst = worst.max(st);
        parts.push(format!("{who} {count} of {max} ({:.0} %)", fill * 100.0));
        f = f.ev(format!(
            "{who}: net.netfilter.nf_conntrack_count = {count}, nf_conntrack_max = {max}"
        ));
    }
    if parts.is_empty() {
        return vec![finding(Status::Skip, "nf_conntrack_count could not be read")];
    }
    f.status = worst;
    f.summary = match worst {
        Status::Fail => format!(
            "the conntrack table is full: {}; new connections are dropped",
            parts.join(", ")
        ),
        Status::Warn => format!("the conntrack table is nearly full: {}", parts.join(", ")),
        _ => format!("conntrack: {}", parts.join(", ")),
    };
    let f = f
        .cmd("sysctl net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max")
        .cmd("conntrack -C");
    let f = if worst > Status::Pass {
        f.hint("raise net.netfilter.nf_conntrack_max (and nf_conntrack_buckets), or find what opens so many connections: conntrack -L | sort | uniq -c")
    } else {
        f
    };
    vec![f]
}

/// `sysctl.rp_filter`: the host's reverse-path filter accepts what the container sends
/// into the bridge (strict mode drops a packet whose source the host would route out
/// another interface: an asymmetric path), as the flow engine walks a ping to the
/// gateway.
pub(super) fn rp_filter(c: &Ctx<'_>) -> Vec<Finding> {
    use crate::flow::{Destination, FlowSpec, HopVerdict, L4, Source};
    let Some((a, _, b)) = c.bridge() else {
        return Vec::new();
    };
    let conf = |n: &str| a.host.sysctls.conf.get(n).and_then(|s| s.rp_filter);
    let (all, dev) = (conf("all"), conf(b.br));
    let mode = all.unwrap_or(0).max(dev.unwrap_or(0));
    let ev = format!(
        "host net.ipv4.conf.all.rp_filter = {}, conf.{}.rp_filter = {} (the higher applies: 0 off, 1 strict, 2 loose)",
        all.map_or("?".into(), |v| v.to_string()),
        b.br,
        dev.map_or("?".into(), |v| v.to_string())
    );
    let spec = FlowSpec::new(
        Source::Netns {
            netns: a.key,
            addr: None,
        },
        Destination::Host,
        L4::Icmp,
    );
    // Off on both: the filter drops nothing, and no walk is needed to say so.
    let dropped = (mode != 0)
        .then(|| c.flow.trace(&spec).ok())
        .flatten()
        .and_then(|t| {
            t.hops
                .into_iter()
                .chain(t.reply)
                .find(|h| h.step == "rp_filter" && h.verdict == HopVerdict::Drop)
        });
    let cmds = [
        format!(
            "sysctl net.ipv4.conf.all.rp_filter net.ipv4.conf.{}.rp_filter",
            b.br
        ),
        format!(
            "ip route get {}  # the route back must leave through {}",
            a.nets.first().map_or(String::new(), |n| n.addr().to_string()),
            b.br
        ),
    ];
    let f = match dropped {
        Some(h) => finding(
            Status::Fail,
            format!(
                "the host's reverse-path filter drops what {} sends into {}",
                a.view.label, b.br
            ),
        )
        .ev(ev)
        .ev(super::path::hop_line(&h))
        .hint(format!(
            "route the container's subnet back through {} (remove the route that sends it elsewhere), or set \
             net.ipv4.conf.{}.rp_filter=2 (loose)",
            b.br, b.br
        )),
        None => finding(
            Status::Pass,
            match mode {
                1 => format!(
                    "rp_filter is strict on {} and the route back to the container goes out it",
                    b.br
                ),
                2 => format!("rp_filter is loose on {}", b.br),
                _ => format!("rp_filter is off on {}", b.br),
            },
        )
        .ev(ev),
    };
    vec![f.cmd(cmds[0].clone()).cmd(cmds[1].clone())]
}
