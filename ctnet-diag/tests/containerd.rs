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

/// What a runtime does for a pod on kubelet's path, with Debian's plugins called
/// directly: a named netns `cni-…`, the conflist's plugins run in order with
/// `CNI_COMMAND=ADD` (bridge with host-local, then portmap with the pod's `hostPort` as
/// `runtimeConfig.portMappings` and the bridge's result as `prevResult`), kubelet's CNI
/// args, and libcni's cache entry for it. A server listens on port 80 in the pod.
const KUBELET_POD: &str = r#"
set -e
ns=cni-7d1e4c2a
id=7d1e4c2a9b
ip netns add $ns
export CNI_PATH=/usr/lib/cni CNI_IFNAME=eth0 CNI_NETNS=/run/netns/$ns CNI_CONTAINERID=$id CNI_COMMAND=ADD
export CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart;K8S_POD_INFRA_CONTAINER_ID=$id;K8S_POD_UID=u-1"
conf=/etc/cni/net.d/10-ctnet-pods.conflist
plugin() { python3 -c '
import json, sys
conf = json.load(open(sys.argv[1])); i = int(sys.argv[2])
p = dict(conf["plugins"][i]); p["name"] = conf["name"]; p["cniVersion"] = conf["cniVersion"]
if p.get("capabilities", {}).get("portMappings"):
    p["runtimeConfig"] = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
if len(sys.argv) > 3:
    p["prevResult"] = json.loads(sys.argv[3])
print(json.dumps(p))' "$conf" "$@"; }
result=$(plugin 0 | /usr/lib/cni/bridge)
plugin 1 "$result" | /usr/lib/cni/portmap > /dev/null
mkdir -p /var/lib/cni/results
python3 -c '
import base64, json, os, sys
conf, cid, result = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
args = [kv.split("=", 1) for kv in os.environ["CNI_ARGS"].split(";")]
entry = {"kind": "cniCacheV1", "containerId": cid,
         "config": base64.b64encode(open(conf, "rb").read()).decode(),
         "ifName": "eth0", "networkName": "ctnet-pods", "cniArgs": args,
         "capabilityArgs": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}]},
         "result": result}
json.dump(entry, open("/var/lib/cni/results/ctnet-pods-%s-eth0" % cid, "w"))' "$conf" "$id" "$result"
# kubelet writes the pod's resolv.conf (cluster DNS); here the node's resolver.
mkdir -p /etc/netns/$ns && echo "nameserver $(echo "$result" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ips"][0]["gateway"])')" > /etc/netns/$ns/resolv.conf
mkdir -p /tmp/www && echo ctnet-cart > /tmp/www/index.html
ip netns exec $ns busybox httpd -p 80 -h /tmp/www
echo "$result"
"#;

#[test]
fn a_pod_networked_the_kubelet_way_is_named_and_its_host_port_is_traced_through_portmap() {
    let Some(node) =
        node_or_skip("a_pod_networked_the_kubelet_way_is_named_and_its_host_port_is_traced_through_portmap")
    else {
        return;
    };
    let o = node.inside(&["bash", "-c", KUBELET_POD]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let result: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ip = result["ips"][0]["address"].as_str().unwrap().to_string();
    let gw = result["ips"][0]["gateway"].as_str().unwrap().to_string();

    // Named from the CNI args, its published port from the capability args.
    let o = node.inside(&[BIN, "show", "pod/shop/cart", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &shown["target"]["container"];
    assert_eq!(
        (c["runtime"].as_str(), c["name"].as_str()),
        (Some("kubernetes"), Some("shop/cart"))
    );
    assert_eq!(c["ports"][0]["host_port"], 8080, "{c}");
    assert_eq!(c["ports"][0]["container_port"], 80, "{c}");
    assert_eq!(
        c["networks"][0]["ip"].as_str().map(|a| format!("{a}/24")),
        Some(ip.clone())
    );
    // The snapshot says who owns each netns: the pod's, by its pod name.
    let o = node.inside(&[BIN, "show", "shop/cart"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("netns /run/netns/cni-7d1e4c2a") && text.contains("owner: kubernetes pod shop/cart"),
        "{text}"
    );
    let o = node.inside(&[BIN, "snapshot"]);
    let snap: Value = serde_json::from_slice(&o.stdout).unwrap();
    let owner = snap["netns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["refs"].to_string().contains("cni-7d1e4c2a"))
        .map(|n| n["owner"].clone());
    assert_eq!(
        owner,
        Some(serde_json::json!({"runtime": "kubernetes", "name": "shop/cart"})),
        "{snap:#}"
    );

    // The real thing: the node's own address on 8080 reaches the pod's server.
    let got = node.inside(&[
        "python3",
        "-c",
        "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())",
        &format!("http://{gw}:8080/"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        "ctnet-cart",
        "{got:?}"
    );
    // The engine walks the same: portmap's OUTPUT jump, its per-pod DNAT chain, the pod.
    let o = node.inside(&[BIN, "trace", "host", &gw, "--tcp", "8080", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(t["verdict"], "reachable", "{t:#}");
    let hops = t["hops"].as_array().unwrap();
    let dnat = hops
        .iter()
        .find(|h| h["verdict"] == "nat")
        .unwrap_or_else(|| panic!("no NAT hop: {t:#}"));
    let rule = dnat["rule"].as_str().unwrap_or_default();
    assert!(
        rule.contains("CNI-DN-")
            && rule.contains(&format!("--to-destination {}:80", ip.split('/').next().unwrap())),
        "{rule}"
    );
    // And the check traces the published port as it does Docker's.
    let o = node.inside(&[BIN, "check", "shop/cart", "--json"]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let port = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "port.published")
        .unwrap_or_else(|| panic!("no port.published: {r:#}"));
    assert_eq!(port["status"], "pass", "{port:#}");
    assert!(port["summary"].as_str().unwrap().contains("8080"), "{port:#}");
    // Healthy, the whole check passes; with the pod's host veth down it names that, and
    // `lab fix` heals it.
    let verdict = |target: &str| {
        let o = node.inside(&[BIN, "check", target, "--json"]);
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        let bad: Vec<String> = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "fail" || c["status"] == "warn")
            .map(|c| format!("{} {}", c["id"].as_str().unwrap(), c["status"].as_str().unwrap()))
            .collect();
        (r["verdict"].as_str().unwrap().to_string(), bad)
    };
    assert_eq!(verdict("shop/cart"), ("pass".to_string(), vec![]));
    let o = node.inside(&[BIN, "lab", "break", "veth-down", "pod/shop/cart"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (v, bad) = verdict("shop/cart");
    assert_eq!(v, "fail");
    assert!(bad.iter().any(|b| b == "link.host_veth_up fail"), "{bad:?}");
    let o = node.inside(&[BIN, "lab", "fix"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(verdict("shop/cart"), ("pass".to_string(), vec![]));
}
