//! The engine on snapshots recorded from real labs.

use super::*;

fn fixture(name: &str) -> Snapshot {
    Snapshot::load(format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn netns(snap: &Snapshot, label: &str) -> NetnsKey {
    snap.netns
        .iter()
        .find(|n| n.label() == label)
        .unwrap_or_else(|| panic!("no netns {label}"))
        .key
}

fn show(t: &Trace) -> String {
    let mut s = format!("{:?}: {}\n", t.verdict, t.summary);
    for (name, hops) in [
        ("hops", &t.hops),
        ("reply", &t.reply),
        ("established", &t.established),
    ] {
        s.push_str(&format!("{name}:\n"));
        for h in hops.iter() {
            s.push_str(&format!(
                "  [{}] {} {:?} {:?} {:?} {} | {}\n",
                h.netns, h.step, h.iface, h.verdict, h.rule, h.detail, h.packet
            ));
        }
    }
    s
}

fn pair(snap: &Snapshot, a: &str, b: &str, l4: L4) -> Trace {
    let spec = FlowSpec::new(
        Source::Netns {
            netns: netns(snap, a),
            addr: None,
        },
        Destination::Netns {
            netns: netns(snap, b),
        },
        l4,
    );
    trace(snap, &spec).unwrap()
}

#[test]
fn a_healthy_bridged_pair_is_reachable_both_ways_through_the_bridge_and_forward() {
    let snap = fixture("lab-healthy.json");
    let t = pair(&snap, "c1", "c2", L4::Tcp(80));
    assert_eq!(t.verdict, Reach::Reachable, "{}", show(&t));
    let steps: Vec<&str> = t.hops.iter().map(|h| h.step.as_str()).collect();
    assert_eq!(
        steps,
        [
            "route",
            "veth",
            "bridge",
            "forward/filter/FORWARD",
            "postrouting/nat/POSTROUTING",
            "veth",
            "route",
            "deliver"
        ],
        "{}",
        show(&t)
    );
    let fwd = &t.hops[3];
    assert_eq!(fwd.rule.as_deref(), Some("-A FORWARD -i br0 -o br0 -j ACCEPT"));
    assert_eq!(fwd.rule_ref.as_ref().unwrap().counters.unwrap().packets, 8);
    assert_eq!(t.reply.last().unwrap().verdict, HopVerdict::Deliver);
    assert_eq!(t.established.last().unwrap().verdict, HopVerdict::Deliver);
    // ICMP and UDP have no handshake ACK to walk.
    assert!(pair(&snap, "c1", "c2", L4::Udp(53)).established.is_empty());
    assert!(pair(&snap, "c1", "c2", L4::Icmp).established.is_empty());
}

#[test]
fn recorded_faults_are_named_at_their_hop() {
    let snap = fixture("lab-faults.json");
    for (peer, step, words) in [
        ("c2", "bridge", "which is down"),
        ("c3", "neighbour", "not a port of bridge br0"),
        ("c4", "neighbour", "02:00:00:00:de:ad"),
    ] {
        let t = pair(&snap, "c1", peer, L4::Icmp);
        assert_eq!(t.verdict, Reach::Unreachable, "{}", show(&t));
        let last = t.hops.last().unwrap();
        assert_eq!(last.verdict, HopVerdict::Drop, "{}", show(&t));
        assert_eq!(last.step, step, "{}", show(&t));
        assert!(last.detail.contains(words), "{}", show(&t));
        assert!(t.reply.is_empty());
    }
}

#[test]
fn a_netns_read_only_in_part_is_asked_for_not_taken_for_empty() {
    let mut snap = fixture("lab-healthy.json");
    let c2 = netns(&snap, "c2");
    let c1 = netns(&snap, "c1");
    // As a `Depth::Links` scan leaves it: links and addresses, no routes or sysctls.
    let st = snap.netns.iter_mut().find(|n| n.key == c2).unwrap();
    st.routes.clear();
    st.neighbours.clear();
    st.sysctls = Default::default();
    let spec = FlowSpec::new(
        Source::Netns {
            netns: c1,
            addr: None,
        },
        Destination::Addr {
            addr: "10.50.0.3".parse().unwrap(),
        },
        L4::Icmp,
    );
    let t = trace(&snap, &spec).unwrap();
    assert_eq!(t.verdict, Reach::Ambiguous, "{}", show(&t));
    assert!(t.needs.contains(&c2), "{:?}", t.needs);
}

#[test]
fn a_bridge_with_vlan_filtering_makes_the_trace_ambiguous_not_an_allow() {
    let mut snap = fixture("lab-healthy.json");
    let host = snap.host;
    let h = snap.netns.iter_mut().find(|n| n.key == host).unwrap();
    let br = h.links.iter_mut().find(|l| l.name == "br0").unwrap();
    br.bridge.get_or_insert_with(Default::default).vlan_filtering = true;
    let t = pair(&snap, "c1", "c2", L4::Icmp);
    assert_eq!(t.verdict, Reach::Ambiguous, "{}", show(&t));
    assert!(
        t.hops
            .iter()
            .any(|h| h.verdict == HopVerdict::May && h.detail.contains("VLAN filtering is on for br0")),
        "{}",
        show(&t)
    );
}

fn host_state(snap: &mut Snapshot) -> &mut crate::model::NetnsState {
    let host = snap.host;
    snap.netns.iter_mut().find(|n| n.key == host).unwrap()
}

#[test]
fn a_dnat_to_loopback_from_a_bridge_needs_route_localnet() {
    let mut snap = fixture("lab-healthy.json");
    let fw = snap.firewall.as_mut().unwrap();
    let nat = fw.iptables[0]
        .tables
        .iter_mut()
        .find(|t| t.name == "nat")
        .unwrap();
    nat.rules.insert(
        0,
        crate::model::IptRule {
            chain: "PREROUTING".into(),
            position: 1,
            spec: "-p tcp -m tcp --dport 8080 -j DNAT --to-destination 127.0.0.1:80".into(),
            target: Some("DNAT".into()),
            packets: 0,
            bytes: 0,
            owner: crate::model::Owner::Other,
        },
    );
    let spec = |snap: &Snapshot| {
        FlowSpec::new(
            Source::Netns {
                netns: netns(snap, "c1"),
                addr: None,
            },
            Destination::Host,
            L4::Tcp(8080),
        )
    };
    host_state(&mut snap)
        .sysctls
        .conf
        .get_mut("br0")
        .unwrap()
        .route_localnet = Some(0);
    host_state(&mut snap)
        .sysctls
        .conf
        .get_mut("all")
        .unwrap()
        .route_localnet = Some(0);
    let t = trace(&snap, &spec(&snap)).unwrap();
    assert_eq!(t.verdict, Reach::Unreachable, "{}", show(&t));
    assert!(t.summary.contains("route_localnet is 0"), "{}", show(&t));
    host_state(&mut snap)
        .sysctls
        .conf
        .get_mut("br0")
        .unwrap()
        .route_localnet = Some(1);
    let t = trace(&snap, &spec(&snap)).unwrap();
    assert_eq!(t.verdict, Reach::Reachable, "{}", show(&t));
}

#[test]
fn an_on_link_host_address_of_another_interface_answers_only_with_arp_ignore_0() {
    let mut snap = fixture("lab-healthy.json");
    host_state(&mut snap).addresses.push(crate::model::Address {
        ifindex: 1,
        address: "192.0.2.99".parse().unwrap(),
        prefix_len: 32,
        scope: "global".into(),
        label: Some("lo".into()),
    });
    let c1 = netns(&snap, "c1");
    let st = snap.netns.iter_mut().find(|n| n.key == c1).unwrap();
    let eth0 = st.link_by_name("eth0").unwrap().ifindex;
    st.routes.push(crate::model::Route {
        family: "inet".into(),
        table: 254,
        dst: "192.0.2.99".into(),
        oif: Some(eth0),
        kind: "unicast".into(),
        scope: "link".into(),
        ..Default::default()
    });
    let spec = FlowSpec::new(
        Source::Netns {
            netns: c1,
            addr: None,
        },
        Destination::Addr {
            addr: "192.0.2.99".parse().unwrap(),
        },
        L4::Icmp,
    );
    let t = trace(&snap, &spec).unwrap();
    assert_eq!(t.verdict, Reach::Reachable, "{}", show(&t));
    host_state(&mut snap)
        .sysctls
        .conf
        .get_mut("all")
        .unwrap()
        .arp_ignore = Some(1);
    let t = trace(&snap, &spec).unwrap();
    assert_eq!(t.verdict, Reach::Unreachable, "{}", show(&t));
    assert!(t.summary.contains("arp_ignore is 1 on br0"), "{}", show(&t));
}

#[test]
fn with_the_sockets_read_a_port_nobody_listens_on_is_refused() {
    let mut snap = fixture("lab-healthy.json");
    let c2 = netns(&snap, "c2");
    let set = |snap: &mut Snapshot, l: Option<Vec<crate::model::Listener>>| {
        snap.netns.iter_mut().find(|n| n.key == c2).unwrap().listening = l;
    };
    set(&mut snap, Some(Vec::new()));
    let t = pair(&snap, "c1", "c2", L4::Tcp(80));
    assert_eq!(t.verdict, Reach::Unreachable, "{}", show(&t));
    assert!(t.summary.contains("nothing listens on tcp/80"), "{}", show(&t));
    assert_eq!(t.hops.last().unwrap().verdict, HopVerdict::Reject);
    // ICMP needs no socket.
    assert_eq!(pair(&snap, "c1", "c2", L4::Icmp).verdict, Reach::Reachable);
    let any = |proto: &str, addr: &str, port| crate::model::Listener {
        proto: proto.into(),
        addr: addr.parse().unwrap(),
        port,
    };
    // A wildcard socket, v4 or v6 (dual-stack), accepts.
    for l in [
        any("tcp", "0.0.0.0", 80),
        any("tcp", "::", 80),
        any("tcp", "10.50.0.3", 80),
    ] {
        set(&mut snap, Some(vec![l]));
        let t = pair(&snap, "c1", "c2", L4::Tcp(80));
        assert_eq!(t.verdict, Reach::Reachable, "{}", show(&t));
        assert!(
            !t.assumptions.iter().any(|a| a.contains("listens")),
            "{:?}",
            t.assumptions
        );
    }
    // Another address, another protocol: refused.
    set(
        &mut snap,
        Some(vec![any("tcp", "127.0.0.1", 80), any("udp", "0.0.0.0", 80)]),
    );
    assert_eq!(pair(&snap, "c1", "c2", L4::Tcp(80)).verdict, Reach::Unreachable);
    // Not read: assumed, and said.
    set(&mut snap, None);
    let t = pair(&snap, "c1", "c2", L4::Tcp(80));
    assert_eq!(t.verdict, Reach::Reachable);
    assert!(
        t.assumptions.iter().any(|a| a.contains("listens")),
        "{:?}",
        t.assumptions
    );
}
