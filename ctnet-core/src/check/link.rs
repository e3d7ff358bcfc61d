//! `link`: the container interface, its veth peer and the host end are there and up.

use super::ctx::Ctx;
use super::{Finding, Status, finding, in_ns};
use crate::vocab::LinkKind;
use crate::vocab::OperState;

/// `link.iface_up`: the container interface is up, both administratively and
/// operationally.
pub(super) fn iface_up(c: &Ctx<'_>) -> Vec<Finding> {
    let Some(a) = c.iface() else {
        return Vec::new();
    };
    let (i, name, ns) = (a.i, a.name, a.ns);
    let up = i.up && i.operstate != OperState::Down && i.operstate != OperState::LowerLayerDown;
    vec![
        finding(
            if up { Status::Pass } else { Status::Fail },
            if up {
                format!("{name} is up")
            } else {
                format!(
                    "{name} is {}{}",
                    if i.up { "" } else { "administratively down, " },
                    i.operstate
                )
            },
        )
        .ev(format!(
            "{name} in {}: admin {}, operstate {}",
            a.view.label,
            if i.up { "up" } else { "down" },
            i.operstate
        ))
        .cmd(in_ns(ns, &format!("ip link show {name}")))
        .hint(if i.up {
            "the other end of the veth is down: bring the host veth up".to_string()
        } else {
            format!("{} set {name} up", in_ns(ns, "ip link"))
        }),
    ]
}

/// `link.peer_found`: the interface is one end of a veth whose other end is in the host.
pub(super) fn peer_found(c: &Ctx<'_>) -> Vec<Finding> {
    let Some(a) = c.iface() else {
        return Vec::new();
    };
    let (i, name, ns) = (a.i, a.name, a.ns);
    let Some(v) = &a.veth else {
        // A tap in a netns of another user namespace: a rootless container whose
        // slirp4netns or pasta serves it from user space. No peer is the truth there.
        if i.kind == Some(LinkKind::Tun) {
            let rootless = a.ns.userns_uid.filter(|u| *u != 0);
            return vec![
                finding(
                    Status::Skip,
                    format!(
                        "{name} is a tap served in user space{}: no veth, bridge or host-side checks apply; \
                         its traffic leaves the host as that process's own sockets",
                        match rootless {
                            Some(uid) => format!(" (rootless, uid {uid}: slirp4netns or pasta)"),
                            None => " (slirp4netns, pasta or a VPN daemon)".into(),
                        }
                    ),
                )
                .cmd(in_ns(ns, &format!("ip -d link show {name}")))
                .cmd("ps -o pid,user,args -C slirp4netns,pasta"),
            ];
        }
        let f = match &i.peer {
            Some(p) => finding(
                Status::Fail,
                format!("the peer of {name} is not a host veth: {p:?}"),
            ),
            None => finding(
                if i.parent.is_some() {
                    Status::Skip
                } else {
                    Status::Fail
                },
                match &i.parent {
                    Some(parent) => format!(
                        "{name} is a {} on host device {parent}: no veth or bridge",
                        i.kind.as_ref().map_or("link", LinkKind::as_str)
                    ),
                    None => format!("{name} has no peer in the host netns"),
                },
            ),
        };
        return vec![f.cmd(in_ns(ns, &format!("ip -d link show {name}")))];
    };
    let hv = v.hv;
    vec![
        finding(
            Status::Pass,
            format!("{name} is one end of a veth whose host end is {}", hv.name),
        )
        .ev(format!(
            "{name} @if{} in {}; host {} if{}",
            hv.ifindex, a.view.label, hv.name, hv.ifindex
        ))
        .cmd(in_ns(ns, &format!("ip -d link show {name}")))
        .cmd(format!("ip -d link show {}", hv.name)),
    ]
}

/// `link.host_veth_up`: the host end of the veth is up.
pub(super) fn host_veth_up(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((_, v)) = c.veth() else {
        return Vec::new();
    };
    let (hv, hl) = (v.hv, v.hl);
    let host_up = hl.is_some_and(|l| l.is_up());
    vec![
        finding(
            if host_up { Status::Pass } else { Status::Fail },
            if host_up {
                format!("host veth {} is up", hv.name)
            } else {
                format!("host veth {} is down: nothing crosses it", hv.name)
            },
        )
        .ev(format!(
            "{} in host: operstate {}",
            hv.name,
            hl.map_or("missing", |l| l.operstate.as_str())
        ))
        .cmd(format!("ip link show {}", hv.name))
        .hint(format!("ip link set {} up", hv.name)),
    ]
}
