//! Tests of the native nftables model: expressions as the kernel lists them
//! (`nft-expressions.json`, recorded from `nft -j list ruleset` after `nft -f
//! nft-expressions.nft`), priorities, the snapshot view, and seeded mutations.

use super::*;
use crate::model::{NftChain, NftRule};
use crate::prop::{Rng, mutate_bytes, mutate_json};

const RECORDED: &str = include_str!("../../../../fixtures/rulesets/nft-expressions.json");
/// `nft -j list ruleset` after `nft -f docker-29-nftables.nft` (nft 1.0.6, kernel 6.18).
const DOCKER29: &str = include_str!("../../../../fixtures/rulesets/docker-29-nftables.json");

fn recorded() -> Ruleset {
    parse_nft_json(RECORDED).expect("recorded document parses")
}

fn rules_of(rs: &Ruleset, family: Family, table: &str, chain: &str) -> Vec<Rule> {
    rs.table(family, table)
        .and_then(|t| t.chain(chain))
        .map(|c| c.rules.clone())
        .unwrap_or_default()
}

fn m(left: Expr, op: Op, right: Value) -> Stmt {
    Stmt::Match { left, op, right }
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn boxed(v: Value) -> Box<Value> {
    Box::new(v)
}

#[test]
fn recorded_expressions_parse_to_typed_statements() {
    let rs = recorded();
    let pre = rules_of(&rs, Family::Inet, "t", "pre");
    let nat = rules_of(&rs, Family::Ip, "n", "nat");
    let dn = rules_of(&rs, Family::Ip, "n", "dn");
    let br = rules_of(&rs, Family::Bridge, "b", "f");
    let counter = Stmt::Counter(Some(Counters { packets: 0, bytes: 0 }));
    let cases: Vec<(&str, &Rule, Vec<Stmt>)> = vec![
        (
            "named set, counter, accept",
            &pre[0],
            vec![
                m(Expr::Payload(Field::IpSaddr), Op::Eq, Value::Named("s4".into())),
                counter.clone(),
                Stmt::Verdict(Verdict::Accept),
            ],
        ),
        (
            "concatenated key into a named verdict map",
            &pre[1],
            vec![Stmt::Vmap {
                key: Expr::Concat(vec![
                    Expr::Payload(Field::IpDaddr),
                    Expr::Meta(MetaKey::L4proto),
                    Expr::Payload(Field::ThDport),
                ]),
                map: Value::Named("svc".into()),
            }],
        ),
        (
            "interface sets, wildcard, port set with a range, ct state flags",
            &pre[3],
            vec![
                m(
                    Expr::Meta(MetaKey::Iifname),
                    Op::Eq,
                    Value::Set(vec![s("a"), s("b")]),
                ),
                m(Expr::Meta(MetaKey::Oifname), Op::Ne, s("c*")),
                m(
                    Expr::Payload(Field::TcpDport),
                    Op::Eq,
                    Value::Set(vec![
                        Value::Num(22),
                        Value::Range(boxed(Value::Num(80)), boxed(Value::Num(90))),
                    ]),
                ),
                m(
                    Expr::Ct(CtKey::State),
                    Op::In,
                    Value::List(vec![s("established"), s("related")]),
                ),
                Stmt::Verdict(Verdict::Accept),
            ],
        ),
        (
            "fib daddr type",
            &pre[8],
            vec![
                m(
                    Expr::Fib {
                        flags: vec!["daddr".into()],
                        result: "type".into(),
                    },
                    Op::Eq,
                    s("local"),
                ),
                counter.clone(),
                Stmt::Verdict(Verdict::Jump("c".into())),
            ],
        ),
        (
            "ct direction, status, mark, original ip daddr",
            &pre[10],
            vec![
                m(Expr::Ct(CtKey::Direction), Op::Eq, s("original")),
                m(Expr::Ct(CtKey::Status), Op::In, s("dnat")),
                m(Expr::Ct(CtKey::Mark), Op::Eq, Value::Num(1)),
                m(Expr::Ct(CtKey::OriginalIpDaddr), Op::Eq, s("10.0.0.1")),
                Stmt::Verdict(Verdict::Accept),
            ],
        ),
        (
            "masked mark",
            &pre[11],
            vec![
                m(
                    Expr::Bin {
                        op: BinOp::And,
                        left: Box::new(Expr::Meta(MetaKey::Mark)),
                        right: boxed(Value::Num(16384)),
                    },
                    Op::Eq,
                    Value::Num(0),
                ),
                Stmt::Verdict(Verdict::Return),
            ],
        ),
        (
            "ct mark set",
            &pre[13],
            vec![Stmt::Set {
                key: Expr::Ct(CtKey::Mark),
                value: Value::Num(2),
            }],
        ),
        (
            "tcp sport < 1024 reject with tcp reset",
            &pre[16],
            vec![
                m(Expr::Payload(Field::TcpSport), Op::Lt, Value::Num(1024)),
                Stmt::Verdict(Verdict::Reject {
                    kind: Some("tcp reset".into()),
                }),
            ],
        ),
        (
            "dnat with port",
            &dn[0],
            vec![
                m(Expr::Payload(Field::IpDaddr), Op::Eq, s("1.2.3.4")),
                m(Expr::Payload(Field::TcpDport), Op::Eq, Value::Num(80)),
                Stmt::Nat {
                    kind: NatKind::Dnat,
                    family: None,
                    addr: Some(s("10.0.0.1")),
                    port: Some(Value::Num(80)),
                    flags: vec![],
                },
            ],
        ),
        (
            "snat to a range",
            &nat[1],
            vec![Stmt::Nat {
                kind: NatKind::Snat,
                family: None,
                addr: Some(Value::Range(boxed(s("1.1.1.1")), boxed(s("1.1.1.5")))),
                port: None,
                flags: vec![],
            }],
        ),
        (
            "prefixes and masquerade flags",
            &nat[2],
            vec![
                m(
                    Expr::Payload(Field::IpSaddr),
                    Op::Eq,
                    Value::Prefix {
                        addr: "10.0.0.0".into(),
                        len: 8,
                    },
                ),
                m(
                    Expr::Payload(Field::IpDaddr),
                    Op::Ne,
                    Value::Prefix {
                        addr: "10.0.0.0".into(),
                        len: 8,
                    },
                ),
                Stmt::Nat {
                    kind: NatKind::Masquerade,
                    family: None,
                    addr: None,
                    port: None,
                    flags: vec!["random".into(), "persistent".into()],
                },
            ],
        ),
        (
            "ether saddr and vlan id",
            &br[1],
            vec![
                m(Expr::Payload(Field::EtherSaddr), Op::Eq, s("02:00:00:00:00:01")),
                m(Expr::Payload(Field::VlanId), Op::Eq, Value::Num(10)),
                Stmt::Verdict(Verdict::Accept),
            ],
        ),
    ];
    for (what, rule, want) in cases {
        assert_eq!(rule.stmts, want, "{what}");
        assert_eq!(rule.unknown_count(), 0, "{what}");
    }
    // Run-time statements make a *may*, but are not unknown.
    assert!(pre[5].is_may(), "limit");
    assert!(pre[15].is_may(), "numgen vmap");
    assert_eq!(rs.unknowns().unknown, 0);
    assert_eq!(rs.unknowns().may_rules, 2);
}

#[test]
fn recorded_sets_maps_and_base_chains_are_typed() {
    let rs = recorded();
    let t = rs.table(Family::Inet, "t").expect("inet t");
    let s4 = t.set("s4").expect("s4");
    assert!(s4.interval());
    assert_eq!(s4.key_type, ["ipv4_addr"]);
    assert_eq!(
        s4.elements.as_deref().map(<[Value]>::len),
        Some(2),
        "prefix and range elements"
    );
    let svc = t.set("svc").expect("svc");
    assert_eq!(svc.kind, SetKind::Map);
    assert_eq!(svc.data_type.as_deref(), Some("verdict"));
    assert_eq!(svc.key_type, ["ipv4_addr", "inet_proto", "inet_service"]);
    assert_eq!(
        svc.elements,
        Some(vec![Value::Mapping(
            boxed(Value::Concat(vec![s("1.2.3.4"), s("tcp"), Value::Num(80)])),
            boxed(Value::Verdict(Verdict::Goto("c".into()))),
        )])
    );
    let base = |f, table: &str, chain: &str| {
        rs.table(f, table)
            .and_then(|t| t.chain(chain))
            .and_then(|c| c.base.clone())
            .expect("base chain")
    };
    let pre = base(Family::Inet, "t", "pre");
    assert_eq!(
        (pre.hook, pre.priority, pre.policy),
        (Some(Hook::Prerouting), Some(-300), Policy::Accept)
    );
    let nat = base(Family::Ip, "n", "nat");
    assert_eq!((nat.kind, nat.priority), (Some(ChainType::Nat), Some(110)));
    let br = base(Family::Bridge, "b", "f");
    assert_eq!((br.priority, br.policy), (Some(-200), Policy::Drop));
    let nd = base(Family::Netdev, "n", "i");
    assert_eq!((nd.hook, nd.priority), (Some(Hook::Ingress), Some(-500)));
    assert!(
        rs.table(Family::Inet, "t")
            .and_then(|t| t.chain("c"))
            .is_some_and(|c| c.base.is_none())
    );
}

#[test]
fn recorded_docker_29_table_types_its_verdict_maps_nat_and_comments() {
    let rs = parse_nft_json(DOCKER29).expect("parses");
    let t = rs.table(Family::Ip, "docker-bridges").expect("docker-bridges");
    let jumps = t.set("filter-forward-in-jumps").expect("map");
    assert_eq!(
        jumps.elements.as_deref().and_then(<[Value]>::first),
        Some(&Value::Mapping(
            boxed(s("docker0")),
            boxed(Value::Verdict(Verdict::Jump("filter-forward-in__docker0".into()))),
        ))
    );
    let forward = t.chain("filter-FORWARD").expect("chain");
    assert_eq!(
        forward.rules[0].stmts,
        [Stmt::Vmap {
            key: Expr::Meta(MetaKey::Oifname),
            map: Value::Named("filter-forward-in-jumps".into()),
        }]
    );
    let dnat = &t.chain("nat-prerouting-and-output").expect("chain").rules[0];
    assert_eq!(dnat.comment.as_deref(), Some("DNAT"));
    assert_eq!(dnat.counter, Some(Counters { packets: 0, bytes: 0 }));
    assert!(dnat.stmts.iter().any(|st| matches!(
        st,
        Stmt::Nat { kind: NatKind::Dnat, addr: Some(Value::Str(a)), port: Some(Value::Num(80)), .. } if a == "192.0.2.2"
    )));
    let out = &t.chain("nat-OUTPUT").expect("chain").rules[0];
    assert_eq!(
        out.stmts[..2],
        [
            m(
                Expr::Payload(Field::IpDaddr),
                Op::Ne,
                Value::Prefix {
                    addr: "127.0.0.0".into(),
                    len: 8
                }
            ),
            m(
                Expr::Fib {
                    flags: vec!["daddr".into()],
                    result: "type".into()
                },
                Op::Eq,
                s("local")
            ),
        ]
    );
    assert_eq!(
        rs.unknowns(),
        Unknowns {
            rules: 21,
            unknown: 0,
            may_rules: 0
        }
    );
}

#[test]
fn named_priorities_resolve_per_family() {
    let cases: &[(Family, Json, Option<i32>)] = &[
        (Family::Ip, Json::from("raw"), Some(-300)),
        (Family::Inet, Json::from("mangle"), Some(-150)),
        (Family::Ip6, Json::from("dstnat"), Some(-100)),
        (Family::Ip, Json::from("filter"), Some(0)),
        (Family::Ip, Json::from("security"), Some(50)),
        (Family::Ip, Json::from("srcnat"), Some(100)),
        (Family::Inet, Json::from("filter + 10"), Some(10)),
        (Family::Inet, Json::from("dstnat - 5"), Some(-105)),
        (Family::Bridge, Json::from("dstnat"), Some(-300)),
        (Family::Bridge, Json::from("filter"), Some(-200)),
        (Family::Bridge, Json::from("out"), Some(100)),
        (Family::Bridge, Json::from("srcnat"), Some(300)),
        (Family::Bridge, Json::from("raw"), None),
        (Family::Ip, Json::from("out"), None),
        (Family::Ip, Json::from(-110), Some(-110)),
        (Family::Ip, Json::from("-110"), Some(-110)),
        (Family::Ip, Json::from("bogus"), None),
        (Family::Ip, Json::from(i64::MAX), None),
        (Family::Ip, Json::from("filter + 99999999999"), None),
    ];
    for (family, prio, want) in cases {
        assert_eq!(resolve_priority(*family, prio), *want, "{family:?} {prio}");
    }
}

#[test]
fn unknown_expressions_are_kept_and_make_a_may() {
    let doc = r#"{"nftables": [
      {"table": {"family": "ip", "name": "x"}},
      {"chain": {"family": "ip", "table": "x", "name": "c"}},
      {"rule": {"family": "ip", "table": "x", "chain": "c", "expr": [
        {"match": {"op": "==", "left": {"socket": {"key": "transparent"}}, "right": 1}},
        {"accept": null}]}},
      {"rule": {"family": "ip", "table": "x", "chain": "c", "expr": [
        {"xt": {"type": "match", "name": "conntrack"}}, {"quota": {"val": 5}}, {"queue": {"num": 3}}]}},
      {"rule": {"family": "ip", "table": "x", "chain": "c", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "sctp", "field": "dport"}}, "right": 1}},
        {"drop": null}]}}
    ]}"#;
    let rs = parse_nft_json(doc).expect("parses");
    let rules = &rs.tables[0].chains[0].rules;
    assert_eq!(rules.len(), 3);
    assert!(matches!(
        &rules[0].stmts[0],
        Stmt::Match {
            left: Expr::Unknown(_),
            ..
        }
    ));
    assert_eq!(
        rules[1].stmts[0],
        Stmt::Xt {
            kind: "match".into(),
            name: "conntrack".into()
        }
    );
    assert!(matches!(rules[1].stmts[1], Stmt::Unknown(_)));
    assert_eq!(rules[1].stmts[2], Stmt::Verdict(Verdict::Queue));
    assert!(rules.iter().all(Rule::is_may));
    assert_eq!(
        rs.unknowns(),
        Unknowns {
            rules: 3,
            unknown: 4,
            may_rules: 3
        }
    );
}

#[test]
fn iptables_nft_tables_are_left_to_the_iptables_model() {
    let doc = r#"{"nftables": [
      {"table": {"family": "ip", "name": "filter"}},
      {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
      {"chain": {"family": "ip", "table": "filter", "name": "DOCKER"}},
      {"table": {"family": "inet", "name": "filter"}},
      {"chain": {"family": "inet", "table": "filter", "name": "input", "type": "filter", "hook": "input", "prio": 0}}
    ]}"#;
    let rs = parse_nft_json(doc).expect("parses");
    assert_eq!(rs.iptables_nft, [("ip".to_string(), "filter".to_string())]);
    assert_eq!(rs.tables.len(), 1);
    assert_eq!(rs.tables[0].family, Some(Family::Inet));
}

#[test]
fn snapshot_tables_keep_chains_counters_and_verdicts_and_rules_are_may() {
    let fw = Firewall {
        nft: vec![NftTable {
            family: "ip".into(),
            name: "docker-bridges".into(),
            owner: None,
            chains: vec![NftChain {
                name: "raw-PREROUTING".into(),
                hook: Some("prerouting".into()),
                kind: Some("filter".into()),
                priority: Some(-300),
                policy: Some("accept".into()),
            }],
            rules: vec![NftRule {
                chain: "raw-PREROUTING".into(),
                handle: 7,
                position: 1,
                text: "ip daddr 192.0.2.2 counter drop".into(),
                verdict: Some("drop".into()),
                comment: Some("DROP DIRECT ACCESS".into()),
                packets: Some(3),
                bytes: Some(180),
            }],
        }],
        ..Firewall::default()
    };
    let rs = Ruleset::from_firewall(&fw);
    let c = &rs.tables[0].chains[0];
    assert_eq!(c.base.as_ref().and_then(|b| b.priority), Some(-300));
    let r = &c.rules[0];
    assert_eq!((r.handle, r.position), (Some(7), 1));
    assert_eq!(
        r.counter,
        Some(Counters {
            packets: 3,
            bytes: 180
        })
    );
    assert_eq!(r.verdict(), Some(&Verdict::Drop));
    assert!(r.is_may(), "the snapshot keeps no expressions");
}

#[test]
fn documents_that_are_not_listings_are_errors() {
    for text in ["", "not json", "{}", "[]", r#"{"nftables": 3}"#] {
        let e = parse_nft_json(text).expect_err(text);
        assert!(matches!(e, Error::Invalid(_)), "{text}: {e}");
    }
    let rs =
        parse_nft_json(r#"{"nftables": [1, {"rule": {"family": "ip", "table": "none"}}]}"#).expect("parses");
    assert_eq!(rs.problems.len(), 2);
}

const TOKENS: &[&[u8]] = &[
    b"\"match\"",
    b"\"vmap\"",
    b"\"set\"",
    b"\"concat\"",
    b"\"prefix\"",
    b"\"range\"",
    b"\"@",
    b"[",
    b"]",
    b"{",
    b"}",
    b"null",
    b"-1",
    b"1e999",
    b"\"prio\"",
    b"\"filter + \"",
];

#[test]
fn mutated_documents_never_panic_and_fail_only_as_errors() {
    let seed = 0x6e66_745f_6a73_6f6e_u64;
    let mut rng = Rng(seed);
    let docs = [RECORDED, DOCKER29];
    let bases: Vec<Json> = docs
        .iter()
        .map(|d| serde_json::from_str(d).expect("recorded JSON"))
        .collect();
    let mut parsed = 0;
    for case in 0..3_000 {
        let which = rng.below(docs.len());
        let text = if rng.one_in(3) {
            let bytes = mutate_bytes(&mut rng, docs[which].as_bytes().to_vec(), TOKENS);
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            let mut doc = bases[which].clone();
            for _ in 0..1 + rng.below(4) {
                mutate_json(&mut rng, &mut doc, "nftables");
            }
            doc.to_string()
        };
        let is_listing = serde_json::from_str::<Json>(&text).is_ok_and(|d| d["nftables"].is_array());
        match parse_nft_json(&text) {
            Ok(rs) => {
                assert!(is_listing, "seed {seed:#x} case {case}: accepted a non-listing");
                parsed += 1;
                let _ = rs.unknowns();
                serde_json::to_string(&rs).expect("serialises");
            }
            Err(e) => {
                assert!(!is_listing, "seed {seed:#x} case {case}: rejected a listing: {e}");
                assert!(matches!(e, Error::Invalid(_)), "seed {seed:#x} case {case}: {e}");
            }
        }
    }
    assert!(parsed > 1_000, "only {parsed} mutated documents parsed");
}
