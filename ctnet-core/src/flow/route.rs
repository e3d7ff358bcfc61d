//! The routing decision from a snapshot: local addresses first (the local table),
//! then the longest prefix of the main table, lowest metric first.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{NetnsState, Route, Snapshot};

/// What the routing decision says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RouteResult {
    /// An address of this netns.
    Local { ifindex: u32 },
    /// Out of `oif`, to `gateway` or on-link.
    Unicast {
        oif: u32,
        gateway: Option<IpAddr>,
        prefsrc: Option<IpAddr>,
        /// The route's destination as written.
        dst: String,
        table: u32,
    },
    /// A blackhole, unreachable or prohibit route.
    Refused { kind: String, dst: String },
    /// No route.
    None,
}

fn prefix(r: &Route) -> Option<IpNet> {
    let v6 = r.family == "inet6";
    match r.dst.as_str() {
        "default" => Some(if v6 {
            "::/0".parse().unwrap()
        } else {
            "0.0.0.0/0".parse().unwrap()
        }),
        d if d.contains('/') => d.parse().ok(),
        d => d.parse::<IpAddr>().ok().map(IpNet::from),
    }
}

/// Route `dst` in `ns` (the main table; policy rules are not in the snapshot).
pub(super) fn lookup(ns: &NetnsState, dst: IpAddr, _iif: Option<&str>) -> RouteResult {
    if let Some(a) = ns.addresses.iter().find(|a| a.address == dst) {
        return RouteResult::Local { ifindex: a.ifindex };
    }
    // The local table: 127.0.0.0/8 and any other local route.
    for r in ns.routes.iter().filter(|r| r.table == 255 && r.kind == "local") {
        if prefix(r).is_some_and(|n| n.contains(&dst)) {
            return RouteResult::Local {
                ifindex: r.oif.unwrap_or(1),
            };
        }
    }
    let fam = if dst.is_ipv4() { "inet" } else { "inet6" };
    let mut best: Option<(u8, u32, &Route)> = None;
    for r in ns.routes.iter().filter(|r| r.table == 254 && r.family == fam) {
        let Some(n) = prefix(r) else { continue };
        if !n.contains(&dst) {
            continue;
        }
        let key = (n.prefix_len(), r.metric.unwrap_or(0));
        let better = match best {
            None => true,
            Some((len, metric, _)) => key.0 > len || (key.0 == len && key.1 < metric),
        };
        if better {
            best = Some((key.0, key.1, r));
        }
    }
    let Some((_, _, r)) = best else {
        return RouteResult::None;
    };
    match r.kind.as_str() {
        "blackhole" | "unreachable" | "prohibit" => RouteResult::Refused {
            kind: r.kind.clone(),
            dst: r.dst.clone(),
        },
        _ => {
            let (oif, gateway) = match (r.oif, r.nexthops.first()) {
                (Some(o), _) => (o, r.gateway),
                (None, Some(nh)) => (nh.oif, nh.gateway),
                (None, None) => return RouteResult::None,
            };
            RouteResult::Unicast {
                oif,
                gateway,
                prefsrc: r.prefsrc,
                dst: r.dst.clone(),
                table: r.table,
            }
        }
    }
}

/// What routing from a snapshot cannot know.
pub(super) fn assumptions(snap: &Snapshot) -> Vec<String> {
    let mut out = vec!["routing from the snapshot's main table (policy rules are not read)".to_string()];
    let other: Vec<String> = snap
        .netns
        .iter()
        .filter(|ns| ns.routes.iter().any(|r| r.table != 254 && r.table != 255))
        .map(|ns| ns.label())
        .collect();
    if !other.is_empty() {
        out.push(format!(
            "routing tables other than main exist in {}: with policy rules the kernel may route otherwise",
            other.join(", ")
        ));
    }
    out
}
