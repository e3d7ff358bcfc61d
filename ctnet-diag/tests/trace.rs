//! `ctnet-diag trace` as a user runs it: on snapshots recorded from labs (reachable,
//! a named fault, JSON), on bad input (exit 2, never a panic or a silent allow), and
//! live inside a rootless world on a lab with the faults the engine must name.

use std::process::{Command, Output};

#[path = "support/world.rs"]
mod world;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run ctnet-diag")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> String {
    format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `fixture` with `edit` applied to its JSON, written to a temporary file.
fn edited(name: &str, tag: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap();
    edit(&mut v);
    let path = std::env::temp_dir().join(format!("ctnet-trace-{tag}-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn a_healthy_pair_is_reachable_with_every_hop_and_the_reply() {
    let from = fixture("lab-healthy.json");
    let o = run(&["trace", "c1", "c2", "--tcp", "80", "--from", &from]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.starts_with("verdict: REACHABLE  tcp 10.50.0.2:40000 > 10.50.0.3:80 (c1 to c2)"),
        "{out}"
    );
    for want in [
        "first packet:",
        "bridged by br0 from port vc1 to port vc2",
        "iptables filter FORWARD rule 1: -A FORWARD -i br0 -o br0 -j ACCEPT  (8 packets so far)",
        "reply:",
        "DELIVER [c2 eth0] deliver",
        "assumed:",
    ] {
        assert!(out.contains(want), "missing {want:?}:\n{out}");
    }
    let o = run(&["trace", "c1", "c2", "--tcp", "80", "--json", "--from", &from]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], "ctnet.trace/v1");
    assert_eq!(v["verdict"], "reachable");
    assert_eq!(v["flow"]["proto"], "tcp");
    assert_eq!(v["flow"]["dport"], 80);
    for leg in ["hops", "reply"] {
        let hops = v[leg].as_array().unwrap();
        assert!(!hops.is_empty(), "{leg} empty");
        for h in hops {
            for k in ["netns", "iface", "step", "verdict", "rule", "detail"] {
                assert!(h.get(k).is_some(), "{leg} hop lacks {k}: {h}");
            }
            let verdict = h["verdict"].as_str().unwrap();
            assert!(
                ["allow", "drop", "reject", "nat", "deliver", "may"].contains(&verdict),
                "{h}"
            );
        }
        assert_eq!(hops.last().unwrap()["verdict"], "deliver");
    }
}

#[test]
fn faults_are_named_at_the_hop_that_drops() {
    let from = fixture("lab-faults.json");
    for (peer, want) in [
        ("c2", "10.50.0.3 is behind port vc2 of br0, which is down"),
        ("c3", "10.50.0.4 is behind vc3, which is not a port of bridge br0"),
        (
            "c4",
            "the sender's neighbour entry for 10.50.0.5 says 02:00:00:00:de:ad",
        ),
    ] {
        let o = run(&["trace", "c1", peer, "--from", &from]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{peer}: {out}{err}");
        assert!(out.starts_with("verdict: UNREACHABLE"), "{out}");
        assert!(out.contains(want), "{peer}: missing {want:?}:\n{out}");
    }
}

#[test]
fn bad_input_exits_2_and_says_what_would_be_right() {
    let from = fixture("lab-healthy.json");
    for (args, want) in [
        (vec!["trace", "nosuch", "c2"], "unknown target \"nosuch\""),
        (vec!["trace", "c1", "nosuch"], "unknown target \"nosuch\""),
        (
            vec!["trace", "external:notanip", "c1"],
            "external:notanip is not an IP address",
        ),
        (
            vec!["trace", "external@", "c1"],
            "external@ needs an interface name",
        ),
        (vec!["trace", "externalx", "c1"], "unknown target"),
        (
            vec!["trace", "c1", "c2", "--sport", "5"],
            "--sport needs --tcp PORT or --udp PORT",
        ),
        (
            vec!["trace", "external@nosuch0", "c1"],
            "the host has no interface nosuch0",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["--from", &from]);
        let o = run(&a);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: missing {want:?} in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Clap's own checks: a port out of range, two protocols.
    for args in [
        vec!["trace", "c1", "c2", "--tcp", "70000"],
        vec!["trace", "c1", "c2", "--tcp", "80", "--udp", "53"],
    ] {
        let mut a = args.clone();
        a.extend(["--from", &from]);
        assert_eq!(run(&a).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn missing_or_broken_rules_make_the_trace_ambiguous_never_a_silent_allow() {
    // No firewall in the snapshot at all.
    let no_fw = edited("lab-healthy.json", "nofw", |v| {
        v["firewall"] = serde_json::Value::Null
    });
    let o = run(&["trace", "c1", "c2", "--from", &no_fw]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.starts_with("verdict: AMBIGUOUS"), "{out}");
    assert!(
        out.contains("the snapshot holds no firewall rules of the host"),
        "{out}"
    );
    // A loop of jumps: the kernel would refuse the table; the trace says so.
    let looped = edited("lab-healthy.json", "loop", |v| {
        let filter = v["firewall"]["iptables"][0]["tables"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|t| t["name"] == "filter")
            .unwrap();
        for name in ["LOOP1", "LOOP2"] {
            filter["chains"].as_array_mut().unwrap().push(serde_json::json!({
                "name": name, "policy": null, "packets": 0, "bytes": 0, "owner": "other"
            }));
        }
        let rules = filter["rules"].as_array_mut().unwrap();
        rules.insert(
            0,
            serde_json::json!({"chain": "FORWARD", "position": 1, "spec": "-j LOOP1",
            "target": "LOOP1", "packets": 0, "bytes": 0, "owner": "other"}),
        );
        rules.push(
            serde_json::json!({"chain": "LOOP1", "position": 1, "spec": "-j LOOP2",
            "target": "LOOP2", "packets": 0, "bytes": 0, "owner": "other"}),
        );
        rules.push(
            serde_json::json!({"chain": "LOOP2", "position": 1, "spec": "-j LOOP1",
            "target": "LOOP1", "packets": 0, "bytes": 0, "owner": "other"}),
        );
    });
    let o = run(&["trace", "c1", "c2", "--from", &looped]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.starts_with("verdict: AMBIGUOUS"), "{out}");
    assert!(out.contains("loop of jumps"), "{out}");
    // A rule iptables-save would never print, and an unknown target: a *may*.
    let odd = edited("lab-healthy.json", "odd", |v| {
        let filter = v["firewall"]["iptables"][0]["tables"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|t| t["name"] == "filter")
            .unwrap();
        let rules = filter["rules"].as_array_mut().unwrap();
        rules.insert(
            0,
            serde_json::json!({"chain": "FORWARD", "position": 1,
            "spec": "-m frobnicate --wibble 3 -j DROP", "target": "DROP",
            "packets": 0, "bytes": 0, "owner": "other"}),
        );
        rules.insert(
            1,
            serde_json::json!({"chain": "FORWARD", "position": 2,
            "spec": "-p icmp -j SOMETHINGNEW", "target": "SOMETHINGNEW",
            "packets": 0, "bytes": 0, "owner": "other"}),
        );
    });
    let o = run(&["trace", "c1", "c2", "--json", "--from", &odd]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1), "{v}");
    assert_eq!(v["verdict"], "ambiguous", "{v:#}");
    let may = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["verdict"] == "may")
        .unwrap();
    assert!(may["rule"].as_str().unwrap().contains("frobnicate"), "{may}");
}

/// Live, inside a rootless world: a lab, then each fault the engine must name, traced,
/// confirmed with a real ping where ICMP is concerned, and fixed.
const LIVE: &str = r#"
set -e
$BIN lab up --name t --containers 3 --nat >/dev/null
ip netns exec t-c1 ping -c1 -W2 10.77.0.3 >/dev/null
# A server on t-c2's port 80, killed by its pid at the end.
ip netns exec t-c2 python3 -c 'import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 80)); s.listen(); time.sleep(120)' &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for i in $(seq 50); do ip netns exec t-c2 ss -ltn | grep -q ':80 ' && break; sleep 0.1; done
step() { echo "== $*"; }
connect() { ip netns exec t-c1 python3 -c 'import socket
s = socket.socket(); s.settimeout(1)
try:
    s.connect(("10.77.0.3", 80)); print("connect ok")
except OSError as e:
    print("connect failed:", e)'; }
step healthy
$BIN trace t-c1 t-c2 --tcp 80 | head -1
$BIN check t-c2 | grep 'port.listening' | head -1
connect
$BIN trace t-c1 t-c2 --tcp 81 | head -2 | tail -1
$BIN trace t-c1 t-c2 --tcp 80 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("json", d["verdict"], len(d["hops"]), len(d["reply"]))'
step port-drop
$BIN lab break port-drop t-c1 --peer t-c2 >/dev/null
$BIN trace t-c1 t-c2 --tcp 80 | head -2 || true
$BIN trace t-c1 t-c2 --tcp 80 >/dev/null && echo "port-drop exit 0" || echo "port-drop exit $?"
$BIN trace t-c1 t-c2 | head -1
ip netns exec t-c1 ping -c1 -W2 10.77.0.3 >/dev/null && echo "ping ok"
# No peer given: t-c2 serves tcp/80 and has t-c1 in its neighbour table.
$BIN check t-c2 | grep -A5 'port.listening' | sed 's/^/listening: /' || true
connect
$BIN lab fix >/dev/null
step nft-drop
$BIN lab break nft-drop t-c1 --peer t-c2 >/dev/null
$BIN trace t-c1 t-c2 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); h=[h for h in d["hops"] if h["verdict"]=="drop"][0]; print("nft", d["verdict"], h["step"], h["rule_ref"]["source"], h["rule_ref"]["table"], h["rule"])'
ip netns exec t-c1 ping -c1 -W2 10.77.0.3 >/dev/null && echo "ping ok" || echo "ping lost"
$BIN lab fix >/dev/null
step isolation
$BIN lab break isolation t-c1 >/dev/null
$BIN trace t-c1 t-c2 | head -2 | tail -1
ip netns exec t-c1 ping -c1 -W1 10.77.0.3 >/dev/null 2>&1 && echo "iso ping ok" || echo "iso ping lost"
$BIN lab fix >/dev/null
step container-rule
ip netns exec t-c2 iptables -A INPUT -p icmp -j DROP
$BIN trace t-c1 t-c2 | head -2 | tail -1
# A snapshot with every netns's rules gives the same answer offline; without them the
# trace says it assumed none there.
$BIN snapshot --netns-rules -o /tmp/ctnet-trace-rules.$$ 2>/dev/null
$BIN trace t-c1 t-c2 --from /tmp/ctnet-trace-rules.$$ | head -2 | tail -1 | sed 's/^/offline: /'
$BIN snapshot -o /tmp/ctnet-trace-norules.$$ 2>/dev/null
$BIN trace t-c1 t-c2 --from /tmp/ctnet-trace-norules.$$ | grep -o 'the rules inside t-c1, t-c2 were not read' || true
rm -f /tmp/ctnet-trace-rules.$$ /tmp/ctnet-trace-norules.$$
ip netns exec t-c2 iptables -D INPUT -p icmp -j DROP
step policy-routing
ip -n t-c1 route add unreachable 10.77.0.3 table 100
ip -n t-c1 rule add to 10.77.0.3 table 100
ip netns exec t-c1 ping -c1 -W1 10.77.0.3 >/dev/null 2>&1 && echo "policy ping ok" || echo "policy ping refused"
$BIN trace t-c1 t-c2 | head -2 | tail -1
ip -n t-c1 rule del to 10.77.0.3 table 100
step after-fix
$BIN trace t-c1 t-c2 | head -1
$BIN trace t-c1 host --udp 53 | head -1
$BIN lab down --name t >/dev/null
"#;

#[test]
fn live_traces_name_the_faults_lab_break_injects() {
    if !world::available(BIN, "live_traces_name_the_faults_lab_break_injects") {
        return;
    }
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", LIVE])
        .env("BIN", BIN)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for want in [
        "verdict: REACHABLE  tcp 10.77.0.2:40000 > 10.77.0.3:80 (t-c1 to t-c2)",
        "json reachable",
        "the first packet dies in t-c2 at deliver: nothing listens on tcp/81 for 10.77.0.3 here: the kernel answers with a reset",
        "verdict: UNREACHABLE  tcp 10.77.0.2:40000 > 10.77.0.3:80",
        "ctnet-fault",
        "port-drop exit 1",
        "PASS port.listening             tcp/80 on t-c2 arrives from t-c1 (10.77.0.2), from the host",
        "connect ok",
        "listening: FAIL port.listening             tcp/80 on t-c2 does not arrive from t-c1 (10.77.0.2): \
         the first packet dies in host at forward/filter/FORWARD (-A FORWARD -s 10.77.0.2/32 -d 10.77.0.3/32 \
         -p tcp -m tcp --dport 80 -m comment --comment ctnet-fault -j DROP): dropped by a rule",
        "listening:      evidence: from the host: reachable",
        "listening:      check:    ctnet-diag trace t-c1 t-c2 --tcp 80",
        "connect failed: timed out",
        "verdict: REACHABLE  icmp 10.77.0.2 > 10.77.0.3 (t-c1 to t-c2)",
        "ping ok",
        "nft unreachable forward/inet ctnet_fault/forward nft inet ctnet_fault",
        "ping lost",
        "the first packet dies in t-c2 at input/filter/INPUT (-A INPUT -p icmp -j DROP): dropped by a rule",
        "offline:   the first packet dies in t-c2 at input/filter/INPUT (-A INPUT -p icmp -j DROP): dropped by a rule",
        "the rules inside t-c1, t-c2 were not read",
        "the first packet dies in host at forward/filter/FORWARD (-A FORWARD -i ctnet-iso -o t-br -m comment --comment ctnet-fault -j DROP): dropped by a rule",
        "iso ping lost",
        "policy ping refused",
        "the first packet dies in t-c1 at route: route 10.77.0.3 (ip route get: No route to host",
        "verdict: UNREACHABLE  udp 10.77.0.2:40000 > 10.77.0.1:53 (t-c1 to host)",
    ] {
        assert!(out.contains(want), "missing {want:?}:\n{out}\n{err}");
    }
    let after = out.split("== after-fix").nth(1).unwrap_or_default();
    assert!(after.contains("verdict: REACHABLE  icmp"), "{out}");
}

/// A published port (the `published-port` fault: DNAT with a FORWARD DROP and no
/// ACCEPT) on a host with an uplink to a netns playing the outside: `check` traces it
/// from the host's address, from localhost and from outside, and names the DROP; the
/// real connection from outside fails the same way; `lab fix` heals it.
const PUBLISHED: &str = r#"
set -e
ip link set lo up
ip netns add out
ip link add up0 type veth peer name eth0 netns out
ip addr add 203.0.113.1/24 dev up0
ip link set up0 up
ip -n out addr add 203.0.113.2/24 dev eth0
ip -n out link set eth0 up
ip -n out link set lo up
ip route add default via 203.0.113.2 dev up0
$BIN lab up --name t --containers 2 --nat >/dev/null
listen() { exec python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1]))); s.listen()
while True:
    c, _ = s.accept(); c.close()' "$1"; }
# The container's server, and a userland proxy's stand-in on the host's 8080.
# Each server is the process started (exec), so killing that pid ends it.
ip netns exec t-c1 bash -c "$(declare -f listen); listen 80" & a=$!
bash -c "$(declare -f listen); listen 8080" & b=$!
trap 'kill $a $b 2>/dev/null' EXIT
for i in $(seq 50); do ip netns exec t-c1 ss -ltn | grep -q ':80 ' && ss -ltn | grep -q ':8080 ' && break; sleep 0.1; done
$BIN lab break published-port t-c1 >/dev/null
rc=0; $BIN check t-c1 >/tmp/ctnet-published.$$ || rc=$?
echo "broken rc=$rc"
grep 'port.published' /tmp/ctnet-published.$$
rm -f /tmp/ctnet-published.$$
ip netns exec out python3 -c 'import socket; s = socket.create_connection(("203.0.113.1", 8080), timeout=1)' 2>/dev/null \
  && echo "outside connects" || echo "outside refused"
# Live from outside: `trace --probe` sends the same SYNs from the outside netns.
probe() { X=0; $BIN trace out 203.0.113.1 --tcp 8080 --probe --json >/tmp/ctnet-pp.$$ || X=$?; python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
p = [c for c in r["probe_checks"] if c["id"] == "probe.path"][0]
print(sys.argv[2], r["verdict"], "|", p["status"], "|", p["summary"])' /tmp/ctnet-pp.$$ $X; rm -f /tmp/ctnet-pp.$$; }
echo "broken probe: $(probe)"
$BIN lab fix >/dev/null
echo "fixed probe: $(probe)"
$BIN check t-c1 >/dev/null && echo "fixed rc=0"
$BIN lab down --name t >/dev/null
"#;

#[test]
fn a_published_port_that_forward_drops_is_named_from_outside() {
    if !world::available(BIN, "a_published_port_that_forward_drops_is_named_from_outside") {
        return;
    }
    let o = Command::new(BIN)
        .args(["world", "--", "bash", "-c", PUBLISHED])
        .env("BIN", BIN)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for want in [
        "broken rc=1",
        "FAIL port.published             tcp/8080 -> t-c1:80 does not arrive from outside to the host's port 8080: \
         the first packet dies in host at forward/filter/FORWARD (-A FORWARD -d 10.77.0.2/32 -p tcp -m tcp --dport 80 \
         -m comment --comment ctnet-fault -j DROP): dropped by a rule",
        "outside refused",
        "fixed rc=0",
        // The live probe from outside: no answer, the kernel's trace names the DROP;
        // fixed, every SYN is answered and the walk agrees.
        "broken probe: 1 unreachable | fail | SYNs to tcp/8080 reached up0 but no answer came back",
        "fixed probe: 0 reachable | pass | 3/3 tcp/8080 probes answered by 203.0.113.1",
    ] {
        assert!(out.contains(want), "missing {want:?}:\n{out}\n{err}");
    }
    let broken = out
        .lines()
        .find(|l| l.starts_with("broken probe: "))
        .unwrap_or_default();
    assert!(broken.contains("dropped by ip filter FORWARD"), "{broken}");
}
