//! Runtime tests: ctnet-diag on a host running a real Docker engine (started by the
//! harness in its own namespaces), checked against `docker inspect` and `nsenter ... ip`.

#[path = "support/docker.rs"]
mod engine;
#[path = "support/tmux.rs"]
mod tmux;

use ctnet_core::vocab::PortState;
use std::collections::BTreeSet;

use ctnet_core::model::Snapshot;
use ctnet_core::netns::NetnsRef;
use ctnet_core::topology::{NetnsView, Role, Topology};
use engine::{DNS, Engine, IMAGE, engine_or_skip};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

fn run_inside(e: &Engine, args: &[&str]) -> String {
    let mut argv = vec![BIN];
    argv.extend_from_slice(args);
    let o = e.inside(&argv);
    assert!(
        o.status.success(),
        "ctnet-diag {args:?} inside the engine: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn inspect(e: &Engine, name: &str) -> Value {
    let text = e.docker_ok(&["inspect", name]);
    serde_json::from_str::<Value>(&text).unwrap()[0].clone()
}

fn netns_of_pid(topo: &Topology, pid: u64) -> Option<&NetnsView> {
    topo.netns.iter().find(|n| {
        n.names
            .iter()
            .any(|x| x.starts_with(&format!("pid:{pid}(")) || x == &format!("pid:{pid}"))
    })
}

/// The containers every runtime test uses: default bridge, user network with a
/// published port (also on the default bridge), none, container:, host, stopped.
fn start_containers(e: &Engine) {
    e.docker_ok(&["run", "-d", "--name", "web1", IMAGE, "sleep", "3600"]);
    e.docker_ok(&["network", "create", "--subnet", "172.30.0.0/24", "usernet"]);
    e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "api1",
        "--network",
        "usernet",
        "-p",
        "8080:80",
        IMAGE,
        "sleep",
        "3600",
    ]);
    e.docker_ok(&["network", "connect", "bridge", "api1"]);
    e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "none1",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "3600",
    ]);
    e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "side1",
        "--network",
        "container:web1",
        IMAGE,
        "sleep",
        "3600",
    ]);
    e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "host1",
        "--network",
        "host",
        IMAGE,
        "sleep",
        "3600",
    ]);
    e.docker_ok(&["create", "--name", "stopped1", IMAGE, "sleep", "1"]);
    // Traffic, so the bridge has learned the MACs.
    e.docker_ok(&["exec", "web1", "ping", "-c1", "-W2", "172.17.0.1"]);
    e.docker_ok(&["exec", "api1", "ping", "-c1", "-W2", "172.30.0.1"]);
}

#[test]
fn every_docker_container_is_found_with_its_host_veth_ip_and_mac() {
    let Some(e) = engine_or_skip("every_docker_container_is_found_with_its_host_veth_ip_and_mac") else {
        return;
    };
    start_containers(&e);
    let host = e.host();
    let snap = Snapshot::from_json(&run_inside(&e, &["snapshot", "--docker-host", &host])).unwrap();
    if let Ok(dir) = std::env::var("CTNET_RECORD_FIXTURES") {
        std::fs::write(format!("{dir}/docker-host.json"), snap.to_json() + "\n").unwrap();
    }
    let topo = Topology::build(&snap);
    let host_links: Value = serde_json::from_slice(&e.inside(&["ip", "-j", "link"]).stdout).unwrap();
    let usernet_id = e.docker_ok(&["network", "inspect", "-f", "{{.Id}}", "usernet"]);
    let mut seen_veths = BTreeSet::new();

    for name in ["web1", "api1"] {
        let c = inspect(&e, name);
        let pid = c["State"]["Pid"].as_u64().unwrap();
        let view = netns_of_pid(&topo, pid).unwrap_or_else(|| panic!("{name}: netns of pid {pid} not found"));
        assert_eq!(view.role, Role::Container, "{name}");
        let in_ns: Value = serde_json::from_slice(
            &e.inside(&["nsenter", "-t", &pid.to_string(), "-n", "ip", "-j", "link"])
                .stdout,
        )
        .unwrap();
        let networks = c["NetworkSettings"]["Networks"].as_object().unwrap();
        assert_eq!(networks.len(), if name == "api1" { 2 } else { 1 });
        for (net, cfg) in networks {
            let mac = cfg["MacAddress"].as_str().unwrap();
            let ip = format!("{}/{}", cfg["IPAddress"].as_str().unwrap(), cfg["IPPrefixLen"]);
            let iface = view
                .ifaces
                .iter()
                .find(|i| i.mac.as_deref() == Some(mac))
                .unwrap_or_else(|| panic!("{name}/{net}: no interface with MAC {mac}"));
            assert!(
                iface.ips.contains(&ip),
                "{name}/{net}: {ip} not in {:?}",
                iface.ips
            );
            let host_veth = iface
                .host_veth
                .as_ref()
                .unwrap_or_else(|| panic!("{name}/{net}: no host veth"));
            let want_bridge = if net == "bridge" {
                "docker0".to_string()
            } else {
                format!("br-{}", &usernet_id[..12])
            };
            assert_eq!(
                iface.bridge.as_deref(),
                Some(want_bridge.as_str()),
                "{name}/{net}"
            );
            assert_eq!(iface.port_state, Some(PortState::Forwarding));
            // nsenter's view: the container interface's peer ifindex is our host veth,
            // which has the name we report.
            let theirs = in_ns
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["address"] == mac)
                .unwrap();
            assert_eq!(theirs["ifname"], iface.iface.name.as_str());
            assert_eq!(
                theirs["link_index"].as_u64(),
                Some(u64::from(host_veth.ifindex)),
                "{name}/{net}"
            );
            let host_side = host_links
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["ifindex"].as_u64() == Some(u64::from(host_veth.ifindex)))
                .unwrap();
            assert_eq!(host_side["ifname"], host_veth.name.as_str());
            seen_veths.insert(host_veth.name.clone());
            if name == "web1" {
                assert!(iface.fdb.is_some(), "web1's MAC learned on {}", host_veth.name);
            }
        }
    }
    // Every host veth belongs to one of those containers.
    let all: BTreeSet<String> = topo.veths.iter().map(|v| v.host.name.clone()).collect();
    assert_eq!(all, seen_veths);

    // container:web1 shares web1's netns; none has only lo; host is in the host netns.
    let web1 = inspect(&e, "web1")["State"]["Pid"].as_u64().unwrap();
    let side1 = inspect(&e, "side1")["State"]["Pid"].as_u64().unwrap();
    let shared = netns_of_pid(&topo, web1).unwrap();
    assert!(
        netns_of_pid(&topo, side1).is_some_and(|n| n.key == shared.key),
        "side1 shares web1's netns"
    );
    let none1 = inspect(&e, "none1")["State"]["Pid"].as_u64().unwrap();
    assert_eq!(netns_of_pid(&topo, none1).unwrap().role, Role::Isolated);
    let host1 = inspect(&e, "host1")["State"]["Pid"].as_u64().unwrap();
    assert!(
        netns_of_pid(&topo, host1).is_none(),
        "host1 is in the host netns, not another"
    );
    assert_eq!(inspect(&e, "stopped1")["State"]["Pid"].as_u64(), Some(0));
    // The host netns lists host1's process (its cgroup names a container), and the
    // container is tied to the host netns.
    let host_pids: Vec<u32> = snap
        .host_netns()
        .unwrap()
        .refs
        .iter()
        .filter_map(|r| match r {
            NetnsRef::Pid { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect();
    assert!(host_pids.contains(&(host1 as u32)), "{host_pids:?}");
    let h1 = snap.containers.iter().find(|c| c.name == "host1").unwrap();
    assert_eq!(h1.netns, Some(snap.host));
    // Docker's sandbox keys are found where Docker keeps them.
    let key = inspect(&e, "web1")["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(key.starts_with("/var/run/docker/netns/"), "{key}");
    assert!(shared.names.iter().any(|n| n == &key), "{:?}", shared.names);

    // Docker's firewall, classified.
    let fw = snap.firewall.as_ref().unwrap();
    let rules: Vec<_> = fw
        .iptables
        .iter()
        .flat_map(|d| d.tables.iter())
        .flat_map(|t| t.rules.iter())
        .collect();
    assert!(
        rules
            .iter()
            .any(|r| r.target.as_deref() == Some("DNAT") && r.spec.contains("--dport 8080")),
        "the -p 8080:80 DNAT rule"
    );
    assert!(
        rules
            .iter()
            .filter(|r| r.chain.starts_with("DOCKER"))
            .all(|r| r.owner == ctnet_core::model::Owner::Docker)
    );

    // The table users asked for: every host veth with its container's IP.
    let table = run_inside(&e, &["veths"]);
    for v in &seen_veths {
        assert!(table.contains(v.as_str()), "{v} missing from:\n{table}");
    }
    assert!(
        table.contains("172.17.0.2/16") && table.contains("172.30.0.2/24"),
        "{table}"
    );
}

fn show_json(e: &Engine, extra: &[&str], target: &str) -> (Option<i32>, Value, String) {
    let mut argv = vec![BIN, "show", target, "--json"];
    argv.extend_from_slice(extra);
    let o = e.inside(&argv);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let doc = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code(), doc, stderr)
}

#[test]
fn containers_resolve_by_name_and_id_prefix_with_and_without_the_daemon() {
    let Some(e) = engine_or_skip("containers_resolve_by_name_and_id_prefix_with_and_without_the_daemon")
    else {
        return;
    };
    start_containers(&e);
    let host = e.host();
    let api = ["--docker-host", host.as_str()];
    let mut netns_of = std::collections::BTreeMap::new();
    for name in ["web1", "api1", "none1", "side1", "host1", "stopped1"] {
        let c = inspect(&e, name);
        let id = c["Id"].as_str().unwrap();
        let (code, by_name, err) = show_json(&e, &api, name);
        assert_eq!(code, Some(0), "{name}: {err}");
        let (code, by_id, err) = show_json(&e, &api, &id[..8]);
        assert_eq!(code, Some(0), "{name} by id prefix: {err}");
        assert_eq!(
            by_name["target"]["netns"], by_id["target"]["netns"],
            "{name}: name and id agree"
        );
        let t = &by_name["target"];
        assert_eq!(t["kind"], "container");
        assert_eq!(t["container"]["name"], name);
        assert_eq!(t["container"]["id"], id);
        assert_eq!(t["container"]["runtime"], "docker");
        netns_of.insert(name, t["netns"].clone());
        let note = t["note"].as_str().unwrap_or("");
        match name {
            "web1" | "api1" => {
                // Every network: the interface with its MAC holds its IP, behind a host
                // veth on the right bridge.
                for (net, cfg) in c["NetworkSettings"]["Networks"].as_object().unwrap() {
                    let mac = cfg["MacAddress"].as_str().unwrap();
                    let iface = by_name["netns"]["ifaces"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|i| i["mac"] == mac)
                        .unwrap_or_else(|| panic!("{name}/{net}: no {mac}"));
                    let ip = format!("{}/{}", cfg["IPAddress"].as_str().unwrap(), cfg["IPPrefixLen"]);
                    assert!(
                        iface["ips"].as_array().unwrap().iter().any(|x| x == ip.as_str()),
                        "{name}/{net}"
                    );
                    assert!(
                        iface["host_veth"]["name"].as_str().unwrap().starts_with("veth"),
                        "{name}/{net}"
                    );
                    let endpoint = t["container"]["networks"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|n| n["name"] == net.as_str())
                        .unwrap();
                    assert_eq!(
                        iface["bridge"], endpoint["bridge"],
                        "{name}/{net}: bridge from the API and the kernel"
                    );
                }
                if name == "api1" {
                    let ports = t["container"]["ports"].as_array().unwrap();
                    assert!(
                        ports
                            .iter()
                            .any(|p| p["host_port"] == 8080 && p["container_port"] == 80)
                    );
                }
            }
            "none1" => {
                assert!(note.contains("--network none"), "{note}");
                assert_eq!(by_name["netns"]["role"], "isolated");
            }
            "side1" => assert!(note.contains("shares the netns of container web1"), "{note}"),
            "host1" => assert!(note.contains("shares the host netns"), "{note}"),
            "stopped1" => {
                assert!(note.contains("not running"), "{note}");
                assert!(t["netns"].is_null());
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(netns_of["side1"], netns_of["web1"]);

    // Unknown: exit 2 with what is close.
    let (code, _, err) = show_json(&e, &api, "web");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("did you mean web1"), "{err}");
    // Without the daemon a name cannot be known: said so, not a close interface.
    let (code, _, err) = show_json(&e, &["--no-daemon"], "web1");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("which --no-daemon turned off") && !err.contains("did you mean"),
        "{err}"
    );

    // The daemon unreachable: names cannot be known (exit 3, with the reason), but ids,
    // pids and sandbox keys still resolve, to the same netns, through cgroups and /proc.
    let down = ["--docker-host", "unix:///nonexistent/docker.sock"];
    let (code, _, err) = show_json(&e, &down, "web1");
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("/nonexistent/docker.sock") && err.contains("cgroups"),
        "{err}"
    );
    for name in ["web1", "api1", "none1"] {
        let c = inspect(&e, name);
        let id = c["Id"].as_str().unwrap();
        let pid = c["State"]["Pid"].to_string();
        let key = c["NetworkSettings"]["SandboxKey"].as_str().unwrap().to_string();
        for target in [id[..12].to_string(), format!("pid:{pid}"), key] {
            let (code, doc, err) = show_json(&e, &down, &target);
            assert_eq!(code, Some(0), "{name} as {target}: {err}");
            assert_eq!(doc["target"]["netns"], netns_of[name], "{name} as {target}");
        }
        let (_, doc, _) = show_json(&e, &down, &id[..12]);
        assert_eq!(
            doc["target"]["container"]["runtime"], "docker",
            "found through its cgroup"
        );
        assert_eq!(doc["target"]["container"]["id"], id);
    }
    // `veths` prints container names.
    let o = e.inside(&[BIN, "veths", "--docker-host", host.as_str()]);
    let table = String::from_utf8_lossy(&o.stdout);
    for name in ["web1", "api1"] {
        assert!(table.contains(name), "{name} missing from:\n{table}");
    }
}

/// `check` on a healthy Docker host (default bridge and a user network) has no failure,
/// the probe gets its replies through docker0, and `lab break` / `lab fix` work on a
/// Docker container (found from live state, no ctnet names).
#[test]
fn check_passes_on_a_healthy_docker_host_and_sees_a_broken_container() {
    let Some(e) = engine_or_skip("check_passes_on_a_healthy_docker_host_and_sees_a_broken_container") else {
        return;
    };
    start_containers(&e);
    e.docker_ok(&["run", "-d", "--name", "web2", IMAGE, "sleep", "3600"]);
    let web2 = inspect(&e, "web2");
    let ip2 = web2["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    e.docker_ok(&["exec", "web1", "ping", "-c1", "-W2", &ip2]);
    // api1 publishes 8080:80: a server behind it, so the port arrives.
    e.docker_ok(&["exec", "api1", "httpd", "-p", "80", "-h", "/"]);
    let host = e.host();
    let check = |args: &[&str]| {
        let mut argv = vec![BIN, "check"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--docker-host", host.as_str()]);
        let o = e.inside(&argv);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    for args in [
        &["web1", "--peer", "web2", "--probe"][..],
        &["api1"][..],
        &["web2"][..],
    ] {
        let (code, out, err) = check(args);
        assert_eq!(code, Some(0), "check {args:?}:\n{out}\n{err}");
        assert!(
            out.starts_with("verdict: PASS") || out.starts_with("verdict: WARN"),
            "{out}"
        );
    }
    // The published port arrives from the host's address and from localhost (the
    // userland proxy listens there); without its server it does not, and says why.
    let (_, out, _) = check(&["api1"]);
    assert!(
        out.contains("PASS port.published") && out.contains("tcp/8080 -> api1:80 arrives"),
        "{out}"
    );
    e.docker_ok(&["exec", "api1", "busybox", "killall", "httpd"]);
    let (code, out, _) = check(&["api1"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL port.published") && out.contains("nothing listens on tcp/80"),
        "{out}"
    );
    e.docker_ok(&["exec", "api1", "httpd", "-p", "80", "-h", "/"]);
    // A container on --network container:web1 is checked on web1's netns, and says so.
    let (code, out, err) = check(&["side1"]);
    assert_eq!(code, Some(0), "check side1:\n{out}\n{err}");
    assert!(
        out.contains("resolve.netns") && out.contains("shares the netns of container web1"),
        "{out}"
    );
    let (_, out, _) = check(&["web1", "--peer", "web2", "--probe"]);
    assert!(out.contains("PASS probe.path"), "{out}");
    assert!(out.contains("3/3 echo replies"), "{out}");

    let o = e.inside(&[
        BIN,
        "lab",
        "break",
        "veth-down",
        "web1",
        "--docker-host",
        host.as_str(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("ran:  ip link set dev veth"), "{text}");
    let (code, out, _) = check(&["web1"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL link.host_veth_up"), "{out}");
    let o = e.inside(&[BIN, "lab", "fix"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (code, out, _) = check(&["web1"]);
        if code == Some(0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not healed:\n{out}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // A support bundle of this host: `check --from` it gives the live verdicts, and
    // redacted, no container name, id, address or MAC that Docker reports is left in
    // any of its files.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("docker-bundle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_string_lossy().into_owned();
    let script = format!(
        "set -e; cd {d}; {BIN} bundle -o b.tar.gz --docker-host {host} 2>progress; \
         {BIN} bundle -o r.tar.gz --redact --docker-host {host} 2>/dev/null; \
         mkdir r; tar xzf r.tar.gz -C r; \
         for t in web1 api1 web2; do {BIN} check $t --from b.tar.gz | head -1 > $t.from || true; done"
    );
    let o = e.inside(&["sh", "-c", &script]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let progress = std::fs::read_to_string(dir.join("progress")).unwrap();
    assert!(progress.contains("running the checks of"), "{progress}");
    for t in ["web1", "api1", "web2"] {
        let (_, live, _) = check(&[t]);
        let from = std::fs::read_to_string(dir.join(format!("{t}.from"))).unwrap();
        assert_eq!(
            from.trim(),
            live.lines().next().unwrap(),
            "check {t} --from the bundle"
        );
    }
    let mut hidden = Vec::new();
    for name in ["web1", "web2", "api1", "side1", "host1", "none1"] {
        let c = inspect(&e, name);
        hidden.push(name.to_string());
        hidden.push(c["Id"].as_str().unwrap().to_string());
        hidden.push(c["Id"].as_str().unwrap()[..12].to_string());
        for (_, n) in c["NetworkSettings"]["Networks"].as_object().unwrap() {
            for k in ["IPAddress", "MacAddress"] {
                if let Some(v) = n[k].as_str().filter(|v| !v.is_empty()) {
                    hidden.push(v.to_string());
                }
            }
        }
    }
    hidden.push("usernet".into());
    let mut files = vec![dir.join("r")];
    let mut seen = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        seen += 1;
        let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
        for h in &hidden {
            assert!(!text.contains(h.as_str()), "{h} is left in {}", p.display());
        }
    }
    assert!(seen >= 8, "{seen} files in the redacted bundle");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The flow engine against a real Docker engine's own rules (Debian's dockerd): each
/// flow is traced by `ctnet-diag trace` and sent for real with `docker exec` (ping, and
/// a TCP connect with busybox `nc` to busybox `httpd`). The two must agree.
#[test]
fn trace_agrees_with_real_traffic_under_dockerd_rules() {
    let Some(e) = engine_or_skip("trace_agrees_with_real_traffic_under_dockerd_rules") else {
        return;
    };
    e.docker_ok(&["run", "-d", "--name", "web1", IMAGE, "sleep", "3600"]);
    e.docker_ok(&["run", "-d", "--name", "web2", IMAGE, "sleep", "3600"]);
    e.docker_ok(&["network", "create", "--subnet", "172.30.0.0/24", "usernet"]);
    for name in ["solo", "api1"] {
        e.docker_ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "usernet",
            IMAGE,
            "sleep",
            "3600",
        ]);
    }
    for name in ["web1", "web2", "solo", "api1"] {
        e.docker_ok(&["exec", name, "httpd", "-p", "80", "-h", "/"]);
    }
    let ip = |name: &str| -> String {
        let v = inspect(&e, name);
        let nets = v["NetworkSettings"]["Networks"].as_object().unwrap();
        nets.values().next().unwrap()["IPAddress"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let host = e.host();
    let mut flows = Vec::new();
    for (from, to) in [
        ("web1", "web2"),
        ("web2", "web1"),
        ("solo", "api1"),
        ("web1", "solo"),
        ("solo", "web1"),
        ("api1", "web2"),
    ] {
        flows.push((from, to, "icmp"));
        flows.push((from, to, "tcp"));
    }
    let (mut agree, mut reachable) = (0, 0);
    let mut disagreements = Vec::new();
    for (from, to, proto) in &flows {
        let dst = ip(to);
        let real = match *proto {
            "icmp" => e
                .docker(&["exec", from, "ping", "-c1", "-W1", &dst])
                .status
                .success(),
            _ => e
                .docker(&["exec", from, "sh", "-c", &format!("echo | nc -w 1 {dst} 80")])
                .status
                .success(),
        };
        let mut argv = vec![BIN, "trace", from, to, "--json", "--docker-host", host.as_str()];
        if *proto == "tcp" {
            argv.extend(["--tcp", "80"]);
        }
        let o = e.inside(&argv);
        let doc: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|_| panic!("trace {from} {to}: {}", String::from_utf8_lossy(&o.stderr)));
        let verdict = doc["verdict"].as_str().unwrap_or("?").to_string();
        reachable += usize::from(real);
        let want = if real { "reachable" } else { "unreachable" };
        if verdict == want {
            agree += 1;
        } else {
            disagreements.push(format!(
                "{from} -> {to} {proto}: trace {verdict}, real {want}\n{doc:#}"
            ));
        }
    }
    println!(
        "dockerd rules: {} flows, {agree} agree, {reachable} reachable for real, {} disagree",
        flows.len(),
        disagreements.len()
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n\n"));
    // Docker isolates networks from each other: the engine names the chain.
    let o = e.inside(&[BIN, "trace", "solo", "web1", "--docker-host", host.as_str()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("DOCKER-ISOLATION-STAGE-2"), "{text}");
}

/// `dns.resolver` of `name` from `check --json`: (status, summary, evidence).
fn dns_finding(e: &Engine, name: &str) -> (String, String, String) {
    finding_of(e, name, &[], "dns.resolver")
}

/// Finding `id` of `check NAME EXTRA... --json` on the engine's host.
fn finding_of(e: &Engine, name: &str, extra: &[&str], id: &str) -> (String, String, String) {
    let host = e.host();
    let mut argv = vec![BIN, "check", name, "--json", "--docker-host", host.as_str()];
    argv.extend_from_slice(extra);
    let o = e.inside(&argv);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|err| panic!("check {name}: {err}: {}", String::from_utf8_lossy(&o.stderr)));
    let f = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} for {name}: {v}"))
        .clone();
    (
        f["status"].as_str().unwrap().to_string(),
        f["summary"].as_str().unwrap().to_string(),
        f["evidence"].to_string(),
    )
}

#[test]
fn dns_is_traced_to_the_nameserver_and_through_the_embedded_resolver_and_a_block_is_named() {
    let Some(e) = engine_or_skip(
        "dns_is_traced_to_the_nameserver_and_through_the_embedded_resolver_and_a_block_is_named",
    ) else {
        return;
    };
    start_containers(&e);
    // Ground truth first: a real query from each container gets the resolver's answer
    // (NXDOMAIN), web1 straight from the default bridge, api1 through Docker's embedded
    // resolver on its user network.
    for name in ["web1", "api1"] {
        let o = e.docker(&["exec", name, "nslookup", "-timeout=2", "probe.invalid"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(text.contains("NXDOMAIN"), "{name}: {text}");
    }
    let (st, summary, ev) = dns_finding(&e, "web1");
    assert_eq!(st, "pass", "{summary} {ev}");
    assert!(ev.contains(DNS), "{ev}");
    // api1's resolv.conf names 127.0.0.11: its own nat table sends it to dockerd's port.
    let (st, summary, ev) = dns_finding(&e, "api1");
    assert_eq!(st, "pass", "{summary} {ev}");
    assert!(ev.contains("127.0.0.11"), "{ev}");
    // `--probe` asks one real query from inside, as the container would.
    let (st, summary, _) = finding_of(&e, "web1", &["--probe"], "dns.query");
    assert_eq!(st, "pass", "{summary}");
    assert!(
        summary.contains(&format!("to {DNS}:53/udp was answered NXDOMAIN")),
        "{summary}"
    );
    let (st, summary, _) = finding_of(&e, "api1", &["--probe"], "dns.query");
    assert_eq!(st, "pass", "{summary}");
    assert!(
        summary.contains("to 127.0.0.11:53/udp was answered NXDOMAIN"),
        "{summary}"
    );

    // `lab break dns-blocked` on a Docker container: its queries die at the host, the
    // check names the fault's rule, and `lab fix` gives DNS back.
    let nx = |name: &str| {
        let o = e.docker(&["exec", name, "nslookup", "-timeout=1", "probe.invalid"]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
        .contains("NXDOMAIN")
    };
    let host = e.host();
    let o = e.inside(&[
        BIN,
        "lab",
        "break",
        "dns-blocked",
        "web1",
        "--docker-host",
        host.as_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!nx("web1"), "web1 still resolves with dns-blocked");
    let (st, summary, ev) = dns_finding(&e, "web1");
    assert_eq!(st, "fail", "{summary} {ev}");
    assert!(ev.contains("ctnet-fault"), "the fault's rule is not named: {ev}");
    let (st, summary, _) = finding_of(&e, "web1", &["--probe"], "dns.query");
    assert_eq!(st, "fail", "{summary}");
    assert!(summary.contains("got no answer in 2 s"), "{summary}");
    let o = e.inside(&[BIN, "lab", "fix", "dns-blocked", "web1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(nx("web1"), "web1 does not resolve after lab fix");
    assert_eq!(dns_finding(&e, "web1").0, "pass");

    // The host drops DNS from the default bridge: the query times out, and the check
    // fails naming the rule.
    let out = e.inside(&[
        "iptables", "-I", "INPUT", "-i", "docker0", "-p", "udp", "--dport", "53", "-j", "DROP",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!nx("web1"), "the blocked query was answered");
    let (st, summary, ev) = dns_finding(&e, "web1");
    assert_eq!(st, "fail", "{summary} {ev}");
    assert!(summary.contains(&format!("{DNS} udp/53")), "{summary}");
    assert!(
        ev.contains("INPUT") && ev.contains("DROP"),
        "the rule is not named: {ev}"
    );
}

/// The binary the image ships: the dist build `scripts/test` makes first
/// (`CTNET_DIST_BIN`), or outside CI the test build.
fn shipped_binary(test: &str) -> String {
    match std::env::var("CTNET_DIST_BIN") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            assert!(
                !ctnet_core::world::in_ci(),
                "{test}: CTNET_DIST_BIN is not set: scripts/test builds the dist binary first"
            );
            BIN.to_string()
        }
    }
}

/// Each host veth as the JSON of `veths` gives it, reduced to what names it: the
/// container and the peer's netns identity (the inode, whatever path reaches it).
fn veth_rows(json: &str) -> BTreeSet<String> {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["veths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            format!(
                "{} {} {} {} {} {} {}",
                x["host"]["name"],
                x["bridge"],
                x["containers"],
                x["peer"]["iface"]["name"],
                x["peer"]["iface"]["netns"]["ino"],
                x["peer"]["mac"],
                x["peer"]["ips"]
            )
        })
        .collect()
}

/// `scripts/image` with the shipped binary, imported into the engine as `ctnet:test`.
fn build_image(e: &Engine, shipped: &str) {
    let script = format!("{}/../scripts/image", env!("CARGO_MANIFEST_DIR"));
    let o = std::process::Command::new(&script)
        .args(["--bin", shipped, "--tag", "ctnet:test"])
        .env("DOCKER_HOST", e.host())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "scripts/image: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// What the image is given instead of `--privileged` (the README gives both): the
/// capabilities ctnet uses and no more. `--privileged` asks for every capability, and
/// the sandbox these tests run in withholds one (CAP_SYS_RESOURCE) from its root.
const CAPS: &[&str] = &[
    "--cap-add=NET_ADMIN",
    "--cap-add=NET_RAW",
    "--cap-add=SYS_ADMIN",
    "--cap-add=SYS_PTRACE",
    "--cap-add=DAC_READ_SEARCH",
    "--cap-add=SYSLOG",
];

/// The netshoot-style image (`scripts/image`), imported into the test's real engine
/// and run as the README says (`--net=host --pid=host`, the capabilities, the engine's
/// socket and /run/netns mounted): `veths`, `show web1`, `check web1 --peer web2
/// --probe` and `capture web1` see the other containers exactly as the host binary
/// does, and the dashboard starts in a tmux pane and quits.
#[test]
fn the_image_sees_the_containers_as_the_host_binary_does() {
    let test = "the_image_sees_the_containers_as_the_host_binary_does";
    let Some(e) = engine_or_skip(test) else {
        return;
    };
    let shipped = shipped_binary(test);
    e.docker_ok(&["run", "-d", "--name", "web1", IMAGE, "sleep", "3600"]);
    e.docker_ok(&["run", "-d", "--name", "web2", IMAGE, "sleep", "3600"]);
    let ip2 = inspect(&e, "web2")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    e.docker_ok(&["exec", "web1", "ping", "-c1", "-W2", &ip2]);

    build_image(&e, &shipped);
    let sock = e.host().trim_start_matches("unix://").to_string();
    let mount = format!("{sock}:/var/run/docker.sock");
    let run = |args: &[&str]| {
        let mut argv = vec!["run", "--rm", "--net=host", "--pid=host"];
        argv.extend_from_slice(CAPS);
        argv.extend_from_slice(&["-v", mount.as_str(), "-v", "/run/netns:/run/netns", "ctnet:test"]);
        argv.extend_from_slice(args);
        let o = e.docker(&argv);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };

    let (code, inside, err) = run(&["veths", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let host = run_inside(&e, &["veths", "--json", "--docker-host", &e.host()]);
    assert_eq!(
        veth_rows(&inside),
        veth_rows(&host),
        "the image and the host binary differ"
    );
    assert!(inside.contains("web1") && inside.contains(&ip2), "{inside}");

    let (code, show, err) = run(&["show", "web1"]);
    assert_eq!(code, Some(0), "{err}");
    let host_show = run_inside(&e, &["show", "web1", "--docker-host", &e.host()]);
    let mac1 = inspect(&e, "web1")["NetworkSettings"]["Networks"]["bridge"]["MacAddress"]
        .as_str()
        .unwrap()
        .to_string();
    for s in [&show, &host_show] {
        assert!(
            s.contains("web1") && s.contains(&mac1) && s.contains("docker0"),
            "{s}"
        );
    }

    let (code, check, err) = run(&["check", "web1", "--peer", "web2", "--probe"]);
    assert_eq!(code, Some(0), "{check}\n{err}");
    assert!(
        check.contains("PASS probe.path") && check.contains("3/3 echo replies"),
        "{check}"
    );

    let mut ping = std::process::Command::new("docker")
        .env("DOCKER_HOST", e.host())
        .args(["exec", "web1", "ping", "-c", "40", "-i", "0.2", &ip2])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (code, cap, err) = run(&["capture", "web1", "-c", "2", "-f", "icmp"]);
    let _ = ping.kill();
    let _ = ping.wait();
    assert_eq!(code, Some(0), "{err}");
    let both = format!("{cap}{err}");
    assert!(
        cap.contains(&ip2) && both.contains("2 packets captured"),
        "{both}"
    );

    // The dashboard, in a terminal, from the image.
    let docker = format!(
        "DOCKER_HOST={} docker run --rm -it --net=host --pid=host {} -v {mount} \
         -v /run/netns:/run/netns ctnet:test; echo IMAGE-DONE; sleep 600",
        e.host(),
        CAPS.join(" ")
    );
    let tmux = tmux::Tmux::start("image", 160, 48, &docker);
    tmux.wait_for("the dashboard from the image", 60, |s| {
        s.contains("docker0") && s.contains("web1")
    });
    tmux.keys(&["q"]);
    tmux.wait_for("the dashboard to quit", 20, |s| s.contains("IMAGE-DONE"));
}

/// `kubectl` for the plugin's test, standing in for a cluster's API server: pods are
/// JSON files (`$SHIM/pods/NS/NAME.json`) whose fields the real kubectl extracts with
/// the plugin's own jsonpath (`label --local`, no server), agents are Docker
/// containers started from the DaemonSet's pod spec, and `exec` into an agent is
/// `docker exec`. It refuses any call the plugin is not meant to make.
const KUBECTL_SHIM: &str = r#"#!/usr/bin/env bash
set -euo pipefail
printf '%s\n' "$*" >>"$SHIM/calls"
export KUBECONFIG="$SHIM/kubeconfig"
eval_path() { "$REAL_KUBECTL" label --local -f "$1" ctnet-shim=1 -o "jsonpath=$2"; }
refuse() { echo "kubectl shim: unexpected call: $*" >&2; exit 97; }
case "$1 $2" in
  "config view") exit 0 ;;
  "get pod")
    [ "$3" = -n ] && [ "$6" = -o ] || refuse "$@"
    f="$SHIM/pods/$4/$5.json"
    [ -f "$f" ] || { echo "Error from server (NotFound): pods \"$5\" not found" >&2; exit 1; }
    eval_path "$f" "${7#jsonpath=}" ;;
  "get pods")
    [ "$3" = -n ] && [ "$4" = "$AGENT_NS" ] && [ "$5" = -l ] && [ "$6" = "$AGENT_SELECTOR" ] || refuse "$@"
    [ "$7" = --field-selector ] && [ "$9" = -o ] || refuse "$@"
    node=${8#spec.nodeName=}; node=${node%,status.phase=Running}
    expr=${10#jsonpath=}
    inner=${expr#'{range .items[*]}'}; inner=${inner%'{end}'}
    [ "$inner" != "$expr" ] || refuse "$@"
    [ -f "$SHIM/agents/$node" ] || exit 0
    agent=$(cat "$SHIM/agents/$node")
    printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"%s"},"spec":{"nodeName":"%s","containers":[{"name":"ctnet","image":"ctnet"}]},"status":{"phase":"Running"}}' \
      "$agent" "$AGENT_NS" "$node" >"$SHIM/agent.json"
    eval_path "$SHIM/agent.json" "$inner" ;;
  exec*)
    shift
    tty=()
    if [ "$1" = -it ]; then tty=(-it); shift; fi
    [ "$1" = -n ] && [ "$2" = "$AGENT_NS" ] && [ "$4" = -c ] && [ "$5" = "$AGENT_CONTAINER" ] && [ "$6" = -- ] || refuse exec "$@"
    agent=$3
    shift 6
    exec docker exec ${tty[@]+"${tty[@]}"} "$agent" "$@" ;;
  *) refuse "$@" ;;
esac
"#;

/// The DaemonSet's agent container as `docker run` arguments: host network and pids,
/// the capabilities, read-only root, every volume (hostPath as a bind with its
/// propagation, emptyDir as a tmpfs) and the command. Anything the translation does
/// not know fails the test, so the manifest cannot drift from what is tested.
fn agent_run_args(pod: &Value, name: &str) -> Vec<String> {
    let spec = &pod["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"], true, "{spec}");
    assert_eq!(spec["hostPID"], true, "{spec}");
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "one container: {spec}");
    let c = &containers[0];
    let mut args: Vec<String> = ["run", "-d", "--name", name, "--net=host", "--pid=host"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sc = &c["securityContext"];
    assert_ne!(sc["privileged"], true, "the tested manifest lists capabilities");
    if sc["readOnlyRootFilesystem"] == true {
        args.push("--read-only".into());
    }
    for cap in sc["capabilities"]["drop"].as_array().into_iter().flatten() {
        args.push(format!("--cap-drop={}", cap.as_str().unwrap()));
    }
    for cap in sc["capabilities"]["add"].as_array().into_iter().flatten() {
        args.push(format!("--cap-add={}", cap.as_str().unwrap()));
    }
    let volumes = spec["volumes"].as_array().unwrap();
    for m in c["volumeMounts"].as_array().unwrap() {
        let vname = m["name"].as_str().unwrap();
        let target = m["mountPath"].as_str().unwrap();
        let v = volumes
            .iter()
            .find(|v| v["name"] == vname)
            .unwrap_or_else(|| panic!("volume {vname} is mounted but not declared"));
        if let Some(path) = v["hostPath"]["path"].as_str() {
            let mut opts = Vec::new();
            if m["readOnly"] == true {
                opts.push("ro");
            }
            match m["mountPropagation"].as_str() {
                Some("HostToContainer") => opts.push("rslave"),
                None => {}
                Some(other) => panic!("mountPropagation {other} is not translated"),
            }
            let opts = if opts.is_empty() {
                String::new()
            } else {
                format!(":{}", opts.join(","))
            };
            args.push("-v".into());
            args.push(format!("{path}:{target}{opts}"));
        } else if v.get("emptyDir").is_some() {
            args.push("--tmpfs".into());
            args.push(format!("{target}:mode=1777"));
        } else {
            panic!("volume {v} is neither hostPath nor emptyDir");
        }
    }
    let command: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    args.push(format!("--entrypoint={}", command[0]));
    args.push("ctnet:test".into());
    args.extend(command[1..].iter().map(|s| s.to_string()));
    args
}

/// A Pod object as the API server returns it, with what the plugin reads.
fn pod_json(name: &str, node: &str, host_network: bool, phase: &str, ip: &str, id: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}")},
        "spec": {"nodeName": node, "hostNetwork": host_network,
                 "containers": [{"name": "app", "image": "shop/app:1"}]},
        "status": {"phase": phase, "podIP": ip,
                   "containerStatuses": [{"name": "app", "containerID": format!("docker://{id}")}]}
    })
    .to_string()
}

/// `kubectl ctnet` (deploy/kubectl-ctnet) against the DaemonSet's agent
/// (deploy/daemonset.yaml, its pod spec run by the real engine from the real image):
/// the plugin finds the pod's node and its agent, and `check --peer`, `veths`, `trace`
/// and `bundle` run there and see what the host binary sees; the bundle arrives mode
/// 0600 and is removed from the node; pods it cannot diagnose are refused by name. The
/// API server is the one thing not real: a kubectl stand-in answers from Pod objects
/// (KUBECTL_SHIM), with the real kubectl evaluating the plugin's queries.
#[test]
fn the_kubectl_plugin_runs_ctnet_in_the_daemonset_agent_of_the_pods_node() {
    let test = "the_kubectl_plugin_runs_ctnet_in_the_daemonset_agent_of_the_pods_node";
    let Some(e) = engine_or_skip(test) else {
        return;
    };
    let real_kubectl = std::process::Command::new("sh")
        .args(["-c", "command -v kubectl"])
        .output()
        .unwrap();
    let real_kubectl = String::from_utf8_lossy(&real_kubectl.stdout).trim().to_string();
    assert!(
        !real_kubectl.is_empty(),
        "{test}: no kubectl (scripts/deps.sh installs Debian's kubernetes-client)"
    );
    let root = env!("CARGO_MANIFEST_DIR").to_string() + "/..";
    let manifest = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))",
        ])
        .stdin(std::fs::File::open(format!("{root}/deploy/daemonset.yaml")).unwrap())
        .output()
        .unwrap();
    assert!(
        manifest.status.success(),
        "deploy/daemonset.yaml: {}",
        String::from_utf8_lossy(&manifest.stderr)
    );
    let docs: Vec<Value> = serde_json::from_slice(&manifest.stdout).unwrap();
    let ds = docs.iter().find(|d| d["kind"] == "DaemonSet").unwrap();
    let agent_ns = ds["metadata"]["namespace"].as_str().unwrap().to_string();
    let labels = ds["spec"]["template"]["metadata"]["labels"].as_object().unwrap();
    let selector = format!(
        "app.kubernetes.io/name={}",
        labels["app.kubernetes.io/name"].as_str().unwrap()
    );
    let container = ds["spec"]["template"]["spec"]["containers"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();

    let shipped = shipped_binary(test);
    e.docker_ok(&["run", "-d", "--name", "web1", IMAGE, "sleep", "3600"]);
    e.docker_ok(&["run", "-d", "--name", "web2", IMAGE, "sleep", "3600"]);
    e.docker_ok(&["exec", "web2", "httpd", "-p", "80", "-h", "/"]);
    let ip = |n: &str| {
        inspect(&e, n)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let id = |n: &str| inspect(&e, n)["Id"].as_str().unwrap().to_string();
    let (ip1, ip2) = (ip("web1"), ip("web2"));
    e.docker_ok(&["exec", "web1", "ping", "-c1", "-W2", &ip2]);
    build_image(&e, &shipped);

    // The node's /run as the agent mounts it: the engine's own /run (its netns under
    // /run/docker/netns), with the engine's socket where a Docker node has it, shared
    // as systemd shares every mount on a node (HostToContainer needs it).
    let sock = e.host().trim_start_matches("unix://").to_string();
    let o = e.inside(&[
        "sh",
        "-c",
        &format!(
            "touch /run/docker.sock && mount --bind {sock} /run/docker.sock && \
             mount --make-rshared /run"
        ),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let agent = "ctnet-agent-x7k2p";
    let run: Vec<String> = agent_run_args(ds, agent);
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    e.docker_ok(&run);

    let shim = std::env::temp_dir().join(format!("ctnet-kubectl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&shim);
    std::fs::create_dir_all(shim.join("bin")).unwrap();
    std::fs::create_dir_all(shim.join("pods/shop")).unwrap();
    std::fs::create_dir_all(shim.join("agents")).unwrap();
    std::fs::write(shim.join("kubeconfig"), "apiVersion: v1\nkind: Config\n").unwrap();
    std::fs::write(shim.join("bin/kubectl"), KUBECTL_SHIM).unwrap();
    std::fs::write(shim.join("agents/node-a"), agent).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(shim.join("bin/kubectl"), std::fs::Permissions::from_mode(0o755)).unwrap();
    for (name, node, hostnet, phase, ip, id) in [
        ("web1", "node-a", false, "Running", ip1.clone(), id("web1")),
        ("web2", "node-a", false, "Running", ip2.clone(), id("web2")),
        (
            "far",
            "node-b",
            false,
            "Running",
            "10.244.1.7".to_string(),
            "ab".repeat(32),
        ),
        (
            "hostnet",
            "node-a",
            true,
            "Running",
            "192.0.2.1".to_string(),
            "cd".repeat(32),
        ),
        (
            "pending",
            "node-a",
            false,
            "Pending",
            String::new(),
            String::new(),
        ),
    ] {
        std::fs::write(
            shim.join(format!("pods/shop/{name}.json")),
            pod_json(name, node, hostnet, phase, &ip, &id),
        )
        .unwrap();
    }
    let path = format!(
        "{}:{}",
        shim.join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let plugin = |args: &[&str]| {
        let o = std::process::Command::new(format!("{root}/deploy/kubectl-ctnet"))
            .args(args)
            .env("PATH", &path)
            .env("SHIM", &shim)
            .env("REAL_KUBECTL", &real_kubectl)
            .env("AGENT_NS", &agent_ns)
            .env("AGENT_SELECTOR", &selector)
            .env("AGENT_CONTAINER", &container)
            .env("DOCKER_HOST", e.host())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };

    // check with a peer on the same node: both resolved by container id, named by the
    // engine through the socket the manifest links.
    let (code, out, err) = plugin(&["check", "-n", "shop", "web1", "--peer", "web2"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.starts_with("verdict: PASS") || out.starts_with("verdict: WARN"),
        "{out}"
    );
    // The targets are the pods' container ids (what containerStatuses gives).
    assert!(
        out.lines()
            .next()
            .unwrap()
            .ends_with(&format!("for {} and {}", id("web1"), id("web2"))),
        "{out}"
    );
    assert!(
        err.contains(&format!("shop/web1 on node node-a (agent {agent_ns}/{agent})")),
        "{err}"
    );

    // veths of the node: the same rows as the host binary.
    let (code, out, err) = plugin(&["veths", "node/node-a", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let host = run_inside(&e, &["veths", "--json", "--docker-host", &e.host()]);
    assert_eq!(
        veth_rows(&out),
        veth_rows(&host),
        "the agent and the host binary differ"
    );

    // trace from pod to pod on a port that answers.
    let (code, out, err) = plugin(&["trace", "shop/web1", "shop/web2", "--tcp", "80", "--json"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|x| panic!("{x}: {out}\n{err}"));
    assert_eq!(doc["verdict"], "reachable", "{doc:#}");
    assert!(out.contains(&ip1) && out.contains(&ip2), "{out}");

    // bundle: made on the node, copied here mode 0600, removed from the node.
    let file = shim.join("case.tar.gz");
    let (code, out, err) = plugin(&["bundle", "-n", "shop", "web1", "-o", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    let o = std::process::Command::new(BIN)
        .args(["veths", "--json", "--from", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        veth_rows(&String::from_utf8_lossy(&o.stdout)),
        veth_rows(&host),
        "the bundle's veths differ from the host's"
    );
    let left = e.docker_ok(&["exec", agent, "ls", "/tmp"]);
    assert!(!left.contains("ctnet-bundle"), "left on the node: {left}");
    let (code, _, err) = plugin(&["bundle", "-n", "shop", "web1", "-o", file.to_str().unwrap()]);
    assert_eq!(code, Some(2), "an existing file is not overwritten: {err}");
    assert!(err.contains("exists"), "{err}");

    // What it refuses, and how it says so.
    for (args, want_code, want) in [
        (
            &["check", "-n", "shop", "far"][..],
            3,
            "no running ctnet agent on node node-b",
        ),
        (
            &["check", "-n", "shop", "far"][..],
            3,
            "kubectl debug node/node-b",
        ),
        (
            &["check", "shop/web1", "--peer", "far"][..],
            2,
            "a path across nodes is not joined yet",
        ),
        (&["check", "-n", "shop", "hostnet"][..], 3, "hostNetwork"),
        (
            &["check", "-n", "shop", "pending"][..],
            3,
            "is Pending, not Running",
        ),
        (
            &["check", "-n", "shop", "nope"][..],
            3,
            "cannot look up pod shop/nope",
        ),
        (&["frob"][..], 2, "unknown command 'frob'"),
        (&["check"][..], 2, "check needs a pod"),
        (&["bundle", "node/node-a"][..], 2, "bundle needs -o FILE.tar.gz"),
    ] {
        let (code, out, err) = plugin(args);
        assert_eq!(code, Some(want_code), "{args:?}: {out}\n{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let calls = std::fs::read_to_string(shim.join("calls")).unwrap();
    assert!(
        calls.lines().all(
            |l| !l.starts_with("exec") || l.contains(&format!("-n {agent_ns} {agent} -c {container} --"))
        ),
        "{calls}"
    );
    let _ = std::fs::remove_dir_all(&shim);
}
