//! Throwaway labs: a bridge with a gateway and N netns "containers" on veth pairs,
//! built through netlink, torn down exactly.
//!
//! ```text
//!   netns NAME-c1          host netns                      netns NAME-c2
//!   eth0 10.77.0.2 ==veth== NAME-v1 ─┐                ┌─ NAME-v2 ==veth== eth0 10.77.0.3
//!                                    NAME-br 10.77.0.1/24
//!                  [--nat: MASQUERADE -s subnet ! -o NAME-br, FORWARD accepts, ip_forward=1]
//! ```
//! Every object carries the lab's prefix (`NAME-br`, `NAME-vI`, `NAME-cI`); the bridge
//! and host veths carry the alias `ctnet-lab:NAME` and firewall rules the comment of the
//! same text. A record under the state dir, written before anything is created, names
//! every object and the netns the lab lives in.
//! [`up`] checks every name first and rolls back what it created when a step fails;
//! [`down`] removes exactly the lab's objects (tagged, recorded, or proven by their
//! veth), is idempotent, and reports every failure.

pub mod conntrack;
pub mod fault;
pub mod nat;
pub mod nodes;
mod plan;

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::stream::{self, StreamExt, TryStreamExt};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};
use serde::{Deserialize, Serialize};

pub use plan::{ContainerPlan, LabNames, LabPlan, LabSpec, MAX_CONTAINERS, MAX_NAME_LEN, validate_name};

use crate::error::{Error, ErrorKind, Result};
use crate::netns::{self, DEFAULT_NETNS_DIR, Netns, NetnsKey};

/// Where labs keep their record (spec and what they changed that is not an object).
pub const DEFAULT_STATE_DIR: &str = "/run/ctnet/labs";

/// How many containers are built concurrently. The kernel serialises most of the work
/// (netns creation, RTM_NEWLINK under rtnl); concurrency hides our own per-container
/// latency (thread hand-offs, netlink round trips). Measured with bench/lab.sh at 200
/// containers: 4 -> ~350 ms, 8 -> ~330 ms, 16 -> ~295 ms.
const CONCURRENCY: usize = 16;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Where a lab's named netns, records and tools are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabEnv {
    /// Directory of named netns (`ip netns`).
    pub netns_dir: PathBuf,
    /// Directory of lab records.
    pub state_dir: PathBuf,
    /// Where to find `iptables-restore`, `iptables-save`, `iptables` and `nft`
    /// (a `PATH`-style list; by default `$PATH` plus the sbin directories).
    pub tool_path: String,
}

impl Default for LabEnv {
    fn default() -> Self {
        Self {
            netns_dir: DEFAULT_NETNS_DIR.into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            tool_path: crate::source::default_tool_path(),
        }
    }
}

/// One container of a built lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSummary {
    /// Its netns name.
    pub netns: String,
    /// Path of the netns bind mount.
    pub netns_path: PathBuf,
    /// Host end of the veth.
    pub host_veth: String,
    /// Interface name inside the netns (`eth0`).
    pub ifname: String,
    /// Its address with prefix.
    pub ip: String,
    /// MAC of its `eth0`.
    pub mac: String,
}

/// What `lab up` built (`schema: ctnet.lab/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSummary {
    /// Always `ctnet.lab/v1`.
    pub schema: String,
    /// The lab name.
    pub name: String,
    /// The bridge.
    pub bridge: String,
    /// Gateway address with prefix, on the bridge.
    pub gateway: String,
    /// The subnet.
    pub subnet: String,
    /// Whether NAT was set up.
    pub nat: bool,
    /// The containers, in index order.
    pub containers: Vec<ContainerSummary>,
}

/// The lab's record: what it is made of, where, and what it changed that is not an
/// object (`ip_forward`, iptables tables), so `down` removes exactly that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LabRecord {
    schema: String,
    spec: LabSpec,
    /// The netns the lab's bridge and host veths live in.
    host_netns: NetnsKey,
    /// Names of the lab's netns (checked free before any was created).
    netns: Vec<String>,
    /// Names of the lab's host veths.
    veths: Vec<String>,
    /// False while `up` is still building (or was killed mid-way).
    complete: bool,
    /// `ip_forward` before this lab set it, when it did.
    ip_forward_before: Option<String>,
    /// iptables tables present before this lab added rules (NAT labs only).
    #[serde(default)]
    iptables_tables_before: Option<Vec<String>>,
}

impl LabRecord {
    fn new(plan: &LabPlan, host: NetnsKey) -> Self {
        Self {
            schema: "ctnet.lab-record/v1".into(),
            spec: plan.spec.clone(),
            host_netns: host,
            netns: plan.containers.iter().map(|c| c.netns.clone()).collect(),
            veths: plan.containers.iter().map(|c| c.host_veth.clone()).collect(),
            complete: false,
            ip_forward_before: None,
            iptables_tables_before: None,
        }
    }
}

/// Something `up` created, in order, for rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Created {
    Record(PathBuf),
    Bridge(String),
    Netns(String),
    Veth(String),
    Rules { tables_before: Vec<String> },
    IpForward { before: String },
}

/// The rollback ledger: what `up` created so far, undone newest first.
#[derive(Debug, Default)]
struct Ledger(Vec<Created>);

impl Ledger {
    fn push(&mut self, c: Created) {
        self.0.push(c);
    }

    /// Steps to undo, newest first.
    fn undo_order(&self) -> impl Iterator<Item = &Created> {
        self.0.iter().rev()
    }
}

type SharedLedger = Arc<Mutex<Ledger>>;

fn record(ledger: &SharedLedger, c: Created) {
    ledger.lock().unwrap_or_else(|p| p.into_inner()).push(c);
}

fn link_name(msg: &LinkMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn link_kind(msg: &LinkMessage) -> Option<&InfoKind> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k),
            _ => None,
        }),
        _ => None,
    })
}

fn link_alias(msg: &LinkMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfAlias(n) => Some(n.as_str()),
        _ => None,
    })
}

fn link_netnsid(msg: &LinkMessage) -> Option<i32> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkNetNsId(n) => Some(*n),
        _ => None,
    })
}

fn format_mac(bytes: &[u8]) -> String {
    crate::source::rtnl::mac_string(bytes)
}

/// Look up one link by name; `Ok(None)` when there is none.
async fn get_link(h: &rtnetlink::Handle, name: &str, netns: &str) -> Result<Option<LinkMessage>> {
    match h.link().get().match_name(name).execute().try_next().await {
        Ok(m) => Ok(m),
        Err(e) => {
            let err = Error::netlink(format!("looking up link {name}"), netns, e);
            if err.kind() == ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// Dump every link of the netns behind `h`.
async fn dump_links(h: &rtnetlink::Handle, netns: &str) -> Result<Vec<LinkMessage>> {
    h.link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::netlink("listing links", netns, e))
}

fn taken(what: String) -> Error {
    Error::Netlink {
        op: what,
        netns: "host".into(),
        source: std::io::Error::from_raw_os_error(libc::EEXIST),
    }
}

/// Refuse to start when any name the lab needs is taken, or its subnet collides with
/// a route of this netns: before anything is created, with what to do about it.
async fn preflight(plan: &LabPlan, env: &LabEnv, h: &rtnetlink::Handle) -> Result<()> {
    let name = &plan.spec.name;
    let rec = record_path(env, name);
    if rec.exists() {
        return Err(taken(format!(
            "creating lab {name}: it already exists (record {}); remove it with \
             `ctnet-diag lab down --name {name}` or pick another --name",
            rec.display()
        )));
    }
    let links = dump_links(h, "host").await?;
    let wanted: Vec<&str> = std::iter::once(plan.bridge.as_str())
        .chain(plan.containers.iter().map(|c| c.host_veth.as_str()))
        .collect();
    if let Some(l) = links
        .iter()
        .find(|l| link_name(l).is_some_and(|n| wanted.contains(&n)))
    {
        let n = link_name(l).unwrap_or_default();
        let whose = if link_alias(l) == Some(plan.tag.as_str()) {
            format!("it belongs to lab {name}: remove it with `ctnet-diag lab down --name {name}`")
        } else {
            "it is not a ctnet lab's: pick another --name".to_string()
        };
        return Err(taken(format!(
            "creating lab {name}: interface {n} already exists; {whose}"
        )));
    }
    let existing = netns::list_named(&env.netns_dir)?;
    if let Some(ns) = plan.containers.iter().find(|c| existing.contains(&c.netns)) {
        return Err(taken(format!(
            "creating lab {name}: netns {} already exists in {}; pick another --name \
             (or `ip netns del {}` if it is a leftover of yours)",
            ns.netns,
            env.netns_dir.display(),
            ns.netns
        )));
    }
    // A subnet that overlaps a route here would steal or shadow real traffic.
    let routes: Vec<_> = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::netlink("listing routes", "host", e))?;
    for r in routes {
        use rtnetlink::packet_route::route::RouteType;
        use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
        // Any table: a local /16 on lo claims the whole range just as a main route does.
        let len = r.header.destination_prefix_length;
        if len == 0 || r.header.kind == RouteType::Broadcast {
            continue;
        }
        let Some(dst) = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
            _ => None,
        }) else {
            continue;
        };
        let Ok(net) = ipnet::Ipv4Net::new(dst, len) else {
            continue;
        };
        let mine = plan.spec.subnet;
        if net.contains(&mine.network()) || mine.contains(&net.network()) {
            return Err(Error::Invalid(format!(
                "subnet {mine} overlaps the route {net} already here; pick another --subnet \
                 (e.g. 10.{}.0.0/24)",
                77 + (u32::from(mine.network()) >> 16 & 0xff) % 100
            )));
        }
    }
    Ok(())
}

/// Build the lab described by `spec` in the calling thread's netns. Names are checked
/// first; on a later failure everything created so far is removed again and the error
/// says what failed (and what, if anything, could not be rolled back).
///
/// The checks and the build run under the state directory's lock (see [`StateLock`]):
/// two `up` at once, in any processes, cannot both find the same subnet free.
pub async fn up(spec: &LabSpec, env: &LabEnv) -> Result<LabSummary> {
    up_with(spec, env, LockWait::FOREVER).await
}

/// [`up`], waiting for the state lock as `wait` says: a stop asked for while another
/// lab command holds the lock ends it with [`Error::Stopped`], nothing built.
pub async fn up_with(spec: &LabSpec, env: &LabEnv, wait: LockWait<'_>) -> Result<LabSummary> {
    let plan = LabPlan::new(spec)?;
    let rt = tokio::runtime::Handle::current();
    let host = Netns::current()?;
    let h = host.rtnetlink(&rt, false)?;
    let _lock = StateLock::acquire_with(env, wait).await?;
    if nodes::exists(env, &spec.name) {
        return Err(Error::Invalid(format!(
            "a multi-node lab called {0} already exists: `ctnet-diag lab down --name {0}` first, or pick another --name",
            spec.name
        )));
    }
    preflight(&plan, env, &h).await?;
    overlapping_record(&plan, env, host.key(), &h).await?;
    let ledger: SharedLedger = Arc::default();
    match build(&plan, env, host.key(), &h, &rt, &ledger).await {
        Ok(summary) => Ok(summary),
        Err(err) => {
            let undo = rollback(&ledger, env, &plan, &h).await;
            if undo.is_empty() {
                Err(err)
            } else {
                Err(Error::RolledBack {
                    cause: Box::new(err),
                    undo_failures: undo,
                })
            }
        }
    }
}

/// How to wait for a [`StateLock`] that another lab command holds.
#[derive(Clone, Copy)]
pub struct LockWait<'a> {
    /// Set (by a signal handler, say) to give up the wait with [`Error::Stopped`].
    /// Only a wait is given up: once the lock is taken, a stop is not looked at.
    pub stop: Option<&'a AtomicBool>,
    /// Told `true` once, when the lock is found held by another command, and `false`
    /// when it is then taken; never told when the lock was free at once.
    pub waiting: Option<&'a (dyn Fn(bool) + Sync)>,
}

impl LockWait<'_> {
    /// Wait until the lock is free, however long, and tell no one.
    pub const FOREVER: LockWait<'static> = LockWait {
        stop: None,
        waiting: None,
    };

    fn stopped(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::SeqCst))
    }

    fn tell(&self, waiting: bool) {
        if let Some(f) = self.waiting {
            f(waiting);
        }
    }
}

impl std::fmt::Debug for LockWait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockWait")
            .field("stop", &self.stop)
            .field("waiting", &self.waiting.is_some())
            .finish()
    }
}

/// An exclusive `flock(2)` on `.lock` in the state directory, held while a lab is
/// checked and built or removed; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct StateLock {
    _file: nix::fcntl::Flock<std::fs::File>,
}

impl StateLock {
    /// How long a wait sleeps between two tries: a lock wait, not state polling, kept
    /// short so that a stop is seen at once.
    const RETRY: std::time::Duration = std::time::Duration::from_millis(20);

    /// Wait for the lock of `env`'s state directory (creating both when missing).
    pub async fn acquire(env: &LabEnv) -> Result<Self> {
        Self::acquire_with(env, LockWait::FOREVER).await
    }

    /// [`acquire`](Self::acquire), waiting as `wait` says.
    pub async fn acquire_with(env: &LabEnv, wait: LockWait<'_>) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = &env.state_dir;
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        let path = dir.join(".lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::io("opening the lab lock", &path, e))?;
        // Tried without blocking: a blocking flock cannot be given up when a stop is
        // asked for (the signal is taken by a handler, so flock is not interrupted).
        let mut waited = false;
        loop {
            use nix::fcntl::{Flock, FlockArg};
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => {
                    if waited {
                        wait.tell(false);
                        // A stop asked for just as the lock came free: nothing is built yet.
                        if wait.stopped() {
                            return Err(stopped(&path));
                        }
                    }
                    return Ok(Self { _file: locked });
                }
                Err((f, errno)) => {
                    file = f;
                    match errno {
                        nix::errno::Errno::EWOULDBLOCK => {}
                        nix::errno::Errno::EINTR => continue,
                        e => return Err(Error::io("locking", &path, e.into())),
                    }
                }
            }
            if !waited {
                waited = true;
                wait.tell(true);
            }
            if wait.stopped() {
                return Err(stopped(&path));
            }
            tokio::time::sleep(Self::RETRY).await;
        }
    }
}

fn stopped(lock: &Path) -> Error {
    Error::Stopped {
        what: format!(
            "waiting for the lab lock {} (another lab command holds it)",
            crate::text::path(lock)
        ),
    }
}

/// Refuse a subnet that overlaps one recorded by another lab of this netns (a lab being
/// removed, or half-built, may have no route left to show it).
///
/// A record that cannot be parsed cannot say its subnet (nor its netns): it blocks every
/// subnet, unless its lab's tagged bridge is here with addresses that prove no overlap.
async fn overlapping_record(
    plan: &LabPlan,
    env: &LabEnv,
    here: NetnsKey,
    h: &rtnetlink::Handle,
) -> Result<()> {
    let mine = plan.spec.subnet;
    for (path, rec) in list_records(env) {
        let r = match rec {
            Ok(r) => r,
            Err(why) => {
                // list_records keeps only `NAME.json` files with a valid lab name.
                let name = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_string();
                if name == plan.spec.name {
                    continue; // preflight refused this name already
                }
                let nets = bridge_networks(h, &name).await?;
                if !nets.is_empty() && nets.iter().all(|n| !overlaps(*n, mine)) {
                    continue;
                }
                return Err(Error::Invalid(format!(
                    "lab record {} {why}: it cannot say which subnet lab {name} uses, so subnet \
                     {mine} cannot be checked against it; remove that lab with \
                     `ctnet-diag lab down --name {name} --force`",
                    crate::text::path(&path)
                )));
            }
        };
        let theirs = r.spec.subnet;
        if r.spec.name != plan.spec.name && r.host_netns == here && overlaps(theirs, mine) {
            return Err(Error::Invalid(format!(
                "subnet {mine} overlaps lab {}'s {theirs} (record {}); pick another --subnet \
                 or remove that lab with `ctnet-diag lab down --name {}`",
                r.spec.name,
                crate::text::path(&path),
                r.spec.name
            )));
        }
    }
    Ok(())
}

fn overlaps(a: ipnet::Ipv4Net, b: ipnet::Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The IPv4 networks on lab `name`'s bridge in the netns of `h`: empty unless the
/// bridge is there, carries the lab's tag, and has an IPv4 address.
async fn bridge_networks(h: &rtnetlink::Handle, name: &str) -> Result<Vec<ipnet::Ipv4Net>> {
    use rtnetlink::packet_route::address::AddressAttribute;
    let names = LabNames::new(name)?;
    let bridge = names.bridge();
    let Some(link) = get_link(h, &bridge, "host").await? else {
        return Ok(Vec::new());
    };
    if link_kind(&link) != Some(&InfoKind::Bridge) || link_alias(&link) != Some(names.tag().as_str()) {
        return Ok(Vec::new());
    }
    let addrs: Vec<_> = h
        .address()
        .get()
        .set_link_index_filter(link.header.index)
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::netlink(format!("listing addresses of {bridge}"), "host", e))?;
    Ok(addrs
        .iter()
        .filter_map(|a| {
            let ip = a.attributes.iter().find_map(|at| match at {
                AddressAttribute::Local(IpAddr::V4(ip)) | AddressAttribute::Address(IpAddr::V4(ip)) => {
                    Some(*ip)
                }
                _ => None,
            })?;
            ipnet::Ipv4Net::new(ip, a.header.prefix_len)
                .ok()
                .map(|n| n.trunc())
        })
        .collect())
}

fn write_record(path: &Path, rec: &LabRecord) -> Result<()> {
    let text = serde_json::to_string_pretty(rec).map_err(|e| Error::Invalid(e.to_string()))?;
    // Whole or not at all: a `lab up` killed mid-write must not leave the corrupt
    // record that `lab down` would then refuse.
    crate::output::OutputFile::write_all_at(path, text.as_bytes())
}

async fn build(
    plan: &LabPlan,
    env: &LabEnv,
    host: NetnsKey,
    h: &rtnetlink::Handle,
    rt: &tokio::runtime::Handle,
    ledger: &SharedLedger,
) -> Result<LabSummary> {
    // The record first: if this process dies mid-way, `down` still knows every name.
    let path = record_path(env, &plan.spec.name);
    std::fs::create_dir_all(&env.state_dir).map_err(|e| Error::io("creating", &env.state_dir, e))?;
    let mut rec = LabRecord::new(plan, host);
    write_record(&path, &rec)?;
    record(ledger, Created::Record(path.clone()));

    let br = &plan.bridge;
    h.link()
        .add(LinkBridge::new(br).up().build())
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("creating bridge {br}"), "host", e))?;
    record(ledger, Created::Bridge(br.clone()));
    let br_msg = get_link(h, br, "host").await?.ok_or_else(|| Error::Netlink {
        op: format!("finding bridge {br} just created"),
        netns: "host".into(),
        source: std::io::Error::from_raw_os_error(libc::ENODEV),
    })?;
    let br_idx = br_msg.header.index;
    // The kernel ignores IFLA_IFALIAS in RTM_NEWLINK (rtnl_create_link applies only a
    // few attributes), so the tag is a second message.
    h.link()
        .set(LinkUnspec::new_with_index(br_idx).alias(plan.tag.clone()).build())
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("tagging bridge {br}"), "host", e))?;
    let prefix = plan.spec.subnet.prefix_len();
    h.address()
        .add(br_idx, IpAddr::V4(plan.gateway), prefix)
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("adding {}/{prefix} to {br}", plan.gateway), "host", e))?;

    // Build every container even if one fails, so the ledger is complete for rollback.
    let results: Vec<Result<ContainerSummary>> = stream::iter(plan.containers.iter())
        .map(|c| build_container(c, plan, env, h, rt, br_idx, ledger))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut containers = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(c) => containers.push(c),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => {}
        1 => return Err(errors.remove(0)),
        _ => return Err(Error::Many(errors)),
    }

    if plan.spec.nat {
        let tables_before = nat::present_tables(&env.tool_path).await?;
        // Recorded before applying: a backend that commits table by table may have
        // added some rules when it fails; undo removes whatever carries the tag.
        record(
            ledger,
            Created::Rules {
                tables_before: tables_before.clone(),
            },
        );
        rec.iptables_tables_before = Some(tables_before);
        write_record(&path, &rec)?;
        nat::apply(&nat::lab_rules(plan), nat::Op::Insert, &env.tool_path).await?;
        let before = read_trimmed(Path::new(IP_FORWARD))?;
        if before != "1" {
            write_sysctl(Path::new(IP_FORWARD), "1")?;
            record(
                ledger,
                Created::IpForward {
                    before: before.clone(),
                },
            );
            rec.ip_forward_before = Some(before);
        }
    }
    rec.complete = true;
    write_record(&path, &rec)?;

    Ok(LabSummary {
        schema: "ctnet.lab/v1".into(),
        name: plan.spec.name.clone(),
        bridge: br.clone(),
        gateway: format!("{}/{prefix}", plan.gateway),
        subnet: plan.spec.subnet.to_string(),
        nat: plan.spec.nat,
        containers,
    })
}

async fn build_container(
    c: &ContainerPlan,
    plan: &LabPlan,
    env: &LabEnv,
    h: &rtnetlink::Handle,
    rt: &tokio::runtime::Handle,
    br_idx: u32,
    ledger: &SharedLedger,
) -> Result<ContainerSummary> {
    let dir = env.netns_dir.clone();
    let name = c.netns.clone();
    let ns = tokio::task::spawn_blocking(move || {
        let ns = netns::create_named(dir, &name)?;
        // IPv4 only, like a Docker network without IPv6: off before eth0 exists, so no
        // link-local address, DAD, router solicitation or MLD report is ever sent. With
        // it on, hundreds of containers joining one bridge flood every port with IPv6
        // multicast at once, overflow the kernel's backlog, and every veth counts
        // drops. A kernel without IPv6 has nothing to turn off.
        ns.run(|| {
            for conf in ["all", "default"] {
                let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6"), "1");
            }
        })?;
        Ok::<_, Error>(ns)
    })
    .await
    .map_err(|e| Error::Invalid(format!("netns task failed: {e}")))??;
    record(ledger, Created::Netns(c.netns.clone()));

    // One RTM_NEWLINK: host end on the bridge, peer created inside the netns as eth0.
    // The host end comes up only after eth0 is: a port up with its peer down counts
    // every frame the bridge floods to it as tx_dropped, and a fresh lab would show
    // drops. (The peer cannot be set up in the same message either: the kernel opens it
    // before the pair is linked and veth_open answers ENOTCONN.)
    let peer = LinkUnspec::new_with_name("eth0")
        .setns_by_fd(ns.fd().as_raw_fd())
        .build();
    let veth = LinkVeth::new(&c.host_veth, "eth0")
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .controller(br_idx)
        .build();
    h.link().add(veth).execute().await.map_err(|e| {
        Error::netlink(
            format!("creating veth {} (peer eth0 in {})", c.host_veth, c.netns),
            "host",
            e,
        )
    })?;
    record(ledger, Created::Veth(c.host_veth.clone()));
    // The tag marks the veth as the lab's, so `down` never deletes a same-named stranger.
    h.link()
        .set(
            LinkUnspec::new_with_name(&c.host_veth)
                .alias(plan.tag.clone())
                .build(),
        )
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("tagging veth {}", c.host_veth), "host", e))?;

    let nh = ns.rtnetlink(rt, false)?;
    let at = c.netns.as_str();
    nh.link()
        .set(LinkUnspec::new_with_name("lo").up().build())
        .execute()
        .await
        .map_err(|e| Error::netlink("setting lo up", at, e))?;
    let eth0 = get_link(&nh, "eth0", at).await?.ok_or_else(|| Error::Netlink {
        op: "finding eth0 just created".into(),
        netns: at.into(),
        source: std::io::Error::from_raw_os_error(libc::ENODEV),
    })?;
    nh.link()
        .set(LinkUnspec::new_with_index(eth0.header.index).up().build())
        .execute()
        .await
        .map_err(|e| Error::netlink("setting eth0 up", at, e))?;
    h.link()
        .set(LinkUnspec::new_with_name(&c.host_veth).up().build())
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("setting veth {} up", c.host_veth), "host", e))?;
    let prefix = plan.spec.subnet.prefix_len();
    nh.address()
        .add(eth0.header.index, IpAddr::V4(c.ip), prefix)
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("adding {}/{prefix} to eth0", c.ip), at, e))?;
    nh.route()
        .add(
            RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(plan.gateway)
                .build(),
        )
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("adding default route via {}", plan.gateway), at, e))?;
    let mac_bytes = eth0.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(m) if m.len() == 6 => Some([m[0], m[1], m[2], m[3], m[4], m[5]]),
        _ => None,
    });
    let mac = mac_bytes.map(|m| format_mac(&m)).unwrap_or_default();
    // The bridge learns the container's MAC now, as from a Docker container that
    // announces its address when it starts: one gratuitous ARP request, sent once both
    // ends are up (a frame sent earlier would be counted as a drop).
    if let Some(m) = mac_bytes {
        let (dir, name, ip, index) = (env.netns_dir.clone(), c.netns.clone(), c.ip, eth0.header.index);
        let host_veth = c.host_veth.clone();
        tokio::task::spawn_blocking(move || {
            // Both ends running and the port forwarding first: until the kernel's link
            // watcher has caught up (it gives a device its queue and a bridge port its
            // state), a frame is dropped and counted, and the bridge learns nothing.
            wait_running(|l| l.name == host_veth, true);
            Netns::named(dir, &name)?
                .run(|| {
                    wait_running(|l| l.ifindex == index, false);
                    announce(index, m, ip)
                })?
                .map_err(|e| Error::Invalid(format!("announcing {ip} on eth0 of {name}: {e}")))
        })
        .await
        .map_err(|e| Error::Invalid(format!("announce task failed: {e}")))??;
    }
    Ok(ContainerSummary {
        netns: c.netns.clone(),
        netns_path: env.netns_dir.join(&c.netns),
        host_veth: c.host_veth.clone(),
        ifname: "eth0".into(),
        ip: format!("{}/{prefix}", c.ip),
        mac,
    })
}

/// Wait (2 s at most) until the link `which` picks in the calling thread's netns is
/// operationally up and, with `port`, forwarding on its bridge. Best effort: the
/// announcement that follows is sent either way.
fn wait_running(which: impl Fn(&crate::model::Link) -> bool, port: bool) {
    use crate::model::{OperState, PortState};
    let Ok(mut rtnl) = crate::source::rtnl::Rtnl::open() else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        let ready = rtnl.links(true).ok().is_some_and(|(links, _)| {
            links.iter().map(|(l, _)| l).find(|l| which(l)).is_some_and(|l| {
                l.operstate == OperState::Up
                    && (!port || l.port.as_ref().is_some_and(|p| p.state == PortState::Forwarding))
            })
        });
        if ready {
            // The watcher sets the state, then gives the device its queue, in one go.
            std::thread::sleep(std::time::Duration::from_millis(2));
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Send an ARP announcement (a gratuitous ARP request: sender and target are `ip`)
/// from interface `ifindex` of the calling thread's netns.
fn announce(ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> std::io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut frame = [0u8; 42];
    frame[0..6].copy_from_slice(&[0xff; 6]);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    // Ethernet, IPv4, 6-byte MAC, 4-byte address, request.
    frame[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    frame[22..28].copy_from_slice(&mac);
    frame[28..32].copy_from_slice(&ip.octets());
    frame[38..42].copy_from_slice(&ip.octets());
    // SAFETY: plain socket(2) (protocol 0: this socket only sends); checked below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value of it.
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = 0x0806u16.to_be();
    to.sll_ifindex = ifindex as i32;
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: a valid socket, a buffer and an address of the sizes given.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&to as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Undo the ledger newest first; every failure is reported, none stops the rest.
async fn rollback(ledger: &SharedLedger, env: &LabEnv, plan: &LabPlan, h: &rtnetlink::Handle) -> Vec<Error> {
    let steps: Vec<Created> = ledger
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .undo_order()
        .cloned()
        .collect();
    let mut errors = Vec::new();
    for step in steps {
        if let Err(e) = undo(&step, env, plan, h).await {
            errors.push(e);
        }
    }
    errors
}

async fn undo(step: &Created, env: &LabEnv, plan: &LabPlan, h: &rtnetlink::Handle) -> Result<()> {
    match step {
        Created::Bridge(name) | Created::Veth(name) => del_link_by_name(h, name).await,
        Created::Netns(name) => match netns::delete_named(&env.netns_dir, name) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other,
        },
        Created::Rules { tables_before } => {
            let rules = nat::current_tagged(&plan.tag, &env.tool_path).await?;
            nat::apply(&rules, nat::Op::Delete, &env.tool_path).await?;
            nat::remove_tables_created(tables_before, &env.tool_path)
                .await
                .map(|_| ())
        }
        Created::IpForward { before } => write_sysctl(Path::new(IP_FORWARD), before),
        Created::Record(path) => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("removing", path, e)),
            _ => Ok(()),
        },
    }
}

/// Delete a link by name; a link that is already gone counts as deleted.
async fn del_link_by_name(h: &rtnetlink::Handle, name: &str) -> Result<()> {
    match h
        .link()
        .del_with_message(LinkUnspec::new_with_name(name).build())
        .execute()
        .await
    {
        Ok(()) => Ok(()),
        Err(e) => {
            let err = Error::netlink(format!("deleting link {name}"), "host", e);
            if err.kind() == ErrorKind::NotFound {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

fn record_path(env: &LabEnv, name: &str) -> PathBuf {
    env.state_dir.join(format!("{name}.json"))
}

fn read_trimmed(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::io("reading", path, e))
}

fn write_sysctl(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| Error::io(format!("writing {value} to"), path, e))
}

/// The largest lab or fault record read (a lab of 250 containers writes a few KB).
pub(crate) const RECORD_MAX_BYTES: u64 = 16 << 20;

/// Parse the record at `path` for lab `name`; the error says what is wrong with it.
fn parse_record(path: &Path, name: &str) -> std::result::Result<LabRecord, String> {
    // A regular file of a sane size: a FIFO or a huge file planted there must not hang
    // or exhaust `lab down`.
    let bytes = crate::model::read_regular_file(path, RECORD_MAX_BYTES).map_err(|e| match e {
        Error::Io { source, .. } => format!("cannot be read ({source})"),
        other => format!("cannot be read ({other})"),
    })?;
    let rec: LabRecord = serde_json::from_slice(&bytes)
        .map_err(|e| format!("is not a lab record ({})", crate::text::escape(&e.to_string())))?;
    if rec.spec.name != name {
        return Err(format!("names lab {:?}, not {name:?}", rec.spec.name));
    }
    Ok(rec)
}

/// Lab `name`'s record: `None` when there is none; its path and what is wrong with it
/// when it cannot be read or parsed.
fn load_record(env: &LabEnv, name: &str) -> std::result::Result<Option<LabRecord>, (PathBuf, String)> {
    let path = record_path(env, name);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err((path, format!("cannot be read ({e})"))),
        Ok(_) => parse_record(&path, name).map(Some).map_err(|why| (path, why)),
    }
}

/// [`load_record`] as an error naming the file: nothing can be trusted to say what the
/// lab changed.
fn read_record(env: &LabEnv, name: &str) -> Result<Option<LabRecord>> {
    load_record(env, name).map_err(|(path, why)| {
        Error::Invalid(format!(
            "lab record {} {why}: it is what says how ip_forward and the iptables tables \
             were before lab {name}, so nothing was removed. `ctnet-diag lab down --name {name} \
             --force` removes what the lab's tags and names prove is its own (bridge, veths, \
             netns, tagged rules) and the record; check ip_forward and iptables-save by hand after",
            crate::text::path(&path)
        ))
    })
}

/// What `lab down` removed, and every failure it met.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownReport {
    /// Always `ctnet.lab-down/v1`.
    pub schema: String,
    /// The lab name.
    pub name: String,
    /// Host veths deleted (their peers went with them).
    pub veths: Vec<String>,
    /// Bridges deleted.
    pub bridges: Vec<String>,
    /// Named netns deleted.
    pub netns: Vec<String>,
    /// Firewall rules deleted (`table: spec`).
    pub rules: Vec<String>,
    /// iptables-nft tables the lab had brought into being and that are empty again, removed.
    pub tables: Vec<String>,
    /// `ip_forward` restored to this value, when the lab had changed it.
    pub ip_forward_restored: Option<String>,
    /// Objects that look like the lab's by name but could not be proven so: left alone.
    pub left_alone: Vec<String>,
    /// Every step that failed, as a message; empty on success.
    pub failures: Vec<String>,
    /// The kind of the first failure, for exit codes.
    #[serde(skip)]
    pub failure_kind: Option<ErrorKind>,
}

impl DownReport {
    /// Whether nothing of the lab was found.
    pub fn nothing_found(&self) -> bool {
        self.veths.is_empty()
            && self.bridges.is_empty()
            && self.netns.is_empty()
            && self.rules.is_empty()
            && self.tables.is_empty()
            && self.ip_forward_restored.is_none()
    }

    fn fail(&mut self, e: Error) {
        self.failure_kind.get_or_insert(e.kind());
        self.failures.push(e.to_string());
    }
}

/// The number at the end of a lab object name (`t-v12` -> 12), for sorting.
fn index_of(name: &str) -> u32 {
    name.rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Poll until the lab's host veths stop disappearing (their netns are being destroyed
/// by the kernel); returns those still present once no progress is seen for a while.
async fn wait_for_veths_to_go(
    h: &rtnetlink::Handle,
    lab_veths: &impl Fn(&[LinkMessage]) -> Vec<String>,
) -> Result<Vec<String>> {
    const PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);
    let mut last = usize::MAX;
    let mut progress_at = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        let left = lab_veths(&dump_links(h, "host").await?);
        if left.is_empty() {
            return Ok(left);
        }
        if left.len() < last {
            last = left.len();
            progress_at = std::time::Instant::now();
        } else if progress_at.elapsed() > PATIENCE {
            return Ok(left);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
}

/// Netns named like the lab's but absent from its record (or with no record): the lab's
/// only when a tagged host veth's peer lives there (same nsid), never by name alone.
fn proven_by_veth(env: &LabEnv, candidates: &[String], tagged_nsids: &[i32]) -> (Vec<String>, Vec<String>) {
    let mut ours = Vec::new();
    let mut strangers = Vec::new();
    let Ok(mut rt) = crate::source::rtnl::Rtnl::open() else {
        return (ours, candidates.to_vec());
    };
    for name in candidates {
        let nsid = Netns::named(&env.netns_dir, name)
            .ok()
            .and_then(|ns| rt.nsid_of_fd(ns.fd().as_raw_fd()).ok().flatten());
        match nsid {
            Some(id) if tagged_nsids.contains(&id) => ours.push(name.clone()),
            _ => strangers.push(name.clone()),
        }
    }
    (ours, strangers)
}

/// Remove every object of lab `name` from the calling thread's netns: host veths named
/// `NAME-vI` that carry its tag (or its record names), the bridge `NAME-br`, its netns,
/// rules tagged `ctnet-lab:NAME`, tables it created, and `ip_forward` as it was.
/// Idempotent; keeps going after a failure and reports all.
///
/// A record that cannot be read or parsed is an error naming it, and nothing is
/// removed; see [`down_with`] to remove what the tags prove anyway.
pub async fn down(name: &str, env: &LabEnv) -> Result<DownReport> {
    down_with(name, env, DownOptions::default()).await
}

/// How [`down_with`] treats a lab whose record cannot be trusted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownOptions {
    /// With a corrupt (or unreadable) record, remove what the lab's tags and names prove
    /// is its own, and the record; what only the record knew (ip_forward and the
    /// iptables tables as they were) is left, and said so in `left_alone`.
    pub force: bool,
}

/// [`down`], with options.
pub async fn down_with(name: &str, env: &LabEnv, opts: DownOptions) -> Result<DownReport> {
    let names = LabNames::new(name)?;
    if let Some(report) = nodes::down(name, env).await? {
        return Ok(report);
    }
    let rt = tokio::runtime::Handle::current();
    let here = Netns::current()?;
    let h = here.rtnetlink(&rt, false)?;
    let mut report = DownReport {
        schema: "ctnet.lab-down/v1".into(),
        name: name.into(),
        ..DownReport::default()
    };
    let _lock = StateLock::acquire(env).await?;
    let rec = match read_record(env, name) {
        Ok(rec) => rec,
        Err(e) if !opts.force => return Err(e),
        Err(_) => {
            let (path, why) = load_record(env, name).err().unwrap_or_default();
            report.left_alone.push(format!(
                "ip_forward and the iptables tables as they were before lab {name}: only its \
                 record {} knew, and it {why}; set them back by hand if the lab changed them",
                crate::text::path(&path)
            ));
            None
        }
    };
    if let Some(r) = &rec
        && r.host_netns != here.key()
    {
        report.fail(Error::Invalid(format!(
            "lab {name} was built in another network namespace ({}), not this one ({}): \
             run `ctnet-diag lab down --name {name}` there",
            r.host_netns,
            here.key()
        )));
        return Ok(report);
    }
    let bridge = names.bridge();
    let tag = names.tag();
    let recorded_veths: Vec<String> = rec.as_ref().map(|r| r.veths.clone()).unwrap_or_default();
    // Only veths that carry the lab's tag, or that its record names (a killed `up` may
    // have left one before tagging it): a same-named interface is someone else's.
    let lab_veths = |links: &[LinkMessage]| -> Vec<String> {
        links
            .iter()
            .filter(|l| link_kind(l) == Some(&InfoKind::Veth))
            .filter(|l| {
                link_alias(l) == Some(tag.as_str())
                    || link_name(l).is_some_and(|n| recorded_veths.iter().any(|r| r == n))
            })
            .filter_map(link_name)
            .filter(|n| names.is_host_veth(n))
            .map(str::to_string)
            .collect()
    };
    let links = dump_links(&h, "host").await?;
    let veths_before = lab_veths(&links);
    let tagged_nsids: Vec<i32> = links
        .iter()
        .filter(|l| link_name(l).is_some_and(|n| veths_before.iter().any(|v| v == n)))
        .filter_map(link_netnsid)
        .collect();

    // Netns first: the kernel destroys released netns in batches, taking their veth
    // pairs (host ends included) with them under one RCU grace period, where deleting
    // each veth on its own waits for one grace period per veth.
    match netns::list_named(&env.netns_dir) {
        Ok(all) => {
            let named_like: Vec<String> = all.into_iter().filter(|n| names.is_netns(n)).collect();
            let (recorded, unrecorded): (Vec<String>, Vec<String>) = named_like
                .into_iter()
                .partition(|n| rec.as_ref().is_some_and(|r| r.netns.contains(n)));
            let (proven, strangers) = proven_by_veth(env, &unrecorded, &tagged_nsids);
            for s in strangers {
                report.left_alone.push(format!(
                    "netns {s}: named like lab {name}'s but neither recorded nor linked to its veths"
                ));
            }
            let mut mine: Vec<String> = recorded.into_iter().chain(proven).collect();
            mine.sort_by_key(|n| index_of(n));
            for ns in mine {
                match netns::delete_named(&env.netns_dir, &ns) {
                    Ok(()) => report.netns.push(ns),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => report.fail(e),
                }
            }
        }
        Err(e) => report.fail(e),
    }
    let mut left = veths_before.clone();
    if !report.netns.is_empty() && !left.is_empty() {
        match wait_for_veths_to_go(&h, &lab_veths).await {
            Ok(l) => left = l,
            Err(e) => report.fail(e),
        }
    }
    // What is left had its peer elsewhere (or a process holds the netns): delete it.
    let deleted: Vec<(String, Result<()>)> = stream::iter(left.clone())
        .map(|v| {
            let h = &h;
            async move {
                let r = del_link_by_name(h, &v).await;
                (v, r)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut failed = Vec::new();
    for (v, r) in deleted {
        if let Err(e) = r {
            failed.push(v);
            report.fail(e);
        }
    }
    report.veths = veths_before.into_iter().filter(|v| !failed.contains(v)).collect();
    report.veths.sort_by_key(|v| index_of(v));
    if links.iter().any(|l| {
        link_name(l) == Some(bridge.as_str())
            && link_kind(l) == Some(&InfoKind::Bridge)
            && (link_alias(l) == Some(tag.as_str()) || rec.is_some())
    }) {
        match del_link_by_name(&h, &bridge).await {
            Ok(()) => report.bridges.push(bridge),
            Err(e) => report.fail(e),
        }
    }
    match nat::current_tagged(&tag, &env.tool_path).await {
        Ok(rules) if !rules.is_empty() => match nat::apply(&rules, nat::Op::Delete, &env.tool_path).await {
            Ok(()) => report.rules = rules.iter().map(|r| format!("{}: {}", r.table, r.spec)).collect(),
            Err(e) => report.fail(e),
        },
        Ok(_) => {}
        Err(e) => report.fail(e),
    }
    // Another NAT lab here still uses forwarding and the tables: it inherits what to
    // put back (the state from before the first lab), and the last one restores it.
    let mut heir = list_records(env)
        .into_iter()
        .filter_map(|(_, r)| r.ok())
        .find(|r| r.spec.name != name && r.spec.nat && r.host_netns == here.key());
    let mut heir_changed = false;
    if let Some(before) = rec.as_ref().and_then(|r| r.iptables_tables_before.as_ref()) {
        match &mut heir {
            Some(other) => {
                let theirs = other.iptables_tables_before.get_or_insert_with(Vec::new);
                theirs.retain(|t| before.contains(t));
                heir_changed = true;
            }
            None => match nat::remove_tables_created(before, &env.tool_path).await {
                Ok(tables) => report.tables = tables,
                Err(e) => report.fail(e),
            },
        }
    }
    if let Some(before) = rec.as_ref().and_then(|r| r.ip_forward_before.clone()) {
        match &mut heir {
            Some(other) => {
                if other.ip_forward_before.is_none() {
                    other.ip_forward_before = Some(before);
                    heir_changed = true;
                }
            }
            None => match write_sysctl(Path::new(IP_FORWARD), &before) {
                Ok(()) => report.ip_forward_restored = Some(before),
                Err(e) => report.fail(e),
            },
        }
    }
    if let (Some(other), true) = (&heir, heir_changed)
        && let Err(e) = write_record(&record_path(env, &other.spec.name), other)
    {
        report.fail(e);
    }
    let path = record_path(env, name);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        report.fail(Error::io("removing lab record", &path, e));
    }
    Ok(report)
}

/// Every lab record in the state directory (`NAME.json` for a valid lab name), parsed
/// or with what is wrong with it, sorted by path.
fn list_records(env: &LabEnv) -> Vec<(PathBuf, std::result::Result<LabRecord, String>)> {
    let Ok(dir) = std::fs::read_dir(&env.state_dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let name = file.strip_suffix(".json")?.to_string();
            validate_name(&name).ok()?;
            let path = e.path();
            let rec = parse_record(&path, &name);
            Some((path, rec))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A lab found on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabInfo {
    /// The lab name.
    pub name: String,
    /// Its bridge, when it exists.
    pub bridge: Option<String>,
    /// Whether the bridge is administratively up.
    pub bridge_up: bool,
    /// Host veths of the lab present now.
    pub veths: usize,
    /// Named netns of the lab present now.
    pub netns: usize,
    /// The subnet it was built with (from its record), if known.
    pub subnet: Option<String>,
    /// Whether it was built with NAT (from its record), if known.
    pub nat: Option<bool>,
    /// True when objects exist but the record is gone or incomplete, or the bridge is
    /// missing: a half-built or half-removed lab that `lab down` will clean.
    pub partial: bool,
    /// What is wrong with its record, when it cannot be read or parsed (`lab down
    /// --force` removes such a lab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_error: Option<String>,
    /// For a multi-node lab (`lab up --nodes`): how many nodes it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u32>,
}

/// Labs present in the calling thread's netns: bridges tagged `ctnet-lab:NAME` and
/// lab records made here, joined with a count of their veths and netns.
pub async fn list(env: &LabEnv) -> Result<Vec<LabInfo>> {
    let rt = tokio::runtime::Handle::current();
    let here = Netns::current()?;
    let h = here.rtnetlink(&rt, false)?;
    let links = dump_links(&h, "host").await?;
    let all = list_records(env);
    let records: Vec<LabRecord> = all
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .filter(|r| r.host_netns == here.key())
        .cloned()
        .collect();
    // A corrupt record cannot say where its lab lives: shown wherever `list` runs.
    let corrupt: Vec<(String, String)> = all
        .iter()
        .filter_map(|(path, r)| {
            let why = r.as_ref().err()?;
            let name = path.file_stem()?.to_str()?.to_string();
            Some((name, format!("record {} {why}", crate::text::path(path))))
        })
        .collect();
    let mut labs: Vec<String> = records
        .iter()
        .map(|r| r.spec.name.clone())
        .chain(corrupt.iter().map(|(n, _)| n.clone()))
        .collect();
    for l in &links {
        if let Some(lab) = link_alias(l).and_then(|a| a.strip_prefix("ctnet-lab:"))
            && validate_name(lab).is_ok()
            && !labs.iter().any(|x| x == lab)
        {
            labs.push(lab.to_string());
        }
    }
    labs.sort();
    let netns_names = netns::list_named(&env.netns_dir)?;
    let mut out = Vec::new();
    for lab in labs {
        let names = LabNames::new(&lab)?;
        let bridge = links
            .iter()
            .find(|l| link_name(l) == Some(names.bridge().as_str()));
        let rec = records.iter().find(|r| r.spec.name == lab);
        out.push(LabInfo {
            bridge: bridge.map(|_| names.bridge()),
            bridge_up: bridge.is_some_and(|b| {
                b.header
                    .flags
                    .contains(rtnetlink::packet_route::link::LinkFlags::Up)
            }),
            veths: links
                .iter()
                .filter(|l| link_alias(l) == Some(names.tag().as_str()))
                .filter_map(link_name)
                .filter(|n| names.is_host_veth(n))
                .count(),
            netns: match rec {
                Some(r) => netns_names.iter().filter(|n| r.netns.contains(n)).count(),
                None => netns_names.iter().filter(|n| names.is_netns(n)).count(),
            },
            subnet: rec.map(|r| r.spec.subnet.to_string()),
            nat: rec.map(|r| r.spec.nat),
            partial: !rec.is_some_and(|r| r.complete) || bridge.is_none(),
            record_error: corrupt.iter().find(|(n, _)| *n == lab).map(|(_, e)| e.clone()),
            nodes: None,
            name: lab,
        });
    }
    out.extend(nodes::list(env));
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_undoes_newest_first() {
        let mut l = Ledger::default();
        l.push(Created::Record("/run/ctnet/labs/t.json".into()));
        l.push(Created::Bridge("t-br".into()));
        l.push(Created::Netns("t-c1".into()));
        l.push(Created::Veth("t-v1".into()));
        l.push(Created::Rules {
            tables_before: Vec::new(),
        });
        l.push(Created::IpForward { before: "0".into() });
        let order: Vec<_> = l.undo_order().cloned().collect();
        assert_eq!(
            order,
            vec![
                Created::IpForward { before: "0".into() },
                Created::Rules {
                    tables_before: Vec::new()
                },
                Created::Veth("t-v1".into()),
                Created::Netns("t-c1".into()),
                Created::Bridge("t-br".into()),
                Created::Record("/run/ctnet/labs/t.json".into()),
            ]
        );
    }

    #[test]
    fn formats_macs_like_iproute2() {
        assert_eq!(format_mac(&[0x0a, 0, 0xff, 1, 2, 0xab]), "0a:00:ff:01:02:ab");
    }

    #[test]
    fn record_round_trips_and_names_every_object() {
        let mut spec = LabSpec::new("t");
        spec.containers = 2;
        let plan = LabPlan::new(&spec).unwrap();
        let rec = LabRecord::new(&plan, NetnsKey { dev: 4, ino: 9 });
        assert_eq!(rec.netns, ["t-c1", "t-c2"]);
        assert_eq!(rec.veths, ["t-v1", "t-v2"]);
        assert!(!rec.complete);
        let text = serde_json::to_string(&rec).unwrap();
        assert_eq!(serde_json::from_str::<LabRecord>(&text).unwrap(), rec);
    }

    #[test]
    fn mutated_lab_records_are_refused_or_read_never_a_panic() {
        let dir = std::env::temp_dir().join(format!("ctnet-rec-mut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut spec = LabSpec::new("t");
        spec.containers = 3;
        spec.nat = true;
        let plan = LabPlan::new(&spec).unwrap();
        let mut rec = LabRecord::new(&plan, NetnsKey { dev: 4, ino: 9 });
        rec.complete = true;
        let doc = serde_json::to_value(&rec).unwrap();
        let path = dir.join("t.json");
        let (mut read, mut refused) = (0, 0);
        for seed in 1..=2000u64 {
            let mut rng = crate::prop::Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut d = doc.clone();
            for _ in 0..1 + rng.below(3) {
                crate::prop::mutate_json(&mut rng, &mut d, "");
            }
            let mut bytes = serde_json::to_vec(&d).unwrap();
            if rng.one_in(4) {
                bytes = crate::prop::mutate_bytes(&mut rng, bytes, &[b"\"", b"\xff"]);
            }
            std::fs::write(&path, &bytes).unwrap();
            match parse_record(&path, "t") {
                Ok(r) => {
                    // What `lab down` derives from a record it accepts.
                    let _ = (r.netns.len(), r.veths.len(), r.spec.name.len());
                    read += 1;
                }
                Err(why) => {
                    assert!(!why.contains(crate::text::is_unsafe), "{why:?}");
                    refused += 1;
                }
            }
        }
        eprintln!("lab records: 2000 mutations, {read} read, {refused} refused");
        assert!(read > 100 && refused > 100, "{read} read, {refused} refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sorts_objects_by_their_number() {
        let mut v = vec!["t-v10".to_string(), "t-v2".into(), "t-v1".into()];
        v.sort_by_key(|n| index_of(n));
        assert_eq!(v, ["t-v1", "t-v2", "t-v10"]);
    }
}
