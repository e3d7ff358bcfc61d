//! Kernel tests: real netns, bridges, veths and iptables rules, each test inside its
//! own fresh rootless world, checked against iproute2 and iptables-save as ground truth.

use std::collections::BTreeSet;
use std::process::Command;

use ctnet_core::ErrorKind;
use ctnet_core::lab::{self, LabEnv, LabSpec};
use ctnet_core::netns::{self, Netns, NetnsKey};
use ctnet_core::world::run_test_in_world;
use serde_json::Value;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> Value {
    let text = sh(args);
    if text.trim().is_empty() {
        return Value::Array(vec![]);
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

fn by_name<'a>(links: &'a Value, name: &str) -> &'a Value {
    links
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["ifname"] == name)
        .unwrap_or_else(|| panic!("no link {name} in {links:#}"))
}

/// `iptables-save` with counters zeroed: traffic moves counters, configuration does not.
fn ruleset() -> String {
    sh(&["iptables-save"])
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let l = match l.split_once(" [") {
                Some((chain, _)) if l.starts_with(':') => chain.to_string(),
                _ => l.to_string(),
            };
            match l.strip_prefix('[').and_then(|r| r.split_once("] ")) {
                Some((_, rest)) => rest.to_string(),
                None => l,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything a lab may touch, as iproute2 and iptables-save show it.
#[derive(Debug, PartialEq)]
struct HostState {
    links: Value,
    netns: String,
    rules: String,
    ip_forward: String,
}

/// Drop fields that move on their own (bridge and port timers).
fn without_timers(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !k.contains("timer"))
                .map(|(k, v)| (k, without_timers(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_timers).collect()),
        other => other,
    }
}

fn host_state() -> HostState {
    HostState {
        links: without_timers(json(&["ip", "-j", "-d", "link"])),
        netns: sh(&["ip", "netns", "list"]),
        rules: ruleset(),
        ip_forward: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
    }
}

/// Assert two states are equal, showing only the lines that differ.
#[track_caller]
fn assert_same(now: &HostState, then: &HostState, what: &str) {
    if now == then {
        return;
    }
    let show = |s: &HostState| {
        format!(
            "{}\nnetns: {}\nrules:\n{}\nip_forward: {}",
            serde_json::to_string_pretty(&s.links).unwrap(),
            s.netns,
            s.rules,
            s.ip_forward
        )
    };
    let (a, b) = (show(now), show(then));
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let only_now: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_then: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
    panic!("{what}: state differs\n now only: {only_now:#?}\n then only: {only_then:#?}");
}

fn ping(netns: &str, ip: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", netns, "ping", "-c1", "-W2", "-n", ip])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn lab_up_builds_what_iproute2_sees_and_down_restores_everything() {
    run_test_in_world(
        "lab_up_builds_what_iproute2_sees_and_down_restores_everything",
        || {
            let rt = rt();
            let env = LabEnv::default();
            let before = host_state();
            let spec = LabSpec {
                name: "t".into(),
                containers: 3,
                subnet: "10.9.0.0/24".parse().unwrap(),
                nat: true,
            };
            let built = rt.block_on(lab::up(&spec, &env)).unwrap();
            assert_eq!(built.containers.len(), 3);

            let links = json(&["ip", "-j", "-d", "link"]);
            let br = by_name(&links, "t-br");
            assert_eq!(br["linkinfo"]["info_kind"], "bridge");
            assert_eq!(br["ifalias"], "ctnet-lab:t");
            assert!(br["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
            let netns_ids: Value = json(&["ip", "-j", "netns", "list"]);
            for (i, c) in built.containers.iter().enumerate() {
                let n = i + 1;
                assert_eq!(c.netns, format!("t-c{n}"));
                let host = by_name(&links, &format!("t-v{n}"));
                assert_eq!(host["linkinfo"]["info_kind"], "veth");
                assert_eq!(host["master"], "t-br");
                assert_eq!(host["operstate"], "UP", "{host:#}");
                // The peer lives in t-cN: the nsid the host reports for it is t-cN's id.
                let nsid = &host["link_netnsid"];
                let ns_entry = netns_ids
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["name"] == c.netns.as_str())
                    .unwrap();
                assert_eq!(&ns_entry["id"], nsid, "peer of t-v{n} not in {}", c.netns);

                let inner = json(&["ip", "-n", &c.netns, "-j", "-d", "link"]);
                let eth0 = by_name(&inner, "eth0");
                assert_eq!(eth0["linkinfo"]["info_kind"], "veth");
                assert_eq!(eth0["link_index"], host["ifindex"], "eth0 peer is t-v{n}");
                assert_eq!(host["link_index"], eth0["ifindex"], "t-v{n} peer is eth0");
                assert_eq!(eth0["address"], c.mac.as_str());
                assert_eq!(eth0["operstate"], "UP");
                assert!(
                    by_name(&inner, "lo")["flags"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|f| f == "UP")
                );

                let addrs = json(&["ip", "-n", &c.netns, "-j", "addr", "show", "dev", "eth0"]);
                let v4: Vec<String> = addrs[0]["addr_info"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|a| a["family"] == "inet")
                    .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
                    .collect();
                assert_eq!(v4, [format!("10.9.0.{}/24", n + 1)]);
                assert_eq!(c.ip, format!("10.9.0.{}/24", n + 1));

                let routes = json(&["ip", "-n", &c.netns, "-j", "route"]);
                let default = routes
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["dst"] == "default")
                    .unwrap_or_else(|| panic!("no default route in {}: {routes:#}", c.netns));
                assert_eq!(default["gateway"], "10.9.0.1");
                assert_eq!(default["dev"], "eth0");
            }
            let ports = json(&["bridge", "-j", "link"]);
            let on_bridge: BTreeSet<&str> = ports
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["master"] == "t-br" && p["state"] == "forwarding")
                .map(|p| p["ifname"].as_str().unwrap())
                .collect();
            assert_eq!(on_bridge, BTreeSet::from(["t-v1", "t-v2", "t-v3"]));

            let gw = json(&["ip", "-j", "addr", "show", "dev", "t-br"]);
            assert_eq!(gw[0]["addr_info"][0]["local"], "10.9.0.1");
            let rules = sh(&["iptables-save"]);
            assert_eq!(rules.matches("ctnet-lab:t").count(), 3, "{rules}");
            assert!(
                rules.contains("-A POSTROUTING -s 10.9.0.0/24 ! -o t-br"),
                "{rules}"
            );
            assert_eq!(
                std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                    .unwrap()
                    .trim(),
                "1"
            );

            // Before any traffic: the bridge learned every container's MAC from its
            // announcement, IPv6 is off inside (no link-local address, no multicast
            // chatter), and nothing was dropped on either end of any veth.
            let fdb = json(&["bridge", "-j", "fdb", "show", "br", "t-br"]);
            for (i, c) in built.containers.iter().enumerate() {
                let n = i + 1;
                assert!(
                    fdb.as_array()
                        .unwrap()
                        .iter()
                        .any(|e| e["mac"] == c.mac.as_str() && e["ifname"] == format!("t-v{n}").as_str()),
                    "t-br learned {} on t-v{n}: {fdb:#}",
                    c.mac
                );
                let v6 = json(&["ip", "-n", &c.netns, "-j", "-6", "addr"]);
                assert!(
                    v6.as_array()
                        .unwrap()
                        .iter()
                        .all(|l| l["addr_info"].as_array().is_none_or(|a| a.is_empty())),
                    "no IPv6 address in {}: {v6:#}",
                    c.netns
                );
                let stats = json(&["ip", "-n", &c.netns, "-j", "-s", "link", "show", "eth0"]);
                let host_stats = json(&["ip", "-j", "-s", "link", "show", &format!("t-v{n}")]);
                for (what, st) in [("eth0", &stats[0]), ("host end", &host_stats[0])] {
                    assert_eq!(st["stats64"]["rx"]["dropped"], 0, "{} {what}: {st:#}", c.netns);
                    assert_eq!(st["stats64"]["tx"]["dropped"], 0, "{} {what}: {st:#}", c.netns);
                }
            }
            assert_eq!(
                sh(&[
                    "ip",
                    "netns",
                    "exec",
                    "t-c1",
                    "cat",
                    "/proc/sys/net/ipv6/conf/all/disable_ipv6"
                ])
                .trim(),
                "1"
            );

            assert!(ping("t-c1", "10.9.0.3"), "t-c1 -> t-c2");
            assert!(ping("t-c3", "10.9.0.2"), "t-c3 -> t-c1");
            assert!(ping("t-c2", "10.9.0.1"), "t-c2 -> gateway");

            let listed = rt.block_on(lab::list(&env)).unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(
                (listed[0].veths, listed[0].netns, listed[0].partial),
                (3, 3, false)
            );

            let report = rt.block_on(lab::down("t", &env)).unwrap();
            assert!(report.failures.is_empty(), "{:?}", report.failures);
            assert_eq!(report.veths, ["t-v1", "t-v2", "t-v3"]);
            assert_eq!(report.bridges, ["t-br"]);
            assert_eq!(report.netns, ["t-c1", "t-c2", "t-c3"]);
            assert_eq!(report.rules.len(), 3);
            assert_eq!(report.ip_forward_restored.as_deref(), Some("0"));
            assert_same(&host_state(), &before, "state");

            let again = rt.block_on(lab::down("t", &env)).unwrap();
            assert!(again.nothing_found() && again.failures.is_empty(), "{again:?}");
            assert!(rt.block_on(lab::list(&env)).unwrap().is_empty());
        },
    );
}

#[test]
fn lab_up_refuses_taken_names_before_creating_anything() {
    run_test_in_world("lab_up_refuses_taken_names_before_creating_anything", || {
        let rt = rt();
        let env = LabEnv::default();
        // Someone else's interface holds the name container 3's veth needs.
        sh(&[
            "ip", "link", "add", "name", "t-v3", "type", "veth", "peer", "name", "other0",
        ]);
        let before = host_state();
        let mut spec = LabSpec::new("t");
        spec.containers = 6;
        spec.nat = true;
        let err = rt.block_on(lab::up(&spec, &env)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("interface t-v3 already exists") && text.contains("not a ctnet lab's"),
            "{text}"
        );
        assert_same(&host_state(), &before, "state");
        // The foreign interface is untouched, and lab down leaves it alone too.
        let report = rt.block_on(lab::down("t", &env)).unwrap();
        assert!(report.nothing_found(), "{report:?}");
        sh(&["ip", "link", "del", "t-v3"]);

        // A netns with a lab's name: refused, named, nothing made.
        sh(&["ip", "netns", "add", "t-c2"]);
        let before = host_state();
        let err = rt.block_on(lab::up(&spec, &env)).unwrap_err();
        assert!(err.to_string().contains("netns t-c2 already exists"), "{err}");
        assert_same(&host_state(), &before, "state");

        // A subnet that overlaps a route here.
        sh(&["ip", "netns", "del", "t-c2"]);
        sh(&["ip", "addr", "add", "10.77.9.1/16", "dev", "lo"]);
        let err = rt.block_on(lab::up(&spec, &env)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(
            err.to_string().contains("overlaps the route 10.77.0.0/16"),
            "{err}"
        );
    });
}

#[test]
fn lab_up_failing_at_the_firewall_rolls_back_the_containers() {
    run_test_in_world("lab_up_failing_at_the_firewall_rolls_back_the_containers", || {
        let before = host_state();
        let rt = rt();
        // No iptables tools where the lab looks: the NAT step fails after the bridge and
        // every container exist, and all of it must go again.
        let env = LabEnv {
            tool_path: "/nonexistent".into(),
            ..LabEnv::default()
        };
        let mut spec = LabSpec::new("t");
        spec.containers = 5;
        spec.nat = true;
        let err = rt.block_on(lab::up(&spec, &env)).unwrap_err();
        assert!(err.to_string().contains("iptables-restore"), "{err}");
        assert_eq!(err.kind(), ErrorKind::MissingTool, "{err}");
        assert_same(&host_state(), &before, "state");
        assert!(
            !std::path::Path::new("/run/ctnet/labs/t.json").exists(),
            "lab record left behind"
        );
    });
}

#[test]
fn lab_down_removes_only_what_it_can_prove_is_the_labs() {
    run_test_in_world("lab_down_removes_only_what_it_can_prove_is_the_labs", || {
        let rt = rt();
        let env = LabEnv::default();
        let before = host_state();
        let mut spec = LabSpec::new("t");
        spec.containers = 2;
        rt.block_on(lab::up(&spec, &env)).unwrap();
        // A stranger named like the lab's netns, and the lab's record lost.
        sh(&["ip", "netns", "add", "t-c9"]);
        std::fs::remove_file("/run/ctnet/labs/t.json").unwrap();
        let report = rt.block_on(lab::down("t", &env)).unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        // Without a record the lab's netns are still proven by their veths.
        assert_eq!(report.netns, ["t-c1", "t-c2"]);
        assert_eq!(report.veths, ["t-v1", "t-v2"]);
        assert!(report.left_alone.iter().any(|l| l.contains("t-c9")), "{report:?}");
        assert_eq!(sh(&["ip", "netns", "list"]).trim(), "t-c9");
        sh(&["ip", "netns", "del", "t-c9"]);
        assert_same(&host_state(), &before, "state");
    });
}

#[test]
fn ip_forward_goes_back_only_when_the_last_nat_lab_goes() {
    run_test_in_world("ip_forward_goes_back_only_when_the_last_nat_lab_goes", || {
        let rt = rt();
        let env = LabEnv::default();
        let before = host_state();
        let fwd = || {
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(fwd(), "0");
        let mut a = LabSpec::new("a");
        a.nat = true;
        let mut b = LabSpec::new("b");
        b.nat = true;
        b.subnet = "10.78.0.0/24".parse().unwrap();
        rt.block_on(lab::up(&a, &env)).unwrap();
        rt.block_on(lab::up(&b, &env)).unwrap();
        let ra = rt.block_on(lab::down("a", &env)).unwrap();
        assert!(ra.failures.is_empty(), "{:?}", ra.failures);
        assert_eq!(fwd(), "1", "lab b still forwards");
        assert!(ping("b-c1", "10.78.0.3"));
        let rb = rt.block_on(lab::down("b", &env)).unwrap();
        assert!(rb.failures.is_empty(), "{:?}", rb.failures);
        assert_eq!(rb.ip_forward_restored.as_deref(), Some("0"));
        assert_same(&host_state(), &before, "state");
    });
}

#[test]
fn lab_down_refuses_a_lab_built_in_another_netns() {
    run_test_in_world("lab_down_refuses_a_lab_built_in_another_netns", || {
        let rt = rt();
        let env = LabEnv::default();
        rt.block_on(lab::up(&LabSpec::new("t"), &env)).unwrap();
        let other = netns::create_named("/run/netns", "elsewhere").unwrap();
        let during = host_state();
        let report = other
            .run(|| {
                let local = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                local.block_on(lab::down("t", &LabEnv::default())).unwrap()
            })
            .unwrap();
        assert!(
            report
                .failures
                .iter()
                .any(|f| f.contains("another network namespace")),
            "{report:?}"
        );
        assert!(report.nothing_found());
        assert_same(&host_state(), &during, "nothing touched");
    });
}

#[test]
fn lab_up_refuses_a_lab_that_exists_and_leaves_it_alone() {
    run_test_in_world("lab_up_refuses_a_lab_that_exists_and_leaves_it_alone", || {
        let rt = rt();
        let env = LabEnv::default();
        let spec = LabSpec::new("t");
        rt.block_on(lab::up(&spec, &env)).unwrap();
        // Let the new bridge settle (its operstate turns UP once ports forward).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while by_name(&json(&["ip", "-j", "link"]), "t-br")["operstate"] != "UP" {
            assert!(std::time::Instant::now() < deadline, "bridge t-br never came up");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let during = host_state();
        let err = rt.block_on(lab::up(&spec, &env)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("lab down --name t"), "{err}");
        assert_same(&host_state(), &during, "state");
        // A second lab with another name coexists, and down removes only its own.
        let mut other = LabSpec::new("u");
        other.subnet = "10.78.0.0/24".parse().unwrap();
        rt.block_on(lab::up(&other, &env)).unwrap();
        let report = rt.block_on(lab::down("u", &env)).unwrap();
        assert_eq!(report.netns, ["u-c1", "u-c2", "u-c3"]);
        assert_same(&host_state(), &during, "state");
        assert!(ping("t-c1", "10.77.0.4"));
    });
}

#[test]
fn named_netns_are_created_without_fork_and_deleted() {
    run_test_in_world("named_netns_are_created_without_fork_and_deleted", || {
        let me = NetnsKey::of_current_thread().unwrap();
        let ns = netns::create_named("/run/netns", "n1").unwrap();
        assert_ne!(ns.key(), me, "a new netns, not ours");
        assert_eq!(sh(&["ip", "netns", "list"]).trim(), "n1");
        // iproute2 sees the same netns through the bind mount.
        let via_path = NetnsKey::of_path(std::path::Path::new("/run/netns/n1")).unwrap();
        assert_eq!(via_path, ns.key());
        let inside = ns.run(|| NetnsKey::of_current_thread().unwrap()).unwrap();
        assert_eq!(inside, ns.key());
        let err = netns::create_named("/run/netns", "n1").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        netns::delete_named("/run/netns", "n1").unwrap();
        assert_eq!(sh(&["ip", "netns", "list"]).trim(), "");
        assert_eq!(
            netns::delete_named("/run/netns", "n1").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(NetnsKey::of_current_thread().unwrap(), me);
    });
}

#[test]
fn every_thread_stays_in_its_netns_after_heavy_use() {
    run_test_in_world("every_thread_stays_in_its_netns_after_heavy_use", || {
        let home = NetnsKey::of_current_thread().unwrap();
        let rt = rt();
        let spaces: Vec<Netns> = (0..16)
            .map(|i| netns::create_named("/run/netns", &format!("h{i}")).unwrap())
            .collect();
        // Many concurrent entries from tokio workers, blocking-pool threads and plain
        // threads, each opening a netlink socket and a child process in its netns.
        rt.block_on(async {
            let mut tasks = Vec::new();
            for round in 0..8 {
                for ns in &spaces {
                    let ns = ns.clone();
                    let handle = tokio::runtime::Handle::current();
                    tasks.push(tokio::task::spawn_blocking(move || {
                        let inside = ns.run(|| NetnsKey::of_current_thread().unwrap()).unwrap();
                        assert_eq!(inside, ns.key());
                        let h = ns.rtnetlink(&handle, round % 2 == 0).unwrap();
                        (ns, h)
                    }));
                }
            }
            for t in tasks {
                let (ns, h) = t.await.unwrap();
                use futures::TryStreamExt;
                let links: Vec<_> = h.link().get().execute().try_collect().await.unwrap();
                // A fresh netns has only lo: the socket really lives in that netns.
                assert_eq!(links.len(), 1, "netns {}", ns.label());
            }
        });
        std::thread::scope(|s| {
            for ns in &spaces {
                s.spawn(move || {
                    let out = ns
                        .run(|| Command::new("ip").args(["-br", "link"]).output().unwrap())
                        .unwrap();
                    let text = String::from_utf8_lossy(&out.stdout);
                    assert_eq!(text.lines().count(), 1, "{text}");
                });
            }
        });
        let threads = netns::thread_netns_keys().unwrap();
        assert!(threads.len() >= 3, "runtime threads are alive: {threads:?}");
        for (tid, key) in threads {
            assert_eq!(key, home, "thread {tid} was left in another netns");
        }
        for i in 0..16 {
            netns::delete_named("/run/netns", &format!("h{i}")).unwrap();
        }
    });
}

#[test]
fn concurrent_lab_ups_on_one_subnet_build_one_lab() {
    run_test_in_world("concurrent_lab_ups_on_one_subnet_build_one_lab", || {
        let rt = rt();
        let env = LabEnv::default();
        let names = ["a", "b", "c", "d"];
        // Every `up` starts before any has built: only the lock keeps them apart.
        let results = rt.block_on(futures::future::join_all(names.iter().map(|n| {
            let env = env.clone();
            let spec = LabSpec {
                containers: 4,
                ..LabSpec::new(*n)
            };
            async move { lab::up(&spec, &env).await }
        })));
        let built: Vec<&str> = names
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(built.len(), 1, "labs built on 10.77.0.0/24: {built:?}");
        for r in &results {
            if let Err(e) = r {
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                assert!(e.to_string().contains("overlaps"), "{e}");
            }
        }
        // One bridge holds the gateway.
        let addrs = json(&["ip", "-j", "-4", "addr"]);
        let holders: Vec<&str> = addrs
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| {
                l["addr_info"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["local"] == "10.77.0.1")
            })
            .map(|l| l["ifname"].as_str().unwrap())
            .collect();
        assert_eq!(holders, [format!("{}-br", built[0])]);
    });
}

#[test]
fn lab_up_refuses_a_subnet_another_labs_record_holds() {
    run_test_in_world("lab_up_refuses_a_subnet_another_labs_record_holds", || {
        let rt = rt();
        let env = LabEnv::default();
        rt.block_on(lab::up(&LabSpec::new("t"), &env)).unwrap();
        // Its bridge gone (by hand, say): the record still holds the subnet.
        sh(&["ip", "link", "del", "t-br"]);
        let mut spec = LabSpec::new("u");
        spec.subnet = "10.77.0.0/25".parse().unwrap();
        let err = rt.block_on(lab::up(&spec, &env)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(
            err.to_string()
                .contains("overlaps lab t's 10.77.0.0/24 (record /run/ctnet/labs/t.json)"),
            "{err}"
        );
    });
}

#[test]
fn lab_down_refuses_a_corrupt_record_and_force_removes_what_the_tags_prove() {
    run_test_in_world(
        "lab_down_refuses_a_corrupt_record_and_force_removes_what_the_tags_prove",
        || {
            let rt = rt();
            let env = LabEnv::default();
            let before = host_state();
            let mut spec = LabSpec::new("t");
            spec.containers = 2;
            spec.nat = true;
            rt.block_on(lab::up(&spec, &env)).unwrap();
            let record = "/run/ctnet/labs/t.json";
            std::fs::write(record, "{\"schema\": \"ctnet.lab-record/v1\", \"spec\": ").unwrap();
            let during = host_state();
            let err = rt.block_on(lab::down("t", &env)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            let text = err.to_string();
            assert!(
                text.contains(record) && text.contains("is not a lab record") && text.contains("--force"),
                "{text}"
            );
            assert_same(&host_state(), &during, "nothing removed");
            let listed = rt.block_on(lab::list(&env)).unwrap();
            assert_eq!(listed.len(), 1, "{listed:?}");
            assert!(
                listed[0].partial
                    && listed[0]
                        .record_error
                        .as_deref()
                        .is_some_and(|e| e.contains(record)),
                "{listed:?}"
            );

            let report = rt
                .block_on(lab::down_with("t", &env, lab::DownOptions { force: true }))
                .unwrap();
            assert!(report.failures.is_empty(), "{:?}", report.failures);
            assert_eq!(report.veths, ["t-v1", "t-v2"]);
            assert_eq!(report.bridges, ["t-br"]);
            assert_eq!(report.netns, ["t-c1", "t-c2"]);
            assert_eq!(report.rules.len(), 3);
            assert!(
                report
                    .left_alone
                    .iter()
                    .any(|l| l.contains("ip_forward") && l.contains(record)),
                "{report:?}"
            );
            assert!(!std::path::Path::new(record).exists());
            // Only what the record knew is left: ip_forward and the tables the lab made.
            let now = host_state();
            assert_eq!((&now.links, &now.netns), (&before.links, &before.netns));
            assert_eq!(now.ip_forward.trim(), "1");
            assert!(!now.rules.contains("ctnet-lab:t"), "{}", now.rules);
            assert!(rt.block_on(lab::list(&env)).unwrap().is_empty());
        },
    );
}

#[test]
fn a_corrupt_record_blocks_every_subnet_unless_its_bridge_proves_no_overlap() {
    run_test_in_world(
        "a_corrupt_record_blocks_every_subnet_unless_its_bridge_proves_no_overlap",
        || {
            let rt = rt();
            let env = LabEnv::default();
            let spec = |name: &str, subnet: &str| LabSpec {
                containers: 1,
                subnet: subnet.parse().unwrap(),
                ..LabSpec::new(name)
            };
            rt.block_on(lab::up(&spec("t", "10.77.0.0/24"), &env)).unwrap();
            let record = "/run/ctnet/labs/t.json";
            std::fs::write(record, "{\"schema\": \"ctnet.lab-record/v1\", \"spec\": ").unwrap();
            // Its tagged bridge holds 10.77.0.1/24: a subnet elsewhere cannot overlap.
            rt.block_on(lab::up(&spec("u", "10.80.0.0/24"), &env)).unwrap();
            // Without the bridge nothing says where lab t is: every subnet is refused.
            sh(&["ip", "link", "del", "t-br"]);
            for (name, subnet) in [("v", "10.77.0.0/25"), ("w", "10.81.0.0/24")] {
                let err = rt.block_on(lab::up(&spec(name, subnet), &env)).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
                let text = err.to_string();
                assert!(
                    text.contains(record) && text.contains("`ctnet-diag lab down --name t --force`"),
                    "{text}"
                );
                assert!(!std::path::Path::new(&format!("/run/ctnet/labs/{name}.json")).exists());
            }
            rt.block_on(lab::down_with("t", &env, lab::DownOptions { force: true }))
                .unwrap();
            rt.block_on(lab::up(&spec("w", "10.81.0.0/24"), &env)).unwrap();
        },
    );
}

#[test]
fn lab_up_waiting_for_the_lock_gives_up_when_told_to_stop() {
    run_test_in_world("lab_up_waiting_for_the_lock_gives_up_when_told_to_stop", || {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let rt = rt();
        let env = LabEnv::default();
        let held = rt.block_on(lab::StateLock::acquire(&env)).unwrap();
        let stop = AtomicBool::new(false);
        let told = AtomicUsize::new(0);
        // Told it waits: ask it to stop, as a signal handler would.
        let waiting = |now: bool| {
            if now {
                told.fetch_add(1, Ordering::SeqCst);
                stop.store(true, Ordering::SeqCst);
            }
        };
        let wait = lab::LockWait {
            stop: Some(&stop),
            waiting: Some(&waiting),
        };
        let err = rt
            .block_on(lab::up_with(&LabSpec::new("t"), &env, wait))
            .unwrap_err();
        assert!(matches!(err, ctnet_core::Error::Stopped { .. }), "{err}");
        assert_eq!(told.load(Ordering::SeqCst), 1);
        assert!(!std::path::Path::new("/run/ctnet/labs/t.json").exists());
        assert!(sh(&["ip", "-br", "link", "show", "type", "bridge"]).is_empty());
        // Once the lock is free the same wait takes it at once, telling no one.
        drop(held);
        stop.store(false, Ordering::SeqCst);
        rt.block_on(lab::up_with(&LabSpec::new("t"), &env, wait)).unwrap();
        assert_eq!(told.load(Ordering::SeqCst), 1);
    });
}
