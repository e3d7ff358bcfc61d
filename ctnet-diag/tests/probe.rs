//! `check --probe` sees inside the kernel: the host's netfilter trace of the probe's
//! own packets names the rule that drops them (by nft handle), as `nft -a monitor
//! trace` run by hand on the same packets shows; the trace's table is gone afterwards,
//! and one left by a killed probe is removed by the next. Inside a rootless world.

#[path = "support/script.rs"]
mod script;

use script::Script;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

const SCRIPT: &str = r#"
set -e
ip link set lo up
$BIN lab up --name p --containers 2 --nat >/dev/null
C1=$(ip -n p-c1 -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1] }')
T=$(mktemp -d)
# Healthy first: the probe passes and leaves the rule set as it was.
nft -s list ruleset > $T/before
$BIN check p-c1 --probe --json > $T/ok.json || true
nft -s list ruleset > $T/after
cmp -s $T/before $T/after && echo "healthy: unchanged" || echo "healthy: changed"
# The host drops the container's pings to it.
iptables -I INPUT -s $C1 -p icmp -j DROP
nft -s list ruleset > $T/before
nft -a monitor trace > $T/byhand 2>&1 &
M=$!
sleep 0.3
$BIN check p-c1 --probe --json > $T/drop.json || true
sleep 0.3
kill $M
nft -s list ruleset > $T/after
cmp -s $T/before $T/after && echo "dropped: unchanged" || echo "dropped: changed"
report() { python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
f = [c for c in r["checks"] if c["id"] == "probe.path"][0]
print(f["status"], "|", f["summary"], "|", " ; ".join(f["evidence"]), "|", f.get("hint") or "")' "$1"; }
agrees() { python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
f = [c for c in r["checks"] if c["id"] == "probe.agrees"][0]
print(f["status"], "|", f["summary"])' "$1"; }
echo "ok: $(report $T/ok.json)"
echo "drop: $(report $T/drop.json)"
echo "ok agrees: $(agrees $T/ok.json)"
echo "drop agrees: $(agrees $T/drop.json)"
echo "byhand: $(grep 'verdict drop' $T/byhand | sed 's/^trace id [0-9a-f]* //' | sort | uniq -c | sed 's/^ *//')"
# A probe killed mid-run leaves its table; the next run removes it.
$BIN check p-c1 --probe >/dev/null 2>&1 &
P=$!
for i in $(seq 1 100); do nft list tables | grep -q "ctnet_trace_$P" && break; sleep 0.05; done
# Its monitor (other tests' probes run monitors of their own at the same time).
M=$(pgrep -P $P -x nft | tr '\n' ' ' || true)
[ -n "$M" ] || echo "no monitor"
kill -9 $P; wait $P 2>/dev/null || true
echo "left: $(nft list tables | grep -c "ctnet_trace_$P" || true)"
# (a dead monitor may linger as a zombie until it is reaped: count the living, and give
# a loaded machine a few seconds to deliver the signal)
living() { n=0; for m in $M; do ps -o stat= -p $m | grep -qv Z && n=$((n + 1)); done; echo $n; }
for i in $(seq 1 50); do [ "$(living)" = 0 ] && break; sleep 0.1; done
echo "monitors: $(living)"
$BIN check p-c1 --probe >/dev/null 2>&1 || true
echo "after next: $(nft list tables | grep -c ctnet_trace_ || true)"
# SIGTERM mid-probe: the tables go with it.
$BIN check p-c1 --probe >/dev/null 2>&1 &
P=$!
for i in $(seq 1 100); do nft list tables | grep -q "ctnet_trace_$P" && break; sleep 0.05; done
kill -TERM $P; S=0; wait $P || S=$?
echo "term: $S $(nft list tables | grep -c ctnet_trace_ || true)"
$BIN lab down --name p >/dev/null
"#;

#[test]
fn the_probe_names_the_rule_that_drops_it_as_the_kernel_trace_does_and_leaves_nothing() {
    const NAME: &str = "the_probe_names_the_rule_that_drops_it_as_the_kernel_trace_does_and_leaves_nothing";
    let Some(run) = Script::run(BIN, NAME, SCRIPT, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    assert_eq!(line("healthy: "), "unchanged");
    assert_eq!(line("dropped: "), "unchanged");
    let ok = line("ok: ");
    assert!(ok.starts_with("pass |"), "{ok}");
    assert!(!ok.contains("verdict drop"), "{ok}");
    // The probe names the rule by handle, exactly as the hand-run monitor saw it drop
    // each of the probe's packets.
    let drop = line("drop: ");
    assert!(drop.starts_with("fail |"), "{drop}");
    let byhand = line("byhand: ");
    let (count, seen) = byhand.split_once(' ').expect("the hand-run monitor saw the drop");
    let handle = seen
        .split(" # handle ")
        .nth(1)
        .and_then(|h| h.split_whitespace().next())
        .expect("a handle");
    assert!(seen.starts_with("ip filter INPUT rule"), "{byhand}");
    assert!(
        drop.contains("the kernel's trace: dropped by ip filter INPUT")
            && drop.contains(&format!("handle {handle} (verdict drop) x{count}")),
        "{drop}\nby hand: {byhand}"
    );
    assert!(
        drop.contains("the kernel dropped the probe in ip filter INPUT"),
        "{drop}"
    );
    // The kernel's drop reason says the same; where the world is rootless (tracefs is
    // the host root's), the drop reasons say why they were not read and the rest runs.
    assert!(
        drop.contains("kernel drop: NETFILTER_DROP at nft_do_chain+")
            || drop.contains("kernel drop reasons: not read (tracefs"),
        "{drop}"
    );
    // The static trace of the same ping says the same, both times.
    assert_eq!(
        line("ok agrees: "),
        "pass | the probe and the static trace agree: reachable"
    );
    assert_eq!(
        line("drop agrees: "),
        "pass | the probe and the static trace agree: unreachable"
    );
    // Killed: its tables stay (inet and bridge; its monitor dies with it); the next
    // probe removes them.
    assert_eq!(line("left: "), "2");
    assert!(!run.to_string().contains("no monitor"), "{run}");
    assert_eq!(line("monitors: "), "0");
    assert_eq!(line("after next: "), "0");
    // SIGTERM: exit 143, and nothing left without waiting for a next run.
    assert_eq!(line("term: "), "143 0");
}

const FLOWS: &str = r#"
set -e
ip link set lo up
$BIN lab up --name q --containers 2 --nat >/dev/null
GW=$(ip -n q-c1 route show default | awk '{ print $3 }')
# A TCP server on the gateway's 8081 and a UDP echo on its 8082, in the host.
python3 -c '
import socket, threading
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("0.0.0.0", 8081)); t.listen(16)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 8082))
def echo():
    while True:
        d, a = u.recvfrom(512); u.sendto(d, a)
threading.Thread(target=echo, daemon=True).start()
while True:
    c, _ = t.accept(); c.close()
' &
S=$!
sleep 0.5
probe() { $BIN check q-c1 --probe --port "$1" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
f = {c["id"]: c for c in r["checks"]}
p, a = f["probe.path"], f["probe.agrees"]
print(p["status"], "|", p["summary"], "|", a["status"], "|", " ; ".join(p["evidence"]))' || true; }
echo "tcp open: $(probe 8081/tcp)"
echo "udp open: $(probe 8082/udp)"
echo "tcp closed: $(probe 8089/tcp)"
echo "udp closed: $(probe 8089/udp)"
# `trace --probe`: the static walk and the flow's own packets, in one report.
J=$(mktemp)
traced() { X=0; $BIN trace q-c1 "$@" --probe --json > $J || X=$?; python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
f = {c["id"]: c for c in r["probe_checks"]}
p, a = f["probe.path"], f["probe.agrees"]
print("exit", sys.argv[2], "|", r["verdict"], "|", r["probe"]["answered"], "|", p["status"], "|", a["status"], "|", p["summary"])' $J $X; }
echo "trace tcp open: $(traced $GW --tcp 8081)"
echo "trace peer: $(traced q-c2)"
iptables -I INPUT -p tcp --dport 8081 -j DROP
echo "tcp dropped: $(probe 8081/tcp)"
echo "trace tcp dropped: $(traced $GW --tcp 8081)"
X=0; $BIN trace host q-c1 --probe > $J 2>&1 || X=$?
echo "trace from host: $X $(cat $J)"
kill $S
$BIN lab down --name q >/dev/null
"#;

#[test]
fn the_probe_sends_the_flows_own_tcp_and_udp_packets() {
    const NAME: &str = "the_probe_sends_the_flows_own_tcp_and_udp_packets";
    let Some(run) = Script::run(BIN, NAME, FLOWS, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    // Open ports answer every probe, and the engine agrees.
    let t = line("tcp open: ");
    assert!(
        t.starts_with("pass | 3/3 tcp/8081 probes answered") && t.contains("| pass |"),
        "{t}"
    );
    assert!(t.contains("3 SYN to tcp/8081(s), 3 answer(s)"), "{t}");
    let u = line("udp open: ");
    assert!(
        u.starts_with("pass | 3/3 udp/8082 probes answered") && u.contains("| pass |"),
        "{u}"
    );
    // Closed ports refuse: the path works, nothing listens; the engine says so too.
    let t = line("tcp closed: ");
    assert!(
        t.starts_with("fail |") && t.contains("refused tcp/8089 (3/3 resets)") && t.contains("| pass |"),
        "{t}"
    );
    let u = line("udp closed: ");
    assert!(
        u.starts_with("fail |") && u.contains("refused udp/8089") && u.contains("| pass |"),
        "{u}"
    );
    // Dropped on the way: no answer, and the kernel's trace names the rule.
    let d = line("tcp dropped: ");
    assert!(
        d.starts_with("fail |") && d.contains("dropped by ip filter INPUT"),
        "{d}"
    );
    // `trace --probe` sends the same packets and compares them with its own walk; its
    // exit status is 0 only when both say the flow passes.
    assert_eq!(
        line("trace tcp open: "),
        "exit 0 | reachable | 3 | pass | pass | 3/3 tcp/8081 probes answered by 10.77.0.1"
    );
    let p = line("trace peer: ");
    assert!(
        p.starts_with("exit 0 | reachable | 3 | pass | pass | 3/3 echo replies from 10.77.0."),
        "{p}"
    );
    let d = line("trace tcp dropped: ");
    assert!(
        d.starts_with("exit 1 | unreachable | 0 | fail | pass |") && d.contains("dropped by ip filter INPUT"),
        "{d}"
    );
    // From somewhere no probe can send: a usage error saying what would work.
    let h = line("trace from host: ");
    assert!(
        h.starts_with("2 ") && h.contains("--probe sends from a container or netns"),
        "{h}"
    );
}
