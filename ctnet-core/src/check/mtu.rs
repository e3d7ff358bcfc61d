//! `mtu`: the interface, its host veth and the bridge agree on the MTU.

use super::ctx::Ctx;
use super::{Finding, Status, finding, in_ns};
use crate::vocab::LinkKind;

/// `mtu.path`: one MTU along interface, host veth and bridge.
pub(super) fn path(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, v, b)) = c.bridge() else {
        return Vec::new();
    };
    let (name, hv, br) = (a.name, v.hv, b.br);
    let mtus = [
        (name.to_string(), a.i.mtu),
        (hv.name.clone(), v.hl.and_then(|l| l.mtu)),
        (
            br.to_string(),
            b.bv.and_then(|b| a.host.link(b.iface.ifindex))
                .and_then(|l| l.mtu),
        ),
    ];
    let known: Vec<u32> = mtus.iter().filter_map(|m| m.1).collect();
    let same = known.windows(2).all(|w| w[0] == w[1]);
    vec![
        finding(
            if same { Status::Pass } else { Status::Warn },
            if same {
                format!(
                    "MTU {} along {name} -> {} -> {br}",
                    known.first().copied().unwrap_or(0),
                    hv.name
                )
            } else {
                "MTUs differ along the path: large packets are dropped or fragmented".to_string()
            },
        )
        .ev(mtus
            .iter()
            .map(|(n, m)| format!("{n} mtu {}", m.map_or("?".into(), |m| m.to_string())))
            .collect::<Vec<_>>()
            .join(", "))
        .cmd(in_ns(a.ns, &format!("ip link show {name}")))
        .cmd(format!("ip link show {}", hv.name))
        .hint("set one MTU on the container interface, its veth and the bridge"),
    ]
}

/// `mtu.uplink`: the interface the host's default route leaves through (a VPN, a tunnel,
/// a cloud NIC) carries packets as large as the container sends. Below that, every
/// large packet needs path-MTU discovery (an ICMP "fragmentation needed" back to the
/// container), and where that ICMP is filtered TCP stalls after the handshake.
pub(super) fn uplink(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, _)) = c.bridge() else {
        return Vec::new();
    };
    let host = a.host;
    let Some(def) = host
        .routes
        .iter()
        .find(|r| r.family == "inet" && r.table == 254 && r.dst == "default")
    else {
        return Vec::new();
    };
    let Some(up) = def.oif.and_then(|i| host.link(i)) else {
        return Vec::new();
    };
    let (Some(sent), Some(carried)) = (a.i.mtu, up.mtu) else {
        return vec![finding(Status::Skip, "an MTU was not read")];
    };
    let kind = up.kind.as_ref().map_or("device", LinkKind::as_str);
    let status = if carried < sent {
        Status::Warn
    } else {
        Status::Pass
    };
    let mut f = finding(
        status,
        if status == Status::Pass {
            format!("the uplink {} ({kind}) carries MTU {carried} >= {sent} of {}", up.name, a.name)
        } else {
            format!(
                "the uplink {} ({kind}) has MTU {carried}, below the {sent} {} sends: large packets rely on path-MTU discovery",
                up.name, a.name
            )
        },
    )
    .ev(format!(
        "{} in {} mtu {sent}; host default route dev {} ({kind}) mtu {carried}",
        a.name, a.view.label, up.name
    ))
    .cmd(format!("ip route show default; ip link show {}", up.name))
    .cmd(in_ns(a.ns, &format!("ip link show {}", a.name)));
    if status > Status::Pass {
        f = f.hint(format!(
            "set the container network's MTU to {carried} (Docker: \"mtu\" in daemon.json or --opt \
             com.docker.network.driver.mtu), or clamp TCP MSS on the uplink: iptables -t mangle -A FORWARD \
             -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu"
        ));
    }
    vec![f]
}

/// Bytes VXLAN adds to each frame: outer IPv4 (20) or IPv6 (40), UDP (8), VXLAN (8) and
/// the inner Ethernet header (14).
fn vxlan_overhead(v: &crate::model::VxlanAttrs) -> u32 {
    let v6 = v.local.or(v.remote).or(v.group).is_some_and(|a| a.is_ipv6());
    if v6 { 70 } else { 50 }
}

/// `mtu.overlay`: every VXLAN device the host routes container subnets through (an
/// overlay toward other nodes: flannel, Calico VXLAN, Cilium in tunnel mode) fits its
/// encapsulation in the underlay's MTU, and the container sends nothing larger than the
/// overlay carries. Either way round, large packets are dropped silently between nodes
/// while small ones (ping, DNS, the TCP handshake) pass. Nothing is said on a host with
/// no such device.
pub(super) fn overlay(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, _)) = c.bridge() else {
        return Vec::new();
    };
    let host = a.host;
    let mut out = Vec::new();
    for (d, v, routes) in super::overlay::tunnels(host) {
        let routed: Vec<&str> = routes.iter().map(|r| r.dst.as_str()).collect();
        let over = vxlan_overhead(v);
        let under = v.underlay.and_then(|i| host.link(i));
        let mut problems = Vec::new();
        let mut ev = vec![format!(
            "{} ({}) mtu {} routes {}",
            d.name,
            v.summary(),
            d.mtu.map_or("?".into(), |m| m.to_string()),
            routed.join(", ")
        )];
        if let (Some(mtu), Some(u)) = (d.mtu, under) {
            ev.push(format!(
                "underlay {} mtu {}",
                u.name,
                u.mtu.map_or("?".into(), |m| m.to_string())
            ));
            if let Some(umtu) = u.mtu
                && mtu + over > umtu
            {
                problems.push(format!(
                    "{} carries MTU {mtu}, but {mtu} + {over} bytes of VXLAN is more than the {umtu} of its underlay {}: \
                     encapsulated packets that large are dropped",
                    d.name, u.name
                ));
            }
        }
        if let (Some(sent), Some(mtu)) = (a.i.mtu, d.mtu)
            && sent > mtu
        {
            problems.push(format!(
                "{} sends up to {sent} bytes, more than the {mtu} {} carries toward {}",
                a.name,
                d.name,
                routed.join(", ")
            ));
        }
        let (status, summary) = super::overlay::verdict(problems, || {
            format!(
                "{} (VNI {}) carries {} + {over} bytes of VXLAN within its underlay",
                d.name,
                v.vni.map_or("?".into(), |n| n.to_string()),
                d.mtu.map_or("?".into(), |m| m.to_string())
            )
        });
        let mut f = finding(status, summary)
            .ev(ev.join("; "))
            .cmd(format!("ip -d link show {}", d.name))
            .cmd(in_ns(a.ns, &format!("ip link show {}", a.name)));
        if let Some(u) = under {
            f = f.cmd(format!("ip link show {}", u.name));
        }
        if status > Status::Pass {
            f = f.hint(format!(
                "the overlay's MTU is the underlay's minus {over}: set it on {} and on every container network \
                 that routes through it (flannel, Calico and Cilium derive it from the underlay unless it is \
                 configured by hand)",
                d.name
            ));
        }
        out.push(f);
    }
    out
}
