//! The Prometheus text exposition of one scan: a pure function of a snapshot, its
//! topology and the check reports, so it is tested from recorded fixtures.
//!
//! Every series has bounded labels: one per veth side, bridge, bridge port, netns, rule
//! (at most [`Limits::max_rules`]), or container and check id; the counts grow with the
//! host, never with traffic.

use ctnet_core::vocab::OperState;
use ctnet_core::vocab::SourceState;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use ctnet_core::check::{Report, Status};
use ctnet_core::model::{Link, Owner, Snapshot, Stats};
use ctnet_core::target::Resolved;
use ctnet_core::topology::{Peer, Role, Topology};

/// What bounds the output.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Firewall rules exported (in dump order); the rest are counted in
    /// `ctnet_firewall_rules_omitted`.
    pub max_rules: usize,
}

/// One scan's results.
pub struct Scan {
    /// What was read.
    pub snap: Snapshot,
    /// Its joined view.
    pub topo: Topology,
    /// The light checks of every container (empty with `--no-checks`).
    pub reports: Vec<(Resolved, Report)>,
    /// How long the scan (and the checks) took, in seconds.
    pub duration_s: f64,
}

/// Counters of the exporter itself, across scans.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta {
    /// Scans run.
    pub scans: u64,
    /// Scans that failed as a whole.
    pub scan_errors: u64,
    /// Scrapes answered with an older scan because a new one ran past the budget.
    pub budget_exceeded: u64,
    /// When the scan served was taken, Unix seconds.
    pub scan_time_unix_s: f64,
}

/// A metric family: name, type, help and its samples (label text, value).
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<(String, String)>,
}

/// Families in first-use order, each written as one block.
#[derive(Default)]
struct Exposition {
    families: Vec<Family>,
    index: BTreeMap<&'static str, usize>,
}

/// A label value as the text format wants it: what a container controls (interface and
/// netns names) has its control characters made visible first, so reading the output on
/// a terminal is as safe as reading `ctnet-diag`'s.
fn label_value(v: &str) -> String {
    let safe = ctnet_core::text::escape(v);
    let mut out = String::with_capacity(safe.len());
    for c in safe.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

impl Exposition {
    fn add(
        &mut self,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let i = *self.index.entry(name).or_insert_with(|| {
            self.families.push(Family {
                name,
                kind,
                help,
                samples: Vec::new(),
            });
            self.families.len() - 1
        });
        let mut l = String::new();
        if !labels.is_empty() {
            l.push('{');
            for (n, (k, v)) in labels.iter().enumerate() {
                if n > 0 {
                    l.push(',');
                }
                let _ = write!(l, "{k}=\"{}\"", label_value(v));
            }
            l.push('}');
        }
        self.families[i].samples.push((l, number(value)));
    }

    fn counter(&mut self, name: &'static str, help: &'static str, labels: &[(&str, &str)], value: u64) {
        self.add(name, "counter", help, labels, value as f64);
    }

    fn gauge(&mut self, name: &'static str, help: &'static str, labels: &[(&str, &str)], value: f64) {
        self.add(name, "gauge", help, labels, value);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            for (labels, value) in &f.samples {
                let _ = writeln!(out, "{}{labels} {value}", f.name);
            }
        }
        out
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn owner_name(o: Owner) -> &'static str {
    match o {
        Owner::Docker => "docker",
        Owner::Kubernetes => "kubernetes",
        Owner::Podman => "podman",
        Owner::Libvirt => "libvirt",
        Owner::Ctnet => "ctnet",
        Owner::Other => "other",
    }
}

/// A rule's text cut to 80 characters (the label says which rule; the full text is in
/// `ctnet-diag snapshot`).
fn short(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let mut s: String = text.chars().take(MAX - 1).collect();
    s.push('…');
    s
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Skip => "skip",
        Status::Pass => "pass",
        Status::Warn => "warn",
        Status::Fail => "fail",
    }
}

/// The running container a netns belongs to: the one that made it, not one that joined
/// it with `--network container:`.
fn owner_of(snap: &Snapshot, key: ctnet_core::netns::NetnsKey) -> Option<&ctnet_core::model::Container> {
    snap.containers_in(key)
        .filter(|c| c.is_running())
        .min_by_key(|c| c.shares_netns_of.is_some())
}

/// Labels that say which container a veth side belongs to.
struct VethLabels {
    container: String,
    runtime: String,
    netns: String,
    host_veth: String,
    bridge: String,
}

fn veth_side(x: &mut Exposition, who: &VethLabels, side: &str, link: &Link) {
    let labels = [
        ("container", who.container.as_str()),
        ("runtime", who.runtime.as_str()),
        ("netns", who.netns.as_str()),
        ("host_veth", who.host_veth.as_str()),
        ("bridge", who.bridge.as_str()),
        ("side", side),
    ];
    x.gauge(
        "ctnet_veth_up",
        "1 when this side of a container's veth is operationally up (side=host: the host end; side=container: the container's interface).",
        &labels,
        f64::from(u8::from(link.operstate == OperState::Up)),
    );
    let s: Stats = link.stats.unwrap_or_default();
    let counters: [(&'static str, &'static str, u64); 8] = [
        (
            "ctnet_veth_receive_bytes_total",
            "Bytes received by this side of a container's veth (stats64).",
            s.rx_bytes,
        ),
        (
            "ctnet_veth_transmit_bytes_total",
            "Bytes sent by this side of a container's veth (stats64).",
            s.tx_bytes,
        ),
        (
            "ctnet_veth_receive_packets_total",
            "Packets received by this side of a container's veth (stats64).",
            s.rx_packets,
        ),
        (
            "ctnet_veth_transmit_packets_total",
            "Packets sent by this side of a container's veth (stats64).",
            s.tx_packets,
        ),
        (
            "ctnet_veth_receive_errors_total",
            "Receive errors on this side of a container's veth (stats64).",
            s.rx_errors,
        ),
        (
            "ctnet_veth_transmit_errors_total",
            "Transmit errors on this side of a container's veth (stats64).",
            s.tx_errors,
        ),
        (
            "ctnet_veth_receive_drops_total",
            "Received packets dropped on this side of a container's veth (stats64 rx_dropped).",
            s.rx_dropped,
        ),
        (
            "ctnet_veth_transmit_drops_total",
            "Packets dropped on transmit by this side of a container's veth (stats64 tx_dropped: for a veth, mostly a peer that is down).",
            s.tx_dropped,
        ),
    ];
    if link.stats.is_some() {
        for (name, help, v) in counters {
            x.counter(name, help, &labels, v);
        }
    }
    if let Some(e) = &link.ethtool {
        let drops: u64 = e
            .counters
            .iter()
            .filter(|(k, _)| k.ends_with("drops"))
            .map(|(_, v)| *v)
            .sum();
        x.counter(
            "ctnet_veth_queue_drops_total",
            "Drops the veth driver counts in its queues (`ethtool -S`: the sum of rx_queue_N_drops and rx_queue_N_xdp_drops).",
            &labels,
            drops,
        );
    }
}

/// The whole exposition of one scan.
pub fn render(scan: &Scan, meta: &Meta, limits: Limits) -> String {
    let mut x = Exposition::default();
    let snap = &scan.snap;
    let Some(host) = snap.host_netns() else {
        return x.render();
    };

    // Veths: both sides of every host veth, labelled with the container behind it.
    for v in &scan.topo.veths {
        let (netns, peer_key, peer_ifindex) = match &v.peer {
            Peer::Resolved { iface, .. } => {
                (iface.netns_label.clone(), Some(iface.netns), Some(iface.ifindex))
            }
            _ => (String::new(), None, None),
        };
        let container = peer_key.and_then(|k| owner_of(snap, k));
        let who = VethLabels {
            container: container
                .map(|c| c.name.clone())
                .or_else(|| v.containers.first().cloned())
                .unwrap_or_else(|| netns.clone()),
            runtime: container.map_or_else(|| "none".to_string(), |c| c.runtime.clone()),
            netns,
            host_veth: v.host.name.clone(),
            bridge: v.bridge.clone().unwrap_or_default(),
        };
        if let Some(l) = host.link(v.host.ifindex) {
            veth_side(&mut x, &who, "host", l);
        }
        if let (Some(k), Some(i)) = (peer_key, peer_ifindex)
            && let Some(l) = snap.netns_by_key(k).and_then(|ns| ns.link(i))
        {
            veth_side(&mut x, &who, "container", l);
        }
    }

    // Bridges: FDB entries, per bridge and per port.
    for b in &scan.topo.bridges {
        let learned = |e: &&ctnet_core::model::FdbEntry| !e.is_local;
        x.gauge(
            "ctnet_bridge_fdb_entries",
            "Entries in a bridge's forwarding database that are not the ports' own MACs.",
            &[("bridge", &b.iface.name)],
            b.fdb.iter().filter(learned).count() as f64,
        );
        for p in &b.ports {
            let n = b
                .fdb
                .iter()
                .filter(learned)
                .filter(|e| e.ifindex == p.ifindex)
                .count();
            x.gauge(
                "ctnet_bridge_port_fdb_entries",
                "Entries a bridge's forwarding database holds for one port, the port's own MAC left out.",
                &[("bridge", &b.iface.name), ("port", &p.name)],
                n as f64,
            );
        }
    }

    // Neighbour tables: the IPv4 one is shared by every netns on the host.
    let (mut v4, mut v6) = (0usize, 0usize);
    for ns in &snap.netns {
        for n in &ns.neighbours {
            if n.ip.is_ipv4() {
                v4 += 1;
            } else {
                v6 += 1;
            }
        }
    }
    let help = "Neighbour (ARP, NDP) entries in every netns read; the kernel holds each family's entries of all netns in one table.";
    x.gauge("ctnet_neighbour_entries", help, &[("family", "ipv4")], v4 as f64);
    x.gauge("ctnet_neighbour_entries", help, &[("family", "ipv6")], v6 as f64);
    if let Some(t) = host.sysctls.neigh_gc_thresh3 {
        x.gauge(
            "ctnet_neighbour_gc_thresh3",
            "net.ipv4.neigh.default.gc_thresh3: the IPv4 neighbour table's hard limit (\"neighbour table overflow\" beyond it).",
            &[],
            t as f64,
        );
    }

    // Conntrack: the count of each netns against the limit.
    if let Some(m) = host.sysctls.conntrack_max {
        x.gauge(
            "ctnet_conntrack_max",
            "net.netfilter.nf_conntrack_max: new connections are dropped once a netns tracks this many.",
            &[],
            m as f64,
        );
    }
    // The host, then each container's netns (a netns found only through a passing
    // process would be a series that comes and goes).
    let help =
        "net.netfilter.nf_conntrack_count: connections tracked in this netns (container=\"\" for the host).";
    if let Some(c) = host.sysctls.conntrack_count {
        x.gauge(
            "ctnet_conntrack_entries",
            help,
            &[("container", ""), ("netns", "host")],
            c as f64,
        );
    }
    for view in scan.topo.netns.iter().filter(|v| v.role == Role::Container) {
        let Some(c) = snap
            .netns_by_key(view.key)
            .and_then(|ns| ns.sysctls.conntrack_count)
        else {
            continue;
        };
        let container = owner_of(snap, view.key).map_or_else(|| view.label.clone(), |c| c.name.clone());
        x.gauge(
            "ctnet_conntrack_entries",
            help,
            &[("container", &container), ("netns", &view.label)],
            c as f64,
        );
    }

    firewall(&mut x, snap, limits);

    // The light checks: one gauge per container, check id and status.
    for (t, report) in &scan.reports {
        let mut worst: BTreeMap<&str, Status> = BTreeMap::new();
        for f in &report.checks {
            let e = worst.entry(f.id.as_str()).or_insert(f.status);
            *e = (*e).max(f.status);
        }
        for (id, st) in worst {
            for s in [Status::Pass, Status::Warn, Status::Fail, Status::Skip] {
                x.gauge(
                    "ctnet_check_status",
                    "1 for the status a check has for a container (worst of its findings), 0 for the others: `ctnet-diag check CONTAINER` shows why.",
                    &[("container", &t.target), ("check", id), ("status", status_name(s))],
                    f64::from(u8::from(s == st)),
                );
            }
        }
    }

    // The scan itself.
    let mut problems: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for s in &snap.sources {
        if s.status != SourceState::Ok {
            *problems
                .entry((s.source.as_str(), s.status.as_str()))
                .or_default() += 1;
        }
    }
    for ((source, status), n) in problems {
        x.gauge(
            "ctnet_scan_source_problems",
            "Sources the last scan could not read in full (status partial, failed or skipped), by source; `ctnet-diag snapshot` says why.",
            &[("source", source), ("status", status)],
            n as f64,
        );
    }
    x.gauge(
        "ctnet_netns",
        "Network namespaces found (the host's included).",
        &[],
        snap.netns.len() as f64,
    );
    x.gauge(
        "ctnet_containers",
        "Running containers the runtimes reported.",
        &[],
        snap.containers.iter().filter(|c| c.is_running()).count() as f64,
    );
    x.gauge(
        "ctnet_scan_duration_seconds",
        "How long the last scan and its checks took.",
        &[],
        scan.duration_s,
    );
    x.gauge(
        "ctnet_scan_timestamp_seconds",
        "When the scan served was taken (Unix time): an older scan is served until the minimum interval has passed.",
        &[],
        meta.scan_time_unix_s,
    );
    x.counter(
        "ctnet_scans_total",
        "Scans run since the exporter started.",
        &[],
        meta.scans,
    );
    x.counter(
        "ctnet_scan_errors_total",
        "Scans that failed as a whole (nothing could be read).",
        &[],
        meta.scan_errors,
    );
    x.counter(
        "ctnet_scan_budget_exceeded_total",
        "Scrapes answered with an older scan because the new one ran past the scan budget.",
        &[],
        meta.budget_exceeded,
    );
    x.render()
}

/// Rule and policy counters of the host firewall, at most `limits.max_rules` rules.
fn firewall(x: &mut Exposition, snap: &Snapshot, limits: Limits) {
    let Some(fw) = &snap.firewall else { return };
    let mut left = limits.max_rules;
    let mut omitted = 0usize;
    const PK: &str = "Packets a firewall rule matched (iptables-save -c, or the nft rule's counter).";
    const BY: &str = "Bytes a firewall rule matched (iptables-save -c, or the nft rule's counter).";
    for d in &fw.iptables {
        let backend = format!("iptables-{}", d.backend);
        for t in &d.tables {
            for c in &t.chains {
                if let Some(policy) = &c.policy {
                    let labels = [
                        ("backend", backend.as_str()),
                        ("family", d.family.as_str()),
                        ("table", t.name.as_str()),
                        ("chain", c.name.as_str()),
                        ("policy", policy.as_str()),
                    ];
                    x.counter(
                        "ctnet_firewall_policy_packets_total",
                        "Packets a built-in chain's policy decided.",
                        &labels,
                        c.packets,
                    );
                    x.counter(
                        "ctnet_firewall_policy_bytes_total",
                        "Bytes a built-in chain's policy decided.",
                        &labels,
                        c.bytes,
                    );
                }
            }
            for r in &t.rules {
                if left == 0 {
                    omitted += 1;
                    continue;
                }
                left -= 1;
                let pos = r.position.to_string();
                let text = short(&r.spec);
                let labels = [
                    ("backend", backend.as_str()),
                    ("family", d.family.as_str()),
                    ("table", t.name.as_str()),
                    ("chain", r.chain.as_str()),
                    ("position", pos.as_str()),
                    ("owner", owner_name(r.owner)),
                    ("rule", text.as_str()),
                ];
                x.counter("ctnet_firewall_rule_packets_total", PK, &labels, r.packets);
                x.counter("ctnet_firewall_rule_bytes_total", BY, &labels, r.bytes);
            }
        }
    }
    for t in &fw.nft {
        let table = format!("{} {}", t.family, t.name);
        let owner = owner_name(t.owner.unwrap_or(Owner::Other));
        for r in &t.rules {
            let (Some(p), Some(b)) = (r.packets, r.bytes) else {
                continue;
            };
            if left == 0 {
                omitted += 1;
                continue;
            }
            left -= 1;
            let pos = r.position.to_string();
            let text = short(&r.text);
            let labels = [
                ("backend", "nft"),
                ("family", t.family.as_str()),
                ("table", table.as_str()),
                ("chain", r.chain.as_str()),
                ("position", pos.as_str()),
                ("owner", owner),
                ("rule", text.as_str()),
            ];
            x.counter("ctnet_firewall_rule_packets_total", PK, &labels, p);
            x.counter("ctnet_firewall_rule_bytes_total", BY, &labels, b);
        }
    }
    x.gauge(
        "ctnet_firewall_rules_omitted",
        "Rules left out of ctnet_firewall_rule_*_total by --max-rules.",
        &[],
        omitted as f64,
    );
}

#[cfg(test)]
mod tests;
