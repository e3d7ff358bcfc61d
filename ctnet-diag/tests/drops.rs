//! `check --probe` reads the kernel's drop reasons (`skb:kfree_skb` through a tracefs
//! instance of its own) for the probe's packets: a stale ARP entry is named as
//! OTHERHOST, a strict reverse-path filter as IP_RPFILTER, a firewall drop as
//! NETFILTER_DROP, each with the code that dropped them, and a tracefs instance the test
//! reads by hand sees the same drops in the same window. Its instance is gone after
//! every probe, one left by a killed probe is removed by the next, and the host's own
//! trace settings are untouched. As the host's root (tracefs is not a rootless world's),
//! in namespaces the test makes.

#[path = "support/script.rs"]
#[allow(dead_code)]
mod script;

use script::Script;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

const SCRIPT: &str = r#"
T=$(mktemp -d)
mkdir $T/tr
# tracefs for the test's own reading, mounted in this private mount namespace only
# (ctnet finds none at /sys/kernel/tracing and makes a detached mount of its own).
mount -t tracefs nodev $T/tr
I=$T/tr/instances/byhand-$(date +%s%N)
mkdir $I
trap 'rmdir $I 2>/dev/null || true' EXIT
NS=$(grep -o '{ [0-9]*, "NOT_SPECIFIED" }' $T/tr/events/skb/kfree_skb/format | grep -o '[0-9][0-9]*')
echo "reason != $NS && protocol == 2048" > $I/events/skb/kfree_skb/filter
echo 1 > $I/events/skb/kfree_skb/enable
settings() { echo "$(cat $T/tr/events/skb/kfree_skb/enable) $(cat $T/tr/tracing_on) $(cat $T/tr/current_tracer)"; }
echo "global before: $(settings)"
$BIN lab up --name d --containers 2 --nat >/dev/null
GW=$(ip -n d-c1 route show default | awk '{ print $3 }')
finding() { python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
f = [c for c in r["checks"] if c["id"] == "probe.path"][0]
print(f["status"], "|", f["summary"], "|", f.get("hint") or "")' "$1"; }
# The probe's own drops of one reason: how many, and the function that dropped them.
drops() { python3 -c '
import json, re, sys
r = json.load(open(sys.argv[1]))
f = [c for c in r["checks"] if c["id"] == "probe.path"][0]
n, fn = 0, "-"
for e in f["evidence"]:
    m = re.match(r"kernel drop: (\S+) at ([^+]+)\+\S+ x(\d+) .*the probe.s own sender", e)
    if m and m.group(1) == sys.argv[2]:
        n, fn = n + int(m.group(3)), m.group(2)
print(n, fn)' "$1" "$2"; }
byhand() { grep -c "location=$2+.* reason: $1\$" $I/trace || true; }
probe() {
  local name=$1 reason=$2
  shift 2
  echo > $I/trace
  $BIN check "$@" --probe --json > $T/$name.json || true
  read -r n fn < <(drops $T/$name.json $reason)
  echo "$name: $(finding $T/$name.json)"
  echo "$name drops: $n $fn $(byhand $reason $fn)"
  echo "$name left: $(ls $T/tr/instances | grep -c '^ctnet-' || true)"
}
$BIN lab break stale-arp d-c1 --peer d-c2 >/dev/null
probe stale OTHERHOST d-c1 --peer d-c2
$BIN lab fix >/dev/null
$BIN lab break forward-drop d-c1 >/dev/null
probe forward NETFILTER_DROP d-c1 --peer d-c2
$BIN lab fix >/dev/null
# Strict rp_filter on the bridge, the route back to d-c1 elsewhere: with the gateway's
# MAC given by hand (the filter stops ARP too), the pings themselves meet the filter.
$BIN lab break rp-filter d-c1 >/dev/null
BRMAC=$(ip link show d-br | awk '/link\/ether/ { print $2 }')
ip -n d-c1 neigh replace $GW lladdr $BRMAC dev eth0 nud permanent
probe rpf IP_RPFILTER d-c1
ip -n d-c1 neigh del $GW dev eth0
$BIN lab fix >/dev/null
# A probe killed mid-run leaves its instance; the next run removes it.
wait_instance() { for i in $(seq 1 200); do [ -d $T/tr/instances/ctnet-$1 ] && break; sleep 0.05; done; }
$BIN check d-c1 --peer d-c2 --probe >/dev/null 2>&1 &
P=$!
wait_instance $P
kill -9 $P
wait $P 2>/dev/null || true
echo "killed left: $(ls $T/tr/instances | grep -c "^ctnet-$P\$" || true)"
$BIN check d-c1 --peer d-c2 --probe >/dev/null 2>&1 || true
echo "after next: $(ls $T/tr/instances | grep -c '^ctnet-' || true)"
# SIGTERM mid-probe: the instance goes with it.
$BIN check d-c1 --peer d-c2 --probe >/dev/null 2>&1 &
P=$!
wait_instance $P
kill -TERM $P
S=0
wait $P || S=$?
echo "term: $S $(ls $T/tr/instances | grep -c '^ctnet-' || true)"
echo "global after: $(settings)"
$BIN lab down --name d >/dev/null
"#;

#[test]
fn the_probe_names_the_kernels_drop_reason_as_the_tracepoint_read_by_hand_does() {
    const NAME: &str = "the_probe_names_the_kernels_drop_reason_as_the_tracepoint_read_by_hand_does";
    let Some(run) = Script::run_rooted(BIN, NAME, SCRIPT, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    // Each drop as the probe counts it, the function that dropped it, and how many the
    // hand-read instance saw there in the same (slightly wider) window.
    let counts = |tag: &str| -> (u32, String, u32) {
        let l = line(tag);
        let w: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(w.len(), 3, "{l}\n{run}");
        (w[0].parse().unwrap(), w[1].to_string(), w[2].parse().unwrap())
    };
    // Stale ARP: frames to a MAC nobody has; d-c2 (and the watched bridge) drop them.
    let stale = line("stale: ");
    assert!(
        stale.starts_with("fail |") && stale.contains("the kernel dropped them as OTHERHOST in ip_rcv_core"),
        "{stale}\n{run}"
    );
    let (n, func, byhand) = counts("stale drops: ");
    assert!(
        n >= 3 && func == "ip_rcv_core" && byhand >= n,
        "{n} {func} {byhand}\n{run}"
    );
    // A firewall drop: the netfilter trace names the rule, the kernel says NETFILTER_DROP.
    let fwd = line("forward: ");
    assert!(
        fwd.starts_with("fail |") && fwd.contains("the kernel's trace: dropped by ip filter FORWARD"),
        "{fwd}\n{run}"
    );
    let (n, func, byhand) = counts("forward drops: ");
    assert!(
        n == 3 && func == "nft_do_chain" && byhand >= n,
        "{n} {func} {byhand}\n{run}"
    );
    // Strict reverse-path filtering: outside netfilter, named with what to change.
    let rpf = line("rpf: ");
    assert!(
        rpf.starts_with("fail |") && rpf.contains("the kernel dropped them as IP_RPFILTER"),
        "{rpf}\n{run}"
    );
    assert!(rpf.contains("rp_filter=2"), "{rpf}");
    let (n, _, byhand) = counts("rpf drops: ");
    assert!(n == 3 && byhand >= n, "{n} {byhand}\n{run}");
    // Nothing of ctnet's is left after a probe, whatever became of it.
    for tag in ["stale left: ", "forward left: ", "rpf left: "] {
        assert_eq!(line(tag), "0", "{tag}\n{run}");
    }
    assert_eq!(line("killed left: "), "1");
    assert_eq!(line("after next: "), "0");
    assert_eq!(line("term: "), "143 0");
    assert_eq!(line("global before: "), line("global after: "));
}
