//! The fault matrix on real kernels: for every fault `lab break` knows, on a fresh lab,
//! the guided check reports the right category (fail, or warn where connectivity
//! survives), and `lab fix` brings the lab back to no failure. Run twice: on a lab
//! built by ctnet, and on one built with plain iproute2 commands with other names, so
//! nothing relies on ctnet's naming or records.

use std::process::Command;
use std::time::{Duration, Instant};

use ctnet_core::check::{self, Report, Status};
use ctnet_core::lab::fault::{self, Fault};
use ctnet_core::lab::{self, LabEnv, LabSpec};
use ctnet_core::source::{self, ScanOptions};
use ctnet_core::target;
use ctnet_core::topology::Topology;
use ctnet_core::world::run_test_in_world;

fn sh(script: &str) {
    let out = Command::new("sh").args(["-ec", script]).output().unwrap();
    assert!(
        out.status.success(),
        "script failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What each fault must produce: whether it uses the peer, the status and category of
/// the finding that names it.
const MATRIX: [(Fault, bool, Status, &str); 17] = [
    (Fault::VethDown, false, Status::Fail, "link"),
    (Fault::Eth0Down, false, Status::Fail, "link"),
    (Fault::Detach, false, Status::Fail, "bridge"),
    (Fault::BridgeDown, false, Status::Fail, "bridge"),
    (Fault::AgeingZero, false, Status::Warn, "bridge"),
    (Fault::WrongSubnet, true, Status::Fail, "address"),
    (Fault::NoRoute, false, Status::Fail, "route"),
    (Fault::StaleArp, true, Status::Fail, "arp"),
    (Fault::ForwardDrop, false, Status::Fail, "firewall"),
    (Fault::NoMasquerade, false, Status::Warn, "nat"),
    (Fault::Mtu, false, Status::Warn, "mtu"),
    (Fault::IpForwardOff, false, Status::Fail, "sysctl"),
    // The pair check's trace walks the native nft table too.
    (Fault::NftDrop, true, Status::Fail, "firewall"),
    // A second bridge and a DROP between the two: the pair's trace names the rule.
    (Fault::Isolation, true, Status::Fail, "path"),
    // The container answers no ARP: the pair's trace cannot resolve it either.
    (Fault::ArpIgnore, false, Status::Fail, "arp"),
    // The host's reverse-path filter drops what the container sends.
    (Fault::RpFilter, false, Status::Fail, "sysctl"),
    // The world's conntrack table filled to the host's limit: new connections die.
    (Fault::ConntrackFull, false, Status::Fail, "sysctl"),
];

/// Check `t` (and `peer`) on a full scan, and as `ctnet-diag check` does: every netns
/// read for links and addresses, then the pair's in full. Both must agree. The two
/// scans are a moment apart and a fresh lab is still learning (the FDB, neighbours),
/// so they are taken again until the state holds still, within a deadline.
fn check_now(t: &str, peer: Option<&str>) -> Report {
    let statuses =
        |r: &Report| -> Vec<(String, Status)> { r.checks.iter().map(|c| (c.id.clone(), c.status)).collect() };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let snap = source::snapshot(&ScanOptions::default()).unwrap();
        let topo = Topology::build(&snap);
        let tr = target::resolve(&snap, t).unwrap();
        let pr = peer.map(|p| target::resolve(&snap, p).unwrap());
        let full = check::run(&snap, &topo, &tr, pr.as_ref());

        let opts = ScanOptions {
            others: source::Depth::Links,
            ethtool: false,
            ..ScanOptions::default()
        };
        let mut shallow = source::snapshot(&opts).unwrap();
        let tr = target::resolve(&shallow, t).unwrap();
        let pr = peer.map(|p| target::resolve(&shallow, p).unwrap());
        let keys: Vec<_> = [tr.netns, pr.as_ref().and_then(|p| p.netns)]
            .into_iter()
            .flatten()
            .collect();
        source::deepen(&mut shallow, &keys, &ScanOptions::default()).unwrap();
        let quick_topo = Topology::build(&shallow);
        let quick = check::run(&shallow, &quick_topo, &tr, pr.as_ref());
        // `ethtool -S` is read for the pair's host veths only.
        let host = shallow.host_netns().unwrap();
        for v in &quick_topo.veths {
            let of_pair = matches!(&v.peer, ctnet_core::topology::Peer::Resolved { iface, .. } if keys.contains(&iface.netns));
            let read = host.link(v.host.ifindex).unwrap().ethtool.is_some();
            assert_eq!(read, of_pair, "ethtool -S of {}", v.host.name);
        }
        if statuses(&quick) == statuses(&full) {
            return full;
        }
        assert!(
            Instant::now() < deadline,
            "a links-only scan deepened for the pair disagrees with a full scan:\n{}\n--- full:\n{}",
            summary(&quick),
            summary(&full)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn summary(r: &Report) -> String {
    r.checks
        .iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
        .map(|c| format!("{:?} {} ({}): {}", c.status, c.id, c.category, c.summary))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Break, check, fix, check again, on a lab whose containers are `t` and `peer`.
/// `build` makes a fresh lab and `teardown` removes it.
fn run_matrix(t: &str, peer: &str, build: &dyn Fn(), teardown: &dyn Fn()) {
    let env = LabEnv::default();
    for (fault, with_peer, want, category) in MATRIX {
        build();
        let p = with_peer.then_some(peer);
        let before = check_now(t, Some(peer));
        assert_ne!(
            before.verdict,
            Status::Fail,
            "healthy lab fails:\n{}",
            summary(&before)
        );

        let snap = source::snapshot(&ScanOptions::default()).unwrap();
        let topo = Topology::build(&snap);
        let tr = target::resolve(&snap, t).unwrap();
        let pr = p.map(|p| target::resolve(&snap, p).unwrap());
        let inj = fault::plan(fault, &snap, &topo, &tr, pr.as_ref()).unwrap();
        fault::apply(&inj, &env).unwrap();

        let r = check_now(t, p);
        let name = fault.name();
        assert_eq!(r.verdict, want, "{name}: verdict\n{}", summary(&r));
        assert!(
            r.checks
                .iter()
                .any(|c| c.status == want && c.category == category),
            "{name}: no {want:?} finding in category {category}\n{}",
            summary(&r)
        );

        let (fixed, errors) = fault::fix(&env, None, None).unwrap();
        assert!(errors.is_empty(), "{name}: fix failed: {errors:?}");
        assert_eq!(fixed.len(), 1, "{name}");
        assert!(fault::applied(&env).unwrap().is_empty());
        // Links report their operstate through the kernel's linkwatch, a moment later.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = check_now(t, Some(peer));
            if r.verdict != Status::Fail {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: not healed by lab fix:\n{}",
                summary(&r)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        teardown();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_fault_on_a_ctnet_lab_is_found_and_fixed() {
    run_test_in_world("every_fault_on_a_ctnet_lab_is_found_and_fixed", || {
        let env = LabEnv::default();
        let spec = LabSpec {
            containers: 3,
            nat: true,
            ..LabSpec::new("f")
        };
        let build = || {
            let built = rt().block_on(lab::up(&spec, &env)).unwrap();
            let ip2 = built.containers[1].ip.split('/').next().unwrap().to_string();
            let ip1 = built.containers[0].ip.split('/').next().unwrap().to_string();
            sh(&format!(
                "ip netns exec f-c1 ping -c1 -W2 {ip2} >/dev/null\nip netns exec f-c2 ping -c1 -W2 {ip1} >/dev/null"
            ));
        };
        let teardown = || {
            rt().block_on(lab::down("f", &env)).unwrap();
        };
        run_matrix("f-c1", "f-c2", &build, &teardown);
    });
}

#[test]
fn every_fault_on_an_iproute2_lab_is_found_and_fixed() {
    run_test_in_world("every_fault_on_an_iproute2_lab_is_found_and_fixed", || {
        let build = || {
            sh("ip link add name lan0 type bridge\n\
                ip addr add 172.31.9.1/24 dev lan0\n\
                ip link set lan0 up\n\
                echo 1 > /proc/sys/net/ipv4/ip_forward\n\
                iptables -A FORWARD -i lan0 -j ACCEPT\n\
                iptables -A FORWARD -o lan0 -j ACCEPT\n\
                iptables -t nat -A POSTROUTING -s 172.31.9.0/24 ! -o lan0 -j MASQUERADE\n\
                for n in web db; do\n\
                  ip netns add $n\n\
                  ip link add name h-$n type veth peer name if0 netns $n\n\
                  ip link set h-$n master lan0 up\n\
                  ip -n $n link set lo up\n\
                  ip -n $n link set if0 up\n\
                done\n\
                ip -n web addr add 172.31.9.20/24 dev if0\n\
                ip -n db addr add 172.31.9.30/24 dev if0\n\
                ip -n web route add default via 172.31.9.1\n\
                ip -n db route add default via 172.31.9.1\n\
                ip netns exec web ping -c1 -W2 172.31.9.30 >/dev/null\n\
                ip netns exec db ping -c1 -W2 172.31.9.20 >/dev/null");
        };
        let teardown = || {
            // Deleting a veth takes both ends at once; a netns is cleaned up later.
            sh("ip link del h-web; ip link del h-db; ip link del lan0\n\
                ip netns del web; ip netns del db\n\
                iptables -F FORWARD; iptables -t nat -F POSTROUTING\n\
                echo 0 > /proc/sys/net/ipv4/ip_forward");
        };
        run_matrix("web", "db", &build, &teardown);
    });
}

fn probe_now(t: &str, peer: &str) -> (Report, ctnet_core::probe::ProbeResult) {
    let snap = source::snapshot(&ScanOptions::default()).unwrap();
    let topo = Topology::build(&snap);
    let tr = target::resolve(&snap, t).unwrap();
    let pr = target::resolve(&snap, peer).unwrap();
    let mut r = check::run(&snap, &topo, &tr, Some(&pr));
    let rescan = || source::snapshot(&ScanOptions::default());
    let p = ctnet_core::probe::run(&snap, &topo, &tr, Some(&pr), &rescan).unwrap();
    r.add(ctnet_core::probe::finding(&p));
    (r, p)
}

#[test]
fn the_probe_names_the_hop_where_the_packet_dies() {
    run_test_in_world("the_probe_names_the_hop_where_the_packet_dies", || {
        let env = LabEnv::default();
        let spec = LabSpec {
            containers: 2,
            nat: true,
            ..LabSpec::new("p")
        };
        let built = rt().block_on(lab::up(&spec, &env)).unwrap();
        let ip2 = built.containers[1].ip.split('/').next().unwrap().to_string();
        let mac2 = built.containers[1].mac.clone();
        sh(&format!("ip netns exec p-c1 ping -c1 -W2 {ip2} >/dev/null"));
        let mut recorded = Vec::new();
        let (r, p) = probe_now("p-c1", "p-c2");
        recorded.push(("healthy".to_string(), p.clone()));
        let f = r.checks.iter().find(|c| c.id == "probe.path").unwrap();
        assert_eq!(f.status, Status::Pass, "{f:#?}");
        assert_eq!(p.answered, ctnet_core::probe::PROBES);
        // Every hop saw every request and every reply.
        for h in &p.hops {
            assert_eq!((h.requests, h.replies), (3, 3), "{p:#?}");
        }
        assert_eq!(
            p.hops.iter().map(|h| h.hop.as_str()).collect::<Vec<_>>(),
            ["eth0@p-c1", "p-v1", "p-br", "p-v2", "eth0@p-c2"]
        );

        let br_netfilter = std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists();
        let cases: [(Fault, &str); 4] = [
            (Fault::VethDown, "no echo request to"),
            (Fault::Detach, "seen on eth0@p-c1, p-v1, not on p-v2"),
            (
                Fault::ForwardDrop,
                if br_netfilter {
                    "seen on eth0@p-c1, p-v1, p-br, not on p-v2"
                } else {
                    // Without br_netfilter iptables never sees bridged frames.
                    "3/3 echo replies"
                },
            ),
            (Fault::StaleArp, "reached eth0@p-c2 addressed to another MAC"),
        ];
        for (fault, want) in cases {
            let snap = source::snapshot(&ScanOptions::default()).unwrap();
            let topo = Topology::build(&snap);
            let tr = target::resolve(&snap, "p-c1").unwrap();
            let pr = target::resolve(&snap, "p-c2").unwrap();
            let inj = fault::plan(fault, &snap, &topo, &tr, Some(&pr)).unwrap();
            fault::apply(&inj, &env).unwrap();
            let (r, p) = probe_now("p-c1", "p-c2");
            recorded.push((fault.name().to_string(), p.clone()));
            let f = r.checks.iter().find(|c| c.id == "probe.path").unwrap();
            assert!(f.summary.contains(want), "{}: {f:#?}", fault.name());
            match fault {
                Fault::VethDown => {
                    assert!(f.summary.contains("left eth0@p-c1"), "{f:#?}");
                    assert_eq!(p.hops[0].requests, 0);
                }
                Fault::ForwardDrop if br_netfilter => assert!(
                    p.moved.iter().any(|m| m.contains("ctnet-fault -j DROP` +3")),
                    "the DROP rule's counter moved by the three probes: {p:#?}"
                ),
                Fault::StaleArp => {
                    assert_eq!(p.hops[4].misaddressed, 3, "{p:#?}");
                    assert_ne!(p.dst_mac.as_deref(), Some(fault::STALE_MAC));
                    assert_eq!(p.dst_mac.as_deref(), Some(mac2.as_str()));
                }
                _ => {}
            }
            let (_, errors) = fault::fix(&env, None, None).unwrap();
            assert!(errors.is_empty(), "{errors:?}");
            // Links report their operstate a moment later (linkwatch).
            let deadline = Instant::now() + Duration::from_secs(5);
            while check_now("p-c1", Some("p-c2")).verdict == Status::Fail {
                assert!(Instant::now() < deadline, "{} not healed", fault.name());
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        rt().block_on(lab::down("p", &env)).unwrap();
        // CTNET_RECORD_FIXTURES=$PWD/fixtures: keep these results for the pure tests.
        if let Ok(dir) = std::env::var("CTNET_RECORD_FIXTURES") {
            let doc: serde_json::Map<String, serde_json::Value> = recorded
                .into_iter()
                .map(|(k, v)| (k, serde_json::to_value(v).unwrap()))
                .collect();
            std::fs::write(
                format!("{dir}/probe-lab.json"),
                serde_json::to_string_pretty(&doc).unwrap() + "\n",
            )
            .unwrap();
        }
    });
}

/// `ip link set NAME down` reads a name such as `help` as a keyword; every step passes
/// `dev NAME`, so interfaces named like iproute2's words break and heal like any other.
#[test]
fn faults_on_interfaces_named_like_ip_keywords_break_and_heal() {
    run_test_in_world(
        "faults_on_interfaces_named_like_ip_keywords_break_and_heal",
        || {
            sh("ip link add name down type bridge\n\
            ip addr add 172.31.7.1/24 dev down\n\
            ip link set dev down up\n\
            ip netns add kw\n\
            ip link add name help type veth peer name if0 netns kw\n\
            ip link set dev help master down up\n\
            ip -n kw link set lo up\n\
            ip -n kw link set dev if0 up\n\
            ip -n kw addr add 172.31.7.2/24 dev if0");
            let env = LabEnv::default();
            let state = |dev: &str| -> (bool, Option<String>) {
                let out = Command::new("ip")
                    .args(["-j", "link", "show", "dev", dev])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let l = &v[0];
                let up = l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
                (up, l["master"].as_str().map(str::to_string))
            };
            let healthy = (state("help"), state("down"));
            assert_eq!(healthy.0, (true, Some("down".to_string())));
            for (fault, broken) in [
                (Fault::VethDown, ((false, Some("down".to_string())), (true, None))),
                (Fault::Detach, ((true, None), (true, None))),
                (
                    Fault::BridgeDown,
                    ((true, Some("down".to_string())), (false, None)),
                ),
            ] {
                let snap = source::snapshot(&ScanOptions::default()).unwrap();
                let topo = Topology::build(&snap);
                let tr = target::resolve(&snap, "kw").unwrap();
                let inj = fault::plan(fault, &snap, &topo, &tr, None).unwrap();
                fault::apply(&inj, &env).unwrap_or_else(|e| panic!("{}: {e}", fault.name()));
                assert_eq!((state("help"), state("down")), broken, "{}", fault.name());
                let (fixed, errors) = fault::fix(&env, None, None).unwrap();
                assert!(errors.is_empty(), "{}: {errors:?}", fault.name());
                assert_eq!(fixed.len(), 1);
                assert_eq!((state("help"), state("down")), healthy, "{}", fault.name());
            }
        },
    );
}

/// The threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.starts_with(prefix))
        .count()
}

#[test]
fn a_probe_that_fails_midway_leaves_no_capture_thread_behind() {
    run_test_in_world(
        "a_probe_that_fails_midway_leaves_no_capture_thread_behind",
        || {
            let env = LabEnv::default();
            let spec = LabSpec {
                containers: 2,
                ..LabSpec::new("q")
            };
            rt().block_on(lab::up(&spec, &env)).unwrap();
            // No ping can be found (this world's own mount namespace): the probe fails
            // after its captures started on every hop.
            let blank = std::env::temp_dir().join(format!("not-ping-{}", std::process::id()));
            std::fs::write(&blank, "").unwrap();
            sh(&format!("mount --bind {} /usr/bin/ping", blank.display()));
            let snap = source::snapshot(&ScanOptions::default()).unwrap();
            let topo = Topology::build(&snap);
            let tr = target::resolve(&snap, "q-c1").unwrap();
            let pr = target::resolve(&snap, "q-c2").unwrap();
            let rescan = || source::snapshot(&ScanOptions::default());
            assert_eq!(threads_named("ctnet-capture"), 0);
            let e = ctnet_core::probe::run_to(
                &snap,
                &topo,
                &tr,
                ctnet_core::probe::To::Peer(&pr),
                ctnet_core::probe::Flow::Icmp,
                false,
                &rescan,
            )
            .unwrap_err();
            assert_eq!(e.kind(), ctnet_core::ErrorKind::MissingTool, "{e}");
            assert!(e.to_string().contains("install the iputils-ping package"), "{e}");
            // Every reader was stopped and joined before the error came back.
            assert_eq!(threads_named("ctnet-capture"), 0, "capture readers left running");
            sh("umount /usr/bin/ping");
            rt().block_on(lab::down("q", &env)).unwrap();
        },
    );
}
