//! Pure tests of the topology join, from snapshots recorded on real kernels
//! (fixtures/README.md says how each was recorded). No privilege needed.

use ctnet_core::model::{Owner, Snapshot};
use ctnet_core::topology::{Peer, Role, Topology};
use ctnet_core::vocab::NeighState;
use ctnet_core::vocab::PortState;

fn fixture(name: &str) -> Snapshot {
    Snapshot::load(format!("{}/../fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn peer_netns(p: &Peer) -> &str {
    match p {
        Peer::Resolved { iface, .. } => &iface.netns_label,
        other => panic!("unresolved peer {other:?}"),
    }
}

#[test]
fn healthy_lab_joins_every_veth_to_its_container_bridge_and_fdb() {
    let snap = fixture("lab-healthy");
    let topo = Topology::build(&snap);
    assert_eq!(topo.veths.len(), 4);
    for (i, v) in topo.veths.iter().enumerate() {
        let n = i + 1;
        assert_eq!(v.host.name, format!("vc{n}"));
        assert_eq!(v.bridge.as_deref(), Some("br0"));
        assert_eq!(v.port_state, Some(PortState::Forwarding));
        assert_eq!(peer_netns(&v.peer), format!("c{n}"));
        assert!(matches!(v.peer, Peer::Resolved { confirmed: true, .. }));
        // ethtool's peer_ifindex says the same as netlink.
        if let Peer::Resolved { iface, .. } = &v.peer {
            assert_eq!(v.ethtool_peer_ifindex, Some(u64::from(iface.ifindex)));
        }
    }
    let br = &topo.bridges[0];
    assert_eq!(br.iface.name, "br0");
    assert_eq!(br.ips[0], "10.50.0.1/24");
    assert_eq!(br.ageing_time_cs, 30000);
    for n in 1..=4 {
        let c = topo.netns.iter().find(|x| x.label == format!("c{n}")).unwrap();
        assert_eq!(c.role, Role::Container);
        let eth0 = &c.ifaces[0];
        assert_eq!(eth0.iface.name, "eth0");
        assert!(eth0.ips.contains(&format!("10.50.0.{}/24", n + 1)));
        assert_eq!(eth0.gateway.map(|g| g.to_string()).as_deref(), Some("10.50.0.1"));
        let hit = eth0.fdb.as_ref().expect("learned after the pings");
        assert_eq!(hit.port, format!("vc{n}"));
        assert!(!hit.is_local && hit.age_s.is_some());
    }
    let lonely = topo.netns.iter().find(|x| x.label == "lonely").unwrap();
    assert_eq!(lonely.role, Role::Isolated);
    // The host's firewall, with the lab's FORWARD rule and MASQUERADE.
    let fw = snap.firewall.as_ref().unwrap();
    let rules: Vec<_> = fw
        .iptables
        .iter()
        .flat_map(|d| d.tables.iter())
        .flat_map(|t| &t.rules)
        .collect();
    assert!(rules.iter().any(|r| r.chain == "FORWARD" && r.packets > 0));
    assert!(rules.iter().any(|r| r.target.as_deref() == Some("MASQUERADE")));
}

#[test]
fn faulty_lab_shows_each_fault_truthfully() {
    let snap = fixture("lab-faults");
    let topo = Topology::build(&snap);
    let veth = |name: &str| topo.veths.iter().find(|v| v.host.name == name).unwrap();
    // vc2 down: admin down, port disabled.
    assert!(!veth("vc2").up);
    assert_eq!(veth("vc2").port_state, Some(PortState::Disabled));
    // vc3 off the bridge: no bridge, c3 still joined to it.
    assert_eq!(veth("vc3").bridge, None);
    let c3 = topo.netns.iter().find(|x| x.label == "c3").unwrap();
    assert_eq!(c3.ifaces[0].bridge, None);
    assert_eq!(c3.ifaces[0].host_veth.as_ref().unwrap().name, "vc3");
    // ageing 0: the bridge forgets every learned MAC.
    assert_eq!(topo.bridges[0].ageing_time_cs, 0);
    assert!(topo.bridges[0].fdb.iter().all(|e| e.is_local));
    // A stale ARP entry in c1 for c4's address, with a MAC that is not c4's.
    let c1 = snap.netns.iter().find(|n| n.label() == "c1").unwrap();
    let stale = c1
        .neighbours
        .iter()
        .find(|n| n.ip.to_string() == "10.50.0.5")
        .unwrap();
    assert_eq!(stale.state, NeighState::Permanent);
    let c4_mac = topo.netns.iter().find(|x| x.label == "c4").unwrap().ifaces[0]
        .mac
        .clone();
    assert_ne!(stale.mac, c4_mac);
    // A veth into a netns nobody named: found through its process.
    assert!(peer_netns(&veth("vhidden").peer).starts_with("pid:"));
}

#[test]
fn docker_host_shows_containers_networks_and_docker_rules() {
    let snap = fixture("docker-host");
    assert_eq!(snap.hostname, "docker-host");
    let topo = Topology::build(&snap);
    assert_eq!(topo.veths.len(), 3);
    let bridges: Vec<&str> = topo.bridges.iter().map(|b| b.iface.name.as_str()).collect();
    assert!(bridges.contains(&"docker0"));
    assert!(bridges.iter().any(|b| b.starts_with("br-")));
    // api1 is on two networks: one netns, two interfaces on two bridges.
    let multi = topo
        .netns
        .iter()
        .find(|n| n.ifaces.len() == 2)
        .expect("the container on two networks");
    let mut on: Vec<&str> = multi.ifaces.iter().filter_map(|i| i.bridge.as_deref()).collect();
    on.sort();
    assert_eq!(on.len(), 2);
    assert!(on[0].starts_with("br-"), "{on:?}");
    assert_eq!(on[1], "docker0");
    assert_eq!(multi.containers, ["api1"]);
    // Every container the engine knew, tied to the netns it uses.
    let names: Vec<&str> = snap.containers.iter().map(|c| c.name.as_str()).collect();
    for want in ["api1", "host1", "none1", "side1", "stopped1", "web1"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let by = |n: &str| snap.containers.iter().find(|c| c.name == n).unwrap();
    assert_eq!(by("side1").netns, by("web1").netns);
    assert_eq!(by("side1").shares_netns_of.as_deref(), Some("web1"));
    assert_eq!(by("host1").netns, Some(snap.host));
    assert_eq!(by("stopped1").netns, None);
    assert!(
        by("api1")
            .ports
            .iter()
            .any(|p| p.host_port == Some(8080) && p.container_port == 80)
    );
    // --network none: only lo.
    assert_eq!(topo.netns.iter().filter(|n| n.role == Role::Isolated).count(), 1);
    // container:web1 shares web1's netns: one netns, two pids.
    assert!(
        topo.netns
            .iter()
            .any(|n| n.names.len() == 2 && n.role == Role::Container)
    );
    let fw = snap.firewall.as_ref().unwrap();
    let rules: Vec<_> = fw
        .iptables
        .iter()
        .flat_map(|d| d.tables.iter())
        .flat_map(|t| &t.rules)
        .collect();
    let dnat = rules
        .iter()
        .find(|r| r.target.as_deref() == Some("DNAT"))
        .unwrap();
    assert!(dnat.spec.contains("--dport 8080"));
    assert_eq!(dnat.owner, Owner::Docker);
}

#[test]
fn fixtures_round_trip_through_json() {
    for name in ["lab-healthy", "lab-faults", "docker-host"] {
        let snap = fixture(name);
        let back = Snapshot::from_json(&snap.to_json()).unwrap();
        assert_eq!(back, snap, "{name}");
    }
}

#[test]
fn every_netns_says_who_owns_it_even_in_a_file_written_before_owners() {
    let owners = |snap: &Snapshot| -> Vec<String> {
        let mut v: Vec<String> = snap
            .netns
            .iter()
            .map(|n| n.owner.as_ref().map_or("none".into(), |o| o.describe()))
            .collect();
        v.sort();
        v
    };
    // docker-host.json is v1: no owner in the file, said from its containers.
    let docker = fixture("docker-host");
    let o = owners(&docker);
    for want in ["docker container web1", "docker container api1", "host"] {
        assert!(o.iter().any(|x| x == want), "{want} not in {o:?}");
    }
    // side1 shares web1's netns: web1 owns it, and side1 owns none.
    assert!(!o.iter().any(|x| x.contains("side1")), "{o:?}");
    assert!(!o.contains(&"none".to_string()), "{o:?}");
    // A lab's named netns with no container: plain, by name.
    let lab = fixture("lab-healthy");
    let o = owners(&lab);
    assert!(
        o.contains(&"plain netns c1".to_string()) && o.contains(&"plain netns lonely".to_string()),
        "{o:?}"
    );
    // Written and read back, the owners are the file's.
    let again = Snapshot::from_json(&docker.to_json()).unwrap();
    assert_eq!(owners(&again), owners(&docker));
}
