//! The typed netfilter model against the kernel's own output: each rule-set fixture is
//! loaded with `iptables-restore` inside a fresh rootless world, and what
//! `iptables-save -c` then prints (iptables-nft's normalised text, the ground truth)
//! must parse with the same rules per chain and print back unchanged.

use ctnet_core::netfilter::{Table, parse_rule, parse_save};
use ctnet_core::world::run_test_in_world;

#[path = "support/tool.rs"]
mod tool;

use tool::run;

/// Fixtures the kernel can load here (the ipset one needs sets that do not exist):
/// name, restore/save program family, text.
const FIXTURES: &[(&str, &str, &str)] = &[
    (
        "docker-20.10-debian",
        "iptables",
        include_str!("../../fixtures/rulesets/docker-20.10-debian.rules"),
    ),
    (
        "docker-28",
        "iptables",
        include_str!("../../fixtures/rulesets/docker-28.rules"),
    ),
    (
        "ufw",
        "iptables",
        include_str!("../../fixtures/rulesets/ufw.rules"),
    ),
    (
        "ufw6",
        "ip6tables",
        include_str!("../../fixtures/rulesets/ufw6.rules"),
    ),
    (
        "kube-proxy",
        "iptables",
        include_str!("../../fixtures/rulesets/kube-proxy.rules"),
    ),
];

fn rules_per_chain(tables: &[Table]) -> Vec<(String, String, usize)> {
    let mut v: Vec<_> = tables
        .iter()
        .flat_map(|t| {
            t.chains
                .iter()
                .map(|c| (t.name.clone(), c.name.clone(), c.rules.len()))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn kernel_saved_fixtures_parse_to_the_same_rules_and_print_back() {
    run_test_in_world(
        "kernel_saved_fixtures_parse_to_the_same_rules_and_print_back",
        || {
            for (name, family, text) in FIXTURES {
                run(&format!("{family}-restore"), &["-c"], text);
                let saved = run(&format!("{family}-save"), &["-c"], "");
                let want = parse_save(text);
                let got: Vec<Table> = parse_save(&saved)
                    .into_iter()
                    .filter(|t| want.iter().any(|w| w.name == t.name))
                    .collect();
                assert_eq!(rules_per_chain(&got), rules_per_chain(&want), "fixture {name}");
                let mut lines = 0;
                let mut differ = 0;
                // Only the tables of this fixture: the others keep the previous fixture's.
                let mut table = "";
                for line in saved.lines() {
                    if let Some(t) = line.strip_prefix('*') {
                        table = t;
                    }
                    if !line.starts_with('[') || !want.iter().any(|w| w.name == table) {
                        continue;
                    }
                    let rule = parse_rule(line).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
                    assert_eq!(rule.to_string(), line, "fixture {name}");
                    lines += 1;
                    differ += usize::from(!text.lines().any(|l| l == line));
                }
                // Another iptables version may spell options differently from the one that
                // wrote the fixtures; that is allowed, and shown.
                println!(
                    "{name}: {lines} rules saved by the kernel, {differ} spelled differently from the fixture"
                );
            }
        },
    );
}
