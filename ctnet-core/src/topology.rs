//! The topology join: veth pairs resolved across netns, bridges with their ports and
//! FDB, and each container-side interface joined to its host veth, bridge, port state,
//! FDB entry, addresses and gateway. A pure function of a [`Snapshot`].
//!
//! Peers are resolved from `IFLA_LINK` (the peer's ifindex in the peer's netns) and
//! `IFLA_LINK_NETNSID` (the peer's netns, as an id of the observing netns) matched with
//! the nsids the host gives every discovered netns (RTM_GETNSID), never by guessing
//! from ifindex arithmetic. A peer that cannot be found is reported, not dropped.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{FdbEntry, Link, NetnsState, Snapshot};
use crate::model::{LinkKind, OperState, PortState};
use crate::netns::{NetnsKey, NetnsRef};

/// One end of a link: which netns, which interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceRef {
    /// Identity of its netns.
    pub netns: NetnsKey,
    /// A readable label for the netns.
    pub netns_label: String,
    /// Interface index.
    pub ifindex: u32,
    /// Interface name.
    pub name: String,
}

/// What was found at the other end of a veth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Peer {
    /// Found: the peer interface in its netns.
    Resolved {
        /// The peer.
        iface: IfaceRef,
        /// Every name/path/pid of the peer's netns.
        netns_names: Vec<String>,
        /// Peer MAC.
        mac: Option<String>,
        /// Peer addresses `addr/len`.
        ips: Vec<String>,
        /// Peer operstate.
        operstate: OperState,
        /// Peer MTU.
        mtu: Option<u32>,
        /// The peer's own IFLA_LINK points back at this end.
        confirmed: bool,
    },
    /// Both ends are in the same netns.
    SameNetns {
        /// The peer's ifindex.
        ifindex: u32,
        /// The peer's name, when present.
        name: Option<String>,
    },
    /// The peer's netns (by nsid) is none of the netns discovered.
    NetnsNotFound {
        /// The id the observing netns gives the peer's netns.
        nsid: i32,
        /// The peer's ifindex there.
        ifindex: u32,
    },
    /// The peer's netns was found but could not be read (no privilege, vanished).
    NetnsUnread {
        /// Label of that netns.
        netns_label: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The peer's netns was found but has no such interface.
    Missing {
        /// Label of the netns searched.
        netns_label: String,
        /// The ifindex that was not there.
        ifindex: u32,
    },
    /// The link carries no IFLA_LINK.
    Unknown,
}

/// A veth in the host netns, joined to its peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VethView {
    /// The host end.
    pub host: IfaceRef,
    /// Its MAC.
    pub mac: Option<String>,
    /// Its operstate.
    pub operstate: OperState,
    /// Administratively up.
    pub up: bool,
    /// Its MTU.
    pub mtu: Option<u32>,
    /// Its bridge, when it is a bridge port.
    pub bridge: Option<String>,
    /// Its STP port state on that bridge.
    pub port_state: Option<PortState>,
    /// `peer_ifindex` from `ethtool -S`, to cross-check the netlink peer.
    pub ethtool_peer_ifindex: Option<u64>,
    /// The other end.
    pub peer: Peer,
    /// Names of the running containers using the peer's netns.
    #[serde(default)]
    pub containers: Vec<String>,
}

/// A bridge port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PortView {
    /// Port ifindex.
    pub ifindex: u32,
    /// Port name.
    pub name: String,
    /// Port kind (`veth`, `vxlan`, ...).
    pub kind: Option<LinkKind>,
    /// STP state.
    pub state: Option<PortState>,
    /// Learning on.
    pub learning: bool,
    /// Port operstate.
    pub operstate: OperState,
    /// For a veth port: its peer.
    pub peer: Option<Peer>,
}

/// A bridge with its ports and FDB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BridgeView {
    /// The bridge.
    pub iface: IfaceRef,
    /// Its addresses.
    pub ips: Vec<String>,
    /// Its MAC.
    pub mac: Option<String>,
    /// Administratively up.
    pub up: bool,
    /// Operstate.
    pub operstate: OperState,
    /// STP state (0 off).
    pub stp_state: u32,
    /// Ageing time in centiseconds.
    pub ageing_time_cs: u32,
    /// Ports.
    pub ports: Vec<PortView>,
    /// The bridge's FDB (entries with this bridge as master; no device `self` lists).
    pub fdb: Vec<FdbEntry>,
}

/// Where a container-side MAC sits in its bridge's FDB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FdbHit {
    /// The port the bridge learned it on.
    pub port: String,
    /// Port ifindex.
    pub port_ifindex: u32,
    /// A local (port's own) entry.
    pub is_local: bool,
    /// Static entry.
    pub is_static: bool,
    /// Seconds since last seen.
    pub age_s: Option<f64>,
}

/// One interface inside a non-host netns, joined to the host side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NetnsIface {
    /// The interface.
    pub iface: IfaceRef,
    /// Its kind.
    pub kind: Option<LinkKind>,
    /// Its MAC.
    pub mac: Option<String>,
    /// Its addresses.
    pub ips: Vec<String>,
    /// Operstate.
    pub operstate: OperState,
    /// Administratively up.
    pub up: bool,
    /// MTU.
    pub mtu: Option<u32>,
    /// For a veth: the other end.
    pub peer: Option<Peer>,
    /// For a veth whose peer is in the host: that host veth.
    pub host_veth: Option<IfaceRef>,
    /// The bridge the host veth is on.
    pub bridge: Option<String>,
    /// STP state of that bridge port.
    pub port_state: Option<PortState>,
    /// This interface's MAC in that bridge's FDB.
    pub fdb: Option<FdbHit>,
    /// For macvlan/ipvlan: the parent device in the host netns.
    pub parent: Option<String>,
    /// Gateway of this netns's default route through this interface.
    pub gateway: Option<IpAddr>,
}

/// How a netns relates to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The host netns.
    Host,
    /// Connected to the host by a veth (or macvlan/ipvlan on a host device).
    Container,
    /// Only `lo`: `--network none`.
    Isolated,
    /// Has veths whose peers could not be found.
    Orphan,
    /// Interfaces, but none tied to the host.
    Detached,
    /// Could not be read (see the snapshot's sources): nothing is known inside.
    Unread,
}

/// A netns and its interfaces, joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NetnsView {
    /// Identity.
    pub key: NetnsKey,
    /// Label.
    pub label: String,
    /// Every name, path and pid.
    pub names: Vec<String>,
    /// Relation to the host.
    pub role: Role,
    /// Names of the running containers using this netns.
    #[serde(default)]
    pub containers: Vec<String>,
    /// Interfaces other than `lo`.
    pub ifaces: Vec<NetnsIface>,
}

/// The joined view of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Topology {
    /// Host-netns veths and their peers, by ifindex.
    pub veths: Vec<VethView>,
    /// Bridges of the host netns.
    pub bridges: Vec<BridgeView>,
    /// Every other netns.
    pub netns: Vec<NetnsView>,
}

fn iface_ref(ns: &NetnsState, l: &Link) -> IfaceRef {
    IfaceRef {
        netns: ns.key,
        netns_label: ns.label(),
        ifindex: l.ifindex,
        name: l.name.clone(),
    }
}

fn names_of(ns: &NetnsState) -> Vec<String> {
    ns.refs
        .iter()
        .map(|r| match r {
            NetnsRef::Named { path, .. } | NetnsRef::Path { path } => path.display().to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// The lookups the join makes once per link, built once. Without them a host of N
/// containers costs O(N²): a file of 210 000 links took over a minute.
struct Index<'a> {
    host: NetnsKey,
    netns: HashMap<NetnsKey, &'a NetnsState>,
    host_links: HashMap<u32, &'a Link>,
    host_addrs: HashMap<u32, Vec<String>>,
    running: HashMap<NetnsKey, Vec<String>>,
}

impl<'a> Index<'a> {
    fn new(snap: &'a Snapshot, host: &'a NetnsState) -> Self {
        let mut host_addrs: HashMap<u32, Vec<String>> = HashMap::new();
        for a in &host.addresses {
            host_addrs
                .entry(a.ifindex)
                .or_default()
                .push(format!("{}/{}", a.address, a.prefix_len));
        }
        let mut running: HashMap<NetnsKey, Vec<String>> = HashMap::new();
        for c in snap.containers.iter().filter(|c| c.is_running()) {
            if let Some(k) = c.netns {
                running.entry(k).or_default().push(c.name.clone());
            }
        }
        Self {
            host: host.key,
            // The first of a key wins, as `Snapshot::netns_by_key` finds it.
            netns: snap.netns.iter().rev().map(|n| (n.key, n)).collect(),
            host_links: host.links.iter().rev().map(|l| (l.ifindex, l)).collect(),
            host_addrs,
            running,
        }
    }

    fn link(&self, ns: &'a NetnsState, ifindex: u32) -> Option<&'a Link> {
        if ns.key == self.host {
            self.host_links.get(&ifindex).copied()
        } else {
            ns.link(ifindex)
        }
    }

    fn addrs_of(&self, ns: &NetnsState, ifindex: u32) -> Vec<String> {
        if ns.key == self.host {
            self.host_addrs.get(&ifindex).cloned().unwrap_or_default()
        } else {
            ns.addrs_of(ifindex)
        }
    }

    fn running_in(&self, key: NetnsKey) -> Vec<String> {
        self.running.get(&key).cloned().unwrap_or_default()
    }
}

/// Resolve the peer of veth `l` seen from netns `from`, using the nsid map of `from`.
fn resolve<'a>(ix: &Index<'a>, from: &'a NetnsState, l: &Link, ids: &HashMap<i32, NetnsKey>) -> Peer {
    let Some(peer_idx) = l.link else {
        return Peer::Unknown;
    };
    let target = match l.link_netnsid {
        None => {
            return Peer::SameNetns {
                ifindex: peer_idx,
                name: ix.link(from, peer_idx).map(|p| p.name.clone()),
            };
        }
        Some(id) => match ids.get(&id).and_then(|k| ix.netns.get(k).copied()) {
            Some(ns) => ns,
            None => {
                return Peer::NetnsNotFound {
                    nsid: id,
                    ifindex: peer_idx,
                };
            }
        },
    };
    if let Some(reason) = &target.read_error {
        return Peer::NetnsUnread {
            netns_label: target.label(),
            reason: reason.clone(),
        };
    }
    match ix.link(target, peer_idx) {
        Some(p) => Peer::Resolved {
            iface: iface_ref(target, p),
            netns_names: names_of(target),
            mac: p.mac.clone(),
            ips: ix.addrs_of(target, p.ifindex),
            operstate: p.operstate.clone(),
            mtu: p.mtu,
            confirmed: p.link == Some(l.ifindex),
        },
        None => Peer::Missing {
            netns_label: target.label(),
            ifindex: peer_idx,
        },
    }
}

/// What [`Topology::netns_view`] looks up, built once per join.
struct Join<'a, 'b> {
    ix: &'b Index<'a>,
    veths: &'b [VethView],
    by_peer: &'b HashMap<(NetnsKey, u32), usize>,
    learned: &'b HashMap<(&'b str, &'b str), &'b FdbEntry>,
}

impl Topology {
    /// Join a snapshot.
    pub fn build(snap: &Snapshot) -> Self {
        let Some(host) = snap.host_netns() else {
            return Self {
                veths: Vec::new(),
                bridges: Vec::new(),
                netns: Vec::new(),
            };
        };
        // The host's nsid -> netns map.
        let host_ids: HashMap<i32, NetnsKey> = snap
            .netns
            .iter()
            .filter_map(|n| n.nsid.map(|id| (id, n.key)))
            .collect();
        let ix = Index::new(snap, host);
        let name_of = |ifindex: u32| ix.host_links.get(&ifindex).map(|l| l.name.clone());

        let veths: Vec<VethView> = host
            .links
            .iter()
            .filter(|l| l.kind == Some(LinkKind::Veth))
            .map(|l| VethView {
                host: iface_ref(host, l),
                mac: l.mac.clone(),
                operstate: l.operstate.clone(),
                up: l.is_up(),
                mtu: l.mtu,
                bridge: l
                    .master
                    .filter(|m| {
                        ix.host_links
                            .get(m)
                            .is_some_and(|b| b.kind == Some(LinkKind::Bridge))
                    })
                    .and_then(name_of),
                port_state: l.port.as_ref().map(|p| p.state.clone()),
                ethtool_peer_ifindex: l.ethtool.as_ref().and_then(|e| e.peer_ifindex()),
                peer: resolve(&ix, host, l, &host_ids),
                containers: Vec::new(),
            })
            .map(|mut v| {
                if let Peer::Resolved { iface, .. } = &v.peer {
                    v.containers = ix.running_in(iface.netns);
                }
                v
            })
            .collect();
        let mut ports_of: HashMap<u32, Vec<&Link>> = HashMap::new();
        for l in &host.links {
            if let Some(m) = l.master {
                ports_of.entry(m).or_default().push(l);
            }
        }
        let mut fdb_of: HashMap<u32, Vec<FdbEntry>> = HashMap::new();
        for e in &host.fdb {
            if let Some(m) = e.master {
                fdb_of.entry(m).or_default().push(e.clone());
            }
        }

        let bridges = host
            .links
            .iter()
            .filter(|l| l.kind == Some(LinkKind::Bridge))
            .map(|b| BridgeView {
                iface: iface_ref(host, b),
                ips: ix.addrs_of(host, b.ifindex),
                mac: b.mac.clone(),
                up: b.is_up(),
                operstate: b.operstate.clone(),
                stp_state: b.bridge.as_ref().map_or(0, |a| a.stp_state),
                ageing_time_cs: b.bridge.as_ref().map_or(0, |a| a.ageing_time_cs),
                ports: ports_of
                    .get(&b.ifindex)
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .map(|p| PortView {
                        ifindex: p.ifindex,
                        name: p.name.clone(),
                        kind: p.kind.clone(),
                        state: p.port.as_ref().map(|x| x.state.clone()),
                        learning: p.port.as_ref().is_some_and(|x| x.learning),
                        operstate: p.operstate.clone(),
                        peer: (p.kind == Some(LinkKind::Veth)).then(|| resolve(&ix, host, p, &host_ids)),
                    })
                    .collect(),
                fdb: fdb_of.get(&b.ifindex).cloned().unwrap_or_default(),
            })
            .collect::<Vec<_>>();

        // Host veths by the container-side end they reach, and each bridge's learned
        // (non-local) entries by MAC: the first of each, as a scan would find it.
        let mut by_peer: HashMap<(NetnsKey, u32), usize> = HashMap::new();
        for (i, hv) in veths.iter().enumerate() {
            if let Peer::Resolved { iface, .. } = &hv.peer {
                by_peer.entry((iface.netns, iface.ifindex)).or_insert(i);
            }
        }
        let mut learned: HashMap<(&str, &str), &FdbEntry> = HashMap::new();
        let mut seen_bridges = std::collections::HashSet::new();
        // The first bridge of a name is the one a lookup by name finds.
        for b in bridges
            .iter()
            .filter(|b| seen_bridges.insert(b.iface.name.as_str()))
        {
            for e in b.fdb.iter().filter(|e| !e.is_local) {
                learned
                    .entry((b.iface.name.as_str(), e.mac.as_str()))
                    .or_insert(e);
            }
        }
        let join = Join {
            ix: &ix,
            veths: &veths,
            by_peer: &by_peer,
            learned: &learned,
        };
        let netns = snap
            .netns
            .iter()
            .filter(|n| n.key != snap.host)
            .map(|ns| Self::netns_view(&join, host, ns))
            .collect();
        Self {
            veths,
            bridges,
            netns,
        }
    }

    fn netns_view<'a>(j: &Join<'a, '_>, host: &'a NetnsState, ns: &'a NetnsState) -> NetnsView {
        // This netns's ids: the host's, and those of other netns its links point into.
        let mut ids: HashMap<i32, NetnsKey> = ns.peer_ids.iter().map(|(id, k)| (*id, *k)).collect();
        if let Some(h) = ns.host_nsid {
            ids.insert(h, host.key);
        }
        // This netns's addresses and main-table default routes by interface, found once
        // (a netns may hold thousands of links too).
        let mut addrs: HashMap<u32, Vec<String>> = HashMap::new();
        for a in &ns.addresses {
            addrs
                .entry(a.ifindex)
                .or_default()
                .push(format!("{}/{}", a.address, a.prefix_len));
        }
        let mut gateways: HashMap<u32, Option<IpAddr>> = HashMap::new();
        for r in ns.routes.iter().filter(|r| r.dst == "default" && r.table == 254) {
            if let Some(oif) = r.oif {
                gateways.entry(oif).or_insert(r.gateway);
            }
        }
        let mut ifaces = Vec::new();
        for l in ns.links.iter().filter(|l| !l.is_loopback()) {
            let mut v = NetnsIface {
                iface: iface_ref(ns, l),
                kind: l.kind.clone(),
                mac: l.mac.clone(),
                ips: addrs.get(&l.ifindex).cloned().unwrap_or_default(),
                operstate: l.operstate.clone(),
                up: l.is_up(),
                mtu: l.mtu,
                peer: None,
                host_veth: None,
                bridge: None,
                port_state: None,
                fdb: None,
                parent: None,
                gateway: gateways.get(&l.ifindex).copied().flatten(),
            };
            match &l.kind {
                Some(LinkKind::Veth) => {
                    // From the host side first: a host veth whose peer is this link.
                    let from_host = j.by_peer.get(&(ns.key, l.ifindex)).map(|&i| &j.veths[i]);
                    if let Some(hv) = from_host {
                        v.peer = Some(Peer::Resolved {
                            iface: hv.host.clone(),
                            netns_names: names_of(host),
                            mac: hv.mac.clone(),
                            ips: j.ix.addrs_of(host, hv.host.ifindex),
                            operstate: hv.operstate.clone(),
                            mtu: hv.mtu,
                            confirmed: l.link == Some(hv.host.ifindex),
                        });
                        v.host_veth = Some(hv.host.clone());
                        v.bridge = hv.bridge.clone();
                        v.port_state = hv.port_state.clone();
                        if let (Some(br), Some(mac)) = (&hv.bridge, &l.mac) {
                            v.fdb = j.learned.get(&(br.as_str(), mac.as_str())).map(|e| FdbHit {
                                port: j
                                    .ix
                                    .link(host, e.ifindex)
                                    .map(|p| p.name.clone())
                                    .unwrap_or_default(),
                                port_ifindex: e.ifindex,
                                is_local: e.is_local,
                                is_static: e.is_static,
                                age_s: e.age_s,
                            });
                        }
                    } else {
                        // Otherwise a veth to another non-host netns, by this netns's ids.
                        v.peer = Some(resolve(j.ix, ns, l, &ids));
                    }
                }
                Some(LinkKind::Macvlan | LinkKind::Ipvlan | LinkKind::Macvtap | LinkKind::Ipvtap) => {
                    if let (Some(parent), Some(id)) = (l.link, l.link_netnsid)
                        && ids.get(&id) == Some(&host.key)
                    {
                        v.parent = j.ix.link(host, parent).map(|p| p.name.clone());
                    }
                }
                _ => {}
            }
            ifaces.push(v);
        }
        let role = if ns.read_error.is_some() {
            Role::Unread
        } else if ifaces.is_empty() {
            Role::Isolated
        } else if ifaces.iter().any(|i| i.host_veth.is_some() || i.parent.is_some()) {
            Role::Container
        } else if ifaces.iter().any(|i| {
            matches!(
                i.peer,
                Some(
                    Peer::NetnsNotFound { .. }
                        | Peer::Missing { .. }
                        | Peer::NetnsUnread { .. }
                        | Peer::Unknown
                )
            )
        }) {
            Role::Orphan
        } else {
            Role::Detached
        };
        NetnsView {
            key: ns.key,
            label: ns.label(),
            names: names_of(ns),
            role,
            containers: j.ix.running_in(ns.key),
            ifaces,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Link, NetnsState, SNAPSHOT_SCHEMA};

    #[test]
    fn a_netns_that_could_not_be_read_is_unread_not_isolated() {
        let host = NetnsKey { dev: 1, ino: 1 };
        let other = NetnsKey { dev: 1, ino: 2 };
        let snap = Snapshot {
            schema: SNAPSHOT_SCHEMA.into(),
            taken_at_unix_ms: 0,
            hostname: String::new(),
            kernel: String::new(),
            host,
            netns: vec![
                NetnsState {
                    key: host,
                    refs: vec![NetnsRef::Current],
                    links: vec![Link {
                        ifindex: 7,
                        name: "veth1".into(),
                        kind: Some("veth".into()),
                        link: Some(2),
                        link_netnsid: Some(0),
                        ..Link::default()
                    }],
                    ..NetnsState::default()
                },
                NetnsState {
                    key: other,
                    refs: vec![NetnsRef::Pid { pid: 9, comm: None }],
                    nsid: Some(0),
                    read_error: Some("entering netns: Operation not permitted".into()),
                    ..NetnsState::default()
                },
            ],
            firewall: None,
            sources: Vec::new(),
            containers: Vec::new(),
        };
        let t = Topology::build(&snap);
        assert_eq!(t.netns[0].role, Role::Unread);
        assert!(
            matches!(t.veths[0].peer, Peer::NetnsUnread { .. }),
            "{:?}",
            t.veths[0].peer
        );
    }
}
