//! `route`: the netns has a default route through the interface, via a gateway it can
//! reach.

use std::net::IpAddr;

use super::ctx::Ctx;
use super::nat::subnet_masqueraded;
use super::{Finding, Status, finding, in_ns};

/// `route.default`: an IPv4 default route leaves through the interface.
pub(super) fn default(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, _)) = c.bridge() else {
        return Vec::new();
    };
    let (name, ns) = (a.name, a.ns);
    let f = match (a.default, a.i.gateway) {
        // Without a default route only the subnet is reachable: a failure when the host
        // masquerades the subnet (egress was meant to work), else maybe on purpose.
        (None, _) => finding(
            if a.nets
                .first()
                .is_some_and(|n| subnet_masqueraded(c.snap, n.trunc()))
            {
                Status::Fail
            } else {
                Status::Warn
            },
            "no IPv4 default route: only the local subnet is reachable",
        )
        .cmd(in_ns(ns, "ip route"))
        .hint("add one via the bridge's address: ip route add default via <gateway>"),
        (Some(r), None) => finding(
            Status::Warn,
            format!("the default route does not leave through {name}"),
        )
        .ev(format!("default via {:?} dev if{:?}", r.gateway, r.oif))
        .cmd(in_ns(ns, "ip route")),
        (Some(_), Some(gw)) => {
            finding(Status::Pass, format!("default via {gw} dev {name}")).cmd(in_ns(ns, "ip route"))
        }
    };
    vec![f]
}

/// `route.gateway_reachable`: the default gateway is inside a subnet of the interface.
pub(super) fn gateway_reachable(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, _)) = c.bridge() else {
        return Vec::new();
    };
    let (Some(_), Some(gw)) = (a.default, a.i.gateway) else {
        return Vec::new();
    };
    let name = a.name;
    let inside = match gw {
        IpAddr::V4(g) => a.nets.iter().any(|n| n.contains(&g)),
        IpAddr::V6(_) => true,
    };
    vec![
        finding(
            if inside { Status::Pass } else { Status::Fail },
            if inside {
                format!("gateway {gw} is in {name}'s subnet")
            } else {
                format!("gateway {gw} is outside every subnet of {name}: the route cannot be used")
            },
        )
        .ev(format!("{name}: {}; gateway {gw}", a.i.ips.join(", ")))
        .cmd(in_ns(a.ns, &format!("ip route get {gw}")))
        .hint("give the interface an address in the gateway's subnet"),
    ]
}
