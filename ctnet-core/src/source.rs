//! Live collection: discover every netns on the host and read each one, over netlink
//! sockets opened inside it, into a [`Snapshot`].
//!
//! ```text
//! discover: /run/netns/*, /var/run/docker/netns/*, --netns-dir, /proc/*/ns/net
//!           -> unique netns by (st_dev, st_ino), every name/path/pid kept
//! read:     a few scan threads, each entering one netns after another:
//!           links(+stats64, bridge/port attrs) addrs routes neighbours [fdb] sysctls
//!           ethtool -S (veths); the host also resolves every netns's nsid
//! firewall: iptables-{nft,legacy}-save -c (v4, v6) and nft -j, in the host netns,
//!           alongside the scan
//! ```
//! Partial results are normal: a netns that vanishes, a tool that is missing, a
//! permission that is lacking each become a [`SourceStatus`]; the scan goes on.

pub mod ethtool;
pub mod firewall;
mod resolver;
pub(crate) mod rtnl;
mod sockdiag;

use crate::vocab::LinkKind;
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::model::{IfSysctls, NetnsState, SNAPSHOT_SCHEMA, Snapshot, SourceStatus, Sysctls};
use crate::netns::{self, Netns, NetnsKey, NetnsRef};
use crate::vocab::SourceState;

/// Directories scanned for named netns by default: iproute2 (and CNI `cni-*`, podman
/// `netns-*`) and Docker's sandbox keys.
pub const DEFAULT_NETNS_DIRS: &[&str] = &["/run/netns", "/var/run/docker/netns", "/run/docker/netns"];

/// What to read and where.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Directories of netns bind mounts.
    pub netns_dirs: Vec<PathBuf>,
    /// Also find netns through `/proc/*/ns/net` (catches unnamed ones).
    pub scan_proc: bool,
    /// The netns to treat as "host" (default: the one the tool runs in).
    pub host_netns: Option<PathBuf>,
    /// Read iptables/nft in the host netns.
    pub firewall: bool,
    /// With `firewall`, also dump the ip6tables rules (the checks read IPv4 rules only).
    pub firewall_ipv6: bool,
    /// Read `ethtool -S` of every veth.
    pub ethtool: bool,
    /// Scan threads.
    pub workers: usize,
    /// Where to find `iptables-*-save` and `nft` (a `PATH`-style list).
    pub tool_path: String,
    /// Which container runtimes to ask (`None`: none, and no cgroup attribution).
    pub runtime: Option<crate::runtime::RuntimeOptions>,
    /// How much is read of each netns other than the host.
    pub others: Depth,
    /// Also read the firewall of each netns other than the host that is read in full
    /// (a container's own rules: Docker's embedded DNS lives in its nat table). A few
    /// tool runs per netns: meant for [`deepen`] of the few netns a trace walks.
    pub netns_firewall: bool,
}

/// How much of a netns a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Depth {
    /// Everything: links, addresses, routes, neighbours, FDB, sysctls, `ethtool -S`.
    #[default]
    Full,
    /// Links and addresses, and the ids that tie the netns to the host: what the
    /// topology join, container attachment and duplicate-address checks need of every
    /// netns. Routes, neighbours, FDB, sysctls and `ethtool -S` stay empty (and every
    /// link dump, the host's too, leaves out the IPv6 counters); read the netns that
    /// matter in full afterwards with [`deepen`]. (Reading sysctls is what
    /// grows fastest with the number of netns: every `/proc/sys/net` lookup walks the
    /// entries of all of them.)
    Links,
}

/// `$PATH` plus the sbin directories a non-root shell on Debian leaves out, where
/// iptables and nft live; only those under file capabilities
/// ([`crate::privilege::tool_path`]).
pub fn default_tool_path() -> String {
    crate::privilege::tool_path()
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            netns_dirs: DEFAULT_NETNS_DIRS.iter().map(PathBuf::from).collect(),
            scan_proc: true,
            host_netns: None,
            firewall: true,
            firewall_ipv6: true,
            ethtool: true,
            workers: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 8),
            tool_path: default_tool_path(),
            runtime: Some(crate::runtime::RuntimeOptions::default()),
            others: Depth::Full,
            netns_firewall: false,
        }
    }
}

/// The netns found on a host, deduplicated by identity.
#[derive(Debug)]
pub struct Discovery {
    /// The host netns.
    pub host: Netns,
    /// Every other netns, each with all its names, paths and pids.
    pub others: Vec<Netns>,
    /// Paths that could not be used, and why.
    pub status: Vec<SourceStatus>,
}

use crate::netns::comm_of;

/// Find every netns: named ones in `netns_dirs`, then (optionally) those of processes.
pub fn discover(opts: &ScanOptions) -> Result<Discovery> {
    let mut host = match &opts.host_netns {
        Some(p) => Netns::open(p)?,
        None => Netns::current()?,
    };
    // Every nsfs inode lives on the same internal device: a file under a netns
    // directory with another st_dev is a leftover, not a netns.
    let nsfs_dev = host.key().dev;
    let mut found: HashMap<NetnsKey, Netns> = HashMap::new();
    let mut order: Vec<NetnsKey> = Vec::new();
    let mut status = Vec::new();
    // /var/run is a symlink to /run on most systems: read each real directory once.
    let mut dirs: Vec<PathBuf> = Vec::new();
    for d in &opts.netns_dirs {
        let real = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        if !dirs
            .iter()
            .any(|x| std::fs::canonicalize(x).unwrap_or_else(|_| x.clone()) == real)
        {
            dirs.push(d.clone());
        }
    }
    for dir in &dirs {
        let names = match netns::list_named(dir) {
            Ok(n) => n,
            Err(e) => {
                status.push(SourceStatus::problem(
                    "discovery",
                    None,
                    SourceState::Failed,
                    e.to_string(),
                ));
                continue;
            }
        };
        for name in names {
            let path = dir.join(&name);
            let r = NetnsRef::Named {
                name: name.clone(),
                path: path.clone(),
            };
            let key = match NetnsKey::of_path(&path) {
                Ok(k) if k.dev == nsfs_dev => k,
                Ok(_) => {
                    status.push(SourceStatus::problem(
                        "discovery",
                        Some(name),
                        SourceState::Skipped,
                        format!(
                            "{} is not a netns bind mount (a leftover file?)",
                            crate::text::path(&path)
                        ),
                    ));
                    continue;
                }
                Err(e) => {
                    status.push(SourceStatus::problem(
                        "discovery",
                        Some(name),
                        SourceState::Failed,
                        e.to_string(),
                    ));
                    continue;
                }
            };
            if key == host.key() {
                host.add_ref(r);
            } else if let Some(ns) = found.get_mut(&key) {
                ns.add_ref(r);
            } else {
                match Netns::named(dir, &name) {
                    Ok(ns) => {
                        order.push(key);
                        found.insert(key, ns);
                    }
                    Err(e) => status.push(SourceStatus::problem(
                        "discovery",
                        Some(name),
                        SourceState::Failed,
                        e.to_string(),
                    )),
                }
            }
        }
    }
    if opts.scan_proc {
        let mut unreadable = 0usize;
        let entries = std::fs::read_dir("/proc").map_err(|e| Error::io("listing", "/proc", e))?;
        let mut pids: Vec<u32> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
            .collect();
        pids.sort_unstable();
        for pid in pids {
            let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
            let key = match NetnsKey::of_path(&path) {
                Ok(k) => k,
                // Gone (exited) or not ours to look at (another user's process).
                Err(_) => {
                    unreadable += 1;
                    continue;
                }
            };
            if key == host.key() {
                // Host-network containers: a process here whose cgroup names a container.
                if crate::runtime::cgroup::container_of_pid(pid).is_some() {
                    host.add_ref(NetnsRef::Pid {
                        pid,
                        comm: comm_of(pid),
                    });
                }
                continue;
            }
            if let Some(ns) = found.get_mut(&key) {
                ns.add_ref(NetnsRef::Pid {
                    pid,
                    comm: comm_of(pid),
                });
            } else if let Ok(ns) = Netns::of_pid(pid) {
                // The pid may have moved or exited between stat and open: keep only a
                // handle that is still the netns we saw.
                if ns.key() == key {
                    order.push(key);
                    found.insert(key, ns);
                }
            }
        }
        if unreadable > 0 {
            status.push(SourceStatus::problem(
                "discovery",
                None,
                SourceState::Partial,
                format!("{unreadable} process(es) could not be inspected (exited, or need root)"),
            ));
        }
    }
    let others = order.into_iter().filter_map(|k| found.remove(&k)).collect();
    Ok(Discovery { host, others, status })
}

fn read_u8(path: &str) -> Option<u8> {
    read_num(path)
}

fn read_num<T: std::str::FromStr>(path: &str) -> Option<T> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Read `name` under an open directory. Each name looked up under `/proc/sys/net`
/// is compared with the entries of every netns on the host, so the directory is
/// opened once and the files relative to it.
fn read_u8_at(dir: &std::fs::File, name: &std::ffi::CStr) -> Option<u8> {
    use nix::fcntl::{OFlag, openat};
    use std::io::Read as _;
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let mut f = std::fs::File::from(fd);
    let mut text = String::new();
    f.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Netns-wide sysctls of the calling thread's netns (`/proc/sys/net` follows the
/// thread's netns). Per-interface values come from the link dump instead.
fn read_sysctls(has_bridge: bool, host: bool) -> Sysctls {
    let all = match std::fs::File::open("/proc/sys/net/ipv4/conf/all") {
        Ok(dir) => IfSysctls {
            rp_filter: read_u8_at(&dir, c"rp_filter"),
            arp_ignore: read_u8_at(&dir, c"arp_ignore"),
            arp_filter: read_u8_at(&dir, c"arp_filter"),
            proxy_arp: read_u8_at(&dir, c"proxy_arp"),
            forwarding: read_u8_at(&dir, c"forwarding"),
            route_localnet: read_u8_at(&dir, c"route_localnet"),
        },
        Err(_) => IfSysctls::default(),
    };
    let mut s = Sysctls {
        // net.ipv4.ip_forward and conf.all.forwarding are one value.
        ip_forward: all.forwarding,
        ipv6_forwarding: read_u8("/proc/sys/net/ipv6/conf/all/forwarding"),
        ..Sysctls::default()
    };
    if has_bridge {
        s.bridge_nf_call_iptables = read_u8("/proc/sys/net/bridge/bridge-nf-call-iptables");
        s.bridge_nf_call_ip6tables = read_u8("/proc/sys/net/bridge/bridge-nf-call-ip6tables");
    }
    s.conf.insert("all".into(), all);
    s.conntrack_count = read_num("/proc/sys/net/netfilter/nf_conntrack_count");
    if s.conntrack_count.is_some() {
        s.conntrack_max = read_num("/proc/sys/net/netfilter/nf_conntrack_max");
    }
    if host {
        s.neigh_gc_thresh3 = read_num("/proc/sys/net/ipv4/neigh/default/gc_thresh3");
    }
    s
}

/// Read everything about the calling thread's netns (which must be `ns`). For a netns
/// other than the host, also ask the id it gives the host (`host_fd`).
fn read_one(
    ns: &Netns,
    opts: &ScanOptions,
    host_fd: Option<i32>,
    all: &[(NetnsKey, i32)],
    status: &mut Vec<SourceStatus>,
) -> NetnsState {
    let label = ns.label();
    let at = || Some(label.clone());
    // The host is always read in full.
    let full = host_fd.is_none() || opts.others == Depth::Full;
    let mut st = NetnsState {
        key: ns.key(),
        refs: ns.refs().to_vec(),
        userns_uid: ns.foreign_userns_owner(),
        ..NetnsState::default()
    };
    let mut rt = match rtnl::Rtnl::open() {
        Ok(r) => r,
        Err(e) => {
            status.push(SourceStatus::problem(
                "netlink",
                at(),
                SourceState::Failed,
                format!("opening a netlink socket: {e}"),
            ));
            return st;
        }
    };
    let mut note = |what: &str, r: std::io::Result<rtnl::Quality>| match r {
        Ok(q) => {
            if q.undecodable > 0 {
                status.push(SourceStatus::problem(
                    "netlink",
                    at(),
                    SourceState::Partial,
                    format!("{what}: {} message(s) this version cannot decode", q.undecodable),
                ));
            }
            if q.interrupted {
                status.push(SourceStatus::problem(
                    "netlink",
                    at(),
                    SourceState::Partial,
                    format!("{what}: changed while being read (the kernel flagged the dump); read again"),
                ));
            }
        }
        Err(e) => status.push(SourceStatus::problem(
            "netlink",
            at(),
            SourceState::Failed,
            format!("{what}: {e}"),
        )),
    };
    let mut if_conf = Vec::new();
    note(
        "links",
        rt.links(opts.others == Depth::Links).map(|(v, n)| {
            (st.links, if_conf) = v.into_iter().unzip();
            n
        }),
    );
    note(
        "addresses",
        rt.addresses().map(|(v, n)| {
            st.addresses = v;
            n
        }),
    );
    if full {
        note(
            "routes",
            rt.routes().map(|(v, n)| {
                st.routes = v;
                n
            }),
        );
        note(
            "neighbours",
            rt.neighbours().map(|(v, n)| {
                st.neighbours = v;
                n
            }),
        );
    }
    let has_bridge_fdb = st
        .links
        .iter()
        .any(|l| matches!(l.kind, Some(LinkKind::Bridge | LinkKind::Vxlan)));
    if has_bridge_fdb && full {
        note(
            "fdb",
            rt.fdb().map(|(v, n)| {
                st.fdb = v;
                n
            }),
        );
    }
    // Asked after the link dump, which makes the kernel assign the ids it reports.
    // This direction is cheap: the kernel finds an id by walking the asking netns's
    // own id table, which in a container holds one or two entries.
    if let Some(fd) = host_fd {
        match rt.nsid_of_fd(fd) {
            Ok(id) => st.host_nsid = id,
            Err(e) => status.push(SourceStatus::problem(
                "netlink",
                at(),
                SourceState::Partial,
                format!("nsid of the host: {e}"),
            )),
        }
        // Links into other non-host netns (a veth between two containers): ask this
        // netns which id it gives each discovered netns. Rare, so the cost of asking
        // about every netns is paid only where needed.
        let foreign: Vec<i32> = st
            .links
            .iter()
            .filter_map(|l| l.link_netnsid)
            .filter(|id| Some(*id) != st.host_nsid)
            .collect();
        if !foreign.is_empty() {
            for (key, fd) in all.iter().filter(|(k, _)| *k != st.key) {
                if let Ok(Some(id)) = rt.nsid_of_fd(*fd)
                    && foreign.contains(&id)
                {
                    st.peer_ids.insert(id, *key);
                }
            }
        }
    }
    if !full {
        return st;
    }
    let has_bridge = st.links.iter().any(|l| l.kind == Some(LinkKind::Bridge));
    st.sysctls = read_sysctls(has_bridge, host_fd.is_none());
    for (l, conf) in st.links.iter().zip(if_conf) {
        if let Some(c) = conf {
            st.sysctls.conf.insert(l.name.clone(), c);
        }
    }
    st.listening = Some(read_listeners());
    if host_fd.is_some() {
        st.resolver = resolver::read(&st.refs);
    }
    if opts.netns_firewall && host_fd.is_some() && opts.firewall {
        // This thread is in the netns: the tools it starts run there too.
        let (fw, fw_status) = firewall::collect(&label, &opts.tool_path, opts.firewall_ipv6);
        status.extend(fw_status);
        st.firewall = Some(fw);
    }
    if opts.ethtool {
        match ethtool::Ethtool::open() {
            Ok(e) => {
                for l in st.links.iter_mut().filter(|l| l.kind == Some(LinkKind::Veth)) {
                    match e.stats(&l.name) {
                        Ok(s) => l.ethtool = s,
                        // The link went away since the dump: its absence says enough.
                        Err(err) if err.raw_os_error() == Some(libc::ENODEV) => {}
                        Err(err) => status.push(SourceStatus::problem(
                            "ethtool",
                            at(),
                            SourceState::Partial,
                            format!("ethtool -S {}: {err}", l.name),
                        )),
                    }
                }
            }
            Err(e) => status.push(SourceStatus::problem(
                "ethtool",
                at(),
                SourceState::Failed,
                e.to_string(),
            )),
        }
    }
    st
}

/// The accepting sockets of the calling thread's netns: TCP in LISTEN and bound UDP,
/// from `/proc/thread-self/net/{tcp,tcp6,udp,udp6}` (which follow the thread's netns).
fn read_listeners() -> Vec<crate::model::Listener> {
    // sock_diag first: `/proc/net/tcp` walks every connection of the host, once per netns.
    let mut out = match sockdiag::listeners() {
        Ok(found) => found,
        Err(_) => {
            let mut out = Vec::new();
            for (file, proto, v6) in [
                ("tcp", "tcp", false),
                ("tcp6", "tcp", true),
                ("udp", "udp", false),
                ("udp6", "udp", true),
            ] {
                let Ok(text) = std::fs::read_to_string(format!("/proc/thread-self/net/{file}")) else {
                    continue;
                };
                out.extend(parse_proc_net(&text, proto, v6));
            }
            out
        }
    };
    out.sort_by(|a, b| (&a.proto, a.port, a.addr).cmp(&(&b.proto, b.port, b.addr)));
    out.dedup();
    out
}

/// Parse one `/proc/net/{tcp,udp}[6]` table: TCP rows in state 0A (LISTEN), UDP rows
/// in state 07 (unconnected, bound).
pub(crate) fn parse_proc_net(text: &str, proto: &str, v6: bool) -> Vec<crate::model::Listener> {
    let want = if proto == "tcp" { "0A" } else { "07" };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut w = line.split_whitespace();
            let local = w.nth(1)?;
            let state = w.nth(1)?;
            if state != want {
                return None;
            }
            let (addr, port) = local.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let addr = if v6 {
                if addr.len() != 32 {
                    return None;
                }
                // Four 32-bit words, each in host (little-endian) order.
                let mut bytes = [0u8; 16];
                for i in 0..4 {
                    let word = u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).ok()?;
                    bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
                }
                std::net::IpAddr::V6(std::net::Ipv6Addr::from(bytes))
            } else {
                let word = u32::from_str_radix(addr, 16).ok()?;
                std::net::IpAddr::V4(std::net::Ipv4Addr::from(word.to_le_bytes()))
            };
            Some(crate::model::Listener {
                proto: proto.to_string(),
                addr,
                port,
            })
        })
        .collect()
}

/// The ids the host gives every other netns, from the links themselves: a container veth
/// whose peer is in the host (its `link_netnsid` is the container's id for the host)
/// names a host veth, and that host veth's `link_netnsid` is the host's id for the
/// container. Asking the host with RTM_GETNSID instead costs a walk of the host's whole
/// id table per netns in the kernel: quadratic on a host with hundreds of containers.
/// Returns, per netns in `states[1..]`, the id found (or `None`).
fn nsids_from_links(states: &[NetnsState]) -> Vec<Option<i32>> {
    let host = &states[0];
    states[1..]
        .iter()
        .map(|c| {
            let h = c.host_nsid?;
            c.links
                .iter()
                .filter(|l| l.link_netnsid == Some(h))
                .find_map(|l| {
                    let peer = host.link(l.link?)?;
                    (peer.link == Some(l.ifindex))
                        .then_some(peer.link_netnsid)
                        .flatten()
                })
        })
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn uname() -> (String, String) {
    match nix::sys::utsname::uname() {
        Ok(u) => (
            u.nodename().to_string_lossy().into_owned(),
            u.release().to_string_lossy().into_owned(),
        ),
        Err(_) => (String::new(), String::new()),
    }
}

/// Take a snapshot of this host: discover every netns, read each, read the host
/// firewall. Never fails for a single source: see [`Snapshot::sources`].
pub fn snapshot(opts: &ScanOptions) -> Result<Snapshot> {
    let taken = now_ms();
    // The firewall tools take milliseconds to start: begin with them, so they run
    // while the runtimes are asked and the netns are found and read.
    let fw = if opts.firewall {
        let host = match &opts.host_netns {
            Some(p) => Netns::open(p)?,
            None => Netns::current()?,
        };
        Some(start_firewall(host, opts))
    } else {
        None
    };
    // The runtimes are asked while the netns are found; their sandbox keys are netns
    // paths discovery must follow too (an engine's exec-root is not always
    // /var/run/docker).
    let start = std::time::Instant::now();
    let (containers, disc) = std::thread::scope(|s| {
        let rt = s.spawn(|| match &opts.runtime {
            Some(r) => {
                let t = std::time::Instant::now();
                let found = crate::runtime::discover(r);
                log::info!(
                    "runtimes: {} container(s) in {:.1} ms",
                    found.0.len(),
                    ms_since(t)
                );
                found
            }
            None => {
                log::info!("runtimes: not asked (--no-daemon or a file)");
                (Vec::new(), Vec::new())
            }
        });
        let t = std::time::Instant::now();
        let disc = discover(opts);
        if let Ok(d) = &disc {
            log::info!(
                "discovery: {} netns besides the host in {:.1} ms (dirs {:?}, processes: {})",
                d.others.len(),
                ms_since(t),
                opts.netns_dirs,
                if opts.scan_proc { "read" } else { "not read" }
            );
        }
        // A panic is a bug, not an unreachable daemon: the scan fails (exit 4) rather
        // than going on without containers.
        let found = rt
            .join()
            .map_err(|p| Error::panic("reading the container runtimes", &*p));
        (found, disc)
    });
    let (containers, rt_status) = containers?;
    let mut disc = disc?;
    let keys: Vec<PathBuf> = containers.iter().filter_map(|c| c.sandbox_key.clone()).collect();
    add_paths(&mut disc, &keys);
    let mut snap = collect_with(disc, opts, taken, fw)?;
    snap.sources.extend(rt_status);
    if opts.runtime.is_some() {
        crate::runtime::attach(&mut snap, containers);
    }
    snap.stamp_owners();
    log_summary(&snap, start);
    Ok(snap)
}

/// Milliseconds since `t`, for the diagnostics log.
pub(crate) fn ms_since(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The scan's closing lines in the diagnostics log: what was read, how long it took,
/// and every source that was skipped or failed, with why.
fn log_summary(snap: &Snapshot, start: std::time::Instant) {
    log::info!(
        "scan: {} netns, {} container(s), {} source problem(s) in {:.1} ms",
        snap.netns.len(),
        snap.containers.len(),
        snap.sources.len(),
        ms_since(start)
    );
    for s in &snap.sources {
        log::info!(
            "{} {}: {}: {}",
            s.source,
            s.netns.as_deref().unwrap_or("-"),
            s.status,
            s.detail.as_deref().unwrap_or("")
        );
    }
}

/// Add runtime-provided netns paths to a discovery: a name for a netns already found,
/// a new netns otherwise.
fn add_paths(disc: &mut Discovery, paths: &[PathBuf]) {
    for p in paths {
        let Ok(key) = NetnsKey::of_path(p) else { continue };
        if key.dev != disc.host.key().dev {
            continue;
        }
        let r = NetnsRef::Path { path: p.clone() };
        // Already known under that path (as a name in a netns directory): nothing new.
        let known = |ns: &Netns| {
            ns.refs()
                .iter()
                .any(|x| matches!(x, NetnsRef::Named { path, .. } | NetnsRef::Path { path } if path == p))
        };
        if key == disc.host.key() {
            if !known(&disc.host) {
                disc.host.add_ref(r);
            }
        } else if let Some(ns) = disc.others.iter_mut().find(|n| n.key() == key) {
            if !known(ns) {
                ns.add_ref(r);
            }
        } else if let Ok(ns) = Netns::open(p) {
            disc.others.push(ns);
        }
    }
}

/// Read these netns of `snap` again, in full: after a [`Depth::Links`] scan, the few
/// netns a check looks into beyond links and addresses. The ids that tie each to the
/// host and its other peers are kept from the first read. A netns that cannot be read
/// again keeps what was read of it, and a source says why. With `opts.ethtool`, the
/// host veths of these netns get their `ethtool -S` too (a scan for a check can leave
/// it out for the hundreds of others).
pub fn deepen(snap: &mut Snapshot, keys: &[NetnsKey], opts: &ScanOptions) -> Result<()> {
    let t = std::time::Instant::now();
    let r = deepen_inner(snap, keys, opts);
    snap.stamp_owners();
    log::info!(
        "deepen: {} netns read in full in {:.1} ms",
        keys.len(),
        ms_since(t)
    );
    r
}

fn deepen_inner(snap: &mut Snapshot, keys: &[NetnsKey], opts: &ScanOptions) -> Result<()> {
    let host_state = snap
        .host_netns()
        .ok_or_else(|| Error::Invalid("the snapshot has no host netns".into()))?;
    let host = Netns::open_any(&host_state.refs, snap.host)?;
    let host_fd = host.fd().as_raw_fd();
    let mut spaces = Vec::new();
    let host_key = snap.host;
    for key in keys.iter().filter(|k| **k != host_key) {
        if spaces.iter().any(|n: &Netns| n.key() == *key) {
            continue;
        }
        let opened = match snap.netns_by_key(*key) {
            Some(st) => Netns::open_any(&st.refs, *key),
            None => continue,
        };
        match opened {
            Ok(ns) => spaces.push(ns),
            Err(e) => unread(snap, *key, &e),
        }
    }
    let full = ScanOptions {
        others: Depth::Full,
        ..opts.clone()
    };
    let refs: Vec<&Netns> = spaces.iter().collect();
    let results = netns::run_each(&refs, refs.len().clamp(1, 2), |_, ns| {
        let mut status = Vec::new();
        let st = read_one(ns, &full, Some(host_fd), &[], &mut status);
        (st, status)
    });
    let results = no_panic(results)?;
    let mut nsids = Vec::new();
    for (ns, r) in spaces.iter().zip(results) {
        match r {
            Ok((mut st, status)) => {
                snap.sources.extend(status);
                if let Some(old) = snap.netns.iter_mut().find(|n| n.key == st.key) {
                    st.nsid = old.nsid;
                    nsids.extend(old.nsid);
                    st.host_nsid = st.host_nsid.or(old.host_nsid);
                    if st.peer_ids.is_empty() {
                        st.peer_ids = std::mem::take(&mut old.peer_ids);
                    }
                    *old = st;
                }
            }
            Err(e) => unread(snap, ns.key(), &e),
        }
    }
    if opts.ethtool {
        let key = snap.host;
        let names: Vec<String> = snap
            .host_netns()
            .map(|h| {
                h.links
                    .iter()
                    .filter(|l| l.ethtool.is_none() && l.link_netnsid.is_some_and(|id| nsids.contains(&id)))
                    .map(|l| l.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        if !names.is_empty() {
            let read = host.run(move || {
                let e = ethtool::Ethtool::open()?;
                Ok::<_, std::io::Error>(names.into_iter().map(|n| (e.stats(&n), n)).collect::<Vec<_>>())
            });
            if let Ok(Ok(stats)) = read
                && let Some(h) = snap.netns.iter_mut().find(|n| n.key == key)
            {
                for (s, name) in stats {
                    if let (Ok(s), Some(l)) = (s, h.links.iter_mut().find(|l| l.name == name)) {
                        l.ethtool = s;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Mark a netns that [`deepen`] could not read: what a links-only scan left empty
/// (routes, neighbours) must not be taken for an empty table.
fn unread(snap: &mut Snapshot, key: NetnsKey, e: &Error) {
    let why = format!("reading it again: {e}{}", permission_hint(e));
    if let Some(st) = snap.netns.iter_mut().find(|n| n.key == key) {
        snap.sources.push(
            SourceStatus::problem("netns", Some(st.label()), SourceState::Failed, why.clone())
                .of_kind(e.kind()),
        );
        st.read_error = Some(why);
    }
}

/// What a firewall read gives back: the rules and the tools' statuses.
type FirewallRead = std::thread::Result<Result<(crate::model::Firewall, Vec<SourceStatus>)>>;

/// Start reading the firewall of `host` on its own thread.
fn start_firewall(host: Netns, opts: &ScanOptions) -> std::thread::JoinHandle<FirewallRead> {
    let (tool_path, ipv6) = (opts.tool_path.clone(), opts.firewall_ipv6);
    std::thread::spawn(move || {
        let label = host.label();
        let t = std::time::Instant::now();
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            host.run(|| firewall::collect(&label, &tool_path, ipv6))
        }));
        log::info!("firewall {label}: read in {:.1} ms", ms_since(t));
        read
    })
}

/// Read the netns of an existing [`Discovery`].
pub fn collect(disc: Discovery, opts: &ScanOptions, taken_at_unix_ms: u64) -> Result<Snapshot> {
    let fw = opts.firewall.then(|| start_firewall(disc.host.clone(), opts));
    collect_with(disc, opts, taken_at_unix_ms, fw)
}

/// [`collect`], with the firewall read already started (or not wanted).
fn collect_with(
    disc: Discovery,
    opts: &ScanOptions,
    taken_at_unix_ms: u64,
    fw: Option<std::thread::JoinHandle<FirewallRead>>,
) -> Result<Snapshot> {
    let (hostname, kernel) = uname();
    let mut sources = disc.status;
    let mut spaces: Vec<&Netns> = vec![&disc.host];
    spaces.extend(disc.others.iter());
    let host_fd = disc.host.fd().as_raw_fd();
    let all_fds: Vec<(NetnsKey, i32)> = spaces.iter().map(|n| (n.key(), n.fd().as_raw_fd())).collect();

    let t = std::time::Instant::now();
    let results = netns::run_each(&spaces, opts.workers, |i, ns| {
        let mut status = Vec::new();
        let t = std::time::Instant::now();
        let st = read_one(ns, opts, (i > 0).then_some(host_fd), &all_fds, &mut status);
        log::debug!(
            "netns {}: {} link(s), {} address(es), {} route(s), {} neighbour(s), {} fdb in {:.1} ms",
            ns.label(),
            st.links.len(),
            st.addresses.len(),
            st.routes.len(),
            st.neighbours.len(),
            st.fdb.len(),
            ms_since(t)
        );
        (st, status)
    });
    let results = no_panic(results)?;
    log::info!(
        "netns: {} read on {} worker(s) in {:.1} ms ({})",
        spaces.len(),
        opts.workers,
        ms_since(t),
        if opts.others == Depth::Full {
            "in full"
        } else {
            "links and addresses only"
        }
    );
    let firewall = match fw.map(|h| h.join().unwrap_or_else(Err)) {
        Some(Err(p)) => return Err(Error::panic("reading the host firewall", &*p)),
        Some(Ok(read)) => Some(read),
        None => None,
    };

    let mut netns_states = Vec::with_capacity(results.len());
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok((st, status)) => {
                sources.extend(status);
                netns_states.push(st);
            }
            Err(e) => {
                sources.push(
                    SourceStatus::problem(
                        "netns",
                        Some(spaces[i].label()),
                        SourceState::Failed,
                        format!("{e}{}", permission_hint(&e)),
                    )
                    .of_kind(e.kind()),
                );
                netns_states.push(NetnsState {
                    key: spaces[i].key(),
                    refs: spaces[i].refs().to_vec(),
                    read_error: Some(format!("{e}{}", permission_hint(&e))),
                    ..NetnsState::default()
                });
            }
        }
    }
    let derived = nsids_from_links(&netns_states);
    for (st, nsid) in netns_states.iter_mut().skip(1).zip(derived) {
        st.nsid = nsid;
    }
    // Host links that still point at an unknown id: ask the host about the netns that
    // got none (few: macvlan-only, or veths between two non-host netns).
    let known: Vec<i32> = netns_states.iter().filter_map(|n| n.nsid).collect();
    let unmapped = netns_states[0]
        .links
        .iter()
        .filter_map(|l| l.link_netnsid)
        .any(|id| !known.contains(&id));
    if unmapped {
        let missing: Vec<(usize, i32)> = netns_states
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, n)| n.nsid.is_none())
            .map(|(i, _)| (i, spaces[i].fd().as_raw_fd()))
            .collect();
        let asked = disc.host.run(|| {
            let mut rt = rtnl::Rtnl::open().ok()?;
            Some(
                missing
                    .iter()
                    .map(|(i, fd)| (*i, rt.nsid_of_fd(*fd).ok().flatten()))
                    .collect::<Vec<_>>(),
            )
        });
        if let Ok(Some(answers)) = asked {
            for (i, id) in answers {
                netns_states[i].nsid = id;
            }
        }
    }
    // Host first, then the rest in a stable order.
    netns_states[1..].sort_by_key(|n| (n.label(), n.key));

    let firewall = match firewall {
        Some(Ok((fw, status))) => {
            sources.extend(status);
            Some(fw)
        }
        Some(Err(e)) => {
            sources.push(SourceStatus::problem(
                "firewall",
                Some("host".into()),
                SourceState::Failed,
                e.to_string(),
            ));
            None
        }
        None => None,
    };
    Ok(Snapshot {
        schema: SNAPSHOT_SCHEMA.into(),
        taken_at_unix_ms,
        hostname,
        kernel,
        host: disc.host.key(),
        netns: netns_states,
        firewall,
        sources,
        containers: Vec::new(),
    })
}

/// The results of [`netns::run_each`], or the first panic among them: a reader that
/// panicked is a bug, never reported as a netns that could not be read.
fn no_panic<T>(results: Vec<Result<T>>) -> Result<Vec<Result<T>>> {
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Err(e @ Error::Panic { .. }) => return Err(e),
            r => out.push(r),
        }
    }
    Ok(out)
}

fn permission_hint(e: &Error) -> String {
    if e.kind() == crate::ErrorKind::PermissionDenied {
        format!(
            " (entering another netns needs CAP_SYS_ADMIN: run as root, or give the binary \
             file capabilities: {})",
            crate::privilege::setcap_line(&crate::privilege::own_path())
        )
    } else {
        String::new()
    }
}

/// Directory entries for a `--netns-dir` argument, checked to exist.
pub fn check_netns_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "--netns-dir {}: not a directory (it should hold netns bind mounts, like /run/netns)",
            crate::text::path(dir)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tables_give_the_listening_and_bound_sockets() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 640 1 0 100 0 0 10 0
   1: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 641 1 0 100 0 0 10 0
   2: 0200000A:9C40 0300000A:0050 01 00000000:00000000 00:00000000 00000000     0        0 642 1 0 100 0 0 10 0
";
        let got = parse_proc_net(tcp, "tcp", false);
        let want: Vec<(std::net::IpAddr, u16)> = vec![
            ("0.0.0.0".parse().unwrap(), 2024),
            ("127.0.0.1".parse().unwrap(), 53),
        ];
        assert_eq!(got.iter().map(|l| (l.addr, l.port)).collect::<Vec<_>>(), want);
        let tcp6 = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0
";
        let got = parse_proc_net(tcp6, "tcp", true);
        assert_eq!(got[0].addr, "::".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(got[0].port, 80);
        assert_eq!(got[1].addr, "::1".parse::<std::net::IpAddr>().unwrap());
        let udp = "   sl  local_address rem_address   st
  5: 00000000:1388 00000000:0000 07 0
  6: 00000000:1389 0300000A:0035 01 0
";
        let got = parse_proc_net(udp, "udp", false);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].port, 5000);
        // Garbage is skipped, not a panic.
        assert!(parse_proc_net("x\n0: zz:zz 0 0A\n", "tcp", false).is_empty());
    }

    #[test]
    fn a_panicking_netns_reader_fails_the_scan_instead_of_marking_the_netns_unread() {
        let here = Netns::current().unwrap();
        let results = netns::run_each(&[&here, &here], 2, |i, _| {
            assert_eq!(i, 0, "reader {i} overflowed");
            i
        });
        let err = no_panic(results).unwrap_err();
        assert!(matches!(err, Error::Panic { .. }), "{err:?}");
        assert_eq!(err.kind(), crate::ErrorKind::Other);
        assert!(err.to_string().contains("reader 1 overflowed"), "{err}");
        // An unreadable netns is still a per-netns result, not a failed scan.
        let denied: Vec<Result<u8>> = vec![
            Ok(1),
            Err(Error::netns(
                "entering netns",
                "/x",
                std::io::Error::from_raw_os_error(libc::EPERM),
            )),
        ];
        assert_eq!(no_panic(denied).unwrap().len(), 2);
    }
}
