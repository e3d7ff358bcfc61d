//! Guided checks: the container-networking runbook as pure functions of a [`Snapshot`],
//! its [`Topology`] and the resolved target (and peer). Each check yields a [`Finding`]
//! with the evidence it read, where it read it, and the manual commands that show the
//! same on a live host. A check that cannot run says `skip` and why, never `pass`.
//!
//! The runbook is one table, `CHECKS`: a row per check id, with its category, what it
//! looks at and the small function (in the file of its category) that looks. The
//! [`CATALOG`] is derived from the rows and every finding a function returns is stamped
//! with its own row's id, so the catalog and the code cannot disagree.

mod address;
mod arp;
mod bridge;
mod ctx;
mod dns;
mod fdb;
mod firewall;
mod link;
mod mtu;
mod nat;
mod overlay;
pub(crate) use overlay::tunnels as overlay_tunnels;
mod path;
mod port;
mod resolve;
mod route;
mod stats;
mod sysctl;

pub use port::talkers;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::{NetnsState, Snapshot};
use crate::netns::NetnsRef;
use crate::target::Resolved;
use crate::topology::Topology;

use ctx::{Ctx, PairCtx};

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
#[non_exhaustive]
pub struct Finding {
    /// Stable dotted id, e.g. `fdb.own_mac`.
    pub id: String,
    /// One of `resolve link bridge address route arp fdb mtu firewall nat sysctl stats path port dns probe`.
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

/// How a row of [`CHECKS`] runs.
#[derive(Clone, Copy)]
enum Run {
    /// On the target alone.
    Single(fn(&Ctx<'_>) -> Vec<Finding>),
    /// On the target and its peer.
    Pair(fn(&PairCtx<'_>) -> Vec<Finding>),
    /// Not by [`run`]: the probe (`crate::probe`) adds its finding to a report.
    Probe,
}

/// One check: its id, category, what it looks at, and the function that looks. The
/// function returns no finding when the check does not apply (an earlier stage of the
/// path is missing), or several when it looks more than once (both directions).
struct Check {
    id: &'static str,
    category: &'static str,
    what: &'static str,
    run: Run,
}

/// The runbook, in the order its findings are emitted (before [`Report`] sorts them).
const CHECKS: &[Check] = &[
    Check {
        id: "resolve.netns",
        category: "resolve",
        what: "the target has a netns with an interface toward the host",
        run: Run::Single(resolve::netns),
    },
    Check {
        id: "link.iface_up",
        category: "link",
        what: "the container interface is administratively and operationally up",
        run: Run::Single(link::iface_up),
    },
    Check {
        id: "link.peer_found",
        category: "link",
        what: "the veth's other end is found (IFLA_LINK + link-netnsid)",
        run: Run::Single(link::peer_found),
    },
    Check {
        id: "link.host_veth_up",
        category: "link",
        what: "the host end of the veth is up",
        run: Run::Single(link::host_veth_up),
    },
    Check {
        id: "bridge.attached",
        category: "bridge",
        what: "the host veth is a port of a bridge",
        run: Run::Single(bridge::attached),
    },
    Check {
        id: "bridge.port_forwarding",
        category: "bridge",
        what: "the bridge port is in STP state forwarding",
        run: Run::Single(bridge::port_forwarding),
    },
    Check {
        id: "bridge.up",
        category: "bridge",
        what: "the bridge is up",
        run: Run::Single(bridge::up),
    },
    Check {
        id: "bridge.ageing",
        category: "bridge",
        what: "the bridge remembers learned MACs (ageing time above 0)",
        run: Run::Single(bridge::ageing),
    },
    Check {
        id: "address.ipv4",
        category: "address",
        what: "the interface has an IPv4 address",
        run: Run::Single(address::ipv4),
    },
    Check {
        id: "route.default",
        category: "route",
        what: "the netns has a default route through the interface",
        run: Run::Single(route::default),
    },
    Check {
        id: "route.gateway_reachable",
        category: "route",
        what: "the default gateway is inside a subnet of the interface",
        run: Run::Single(route::gateway_reachable),
    },
    Check {
        id: "route.subnet_overlap",
        category: "route",
        what: "no host route (a LAN, a VPN) collides with the container's subnet",
        run: Run::Single(route::subnet_overlap),
    },
    Check {
        id: "address.gateway_on_bridge",
        category: "address",
        what: "the gateway is an address of the bridge",
        run: Run::Single(address::gateway_on_bridge),
    },
    Check {
        id: "arp.gateway",
        category: "arp",
        what: "the ARP entry for the gateway is resolved to the bridge's MAC",
        run: Run::Single(arp::gateway),
    },
    Check {
        id: "arp.table_fill",
        category: "arp",
        what: "the IPv4 neighbour entries of every netns stay below gc_thresh3 (one table for the host)",
        run: Run::Single(arp::table_fill),
    },
    Check {
        id: "arp.answers",
        category: "arp",
        what: "the container's interface answers ARP for its own address (arp_ignore)",
        run: Run::Single(arp::answers),
    },
    Check {
        id: "fdb.own_mac",
        category: "fdb",
        what: "the bridge learned the interface's MAC on its own port",
        run: Run::Single(fdb::own_mac),
    },
    Check {
        id: "mtu.path",
        category: "mtu",
        what: "interface, host veth and bridge agree on the MTU",
        run: Run::Single(mtu::path),
    },
    Check {
        id: "mtu.uplink",
        category: "mtu",
        what: "the host's default-route interface (a VPN, a tunnel) carries packets as large as the container sends",
        run: Run::Single(mtu::uplink),
    },
    Check {
        id: "mtu.overlay",
        category: "mtu",
        what: "every VXLAN device the host routes through fits its 50 bytes of encapsulation in the underlay's MTU, and the container sends no more than the overlay carries",
        run: Run::Single(mtu::overlay),
    },
    Check {
        id: "overlay.vtep",
        category: "overlay",
        what: "every route through a VXLAN device resolves to a remote VTEP: a neighbour for its next hop and an FDB entry with dst for that MAC (the node whose device has it, where that node is seen from here), or somewhere to flood",
        run: Run::Single(overlay::vtep),
    },
    Check {
        id: "overlay.vni",
        category: "overlay",
        what: "every remote VTEP seen from this host (a node in a netns, a nested node) has the same VNI and UDP port as the local VXLAN device",
        run: Run::Single(overlay::vni),
    },
    Check {
        id: "overlay.underlay",
        category: "overlay",
        what: "the host's firewall (INPUT and OUTPUT) lets the overlay's UDP through to and from every remote VTEP",
        run: Run::Single(overlay::underlay),
    },
    Check {
        id: "stats.drops",
        category: "stats",
        what: "no packets dropped on the interface or the host veth",
        run: Run::Single(stats::drops),
    },
    Check {
        id: "sysctl.ip_forward",
        category: "sysctl",
        what: "the host forwards IPv4 (needed for traffic leaving the bridge)",
        run: Run::Single(sysctl::ip_forward),
    },
    Check {
        id: "sysctl.conntrack_fill",
        category: "sysctl",
        what: "the host's and the container's conntrack counts stay below nf_conntrack_max",
        run: Run::Single(sysctl::conntrack_fill),
    },
    Check {
        id: "sysctl.rp_filter",
        category: "sysctl",
        what: "the host's reverse-path filter accepts what the container sends into the bridge",
        run: Run::Single(sysctl::rp_filter),
    },
    Check {
        id: "nat.masquerade",
        category: "nat",
        what: "the host's POSTROUTING (every nat base chain, evaluated by the flow engine) source-NATs the container's egress",
        run: Run::Single(nat::masquerade),
    },
    Check {
        id: "firewall.forward",
        category: "firewall",
        what: "the container's egress to an outside address passes the host's firewall: traced by the flow engine with a default route (every hook on the way), else every FORWARD base chain (iptables-nft, iptables-legacy, native nft) evaluated",
        run: Run::Single(firewall::forward),
    },
    Check {
        id: "port.published",
        category: "port",
        what: "each published port arrives, traced by the flow engine from the host's address, from localhost and, with a default route, from a client beyond the uplink (DNAT, FORWARD, a listener)",
        run: Run::Single(port::published),
    },
    Check {
        id: "port.listening",
        category: "port",
        what: "each port the container serves arrives from the containers it talks to (its neighbour table) and from the host, traced by the flow engine through every hook",
        run: Run::Single(port::listening),
    },
    Check {
        id: "dns.resolver",
        category: "dns",
        what: "the nameservers of the container's resolv.conf are reachable on udp/53 and tcp/53",
        run: Run::Single(dns::resolver),
    },
    Check {
        id: "path.same_bridge",
        category: "path",
        what: "target and peer sit on the same bridge",
        run: Run::Pair(path::same_bridge),
    },
    Check {
        id: "address.same_subnet",
        category: "address",
        what: "the peer's address is in the target's subnet",
        run: Run::Pair(address::same_subnet),
    },
    Check {
        id: "address.duplicate_ip",
        category: "address",
        what: "no other interface holds the peer's or the target's address",
        run: Run::Pair(address::duplicate_ip),
    },
    Check {
        id: "arp.peer_entry",
        category: "arp",
        what: "the target's ARP entry for the peer has the peer's MAC (and back)",
        run: Run::Pair(arp::peer_entry),
    },
    Check {
        id: "fdb.peer_mac",
        category: "fdb",
        what: "the bridge learned the peer's MAC on the peer's port",
        run: Run::Pair(fdb::peer_mac),
    },
    Check {
        id: "path.trace",
        category: "path",
        what: "the flow engine's trace of a ping from the target to the peer and back passes every hop (routing, bridge, FDB, neighbours, sysctls, netfilter)",
        run: Run::Pair(path::trace),
    },
    Check {
        id: "firewall.bridged",
        category: "firewall",
        what: "with br_netfilter on, no netfilter hook on the traced path drops the pair's bridged traffic",
        run: Run::Pair(firewall::bridged),
    },
    Check {
        id: "probe.path",
        category: "probe",
        what: "with --probe: pings from the target reach the peer (or gateway) and come back; names the last hop that saw them",
        run: Run::Probe,
    },
    Check {
        id: "probe.agrees",
        category: "probe",
        what: "with --probe: the live probe and the flow engine's static trace of the same ping agree",
        run: Run::Probe,
    },
    Check {
        id: "dns.query",
        category: "dns",
        what: "with --probe: one real DNS query from inside the container to its first nameserver gets an answer (any answer, NXDOMAIN included)",
        run: Run::Probe,
    },
];

/// The catalog: every check id, its category and what it looks at (the rows of the
/// check table, in order).
pub const CATALOG: &[(&str, &str, &str)] = &catalog::<{ CHECKS.len() }>();

const fn catalog<const N: usize>() -> [(&'static str, &'static str, &'static str); N] {
    let mut rows = [("", "", ""); N];
    let mut n = 0;
    while n < N {
        rows[n] = (CHECKS[n].id, CHECKS[n].category, CHECKS[n].what);
        n += 1;
    }
    rows
}

/// A finding of the check whose function builds it; [`run`] stamps the row's id and
/// category on it, so no check can emit an id the catalog lacks.
fn finding(status: Status, summary: impl Into<String>) -> Finding {
    Finding {
        id: String::new(),
        category: String::new(),
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

/// Run the runbook for `target` (and `peer`).
pub fn run(snap: &Snapshot, topo: &Topology, target: &Resolved, peer: Option<&Resolved>) -> Report {
    Runner::new(snap, topo).run(target, peer)
}

/// The runbook for many targets of one snapshot: what [`run`] prepares for each call
/// (the snapshot made ready for the flow engine) is prepared once.
///
/// ```no_run
/// # fn demo(snap: &ctnet_core::model::Snapshot) {
/// use ctnet_core::{check::Runner, target, topology::Topology};
///
/// let topo = Topology::build(snap);
/// let runner = Runner::new(snap, &topo);
/// for t in target::containers(snap, &topo) {
///     println!("{} {:?}", t.target, runner.run(&t, None).verdict);
/// }
/// # }
/// ```
pub struct Runner<'a> {
    snap: &'a Snapshot,
    topo: &'a Topology,
    flow: crate::flow::Tracer<'a>,
}

impl<'a> Runner<'a> {
    /// Prepare `snap` (and its topology) for checks.
    pub fn new(snap: &'a Snapshot, topo: &'a Topology) -> Self {
        Self {
            snap,
            topo,
            flow: crate::flow::Tracer::new(snap),
        }
    }

    /// Run the runbook for `target` (and `peer`).
    pub fn run(&self, target: &Resolved, peer: Option<&Resolved>) -> Report {
        let single = Ctx::new(self.snap, self.topo, &self.flow, target);
        let pair = peer.map(|p| PairCtx::new(self.snap, self.topo, target, p));
        let mut r = Report {
            schema: CHECK_SCHEMA.into(),
            target: target.target.clone(),
            peer: peer.map(|p| p.target.clone()),
            verdict: Status::Pass,
            checks: findings(&single, pair.as_ref()),
        };
        r.settle();
        r
    }
}

/// Every row's findings in table order, each stamped with its row's id and category.
fn findings(single: &Ctx<'_>, pair: Option<&PairCtx<'_>>) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in CHECKS {
        let found = match (c.run, pair) {
            (Run::Single(f), _) => f(single),
            (Run::Pair(f), Some(p)) => f(p),
            (Run::Pair(_), None) | (Run::Probe, _) => continue,
        };
        out.extend(found.into_iter().map(|mut f| {
            f.id = c.id.into();
            f.category = c.category.into();
            f
        }));
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    const CATEGORIES: &[&str] = &[
        "resolve", "link", "bridge", "address", "route", "arp", "fdb", "mtu", "firewall", "nat", "sysctl",
        "stats", "path", "probe", "port", "dns", "overlay",
    ];

    #[test]
    fn every_row_has_its_own_id_in_a_known_category_and_is_in_the_catalog() {
        for (n, c) in CHECKS.iter().enumerate() {
            assert!(
                CHECKS[..n].iter().all(|d| d.id != c.id),
                "{} is in the table twice",
                c.id
            );
            assert!(CATEGORIES.contains(&c.category), "{}: {}", c.id, c.category);
            assert!(
                c.id.strip_prefix(c.category)
                    .is_some_and(|rest| rest.starts_with('.')),
                "{} is not named after its category {}",
                c.id,
                c.category
            );
            assert!(!c.what.is_empty(), "{} says nothing", c.id);
            assert_eq!(CATALOG[n], (c.id, c.category, c.what));
        }
        assert_eq!(CATALOG.len(), CHECKS.len());
    }

    #[test]
    fn the_probe_finding_is_a_probe_row() {
        let f = crate::probe::skipped("no peer");
        let row = CHECKS.iter().find(|c| c.id == f.id).expect("a row");
        assert!(matches!(row.run, Run::Probe), "{}", row.id);
        assert_eq!(f.category, row.category);
    }

    #[test]
    fn findings_come_in_table_order_stamped_with_their_rows() {
        let snap = Snapshot::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/lab-faults.json"
        ))
        .unwrap();
        let topo = Topology::build(&snap);
        let t = crate::target::resolve(&snap, "c1").unwrap();
        let p = crate::target::resolve(&snap, "c4").unwrap();
        let found = findings(
            &Ctx::new(&snap, &topo, &crate::flow::Tracer::new(&snap), &t),
            Some(&PairCtx::new(&snap, &topo, &t, &p)),
        );
        let row = |f: &Finding| {
            CHECKS
                .iter()
                .position(|c| c.id == f.id && c.category == f.category)
                .unwrap_or_else(|| panic!("{} ({}) is no row", f.id, f.category))
        };
        let rows: Vec<usize> = found.iter().map(row).collect();
        assert!(rows.is_sorted(), "{rows:?}");
        // Both directions of the ARP check, one after the other.
        assert_eq!(found.iter().filter(|f| f.id == "arp.peer_entry").count(), 2);
    }
}
