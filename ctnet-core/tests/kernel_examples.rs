//! The crate's examples, built by `cargo test`, run against a real lab in a rootless
//! world: what a tool author copies must work.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ctnet_core::lab::fault::{self, Fault};
use ctnet_core::lab::{self, LabEnv, LabSpec, LabSummary};
use ctnet_core::source::{self, ScanOptions};
use ctnet_core::topology::Topology;
use ctnet_core::world::run_test_in_world;
use serde_json::Value;

fn example(name: &str) -> PathBuf {
    // target/debug/deps/kernel_examples-HASH -> target/debug/examples/NAME
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: `cargo test` builds the examples (run the suite with cargo test)",
        p.display()
    );
    p
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name)).args(args).output().unwrap()
}

fn lab_up(name: &str, n: u32, nat: bool) -> LabSummary {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut spec = LabSpec::new(name);
    spec.containers = n;
    spec.nat = nat;
    rt.block_on(lab::up(&spec, &LabEnv::default())).unwrap()
}

#[test]
fn which_container_names_the_netns_behind_every_lab_veth() {
    run_test_in_world("which_container_names_the_netns_behind_every_lab_veth", || {
        let built = lab_up("e", 2, true);
        let out = run("which_container", &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        for c in &built.containers {
            let want = format!("{} {} {}", c.host_veth, c.netns, c.ifname);
            assert!(text.lines().any(|l| l == want), "{want} not in\n{text}");
        }
        let one = run("which_container", &[&built.containers[1].host_veth]);
        let text = String::from_utf8(one.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with(&built.containers[1].host_veth), "{text}");
    });
}

#[test]
fn check_all_prints_a_report_per_container_and_fails_when_one_breaks() {
    run_test_in_world(
        "check_all_prints_a_report_per_container_and_fails_when_one_breaks",
        || {
            lab_up("e", 2, true);
            let reports = |out: &Output| -> Vec<Value> {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect()
            };
            let healthy = run("check_all", &[]);
            let all = reports(&healthy);
            assert_eq!(all.len(), 2, "{all:?}");
            for r in &all {
                assert_eq!(r["schema"], "ctnet.check/v1");
                // Nothing fails (a warning, as for an FDB that has not learned yet, may come).
                assert_ne!(r["verdict"], "fail", "{r}");
            }
            assert_eq!(healthy.status.code(), Some(0));

            let snap = source::snapshot(&ScanOptions::default()).unwrap();
            let topo = Topology::build(&snap);
            let t = ctnet_core::target::resolve(&snap, "e-c2").unwrap();
            let inj = fault::plan(Fault::NoRoute, &snap, &topo, &t, None).unwrap();
            fault::apply(&inj, &LabEnv::default()).unwrap();
            let broken = run("check_all", &[]);
            assert_eq!(broken.status.code(), Some(1));
            let all = reports(&broken);
            assert_eq!(all[0]["target"], "e-c2", "the failing one comes first: {all:?}");
            assert_eq!(all[0]["verdict"], "fail");
            assert!(
                all[0]["checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["id"] == "route.default" && c["status"] == "fail")
            );
            assert_ne!(all[1]["verdict"], "fail");
        },
    );
}

#[test]
fn capture_one_prints_the_filtered_packets_of_an_interface_in_a_netns() {
    run_test_in_world(
        "capture_one_prints_the_filtered_packets_of_an_interface_in_a_netns",
        || {
            let built = lab_up("e", 2, true);
            let c1 = built.containers[0].ip.split('/').next().unwrap().to_string();
            let c2 = built.containers[1].ip.split('/').next().unwrap().to_string();
            let mut cap = Command::new(example("capture_one"))
                .args(["e-c1", "eth0", &format!("icmp and host {c2}"), "3"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // UDP too, which the filter must leave out; ping until the capture has its 3.
            let deadline = Instant::now() + Duration::from_secs(20);
            while cap.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "capture_one never saw 3 packets");
                let _ = Command::new("ip")
                    .args(["netns", "exec", "e-c2", "ping", "-c1", "-W1", &c1])
                    .output();
                let _ = Command::new("ip")
                    .args(["netns", "exec", "e-c2", "sh", "-c"])
                    .arg(format!("echo x > /dev/udp/{c1}/9 2>/dev/null || true"))
                    .output();
            }
            let out = cap.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8(out.stdout).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 3, "{text}");
            for l in lines {
                assert!(l.contains(&c2) && l.contains("ICMP"), "{l}");
            }
            assert!(String::from_utf8_lossy(&out.stderr).starts_with("3 captured"));
            // A bad filter is refused before anything is opened.
            let bad = run("capture_one", &["e-c1", "eth0", "icmp and and", "1"]);
            assert!(!bad.status.success());
            assert!(!String::from_utf8_lossy(&bad.stderr).is_empty());
        },
    );
}
