//! `overlay`: the VXLAN tunnels the host routes container subnets through know where
//! each remote node is.

use super::ctx::Ctx;
use super::{Finding, Status, finding, in_ns};
use crate::model::{Link, NetnsState, Route, VxlanAttrs};

/// Each VXLAN device of `host` that IPv4 unicast routes (of any table but `local`)
/// leave through, with those routes.
pub(super) fn tunnels(host: &NetnsState) -> Vec<(&Link, &VxlanAttrs, Vec<&Route>)> {
    host.links
        .iter()
        .filter_map(|d| {
            let v = d.vxlan.as_ref()?;
            let routes: Vec<&Route> = host
                .routes
                .iter()
                .filter(|r| {
                    r.oif == Some(d.ifindex) && r.family == "inet" && r.table != 255 && r.scope != "host"
                })
                .filter(|r| r.kind.is_empty() || r.kind == "unicast")
                .collect();
            (!routes.is_empty()).then_some((d, v, routes))
        })
        .collect()
}

/// Pass, said by `pass`, when nothing is wrong; else fail, saying every problem.
pub(super) fn verdict(problems: Vec<String>, pass: impl FnOnce() -> String) -> (Status, String) {
    if problems.is_empty() {
        (Status::Pass, pass())
    } else {
        (Status::Fail, problems.join("; "))
    }
}

/// `overlay.vtep`: for every route through a VXLAN device, the next hop resolves to a
/// MAC (a neighbour entry, as flannel writes one per node) and that MAC to a remote VTEP
/// (an FDB entry with `dst`), or the device has somewhere to flood to (a default remote,
/// all-zeros FDB entries, or learning). A missing or wrong entry drops every packet to
/// that node's pods while the rest of the overlay works. Nothing is said on a host with
/// no such route.
pub(super) fn vtep(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, _)) = c.bridge() else {
        return Vec::new();
    };
    let host = a.host;
    let mut out = Vec::new();
    for (d, v, routes) in tunnels(host) {
        let fdb: Vec<_> = host.fdb.iter().filter(|e| e.ifindex == d.ifindex).collect();
        let floods: Vec<String> = v
            .remote
            .or(v.group)
            .map(|r| r.to_string())
            .into_iter()
            .chain(
                fdb.iter()
                    .filter(|e| e.mac == "00:00:00:00:00:00")
                    .filter_map(|e| e.dst.map(|d| d.to_string())),
            )
            .collect();
        let mut problems = Vec::new();
        let mut ev = Vec::new();
        for r in &routes {
            let Some(gw) = r.gateway else {
                // On-link: ARP goes over the tunnel, flooded to the default remotes.
                ev.push(format!("{} dev {} (on-link)", r.dst, d.name));
                if floods.is_empty() && !v.learning && !v.external {
                    problems.push(format!(
                        "{} goes out {} on-link, but it has no remote to send to (no remote, group or all-zeros FDB entry) and does not learn",
                        r.dst, d.name
                    ));
                }
                continue;
            };
            let neigh = host
                .neighbours
                .iter()
                .find(|n| n.ifindex == d.ifindex && n.ip == gw && !n.state.unresolved())
                .and_then(|n| n.mac.clone());
            let Some(mac) = neigh else {
                ev.push(format!("{} via {gw}: no neighbour", r.dst));
                if floods.is_empty() && !v.learning {
                    problems.push(format!(
                        "no neighbour entry for {gw} on {}: packets to {} are dropped (flannel writes one per node)",
                        d.name, r.dst
                    ));
                }
                continue;
            };
            let dsts: Vec<String> = fdb
                .iter()
                .filter(|e| e.mac.eq_ignore_ascii_case(&mac))
                .filter_map(|e| e.dst.map(|d| d.to_string()))
                .collect();
            ev.push(format!(
                "{} via {gw} lladdr {mac} -> VTEP {}",
                r.dst,
                if dsts.is_empty() {
                    "none".to_string()
                } else {
                    dsts.join(", ")
                }
            ));
            if dsts.is_empty() && floods.is_empty() && !v.learning {
                problems.push(format!(
                    "{} has no FDB entry for {mac} ({gw}'s MAC): packets to {} have no remote node to go to",
                    d.name, r.dst
                ));
            }
        }
        let (status, summary) = verdict(problems, || {
            format!(
                "{} (VNI {}) knows a remote VTEP for each of its {} route(s)",
                d.name,
                v.vni.map_or("?".into(), |n| n.to_string()),
                routes.len()
            )
        });
        let mut f = finding(status, summary)
            .ev(ev.join("; "))
            .cmd(format!("ip route show dev {}", d.name))
            .cmd(format!("ip neigh show dev {}", d.name))
            .cmd(format!("bridge fdb show dev {}", d.name))
            .cmd(in_ns(
                a.ns,
                &format!("ip route get {}", routes[0].dst.split('/').next().unwrap_or("")),
            ));
        if status > Status::Pass {
            f = f.hint(format!(
                "add what the overlay's agent writes for each node: `ip neigh replace GATEWAY lladdr VTEP_MAC dev {0} nud permanent` \
                 and `bridge fdb append VTEP_MAC dev {0} dst NODE_IP`; a missing pair usually means the agent (flanneld, calico-node) \
                 on this node missed the other node's lease",
                d.name
            ));
        }
        out.push(f);
    }
    out
}
