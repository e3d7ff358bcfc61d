//! `nat`: the host masquerades the container's subnet on egress.

use ipnet::Ipv4Net;

use super::ctx::Ctx;
use super::{Finding, Status, finding};
use crate::model::Snapshot;

/// Every IPv4 iptables rule of the snapshot, with its table's name.
pub(super) fn firewall_rules(snap: &Snapshot) -> Vec<(&str, &crate::model::IptRule)> {
    snap.firewall
        .iter()
        .flat_map(|f| f.iptables.iter().filter(|d| d.family == "ip"))
        .flat_map(|d| d.tables.iter())
        .flat_map(|t| t.rules.iter().map(move |r| (t.name.as_str(), r)))
        .collect()
}

/// Whether an iptables MASQUERADE rule's `-s` covers `subnet`.
pub(super) fn subnet_masqueraded(snap: &Snapshot, subnet: Ipv4Net) -> bool {
    firewall_rules(snap).iter().any(|(table, r)| {
        *table == "nat"
            && r.target.as_deref() == Some("MASQUERADE")
            && r.spec
                .split_whitespace()
                .skip_while(|w| *w != "-s")
                .nth(1)
                .and_then(|src| src.parse::<Ipv4Net>().ok())
                .is_some_and(|src| src.contains(&subnet.network()))
    })
}

/// `nat.masquerade`: with a default route and a firewall read, the host's POSTROUTING
/// (every nat base chain of both iptables backends and native nft, as the flow engine
/// evaluates it) source-NATs the container's egress.
pub(super) fn masquerade(c: &Ctx<'_>) -> Vec<Finding> {
    use crate::flow::{Hook, HopVerdict};
    let Some((a, _, b)) = c.bridge() else {
        return Vec::new();
    };
    let snap = c.snap;
    if a.default.is_none() || snap.firewall.is_none() {
        return Vec::new();
    }
    let (br, subnet) = (b.br, a.subnet());
    let (packet, uplink, src) = super::firewall::egress_packet(a.host, &a.nets, br);
    let (_, hops) = c.flow.host_hook(Hook::Postrouting, packet);
    let nat = hops.iter().find(|h| h.verdict == HopVerdict::Nat);
    let may = hops.iter().find(|h| h.verdict == HopVerdict::May);
    let (status, summary) = match (nat, may) {
        (Some(h), _) => {
            let counters = h
                .rule_ref
                .as_ref()
                .and_then(|r| r.counters)
                .map(|c| format!(" ({} packets)", c.packets))
                .unwrap_or_default();
            (
                Status::Pass,
                format!(
                    "masqueraded by `{}` in {}{counters}",
                    h.rule.as_deref().unwrap_or("?"),
                    h.step
                ),
            )
        }
        (None, Some(h)) => (
            Status::Warn,
            format!("egress may not be source-NATed: {}", h.detail),
        ),
        (None, None) => (
            Status::Warn,
            format!(
                "nothing masquerades {}: replies from outside cannot find their way back",
                subnet.map_or("the subnet".into(), |s| s.to_string())
            ),
        ),
    };
    let mut f = finding(status, summary)
        .ev(format!(
            "egress evaluated: tcp from {src} leaving {br} via {uplink}"
        ))
        .cmd("iptables -t nat -S POSTROUTING -v")
        .cmd("nft list ruleset")
        .hint(format!(
            "iptables -t nat -A POSTROUTING -s {} ! -o {br} -j MASQUERADE",
            subnet.map_or("<subnet>".into(), |s| s.to_string())
        ));
    for h in &hops {
        f = f.ev(super::path::hop_line(h));
    }
    vec![f]
}
