//! `mtu`: the interface, its host veth and the bridge agree on the MTU.

use super::ctx::Ctx;
use super::{Finding, Status, finding, in_ns};

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
