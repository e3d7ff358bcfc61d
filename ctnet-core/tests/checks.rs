//! Pure tests of the guided checks, from snapshots recorded on real kernels: a healthy
//! lab, the same lab with faults, and a real Docker host.

use ctnet_core::check::{self, CATALOG, Report, Status};
use ctnet_core::model::Snapshot;
use ctnet_core::target;
use ctnet_core::topology::Topology;

fn fixture(name: &str) -> Snapshot {
    Snapshot::load(format!("{}/../fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn report(snap: &Snapshot, t: &str, peer: Option<&str>) -> Report {
    let topo = Topology::build(snap);
    let t = target::resolve(snap, t).unwrap();
    let p = peer.map(|p| target::resolve(snap, p).unwrap());
    check::run(snap, &topo, &t, p.as_ref())
}

fn status(r: &Report, id: &str) -> Status {
    r.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no {id} in {:#?}", r.checks))
        .status
}

#[test]
fn a_healthy_lab_has_no_failure_for_any_container_or_pair() {
    let snap = fixture("lab-healthy");
    for t in ["c1", "c2", "c3", "c4"] {
        let r = report(&snap, t, None);
        assert_eq!(r.verdict, Status::Pass, "{t}: {:#?}", r.checks);
    }
    let r = report(&snap, "c1", Some("c3"));
    assert_eq!(r.verdict, Status::Pass, "{:#?}", r.checks);
    assert_eq!(status(&r, "arp.peer_entry"), Status::Pass);
    assert_eq!(status(&r, "fdb.peer_mac"), Status::Pass);
}

#[test]
fn each_recorded_fault_fails_the_right_category() {
    let snap = fixture("lab-faults");
    // vc2 down: the host end and the port.
    let r = report(&snap, "c2", None);
    assert_eq!(r.verdict, Status::Fail);
    assert_eq!(status(&r, "link.host_veth_up"), Status::Fail);
    assert_eq!(status(&r, "bridge.port_forwarding"), Status::Fail);
    // vc3 off the bridge.
    let r = report(&snap, "c3", None);
    let f = r.checks.iter().find(|c| c.status == Status::Fail).unwrap();
    assert_eq!(
        (f.id.as_str(), f.category.as_str()),
        ("bridge.attached", "bridge")
    );
    assert!(f.commands.iter().any(|c| c.contains("vc3")), "{f:?}");
    // ageing 0: works, but floods.
    let r = report(&snap, "c4", None);
    assert_eq!(status(&r, "bridge.ageing"), Status::Warn);
    // A stale ARP entry in c1 for c4.
    let r = report(&snap, "c1", Some("c4"));
    let arp = r
        .checks
        .iter()
        .find(|c| c.id == "arp.peer_entry" && c.status == Status::Fail)
        .expect("the stale entry is found");
    assert_eq!(arp.category, "arp");
    assert!(arp.summary.contains("02:00:00:00:de:ad"), "{}", arp.summary);
    assert!(
        arp.hint
            .as_deref()
            .unwrap()
            .contains("ip -n c1 neigh del 10.50.0.5")
    );
    // Failures come first.
    assert_eq!(r.checks[0].status, Status::Fail);
}

#[test]
fn a_healthy_docker_host_has_no_failure() {
    let snap = fixture("docker-host");
    for t in ["web1", "api1", "side1"] {
        let r = report(&snap, t, None);
        assert_ne!(r.verdict, Status::Fail, "{t}: {:#?}", r.checks);
    }
    let r = report(&snap, "web1", Some("api1"));
    assert_ne!(r.verdict, Status::Fail, "{:#?}", r.checks);
    assert_eq!(status(&r, "path.same_bridge"), Status::Pass, "they share docker0");
    // Special modes say what they are instead of failing.
    let r = report(&snap, "host1", None);
    assert_eq!(r.checks[0].status, Status::Skip);
    assert!(r.checks[0].summary.contains("host netns"));
    let r = report(&snap, "stopped1", None);
    assert_eq!(r.verdict, Status::Fail);
    assert!(r.checks[0].summary.contains("not running"));
    let r = report(&snap, "none1", None);
    assert!(r.checks[0].summary.contains("only lo"), "{:?}", r.checks[0]);
}

#[test]
fn a_container_sharing_another_containers_netns_is_told_whose_it_is() {
    let snap = fixture("docker-host");
    let web1 = snap.containers.iter().find(|c| c.name == "web1").unwrap();
    let label = Topology::build(&snap)
        .netns
        .into_iter()
        .find(|n| Some(n.key) == web1.netns)
        .unwrap()
        .label;
    // side1 runs with --network container:web1: its checks are web1's netns.
    let r = report(&snap, "side1", None);
    let f = r.checks.iter().find(|c| c.id == "resolve.netns").unwrap();
    assert_eq!((f.status, f.category.as_str()), (Status::Pass, "resolve"));
    for want in [
        "container side1 shares the netns of container web1 (--network container:web1)",
        &format!("the checks run on web1's netns {label} (eth0)"),
    ] {
        assert!(f.summary.contains(want), "{want:?} missing: {f:#?}");
    }
    assert!(
        f.evidence
            .iter()
            .any(|e| e.starts_with("container side1: network mode container:")),
        "{f:#?}"
    );
    assert!(
        f.evidence
            .contains(&format!("netns {label}: also used by container(s) web1")),
        "{f:#?}"
    );
    assert!(
        f.commands
            .contains(&"docker inspect -f '{{.HostConfig.NetworkMode}}' side1".to_string()),
        "{f:#?}"
    );
    // The rest of the report is web1's netns: the same interface and host veth.
    let web = report(&snap, "web1", None);
    for id in [
        "link.iface_up",
        "link.host_veth_up",
        "bridge.attached",
        "address.ipv4",
    ] {
        let of = |r: &Report| {
            let c = r.checks.iter().find(|c| c.id == id).unwrap();
            (c.status, c.summary.clone(), c.evidence.clone())
        };
        assert_eq!(of(&r), of(&web), "{id}");
    }
    // And web1's own report says who else lives in its netns.
    let f = web.checks.iter().find(|c| c.id == "resolve.netns").unwrap();
    assert!(f.summary.ends_with("shared with container(s) side1"), "{f:#?}");
    // A container with a netns of its own names nobody else.
    let f = report(&snap, "api1", None);
    let f = f.checks.iter().find(|c| c.id == "resolve.netns").unwrap();
    assert!(f.evidence.is_empty() && !f.summary.contains("shared"), "{f:#?}");
}

#[test]
fn every_finding_is_in_the_catalog_with_its_category_and_json_is_versioned() {
    let snap = fixture("lab-faults");
    let r = report(&snap, "c1", Some("c4"));
    for c in &r.checks {
        let (_, cat, _) = CATALOG
            .iter()
            .find(|x| x.0 == c.id)
            .unwrap_or_else(|| panic!("{} not in the catalog", c.id));
        assert_eq!(&c.category, cat);
        assert!(!c.summary.is_empty());
    }
    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(json["schema"], "ctnet.check/v1");
    assert_eq!(json["verdict"], "fail");
    assert!(
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"].is_string())
    );
}

#[test]
fn every_finding_of_every_fixture_is_a_catalog_row_with_its_category() {
    use ctnet_core::netns::NetnsRef;
    for name in ["lab-healthy", "lab-faults", "docker-host"] {
        let snap = fixture(name);
        // Every container and every named netns, alone and with every other as peer.
        let mut targets: Vec<String> = snap.containers.iter().map(|c| c.name.clone()).collect();
        for ns in &snap.netns {
            for r in &ns.refs {
                if let NetnsRef::Named { name, .. } = r {
                    targets.push(name.clone());
                }
            }
        }
        assert!(targets.len() > 1, "{name}: {targets:?}");
        let mut runs = 0;
        for t in &targets {
            for p in std::iter::once(None).chain(targets.iter().map(Some)) {
                let r = report(&snap, t, p.map(String::as_str));
                for c in &r.checks {
                    let row = CATALOG.iter().find(|x| x.0 == c.id);
                    assert!(
                        row.is_some_and(|(_, cat, _)| c.category == *cat),
                        "{name}: {t} {p:?}: {} ({}) is no row of the catalog",
                        c.id,
                        c.category
                    );
                }
                runs += 1;
            }
        }
        assert_eq!(runs, targets.len() * (targets.len() + 1));
    }
}

#[test]
fn every_fault_is_planned_from_recorded_state_with_its_undo() {
    use ctnet_core::lab::fault::{self, Fault};
    // c1 with a resolv.conf, as a container that resolves names has (dns-blocked needs it).
    let snap = with_resolver(fixture("lab-healthy"), "c1", &["10.50.0.1"]);
    let topo = Topology::build(&snap);
    let t = target::resolve(&snap, "c1").unwrap();
    let p = target::resolve(&snap, "c3").unwrap();
    let mut lines = Vec::new();
    // The overlay faults need a node (see below).
    for f in Fault::ALL.into_iter().filter(|f| !f.is_overlay()) {
        let inj = fault::plan(f, &snap, &topo, &t, Some(&p)).unwrap();
        assert!(!inj.apply.is_empty() && !inj.undo.is_empty(), "{f:?}");
        for s in &inj.apply {
            lines.push(format!("{:<15} break {}", f.name(), s.command()));
        }
        for s in &inj.undo {
            lines.push(format!("{:<15} undo  {}", f.name(), s.command()));
        }
    }
    let text = lines.join("\n");
    // The sysctl of br_netfilter is read from the machine running the test; drop it.
    let text: String = text
        .lines()
        .filter(|l| !l.contains("bridge-nf-call-iptables"))
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("fault-plans-lab-healthy", text);
}

#[test]
fn an_overlay_node_passes_every_overlay_check_and_each_fault_of_it_is_named() {
    let snap = fixture("overlay-node");
    let r = report(&snap, "ov-n1-c1", Some("ov-n2-c1"));
    for id in [
        "mtu.overlay",
        "overlay.vtep",
        "overlay.vni",
        "overlay.underlay",
        "path.same_bridge",
        "path.trace",
    ] {
        assert_eq!(status(&r, id), Status::Pass, "{id}: {:#?}", r.checks);
    }
    assert!(r.verdict <= Status::Warn, "{:#?}", r.checks);
    let summary = |r: &Report, id: &str| r.checks.iter().find(|c| c.id == id).unwrap().summary.clone();
    assert!(
        summary(&r, "overlay.vni").contains("flannel.1 (VNI 1, port 4789) matches the 1 remote VTEP(s)"),
        "{}",
        summary(&r, "overlay.vni")
    );
    // Node 2's device with another VNI and port: named.
    let mut other = fixture("overlay-node");
    let n2: std::net::IpAddr = "10.78.0.2".parse().unwrap();
    let v = other
        .netns
        .iter_mut()
        .flat_map(|n| n.links.iter_mut())
        .filter_map(|l| l.vxlan.as_mut())
        .find(|v| v.local == Some(n2))
        .unwrap();
    v.vni = Some(2);
    v.port = Some(8472);
    let r = report(&other, "ov-n1-c1", Some("ov-n2-c1"));
    assert_eq!(status(&r, "overlay.vni"), Status::Fail);
    let s = summary(&r, "overlay.vni");
    assert!(
        s.contains("has VNI 1, but the VTEP at 10.78.0.2 (flannel.1 in ov-n2) has VNI 2"),
        "{s}"
    );
    assert!(s.contains("listens on 8472"), "{s}");
    assert_eq!(status(&r, "path.trace"), Status::Fail, "{:#?}", r.checks);
    // Node 1's FDB entry for node 2 gone: named by the check and the trace.
    let mut gone = fixture("overlay-node");
    let host = gone.host;
    gone.netns
        .iter_mut()
        .find(|n| n.key == host)
        .unwrap()
        .fdb
        .retain(|e| e.dst.is_none());
    let r = report(&gone, "ov-n1-c1", Some("ov-n2-c1"));
    assert_eq!(status(&r, "overlay.vtep"), Status::Fail);
    assert_eq!(status(&r, "path.trace"), Status::Fail);

    // Each overlay fault is planned on the node with its undo.
    use ctnet_core::lab::fault::{self, Fault};
    let topo = Topology::build(&snap);
    let t = target::resolve(&snap, "ov-n1-c1").unwrap();
    let p = target::resolve(&snap, "ov-n2-c1").unwrap();
    let mut lines = Vec::new();
    for f in Fault::ALL.into_iter().filter(|f| f.is_overlay()) {
        let inj = fault::plan(f, &snap, &topo, &t, Some(&p)).unwrap();
        for s in &inj.apply {
            lines.push(format!("{:<16} break {}", f.name(), s.command()));
        }
        for s in &inj.undo {
            lines.push(format!("{:<16} undo  {}", f.name(), s.command()));
        }
    }
    insta::assert_snapshot!("fault-plans-overlay-node", lines.join("\n"));
    // Not on a node: said so.
    let lab = fixture("lab-healthy");
    let topo = Topology::build(&lab);
    let t = target::resolve(&lab, "c1").unwrap();
    let e = fault::plan(Fault::UnderlayDrop, &lab, &topo, &t, None).unwrap_err();
    assert!(
        e.to_string().contains("routes nothing through a VXLAN device"),
        "{e}"
    );
}

#[test]
fn faults_that_need_what_the_target_lacks_say_so() {
    use ctnet_core::lab::fault::{self, Fault};
    // In the recorded faults, c3's host veth is off the bridge.
    let snap = fixture("lab-faults");
    let topo = Topology::build(&snap);
    let t = target::resolve(&snap, "c3").unwrap();
    let e = fault::plan(Fault::BridgeDown, &snap, &topo, &t, None).unwrap_err();
    assert!(e.to_string().contains("is on no bridge"), "{e}");
}

/// The same snapshot with `ip` added to the first non-lo interface of netns `ns`.
fn with_address(mut snap: Snapshot, ns: &str, ip: &str) -> Snapshot {
    let n = snap
        .netns
        .iter_mut()
        .find(|n| n.label() == ns)
        .unwrap_or_else(|| panic!("no netns {ns}"));
    let ifindex = n.links.iter().find(|l| l.name != "lo").unwrap().ifindex;
    n.addresses.push(ctnet_core::model::Address {
        ifindex,
        address: ip.parse().unwrap(),
        prefix_len: 24,
        scope: "global".into(),
        label: None,
    });
    snap
}

#[test]
fn a_duplicate_address_counts_on_the_bridge_only() {
    // c2 also holds c3's address, on the same bridge: a conflict.
    let snap = with_address(fixture("lab-healthy"), "c2", "10.50.0.4");
    let r = report(&snap, "c1", Some("c3"));
    let dup = r.checks.iter().find(|c| c.id == "address.duplicate_ip").unwrap();
    assert_eq!(dup.status, Status::Fail, "{dup:#?}");
    assert!(dup.evidence[0].contains("10.50.0.4 on eth0 in c2"), "{dup:#?}");
    // The same address in a netns on no shared segment (another lab, another world)
    // cannot answer ARP on this bridge.
    let snap = fixture("lab-healthy");
    let elsewhere = snap
        .netns
        .iter()
        .find(|n| n.key != snap.host && !n.label().starts_with('c') && n.links.iter().any(|l| l.name != "lo"))
        .map(|n| n.label());
    let elsewhere = elsewhere.expect("the recorded lab has a netns off the bridge");
    let snap = with_address(snap, &elsewhere, "10.50.0.4");
    let r = report(&snap, "c1", Some("c3"));
    assert_eq!(status(&r, "address.duplicate_ip"), Status::Pass);
}

/// Probe results recorded on a real lab (`kernel_faults`), healthy and with each fault
/// the probe must place, rendered into the `probe.path` finding.
#[test]
fn the_probe_finding_names_the_hop_from_recorded_results() {
    use ctnet_core::probe::{self, ProbeResult};
    let path = format!("{}/../fixtures/probe-lab.json", env!("CARGO_MANIFEST_DIR"));
    let all: std::collections::BTreeMap<String, ProbeResult> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let want = [
        ("healthy", Status::Pass, "3/3 echo replies from 10.77.0.3"),
        (
            "veth-down",
            Status::Fail,
            "no echo request to 10.77.0.3 left eth0@p-c1",
        ),
        ("detach", Status::Fail, "seen on eth0@p-c1, p-v1, not on p-v2"),
        (
            "forward-drop",
            Status::Fail,
            "seen on eth0@p-c1, p-v1, p-br, not on p-v2",
        ),
        (
            "stale-arp",
            Status::Fail,
            "reached eth0@p-c2 addressed to another MAC",
        ),
    ];
    let mut text = String::new();
    for (name, status, summary) in want {
        let f = probe::finding(&all[name]);
        assert_eq!((f.id.as_str(), f.category.as_str()), ("probe.path", "probe"));
        assert_eq!(f.status, status, "{name}: {f:#?}");
        assert!(f.summary.contains(summary), "{name}: {f:#?}");
        text.push_str(&format!(
            "== {name}\n{}\n",
            serde_json::to_string_pretty(&f).unwrap()
        ));
    }
    insta::assert_snapshot!("probe-findings", text);
}

/// `snap` with `ns` given a resolv.conf naming `servers`, and its sockets read (none).
fn with_resolver(mut snap: Snapshot, ns: &str, servers: &[&str]) -> Snapshot {
    let n = snap.netns.iter_mut().find(|n| n.label() == ns).unwrap();
    let mut r = ctnet_core::model::Resolver::default();
    r.path = "/proc/42/root/etc/resolv.conf".into();
    r.nameservers = servers.iter().map(|s| s.parse().unwrap()).collect();
    n.resolver = Some(r);
    n.listening = Some(Vec::new());
    snap
}

#[test]
fn dns_resolver_fails_for_a_loopback_stub_and_skips_without_a_resolv_conf() {
    let snap = fixture("lab-healthy");
    // No resolv.conf found (a bare named netns): nothing to judge, said as a skip.
    let r = report(&snap, "c1", None);
    assert_eq!(status(&r, "dns.resolver"), Status::Skip);
    // A host's systemd-resolved stub copied into the container: nothing listens there.
    let stub = with_resolver(snap.clone(), "c1", &["127.0.0.53"]);
    let r = report(&stub, "c1", None);
    let f = r.checks.iter().find(|c| c.id == "dns.resolver").unwrap();
    assert_eq!(f.status, Status::Fail, "{f:#?}");
    assert_eq!(f.category, "dns");
    assert!(f.summary.contains("127.0.0.53 udp/53"), "{}", f.summary);
    assert!(
        f.hint.as_deref().is_some_and(|h| h.contains("loopback")),
        "{f:#?}"
    );
    // An empty resolv.conf warns.
    let none = with_resolver(snap.clone(), "c1", &[]);
    assert_eq!(status(&report(&none, "c1", None), "dns.resolver"), Status::Warn);
    // Docker's embedded resolver whose nat rules were not read is not judged.
    let docker = with_resolver(snap, "c1", &["127.0.0.11"]);
    assert_eq!(status(&report(&docker, "c1", None), "dns.resolver"), Status::Skip);
}

#[test]
fn conntrack_and_neighbour_tables_warn_near_full_and_fail_full() {
    let base = fixture("lab-healthy");
    let with = |count: u64, max: u64, neigh: Option<u64>| {
        let mut s = base.clone();
        let host = s.host;
        for n in &mut s.netns {
            n.sysctls.conntrack_count = Some(if n.key == host { count } else { 1 });
            n.sysctls.conntrack_max = Some(max);
            if n.key == host {
                n.sysctls.neigh_gc_thresh3 = neigh;
            }
        }
        s
    };
    let neigh: u64 = base
        .netns
        .iter()
        .map(|n| n.neighbours.iter().filter(|e| e.ip.is_ipv4()).count() as u64)
        .sum();
    assert!(neigh > 0);
    for (count, max, want) in [
        (10, 1000, Status::Pass),
        (950, 1000, Status::Warn),
        (1000, 1000, Status::Fail),
    ] {
        let r = report(&with(count, max, None), "c1", None);
        assert_eq!(status(&r, "sysctl.conntrack_fill"), want, "{count}/{max}");
        assert_eq!(status(&r, "arp.table_fill"), Status::Skip);
    }
    for (limit, want) in [
        (neigh * 100, Status::Pass),
        (neigh + 1, Status::Warn),
        (neigh, Status::Fail),
    ] {
        let r = report(&with(1, 1000, Some(limit)), "c1", None);
        assert_eq!(status(&r, "arp.table_fill"), want, "{neigh} of {limit}");
    }
}

#[test]
fn a_host_route_inside_the_container_subnet_fails_and_one_around_it_warns() {
    let base = fixture("lab-healthy");
    let with_route = |dst: &str| {
        let mut s = base.clone();
        let host = s.host;
        let h = s.netns.iter_mut().find(|n| n.key == host).unwrap();
        let lo = h.links.iter().find(|l| l.name == "lo").map(|l| l.ifindex);
        let mut r = h
            .routes
            .iter()
            .find(|r| r.family == "inet" && r.table == 254)
            .unwrap()
            .clone();
        r.dst = dst.into();
        r.oif = lo;
        r.gateway = None;
        h.routes.push(r);
        s
    };
    assert_eq!(
        status(&report(&base, "c1", None), "route.subnet_overlap"),
        Status::Pass
    );
    let ip = base
        .netns
        .iter()
        .find(|n| n.label() == "c1")
        .unwrap()
        .addresses
        .iter()
        .find(|a| a.address.is_ipv4() && !a.address.is_loopback())
        .unwrap()
        .address;
    let r = report(&with_route(&format!("{ip}/32")), "c1", None);
    let f = r.checks.iter().find(|c| c.id == "route.subnet_overlap").unwrap();
    assert_eq!(f.status, Status::Fail, "{f:#?}");
    let r = report(&with_route("10.0.0.0/8"), "c1", None);
    assert_eq!(
        status(&r, "route.subnet_overlap"),
        Status::Warn,
        "{:#?}",
        r.checks
    );
}

#[test]
fn dns_blocked_needs_a_container_with_a_nameserver() {
    use ctnet_core::lab::fault::{self, Fault};
    let snap = fixture("lab-healthy");
    let topo = Topology::build(&snap);
    let t = target::resolve(&snap, "c1").unwrap();
    let e = fault::plan(Fault::DnsBlocked, &snap, &topo, &t, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no resolv.conf naming a nameserver"), "{e}");
}

#[test]
fn an_uplink_with_a_smaller_mtu_than_the_container_warns() {
    let base = fixture("lab-healthy");
    let with_uplink = |mtu: u32| {
        let mut s = base.clone();
        let host = s.host;
        let h = s.netns.iter_mut().find(|n| n.key == host).unwrap();
        let mut l = h.links.iter().find(|l| l.name == "br0").unwrap().clone();
        l.ifindex = 99;
        l.name = "wg0".into();
        l.kind = Some("wireguard".into());
        l.mtu = Some(mtu);
        l.bridge = None;
        h.links.push(l);
        let mut r = h
            .routes
            .iter()
            .find(|r| r.family == "inet" && r.table == 254)
            .unwrap()
            .clone();
        r.dst = "default".into();
        r.oif = Some(99);
        h.routes.push(r);
        s
    };
    // No default route: nothing to compare.
    assert!(
        report(&base, "c1", None)
            .checks
            .iter()
            .all(|c| c.id != "mtu.uplink")
    );
    assert_eq!(
        status(&report(&with_uplink(1500), "c1", None), "mtu.uplink"),
        Status::Pass
    );
    let r = report(&with_uplink(1420), "c1", None);
    let f = r.checks.iter().find(|c| c.id == "mtu.uplink").unwrap();
    assert_eq!(f.status, Status::Warn, "{f:#?}");
    assert!(
        f.summary.contains("wg0 (wireguard) has MTU 1420"),
        "{}",
        f.summary
    );
}

#[test]
fn a_probe_that_disagrees_with_the_static_trace_is_a_finding_of_its_own() {
    use ctnet_core::probe::{self, ProbeResult};
    let snap = fixture("lab-healthy");
    let t = target::resolve(&snap, "c1").unwrap();
    let c3 = snap.netns.iter().find(|n| n.label() == "c3").unwrap();
    let dst = c3
        .addresses
        .iter()
        .find_map(|a| match a.address {
            std::net::IpAddr::V4(v) if !v.is_loopback() => Some(v),
            _ => None,
        })
        .unwrap();
    let result = |answered: u32| ProbeResult {
        dst,
        dst_mac: None,
        answered,
        hops: Vec::new(),
        moved: Vec::new(),
        trace: Vec::new(),
        trace_error: None,
        flow: probe::Flow::Icmp,
        refused: 0,
        drops: Vec::new(),
        drops_error: None,
    };
    // The engine says c1 reaches c3: replies agree, silence does not.
    let agree = probe::agreement(&result(3), &snap, &t);
    assert_eq!(
        (agree.id.as_str(), agree.status),
        ("probe.agrees", Status::Pass),
        "{agree:#?}"
    );
    let differ = probe::agreement(&result(0), &snap, &t);
    assert_eq!(differ.status, Status::Fail, "{differ:#?}");
    assert!(
        differ.evidence.iter().any(|e| e.starts_with("static: reachable")),
        "{differ:#?}"
    );
    assert!(
        differ.evidence.iter().any(|e| e.starts_with("live: 0/3")),
        "{differ:#?}"
    );
}
