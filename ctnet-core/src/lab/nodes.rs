//! Multi-node labs: N simulated "nodes" joined by a VXLAN overlay, as flannel lays one
//! out, all on one machine (`lab up --nodes N --overlay vxlan`).
//!
//! ```text
//!  netns L-n1-c1 .. c<K>              netns L-n1 (node 1)                  netns L-ul
//!  eth0 10.77.1.2/24 ==veth== veth1 ─ cni0 10.77.1.1/24                    br0 (the underlay switch)
//!                                     flannel.1 10.77.1.0/32 VNI 1 :4789    │
//!                                       local 10.78.0.1 dev eth0 ==veth==== n1
//!                                     10.77.2.0/24 via 10.77.2.0 dev flannel.1 onlink
//!                                     neigh 10.77.2.0 lladdr VTEP2  fdb VTEP2 dst 10.78.0.2
//! ```
//! Every object is inside a named netns the lab creates: the host's own links, routes
//! and firewall are never touched. `lab down` deletes the netns, and everything in them
//! goes with them. The record (`NAME.nodes.json` in the state dir) is written before
//! anything is created, so a killed `up` is removed by `down` too.
//!
//! Routes, static neighbours and FDB entries are what flanneld writes for each node;
//! `--learning` instead gives every node an all-zeros FDB entry per remote VTEP (head-end
//! replication) and lets the device learn, with no static neighbours.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{LabEnv, LockWait, StateLock, validate_name};
use crate::error::{Error, Result};
use crate::netns::{self, Netns, NetnsKey};
use crate::tool::Cmd;

/// Most nodes a lab may have.
pub const MAX_NODES: u32 = 16;
/// Most containers per node.
pub const MAX_NODE_CONTAINERS: u32 = 64;
/// The VXLAN device on each node (flannel's name).
pub const VXLAN_DEV: &str = "flannel.1";
/// The VNI every node's device uses.
pub const VNI: u32 = 1;
/// The UDP port of the overlay (IANA's VXLAN port, Calico's and Cilium's).
pub const VXLAN_PORT: u16 = 4789;
/// The MTU of the overlay: the underlay's 1500 less 50 bytes of VXLAN over IPv4.
pub const OVERLAY_MTU: u32 = 1450;
/// The node's bridge for its pods (the CNI bridge plugin's default name).
pub const POD_BRIDGE: &str = "cni0";
/// The node's underlay interface.
pub const UNDERLAY_IF: &str = "eth0";

/// Pods of node I take 10.77.I.0/24; the underlay is 10.78.0.0/24 (node I is .I).
const POD_BASE: [u8; 2] = [10, 77];
const UNDERLAY_NET: [u8; 3] = [10, 78, 0];

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLabSpec {
    /// The lab name (as for single-node labs).
    pub name: String,
    /// How many nodes.
    pub nodes: u32,
    /// Containers per node.
    pub containers: u32,
    /// Learning VXLAN with head-end replication instead of flannel's static entries.
    pub learning: bool,
}

/// One container of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeContainer {
    /// Its netns name: `L-nI-cJ`.
    pub netns: String,
    /// Its `eth0` address with prefix.
    pub ip: String,
    /// The node end of its veth (on `cni0`).
    pub host_veth: String,
}

/// One node of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlan {
    /// 1-based index.
    pub index: u32,
    /// Its netns: `L-nI`.
    pub netns: String,
    /// Its underlay address (the VTEP's outer address).
    pub underlay_ip: Ipv4Addr,
    /// Its pods' subnet.
    pub pod_subnet: Ipv4Net,
    /// `cni0`'s address, the pods' gateway.
    pub gateway: Ipv4Addr,
    /// The VXLAN device's address (the network address of its pod subnet, as flannel).
    pub vtep_ip: Ipv4Addr,
    /// The VXLAN device's MAC.
    pub vtep_mac: String,
    /// Its containers.
    pub containers: Vec<NodeContainer>,
}

/// Every object a multi-node lab creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLabPlan {
    /// The spec.
    pub spec: NodeLabSpec,
    /// The underlay switch's netns: `L-ul`.
    pub switch: String,
    /// The nodes.
    pub nodes: Vec<NodePlan>,
}

/// The netns of node `i` of lab `lab`.
pub fn node_netns(lab: &str, i: u32) -> String {
    format!("{lab}-n{i}")
}

impl NodeLabPlan {
    /// Check `spec` and compute names and addresses.
    pub fn new(spec: &NodeLabSpec) -> Result<Self> {
        validate_name(&spec.name)?;
        if !(2..=MAX_NODES).contains(&spec.nodes) {
            return Err(Error::Invalid(format!(
                "--nodes must be between 2 and {MAX_NODES}, not {} (one node is `lab up` without --nodes)",
                spec.nodes
            )));
        }
        if !(1..=MAX_NODE_CONTAINERS).contains(&spec.containers) {
            return Err(Error::Invalid(format!(
                "--containers must be between 1 and {MAX_NODE_CONTAINERS} per node, not {}",
                spec.containers
            )));
        }
        let lab = &spec.name;
        let nodes = (1..=spec.nodes)
            .map(|i| {
                let octet = u8::try_from(i).expect("at most 16 nodes");
                let pod_subnet = Ipv4Net::new(Ipv4Addr::new(POD_BASE[0], POD_BASE[1], octet, 0), 24)
                    .expect("valid prefix");
                NodePlan {
                    index: i,
                    netns: node_netns(lab, i),
                    underlay_ip: Ipv4Addr::new(UNDERLAY_NET[0], UNDERLAY_NET[1], UNDERLAY_NET[2], octet),
                    pod_subnet,
                    gateway: Ipv4Addr::new(POD_BASE[0], POD_BASE[1], octet, 1),
                    vtep_ip: pod_subnet.network(),
                    vtep_mac: format!("02:c7:4e:00:00:{octet:02x}"),
                    containers: (1..=spec.containers)
                        .map(|j| NodeContainer {
                            netns: format!("{lab}-n{i}-c{j}"),
                            ip: format!(
                                "{}/24",
                                Ipv4Addr::new(
                                    POD_BASE[0],
                                    POD_BASE[1],
                                    octet,
                                    1 + u8::try_from(j).expect("at most 64")
                                )
                            ),
                            host_veth: format!("veth{j}"),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(Self {
            spec: spec.clone(),
            switch: format!("{lab}-ul"),
            nodes,
        })
    }

    /// Every netns of the lab, containers first, then nodes, then the switch: the
    /// order `down` deletes them in.
    pub fn all_netns(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .nodes
            .iter()
            .flat_map(|n| n.containers.iter().map(|c| c.netns.clone()))
            .collect();
        out.extend(self.nodes.iter().map(|n| n.netns.clone()));
        out.push(self.switch.clone());
        out
    }
}

/// What `lab up --nodes` built (`schema: ctnet.lab-nodes/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLabSummary {
    /// Always `ctnet.lab-nodes/v1`.
    pub schema: String,
    /// The lab name.
    pub name: String,
    /// The overlay: `vxlan`.
    pub overlay: String,
    /// The VXLAN device on each node.
    pub device: String,
    /// Its VNI.
    pub vni: u32,
    /// Its UDP port.
    pub port: u16,
    /// Whether the devices learn (head-end replication) instead of static entries.
    pub learning: bool,
    /// The underlay switch's netns.
    pub switch: String,
    /// The nodes.
    pub nodes: Vec<NodePlan>,
}

/// The record of a multi-node lab: its spec, where it was built, whether `up` finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct NodeRecord {
    schema: String,
    spec: NodeLabSpec,
    host_netns: NetnsKey,
    netns: Vec<String>,
    complete: bool,
}

const RECORD_SCHEMA: &str = "ctnet.lab-nodes-record/v1";

/// Where a multi-node lab's record is: `NAME.nodes.json` (never a single-node lab's
/// `NAME.json`, whose reader skips it).
pub fn record_path(env: &LabEnv, name: &str) -> PathBuf {
    env.state_dir.join(format!("{name}.nodes.json"))
}

fn write_record(path: &Path, rec: &NodeRecord) -> Result<()> {
    let text = serde_json::to_string_pretty(rec).map_err(|e| Error::Invalid(e.to_string()))?;
    crate::output::OutputFile::write_all_at(path, text.as_bytes())
}

/// Read lab `name`'s record: `None` when there is none.
fn read_record(env: &LabEnv, name: &str) -> Result<Option<NodeRecord>> {
    let path = record_path(env, name);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = crate::model::read_regular_file(&path, super::RECORD_MAX_BYTES)?;
    let rec: NodeRecord = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Invalid(format!(
            "lab record {} is not a multi-node lab record ({e}): remove it by hand once its netns \
             ({name}-n*, {name}-ul) are gone",
            crate::text::path(&path),
            e = crate::text::escape(&e.to_string())
        ))
    })?;
    if rec.schema != RECORD_SCHEMA || rec.spec.name != name {
        return Err(Error::Invalid(format!(
            "lab record {} is not lab {name}'s ({}, lab {:?})",
            crate::text::path(&path),
            crate::text::escape(&rec.schema),
            crate::text::escape(&rec.spec.name)
        )));
    }
    Ok(Some(rec))
}

/// Whether a multi-node lab called `name` has a record (so `lab down` removes it).
pub fn exists(env: &LabEnv, name: &str) -> bool {
    record_path(env, name).exists()
}

/// The node netns whose container `target` is (`L-nI-cJ` of a multi-node lab with a
/// record here, whose node netns exists): what `--node` would pick for it.
pub fn node_of(env: &LabEnv, target: &str) -> Option<PathBuf> {
    let (node, c) = target.rsplit_once("-c")?;
    let (lab, i) = node.rsplit_once("-n")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
    if !digits(c) || !digits(i) || validate_name(lab).is_err() || !exists(env, lab) {
        return None;
    }
    let path = env.netns_dir.join(node);
    path.exists().then_some(path)
}

/// Build `spec` in the calling thread's netns (only named netns are created in it).
pub async fn up(spec: &NodeLabSpec, env: &LabEnv, wait: LockWait<'_>) -> Result<NodeLabSummary> {
    let plan = NodeLabPlan::new(spec)?;
    let here = Netns::current()?;
    let _lock = StateLock::acquire_with(env, wait).await?;
    let name = &spec.name;
    if exists(env, name) || env.state_dir.join(format!("{name}.json")).exists() {
        return Err(Error::Invalid(format!(
            "a lab called {name} already exists: `ctnet-diag lab down --name {name}` first, or pick another --name"
        )));
    }
    let present = netns::list_named(&env.netns_dir)?;
    let wanted = plan.all_netns();
    let taken: Vec<&String> = wanted.iter().filter(|n| present.contains(n)).collect();
    if !taken.is_empty() {
        return Err(Error::Invalid(format!(
            "netns {0} already exist{2}: lab {name} would take {1} (remove {1} with `ip netns del`, or pick another --name)",
            taken.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            if taken.len() == 1 { "it" } else { "them" },
            if taken.len() == 1 { "s" } else { "" },
        )));
    }
    let path = record_path(env, name);
    let mut rec = NodeRecord {
        schema: RECORD_SCHEMA.into(),
        spec: spec.clone(),
        host_netns: here.key(),
        netns: plan.all_netns(),
        complete: false,
    };
    write_record(&path, &rec)?;
    let env2 = env.clone();
    let plan2 = plan.clone();
    let built = tokio::task::spawn_blocking(move || build(&plan2, &env2))
        .await
        .map_err(|e| Error::Invalid(format!("building the lab: {e}")))?;
    if let Err(err) = built {
        let mut undo = Vec::new();
        for n in plan.all_netns() {
            match netns::delete_named(&env.netns_dir, &n) {
                Ok(()) => {}
                Err(e) if e.kind() == crate::error::ErrorKind::NotFound => {}
                Err(e) => undo.push(e),
            }
        }
        if undo.is_empty() {
            let _ = std::fs::remove_file(&path);
            return Err(err);
        }
        return Err(Error::RolledBack {
            cause: Box::new(err),
            undo_failures: undo,
        });
    }
    rec.complete = true;
    write_record(&path, &rec)?;
    Ok(summary(&plan))
}

fn summary(plan: &NodeLabPlan) -> NodeLabSummary {
    NodeLabSummary {
        schema: "ctnet.lab-nodes/v1".into(),
        name: plan.spec.name.clone(),
        overlay: "vxlan".into(),
        device: VXLAN_DEV.into(),
        vni: VNI,
        port: VXLAN_PORT,
        learning: plan.spec.learning,
        switch: plan.switch.clone(),
        nodes: plan.nodes.clone(),
    }
}

/// Run `ip -batch -` with `script` inside `ns`.
fn ip_batch(ns: &Netns, env: &LabEnv, script: &str) -> Result<()> {
    batch(ns, env, "ip", script)
}

/// Run `TOOL -batch -` (`ip` or `bridge`) with `script` inside `ns`.
fn batch(ns: &Netns, env: &LabEnv, tool: &'static str, script: &str) -> Result<()> {
    if script.is_empty() {
        return Ok(());
    }
    let text = script.to_string();
    let path = env.tool_path.clone();
    ns.run(move || Cmd::new(tool, &path).args(["-batch", "-"]).input(text).run())?
        .map(|_| ())
}

/// Write a sysctl inside `ns`.
fn sysctl_in(ns: &Netns, key: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(key.replace('.', "/"));
    let value = value.to_string();
    ns.run(move || {
        std::fs::write(&path, &value).map_err(|e| Error::io(format!("setting {value} in"), &path, e))
    })?
}

/// Create the netns and run the `ip -batch` (and `bridge -batch`) scripts of each, in
/// order: the switch, then for each node the node itself and its containers.
fn build(plan: &NodeLabPlan, env: &LabEnv) -> Result<()> {
    let dir = &env.netns_dir;
    let at = |n: &str| dir.join(n).display().to_string();
    let switch = netns::create_named(dir, &plan.switch)?;
    let mut s = String::from("link set lo up\nlink add br0 type bridge\nlink set br0 up\n");
    let mut nodes = Vec::new();
    for n in &plan.nodes {
        nodes.push(netns::create_named(dir, &n.netns)?);
        let _ = writeln!(
            s,
            "link add n{i} type veth peer name {UNDERLAY_IF} netns {}\nlink set n{i} master br0 up",
            at(&n.netns),
            i = n.index
        );
    }
    ip_batch(&switch, env, &s)?;
    for (n, ns) in plan.nodes.iter().zip(&nodes) {
        let mut s = String::new();
        let _ = writeln!(s, "link set lo up");
        let _ = writeln!(s, "addr add {}/24 dev {UNDERLAY_IF}", n.underlay_ip);
        let _ = writeln!(s, "link set {UNDERLAY_IF} up");
        let _ = writeln!(s, "link add {POD_BRIDGE} type bridge");
        let _ = writeln!(s, "link set {POD_BRIDGE} mtu {OVERLAY_MTU}");
        let _ = writeln!(s, "addr add {}/24 dev {POD_BRIDGE}", n.gateway);
        let _ = writeln!(s, "link set {POD_BRIDGE} up");
        let _ = writeln!(
            s,
            "link add {VXLAN_DEV} address {} type vxlan id {VNI} local {} dev {UNDERLAY_IF} dstport {VXLAN_PORT} {}",
            n.vtep_mac,
            n.underlay_ip,
            if plan.spec.learning {
                "learning"
            } else {
                "nolearning"
            }
        );
        let _ = writeln!(s, "addr add {}/32 dev {VXLAN_DEV}", n.vtep_ip);
        let _ = writeln!(s, "link set {VXLAN_DEV} up");
        for c in &n.containers {
            let cns = netns::create_named(dir, &c.netns)?;
            let _ = writeln!(
                s,
                "link add {} mtu {OVERLAY_MTU} type veth peer name eth0 mtu {OVERLAY_MTU} netns {}",
                c.host_veth,
                at(&c.netns)
            );
            let _ = writeln!(s, "link set {} master {POD_BRIDGE} up", c.host_veth);
            drop(cns);
        }
        let mut fdb = String::new();
        for o in plan.nodes.iter().filter(|o| o.index != n.index) {
            let _ = writeln!(
                s,
                "route add {} via {} dev {VXLAN_DEV} onlink",
                o.pod_subnet, o.vtep_ip
            );
            if plan.spec.learning {
                let _ = writeln!(
                    fdb,
                    "fdb append 00:00:00:00:00:00 dev {VXLAN_DEV} dst {}",
                    o.underlay_ip
                );
            } else {
                let _ = writeln!(
                    s,
                    "neigh add {} lladdr {} dev {VXLAN_DEV} nud permanent",
                    o.vtep_ip, o.vtep_mac
                );
                let _ = writeln!(
                    fdb,
                    "fdb append {} dev {VXLAN_DEV} dst {} self permanent",
                    o.vtep_mac, o.underlay_ip
                );
            }
        }
        ip_batch(ns, env, &s)?;
        batch(ns, env, "bridge", &fdb)?;
        sysctl_in(ns, "net.ipv4.ip_forward", "1")?;
        // flannel's masquerade: pods leaving the cluster's pod range are source-NATed.
        let cluster = Ipv4Net::new(Ipv4Addr::new(POD_BASE[0], POD_BASE[1], 0, 0), 16)
            .expect("valid prefix")
            .to_string();
        let path = env.tool_path.clone();
        ns.run(move || {
            Cmd::new("iptables", &path)
                .args([
                    "-t",
                    "nat",
                    "-A",
                    "POSTROUTING",
                    "-s",
                    &cluster,
                    "!",
                    "-d",
                    &cluster,
                    "-m",
                    "comment",
                    "--comment",
                    "flannel masquerade",
                    "-j",
                    "MASQUERADE",
                ])
                .run()
        })??;
        for c in &n.containers {
            let cns = Netns::named(dir, &c.netns)?;
            let s = format!(
                "link set lo up\naddr add {} dev eth0\nlink set eth0 up\nroute add default via {}\n",
                c.ip, n.gateway
            );
            ip_batch(&cns, env, &s)?;
        }
    }
    Ok(())
}

/// Remove lab `name` if it is a multi-node lab (its record is here): every netns it
/// recorded, then the record. `None` when it is not one.
pub async fn down(name: &str, env: &LabEnv) -> Result<Option<super::DownReport>> {
    let _lock = StateLock::acquire(env).await?;
    let Some(rec) = read_record(env, name)? else {
        return Ok(None);
    };
    let mut report = super::DownReport {
        schema: "ctnet.lab-down/v1".into(),
        name: name.into(),
        ..Default::default()
    };
    let here = Netns::current()?;
    if rec.host_netns != here.key() {
        report.fail(Error::Invalid(format!(
            "lab {name} was built in another network namespace ({}), not this one ({}): \
             run `ctnet-diag lab down --name {name}` there",
            rec.host_netns,
            here.key()
        )));
        return Ok(Some(report));
    }
    // Only what the record names: the plan of its spec says the same (checked, so a
    // record edited to name someone else's netns removes nothing but the lab's).
    let planned = NodeLabPlan::new(&rec.spec)?.all_netns();
    for n in rec.netns.iter().filter(|n| planned.contains(n)) {
        match netns::delete_named(&env.netns_dir, n) {
            Ok(()) => report.netns.push(n.clone()),
            Err(e) if e.kind() == crate::error::ErrorKind::NotFound => {}
            Err(e) => report.fail(e),
        }
    }
    if report.failures.is_empty() {
        let path = record_path(env, name);
        if let Err(e) = std::fs::remove_file(&path) {
            report.fail(Error::io("removing the lab record", &path, e));
        }
    }
    Ok(Some(report))
}

/// Multi-node labs with a record here, for `lab list`: name, nodes, containers per
/// node, and how many of their netns exist now.
pub fn list(env: &LabEnv) -> Vec<super::LabInfo> {
    let Ok(dir) = std::fs::read_dir(&env.state_dir) else {
        return Vec::new();
    };
    let present = netns::list_named(&env.netns_dir).unwrap_or_default();
    let mut out: Vec<super::LabInfo> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let name = file.strip_suffix(".nodes.json")?.to_string();
            validate_name(&name).ok()?;
            let (rec, err) = match read_record(env, &name) {
                Ok(Some(r)) => (Some(r), None),
                Ok(None) => return None,
                Err(e) => (None, Some(e.to_string())),
            };
            let netns = rec
                .as_ref()
                .map_or(0, |r| r.netns.iter().filter(|n| present.contains(n)).count());
            Some(super::LabInfo {
                bridge: None,
                bridge_up: false,
                veths: 0,
                netns,
                subnet: rec.as_ref().map(|r| {
                    format!(
                        "{} nodes x {} containers, VXLAN {}",
                        r.spec.nodes,
                        r.spec.containers,
                        if r.spec.learning { "learning" } else { "static" }
                    )
                }),
                nat: None,
                partial: rec.as_ref().is_none_or(|r| !r.complete || netns < r.netns.len()),
                record_error: err,
                nodes: rec.as_ref().map(|r| r.spec.nodes),
                name,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nodes: u32, containers: u32) -> NodeLabSpec {
        NodeLabSpec {
            name: "ov".into(),
            nodes,
            containers,
            learning: false,
        }
    }

    #[test]
    fn plans_nodes_addresses_and_names() {
        let p = NodeLabPlan::new(&spec(3, 2)).unwrap();
        assert_eq!(p.switch, "ov-ul");
        let n2 = &p.nodes[1];
        assert_eq!(n2.netns, "ov-n2");
        assert_eq!(n2.underlay_ip, Ipv4Addr::new(10, 78, 0, 2));
        assert_eq!(n2.pod_subnet.to_string(), "10.77.2.0/24");
        assert_eq!(n2.vtep_ip, Ipv4Addr::new(10, 77, 2, 0));
        assert_eq!(n2.gateway, Ipv4Addr::new(10, 77, 2, 1));
        assert_eq!(n2.vtep_mac, "02:c7:4e:00:00:02");
        assert_eq!(
            n2.containers
                .iter()
                .map(|c| (c.netns.as_str(), c.ip.as_str()))
                .collect::<Vec<_>>(),
            [("ov-n2-c1", "10.77.2.2/24"), ("ov-n2-c2", "10.77.2.3/24")]
        );
        assert_eq!(
            p.all_netns(),
            [
                "ov-n1-c1", "ov-n1-c2", "ov-n2-c1", "ov-n2-c2", "ov-n3-c1", "ov-n3-c2", "ov-n1", "ov-n2",
                "ov-n3", "ov-ul"
            ]
        );
    }

    #[test]
    fn refuses_sizes_it_cannot_address() {
        for (s, want) in [
            (spec(1, 1), "between 2 and 16"),
            (spec(17, 1), "between 2 and 16"),
            (spec(2, 0), "between 1 and 64"),
            (spec(2, 65), "between 1 and 64"),
        ] {
            let err = NodeLabPlan::new(&s).unwrap_err().to_string();
            assert!(err.contains(want), "{s:?}: {err}");
        }
        let mut bad = spec(2, 1);
        bad.name = "Bad".into();
        assert!(
            NodeLabPlan::new(&bad)
                .unwrap_err()
                .to_string()
                .contains("invalid lab name")
        );
    }

    #[test]
    fn a_node_is_found_only_for_a_recorded_lab_whose_node_exists() {
        let dir = std::env::temp_dir().join(format!("ctnet-nodes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let env = LabEnv {
            netns_dir: dir.join("netns"),
            state_dir: dir.join("state"),
            tool_path: String::new(),
        };
        std::fs::create_dir_all(&env.netns_dir).unwrap();
        std::fs::create_dir_all(&env.state_dir).unwrap();
        assert_eq!(node_of(&env, "ov-n1-c1"), None);
        std::fs::write(record_path(&env, "ov"), "{}").unwrap();
        assert_eq!(node_of(&env, "ov-n1-c1"), None, "no node netns yet");
        std::fs::write(env.netns_dir.join("ov-n1"), "").unwrap();
        assert_eq!(node_of(&env, "ov-n1-c1"), Some(env.netns_dir.join("ov-n1")));
        for not in [
            "ov-n1",
            "ov-n01-c1",
            "ov-n1-c",
            "ov-n1-cx",
            "Ov-n1-c1",
            "x-n1-c1",
            "ov-c1",
        ] {
            assert_eq!(node_of(&env, not), None, "{not}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
