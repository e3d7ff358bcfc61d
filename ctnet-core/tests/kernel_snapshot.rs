//! Differential kernel tests of introspection: a lab built with plain iproute2 commands
//! (not ctnet's builder) inside a fresh rootless world, traffic first, then ctnet's
//! snapshot compared with `ip -j`, `bridge -j fdb`, `iptables-save -c` and `ethtool`.

use ctnet_core::vocab::NeighState;
use ctnet_core::vocab::PortState;
use ctnet_core::vocab::SourceState;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use ctnet_core::model::Snapshot;
use ctnet_core::netns::NetnsRef;
use ctnet_core::source::{self, ScanOptions};
use ctnet_core::topology::{Peer, Role, Topology};
use ctnet_core::world::run_test_in_world;
use serde_json::Value;

fn sh(script: &str) -> String {
    let out = Command::new("sh").args(["-ec", script]).output().unwrap();
    assert!(
        out.status.success(),
        "script failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(cmd: &str) -> Value {
    let text = sh(cmd);
    if text.trim().is_empty() {
        Value::Array(vec![])
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }
}

const CONTAINERS: u32 = 6;

/// The article's lab by hand: bridge br0 with 10.50.0.1/24, c1..c6 on veths vc1..vc6,
/// plus the odd cases: an isolated netns, a veth between two containers, a macvlan,
/// and a FORWARD rule that counts.
fn build_lab_with_iproute2() {
    let mut s = String::from(
        "ip link add name br0 type bridge\n\
         ip addr add 10.50.0.1/24 dev br0\n\
         ip link set br0 up\n\
         iptables -A FORWARD -i br0 -o br0 -j ACCEPT\n\
         iptables -t nat -A POSTROUTING -s 10.50.0.0/24 ! -o br0 -j MASQUERADE\n",
    );
    for i in 1..=CONTAINERS {
        s.push_str(&format!(
            "ip netns add c{i}\n\
             ip link add name vc{i} type veth peer name eth0 netns c{i}\n\
             ip link set vc{i} master br0\n\
             ip link set vc{i} up\n\
             ip -n c{i} link set lo up\n\
             ip -n c{i} link set eth0 up\n\
             ip -n c{i} addr add 10.50.0.{}/24 dev eth0\n\
             ip -n c{i} route add default via 10.50.0.1\n",
            i + 1
        ));
    }
    s.push_str(
        "ip netns add lonely\n\
         ip link add name p56 netns c5 type veth peer name p65 netns c6\n\
         ip -n c5 link set p56 up\n\
         ip -n c6 link set p65 up\n\
         ip -n c5 addr add 192.168.56.5/24 dev p56\n\
         ip -n c6 addr add 192.168.56.6/24 dev p65\n\
         ip netns add mv\n\
         ip link add name mv0 link br0 type macvlan mode bridge\n\
         ip link set mv0 netns mv\n\
         ip -n mv link set mv0 up\n\
         ip -n mv addr add 10.50.0.200/24 dev mv0\n",
    );
    sh(&s);
    // Traffic: every container pings the next and the gateway; c5 <-> c6 directly.
    for i in 1..=CONTAINERS {
        let next = i % CONTAINERS + 2;
        sh(&format!(
            "ip netns exec c{i} ping -c2 -i0.2 -W2 10.50.0.{next} >/dev/null\n\
             ip netns exec c{i} ping -c1 -W2 10.50.0.1 >/dev/null"
        ));
    }
    sh("ip netns exec c5 ping -c1 -W2 192.168.56.6 >/dev/null");
    settle_ipv6();
}

/// Wait (with a deadline) until no IPv6 address anywhere is still tentative: DAD
/// finishing adds local routes, which would race the comparison.
fn settle_ipv6() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let busy = sh("for n in '' $(ip netns list | cut -d' ' -f1); do \
                         if [ -z \"$n\" ]; then ip -6 addr show tentative; else ip -n \"$n\" -6 addr show tentative; fi; \
                       done");
        if busy.trim().is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "IPv6 DAD never settled:\n{busy}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn netns_names() -> BTreeMap<i64, String> {
    json("ip -j netns list")
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["id"].as_i64()?, e["name"].as_str()?.to_string())))
        .collect()
}

fn named<'a>(snap: &'a Snapshot, name: &str) -> &'a ctnet_core::model::NetnsState {
    snap.netns
        .iter()
        .find(|n| {
            n.refs
                .iter()
                .any(|r| matches!(r, NetnsRef::Named { name: x, .. } if x == name))
        })
        .unwrap_or_else(|| panic!("netns {name} not in snapshot"))
}

fn ifname(ns: &ctnet_core::model::NetnsState, idx: u32) -> String {
    ns.link(idx).map(|l| l.name.clone()).unwrap_or_default()
}

/// Compare one netns with iproute2: links, addresses, routes (all tables), neighbours.
fn assert_netns_matches_iproute2(snap: &Snapshot, name: Option<&str>) {
    let (ns, pre) = match name {
        Some(n) => (named(snap, n), format!("ip -n {n}")),
        None => (snap.host_netns().unwrap(), "ip".to_string()),
    };
    let label = name.unwrap_or("host");

    let links = json(&format!("{pre} -j -d link"));
    let theirs: BTreeSet<(u64, String, String, Option<u64>)> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["ifindex"].as_u64().unwrap(),
                l["ifname"].as_str().unwrap().to_string(),
                l["address"].as_str().unwrap_or("").to_string(),
                l["link_index"].as_u64(),
            )
        })
        .collect();
    let ours: BTreeSet<(u64, String, String, Option<u64>)> = ns
        .links
        .iter()
        .map(|l| {
            (
                u64::from(l.ifindex),
                l.name.clone(),
                l.mac.clone().unwrap_or_default(),
                l.link.map(u64::from),
            )
        })
        .collect();
    assert_eq!(ours, theirs, "links of {label}");

    let addrs = json(&format!("{pre} -j addr"));
    let theirs: BTreeSet<(String, String, u64)> = addrs
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            let dev = i["ifname"].as_str().unwrap().to_string();
            i["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |a| {
                    (
                        dev.clone(),
                        a["local"].as_str().unwrap().to_string(),
                        a["prefixlen"].as_u64().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let ours: BTreeSet<(String, String, u64)> = ns
        .addresses
        .iter()
        .map(|a| {
            (
                ifname(ns, a.ifindex),
                a.address.to_string(),
                u64::from(a.prefix_len),
            )
        })
        .collect();
    assert_eq!(ours, theirs, "addresses of {label}");

    let mut theirs: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    for fam in ["-4", "-6"] {
        for r in json(&format!("{pre} {fam} -j route show table all"))
            .as_array()
            .unwrap()
        {
            let table = match r["table"].as_str() {
                None | Some("main") => "254".to_string(),
                Some("local") => "255".to_string(),
                Some(t) => t.to_string(),
            };
            theirs.insert((
                r["dst"].as_str().unwrap().to_string(),
                r["dev"].as_str().unwrap_or("").to_string(),
                table,
                r["gateway"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    let ours: BTreeSet<(String, String, String, String)> = ns
        .routes
        .iter()
        .map(|r| {
            (
                r.dst.clone(),
                r.oif.map(|i| ifname(ns, i)).unwrap_or_default(),
                r.table.to_string(),
                r.gateway.map(|g| g.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ours, theirs, "routes of {label}");

    // `ip neigh` hides NOARP entries; states may move on between the two reads, so
    // compare who maps to what.
    let neigh = json(&format!("{pre} -j neigh"));
    let theirs: BTreeSet<(String, String, String)> = neigh
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["dst"].as_str().unwrap().to_string(),
                n["dev"].as_str().unwrap().to_string(),
                n["lladdr"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let ours: BTreeSet<(String, String, String)> = ns
        .neighbours
        .iter()
        .filter(|n| n.state != NeighState::Noarp)
        .map(|n| {
            (
                n.ip.to_string(),
                ifname(ns, n.ifindex),
                n.mac.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ours, theirs, "neighbours of {label}");
}

#[test]
fn snapshot_of_an_iproute2_lab_equals_what_iproute2_sees() {
    run_test_in_world("snapshot_of_an_iproute2_lab_equals_what_iproute2_sees", || {
        build_lab_with_iproute2();
        let snap = source::snapshot(&ScanOptions::default()).unwrap();
        let topo = Topology::build(&snap);
        assert_eq!(snap.schema, "ctnet.snapshot/v2");
        assert!(
            snap.sources.iter().all(|s| s.status != SourceState::Failed),
            "no source may fail in a healthy world: {:#?}",
            snap.sources
        );

        // Every host veth: our peer netns and peer MAC equal iproute2's.
        let ids = netns_names();
        let host_links = json("ip -j -d link");
        let host_veths: Vec<&Value> = host_links
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["linkinfo"]["info_kind"] == "veth")
            .collect();
        assert_eq!(host_veths.len(), CONTAINERS as usize);
        assert_eq!(topo.veths.len(), host_veths.len());
        for hv in host_veths {
            let name = hv["ifname"].as_str().unwrap();
            let ns_name = &ids[&hv["link_netnsid"].as_i64().unwrap()];
            let peer_idx = hv["link_index"].as_u64().unwrap();
            let peer = json(&format!("ip -n {ns_name} -j link"))
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["ifindex"].as_u64() == Some(peer_idx))
                .cloned()
                .unwrap();
            let ours = topo.veths.iter().find(|v| v.host.name == name).unwrap();
            match &ours.peer {
                Peer::Resolved {
                    iface,
                    netns_names,
                    mac,
                    confirmed,
                    ..
                } => {
                    assert!(
                        netns_names.iter().any(|n| n == &format!("/run/netns/{ns_name}")),
                        "{name}: peer netns {netns_names:?}, iproute2 says {ns_name}"
                    );
                    assert_eq!(u64::from(iface.ifindex), peer_idx, "{name} peer ifindex");
                    assert_eq!(mac.as_deref(), peer["address"].as_str(), "{name} peer MAC");
                    assert_eq!(iface.name, "eth0");
                    assert!(confirmed, "{name}: the peer points back");
                }
                other => panic!("{name}: peer not resolved: {other:?}"),
            }
            // ethtool's peer_ifindex agrees with netlink.
            assert_eq!(
                ours.ethtool_peer_ifindex,
                Some(peer_idx),
                "{name} ethtool peer_ifindex"
            );
            assert_eq!(ours.bridge.as_deref(), Some("br0"));
            assert_eq!(ours.port_state, Some(PortState::Forwarding));
        }

        // FDB: every non-self entry of `bridge fdb show`.
        let host = snap.host_netns().unwrap();
        let theirs: BTreeSet<(String, String, String)> = json("bridge -j fdb show")
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                !e["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x == "self"))
            })
            .map(|e| {
                (
                    e["mac"].as_str().unwrap().to_string(),
                    e["ifname"].as_str().unwrap().to_string(),
                    e["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let ours: BTreeSet<(String, String, String)> = host
            .fdb
            .iter()
            .filter(|e| !e.flags.iter().any(|f| f == "self"))
            .map(|e| {
                // iproute2 names states the way `bridge fdb` prints them.
                let state = match e.state.as_str() {
                    "noarp" => "static",
                    "reachable" | "stale" | "delay" | "probe" => "",
                    other => other,
                };
                (e.mac.clone(), ifname(host, e.ifindex), state.to_string())
            })
            .collect();
        assert_eq!(ours, theirs, "bridge FDB");
        assert!(
            host.fdb.iter().any(|e| !e.is_local && e.age_s.is_some()),
            "learned entries age"
        );

        // Each container: learned in the FDB on its own port.
        for i in 1..=CONTAINERS {
            let view = topo.netns.iter().find(|n| n.label == format!("c{i}")).unwrap();
            assert_eq!(view.role, Role::Container);
            let eth0 = view.ifaces.iter().find(|x| x.iface.name == "eth0").unwrap();
            assert_eq!(eth0.host_veth.as_ref().unwrap().name, format!("vc{i}"));
            assert_eq!(eth0.bridge.as_deref(), Some("br0"));
            assert_eq!(eth0.gateway.map(|g| g.to_string()).as_deref(), Some("10.50.0.1"));
            let hit = eth0.fdb.as_ref().unwrap_or_else(|| panic!("c{i} MAC not in FDB"));
            assert_eq!(hit.port, format!("vc{i}"));
        }

        // Per netns: links, addresses, routes, neighbours.
        assert_netns_matches_iproute2(&snap, None);
        for n in ["c1", "c2", "c3", "c4", "c5", "c6", "lonely", "mv"] {
            assert_netns_matches_iproute2(&snap, Some(n));
        }

        // The odd cases, represented truthfully.
        let lonely = topo.netns.iter().find(|n| n.label == "lonely").unwrap();
        assert_eq!(lonely.role, Role::Isolated);
        let mv = topo.netns.iter().find(|n| n.label == "mv").unwrap();
        assert_eq!(mv.role, Role::Container);
        assert_eq!(
            mv.ifaces[0].parent.as_deref(),
            Some("br0"),
            "macvlan on the host's br0"
        );
        let c5 = topo.netns.iter().find(|n| n.label == "c5").unwrap();
        let p56 = c5.ifaces.iter().find(|x| x.iface.name == "p56").unwrap();
        match p56.peer.as_ref().unwrap() {
            Peer::Resolved { iface, .. } => {
                assert_eq!(iface.name, "p65");
                assert_eq!(iface.netns_label, "c6");
            }
            other => panic!("p56 peer: {other:?}"),
        }

        // Sysctls as the kernel has them.
        let fwd: u8 = sh("cat /proc/sys/net/ipv4/ip_forward").trim().parse().unwrap();
        assert_eq!(host.sysctls.ip_forward, Some(fwd));
        let rp: u8 = sh("ip netns exec c1 cat /proc/sys/net/ipv4/conf/eth0/rp_filter")
            .trim()
            .parse()
            .unwrap();
        assert_eq!(named(&snap, "c1").sysctls.conf["eth0"].rp_filter, Some(rp));
        // Netns-wide values are each netns's own (read relative to a directory opened
        // in that netns).
        sh("ip netns exec c2 sysctl -qw net.ipv4.conf.all.arp_ignore=2 net.ipv4.conf.all.rp_filter=2");
        let again = source::snapshot(&ScanOptions::default()).unwrap();
        let all = |ns: &str| named(&again, ns).sysctls.conf["all"].clone();
        assert_eq!((all("c2").arp_ignore, all("c2").rp_filter), (Some(2), Some(2)));
        assert_ne!(all("c1").arp_ignore, Some(2));
        let host_all = &again.host_netns().unwrap().sysctls.conf["all"];
        assert_ne!(host_all.arp_ignore, Some(2));

        // Firewall counters equal `iptables-save -c` (no traffic since the snapshot).
        let save = sh("iptables-save -c");
        let theirs: BTreeSet<String> = save
            .lines()
            .filter(|l| l.starts_with('[') && l.contains("] -A "))
            .map(str::to_string)
            .collect();
        let fw = snap.firewall.as_ref().unwrap();
        let dump = fw
            .iptables
            .iter()
            .find(|d| d.family == "ip" && d.backend == "nft")
            .unwrap();
        let ours: BTreeSet<String> = dump
            .tables
            .iter()
            .flat_map(|t| t.rules.iter())
            .map(|r| format!("[{}:{}] -A {} {}", r.packets, r.bytes, r.chain, r.spec))
            .collect();
        assert_eq!(ours, theirs, "iptables rules and counters");
        let fwd_rule = dump
            .tables
            .iter()
            .flat_map(|t| t.rules.iter())
            .find(|r| r.chain == "FORWARD")
            .unwrap();
        assert!(fwd_rule.packets > 0, "the FORWARD rule counted the pings");
    });
}

#[test]
fn unnamed_leftover_and_unfindable_netns_are_reported_not_dropped() {
    run_test_in_world(
        "unnamed_leftover_and_unfindable_netns_are_reported_not_dropped",
        || {
            // A netns held only by a process (no bind mount), with a veth to the host.
            let mut holder = Command::new("unshare")
                .args(["--net", "sleep", "30"])
                .spawn()
                .unwrap();
            let pid = holder.id();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
                == std::fs::read_link("/proc/self/ns/net").ok()
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "unshare never entered its netns"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            sh(&format!(
                "ip link add name hidden0 type veth peer name eth0 netns {pid}"
            ));
            // A leftover file in /run/netns that is no netns.
            sh("touch /run/netns/stale");

            let snap = source::snapshot(&ScanOptions::default()).unwrap();
            let topo = Topology::build(&snap);
            let v = topo.veths.iter().find(|v| v.host.name == "hidden0").unwrap();
            match &v.peer {
                Peer::Resolved { netns_names, .. } => {
                    assert!(
                        netns_names.iter().any(|n| n.starts_with(&format!("pid:{pid}"))),
                        "{netns_names:?}"
                    )
                }
                other => panic!("found through /proc: {other:?}"),
            }
            assert!(
                snap.sources.iter().any(|s| s.status == SourceState::Skipped
                    && s.detail
                        .as_deref()
                        .is_some_and(|d| d.contains("/run/netns/stale"))),
                "{:#?}",
                snap.sources
            );

            // Without the /proc scan its netns is unknown: reported with its nsid.
            let opts = ScanOptions {
                scan_proc: false,
                ..ScanOptions::default()
            };
            let topo = Topology::build(&source::snapshot(&opts).unwrap());
            let v = topo.veths.iter().find(|v| v.host.name == "hidden0").unwrap();
            assert!(matches!(v.peer, Peer::NetnsNotFound { .. }), "{:?}", v.peer);

            // A missing tool is a skipped source, the rest is read (where there are
            // tables to read: the kernel lists them first, and none needs no tool).
            for (tool, args) in [
                (
                    "iptables",
                    &["-A", "INPUT", "-s", "192.0.2.9", "-j", "ACCEPT"][..],
                ),
                ("nft", &["add", "table", "inet", "keep"][..]),
            ] {
                let ok = std::process::Command::new(tool).args(args).status().unwrap();
                assert!(ok.success(), "{tool} {args:?}");
            }
            let opts = ScanOptions {
                tool_path: "/nonexistent".into(),
                ..ScanOptions::default()
            };
            let snap = source::snapshot(&opts).unwrap();
            for tool in ["nft", "iptables-nft-save"] {
                assert!(
                    snap.sources
                        .iter()
                        .any(|s| s.source == tool && s.status == SourceState::Skipped),
                    "{tool}: {:#?}",
                    snap.sources
                );
            }
            assert!(
                snap.host_netns()
                    .unwrap()
                    .links
                    .iter()
                    .any(|l| l.name == "hidden0")
            );
            let _ = holder.kill();
            let _ = holder.wait();
        },
    );
}

#[test]
fn veths_between_containers_resolve_by_nsid_even_with_equal_ifindexes() {
    run_test_in_world(
        "veths_between_containers_resolve_by_nsid_even_with_equal_ifindexes",
        || {
            // Two pairs of netns joined by a veth each: in fresh netns both ends get the same
            // ifindex, so only the nsids tell the pairs apart.
            sh("for n in a1 a2 b1 b2; do ip netns add $n; done\n\
            ip -n a1 link add name x type veth peer name y netns a2\n\
            ip -n b1 link add name x type veth peer name y netns b2");
            let home = ctnet_core::netns::NetnsKey::of_current_thread().unwrap();
            let snap = source::snapshot(&ScanOptions::default()).unwrap();
            let topo = Topology::build(&snap);
            for (from, to) in [("a1", "a2"), ("a2", "a1"), ("b1", "b2"), ("b2", "b1")] {
                let view = topo.netns.iter().find(|n| n.label == from).unwrap();
                assert_eq!(view.ifaces.len(), 1);
                match view.ifaces[0].peer.as_ref().unwrap() {
                    Peer::Resolved { iface, confirmed, .. } => {
                        assert_eq!(iface.netns_label, to, "peer of {from}");
                        assert!(confirmed);
                    }
                    other => panic!("{from}: {other:?}"),
                }
            }
            // The scan moved no thread of this process out of its netns. A joined worker
            // is still listed for a moment: pthread_join returns when the kernel clears
            // its tid, before the exiting task drops its namespaces.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            loop {
                let away: Vec<_> = ctnet_core::netns::thread_netns_keys()
                    .unwrap()
                    .into_iter()
                    .filter(|(_, key)| *key != home)
                    .collect();
                if away.is_empty() {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "threads left outside their netns: {away:?}"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        },
    );
}

#[test]
fn snapshot_round_trips_through_json() {
    run_test_in_world("snapshot_round_trips_through_json", || {
        build_lab_with_iproute2();
        let snap = source::snapshot(&ScanOptions::default()).unwrap();
        let back = Snapshot::from_json(&snap.to_json()).unwrap();
        assert_eq!(back, snap);
        assert_eq!(Topology::build(&back), Topology::build(&snap));
    });
}

#[test]
fn vxlan_devices_and_their_remote_vteps_equal_what_iproute2_sees() {
    run_test_in_world(
        "vxlan_devices_and_their_remote_vteps_equal_what_iproute2_sees",
        || {
            // A unicast VTEP with static remotes (flannel's layout), a multicast one that
            // learns, and an external (collect-metadata) one as Cilium makes.
            sh("ip netns add under\n\
            ip link add u0 type veth peer name u1 netns under\n\
            ip addr add 10.9.0.1/24 dev u0 && ip link set u0 up\n\
            ip link add vx0 type vxlan id 42 local 10.9.0.1 remote 10.9.0.2 dstport 4789 dev u0 nolearning\n\
            ip link add vx1 type vxlan id 7 group 239.1.1.1 dstport 8472 dev u0\n\
            ip link add vx2 type vxlan external dstport 4789\n\
            ip link set vx0 up\n\
            bridge fdb append 00:00:00:00:00:00 dev vx0 dst 10.9.0.3\n\
            bridge fdb add 02:00:00:00:00:09 dev vx0 dst 10.9.0.9");
            let snap = source::snapshot(&ScanOptions::default()).unwrap();
            let host = snap.host_netns().unwrap();
            let links = json("ip -d -j link show");
            let ifindex_of = |name: &str| {
                links
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|l| l["ifname"] == name)
                    .and_then(|l| l["ifindex"].as_u64())
                    .map(|i| i as u32)
            };
            for name in ["vx0", "vx1", "vx2"] {
                let theirs = links
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|l| l["ifname"] == name)
                    .unwrap();
                let d = &theirs["linkinfo"]["info_data"];
                let ours = host.links.iter().find(|l| l.name == name).unwrap();
                let v = ours
                    .vxlan
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name}: no vxlan attributes"));
                let ip = |key: &str| d[key].as_str().map(|a| a.parse::<std::net::IpAddr>().unwrap());
                assert_eq!(v.vni, d["id"].as_u64().map(|i| i as u32), "{name}");
                assert_eq!(v.port, d["port"].as_u64().map(|p| p as u16), "{name}");
                assert_eq!(Some(v.learning), d["learning"].as_bool(), "{name}");
                assert_eq!(v.local, ip("local"), "{name}");
                assert_eq!(v.remote, ip("remote"), "{name}");
                assert_eq!(v.group, ip("group"), "{name}");
                assert_eq!(v.underlay, d["link"].as_str().and_then(ifindex_of), "{name}");
                assert_eq!(v.external, d["external"].as_bool().unwrap_or(false), "{name}");
            }
            assert_eq!(
                host.links
                    .iter()
                    .find(|l| l.name == "vx0")
                    .unwrap()
                    .vxlan
                    .as_ref()
                    .unwrap()
                    .summary(),
                "id 42 remote 10.9.0.2 local 10.9.0.1 dstport 4789 nolearning"
            );
            // Each remote VTEP of vx0's FDB, as `bridge fdb` lists them.
            let vx0 = ifindex_of("vx0").unwrap();
            let ours: BTreeSet<(String, String)> = host
                .fdb
                .iter()
                .filter(|e| e.ifindex == vx0)
                .map(|e| (e.mac.clone(), e.dst.map(|d| d.to_string()).unwrap_or_default()))
                .collect();
            let theirs: BTreeSet<(String, String)> = json("bridge -j fdb show dev vx0")
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["mac"].as_str().unwrap().to_string(),
                        e["dst"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            assert_eq!(ours, theirs);
            assert_eq!(theirs.len(), 3);
        },
    );
}
