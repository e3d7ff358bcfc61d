//! `path`: the pair sits on one bridge, and the flow engine's trace of a ping between
//! them passes every hop.

use super::ctx::PairCtx;
use super::{Finding, Status, finding};

/// `path.same_bridge`: target and peer sit on the same bridge (or why they cannot be
/// compared).
pub(super) fn same_bridge(c: &PairCtx<'_>) -> Vec<Finding> {
    let Some(s) = &c.sides else {
        return vec![finding(
            Status::Skip,
            "target or peer has no interface to compare",
        )];
    };
    let (ti, pi, same) = (s.ti, s.pi, s.same);
    // A peer on another node: the host routes its address through a VXLAN device.
    let across = (!same && pi.bridge.is_none())
        .then(|| {
            let (_, to) = s.addrs?;
            let host = c.snap.host_netns()?;
            super::overlay_tunnels(host)
                .into_iter()
                .find_map(|(d, v, routes)| {
                    routes
                        .iter()
                        .any(|r| r.dst.parse::<ipnet::Ipv4Net>().is_ok_and(|n| n.contains(&to)))
                        .then(|| (d.name.clone(), v.vni))
                })
        })
        .flatten();
    if let Some((dev, vni)) = across {
        return vec![
            finding(
                Status::Pass,
                format!(
                    "{} is on {} and {} on another node: the host routes it through the overlay ({dev}, VNI {})",
                    s.tv.label,
                    ti.bridge.as_deref().unwrap_or("no bridge"),
                    s.pv.label,
                    vni.map_or("?".into(), |n| n.to_string())
                ),
            )
            .cmd(format!("ip route get {}", s.addrs.map(|(_, to)| to.to_string()).unwrap_or_default())),
        ];
    }
    vec![
        finding(
            if same { Status::Pass } else { Status::Warn },
            if same {
                format!("both on {}", ti.bridge.as_deref().unwrap_or("?"))
            } else {
                format!(
                    "{} is on {} and {} on {}: traffic is routed, not bridged",
                    s.tv.label,
                    ti.bridge.as_deref().unwrap_or("no bridge"),
                    s.pv.label,
                    pi.bridge.as_deref().unwrap_or("no bridge")
                )
            },
        )
        .cmd("bridge link show"),
    ]
}

/// `path.trace`: the engine's ping from the target to the peer, and its reply, pass
/// every hop; the evidence is every hop that did not simply allow it.
pub(super) fn trace(c: &PairCtx<'_>) -> Vec<Finding> {
    use crate::flow::{HopVerdict, Reach};
    let Some(s) = &c.sides else {
        return Vec::new();
    };
    let (t, p) = (c.t, c.p);
    let tr = match &s.trace {
        Ok(tr) => tr,
        Err(e) => return vec![finding(Status::Skip, format!("no trace: {e}"))],
    };
    let status = match tr.verdict {
        Reach::Reachable => Status::Pass,
        Reach::Unreachable => Status::Fail,
        Reach::Ambiguous => Status::Warn,
    };
    let mut f = finding(
        status,
        match tr.verdict {
            Reach::Reachable => format!(
                "a ping from {} to {} ({}) and its reply pass every hop",
                t.target, p.target, tr.flow.dst_addr
            ),
            _ => tr.summary.clone(),
        },
    )
    .cmd(format!("ctnet-diag trace {} {}", t.target, p.target));
    for h in tr.hops.iter().chain(&tr.reply) {
        if h.verdict != HopVerdict::Allow {
            f = f.ev(hop_line(h));
        }
    }
    vec![f]
}

/// One hop as evidence: `forward/filter/FORWARD in host: drop by -A FORWARD ... [3 packets]`.
pub(super) fn hop_line(h: &crate::flow::Hop) -> String {
    let verdict = format!("{:?}", h.verdict).to_lowercase();
    let rule = h
        .rule
        .as_deref()
        .map(|r| format!(" by `{r}`"))
        .unwrap_or_default();
    let counters = h
        .rule_ref
        .as_ref()
        .and_then(|r| r.counters)
        .map(|c| format!(" [{} packets]", c.packets))
        .unwrap_or_default();
    format!(
        "{} in {}: {verdict}{rule}{counters} ({})",
        h.step, h.netns, h.detail
    )
}
