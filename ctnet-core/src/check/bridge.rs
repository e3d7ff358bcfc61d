//! `bridge`: the host veth is a forwarding port of a bridge that is up and learns.

use super::ctx::Ctx;
use super::{Finding, Status, finding};
use crate::vocab::OperState;
use crate::vocab::PortState;

/// `bridge.attached`: the host veth is a port of a bridge.
pub(super) fn attached(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((_, v)) = c.veth() else {
        return Vec::new();
    };
    let hv = v.hv;
    let Some(b) = &v.bridge else {
        return vec![
            finding(
                Status::Fail,
                format!("host veth {} is on no bridge: frames go nowhere", hv.name),
            )
            .ev(format!("{} has no master", hv.name))
            .cmd(format!("ip -d link show {}", hv.name))
            .cmd("bridge link show")
            .hint(format!("ip link set {} master <bridge>", hv.name)),
        ];
    };
    let br = b.br;
    vec![
        finding(Status::Pass, format!("{} is a port of {br}", hv.name))
            .ev(format!("{} master {br}", hv.name))
            .cmd(format!("bridge link show dev {}", hv.name)),
    ]
}

/// `bridge.port_forwarding`: the port is in STP state forwarding.
pub(super) fn port_forwarding(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, v, b)) = c.bridge() else {
        return Vec::new();
    };
    let (hv, br) = (v.hv, b.br);
    let port = a.i.port_state.as_ref().map_or("unknown", PortState::as_str);
    vec![
        finding(
            if a.i.port_state == Some(PortState::Forwarding) {
                Status::Pass
            } else {
                Status::Fail
            },
            format!("port {} on {br} is {port}", hv.name),
        )
        .ev(format!("{} state {port}", hv.name))
        .cmd(format!("bridge link show dev {}", hv.name))
        .hint("a port is disabled while it is down and blocking when STP blocks it: bring it up, check STP"),
    ]
}

/// `bridge.up`: the bridge is up.
pub(super) fn up(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((_, _, bridge)) = c.bridge() else {
        return Vec::new();
    };
    let Some(b) = bridge.bv else {
        return Vec::new();
    };
    let br = bridge.br;
    let bup = b.up && b.operstate != OperState::Down;
    vec![
        finding(
            if bup { Status::Pass } else { Status::Fail },
            format!("bridge {br} is {}", if bup { "up" } else { "down" }),
        )
        .ev(format!(
            "{br}: admin {}, operstate {}",
            if b.up { "up" } else { "down" },
            b.operstate
        ))
        .cmd(format!("ip link show {br}"))
        .hint(format!("ip link set {br} up")),
    ]
}

/// `bridge.ageing`: the bridge remembers the MACs it learns.
pub(super) fn ageing(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((_, _, bridge)) = c.bridge() else {
        return Vec::new();
    };
    let Some(b) = bridge.bv else {
        return Vec::new();
    };
    let br = bridge.br;
    vec![
        finding(
            if b.ageing_time_cs == 0 {
                Status::Warn
            } else {
                Status::Pass
            },
            if b.ageing_time_cs == 0 {
                format!("{br} has ageing time 0: it forgets every MAC at once and floods every frame")
            } else {
                format!("{br} keeps learned MACs for {} s", b.ageing_time_cs / 100)
            },
        )
        .ev(format!("{br} ageing_time {} cs", b.ageing_time_cs))
        .cmd(format!("ip -d link show {br} | grep -o 'ageing_time [0-9]*'"))
        .hint(format!("ip link set {br} type bridge ageing_time 30000")),
    ]
}
