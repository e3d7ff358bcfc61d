//! Flows: one packet walked hop by hop through a snapshot the way the kernel would
//! move it, and its reply, with the verdict of every step and the rule that decided it.
//!
//! A flow is a source (a netns and its address, the host, or a client beyond a host
//! interface), a destination address, a protocol and ports. [`trace`] walks its first
//! packet (conntrack NEW) from the source: in each netns the routing decision (longest
//! prefix of the main table, the local addresses), `ip_forward` and `rp_filter`,
//! netfilter in hook order (raw, mangle, nat DNAT, routing, filter, nat SNAT; every
//! iptables-nft, iptables-legacy and native nft base chain on the hook ordered by
//! priority), the bridge (port state, FDB, isolation, the bridge family's chains and,
//! with br_netfilter, the IP hooks with `physdev`), then across each veth to its peer.
//! NAT rewrites the packet as the kernel would and conntrack undoes it for the reply,
//! which is walked back the same way as ESTABLISHED; for TCP the handshake's ACK is
//! walked too, since a rule refusing it fails `connect()`.
//!
//! The verdict is [`Reach::Reachable`], [`Reach::Unreachable`] (a hop surely drops) or
//! [`Reach::Ambiguous`] (a *may* rule or a part the engine does not model decides):
//! never a silent allow. What the engine assumed is listed with the result.
//!
//! ```
//! use ctnet_core::flow::{self, Destination, FlowSpec, L4, Source};
//! use ctnet_core::model::Snapshot;
//!
//! let snap = Snapshot::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/lab-healthy.json")).unwrap();
//! let c1 = snap.netns.iter().find(|n| n.label() == "c1").unwrap().key;
//! let c2 = snap.netns.iter().find(|n| n.label() == "c2").unwrap().key;
//! let spec = FlowSpec::new(Source::Netns { netns: c1, addr: None }, Destination::Netns { netns: c2 }, L4::Icmp);
//! let t = flow::trace(&snap, &spec).unwrap();
//! assert_eq!(t.verdict, flow::Reach::Reachable, "{:#?}", t.hops);
//! ```

use crate::vocab::{LinkKind, NeighState, PortState};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::model::{Link, NetnsState, Snapshot};
use crate::netfilter::{self, ConnState, Context, Counters, CtDir, Decider, NatKind, Packet, Verdict};
use crate::netns::NetnsKey;
use crate::vocab::SourceState;

mod hooks;
mod kernel;
mod route;

pub use kernel::KernelRouter;
#[cfg(test)]
mod tests;

use hooks::Firewall;
pub use hooks::Hook;
use route::RouteResult;

/// Schema tag of a trace document.
pub const TRACE_SCHEMA: &str = "ctnet.trace/v1";

/// The layer-4 part of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "proto", content = "port")]
pub enum L4 {
    /// TCP to this port.
    Tcp(u16),
    /// UDP to this port.
    Udp(u16),
    /// ICMP echo (ping).
    Icmp,
}

/// Where a flow starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// A process in a netns (a container): its address, or the one its route picks.
    Netns {
        /// The netns.
        netns: NetnsKey,
        /// The source address; `None` picks it from the route, as the kernel does.
        addr: Option<IpAddr>,
    },
    /// A process of the host itself.
    Host {
        /// The source address; `None` picks it from the route.
        addr: Option<IpAddr>,
    },
    /// A client beyond a host interface (by default the one of the default route).
    External {
        /// The client's address; `None` uses 198.51.100.10 (TEST-NET-2).
        addr: Option<IpAddr>,
        /// The host interface the packet arrives on.
        iface: Option<String>,
    },
}

/// Where a flow goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Destination {
    /// An address.
    Addr {
        /// The address.
        addr: IpAddr,
    },
    /// A netns (a container): its address on the source's side.
    Netns {
        /// The netns.
        netns: NetnsKey,
    },
    /// The host's own address where the flow arrives (the uplink's for an external
    /// source, the gateway for a container).
    Host,
}

/// A flow to trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSpec {
    /// Where it starts.
    pub src: Source,
    /// Where it goes.
    pub dst: Destination,
    /// Protocol and destination port.
    pub l4: L4,
    /// Source port (default 40000).
    pub sport: Option<u16>,
    /// The IP length of its packets in bytes, sent with DF set (as `ping -M do -s
    /// SIZE-28`): each interface whose MTU is smaller drops them with "fragmentation
    /// needed". `None`: small packets, no MTU is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
}

impl FlowSpec {
    /// A flow with the default source port.
    pub fn new(src: Source, dst: Destination, l4: L4) -> FlowSpec {
        FlowSpec {
            src,
            dst,
            l4,
            sport: None,
            size: None,
        }
    }
}

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// Every hop lets the packet and its reply through.
    Reachable,
    /// A hop surely drops or rejects it (or its reply).
    Unreachable,
    /// A *may* rule or an unmodelled part decides.
    Ambiguous,
}

/// What happened at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HopVerdict {
    /// The packet goes on.
    Allow,
    /// Dropped here.
    Drop,
    /// Refused with an ICMP error or a TCP reset.
    Reject,
    /// Rewritten by NAT, and goes on.
    Nat,
    /// Arrived: delivered to the destination (or out of the host toward it).
    Deliver,
    /// Not decidable here: a *may* rule or a part the engine does not model.
    May,
}

/// A rule as a hop quotes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleView {
    /// `iptables`, `iptables-legacy`, `ip6tables`, or `nft` (native).
    pub source: String,
    /// Table (`filter`; `inet firewalld` for nft).
    pub table: String,
    /// Chain.
    pub chain: String,
    /// 1-based position in the chain; `None` for a policy.
    pub position: Option<u32>,
    /// nft handle.
    pub handle: Option<u64>,
    /// Counters when known.
    pub counters: Option<Counters>,
}

impl RuleView {
    /// Where the rule is, as the trace prints it: `iptables filter FORWARD rule 1`,
    /// `nft inet ctnet_fault forward handle 4`, or the chain alone for a policy.
    pub fn place(&self) -> String {
        let at = match (self.position, self.handle) {
            (_, Some(h)) => format!(" handle {h}"),
            (Some(p), None) => format!(" rule {p}"),
            (None, None) => String::new(),
        };
        format!("{} {} {}{at}", self.source, self.table, self.chain)
    }

    /// Its packet counter as the trace prints it (`  (3 packets so far)`), or nothing.
    pub fn so_far(&self) -> String {
        self.counters
            .map(|c| format!("  ({} packets so far)", c.packets))
            .unwrap_or_default()
    }
}

/// One step of a walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hop {
    /// The netns (its label).
    pub netns: String,
    /// The interface involved (in, out, or the one the step is about).
    pub iface: Option<String>,
    /// What the step is: `route`, `forward`, `bridge`, `fdb`, `neighbour`, `link`,
    /// `rp_filter`, `veth`, `deliver`, or a hook `HOOK/TABLE/CHAIN` (`prerouting/nat/PREROUTING`).
    pub step: String,
    /// What happened.
    pub verdict: HopVerdict,
    /// The deciding rule's text, or `policy DROP`; `None` for a step that is not a rule.
    pub rule: Option<String>,
    /// Where that rule is.
    pub rule_ref: Option<RuleView>,
    /// One sentence on what happened and why.
    pub detail: String,
    /// The packet as it leaves the step (`tcp 10.0.0.2:40000 > 10.0.1.2:80`).
    pub packet: String,
}

/// The flow as traced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowView {
    /// Source as given (label).
    pub src: String,
    /// Destination as given (label).
    pub dst: String,
    /// Source address used.
    pub src_addr: IpAddr,
    /// Destination address used.
    pub dst_addr: IpAddr,
    /// `tcp`, `udp`, `icmp`.
    pub proto: String,
    /// Source port (TCP/UDP).
    pub sport: Option<u16>,
    /// Destination port (TCP/UDP).
    pub dport: Option<u16>,
}

/// The result of [`trace`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// Always [`TRACE_SCHEMA`].
    pub schema: String,
    /// The answer.
    pub verdict: Reach,
    /// What decided it, in one sentence.
    pub summary: String,
    /// The flow.
    pub flow: FlowView,
    /// The first packet's walk (conntrack NEW).
    pub hops: Vec<Hop>,
    /// The reply's walk (ESTABLISHED); empty when the first packet does not arrive.
    pub reply: Vec<Hop>,
    /// For TCP: the handshake's ACK (ESTABLISHED, original direction).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub established: Vec<Hop>,
    /// What the engine assumed (unread rule sets, routing tables it cannot choose).
    pub assumptions: Vec<String>,
    /// Netns the walk needed to look into that the snapshot read only in part (a scan
    /// with [`crate::source::Depth::Links`]): read them with [`crate::source::deepen`]
    /// and trace again.
    #[serde(skip)]
    pub needs: Vec<NetnsKey>,
}

/// What the kernel answered for one routing decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelRoute {
    /// The route it chose (`table` says which table policy routing led to).
    Route(crate::model::Route),
    /// It refused with this errno (ENETUNREACH: no route; EHOSTUNREACH, EACCES:
    /// unreachable, prohibit; EINVAL: a blackhole, or a source it rejects).
    Refused(i32),
}

/// Where a trace takes its routing decisions from besides the snapshot's tables: the
/// kernel itself on a live host ([`KernelRouter`]).
pub trait Router {
    /// The decision for a packet to `dst` in netns `ns`, from `src`, in on `iif` (an
    /// input route) or sent locally (`None`), with `mark`; `None` when not known here
    /// (the snapshot's tables decide).
    fn route(
        &self,
        ns: NetnsKey,
        dst: IpAddr,
        src: Option<IpAddr>,
        iif: Option<u32>,
        mark: u32,
    ) -> Option<KernelRoute>;
}

/// Why a flow cannot be traced at all. Names in the message are escaped
/// ([`crate::text::escape`]): it is meant for a terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The source or destination has no usable address or netns.
    #[error("{0}")]
    Endpoint(String),
}

/// How one walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Delivered in a netns (where the destination address is local).
    Delivered(NetnsKey),
    /// Left the host through an interface the engine does not follow further.
    LeftHost,
    /// Dropped or rejected.
    Dropped,
    /// The engine cannot go on.
    Stuck,
}

/// One leg (the first packet, the reply, the ACK).
struct Leg {
    hops: Vec<Hop>,
    end: End,
    /// A *may* was passed on the way.
    may: bool,
    /// The packet as delivered.
    packet: Packet,
    /// Unread netns the walk needed.
    needs: Vec<NetnsKey>,
    /// Every netns the walk entered.
    visited: Vec<NetnsKey>,
}

/// An address and port (`None` for ICMP).
type Tuple = (IpAddr, Option<u16>);

/// The NAT conntrack recorded in one netns.
#[derive(Debug, Clone, Default)]
struct Conn {
    /// (original dst, original dport) -> (new dst, new dport).
    dnat: Option<(Tuple, Tuple)>,
    /// (original src, original sport) -> (new src, new sport).
    snat: Option<(Tuple, Tuple)>,
    /// `NOTRACK` applied in this netns.
    untracked: bool,
}

/// The leg being walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The first packet: NEW, NAT chains run.
    New,
    /// The reply: ESTABLISHED, REPLY; conntrack undoes the NAT.
    Reply,
    /// A later packet of the original direction: ESTABLISHED, ORIGINAL.
    Again,
}

/// The snapshot joined for walking: netns by key, veth peers, firewalls.
struct World<'a> {
    snap: &'a Snapshot,
    netns: HashMap<NetnsKey, &'a NetnsState>,
    peers: HashMap<(NetnsKey, u32), (NetnsKey, u32)>,
    /// Firewalls by netns (the host's only: the snapshot reads no other).
    firewalls: HashMap<NetnsKey, Firewall>,
    assumptions: Vec<String>,
    /// Why the host's rules are not all known, when they are not.
    firewall_gap: Option<String>,
    /// The kernel, when asked live.
    router: Option<&'a dyn Router>,
}

const DEFAULT_SPORT: u16 = 40000;
const DEFAULT_EXTERNAL: &str = "198.51.100.10";
/// The most hops one walk takes before it calls the path a loop.
const MAX_HOPS: usize = 64;

impl<'a> World<'a> {
    fn new(snap: &'a Snapshot) -> World<'a> {
        let netns: HashMap<NetnsKey, &NetnsState> = snap.netns.iter().map(|n| (n.key, n)).collect();
        let mut peers = HashMap::new();
        for ns in &snap.netns {
            let mut ids: HashMap<i32, NetnsKey> = ns.peer_ids.iter().map(|(i, k)| (*i, *k)).collect();
            if let Some(h) = ns.host_nsid {
                ids.insert(h, snap.host);
            }
            if ns.key == snap.host {
                // The host's ids for the others are what each other netns records as
                // its `nsid`.
                for other in snap.netns.iter().filter(|o| o.key != snap.host) {
                    if let Some(id) = other.nsid {
                        ids.entry(id).or_insert(other.key);
                    }
                }
            }
            for l in &ns.links {
                if l.kind != Some(LinkKind::Veth) {
                    continue;
                }
                let Some(peer_ix) = l.link else { continue };
                let peer_ns = match l.link_netnsid {
                    None => Some(ns.key),
                    Some(id) => ids.get(&id).copied(),
                };
                if let Some(p) = peer_ns.filter(|k| netns.contains_key(k)) {
                    peers.insert((ns.key, l.ifindex), (p, peer_ix));
                    peers.entry((p, peer_ix)).or_insert((ns.key, l.ifindex));
                }
            }
        }
        let mut assumptions = Vec::new();
        let mut firewalls = HashMap::new();
        // A rule set the scan failed to read is not an empty one.
        let gaps: Vec<String> = snap
            .sources
            .iter()
            .filter(|s| {
                s.status == SourceState::Failed
                    && (s.source.contains("tables") || s.source == "nft" || s.source == "firewall")
            })
            .map(|s| format!("{}: {}", s.source, s.detail.as_deref().unwrap_or("failed")))
            .collect();
        let firewall_gap = match (&snap.firewall, gaps.is_empty()) {
            (None, _) => Some("the snapshot holds no firewall rules of the host".to_string()),
            (Some(_), false) => Some(format!(
                "some firewall rules could not be read ({})",
                gaps.join("; ")
            )),
            (Some(_), true) => None,
        };
        if let Some(fw) = &snap.firewall {
            let (f, notes) = Firewall::from_snapshot(fw, snap.host_netns());
            assumptions.extend(notes);
            firewalls.insert(snap.host, f);
        }
        // The netns whose own rules were read (a container's nat table, its INPUT).
        for ns in snap.netns.iter().filter(|n| n.key != snap.host) {
            if let Some(fw) = &ns.firewall {
                let (f, notes) = Firewall::from_snapshot(fw, Some(ns));
                assumptions.extend(notes.into_iter().map(|n| format!("{}: {n}", ns.label())));
                firewalls.insert(ns.key, f);
            }
        }
        World {
            snap,
            netns,
            peers,
            firewalls,
            assumptions,
            firewall_gap,
            router: None,
        }
    }

    fn ns(&self, key: NetnsKey) -> Option<&'a NetnsState> {
        self.netns.get(&key).copied()
    }

    /// A netns the snapshot read only in part: no links at all (not even `lo`), or
    /// links and addresses without routes and sysctls (a [`crate::source::Depth::Links`]
    /// scan, where `ip_forward`, always readable in a full read, stays unknown).
    fn unread(&self, key: NetnsKey) -> bool {
        key != self.snap.host
            && self.ns(key).is_some_and(|n| {
                n.read_error.is_none() && (n.links.is_empty() || n.sysctls.ip_forward.is_none())
            })
    }

    fn label(&self, key: NetnsKey) -> String {
        if key == self.snap.host {
            return "host".into();
        }
        let ns = self.ns(key);
        let container = self
            .snap
            .containers
            .iter()
            .find(|c| c.netns == Some(key) && c.is_running());
        match (container, ns) {
            (Some(c), _) => c.name.clone(),
            (None, Some(ns)) => ns.label(),
            (None, None) => format!("netns {}:{}", key.dev, key.ino),
        }
    }
}

fn link_name(ns: &NetnsState, ifindex: u32) -> String {
    ns.link(ifindex)
        .map(|l| l.name.clone())
        .unwrap_or_else(|| format!("if{ifindex}"))
}

fn describe_packet(p: &Packet) -> String {
    let proto = match p.proto {
        netfilter::Proto::Tcp => "tcp",
        netfilter::Proto::Udp => "udp",
        netfilter::Proto::Icmp => "icmp",
        netfilter::Proto::Icmpv6 => "icmpv6",
        netfilter::Proto::Other(_) => "ip",
    };
    match (p.sport, p.dport) {
        (Some(s), Some(d)) => format!("{proto} {}:{s} > {}:{d}", p.src, p.dst),
        _ => match p.icmp {
            Some((8 | 128, _)) => format!("{proto} {} > {} echo request", p.src, p.dst),
            Some((0 | 129, _)) => format!("{proto} {} > {} echo reply", p.src, p.dst),
            _ => format!("{proto} {} > {}", p.src, p.dst),
        },
    }
}

/// The walker of one leg.
struct Walk<'w, 'a> {
    world: &'w World<'a>,
    phase: Phase,
    conns: &'w mut HashMap<NetnsKey, Conn>,
    hops: Vec<Hop>,
    may: bool,
    /// Where the walk started (a reply ends there).
    target: Option<NetnsKey>,
    /// The firewall gap was said on this walk.
    gap_said: bool,
    /// Unread netns the walk needed.
    needs: Vec<NetnsKey>,
    /// Every netns the walk entered.
    visited: Vec<NetnsKey>,
    /// Set when a packet was delivered to a VXLAN device's UDP socket: its netns and
    /// ifindex (see [`Walk::vxlan_out`]).
    decap: Option<(NetnsKey, u32)>,
}

impl<'w, 'a> Walk<'w, 'a> {
    fn visit(&mut self, ns: NetnsKey) {
        if !self.visited.contains(&ns) {
            self.visited.push(ns);
        }
    }

    fn hop(
        &mut self,
        ns: NetnsKey,
        iface: Option<String>,
        step: &str,
        verdict: HopVerdict,
        detail: String,
        p: &Packet,
    ) {
        if verdict == HopVerdict::May {
            self.may = true;
        }
        self.hops.push(Hop {
            netns: self.world.label(ns),
            iface,
            step: step.into(),
            verdict,
            rule: None,
            rule_ref: None,
            detail,
            packet: describe_packet(p),
        });
    }

    fn state_for(&self, ns: NetnsKey) -> (ConnState, CtDir) {
        let untracked = self.conns.get(&ns).is_some_and(|c| c.untracked);
        if untracked {
            return (ConnState::Untracked, CtDir::Original);
        }
        match self.phase {
            Phase::New => (ConnState::New, CtDir::Original),
            Phase::Reply => (ConnState::Established, CtDir::Reply),
            Phase::Again => (ConnState::Established, CtDir::Original),
        }
    }

    /// Set the conntrack facts of `ns` on the packet.
    fn enter(&self, ns: NetnsKey, p: &mut Packet) {
        let (state, dir) = self.state_for(ns);
        p.ct_state = state;
        p.ct_dir = dir;
        let c = self.conns.get(&ns);
        p.ct_snat = c.is_some_and(|c| c.snat.is_some());
        p.ct_dnat = c.is_some_and(|c| c.dnat.is_some());
    }

    /// Run the netfilter hook `hook` of `ns` on `p`. `false` when the packet dies.
    fn netfilter(&mut self, ns: NetnsKey, hook: Hook, p: &mut Packet, bridge_family: bool) -> bool {
        if ns == self.world.snap.host && !self.gap_said {
            if let Some(gap) = &self.world.firewall_gap {
                // Never a silent allow: what was not read could drop the packet.
                self.gap_said = true;
                let iface = p.iif.clone().or(p.oif.clone());
                self.hop(
                    ns,
                    iface,
                    "netfilter",
                    HopVerdict::May,
                    format!("{gap}: what they do to this packet is unknown (take the snapshot as root)"),
                    p,
                );
            }
        }
        // A new connection needs a conntrack entry: with the netns's table full (its count
        // at the host's nf_conntrack_max), conntrack drops the packet at its hook.
        if self.phase == Phase::New
            && p.ct_state == ConnState::New
            && matches!(hook, Hook::Prerouting | Hook::Output)
            && !bridge_family
            && let Some(state) = self.world.ns(ns)
            && let Some(count) = state.sysctls.conntrack_count
            && let Some(max) = self
                .world
                .ns(self.world.snap.host)
                .and_then(|h| h.sysctls.conntrack_max)
                .or(state.sysctls.conntrack_max)
            && max > 0
            && count >= max
        {
            let iface = p.iif.clone().or(p.oif.clone());
            self.hop(
                ns,
                iface,
                "conntrack",
                HopVerdict::Drop,
                format!(
                    "the conntrack table is full ({count} of nf_conntrack_max {max}): a new connection gets no \
                     entry and its packet is dropped"
                ),
                p,
            );
            return false;
        }
        // The world outlives this walk: its firewall is borrowed, not cloned (the
        // context holds every host address and ipset, once per hook).
        let world = self.world;
        let Some(fw) = world.firewalls.get(&ns) else {
            return true;
        };
        let allow_nat = self.phase == Phase::New && p.ct_state != ConnState::Untracked;
        let ctx = &fw.context;
        let mut nat_done = false;
        for chain in fw.chains(hook, p.family(), bridge_family) {
            if chain.is_nat() && (!allow_nat || nat_done) {
                continue;
            }
            let out = fw.evaluate(chain, p, ctx);
            if let Some(m) = out.mark {
                p.mark = m;
            }
            if let Some(m) = out.ctmark {
                p.ctmark = m;
            }
            if out.notrack && p.ct_state == ConnState::New {
                self.conns.entry(ns).or_default().untracked = true;
                p.ct_state = ConnState::Untracked;
            }
            let (rule, rule_ref) = quote(chain, &out.decided_by);
            let step = chain.step_name(hook);
            let iface = match hook {
                Hook::Prerouting | Hook::Input | Hook::Ingress => p.iif.clone(),
                _ => p.oif.clone(),
            };
            let decided_by_rule = matches!(out.decided_by, Some(Decider::Rule(_)));
            let push = |w: &mut Self, verdict: HopVerdict, detail: String, p: &Packet| {
                if verdict == HopVerdict::May {
                    w.may = true;
                }
                w.hops.push(Hop {
                    netns: w.world.label(ns),
                    iface: iface.clone(),
                    step: step.clone(),
                    verdict,
                    rule: rule.clone(),
                    rule_ref: rule_ref.clone(),
                    detail,
                    packet: describe_packet(p),
                });
            };
            match out.verdict {
                Verdict::Accept | Verdict::Return => {
                    // An accept by a rule or a non-empty chain's policy is worth a line;
                    // an empty chain with policy ACCEPT is not.
                    if decided_by_rule || chain.rule_count() > 0 || !chain.is_nat() {
                        let why = if decided_by_rule {
                            "accepted by a rule"
                        } else {
                            "accepted by the policy"
                        };
                        push(self, HopVerdict::Allow, why.into(), p);
                    }
                }
                Verdict::Drop => {
                    let why = if decided_by_rule {
                        "dropped by a rule"
                    } else {
                        "dropped by the chain's policy"
                    };
                    push(self, HopVerdict::Drop, why.into(), p);
                    return false;
                }
                Verdict::Reject { with } => {
                    let with = with.unwrap_or_else(|| "icmp-port-unreachable".into());
                    push(self, HopVerdict::Reject, format!("rejected with {with}"), p);
                    return false;
                }
                Verdict::Nat { kind, to, to_ports } => {
                    nat_done = true;
                    match self.apply_nat(ns, kind, to, to_ports, p) {
                        Ok(detail) => push(self, HopVerdict::Nat, detail, p),
                        Err(detail) => {
                            push(self, HopVerdict::May, detail, p);
                        }
                    }
                }
                Verdict::May { candidates, open } => {
                    let dies = |v: &Verdict| matches!(v, Verdict::Drop | Verdict::Reject { .. });
                    if !open && !candidates.is_empty() && candidates.iter().all(dies) {
                        push(
                            self,
                            HopVerdict::Drop,
                            "dropped whichever way the undecidable rule goes".into(),
                            p,
                        );
                        return false;
                    }
                    let words: Vec<String> = candidates.iter().map(verdict_word).collect();
                    let detail = format!(
                        "a rule the engine cannot decide from the packet alone leads to {}{}",
                        if words.is_empty() {
                            "an unknown verdict".into()
                        } else {
                            words.join(" or ")
                        },
                        if open {
                            " (or a verdict it does not model)"
                        } else {
                            ""
                        }
                    );
                    push(self, HopVerdict::May, detail, p);
                    if candidates.iter().any(|v| matches!(v, Verdict::Nat { .. })) {
                        // Where the packet goes next depends on it: stop here.
                        return false;
                    }
                }
                Verdict::Error { message } => {
                    push(
                        self,
                        HopVerdict::May,
                        format!(
                            "this table cannot be evaluated ({message}); the kernel would refuse to load it"
                        ),
                        p,
                    );
                    return false;
                }
            }
        }
        true
    }

    /// Rewrite `p` as the NAT target does and record it in `ns`'s conntrack.
    fn apply_nat(
        &mut self,
        ns: NetnsKey,
        kind: NatKind,
        to: Option<netfilter::NatRange>,
        to_ports: Option<netfilter::PortRange>,
        p: &mut Packet,
    ) -> Result<String, String> {
        let before = (p.src, p.sport, p.dst, p.dport);
        let port_of = |r: Option<netfilter::PortRange>, cur: Option<u16>| r.map(|r| r.first).or(cur);
        match kind {
            NatKind::Dnat => {
                let to = to.ok_or("DNAT without an address")?;
                if let Some(a) = to.addr_first {
                    p.dst = a;
                }
                p.dport = port_of(to.ports, p.dport);
                p.ct_dnat = true;
            }
            NatKind::Redirect => {
                let state = self.world.ns(ns).ok_or("netns not read")?;
                let addr = match &p.iif {
                    Some(i) => state
                        .link_by_name(i)
                        .and_then(|l| primary_addr(state, l.ifindex, p.dst.is_ipv4()))
                        .ok_or_else(|| format!("REDIRECT: {i} has no address"))?,
                    None => {
                        if p.dst.is_ipv4() {
                            "127.0.0.1".parse().unwrap()
                        } else {
                            "::1".parse().unwrap()
                        }
                    }
                };
                p.dst = addr;
                p.dport = port_of(to_ports, p.dport);
                p.ct_dnat = true;
            }
            NatKind::Snat => {
                let to = to.ok_or("SNAT without an address")?;
                if let Some(a) = to.addr_first {
                    p.src = a;
                }
                p.sport = port_of(to.ports, p.sport);
                p.ct_snat = true;
            }
            NatKind::Masquerade => {
                let state = self.world.ns(ns).ok_or("netns not read")?;
                let oif = p.oif.clone().ok_or("MASQUERADE without an output interface")?;
                let Some(l) = state.link_by_name(&oif) else {
                    // An uplink the snapshot does not hold (a check's egress on a host
                    // without a default route): the rule applies, the address is unknown.
                    return Ok(format!(
                        "MASQUERADE {} to the address of {oif}",
                        endpoint(p.src, p.sport)
                    ));
                };
                let route = route::lookup(state, p.dst, None);
                let addr = match route {
                    RouteResult::Unicast { prefsrc: Some(s), .. } => Some(s),
                    _ => None,
                }
                .or_else(|| primary_addr(state, l.ifindex, p.dst.is_ipv4()))
                .ok_or_else(|| format!("MASQUERADE: {oif} has no address"))?;
                p.src = addr;
                p.sport = port_of(to_ports, p.sport);
                p.ct_snat = true;
            }
        }
        let conn = self.conns.entry(ns).or_default();
        let detail = match kind {
            NatKind::Dnat | NatKind::Redirect => {
                conn.dnat = Some(((before.2, before.3), (p.dst, p.dport)));
                format!(
                    "{} {} to {}",
                    if kind == NatKind::Dnat { "DNAT" } else { "REDIRECT" },
                    endpoint(before.2, before.3),
                    endpoint(p.dst, p.dport)
                )
            }
            NatKind::Snat | NatKind::Masquerade => {
                conn.snat = Some(((before.0, before.1), (p.src, p.sport)));
                format!(
                    "{} {} to {}",
                    if kind == NatKind::Snat {
                        "SNAT"
                    } else {
                        "MASQUERADE"
                    },
                    endpoint(before.0, before.1),
                    endpoint(p.src, p.sport)
                )
            }
        };
        Ok(detail)
    }

    /// Conntrack's own NAT for a packet of a known connection: the reply's
    /// destination back to the original source (before routing), or the original
    /// direction's again. Returns a description when it rewrote something.
    fn conntrack_pre(&mut self, ns: NetnsKey, p: &mut Packet) -> Option<String> {
        let c = self.conns.get(&ns)?.clone();
        match self.phase {
            Phase::Reply => {
                let ((os, osp), (ns_, nsp)) = c.snat?;
                (p.dst == ns_ && p.dport == nsp).then(|| {
                    p.dst = os;
                    p.dport = osp;
                    format!(
                        "conntrack undoes the source NAT: destination back to {}",
                        endpoint(os, osp)
                    )
                })
            }
            Phase::Again => {
                let ((od, odp), (nd, ndp)) = c.dnat?;
                (p.dst == od && p.dport == odp).then(|| {
                    p.dst = nd;
                    p.dport = ndp;
                    format!("conntrack applies the connection's DNAT: {}", endpoint(nd, ndp))
                })
            }
            Phase::New => None,
        }
    }

    /// Conntrack's NAT after routing (POSTROUTING or local input).
    fn conntrack_post(&mut self, ns: NetnsKey, p: &mut Packet) -> Option<String> {
        let c = self.conns.get(&ns)?.clone();
        match self.phase {
            Phase::Reply => {
                let ((od, odp), (nd, ndp)) = c.dnat?;
                (p.src == nd && p.sport == ndp).then(|| {
                    p.src = od;
                    p.sport = odp;
                    format!("conntrack undoes the DNAT: source back to {}", endpoint(od, odp))
                })
            }
            Phase::Again => {
                let ((os, osp), (ns_, nsp)) = c.snat?;
                (p.src == os && p.sport == osp).then(|| {
                    p.src = ns_;
                    p.sport = nsp;
                    format!(
                        "conntrack applies the connection's source NAT: {}",
                        endpoint(ns_, nsp)
                    )
                })
            }
            Phase::New => None,
        }
    }

    fn conntrack_hop(&mut self, ns: NetnsKey, iface: Option<String>, detail: Option<String>, p: &Packet) {
        if let Some(d) = detail {
            self.hop(ns, iface, "conntrack", HopVerdict::Nat, d, p);
        }
    }

    /// A packet sent by a process of `ns`.
    fn local_out(&mut self, ns: NetnsKey, mut p: Packet) -> (End, Packet) {
        self.visit(ns);
        if self.stop_unread(ns, &p) {
            return (End::Stuck, p);
        }
        let Some(state) = self.world.ns(ns) else {
            self.hop(
                ns,
                None,
                "netns",
                HopVerdict::May,
                "this netns was not read".into(),
                &p,
            );
            return (End::Stuck, p);
        };
        self.enter(ns, &mut p);
        p.iif = None;
        let first = self.route(ns, state, &p, None);
        let (oif, _) = match self.route_hop(ns, state, &first, &p, None) {
            Some(x) => x,
            None => return (End::Dropped, p),
        };
        p.oif = Some(oif.clone());
        if let Some(d) = self.conntrack_pre(ns, &mut p) {
            self.conntrack_hop(ns, Some(oif.clone()), Some(d), &p);
        }
        if !self.netfilter(ns, Hook::Output, &mut p, false) {
            return (self.dead_end(), p);
        }
        // A DNAT at OUTPUT routes again.
        let route = self.route(ns, state, &p, None);
        let Some((oif, nh)) = self.route_target(state, &route) else {
            self.hop(
                ns,
                None,
                "route",
                HopVerdict::Drop,
                format!("no route to {} after NAT", p.dst),
                &p,
            );
            return (End::Dropped, p);
        };
        p.oif = Some(oif.clone());
        if matches!(route, RouteResult::Local { .. }) {
            // To itself: over lo, through POSTROUTING and INPUT.
            if !self.netfilter(ns, Hook::Postrouting, &mut p, false) {
                return (self.dead_end(), p);
            }
            p.iif = Some("lo".into());
            p.oif = None;
            return self.local_in(ns, "lo".into(), p);
        }
        if !self.netfilter(ns, Hook::Postrouting, &mut p, false) {
            return (self.dead_end(), p);
        }
        if let Some(d) = self.conntrack_post(ns, &mut p) {
            self.conntrack_hop(ns, Some(oif.clone()), Some(d), &p);
        }
        let ifindex = state.link_by_name(&oif).map(|l| l.ifindex).unwrap_or(0);
        self.transmit(ns, ifindex, nh.unwrap_or(p.dst), p, 0)
    }

    /// The routing decision for `p` in `ns` (in on `iif`, or sent locally): the
    /// kernel's when live, the snapshot's tables otherwise (and when the kernel gives
    /// no answer the engine can use).
    fn route(&self, ns: NetnsKey, state: &NetnsState, p: &Packet, iif: Option<&str>) -> RouteResult {
        if let Some(router) = self.world.router {
            let iif_ix = iif.and_then(|n| state.link_by_name(n)).map(|l| l.ifindex);
            match router.route(ns, p.dst, Some(p.src), iif_ix, p.mark) {
                Some(KernelRoute::Route(r)) => match r.kind.as_str() {
                    "local" => {
                        let ifindex = state
                            .addresses
                            .iter()
                            .find(|a| a.address == p.dst)
                            .map(|a| a.ifindex)
                            .or(r.oif)
                            .unwrap_or(1);
                        return RouteResult::Local { ifindex };
                    }
                    "unicast" => {
                        if let Some(oif) = r.oif {
                            return RouteResult::Unicast {
                                oif,
                                gateway: r.gateway,
                                prefsrc: r.prefsrc,
                                dst: format!("{} (ip route get)", r.dst),
                                table: r.table,
                            };
                        }
                    }
                    "blackhole" | "unreachable" | "prohibit" => {
                        return RouteResult::Refused {
                            kind: r.kind.clone(),
                            dst: r.dst.clone(),
                        };
                    }
                    _ => {}
                },
                Some(KernelRoute::Refused(errno)) => {
                    let refused = |kind: &str| RouteResult::Refused {
                        kind: kind.into(),
                        dst: format!(
                            "{} (ip route get: {})",
                            p.dst,
                            std::io::Error::from_raw_os_error(errno)
                        ),
                    };
                    match errno {
                        libc::ENETUNREACH => return RouteResult::None,
                        libc::EHOSTUNREACH => return refused("unreachable"),
                        libc::EACCES => return refused("prohibit"),
                        libc::EINVAL if iif.is_none() => return refused("blackhole"),
                        _ => {}
                    }
                }
                None => {}
            }
        }
        route::lookup(state, p.dst, iif)
    }

    /// `Dropped` unless the last hop was a *may* that stopped the walk.
    fn dead_end(&self) -> End {
        match self.hops.last() {
            Some(h) if h.verdict == HopVerdict::May => End::Stuck,
            _ => End::Dropped,
        }
    }

    /// Say what the route decided; `None` (after a drop hop) when it drops.
    fn route_hop(
        &mut self,
        ns: NetnsKey,
        state: &NetnsState,
        r: &RouteResult,
        p: &Packet,
        iif: Option<&str>,
    ) -> Option<(String, Option<IpAddr>)> {
        match r {
            RouteResult::Local { ifindex } => {
                let name = link_name(state, *ifindex);
                self.hop(
                    ns,
                    Some(name.clone()),
                    "route",
                    HopVerdict::Allow,
                    format!(
                        "{} is an address of this netns (on {name}): local delivery",
                        p.dst
                    ),
                    p,
                );
                Some((name, None))
            }
            RouteResult::Unicast {
                oif,
                gateway,
                dst,
                table,
                ..
            } => {
                let name = link_name(state, *oif);
                let via = gateway.map(|g| format!(" via {g}")).unwrap_or_default();
                let from = iif.map(|i| format!(" (in on {i})")).unwrap_or_default();
                self.hop(
                    ns,
                    Some(name.clone()),
                    "route",
                    HopVerdict::Allow,
                    format!("route {dst}{via} dev {name} (table {table}){from}"),
                    p,
                );
                Some((name, *gateway))
            }
            RouteResult::Refused { kind, dst } => {
                let v = if kind == "blackhole" {
                    HopVerdict::Drop
                } else {
                    HopVerdict::Reject
                };
                self.hop(ns, None, "route", v, format!("route {dst} is of type {kind}"), p);
                None
            }
            RouteResult::None => {
                self.hop(
                    ns,
                    None,
                    "route",
                    HopVerdict::Drop,
                    format!("no route to {} in this netns (network unreachable)", p.dst),
                    p,
                );
                None
            }
        }
    }

    fn route_target(&self, state: &NetnsState, r: &RouteResult) -> Option<(String, Option<IpAddr>)> {
        match r {
            RouteResult::Local { ifindex } => Some((link_name(state, *ifindex), None)),
            RouteResult::Unicast { oif, gateway, .. } => Some((link_name(state, *oif), *gateway)),
            _ => None,
        }
    }

    /// Send `p` out of `ifindex` of `ns` toward the neighbour `nh`.
    fn transmit(&mut self, ns: NetnsKey, ifindex: u32, nh: IpAddr, p: Packet, depth: usize) -> (End, Packet) {
        if depth > MAX_HOPS || self.hops.len() > MAX_HOPS * 4 {
            self.hop(ns, None, "loop", HopVerdict::May, "the path loops".into(), &p);
            return (End::Stuck, p);
        }
        let Some(state) = self.world.ns(ns) else {
            return (End::Stuck, p);
        };
        let Some(link) = state.link(ifindex) else {
            self.hop(
                ns,
                None,
                "link",
                HopVerdict::May,
                format!("interface {ifindex} not in the snapshot"),
                &p,
            );
            return (End::Stuck, p);
        };
        if !link.is_up() {
            self.hop(
                ns,
                Some(link.name.clone()),
                "link",
                HopVerdict::Drop,
                format!("{} is down: nothing leaves through it", link.name),
                &p,
            );
            return (End::Dropped, p);
        }
        if let (Some(size), Some(mtu)) = (p.size, link.mtu)
            && size > mtu
            && !link.is_loopback()
        {
            self.hop(
                ns,
                Some(link.name.clone()),
                "mtu",
                HopVerdict::Drop,
                if depth == 0 {
                    format!(
                        "{size} bytes with DF set do not fit {}'s MTU {mtu}: the sender's own stack refuses them \
                         (`ping -M do` says \"message too long\")",
                        link.name
                    )
                } else {
                    format!(
                        "{size} bytes with DF set do not fit {}'s MTU {mtu}: dropped, and \"fragmentation needed \
                         (mtu {mtu})\" goes back to the sender (a TCP connection stalls when that ICMP is filtered)",
                        link.name
                    )
                },
                &p,
            );
            return (End::Dropped, p);
        }
        match &link.kind {
            Some(LinkKind::Bridge) => self.bridge_out(ns, state, link, nh, p, depth),
            Some(LinkKind::Vxlan) if link.vxlan.as_ref().is_some_and(|v| !v.external) => {
                self.vxlan_out(ns, state, link, nh, p, depth)
            }
            Some(LinkKind::Veth) => self.veth_out(ns, state, link, nh, p, depth),
            _ if link.is_loopback() => self.local_in(ns, link.name.clone(), p),
            kind => {
                let kind = kind.as_ref().map_or("device", LinkKind::as_str);
                self.hop(
                    ns,
                    Some(link.name.clone()),
                    "egress",
                    HopVerdict::Deliver,
                    format!("leaves the host through {} ({kind}) toward {nh}", link.name),
                    &p,
                );
                (End::LeftHost, p)
            }
        }
    }

    /// Send `p` into VXLAN device `link` toward `nh`: find the remote VTEP (the
    /// neighbour's MAC, then the FDB entry with its `dst`, or where the device floods),
    /// walk the encapsulating UDP packet from this netns as the kernel sends it (OUTPUT,
    /// routing, POSTROUTING, the underlay), and where it is delivered to a VXLAN
    /// device's socket, decapsulate (the VNI must match) and go on with `p` there.
    fn vxlan_out(
        &mut self,
        ns: NetnsKey,
        state: &NetnsState,
        link: &Link,
        nh: IpAddr,
        p: Packet,
        depth: usize,
    ) -> (End, Packet) {
        let v = link.vxlan.as_ref().expect("a VXLAN device");
        let dev = link.name.clone();
        let mac = state
            .neighbours
            .iter()
            .find(|n| n.ifindex == link.ifindex && n.ip == nh && !n.state.unresolved())
            .and_then(|n| n.mac.clone());
        let fdb: Vec<_> = state.fdb.iter().filter(|e| e.ifindex == link.ifindex).collect();
        let direct: Vec<IpAddr> = mac
            .as_ref()
            .map(|m| {
                fdb.iter()
                    .filter(|e| e.mac.eq_ignore_ascii_case(m))
                    .filter_map(|e| e.dst)
                    .collect()
            })
            .unwrap_or_default();
        let flood: Vec<IpAddr> = v
            .remote
            .or(v.group)
            .into_iter()
            .chain(
                fdb.iter()
                    .filter(|e| e.mac == "00:00:00:00:00:00")
                    .filter_map(|e| e.dst),
            )
            .collect();
        let how = match (&mac, direct.is_empty()) {
            (Some(m), false) => format!("{nh} is {m}, whose FDB entry sends it to"),
            (Some(m), true) => format!("{nh} is {m}, with no FDB entry of its own: flooded to"),
            (None, _) => format!("{nh} is not resolved yet: its ARP request is flooded to"),
        };
        let candidates = if direct.is_empty() { flood } else { direct };
        // Of several (flooding), the VTEP whose node owns the next hop answers.
        let remote = candidates
            .iter()
            .copied()
            .find(|r| {
                self.world.snap.netns.iter().any(|n| {
                    n.links.iter().any(|l| {
                        l.vxlan.as_ref().is_some_and(|x| x.local == Some(*r))
                            && n.addresses
                                .iter()
                                .any(|a| a.ifindex == l.ifindex && a.address == nh)
                    })
                })
            })
            .or(candidates.first().copied());
        let Some(remote) = remote else {
            let why = match &mac {
                Some(m) => format!(
                    "{dev} has no FDB entry for {m} ({nh}'s MAC) and nowhere to flood: no remote VTEP to send to"
                ),
                None if v.learning => format!(
                    "{dev} has no neighbour for {nh} and nowhere to flood its ARP request: no remote VTEP to send to"
                ),
                None => format!(
                    "{dev} has no neighbour entry for {nh}: the packet is dropped (an overlay agent writes one per node)"
                ),
            };
            self.hop(ns, Some(dev), "vxlan", HopVerdict::Drop, why, &p);
            return (End::Dropped, p);
        };
        let (Some(local), Some(port)) = (v.local, v.port) else {
            self.hop(
                ns,
                Some(dev.clone()),
                "egress",
                HopVerdict::Deliver,
                format!("leaves the host through {dev} (vxlan) toward VTEP {remote}"),
                &p,
            );
            return (End::LeftHost, p);
        };
        let vni = v.vni.unwrap_or(0);
        self.hop(
            ns,
            Some(dev.clone()),
            "vxlan",
            HopVerdict::Allow,
            format!(
                "encapsulated: {how} VTEP {remote}; outer udp {local} > {remote}:{port}, VNI {vni}{}",
                v.underlay
                    .and_then(|i| state.link(i))
                    .map(|u| format!(", underlay {}", u.name))
                    .unwrap_or_default()
            ),
            &p,
        );
        // The outer packet is a flow of its own: NEW in each direction.
        let outer = Packet::udp(local, port, remote, port);
        let phase = std::mem::replace(&mut self.phase, Phase::New);
        let target = self.target.take();
        self.decap = None;
        let (end, _) = if depth > MAX_HOPS {
            (End::Stuck, outer.clone())
        } else {
            self.local_out(ns, outer)
        };
        self.phase = phase;
        self.target = target;
        let Some((rns, rix)) = self.decap.take().filter(|_| matches!(end, End::Delivered(_))) else {
            return match end {
                End::Delivered(_) => {
                    self.hop(
                        ns,
                        Some(dev),
                        "vxlan",
                        HopVerdict::Drop,
                        format!("no VXLAN device listens on udp/{port} at {remote}: the encapsulated packet is dropped"),
                        &p,
                    );
                    (End::Dropped, p)
                }
                other => (other, p),
            };
        };
        let Some(rstate) = self.world.ns(rns) else {
            return (End::Stuck, p);
        };
        let Some(first) = rstate.link(rix) else {
            return (End::Stuck, p);
        };
        // Devices of several VNIs share one socket: the packet's VNI picks the device.
        let rlink = rstate
            .links
            .iter()
            .find(|l| {
                l.vxlan.as_ref().is_some_and(|x| {
                    x.port == Some(port)
                        && (x.local == Some(remote) || x.local.is_none())
                        && x.vni == Some(vni)
                })
            })
            .unwrap_or(first);
        let rv = rlink.vxlan.as_ref().and_then(|x| x.vni);
        if !rlink.vxlan.as_ref().is_some_and(|x| x.external) && rv != Some(vni) {
            self.hop(
                rns,
                Some(rlink.name.clone()),
                "vxlan",
                HopVerdict::Drop,
                format!(
                    "VNI {vni} arrives at {} (VNI {}): no device of this VNI, the packet is dropped",
                    rlink.name,
                    rv.map_or("?".into(), |n| n.to_string())
                ),
                &p,
            );
            return (End::Dropped, p);
        }
        if !rlink.is_up() {
            self.hop(
                rns,
                Some(rlink.name.clone()),
                "vxlan",
                HopVerdict::Drop,
                format!("{} is down: it decapsulates nothing", rlink.name),
                &p,
            );
            return (End::Dropped, p);
        }
        // The inner frame is addressed to the MAC the sender resolved: another node's
        // device takes it as not its own and drops it.
        if let (Some(m), Some(own)) = (&mac, &rlink.mac)
            && !m.eq_ignore_ascii_case(own)
        {
            self.hop(
                rns,
                Some(rlink.name.clone()),
                "vxlan",
                HopVerdict::Drop,
                format!(
                    "decapsulated by {} (MAC {own}), but the frame is for {m}: not this node's, dropped \
                     (the sender's FDB sends {m} to the wrong VTEP)",
                    rlink.name
                ),
                &p,
            );
            return (End::Dropped, p);
        }
        self.hop(
            rns,
            Some(rlink.name.clone()),
            "vxlan",
            HopVerdict::Allow,
            format!("decapsulated by {} (VNI {vni})", rlink.name),
            &p,
        );
        self.ip_in(rns, rlink.name.clone(), None, p, depth + 1)
    }

    /// Who answers ARP for `nh` behind `link`: (netns, ifindex) of the interface that
    /// owns it, searching across a veth.
    fn owner_behind_veth(&self, ns: NetnsKey, link: &Link, nh: IpAddr) -> Option<(NetnsKey, u32)> {
        let (pns, pix) = *self.world.peers.get(&(ns, link.ifindex))?;
        let pstate = self.world.ns(pns)?;
        owns(pstate, pix, nh).then_some((pns, pix))
    }

    fn veth_out(
        &mut self,
        ns: NetnsKey,
        state: &NetnsState,
        link: &Link,
        nh: IpAddr,
        p: Packet,
        depth: usize,
    ) -> (End, Packet) {
        let _ = state;
        let Some(&(pns, pix)) = self.world.peers.get(&(ns, link.ifindex)) else {
            self.hop(
                ns,
                Some(link.name.clone()),
                "veth",
                HopVerdict::Deliver,
                format!(
                    "leaves through {}, whose peer is in no netns the snapshot read",
                    link.name
                ),
                &p,
            );
            return (End::LeftHost, p);
        };
        let Some(pstate) = self.world.ns(pns) else {
            return (End::Stuck, p);
        };
        let pname = link_name(pstate, pix);
        self.hop(
            ns,
            Some(link.name.clone()),
            "veth",
            HopVerdict::Allow,
            format!(
                "out of {} into its peer {pname} in {}",
                link.name,
                self.world.label(pns)
            ),
            &p,
        );
        self.arrive(pns, pix, nh, p, depth + 1)
    }

    /// A frame for `nh` arrives on `ifindex` of `ns`.
    /// Stop at a netns the snapshot holds nothing of, asking for it.
    fn stop_unread(&mut self, ns: NetnsKey, p: &Packet) -> bool {
        if !self.world.unread(ns) {
            return false;
        }
        self.needs.push(ns);
        self.hop(
            ns,
            None,
            "netns",
            HopVerdict::May,
            "this netns was not read".into(),
            p,
        );
        true
    }

    fn arrive(&mut self, ns: NetnsKey, ifindex: u32, nh: IpAddr, p: Packet, depth: usize) -> (End, Packet) {
        self.visit(ns);
        if self.stop_unread(ns, &p) {
            return (End::Stuck, p);
        }
        let Some(state) = self.world.ns(ns) else {
            return (End::Stuck, p);
        };
        let Some(link) = state.link(ifindex) else {
            self.hop(
                ns,
                None,
                "link",
                HopVerdict::May,
                format!("interface {ifindex} not in the snapshot"),
                &p,
            );
            return (End::Stuck, p);
        };
        if !link.is_up() {
            self.hop(
                ns,
                Some(link.name.clone()),
                "link",
                HopVerdict::Drop,
                format!("{} is down: it receives nothing", link.name),
                &p,
            );
            return (End::Dropped, p);
        }
        if let Some(master) = link.master {
            if let Some(br) = state.link(master).filter(|b| b.kind == Some(LinkKind::Bridge)) {
                return self.bridge_in(ns, state, br, link, nh, p, depth);
            }
        }
        self.ip_in(ns, link.name.clone(), None, p, depth)
    }

    /// IP input on interface `iif` of `ns` (`port`: the bridge port it came in on).
    fn ip_in(
        &mut self,
        ns: NetnsKey,
        iif: String,
        port: Option<String>,
        mut p: Packet,
        depth: usize,
    ) -> (End, Packet) {
        let Some(state) = self.world.ns(ns) else {
            return (End::Stuck, p);
        };
        self.enter(ns, &mut p);
        p.iif = Some(iif.clone());
        p.oif = None;
        p.physdev = port
            .filter(|_| self.br_netfilter(state, &iif, p.src.is_ipv4()))
            .map(|inp| netfilter::Physdev {
                in_port: Some(inp),
                out_port: None,
            });
        let dst_before = p.dst;
        if !self.netfilter(ns, Hook::Prerouting, &mut p, false) {
            return (self.dead_end(), p);
        }
        let d = self.conntrack_pre(ns, &mut p);
        self.conntrack_hop(ns, Some(iif.clone()), d, &p);
        let dnat_here = p.dst != dst_before;
        // 127.0.0.0/8 from another interface is martian unless route_localnet is on.
        if p.dst.is_ipv4() && iif != "lo" && (p.dst.is_loopback() || p.src.is_loopback()) {
            let conf = |n: &str| state.sysctls.conf.get(n).and_then(|c| c.route_localnet);
            match conf("all").max(conf(&iif)) {
                Some(1..) => {}
                Some(_) => {
                    self.hop(
                        ns,
                        Some(iif.clone()),
                        "route",
                        HopVerdict::Drop,
                        format!(
                            "a loopback address ({}) arriving on {iif} is martian: route_localnet is 0 \
                             (sysctl net.ipv4.conf.{iif}.route_localnet=1 allows it)",
                            if p.dst.is_loopback() { p.dst } else { p.src }
                        ),
                        &p,
                    );
                    return (End::Dropped, p);
                }
                None => self.hop(
                    ns,
                    Some(iif.clone()),
                    "route",
                    HopVerdict::May,
                    format!("a loopback address arrives on {iif}; route_localnet was not read"),
                    &p,
                ),
            }
        }
        let r = self.route(ns, state, &p, Some(&iif));
        if let RouteResult::Local { .. } = r {
            let Some(_) = self.route_hop(ns, state, &r, &p, Some(&iif)) else {
                return (End::Dropped, p);
            };
            // The reverse-path filter applies to what is delivered here too.
            if iif != "lo" && !self.rp_filter_ok(ns, state, &iif, &p) {
                return (End::Dropped, p);
            }
            return self.local_in(ns, iif, p);
        }
        // Forwarding.
        let v4 = p.dst.is_ipv4();
        let fwd_all = if v4 {
            state.sysctls.ip_forward
        } else {
            state.sysctls.ipv6_forwarding
        };
        let fwd_if = if v4 {
            state.sysctls.conf.get(&iif).and_then(|c| c.forwarding)
        } else {
            None
        };
        if fwd_all == Some(0) || fwd_if == Some(0) {
            let what = if fwd_all == Some(0) {
                if v4 {
                    "net.ipv4.ip_forward is 0"
                } else {
                    "net.ipv6.conf.all.forwarding is 0"
                }
                .to_string()
            } else {
                format!("net.ipv4.conf.{iif}.forwarding is 0")
            };
            self.hop(
                ns,
                Some(iif),
                "forward",
                HopVerdict::Drop,
                format!("{what}: this netns does not route packets between interfaces"),
                &p,
            );
            return (End::Dropped, p);
        }
        if fwd_all.is_none() && ns == self.world.snap.host {
            self.world_note("ip_forward was not read: forwarding assumed on");
        }
        let Some((oif, gw)) = self.route_hop(ns, state, &r, &p, Some(&iif)) else {
            return (End::Dropped, p);
        };
        if !self.rp_filter_ok(ns, state, &iif, &p) {
            return (End::Dropped, p);
        }
        // br_netfilter: a packet DNATed back onto the bridge it came from is bridged
        // from its in-port, not routed: back out of that same port needs hairpin mode.
        if let (true, true, Some(inp)) = (
            dnat_here,
            oif == iif,
            p.physdev.as_ref().and_then(|ph| ph.in_port.clone()),
        ) {
            let br = state.link_by_name(&iif);
            let inl = state.link_by_name(&inp);
            if let (Some(br), Some(inl)) = (br, inl) {
                let nh = gw.unwrap_or(p.dst);
                let hairpin = inl.port.as_ref().is_some_and(|x| x.hairpin);
                if !hairpin && self.owner_behind_veth(ns, inl, nh).is_some() {
                    self.hop(
                        ns,
                        Some(inp.clone()),
                        "bridge",
                        HopVerdict::Drop,
                        format!(
                            "DNAT sends the packet back to {nh} behind port {inp} of {}, where it came in: \
                             br_netfilter bridges it back out of that port, and hairpin mode is off on {inp} \
                             (bridge link set dev {inp} hairpin on)",
                            br.name
                        ),
                        &p,
                    );
                    return (End::Dropped, p);
                }
            }
        }
        p.oif = Some(oif.clone());
        if let Some(ph) = &mut p.physdev {
            ph.out_port = None;
        }
        if !self.netfilter(ns, Hook::Forward, &mut p, false) {
            return (self.dead_end(), p);
        }
        if !self.netfilter(ns, Hook::Postrouting, &mut p, false) {
            return (self.dead_end(), p);
        }
        let d = self.conntrack_post(ns, &mut p);
        self.conntrack_hop(ns, Some(oif.clone()), d, &p);
        let ifindex = state.link_by_name(&oif).map(|l| l.ifindex).unwrap_or(0);
        p.physdev = None;
        let nh = gw.unwrap_or(p.dst);
        self.transmit(ns, ifindex, nh, p, depth + 1)
    }

    fn world_note(&mut self, _s: &str) {}

    /// rp_filter: strict (1) wants the route back to the source through `iif`; loose
    /// (2) any route back.
    fn rp_filter_ok(&mut self, ns: NetnsKey, state: &NetnsState, iif: &str, p: &Packet) -> bool {
        if !p.src.is_ipv4() {
            return true;
        }
        let all = state
            .sysctls
            .conf
            .get("all")
            .and_then(|c| c.rp_filter)
            .unwrap_or(0);
        let dev = state.sysctls.conf.get(iif).and_then(|c| c.rp_filter).unwrap_or(0);
        let mode = all.max(dev);
        if mode == 0 {
            return true;
        }
        let back = route::lookup(state, p.src, None);
        let ok = match (&back, mode) {
            (RouteResult::Unicast { oif, .. }, 1) => state.link(*oif).is_some_and(|l| l.name == iif),
            (RouteResult::Unicast { .. } | RouteResult::Local { .. }, _) => mode != 1,
            _ => false,
        };
        if !ok {
            self.hop(
                ns,
                Some(iif.to_string()),
                "rp_filter",
                HopVerdict::Drop,
                format!(
                    "rp_filter is {mode} ({}) on {iif} and the route back to {} does not go out {iif}",
                    if mode == 1 { "strict" } else { "loose" },
                    p.src
                ),
                p,
            );
        }
        ok
    }

    fn br_netfilter(&self, state: &NetnsState, bridge: &str, v4: bool) -> bool {
        let global = if v4 {
            state.sysctls.bridge_nf_call_iptables
        } else {
            state.sysctls.bridge_nf_call_ip6tables
        };
        let own = state
            .link_by_name(bridge)
            .and_then(|l| l.bridge.as_ref())
            .map(|b| {
                if v4 {
                    b.nf_call_iptables
                } else {
                    b.nf_call_ip6tables
                }
            })
            .unwrap_or(false);
        global == Some(1) || own
    }

    /// Delivered to a process of `ns`: INPUT, then the destination.
    fn local_in(&mut self, ns: NetnsKey, iif: String, mut p: Packet) -> (End, Packet) {
        p.iif = Some(iif.clone());
        p.oif = None;
        if !self.netfilter(ns, Hook::Input, &mut p, false) {
            return (self.dead_end(), p);
        }
        let d = self.conntrack_post(ns, &mut p);
        self.conntrack_hop(ns, Some(iif.clone()), d, &p);
        // The UDP socket of a VXLAN device: the walk of the encapsulating packet goes on
        // with the packet inside (see `vxlan_out`).
        if p.proto == netfilter::Proto::Udp
            && let Some(vx) = self.world.ns(ns).and_then(|st| {
                st.links.iter().find(|l| {
                    l.vxlan
                        .as_ref()
                        .is_some_and(|v| v.port == p.dport && (v.local == Some(p.dst) || v.local.is_none()))
                })
            })
        {
            self.decap = Some((ns, vx.ifindex));
            return (End::Delivered(ns), p);
        }
        if let Some(t) = self.target {
            if t != ns {
                self.hop(
                    ns,
                    Some(iif),
                    "deliver",
                    HopVerdict::Drop,
                    format!(
                        "delivered to {} here, not to {}: the flow does not come back",
                        p.dst,
                        self.world.label(t)
                    ),
                    &p,
                );
                return (End::Dropped, p);
            }
        }
        // The first packet needs a socket that accepts it, when the netns's sockets
        // were read (a reply goes to the client's own connected socket).
        let proto = match p.proto {
            netfilter::Proto::Tcp => Some("tcp"),
            netfilter::Proto::Udp => Some("udp"),
            _ => None,
        };
        let listening = self.world.ns(ns).and_then(|st| st.listening.as_ref());
        if let (Phase::New, Some(proto), Some(port), Some(list)) = (self.phase, proto, p.dport, listening) {
            let accepts = list.iter().any(|l| {
                l.proto == proto
                    && l.port == port
                    && (l.addr == p.dst
                        || l.addr.is_unspecified()
                            && (l.addr.is_ipv6() || p.dst.is_ipv4() == l.addr.is_ipv4()))
            });
            if !accepts {
                let answer = if proto == "tcp" {
                    "the kernel answers with a reset"
                } else {
                    "the kernel answers port unreachable"
                };
                self.hop(
                    ns,
                    Some(iif),
                    "deliver",
                    HopVerdict::Reject,
                    format!("nothing listens on {proto}/{port} for {} here: {answer}", p.dst),
                    &p,
                );
                return (End::Dropped, p);
            }
        }
        self.hop(
            ns,
            Some(iif),
            "deliver",
            HopVerdict::Deliver,
            format!("delivered to a local socket for {}", endpoint(p.dst, p.dport)),
            &p,
        );
        (End::Delivered(ns), p)
    }

    /// The bridge `br` of `ns` sends (a packet routed out of it) toward `nh`.
    fn bridge_out(
        &mut self,
        ns: NetnsKey,
        state: &'a NetnsState,
        br: &'a Link,
        nh: IpAddr,
        p: Packet,
        depth: usize,
    ) -> (End, Packet) {
        let Some((port, _)) = self.l2_find(ns, state, br, None, nh, &p) else {
            return (self.dead_end(), p);
        };
        if self.out_port_blocked(ns, br, port, nh, &p) {
            return (End::Dropped, p);
        }
        let mut p = p;
        if !self.bridge_hooks(
            ns,
            &[Hook::Output, Hook::Postrouting],
            None,
            Some(&port.name),
            &mut p,
        ) {
            return (self.dead_end(), p);
        }
        self.port_out(ns, port, nh, p, depth)
    }

    /// A frame for `nh` enters bridge `br` on port `inp`.
    #[allow(clippy::too_many_arguments)]
    fn bridge_in(
        &mut self,
        ns: NetnsKey,
        state: &'a NetnsState,
        br: &'a Link,
        inp: &'a Link,
        nh: IpAddr,
        mut p: Packet,
        depth: usize,
    ) -> (End, Packet) {
        if let Some(why) = port_blocked(inp) {
            self.hop(
                ns,
                Some(inp.name.clone()),
                "bridge",
                HopVerdict::Drop,
                format!("port {} of {} {why}: it forwards nothing", inp.name, br.name),
                &p,
            );
            return (End::Dropped, p);
        }
        if !br.is_up() {
            self.hop(
                ns,
                Some(br.name.clone()),
                "bridge",
                HopVerdict::Drop,
                format!("bridge {} is down", br.name),
                &p,
            );
            return (End::Dropped, p);
        }
        if br.bridge.as_ref().is_some_and(|b| b.vlan_filtering) {
            // Never a silent allow: which VLANs each port carries is not read.
            self.hop(
                ns,
                Some(br.name.clone()),
                "bridge",
                HopVerdict::May,
                format!(
                    "VLAN filtering is on for {}: the ports' VLAN membership is not modelled (bridge vlan show)",
                    br.name
                ),
                &p,
            );
        }
        if !self.bridge_hooks(ns, &[Hook::Prerouting], Some(&inp.name), None, &mut p) {
            return (self.dead_end(), p);
        }
        // An address of this netns on another interface: the bridge answers ARP for it
        // only with arp_ignore 0 (any local address, the default).
        let elsewhere = !owns(state, br.ifindex, nh)
            && state
                .addresses
                .iter()
                .any(|a| a.address == nh && a.ifindex != br.ifindex);
        if elsewhere {
            let conf = |n: &str| state.sysctls.conf.get(n).and_then(|c| c.arp_ignore);
            let ignore = conf("all").max(conf(&br.name)).unwrap_or(0);
            if ignore != 0 {
                self.hop(
                    ns,
                    Some(br.name.clone()),
                    "neighbour",
                    HopVerdict::Drop,
                    format!(
                        "{nh} is an address of this netns on another interface, and arp_ignore is {ignore} on {}: \
                         ARP for it gets no answer there",
                        br.name
                    ),
                    &p,
                );
                return (End::Dropped, p);
            }
        }
        // For the bridge itself (its own address, or with arp_ignore 0 any local one):
        // up into IP.
        if owns(state, br.ifindex, nh) || elsewhere {
            self.hop(
                ns,
                Some(inp.name.clone()),
                "bridge",
                HopVerdict::Allow,
                format!(
                    "in on port {} of {}: for the bridge's own address {nh}, up to IP",
                    inp.name, br.name
                ),
                &p,
            );
            if !self.bridge_hooks(ns, &[Hook::Input], Some(&inp.name), None, &mut p) {
                return (self.dead_end(), p);
            }
            return self.ip_in(ns, br.name.clone(), Some(inp.name.clone()), p, depth + 1);
        }
        let Some((outp, _)) = self.l2_find(ns, state, br, Some(inp), nh, &p) else {
            return (self.dead_end(), p);
        };
        if outp.ifindex == inp.ifindex && !inp.port.as_ref().is_some_and(|x| x.hairpin) {
            self.hop(
                ns,
                Some(inp.name.clone()),
                "bridge",
                HopVerdict::Drop,
                format!(
                    "{nh} is behind the port the frame came in on ({}) and hairpin mode is off",
                    inp.name
                ),
                &p,
            );
            return (End::Dropped, p);
        }
        let iso = |l: &Link| l.port.as_ref().is_some_and(|x| x.isolated);
        if iso(inp) && iso(outp) {
            self.hop(
                ns,
                Some(inp.name.clone()),
                "bridge",
                HopVerdict::Drop,
                format!(
                    "ports {} and {} are both isolated: the bridge forwards nothing between them",
                    inp.name, outp.name
                ),
                &p,
            );
            return (End::Dropped, p);
        }
        if self.out_port_blocked(ns, br, outp, nh, &p) {
            return (End::Dropped, p);
        }
        self.hop(
            ns,
            Some(inp.name.clone()),
            "bridge",
            HopVerdict::Allow,
            format!(
                "bridged by {} from port {} to port {}",
                br.name, inp.name, outp.name
            ),
            &p,
        );
        if !self.bridge_hooks(ns, &[Hook::Forward], Some(&inp.name), Some(&outp.name), &mut p) {
            return (self.dead_end(), p);
        }
        // br_netfilter: the IP hooks see the bridged packet, -i/-o the bridge.
        if self.br_netfilter(state, &br.name, p.src.is_ipv4()) {
            self.enter(ns, &mut p);
            p.iif = Some(br.name.clone());
            p.oif = None;
            p.physdev = Some(netfilter::Physdev {
                in_port: Some(inp.name.clone()),
                out_port: None,
            });
            let dst_before = p.dst;
            if !self.netfilter(ns, Hook::Prerouting, &mut p, false) {
                return (self.dead_end(), p);
            }
            let d = self.conntrack_pre(ns, &mut p);
            self.conntrack_hop(ns, Some(br.name.clone()), d, &p);
            if p.dst != dst_before {
                // DNAT to elsewhere: br_netfilter hands the packet to IP routing.
                return self.ip_in_after_prerouting(ns, state, br.name.clone(), p, depth);
            }
            p.oif = Some(br.name.clone());
            p.physdev = Some(netfilter::Physdev {
                in_port: Some(inp.name.clone()),
                out_port: Some(outp.name.clone()),
            });
            if !self.netfilter(ns, Hook::Forward, &mut p, false) {
                return (self.dead_end(), p);
            }
            if !self.netfilter(ns, Hook::Postrouting, &mut p, false) {
                return (self.dead_end(), p);
            }
            let d = self.conntrack_post(ns, &mut p);
            self.conntrack_hop(ns, Some(br.name.clone()), d, &p);
            p.physdev = None;
        }
        if !self.bridge_hooks(ns, &[Hook::Postrouting], None, Some(&outp.name), &mut p) {
            return (self.dead_end(), p);
        }
        self.port_out(ns, outp, nh, p, depth)
    }

    /// After a bridged packet was DNATed away: routing, FORWARD, POSTROUTING.
    fn ip_in_after_prerouting(
        &mut self,
        ns: NetnsKey,
        state: &NetnsState,
        iif: String,
        mut p: Packet,
        depth: usize,
    ) -> (End, Packet) {
        let r = self.route(ns, state, &p, Some(&iif));
        let Some((oif, gw)) = self.route_hop(ns, state, &r, &p, Some(&iif)) else {
            return (End::Dropped, p);
        };
        if let RouteResult::Local { .. } = r {
            return self.local_in(ns, iif, p);
        }
        p.oif = Some(oif.clone());
        if !self.netfilter(ns, Hook::Forward, &mut p, false)
            || !self.netfilter(ns, Hook::Postrouting, &mut p, false)
        {
            return (self.dead_end(), p);
        }
        let ifindex = state.link_by_name(&oif).map(|l| l.ifindex).unwrap_or(0);
        p.physdev = None;
        let nh = gw.unwrap_or(p.dst);
        self.transmit(ns, ifindex, nh, p, depth + 1)
    }

    /// Whether the bridge forwards nothing out of `port` (saying why in a hop).
    fn out_port_blocked(&mut self, ns: NetnsKey, br: &Link, port: &Link, nh: IpAddr, p: &Packet) -> bool {
        let Some(why) = port_blocked(port) else {
            return false;
        };
        self.hop(
            ns,
            Some(port.name.clone()),
            "bridge",
            HopVerdict::Drop,
            format!(
                "{nh} is behind port {} of {}, which {why}: the bridge forwards nothing to it",
                port.name, br.name
            ),
            p,
        );
        true
    }

    /// Out of bridge port `port` (forwarding, up: checked before) toward `nh`.
    fn port_out(&mut self, ns: NetnsKey, port: &Link, nh: IpAddr, p: Packet, depth: usize) -> (End, Packet) {
        match &port.kind {
            Some(LinkKind::Veth) => {
                let Some(state) = self.world.ns(ns) else {
                    return (End::Stuck, p);
                };
                self.veth_out(ns, state, port, nh, p, depth)
            }
            kind => {
                self.hop(
                    ns,
                    Some(port.name.clone()),
                    "egress",
                    HopVerdict::Deliver,
                    format!(
                        "leaves the host through bridge port {} ({}) toward {nh}",
                        port.name,
                        kind.as_ref().map_or("device", LinkKind::as_str)
                    ),
                    &p,
                );
                (End::LeftHost, p)
            }
        }
    }

    /// Which port of `br` the frame for `nh` leaves on: whose interface owns `nh`
    /// (ARP), what the sender's neighbour entry says, what the FDB says.
    fn l2_find(
        &mut self,
        ns: NetnsKey,
        state: &'a NetnsState,
        br: &Link,
        inp: Option<&Link>,
        nh: IpAddr,
        p: &Packet,
    ) -> Option<(&'a Link, Option<String>)> {
        let ports: Vec<&Link> = state
            .links
            .iter()
            .filter(|l| l.master == Some(br.ifindex))
            .collect();
        let mut owner: Option<(&Link, (NetnsKey, u32))> = None;
        for port in &ports {
            if port.kind == Some(LinkKind::Veth) {
                if let Some(o) = self.owner_behind_veth(ns, port, nh) {
                    owner = Some((port, o));
                    break;
                }
            }
        }
        let Some((port, (ons, oix))) = owner else {
            // The answer may sit in a netns not read yet: ask for those first.
            let unread: Vec<NetnsKey> = ports
                .iter()
                .filter_map(|l| self.world.peers.get(&(ns, l.ifindex)))
                .map(|(k, _)| *k)
                .filter(|k| self.world.unread(*k))
                .collect();
            if !unread.is_empty() {
                self.needs.extend(unread);
                self.hop(
                    ns,
                    Some(br.name.clone()),
                    "neighbour",
                    HopVerdict::May,
                    format!("who has {nh} behind bridge {} is in netns not read yet", br.name),
                    p,
                );
                return None;
            }
            // Ports that lead out of the host (a physical NIC, a VXLAN) may have it.
            if let Some(port) = ports
                .iter()
                .find(|l| l.kind != Some(LinkKind::Veth) && Some(l.ifindex) != inp.map(|i| i.ifindex))
            {
                return Some((port, None));
            }
            // Say where the address is, if it is anywhere.
            let elsewhere = state
                .links
                .iter()
                .filter(|l| l.kind == Some(LinkKind::Veth))
                .find(|l| self.owner_behind_veth(ns, l, nh).is_some());
            let detail = match elsewhere {
                Some(l) => format!(
                    "{nh} is behind {}, which is {} bridge {}: ARP for it gets no answer",
                    l.name,
                    match l.master.and_then(|m| state.link(m)) {
                        Some(other) => format!("a port of {}, not of", other.name),
                        None => "not a port of".to_string(),
                    },
                    br.name
                ),
                None => format!(
                    "no interface behind bridge {} has address {nh}: ARP for it gets no answer",
                    br.name
                ),
            };
            self.hop(
                ns,
                Some(br.name.clone()),
                "neighbour",
                HopVerdict::Drop,
                detail,
                p,
            );
            return None;
        };
        let mac = self
            .world
            .ns(ons)
            .and_then(|s| s.link(oix))
            .and_then(|l| l.mac.clone())
            .unwrap_or_default();
        // arp_ignore 8 on the owner's interface: it answers no ARP request, so only a
        // permanent entry of the sender's reaches it (a cached one is probed and fails).
        if let Some(os) = self.world.ns(ons)
            && let Some(ol) = os.link(oix)
        {
            let conf = |n: &str| os.sysctls.conf.get(n).and_then(|c| c.arp_ignore);
            let ignore = conf("all").max(conf(&ol.name)).unwrap_or(0);
            let pinned = self.sender_neighbour(inp, ns, nh).is_some_and(|(m, st)| {
                st == NeighState::Permanent && m.is_some_and(|m| m.eq_ignore_ascii_case(&mac))
            });
            if ignore == 8 && !pinned {
                let label = os.label();
                self.hop(
                    ns,
                    Some(br.name.clone()),
                    "neighbour",
                    HopVerdict::Drop,
                    format!(
                        "arp_ignore is 8 on {} in {label}: it answers no ARP request for {nh}, so the sender \
                         cannot resolve it (an entry still cached is probed and fails)",
                        ol.name
                    ),
                    p,
                );
                return None;
            }
        }
        // The sender's neighbour entry: a wrong MAC sends the frame elsewhere.
        if let Some(sender) = self.sender_neighbour(inp, ns, nh) {
            if let (Some(nmac), state_) = (&sender.0, &sender.1) {
                if !nmac.eq_ignore_ascii_case(&mac) && !state_.unresolved() {
                    self.hop(
                        ns,
                        Some(br.name.clone()),
                        "neighbour",
                        HopVerdict::Drop,
                        format!(
                            "the sender's neighbour entry for {nh} says {nmac} ({state_}), but {nh} is at {mac}: \
                             the frame goes to the wrong MAC"
                        ),
                        p,
                    );
                    return None;
                }
            }
        }
        // The FDB: a learned entry for the MAC on another port misdelivers.
        let fdb = state
            .fdb
            .iter()
            .find(|f| f.master == Some(br.ifindex) && f.mac.eq_ignore_ascii_case(&mac) && !f.is_local);
        if let Some(f) = fdb {
            if f.ifindex != port.ifindex {
                let other = link_name(state, f.ifindex);
                self.hop(
                    ns,
                    Some(br.name.clone()),
                    "fdb",
                    HopVerdict::Drop,
                    format!(
                        "the FDB of {} sends {mac} to port {other}, but {nh} is behind {}",
                        br.name, port.name
                    ),
                    p,
                );
                return None;
            }
        } else if port.port.as_ref().is_some_and(|x| !x.unicast_flood) {
            self.hop(
                ns,
                Some(br.name.clone()),
                "fdb",
                HopVerdict::Drop,
                format!(
                    "{mac} is not in the FDB of {} and port {} does not flood unknown unicast",
                    br.name, port.name
                ),
                p,
            );
            return None;
        }
        Some((port, Some(mac)))
    }

    /// The neighbour entry (MAC, state) the sender of a frame entering on `inp` holds
    /// for `nh`: in the netns behind the port's veth.
    fn sender_neighbour(
        &self,
        inp: Option<&Link>,
        ns: NetnsKey,
        nh: IpAddr,
    ) -> Option<(Option<String>, NeighState)> {
        let inp = inp?;
        let (sns, six) = *self.world.peers.get(&(ns, inp.ifindex))?;
        let s = self.world.ns(sns)?;
        s.neighbours
            .iter()
            .find(|n| n.ifindex == six && n.ip == nh)
            .map(|n| (n.mac.clone(), n.state.clone()))
    }

    /// Run the bridge family's chains at `hooks` (iif/oif are ports).
    fn bridge_hooks(
        &mut self,
        ns: NetnsKey,
        hooks: &[Hook],
        iif: Option<&str>,
        oif: Option<&str>,
        p: &mut Packet,
    ) -> bool {
        if !self
            .world
            .firewalls
            .get(&ns)
            .is_some_and(|f| f.has_bridge_family())
        {
            return true;
        }
        let saved = (p.iif.clone(), p.oif.clone());
        p.iif = iif.map(str::to_string);
        p.oif = oif.map(str::to_string);
        self.enter(ns, p);
        for h in hooks {
            if !self.netfilter(ns, *h, p, true) {
                return false;
            }
        }
        p.iif = saved.0;
        p.oif = saved.1;
        true
    }
}

fn verdict_word(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Reject { .. } => "reject".into(),
        Verdict::Nat { kind, .. } => format!("{kind:?}").to_lowercase(),
        Verdict::Return => "return".into(),
        Verdict::May { .. } => "may".into(),
        Verdict::Error { .. } => "error".into(),
    }
}

fn endpoint(a: IpAddr, port: Option<u16>) -> String {
    match (a, port) {
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

/// Why a bridge port forwards nothing: it is down (its STP state then says
/// `disabled` too), or its STP state.
fn port_blocked(port: &Link) -> Option<String> {
    let st = port.port.as_ref().map_or(&PortState::Forwarding, |pa| &pa.state);
    if !port.is_up() {
        Some("is down".into())
    } else if *st != PortState::Forwarding && !st.as_str().is_empty() {
        Some(format!("is in state {st}"))
    } else {
        None
    }
}

/// The rule text and reference of a decider.
fn quote(chain: &hooks::ChainAt, d: &Option<Decider>) -> (Option<String>, Option<RuleView>) {
    match d {
        Some(Decider::Rule(r)) => (
            Some(without_counters(&r.text).to_string()),
            Some(RuleView {
                source: chain.source_name(),
                table: r.table.clone(),
                chain: r.chain.clone(),
                position: Some(r.position),
                handle: r.handle,
                counters: r.counters,
            }),
        ),
        Some(Decider::Policy {
            table,
            chain: c,
            counters,
        }) => (
            Some(format!("policy {}", chain.policy_word())),
            Some(RuleView {
                source: chain.source_name(),
                table: table.clone(),
                chain: c.clone(),
                position: None,
                handle: None,
                counters: Some(*counters),
            }),
        ),
        _ => (None, None),
    }
}

/// An iptables-save line without its `[packets:bytes] ` prefix (the counters are in
/// the rule reference).
fn without_counters(text: &str) -> &str {
    match text.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((nums, rest)) if nums.bytes().all(|b| b.is_ascii_digit() || b == b':') => rest,
        _ => text,
    }
}

/// Whether interface `ifindex` of `state` holds address `a`.
fn owns(state: &NetnsState, ifindex: u32, a: IpAddr) -> bool {
    state
        .addresses
        .iter()
        .any(|x| x.ifindex == ifindex && x.address == a)
}

/// The first global address of `ifindex` in the family.
fn primary_addr(state: &NetnsState, ifindex: u32, v4: bool) -> Option<IpAddr> {
    state
        .addresses
        .iter()
        .filter(|a| a.ifindex == ifindex && a.address.is_ipv4() == v4 && a.scope != "link")
        .map(|a| a.address)
        .next()
}

/// The endpoints of a flow made concrete.
struct Ends {
    src_label: String,
    dst_label: String,
    src: IpAddr,
    dst: IpAddr,
    /// The netns the first packet starts in (for an external source: the host, on
    /// `external_iif`).
    start: NetnsKey,
    external_iif: Option<u32>,
    /// The netns the reply must reach (`None` for an external source: out of the host).
    back_to: Option<NetnsKey>,
}

fn resolve_ends(w: &World, spec: &FlowSpec) -> Result<Ends, FlowError> {
    let snap = w.snap;
    let host = snap
        .host_netns()
        .ok_or_else(|| FlowError::Endpoint("the snapshot has no host netns".into()))?;
    let want_v4 = match (&spec.src, &spec.dst) {
        (_, Destination::Addr { addr }) => addr.is_ipv4(),
        (
            Source::Netns { addr: Some(a), .. }
            | Source::Host { addr: Some(a) }
            | Source::External { addr: Some(a), .. },
            _,
        ) => a.is_ipv4(),
        _ => true,
    };
    // The destination address.
    let dst_addr = |src_ns: Option<&NetnsState>| -> Result<(IpAddr, String), FlowError> {
        match &spec.dst {
            Destination::Addr { addr } => Ok((*addr, addr.to_string())),
            Destination::Netns { netns } => {
                let ns = w.ns(*netns).ok_or_else(|| {
                    FlowError::Endpoint("the destination's netns is not in the snapshot".into())
                })?;
                let label = w.label(*netns);
                // Prefer an address on a subnet the source has too.
                let cands: Vec<&crate::model::Address> = ns
                    .addresses
                    .iter()
                    .filter(|a| a.address.is_ipv4() == want_v4 && a.scope == "global")
                    .collect();
                let same = src_ns.and_then(|s| {
                    cands.iter().find(|a| {
                        s.addresses.iter().any(|b| {
                            IpNet::new(b.address, b.prefix_len)
                                .map(|n| n.trunc().contains(&a.address))
                                .unwrap_or(false)
                                && b.scope == "global"
                        })
                    })
                });
                let a = same.or(cands.first()).ok_or_else(|| {
                    FlowError::Endpoint(format!(
                        "{} has no {} address to send to",
                        crate::text::escape(&label),
                        if want_v4 { "IPv4" } else { "IPv6" }
                    ))
                })?;
                Ok((a.address, label))
            }
            Destination::Host => {
                let a = match (&spec.src, src_ns) {
                    (Source::Netns { .. }, Some(s)) => {
                        match route::lookup(s, "0.0.0.0".parse().unwrap(), None) {
                            RouteResult::Unicast { gateway: Some(g), .. }
                                if host.addresses.iter().any(|x| x.address == g) =>
                            {
                                Some(g)
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let a = a
                    .or_else(|| {
                        external_iface(host, None).and_then(|l| primary_addr(host, l.ifindex, want_v4))
                    })
                    .or_else(|| {
                        host.addresses
                            .iter()
                            .find(|x| x.address.is_ipv4() == want_v4 && x.scope == "global")
                            .map(|x| x.address)
                    })
                    .ok_or_else(|| FlowError::Endpoint("the host has no global address to send to".into()))?;
                Ok((a, "host".into()))
            }
        }
    };
    match &spec.src {
        Source::Netns { netns, addr } => {
            let ns = w
                .ns(*netns)
                .ok_or_else(|| FlowError::Endpoint("the source's netns is not in the snapshot".into()))?;
            if ns.read_error.is_some() {
                return Err(FlowError::Endpoint(format!(
                    "{} could not be read: {}",
                    crate::text::escape(&w.label(*netns)),
                    crate::text::escape(&ns.read_error.clone().unwrap_or_default())
                )));
            }
            let (dst, dst_label) = dst_addr(Some(ns))?;
            let src = match addr {
                Some(a) => *a,
                None => source_addr(ns, dst).ok_or_else(|| {
                    FlowError::Endpoint(format!(
                        "{} has no route and no address to send to {dst} from",
                        crate::text::escape(&w.label(*netns))
                    ))
                })?,
            };
            Ok(Ends {
                src_label: w.label(*netns),
                dst_label,
                src,
                dst,
                start: *netns,
                external_iif: None,
                back_to: Some(*netns),
            })
        }
        Source::Host { addr } => {
            let (dst, dst_label) = dst_addr(Some(host))?;
            let src = match addr {
                Some(a) => *a,
                None => source_addr(host, dst)
                    .ok_or_else(|| FlowError::Endpoint(format!("the host has no route to {dst}")))?,
            };
            Ok(Ends {
                src_label: "host".into(),
                dst_label,
                src,
                dst,
                start: snap.host,
                external_iif: None,
                back_to: Some(snap.host),
            })
        }
        Source::External { addr, iface } => {
            let l = external_iface(host, iface.as_deref()).ok_or_else(|| {
                FlowError::Endpoint(match iface {
                    Some(i) => format!("the host has no interface {}", crate::text::escape(i)),
                    None => "the host has no default route: name the interface with external@IFACE".into(),
                })
            })?;
            let (dst, dst_label) = dst_addr(None)?;
            let src = addr.unwrap_or_else(|| DEFAULT_EXTERNAL.parse().unwrap());
            Ok(Ends {
                src_label: format!("external {src} via {}", l.name),
                dst_label,
                src,
                dst,
                start: snap.host,
                external_iif: Some(l.ifindex),
                back_to: None,
            })
        }
    }
}

/// The host interface of the default route (or the one named).
fn external_iface<'s>(host: &'s NetnsState, name: Option<&str>) -> Option<&'s Link> {
    match name {
        Some(n) => host.link_by_name(n),
        None => match route::lookup(host, "0.0.0.0".parse().unwrap(), None) {
            RouteResult::Unicast { oif, .. } => host.link(oif),
            _ => None,
        },
    }
}

/// The source address the kernel picks for `dst` in `ns`.
fn source_addr(ns: &NetnsState, dst: IpAddr) -> Option<IpAddr> {
    match route::lookup(ns, dst, None) {
        RouteResult::Unicast { prefsrc: Some(s), .. } => Some(s),
        RouteResult::Unicast { oif, .. } => primary_addr(ns, oif, dst.is_ipv4()).or_else(|| {
            ns.addresses
                .iter()
                .find(|a| a.address.is_ipv4() == dst.is_ipv4() && a.scope == "global")
                .map(|a| a.address)
        }),
        RouteResult::Local { .. } => Some(dst),
        _ => None,
    }
}

fn first_packet(spec: &FlowSpec, src: IpAddr, dst: IpAddr) -> Packet {
    let sport = spec.sport.unwrap_or(DEFAULT_SPORT);
    let mut p = match spec.l4 {
        L4::Tcp(port) => Packet::tcp(src, sport, dst, port),
        L4::Udp(port) => Packet::udp(src, sport, dst, port),
        L4::Icmp => Packet::ping(src, dst),
    };
    p.size = spec.size;
    p
}

/// Trace `spec` through `snap`, routing from the snapshot's tables.
pub fn trace(snap: &Snapshot, spec: &FlowSpec) -> Result<Trace, FlowError> {
    trace_with(snap, spec, None)
}

/// Trace `spec` through `snap`, asking `router` (the kernel, live) for each routing
/// decision first.
pub fn trace_with(snap: &Snapshot, spec: &FlowSpec, router: Option<&dyn Router>) -> Result<Trace, FlowError> {
    Tracer::with_router(snap, router).trace(spec)
}

/// A snapshot made ready for tracing: veth peers joined and every firewall parsed into
/// typed rules, once. [`trace`] prepares one per call; a tool that traces many flows
/// through one snapshot (the checks of every container) keeps one and saves that work
/// on each.
///
/// ```
/// use ctnet_core::flow::{Destination, FlowSpec, L4, Source, Tracer};
/// use ctnet_core::model::Snapshot;
///
/// let snap = Snapshot::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/lab-healthy.json")).unwrap();
/// let tracer = Tracer::new(&snap);
/// for ns in snap.netns.iter().filter(|n| n.key != snap.host) {
///     let spec = FlowSpec::new(Source::Netns { netns: ns.key, addr: None }, Destination::Host, L4::Icmp);
///     match tracer.trace(&spec) {
///         Ok(t) => println!("{}: {:?}", ns.label(), t.verdict),
///         Err(e) => println!("{}: {e}", ns.label()), // no route, no address
///     }
/// }
/// ```
pub struct Tracer<'a> {
    world: World<'a>,
}

impl<'a> Tracer<'a> {
    /// Routing from the snapshot's tables.
    pub fn new(snap: &'a Snapshot) -> Self {
        Self {
            world: World::new(snap),
        }
    }

    /// Routing asked of `router` (the kernel, live) first.
    pub fn with_router(snap: &'a Snapshot, router: Option<&'a dyn Router>) -> Self {
        let mut world = World::new(snap);
        world.router = router;
        Self { world }
    }

    /// Trace one flow (see [`trace`]).
    pub fn trace(&self, spec: &FlowSpec) -> Result<Trace, FlowError> {
        trace_in(&self.world, spec)
    }

    /// The host's netfilter at one hook (see [`host_hook`]).
    pub fn host_hook(&self, hook: Hook, packet: Packet) -> (bool, Vec<Hop>) {
        hook_in(&self.world, hook, packet)
    }
}

fn trace_in(world: &World<'_>, spec: &FlowSpec) -> Result<Trace, FlowError> {
    let snap = world.snap;
    let router = world.router;
    let ends = resolve_ends(world, spec)?;
    let mut assumptions = world.assumptions.clone();
    match router {
        None => assumptions.extend(route::assumptions(snap)),
        Some(_) => assumptions.push(
            "routing asked of the kernel in each netns (RTM_GETROUTE, as `ip route get`): policy rules count"
                .into(),
        ),
    }
    let mut conns: HashMap<NetnsKey, Conn> = HashMap::new();
    let p0 = first_packet(spec, ends.src, ends.dst);
    let first = walk(world, &mut conns, Phase::New, &ends, p0.clone(), None);
    let sockets_read = match first.end {
        End::Delivered(ns) => world.ns(ns).is_some_and(|st| st.listening.is_some()),
        _ => true,
    };
    if matches!(spec.l4, L4::Tcp(_) | L4::Udp(_)) && !sockets_read {
        assumptions
            .push("a process listens on the destination port (the sockets there were not read)".into());
    }
    let mut reply = None;
    let mut again = None;
    if let End::Delivered(_) | End::LeftHost = first.end {
        // The reply starts where the first packet arrived.
        let mut r = first.packet.clone();
        std::mem::swap(&mut r.src, &mut r.dst);
        std::mem::swap(&mut r.sport, &mut r.dport);
        r.icmp = match r.icmp {
            Some((8, c)) => Some((0, c)),
            Some((128, c)) => Some((129, c)),
            other => other,
        };
        if r.proto == netfilter::Proto::Tcp {
            r.tcp_flags = Some(netfilter::eval::tcp_flags::SYN | netfilter::eval::tcp_flags::ACK);
        }
        r.physdev = None;
        r.mark = 0;
        r.ctmark = 0;
        let leg = match first.end {
            End::Delivered(ns) => walk_from(world, &mut conns, Phase::Reply, ns, r, ends.back_to),
            _ => Leg {
                hops: Vec::new(),
                end: End::LeftHost,
                may: false,
                packet: r,
                needs: Vec::new(),
                visited: Vec::new(),
            },
        };
        let ok = matches!(leg.end, End::Delivered(_) | End::LeftHost);
        reply = Some(leg);
        if ok && matches!(spec.l4, L4::Tcp(_)) {
            let mut p = p0.clone();
            if p.proto == netfilter::Proto::Tcp {
                p.tcp_flags = Some(netfilter::eval::tcp_flags::ACK);
            }
            let target = match first.end {
                End::Delivered(ns) => Some(ns),
                _ => None,
            };
            again = Some(walk(world, &mut conns, Phase::Again, &ends, p, target));
        }
    }
    let legs: Vec<&Leg> = [Some(&first), reply.as_ref(), again.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    let dropped = legs.iter().find(|l| l.end == End::Dropped);
    let stuck = legs.iter().any(|l| l.end == End::Stuck || l.may);
    let verdict = if dropped.is_some() {
        Reach::Unreachable
    } else if stuck {
        Reach::Ambiguous
    } else {
        Reach::Reachable
    };
    let names = ["the first packet", "the reply", "the handshake's ACK"];
    let summary = match verdict {
        Reach::Unreachable => {
            let (i, leg) = legs
                .iter()
                .enumerate()
                .find(|(_, l)| l.end == End::Dropped)
                .expect("a dropped leg");
            let h = leg
                .hops
                .iter()
                .rev()
                .find(|h| matches!(h.verdict, HopVerdict::Drop | HopVerdict::Reject))
                .or(leg.hops.last());
            match h {
                Some(h) => format!(
                    "{} dies in {} at {}{}: {}",
                    names[i],
                    h.netns,
                    h.step,
                    h.rule.as_ref().map(|r| format!(" ({r})")).unwrap_or_default(),
                    h.detail
                ),
                None => format!("{} does not arrive", names[i]),
            }
        }
        Reach::Ambiguous => {
            let h = legs
                .iter()
                .flat_map(|l| &l.hops)
                .find(|h| h.verdict == HopVerdict::May);
            match h {
                Some(h) => format!("undecided in {} at {}: {}", h.netns, h.step, h.detail),
                None => "the engine could not follow the path to its end".into(),
            }
        }
        Reach::Reachable => match (first.end, ends.back_to) {
            (End::LeftHost, _) => {
                "the packet leaves the host toward the destination and its reply comes back".into()
            }
            _ => "the packet is delivered and its reply comes back".into(),
        },
    };
    let proto = match spec.l4 {
        L4::Tcp(_) => "tcp",
        L4::Udp(_) => "udp",
        L4::Icmp => "icmp",
    };
    // Netns on the path whose own rules were not read: said, not silently taken as none.
    let mut unruled: Vec<String> = Vec::new();
    for key in legs.iter().flat_map(|l| l.visited.iter().copied()) {
        if key != snap.host && !world.firewalls.contains_key(&key) {
            let label = world.label(key);
            if !unruled.contains(&label) {
                unruled.push(label);
            }
        }
    }
    if !unruled.is_empty() {
        assumptions.push(format!(
            "the rules inside {} were not read: none assumed (a live trace reads them)",
            unruled.join(", ")
        ));
    }
    let mut needs: Vec<NetnsKey> = legs.iter().flat_map(|l| l.needs.iter().copied()).collect();
    needs.sort();
    needs.dedup();
    let established = again.map(|l| l.hops).unwrap_or_default();
    Ok(Trace {
        schema: TRACE_SCHEMA.into(),
        verdict,
        summary,
        flow: FlowView {
            src: ends.src_label.clone(),
            dst: ends.dst_label.clone(),
            src_addr: ends.src,
            dst_addr: ends.dst,
            proto: proto.into(),
            sport: p0.sport,
            dport: p0.dport,
        },
        hops: first.hops,
        reply: reply.map(|l| l.hops).unwrap_or_default(),
        established,
        assumptions,
        needs,
    })
}

/// The host's netfilter at one `hook` for `packet` (its first packet, conntrack NEW),
/// as a walk evaluates it: the hops (one per base chain with rules or a policy that is
/// not accept, and a *may* when the host's rules were not all read), and whether the
/// packet goes on. For a check that looks at one hook where a whole path cannot be
/// walked (a host without a route to the outside).
pub fn host_hook(snap: &Snapshot, hook: Hook, packet: Packet) -> (bool, Vec<Hop>) {
    hook_in(&World::new(snap), hook, packet)
}

fn hook_in(world: &World<'_>, hook: Hook, packet: Packet) -> (bool, Vec<Hop>) {
    let snap = world.snap;
    let mut conns = HashMap::new();
    let mut w = Walk {
        world,
        phase: Phase::New,
        conns: &mut conns,
        hops: Vec::new(),
        may: false,
        target: None,
        gap_said: false,
        decap: None,
        needs: Vec::new(),
        visited: Vec::new(),
    };
    let mut p = packet;
    w.enter(snap.host, &mut p);
    let goes_on = w.netfilter(snap.host, hook, &mut p, false);
    (goes_on, w.hops)
}

/// Walk a packet of the original direction from the flow's source.
fn walk(
    world: &World,
    conns: &mut HashMap<NetnsKey, Conn>,
    phase: Phase,
    ends: &Ends,
    p: Packet,
    target: Option<NetnsKey>,
) -> Leg {
    let mut w = Walk {
        world,
        phase,
        conns,
        hops: Vec::new(),
        may: false,
        target,
        gap_said: false,
        decap: None,
        needs: Vec::new(),
        visited: Vec::new(),
    };
    let (end, packet) = match ends.external_iif {
        Some(ix) => {
            let host = world.snap.host;
            let name = world.ns(host).map(|s| link_name(s, ix)).unwrap_or_default();
            w.hop(
                host,
                Some(name.clone()),
                "ingress",
                HopVerdict::Allow,
                format!("arrives from outside on {name}"),
                &p,
            );
            w.ip_in(host, name, None, p, 0)
        }
        None => w.local_out(ends.start, p),
    };
    let end = match end {
        End::Delivered(ns) if phase == Phase::New && !dst_is_local(world, ns, &packet) => End::Stuck,
        e => e,
    };
    Leg {
        hops: w.hops,
        end,
        may: w.may,
        packet,
        needs: w.needs,
        visited: w.visited,
    }
}

fn dst_is_local(world: &World, ns: NetnsKey, p: &Packet) -> bool {
    world
        .ns(ns)
        .is_some_and(|s| s.addresses.iter().any(|a| a.address == p.dst) || p.dst.is_loopback())
}

/// Walk a reply from where the first packet arrived.
fn walk_from(
    world: &World,
    conns: &mut HashMap<NetnsKey, Conn>,
    phase: Phase,
    from: NetnsKey,
    p: Packet,
    back_to: Option<NetnsKey>,
) -> Leg {
    let mut w = Walk {
        world,
        phase,
        conns,
        hops: Vec::new(),
        may: false,
        target: back_to,
        gap_said: false,
        decap: None,
        needs: Vec::new(),
        visited: Vec::new(),
    };
    let (end, packet) = w.local_out(from, p);
    // For an external source the reply must leave the host, not land in it.
    let end = match (end, back_to) {
        (End::Delivered(_), None) => End::Dropped,
        (e, _) => e,
    };
    Leg {
        hops: w.hops,
        end,
        may: w.may,
        packet,
        needs: w.needs,
        visited: w.visited,
    }
}

/// Addresses of every interface of `ns`, by interface name (for `addrtype` and `fib`).
fn local_addrs(ns: &NetnsState) -> BTreeMap<String, Vec<IpNet>> {
    let mut m: BTreeMap<String, Vec<IpNet>> = BTreeMap::new();
    for a in &ns.addresses {
        if let Ok(n) = IpNet::new(a.address, a.prefix_len) {
            m.entry(link_name(ns, a.ifindex)).or_default().push(n);
        }
    }
    m
}

/// The context the evaluators need in `ns`.
fn context_of(ns: Option<&NetnsState>) -> Context {
    Context {
        local_addrs: ns.map(local_addrs),
        sets: BTreeMap::new(),
    }
}
