//! `address`: the interfaces have IPv4 addresses that fit together: the gateway on the
//! bridge, the pair in one subnet, no address held twice.

use std::net::Ipv4Addr;

use super::ctx::{Ctx, PairCtx};
use super::{Finding, Status, finding, in_ns, v4_nets};

/// `address.ipv4`: the interface has an IPv4 address.
pub(super) fn ipv4(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, _)) = c.bridge() else {
        return Vec::new();
    };
    let (name, nets) = (a.name, &a.nets);
    vec![
        finding(
            if nets.is_empty() {
                Status::Fail
            } else {
                Status::Pass
            },
            if nets.is_empty() {
                format!("{name} has no IPv4 address")
            } else {
                format!(
                    "{name} has {}",
                    nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
                )
            },
        )
        .ev(format!("{name} addresses: {}", a.i.ips.join(", ")))
        .cmd(in_ns(a.ns, &format!("ip addr show {name}"))),
    ]
}

/// Whether the IPv4 gateway `g` is an address of the bridge with addresses `ips`.
pub(super) fn on_bridge(ips: &[String], g: Ipv4Addr) -> bool {
    v4_nets(ips).iter().any(|n| n.addr() == g)
}

/// `address.gateway_on_bridge`: the default gateway is the bridge's address.
pub(super) fn gateway_on_bridge(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((_, bridge, b, g)) = c.v4_gateway() else {
        return Vec::new();
    };
    let (br, gw) = (bridge.br, g);
    let on_bridge = on_bridge(&b.ips, g);
    vec![
        finding(
            if on_bridge { Status::Pass } else { Status::Warn },
            if on_bridge {
                format!("gateway {gw} is {br}'s address")
            } else {
                format!("gateway {gw} is not an address of {br} (a router elsewhere on the bridge?)")
            },
        )
        .ev(format!("{br}: {}", b.ips.join(", ")))
        .cmd(format!("ip addr show {br}")),
    ]
}

/// `address.same_subnet`: the peer's address is in the target's subnet.
pub(super) fn same_subnet(c: &PairCtx<'_>) -> Vec<Finding> {
    let Some(s) = &c.sides else {
        return Vec::new();
    };
    let Some((tn, pip)) = &s.addrs else {
        return Vec::new();
    };
    let (ti, pi, same) = (s.ti, s.pi, s.same);
    let inside = tn.contains(pip);
    vec![
        finding(
            if inside || !same {
                Status::Pass
            } else {
                Status::Fail
            },
            if inside {
                format!("{pip} is in {tn}")
            } else if same {
                format!("{pip} is outside {tn} although both share a bridge: they cannot talk directly")
            } else {
                format!("{pip} is outside {tn}: reached through the gateway")
            },
        )
        .ev(format!(
            "{} {}: {}; {} {}: {}",
            s.tv.label,
            ti.iface.name,
            ti.ips.join(","),
            s.pv.label,
            pi.iface.name,
            pi.ips.join(",")
        ))
        .cmd(in_ns(s.tns, &format!("ip addr show {}", ti.iface.name)))
        .cmd(in_ns(s.pns, &format!("ip addr show {}", pi.iface.name)))
        .hint("put both in the bridge's subnet"),
    ]
}

/// `address.duplicate_ip`: neither address of the pair is held by another interface
/// on their L2 segment.
pub(super) fn duplicate_ip(c: &PairCtx<'_>) -> Vec<Finding> {
    let Some(s) = &c.sides else {
        return Vec::new();
    };
    let Some((tn, pip)) = &s.addrs else {
        return Vec::new();
    };
    let (ti, pi, topo) = (s.ti, s.pi, c.topo);
    // Duplicate addresses on the pair's L2 segment: every interface behind a port
    // of the same bridge, and the bridge itself. The same address in a netns that
    // is on no shared segment (another lab, another world, a nested host) cannot
    // answer ARP here, so it is no conflict.
    let wanted = |ip: Ipv4Addr| ip == *pip || ip == tn.addr();
    let segments: Vec<&String> = [&ti.bridge, &pi.bridge].into_iter().flatten().collect();
    let mut holders: Vec<String> = Vec::new();
    for v in &topo.netns {
        for i in &v.ifaces {
            let on_segment = match &i.bridge {
                Some(b) => segments.contains(&b),
                None => i.iface == ti.iface || i.iface == pi.iface,
            };
            if on_segment {
                for n in v4_nets(&i.ips).into_iter().filter(|n| wanted(n.addr())) {
                    holders.push(format!("{} on {} in {}", n.addr(), i.iface.name, v.label));
                }
            }
        }
    }
    for b in topo.bridges.iter().filter(|b| segments.contains(&&b.iface.name)) {
        for n in v4_nets(&b.ips).into_iter().filter(|n| wanted(n.addr())) {
            holders.push(format!("{} on bridge {} in host", n.addr(), b.iface.name));
        }
    }
    let dup = holders.len() > 2 || tn.addr() == *pip;
    vec![
        finding(
            if dup { Status::Fail } else { Status::Pass },
            if dup {
                "an address of the pair is held more than once: ARP answers come from the wrong host"
                    .to_string()
            } else {
                "each address is held once".to_string()
            },
        )
        .ev(holders.join("; "))
        .cmd("ip -br addr (in each netns on the bridge)"),
    ]
}
