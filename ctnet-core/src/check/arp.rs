//! `arp`: the neighbour entries toward the gateway and the peer resolve to the right MAC.

use crate::vocab::NeighState;
use std::net::IpAddr;

use super::address::on_bridge;
use super::ctx::{Ctx, PairCtx};
use super::{Finding, Status, finding, in_ns};

/// `arp.gateway`: the entry for the gateway, if any, is resolved to the bridge's MAC.
pub(super) fn gateway(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, bridge, b, g)) = c.v4_gateway() else {
        return Vec::new();
    };
    let (name, ns, br, gw) = (a.name, a.ns, bridge.br, IpAddr::V4(g));
    let on_bridge = on_bridge(&b.ips, g);
    let entry = ns
        .neighbours
        .iter()
        .find(|n| n.ip == gw && Some(n.ifindex) == Some(a.i.iface.ifindex));
    let f = match entry {
        None => finding(
            Status::Pass,
            format!("no ARP entry for {gw} yet (resolved on first use)"),
        ),
        Some(n) if n.state == NeighState::Failed || n.state == NeighState::Incomplete => finding(
            Status::Fail,
            format!("ARP for gateway {gw} is {}: no answer from it", n.state),
        )
        .ev(format!("{name}: {gw} {}", n.state))
        .hint("the gateway does not answer ARP: check the bridge, the port and the gateway address"),
        Some(n) if on_bridge && n.mac.is_some() && n.mac != b.mac => finding(
            Status::Fail,
            format!(
                "ARP entry for gateway {gw} has MAC {} but {br} has {}: stale",
                n.mac.as_deref().unwrap_or("?"),
                b.mac.as_deref().unwrap_or("?")
            ),
        )
        .ev(format!(
            "{name}: {gw} lladdr {} {}",
            n.mac.as_deref().unwrap_or("?"),
            n.state
        ))
        .hint(in_ns(ns, &format!("ip neigh del {gw} dev {name}"))),
        Some(n) => finding(
            Status::Pass,
            format!("{gw} is at {} ({})", n.mac.as_deref().unwrap_or("?"), n.state),
        ),
    };
    vec![f.cmd(in_ns(ns, &format!("ip neigh show {gw}")))]
}

/// `arp.peer_entry`: the target's entry for the peer has the peer's MAC, and the
/// peer's for the target the target's: one finding each way.
pub(super) fn peer_entry(c: &PairCtx<'_>) -> Vec<Finding> {
    let Some(s) = &c.sides else {
        return Vec::new();
    };
    let Some((tn, pip)) = s.addrs else {
        return Vec::new();
    };
    let (tns, ti, pns, pi) = (s.tns, s.ti, s.pns, s.pi);
    let mut out = Vec::new();
    for (from_ns, from_i, from_label, to_ip, to_mac, id_dir) in [
        (
            tns,
            ti,
            &s.tv.label,
            IpAddr::V4(pip),
            pi.mac.clone(),
            "target -> peer",
        ),
        (
            pns,
            pi,
            &s.pv.label,
            IpAddr::V4(tn.addr()),
            ti.mac.clone(),
            "peer -> target",
        ),
    ] {
        let entry = from_ns
            .neighbours
            .iter()
            .find(|n| n.ip == to_ip && n.ifindex == from_i.iface.ifindex);
        let f = match entry {
            None => finding(Status::Pass, format!("{id_dir}: no ARP entry for {to_ip} yet")),
            Some(n) if n.state == NeighState::Failed || n.state == NeighState::Incomplete => {
                finding(Status::Fail, format!("{id_dir}: ARP for {to_ip} is {}", n.state))
            }
            Some(n) if n.mac.is_some() && n.mac != to_mac => finding(
                Status::Fail,
                format!(
                    "{id_dir}: ARP says {to_ip} is at {}, but its interface has {}: stale entry, frames go to the wrong MAC",
                    n.mac.as_deref().unwrap_or("?"),
                    to_mac.as_deref().unwrap_or("?")
                ),
            )
            .hint(in_ns(from_ns, &format!("ip neigh del {to_ip} dev {}", from_i.iface.name))),
            Some(n) => finding(Status::Pass, format!("{id_dir}: {to_ip} is at {} ({})", n.mac.as_deref().unwrap_or("?"), n.state)),
        };
        out.push(
            f.ev(format!("in {from_label}"))
                .cmd(in_ns(from_ns, &format!("ip neigh show {to_ip}"))),
        );
    }
    out
}

/// `arp.table_fill`: the IPv4 neighbour entries of every netns read (the kernel keeps
/// them in one table for the whole host) against `gc_thresh3`, past which new entries
/// fail ("neighbour table overflow") and containers lose their neighbours.
pub(super) fn table_fill(c: &Ctx<'_>) -> Vec<Finding> {
    let Some(a) = c.iface() else {
        return Vec::new();
    };
    let Some(limit) = a.host.sysctls.neigh_gc_thresh3 else {
        return vec![finding(
            Status::Skip,
            "net.ipv4.neigh.default.gc_thresh3 could not be read (the kernel shows it only to the initial user namespace)",
        )];
    };
    let unread = c.snap.netns.iter().filter(|n| n.read_error.is_some()).count();
    let count: usize = c
        .snap
        .netns
        .iter()
        .map(|n| n.neighbours.iter().filter(|e| e.ip.is_ipv4()).count())
        .sum();
    let fill = count as f64 / limit.max(1) as f64;
    let status = if count as u64 >= limit {
        Status::Fail
    } else if fill >= 0.9 {
        Status::Warn
    } else {
        Status::Pass
    };
    let mut f = finding(
        status,
        match status {
            Status::Fail => format!("the IPv4 neighbour table is full: {count} entries, gc_thresh3 {limit}"),
            Status::Warn => format!(
                "the IPv4 neighbour table is nearly full: {count} of {limit} ({:.0} %)",
                fill * 100.0
            ),
            _ => format!(
                "IPv4 neighbour entries: {count} of {limit} ({:.0} %)",
                fill * 100.0
            ),
        },
    )
    .ev(format!(
        "{count} IPv4 neighbour entries in {} netns read; net.ipv4.neigh.default.gc_thresh3 = {limit}",
        c.snap.netns.len() - unread
    ))
    .cmd("sysctl net.ipv4.neigh.default.gc_thresh3")
    .cmd("ip -4 neigh show | wc -l  # in every netns");
    if unread > 0 {
        f = f.ev(format!(
            "{unread} netns could not be read: their entries are not counted"
        ));
    }
    if status > Status::Pass {
        f = f.hint(
            "raise net.ipv4.neigh.default.gc_thresh1/2/3 (the table is shared by every netns on the host)",
        );
    }
    vec![f]
}

/// `arp.answers`: the container's interface answers ARP for its own address
/// (`arp_ignore` 8 answers nothing: nobody can resolve the container once their
/// entries expire; `arp_filter` only matters with several interfaces on one subnet).
pub(super) fn answers(c: &Ctx<'_>) -> Vec<Finding> {
    let Some(a) = c.iface() else {
        return Vec::new();
    };
    let conf = |n: &str, f: fn(&crate::model::IfSysctls) -> Option<u8>| a.ns.sysctls.conf.get(n).and_then(f);
    let (Some(all), dev) = (conf("all", |s| s.arp_ignore), conf(a.name, |s| s.arp_ignore)) else {
        return vec![finding(
            Status::Skip,
            format!("the arp_ignore of {} was not read", a.view.label),
        )];
    };
    let ignore = all.max(dev.unwrap_or(0));
    let filter = conf("all", |s| s.arp_filter)
        .max(conf(a.name, |s| s.arp_filter))
        .unwrap_or(0);
    let status = match ignore {
        8 => Status::Fail,
        0..=3 => Status::Pass,
        _ => Status::Warn,
    };
    let name = a.name;
    let mut f = finding(
        status,
        match ignore {
            8 => format!("arp_ignore is 8 on {name}: it answers no ARP request, so neither the gateway nor its peers can resolve it"),
            0..=3 => format!("{name} answers ARP for its addresses (arp_ignore {ignore})"),
            v => format!("arp_ignore is {v} on {name}, a reserved value: the kernel's answer is unspecified"),
        },
    )
    .ev(format!(
        "{} in {}: net.ipv4.conf.all.arp_ignore = {all}, conf.{name}.arp_ignore = {}, arp_filter = {filter}",
        name,
        a.view.label,
        dev.map_or("?".into(), |v| v.to_string())
    ))
    .cmd(super::in_ns(a.ns, &format!("sysctl net.ipv4.conf.all.arp_ignore net.ipv4.conf.{name}.arp_ignore")));
    if status > Status::Pass {
        f = f.hint(format!(
            "sysctl -w net.ipv4.conf.{name}.arp_ignore=0 (and conf.all) inside the container"
        ));
    }
    vec![f]
}
