//! Checks of kernel state around the containers, live in a rootless world: a host route
//! that collides with the container subnet (a LAN or VPN route), proven by a real ping,
//! and the conntrack count the check reads, against /proc.

#[path = "support/script.rs"]
mod script;

use script::Script;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

const SCRIPT: &str = r#"
set -e
ip link set lo up
$BIN lab up --name s --containers 2 --nat >/dev/null
# A "VPN" interface: a veth to a netns of its own.
ip netns add vpn
ip link add tun9 type veth peer name eth0 netns vpn
ip addr add 192.0.2.1/24 dev tun9 && ip link set tun9 up
ip -n vpn link set eth0 up && ip -n vpn addr add 192.0.2.2/24 dev eth0
C1=$(ip -n s-c1 -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1] }')
get() { $BIN check s-c1 --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
for c in r["checks"]:
    if c["id"] == sys.argv[1]:
        print(c["status"], "|", c["summary"], "|", " ; ".join(c["evidence"]))' "$1"; }
echo "before: $(get route.subnet_overlap)"
echo "ping before: $(ping -c1 -W1 -q $C1 >/dev/null && echo ok || echo lost)"
echo "conntrack: $(get sysctl.conntrack_fill)"
echo "proc: $(cat /proc/sys/net/netfilter/nf_conntrack_count) $(cat /proc/sys/net/netfilter/nf_conntrack_max)"
ip route add "$C1/32" dev tun9
echo "inside: $(get route.subnet_overlap)"
echo "ping inside: $(ping -c1 -W1 -q $C1 >/dev/null && echo ok || echo lost)"
ip route del "$C1/32" dev tun9
ip route add 10.0.0.0/8 via 192.0.2.2 dev tun9
echo "around: $(get route.subnet_overlap)"
echo "no uplink: $(get mtu.uplink)"
# The "VPN" becomes the default route, with a smaller MTU than the bridge's.
ip link set tun9 mtu 1400 && ip -n vpn link set eth0 mtu 1400
ip route add default via 192.0.2.2 dev tun9
echo "uplink: $(get mtu.uplink)"
echo "small ping: $(ip netns exec s-c1 ping -M do -s 1300 -c1 -W1 -q 192.0.2.2 >/dev/null 2>&1 && echo ok || echo lost)"
echo "big ping: $(ip netns exec s-c1 ping -M do -s 1472 -c1 -W1 -q 192.0.2.2 >/dev/null 2>&1 && echo ok || echo lost)"
$BIN lab down --name s >/dev/null
"#;

#[test]
fn a_route_colliding_with_the_container_subnet_is_named_as_a_real_ping_shows() {
    const NAME: &str = "a_route_colliding_with_the_container_subnet_is_named_as_a_real_ping_shows";
    let Some(run) = Script::run(BIN, NAME, SCRIPT, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    assert!(line("before: ").starts_with("pass |"), "{run}");
    assert_eq!(line("ping before: "), "ok");
    // A /32 through the "VPN": the host's ping goes there, and the check says so.
    assert_eq!(line("ping inside: "), "lost");
    let inside = line("inside: ");
    assert!(
        inside.starts_with("fail |") && inside.contains("dev tun9"),
        "{inside}"
    );
    // A wider route around the subnet: only a collision.
    let around = line("around: ");
    assert!(
        around.starts_with("warn |") && around.contains("10.0.0.0/8"),
        "{around}"
    );
    // An uplink below the container's MTU: what fits passes, a full-size packet with DF
    // does not, and the check warns.
    assert_eq!(line("no uplink: "), "", "no default route: nothing to compare");
    assert_eq!(line("small ping: "), "ok");
    assert_eq!(line("big ping: "), "lost");
    let up = line("uplink: ");
    assert!(
        up.starts_with("warn |") && up.contains("tun9 (veth) has MTU 1400"),
        "{up}"
    );
    // The conntrack figures are the kernel's (the count moves with traffic: compare the max).
    let ct = line("conntrack: ");
    let proc = line("proc: ");
    let max = proc.split_whitespace().nth(1).unwrap();
    assert!(
        ct.starts_with("pass |") && ct.contains(&format!("nf_conntrack_max = {max}")),
        "{ct} vs {proc}"
    );
}

const FAULTS: &str = r#"
set -e
ip link set lo up
$BIN lab up --name s --containers 2 --nat >/dev/null
C1=$(ip -n s-c1 -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1] }')
GW=$(ip -n s-c1 route show default | awk '{ print $3 }')
get() { $BIN check s-c1 --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
for c in r["checks"]:
    if c["id"] == sys.argv[1]:
        print(c["status"], "|", c["summary"], "|", " ; ".join(c["evidence"]))' "$1"; }
for f in arp-ignore rp-filter; do
  $BIN lab break $f s-c1 >/dev/null
  ip -n s-c2 neigh flush dev eth0
  echo "$f peer ping: $(ip netns exec s-c2 ping -c1 -W1 -q $C1 >/dev/null && echo ok || echo lost)"
  echo "$f gateway ping: $(ip netns exec s-c1 ping -c1 -W1 -q $GW >/dev/null && echo ok || echo lost)"
  echo "$f arp.answers: $(get arp.answers)"
  echo "$f sysctl.rp_filter: $(get sysctl.rp_filter)"
  # Live: the peer's probe to it (arp-ignore), its probe to the gateway (rp-filter).
  # (s-c1's own ARP broadcasts for the gateway refreshed s-c2's stale entry for it, as
  # the kernel does: start from none again.)
  ip -n s-c2 neigh flush dev eth0
  case $f in
    arp-ignore) P="s-c2 --peer s-c1" ;;
    *) P="s-c1" ;;
  esac
  echo "$f probe: $($BIN check $P --probe --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
p = [c for c in r["checks"] if c["id"] == "probe.path"][0]
print(p["status"], "|", p["summary"], "|", p.get("hint") or "")' || true)"
  $BIN lab fix $f s-c1 >/dev/null
  # (the probe's unanswered ARP left s-c2's entry for s-c1 mid-resolution)
  ip -n s-c2 neigh flush dev eth0
  echo "$f fixed: $(ip netns exec s-c2 ping -c1 -W1 -q $C1 >/dev/null && ip netns exec s-c1 ping -c1 -W1 -q $GW >/dev/null && echo ok || echo lost)"
done
$BIN lab down --name s >/dev/null
"#;

#[test]
fn arp_ignore_and_rp_filter_faults_are_named_where_real_pings_die() {
    const NAME: &str = "arp_ignore_and_rp_filter_faults_are_named_where_real_pings_die";
    let Some(run) = Script::run(BIN, NAME, FAULTS, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    // arp_ignore 8: the peer cannot resolve it; the check names the sysctl.
    assert_eq!(line("arp-ignore peer ping: "), "lost");
    let a = line("arp-ignore arp.answers: ");
    assert!(
        a.starts_with("fail |") && a.contains("arp_ignore is 8 on eth0"),
        "{a}"
    );
    assert!(line("arp-ignore sysctl.rp_filter: ").starts_with("pass |"));
    // Live, the peer's ARP requests go unanswered, and the hint names why.
    let p = line("arp-ignore probe: ");
    assert!(
        p.starts_with("fail |")
            && p.contains("its ARP requests got no answer")
            && p.contains("arp_ignore is 8"),
        "{p}"
    );
    assert_eq!(line("arp-ignore fixed: "), "ok");
    // Strict rp_filter with the route back elsewhere: the container's own packets die
    // at the host, and the check names the hop.
    assert_eq!(line("rp-filter gateway ping: "), "lost");
    let r = line("rp-filter sysctl.rp_filter: ");
    assert!(
        r.starts_with("fail |") && r.contains("rp_filter is 1 (strict) on s-br"),
        "{r}"
    );
    assert!(line("rp-filter arp.answers: ").starts_with("pass |"));
    // Live: with the gateway's MAC still cached the pings reach the bridge and the
    // kernel drops them (IP_RPFILTER, where tracefs can be read); otherwise their ARP
    // goes unanswered. Either way the hint names the reverse-path filter.
    let p = line("rp-filter probe: ");
    assert!(p.starts_with("fail |") && p.contains("rp_filter"), "{p}");
    assert_eq!(line("rp-filter fixed: "), "ok");
}

const CONNTRACK_FULL: &str = r#"
set -e
ip link set lo up
$BIN lab up --name f --containers 2 --nat >/dev/null
C2=$(ip -n f-c2 -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1] }')
report() { $BIN check f-c1 --peer f-c2 "$@" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
for c in r["checks"]:
    if c["id"] in ("sysctl.conntrack_fill", "path.trace", "probe.path", "probe.agrees"):
        print(c["id"], c["status"], "|", c["summary"], "|", c.get("hint") or "")' || true; }
ping_peer() { ip netns exec f-c1 ping -c1 -W1 -q $C2 >/dev/null && echo ok || echo lost; }
echo "before: $(ping_peer)"
# An entry deleted just before the fault is freed a moment later: its slot must not
# let a new flow in (the fault tops the table up until it stays full).
conntrack -D -p icmp >/dev/null 2>&1 || true
$BIN lab break conntrack-full f-c1 >/dev/null
MAX=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
echo "full: $(cat /proc/sys/net/netfilter/nf_conntrack_count) $MAX"
# The kernel's own tool counts the entries, and finds them marked and assured.
echo "tool: $(conntrack -C) $(conntrack -L -p udp -s 198.18.0.7 --sport 1024 --mark 1668574822 2>/dev/null | grep -c ASSURED)"
echo "ping: $(ping_peer)"
report --probe | sed 's/^/broken /'
$BIN lab fix conntrack-full f-c1 >/dev/null
echo "fixed: $(conntrack -L --mark 1668574822 2>/dev/null | wc -l) $(ping_peer)"
report | sed 's/^/fixed /'
$BIN lab down --name f >/dev/null
"#;

#[test]
fn conntrack_full_is_named_by_the_check_the_engine_and_the_probe() {
    const NAME: &str = "conntrack_full_is_named_by_the_check_the_engine_and_the_probe";
    let Some(run) = Script::run(BIN, NAME, CONNTRACK_FULL, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    assert_eq!(line("before: "), "ok");
    // Filled to the host's limit, in the lab's netns only.
    let full = line("full: ");
    let (count, max) = full.split_once(' ').unwrap();
    assert_eq!(count, max, "{run}");
    let tool = line("tool: ");
    assert_eq!(tool, format!("{max} 1"), "{run}");
    assert_eq!(line("ping: "), "lost");
    let fill = line("broken sysctl.conntrack_fill ");
    assert!(
        fill.starts_with("fail | the conntrack table is full: host"),
        "{fill}"
    );
    let walk = line("broken path.trace ");
    assert!(
        walk.starts_with("fail | the first packet dies in host at conntrack: the conntrack table is full"),
        "{walk}"
    );
    let probe = line("broken probe.path ");
    assert!(probe.starts_with("fail |"), "{probe}");
    assert!(probe.contains("the conntrack table is full"), "{probe}");
    assert!(
        probe.contains("NETFILTER_DROP in nf_hook_slow") || !probe.contains("the kernel dropped"),
        "{probe}"
    );
    assert!(
        line("broken probe.agrees ").starts_with("pass | the probe and the static trace agree: unreachable"),
        "{run}"
    );
    // Undone: exactly the fault's entries go, traffic passes.
    assert_eq!(line("fixed: "), "0 ok");
    assert!(
        line("fixed sysctl.conntrack_fill ").starts_with("pass |"),
        "{run}"
    );
    assert!(line("fixed path.trace ").starts_with("pass |"), "{run}");
}

const OVERLAY_MTU: &str = r#"
set -e
ip link set lo up
$BIN lab up --name o --containers 1 --nat >/dev/null
# A second node behind an underlay veth, joined by a VXLAN tunnel (flannel's layout: a
# unicast remote, a route to the other node's pod subnet through the device).
ip netns add node2
ip link add u0 type veth peer name u1 netns node2
ip addr add 192.168.77.1/24 dev u0 && ip link set u0 up
ip -n node2 addr add 192.168.77.2/24 dev u1 && ip -n node2 link set u1 up
ip link add vx0 type vxlan id 42 local 192.168.77.1 remote 192.168.77.2 dstport 4789 dev u0 nolearning
ip -n node2 link add vx0 type vxlan id 42 local 192.168.77.2 remote 192.168.77.1 dstport 4789 dev u1 nolearning
ip addr add 10.99.0.254/24 dev vx0 && ip link set vx0 up
ip -n node2 addr add 10.99.0.1/24 dev vx0 && ip -n node2 link set vx0 up
ip -n node2 route add 10.77.0.0/16 via 10.99.0.254 dev vx0
report() { $BIN check o-c1 --json | python3 -c '
import json, sys
for c in json.load(sys.stdin)["checks"]:
    if c["id"] == "mtu.overlay":
        print(c["status"], "|", c["summary"])' || true; }
echo "default: $(cat /sys/class/net/vx0/mtu) $(report)"
for n in o-br o-v1; do ip link set $n mtu 1450; done
ip -n o-c1 link set eth0 mtu 1450
echo "fitted: $(report)"
ip netns exec o-c1 ping -c1 -W2 -q 10.99.0.1 >/dev/null && echo "ping: ok" || echo "ping: lost"
# The underlay shrinks under the tunnel (a cloud NIC at 1400): the kernel keeps vx0 as
# it was.
ip link set u0 mtu 1400
echo "underlay shrunk: $(cat /sys/class/net/vx0/mtu) $(report)"
$BIN lab down --name o >/dev/null
"#;

#[test]
fn an_overlay_mtu_that_does_not_fit_its_underlay_is_named() {
    const NAME: &str = "an_overlay_mtu_that_does_not_fit_its_underlay_is_named";
    let Some(run) = Script::run(BIN, NAME, OVERLAY_MTU, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    // The kernel sizes a VXLAN device on an underlay to fit it; the lab's container
    // still sends 1500.
    let d = line("default: ");
    assert!(
        d.starts_with("1450 fail |")
            && d.contains("eth0 sends up to 1500 bytes, more than the 1450 vx0 carries"),
        "{run}"
    );
    let f = line("fitted: ");
    assert!(
        f.starts_with("pass |") && f.contains("vx0 (VNI 42) carries 1450 + 50"),
        "{run}"
    );
    let u = line("underlay shrunk: ");
    assert!(
        u.starts_with("1450 fail |")
            && u.contains("1450 + 50 bytes of VXLAN is more than the 1400 of its underlay u0"),
        "{run}"
    );
    assert_eq!(
        line("ping: "),
        "ok",
        "the container reaches the other node through the tunnel: {run}"
    );
}

const OVERLAY_VTEP: &str = r#"
set -e
ip link set lo up
$BIN lab up --name v --containers 1 --nat >/dev/null
# flannel's vxlan backend between this node (A) and node2 (B): each node's flannel.1
# holds its subnet's .0/32; a route to the other node's subnet via that .0 on-link, a
# permanent neighbour for it with the other VTEP's MAC, an FDB entry sending that MAC to
# the other node's underlay address. No learning, no default remote.
ip netns add node2
ip link add u0 type veth peer name u1 netns node2
ip addr add 192.168.77.1/24 dev u0 && ip link set u0 up
ip -n node2 addr add 192.168.77.2/24 dev u1 && ip -n node2 link set u1 up
ip link add flannel.1 address 02:aa:00:00:00:01 type vxlan id 1 local 192.168.77.1 dev u0 dstport 8472 nolearning
ip -n node2 link add flannel.1 address 02:aa:00:00:00:02 type vxlan id 1 local 192.168.77.2 dev u1 dstport 8472 nolearning
ip addr add 10.97.0.0/32 dev flannel.1 && ip link set flannel.1 up
ip -n node2 addr add 10.98.0.0/32 dev flannel.1 && ip -n node2 link set flannel.1 up
ip route add 10.98.0.0/24 via 10.98.0.0 dev flannel.1 onlink
ip neigh replace 10.98.0.0 lladdr 02:aa:00:00:00:02 dev flannel.1 nud permanent
bridge fdb append 02:aa:00:00:00:02 dev flannel.1 dst 192.168.77.2
ip -n node2 route add 10.77.0.0/16 via 10.97.0.0 dev flannel.1 onlink
# The lab masquerades what leaves its bridge: replies go to this node's 10.97.0.0.
ip -n node2 route add 10.97.0.0/24 via 10.97.0.0 dev flannel.1 onlink
ip -n node2 neigh replace 10.97.0.0 lladdr 02:aa:00:00:00:01 dev flannel.1 nud permanent
bridge -n node2 fdb append 02:aa:00:00:00:01 dev flannel.1 dst 192.168.77.1
report() { $BIN check v-c1 --json | python3 -c '
import json, sys
for c in json.load(sys.stdin)["checks"]:
    if c["id"] == "overlay.vtep":
        print(c["status"], "|", c["summary"])' || true; }
ping_b() { ip netns exec v-c1 ping -c1 -W2 -q 10.98.0.0 >/dev/null && echo ok || echo lost; }
echo "healthy: $(report)"
echo "healthy ping: $(ping_b)"
bridge fdb del 02:aa:00:00:00:02 dev flannel.1 dst 192.168.77.2
echo "no fdb: $(report)"
echo "no fdb ping: $(ping_b)"
bridge fdb append 02:aa:00:00:00:02 dev flannel.1 dst 192.168.77.2
ip neigh del 10.98.0.0 dev flannel.1
echo "no neigh: $(report)"
echo "no neigh ping: $(ping_b)"
ip neigh replace 10.98.0.0 lladdr 02:aa:00:00:00:02 dev flannel.1 nud permanent
echo "fixed ping: $(ping_b)"
$BIN lab down --name v >/dev/null
"#;

#[test]
fn a_missing_vtep_entry_is_named_where_real_pings_die() {
    const NAME: &str = "a_missing_vtep_entry_is_named_where_real_pings_die";
    let Some(run) = Script::run(BIN, NAME, OVERLAY_VTEP, &[]) else {
        return;
    };
    let line = |tag: &str| run.line(tag);
    let h = line("healthy: ");
    assert!(
        h.starts_with("pass |")
            && h.contains("flannel.1 (VNI 1) knows a remote VTEP for each of its 1 route(s)"),
        "{run}"
    );
    assert_eq!(line("healthy ping: "), "ok", "{run}");
    let f = line("no fdb: ");
    assert!(
        f.starts_with("fail |")
            && f.contains("flannel.1 has no FDB entry for 02:aa:00:00:00:02 (10.98.0.0's MAC)"),
        "{run}"
    );
    assert_eq!(line("no fdb ping: "), "lost", "{run}");
    let n = line("no neigh: ");
    assert!(
        n.starts_with("fail |") && n.contains("no neighbour entry for 10.98.0.0 on flannel.1"),
        "{run}"
    );
    assert_eq!(line("no neigh ping: "), "lost", "{run}");
    assert_eq!(line("fixed ping: "), "ok", "{run}");
}
