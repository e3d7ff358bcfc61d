//! `check`'s `dns.resolver` on process "containers" that have their own resolv.conf (a
//! bind mount in a private mount namespace), inside a rootless world: a resolver netns
//! behind the host router, then a FORWARD rule blocking DNS, and a resolver copied from
//! a host that runs a loopback stub. A real query from each process is the ground truth.

#[path = "support/script.rs"]
mod script;

use script::Script;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

const SCRIPT: &str = r#"
set -e
ip link set lo up
$BIN lab up --name d --containers 2 --nat >/dev/null
# The resolver: a netns behind the host, as a LAN's DNS server would be.
ip netns add dns
ip link add rs0 type veth peer name eth0 netns dns
ip addr add 192.0.2.1/24 dev rs0 && ip link set rs0 up
ip -n dns link set lo up && ip -n dns link set eth0 up
ip -n dns addr add 192.0.2.53/24 dev eth0 && ip -n dns route add default via 192.0.2.1
ip netns exec dns python3 "$DNSPY" >/dev/null 2>&1 &
RES=$!
# Two processes with a resolv.conf of their own, each in a private mount namespace.
T=$(mktemp -d)
echo 'nameserver 192.0.2.53' > "$T/lan.conf"
printf '# copied from a host running systemd-resolved\nnameserver 127.0.0.53\n' > "$T/stub.conf"
ip netns exec d-c1 unshare -m --propagation private sh -c "mount --bind $T/lan.conf /etc/resolv.conf && exec sleep 600" &
P1=$!
ip netns exec d-c2 unshare -m --propagation private sh -c "mount --bind $T/stub.conf /etc/resolv.conf && exec sleep 600" &
P2=$!
sleep 1
# A real query through the process's own resolv.conf: NXDOMAIN is an answer.
query() {
  nsenter -t "$1" -n -m python3 - <<'PY'
import socket
ns = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05probe\x07invalid\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
try:
    s.sendto(q, (ns, 53))
    a = s.recv(512)
    print("answered" if a[:2] == q[:2] else "garbled")
except OSError as e:
    print("no answer:", type(e).__name__)
PY
}
dns() { $BIN check "pid:$1" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
f = [c for c in r["checks"] if c["id"] == "dns.resolver"][0]
print(f["status"], "|", f["summary"], "|", " ; ".join(f["evidence"]), "|", f.get("hint") or "")'; }
echo "lan query: $(query $P1)"
echo "lan check: $(dns $P1)"
echo "stub query: $(query $P2)"
echo "stub check: $(dns $P2)"
iptables -I FORWARD -p udp --dport 53 -j DROP
echo "blocked query: $(query $P1)"
echo "blocked check: $(dns $P1)"
kill $P1 $P2 $RES
$BIN lab down --name d >/dev/null
"#;

#[test]
fn dns_resolver_is_judged_from_each_process_resolv_conf_and_agrees_with_a_real_query() {
    const NAME: &str = "dns_resolver_is_judged_from_each_process_resolv_conf_and_agrees_with_a_real_query";
    let dnspy = format!("{}/tests/support/dns.py", env!("CARGO_MANIFEST_DIR"));
    let Some(run) = Script::run(BIN, NAME, SCRIPT, &[("DNSPY", &dnspy)]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    // Reachable: the kernel answers, and so does the check.
    assert_eq!(line("lan query: "), "answered");
    let lan = line("lan check: ");
    assert!(lan.starts_with("pass |"), "{lan}");
    assert!(lan.contains("/etc/resolv.conf: nameserver 192.0.2.53"), "{lan}");
    // A host's loopback stub copied into the container: nothing there listens.
    assert!(line("stub query: ").starts_with("no answer"), "{run}");
    let stub = line("stub check: ");
    assert!(stub.starts_with("fail |"), "{stub}");
    assert!(
        stub.contains("127.0.0.53 udp/53") && stub.contains("loopback"),
        "{stub}"
    );
    // Blocked on the way: no answer, and the check names the rule.
    assert!(line("blocked query: ").starts_with("no answer"), "{run}");
    let blocked = line("blocked check: ");
    assert!(blocked.starts_with("fail |"), "{blocked}");
    assert!(
        blocked.contains("FORWARD") && blocked.contains("--dport 53") && blocked.contains("DROP"),
        "{blocked}"
    );
}
