//! Guided checks: the container-networking runbook as pure functions of a [`Snapshot`],
//! its [`Topology`] and the resolved target (and peer). Each check yields a [`Finding`]
//! with the evidence it read, where it read it, and the manual commands that show the
//! same on a live host. A check that cannot run says `skip` and why, never `pass`.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::{NetnsState, Snapshot};
use crate::netns::NetnsRef;
use crate::target::Resolved;
use crate::topology::{NetnsIface, Topology};

/// Schema of a check report.
pub const CHECK_SCHEMA: &str = "ctnet.check/v1";

/// Outcome of one check, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Could not run (and says why).
    Skip,
    /// Fine.
    Pass,
    /// Works, but something is off.
    Warn,
    /// Broken.
    Fail,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable dotted id, e.g. `fdb.own_mac`.
    pub id: String,
    /// One of `resolve link bridge address route arp fdb mtu firewall nat sysctl stats path`.
    pub category: String,
    /// Outcome.
    pub status: Status,
    /// One sentence.
    pub summary: String,
    /// The facts read, each with the interface/netns it came from.
    pub evidence: Vec<String>,
    /// Manual commands that show the same on a live host.
    pub commands: Vec<String>,
    /// What to do.
    pub hint: Option<String>,
}

/// A check run: verdict first, then every finding, failures first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`CHECK_SCHEMA`].
    pub schema: String,
    /// The target as given.
    pub target: String,
    /// The peer as given.
    pub peer: Option<String>,
    /// `pass`, `warn` or `fail`: the worst finding (skips do not count).
    pub verdict: Status,
    /// Findings, worst first.
    pub checks: Vec<Finding>,
}

/// The catalog: every check id, its category and what it looks at.
pub const CATALOG: &[(&str, &str, &str)] = &[
    (
        "resolve.netns",
        "resolve",
        "the target has a netns with an interface toward the host",
    ),
    (
        "link.iface_up",
        "link",
        "the container interface is administratively and operationally up",
    ),
    (
        "link.peer_found",
        "link",
        "the veth's other end is found (IFLA_LINK + link-netnsid)",
    ),
    ("link.host_veth_up", "link", "the host end of the veth is up"),
    ("bridge.attached", "bridge", "the host veth is a port of a bridge"),
    (
        "bridge.port_forwarding",
        "bridge",
        "the bridge port is in STP state forwarding",
    ),
    ("bridge.up", "bridge", "the bridge is up"),
    (
        "bridge.ageing",
        "bridge",
        "the bridge remembers learned MACs (ageing time above 0)",
    ),
    ("address.ipv4", "address", "the interface has an IPv4 address"),
    (
        "route.default",
        "route",
        "the netns has a default route through the interface",
    ),
    (
        "route.gateway_reachable",
        "route",
        "the default gateway is inside a subnet of the interface",
    ),
    (
        "address.gateway_on_bridge",
        "address",
        "the gateway is an address of the bridge",
    ),
    (
        "arp.gateway",
        "arp",
        "the ARP entry for the gateway is resolved to the bridge's MAC",
    ),
    (
        "fdb.own_mac",
        "fdb",
        "the bridge learned the interface's MAC on its own port",
    ),
    (
        "mtu.path",
        "mtu",
        "interface, host veth and bridge agree on the MTU",
    ),
    (
        "stats.drops",
        "stats",
        "no packets dropped on the interface or the host veth",
    ),
    (
        "sysctl.ip_forward",
        "sysctl",
        "the host forwards IPv4 (needed for traffic leaving the bridge)",
    ),
    (
        "nat.masquerade",
        "nat",
        "traffic from the container's subnet is masqueraded on egress",
    ),
    (
        "firewall.forward",
        "firewall",
        "every FORWARD base chain (iptables-nft, iptables-legacy, native nft) lets the container's egress through, rules evaluated by the flow engine",
    ),
    (
        "path.same_bridge",
        "path",
        "target and peer sit on the same bridge",
    ),
    (
        "address.same_subnet",
        "address",
        "the peer's address is in the target's subnet",
    ),
    (
        "address.duplicate_ip",
        "address",
        "no other interface holds the peer's or the target's address",
    ),
    (
        "arp.peer_entry",
        "arp",
        "the target's ARP entry for the peer has the peer's MAC (and back)",
    ),
    (
        "fdb.peer_mac",
        "fdb",
        "the bridge learned the peer's MAC on the peer's port",
    ),
    (
        "firewall.bridged",
        "firewall",
        "with br_netfilter on, no netfilter hook on the traced path drops the pair's bridged traffic",
    ),
    (
        "path.trace",
        "path",
        "the flow engine's trace of a ping from the target to the peer and back passes every hop (routing, bridge, FDB, neighbours, sysctls, netfilter)",
    ),
    (
        "probe.path",
        "probe",
        "with --probe: pings from the target reach the peer (or gateway) and come back; names the last hop that saw them",
    ),
];

fn category(id: &str) -> &'static str {
    CATALOG.iter().find(|c| c.0 == id).map_or("path", |c| c.1)
}

fn finding(id: &str, status: Status, summary: impl Into<String>) -> Finding {
    Finding {
        id: id.into(),
        category: category(id).into(),
        status,
        summary: summary.into(),
        evidence: Vec::new(),
        commands: Vec::new(),
        hint: None,
    }
}

impl Finding {
    fn ev(mut self, e: impl Into<String>) -> Self {
        self.evidence.push(e.into());
        self
    }

    fn cmd(mut self, c: impl Into<String>) -> Self {
        self.commands.push(c.into());
        self
    }

    fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
}

/// How to run a command inside a netns by hand: `ip -n NAME`, or `nsenter -t PID -n`.
pub(crate) fn in_ns(ns: &NetnsState, cmd: &str) -> String {
    // `ip -n` and `ip netns exec` know /run/netns only (not Docker's netns directory).
    for r in &ns.refs {
        if let NetnsRef::Named { name, path } = r
            && (path.starts_with("/run/netns") || path.starts_with("/var/run/netns"))
        {
            return match cmd.strip_prefix("ip ") {
                Some(rest) => format!("ip -n {name} {rest}"),
                None => format!("ip netns exec {name} {cmd}"),
            };
        }
    }
    match ns.refs.first() {
        Some(NetnsRef::Named { path, .. } | NetnsRef::Path { path }) => {
            format!("nsenter --net={} {cmd}", path.display())
        }
        Some(NetnsRef::Pid { pid, .. }) => format!("nsenter -t {pid} -n {cmd}"),
        Some(NetnsRef::Current) | None => cmd.to_string(),
    }
}

fn v4_nets(ips: &[String]) -> Vec<Ipv4Net> {
    ips.iter().filter_map(|s| s.parse::<Ipv4Net>().ok()).collect()
}

/// The container-side interface a check looks at: the one the default route leaves
/// through, else the first with a host veth, else the first at all.
fn main_iface(view: &crate::topology::NetnsView) -> Option<&NetnsIface> {
    view.ifaces
        .iter()
        .find(|i| i.gateway.is_some() && i.host_veth.is_some())
        .or_else(|| view.ifaces.iter().find(|i| i.host_veth.is_some()))
        .or(view.ifaces.first())
}

fn firewall_rules(snap: &Snapshot) -> Vec<(&str, &crate::model::IptRule)> {
    snap.firewall
        .iter()
        .flat_map(|f| f.iptables.iter().filter(|d| d.family == "ip"))
        .flat_map(|d| d.tables.iter())
        .flat_map(|t| t.rules.iter().map(move |r| (t.name.as_str(), r)))
        .collect()
}

/// Whether an iptables MASQUERADE rule's `-s` covers `subnet`.
fn subnet_masqueraded(snap: &Snapshot, subnet: Ipv4Net) -> bool {
    firewall_rules(snap).iter().any(|(table, r)| {
        *table == "nat"
            && r.target.as_deref() == Some("MASQUERADE")
            && r.spec
                .split_whitespace()
                .skip_while(|w| *w != "-s")
                .nth(1)
                .and_then(|src| src.parse::<Ipv4Net>().ok())
                .is_some_and(|src| src.contains(&subnet.network()))
    })
}

fn forward_policy(snap: &Snapshot) -> Option<String> {
    snap.firewall
        .iter()
        .flat_map(|f| f.iptables.iter().filter(|d| d.family == "ip"))
        .flat_map(|d| d.tables.iter().filter(|t| t.name == "filter"))
        .flat_map(|t| t.chains.iter())
        .find(|c| c.name == "FORWARD")
        .and_then(|c| c.policy.clone())
}

/// The name used for "any interface but the bridge" when evaluating egress on a host
/// without a default route.
const UPLINK: &str = "(uplink)";

/// The outside address egress is evaluated toward (TEST-NET-3: never sent to, the
/// evaluation is static).
const EGRESS_PROBE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);

/// What the host's FORWARD hook does to `packet`, as the flow engine evaluates it
/// (every base chain of both iptables backends and native nft, typed matches): the
/// status, one sentence about `what`, and the hops as evidence.
fn forward_by_engine(
    snap: &Snapshot,
    packet: crate::netfilter::Packet,
    what: &str,
) -> (Status, String, Vec<String>) {
    use crate::flow::{Hook, HopVerdict};
    let (goes_on, hops) = crate::flow::host_hook(snap, Hook::Forward, packet);
    let evidence: Vec<String> = hops.iter().map(hop_line).collect();
    let quote = |h: &crate::flow::Hop| {
        let rule = h.rule.as_deref().unwrap_or("?");
        match h.rule_ref.as_ref().and_then(|r| r.counters) {
            Some(c) => format!("`{rule}` in {} ({} packets)", h.step, c.packets),
            None => format!("`{rule}` in {}", h.step),
        }
    };
    let may = hops.iter().find(|h| h.verdict == HopVerdict::May);
    if !goes_on {
        let h = hops.last().expect("a dropping hook has a hop");
        return match h.verdict {
            HopVerdict::May => (
                Status::Warn,
                format!("FORWARD may drop {what}: {}", h.detail),
                evidence,
            ),
            _ => (
                Status::Fail,
                format!("FORWARD drops {what}: {}", quote(h)),
                evidence,
            ),
        };
    }
    if let Some(h) = may {
        return (
            Status::Warn,
            format!("FORWARD may drop {what}: {}", h.detail),
            evidence,
        );
    }
    match hops.last() {
        Some(h) => (
            Status::Pass,
            format!("FORWARD accepts {what}: {}", quote(h)),
            evidence,
        ),
        None => (Status::Pass, format!("no FORWARD rules: {what} passes"), evidence),
    }
}

/// One hop as evidence: `forward/filter/FORWARD in host: drop by -A FORWARD ... [3 packets]`.
fn hop_line(h: &crate::flow::Hop) -> String {
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

/// Run the runbook for `target` (and `peer`).
pub fn run(snap: &Snapshot, topo: &Topology, target: &Resolved, peer: Option<&Resolved>) -> Report {
    let mut checks = single(snap, topo, target);
    if let Some(p) = peer {
        checks.extend(pair(snap, topo, target, p));
    }
    let mut r = Report {
        schema: CHECK_SCHEMA.into(),
        target: target.target.clone(),
        peer: peer.map(|p| p.target.clone()),
        verdict: Status::Pass,
        checks,
    };
    r.settle();
    r
}

impl Report {
    /// Add a finding (the probe's) and settle order and verdict again.
    pub fn add(&mut self, f: Finding) {
        self.checks.push(f);
        self.settle();
    }

    /// Worst first (stable), and the verdict is the worst status that is not a skip.
    fn settle(&mut self) {
        self.checks.sort_by_key(|c| std::cmp::Reverse(c.status));
        self.verdict = self
            .checks
            .iter()
            .map(|c| c.status)
            .filter(|s| *s != Status::Skip)
            .max()
            .unwrap_or(Status::Pass);
    }
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
    let mut f = finding("resolve.netns", Status::Pass, summary);
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

fn single(snap: &Snapshot, topo: &Topology, t: &Resolved) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(key) = t.netns else {
        out.push(
            finding(
                "resolve.netns",
                Status::Fail,
                t.note
                    .clone()
                    .unwrap_or_else(|| format!("{} has no netns", t.target)),
            )
            .hint("start the container, or check the name with `ctnet-diag show`"),
        );
        return out;
    };
    if key == snap.host {
        out.push(finding(
            "resolve.netns",
            Status::Skip,
            t.note
                .clone()
                .unwrap_or_else(|| format!("{} is in the host netns: no container path to check", t.target)),
        ));
        return out;
    }
    let (Some(view), Some(ns), Some(host)) = (
        topo.netns.iter().find(|n| n.key == key),
        snap.netns_by_key(key),
        snap.host_netns(),
    ) else {
        out.push(finding(
            "resolve.netns",
            Status::Fail,
            "the target's netns is not in the snapshot",
        ));
        return out;
    };
    let Some(i) = main_iface(view) else {
        out.push(
            finding(
                "resolve.netns",
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
        );
        return out;
    };
    let name = &i.iface.name;
    out.push(resolved_netns(snap, t, key, &view.label, name));

    // link
    let up = i.up && i.operstate != "down" && i.operstate != "lowerlayerdown";
    out.push(
        finding(
            "link.iface_up",
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
            view.label,
            if i.up { "up" } else { "down" },
            i.operstate
        ))
        .cmd(in_ns(ns, &format!("ip link show {name}")))
        .hint(if i.up {
            "the other end of the veth is down: bring the host veth up".to_string()
        } else {
            format!("{} set {name} up", in_ns(ns, "ip link"))
        }),
    );
    let Some(hv) = &i.host_veth else {
        let f = match &i.peer {
            Some(p) => finding(
                "link.peer_found",
                Status::Fail,
                format!("the peer of {name} is not a host veth: {p:?}"),
            ),
            None => finding(
                "link.peer_found",
                if i.parent.is_some() {
                    Status::Skip
                } else {
                    Status::Fail
                },
                match &i.parent {
                    Some(parent) => format!(
                        "{name} is a {} on host device {parent}: no veth or bridge",
                        i.kind.as_deref().unwrap_or("link")
                    ),
                    None => format!("{name} has no peer in the host netns"),
                },
            ),
        };
        out.push(f.cmd(in_ns(ns, &format!("ip -d link show {name}"))));
        return out;
    };
    out.push(
        finding(
            "link.peer_found",
            Status::Pass,
            format!("{name} is one end of a veth whose host end is {}", hv.name),
        )
        .ev(format!(
            "{name} @if{} in {}; host {} if{}",
            hv.ifindex, view.label, hv.name, hv.ifindex
        ))
        .cmd(in_ns(ns, &format!("ip -d link show {name}")))
        .cmd(format!("ip -d link show {}", hv.name)),
    );
    let hl = host.link(hv.ifindex);
    let host_up = hl.is_some_and(|l| l.is_up());
    out.push(
        finding(
            "link.host_veth_up",
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
    );

    // bridge
    let Some(br) = &i.bridge else {
        out.push(
            finding(
                "bridge.attached",
                Status::Fail,
                format!("host veth {} is on no bridge: frames go nowhere", hv.name),
            )
            .ev(format!("{} has no master", hv.name))
            .cmd(format!("ip -d link show {}", hv.name))
            .cmd("bridge link show")
            .hint(format!("ip link set {} master <bridge>", hv.name)),
        );
        return out;
    };
    out.push(
        finding(
            "bridge.attached",
            Status::Pass,
            format!("{} is a port of {br}", hv.name),
        )
        .ev(format!("{} master {br}", hv.name))
        .cmd(format!("bridge link show dev {}", hv.name)),
    );
    let port = i.port_state.as_deref().unwrap_or("unknown");
    out.push(
        finding(
            "bridge.port_forwarding",
            if port == "forwarding" {
                Status::Pass
            } else {
                Status::Fail
            },
            format!("port {} on {br} is {port}", hv.name),
        )
        .ev(format!("{} state {port}", hv.name))
        .cmd(format!("bridge link show dev {}", hv.name))
        .hint("a port is disabled while it is down and blocking when STP blocks it: bring it up, check STP"),
    );
    let bv = topo.bridges.iter().find(|b| &b.iface.name == br);
    if let Some(b) = bv {
        let bup = b.up && b.operstate != "down";
        out.push(
            finding(
                "bridge.up",
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
        );
        out.push(
            finding(
                "bridge.ageing",
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
        );
    }

    // address and route
    let nets = v4_nets(&i.ips);
    out.push(
        finding(
            "address.ipv4",
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
        .ev(format!("{name} addresses: {}", i.ips.join(", ")))
        .cmd(in_ns(ns, &format!("ip addr show {name}"))),
    );
    let default = ns
        .routes
        .iter()
        .find(|r| r.dst == "default" && r.family == "inet" && r.table == 254);
    match (default, i.gateway) {
        // Without a default route only the subnet is reachable: a failure when the host
        // masquerades the subnet (egress was meant to work), else maybe on purpose.
        (None, _) => out.push(
            finding(
                "route.default",
                if nets.first().is_some_and(|n| subnet_masqueraded(snap, n.trunc())) {
                    Status::Fail
                } else {
                    Status::Warn
                },
                "no IPv4 default route: only the local subnet is reachable",
            )
            .cmd(in_ns(ns, "ip route"))
            .hint("add one via the bridge's address: ip route add default via <gateway>"),
        ),
        (Some(r), None) => out.push(
            finding(
                "route.default",
                Status::Warn,
                format!("the default route does not leave through {name}"),
            )
            .ev(format!("default via {:?} dev if{:?}", r.gateway, r.oif))
            .cmd(in_ns(ns, "ip route")),
        ),
        (Some(_), Some(gw)) => {
            out.push(
                finding(
                    "route.default",
                    Status::Pass,
                    format!("default via {gw} dev {name}"),
                )
                .cmd(in_ns(ns, "ip route")),
            );
            let inside = match gw {
                IpAddr::V4(g) => nets.iter().any(|n| n.contains(&g)),
                IpAddr::V6(_) => true,
            };
            out.push(
                finding(
                    "route.gateway_reachable",
                    if inside { Status::Pass } else { Status::Fail },
                    if inside {
                        format!("gateway {gw} is in {name}'s subnet")
                    } else {
                        format!("gateway {gw} is outside every subnet of {name}: the route cannot be used")
                    },
                )
                .ev(format!("{name}: {}; gateway {gw}", i.ips.join(", ")))
                .cmd(in_ns(ns, &format!("ip route get {gw}")))
                .hint("give the interface an address in the gateway's subnet"),
            );
            if let (Some(b), IpAddr::V4(g)) = (bv, gw) {
                let on_bridge = v4_nets(&b.ips).iter().any(|n| n.addr() == g);
                out.push(
                    finding(
                        "address.gateway_on_bridge",
                        if on_bridge { Status::Pass } else { Status::Warn },
                        if on_bridge {
                            format!("gateway {gw} is {br}'s address")
                        } else {
                            format!(
                                "gateway {gw} is not an address of {br} (a router elsewhere on the bridge?)"
                            )
                        },
                    )
                    .ev(format!("{br}: {}", b.ips.join(", ")))
                    .cmd(format!("ip addr show {br}")),
                );
                // ARP for the gateway.
                let entry = ns
                    .neighbours
                    .iter()
                    .find(|n| n.ip == gw && Some(n.ifindex) == Some(i.iface.ifindex));
                let f = match entry {
                    None => finding(
                        "arp.gateway",
                        Status::Pass,
                        format!("no ARP entry for {gw} yet (resolved on first use)"),
                    ),
                    Some(n) if n.state == "failed" || n.state == "incomplete" => finding(
                        "arp.gateway",
                        Status::Fail,
                        format!("ARP for gateway {gw} is {}: no answer from it", n.state),
                    )
                    .ev(format!("{name}: {gw} {}", n.state))
                    .hint(
                        "the gateway does not answer ARP: check the bridge, the port and the gateway address",
                    ),
                    Some(n) if on_bridge && n.mac.is_some() && n.mac != b.mac => finding(
                        "arp.gateway",
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
                        "arp.gateway",
                        Status::Pass,
                        format!("{gw} is at {} ({})", n.mac.as_deref().unwrap_or("?"), n.state),
                    ),
                };
                out.push(f.cmd(in_ns(ns, &format!("ip neigh show {gw}"))));
            }
        }
    }

    // FDB: the interface's own MAC on its own port.
    if let Some(mac) = &i.mac {
        let f = match (&i.fdb, bv) {
            (_, Some(b)) if b.ageing_time_cs == 0 => finding(
                "fdb.own_mac",
                Status::Skip,
                format!("{br} keeps no learned MAC (ageing 0)"),
            ),
            (Some(hit), _) if hit.port == hv.name => finding(
                "fdb.own_mac",
                Status::Pass,
                format!("{br} learned {mac} on {}", hit.port),
            ),
            (Some(hit), _) => finding(
                "fdb.own_mac",
                Status::Fail,
                format!(
                    "{br} learned {mac} on {}, not on {}: frames for it go to the wrong port",
                    hit.port, hv.name
                ),
            )
            .hint(format!("bridge fdb del {mac} dev {} master", hit.port)),
            (None, _) => finding(
                "fdb.own_mac",
                Status::Warn,
                format!("{br} has not learned {mac}: no traffic from it lately (or learning is off)"),
            )
            .hint("send traffic from the container, then check again"),
        };
        out.push(
            f.ev(format!("MAC {mac} of {name}"))
                .cmd(format!("bridge fdb show br {br} | grep -i {mac}")),
        );
    }

    // MTU along the path.
    let mtus = [
        (name.clone(), i.mtu),
        (hv.name.clone(), hl.and_then(|l| l.mtu)),
        (
            br.clone(),
            bv.and_then(|b| host.link(b.iface.ifindex)).and_then(|l| l.mtu),
        ),
    ];
    let known: Vec<u32> = mtus.iter().filter_map(|m| m.1).collect();
    let same = known.windows(2).all(|w| w[0] == w[1]);
    out.push(
        finding(
            "mtu.path",
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
        .cmd(in_ns(ns, &format!("ip link show {name}")))
        .cmd(format!("ip link show {}", hv.name))
        .hint("set one MTU on the container interface, its veth and the bridge"),
    );

    // Drops.
    let c_stats = ns.link(i.iface.ifindex).and_then(|l| l.stats);
    let h_stats = hl.and_then(|l| l.stats);
    let drops = |s: Option<crate::model::Stats>| s.map_or(0, |s| s.rx_dropped + s.tx_dropped);
    let total = drops(c_stats) + drops(h_stats);
    out.push(
        finding(
            "stats.drops",
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
        .cmd(in_ns(ns, &format!("ip -s link show {name}")))
        .cmd(format!("ethtool -S {}", hv.name)),
    );

    // Egress: forwarding, NAT, FORWARD chain.
    if default.is_some() {
        let fwd = host.sysctls.ip_forward;
        // Forwarding off breaks egress that the host set up (a MASQUERADE for the
        // subnet); without one it may be on purpose (an internal network).
        let subnet = nets.first().map(|n| n.trunc());
        let egress_intended = subnet.is_some_and(|s| subnet_masqueraded(snap, s));
        out.push(
            finding(
                "sysctl.ip_forward",
                match fwd {
                    Some(1) => Status::Pass,
                    Some(_) if egress_intended => Status::Fail,
                    Some(_) => Status::Warn,
                    None => Status::Skip,
                },
                match fwd {
                    Some(1) => "the host forwards IPv4".to_string(),
                    Some(_) if egress_intended => {
                        "net.ipv4.ip_forward is 0 although the subnet is masqueraded: nothing leaves the bridge".to_string()
                    }
                    Some(_) => "net.ipv4.ip_forward is 0: the containers reach nothing beyond the bridge".to_string(),
                    None => "net.ipv4.ip_forward could not be read".to_string(),
                },
            )
            .ev(format!("host net.ipv4.ip_forward = {}", fwd.map_or("?".into(), |v| v.to_string())))
            .cmd("sysctl net.ipv4.ip_forward")
            .hint("sysctl -w net.ipv4.ip_forward=1"),
        );
        if snap.firewall.is_some() {
            let masq = firewall_rules(snap).into_iter().find(|(table, r)| {
                *table == "nat"
                    && r.target.as_deref() == Some("MASQUERADE")
                    && subnet.is_some_and(|s| {
                        r.spec
                            .split_whitespace()
                            .skip_while(|w| *w != "-s")
                            .nth(1)
                            .and_then(|src| src.parse::<Ipv4Net>().ok())
                            .is_some_and(|src| src.contains(&s.network()))
                    })
            });
            let nft_masq = snap
                .firewall
                .iter()
                .flat_map(|f| f.nft.iter())
                .flat_map(|t| t.rules.iter())
                .any(|r| r.verdict.as_deref() == Some("masquerade"));
            out.push(
                finding(
                    "nat.masquerade",
                    if masq.is_some() || nft_masq {
                        Status::Pass
                    } else {
                        Status::Warn
                    },
                    match (&masq, nft_masq) {
                        (Some((_, r)), _) => format!(
                            "masqueraded by `-A POSTROUTING {}` ({} packets)",
                            r.spec, r.packets
                        ),
                        (None, true) => "a native nftables masquerade rule exists".to_string(),
                        (None, false) => format!(
                            "nothing masquerades {}: replies from outside cannot find their way back",
                            subnet.map_or("the subnet".into(), |s| s.to_string())
                        ),
                    },
                )
                .cmd("iptables -t nat -S POSTROUTING -v")
                .hint(format!(
                    "iptables -t nat -A POSTROUTING -s {} ! -o {br} -j MASQUERADE",
                    subnet.map_or("<subnet>".into(), |s| s.to_string())
                )),
            );
            // Egress from the container's address through the host's uplink (the
            // default route's interface), to an address outside.
            let uplink = host
                .routes
                .iter()
                .find(|r| r.table == 254 && r.dst == "default" && r.family == "inet")
                .and_then(|r| r.oif)
                .and_then(|ix| host.link(ix))
                .map_or(UPLINK.to_string(), |l| l.name.clone());
            let src = nets
                .first()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |n| IpAddr::V4(n.addr()));
            let packet = crate::netfilter::Packet::tcp(src, 40000, IpAddr::V4(EGRESS_PROBE), 443)
                .iif(br)
                .oif(&uplink);
            let via = if uplink == UPLINK {
                format!("any interface but {br} (the host has no default route)")
            } else {
                uplink.clone()
            };
            let (status, summary, evidence) = forward_by_engine(
                snap,
                packet,
                &format!("tcp from {src} leaving {br} for {EGRESS_PROBE}:443 via {via}"),
            );
            let mut f = finding("firewall.forward", status, summary)
                .ev(format!(
                    "FORWARD policy {}",
                    forward_policy(snap).unwrap_or_else(|| "?".into())
                ))
                .cmd("iptables -S FORWARD -v")
                .cmd("nft list ruleset")
                .cmd(format!("ctnet-diag trace {} {EGRESS_PROBE} --tcp 443", t.target))
                .hint(format!(
                    "iptables -I FORWARD -i {br} -j ACCEPT; iptables -I FORWARD -o {br} -j ACCEPT"
                ));
            for e in evidence {
                f = f.ev(e);
            }
            out.push(f);
        }
    }
    out
}

fn pair(snap: &Snapshot, topo: &Topology, t: &Resolved, p: &Resolved) -> Vec<Finding> {
    let mut out = Vec::new();
    let get = |r: &Resolved| {
        let key = r.netns?;
        let view = topo.netns.iter().find(|n| n.key == key)?;
        Some((view, snap.netns_by_key(key)?, main_iface(view)?))
    };
    let (Some((tv, tns, mut ti)), Some((pv, pns, mut pi))) = (get(t), get(p)) else {
        out.push(finding(
            "path.same_bridge",
            Status::Skip,
            "target or peer has no interface to compare",
        ));
        return out;
    };
    // Containers on several networks: compare the interfaces that share a bridge.
    if let Some((a, b)) = tv.ifaces.iter().find_map(|a| {
        pv.ifaces
            .iter()
            .find(|b| a.bridge.is_some() && a.bridge == b.bridge)
            .map(|b| (a, b))
    }) {
        ti = a;
        pi = b;
    }
    let same = ti.bridge.is_some() && ti.bridge == pi.bridge;
    out.push(
        finding(
            "path.same_bridge",
            if same { Status::Pass } else { Status::Warn },
            if same {
                format!("both on {}", ti.bridge.as_deref().unwrap_or("?"))
            } else {
                format!(
                    "{} is on {} and {} on {}: traffic is routed, not bridged",
                    tv.label,
                    ti.bridge.as_deref().unwrap_or("no bridge"),
                    pv.label,
                    pi.bridge.as_deref().unwrap_or("no bridge")
                )
            },
        )
        .cmd("bridge link show"),
    );
    let t_nets = v4_nets(&ti.ips);
    let p_ips: Vec<Ipv4Addr> = v4_nets(&pi.ips).iter().map(|n| n.addr()).collect();
    if let (Some(tn), Some(pip)) = (t_nets.first(), p_ips.first()) {
        let inside = tn.contains(pip);
        out.push(
            finding(
                "address.same_subnet",
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
                tv.label,
                ti.iface.name,
                ti.ips.join(","),
                pv.label,
                pi.iface.name,
                pi.ips.join(",")
            ))
            .cmd(in_ns(tns, &format!("ip addr show {}", ti.iface.name)))
            .cmd(in_ns(pns, &format!("ip addr show {}", pi.iface.name)))
            .hint("put both in the bridge's subnet"),
        );
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
        out.push(
            finding(
                "address.duplicate_ip",
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
        );
        // ARP both ways.
        for (from_ns, from_i, from_label, to_ip, to_mac, id_dir) in [
            (
                tns,
                ti,
                &tv.label,
                IpAddr::V4(*pip),
                pi.mac.clone(),
                "target -> peer",
            ),
            (
                pns,
                pi,
                &pv.label,
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
                None => finding("arp.peer_entry", Status::Pass, format!("{id_dir}: no ARP entry for {to_ip} yet")),
                Some(n) if n.state == "failed" || n.state == "incomplete" => {
                    finding("arp.peer_entry", Status::Fail, format!("{id_dir}: ARP for {to_ip} is {}", n.state))
                }
                Some(n) if n.mac.is_some() && n.mac != to_mac => finding(
                    "arp.peer_entry",
                    Status::Fail,
                    format!(
                        "{id_dir}: ARP says {to_ip} is at {}, but its interface has {}: stale entry, frames go to the wrong MAC",
                        n.mac.as_deref().unwrap_or("?"),
                        to_mac.as_deref().unwrap_or("?")
                    ),
                )
                .hint(in_ns(from_ns, &format!("ip neigh del {to_ip} dev {}", from_i.iface.name))),
                Some(n) => finding("arp.peer_entry", Status::Pass, format!("{id_dir}: {to_ip} is at {} ({})", n.mac.as_deref().unwrap_or("?"), n.state)),
            };
            out.push(
                f.ev(format!("in {from_label}"))
                    .cmd(in_ns(from_ns, &format!("ip neigh show {to_ip}"))),
            );
        }
    }
    let mut bridged_nf: Option<(String, bool)> = None;
    if same {
        let br = ti.bridge.clone().unwrap_or_default();
        let f = match (&pi.fdb, &pi.host_veth) {
            (Some(hit), Some(hv)) if hit.port == hv.name => finding(
                "fdb.peer_mac",
                Status::Pass,
                format!("{br} learned the peer's MAC on {}", hit.port),
            ),
            (Some(hit), Some(hv)) => finding(
                "fdb.peer_mac",
                Status::Fail,
                format!("{br} learned the peer's MAC on {}, not on {}", hit.port, hv.name),
            ),
            _ => finding(
                "fdb.peer_mac",
                Status::Warn,
                format!("{br} has not learned the peer's MAC (no recent traffic, or ageing 0)"),
            ),
        };
        out.push(f.cmd(format!("bridge fdb show br {br}")));
        // br_netfilter: bridged frames cross the IP hooks; what they do is read off
        // the trace below.
        let host = snap.host_netns();
        let nf = host.and_then(|h| h.sysctls.bridge_nf_call_iptables) == Some(1)
            || topo
                .bridges
                .iter()
                .find(|b| b.iface.name == br)
                .and_then(|b| host.and_then(|h| h.link(b.iface.ifindex)))
                .and_then(|l| l.bridge.as_ref())
                .is_some_and(|b| b.nf_call_iptables);
        bridged_nf = Some((br, nf));
    }
    // The whole path, both ways, as the engine walks it: routing, bridge, FDB,
    // neighbours, sysctls and every netfilter hook.
    if let (Some(a), Some(b)) = (t.netns, p.netns) {
        use crate::flow::{Destination, FlowSpec, HopVerdict, L4, Reach, Source};
        let spec = FlowSpec::new(
            Source::Netns { netns: a, addr: None },
            Destination::Netns { netns: b },
            L4::Icmp,
        );
        match crate::flow::trace(snap, &spec) {
            Ok(tr) => {
                let all: Vec<&crate::flow::Hop> = tr.hops.iter().chain(&tr.reply).collect();
                let status = match tr.verdict {
                    Reach::Reachable => Status::Pass,
                    Reach::Unreachable => Status::Fail,
                    Reach::Ambiguous => Status::Warn,
                };
                let mut f = finding(
                    "path.trace",
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
                for h in all.iter().filter(|h| h.verdict != HopVerdict::Allow) {
                    f = f.ev(hop_line(h));
                }
                out.push(f);
                if let Some((br, nf)) = bridged_nf {
                    // The netfilter hops of the bridged legs.
                    let nf_hops: Vec<&&crate::flow::Hop> =
                        all.iter().filter(|h| h.step.contains('/')).collect();
                    let stop = nf_hops.iter().find(|h| {
                        matches!(h.verdict, HopVerdict::Drop | HopVerdict::Reject | HopVerdict::May)
                    });
                    let reached = tr.verdict == Reach::Reachable || !nf_hops.is_empty();
                    let mut f = match (nf, stop) {
                        (true, None) if !reached => finding(
                            "firewall.bridged",
                            Status::Skip,
                            "the trace stops before netfilter (see path.trace): the bridged rules are not reached",
                        ),
                        (false, _) if nf_hops.is_empty() => finding(
                            "firewall.bridged",
                            Status::Pass,
                            "br_netfilter is off: bridged traffic does not cross iptables",
                        ),
                        (_, Some(h)) => {
                            let rule = h.rule.as_deref().unwrap_or("?");
                            let counters = h
                                .rule_ref
                                .as_ref()
                                .and_then(|r| r.counters)
                                .map(|c| format!(" ({} packets)", c.packets))
                                .unwrap_or_default();
                            finding(
                                "firewall.bridged",
                                if h.verdict == HopVerdict::May {
                                    Status::Warn
                                } else {
                                    Status::Fail
                                },
                                format!(
                                    "br_netfilter sends bridged traffic through {}, where `{rule}`{counters} {}",
                                    h.step,
                                    if h.verdict == HopVerdict::May {
                                        "may drop it"
                                    } else {
                                        "drops it"
                                    }
                                ),
                            )
                        }
                        (_, None) => finding(
                            "firewall.bridged",
                            Status::Pass,
                            if nf_hops.is_empty() {
                                "br_netfilter is on; no rules on the bridged path".to_string()
                            } else {
                                format!("br_netfilter is on and every hook on {br} lets the pair through")
                            },
                        ),
                    };
                    for h in &nf_hops {
                        f = f.ev(hop_line(h));
                    }
                    out.push(
                        f.ev(format!(
                            "net.bridge.bridge-nf-call-iptables = {}",
                            snap.host_netns()
                                .and_then(|h| h.sysctls.bridge_nf_call_iptables)
                                .map_or("?".into(), |v| v.to_string())
                        ))
                        .cmd("sysctl net.bridge.bridge-nf-call-iptables")
                        .cmd("iptables -S FORWARD -v")
                        .hint(format!("iptables -I FORWARD -i {br} -o {br} -j ACCEPT")),
                    );
                }
            }
            Err(e) => out.push(finding("path.trace", Status::Skip, format!("no trace: {e}"))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_is_evaluated_in_order_through_jumps() {
        let snap = Snapshot::from_json(r#"{"schema":"ctnet.snapshot/v1","taken_at_unix_ms":0,"hostname":"","kernel":"","host":{"dev":1,"ino":1},"netns":[],
            "firewall":{"iptables":[{"backend":"nft","family":"ip","tables":[{"name":"filter",
              "chains":[{"name":"FORWARD","policy":"DROP","packets":0,"bytes":0,"owner":"other"},
                        {"name":"DOCKER-USER","policy":null,"packets":0,"bytes":0,"owner":"docker"}],
              "rules":[
                {"chain":"FORWARD","position":1,"spec":"-j DOCKER-USER","target":"DOCKER-USER","packets":0,"bytes":0,"owner":"docker"},
                {"chain":"DOCKER-USER","position":1,"spec":"-i br0 -o br0 -j DROP","target":"DROP","packets":3,"bytes":0,"owner":"docker"},
                {"chain":"DOCKER-USER","position":2,"spec":"-j RETURN","target":"RETURN","packets":0,"bytes":0,"owner":"docker"},
                {"chain":"FORWARD","position":2,"spec":"-i br0 -j ACCEPT","target":"ACCEPT","packets":0,"bytes":0,"owner":"other"}
              ]}]}],"nft":[],"warnings":[]}}"#)
        .unwrap();
        let p = |i: &str, o: &str| {
            crate::netfilter::Packet::tcp(
                "10.0.0.2".parse().unwrap(),
                40000,
                "10.0.0.3".parse().unwrap(),
                80,
            )
            .iif(i)
            .oif(o)
        };
        let (st, why, ev) = forward_by_engine(&snap, p("br0", "br0"), "the pair");
        assert_eq!(st, Status::Fail);
        assert!(
            why.contains("-A DOCKER-USER -i br0 -o br0 -j DROP") && why.contains("3 packets"),
            "{why}"
        );
        assert!(ev.iter().any(|e| e.contains("forward/filter/FORWARD")), "{ev:?}");
        assert_eq!(
            forward_by_engine(&snap, p("br0", UPLINK), "egress").0,
            Status::Pass
        );
        let (st, why, _) = forward_by_engine(&snap, p("eth9", UPLINK), "x");
        assert_eq!(st, Status::Fail);
        assert!(why.contains("policy DROP"), "{why}");
    }
}
