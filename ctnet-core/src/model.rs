//! The Snapshot model: plain serde data of everything read from a host, per netns.
//!
//! A snapshot saved as JSON (`schema: ctnet.snapshot/v2`; v1 files still load) loads again with
//! [`Snapshot::from_json`] and gives the same topology and output as live: it is the
//! fixture format and the offline support workflow. Fields are added, never renamed.
//! Enumerated values use iproute2's vocabulary in lowercase (`up`, `veth`, `reachable`,
//! `forwarding`) so the JSON reads like `ip -j` output.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::netns::{NetnsKey, NetnsRef};
pub use crate::vocab::{LinkKind, NeighState, OperState, PortState, SourceState};

/// Schema tag of a snapshot document.
pub const SNAPSHOT_SCHEMA: &str = "ctnet.snapshot/v2";

/// Schema tags that load: v1 files (no failure kind in a source's status) read as v2.
pub const SNAPSHOT_SCHEMAS_READ: &[&str] = &["ctnet.snapshot/v1", SNAPSHOT_SCHEMA];

/// Everything ctnet read from one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// Always [`SNAPSHOT_SCHEMA`].
    pub schema: String,
    /// When the scan started, Unix time in milliseconds.
    pub taken_at_unix_ms: u64,
    /// `uname -n` of the host.
    pub hostname: String,
    /// `uname -r` of the host.
    pub kernel: String,
    /// The netns taken as "host" (the tool's own, or `--host-netns`).
    pub host: NetnsKey,
    /// Every netns found, the host first.
    pub netns: Vec<NetnsState>,
    /// Firewall rules and counters of the host netns.
    #[serde(default)]
    pub firewall: Option<Firewall>,
    /// What each source read, or why it could not.
    #[serde(default)]
    pub sources: Vec<SourceStatus>,
    /// Containers known to the runtimes (and, without a daemon, found through cgroups),
    /// each tied to its netns.
    #[serde(default)]
    pub containers: Vec<Container>,
}

/// A container as its runtime describes it, tied to the netns it uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Container {
    /// Who runs it: `docker`, `podman`, `containerd`, `cri-o`, `kubernetes` (from a
    /// cgroup when no daemon answered).
    pub runtime: String,
    /// Full id.
    pub id: String,
    /// Name (without Docker's leading `/`); the short id when unknown.
    pub name: String,
    /// Image.
    pub image: Option<String>,
    /// `running`, `exited`, `created`, `paused`, ...
    pub state: String,
    /// Main process (in the runtime's pid namespace), when running.
    pub pid: Option<u32>,
    /// The runtime's path of its netns (Docker's `SandboxKey`).
    pub sandbox_key: Option<std::path::PathBuf>,
    /// `default`/`bridge`, a network name, `host`, `none`, or `container:<id>`.
    pub network_mode: String,
    /// Its endpoints on each network.
    pub networks: Vec<ContainerNetwork>,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
    /// Kubernetes pod (or podman pod) it belongs to, from its cgroup.
    pub pod: Option<String>,
    /// The netns it uses, once tied to one.
    pub netns: Option<NetnsKey>,
    /// For `container:<other>`: the name of the container whose netns it shares.
    pub shares_netns_of: Option<String>,
    /// The user whose rootless runtime runs it (rootless Podman); `None` for root's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<u32>,
}

impl Container {
    /// Whether its main process is running.
    pub fn is_running(&self) -> bool {
        self.state == "running" || self.state == "paused"
    }

    /// The first 12 characters of the id.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

/// A container's endpoint on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ContainerNetwork {
    /// Network name (`bridge`, a user network).
    pub name: String,
    /// The Linux bridge behind it (`docker0`, `br-<id12>`), for bridge networks.
    pub bridge: Option<String>,
    /// Its IPv4 address.
    pub ip: Option<IpAddr>,
    /// Prefix length.
    pub prefix_len: u8,
    /// Its MAC.
    pub mac: Option<String>,
    /// The network's gateway.
    pub gateway: Option<IpAddr>,
}

/// One published port (`-p host_ip:host_port:container_port/proto`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PublishedPort {
    /// Port inside the container.
    pub container_port: u16,
    /// `tcp`, `udp`, `sctp`.
    pub protocol: String,
    /// Host address it is bound to.
    pub host_ip: Option<String>,
    /// Host port.
    pub host_port: Option<u16>,
}

/// The largest snapshot file read (a host with 200 000 links writes about 150 MB).
pub const MAX_SNAPSHOT_BYTES: u64 = 512 << 20;

/// Read a whole regular file of at most `cap` bytes. It is opened without blocking (a
/// FIFO would wait for a writer forever) and checked before a byte is read; the read
/// stops at the cap even if the file grows meanwhile.
pub fn read_regular_file(path: &std::path::Path, cap: u64) -> Result<Vec<u8>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let shown = crate::text::path(path);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("reading", path, e))?;
    let meta = f.metadata().map_err(|e| Error::io("reading", path, e))?;
    if meta.is_dir() {
        return Err(Error::Invalid(format!("{shown} is a directory, not a file")));
    }
    if !meta.is_file() {
        return Err(Error::Invalid(format!(
            "{shown} is not a regular file (a FIFO, device or socket): save it to a file first"
        )));
    }
    if meta.len() > cap {
        return Err(Error::Invalid(format!(
            "{shown} is {} MiB, over the {} MiB a file may have",
            meta.len() >> 20,
            cap >> 20
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading", path, e))?;
    if bytes.len() as u64 > cap {
        return Err(Error::Invalid(format!(
            "{shown} grew past the {} MiB a file may have while it was read",
            cap >> 20
        )));
    }
    Ok(bytes)
}

impl Snapshot {
    /// Parse a snapshot document, checking its schema.
    pub fn from_json(text: &str) -> Result<Self> {
        Self::from_slice(text.as_bytes())
    }

    /// Parse a snapshot document from bytes, checking its schema first. The typed
    /// model is read straight from the bytes (no intermediate JSON tree), so memory
    /// stays a small multiple of the file.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Head {
            schema: Option<serde_json::Value>,
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            Error::Invalid(format!(
                "not UTF-8 text (an invalid byte at offset {}): a snapshot is JSON written by `ctnet-diag snapshot`",
                e.valid_up_to()
            ))
        })?;
        let wrong_schema = |v: &serde_json::Value| {
            Error::Invalid(format!(
                "schema is {}, expected {SNAPSHOT_SCHEMA:?} (write one with `ctnet-diag snapshot -o FILE`)",
                crate::text::escape(&v.to_string())
            ))
        };
        // One pass when the document is what it should be; the slower look at its
        // head only to say what is wrong with one that is not.
        let typed_error = match serde_json::from_str::<Snapshot>(text) {
            Ok(mut snap) if SNAPSHOT_SCHEMAS_READ.contains(&snap.schema.as_str()) => {
                snap.schema = SNAPSHOT_SCHEMA.to_string();
                // A file written before owners were recorded: said from its containers.
                if snap.netns.iter().all(|n| n.owner.is_none()) {
                    snap.stamp_owners();
                }
                return Ok(snap);
            }
            Ok(snap) => return Err(wrong_schema(&serde_json::Value::String(snap.schema))),
            Err(e) => e,
        };
        let head: Head = serde_json::from_str(text).map_err(|e| {
            Error::Invalid(format!(
                "not a JSON document: {}",
                crate::text::escape(&e.to_string())
            ))
        })?;
        match &head.schema {
            Some(serde_json::Value::String(s)) if SNAPSHOT_SCHEMAS_READ.contains(&s.as_str()) => {
                Err(Error::Invalid(format!(
                    "malformed snapshot: {}",
                    crate::text::escape(&typed_error.to_string())
                )))
            }
            Some(other) => Err(wrong_schema(other)),
            None => Err(Error::Invalid(format!(
                "no \"schema\" field: not a ctnet snapshot (expected {SNAPSHOT_SCHEMA:?})"
            ))),
        }
    }

    /// Read a snapshot file: a regular file (not a FIFO, device or directory) of at
    /// most [`MAX_SNAPSHOT_BYTES`].
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let shown = crate::text::path(path);
        let bytes = read_regular_file(path, MAX_SNAPSHOT_BYTES).map_err(|e| match e {
            Error::Invalid(m) => Error::Invalid(m),
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Error::Invalid(
                format!("{shown}: no such file (write a snapshot with `ctnet-diag snapshot -o FILE`)"),
            ),
            other => other,
        })?;
        // A support bundle (`ctnet-diag bundle`): the snapshot inside it.
        let bytes = if crate::bundle::is_gzip(&bytes) {
            crate::bundle::member(&bytes, crate::bundle::SNAPSHOT_MEMBER, MAX_SNAPSHOT_BYTES)
                .map_err(|e| match e {
                    Error::Invalid(m) => Error::Invalid(format!("{shown}: {m}")),
                    other => other,
                })?
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{shown}: a bundle without {} (made by another tool?)",
                        crate::bundle::SNAPSHOT_MEMBER
                    ))
                })?
        } else {
            bytes
        };
        Self::from_slice(&bytes).map_err(|e| match e {
            Error::Invalid(m) => Error::Invalid(format!("{shown}: {m}")),
            other => other,
        })
    }
    /// Pretty JSON of this snapshot.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("snapshot serialises")
    }

    /// The host netns state.
    pub fn host_netns(&self) -> Option<&NetnsState> {
        self.netns.iter().find(|n| n.key == self.host)
    }

    /// A netns by identity.
    pub fn netns_by_key(&self, key: NetnsKey) -> Option<&NetnsState> {
        self.netns.iter().find(|n| n.key == key)
    }

    /// Containers that use netns `key`.
    pub fn containers_in(&self, key: NetnsKey) -> impl Iterator<Item = &Container> {
        self.containers.iter().filter(move |c| c.netns == Some(key))
    }

    /// Say in each netns who owns it ([`NetnsState::owner`]): the running container
    /// that made it (not one sharing another's), as a pod when it belongs to one; else
    /// `plain` with its name; the host netns as `host`.
    pub fn stamp_owners(&mut self) {
        let owners: Vec<Option<NetnsOwner>> = self
            .netns
            .iter()
            .map(|n| {
                if n.key == self.host {
                    return Some(NetnsOwner {
                        runtime: "host".into(),
                        name: self.hostname.clone(),
                    });
                }
                let mut here: Vec<&Container> = self
                    .containers_in(n.key)
                    .filter(|c| c.is_running() && c.shares_netns_of.is_none())
                    .collect();
                here.sort_by_key(|c| (c.pod.is_none(), c.name.clone()));
                if let Some(c) = here.first() {
                    return Some(match &c.pod {
                        Some(pod) if matches!(c.runtime.as_str(), "kubernetes" | "containerd" | "cri-o") => {
                            NetnsOwner {
                                runtime: "kubernetes".into(),
                                name: pod.clone(),
                            }
                        }
                        _ => NetnsOwner {
                            runtime: c.runtime.clone(),
                            name: c.name.clone(),
                        },
                    });
                }
                let name = n.refs.iter().find_map(|r| match r {
                    NetnsRef::Named { name, .. } => Some(name.clone()),
                    _ => None,
                });
                Some(NetnsOwner {
                    runtime: "plain".into(),
                    name: name.unwrap_or_default(),
                })
            })
            .collect();
        for (n, o) in self.netns.iter_mut().zip(owners) {
            n.owner = o;
        }
    }
}

/// One network namespace and what was read inside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct NetnsState {
    /// Identity.
    pub key: NetnsKey,
    /// Every name, path and pid known to point at it.
    pub refs: Vec<NetnsRef>,
    /// The id the host netns gives this netns (what host veths report as
    /// `link_netnsid`); `None` when the host has assigned none.
    pub nsid: Option<i32>,
    /// The id this netns gives the host netns.
    pub host_nsid: Option<i32>,
    /// The ids this netns gives other (non-host) netns its links point into, asked with
    /// RTM_GETNSID inside it: resolves veths between two containers.
    pub peer_ids: BTreeMap<i32, NetnsKey>,
    /// Why this netns could not be read (its other fields are then empty, not "only lo").
    pub read_error: Option<String>,
    /// Links (`ip -d link`), with stats64, bridge/port attributes and ethtool counters.
    pub links: Vec<Link>,
    /// Addresses (`ip addr`).
    pub addresses: Vec<Address>,
    /// Routes of every table, IPv4 and IPv6 (`ip route show table all`).
    pub routes: Vec<Route>,
    /// ARP and NDP neighbours (`ip neigh`).
    pub neighbours: Vec<Neighbour>,
    /// Bridge forwarding database (`bridge fdb show`), when the netns has a bridge.
    pub fdb: Vec<FdbEntry>,
    /// Network sysctls that matter for forwarding and ARP.
    pub sysctls: Sysctls,
    /// This netns's own firewall, when it was read (a netns other than the host: only
    /// when asked, as for the netns a trace walks); the host's is [`Snapshot::firewall`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<Firewall>,
    /// The sockets that accept in this netns (TCP in LISTEN, UDP bound), from
    /// `/proc/net/{tcp,tcp6,udp,udp6}` read inside it; `None` when not read (a
    /// links-only read, an older snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listening: Option<Vec<Listener>>,
    /// The DNS resolver its processes use (`resolv.conf`), when one was found: in a
    /// process's root, or `/etc/netns/NAME/resolv.conf` for a named netns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<Resolver>,
    /// What owns it, as the snapshot's containers and names say (see
    /// [`Snapshot::stamp_owners`]): a file read elsewhere names each netns as the host did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<NetnsOwner>,
    /// The uid owning the user namespace this netns belongs to, when that is not the
    /// scanner's own (a rootless runtime's netns, reached through a tap served in user
    /// space by slirp4netns or pasta rather than a host veth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_uid: Option<u32>,
}

/// Who owns a netns: the runtime and the name a support engineer knows it by.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetnsOwner {
    /// `host` (the netns taken as the host); a container runtime (`docker`, `podman`,
    /// `containerd`, `cri-o`, `cni`); `kubernetes` for a pod's sandbox; `plain` for a
    /// netns no runtime claims (`ip netns add`, a process of its own).
    pub runtime: String,
    /// The container or pod (`NAMESPACE/NAME`), the netns's name for `plain`, the
    /// hostname for `host`; empty when it has none.
    pub name: String,
}

impl NetnsOwner {
    /// `kubernetes pod shop/web`, `docker container web1`, `plain netns lab-c1`, `host`.
    pub fn describe(&self) -> String {
        let what = match self.runtime.as_str() {
            "host" => return "host".into(),
            "kubernetes" => "pod",
            "plain" => "netns",
            _ => "container",
        };
        if self.name.is_empty() {
            format!("{} {what}", self.runtime)
        } else {
            format!("{} {what} {}", self.runtime, self.name)
        }
    }
}

/// A netns's DNS resolver configuration, as `resolv.conf` says.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resolver {
    /// What was read: `/proc/PID/root/etc/resolv.conf` (resolved inside that root) or
    /// `/etc/netns/NAME/resolv.conf`.
    pub path: String,
    /// The `nameserver` lines, in order (the C library asks at most the first three).
    pub nameservers: Vec<IpAddr>,
    /// The `search` domains.
    pub search: Vec<String>,
    /// Why the file could not be read or parsed; the lists are then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A socket that accepts: what `ss -ltun` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// `tcp` or `udp`.
    pub proto: String,
    /// The local address (`0.0.0.0` or `::` for any).
    pub addr: IpAddr,
    /// The local port.
    pub port: u16,
}

impl NetnsState {
    /// A short label: `host`, else the first name, else the first path or pid, else
    /// the inode (the same rule as [`crate::netns::Netns::label`]).
    pub fn label(&self) -> String {
        crate::netns::label_of(&self.refs, self.key)
    }

    /// A link by ifindex.
    pub fn link(&self, ifindex: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.ifindex == ifindex)
    }

    /// A link by name.
    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    /// Addresses on a link, as `addr/prefix`.
    pub fn addrs_of(&self, ifindex: u32) -> Vec<String> {
        self.addresses
            .iter()
            .filter(|a| a.ifindex == ifindex)
            .map(|a| format!("{}/{}", a.address, a.prefix_len))
            .collect()
    }
}

/// One network interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Link {
    /// Interface index (unique within its netns).
    pub ifindex: u32,
    /// Name.
    pub name: String,
    /// `IFLA_INFO_KIND`: `veth`, `bridge`, `macvlan`, ... (`None` for physical/loopback).
    pub kind: Option<LinkKind>,
    /// IFF flags, lowercase: `up`, `broadcast`, `loopback`, `running`, `lower_up`, ...
    pub flags: Vec<String>,
    /// Operational state: `up`, `down`, `lowerlayerdown`, `unknown`, ...
    pub operstate: OperState,
    /// MTU.
    pub mtu: Option<u32>,
    /// MAC address.
    pub mac: Option<String>,
    /// Ifindex of its master (bridge, bond, vrf).
    pub master: Option<u32>,
    /// `IFLA_LINK`: for a veth, the peer's ifindex *in the peer's netns* (`@ifN`).
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the peer's netns, as an id of *this* netns; absent when the
    /// peer is in the same netns.
    pub link_netnsid: Option<i32>,
    /// `ifalias`.
    pub alias: Option<String>,
    /// Counters (`ip -s link`, stats64).
    pub stats: Option<Stats>,
    /// Bridge attributes, when this link is a bridge.
    pub bridge: Option<BridgeAttrs>,
    /// Bridge-port attributes, when this link is a bridge port.
    pub port: Option<BridgePortAttrs>,
    /// `ethtool -S` counters (veths and other drivers that have them).
    pub ethtool: Option<EthtoolStats>,
    /// VXLAN attributes, when this link is a VXLAN device (absent from files written
    /// before they were read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<VxlanAttrs>,
}

/// A VXLAN device's attributes (`ip -d link show`: `vxlan id VNI remote|group ADDR
/// local ADDR dev UNDERLAY dstport PORT [no]learning`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct VxlanAttrs {
    /// The VXLAN network identifier.
    pub vni: Option<u32>,
    /// The local VTEP address (the encapsulation's source).
    pub local: Option<IpAddr>,
    /// The one remote VTEP, when the device sends to a unicast address by default.
    pub remote: Option<IpAddr>,
    /// The multicast group flooded to, when it has one.
    pub group: Option<IpAddr>,
    /// The UDP destination port (4789 by IANA; the kernel's default is 8472).
    pub port: Option<u16>,
    /// Whether it learns remote MACs from the packets it receives.
    pub learning: bool,
    /// The underlay device (`IFLA_VXLAN_LINK`), by ifindex.
    pub underlay: Option<u32>,
    /// `IFLA_VXLAN_COLLECT_METADATA` (`external`: the VNI and remote come per packet, as
    /// with Cilium or an OVS bridge).
    pub external: bool,
}

impl VxlanAttrs {
    /// In iproute2's words: `id 42 remote 192.0.2.2 local 192.0.2.1 dstport 4789
    /// nolearning`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.vni {
            parts.push(format!("id {v}"));
        }
        if let Some(r) = self.remote {
            parts.push(format!("remote {r}"));
        }
        if let Some(g) = self.group {
            parts.push(format!("group {g}"));
        }
        if let Some(l) = self.local {
            parts.push(format!("local {l}"));
        }
        if let Some(p) = self.port {
            parts.push(format!("dstport {p}"));
        }
        if self.external {
            parts.push("external".into());
        }
        parts.push(if self.learning { "learning" } else { "nolearning" }.into());
        parts.join(" ")
    }
}

impl Link {
    /// Whether the interface is administratively up.
    pub fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "up")
    }

    /// Whether it is a loopback device (`IFF_LOOPBACK`).
    pub fn is_loopback(&self) -> bool {
        self.flags.iter().any(|f| f == "loopback")
    }
}

/// Interface counters (stats64).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Stats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Packets dropped on transmit.
    pub tx_dropped: u64,
    /// Multicast packets received.
    pub multicast: u64,
    /// Packets dropped for want of a handler (unknown protocol).
    pub rx_nohandler: u64,
}

/// Attributes of a bridge device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct BridgeAttrs {
    /// STP state: 0 off, 1 kernel STP, 2 user STP.
    pub stp_state: u32,
    /// FDB ageing time in centiseconds (`brctl setageing 0` makes it 0).
    pub ageing_time_cs: u32,
    /// Forward delay in centiseconds.
    pub forward_delay_cs: u32,
    /// VLAN filtering on.
    pub vlan_filtering: bool,
    /// Per-bridge `nf_call_iptables` (br_netfilter sends bridged IPv4 through iptables).
    pub nf_call_iptables: bool,
    /// Per-bridge `nf_call_ip6tables`.
    pub nf_call_ip6tables: bool,
}

/// Attributes of a bridge port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct BridgePortAttrs {
    /// STP state: `disabled`, `listening`, `learning`, `forwarding`, `blocking`.
    pub state: PortState,
    /// Learns source MACs into the FDB.
    pub learning: bool,
    /// Floods unknown unicast.
    pub unicast_flood: bool,
    /// Floods multicast.
    pub multicast_flood: bool,
    /// Floods broadcast.
    pub broadcast_flood: bool,
    /// Hairpin mode.
    pub hairpin: bool,
    /// Isolated port.
    pub isolated: bool,
    /// Proxy ARP on the port.
    pub proxy_arp: bool,
    /// Port number (`brctl showmacs` "port no").
    pub port_no: Option<u16>,
    /// Path cost.
    pub cost: Option<u32>,
}

/// `ethtool -S` of one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct EthtoolStats {
    /// Driver name (`ethtool -i`).
    pub driver: String,
    /// Driver counters, by name (`peer_ifindex`, `rx_queue_0_drops`, ...).
    pub counters: BTreeMap<String, u64>,
}

impl EthtoolStats {
    /// The veth driver's `peer_ifindex`.
    pub fn peer_ifindex(&self) -> Option<u64> {
        self.counters.get("peer_ifindex").copied()
    }
}

/// One address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Interface it is on.
    pub ifindex: u32,
    /// The address.
    pub address: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Scope: `global`, `link`, `host`, ...
    pub scope: String,
    /// IPv4 label.
    pub label: Option<String>,
}

/// One route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Route {
    /// `inet` or `inet6`.
    pub family: String,
    /// Table id (254 main, 255 local, ...).
    pub table: u32,
    /// Destination `addr/len`, or `default`.
    pub dst: String,
    /// Gateway.
    pub gateway: Option<IpAddr>,
    /// Output interface.
    pub oif: Option<u32>,
    /// Preferred source.
    pub prefsrc: Option<IpAddr>,
    /// Protocol: `kernel`, `boot`, `static`, `dhcp`, ...
    pub protocol: String,
    /// Scope: `universe` (iproute2 prints `global`), `link`, `host`.
    pub scope: String,
    /// Type: `unicast`, `local`, `broadcast`, `unreachable`, `blackhole`, ...
    pub kind: String,
    /// Metric (priority).
    pub metric: Option<u32>,
    /// Next hops of a multipath route.
    pub nexthops: Vec<NextHop>,
}

/// One next hop of a multipath route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NextHop {
    /// Gateway.
    pub gateway: Option<IpAddr>,
    /// Output interface.
    pub oif: u32,
    /// Weight (hops + 1).
    pub weight: u16,
}

/// One ARP / NDP entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Neighbour {
    /// Interface.
    pub ifindex: u32,
    /// The neighbour's IP.
    pub ip: IpAddr,
    /// Its MAC (absent while incomplete/failed).
    pub mac: Option<String>,
    /// State: `reachable`, `stale`, `delay`, `probe`, `failed`, `incomplete`,
    /// `permanent`, `noarp`.
    pub state: NeighState,
    /// NTF_ROUTER (IPv6 router).
    pub router: bool,
    /// A proxy entry.
    pub proxy: bool,
}

/// One bridge FDB entry (`bridge fdb show`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FdbEntry {
    /// The port (or device, for `self` entries).
    pub ifindex: u32,
    /// The bridge (NDA_MASTER), for entries of a bridge's FDB.
    pub master: Option<u32>,
    /// The MAC.
    pub mac: String,
    /// VLAN id.
    pub vlan: Option<u16>,
    /// State: `permanent`, `noarp` (static), `reachable`/`stale` (learned).
    pub state: NeighState,
    /// Flags: `self`, `master`, `extern_learn`, `offload`, `sticky`, `router`.
    pub flags: Vec<String>,
    /// The port's own MAC (`brctl showmacs` is_local=yes).
    pub is_local: bool,
    /// Added by hand (`static`/`permanent` not local).
    pub is_static: bool,
    /// Seconds since it was last refreshed (learned entries; `brctl showmacs` ageing).
    pub age_s: Option<f64>,
    /// VXLAN remote.
    pub dst: Option<IpAddr>,
}

impl FdbEntry {
    /// Entries of a bridge's own FDB, what `brctl showmacs` lists (not device `self`
    /// unicast/multicast lists).
    pub fn is_bridge_entry(&self) -> bool {
        self.master.is_some() || !self.flags.iter().any(|f| f == "self")
    }
}

/// Network sysctls of one netns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Sysctls {
    /// `net.ipv4.ip_forward`.
    pub ip_forward: Option<u8>,
    /// `net.ipv6.conf.all.forwarding`.
    pub ipv6_forwarding: Option<u8>,
    /// `net.bridge.bridge-nf-call-iptables` (present only with br_netfilter).
    pub bridge_nf_call_iptables: Option<u8>,
    /// `net.bridge.bridge-nf-call-ip6tables`.
    pub bridge_nf_call_ip6tables: Option<u8>,
    /// `net.ipv4.conf.<name>.*` for `all`, `default` and every interface.
    pub conf: BTreeMap<String, IfSysctls>,
    /// `net.netfilter.nf_conntrack_count`: connections tracked in this netns (absent
    /// when conntrack is not loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack_count: Option<u64>,
    /// `net.netfilter.nf_conntrack_max`: the limit each netns's count is held to; at it,
    /// new connections are dropped ("nf_conntrack: table full").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack_max: Option<u64>,
    /// `net.ipv4.neigh.default.gc_thresh3`: the hard limit of the IPv4 neighbour table,
    /// which every netns on the host shares (read in the host netns only; the kernel
    /// shows it only to the initial user namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neigh_gc_thresh3: Option<u64>,
}

/// Per-interface IPv4 sysctls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct IfSysctls {
    /// `rp_filter`: 0 off, 1 strict, 2 loose.
    pub rp_filter: Option<u8>,
    /// `arp_ignore`.
    pub arp_ignore: Option<u8>,
    /// `arp_filter`.
    pub arp_filter: Option<u8>,
    /// `proxy_arp`.
    pub proxy_arp: Option<u8>,
    /// `forwarding`.
    pub forwarding: Option<u8>,
    /// `route_localnet`: 127.0.0.0/8 routed from other interfaces (0: martian).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_localnet: Option<u8>,
}

/// Firewall state of a netns: iptables (both backends, v4 and v6) and native nftables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Firewall {
    /// `iptables-save -c` dumps, one per backend and family that has tables.
    pub iptables: Vec<IptablesDump>,
    /// `nft -j list ruleset`, tables not managed by iptables-nft.
    pub nft: Vec<NftTable>,
    /// The `nft -j` document of the native tables as the kernel wrote it, from which
    /// the typed rule model (`netfilter::nft`) is derived; absent in snapshots written
    /// before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nft_json: Option<String>,
    /// The ipsets iptables rules refer to (`-m set --match-set`), from `ipset save`;
    /// empty when no rule refers to one (or ipset is not installed: a warning says so).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipsets: Vec<IpSet>,
    /// Things a human should know (both backends in use, ...).
    pub warnings: Vec<String>,
}

/// One ipset as `ipset save` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct IpSet {
    /// Name.
    pub name: String,
    /// Type (`hash:ip`, `hash:net`, `hash:ip,port`, ...).
    pub kind: String,
    /// Members as written (`10.0.0.1`, `10.0.0.0/24`, `10.0.0.1,tcp:80`).
    pub members: Vec<String>,
}

/// Who installed a chain, rule or table, by its name and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// Docker (`DOCKER*` chains, `docker-bridges` tables, `docker0`/`br-*` rules).
    Docker,
    /// Kubernetes (`KUBE-*`, `CNI-*`, `cali-`, `FLANNEL`).
    Kubernetes,
    /// Podman / netavark (`NETAVARK*`, `netavark` table).
    Podman,
    /// libvirt (`LIBVIRT_*`).
    Libvirt,
    /// A ctnet lab (`ctnet-lab:` comment).
    Ctnet,
    /// Anything else: the host's own configuration.
    Other,
}

/// One `iptables-save -c` dump.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IptablesDump {
    /// `nft` or `legacy`.
    pub backend: String,
    /// `ip` or `ip6`.
    pub family: String,
    /// Tables in the order printed.
    pub tables: Vec<IptTable>,
}

/// One iptables table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IptTable {
    /// `filter`, `nat`, `mangle`, `raw`, `security`.
    pub name: String,
    /// Chains with policy and counters.
    pub chains: Vec<IptChain>,
    /// Rules in evaluation order.
    pub rules: Vec<IptRule>,
}

/// One chain line (`:CHAIN POLICY [pkts:bytes]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IptChain {
    /// Chain name.
    pub name: String,
    /// Policy of a built-in chain; `None` for user chains.
    pub policy: Option<String>,
    /// Policy counter: packets.
    pub packets: u64,
    /// Policy counter: bytes.
    pub bytes: u64,
    /// Who made it.
    pub owner: Owner,
}

/// One rule line (`[pkts:bytes] -A CHAIN spec`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IptRule {
    /// Chain.
    pub chain: String,
    /// 1-based position in its chain (the rule number).
    pub position: u32,
    /// Everything after `-A CHAIN `.
    pub spec: String,
    /// `-j`/`-g` target.
    pub target: Option<String>,
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
    /// Who made it.
    pub owner: Owner,
}

/// One native nftables table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NftTable {
    /// `ip`, `ip6`, `inet`, `arp`, `bridge`, `netdev`.
    pub family: String,
    /// Table name.
    pub name: String,
    /// Who made it.
    pub owner: Option<Owner>,
    /// Chains.
    pub chains: Vec<NftChain>,
    /// Rules in order, per chain.
    pub rules: Vec<NftRule>,
}

/// One nftables chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NftChain {
    /// Name.
    pub name: String,
    /// Hook of a base chain (`forward`, `postrouting`, ...).
    pub hook: Option<String>,
    /// Base-chain type (`filter`, `nat`, `route`).
    pub kind: Option<String>,
    /// Base-chain priority.
    pub priority: Option<i64>,
    /// Base-chain policy.
    pub policy: Option<String>,
}

/// One nftables rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NftRule {
    /// Chain.
    pub chain: String,
    /// Kernel handle (stable id).
    pub handle: u64,
    /// 1-based position in its chain.
    pub position: u32,
    /// The rule in short text (matches, then verdict).
    pub text: String,
    /// Verdict or jump target (`accept`, `drop`, `jump X`, `masquerade`, `dnat`).
    pub verdict: Option<String>,
    /// Comment.
    pub comment: Option<String>,
    /// Counter packets, when the rule has a counter.
    pub packets: Option<u64>,
    /// Counter bytes.
    pub bytes: Option<u64>,
}

/// Whether one source could be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SourceStatus {
    /// The source: `netlink`, `sysctl`, `ethtool`, `iptables-nft-save`, `nft`, `discovery`, ...
    pub source: String,
    /// The netns it concerns, when one.
    pub netns: Option<String>,
    /// `ok`, `partial`, `failed`, `skipped`.
    pub status: SourceState,
    /// Why, when not ok.
    pub detail: Option<String>,
    /// What kind of failure, when known (`permission_denied`, `missing_tool`, ...):
    /// what renderers turn into a hint. Absent in `ctnet.snapshot/v1` files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
}

impl SourceStatus {
    /// A source that failed or was skipped, with the reason.
    pub fn problem(
        source: &str,
        netns: Option<String>,
        status: SourceState,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            source: source.into(),
            netns,
            status,
            detail: Some(detail.into()),
            kind: None,
        }
    }

    /// The same, with the kind of failure.
    pub fn of_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Whether the failure was for lack of privilege.
    pub fn denied(&self) -> bool {
        self.kind == Some(ErrorKind::PermissionDenied)
    }
}
