//! The native nft evaluator on recorded rule sets: Docker 29's nftables backend and
//! the expression catalogue, plus loops and unknowns.

use std::collections::BTreeMap;

use super::*;
use crate::netfilter::nft::{Family, parse_nft_json};

const DOCKER29: &str = include_str!("../../../../fixtures/rulesets/docker-29-nftables.json");

fn docker29() -> Table {
    parse_nft_json(DOCKER29)
        .unwrap()
        .table(Family::Ip, "docker-bridges")
        .unwrap()
        .clone()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn host_ctx() -> Context {
    let mut locals = BTreeMap::new();
    locals.insert("eth0".to_string(), vec!["203.0.113.5/24".parse().unwrap()]);
    locals.insert("bridge1".to_string(), vec!["192.0.2.1/24".parse().unwrap()]);
    locals.insert("lo".to_string(), vec!["127.0.0.1/8".parse().unwrap()]);
    Context {
        local_addrs: Some(locals),
        sets: BTreeMap::new(),
    }
}

#[test]
fn docker29_forward_between_containers_of_one_network_is_accepted_by_icc() {
    let t = docker29();
    let p = Packet::tcp(ip("192.0.2.3"), 40000, ip("192.0.2.2"), 22)
        .iif("bridge1")
        .oif("bridge1");
    let out = evaluate(&t, "filter-FORWARD", &p, &host_ctx(), None);
    assert_eq!(out.verdict, Verdict::Accept);
    let Some(Decider::Rule(r)) = &out.decided_by else {
        panic!("{out:?}")
    };
    assert_eq!(r.chain, "filter-forward-in__bridge1");
    assert_eq!(r.handle, Some(34));
    assert_eq!(r.table, "ip docker-bridges");
    assert!(r.text.contains("ICC"), "{}", r.text);
}

#[test]
fn docker29_unpublished_port_from_outside_is_dropped_and_the_published_one_accepted() {
    let t = docker29();
    let p = Packet::tcp(ip("203.0.113.9"), 40000, ip("192.0.2.2"), 22)
        .iif("eth0")
        .oif("bridge1");
    let out = evaluate(&t, "filter-FORWARD", &p, &host_ctx(), None);
    assert_eq!(out.verdict, Verdict::Drop);
    let Some(Decider::Rule(r)) = &out.decided_by else {
        panic!("{out:?}")
    };
    assert_eq!(r.handle, Some(36));
    let p = Packet::tcp(ip("203.0.113.9"), 40000, ip("192.0.2.2"), 80)
        .iif("eth0")
        .oif("bridge1");
    assert_eq!(
        evaluate(&t, "filter-FORWARD", &p, &host_ctx(), None).verdict,
        Verdict::Accept
    );
    // The reply of an established flow is accepted by the ct state rule.
    let r = p.reply().state(ConnState::Established);
    assert_eq!(
        evaluate(&t, "filter-FORWARD", &r, &host_ctx(), None).verdict,
        Verdict::Accept
    );
}

#[test]
fn docker29_published_port_is_dnated_at_prerouting_only_for_a_local_address() {
    let t = docker29();
    let p = Packet::tcp(ip("203.0.113.9"), 40000, ip("203.0.113.5"), 8080).iif("eth0");
    let out = evaluate(&t, "nat-PREROUTING", &p, &host_ctx(), None);
    let Verdict::Nat { kind, to, .. } = &out.verdict else {
        panic!("{out:?}")
    };
    assert_eq!(*kind, NatKind::Dnat);
    let to = to.unwrap();
    assert_eq!(to.addr_first, Some(ip("192.0.2.2")));
    assert_eq!(to.ports, Some(PortRange { first: 80, last: 80 }));
    // Not a local address: no DNAT, the policy accepts.
    let p = Packet::tcp(ip("203.0.113.9"), 40000, ip("198.51.100.7"), 8080).iif("eth0");
    assert_eq!(
        evaluate(&t, "nat-PREROUTING", &p, &host_ctx(), None).verdict,
        Verdict::Accept
    );
    // Without the host's addresses, the fib lookup cannot be decided.
    let p = Packet::tcp(ip("203.0.113.9"), 40000, ip("203.0.113.5"), 8080).iif("eth0");
    let out = evaluate(&t, "nat-PREROUTING", &p, &Context::default(), None);
    assert!(matches!(out.verdict, Verdict::May { .. }), "{out:?}");
}

#[test]
fn docker29_masquerade_applies_to_egress_only() {
    let t = docker29();
    let p = Packet::udp(ip("192.0.2.2"), 5000, ip("198.51.100.7"), 53)
        .iif("bridge1")
        .oif("eth0");
    let out = evaluate(&t, "nat-POSTROUTING", &p, &host_ctx(), None);
    assert!(
        matches!(
            out.verdict,
            Verdict::Nat {
                kind: NatKind::Masquerade,
                ..
            }
        ),
        "{out:?}"
    );
    let p = p.oif("bridge1");
    assert_eq!(
        evaluate(&t, "nat-POSTROUTING", &p, &host_ctx(), None).verdict,
        Verdict::Accept
    );
}

#[test]
fn direct_access_to_a_container_address_is_dropped_in_raw() {
    let t = docker29();
    let p = Packet::ping(ip("203.0.113.9"), ip("192.0.2.2")).iif("eth0");
    let out = evaluate(&t, "raw-PREROUTING", &p, &host_ctx(), None);
    assert_eq!(out.verdict, Verdict::Drop);
    let p = Packet::ping(ip("192.0.2.3"), ip("192.0.2.2")).iif("bridge1");
    assert_eq!(
        evaluate(&t, "raw-PREROUTING", &p, &host_ctx(), None).verdict,
        Verdict::Accept
    );
}

fn one_table(rules: &str) -> Table {
    let doc = format!(
        r#"{{"nftables": [
  {{"table": {{"family": "inet", "name": "t", "handle": 1}}}},
  {{"chain": {{"family": "inet", "table": "t", "name": "in", "handle": 1,
    "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}}},
  {{"chain": {{"family": "inet", "table": "t", "name": "a", "handle": 2}}}},
  {{"chain": {{"family": "inet", "table": "t", "name": "b", "handle": 3}}}},
  {rules}]}}"#
    );
    parse_nft_json(&doc).unwrap().tables[0].clone()
}

fn rule(chain: &str, handle: u64, expr: &str) -> String {
    format!(
        r#"{{"rule": {{"family": "inet", "table": "t", "chain": "{chain}", "handle": {handle}, "expr": {expr}}}}}"#
    )
}

#[test]
fn a_loop_of_jumps_is_an_error_not_a_verdict() {
    let t = one_table(
        &[
            rule("in", 4, r#"[{"jump": {"target": "a"}}]"#),
            rule("a", 5, r#"[{"jump": {"target": "b"}}]"#),
            rule("b", 6, r#"[{"goto": {"target": "a"}}]"#),
        ]
        .join(","),
    );
    let p = Packet::ping(ip("10.0.0.1"), ip("10.0.0.2"));
    let out = evaluate(&t, "in", &p, &Context::default(), None);
    let Verdict::Error { message } = out.verdict else {
        panic!("{out:?}")
    };
    assert!(message.contains("loop of jumps: a -> b -> a"), "{message}");
}

#[test]
fn an_unknown_expression_makes_a_may_and_a_known_one_decides() {
    let t = one_table(&[
        rule(
            "in",
            4,
            r#"[{"match": {"op": "==", "left": {"osf": {"key": "name"}}, "right": "Linux"}}, {"accept": null}]"#,
        ),
        rule(
            "in",
            5,
            r#"[{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "icmp"}}, {"accept": null}]"#,
        ),
    ]
    .join(","));
    let out = evaluate(
        &t,
        "in",
        &Packet::ping(ip("10.0.0.1"), ip("10.0.0.2")),
        &Context::default(),
        None,
    );
    // Either branch accepts: the unknown rule cannot change the verdict.
    assert_eq!(out.verdict, Verdict::Accept);
    let out = evaluate(
        &t,
        "in",
        &Packet::udp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 53),
        &Context::default(),
        None,
    );
    let Verdict::May { candidates, open } = out.verdict else {
        panic!("{out:?}")
    };
    assert!(!open);
    assert!(candidates.contains(&Verdict::Accept) && candidates.contains(&Verdict::Drop));
}

#[test]
fn marks_set_on_the_way_are_tested_by_later_rules_and_interface_wildcards_match() {
    let t = one_table(&[
        rule(
            "in",
            4,
            r#"[{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "veth*"}}, {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 16}}]"#,
        ),
        rule(
            "in",
            5,
            r#"[{"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 16}}, {"accept": null}]"#,
        ),
    ]
    .join(","));
    let p = Packet::ping(ip("10.0.0.1"), ip("10.0.0.2")).iif("veth12ab");
    let out = evaluate(&t, "in", &p, &Context::default(), None);
    assert_eq!(out.verdict, Verdict::Accept, "{out:?}");
    assert_eq!(out.mark, Some(16));
    let p = Packet::ping(ip("10.0.0.1"), ip("10.0.0.2")).iif("eth0");
    assert_eq!(
        evaluate(&t, "in", &p, &Context::default(), None).verdict,
        Verdict::Drop
    );
}
