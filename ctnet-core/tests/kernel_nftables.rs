//! The native nftables model against the kernel: each `.nft` fixture is loaded with
//! `nft -f` inside a fresh rootless world, and what `nft -j list ruleset` then lists
//! must parse into the tables, chains and rules loaded, with the base chains' hooks,
//! priorities and policies as written.

use ctnet_core::netfilter::nft::{Family, Hook, Policy, Ruleset, parse_nft_json};
use ctnet_core::world::run_test_in_world;

#[path = "support/tool.rs"]
mod tool;

/// A fixture: name, text, family and name of its table, base chains
/// `(chain, hook, priority, policy)` to check, unknown expressions and *may* rules
/// expected.
struct Fixture {
    name: &'static str,
    text: &'static str,
    family: Family,
    table: &'static str,
    base: &'static [(&'static str, Hook, i32, Policy)],
    unknown: usize,
    may_rules: usize,
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        name: "docker-29-nftables",
        text: include_str!("../../fixtures/rulesets/docker-29-nftables.nft"),
        family: Family::Ip,
        table: "docker-bridges",
        base: &[
            ("raw-PREROUTING", Hook::Prerouting, -300, Policy::Accept),
            ("nat-PREROUTING", Hook::Prerouting, -100, Policy::Accept),
            ("nat-OUTPUT", Hook::Output, -100, Policy::Accept),
            ("filter-FORWARD", Hook::Forward, 0, Policy::Accept),
            ("nat-POSTROUTING", Hook::Postrouting, 100, Policy::Accept),
        ],
        unknown: 0,
        may_rules: 0,
    },
    Fixture {
        name: "firewalld",
        text: include_str!("../../fixtures/rulesets/firewalld.nft"),
        family: Family::Inet,
        table: "firewalld",
        base: &[
            ("mangle_PREROUTING", Hook::Prerouting, -140, Policy::Accept),
            ("nat_PREROUTING", Hook::Prerouting, -90, Policy::Accept),
            ("filter_PREROUTING", Hook::Prerouting, 10, Policy::Accept),
            ("filter_INPUT", Hook::Input, 10, Policy::Accept),
            ("filter_FORWARD", Hook::Forward, 10, Policy::Accept),
            ("filter_OUTPUT", Hook::Output, 10, Policy::Accept),
            ("nat_POSTROUTING", Hook::Postrouting, 110, Policy::Accept),
        ],
        unknown: 0,
        may_rules: 0,
    },
    Fixture {
        name: "kube-proxy",
        text: include_str!("../../fixtures/rulesets/kube-proxy.nft"),
        family: Family::Ip,
        table: "kube-proxy",
        base: &[
            (
                "filter-prerouting-pre-dnat",
                Hook::Prerouting,
                -110,
                Policy::Accept,
            ),
            ("filter-output-pre-dnat", Hook::Output, -110, Policy::Accept),
            ("nat-prerouting", Hook::Prerouting, -100, Policy::Accept),
            ("nat-output", Hook::Output, -100, Policy::Accept),
            ("filter-forward", Hook::Forward, 0, Policy::Accept),
            ("filter-input", Hook::Input, 0, Policy::Accept),
            ("filter-output", Hook::Output, 0, Policy::Accept),
            ("nat-postrouting", Hook::Postrouting, 100, Policy::Accept),
        ],
        unknown: 0,
        // The endpoint choice `numgen random mod 1 vmap { ... }` is decided per packet.
        may_rules: 1,
    },
    Fixture {
        name: "bridge-filter",
        text: include_str!("../../fixtures/rulesets/bridge-filter.nft"),
        family: Family::Bridge,
        table: "ctfilter",
        base: &[
            ("prerouting", Hook::Prerouting, -300, Policy::Accept),
            ("forward", Hook::Forward, -200, Policy::Accept),
            ("output", Hook::Output, 100, Policy::Accept),
            ("postrouting", Hook::Postrouting, 300, Policy::Accept),
        ],
        unknown: 0,
        may_rules: 0,
    },
];

fn nft(args: &[&str], input: &str) -> String {
    tool::run("nft", args, input)
}

/// Tables, chains and rules the fixture text declares, counted from the text itself:
/// `add table|chain|rule` commands, or `table`/`chain` blocks whose lines other than
/// the base chain's `type ...;` line are rules.
fn declared(text: &str) -> (usize, usize, usize) {
    let (mut tables, mut chains, mut rules) = (0, 0, 0);
    let mut in_chain = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("add table ") || line.starts_with("table ") {
            tables += 1;
        } else if line.starts_with("add chain ") {
            chains += 1;
        } else if line.starts_with("add rule ") {
            rules += 1;
        } else if line.starts_with("chain ") {
            chains += 1;
            in_chain = !line.ends_with('}');
        } else if in_chain && line == "}" {
            in_chain = false;
        } else if in_chain && !line.starts_with("type ") {
            rules += 1;
        }
    }
    (tables, chains, rules)
}

fn listed(rs: &Ruleset) -> (usize, usize, usize) {
    let chains = rs.tables.iter().map(|t| t.chains.len()).sum();
    let rules = rs
        .tables
        .iter()
        .flat_map(|t| &t.chains)
        .map(|c| c.rules.len())
        .sum();
    (rs.tables.len(), chains, rules)
}

#[test]
fn kernel_listed_nft_fixtures_parse_to_the_tables_chains_and_rules_loaded() {
    run_test_in_world(
        "kernel_listed_nft_fixtures_parse_to_the_tables_chains_and_rules_loaded",
        || {
            for f in FIXTURES {
                // The world's own netns: nothing else lives in its rule set.
                nft(&["flush", "ruleset"], "");
                nft(&["-f", "-"], f.text);
                let json = nft(&["-j", "list", "ruleset"], "");
                let rs = parse_nft_json(&json).unwrap_or_else(|e| panic!("fixture {}: {e}", f.name));
                assert!(rs.problems.is_empty(), "fixture {}: {:?}", f.name, rs.problems);
                assert!(rs.iptables_nft.is_empty(), "fixture {}", f.name);
                assert_eq!(
                    listed(&rs),
                    declared(f.text),
                    "fixture {}: tables, chains, rules",
                    f.name
                );
                let table = rs
                    .table(f.family, f.table)
                    .unwrap_or_else(|| panic!("fixture {}: no table {}", f.name, f.table));
                for (chain, hook, priority, policy) in f.base {
                    let base = table
                        .chain(chain)
                        .and_then(|c| c.base.as_ref())
                        .unwrap_or_else(|| panic!("fixture {}: no base chain {chain}", f.name));
                    assert_eq!(
                        (base.hook, base.priority, &base.policy),
                        (Some(*hook), Some(*priority), policy),
                        "fixture {}: chain {chain}",
                        f.name
                    );
                }
                let bases = table.chains.iter().filter(|c| c.base.is_some()).count();
                assert_eq!(bases, f.base.len(), "fixture {}: base chains", f.name);
                let u = rs.unknowns();
                let (tables, chains, rules) = listed(&rs);
                println!(
                    "{}: {tables} tables, {chains} chains ({bases} base), {rules} rules, {} sets; \
                     {} unknown expressions, {} may rules",
                    f.name,
                    table.sets.len(),
                    u.unknown,
                    u.may_rules
                );
                assert_eq!(
                    (u.unknown, u.may_rules),
                    (f.unknown, f.may_rules),
                    "fixture {}",
                    f.name
                );
            }
        },
    );
}

#[test]
fn kernel_listed_sets_and_maps_keep_their_elements() {
    run_test_in_world("kernel_listed_sets_and_maps_keep_their_elements", || {
        let kube = &FIXTURES[2];
        nft(&["flush", "ruleset"], "");
        nft(&["-f", "-"], kube.text);
        let rs = parse_nft_json(&nft(&["-j", "list", "ruleset"], "")).expect("parses");
        let t = rs.table(Family::Ip, "kube-proxy").expect("kube-proxy table");
        let names: Vec<&str> = t.sets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 7, "{names:?}");
        let service_ips = t.set("service-ips").expect("service-ips");
        assert_eq!(service_ips.data_type.as_deref(), Some("verdict"));
        assert_eq!(service_ips.key_type, ["ipv4_addr", "inet_proto", "inet_service"]);
        assert_eq!(service_ips.elements.as_ref().map(Vec::len), Some(1));
        let nodeport = t.set("nodeport-ips").expect("nodeport-ips");
        assert_eq!(nodeport.elements.as_ref().map(Vec::len), Some(1));
    });
}

#[test]
fn a_live_snapshot_keeps_the_kernels_nft_document_and_types_every_rule() {
    run_test_in_world(
        "a_live_snapshot_keeps_the_kernels_nft_document_and_types_every_rule",
        || {
            let f = &FIXTURES[0];
            nft(&["flush", "ruleset"], "");
            nft(&["-f", "-"], f.text);
            let snap = ctnet_core::source::snapshot(&ctnet_core::source::ScanOptions::default())
                .expect("a scan of the world");
            let fw = snap.firewall.as_ref().expect("firewall read");
            assert!(fw.nft_json.is_some(), "the kernel's nft -j document is kept");
            let rs = Ruleset::from_firewall(fw);
            assert_eq!(listed(&rs), declared(f.text), "tables, chains, rules");
            let u = rs.unknowns();
            assert_eq!(
                (u.unknown, u.may_rules),
                (0, 0),
                "every rule typed from a live scan"
            );
            // The snapshot file keeps it too: `--from` types the same rules.
            let back = ctnet_core::model::Snapshot::from_json(&snap.to_json()).unwrap();
            let again = Ruleset::from_firewall(back.firewall.as_ref().unwrap());
            assert_eq!(listed(&again), listed(&rs));
        },
    );
}

/// The kernel's own list of tables (nfnetlink, no process) is what `nft -j list tables`
/// says, in every family, empty included: `collect` skips the tools on it.
#[test]
fn kernel_table_list_is_what_nft_lists() {
    run_test_in_world("kernel_table_list_is_what_nft_lists", || {
        let listed_by_nft = || -> Vec<(String, String)> {
            let doc: serde_json::Value = serde_json::from_str(&nft(&["-j", "list", "tables"], "")).unwrap();
            let mut v: Vec<(String, String)> = doc["nftables"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|i| i.get("table"))
                .map(|t| {
                    (
                        t["family"].as_str().unwrap().into(),
                        t["name"].as_str().unwrap().into(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        let ours = || {
            let mut v = ctnet_core::nfnetlink::nft_tables().expect("the kernel lists its tables");
            v.sort();
            v
        };
        nft(&["flush", "ruleset"], "");
        assert_eq!(ours(), Vec::<(String, String)>::new());
        assert_eq!(ours(), listed_by_nft());
        nft(
            &["-f", "-"],
            "table ip a {}\ntable ip6 b {}\ntable inet c {}\ntable arp d {}\ntable bridge e {}\ntable netdev f {}\n\
             table inet a-much-longer-table-name_with.dots {}\n",
        );
        let (ok, _, err) = tool::run_stdin(
            "iptables",
            &[
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-s",
                "192.0.2.1",
                "-j",
                "ACCEPT",
            ],
            "",
        );
        assert!(ok, "{err}");
        let got = ours();
        assert_eq!(got, listed_by_nft());
        assert_eq!(got.len(), 8, "{got:?}");
        assert!(got.contains(&("ip".into(), "nat".into())), "{got:?}");
        nft(&["flush", "ruleset"], "");
    });
}
