use std::collections::{BTreeMap, BTreeSet};

use super::*;
use ctnet_core::topology::Topology;

fn scan_of(file: &str) -> Scan {
    let path = format!("{}/../fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let snap = Snapshot::load(&path).unwrap();
    let topo = Topology::build(&snap);
    let reports = ctnet_core::target::containers(&snap, &topo)
        .into_iter()
        .map(|t| {
            let r = ctnet_core::check::run(&snap, &topo, &t, None);
            (t, r)
        })
        .collect();
    Scan {
        snap,
        topo,
        reports,
        duration_s: 0.25,
    }
}

const LIMITS: Limits = Limits { max_rules: 1000 };

/// One sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// (name, labels, value) of every sample, and every family's type, checked for the
/// text format's shape on the way.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    let mut helped = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(helped.insert(name.to_string()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            assert!(helped.contains(name), "TYPE before HELP for {name}");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "{name} twice"
            );
            continue;
        }
        let (head, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        let (name, labels) = match head.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').unwrap()),
            None => (head, ""),
        };
        assert!(types.contains_key(name), "{name} has no TYPE before its samples");
        let mut map = BTreeMap::new();
        let mut rest = labels;
        while !rest.is_empty() {
            let (k, v) = rest.split_once("=\"").unwrap();
            // The value ends at the first quote not escaped.
            let mut end = 0;
            let b = v.as_bytes();
            while b[end] != b'"' {
                end += if b[end] == b'\\' { 2 } else { 1 };
            }
            map.insert(k.to_string(), v[..end].to_string());
            rest = v[end + 1..].strip_prefix(',').unwrap_or(&v[end + 1..]);
        }
        samples.push((name.to_string(), map, value));
    }
    (samples, types)
}

#[test]
fn every_family_is_typed_named_by_convention_and_every_sample_parses() {
    for file in ["docker-host.json", "lab-faults.json", "lab-healthy.json"] {
        let text = render(&scan_of(file), &Meta::default(), LIMITS);
        let (samples, types) = parse(&text);
        assert!(samples.len() > 50, "{file}: {text}");
        for (name, kind) in &types {
            assert!(name.starts_with("ctnet_"), "{name}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{name} is a {kind}");
        }
        // Label sets are unique within a family.
        let mut seen = BTreeSet::new();
        for (name, labels, _) in &samples {
            assert!(
                seen.insert((name.clone(), labels.clone())),
                "{file}: duplicate {name} {labels:?}"
            );
        }
    }
}

#[test]
fn both_sides_of_every_container_veth_are_labelled_with_their_container() {
    let scan = scan_of("docker-host.json");
    let text = render(&scan, &Meta::default(), LIMITS);
    let (samples, _) = parse(&text);
    let drops: Vec<_> = samples
        .iter()
        .filter(|(n, _, _)| n == "ctnet_veth_transmit_drops_total")
        .collect();
    let resolved = scan
        .topo
        .veths
        .iter()
        .filter(|v| matches!(v.peer, Peer::Resolved { .. }))
        .count();
    assert!(resolved > 0);
    for side in ["host", "container"] {
        let n = drops.iter().filter(|(_, l, _)| l["side"] == side).count();
        assert_eq!(n, resolved, "{side}");
    }
    // Every Docker container's veth names it, its runtime and its bridge.
    for c in scan
        .snap
        .containers
        .iter()
        .filter(|c| c.is_running() && c.network_mode != "host")
    {
        if c.networks.iter().all(|n| n.bridge.is_none()) {
            continue;
        }
        let bridged = c.networks.iter().filter(|n| n.bridge.is_some()).count();
        let mine: Vec<_> = drops
            .iter()
            .filter(|(_, l, _)| l["container"] == c.name)
            .collect();
        assert_eq!(mine.len(), 2 * bridged, "{}: {drops:?}", c.name);
        for (_, l, _) in mine {
            assert_eq!(l["runtime"], "docker");
            assert!(
                !l["bridge"].is_empty() && l["host_veth"].starts_with("veth"),
                "{l:?}"
            );
        }
    }
    // The value is the snapshot's own counter.
    let v = &scan.topo.veths[0];
    let host = scan.snap.host_netns().unwrap().link(v.host.ifindex).unwrap();
    let want = host.stats.unwrap().rx_bytes as f64;
    let got = samples
        .iter()
        .find(|(n, l, _)| {
            n == "ctnet_veth_receive_bytes_total" && l["host_veth"] == v.host.name && l["side"] == "host"
        })
        .unwrap()
        .2;
    assert_eq!(got, want);
}

#[test]
fn each_container_check_has_exactly_one_status_set() {
    let scan = scan_of("lab-faults.json");
    let text = render(&scan, &Meta::default(), LIMITS);
    let (samples, _) = parse(&text);
    let mut by: BTreeMap<(String, String), Vec<(String, f64)>> = BTreeMap::new();
    for (n, l, v) in &samples {
        if n == "ctnet_check_status" {
            by.entry((l["container"].clone(), l["check"].clone()))
                .or_default()
                .push((l["status"].clone(), *v));
        }
    }
    assert!(!by.is_empty());
    for (k, v) in &by {
        assert_eq!(v.len(), 4, "{k:?}");
        assert_eq!(v.iter().filter(|(_, x)| *x == 1.0).count(), 1, "{k:?}: {v:?}");
    }
    // The faults recorded in the fixture fail some check, and the gauge says so.
    let failing: usize = scan
        .reports
        .iter()
        .map(|(_, r)| r.checks.iter().filter(|f| f.status == Status::Fail).count())
        .sum();
    assert!(failing > 0);
    let set = by.values().filter(|v| v.contains(&("fail".into(), 1.0))).count();
    assert!(set > 0 && set <= failing);
}

#[test]
fn firewall_rules_are_bounded_and_the_rest_counted() {
    let scan = scan_of("docker-host.json");
    let (all, _) = parse(&render(&scan, &Meta::default(), LIMITS));
    let rules = |s: &[Sample]| {
        s.iter()
            .filter(|(n, _, _)| n == "ctnet_firewall_rule_packets_total")
            .count()
    };
    let total = rules(&all);
    assert!(total > 5, "{total}");
    let (few, _) = parse(&render(&scan, &Meta::default(), Limits { max_rules: 3 }));
    assert_eq!(rules(&few), 3);
    let omitted = few
        .iter()
        .find(|(n, _, _)| n == "ctnet_firewall_rules_omitted")
        .unwrap()
        .2;
    assert_eq!(omitted as usize, total - 3);
    // FORWARD rules carry their chain, position, owner and text.
    assert!(
        all.iter()
            .any(|(n, l, _)| n == "ctnet_firewall_rule_packets_total"
                && l["chain"] == "FORWARD"
                && l["table"] == "filter"
                && !l["rule"].is_empty()
                && l["position"].parse::<u32>().is_ok())
    );
}

#[test]
fn hostile_names_are_escaped_in_labels() {
    let mut scan = scan_of("lab-healthy.json");
    let v = scan.topo.veths[0].host.clone();
    let evil = "ev\"il\\\n\u{1b}[2Jx";
    let host = scan.snap.host;
    for ns in &mut scan.snap.netns {
        if ns.key == host
            && let Some(l) = ns.links.iter_mut().find(|l| l.ifindex == v.ifindex)
        {
            l.name = evil.into();
        }
    }
    scan.topo = Topology::build(&scan.snap);
    let text = render(&scan, &Meta::default(), LIMITS);
    assert!(!text.contains('\u{1b}'), "a raw escape reached the output");
    // One line per sample, whatever the name holds, and the label reads back as the
    // name with its control characters made visible.
    let (samples, _) = parse(&text);
    let unescape = |v: &str| {
        let mut out = String::new();
        let mut it = v.chars();
        while let Some(c) = it.next() {
            match (c, c == '\\') {
                (_, true) => match it.next() {
                    Some('n') => out.push('\n'),
                    Some(o) => out.push(o),
                    None => panic!("dangling backslash in {v}"),
                },
                (c, false) => out.push(c),
            }
        }
        out
    };
    let want = ctnet_core::text::escape(evil).to_string();
    assert!(want.contains("\\x1b"), "{want}");
    let got: Vec<_> = samples
        .iter()
        .filter_map(|(_, l, _)| l.get("host_veth"))
        .filter(|h| h.starts_with("ev"))
        .collect();
    assert!(!got.is_empty());
    for h in got {
        assert_eq!(unescape(h), want);
    }
}
