//! `fdb`: the bridge learned each container's MAC on that container's own port.

use super::ctx::{Ctx, PairCtx};
use super::{Finding, Status, finding};

/// `fdb.own_mac`: the bridge learned the interface's MAC on its host veth.
pub(super) fn own_mac(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, v, b)) = c.bridge() else {
        return Vec::new();
    };
    let Some(mac) = &a.i.mac else {
        return Vec::new();
    };
    let (name, hv, br) = (a.name, v.hv, b.br);
    let f = match (&a.i.fdb, b.bv) {
        (_, Some(b)) if b.ageing_time_cs == 0 => {
            finding(Status::Skip, format!("{br} keeps no learned MAC (ageing 0)"))
        }
        (Some(hit), _) if hit.port == hv.name => {
            finding(Status::Pass, format!("{br} learned {mac} on {}", hit.port))
        }
        (Some(hit), _) => finding(
            Status::Fail,
            format!(
                "{br} learned {mac} on {}, not on {}: frames for it go to the wrong port",
                hit.port, hv.name
            ),
        )
        .hint(format!("bridge fdb del {mac} dev {} master", hit.port)),
        (None, _) => finding(
            Status::Warn,
            format!("{br} has not learned {mac}: no traffic from it lately (or learning is off)"),
        )
        .hint("send traffic from the container, then check again"),
    };
    vec![
        f.ev(format!("MAC {mac} of {name}"))
            .cmd(format!("bridge fdb show br {br} | grep -i {mac}")),
    ]
}

/// `fdb.peer_mac`: on a shared bridge, the bridge learned the peer's MAC on the
/// peer's port.
pub(super) fn peer_mac(c: &PairCtx<'_>) -> Vec<Finding> {
    let Some(s) = c.sides.as_ref().filter(|s| s.same) else {
        return Vec::new();
    };
    let pi = s.pi;
    let br = s.ti.bridge.clone().unwrap_or_default();
    let f = match (&pi.fdb, &pi.host_veth) {
        (Some(hit), Some(hv)) if hit.port == hv.name => finding(
            Status::Pass,
            format!("{br} learned the peer's MAC on {}", hit.port),
        ),
        (Some(hit), Some(hv)) => finding(
            Status::Fail,
            format!("{br} learned the peer's MAC on {}, not on {}", hit.port, hv.name),
        ),
        _ => finding(
            Status::Warn,
            format!("{br} has not learned the peer's MAC (no recent traffic, or ageing 0)"),
        ),
    };
    vec![f.cmd(format!("bridge fdb show br {br}"))]
}
