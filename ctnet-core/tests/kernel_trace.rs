//! The flow engine against the kernel. In a rootless world whose own netns plays the
//! host: bridge br0 (10.62.0.1/24) with c1 and c2, bridge br1 (10.62.1.1/24) with c3,
//! and an uplink up0 (203.0.113.1/24) to a netns `out` playing the outside (its route
//! back to the containers goes through the host). br_netfilter is on, as Docker sets it.
//!
//! Each rule set (none; Debian's dockerd 20.10; Docker 28; Docker 29's nftables
//! backend; ufw-like on iptables-legacy; firewalld-like inet table; kube-proxy's
//! ClusterIP DNAT; and seeded random sets mixing iptables-nft, iptables-legacy and
//! native nft) is loaded; a snapshot is taken; every flow of the matrix (TCP with data
//! both ways, UDP echo, ping: pair on a bridge, across bridges, egress to `out`,
//! ingress from `out` to a published port, container to host, host to container, a
//! service address) is traced statically and sent for real. Every flow the engine does
//! not call ambiguous must agree with the kernel.
//!
//! Replay a run with `CTNET_ORACLE_SEED=<seed>`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ctnet_core::flow::{self, Destination, FlowSpec, L4, Reach, Source, Trace};
use ctnet_core::model::Snapshot;
use ctnet_core::prop::Rng;
use ctnet_core::source::{ScanOptions, snapshot};
use ctnet_core::world::run_test_in_world;

#[path = "support/flows.rs"]
mod flows;
#[path = "support/tool.rs"]
mod tool;

use flows::{Servers, python, results, sh};

const TCP_PORTS: &[u16] = &[22, 80, 8080];
const UDP_PORTS: &[u16] = &[53, 5000];
const TIMEOUT: &str = "0.5";
const RETRY_TIMEOUT: &str = "3";
const RANDOM_SETS: usize = 6;

const C1: &str = "10.62.0.2";
const C2: &str = "10.62.0.3";
const C3: &str = "10.62.1.2";
const GW0: &str = "10.62.0.1";
const HOST_UP: &str = "203.0.113.1";
const OUT: &str = "203.0.113.2";
const SERVICE: &str = "10.96.0.10";

fn build_topology() {
    sh("ip link set lo up
        ip netns add c1
        ip netns add c2
        ip netns add c3
        ip netns add out
        ip link add br0 type bridge
        ip link add br1 type bridge
        ip addr add 10.62.0.1/24 dev br0
        ip addr add 10.62.1.1/24 dev br1
        ip link set br0 up
        ip link set br1 up
        for spec in c1:h1:br0:10.62.0.2:10.62.0.1 c2:h2:br0:10.62.0.3:10.62.0.1 c3:h3:br1:10.62.1.2:10.62.1.1; do
            IFS=: read ns host br ip gw <<EOF2
$spec
EOF2
            ip link add $host type veth peer name eth0 netns $ns
            ip link set $host master $br up
            ip -n $ns addr add $ip/24 dev eth0
            ip -n $ns link set eth0 up
            ip -n $ns link set lo up
            ip -n $ns route add default via $gw
        done
        ip link add up0 type veth peer name eth0 netns out
        ip addr add 203.0.113.1/24 dev up0
        ip link set up0 up
        ip -n out addr add 203.0.113.2/24 dev eth0
        ip -n out link set eth0 up
        ip -n out link set lo up
        ip -n out route add 10.62.0.0/16 via 203.0.113.1
        ip route add default via 203.0.113.2 dev up0
        echo 1 > /proc/sys/net/ipv4/ip_forward
        echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = [
            "ip netns exec c1 ping -c1 -W1 10.62.0.1",
            "ip netns exec c2 ping -c1 -W1 10.62.0.1",
            "ip netns exec c3 ping -c1 -W1 10.62.1.1",
            "ip netns exec out ping -c1 -W1 203.0.113.1",
        ]
        .iter()
        .all(|c| {
            Command::new("sh")
                .args(["-c", c])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "the topology did not come up");
    }
}

/// How a rule set is loaded.
enum Load {
    IptablesNft(String),
    IptablesLegacy(String),
    Nft(String),
    /// `ipset restore` input, loaded first.
    Ipset(String),
    /// iptables-nft rules inside a container's netns.
    IptablesIn(&'static str, String),
    /// A native nft rule set inside a container's netns.
    NftIn(&'static str, String),
}

struct RuleSet {
    name: String,
    parts: Vec<Load>,
}

fn fixed_sets() -> Vec<RuleSet> {
    let f = |name: &str| -> String {
        std::fs::read_to_string(format!(
            "{}/../fixtures/rulesets/oracle/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    vec![
        RuleSet {
            name: "none".into(),
            parts: vec![],
        },
        RuleSet {
            name: "docker-20.10".into(),
            parts: vec![Load::IptablesNft(f("docker-20.10.rules"))],
        },
        RuleSet {
            name: "docker-28".into(),
            parts: vec![Load::IptablesNft(f("docker-28.rules"))],
        },
        RuleSet {
            name: "docker-29-nftables".into(),
            parts: vec![Load::Nft(f("docker-29.nft"))],
        },
        RuleSet {
            name: "ufw-legacy".into(),
            parts: vec![Load::IptablesLegacy(f("ufw-legacy.rules"))],
        },
        RuleSet {
            name: "firewalld".into(),
            parts: vec![Load::Nft(f("firewalld.nft"))],
        },
        RuleSet {
            name: "kube-proxy".into(),
            parts: vec![Load::IptablesNft(f("kube-proxy.rules"))],
        },
        RuleSet {
            name: "container-rules".into(),
            parts: vec![
                Load::IptablesIn(
                    "c2",
                    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                     -A INPUT -p tcp -m tcp --dport 22 -j DROP\n\
                     -A INPUT -s 10.62.1.0/24 -p icmp -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n"
                        .into(),
                ),
                Load::NftIn(
                    "c1",
                    "table inet c1 {\n chain o { type filter hook output priority 0; policy accept;\n  \
                     ip daddr 10.62.1.2 udp dport 5000 drop\n }\n chain i { type filter hook input priority 0; \
                     policy accept;\n  tcp dport 8080 ct state new drop\n }\n}\n"
                        .into(),
                ),
                Load::IptablesIn(
                    "out",
                    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                     -A INPUT -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset\nCOMMIT\n"
                        .into(),
                ),
                // A container's own DNAT (as Docker's embedded DNS has): 8080 to c1 is
                // sent to port 80, which c1 does not drop.
                Load::IptablesIn(
                    "c3",
                    "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                     :POSTROUTING ACCEPT [0:0]\n\
                     -A OUTPUT -d 10.62.0.2/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.62.0.2:80\n\
                     COMMIT\n"
                        .into(),
                ),
            ],
        },
        RuleSet {
            name: "ipset".into(),
            parts: vec![Load::Ipset(f("ipset.save")), Load::IptablesNft(f("ipset.rules"))],
        },
    ]
}

const ADDRS: &[&str] = &[
    "10.62.0.2/32",
    "10.62.0.3/32",
    "10.62.0.0/24",
    "10.62.1.0/24",
    "10.62.1.2/32",
    "203.0.113.2/32",
    "203.0.113.0/24",
    "10.62.0.0/16",
];
const IFACES: &[&str] = &["br0", "br1", "up0", "br+", "lo"];

/// One random iptables rule for `chain` (FORWARD or INPUT).
fn random_ipt_rule(rng: &mut Rng, chain: &str) -> String {
    let mut r = format!("-A {chain}");
    if rng.below(3) == 0 {
        let neg = if rng.below(5) == 0 { "! " } else { "" };
        let _ = write!(r, " {neg}-s {}", rng.pick(ADDRS));
    }
    if rng.below(3) == 0 {
        let neg = if rng.below(5) == 0 { "! " } else { "" };
        let _ = write!(r, " {neg}-d {}", rng.pick(ADDRS));
    }
    if rng.below(3) == 0 {
        let _ = write!(r, " -i {}", rng.pick(IFACES));
    }
    if chain == "FORWARD" && rng.below(3) == 0 {
        let neg = if rng.below(4) == 0 { "! " } else { "" };
        let _ = write!(r, " {neg}-o {}", rng.pick(IFACES));
    }
    match rng.below(5) {
        0 => {
            let _ = write!(r, " -p tcp -m tcp --dport {}", rng.pick(TCP_PORTS));
        }
        1 => {
            let _ = write!(r, " -p udp -m udp --dport {}", rng.pick(UDP_PORTS));
        }
        2 => r.push_str(" -p icmp"),
        _ => {}
    }
    match rng.below(5) {
        0 => r.push_str(" -m conntrack --ctstate NEW"),
        1 => r.push_str(" -m conntrack --ctstate RELATED,ESTABLISHED"),
        _ => {}
    }
    let target = *rng.pick(&["ACCEPT", "ACCEPT", "DROP", "DROP", "REJECT", "RETURN"]);
    let _ = write!(r, " -j {target}");
    r
}

fn random_ipt(rng: &mut Rng) -> String {
    let mut s = String::from("*filter\n");
    let pol = |rng: &mut Rng| if rng.below(3) == 0 { "DROP" } else { "ACCEPT" };
    let (pi, pf) = (pol(rng), pol(rng));
    let _ = writeln!(s, ":INPUT {pi} [0:0]\n:FORWARD {pf} [0:0]\n:OUTPUT ACCEPT [0:0]");
    for (chain, policy) in [("INPUT", pi), ("FORWARD", pf)] {
        if policy == "DROP" && rng.below(4) != 0 {
            let _ = writeln!(
                s,
                "-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
            );
        }
        for _ in 0..rng.below(6) {
            let _ = writeln!(s, "{}", random_ipt_rule(rng, chain));
        }
    }
    s.push_str("COMMIT\n");
    s
}

fn random_nft(rng: &mut Rng) -> String {
    let mut s = String::from("table inet rnd {\n");
    for (chain, hook) in [("rnd_forward", "forward"), ("rnd_input", "input")] {
        let policy = if rng.below(3) == 0 { "drop" } else { "accept" };
        let prio = *rng.pick(&[-10, 0, 10]);
        let _ = writeln!(
            s,
            "  chain {chain} {{\n    type filter hook {hook} priority {prio}; policy {policy};"
        );
        if policy == "drop" && rng.below(4) != 0 {
            s.push_str("    ct state established,related accept\n");
        }
        for _ in 0..rng.below(6) {
            let mut r = String::from("    ");
            if rng.below(3) == 0 {
                let _ = write!(r, "ip saddr {} ", rng.pick(ADDRS));
            }
            if rng.below(3) == 0 {
                let neg = if rng.below(4) == 0 { "!= " } else { "" };
                let _ = write!(r, "ip daddr {neg}{} ", rng.pick(ADDRS));
            }
            if rng.below(3) == 0 {
                let _ = write!(r, "iifname \"{}\" ", rng.pick(&["br0", "br1", "up0", "lo"]));
            }
            if hook == "forward" && rng.below(3) == 0 {
                let _ = write!(r, "oifname \"{}\" ", rng.pick(&["br0", "br1", "up0"]));
            }
            match rng.below(5) {
                0 => {
                    let _ = write!(r, "tcp dport {} ", rng.pick(TCP_PORTS));
                }
                1 => {
                    let _ = write!(r, "udp dport {{ {}, {} }} ", UDP_PORTS[0], rng.pick(UDP_PORTS));
                }
                2 => r.push_str("meta l4proto icmp "),
                _ => {}
            }
            match rng.below(5) {
                0 => r.push_str("ct state new "),
                1 => r.push_str("ct state established,related "),
                _ => {}
            }
            const VERDICTS: [&str; 6] = ["accept", "accept", "drop", "drop", "reject", "counter"];
            r.push_str(VERDICTS[rng.below(VERDICTS.len())]);
            let _ = writeln!(s, "{r}");
        }
        s.push_str("  }\n");
    }
    s.push_str("}\n");
    s
}

fn random_set(rng: &mut Rng, i: usize) -> RuleSet {
    let mut parts = Vec::new();
    let mut names = Vec::new();
    if rng.below(3) != 0 {
        parts.push(Load::IptablesNft(random_ipt(rng)));
        names.push("iptables-nft");
    }
    if rng.below(2) == 0 {
        parts.push(Load::IptablesLegacy(random_ipt(rng)));
        names.push("iptables-legacy");
    }
    if rng.below(3) != 0 || parts.is_empty() {
        parts.push(Load::Nft(random_nft(rng)));
        names.push("nft");
    }
    RuleSet {
        name: format!("random-{i} ({})", names.join(" + ")),
        parts,
    }
}

fn load(set: &RuleSet) {
    // Start clean: no nft tables (iptables-nft's included), legacy filter accepting,
    // no ipsets (once no rule refers to them).
    sh("nft flush ruleset");
    let (ok, _, err) = tool::run_stdin(
        "iptables-legacy-restore",
        &[],
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
    );
    assert!(ok, "iptables-legacy-restore: {err}");
    sh("ipset destroy
        for ns in c1 c2 c3 out; do ip netns exec $ns nft flush ruleset; done");
    for p in &set.parts {
        let (prog, args, text): (&str, Vec<&str>, &str) = match p {
            Load::IptablesNft(t) => ("iptables-nft-restore", vec![], t),
            Load::IptablesLegacy(t) => ("iptables-legacy-restore", vec![], t),
            Load::Nft(t) => ("nft", vec!["-f", "-"], t),
            Load::Ipset(t) => ("ipset", vec!["restore"], t),
            Load::IptablesIn(ns, t) => ("ip", vec!["netns", "exec", ns, "iptables-nft-restore"], t),
            Load::NftIn(ns, t) => ("ip", vec!["netns", "exec", ns, "nft", "-f", "-"], t),
        };
        let args = &args[..];
        let (ok, _, err) = tool::run_stdin(prog, args, text);
        assert!(ok, "{prog} refused rule set {}:\n{text}\n{err}", set.name);
    }
}

#[derive(Clone, Debug)]
struct OFlow {
    /// A netns name, or `host`.
    from: &'static str,
    dst: &'static str,
    l4: L4,
    sport: u16,
}

impl OFlow {
    fn json(&self) -> String {
        let (proto, dport) = match self.l4 {
            L4::Tcp(p) => ("tcp", p),
            L4::Udp(p) => ("udp", p),
            L4::Icmp => ("icmp", 0),
        };
        format!(
            r#"{{"proto":"{proto}","dst":"{}","dport":{dport},"sport":{}}}"#,
            self.dst, self.sport
        )
    }

    fn describe(&self) -> String {
        format!(
            "{} -> {} {:?} (sport {})",
            self.from, self.dst, self.l4, self.sport
        )
    }
}

/// The matrix of flows, with fresh source ports from `next`.
fn matrix(next: &mut u16) -> Vec<OFlow> {
    let spec: &[(&str, &str, L4)] = &[
        // A pair on one bridge.
        ("c1", C2, L4::Tcp(80)),
        ("c1", C2, L4::Tcp(22)),
        ("c1", C2, L4::Udp(53)),
        ("c1", C2, L4::Icmp),
        ("c2", C1, L4::Tcp(8080)),
        // Across bridges.
        ("c1", C3, L4::Tcp(80)),
        ("c1", C3, L4::Udp(5000)),
        ("c1", C3, L4::Icmp),
        ("c3", C1, L4::Tcp(8080)),
        ("c3", C1, L4::Udp(5000)),
        ("c3", C1, L4::Icmp),
        // Egress to the outside.
        ("c1", OUT, L4::Tcp(80)),
        ("c1", OUT, L4::Udp(53)),
        ("c1", OUT, L4::Icmp),
        ("c3", OUT, L4::Tcp(22)),
        // Ingress from the outside: a published port, the host, a container directly.
        ("out", HOST_UP, L4::Tcp(8080)),
        ("out", HOST_UP, L4::Tcp(22)),
        ("out", HOST_UP, L4::Udp(5000)),
        ("out", HOST_UP, L4::Icmp),
        ("out", C1, L4::Tcp(80)),
        ("out", C1, L4::Icmp),
        // Container to host, host to container.
        ("c1", GW0, L4::Tcp(22)),
        ("c1", GW0, L4::Udp(53)),
        ("c1", GW0, L4::Icmp),
        ("host", C1, L4::Tcp(80)),
        ("host", C3, L4::Icmp),
        // A service address.
        ("c1", SERVICE, L4::Tcp(80)),
        ("c2", SERVICE, L4::Tcp(80)),
        // Ports nothing listens on: a reset, a port unreachable.
        ("c1", C2, L4::Tcp(9999)),
        ("c1", C2, L4::Udp(9999)),
        ("out", HOST_UP, L4::Tcp(9999)),
    ];
    spec.iter()
        .map(|&(from, dst, l4)| {
            *next += 1;
            OFlow {
                from,
                dst,
                l4,
                sport: *next,
            }
        })
        .collect()
}

fn netns_key(snap: &Snapshot, name: &str) -> ctnet_core::netns::NetnsKey {
    snap.netns
        .iter()
        .find(|n| n.label() == name)
        .unwrap_or_else(|| panic!("no netns {name} in the snapshot"))
        .key
}

fn trace_of(snap: &Snapshot, f: &OFlow) -> Trace {
    trace_routed(snap, f, None)
}

/// [`trace_of`] with each routing decision asked of `router` (the kernel).
fn trace_routed(snap: &Snapshot, f: &OFlow, router: Option<&dyn flow::Router>) -> Trace {
    let src = match f.from {
        "host" => Source::Host { addr: None },
        name => Source::Netns {
            netns: netns_key(snap, name),
            addr: None,
        },
    };
    let spec = FlowSpec {
        src,
        dst: Destination::Addr {
            addr: f.dst.parse::<IpAddr>().unwrap(),
        },
        l4: f.l4,
        sport: Some(f.sport),
        size: None,
    };
    flow::trace_with(snap, &spec, router).unwrap_or_else(|e| panic!("{}: {e}", f.describe()))
}

fn show(t: &Trace) -> String {
    let mut s = format!("{:?}: {}\n", t.verdict, t.summary);
    for (name, hops) in [("first", &t.hops), ("reply", &t.reply), ("ack", &t.established)] {
        for h in hops.iter() {
            let _ = writeln!(
                s,
                "  {name} [{}] {} {:?} {} {} | {}",
                h.netns,
                h.step,
                h.verdict,
                h.rule.as_deref().unwrap_or(""),
                h.detail,
                h.packet
            );
        }
    }
    s
}

fn send(py: &str, from: &str, flows: &[&OFlow], timeout: &str) -> Child {
    let json = format!(
        "[{}]",
        flows.iter().map(|f| f.json()).collect::<Vec<_>>().join(",")
    );
    if from == "host" {
        flows::send_here(py, &json, timeout)
    } else {
        flows::send_json(py, from, &json, timeout)
    }
}

#[test]
fn traced_flows_agree_with_the_kernel_over_real_and_random_rule_sets() {
    run_test_in_world(
        "traced_flows_agree_with_the_kernel_over_real_and_random_rule_sets",
        || {
            let started = Instant::now();
            let seed = std::env::var("CTNET_ORACLE_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(1, |d| d.as_nanos() as u64 | 1)
                });
            println!("seed {seed} (replay with CTNET_ORACLE_SEED={seed})");
            let mut rng = Rng(seed);
            build_topology();
            let py = python();
            let _servers = Servers(
                ["c1", "c2", "c3", "out"]
                    .iter()
                    .map(|ns| flows::start_server(&py, Some(ns), TCP_PORTS, UDP_PORTS))
                    .chain([flows::start_server(&py, None, TCP_PORTS, UDP_PORTS)])
                    .collect(),
            );
            let mut sets = fixed_sets();
            for i in 0..RANDOM_SETS {
                sets.push(random_set(&mut rng, i));
            }
            let mut next_sport: u16 = 20000;
            let (mut total, mut agree, mut ambiguous, mut reachable, mut retried) = (0, 0, 0, 0, 0);
            let mut routed_agree = 0;
            let mut disagreements = Vec::new();
            let mut per_set: Vec<(String, usize, usize)> = Vec::new();
            for set in &sets {
                load(set);
                // Every netns's own rules too, as a live trace reads those it walks.
                let snap = snapshot(&ScanOptions {
                    netns_firewall: true,
                    ..ScanOptions::default()
                })
                .expect("snapshot");
                let flows = matrix(&mut next_sport);
                let traces: Vec<Trace> = flows.iter().map(|f| trace_of(&snap, f)).collect();
                // The same flows with every routing decision asked of the kernel
                // (RTM_GETROUTE in each netns), as a live trace does.
                let router = flow::KernelRouter::new(&snap);
                let routed: Vec<Trace> = flows
                    .iter()
                    .map(|f| trace_routed(&snap, f, Some(&router)))
                    .collect();
                // Send every source's flows at once, each source in parallel.
                let sources = ["c1", "c2", "c3", "out", "host"];
                let mut got = vec![String::new(); flows.len()];
                let children: Vec<(Vec<usize>, Child)> = sources
                    .iter()
                    .filter_map(|src| {
                        let idx: Vec<usize> = (0..flows.len()).filter(|&i| flows[i].from == *src).collect();
                        (!idx.is_empty()).then(|| {
                            let fl: Vec<&OFlow> = idx.iter().map(|&i| &flows[i]).collect();
                            let child = send(&py, src, &fl, TIMEOUT);
                            (idx, child)
                        })
                    })
                    .collect();
                for (idx, child) in children {
                    for (i, r) in idx.into_iter().zip(results(child)) {
                        got[i] = r;
                    }
                }
                // A flow the engine calls reachable that timed out gets a patient retry.
                for (i, f) in flows.iter().enumerate() {
                    if got[i] == "timeout" && traces[i].verdict == Reach::Reachable {
                        retried += 1;
                        let mut again = f.clone();
                        next_sport += 1;
                        again.sport = next_sport;
                        let t = trace_of(&snap, &again);
                        if t.verdict == Reach::Reachable {
                            got[i] = results(send(&py, f.from, &[&again], RETRY_TIMEOUT)).remove(0);
                        }
                    }
                }
                per_set.push((
                    set.name.clone(),
                    got.iter().filter(|g| *g == "ok").count(),
                    flows.len(),
                ));
                for (i, f) in flows.iter().enumerate() {
                    total += 1;
                    let kernel = if got[i] == "ok" {
                        Reach::Reachable
                    } else {
                        Reach::Unreachable
                    };
                    reachable += usize::from(kernel == Reach::Reachable);
                    match traces[i].verdict {
                        Reach::Ambiguous => {
                            ambiguous += 1;
                            println!("ambiguous: {}: {}: {}", set.name, f.describe(), traces[i].summary);
                        }
                        v if v == kernel => agree += 1,
                        v => disagreements.push(format!(
                            "{}: {}: engine {v:?}, kernel {kernel:?} ({})\n{}",
                            set.name,
                            f.describe(),
                            got[i],
                            show(&traces[i])
                        )),
                    }
                    match routed[i].verdict {
                        Reach::Ambiguous => {}
                        v if v == kernel => routed_agree += 1,
                        v => disagreements.push(format!(
                            "{} (kernel routing): {}: engine {v:?}, kernel {kernel:?} ({})\n{}",
                            set.name,
                            f.describe(),
                            got[i],
                            show(&routed[i])
                        )),
                    }
                }
            }
            println!(
                "seed {seed}: {} rule sets, {total} flows, {agree} agree, {ambiguous} ambiguous, {} disagree, \
             {routed_agree} agree with routing asked of the kernel, {reachable} reachable in the kernel, \
             {retried} retried, {:.1} s",
                sets.len(),
                disagreements.len(),
                started.elapsed().as_secs_f64()
            );
            for d in &disagreements {
                println!("DISAGREEMENT {d}");
            }
            for (name, ok, n) in &per_set {
                println!("  {name}: {ok} of {n} flows reachable");
            }
            // The rule sets bite: each fixed one changes what the empty one lets through
            // (blocks flows, or, like kube-proxy's DNAT, opens a service address), so the
            // agreement is not that of a path nothing filters.
            let open = per_set.iter().find(|s| s.0 == "none").map_or(0, |s| s.1);
            for (name, ok, _) in per_set
                .iter()
                .filter(|s| !s.0.starts_with("random") && s.0 != "none")
            {
                assert!(*ok != open, "{name}: {ok} reachable, as with no rules ({open})");
            }
            assert!(total >= 200, "only {total} flows");
            assert!(
                disagreements.is_empty(),
                "{} disagreements (seed {seed})",
                disagreements.len()
            );
        },
    );
}
