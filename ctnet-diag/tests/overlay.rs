//! Multi-node overlay labs, live in a rootless world: nodes joined by VXLAN as flannel
//! lays them out, real pings between pods on different nodes as the ground truth, each
//! overlay fault named by `check` and by `trace` exactly when the pings die, and
//! `lab down` leaving nothing behind.

#[path = "support/script.rs"]
mod script;

use script::Script;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

/// Prints `TAG: value` lines; `ids` prints each failing or warning check as `id status`.
const COMMON: &str = r#"
set -e
ip link set lo up
ping_ok() { ip netns exec "$1" ping -c1 -W2 -q "$2" >/dev/null 2>&1 && echo ok || echo lost; }
ids() { $BIN check "$1" --peer "$2" --json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
bad = [c["id"] + " " + c["status"] for c in r["checks"] if c["status"] in ("fail", "warn")]
print(r["verdict"], "|", ", ".join(bad) if bad else "-")' || true; }
summary() { $BIN check "$1" --peer "$2" --json 2>/dev/null | python3 -c '
import json, sys
for c in json.load(sys.stdin)["checks"]:
    if c["id"] == sys.argv[1]:
        print(c["status"], "|", c["summary"])' "$3" || true; }
trace_says() { $BIN trace "$@" --json 2>/dev/null | python3 -c '
import json, sys
t = json.load(sys.stdin)
dead = [h for h in t["hops"] + t["reply"] if h["verdict"] in ("drop", "reject")]
print(t["verdict"], "|", (dead[0]["netns"] + " " + dead[0]["step"] + ": " + dead[0]["detail"]) if dead else "-")' || true; }
"#;

const TWO_NODES: &str = r#"
$BIN lab up --name ov --nodes 2 --overlay vxlan --containers 2 > /tmp/up.txt
echo "up: $(head -1 /tmp/up.txt)"
echo "list: $($BIN lab list | grep '^ov ' | tr -s ' ')"
# Ground truth: what iproute2 says of node 1's tunnel, against what ctnet read.
echo "ip vni: $(ip -n ov-n1 -d -j link show flannel.1 | python3 -c 'import json,sys; d=json.load(sys.stdin)[0]["linkinfo"]["info_data"]; print(d["id"], d["port"], d["local"])')"
echo "ctnet vni: $($BIN snapshot --node ov-n1 | python3 -c '
import json, sys
s = json.load(sys.stdin)
h = [n for n in s["netns"] if n["key"] == s["host"]][0]
v = [l["vxlan"] for l in h["links"] if l.get("vxlan")][0]
print(v["vni"], v["port"], v["local"])')"
echo "ip fdb: $(bridge -n ov-n1 -j fdb show dev flannel.1 | python3 -c 'import json,sys; print(sorted(e["mac"] + ">" + e["dst"] for e in json.load(sys.stdin) if e.get("dst")))')"
echo "ctnet fdb: $($BIN snapshot --node ov-n1 | python3 -c '
import json, sys
s = json.load(sys.stdin)
h = [n for n in s["netns"] if n["key"] == s["host"]][0]
print(sorted(e["mac"] + ">" + e["dst"] for e in h["fdb"] if e.get("dst")))')"
echo "veths: $($BIN veths --node ov-n1 | awk '$1 ~ /^veth/ { print $1, $8 }' | tr '\n' ' ')"
for pair in "ov-n1-c1 10.77.2.2" "ov-n1-c2 10.77.2.3" "ov-n2-c1 10.77.1.2" "ov-n2-c2 10.77.1.3"; do
  set -- $pair
  echo "healthy ping $1: $(ping_ok $1 $2)"
done
echo "healthy check: $(ids ov-n1-c1 ov-n2-c1)"
echo "healthy trace: $(trace_says ov-n1-c1 ov-n2-c1)"
echo "healthy hops: $($BIN trace ov-n1-c1 ov-n2-c1 2>/dev/null | grep -c 'vxlan: ')"
echo "big ok: $(ip netns exec ov-n1-c1 ping -c1 -W2 -q -M do -s 1422 10.77.2.2 >/dev/null 2>&1 && echo ok || echo lost)"
echo "big trace: $(trace_says ov-n1-c1 ov-n2-c1 --size 1450)"
for f in vtep-fdb-missing underlay-drop vni-mismatch; do
  $BIN lab break $f ov-n1-c1 --peer ov-n2-c1 >/dev/null 2>&1
  echo "$f ping: $(ping_ok ov-n1-c1 10.77.2.2)"
  echo "$f check: $(ids ov-n1-c1 ov-n2-c1)"
  echo "$f trace: $(trace_says ov-n1-c1 ov-n2-c1)"
  $BIN lab fix >/dev/null 2>&1
  echo "$f fixed ping: $(ping_ok ov-n1-c1 10.77.2.2)"
done
# The pod's MTU raised above the overlay's: a small ping passes, a full-size one with DF
# leaves the pod and dies at the tunnel.
$BIN lab break vxlan-mtu ov-n1-c1 >/dev/null 2>&1
echo "vxlan-mtu ping: $(ping_ok ov-n1-c1 10.77.2.2)"
echo "vxlan-mtu big: $(ip netns exec ov-n1-c1 ping -c1 -W2 -M do -s 1472 10.77.2.2 2>&1 | grep -o 'Frag needed and DF set (mtu = [0-9]*)' | head -1)"
echo "vxlan-mtu check: $(ids ov-n1-c1 ov-n2-c1)"
echo "vxlan-mtu trace: $(trace_says ov-n1-c1 ov-n2-c1 --size 1500)"
$BIN lab fix >/dev/null 2>&1
echo "vxlan-mtu fixed check: $(ids ov-n1-c1 ov-n2-c1)"
$BIN lab down --name ov > /tmp/down.txt
echo "down: $(cat /tmp/down.txt)"
echo "left: $(ip netns list | grep -c '^ov-' || true)"
echo "list after: $($BIN lab list | grep -c '^ov ' || true)"
"#;

#[test]
fn a_two_node_overlay_lab_names_each_fault_where_real_pings_die() {
    const NAME: &str = "a_two_node_overlay_lab_names_each_fault_where_real_pings_die";
    let script = format!("{COMMON}{TWO_NODES}");
    let Some(run) = Script::run(BIN, NAME, &script, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    assert!(
        line("up: ").contains("lab ov: 2 nodes joined by VXLAN flannel.1 (VNI 1, UDP 4789, static entries)"),
        "{run}"
    );
    assert!(line("list: ").ends_with(" up"), "{run}");
    // ctnet reads the tunnel as iproute2 does.
    assert_eq!(line("ip vni: "), "1 4789 10.78.0.1", "{run}");
    assert_eq!(line("ctnet vni: "), line("ip vni: "), "{run}");
    assert_eq!(line("ctnet fdb: "), line("ip fdb: "), "{run}");
    assert!(line("ip fdb: ").contains("02:c7:4e:00:00:02>10.78.0.2"), "{run}");
    // From node 1, its pods' veths map to their netns.
    let veths = line("veths: ");
    assert!(
        veths.contains("veth1 /run/netns/ov-n1-c1") && veths.contains("veth2 /run/netns/ov-n1-c2"),
        "{run}"
    );
    for pod in ["ov-n1-c1", "ov-n1-c2", "ov-n2-c1", "ov-n2-c2"] {
        assert_eq!(line(&format!("healthy ping {pod}: ")), "ok", "{run}");
    }
    assert_eq!(line("healthy check: "), "pass | -", "{run}");
    assert_eq!(line("healthy trace: "), "reachable | -", "{run}");
    // Encapsulated and decapsulated, both ways.
    assert_eq!(line("healthy hops: "), "4", "{run}");
    assert_eq!(line("big ok: "), "ok", "{run}");
    assert_eq!(line("big trace: "), "reachable | -", "{run}");

    // Each fault: the ping dies, the check names it, the trace names where, fixed heals.
    let cases = [
        (
            "vtep-fdb-missing",
            "overlay.vtep fail",
            // Node 1 is the host of the walk (the pod's node).
            "host vxlan: flannel.1 has no FDB entry for 02:c7:4e:00:00:02",
        ),
        (
            "underlay-drop",
            "overlay.underlay fail",
            "host input/filter/INPUT: dropped by a rule",
        ),
        (
            "vni-mismatch",
            "overlay.vni fail",
            "ov-n2 vxlan: VNI 2 arrives at flannel.1 (VNI 1)",
        ),
    ];
    for (fault, check, hop) in cases {
        assert_eq!(line(&format!("{fault} ping: ")), "lost", "{fault}: {run}");
        let c = line(&format!("{fault} check: "));
        assert!(
            c.starts_with("fail |") && c.contains(check),
            "{fault}: {c}\n{run}"
        );
        let t = line(&format!("{fault} trace: "));
        assert!(
            t.starts_with("unreachable |") && t.contains(hop),
            "{fault}: {t}\n{run}"
        );
        assert_eq!(line(&format!("{fault} fixed ping: ")), "ok", "{fault}: {run}");
    }
    assert_eq!(line("vxlan-mtu ping: "), "ok", "{run}");
    assert_eq!(
        line("vxlan-mtu big: "),
        "Frag needed and DF set (mtu = 1450)",
        "{run}"
    );
    let c = line("vxlan-mtu check: ");
    assert!(
        c.starts_with("fail |") && c.contains("mtu.overlay fail"),
        "{c}\n{run}"
    );
    let t = line("vxlan-mtu trace: ");
    assert!(
        t.starts_with("unreachable |")
            && t.contains("host mtu: 1500 bytes with DF set do not fit flannel.1's MTU 1450"),
        "{t}\n{run}"
    );
    assert_eq!(line("vxlan-mtu fixed check: "), "pass | -", "{run}");

    // 4 pods, 2 nodes, the switch.
    assert!(line("down: ").contains("7 netns"), "{run}");
    assert_eq!(line("left: "), "0", "{run}");
    assert_eq!(line("list after: "), "0", "{run}");
}

const THREE_NODES: &str = r#"
$BIN lab up --name lv --nodes 3 --overlay vxlan --containers 2 --learning > /tmp/up.txt
echo "up: $(head -1 /tmp/up.txt)"
lost=0; n=0
for a in lv-n1-c1 lv-n1-c2 lv-n2-c1 lv-n2-c2 lv-n3-c1 lv-n3-c2; do
  for ip in 10.77.1.2 10.77.1.3 10.77.2.2 10.77.2.3 10.77.3.2 10.77.3.3; do
    n=$((n + 1))
    [ "$(ping_ok $a $ip)" = ok ] || { lost=$((lost + 1)); echo "lost: $a -> $ip"; }
  done
done
echo "matrix: $n pings, $lost lost"
echo "check 1-3: $(ids lv-n1-c1 lv-n3-c2)"
echo "check 3-2: $(ids lv-n3-c2 lv-n2-c1)"
echo "vtep: $(summary lv-n2-c1 lv-n3-c1 overlay.vtep)"
echo "vni: $(summary lv-n2-c1 lv-n3-c1 overlay.vni)"
echo "trace 3-1: $(trace_says lv-n3-c1 lv-n1-c2)"
$BIN lab down --name lv > /tmp/down.txt
echo "down: $(cat /tmp/down.txt)"
echo "left: $(ip netns list | grep -c '^lv-' || true)"
"#;

#[test]
fn a_three_node_learning_overlay_lab_reaches_every_pod_and_goes_away() {
    const NAME: &str = "a_three_node_learning_overlay_lab_reaches_every_pod_and_goes_away";
    let script = format!("{COMMON}{THREE_NODES}");
    let Some(run) = Script::run(BIN, NAME, &script, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    assert!(
        line("up: ").contains("3 nodes joined by VXLAN flannel.1 (VNI 1, UDP 4789, learning)"),
        "{run}"
    );
    assert_eq!(line("matrix: "), "36 pings, 0 lost", "{run}");
    assert_eq!(line("check 1-3: "), "pass | -", "{run}");
    assert_eq!(line("check 3-2: "), "pass | -", "{run}");
    assert!(line("vtep: ").starts_with("pass |"), "{run}");
    let vni = line("vni: ");
    assert!(
        vni.starts_with("pass |") && vni.contains("matches the 2 remote VTEP(s) seen from here"),
        "{vni}\n{run}"
    );
    assert_eq!(line("trace 3-1: "), "reachable | -", "{run}");
    // 6 pods, 3 nodes, the switch.
    assert!(line("down: ").contains("10 netns"), "{run}");
    assert_eq!(line("left: "), "0", "{run}");
}

const WRONG_NODE: &str = r#"
$BIN lab up --name wn --nodes 3 --overlay vxlan --containers 1 > /dev/null
echo "healthy ping: $(ping_ok wn-n1-c1 10.77.2.2)"
# Node 1's entry for node 2's VTEP MAC sends it to node 3 instead.
bridge -n wn-n1 fdb del 02:c7:4e:00:00:02 dev flannel.1 dst 10.78.0.2 self
bridge -n wn-n1 fdb append 02:c7:4e:00:00:02 dev flannel.1 dst 10.78.0.3 self permanent
echo "wrong ping: $(ping_ok wn-n1-c1 10.77.2.2)"
echo "other ping: $(ping_ok wn-n1-c1 10.77.3.2)"
echo "wrong vtep: $(summary wn-n1-c1 wn-n2-c1 overlay.vtep)"
echo "wrong trace: $(trace_says wn-n1-c1 wn-n2-c1)"
$BIN lab down --name wn > /dev/null
echo "left: $(ip netns list | grep -c '^wn-' || true)"
"#;

#[test]
fn an_fdb_entry_sending_a_node_to_the_wrong_vtep_is_named_where_real_pings_die() {
    const NAME: &str = "an_fdb_entry_sending_a_node_to_the_wrong_vtep_is_named_where_real_pings_die";
    let script = format!("{COMMON}{WRONG_NODE}");
    let Some(run) = Script::run(BIN, NAME, &script, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    assert_eq!(line("healthy ping: "), "ok", "{run}");
    assert_eq!(line("wrong ping: "), "lost", "{run}");
    assert_eq!(line("other ping: "), "ok", "{run}");
    let v = line("wrong vtep: ");
    assert!(
        v.starts_with("fail |")
            && v.contains(
                "sends 02:c7:4e:00:00:02 (10.77.2.0's MAC) to the VTEP at 10.78.0.3 (flannel.1 in wn-n3)"
            )
            && v.contains("the wrong node")
            && v.contains("(02:c7:4e:00:00:02 is the VTEP at 10.78.0.2)"),
        "{v}\n{run}"
    );
    let t = line("wrong trace: ");
    assert!(
        t.starts_with("unreachable |") && t.contains("wn-n3 vxlan: decapsulated by flannel.1 (MAC 02:c7:4e:00:00:03), but the frame is for 02:c7:4e:00:00:02"),
        "{t}\n{run}"
    );
    assert_eq!(line("left: "), "0", "{run}");
}

const REFUSED: &str = r#"
ip netns add ov-n2
$BIN lab up --name ov --nodes 2 --overlay vxlan --containers 1 > /tmp/out.txt 2> /tmp/err.txt && echo "taken: built" || echo "taken: $(cat /tmp/err.txt)"
echo "after: $(ip netns list | cut -d' ' -f1 | sort | tr '\n' ' ')"
echo "record: $(ls /run/ctnet/labs/ 2>/dev/null | grep -c nodes || true)"
$BIN lab up --name ov --nodes 2 --containers 1 2> /tmp/err.txt && echo "no overlay: built" || echo "no overlay: $(tr '\n' ' ' < /tmp/err.txt)"
$BIN lab up --name ov --nodes 1 --overlay vxlan 2> /tmp/err.txt && echo "one node: built" || echo "one node: $(head -1 /tmp/err.txt)"
$BIN lab up --name ov --nodes 2 --overlay vxlan --nat 2> /tmp/err.txt && echo "nat: built" || echo "nat: $(head -1 /tmp/err.txt)"
ip netns del ov-n2
$BIN lab up --name ov --nodes 2 --overlay vxlan --containers 1 > /dev/null
$BIN lab up --name ov --containers 1 2> /tmp/err.txt && echo "same name: built" || echo "same name: $(head -1 /tmp/err.txt)"
$BIN lab down --name ov > /dev/null
$BIN lab down --name ov > /tmp/out.txt && echo "twice: $(cat /tmp/out.txt)"
"#;

#[test]
fn a_node_lab_refuses_what_it_cannot_build_and_builds_nothing_then() {
    const NAME: &str = "a_node_lab_refuses_what_it_cannot_build_and_builds_nothing_then";
    let script = format!("{COMMON}{REFUSED}");
    let Some(run) = Script::run(BIN, NAME, &script, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    let t = line("taken: ");
    assert!(t.contains("netns ov-n2 already exists"), "{t}\n{run}");
    assert_eq!(line("after: ").trim(), "ov-n2", "{run}");
    assert_eq!(line("record: "), "0", "{run}");
    assert!(line("no overlay: ").contains("--overlay"), "{run}");
    assert!(
        line("one node: ").contains("--nodes must be between 2 and 16"),
        "{run}"
    );
    assert!(line("nat: ").contains("cannot be used with"), "{run}");
    assert!(
        line("same name: ").contains("a multi-node lab called ov already exists"),
        "{run}"
    );
    assert!(line("twice: ").contains("nothing"), "{run}");
}
