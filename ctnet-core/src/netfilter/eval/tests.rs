//! Table-driven tests of the evaluator: each match kind, chain walking (jumps, goto,
//! RETURN, policies, nested chains), marks, *may* forks and broken tables.

use super::*;
use crate::netfilter::parse_save;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// A FORWARD packet 10.0.0.2:40000 -> 10.0.1.2:80 over eth0 -> eth1.
fn tcp80() -> Packet {
    Packet::tcp(ip("10.0.0.2"), 40000, ip("10.0.1.2"), 80)
        .iif("eth0")
        .oif("eth1")
}

fn table(rules: &str, policy: &str) -> Table {
    let text = format!("*filter\n:FORWARD {policy} [0:0]\n{rules}COMMIT\n");
    parse_save(&text).remove(0)
}

fn eval_one(rule: &str, p: &Packet, ctx: &Context) -> Verdict {
    let t = table(&format!("-A FORWARD {rule} -j ACCEPT\n"), "DROP");
    evaluate(&t, "FORWARD", p, ctx).verdict
}

const YES: Option<bool> = Some(true);
const NO: Option<bool> = Some(false);
const MAY: Option<bool> = None;

fn check_cases(cases: &[(&str, Packet, Option<bool>)], ctx: &Context) {
    for (rule, p, want) in cases {
        let got = eval_one(rule, p, ctx);
        let got = match got {
            Verdict::Accept => Some(true),
            Verdict::Drop => Some(false),
            Verdict::May { .. } => None,
            other => panic!("{rule}: unexpected {other:?}"),
        };
        assert_eq!(got, *want, "rule `{rule}` on {p:?}");
    }
}

#[test]
fn address_interface_and_protocol_matches_follow_the_kernel() {
    let p = tcp80();
    let udp = Packet::udp(ip("10.0.0.2"), 5000, ip("10.0.1.2"), 53)
        .iif("eth0")
        .oif("eth1");
    let cases = [
        ("-s 10.0.0.0/24", p.clone(), YES),
        ("-s 10.0.0.3/32", p.clone(), NO),
        ("! -s 10.0.0.3/32", p.clone(), YES),
        ("! -s 10.0.0.0/8", p.clone(), NO),
        ("-d 10.0.1.2/32", p.clone(), YES),
        ("-d 10.0.0.0/24", p.clone(), NO),
        ("-s fd00::/8", p.clone(), NO),
        ("-i eth0", p.clone(), YES),
        ("-i eth+", p.clone(), YES),
        ("-i et+", p.clone(), YES),
        ("-i eth1", p.clone(), NO),
        ("! -i eth0", p.clone(), NO),
        ("-i +", p.clone(), YES),
        ("-o eth1", p.clone(), YES),
        ("! -o docker0", p.clone(), YES),
        ("-o eth1", p.clone().oif("docker0"), NO),
        ("-p tcp", p.clone(), YES),
        ("-p 6", p.clone(), YES),
        ("-p udp", p.clone(), NO),
        ("! -p udp", p.clone(), YES),
        ("! -p tcp", p.clone(), NO),
        ("-p all", udp.clone(), YES),
        ("-p udp", udp.clone(), YES),
        ("-p icmp", Packet::ping(ip("10.0.0.2"), ip("10.0.1.2")), YES),
        ("-p gre", Packet::other(ip("10.0.0.2"), ip("10.0.1.2"), 47), YES),
        ("-p esp", Packet::other(ip("10.0.0.2"), ip("10.0.1.2"), 47), NO),
        ("-f", p.clone(), NO),
        ("-f", p.clone().fragment(), YES),
        ("! -f", p.clone(), YES),
    ];
    check_cases(&cases, &Context::default());
}

#[test]
fn input_interface_of_a_locally_sent_packet_is_empty() {
    let mut p = tcp80();
    p.iif = None;
    check_cases(
        &[
            ("-i eth0", p.clone(), NO),
            ("! -i eth0", p.clone(), YES),
            ("-i +", p.clone(), YES),
        ],
        &Context::default(),
    );
}

#[test]
fn port_multiport_and_tcp_flag_matches_follow_the_kernel() {
    let p = tcp80();
    let cases = [
        ("-p tcp -m tcp --dport 80", p.clone(), YES),
        ("-p tcp -m tcp --dport 81", p.clone(), NO),
        ("-p tcp -m tcp ! --dport 81", p.clone(), YES),
        ("-p tcp -m tcp --dport 70:90", p.clone(), YES),
        ("-p tcp -m tcp --dport 81:90", p.clone(), NO),
        ("-p tcp -m tcp --sport 40000", p.clone(), YES),
        ("-p tcp -m tcp --sport 1024:65535 --dport 80", p.clone(), YES),
        ("-p tcp -m tcp --sport 1:1023 --dport 80", p.clone(), NO),
        ("-p tcp -m tcp --dport 80", p.clone().fragment(), NO),
        ("-p tcp -m tcp ! --dport 81", p.clone().fragment(), NO),
        ("-p udp -m udp --dport 80", p.clone(), NO),
        ("-p tcp -m multiport --dports 22,80,443", p.clone(), YES),
        ("-p tcp -m multiport --dports 22,8000:9000", p.clone(), NO),
        ("-p tcp -m multiport ! --dports 22,443", p.clone(), YES),
        ("-p tcp -m multiport --sports 40000", p.clone(), YES),
        ("-p tcp -m multiport --ports 40000", p.clone(), YES),
        ("-p tcp -m multiport --ports 81,40001", p.clone(), NO),
        ("-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN", p.clone(), YES),
        ("-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN", p.reply(), NO),
        ("-p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN", p.reply(), YES),
        ("-p tcp -m tcp --tcp-flags SYN,ACK SYN,ACK", p.reply(), YES),
        ("-p tcp -m tcp --tcp-option 2", p.clone(), MAY),
    ];
    check_cases(&cases, &Context::default());
    let mut unknown_flags = tcp80();
    unknown_flags.tcp_flags = None;
    check_cases(
        &[("-p tcp -m tcp --tcp-flags SYN SYN", unknown_flags, MAY)],
        &Context::default(),
    );
}

#[test]
fn conntrack_and_state_matches_follow_the_kernel() {
    let p = tcp80();
    let est = p.reply();
    let cases = [
        ("-m conntrack --ctstate NEW", p.clone(), YES),
        ("-m conntrack --ctstate RELATED,ESTABLISHED", p.clone(), NO),
        ("-m conntrack --ctstate RELATED,ESTABLISHED", est.clone(), YES),
        ("-m conntrack ! --ctstate NEW", est.clone(), YES),
        (
            "-m conntrack --ctstate INVALID",
            p.clone().state(ConnState::Invalid),
            YES,
        ),
        (
            "-m conntrack --ctstate NEW",
            p.clone().state(ConnState::Invalid),
            NO,
        ),
        (
            "-m conntrack --ctstate UNTRACKED",
            p.clone().state(ConnState::Untracked),
            YES,
        ),
        (
            "-m conntrack --ctstate INVALID",
            p.clone().state(ConnState::Untracked),
            NO,
        ),
        (
            "-m conntrack --ctstate RELATED",
            p.clone().state(ConnState::Related),
            YES,
        ),
        ("-m conntrack --ctstate DNAT", p.clone(), NO),
        (
            "-m conntrack --ctstate DNAT",
            p.clone().nat_status(false, true),
            YES,
        ),
        (
            "-m conntrack --ctstate SNAT",
            p.clone().nat_status(true, false),
            YES,
        ),
        (
            "-m conntrack ! --ctstate DNAT",
            p.clone().nat_status(false, true),
            NO,
        ),
        (
            "-m conntrack --ctstate SNAT",
            p.clone().nat_status(true, false).state(ConnState::Invalid),
            NO,
        ),
        ("-m conntrack --ctdir ORIGINAL", p.clone(), YES),
        ("-m conntrack --ctdir REPLY", p.clone(), NO),
        ("-m conntrack --ctdir REPLY", est.clone(), YES),
        // No connection: every option but --ctstate fails.
        (
            "-m conntrack --ctdir ORIGINAL",
            p.clone().state(ConnState::Invalid),
            NO,
        ),
        (
            "-m conntrack --ctstate INVALID --ctdir REPLY",
            p.clone().state(ConnState::Invalid),
            YES,
        ),
        ("-m conntrack --ctproto tcp", p.clone(), YES),
        ("-m conntrack --ctproto udp", p.clone(), NO),
        ("-m conntrack --ctorigdst 10.0.1.2/32", p.clone(), MAY),
        (
            "-m conntrack --ctstate NEW --ctorigdst 10.0.1.2/32",
            est.clone(),
            NO,
        ),
        ("-m state --state NEW", p.clone(), YES),
        ("-m state --state ESTABLISHED", p.clone(), NO),
        ("-m state ! --state NEW", est.clone(), YES),
    ];
    check_cases(&cases, &Context::default());
}

#[test]
fn icmp_type_matches_take_codes_and_any() {
    let echo = Packet::ping(ip("10.0.0.2"), ip("10.0.1.2"));
    let unreach = echo.clone().icmp_type(3, 3);
    let cases = [
        ("-p icmp -m icmp --icmp-type 8", echo.clone(), YES),
        ("-p icmp -m icmp --icmp-type echo-request", echo.clone(), YES),
        ("-p icmp -m icmp --icmp-type 0", echo.clone(), NO),
        ("-p icmp -m icmp ! --icmp-type 0", echo.clone(), YES),
        ("-p icmp -m icmp --icmp-type echo-reply", echo.reply(), YES),
        ("-p icmp -m icmp --icmp-type any", echo.clone(), YES),
        ("-p icmp -m icmp --icmp-type 3", unreach.clone(), YES),
        ("-p icmp -m icmp --icmp-type 3/3", unreach.clone(), YES),
        ("-p icmp -m icmp --icmp-type 3/1", unreach.clone(), NO),
        (
            "-p icmp -m icmp --icmp-type port-unreachable",
            unreach.clone(),
            YES,
        ),
        (
            "-p icmp -m icmp --icmp-type host-unreachable",
            unreach.clone(),
            NO,
        ),
        ("-p icmp -m icmp --icmp-type 8", echo.clone().fragment(), NO),
        ("-p icmp -m icmp --icmp-type 8", tcp80(), NO),
    ];
    check_cases(&cases, &Context::default());
    let v6 = Packet::ping(ip("fd00::1"), ip("fd00::2"));
    assert_eq!(v6.family(), crate::netfilter::Family::Ipv6);
    let t = parse_save(
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT\nCOMMIT\n",
    )
    .remove(0);
    assert_eq!(
        evaluate(&t, "FORWARD", &v6, &Context::default()).verdict,
        Verdict::Accept
    );
    assert_eq!(
        evaluate(&t, "FORWARD", &v6.reply(), &Context::default()).verdict,
        Verdict::Drop
    );
}

#[test]
fn mark_and_connmark_match_with_masks() {
    let p = tcp80().mark(0x4100).ctmark(0x2);
    let cases = [
        ("-m mark --mark 0x4100", p.clone(), YES),
        ("-m mark --mark 0x4000/0x4000", p.clone(), YES),
        ("-m mark --mark 0x4000", p.clone(), NO),
        ("-m mark ! --mark 0x1/0x1", p.clone(), YES),
        ("-m connmark --mark 0x2", p.clone(), YES),
        ("-m connmark --mark 0x3", p.clone(), NO),
        (
            "-m connmark ! --mark 0x3",
            p.clone().state(ConnState::Untracked),
            NO,
        ),
    ];
    check_cases(&cases, &Context::default());
}

#[test]
fn physdev_follows_the_bridge_facts() {
    let routed = tcp80();
    let bridged = tcp80().bridged(Some("veth1"), Some("veth2"));
    let entering = tcp80().bridged(Some("veth1"), None);
    let cases = [
        ("-m physdev --physdev-is-bridged", routed.clone(), NO),
        ("-m physdev ! --physdev-is-bridged", routed.clone(), YES),
        ("-m physdev --physdev-in veth1", routed.clone(), NO),
        ("-m physdev --physdev-is-bridged", bridged.clone(), YES),
        ("-m physdev ! --physdev-is-bridged", bridged.clone(), NO),
        ("-m physdev --physdev-in veth1", bridged.clone(), YES),
        ("-m physdev --physdev-in veth+", bridged.clone(), YES),
        ("-m physdev --physdev-in veth2", bridged.clone(), NO),
        (
            "-m physdev --physdev-out veth2 --physdev-is-bridged",
            bridged.clone(),
            YES,
        ),
        ("-m physdev ! --physdev-out veth2", bridged.clone(), NO),
        ("-m physdev --physdev-is-bridged", entering.clone(), NO),
        ("-m physdev --physdev-is-in", entering.clone(), YES),
        ("-m physdev --physdev-is-out", entering.clone(), NO),
        // No out port yet: the kernel does not test the name.
        ("-m physdev --physdev-out veth9", entering.clone(), YES),
    ];
    check_cases(&cases, &Context::default());
}

#[test]
fn addrtype_needs_the_local_addresses_and_sets_need_their_contents() {
    let p = Packet::tcp(ip("10.0.0.2"), 40000, ip("192.168.1.10"), 80).iif("eth0");
    let unknown = Context::default();
    check_cases(
        &[
            ("-m addrtype --dst-type LOCAL", p.clone(), MAY),
            ("-m addrtype --dst-type MULTICAST", p.clone().icmp_type(0, 0), MAY),
            ("-m set --match-set allowed src", p.clone(), MAY),
        ],
        &unknown,
    );
    let mut locals = BTreeMap::new();
    locals.insert("eth0".to_string(), vec!["10.0.0.1/24".parse().expect("net")]);
    locals.insert("eth1".to_string(), vec!["192.168.1.10/24".parse().expect("net")]);
    locals.insert("lo".to_string(), vec!["127.0.0.1/8".parse().expect("net")]);
    let mut sets = BTreeMap::new();
    sets.insert("allowed".to_string(), vec!["10.0.0.0/24".parse().expect("net")]);
    let ctx = Context {
        local_addrs: Some(locals),
        sets,
    };
    let to = |d: &str| Packet::tcp(ip("10.0.0.2"), 40000, ip(d), 80).iif("eth0");
    check_cases(
        &[
            ("-m addrtype --dst-type LOCAL", p.clone(), YES),
            ("-m addrtype ! --dst-type LOCAL", p.clone(), NO),
            ("-m addrtype --dst-type LOCAL --limit-iface-in", p.clone(), NO),
            ("-m addrtype --dst-type UNICAST --limit-iface-in", p.clone(), YES),
            ("-m addrtype --dst-type LOCAL", to("127.0.0.53"), YES),
            ("-m addrtype --dst-type LOCAL", to("8.8.8.8"), NO),
            ("-m addrtype --dst-type UNICAST", to("8.8.8.8"), YES),
            ("-m addrtype --dst-type BROADCAST", to("255.255.255.255"), YES),
            ("-m addrtype --dst-type MULTICAST", to("224.0.0.1"), YES),
            ("-m addrtype --dst-type BROADCAST", to("10.0.0.255"), MAY),
            ("-m addrtype --src-type LOCAL", p.clone(), NO),
            ("-m set --match-set allowed src", p.clone(), YES),
            ("-m set --match-set allowed dst", p.clone(), NO),
            ("-m set ! --match-set allowed dst", p.clone(), YES),
            ("-m set --match-set allowed src,dst", p.clone(), MAY),
            ("-m set --match-set other src", p.clone(), MAY),
        ],
        &ctx,
    );
}

#[test]
fn runtime_and_unknown_matches_are_may_unless_another_match_fails() {
    let p = tcp80();
    check_cases(
        &[
            ("-m limit --limit 5/sec", p.clone(), MAY),
            ("-m statistic --mode random --probability 0.5", p.clone(), MAY),
            ("-p udp -m limit --limit 5/sec", p.clone(), NO),
            ("-m foo --bar 1", p.clone(), MAY),
            ("-m comment --comment \"x\"", p.clone(), YES),
        ],
        &Context::default(),
    );
}

fn walk(text: &str, p: &Packet) -> Outcome {
    let tables = parse_save(text);
    evaluate(&tables[0], "FORWARD", p, &Context::default())
}

fn decided_at(o: &Outcome) -> String {
    match &o.decided_by {
        Some(Decider::Rule(r)) => format!("{}#{}", r.chain, r.position),
        Some(Decider::Policy { chain, .. }) => format!("{chain}:policy"),
        Some(Decider::Return { chain, .. }) => format!("{chain}:return"),
        None => "none".into(),
    }
}

#[test]
fn chain_walking_follows_jump_goto_and_return() {
    // (rules, want verdict, want decider)
    let cases: &[(&str, Verdict, &str)] = &[
        ("", Verdict::Drop, "FORWARD:policy"),
        ("-A FORWARD -j ACCEPT\n", Verdict::Accept, "FORWARD#1"),
        // RETURN in a base chain is the policy.
        (
            "-A FORWARD -j RETURN\n-A FORWARD -j ACCEPT\n",
            Verdict::Drop,
            "FORWARD:policy",
        ),
        // A user chain falling off its end returns to the next rule of the caller.
        (
            ":U - [0:0]\n-A FORWARD -j U\n-A FORWARD -j ACCEPT\n-A U -p udp -j DROP\n",
            Verdict::Accept,
            "FORWARD#2",
        ),
        (
            ":U - [0:0]\n-A FORWARD -j U\n-A FORWARD -j ACCEPT\n-A U -j RETURN\n-A U -j DROP\n",
            Verdict::Accept,
            "FORWARD#2",
        ),
        (
            ":U - [0:0]\n-A FORWARD -j U\n-A FORWARD -j ACCEPT\n-A U -p tcp -j REJECT\n",
            Verdict::Reject { with: None },
            "U#1",
        ),
        // Goto does not come back: the end of the goto'd chain is the caller's return.
        (
            ":U - [0:0]\n-A FORWARD -g U\n-A FORWARD -j ACCEPT\n-A U -p udp -j DROP\n",
            Verdict::Drop,
            "FORWARD:policy",
        ),
        (
            ":U - [0:0]\n-A FORWARD -g U\n-A FORWARD -j ACCEPT\n-A U -j RETURN\n",
            Verdict::Drop,
            "FORWARD:policy",
        ),
        // Jump to A, goto B from A: B's end returns to FORWARD after the jump.
        (
            ":A - [0:0]\n:B - [0:0]\n-A FORWARD -j A\n-A FORWARD -j ACCEPT\n-A A -g B\n-A A -j DROP\n-A B -p udp -j DROP\n",
            Verdict::Accept,
            "FORWARD#2",
        ),
        // Nested chains: RETURN pops one level only.
        (
            ":A - [0:0]\n:B - [0:0]\n-A FORWARD -j A\n-A FORWARD -j ACCEPT\n-A A -j B\n-A A -j DROP\n-A B -j RETURN\n",
            Verdict::Drop,
            "A#2",
        ),
        (
            ":A - [0:0]\n:B - [0:0]\n-A FORWARD -j A\n-A A -j B\n-A B -j LOG\n-A B -j ACCEPT\n",
            Verdict::Accept,
            "B#2",
        ),
        // Non-terminal targets continue.
        (
            "-A FORWARD -j LOG --log-prefix \"x \"\n-A FORWARD\n-A FORWARD -j ACCEPT\n",
            Verdict::Accept,
            "FORWARD#3",
        ),
        // MARK applies to later rules.
        (
            "-A FORWARD -j MARK --set-xmark 0x10/0xff\n-A FORWARD -m mark --mark 0x10 -j ACCEPT\n",
            Verdict::Accept,
            "FORWARD#2",
        ),
        (
            "-A FORWARD -j MARK --set-xmark 0x10/0xff\n-A FORWARD -m mark --mark 0x0 -j ACCEPT\n",
            Verdict::Drop,
            "FORWARD:policy",
        ),
        (
            "-A FORWARD -j CONNMARK --set-xmark 0x1/0xffffffff\n-A FORWARD -m connmark --mark 0x1 -j ACCEPT\n",
            Verdict::Accept,
            "FORWARD#2",
        ),
    ];
    let p = tcp80();
    for (rules, want, at) in cases {
        let o = walk(&format!("*filter\n:FORWARD DROP [0:0]\n{rules}COMMIT\n"), &p);
        assert_eq!(&o.verdict, want, "{rules}");
        assert_eq!(decided_at(&o), *at, "{rules}");
    }
}

#[test]
fn trace_lists_the_rules_that_matched_on_the_way() {
    let o = walk(
        "*filter\n:FORWARD DROP [0:0]\n:U - [0:0]\n-A FORWARD -p udp -j DROP\n-A FORWARD -j U\n-A U -j LOG\n-A U -p tcp -j ACCEPT\nCOMMIT\n",
        &tcp80(),
    );
    let at: Vec<String> = o
        .trace
        .iter()
        .map(|s| format!("{}#{}", s.rule.chain, s.rule.position))
        .collect();
    assert_eq!(at, ["FORWARD#2", "U#1", "U#2"]);
    assert_eq!(o.verdict, Verdict::Accept);
}

#[test]
fn a_user_chain_evaluated_alone_returns() {
    let tables = parse_save("*filter\n:FORWARD DROP [0:0]\n:U - [0:0]\n-A U -p udp -j DROP\nCOMMIT\n");
    let o = evaluate(&tables[0], "U", &tcp80(), &Context::default());
    assert_eq!(o.verdict, Verdict::Return);
}

#[test]
fn may_rules_fork_and_agree_or_stay_ambiguous() {
    let p = tcp80();
    // A may rule whose target does not change anything: no ambiguity.
    let o = walk(
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m limit --limit 1/sec -j LOG\n-A FORWARD -j ACCEPT\nCOMMIT\n",
        &p,
    );
    assert_eq!(o.verdict, Verdict::Accept);
    assert_eq!(o.trace[0].hit, Hit::May);
    // Both branches accept.
    let o = walk(
        "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m limit --limit 1/sec -j ACCEPT\nCOMMIT\n",
        &p,
    );
    assert_eq!(o.verdict, Verdict::Accept);
    // Accept or policy drop.
    let o = walk(
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m limit --limit 1/sec -j ACCEPT\nCOMMIT\n",
        &p,
    );
    assert_eq!(
        o.verdict,
        Verdict::May {
            candidates: vec![Verdict::Accept, Verdict::Drop],
            open: false
        }
    );
    assert_eq!(decided_at(&o), "FORWARD#1");
    // A may MARK changes what a later rule sees.
    let o = walk(
        "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m statistic --mode nth --every 2 -j MARK --set-xmark 0x1/0x1\n-A FORWARD -m mark --mark 0x1 -j DROP\nCOMMIT\n",
        &p,
    );
    assert!(matches!(o.verdict, Verdict::May { .. }), "{o:?}");
    // A definite earlier decision makes later may rules irrelevant.
    let o = walk(
        "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p tcp -j DROP\n-A FORWARD -m limit --limit 1/sec -j ACCEPT\nCOMMIT\n",
        &p,
    );
    assert_eq!(o.verdict, Verdict::Drop);
    // An unknown target on a matching rule.
    let o = walk(
        "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p tcp -j NOSUCHTARGET\nCOMMIT\n",
        &p,
    );
    assert_eq!(
        o.verdict,
        Verdict::May {
            candidates: vec![],
            open: true
        }
    );
    // An unknown target on a rule that cannot match is irrelevant.
    let o = walk(
        "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p udp -j NOSUCHTARGET\nCOMMIT\n",
        &p,
    );
    assert_eq!(o.verdict, Verdict::Accept);
}

#[test]
fn many_may_rules_end_in_may_not_in_an_explosion() {
    let mut rules = String::new();
    for i in 0..64 {
        rules.push_str(&format!(
            "-A FORWARD -m statistic --mode nth --every {} -j MARK --set-xmark 0x{:x}/0x{:x}\n",
            i + 2,
            1u32 << (i % 32),
            1u32 << (i % 32)
        ));
    }
    rules.push_str("-A FORWARD -m mark --mark 0x0 -j DROP\n");
    let o = walk(
        &format!("*filter\n:FORWARD ACCEPT [0:0]\n{rules}COMMIT\n"),
        &tcp80(),
    );
    assert!(matches!(o.verdict, Verdict::May { .. }), "{o:?}");
}

#[test]
fn loops_depth_and_missing_chains_are_errors() {
    let p = tcp80();
    let looped = [
        ":A - [0:0]\n:B - [0:0]\n-A FORWARD -j A\n-A A -j B\n-A B -j A\n",
        ":A - [0:0]\n:B - [0:0]\n-A FORWARD -g A\n-A A -g B\n-A B -g A\n",
        ":A - [0:0]\n-A FORWARD -j A\n-A A -p udp -j A\n",
    ];
    for rules in looped {
        let o = walk(&format!("*filter\n:FORWARD DROP [0:0]\n{rules}COMMIT\n"), &p);
        assert!(
            matches!(&o.verdict, Verdict::Error { message } if message.contains("loop")),
            "{rules}: {o:?}"
        );
    }
    let mut deep = String::from("*filter\n:FORWARD DROP [0:0]\n");
    for i in 0..100 {
        deep.push_str(&format!(":C{i} - [0:0]\n"));
    }
    deep.push_str("-A FORWARD -j C0\n");
    for i in 0..99 {
        deep.push_str(&format!("-A C{i} -j C{}\n", i + 1));
    }
    deep.push_str("COMMIT\n");
    let o = walk(&deep, &p);
    assert!(
        matches!(&o.verdict, Verdict::Error { message } if message.contains("deeper")),
        "{o:?}"
    );
    let t = table("", "DROP");
    let o = evaluate(&t, "NOPE", &p, &Context::default());
    assert!(matches!(o.verdict, Verdict::Error { .. }));
}

#[test]
fn nat_targets_end_the_chain_with_their_mapping() {
    let text = "*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.3:80\nCOMMIT\n";
    let t = parse_save(text).remove(0);
    let mut locals = BTreeMap::new();
    locals.insert("eth0".to_string(), vec!["192.168.1.10/24".parse().expect("net")]);
    let ctx = Context {
        local_addrs: Some(locals),
        sets: BTreeMap::new(),
    };
    let p = Packet::tcp(ip("192.168.1.20"), 40000, ip("192.168.1.10"), 8080).iif("eth0");
    let o = evaluate(&t, "PREROUTING", &p, &ctx);
    match o.verdict {
        Verdict::Nat {
            kind: NatKind::Dnat,
            to: Some(to),
            ..
        } => assert_eq!(to.addr_first, Some(ip("172.17.0.3"))),
        other => panic!("{other:?}"),
    }
    let o = evaluate(&t, "PREROUTING", &p, &Context::default());
    assert!(matches!(o.verdict, Verdict::May { .. }));
    let raw = parse_save("*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j CT --notrack\n-A PREROUTING -p tcp -j DROP\nCOMMIT\n").remove(0);
    // CT returns XT_CONTINUE: the rule after it still runs.
    let o = evaluate(&raw, "PREROUTING", &p, &Context::default());
    assert!(o.notrack);
    assert_eq!(o.verdict, Verdict::Drop);
}

#[test]
fn every_fixture_evaluates_without_error() {
    let p = Packet::tcp(ip("172.17.0.2"), 40000, ip("172.18.0.2"), 80)
        .iif("docker0")
        .oif("br-1");
    for (name, text) in crate::netfilter::tests::FIXTURES {
        for t in parse_save(text) {
            for c in t.chains.iter().filter(|c| c.policy.is_some()) {
                for q in [p.clone(), p.reply(), Packet::ping(p.src, p.dst)] {
                    let o = evaluate(&t, &c.name, &q, &Context::default());
                    assert!(
                        !matches!(o.verdict, Verdict::Error { .. }),
                        "{name} {} {}: {o:?}",
                        t.name,
                        c.name
                    );
                }
            }
        }
    }
}

#[test]
fn outcome_serializes_in_snake_case() {
    let o = walk(
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p tcp -j REJECT --reject-with tcp-reset\nCOMMIT\n",
        &tcp80(),
    );
    let j = serde_json::to_value(&o).expect("json");
    assert_eq!(j["verdict"]["reject"]["with"], "tcp-reset");
    assert_eq!(j["decided_by"]["rule"]["position"], 1);
    assert_eq!(j["trace"][0]["hit"], "yes");
}
