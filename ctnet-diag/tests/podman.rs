//! Runtime tests: ctnet-diag on a host running a real rootful Podman (netavark, no API
//! socket: Podman is daemonless), started by the harness in its own namespaces, checked
//! against `podman inspect`, `podman network inspect` and `nsenter ... ip`.

#[path = "support/podman.rs"]
mod podman;

use std::collections::BTreeSet;

use ctnet_core::model::Snapshot;
use ctnet_core::topology::{NetnsView, Role, Topology};
use ctnet_core::vocab::PortState;
use podman::{Host, IMAGE, host_or_skip};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

fn run(h: &Host, args: &[&str]) -> (Option<i32>, String, String) {
    let mut argv = vec![BIN];
    argv.extend_from_slice(args);
    let o = h.inside(&argv);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn run_ok(h: &Host, args: &[&str]) -> String {
    let (code, out, err) = run(h, args);
    assert_eq!(code, Some(0), "ctnet-diag {args:?}:\n{out}\n{err}");
    out
}

fn inspect(h: &Host, name: &str) -> Value {
    serde_json::from_str::<Value>(&h.podman_ok(&["container", "inspect", name])).unwrap()[0].clone()
}

fn netns_of_pid(topo: &Topology, pid: u64) -> Option<&NetnsView> {
    topo.netns.iter().find(|n| {
        n.names
            .iter()
            .any(|x| x.starts_with(&format!("pid:{pid}(")) || x == &format!("pid:{pid}"))
    })
}

/// `pweb` on Podman's default network publishing 8080:80 (a server behind it), `papi`
/// on a user network `pnet` and also on the default one, `pold` created and never
/// started.
fn start_containers(h: &Host) {
    h.podman_ok(&[
        "run", "-d", "--name", "pweb", "-p", "8080:80", IMAGE, "httpd", "-f", "-p", "80", "-h", "/",
    ]);
    h.podman_ok(&["network", "create", "--subnet", "10.77.0.0/24", "pnet"]);
    h.podman_ok(&[
        "run",
        "-d",
        "--name",
        "papi",
        "--network",
        "pnet",
        IMAGE,
        "sleep",
        "3600",
    ]);
    h.podman_ok(&["network", "connect", "podman", "papi"]);
    h.podman_ok(&["create", "--name", "pold", IMAGE, "sleep", "3600"]);
    // Both reach their gateways: the bridges have learned their MACs.
    h.podman_ok(&["exec", "pweb", "ping", "-c1", "-W2", "10.88.0.1"]);
    h.podman_ok(&["exec", "papi", "ping", "-c1", "-W2", "10.77.0.1"]);
}

#[test]
fn every_podman_container_is_found_by_name_with_its_host_veth_ip_and_mac() {
    let Some(h) = host_or_skip("every_podman_container_is_found_by_name_with_its_host_veth_ip_and_mac")
    else {
        return;
    };
    start_containers(&h);
    // No API socket: what ctnet knows by name it had from Podman's CLI.
    assert!(
        !h.inside(&["test", "-e", "/run/podman/podman.sock"])
            .status
            .success()
    );
    let snap = Snapshot::from_json(&run_ok(&h, &["snapshot"])).unwrap();
    let topo = Topology::build(&snap);
    let host_links: Value = serde_json::from_slice(&h.inside(&["ip", "-j", "link"]).stdout).unwrap();
    let mut seen_veths = BTreeSet::new();
    for name in ["pweb", "papi"] {
        let c = inspect(&h, name);
        let pid = c["State"]["Pid"].as_u64().unwrap();
        let view = netns_of_pid(&topo, pid).unwrap_or_else(|| panic!("{name}: netns of pid {pid} not found"));
        assert_eq!(view.role, Role::Container, "{name}");
        // Podman's sandbox key names the same netns.
        let key = c["NetworkSettings"]["SandboxKey"].as_str().unwrap();
        assert!(key.starts_with("/run/netns/netns-"), "{key}");
        assert!(
            view.names.iter().any(|n| n == key),
            "{name}: {key} not in {:?}",
            view.names
        );
        let mine = snap.containers.iter().find(|x| x.name == name).unwrap();
        assert_eq!(mine.runtime, "podman");
        assert_eq!(mine.id, c["Id"].as_str().unwrap());
        assert_eq!(mine.image.as_deref(), Some("localhost/bbox:latest"));
        assert_eq!(mine.netns, Some(view.key), "{name} tied to its netns");
        let in_ns: Value = serde_json::from_slice(
            &h.inside(&["nsenter", "-t", &pid.to_string(), "-n", "ip", "-j", "link"])
                .stdout,
        )
        .unwrap();
        let networks = c["NetworkSettings"]["Networks"].as_object().unwrap();
        assert_eq!(networks.len(), if name == "papi" { 2 } else { 1 }, "{name}");
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
            let bridge: Value = serde_json::from_str(&h.podman_ok(&["network", "inspect", net])).unwrap();
            let want_bridge = bridge[0]["network_interface"].as_str().unwrap();
            assert_eq!(iface.bridge.as_deref(), Some(want_bridge), "{name}/{net}");
            assert_eq!(iface.port_state, Some(PortState::Forwarding), "{name}/{net}");
            let known = mine.networks.iter().find(|n| &n.name == net).unwrap();
            assert_eq!(known.bridge.as_deref(), Some(want_bridge), "{name}/{net}");
            assert_eq!(known.mac.as_deref(), Some(mac), "{name}/{net}");
            let host_veth = iface
                .host_veth
                .as_ref()
                .unwrap_or_else(|| panic!("{name}/{net}: no host veth"));
            // nsenter's view: the container interface's peer is our host veth.
            let theirs = in_ns
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["address"] == mac)
                .unwrap();
            assert_eq!(theirs["ifname"], iface.iface.name.as_str());
            assert_eq!(theirs["link_index"].as_u64(), Some(u64::from(host_veth.ifindex)));
            let host_side = host_links
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["ifindex"].as_u64() == Some(u64::from(host_veth.ifindex)))
                .unwrap();
            assert_eq!(host_side["ifname"], host_veth.name.as_str());
            seen_veths.insert(host_veth.name.clone());
        }
    }
    let all: BTreeSet<String> = topo.veths.iter().map(|v| v.host.name.clone()).collect();
    assert_eq!(all, seen_veths);
    let web = snap.containers.iter().find(|c| c.name == "pweb").unwrap();
    assert!(
        web.ports
            .iter()
            .any(|p| p.container_port == 80 && p.host_port == Some(8080) && p.protocol == "tcp"),
        "{:?}",
        web.ports
    );
    let old = snap.containers.iter().find(|c| c.name == "pold").unwrap();
    assert_eq!((old.state.as_str(), old.netns), ("created", None));

    // The table users asked for names each container beside its veth.
    let table = run_ok(&h, &["veths"]);
    for needle in ["pweb", "papi", "podman0", "podman1"] {
        assert!(table.contains(needle), "{needle} missing from:\n{table}");
    }
    // By name and by id prefix, as with Docker.
    for name in ["pweb", "papi", "pold"] {
        let id = inspect(&h, name)["Id"].as_str().unwrap().to_string();
        let by_name: Value = serde_json::from_str(&run_ok(&h, &["show", name, "--json"])).unwrap();
        let by_id: Value = serde_json::from_str(&run_ok(&h, &["show", &id[..10], "--json"])).unwrap();
        let t = &by_name["target"];
        assert_eq!(t["container"]["name"], name);
        assert_eq!(t["container"]["runtime"], "podman");
        assert_eq!(t["netns"], by_id["target"]["netns"], "{name}: name and id agree");
    }
    // --no-daemon asks no runtime, the CLI included: the names are gone, and it says why.
    let (code, _, err) = run(&h, &["show", "pweb", "--no-daemon"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--no-daemon"), "{err}");
}

#[test]
fn check_passes_on_a_healthy_podman_host_and_names_a_fault() {
    let Some(h) = host_or_skip("check_passes_on_a_healthy_podman_host_and_names_a_fault") else {
        return;
    };
    start_containers(&h);
    for args in [
        &["pweb"][..],
        &["papi"][..],
        &["pweb", "--peer", "papi", "--probe"][..],
    ] {
        let mut argv = vec!["check"];
        argv.extend_from_slice(args);
        let (code, out, err) = run(&h, &argv);
        assert_eq!(code, Some(0), "check {args:?}:\n{out}\n{err}");
        assert!(
            out.starts_with("verdict: PASS") || out.starts_with("verdict: WARN"),
            "{out}"
        );
    }
    // The published port, under netavark's own DNAT chains.
    let (_, out, _) = run(&h, &["check", "pweb"]);
    assert!(
        out.contains("PASS port.published") && out.contains("tcp/8080 -> pweb:80 arrives"),
        "{out}"
    );
    // pweb's host veth down: check names it.
    let snap = Snapshot::from_json(&run_ok(&h, &["snapshot"])).unwrap();
    let topo = Topology::build(&snap);
    let pid = inspect(&h, "pweb")["State"]["Pid"].as_u64().unwrap();
    let veth = netns_of_pid(&topo, pid).unwrap().ifaces[0]
        .host_veth
        .as_ref()
        .unwrap()
        .name
        .clone();
    let o = h.inside(&["ip", "link", "set", &veth, "down"]);
    assert!(o.status.success());
    let (code, out, _) = run(&h, &["check", "pweb"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL") && out.contains(&veth), "{out}");
}

#[test]
fn a_rootless_podman_container_is_named_from_its_users_store_and_shown_as_it_is() {
    const NAME: &str = "a_rootless_podman_container_is_named_from_its_users_store_and_shown_as_it_is";
    let Some(h) = host_or_skip(NAME) else {
        return;
    };
    if let Err(why) = h.rootless() {
        assert!(
            !ctnet_core::world::in_ci(),
            "{NAME} needs a rootless Podman: {why}; under CI this is a failure"
        );
        ctnet_core::world::report_skip(&format!("{NAME}: {why}"));
        return;
    }
    // A user's container on slirp4netns (Podman 4.3's rootless default), and root's own.
    h.podman_as_user(&[
        "run",
        "-d",
        "--name",
        "rweb",
        "--network",
        "slirp4netns",
        IMAGE,
        "sleep",
        "3600",
    ]);
    h.podman_ok(&["run", "-d", "--name", "pweb", IMAGE, "sleep", "3600"]);
    let theirs: Value = serde_json::from_str::<Value>(&h.podman_as_user(&["container", "inspect", "rweb"]))
        .unwrap()[0]
        .clone();
    let pid = theirs["State"]["Pid"].as_u64().unwrap();
    let id = theirs["Id"].as_str().unwrap();

    let snap = Snapshot::from_json(&run_ok(&h, &["snapshot"])).unwrap();
    let c = snap
        .containers
        .iter()
        .find(|c| c.name == "rweb")
        .unwrap_or_else(|| panic!("rweb not among {:?}", snap.containers));
    assert_eq!((c.runtime.as_str(), c.id.as_str()), ("podman", id));
    assert_eq!((c.pid, c.user), (Some(pid as u32), Some(podman::ROOTLESS_UID)));
    // root's container is root's.
    assert_eq!(
        snap.containers.iter().find(|c| c.name == "pweb").map(|c| c.user),
        Some(None)
    );
    // Its netns: owned by the user's user namespace, reaching out through tap0.
    let ns = snap
        .netns
        .iter()
        .find(|n| Some(n.key) == c.netns)
        .expect("rweb tied to its netns");
    assert_eq!(ns.userns_uid, Some(podman::ROOTLESS_UID));
    let owner = ns.owner.as_ref().unwrap();
    assert_eq!((owner.runtime.as_str(), owner.name.as_str()), ("podman", "rweb"));
    let tap = ns.links.iter().find(|l| l.name == "tap0").expect("tap0");
    assert_eq!(tap.kind, Some(ctnet_core::vocab::LinkKind::Tun));
    // nsenter's view agrees on its address.
    let o = h.inside(&[
        "nsenter",
        "-t",
        &pid.to_string(),
        "-n",
        "ip",
        "-j",
        "addr",
        "show",
        "tap0",
    ]);
    let ip: Value = serde_json::from_slice(&o.stdout).unwrap();
    let addr = ip[0]["addr_info"][0]["local"].as_str().unwrap();
    assert!(
        ns.addresses.iter().any(|a| a.address.to_string() == addr),
        "{addr} not in {:?}",
        ns.addresses
    );
    let shown = run_ok(&h, &["show", "rweb"]);
    for want in [
        &format!(
            "container rweb (podman {}, rootless as uid 4242, image localhost/bbox",
            &id[..12]
        ) as &str,
        "owner: podman container rweb",
        "in a user namespace of uid 4242 (rootless)",
        "a tap served in user space (slirp4netns or pasta, rootless)",
    ] {
        assert!(shown.contains(want), "{want:?} not in\n{shown}");
    }
    // check says what applies, and fails nothing that is not wrong.
    let (code, out, err) = run(&h, &["check", "rweb"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("SKIP link.peer_found")
            && out.contains("tap0 is a tap served in user space (rootless, uid 4242"),
        "{out}"
    );
}
