//! What the checks read, worked out once per run: the target's netns, its main interface
//! and how far the path from it to a bridge goes; for a pair, the interfaces compared
//! and the engine's trace between them.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use super::v4_nets;
use crate::flow::{Destination, FlowError, FlowSpec, L4, Source, Trace};
use crate::model::{Link, NetnsState, Route, Snapshot};
use crate::netns::NetnsKey;
use crate::target::Resolved;
use crate::topology::{BridgeView, IfaceRef, NetnsIface, NetnsView, Topology};

/// What a check of one target reads.
pub(super) struct Ctx<'a> {
    pub snap: &'a Snapshot,
    /// The snapshot made ready for tracing, shared by every target of a run.
    pub flow: &'a crate::flow::Tracer<'a>,
    pub t: &'a Resolved,
    /// The target's interface, or where resolving it stopped (then only `resolve.netns`
    /// has something to say).
    pub at: Result<Iface<'a>, Unresolved<'a>>,
}

/// Why the target has no interface to check.
pub(super) enum Unresolved<'a> {
    /// No netns at all (not running, unknown).
    NoNetns,
    /// The host's own netns.
    HostNetns,
    /// A netns the snapshot (or the host netns) lacks.
    NotInSnapshot,
    /// A netns with only `lo`.
    OnlyLo { view: &'a NetnsView, ns: &'a NetnsState },
}

/// The target's main interface and what hangs off it.
pub(super) struct Iface<'a> {
    pub key: NetnsKey,
    pub view: &'a NetnsView,
    pub ns: &'a NetnsState,
    pub host: &'a NetnsState,
    pub i: &'a NetnsIface,
    pub name: &'a str,
    /// Its IPv4 addresses.
    pub nets: Vec<Ipv4Net>,
    /// The netns's IPv4 default route in the main table.
    pub default: Option<&'a Route>,
    /// The host end of its veth, when it has one.
    pub veth: Option<Veth<'a>>,
}

/// The host end of the target's veth.
pub(super) struct Veth<'a> {
    pub hv: &'a IfaceRef,
    /// Its link in the host netns.
    pub hl: Option<&'a Link>,
    /// The bridge it is a port of.
    pub bridge: Option<Bridge<'a>>,
}

/// The bridge the host veth is a port of.
pub(super) struct Bridge<'a> {
    pub br: &'a str,
    /// The bridge as the topology sees it (missing if it is not in the snapshot).
    pub bv: Option<&'a BridgeView>,
}

impl Iface<'_> {
    /// The subnet of its first IPv4 address.
    pub fn subnet(&self) -> Option<Ipv4Net> {
        self.nets.first().map(|n| n.trunc())
    }
}

impl<'a> Ctx<'a> {
    pub fn new(
        snap: &'a Snapshot,
        topo: &'a Topology,
        flow: &'a crate::flow::Tracer<'a>,
        t: &'a Resolved,
    ) -> Self {
        Ctx {
            snap,
            flow,
            t,
            at: resolve(snap, topo, t),
        }
    }

    /// The target's interface, once its netns resolved.
    pub fn iface(&self) -> Option<&Iface<'a>> {
        self.at.as_ref().ok()
    }

    /// The interface and the host end of its veth.
    pub fn veth(&self) -> Option<(&Iface<'a>, &Veth<'a>)> {
        let a = self.iface()?;
        Some((a, a.veth.as_ref()?))
    }

    /// The interface, its host veth and the bridge that veth is a port of: what every
    /// check past `bridge.attached` needs.
    pub fn bridge(&self) -> Option<(&Iface<'a>, &Veth<'a>, &Bridge<'a>)> {
        let (a, v) = self.veth()?;
        Some((a, v, v.bridge.as_ref()?))
    }

    /// The IPv4 default gateway on a bridged path with a default route, with the bridge
    /// as the topology sees it.
    pub fn v4_gateway(&self) -> Option<(&Iface<'a>, &Bridge<'a>, &'a BridgeView, Ipv4Addr)> {
        let (a, _, b) = self.bridge()?;
        let (Some(_), Some(IpAddr::V4(g)), Some(bv)) = (a.default, a.i.gateway, b.bv) else {
            return None;
        };
        Some((a, b, bv, g))
    }
}

fn resolve<'a>(snap: &'a Snapshot, topo: &'a Topology, t: &'a Resolved) -> Result<Iface<'a>, Unresolved<'a>> {
    let key = t.netns.ok_or(Unresolved::NoNetns)?;
    if key == snap.host {
        return Err(Unresolved::HostNetns);
    }
    let (Some(view), Some(ns), Some(host)) = (
        topo.netns.iter().find(|n| n.key == key),
        snap.netns_by_key(key),
        snap.host_netns(),
    ) else {
        return Err(Unresolved::NotInSnapshot);
    };
    let i = main_iface(view).ok_or(Unresolved::OnlyLo { view, ns })?;
    let veth = i.host_veth.as_ref().map(|hv| Veth {
        hv,
        hl: host.link(hv.ifindex),
        bridge: i.bridge.as_deref().map(|br| Bridge {
            br,
            bv: topo.bridges.iter().find(|b| b.iface.name == br),
        }),
    });
    Ok(Iface {
        key,
        view,
        ns,
        host,
        i,
        name: &i.iface.name,
        nets: v4_nets(&i.ips),
        default: ns
            .routes
            .iter()
            .find(|r| r.dst == "default" && r.family == "inet" && r.table == 254),
        veth,
    })
}

/// The container-side interface a check looks at: the one the default route leaves
/// through, else the first with a host veth, else the first at all.
fn main_iface(view: &NetnsView) -> Option<&NetnsIface> {
    view.ifaces
        .iter()
        .find(|i| i.gateway.is_some() && i.host_veth.is_some())
        .or_else(|| view.ifaces.iter().find(|i| i.host_veth.is_some()))
        .or(view.ifaces.first())
}

/// What a check of a target and its peer reads.
pub(super) struct PairCtx<'a> {
    pub snap: &'a Snapshot,
    pub topo: &'a Topology,
    pub t: &'a Resolved,
    pub p: &'a Resolved,
    /// Both interfaces, when both sides have one.
    pub sides: Option<Sides<'a>>,
}

/// The two interfaces compared (on a shared bridge when the containers have several)
/// and what follows from them.
pub(super) struct Sides<'a> {
    pub tv: &'a NetnsView,
    pub tns: &'a NetnsState,
    pub ti: &'a NetnsIface,
    pub pv: &'a NetnsView,
    pub pns: &'a NetnsState,
    pub pi: &'a NetnsIface,
    /// Both on one bridge.
    pub same: bool,
    /// The target's first IPv4 subnet and the peer's first IPv4 address, when both
    /// have one.
    pub addrs: Option<(Ipv4Net, Ipv4Addr)>,
    /// The engine's ping from the target to the peer, and back.
    pub trace: Result<Trace, FlowError>,
}

impl<'a> PairCtx<'a> {
    pub fn new(snap: &'a Snapshot, topo: &'a Topology, t: &'a Resolved, p: &'a Resolved) -> Self {
        PairCtx {
            snap,
            topo,
            t,
            p,
            sides: sides(snap, topo, t, p),
        }
    }
}

fn sides<'a>(snap: &'a Snapshot, topo: &'a Topology, t: &'a Resolved, p: &'a Resolved) -> Option<Sides<'a>> {
    let get = |r: &Resolved| {
        let key = r.netns?;
        let view = topo.netns.iter().find(|n| n.key == key)?;
        Some((key, view, snap.netns_by_key(key)?, main_iface(view)?))
    };
    let ((a, tv, tns, mut ti), (b, pv, pns, mut pi)) = (get(t)?, get(p)?);
    // Containers on several networks: compare the interfaces that share a bridge.
    if let Some((x, y)) = tv.ifaces.iter().find_map(|x| {
        pv.ifaces
            .iter()
            .find(|y| x.bridge.is_some() && x.bridge == y.bridge)
            .map(|y| (x, y))
    }) {
        ti = x;
        pi = y;
    }
    let same = ti.bridge.is_some() && ti.bridge == pi.bridge;
    let t_nets = v4_nets(&ti.ips);
    let p_ips: Vec<Ipv4Addr> = v4_nets(&pi.ips).iter().map(|n| n.addr()).collect();
    let addrs = t_nets.first().copied().zip(p_ips.first().copied());
    // The whole path, both ways, as the engine walks it: routing, bridge, FDB,
    // neighbours, sysctls and every netfilter hook.
    let spec = FlowSpec::new(
        Source::Netns { netns: a, addr: None },
        Destination::Netns { netns: b },
        L4::Icmp,
    );
    Some(Sides {
        tv,
        tns,
        ti,
        pv,
        pns,
        pi,
        same,
        addrs,
        trace: crate::flow::trace(snap, &spec),
    })
}
