//! `stats`: the counters of the interface and its host veth show no drops.

use super::ctx::Ctx;
use super::{Finding, Status, finding, in_ns};

/// `stats.drops`: no packets dropped on the interface or its host veth.
pub(super) fn drops(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, v, _)) = c.bridge() else {
        return Vec::new();
    };
    let (name, hv) = (a.name, v.hv);
    let c_stats = a.ns.link(a.i.iface.ifindex).and_then(|l| l.stats);
    let h_stats = v.hl.and_then(|l| l.stats);
    let drops = |s: Option<crate::model::Stats>| s.map_or(0, |s| s.rx_dropped + s.tx_dropped);
    let total = drops(c_stats) + drops(h_stats);
    vec![
        finding(
            if total > 0 { Status::Warn } else { Status::Pass },
            if total > 0 {
                format!("{total} packets dropped on {name} / {}", hv.name)
            } else {
                format!("no drops on {name} or {}", hv.name)
            },
        )
        .ev(format!(
            "{name}: rx_dropped {} tx_dropped {}; {}: rx_dropped {} tx_dropped {}",
            c_stats.map_or(0, |s| s.rx_dropped),
            c_stats.map_or(0, |s| s.tx_dropped),
            hv.name,
            h_stats.map_or(0, |s| s.rx_dropped),
            h_stats.map_or(0, |s| s.tx_dropped)
        ))
        .cmd(in_ns(a.ns, &format!("ip -s link show {name}")))
        .cmd(format!("ethtool -S {}", hv.name)),
    ]
}
