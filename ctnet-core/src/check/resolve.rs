//! `resolve`: the target has a netns of its own (or says whose it shares) with an
//! interface toward the host.

use super::ctx::{Ctx, Unresolved};
use super::{Finding, Status, finding, in_ns};
use crate::model::Snapshot;
use crate::target::Resolved;

/// `resolve.netns`: which netns the checks run on, or why they cannot run.
pub(super) fn netns(c: &Ctx<'_>) -> Vec<Finding> {
    let t = c.t;
    let f = match &c.at {
        Err(Unresolved::NoNetns) => finding(
            Status::Fail,
            t.note
                .clone()
                .unwrap_or_else(|| format!("{} has no netns", t.target)),
        )
        .hint("start the container, or check the name with `ctnet-diag show`"),
        Err(Unresolved::HostNetns) => finding(
            Status::Skip,
            t.note
                .clone()
                .unwrap_or_else(|| format!("{} is in the host netns: no container path to check", t.target)),
        ),
        Err(Unresolved::NotInSnapshot) => finding(Status::Fail, "the target's netns is not in the snapshot"),
        Err(Unresolved::OnlyLo { view, ns }) => finding(
            Status::Fail,
            format!("{} has only lo: no interface toward anything", view.label),
        )
        .ev(format!("netns {}: only lo", view.label))
        .cmd(in_ns(ns, "ip link"))
        .hint(
            t.note
                .clone()
                .unwrap_or_else(|| "attach the container to a network".into()),
        ),
        Ok(a) => resolved_netns(c.snap, t, a.key, &a.view.label, a.name),
    };
    vec![f]
}

/// The passing `resolve.netns`: which netns the checks run on and, when containers
/// share it (`--network container:NAME`), whose it is, so a report on a sidecar is not
/// read as a report on a netns of its own.
fn resolved_netns(
    snap: &Snapshot,
    t: &Resolved,
    key: crate::netns::NetnsKey,
    label: &str,
    iface: &str,
) -> Finding {
    let me = t.container.as_ref();
    let others: Vec<&str> = snap
        .containers_in(key)
        .filter(|c| c.is_running() && me.is_none_or(|m| m.id != c.id))
        .map(|c| c.name.as_str())
        .collect();
    let summary = match me.and_then(|c| c.shares_netns_of.as_deref().map(|o| (c, o))) {
        Some((c, owner)) => format!(
            "container {} shares the netns of container {owner} (--network container:{owner}): \
             the checks run on {owner}'s netns {label} ({iface})",
            c.name
        ),
        None if !others.is_empty() => format!(
            "{} uses netns {label} ({iface}), shared with container(s) {}",
            t.target,
            others.join(", ")
        ),
        None => format!("{} uses netns {label} ({iface})", t.target),
    };
    let mut f = finding(Status::Pass, summary);
    if let Some(c) = me.filter(|c| c.shares_netns_of.is_some()) {
        f = f.ev(format!("container {}: network mode {}", c.name, c.network_mode));
        if matches!(c.runtime.as_str(), "docker" | "podman") {
            f = f.cmd(format!(
                "{} inspect -f '{{{{.HostConfig.NetworkMode}}}}' {}",
                c.runtime, c.name
            ));
        }
    }
    if !others.is_empty() {
        f = f.ev(format!(
            "netns {label}: also used by container(s) {}",
            others.join(", ")
        ));
    }
    f
}
