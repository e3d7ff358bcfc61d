//! Which interfaces a capture opens, decided once for every caller (`ctnet-diag
//! capture`, the dashboard's `p`, the probe's hops): in which netns, under which label,
//! with which direction hint and mode. A plan is plain data taken from a snapshot (the
//! netns's refs come with it, so opening needs no snapshot); [`Planned::open`] enters
//! the netns, off whatever thread must stay responsive.

use crate::capture::{self, Endpoint};
use crate::error::Result;
use crate::model::Snapshot;
use crate::netns::{Netns, NetnsKey, NetnsRef};
use crate::topology::{Peer, Topology};

/// One interface to capture on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Its netns.
    pub netns: NetnsKey,
    /// How to open that netns (from the snapshot).
    pub refs: Vec<NetnsRef>,
    /// The interface's name in it.
    pub iface: String,
    /// How output calls it: `eth0@web1` inside a netns, the name itself on the host.
    /// Raw: a text renderer escapes it.
    pub label: String,
    /// For the host end of a veth: the MAC of the container end (frames from it
    /// arrive, the rest leave toward it).
    pub peer_mac: Option<[u8; 6]>,
    /// Promiscuous (a bridge, to see what it forwards).
    pub promisc: bool,
}

impl Planned {
    /// Whether `self` and `other` capture the same interface.
    pub fn same_iface(&self, other: &Planned) -> bool {
        self.netns == other.netns && self.iface == other.iface
    }

    /// Enter its netns: the endpoint to start a session on.
    pub fn open(&self) -> Result<Endpoint> {
        Ok(Endpoint {
            netns: Netns::open_any(&self.refs, self.netns)?,
            iface: self.iface.clone(),
            label: self.label.clone(),
            peer_mac: self.peer_mac,
        })
    }
}

fn refs_of(snap: &Snapshot, key: NetnsKey) -> Vec<NetnsRef> {
    snap.netns_by_key(key).map(|n| n.refs.clone()).unwrap_or_default()
}

/// An interface of the host netns by name: a bridge (promiscuous), a host veth (with
/// its container end's MAC), or any other device.
pub fn host_iface(snap: &Snapshot, topo: &Topology, name: &str) -> Planned {
    let host = snap.host_netns();
    let is_bridge = host
        .and_then(|h| h.links.iter().find(|l| l.name == name))
        .is_some_and(|l| l.kind == Some(crate::model::LinkKind::Bridge));
    let peer_mac = topo
        .veths
        .iter()
        .find(|v| v.host.name == name)
        .and_then(|v| match &v.peer {
            Peer::Resolved { mac, .. } => mac.as_deref().and_then(capture::parse_mac),
            _ => None,
        });
    Planned {
        netns: snap.host,
        refs: refs_of(snap, snap.host),
        iface: name.to_string(),
        label: name.to_string(),
        peer_mac,
        promisc: is_bridge,
    }
}

/// Which interfaces of a netns other than the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ifaces<'a> {
    /// Every interface it has (but `lo`).
    All,
    /// Only the end of the veth whose host end is this.
    BehindPort(&'a str),
}

/// Interfaces of netns `key`, labelled `iface@name`; with `host_veths`, each followed
/// by the host end of its veth. Empty when the netns is not in the topology.
pub fn netns(
    snap: &Snapshot,
    topo: &Topology,
    key: NetnsKey,
    name: &str,
    which: Ifaces,
    host_veths: bool,
) -> Vec<Planned> {
    let Some(view) = topo.netns.iter().find(|n| n.key == key) else {
        return Vec::new();
    };
    let refs = refs_of(snap, key);
    let mut out = Vec::new();
    for i in &view.ifaces {
        if let Ifaces::BehindPort(port) = which
            && i.host_veth.as_ref().is_none_or(|h| h.name != port)
        {
            continue;
        }
        out.push(Planned {
            netns: key,
            refs: refs.clone(),
            iface: i.iface.name.clone(),
            label: format!("{}@{name}", i.iface.name),
            peer_mac: None,
            promisc: false,
        });
        if host_veths && let Some(hv) = &i.host_veth {
            let mut h = host_iface(snap, topo, &hv.name);
            h.peer_mac = h
                .peer_mac
                .or_else(|| i.mac.as_deref().and_then(capture::parse_mac));
            out.push(h);
        }
    }
    out
}

/// A bridge port: its host veth first, then the container end behind it.
pub fn port(snap: &Snapshot, topo: &Topology, port: &str, behind: Option<(NetnsKey, &str)>) -> Vec<Planned> {
    let mut out = vec![host_iface(snap, topo, port)];
    if let Some((key, name)) = behind {
        out.extend(netns(snap, topo, key, name, Ifaces::BehindPort(port), false));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> (Snapshot, Topology) {
        let snap = Snapshot::from_slice(include_bytes!("../../../fixtures/lab-healthy.json")).unwrap();
        let topo = Topology::build(&snap);
        (snap, topo)
    }

    #[test]
    fn a_host_veth_carries_its_container_mac_and_a_bridge_is_promiscuous() {
        let (snap, topo) = lab();
        let v = host_iface(&snap, &topo, "vc1");
        let c1 = topo.netns.iter().find(|n| n.label == "c1").unwrap();
        assert_eq!(
            v.peer_mac,
            c1.ifaces[0].mac.as_deref().and_then(capture::parse_mac)
        );
        assert!(v.peer_mac.is_some() && !v.promisc && v.netns == snap.host);
        assert!(
            !v.refs.is_empty(),
            "the host netns must be openable from the plan"
        );
        assert!(host_iface(&snap, &topo, "br0").promisc);
    }

    #[test]
    fn a_netns_plans_each_interface_and_its_host_end_and_a_port_only_its_own() {
        let (snap, topo) = lab();
        let c1 = topo.netns.iter().find(|n| n.label == "c1").unwrap();
        let all = netns(&snap, &topo, c1.key, "c1", Ifaces::All, true);
        let labels: Vec<&str> = all.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["eth0@c1", "vc1"]);
        assert_eq!(all[0].refs, snap.netns_by_key(c1.key).unwrap().refs);
        assert_eq!(
            all[1].peer_mac,
            c1.ifaces[0].mac.as_deref().and_then(capture::parse_mac)
        );
        let p = port(&snap, &topo, "vc1", Some((c1.key, "c1")));
        assert_eq!(
            p.iter().map(|p| p.label.as_str()).collect::<Vec<_>>(),
            ["vc1", "eth0@c1"]
        );
        assert!(
            port(&snap, &topo, "vc2", Some((c1.key, "c1"))).len() == 1,
            "vc2 is not c1's port"
        );
    }
}
