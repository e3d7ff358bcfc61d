//! Fault injection for labs and drills: `lab break FAULT TARGET [--peer PEER]` and
//! `lab fix`.
//!
//! A fault is planned from live state (a [`Snapshot`] and its [`Topology`]), never from
//! lab records or names, so it works on any bridge/veth/netns setup, ours or one built
//! by hand. A plan is a list of steps, each an iproute2/iptables command or a sysctl
//! write, plus the steps that undo it with the values read before the break. Applied
//! faults are recorded in the state directory so `lab fix` undoes them, newest first.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::model::Snapshot;
use crate::netns::{self, Netns, NetnsRef};
use crate::target::Resolved;
use crate::topology::{NetnsIface, Topology};

use super::LabEnv;

mod overlay;

/// A wrong MAC no real interface has (locally administered).
pub const STALE_MAC: &str = "02:00:00:00:de:ad";

/// The comment on the FORWARD DROP rule `forward-drop` inserts.
pub const FAULT_COMMENT: &str = "ctnet-fault";

/// A fault `lab break` can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// The host end of the container's veth is set down.
    VethDown,
    /// The container's own interface is set down (its routes go with it).
    Eth0Down,
    /// The host veth is taken off its bridge.
    Detach,
    /// The bridge is set down.
    BridgeDown,
    /// The bridge's FDB ageing time is set to 0 (`brctl setageing 0`).
    AgeingZero,
    /// The container's address is moved to another subnet.
    WrongSubnet,
    /// The container's default route is removed.
    NoRoute,
    /// A permanent ARP entry with a wrong MAC for the peer (or the gateway).
    StaleArp,
    /// `bridge-nf-call-iptables` on and a FORWARD DROP at the top.
    ForwardDrop,
    /// The MASQUERADE rule for the container's subnet is removed.
    NoMasquerade,
    /// The container's interface MTU is raised above the path's.
    Mtu,
    /// `net.ipv4.ip_forward` is set to 0.
    IpForwardOff,
    /// A FORWARD rule dropping TCP port [`FAULT_PORT`] from the container to its peer.
    PortDrop,
    /// A native nft table (`inet ctnet_fault`) dropping everything forwarded to the peer.
    NftDrop,
    /// The container moved to a second bridge ([`FAULT_BRIDGE`], 198.51.100.0/24) with
    /// FORWARD dropping everything between it and its first bridge.
    Isolation,
    /// A port published to the container (DNAT of the host's TCP [`FAULT_PUBLISHED`] to
    /// its port 80) with a FORWARD DROP and no ACCEPT for it.
    PublishedPort,
    /// `arp_ignore` 8 on the container's interface: it answers no ARP request.
    ArpIgnore,
    /// Strict `rp_filter` on the bridge, with the host's route back to the container
    /// through another interface ([`FAULT_RPF_LINK`]).
    RpFilter,
    /// DNS from the container dropped: udp/53 and tcp/53 from its address, in INPUT (a
    /// resolver on the host) and FORWARD (one beyond it). Needs a container whose
    /// `resolv.conf` names a nameserver.
    DnsBlocked,
    /// The host netns's conntrack table filled to `nf_conntrack_max` with assured
    /// entries of its own (see [`super::conntrack`]): new connections are dropped.
    /// Refused in the host's initial netns, whose table is the real host's.
    ConntrackFull,
    /// The container's MTU (and its host veth's) raised to the underlay's, above the
    /// VXLAN device its node routes other nodes' pods through.
    VxlanMtu,
    /// The node's FDB entry for the peer's node (the VTEP MAC to its address) removed.
    VtepFdbMissing,
    /// The node's VXLAN device built again with another VNI than the other nodes'.
    VniMismatch,
    /// The node's INPUT drops the overlay's UDP port: nothing from other nodes arrives.
    UnderlayDrop,
}

/// The interface `rp-filter` routes the container's address through (a veth whose
/// peer is `ctnet-rpf-p`, both in the host netns).
pub const FAULT_RPF_LINK: &str = "ctnet-rpf";

/// The host port `published-port` publishes (to the container's port 80).
pub const FAULT_PUBLISHED: u16 = 8080;

/// The second bridge `isolation` makes.
pub const FAULT_BRIDGE: &str = "ctnet-iso";

/// The TCP port `port-drop` drops.
pub const FAULT_PORT: u16 = 80;

/// The native nft table `nft-drop` adds.
pub const FAULT_NFT_TABLE: &str = "ctnet_fault";

impl Fault {
    /// Every fault, in the order `lab break --help` lists them.
    pub const ALL: [Fault; 24] = [
        Fault::VethDown,
        Fault::Eth0Down,
        Fault::Detach,
        Fault::BridgeDown,
        Fault::AgeingZero,
        Fault::WrongSubnet,
        Fault::NoRoute,
        Fault::StaleArp,
        Fault::ForwardDrop,
        Fault::NoMasquerade,
        Fault::Mtu,
        Fault::IpForwardOff,
        Fault::PortDrop,
        Fault::NftDrop,
        Fault::Isolation,
        Fault::PublishedPort,
        Fault::ArpIgnore,
        Fault::RpFilter,
        Fault::DnsBlocked,
        Fault::ConntrackFull,
        Fault::VxlanMtu,
        Fault::VtepFdbMissing,
        Fault::VniMismatch,
        Fault::UnderlayDrop,
    ];

    /// Whether it breaks an overlay (planned on the node, see [`overlay`]).
    pub fn is_overlay(self) -> bool {
        matches!(
            self,
            Fault::VxlanMtu | Fault::VtepFdbMissing | Fault::VniMismatch | Fault::UnderlayDrop
        )
    }

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::VethDown => "veth-down",
            Fault::Eth0Down => "eth0-down",
            Fault::Detach => "detach",
            Fault::BridgeDown => "bridge-down",
            Fault::AgeingZero => "ageing-zero",
            Fault::WrongSubnet => "wrong-subnet",
            Fault::NoRoute => "no-route",
            Fault::StaleArp => "stale-arp",
            Fault::ForwardDrop => "forward-drop",
            Fault::NoMasquerade => "no-masquerade",
            Fault::Mtu => "mtu",
            Fault::IpForwardOff => "ip-forward-off",
            Fault::PortDrop => "port-drop",
            Fault::NftDrop => "nft-drop",
            Fault::Isolation => "isolation",
            Fault::PublishedPort => "published-port",
            Fault::ArpIgnore => "arp-ignore",
            Fault::RpFilter => "rp-filter",
            Fault::DnsBlocked => "dns-blocked",
            Fault::ConntrackFull => "conntrack-full",
            Fault::VxlanMtu => "vxlan-mtu",
            Fault::VtepFdbMissing => "vtep-fdb-missing",
            Fault::VniMismatch => "vni-mismatch",
            Fault::UnderlayDrop => "underlay-drop",
        }
    }

    /// What it breaks, in one sentence.
    pub fn breaks(self) -> &'static str {
        match self {
            Fault::VethDown => "sets the host veth down: nothing crosses it, the bridge port is disabled",
            Fault::Eth0Down => "sets the container's interface down: it loses its link and its routes",
            Fault::Detach => "takes the host veth off the bridge: the container is cut off from it",
            Fault::BridgeDown => "sets the bridge down: every container on it is cut off",
            Fault::AgeingZero => {
                "sets FDB ageing to 0: nothing is learned, every frame floods (works, slowly)"
            }
            Fault::WrongSubnet => {
                "moves the container's address to 192.0.2.0/24: no peer or gateway is on-link"
            }
            Fault::NoRoute => "removes the container's default route: nothing beyond the subnet",
            Fault::StaleArp => "pins a wrong MAC for the peer (or gateway) in the container's ARP table",
            Fault::ForwardDrop => {
                "bridge-nf-call-iptables=1 and FORWARD DROP first: forwarded (and, with br_netfilter, bridged) traffic dies"
            }
            Fault::NoMasquerade => {
                "removes the subnet's MASQUERADE: egress leaves with private source addresses"
            }
            Fault::Mtu => "raises the container's MTU to 9000 above the path's: large packets die",
            Fault::IpForwardOff => "net.ipv4.ip_forward=0: nothing is routed off the bridge",
            Fault::PortDrop => {
                "a FORWARD rule drops TCP port 80 from the container to its peer (with br_netfilter on): \
                 ping still works, that one port does not"
            }
            Fault::NftDrop => {
                "a native nft table (inet ctnet_fault) drops everything forwarded to the peer's address: \
                 iptables shows nothing"
            }
            Fault::Isolation => {
                "moves the container to a second bridge (ctnet-iso, 198.51.100.0/24) and drops everything \
                 forwarded between the two bridges, as Docker isolates its networks"
            }
            Fault::PublishedPort => {
                "publishes the host's TCP 8080 to the container's port 80 (DNAT) with a FORWARD DROP and no \
                 ACCEPT for it: reachable from the host itself, not from outside"
            }
            Fault::ArpIgnore => {
                "sets arp_ignore 8 on the container's interface and flushes the bridge's neighbours: it answers \
                 no ARP request, so nothing can resolve it"
            }
            Fault::RpFilter => {
                "strict rp_filter on the bridge and a host route for the container's address through another \
                 interface (ctnet-rpf): the host drops what the container sends (an asymmetric path)"
            }
            Fault::DnsBlocked => {
                "drops udp/53 and tcp/53 from the container in INPUT and FORWARD: its resolver gets no query \
                 (needs a container whose resolv.conf names a nameserver)"
            }
            Fault::ConntrackFull => {
                "fills the lab host's conntrack table up to nf_conntrack_max with assured entries of its own \
                 (marked, gone by themselves after 10 minutes), after removing the entries that are not \
                 assured (the kernel evicts those from a full table): new connections through it are \
                 dropped (never in the host's initial netns)"
            }
            Fault::VxlanMtu => {
                "raises the container's MTU (and its host veth's) to the underlay's, above its node's VXLAN \
                 device: packets bigger than the overlay carries leave the pod and die at the tunnel"
            }
            Fault::VtepFdbMissing => {
                "removes the node's FDB entry for --peer's node (or the first other node): its VXLAN device \
                 no longer knows where that node's VTEP is, and every packet to its pods is dropped"
            }
            Fault::VniMismatch => {
                "builds the node's VXLAN device again with another VNI than the other nodes': what they send \
                 it, and what it sends them, is dropped on arrival"
            }
            Fault::UnderlayDrop => {
                "the node's INPUT drops the overlay's UDP port (4789): no encapsulated packet from another \
                 node arrives, so replies from other nodes' pods die"
            }
        }
    }

    /// Parse a name from [`Fault::name`].
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown fault {s:?}: expected one of {}",
                Self::ALL.map(|f| f.name()).join(", ")
            ))
        })
    }
}

/// Where a step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepNetns {
    /// Its `ip netns` name, when it has one.
    pub name: Option<String>,
    /// An nsfs path to enter it.
    pub path: PathBuf,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Run a program (looked up in the tool path).
    Run {
        /// Program and arguments.
        argv: Vec<String>,
    },
    /// Write a sysctl under /proc/sys.
    Sysctl {
        /// Dotted key, e.g. `net.ipv4.ip_forward`.
        key: String,
        /// The value to write.
        value: String,
    },
    /// Add this many assured conntrack entries marked [`super::conntrack::MARK`]
    /// (one ctnetlink batch; `conntrack -I` each, by hand).
    ConntrackFill {
        /// How many.
        entries: u32,
    },
    /// Remove every conntrack entry marked [`super::conntrack::MARK`].
    ConntrackFlush,
}

/// One step of a break or its undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// `None`: the host (the caller's) netns.
    pub netns: Option<StepNetns>,
    /// What it does.
    pub action: Action,
}

impl Step {
    fn host(argv: &[&str]) -> Self {
        Self {
            netns: None,
            action: Action::Run {
                argv: argv.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    fn inside(ns: &StepNetns, argv: &[&str]) -> Self {
        Self {
            netns: Some(ns.clone()),
            action: Action::Run {
                argv: argv.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    fn sysctl(key: &str, value: impl ToString) -> Self {
        Self {
            netns: None,
            action: Action::Sysctl {
                key: key.into(),
                value: value.to_string(),
            },
        }
    }

    /// The same step as a shell command a person can run.
    pub fn command(&self) -> String {
        let body = match &self.action {
            Action::Run { argv } => argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "),
            Action::Sysctl { key, value } => format!("sysctl -w {key}={value}"),
            Action::ConntrackFill { entries } => format!(
                "# {entries} entries, each: conntrack -I -p udp -s 198.18.X.Y -d 198.19.255.254 --sport PORT --dport 9 \
                 --status ASSURED,SEEN_REPLY --timeout {} --mark {}; the unassured entries removed, and the \
                 table topped up until it stays full",
                super::conntrack::TIMEOUT,
                super::conntrack::MARK
            ),
            Action::ConntrackFlush => format!("conntrack -D --mark {}", super::conntrack::MARK),
        };
        match &self.netns {
            None => body,
            Some(StepNetns { name: Some(n), .. }) if body.starts_with("ip ") => {
                format!("ip -n {n} {}", &body[3..])
            }
            Some(StepNetns { name: Some(n), .. }) if body.starts_with("bridge ") => {
                format!("bridge -n {n} {}", &body[7..])
            }
            Some(StepNetns { name: Some(n), .. }) => format!("ip netns exec {n} {body}"),
            Some(ns) => format!("nsenter --net={} {body}", ns.path.display()),
        }
    }
}

/// `arg` as a shell word: single-quoted when it holds anything but plain characters.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+!".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A planned (or applied) fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injection {
    /// The fault.
    pub fault: Fault,
    /// The target as given.
    pub target: String,
    /// The peer as given.
    pub peer: Option<String>,
    /// What it breaks.
    pub breaks: String,
    /// The steps that break.
    pub apply: Vec<Step>,
    /// The steps that restore what was there, in order.
    pub undo: Vec<Step>,
    /// The netns the host steps run in, when the scan's host is not the caller's own
    /// (`--node`, `--host-netns`); those steps carry it as their netns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<StepNetns>,
}

impl Injection {
    /// When `snap`'s host netns is not the calling thread's, run the host steps there:
    /// record it in [`Injection::host`] and on each such step.
    fn in_host(mut self, snap: &Snapshot) -> Self {
        let mine = netns::NetnsKey::of_current_thread().ok();
        if mine == Some(snap.host) {
            return self;
        }
        let Some(h) = snap.host_netns() else {
            return self;
        };
        let name = h.refs.iter().find_map(|r| match r {
            NetnsRef::Named { name, path }
                if path.starts_with("/run/netns") || path.starts_with("/var/run/netns") =>
            {
                Some(name.clone())
            }
            _ => None,
        });
        let Some(path) = h.refs.iter().find_map(|r| match r {
            NetnsRef::Named { path, .. } | NetnsRef::Path { path } => Some(path.clone()),
            NetnsRef::Pid { pid, .. } => Some(PathBuf::from(format!("/proc/{pid}/ns/net"))),
            _ => None,
        }) else {
            return self;
        };
        let ns = StepNetns { name, path };
        for step in self.apply.iter_mut().chain(self.undo.iter_mut()) {
            if step.netns.is_none() {
                step.netns = Some(ns.clone());
            }
        }
        self.host = Some(ns);
        self
    }
}

/// The container interface facing a bridge (or any veth with a host end), and its netns.
struct Side<'a> {
    ns: StepNetns,
    iface: &'a NetnsIface,
}

fn side<'a>(snap: &Snapshot, topo: &'a Topology, r: &Resolved) -> Result<Side<'a>> {
    let key = r.netns.ok_or_else(|| {
        Error::Invalid(format!(
            "{} has no network namespace to break (is it running?)",
            r.target
        ))
    })?;
    let view = topo.netns.iter().find(|n| n.key == key).ok_or_else(|| {
        Error::Invalid(format!(
            "{} is the host network namespace, not a container",
            r.target
        ))
    })?;
    let iface = view
        .ifaces
        .iter()
        .find(|i| i.host_veth.is_some() && i.bridge.is_some())
        .or_else(|| view.ifaces.iter().find(|i| i.host_veth.is_some()))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{} has no veth to the host: faults need a bridge/veth container",
                r.target
            ))
        })?;
    let state = snap.netns.iter().find(|n| n.key == key);
    let refs = state.map(|s| s.refs.as_slice()).unwrap_or_default();
    let name = refs.iter().find_map(|r| match r {
        NetnsRef::Named { name, path }
            if path.starts_with("/run/netns") || path.starts_with("/var/run/netns") =>
        {
            Some(name.clone())
        }
        _ => None,
    });
    let path = refs
        .iter()
        .find_map(|r| match r {
            NetnsRef::Named { path, .. } | NetnsRef::Path { path } => Some(path.clone()),
            NetnsRef::Pid { pid, .. } => Some(PathBuf::from(format!("/proc/{pid}/ns/net"))),
            _ => None,
        })
        .ok_or_else(|| Error::Invalid(format!("no path to enter the netns of {}", r.target)))?;
    Ok(Side {
        ns: StepNetns { name, path },
        iface,
    })
}

impl Side<'_> {
    /// The host end of its veth, by name (empty when it has none).
    fn host_veth(&self) -> String {
        self.iface
            .host_veth
            .as_ref()
            .map(|h| h.name.clone())
            .unwrap_or_default()
    }
}

fn first_v4(iface: &NetnsIface) -> Option<ipnet::Ipv4Net> {
    iface.ips.iter().find_map(|s| s.parse::<ipnet::Ipv4Net>().ok())
}

fn read_sysctl(key: &str) -> Option<String> {
    let path = Path::new("/proc/sys").join(key.replace('.', "/"));
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Plan `fault` on `target` (and `peer`, for the faults that use one) from live state.
pub fn plan(
    fault: Fault,
    snap: &Snapshot,
    topo: &Topology,
    target: &Resolved,
    peer: Option<&Resolved>,
) -> Result<Injection> {
    let me = side(snap, topo, target)?;
    let ifname = me.iface.iface.name.as_str();
    let host_veth = me.host_veth();
    let need_bridge = || {
        me.iface.bridge.clone().ok_or_else(|| {
            Error::Invalid(format!(
                "host veth {host_veth} of {} is on no bridge: {} needs one",
                target.target,
                fault.name()
            ))
        })
    };
    let need_addr = || {
        first_v4(me.iface)
            .ok_or_else(|| Error::Invalid(format!("{} has no IPv4 address on {ifname}", target.target)))
    };
    let host = snap.netns.iter().find(|n| n.key == snap.host);
    // The kernel drops the default route with the link or the address; put it back.
    let restore_default = |gw: std::net::IpAddr| {
        let gw = gw.to_string();
        Step::inside(
            &me.ns,
            &["ip", "route", "replace", "default", "via", &gw, "dev", ifname],
        )
    };
    let (apply, undo) = match fault {
        Fault::VxlanMtu | Fault::VtepFdbMissing | Fault::VniMismatch | Fault::UnderlayDrop => {
            overlay::plan(fault, snap, target, peer, &me)?
        }
        Fault::VethDown => (
            vec![Step::host(&["ip", "link", "set", "dev", &host_veth, "down"])],
            vec![Step::host(&["ip", "link", "set", "dev", &host_veth, "up"])],
        ),
        Fault::Eth0Down => {
            let mut undo = vec![Step::inside(&me.ns, &["ip", "link", "set", "dev", ifname, "up"])];
            undo.extend(me.iface.gateway.map(restore_default));
            (
                vec![Step::inside(
                    &me.ns,
                    &["ip", "link", "set", "dev", ifname, "down"],
                )],
                undo,
            )
        }
        Fault::Detach => {
            let br = need_bridge()?;
            (
                vec![Step::host(&["ip", "link", "set", "dev", &host_veth, "nomaster"])],
                vec![Step::host(&[
                    "ip", "link", "set", "dev", &host_veth, "master", &br,
                ])],
            )
        }
        Fault::BridgeDown => {
            let br = need_bridge()?;
            (
                vec![Step::host(&["ip", "link", "set", "dev", &br, "down"])],
                vec![Step::host(&["ip", "link", "set", "dev", &br, "up"])],
            )
        }
        Fault::AgeingZero => {
            let br = need_bridge()?;
            let was = topo
                .bridges
                .iter()
                .find(|b| b.iface.name == br)
                .map(|b| b.ageing_time_cs)
                .filter(|cs| *cs > 0)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "bridge {br} already has ageing time 0 (or it could not be read): nothing to break"
                    ))
                })?
                .to_string();
            let ageing = |cs: &str| {
                Step::host(&[
                    "ip",
                    "link",
                    "set",
                    "dev",
                    &br,
                    "type",
                    "bridge",
                    "ageing_time",
                    cs,
                ])
            };
            (vec![ageing("0")], vec![ageing(&was)])
        }
        Fault::WrongSubnet => {
            let net = need_addr()?;
            let host_part = u32::from(net.addr()) & !u32::from(net.netmask());
            let wrong = format!("192.0.2.{}/24", (host_part % 253) + 1);
            let old = net.to_string();
            let mut undo = vec![
                Step::inside(&me.ns, &["ip", "addr", "del", &wrong, "dev", ifname]),
                Step::inside(&me.ns, &["ip", "addr", "add", &old, "dev", ifname]),
            ];
            undo.extend(me.iface.gateway.map(restore_default));
            (
                vec![
                    Step::inside(&me.ns, &["ip", "addr", "del", &old, "dev", ifname]),
                    Step::inside(&me.ns, &["ip", "addr", "add", &wrong, "dev", ifname]),
                ],
                undo,
            )
        }
        Fault::NoRoute => {
            let gw = me
                .iface
                .gateway
                .ok_or_else(|| Error::Invalid(format!("{} has no default route to remove", target.target)))?;
            (
                vec![Step::inside(&me.ns, &["ip", "route", "del", "default"])],
                vec![restore_default(gw)],
            )
        }
        Fault::StaleArp => {
            let ip = match peer {
                Some(p) => {
                    let other = side(snap, topo, p)?;
                    first_v4(other.iface)
                        .ok_or_else(|| Error::Invalid(format!("{} has no IPv4 address", p.target)))?
                        .addr()
                        .to_string()
                }
                None => me
                    .iface
                    .gateway
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "{} has no gateway: name the peer whose entry to corrupt with --peer",
                            target.target
                        ))
                    })?
                    .to_string(),
            };
            (
                vec![Step::inside(
                    &me.ns,
                    &[
                        "ip",
                        "neigh",
                        "replace",
                        &ip,
                        "lladdr",
                        STALE_MAC,
                        "dev",
                        ifname,
                        "nud",
                        "permanent",
                    ],
                )],
                vec![Step::inside(&me.ns, &["ip", "neigh", "del", &ip, "dev", ifname])],
            )
        }
        Fault::ForwardDrop => {
            let rule = ["-m", "comment", "--comment", FAULT_COMMENT, "-j", "DROP"];
            let mut apply = Vec::new();
            let mut undo = vec![Step::host(
                &[&["iptables", "-D", "FORWARD"][..], &rule[..]].concat(),
            )];
            // Only when br_netfilter is loaded: ctnet loads no kernel modules.
            if let Some(was) = read_sysctl("net.bridge.bridge-nf-call-iptables") {
                apply.push(Step::sysctl("net.bridge.bridge-nf-call-iptables", 1));
                undo.push(Step::sysctl("net.bridge.bridge-nf-call-iptables", was));
            }
            apply.push(Step::host(
                &[&["iptables", "-I", "FORWARD", "1"][..], &rule[..]].concat(),
            ));
            (apply, undo)
        }
        Fault::NoMasquerade => {
            let net = need_addr()?.trunc();
            let rule = snap
                .firewall
                .iter()
                .flat_map(|f| f.iptables.iter().filter(|d| d.family == "ip"))
                .flat_map(|d| d.tables.iter().filter(|t| t.name == "nat"))
                .flat_map(|t| t.rules.iter())
                .find(|r| {
                    r.chain == "POSTROUTING"
                        && r.target.as_deref() == Some("MASQUERADE")
                        && r.spec.split_whitespace().any(|w| w == net.to_string())
                })
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "no iptables MASQUERADE rule for {net} in nat POSTROUTING to remove"
                    ))
                })?;
            // Put back where it was: an earlier rule could otherwise win.
            let pos = rule.position.max(1).to_string();
            let spec = shell_words(&rule.spec);
            let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
            (
                vec![Step::host(
                    &[&["iptables", "-t", "nat", "-D", "POSTROUTING"][..], &spec[..]].concat(),
                )],
                vec![Step::host(
                    &[
                        &["iptables", "-t", "nat", "-I", "POSTROUTING", &pos][..],
                        &spec[..],
                    ]
                    .concat(),
                )],
            )
        }
        Fault::Mtu => {
            let was = me.iface.mtu.unwrap_or(1500).to_string();
            (
                vec![Step::inside(
                    &me.ns,
                    &["ip", "link", "set", "dev", ifname, "mtu", "9000"],
                )],
                vec![Step::inside(
                    &me.ns,
                    &["ip", "link", "set", "dev", ifname, "mtu", &was],
                )],
            )
        }
        Fault::PortDrop | Fault::NftDrop => {
            let peer = peer.ok_or_else(|| {
                Error::Invalid(format!(
                    "{} needs --peer: the container whose traffic to drop",
                    fault.name()
                ))
            })?;
            let peer_side = side(snap, topo, peer)?;
            let to = first_v4(peer_side.iface)
                .ok_or_else(|| Error::Invalid(format!("{} has no IPv4 address", peer.target)))?
                .addr();
            let from = need_addr()?.addr();
            let (src, dst) = (format!("{from}/32"), format!("{to}/32"));
            let port = FAULT_PORT.to_string();
            let mut apply = Vec::new();
            let mut undo = Vec::new();
            if fault == Fault::PortDrop {
                let rule = [
                    "-s",
                    &src,
                    "-d",
                    &dst,
                    "-p",
                    "tcp",
                    "-m",
                    "tcp",
                    "--dport",
                    &port,
                    "-m",
                    "comment",
                    "--comment",
                    FAULT_COMMENT,
                    "-j",
                    "DROP",
                ];
                apply.push(Step::host(
                    &[&["iptables", "-I", "FORWARD", "1"][..], &rule[..]].concat(),
                ));
                undo.push(Step::host(
                    &[&["iptables", "-D", "FORWARD"][..], &rule[..]].concat(),
                ));
            } else {
                let to = to.to_string();
                apply.push(Step::host(&["nft", "add", "table", "inet", FAULT_NFT_TABLE]));
                apply.push(Step::host(&[
                    "nft",
                    "add",
                    "chain",
                    "inet",
                    FAULT_NFT_TABLE,
                    "forward",
                    "{",
                    "type",
                    "filter",
                    "hook",
                    "forward",
                    "priority",
                    "0",
                    ";",
                    "policy",
                    "accept",
                    ";",
                    "}",
                ]));
                apply.push(Step::host(&[
                    "nft",
                    "add",
                    "rule",
                    "inet",
                    FAULT_NFT_TABLE,
                    "forward",
                    "ip",
                    "daddr",
                    &to,
                    "counter",
                    "drop",
                ]));
                undo.push(Step::host(&["nft", "delete", "table", "inet", FAULT_NFT_TABLE]));
            }
            // Bridged traffic meets the IP hooks only with br_netfilter (loaded by no one
            // but the host: ctnet loads no kernel modules).
            if let Some(was) = read_sysctl("net.bridge.bridge-nf-call-iptables") {
                apply.insert(0, Step::sysctl("net.bridge.bridge-nf-call-iptables", 1));
                undo.push(Step::sysctl("net.bridge.bridge-nf-call-iptables", was));
            }
            (apply, undo)
        }
        Fault::Isolation => {
            let br = need_bridge()?;
            let net = need_addr()?;
            let host_part = u32::from(net.addr()) & !u32::from(net.netmask());
            let new = format!("198.51.100.{}/24", (host_part % 253) + 2);
            let gw_new = "198.51.100.1";
            let gw_cidr = format!("{gw_new}/24");
            let old = net.to_string();
            let drop_rule = |i: &str, o: &str| -> Vec<String> {
                [
                    "-i",
                    i,
                    "-o",
                    o,
                    "-m",
                    "comment",
                    "--comment",
                    FAULT_COMMENT,
                    "-j",
                    "DROP",
                ]
                .iter()
                .map(|w| w.to_string())
                .collect()
            };
            let ipt = |op: &[&str], rule: &[String]| -> Step {
                let mut argv: Vec<&str> = op.to_vec();
                argv.extend(rule.iter().map(String::as_str));
                Step::host(&argv)
            };
            let (a, b) = (drop_rule(&br, FAULT_BRIDGE), drop_rule(FAULT_BRIDGE, &br));
            let apply = vec![
                Step::host(&["ip", "link", "add", FAULT_BRIDGE, "type", "bridge"]),
                Step::host(&["ip", "addr", "add", &gw_cidr, "dev", FAULT_BRIDGE]),
                Step::host(&["ip", "link", "set", "dev", FAULT_BRIDGE, "up"]),
                Step::host(&["ip", "link", "set", "dev", &host_veth, "master", FAULT_BRIDGE]),
                Step::inside(&me.ns, &["ip", "addr", "del", &old, "dev", ifname]),
                Step::inside(&me.ns, &["ip", "addr", "add", &new, "dev", ifname]),
                Step::inside(
                    &me.ns,
                    &["ip", "route", "replace", "default", "via", gw_new, "dev", ifname],
                ),
                ipt(&["iptables", "-I", "FORWARD", "1"], &a),
                ipt(&["iptables", "-I", "FORWARD", "1"], &b),
            ];
            let mut undo = vec![
                ipt(&["iptables", "-D", "FORWARD"], &b),
                ipt(&["iptables", "-D", "FORWARD"], &a),
                Step::inside(&me.ns, &["ip", "addr", "del", &new, "dev", ifname]),
                Step::inside(&me.ns, &["ip", "addr", "add", &old, "dev", ifname]),
            ];
            undo.extend(me.iface.gateway.map(restore_default));
            undo.push(Step::host(&[
                "ip", "link", "set", "dev", &host_veth, "master", &br,
            ]));
            undo.push(Step::host(&["ip", "link", "del", "dev", FAULT_BRIDGE]));
            (apply, undo)
        }
        Fault::PublishedPort => {
            let ip = need_addr()?.addr();
            let to = format!("{ip}:80");
            let dst = format!("{ip}/32");
            let port = FAULT_PUBLISHED.to_string();
            let dnat = |chain: &str, local: bool| -> (Vec<String>, Vec<String>) {
                let mut rule: Vec<String> = Vec::new();
                if local {
                    // As Docker: localhost is left to a userland proxy (a DNAT of 127.0.0.1
                    // elsewhere would leave with a loopback source).
                    rule.extend(
                        ["!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL"].map(String::from),
                    );
                }
                rule.extend(
                    [
                        "-p",
                        "tcp",
                        "-m",
                        "tcp",
                        "--dport",
                        &port,
                        "-m",
                        "comment",
                        "--comment",
                        FAULT_COMMENT,
                        "-j",
                        "DNAT",
                        "--to-destination",
                        &to,
                    ]
                    .map(String::from),
                );
                let mut add: Vec<String> = ["iptables", "-t", "nat", "-I", chain, "1"]
                    .map(String::from)
                    .to_vec();
                add.extend(rule.iter().cloned());
                let mut del: Vec<String> = ["iptables", "-t", "nat", "-D", chain].map(String::from).to_vec();
                del.extend(rule);
                (add, del)
            };
            let drop_rule: Vec<String> = [
                "-d",
                &dst,
                "-p",
                "tcp",
                "-m",
                "tcp",
                "--dport",
                "80",
                "-m",
                "comment",
                "--comment",
                FAULT_COMMENT,
                "-j",
                "DROP",
            ]
            .map(String::from)
            .to_vec();
            let step = |argv: &[String]| Step::host(&argv.iter().map(String::as_str).collect::<Vec<_>>());
            let (pre_add, pre_del) = dnat("PREROUTING", false);
            let (out_add, out_del) = dnat("OUTPUT", true);
            let mut fwd_add: Vec<String> = ["iptables", "-I", "FORWARD", "1"].map(String::from).to_vec();
            fwd_add.extend(drop_rule.iter().cloned());
            let mut fwd_del: Vec<String> = ["iptables", "-D", "FORWARD"].map(String::from).to_vec();
            fwd_del.extend(drop_rule);
            (
                vec![step(&fwd_add), step(&pre_add), step(&out_add)],
                vec![step(&out_del), step(&pre_del), step(&fwd_del)],
            )
        }
        Fault::ArpIgnore => {
            let br = need_bridge()?;
            let key = format!("net.ipv4.conf.{ifname}.arp_ignore");
            let was = target
                .netns
                .and_then(|k| snap.netns_by_key(k))
                .and_then(|n| n.sysctls.conf.get(ifname))
                .and_then(|c| c.arp_ignore)
                .unwrap_or(0);
            (
                vec![
                    Step::inside(&me.ns, &["sysctl", "-w", &format!("{key}=8")]),
                    Step::host(&["ip", "neigh", "flush", "dev", &br]),
                ],
                vec![Step::inside(&me.ns, &["sysctl", "-w", &format!("{key}={was}")])],
            )
        }
        Fault::RpFilter => {
            let br = need_bridge()?;
            let ip = need_addr()?.addr();
            let key = format!("net.ipv4.conf.{br}.rp_filter");
            let was = host
                .and_then(|h| h.sysctls.conf.get(&br))
                .and_then(|c| c.rp_filter)
                .unwrap_or(0);
            let peer_end = format!("{FAULT_RPF_LINK}-p");
            (
                vec![
                    Step::host(&[
                        "ip",
                        "link",
                        "add",
                        FAULT_RPF_LINK,
                        "type",
                        "veth",
                        "peer",
                        "name",
                        &peer_end,
                    ]),
                    Step::host(&["ip", "link", "set", "dev", FAULT_RPF_LINK, "up"]),
                    Step::host(&["ip", "link", "set", "dev", &peer_end, "up"]),
                    Step::host(&["ip", "route", "add", &format!("{ip}/32"), "dev", FAULT_RPF_LINK]),
                    Step::host(&["sysctl", "-w", &format!("{key}=1")]),
                ],
                vec![
                    Step::host(&["sysctl", "-w", &format!("{key}={was}")]),
                    Step::host(&["ip", "link", "del", "dev", FAULT_RPF_LINK]),
                ],
            )
        }
        Fault::DnsBlocked => {
            let ip = need_addr()?.addr();
            let has_server = target
                .netns
                .and_then(|k| snap.netns_by_key(k))
                .and_then(|n| n.resolver.as_ref())
                .is_some_and(|r| !r.nameservers.is_empty());
            if !has_server {
                return Err(Error::Invalid(format!(
                    "{} has no resolv.conf naming a nameserver (a lab netns with no process has none): \
                     dns-blocked needs a container that resolves names",
                    target.target
                )));
            }
            let src = format!("{ip}/32");
            let mut apply = Vec::new();
            let mut undo = Vec::new();
            for chain in ["INPUT", "FORWARD"] {
                for proto in ["udp", "tcp"] {
                    let rule = [
                        "-s",
                        &src,
                        "-p",
                        proto,
                        "-m",
                        proto,
                        "--dport",
                        "53",
                        "-m",
                        "comment",
                        "--comment",
                        FAULT_COMMENT,
                        "-j",
                        "DROP",
                    ];
                    let mut add = vec!["iptables", "-I", chain, "1"];
                    add.extend(rule);
                    let mut del = vec!["iptables", "-D", chain];
                    del.extend(rule);
                    apply.push(Step::host(&add));
                    undo.push(Step::host(&del));
                }
            }
            undo.reverse();
            (apply, undo)
        }
        Fault::IpForwardOff => {
            let was = host.and_then(|h| h.sysctls.ip_forward).unwrap_or(1);
            (
                vec![Step::sysctl("net.ipv4.ip_forward", 0)],
                vec![Step::sysctl("net.ipv4.ip_forward", was)],
            )
        }
        Fault::ConntrackFull => {
            // A snapshot from before these were read: the live values.
            let live = |key: &str| read_sysctl(key).and_then(|v| v.parse::<u64>().ok());
            let count = host
                .and_then(|h| h.sysctls.conntrack_count)
                .or_else(|| live("net.netfilter.nf_conntrack_count"));
            let max = host
                .and_then(|h| h.sysctls.conntrack_max)
                .or_else(|| live("net.netfilter.nf_conntrack_max"));
            let (count, max) = match (count, max) {
                (Some(c), Some(m)) => (c, m),
                _ => {
                    return Err(Error::Invalid(
                        "nf_conntrack_count and nf_conntrack_max could not be read: is nf_conntrack loaded?"
                            .into(),
                    ));
                }
            };
            let entries = max.saturating_sub(count);
            let entries = u32::try_from(entries).map_err(|_| {
                Error::Invalid(format!(
                    "nf_conntrack_max is {max}: too large a table to fill (at most {} entries)",
                    u32::MAX
                ))
            })?;
            (
                vec![Step {
                    netns: None,
                    action: Action::ConntrackFill { entries },
                }],
                vec![Step {
                    netns: None,
                    action: Action::ConntrackFlush,
                }],
            )
        }
    };
    Ok(Injection {
        fault,
        target: target.target.clone(),
        peer: peer.map(|p| p.target.clone()),
        breaks: fault.breaks().to_string(),
        apply,
        undo,
        host: None,
    }
    .in_host(snap))
}

/// Split an `iptables -S` rule spec into words, keeping `"quoted strings"` whole.
fn shell_words(spec: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for ch in spec.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// A word in the shape of a step `lab break` makes.
#[derive(Debug, Clone, Copy)]
enum Word {
    /// Exactly this text.
    Lit(&'static str),
    /// An interface name the kernel would accept.
    Iface,
    /// A decimal number.
    Num,
    /// An IPv4 address with prefix.
    Cidr,
    /// An IPv4 address.
    Ip,
    /// An IPv4 address and port (`10.0.0.2:80`).
    IpPort,
    /// `net.ipv4.conf.IFACE.KEY=N` for this KEY.
    Conf(&'static str),
    /// A MAC address (`02:c7:4e:00:00:02`).
    Mac,
}

/// Where a step of a given shape runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Host,
    Inside,
}

use Word::{Cidr, Conf, Iface, Ip, IpPort, Lit, Mac, Num};

/// `bridge fdb append MAC dev IFACE dst IP self permanent`: a VXLAN device's static
/// entry for a remote VTEP, as flannel writes one.
const FDB_APPEND: &[Word] = &[
    Lit("bridge"),
    Lit("fdb"),
    Lit("append"),
    Mac,
    Lit("dev"),
    Iface,
    Lit("dst"),
    Ip,
    Lit("self"),
    Lit("permanent"),
];

const LINK_UP: &[Word] = &[Lit("ip"), Lit("link"), Lit("set"), Lit("dev"), Iface, Lit("up")];
const DEFAULT_VIA: &[Word] = &[
    Lit("ip"),
    Lit("route"),
    Lit("replace"),
    Lit("default"),
    Lit("via"),
    Ip,
    Lit("dev"),
    Iface,
];

/// The undo steps each fault's plan can produce: (where, shape), or the sysctl key.
fn undo_shapes(fault: Fault) -> (&'static [(Place, &'static [Word])], Option<&'static str>) {
    const ADDR_DEL: &[Word] = &[Lit("ip"), Lit("addr"), Lit("del"), Cidr, Lit("dev"), Iface];
    const ADDR_ADD: &[Word] = &[Lit("ip"), Lit("addr"), Lit("add"), Cidr, Lit("dev"), Iface];
    match fault {
        Fault::VethDown | Fault::BridgeDown => (&[(Place::Host, LINK_UP)], None),
        Fault::Eth0Down => (&[(Place::Inside, LINK_UP), (Place::Inside, DEFAULT_VIA)], None),
        Fault::Detach => (
            &[(
                Place::Host,
                &[
                    Lit("ip"),
                    Lit("link"),
                    Lit("set"),
                    Lit("dev"),
                    Iface,
                    Lit("master"),
                    Iface,
                ],
            )],
            None,
        ),
        Fault::AgeingZero => (
            &[(
                Place::Host,
                &[
                    Lit("ip"),
                    Lit("link"),
                    Lit("set"),
                    Lit("dev"),
                    Iface,
                    Lit("type"),
                    Lit("bridge"),
                    Lit("ageing_time"),
                    Num,
                ],
            )],
            None,
        ),
        Fault::WrongSubnet => (
            &[
                (Place::Inside, ADDR_DEL),
                (Place::Inside, ADDR_ADD),
                (Place::Inside, DEFAULT_VIA),
            ],
            None,
        ),
        Fault::NoRoute => (&[(Place::Inside, DEFAULT_VIA)], None),
        Fault::StaleArp => (
            &[(
                Place::Inside,
                &[Lit("ip"), Lit("neigh"), Lit("del"), Ip, Lit("dev"), Iface],
            )],
            None,
        ),
        Fault::ForwardDrop => (
            &[(
                Place::Host,
                &[
                    Lit("iptables"),
                    Lit("-D"),
                    Lit("FORWARD"),
                    Lit("-m"),
                    Lit("comment"),
                    Lit("--comment"),
                    Lit(FAULT_COMMENT),
                    Lit("-j"),
                    Lit("DROP"),
                ],
            )],
            Some("net.bridge.bridge-nf-call-iptables"),
        ),
        // Its rule spec is checked on its own (see `masquerade_spec_ok`).
        Fault::NoMasquerade => (&[], None),
        Fault::Mtu => (
            &[(
                Place::Inside,
                &[
                    Lit("ip"),
                    Lit("link"),
                    Lit("set"),
                    Lit("dev"),
                    Iface,
                    Lit("mtu"),
                    Num,
                ],
            )],
            None,
        ),
        Fault::IpForwardOff => (&[], Some("net.ipv4.ip_forward")),
        // Undone by its own step (Action::ConntrackFlush), no command.
        Fault::ConntrackFull => (&[], None),
        Fault::VxlanMtu => {
            const SET_MTU: &[Word] = &[
                Lit("ip"),
                Lit("link"),
                Lit("set"),
                Lit("dev"),
                Iface,
                Lit("mtu"),
                Num,
            ];
            (&[(Place::Inside, SET_MTU), (Place::Host, SET_MTU)], None)
        }
        Fault::VtepFdbMissing => (&[(Place::Host, FDB_APPEND)], None),
        Fault::VniMismatch => {
            const fn add(mode: &'static str) -> [Word; 19] {
                [
                    Lit("ip"),
                    Lit("link"),
                    Lit("add"),
                    Iface,
                    Lit("address"),
                    Mac,
                    Lit("mtu"),
                    Num,
                    Lit("type"),
                    Lit("vxlan"),
                    Lit("id"),
                    Num,
                    Lit("local"),
                    Ip,
                    Lit("dev"),
                    Iface,
                    Lit("dstport"),
                    Num,
                    Lit(mode),
                ]
            }
            const LEARNING: [Word; 19] = add("learning");
            const NOLEARNING: [Word; 19] = add("nolearning");
            (
                &[
                    (
                        Place::Host,
                        &[Lit("ip"), Lit("link"), Lit("del"), Lit("dev"), Iface],
                    ),
                    (Place::Host, &LEARNING),
                    (Place::Host, &NOLEARNING),
                    (
                        Place::Host,
                        &[Lit("ip"), Lit("addr"), Lit("add"), Cidr, Lit("dev"), Iface],
                    ),
                    (Place::Host, LINK_UP),
                    (
                        Place::Host,
                        &[
                            Lit("ip"),
                            Lit("route"),
                            Lit("replace"),
                            Cidr,
                            Lit("via"),
                            Ip,
                            Lit("dev"),
                            Iface,
                            Lit("onlink"),
                        ],
                    ),
                    (
                        Place::Host,
                        &[Lit("ip"), Lit("route"), Lit("replace"), Cidr, Lit("dev"), Iface],
                    ),
                    (
                        Place::Host,
                        &[
                            Lit("ip"),
                            Lit("neigh"),
                            Lit("replace"),
                            Ip,
                            Lit("lladdr"),
                            Mac,
                            Lit("dev"),
                            Iface,
                            Lit("nud"),
                            Lit("permanent"),
                        ],
                    ),
                    (Place::Host, FDB_APPEND),
                ],
                None,
            )
        }
        Fault::UnderlayDrop => (
            &[(
                Place::Host,
                &[
                    Lit("iptables"),
                    Lit("-D"),
                    Lit("INPUT"),
                    Lit("-p"),
                    Lit("udp"),
                    Lit("-m"),
                    Lit("udp"),
                    Lit("--dport"),
                    Num,
                    Lit("-m"),
                    Lit("comment"),
                    Lit("--comment"),
                    Lit(FAULT_COMMENT),
                    Lit("-j"),
                    Lit("DROP"),
                ],
            )],
            None,
        ),
        Fault::ArpIgnore => (
            &[(Place::Inside, &[Lit("sysctl"), Lit("-w"), Conf("arp_ignore")])],
            None,
        ),
        Fault::DnsBlocked => {
            const fn drop53(chain: &'static str, proto: &'static str) -> [Word; 17] {
                [
                    Lit("iptables"),
                    Lit("-D"),
                    Lit(chain),
                    Lit("-s"),
                    Cidr,
                    Lit("-p"),
                    Lit(proto),
                    Lit("-m"),
                    Lit(proto),
                    Lit("--dport"),
                    Lit("53"),
                    Lit("-m"),
                    Lit("comment"),
                    Lit("--comment"),
                    Lit(FAULT_COMMENT),
                    Lit("-j"),
                    Lit("DROP"),
                ]
            }
            const IU: [Word; 17] = drop53("INPUT", "udp");
            const IT: [Word; 17] = drop53("INPUT", "tcp");
            const FU: [Word; 17] = drop53("FORWARD", "udp");
            const FT: [Word; 17] = drop53("FORWARD", "tcp");
            (
                &[
                    (Place::Host, &IU),
                    (Place::Host, &IT),
                    (Place::Host, &FU),
                    (Place::Host, &FT),
                ],
                None,
            )
        }
        Fault::RpFilter => (
            &[
                (Place::Host, &[Lit("sysctl"), Lit("-w"), Conf("rp_filter")]),
                (
                    Place::Host,
                    &[
                        Lit("ip"),
                        Lit("link"),
                        Lit("del"),
                        Lit("dev"),
                        Lit(FAULT_RPF_LINK),
                    ],
                ),
            ],
            None,
        ),
        Fault::PortDrop => (
            &[(
                Place::Host,
                &[
                    Lit("iptables"),
                    Lit("-D"),
                    Lit("FORWARD"),
                    Lit("-s"),
                    Cidr,
                    Lit("-d"),
                    Cidr,
                    Lit("-p"),
                    Lit("tcp"),
                    Lit("-m"),
                    Lit("tcp"),
                    Lit("--dport"),
                    Num,
                    Lit("-m"),
                    Lit("comment"),
                    Lit("--comment"),
                    Lit(FAULT_COMMENT),
                    Lit("-j"),
                    Lit("DROP"),
                ],
            )],
            Some("net.bridge.bridge-nf-call-iptables"),
        ),
        Fault::NftDrop => (
            &[(
                Place::Host,
                &[
                    Lit("nft"),
                    Lit("delete"),
                    Lit("table"),
                    Lit("inet"),
                    Lit(FAULT_NFT_TABLE),
                ],
            )],
            Some("net.bridge.bridge-nf-call-iptables"),
        ),
        Fault::Isolation => (
            &[
                (
                    Place::Host,
                    &[
                        Lit("iptables"),
                        Lit("-D"),
                        Lit("FORWARD"),
                        Lit("-i"),
                        Iface,
                        Lit("-o"),
                        Iface,
                        Lit("-m"),
                        Lit("comment"),
                        Lit("--comment"),
                        Lit(FAULT_COMMENT),
                        Lit("-j"),
                        Lit("DROP"),
                    ],
                ),
                (Place::Inside, ADDR_DEL),
                (Place::Inside, ADDR_ADD),
                (Place::Inside, DEFAULT_VIA),
                (
                    Place::Host,
                    &[
                        Lit("ip"),
                        Lit("link"),
                        Lit("set"),
                        Lit("dev"),
                        Iface,
                        Lit("master"),
                        Iface,
                    ],
                ),
                (
                    Place::Host,
                    &[Lit("ip"), Lit("link"), Lit("del"), Lit("dev"), Lit(FAULT_BRIDGE)],
                ),
            ],
            None,
        ),
        Fault::PublishedPort => (
            &[
                (
                    Place::Host,
                    &[
                        Lit("iptables"),
                        Lit("-t"),
                        Lit("nat"),
                        Lit("-D"),
                        Lit("OUTPUT"),
                        Lit("!"),
                        Lit("-d"),
                        Lit("127.0.0.0/8"),
                        Lit("-m"),
                        Lit("addrtype"),
                        Lit("--dst-type"),
                        Lit("LOCAL"),
                        Lit("-p"),
                        Lit("tcp"),
                        Lit("-m"),
                        Lit("tcp"),
                        Lit("--dport"),
                        Num,
                        Lit("-m"),
                        Lit("comment"),
                        Lit("--comment"),
                        Lit(FAULT_COMMENT),
                        Lit("-j"),
                        Lit("DNAT"),
                        Lit("--to-destination"),
                        IpPort,
                    ],
                ),
                (
                    Place::Host,
                    &[
                        Lit("iptables"),
                        Lit("-t"),
                        Lit("nat"),
                        Lit("-D"),
                        Lit("PREROUTING"),
                        Lit("-p"),
                        Lit("tcp"),
                        Lit("-m"),
                        Lit("tcp"),
                        Lit("--dport"),
                        Num,
                        Lit("-m"),
                        Lit("comment"),
                        Lit("--comment"),
                        Lit(FAULT_COMMENT),
                        Lit("-j"),
                        Lit("DNAT"),
                        Lit("--to-destination"),
                        IpPort,
                    ],
                ),
                (
                    Place::Host,
                    &[
                        Lit("iptables"),
                        Lit("-D"),
                        Lit("FORWARD"),
                        Lit("-d"),
                        Cidr,
                        Lit("-p"),
                        Lit("tcp"),
                        Lit("-m"),
                        Lit("tcp"),
                        Lit("--dport"),
                        Num,
                        Lit("-m"),
                        Lit("comment"),
                        Lit("--comment"),
                        Lit(FAULT_COMMENT),
                        Lit("-j"),
                        Lit("DROP"),
                    ],
                ),
            ],
            None,
        ),
    }
}

/// Whether the kernel would accept `name` as an interface name (`dev_valid_name`).
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit())
}

fn word_ok(word: Word, arg: &str) -> bool {
    match word {
        Lit(l) => arg == l,
        Iface => valid_ifname(arg),
        Num => is_number(arg),
        Cidr => arg.parse::<ipnet::Ipv4Net>().is_ok(),
        Ip => arg.parse::<std::net::Ipv4Addr>().is_ok(),
        IpPort => arg.parse::<std::net::SocketAddrV4>().is_ok(),
        Mac => {
            let parts: Vec<&str> = arg.split(':').collect();
            parts.len() == 6
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        Conf(key) => arg
            .strip_prefix("net.ipv4.conf.")
            .and_then(|rest| rest.split_once('='))
            .and_then(|(name, value)| Some((name.strip_suffix(key)?.strip_suffix('.')?, value)))
            .is_some_and(|(iface, value)| (iface == "all" || valid_ifname(iface)) && is_number(value)),
    }
}

fn shape_ok(shape: &[Word], argv: &[String]) -> bool {
    shape.len() == argv.len() && shape.iter().zip(argv).all(|(w, a)| word_ok(*w, a))
}

/// iptables options that are not part of a rule: another command, table or program.
const IPTABLES_NOT_A_MATCH: [&str; 30] = [
    "-t",
    "--table",
    "-A",
    "--append",
    "-C",
    "--check",
    "-D",
    "--delete",
    "-I",
    "--insert",
    "-R",
    "--replace",
    "-L",
    "--list",
    "-S",
    "--list-rules",
    "-F",
    "--flush",
    "-Z",
    "--zero",
    "-N",
    "--new-chain",
    "-X",
    "--delete-chain",
    "-P",
    "--policy",
    "-E",
    "--rename-chain",
    "-M",
    "--modprobe",
];

/// The undo of `no-masquerade`: `iptables -t nat -I POSTROUTING N SPEC... -j MASQUERADE`,
/// where SPEC holds matches only (no other command, table, or `--modprobe` program).
fn masquerade_spec_ok(argv: &[String]) -> bool {
    let head = [
        Lit("iptables"),
        Lit("-t"),
        Lit("nat"),
        Lit("-I"),
        Lit("POSTROUTING"),
        Num,
    ];
    if argv.len() < head.len() + 2 || argv.len() > 64 || !shape_ok(&head, &argv[..head.len()]) {
        return false;
    }
    let spec = &argv[head.len()..];
    spec[spec.len() - 2..] == ["-j", "MASQUERADE"]
        && spec.iter().all(|w| {
            !w.contains(['\0', '\n'])
                && !IPTABLES_NOT_A_MATCH
                    .iter()
                    .any(|bad| w == bad || w.starts_with(&format!("{bad}=")))
                && !w.starts_with("--modprobe")
        })
}

/// Check that `step` is an undo step the plan of `fault` can produce, and return it as
/// it is to run: a step recorded before `ip` calls named `dev` gets the keyword.
#[cfg(test)]
fn checked_undo(fault: Fault, step: &Step) -> std::result::Result<Step, String> {
    checked_undo_in(fault, step, None)
}

/// [`checked_undo`] for a fault whose host steps run in `host` (see [`Injection::host`]).
fn checked_undo_in(fault: Fault, step: &Step, host: Option<&StepNetns>) -> std::result::Result<Step, String> {
    let mut step = step.clone();
    let place = match &step.netns {
        None => Place::Host,
        Some(ns) if Some(ns) == host => {
            if let Some(name) = &ns.name {
                netns::validate_netns_name(name).map_err(|e| e.to_string())?;
            }
            if !ns.path.is_absolute() {
                return Err(format!("netns path {} is not absolute", ns.path.display()));
            }
            Place::Host
        }
        Some(ns) => {
            if let Some(name) = &ns.name {
                netns::validate_netns_name(name).map_err(|e| e.to_string())?;
            }
            if !ns.path.is_absolute() {
                return Err(format!("netns path {} is not absolute", ns.path.display()));
            }
            Place::Inside
        }
    };
    match &mut step.action {
        Action::ConntrackFlush if fault == Fault::ConntrackFull && place == Place::Host => {}
        Action::ConntrackFlush => {
            return Err(format!(
                "removing conntrack entries is not how {} is undone",
                fault.name()
            ));
        }
        Action::ConntrackFill { .. } => return Err("filling conntrack undoes nothing".into()),
        Action::Sysctl { key, value } => {
            let (_, allowed) = undo_shapes(fault);
            if place != Place::Host || allowed != Some(key.as_str()) {
                return Err(format!(
                    "sysctl {key:?} is not one {} sets (expected {})",
                    fault.name(),
                    allowed.unwrap_or("none")
                ));
            }
            if !is_number(value) {
                return Err(format!("sysctl value {value:?} is not a number"));
            }
        }
        Action::Run { argv } => {
            // Records written before every `ip link set` named `dev` (an interface
            // called `help` or `up` would have been read as a keyword).
            if argv.len() > 4 && argv[..3] == ["ip", "link", "set"] && argv[3] != "dev" {
                argv.insert(3, "dev".into());
            }
            let (shapes, _) = undo_shapes(fault);
            let known = shapes
                .iter()
                .any(|(p, shape)| *p == place && shape_ok(shape, argv))
                || (fault == Fault::NoMasquerade && place == Place::Host && masquerade_spec_ok(argv));
            if !known {
                return Err(format!("it is not a command {} undoes with", fault.name()));
            }
        }
    }
    Ok(step)
}

/// Whether a netns file is on nsfs: checked before opening, so a recorded path to a
/// FIFO or a device cannot block or touch anything.
fn is_nsfs(path: &Path) -> bool {
    // NSFS_MAGIC from linux/magic.h.
    let nsfs = nix::sys::statfs::FsType(0x6e73_6673);
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type() == nsfs)
}

fn run_step(step: &Step, tool_path: &str) -> Result<()> {
    let exec = || -> Result<()> {
        match &step.action {
            Action::Sysctl { key, value } => {
                let path = Path::new("/proc/sys").join(key.replace('.', "/"));
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(value.as_bytes()))
                    .map_err(|e| Error::Io {
                        op: format!("setting {key}={value}"),
                        path: path.clone(),
                        source: e,
                    })
            }
            Action::ConntrackFill { entries } => {
                // The limit is the host's, writable only from its initial netns: there, a
                // full table would stop every new connection of the real host.
                let writable = std::fs::metadata("/proc/sys/net/netfilter/nf_conntrack_max")
                    .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o200 != 0);
                if writable {
                    return Err(Error::Invalid(
                        "conntrack-full fills the conntrack table of the netns that holds the lab's bridge, and \
                         this is the host's initial netns: every new connection of this host would be dropped. \
                         Run the lab in a netns of its own (ctnet-diag world -- ...)"
                            .into(),
                    ));
                }
                let (added, refused) = super::conntrack::fill(*entries)?;
                match refused {
                    // Full before all were in (the table moved meanwhile): that is the fault.
                    Some(e) if e.raw_os_error() == Some(libc::ENOMEM) || added > 0 => {}
                    Some(e) => return Err(Error::io("filling the conntrack table through", "ctnetlink", e)),
                    None => {}
                }
                // Entries that are not assured would be evicted by the kernel on a table
                // this full, and entries dying when the count was read are freed a moment
                // later: either leaves a slot that lets a new flow in. They go now, and the
                // table is topped up until it stays full.
                let live = |key: &str| read_sysctl(key).and_then(|v| v.parse::<u32>().ok());
                let mut next = (*entries).max(added);
                for _ in 0..5 {
                    super::conntrack::flush_unassured()?;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    let (Some(count), Some(max)) = (
                        live("net.netfilter.nf_conntrack_count"),
                        live("net.netfilter.nf_conntrack_max"),
                    ) else {
                        break;
                    };
                    if count >= max {
                        break;
                    }
                    // Numbered past every tuple asked for so far (a refused batch may
                    // have put some of its entries in).
                    super::conntrack::fill_from(next, max - count)?;
                    next = next.saturating_add(max - count);
                }
                Ok(())
            }
            Action::ConntrackFlush => super::conntrack::flush_marked(),
            Action::Run { argv } => {
                // A hand-edited record may hold an empty command: say so, never panic.
                let Some((program, args)) = argv.split_first() else {
                    return Err(Error::Invalid(
                        "a fault record step has an empty command: fix or remove faults.json".into(),
                    ));
                };
                crate::tool::Cmd::new(program, tool_path)
                    .args(args)
                    .run()
                    .map(drop)
                    .map_err(|e| match e {
                        Error::Tool {
                            program,
                            detail,
                            kind,
                        } if kind != ErrorKind::MissingTool => Error::Tool {
                            program,
                            detail: format!("`{}` failed: {detail}", step.command()),
                            kind,
                        },
                        e => e,
                    })
            }
        }
    };
    match &step.netns {
        None => exec(),
        Some(ns) if !is_nsfs(&ns.path) => Err(Error::Invalid(format!(
            "{} is not a network namespace file (nsfs): not entering it",
            ns.path.display()
        ))),
        Some(ns) => Netns::open(&ns.path)?.run(exec)?,
    }
}

fn faults_path(env: &LabEnv) -> PathBuf {
    env.state_dir.join("faults.json")
}

/// The faults applied and not fixed yet, oldest first.
pub fn applied(env: &LabEnv) -> Result<Vec<Injection>> {
    let path = faults_path(env);
    match crate::model::read_regular_file(&path, crate::lab::RECORD_MAX_BYTES) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::Invalid(format!(
                "{} is not a fault record ({}); remove it once the faults it held are fixed by hand",
                crate::text::path(&path),
                crate::text::escape(&e.to_string())
            ))
        }),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn save(env: &LabEnv, list: &[Injection]) -> Result<()> {
    let path = faults_path(env);
    let io = |e| Error::Io {
        op: "writing".into(),
        path: path.clone(),
        source: e,
    };
    std::fs::create_dir_all(&env.state_dir).map_err(io)?;
    if list.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        };
    }
    let text = serde_json::to_string_pretty(list).map_err(|e| Error::Invalid(e.to_string()))?;
    // Whole or not at all: a reader never sees half a record.
    let tmp = path.with_extension(format!("json.{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// Apply a planned fault and record it. When a step fails, the steps already done are
/// undone and the error says what failed.
pub fn apply(inj: &Injection, env: &LabEnv) -> Result<()> {
    let mut list = applied(env)?;
    for (n, step) in inj.apply.iter().enumerate() {
        if let Err(cause) = run_step(step, &env.tool_path) {
            if n == 0 {
                return Err(cause);
            }
            // Best effort: the undo of a partly applied fault may fail on the parts that
            // were never applied; report only when nothing could be restored.
            let failures: Vec<Error> = inj
                .undo
                .iter()
                .filter_map(|s| run_step(s, &env.tool_path).err())
                .collect();
            return Err(if failures.len() == inj.undo.len() {
                Error::RolledBack {
                    cause: Box::new(cause),
                    undo_failures: failures,
                }
            } else {
                cause
            });
        }
    }
    list.push(inj.clone());
    save(env, &list)
}

/// Undo recorded faults, newest first: those matching `fault` and `target` when given,
/// else all. Returns what was fixed; a fault whose undo failed stays recorded.
///
/// Only the undo steps a plan of the recorded fault can produce are run (`ip` and
/// `iptables` with the arguments that fault uses, its own sysctl key): a record that
/// holds anything else is refused as a whole, naming the file and the step, and
/// nothing is run.
pub fn fix(env: &LabEnv, fault: Option<Fault>, target: Option<&str>) -> Result<(Vec<Injection>, Vec<Error>)> {
    let list = applied(env)?;
    let wanted =
        |inj: &Injection| fault.is_none_or(|f| f == inj.fault) && target.is_none_or(|t| t == inj.target);
    // Every step is checked before any runs: a half-trusted record does nothing.
    let mut checked: Vec<Vec<Step>> = Vec::with_capacity(list.len());
    for (n, inj) in list.iter().enumerate() {
        if !wanted(inj) {
            checked.push(Vec::new());
            continue;
        }
        let steps = inj
            .undo
            .iter()
            .map(|s| {
                checked_undo_in(inj.fault, s, inj.host.as_ref()).map_err(|why| {
                    Error::Invalid(format!(
                        "{}: entry {} ({} on {}) holds the step `{}`, which `lab break` never                          records: {why}; nothing was run. Undo that fault by hand, then remove                          the entry (or the file)",
                        faults_path(env).display(),
                        n + 1,
                        inj.fault.name(),
                        inj.target,
                        s.command()
                    ))
                })
            })
            .collect::<Result<Vec<Step>>>()?;
        checked.push(steps);
    }
    let mut keep = Vec::new();
    let mut fixed = Vec::new();
    let mut errors = Vec::new();
    for (inj, steps) in list.into_iter().zip(checked).rev() {
        if !wanted(&inj) {
            keep.push(inj);
            continue;
        }
        let failed: Vec<Error> = steps
            .iter()
            .filter_map(|s| run_step(s, &env.tool_path).err())
            .collect();
        if failed.is_empty() {
            fixed.push(inj);
        } else {
            errors.extend(failed);
            keep.push(inj);
        }
    }
    keep.reverse();
    save(env, &keep)?;
    Ok((fixed, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state directory of its own under the temp dir, removed again by the caller.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ctnet-fault-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn injection(fault: Fault, undo: Vec<Step>) -> Injection {
        Injection {
            fault,
            target: "c1".into(),
            peer: None,
            breaks: fault.breaks().into(),
            apply: Vec::new(),
            undo,
            host: None,
        }
    }

    #[test]
    fn fix_refuses_a_record_with_a_command_lab_break_never_makes() {
        let dir = scratch("argv");
        let mark = dir.join("ran");
        let env = LabEnv {
            state_dir: dir.clone(),
            ..LabEnv::default()
        };
        let evil = Step::host(&["sh", "-c", &format!("touch {}", mark.display())]);
        save(&env, &[injection(Fault::VethDown, vec![evil])]).unwrap();
        let err = fix(&env, None, None).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{text}");
        assert!(
            text.contains(&faults_path(&env).display().to_string())
                && text.contains("entry 1 (veth-down on c1)")
                && text.contains("sh -c"),
            "{text}"
        );
        assert!(!mark.exists(), "the recorded command ran");
        // The record stays for a person to look at.
        assert_eq!(applied(&env).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fix_refuses_a_sysctl_key_that_is_not_the_faults_own() {
        let dir = scratch("sysctl");
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let env = LabEnv {
            state_dir: dir.clone(),
            ..LabEnv::default()
        };
        for key in [victim.display().to_string(), "kernel.core_pattern".to_string()] {
            save(
                &env,
                &[injection(Fault::IpForwardOff, vec![Step::sysctl(&key, 1)])],
            )
            .unwrap();
            let err = fix(&env, None, None).unwrap_err().to_string();
            assert!(err.contains("faults.json") && err.contains(&key), "{err}");
        }
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn overlay_undo_steps_pass_in_their_node_and_nowhere_else() {
        let node = StepNetns {
            name: Some("ov-n1".into()),
            path: "/run/netns/ov-n1".into(),
        };
        let pod = StepNetns {
            name: Some("ov-n1-c1".into()),
            path: "/run/netns/ov-n1-c1".into(),
        };
        let at = |argv: &[&str]| Step::inside(&node, argv);
        let fdb = [
            "bridge",
            "fdb",
            "append",
            "02:c7:4e:00:00:02",
            "dev",
            "flannel.1",
            "dst",
            "10.78.0.2",
            "self",
            "permanent",
        ];
        let ok = [
            (Fault::VtepFdbMissing, at(&fdb)),
            (
                Fault::UnderlayDrop,
                at(&[
                    "iptables",
                    "-D",
                    "INPUT",
                    "-p",
                    "udp",
                    "-m",
                    "udp",
                    "--dport",
                    "4789",
                    "-m",
                    "comment",
                    "--comment",
                    FAULT_COMMENT,
                    "-j",
                    "DROP",
                ]),
            ),
            (
                Fault::VxlanMtu,
                at(&["ip", "link", "set", "dev", "veth1", "mtu", "1450"]),
            ),
            (
                Fault::VxlanMtu,
                Step::inside(&pod, &["ip", "link", "set", "dev", "eth0", "mtu", "1450"]),
            ),
            (Fault::VniMismatch, at(&["ip", "link", "del", "dev", "flannel.1"])),
            (
                Fault::VniMismatch,
                at(&[
                    "ip",
                    "link",
                    "add",
                    "flannel.1",
                    "address",
                    "02:c7:4e:00:00:01",
                    "mtu",
                    "1450",
                    "type",
                    "vxlan",
                    "id",
                    "1",
                    "local",
                    "10.78.0.1",
                    "dev",
                    "eth0",
                    "dstport",
                    "4789",
                    "nolearning",
                ]),
            ),
            (
                Fault::VniMismatch,
                at(&[
                    "ip",
                    "route",
                    "replace",
                    "10.77.2.0/24",
                    "via",
                    "10.77.2.0",
                    "dev",
                    "flannel.1",
                    "onlink",
                ]),
            ),
            (
                Fault::VniMismatch,
                at(&[
                    "ip",
                    "neigh",
                    "replace",
                    "10.77.2.0",
                    "lladdr",
                    "02:c7:4e:00:00:02",
                    "dev",
                    "flannel.1",
                    "nud",
                    "permanent",
                ]),
            ),
            (Fault::VniMismatch, at(&fdb)),
        ];
        for (f, s) in ok {
            assert_eq!(
                checked_undo_in(f, &s, Some(&node)),
                Ok(s.clone()),
                "{}",
                s.command()
            );
        }
        let mut bad_mac = fdb;
        bad_mac[3] = "02:c7:4e:00:00";
        let bad = [
            // A node step recorded for another netns than the fault's host.
            (Fault::VtepFdbMissing, Step::inside(&pod, &fdb)),
            (Fault::VtepFdbMissing, at(&bad_mac)),
            (
                Fault::VtepFdbMissing,
                at(&["bridge", "fdb", "flush", "dev", "flannel.1"]),
            ),
            (Fault::UnderlayDrop, at(&["iptables", "-F", "INPUT"])),
            (
                Fault::VniMismatch,
                at(&["ip", "link", "del", "dev", "eth0", "type", "veth"]),
            ),
            (Fault::PortDrop, at(&fdb)),
        ];
        for (f, s) in bad {
            assert!(
                checked_undo_in(f, &s, Some(&node)).is_err(),
                "{}: {}",
                f.name(),
                s.command()
            );
        }
    }

    #[test]
    fn only_the_undo_shapes_of_the_recorded_fault_pass() {
        let ns = StepNetns {
            name: Some("c1".into()),
            path: "/run/netns/c1".into(),
        };
        let ok = [
            (
                Fault::VethDown,
                Step::host(&["ip", "link", "set", "dev", "help", "up"]),
            ),
            (
                Fault::Mtu,
                Step::inside(&ns, &["ip", "link", "set", "dev", "eth0", "mtu", "1500"]),
            ),
            (
                Fault::StaleArp,
                Step::inside(&ns, &["ip", "neigh", "del", "10.0.0.3", "dev", "eth0"]),
            ),
            (Fault::IpForwardOff, Step::sysctl("net.ipv4.ip_forward", 1)),
            (
                Fault::NoMasquerade,
                Step::host(&[
                    "iptables",
                    "-t",
                    "nat",
                    "-I",
                    "POSTROUTING",
                    "1",
                    "-s",
                    "10.0.0.0/24",
                    "!",
                    "-o",
                    "br0",
                    "-j",
                    "MASQUERADE",
                ]),
            ),
        ];
        for (f, s) in ok {
            assert_eq!(checked_undo(f, &s), Ok(s.clone()), "{}", s.command());
        }
        let bad = [
            // Right shape, wrong fault; or the wrong place.
            (Fault::Mtu, Step::host(&["ip", "link", "set", "dev", "br0", "up"])),
            (
                Fault::VethDown,
                Step::inside(&ns, &["ip", "link", "set", "dev", "eth0", "up"]),
            ),
            (
                Fault::VethDown,
                Step::host(&["ip", "link", "set", "dev", "a/b", "up"]),
            ),
            (Fault::VethDown, Step::host(&["ip", "-b", "/tmp/x"])),
            (Fault::VethDown, Step::host(&[])),
            (Fault::ForwardDrop, Step::sysctl("net.ipv4.ip_forward", 1)),
            (
                Fault::IpForwardOff,
                Step::sysctl("net.ipv4.ip_forward", "1; reboot"),
            ),
            (
                Fault::NoMasquerade,
                Step::host(&[
                    "iptables",
                    "-t",
                    "nat",
                    "-I",
                    "POSTROUTING",
                    "1",
                    "--modprobe=/tmp/x",
                    "-j",
                    "MASQUERADE",
                ]),
            ),
            (
                Fault::NoMasquerade,
                Step::host(&[
                    "iptables",
                    "-t",
                    "nat",
                    "-I",
                    "POSTROUTING",
                    "1",
                    "-F",
                    "-j",
                    "MASQUERADE",
                ]),
            ),
        ];
        for (f, s) in bad {
            assert!(checked_undo(f, &s).is_err(), "{}: {}", f.name(), s.command());
        }
        let dotdot = StepNetns {
            name: Some("..".into()),
            path: "/run/netns/..".into(),
        };
        let s = Step::inside(&dotdot, &["ip", "link", "set", "dev", "eth0", "up"]);
        assert!(checked_undo(Fault::Eth0Down, &s).is_err());
    }

    #[test]
    fn a_record_from_before_dev_is_run_with_dev() {
        let old = Step::host(&["ip", "link", "set", "help", "up"]);
        assert_eq!(
            checked_undo(Fault::VethDown, &old).unwrap().command(),
            "ip link set dev help up"
        );
    }

    #[test]
    fn mutated_fault_records_are_refused_or_checked_never_run_blind() {
        let dir = scratch("mutate");
        let env = LabEnv {
            state_dir: dir.clone(),
            ..LabEnv::default()
        };
        let ns = StepNetns {
            name: Some("c1".into()),
            path: "/run/netns/c1".into(),
        };
        let list = vec![
            injection(
                Fault::VethDown,
                vec![Step::host(&["ip", "link", "set", "dev", "v1", "up"])],
            ),
            injection(
                Fault::Mtu,
                vec![Step::inside(
                    &ns,
                    &["ip", "link", "set", "dev", "eth0", "mtu", "1500"],
                )],
            ),
            injection(Fault::IpForwardOff, vec![Step::sysctl("net.ipv4.ip_forward", 1)]),
        ];
        let doc = serde_json::to_value(&list).unwrap();
        let (mut passed, mut refused, mut unread) = (0, 0, 0);
        for seed in 1..=2000u64 {
            let mut rng = crate::prop::Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut d = doc.clone();
            for _ in 0..1 + rng.below(3) {
                // Half the time inside a step, where `lab fix` takes its commands from.
                let i = rng.below(3);
                match d.get_mut(i).and_then(|e| e.get_mut("undo")) {
                    Some(undo) if rng.one_in(2) => crate::prop::mutate_json(&mut rng, undo, ""),
                    _ => crate::prop::mutate_json(&mut rng, &mut d, ""),
                }
            }
            let mut bytes = serde_json::to_vec(&d).unwrap();
            if rng.one_in(4) {
                bytes = crate::prop::mutate_bytes(&mut rng, bytes, &[b"\"", b"sh"]);
            }
            std::fs::write(faults_path(&env), &bytes).unwrap();
            let Ok(read) = applied(&env) else {
                unread += 1;
                continue;
            };
            // What `lab fix` checks before it runs anything: a step passes only in a
            // shape its fault's own plan makes, with a known tool.
            for inj in &read {
                for step in &inj.undo {
                    match checked_undo_in(inj.fault, step, inj.host.as_ref()) {
                        Ok(ok) => {
                            passed += 1;
                            match &ok.action {
                                Action::Run { argv } => {
                                    assert!(
                                        matches!(argv[0].as_str(), "ip" | "iptables" | "bridge"),
                                        "{argv:?}"
                                    )
                                }
                                Action::Sysctl { key, .. } => {
                                    assert_eq!(Some(key.as_str()), undo_shapes(inj.fault).1)
                                }
                                Action::ConntrackFlush => assert_eq!(inj.fault, Fault::ConntrackFull),
                                Action::ConntrackFill { .. } => panic!("a fill is no undo"),
                            }
                        }
                        Err(why) => {
                            assert!(!why.is_empty());
                            refused += 1;
                        }
                    }
                }
            }
        }
        eprintln!(
            "fault records: 2000 mutations, {unread} refused whole, {passed} steps passed, {refused} steps refused"
        );
        assert!(
            passed > 100 && refused > 100 && unread > 100,
            "{passed} {refused} {unread}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_ip_link_step_names_its_device_with_dev() {
        // `ip link set help down` prints the help of `ip link`: a name is never a keyword.
        for shapes in Fault::ALL.map(|f| undo_shapes(f).0) {
            for (_, shape) in shapes {
                let words: Vec<String> = shape
                    .iter()
                    .map(|w| match w {
                        Lit(l) => l.to_string(),
                        _ => "X".into(),
                    })
                    .collect();
                if words.starts_with(&["ip".into(), "link".into(), "set".into()]) {
                    assert_eq!(words[3], "dev", "{words:?}");
                }
            }
        }
    }

    #[test]
    fn every_fault_name_round_trips() {
        for f in Fault::ALL {
            assert_eq!(Fault::parse(f.name()).unwrap(), f);
        }
        let e = Fault::parse("cable-cut").unwrap_err().to_string();
        assert!(e.contains("veth-down") && e.contains("ip-forward-off"), "{e}");
    }

    #[test]
    fn splits_iptables_specs_with_quoted_comments() {
        assert_eq!(
            shell_words(r#"-s 10.50.0.0/24 ! -o br0 -m comment --comment "ctnet lab t" -j MASQUERADE"#),
            [
                "-s",
                "10.50.0.0/24",
                "!",
                "-o",
                "br0",
                "-m",
                "comment",
                "--comment",
                "ctnet lab t",
                "-j",
                "MASQUERADE"
            ]
        );
    }

    #[test]
    fn commands_quote_words_a_shell_would_split() {
        let s = Step::host(&[
            "iptables",
            "-D",
            "POSTROUTING",
            "--comment",
            "ctnet lab t",
            "!",
            "-o",
            "br0",
        ]);
        assert_eq!(
            s.command(),
            "iptables -D POSTROUTING --comment 'ctnet lab t' ! -o br0"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn steps_print_as_the_commands_a_person_would_type() {
        let ns = StepNetns {
            name: Some("c1".into()),
            path: "/run/netns/c1".into(),
        };
        assert_eq!(
            Step::inside(&ns, &["ip", "route", "del", "default"]).command(),
            "ip -n c1 route del default"
        );
        let anon = StepNetns {
            name: None,
            path: "/var/run/docker/netns/abc".into(),
        };
        assert_eq!(
            Step::inside(&anon, &["ip", "link", "set", "dev", "eth0", "down"]).command(),
            "nsenter --net=/var/run/docker/netns/abc ip link set dev eth0 down"
        );
        assert_eq!(
            Step::sysctl("net.ipv4.ip_forward", 0).command(),
            "sysctl -w net.ipv4.ip_forward=0"
        );
    }
}
