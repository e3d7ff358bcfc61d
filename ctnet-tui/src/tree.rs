//! The topology tree: bridges, their ports with the container behind each host veth,
//! then every netns not reached through a bridge (host network, isolated, orphaned,
//! unread) and host veths on no bridge. A pure function of a [`Topology`].

use ctnet_core::vocab::OperState;
use ctnet_core::vocab::PortState;
use std::collections::HashSet;

use ctnet_core::model::Snapshot;
use ctnet_core::netns::NetnsKey;
use ctnet_core::text::natural_key;
use ctnet_core::topology::{NetnsView, Peer, Role, Topology};

/// What a row stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    /// A heading (`not on a bridge`): nothing to select.
    Heading(String),
    /// A bridge of the host netns.
    Bridge(String),
    /// A bridge port (a host veth, usually), with the netns at its other end.
    Port {
        /// The bridge.
        bridge: String,
        /// The port's name in the host netns.
        port: String,
        /// The netns behind it, when the port is a resolved veth.
        netns: Option<NetnsKey>,
    },
    /// A netns reached some other way (or not at all).
    Netns(NetnsKey),
    /// A host veth on no bridge.
    HostVeth(String),
}

/// How a row's state is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    /// Up and forwarding.
    Ok,
    /// Works, but something is off (learning, blocked port, orphan).
    Warn,
    /// Down, detached, unresolved.
    Bad,
    /// Nothing to say.
    None,
}

/// One line of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Indentation level.
    pub depth: u8,
    /// What it is.
    pub item: Item,
    /// The main text (`demo-v1 → demo-c1 eth0`).
    pub label: String,
    /// Secondary text (`10.77.0.2/24 02:42:…`).
    pub detail: String,
    /// State badge.
    pub badge: Badge,
    /// Whether it has children that can be folded, and whether they are folded.
    pub fold: Option<bool>,
}

/// The key a bridge is folded under.
pub fn fold_key(item: &Item) -> Option<String> {
    match item {
        Item::Bridge(b) => Some(format!("bridge:{b}")),
        Item::Heading(h) => Some(format!("heading:{h}")),
        _ => None,
    }
}

/// What to call a netns: its containers, else its label.
pub fn netns_name(view: &NetnsView) -> String {
    if view.containers.is_empty() {
        view.label.clone()
    } else {
        view.containers.join(",")
    }
}

fn first_ip(ips: &[String]) -> String {
    match ips.len() {
        0 => String::new(),
        1 => ips[0].clone(),
        n => format!("{} +{}", ips[0], n - 1),
    }
}

/// The name of the runtime network whose Linux bridge is `bridge`, when a container
/// on it says so (and the name is not the bridge's own).
fn network_of<'a>(snap: &'a Snapshot, bridge: &str) -> Option<&'a str> {
    snap.containers
        .iter()
        .flat_map(|c| &c.networks)
        .find(|n| n.bridge.as_deref() == Some(bridge) && n.name != bridge && !n.name.is_empty())
        .map(|n| n.name.as_str())
}

/// Build the rows, leaving out the children of folded items.
pub fn rows(snap: &Snapshot, topo: &Topology, folded: &HashSet<String>) -> Vec<Row> {
    let mut out = Vec::new();
    let mut shown: HashSet<NetnsKey> = HashSet::new();
    let mut bridges: Vec<_> = topo.bridges.iter().collect();
    bridges.sort_by_key(|b| natural_key(&b.iface.name));
    for b in bridges {
        let item = Item::Bridge(b.iface.name.clone());
        let is_folded = fold_key(&item).is_some_and(|k| folded.contains(&k));
        // A runtime's network behind the bridge (`appnet` for `br-f7e1d8a120b8`) is its
        // label; the bridge's own name leads the detail.
        let net = network_of(snap, &b.iface.name);
        out.push(Row {
            depth: 0,
            label: net.map_or_else(|| b.iface.name.clone(), str::to_string),
            detail: format!(
                "{}{} {} port(s){}",
                net.map_or_else(String::new, |_| format!("{} ", b.iface.name)),
                first_ip(&b.ips),
                b.ports.len(),
                if b.up { "" } else { " DOWN" }
            )
            .trim()
            .to_string(),
            badge: if b.up { Badge::Ok } else { Badge::Bad },
            fold: Some(is_folded),
            item,
        });
        let mut ports: Vec<_> = b.ports.iter().collect();
        ports.sort_by_key(|p| natural_key(&p.name));
        for p in ports {
            let (netns, label, detail, peer_ok) = match &p.peer {
                Some(Peer::Resolved {
                    iface,
                    mac,
                    ips,
                    operstate,
                    ..
                }) => {
                    let view = topo.netns.iter().find(|n| n.key == iface.netns);
                    let who = view.map_or_else(|| iface.netns_label.clone(), netns_name);
                    shown.insert(iface.netns);
                    (
                        Some(iface.netns),
                        format!("{} → {who} {}", p.name, iface.name),
                        format!("{} {}", first_ip(ips), mac.as_deref().unwrap_or("")),
                        matches!(operstate, OperState::Up | OperState::Unknown),
                    )
                }
                Some(other) => (None, format!("{} → ?", p.name), peer_text(other), false),
                None => (
                    None,
                    p.name.clone(),
                    p.kind.as_ref().map_or_else(String::new, |k| k.to_string()),
                    true,
                ),
            };
            let port_ok = p.operstate == OperState::Up || p.operstate == OperState::Unknown;
            let badge = if !port_ok || !peer_ok {
                Badge::Bad
            } else if p.state.as_ref().is_some_and(|s| *s != PortState::Forwarding) {
                Badge::Warn
            } else {
                Badge::Ok
            };
            if !is_folded {
                out.push(Row {
                    depth: 1,
                    item: Item::Port {
                        bridge: b.iface.name.clone(),
                        port: p.name.clone(),
                        netns,
                    },
                    label,
                    detail: detail.trim().to_string(),
                    badge,
                    fold: None,
                });
            }
        }
    }
    // Host-network containers live in the host netns itself.
    let host_containers: Vec<&str> = snap
        .containers
        .iter()
        .filter(|c| c.is_running() && c.netns == Some(snap.host))
        .map(|c| c.name.as_str())
        .collect();
    let mut rest: Vec<&NetnsView> = topo.netns.iter().filter(|n| !shown.contains(&n.key)).collect();
    rest.sort_by_key(|n| natural_key(&netns_name(n)));
    let unbridged: Vec<_> = topo.veths.iter().filter(|v| v.bridge.is_none()).collect();
    let heading = |out: &mut Vec<Row>, text: &str| -> bool {
        let item = Item::Heading(text.to_string());
        let is_folded = fold_key(&item).is_some_and(|k| folded.contains(&k));
        out.push(Row {
            depth: 0,
            item,
            label: text.to_string(),
            detail: String::new(),
            badge: Badge::None,
            fold: Some(is_folded),
        });
        is_folded
    };
    if !host_containers.is_empty() && !heading(&mut out, "host network") {
        out.push(Row {
            depth: 1,
            item: Item::Netns(snap.host),
            label: host_containers.join(", "),
            detail: "shares the host netns".into(),
            badge: Badge::None,
            fold: None,
        });
    }
    if !rest.is_empty() && !heading(&mut out, "not on a bridge") {
        for n in rest {
            let (badge, role) = match n.role {
                Role::Container => (Badge::Ok, "veth/macvlan"),
                Role::Isolated => (Badge::None, "isolated (lo only)"),
                Role::Orphan => (Badge::Bad, "orphan: veth peer gone"),
                Role::Detached => (Badge::Warn, "no link to the host"),
                Role::Unread => (Badge::Warn, "unread"),
                Role::Host => (Badge::None, "host"),
            };
            let ip = n
                .ifaces
                .iter()
                .flat_map(|i| i.ips.iter())
                .next()
                .cloned()
                .unwrap_or_default();
            out.push(Row {
                depth: 1,
                item: Item::Netns(n.key),
                label: netns_name(n),
                detail: format!("{role} {ip}").trim().to_string(),
                badge,
                fold: None,
            });
        }
    }
    if !unbridged.is_empty() && !heading(&mut out, "veths on no bridge") {
        for v in unbridged {
            let who = match &v.peer {
                Peer::Resolved { iface, .. } => topo
                    .netns
                    .iter()
                    .find(|n| n.key == iface.netns)
                    .map_or_else(|| iface.netns_label.clone(), netns_name),
                other => peer_text(other),
            };
            out.push(Row {
                depth: 1,
                item: Item::HostVeth(v.host.name.clone()),
                label: format!("{} → {who}", v.host.name),
                detail: String::new(),
                badge: if v.up { Badge::Ok } else { Badge::Bad },
                fold: None,
            });
        }
    }
    out
}

/// One phrase for a peer that was not resolved.
pub fn peer_text(p: &Peer) -> String {
    match p {
        Peer::Resolved { iface, .. } => format!("{}@{}", iface.name, iface.netns_label),
        Peer::SameNetns { name, ifindex } => {
            format!(
                "{} in the host netns",
                name.clone().unwrap_or_else(|| format!("if{ifindex}"))
            )
        }
        Peer::NetnsNotFound { nsid, ifindex } => format!("if{ifindex} in netns id {nsid}, not found"),
        Peer::NetnsUnread { netns_label, .. } => format!("in {netns_label}, unread"),
        Peer::Missing { netns_label, ifindex } => format!("if{ifindex} missing in {netns_label}"),
        Peer::Unknown => "peer unknown".into(),
    }
}
