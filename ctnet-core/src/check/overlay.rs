//! `overlay`: the VXLAN tunnels the host routes container subnets through know where
//! each remote node is.

use super::ctx::Ctx;
use super::{Finding, Status, finding, in_ns};
use crate::model::{Link, NetnsState, Route, VxlanAttrs};

/// Each VXLAN device of `host` that IPv4 unicast routes (of any table but `local`)
/// leave through, with those routes.
pub(crate) fn tunnels(host: &NetnsState) -> Vec<(&Link, &VxlanAttrs, Vec<&Route>)> {
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
            // Where the remote VTEPs are seen from here (nodes in netns, nested nodes):
            // the entry must send the MAC to the node whose device has it.
            for dst in &dsts {
                let Ok(dst) = dst.parse::<std::net::IpAddr>() else {
                    continue;
                };
                let Some((n, l)) = c.snap.netns.iter().filter(|n| n.key != host.key).find_map(|n| {
                    n.links
                        .iter()
                        .find(|l| l.vxlan.as_ref().is_some_and(|x| x.local == Some(dst)))
                        .map(|l| (n, l))
                }) else {
                    continue;
                };
                if l.mac.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case(&mac)) {
                    let owner = c.snap.netns.iter().find_map(|o| {
                        o.links
                            .iter()
                            .find(|x| {
                                x.vxlan.is_some()
                                    && x.mac.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(&mac))
                            })
                            .and_then(|x| x.vxlan.as_ref()?.local)
                            .filter(|_| o.key != n.key)
                    });
                    problems.push(format!(
                        "{}'s FDB entry sends {mac} ({gw}'s MAC) to the VTEP at {dst} ({} in {}), whose device is {}: \
                         the wrong node, which drops it{}",
                        d.name,
                        l.name,
                        crate::netns::label_of(&n.refs, n.key),
                        l.mac.as_deref().unwrap_or("?"),
                        owner.map(|o| format!(" ({mac} is the VTEP at {o})")).unwrap_or_default()
                    ));
                }
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

/// The remote VTEP addresses `d` sends to: its default remote and every FDB `dst`.
fn remote_vteps(host: &NetnsState, d: &Link, v: &VxlanAttrs) -> Vec<std::net::IpAddr> {
    let mut out: Vec<std::net::IpAddr> = v
        .remote
        .into_iter()
        .chain(
            host.fdb
                .iter()
                .filter(|e| e.ifindex == d.ifindex)
                .filter_map(|e| e.dst),
        )
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `overlay.vni`: every remote VTEP this host sends to that the snapshot also sees (a
/// node simulated in a netns, a kind node, a nested host) has a VXLAN device with the
/// same VNI and UDP port. A mismatch drops everything between the two nodes on arrival,
/// while each side's routes and FDB look right. Remote VTEPs on other machines are
/// said to be unseen, with the command to compare them there.
pub(super) fn vni(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, _)) = c.bridge() else {
        return Vec::new();
    };
    let host = a.host;
    let mut out = Vec::new();
    for (d, v, _) in tunnels(host) {
        let mut problems = Vec::new();
        let mut ev = Vec::new();
        let mut unseen = Vec::new();
        for dst in remote_vteps(host, d, v) {
            let peer = c.snap.netns.iter().filter(|n| n.key != host.key).find_map(|n| {
                n.links.iter().find_map(|l| {
                    l.vxlan
                        .as_ref()
                        .filter(|x| x.local == Some(dst))
                        .map(|x| (n, l, x))
                })
            });
            let Some((n, l, x)) = peer else {
                unseen.push(dst.to_string());
                continue;
            };
            let where_ = format!("{} in {}", l.name, crate::netns::label_of(&n.refs, n.key));
            ev.push(format!(
                "VTEP {dst}: {where_} VNI {} port {}",
                x.vni.map_or("?".into(), |n| n.to_string()),
                x.port.map_or("?".into(), |n| n.to_string())
            ));
            if x.vni != v.vni {
                problems.push(format!(
                    "{} has VNI {}, but the VTEP at {dst} ({where_}) has VNI {}: each drops what the other sends",
                    d.name,
                    v.vni.map_or("?".into(), |n| n.to_string()),
                    x.vni.map_or("?".into(), |n| n.to_string())
                ));
            }
            if x.port != v.port {
                problems.push(format!(
                    "{} sends to UDP port {}, but the VTEP at {dst} ({where_}) listens on {}: nothing arrives",
                    d.name,
                    v.port.map_or("?".into(), |n| n.to_string()),
                    x.port.map_or("?".into(), |n| n.to_string())
                ));
            }
        }
        if !unseen.is_empty() {
            ev.push(format!("not seen from here: {}", unseen.join(", ")));
        }
        let seen = ev.len() - usize::from(!unseen.is_empty());
        let (status, summary) = if seen == 0 && problems.is_empty() {
            (
                Status::Skip,
                format!(
                    "{}'s remote VTEPs ({}) are not on this host: compare `ip -d link show` on each node (VNI {}, port {})",
                    d.name,
                    if unseen.is_empty() {
                        "none".to_string()
                    } else {
                        unseen.join(", ")
                    },
                    v.vni.map_or("?".into(), |n| n.to_string()),
                    v.port.map_or("?".into(), |n| n.to_string())
                ),
            )
        } else {
            verdict(problems, || {
                format!(
                    "{} (VNI {}, port {}) matches the {seen} remote VTEP(s) seen from here",
                    d.name,
                    v.vni.map_or("?".into(), |n| n.to_string()),
                    v.port.map_or("?".into(), |n| n.to_string())
                )
            })
        };
        let mut f = finding(status, summary)
            .ev(ev.join("; "))
            .cmd(format!("ip -d link show {}", d.name))
            .cmd(format!("bridge fdb show dev {}", d.name));
        if status == Status::Fail {
            f = f.hint(
                "every node of an overlay needs the same VNI and UDP port: flannel's VNI and port come from its net-conf \
                 (Backend.VNI, Backend.Port), Calico's from FelixConfiguration (vxlanVNI, vxlanPort); a VXLAN device's \
                 VNI cannot change, so the agent deletes and recreates it",
            );
        }
        out.push(f);
    }
    out
}

/// `overlay.underlay`: the host's own firewall lets the overlay's UDP through: what
/// other nodes' VTEPs send it (INPUT) and what it sends them (OUTPUT), as the flow
/// engine evaluates a new datagram to and from each remote VTEP.
pub(super) fn underlay(c: &Ctx<'_>) -> Vec<Finding> {
    use crate::flow::{Hook, HopVerdict};
    use crate::netfilter::Packet;
    let Some((a, _, _)) = c.bridge() else {
        return Vec::new();
    };
    let host = a.host;
    let mut out = Vec::new();
    for (d, v, _) in tunnels(host) {
        let (Some(std::net::IpAddr::V4(local)), Some(port)) = (v.local, v.port) else {
            continue;
        };
        let underlay = v
            .underlay
            .and_then(|i| host.links.iter().find(|l| l.ifindex == i))
            .map(|l| l.name.clone());
        let mut problems = Vec::new();
        let mut warns = Vec::new();
        let mut ev = Vec::new();
        let remotes: Vec<std::net::Ipv4Addr> = remote_vteps(host, d, v)
            .into_iter()
            .filter_map(|ip| match ip {
                std::net::IpAddr::V4(v4) => Some(v4),
                _ => None,
            })
            .collect();
        for remote in &remotes {
            for (hook, src, dst, what) in [
                (Hook::Input, *remote, local, "from"),
                (Hook::Output, local, *remote, "to"),
            ] {
                let mut p = Packet::udp(src.into(), port, dst.into(), port);
                match hook {
                    Hook::Input => p.iif = underlay.clone(),
                    _ => p.oif = underlay.clone(),
                }
                let (goes_on, hops) = c.flow.host_hook(hook, p);
                for h in &hops {
                    ev.push(format!(
                        "{} {what} {remote}: {}",
                        h.step,
                        h.rule.as_deref().unwrap_or(&h.detail)
                    ));
                }
                let hook_name = if hook == Hook::Input { "INPUT" } else { "OUTPUT" };
                if !goes_on {
                    let h = hops.last();
                    let rule = h
                        .and_then(|h| h.rule.clone())
                        .unwrap_or_else(|| "its policy".into());
                    if h.is_some_and(|h| h.verdict == HopVerdict::May) {
                        warns.push(format!(
                            "{hook_name} may drop UDP {port} {what} the VTEP at {remote}: `{rule}`"
                        ));
                    } else {
                        problems.push(format!(
                            "{hook_name} drops UDP {port} {what} the VTEP at {remote}: `{rule}`"
                        ));
                    }
                }
            }
        }
        if remotes.is_empty() {
            continue;
        }
        let (status, summary) = if !problems.is_empty() {
            (Status::Fail, problems.join("; "))
        } else if !warns.is_empty() {
            (Status::Warn, warns.join("; "))
        } else {
            (
                Status::Pass,
                format!(
                    "the firewall lets {}'s UDP {port} through to and from its {} remote VTEP(s)",
                    d.name,
                    remotes.len()
                ),
            )
        };
        let mut f = finding(status, summary)
            .ev(ev.join("; "))
            .cmd("iptables -S INPUT -v")
            .cmd("iptables -S OUTPUT -v")
            .cmd("nft list ruleset")
            .cmd(format!(
                "tcpdump -ni {} udp port {port}",
                underlay.as_deref().unwrap_or("any")
            ));
        if status > Status::Pass {
            f = f.hint(format!(
                "let the overlay through on every node: `iptables -I INPUT -p udp --dport {port} -s NODE_SUBNET -j ACCEPT` \
                 (and the same in any cloud security group): with it dropped, pods on this node reach other nodes' pods \
                 but no answer comes back"
            ));
        }
        out.push(f);
    }
    out
}
