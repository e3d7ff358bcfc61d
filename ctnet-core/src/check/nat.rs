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

/// `nat.masquerade`: with a default route and a firewall read, something masquerades
/// the container's subnet.
pub(super) fn masquerade(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, b)) = c.bridge() else {
        return Vec::new();
    };
    let snap = c.snap;
    if a.default.is_none() || snap.firewall.is_none() {
        return Vec::new();
    }
    let (br, subnet) = (b.br, a.subnet());
    let masq = firewall_rules(snap).into_iter().find(|(table, r)| {
        *table == "nat"
            && r.target.as_deref() == Some("MASQUERADE")
            && subnet.is_some_and(|s| {
                r.spec
                    .split_whitespace()
                    .skip_while(|w| *w != "-s")
                    .nth(1)
                    .and_then(|src| src.parse::<Ipv4Net>().ok())
                    .is_some_and(|src| src.contains(&s.network()))
            })
    });
    let nft_masq = snap
        .firewall
        .iter()
        .flat_map(|f| f.nft.iter())
        .flat_map(|t| t.rules.iter())
        .any(|r| r.verdict.as_deref() == Some("masquerade"));
    vec![
        finding(
            if masq.is_some() || nft_masq {
                Status::Pass
            } else {
                Status::Warn
            },
            match (&masq, nft_masq) {
                (Some((_, r)), _) => format!(
                    "masqueraded by `-A POSTROUTING {}` ({} packets)",
                    r.spec, r.packets
                ),
                (None, true) => "a native nftables masquerade rule exists".to_string(),
                (None, false) => format!(
                    "nothing masquerades {}: replies from outside cannot find their way back",
                    subnet.map_or("the subnet".into(), |s| s.to_string())
                ),
            },
        )
        .cmd("iptables -t nat -S POSTROUTING -v")
        .hint(format!(
            "iptables -t nat -A POSTROUTING -s {} ! -o {br} -j MASQUERADE",
            subnet.map_or("<subnet>".into(), |s| s.to_string())
        )),
    ]
}
