//! The overlay faults: a container on a node whose pods reach other nodes' pods through
//! a VXLAN device (`vxlan-mtu`, `vtep-fdb-missing`, `vni-mismatch`, `underlay-drop`).
//! Every step runs in the host netns of the scan: the node, with `--node` or a pod of a
//! multi-node lab.

use std::net::IpAddr;

use super::{FAULT_COMMENT, Fault, Side, Step};
use crate::error::{Error, Result};
use crate::model::{Link, NetnsState, Route, Snapshot, VxlanAttrs};
use crate::target::Resolved;

/// The first IPv4 address of `r`'s netns (on any interface but loopback).
fn address_of(snap: &Snapshot, r: &Resolved) -> Option<std::net::Ipv4Addr> {
    let ns = snap.netns_by_key(r.netns?)?;
    ns.addresses.iter().find_map(|a| match a.address {
        IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_link_local() => Some(v4),
        _ => None,
    })
}

fn covers(route: &Route, ip: std::net::Ipv4Addr) -> bool {
    route.dst.parse::<ipnet::Ipv4Net>().is_ok_and(|n| n.contains(&ip))
        || (route.dst == "default" || route.dst == "0.0.0.0/0")
}

/// The tunnel the fault acts on: the VXLAN device whose route covers the peer's address
/// (any when there is no peer), and that route.
fn tunnel(
    fault: Fault,
    host: &NetnsState,
    to: Option<std::net::Ipv4Addr>,
) -> Result<(&Link, &VxlanAttrs, &Route)> {
    let tunnels = crate::check::overlay_tunnels(host);
    if tunnels.is_empty() {
        return Err(Error::Invalid(format!(
            "the host netns routes nothing through a VXLAN device: {} breaks an overlay (run it on a node: \
             --node NODE, or a pod NAME-nI-cJ of a multi-node lab)",
            fault.name()
        )));
    }
    for (d, v, routes) in &tunnels {
        let hit = match to {
            Some(ip) => routes.iter().find(|r| covers(r, ip)),
            None => routes.iter().find(|r| r.gateway.is_some()).or(routes.first()),
        };
        if let Some(r) = hit {
            return Ok((d, v, r));
        }
    }
    Err(Error::Invalid(format!(
        "no route through a VXLAN device covers {}: pick a --peer on another node",
        to.map_or("the peer".into(), |i| i.to_string())
    )))
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

fn host_step(argv: &[String]) -> Step {
    Step::host(&argv.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The steps that build device `d` again, as it is, but with VNI `vni`: what a
/// VNI change takes, since the kernel refuses to change a VXLAN device's VNI.
fn rebuild(host: &NetnsState, d: &Link, v: &VxlanAttrs, vni: u32) -> Result<Vec<Step>> {
    let name = d.name.as_str();
    let (Some(local), Some(port)) = (v.local, v.port) else {
        return Err(Error::Invalid(format!(
            "{name} has no local address or port: vni-mismatch rebuilds flannel-style devices only"
        )));
    };
    let underlay = v
        .underlay
        .and_then(|i| host.links.iter().find(|l| l.ifindex == i))
        .ok_or_else(|| Error::Invalid(format!("{name} has no underlay device: vni-mismatch needs one")))?;
    let mac = d
        .mac
        .clone()
        .ok_or_else(|| Error::Invalid(format!("{name} has no MAC address")))?;
    let mut out = vec![host_step(&[s("ip"), s("link"), s("del"), s("dev"), s(name)])];
    out.push(host_step(&[
        s("ip"),
        s("link"),
        s("add"),
        s(name),
        s("address"),
        mac,
        s("mtu"),
        s(d.mtu.unwrap_or(1450)),
        s("type"),
        s("vxlan"),
        s("id"),
        s(vni),
        s("local"),
        s(local),
        s("dev"),
        underlay.name.clone(),
        s("dstport"),
        s(port),
        s(if v.learning { "learning" } else { "nolearning" }),
    ]));
    for a in host
        .addresses
        .iter()
        .filter(|a| a.ifindex == d.ifindex && a.address.is_ipv4())
    {
        out.push(host_step(&[
            s("ip"),
            s("addr"),
            s("add"),
            format!("{}/{}", a.address, a.prefix_len),
            s("dev"),
            s(name),
        ]));
    }
    out.push(host_step(&[
        s("ip"),
        s("link"),
        s("set"),
        s("dev"),
        s(name),
        s("up"),
    ]));
    for (_, _, routes) in crate::check::overlay_tunnels(host)
        .into_iter()
        .filter(|(l, _, _)| l.ifindex == d.ifindex)
    {
        for r in routes.into_iter().filter(|r| r.table == 254) {
            let mut argv = vec![s("ip"), s("route"), s("replace"), r.dst.clone()];
            if let Some(gw) = r.gateway {
                argv.extend([s("via"), s(gw), s("dev"), s(name), s("onlink")]);
            } else {
                argv.extend([s("dev"), s(name)]);
            }
            out.push(host_step(&argv));
        }
    }
    for n in host
        .neighbours
        .iter()
        .filter(|n| n.ifindex == d.ifindex && n.ip.is_ipv4() && n.state.as_str() == "permanent")
    {
        if let Some(mac) = &n.mac {
            out.push(host_step(&[
                s("ip"),
                s("neigh"),
                s("replace"),
                s(n.ip),
                s("lladdr"),
                mac.clone(),
                s("dev"),
                s(name),
                s("nud"),
                s("permanent"),
            ]));
        }
    }
    for e in host
        .fdb
        .iter()
        .filter(|e| e.ifindex == d.ifindex && e.state.as_str() == "permanent")
    {
        if let Some(IpAddr::V4(dst)) = e.dst {
            out.push(host_step(&[
                s("bridge"),
                s("fdb"),
                s("append"),
                e.mac.clone(),
                s("dev"),
                s(name),
                s("dst"),
                s(dst),
                s("self"),
                s("permanent"),
            ]));
        }
    }
    Ok(out)
}

/// Plan an overlay fault on `target` (whose node is the scan's host netns).
pub(super) fn plan(
    fault: Fault,
    snap: &Snapshot,
    target: &Resolved,
    peer: Option<&Resolved>,
    me: &Side<'_>,
) -> Result<(Vec<Step>, Vec<Step>)> {
    let host = snap
        .host_netns()
        .ok_or_else(|| Error::Invalid("the scan has no host netns".into()))?;
    let to = match peer {
        Some(p) => Some(
            address_of(snap, p)
                .ok_or_else(|| Error::Invalid(format!("{} has no IPv4 address to route to", p.target)))?,
        ),
        None => None,
    };
    let (d, v, route) = tunnel(fault, host, to)?;
    let dev = d.name.clone();
    match fault {
        Fault::VxlanMtu => {
            let ifname = me.iface.iface.name.clone();
            let host_veth = me.host_veth();
            let overlay = d.mtu.unwrap_or(1450);
            let underlay = v
                .underlay
                .and_then(|i| host.links.iter().find(|l| l.ifindex == i))
                .and_then(|l| l.mtu)
                .unwrap_or(1500);
            let was = me.iface.mtu.unwrap_or(1500);
            if was > overlay {
                return Err(Error::Invalid(format!(
                    "{}'s {ifname} already has MTU {was}, above {dev}'s {overlay}: nothing to break",
                    target.target
                )));
            }
            let veth_was = host
                .links
                .iter()
                .find(|l| l.name == host_veth)
                .and_then(|l| l.mtu)
                .unwrap_or(was);
            let set_in = |mtu: u32| {
                Step::inside(
                    &me.ns,
                    &["ip", "link", "set", "dev", &ifname, "mtu", &mtu.to_string()],
                )
            };
            let set_host =
                |mtu: u32| Step::host(&["ip", "link", "set", "dev", &host_veth, "mtu", &mtu.to_string()]);
            Ok((
                vec![set_host(underlay), set_in(underlay)],
                vec![set_in(was), set_host(veth_was)],
            ))
        }
        Fault::VtepFdbMissing => {
            let Some(gw) = route.gateway else {
                return Err(Error::Invalid(format!(
                    "{} goes out {dev} on-link: there is no per-node FDB entry to remove",
                    route.dst
                )));
            };
            let mac = host
                .neighbours
                .iter()
                .find(|n| n.ifindex == d.ifindex && n.ip == gw)
                .and_then(|n| n.mac.clone())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{dev} has no neighbour entry for {gw}: the overlay resolves its VTEPs itself (learning); \
                         vtep-fdb-missing needs flannel's static entries"
                    ))
                })?;
            let entry = host
                .fdb
                .iter()
                .find(|e| e.ifindex == d.ifindex && e.mac.eq_ignore_ascii_case(&mac) && e.dst.is_some())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{dev} has no FDB entry for {mac} ({gw}'s MAC): it is missing already"
                    ))
                })?;
            let dst = s(entry.dst.expect("filtered"));
            Ok((
                vec![Step::host(&[
                    "bridge", "fdb", "del", &mac, "dev", &dev, "dst", &dst, "self",
                ])],
                vec![Step::host(&[
                    "bridge",
                    "fdb",
                    "append",
                    &mac,
                    "dev",
                    &dev,
                    "dst",
                    &dst,
                    "self",
                    "permanent",
                ])],
            ))
        }
        Fault::VniMismatch => {
            let vni = v
                .vni
                .ok_or_else(|| Error::Invalid(format!("{dev} has no VNI (external): nothing to mismatch")))?;
            let other = if vni >= 16_777_215 { vni - 1 } else { vni + 1 };
            Ok((rebuild(host, d, v, other)?, rebuild(host, d, v, vni)?))
        }
        Fault::UnderlayDrop => {
            let port = s(v.port.unwrap_or(8472));
            let rule = [
                "-p",
                "udp",
                "-m",
                "udp",
                "--dport",
                port.as_str(),
                "-m",
                "comment",
                "--comment",
                FAULT_COMMENT,
                "-j",
                "DROP",
            ];
            let mut add = vec!["iptables", "-I", "INPUT", "1"];
            add.extend(rule);
            let mut del = vec!["iptables", "-D", "INPUT"];
            del.extend(rule);
            Ok((vec![Step::host(&add)], vec![Step::host(&del)]))
        }
        _ => unreachable!("not an overlay fault: {}", fault.name()),
    }
}
