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

/// `route.subnet_overlap`: no host route other than the bridge's own covers part of the
/// container's subnet (a LAN or VPN route colliding with the container network): the
/// longer prefix wins, so either containers are unreachable from the host or the
/// overlapping hosts are unreachable from the containers.
pub(super) fn subnet_overlap(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, b)) = c.bridge() else {
        return Vec::new();
    };
    let Some(subnet) = a.subnet() else {
        return Vec::new();
    };
    let host = a.host;
    let br = host.link_by_name(b.br).map(|l| l.ifindex);
    let my_ip = a.nets.first().map(|n| n.addr());
    let mut f = finding(Status::Pass, String::new()).cmd("ip route show table main");
    let mut worst = Status::Pass;
    let mut clash = Vec::new();
    for r in host
        .routes
        .iter()
        .filter(|r| r.family == "inet" && r.table == 254 && r.dst != "default")
    {
        // A host route is written without its `/32`.
        let net = match (
            r.dst.parse::<ipnet::Ipv4Net>(),
            r.dst.parse::<std::net::Ipv4Addr>(),
        ) {
            (Ok(n), _) => n,
            (_, Ok(a)) => ipnet::Ipv4Net::from(a),
            _ => continue,
        };
        if r.oif.is_some() && r.oif == br {
            continue;
        }
        if !(net.contains(&subnet.network()) || subnet.contains(&net.network())) {
            continue;
        }
        let dev = r
            .oif
            .and_then(|i| host.link(i))
            .map_or("?".to_string(), |l| l.name.clone());
        // A route inside the subnet (longer prefix) takes those addresses off the bridge;
        // one around it is only a collision with hosts the containers cannot reach.
        let takes_mine = net.prefix_len() > subnet.prefix_len() && my_ip.is_some_and(|ip| net.contains(&ip));
        let st = if takes_mine { Status::Fail } else { Status::Warn };
        worst = worst.max(st);
        clash.push(format!("{net} dev {dev}"));
        f = f.ev(format!(
            "host route {} dev {dev}{} overlaps {subnet} on {}",
            r.dst,
            r.gateway.map(|g| format!(" via {g}")).unwrap_or_default(),
            b.br
        ));
    }
    f.status = worst;
    f.summary = match worst {
        Status::Pass => format!("no host route collides with {subnet}"),
        Status::Fail => format!(
            "{} takes {}'s address off {}: the host sends its traffic there, not to the bridge",
            clash.join(", "),
            a.nets.first().map_or(String::new(), |n| n.addr().to_string()),
            b.br
        ),
        _ => format!(
            "{subnet} on {} collides with {}: hosts there are unreachable from the containers",
            b.br,
            clash.join(", ")
        ),
    };
    if worst > Status::Pass {
        f = f.hint("give the container network a subnet no LAN or VPN uses (Docker: default-address-pools in daemon.json, or --subnet)");
    }
    vec![f]
}
