//! The iptables evaluator against the kernel: in a rootless world, netns A
//! (10.61.1.2/24) and netns B (10.61.2.2/24) are joined through the world's own netns
//! acting as router. Seeded random FORWARD rule sets are loaded there with
//! `iptables-restore`, read back with `iptables-save`, and every flow (TCP connects,
//! UDP echo, ping, both directions) is sent for real and evaluated statically: the NEW
//! packet through FORWARD, then its ESTABLISHED reply. Reachable iff both accept.
//! Any disagreement on a flow the model does not call ambiguous fails the test.
//!
//! Replay a run with `CTNET_ORACLE_SEED=<seed>`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ctnet_core::netfilter::eval::tcp_flags;
use ctnet_core::netfilter::{ConnState, Context, Decider, Packet, Table, Verdict, evaluate, parse_save};
use ctnet_core::prop::Rng;
use ctnet_core::world::run_test_in_world;

#[path = "support/flows.rs"]
mod flows;
#[path = "support/tool.rs"]
mod tool;

use flows::{Servers, python, results, sh};

const A: &str = "10.61.1.2";
const B: &str = "10.61.2.2";
const TCP_PORTS: &[u16] = &[22, 80, 443, 8080, 9000];
const UDP_PORTS: &[u16] = &[53, 5000, 9000];
const RULE_SETS: usize = 60;
/// How long a client waits for an answer: a dropped packet is decided by this.
const TIMEOUT: &str = "0.5";
/// First client source port; each flow gets its own, so each is a new connection.
const FIRST_SPORT: u16 = 30000;

fn build_topology() {
    sh("ip netns add ea
        ip netns add eb
        ip link add ra type veth peer name a0 netns ea
        ip link add rb type veth peer name b0 netns eb
        ip addr add 10.61.1.1/24 dev ra
        ip addr add 10.61.2.1/24 dev rb
        ip link set ra up
        ip link set rb up
        ip -n ea addr add 10.61.1.2/24 dev a0
        ip -n eb addr add 10.61.2.2/24 dev b0
        ip -n ea link set a0 up
        ip -n eb link set b0 up
        ip -n ea link set lo up
        ip -n eb link set lo up
        ip -n ea route add default via 10.61.1.1
        ip -n eb route add default via 10.61.2.1
        echo 1 > /proc/sys/net/ipv4/ip_forward");
    // Wait for the links and the neighbours without a fixed sleep.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = [
            "ip netns exec ea ping -c1 -W1 10.61.1.1",
            "ip netns exec eb ping -c1 -W1 10.61.2.1",
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

#[derive(Clone, Copy, Debug, PartialEq)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
}

#[derive(Clone, Debug)]
struct Flow {
    from_a: bool,
    proto: Proto,
    dport: u16,
    sport: u16,
}

impl Flow {
    fn src(&self) -> &'static str {
        if self.from_a { A } else { B }
    }

    fn dst(&self) -> &'static str {
        if self.from_a { B } else { A }
    }

    fn packet(&self) -> Packet {
        let ip = |s: &str| -> IpAddr { s.parse().expect("static address") };
        let (src, dst) = (ip(self.src()), ip(self.dst()));
        let p = match self.proto {
            Proto::Tcp => Packet::tcp(src, self.sport, dst, self.dport),
            Proto::Udp => Packet::udp(src, self.sport, dst, self.dport),
            Proto::Icmp => Packet::ping(src, dst),
        };
        let (i, o) = if self.from_a { ("ra", "rb") } else { ("rb", "ra") };
        p.iif(i).oif(o)
    }

    fn json(&self) -> String {
        let proto = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        };
        format!(
            r#"{{"proto":"{proto}","dst":"{}","dport":{},"sport":{}}}"#,
            self.dst(),
            self.dport,
            self.sport
        )
    }

    fn describe(&self) -> String {
        match self.proto {
            Proto::Icmp => format!("{} -> {} ping", self.src(), self.dst()),
            p => format!(
                "{}:{} -> {}:{} {p:?}",
                self.src(),
                self.sport,
                self.dst(),
                self.dport
            ),
        }
    }
}

/// One random match/target rule for `chain`; `later` are the user chains it may jump to.
fn random_rule(rng: &mut Rng, chain: &str, later: &[String], sports: (u16, u16)) -> String {
    let mut r = format!("-A {chain}");
    let nets = [
        "10.61.1.0/24",
        "10.61.2.0/24",
        "10.61.1.2/32",
        "10.61.2.2/32",
        "10.61.0.0/16",
        "10.0.0.0/8",
        "192.168.0.0/16",
    ];
    let bang = |rng: &mut Rng| if rng.one_in(4) { "! " } else { "" };
    if rng.one_in(4) {
        let n = *rng.pick(&nets);
        let b = bang(rng);
        write!(r, " {b}-s {n}").ok();
    }
    if rng.one_in(4) {
        let n = *rng.pick(&nets);
        let b = bang(rng);
        write!(r, " {b}-d {n}").ok();
    }
    let ifaces = ["ra", "rb", "r+", "eth0"];
    if rng.one_in(4) {
        let i = *rng.pick(&ifaces);
        let b = bang(rng);
        write!(r, " {b}-i {i}").ok();
    }
    if rng.one_in(4) {
        let i = *rng.pick(&ifaces);
        let b = bang(rng);
        write!(r, " {b}-o {i}").ok();
    }
    let proto = match rng.below(10) {
        0..=2 => Some(Proto::Tcp),
        3..=4 => Some(Proto::Udp),
        5..=6 => Some(Proto::Icmp),
        _ => None,
    };
    match proto {
        Some(p @ (Proto::Tcp | Proto::Udp)) => {
            let name = if p == Proto::Tcp { "tcp" } else { "udp" };
            let ports = if p == Proto::Tcp { TCP_PORTS } else { UDP_PORTS };
            write!(r, " -p {name}").ok();
            match rng.below(4) {
                0 => {
                    let b = bang(rng);
                    write!(r, " -m {name} {b}--dport {}", rng.pick(ports)).ok();
                }
                1 => {
                    let lo = *rng.pick(ports);
                    let hi = lo.saturating_add(rng.below(9000) as u16);
                    write!(r, " -m {name} --dport {lo}:{hi}").ok();
                }
                2 => {
                    let lo = sports.0 + rng.below(usize::from(sports.1 - sports.0)) as u16;
                    let hi = lo + rng.below(60) as u16;
                    let b = bang(rng);
                    write!(r, " -m {name} {b}--sport {lo}:{hi}").ok();
                }
                _ => {
                    let mut list: Vec<String> = (0..1 + rng.below(3))
                        .map(|_| rng.pick(ports).to_string())
                        .collect();
                    if rng.one_in(3) {
                        list.push("8000:9999".into());
                    }
                    list.dedup();
                    let b = bang(rng);
                    write!(r, " -m multiport {b}--dports {}", list.join(",")).ok();
                }
            }
        }
        Some(Proto::Icmp) => {
            r.push_str(" -p icmp");
            if rng.one_in(2) {
                let t = *rng.pick(&[
                    "echo-request",
                    "echo-reply",
                    "8",
                    "0",
                    "any",
                    "destination-unreachable",
                    "8/0",
                    "0/1",
                ]);
                let b = bang(rng);
                write!(r, " -m icmp {b}--icmp-type {t}").ok();
            }
        }
        None => match rng.below(8) {
            0 => r.push_str(" ! -p udp"),
            1 => r.push_str(" -p all"),
            _ => {}
        },
    }
    if proto == Some(Proto::Tcp) && rng.one_in(4) {
        let b = bang(rng);
        write!(r, " -m tcp {b}--tcp-flags FIN,SYN,RST,ACK SYN").ok();
    }
    if rng.one_in(8) {
        let d = if rng.one_in(2) { "ORIGINAL" } else { "REPLY" };
        write!(r, " -m conntrack --ctdir {d}").ok();
    }
    if rng.one_in(3) {
        let all = ["NEW", "ESTABLISHED", "RELATED", "INVALID"];
        let states: Vec<&str> = all.iter().copied().filter(|_| rng.one_in(2)).collect();
        let states = if states.is_empty() {
            vec![*rng.pick(&all)]
        } else {
            states
        };
        let b = bang(rng);
        if rng.one_in(4) {
            write!(r, " -m state {b}--state {}", states.join(",")).ok();
        } else {
            write!(r, " -m conntrack {b}--ctstate {}", states.join(",")).ok();
        }
    }
    if rng.one_in(6) {
        let b = bang(rng);
        write!(r, " -m mark {b}--mark 0x{}", 1 + rng.below(2)).ok();
    }
    if rng.one_in(10) {
        let b = bang(rng);
        write!(r, " -m connmark {b}--mark 0x{}", 1 + rng.below(2)).ok();
    }
    if rng.one_in(10) {
        let dir = if rng.one_in(2) { "src" } else { "dst" };
        let t = *rng.pick(&["LOCAL", "UNICAST", "BROADCAST", "MULTICAST", "LOCAL,UNICAST"]);
        let b = bang(rng);
        let limit = if rng.one_in(3) { " --limit-iface-in" } else { "" };
        write!(r, " -m addrtype {b}--{dir}-type {t}{limit}").ok();
    }
    // A run-time match (always true at this rate): the model must call it ambiguous
    // whenever it could decide.
    if rng.one_in(20) {
        r.push_str(" -m limit --limit 10000/sec");
    }
    let target = match rng.below(100) {
        0..=24 => "-j ACCEPT".to_string(),
        25..=42 => "-j DROP".to_string(),
        43..=52 => {
            if proto == Some(Proto::Tcp) && rng.one_in(2) {
                "-j REJECT --reject-with tcp-reset".to_string()
            } else {
                "-j REJECT".to_string()
            }
        }
        53..=60 => "-j LOG --log-prefix \"ctnet \"".to_string(),
        61..=67 => "-j RETURN".to_string(),
        68..=76 => format!("-j MARK --set-mark 0x{}", 1 + rng.below(2)),
        77..=79 => String::new(),
        80..=83 => format!("-j CONNMARK --set-mark 0x{}", 1 + rng.below(2)),
        84..=91 if !later.is_empty() => format!("-j {}", rng.pick(later)),
        92..=99 if !later.is_empty() => format!("-g {}", rng.pick(later)),
        _ => "-j ACCEPT".to_string(),
    };
    if !target.is_empty() {
        write!(r, " {target}").ok();
    }
    r
}

fn random_ruleset(rng: &mut Rng, sports: (u16, u16)) -> String {
    let users: Vec<String> = (0..rng.below(4)).map(|i| format!("U{i}")).collect();
    let policy = if rng.one_in(2) { "ACCEPT" } else { "DROP" };
    let mut text = format!("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD {policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for u in &users {
        writeln!(text, ":{u} - [0:0]").ok();
    }
    let mut forward: Vec<String> = (0..1 + rng.below(6))
        .map(|_| random_rule(rng, "FORWARD", &users, sports))
        .collect();
    if rng.one_in(2) {
        let at = rng.below(forward.len() + 1);
        forward.insert(
            at,
            "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into(),
        );
    }
    for line in forward {
        writeln!(text, "{line}").ok();
    }
    // User chains jump only to later ones: the kernel refuses loops.
    for (i, u) in users.iter().enumerate() {
        for _ in 0..1 + rng.below(5) {
            writeln!(text, "{}", random_rule(rng, u, &users[i + 1..], sports)).ok();
        }
    }
    text.push_str("COMMIT\n");
    text
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum Reach {
    Reachable,
    Unreachable,
    Ambiguous,
}

/// The router's own addresses, for `-m addrtype`.
fn router_context() -> Context {
    let net = |s: &str| s.parse().expect("static prefix");
    let mut local = BTreeMap::new();
    local.insert("lo".to_string(), vec![net("127.0.0.1/8")]);
    local.insert("ra".to_string(), vec![net("10.61.1.1/24")]);
    local.insert("rb".to_string(), vec![net("10.61.2.1/24")]);
    Context {
        local_addrs: Some(local),
        ..Context::default()
    }
}

/// Whether FORWARD accepts `p`, why, and the connection mark the walk leaves.
fn verdict_line(table: &Table, p: &Packet) -> (Option<bool>, String, Option<u32>) {
    let o = evaluate(table, "FORWARD", p, &router_context());
    let by = match &o.decided_by {
        Some(Decider::Rule(r)) => format!("{} #{}: {}", r.chain, r.position, r.text),
        Some(Decider::Policy { chain, .. }) => format!("{chain} policy"),
        Some(Decider::Return { chain, .. }) => format!("{chain} return"),
        None => "nothing".into(),
    };
    let accept = match &o.verdict {
        Verdict::Accept => Some(true),
        Verdict::Drop | Verdict::Reject { .. } => Some(false),
        Verdict::Error { message } => panic!("evaluation error on a table the kernel loaded: {message}"),
        _ => None,
    };
    (accept, format!("{:?} by {by}", o.verdict), o.ctmark)
}

fn model(table: &Table, f: &Flow) -> (Reach, String) {
    let p = f.packet();
    let (fwd, why_f, ctmark) = verdict_line(table, &p);
    // The connection mark set on the first packet is the reply's (CONNMARK).
    let (rep, why_r) = match ctmark {
        Some(m) => {
            let (rep, why, _) = verdict_line(table, &p.reply().ctmark(m));
            (rep, why)
        }
        None => (None, "connection mark unknown".to_string()),
    };
    // TCP carries data after the handshake: the ACK and data of the original direction
    // and the data of the reply are ESTABLISHED packets that FORWARD must pass too.
    let mut steps = vec![(fwd, format!("new: {why_f}")), (rep, format!("reply: {why_r}"))];
    if f.proto == Proto::Tcp {
        let data = tcp_flags::ACK | tcp_flags::PSH;
        match ctmark {
            Some(m) => {
                let orig = p.clone().state(ConnState::Established).flags(data).ctmark(m);
                let back = p.reply().flags(data).ctmark(m);
                let (o, why_o, _) = verdict_line(table, &orig);
                let (b, why_b, _) = verdict_line(table, &back);
                steps.push((o, format!("data: {why_o}")));
                steps.push((b, format!("data back: {why_b}")));
            }
            None => steps.push((None, "data: connection mark unknown".into())),
        }
    }
    // Packets are tried in order: the first one refused ends the flow.
    let mut reach = Reach::Reachable;
    for (ok, _) in &steps {
        match ok {
            Some(true) => {}
            Some(false) => {
                reach = Reach::Unreachable;
                break;
            }
            None => {
                reach = Reach::Ambiguous;
                break;
            }
        }
    }
    let why: Vec<String> = steps.into_iter().map(|(_, w)| w).collect();
    (reach, why.join("; "))
}

fn send(py: &str, netns: &str, flows: &[&Flow]) -> Child {
    send_within(py, netns, flows, TIMEOUT)
}

/// A second, patient try, for a flow the model calls reachable whose first try timed
/// out: on a loaded machine 0.5 s can pass before a forwarded SYN is answered.
const RETRY_TIMEOUT: &str = "3";

fn send_within(py: &str, netns: &str, flows: &[&Flow], timeout: &str) -> Child {
    let json = format!(
        "[{}]",
        flows.iter().map(|f| f.json()).collect::<Vec<_>>().join(",")
    );
    flows::send_json(py, netns, &json, timeout)
}

#[test]
fn random_forward_rule_sets_decide_flows_as_the_kernel_does() {
    run_test_in_world("random_forward_rule_sets_decide_flows_as_the_kernel_does", || {
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
        let _servers = Servers(vec![
            flows::start_server(&py, Some("ea"), TCP_PORTS, UDP_PORTS),
            flows::start_server(&py, Some("eb"), TCP_PORTS, UDP_PORTS),
        ]);
        let per_set = 10;
        let sports = (FIRST_SPORT, FIRST_SPORT + (RULE_SETS * per_set) as u16);
        let mut next_sport = FIRST_SPORT;
        let (mut flows_n, mut agree, mut ambiguous) = (0, 0, 0);
        let mut reachable = 0;
        let mut retried = 0;
        let mut disagreements = Vec::new();
        for set in 0..RULE_SETS {
            let text = random_ruleset(&mut rng, sports);
            let (ok, _, err) = tool::run_stdin("iptables-restore", &[], &text);
            assert!(ok, "iptables-restore refused rule set {set}:\n{text}\n{err}");
            let (ok, saved, err) = tool::run_stdin("iptables-save", &["-t", "filter"], "");
            assert!(ok, "iptables-save: {err}");
            let table = parse_save(&saved)
                .into_iter()
                .find(|t| t.name == "filter")
                .expect("filter table saved");
            let mut flows = Vec::new();
            for from_a in [true, false] {
                for _ in 0..3 {
                    flows.push((from_a, Proto::Tcp, *rng.pick(TCP_PORTS)));
                }
                flows.push((from_a, Proto::Udp, *rng.pick(UDP_PORTS)));
                flows.push((from_a, Proto::Icmp, 0));
            }
            let flows: Vec<Flow> = flows
                .into_iter()
                .map(|(from_a, proto, dport)| {
                    next_sport += 1;
                    Flow {
                        from_a,
                        proto,
                        dport,
                        sport: next_sport,
                    }
                })
                .collect();
            let (fa, fb): (Vec<&Flow>, Vec<&Flow>) = flows.iter().partition(|f| f.from_a);
            let ca = send(&py, "ea", &fa);
            let cb = send(&py, "eb", &fb);
            let mut ra = results(ca);
            let mut rb = results(cb);
            for (side, netns, got) in [(&fa, "ea", &mut ra), (&fb, "eb", &mut rb)] {
                let slow: Vec<usize> = (0..side.len())
                    .filter(|&i| got[i] == "timeout" && model(&table, side[i]).0 == Reach::Reachable)
                    .collect();
                if slow.is_empty() {
                    continue;
                }
                retried += slow.len();
                let again: Vec<&Flow> = slow.iter().map(|&i| side[i]).collect();
                for (i, r) in slow
                    .iter()
                    .zip(results(send_within(&py, netns, &again, RETRY_TIMEOUT)))
                {
                    got[*i] = r;
                }
            }
            for (f, real) in fa.iter().zip(&ra).chain(fb.iter().zip(&rb)) {
                flows_n += 1;
                let (want, why) = model(&table, f);
                let got = if real == "ok" {
                    Reach::Reachable
                } else {
                    Reach::Unreachable
                };
                reachable += usize::from(got == Reach::Reachable);
                match want {
                    Reach::Ambiguous => ambiguous += 1,
                    w if w == got => agree += 1,
                    w => disagreements.push(format!(
                        "rule set {set}, flow {}: model {w:?} ({why}), kernel {got:?} ({real})\n{saved}",
                        f.describe()
                    )),
                }
            }
        }
        println!(
            "seed {seed}: {RULE_SETS} rule sets, {flows_n} flows, {agree} agree, {ambiguous} ambiguous, \
                 {} disagree, {reachable} reachable in the kernel, {retried} slow flows tried again, {:.1} s",
            disagreements.len(),
            started.elapsed().as_secs_f64()
        );
        for d in &disagreements {
            println!("DISAGREEMENT {d}");
        }
        assert!(
            disagreements.is_empty(),
            "{} disagreements (seed {seed})",
            disagreements.len()
        );
    });
}
