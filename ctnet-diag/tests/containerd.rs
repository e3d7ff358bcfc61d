//! Runtime tests: ctnet-diag on a node running a real containerd whose containers a CNI
//! plugin chain networked (`ctr run --cni`: libcni, Debian's bridge, host-local and
//! portmap plugins), checked against libcni's own result cache and `nsenter ... ip`.

#[path = "support/containerd.rs"]
mod containerd;

use containerd::node_or_skip;
use ctnet_core::model::Snapshot;
use ctnet_core::topology::Topology;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

#[test]
fn cni_containers_are_found_by_their_id_with_the_veth_ip_and_mac_of_their_cni_result() {
    let Some(node) =
        node_or_skip("cni_containers_are_found_by_their_id_with_the_veth_ip_and_mac_of_their_cni_result")
    else {
        return;
    };
    // pod1 labelled as kubelet labels a pod's containers; pod2 not at all.
    node.run_pod(
        "pod1",
        &["io.kubernetes.pod.name=web", "io.kubernetes.pod.namespace=shop"],
    );
    node.run_pod("pod2", &[]);
    let o = node.inside(&[BIN, "snapshot"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let snap = Snapshot::from_json(&String::from_utf8_lossy(&o.stdout)).unwrap();
    let topo = Topology::build(&snap);
    for id in ["pod1", "pod2"] {
        // libcni's own record of what the plugins made (ctr makes the id
        // `<namespace>-<id>`).
        let cached = node.inside(&[
            "cat",
            &format!("/var/lib/cni/results/ctnet-pods-default-{id}-eth0"),
        ]);
        assert!(
            cached.status.success(),
            "{}",
            String::from_utf8_lossy(&cached.stderr)
        );
        let cached: Value = serde_json::from_slice(&cached.stdout).unwrap();
        let ifaces = cached["result"]["interfaces"].as_array().unwrap();
        let inside = ifaces.iter().find(|i| i["sandbox"].is_string()).unwrap();
        let host_veth = ifaces[1]["name"].as_str().unwrap();
        let mac = inside["mac"].as_str().unwrap();
        let ip = cached["result"]["ips"][0]["address"].as_str().unwrap();

        let c = snap
            .containers
            .iter()
            .find(|c| c.id == format!("default-{id}"))
            .unwrap_or_else(|| panic!("default-{id} not among {:?}", snap.containers));
        // containerd's labels name the pod; without them, the container's own id.
        let (runtime, name) = if id == "pod1" {
            ("kubernetes", "shop/web")
        } else {
            ("containerd", "pod2")
        };
        assert_eq!((c.runtime.as_str(), c.name.as_str()), (runtime, name));
        assert_eq!(c.pid, Some(node.pid_of(id)));
        let view = topo
            .netns
            .iter()
            .find(|n| Some(n.key) == c.netns)
            .unwrap_or_else(|| panic!("{id}: not tied to a netns"));
        let iface = view
            .ifaces
            .iter()
            .find(|i| i.mac.as_deref() == Some(mac))
            .unwrap();
        assert!(
            iface.ips.iter().any(|x| x == ip),
            "{id}: {ip} not in {:?}",
            iface.ips
        );
        assert_eq!(iface.host_veth.as_ref().unwrap().name, host_veth);
        assert_eq!(iface.bridge.as_deref(), Some("cni0"));
        // nsenter's view agrees.
        let pid = c.pid.unwrap().to_string();
        let theirs: Value = serde_json::from_slice(
            &node
                .inside(&["nsenter", "-t", &pid, "-n", "ip", "-j", "addr", "show", "eth0"])
                .stdout,
        )
        .unwrap();
        assert_eq!(theirs[0]["address"], mac);
        assert_eq!(
            format!(
                "{}/{}",
                theirs[0]["addr_info"][0]["local"].as_str().unwrap(),
                theirs[0]["addr_info"][0]["prefixlen"]
            ),
            ip
        );
        // By name, as a target: a pod also as pod/NS/NAME and by its bare name.
        let targets: &[&str] = if id == "pod1" {
            &["shop/web", "pod/shop/web", "web"]
        } else {
            &["pod2"]
        };
        for t in targets {
            let o = node.inside(&[BIN, "show", t, "--json"]);
            assert!(o.status.success(), "{t}: {}", String::from_utf8_lossy(&o.stderr));
            let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(shown["target"]["container"]["id"], format!("default-{id}"), "{t}");
            assert_eq!(shown["target"]["container"]["runtime"], runtime, "{t}");
        }
        let o = node.inside(&[BIN, "veths"]);
        let table = String::from_utf8_lossy(&o.stdout);
        assert!(
            table.lines().any(|l| l.contains(host_veth) && l.contains(name)),
            "{table}"
        );
    }
}
