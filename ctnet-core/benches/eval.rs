//! Benchmark (not a test): rule matches per second of the netfilter evaluators, on a
//! FORWARD chain of N rules a packet walks to the end (iptables) and a native nft chain
//! of the same size, then a whole `flow::trace` on a recorded lab with those rules.
//!
//!   cargo bench -p ctnet-core --bench eval [-- RULES]      default: 2000

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use ctnet_core::netfilter::nft::parse_nft_json;
use ctnet_core::netfilter::{Context, Packet, evaluate, nft_eval, parse_save};

fn rules(n: usize) -> String {
    let mut s = String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for i in 0..n {
        // Each rule tests addresses, a port and a state, and misses the packet.
        let _ = writeln!(
            s,
            "-A FORWARD -s 10.{}.{}.0/24 -d 10.50.0.3/32 -p tcp -m tcp --dport {} -m conntrack --ctstate NEW -j DROP",
            100 + i / 250,
            i % 250,
            1000 + i % 5000
        );
    }
    s.push_str("-A FORWARD -i br0 -o br0 -j ACCEPT\nCOMMIT\n");
    s
}

fn nft_rules(n: usize) -> String {
    let mut items = vec![
        r#"{"table": {"family": "inet", "name": "b", "handle": 1}}"#.to_string(),
        r#"{"chain": {"family": "inet", "table": "b", "name": "fwd", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}"#.to_string(),
    ];
    for i in 0..n {
        items.push(format!(
            r#"{{"rule": {{"family": "inet", "table": "b", "chain": "fwd", "handle": {}, "expr": [
              {{"match": {{"op": "==", "left": {{"payload": {{"protocol": "ip", "field": "saddr"}}}}, "right": {{"prefix": {{"addr": "10.{}.{}.0", "len": 24}}}}}}}},
              {{"match": {{"op": "==", "left": {{"payload": {{"protocol": "tcp", "field": "dport"}}}}, "right": {}}}}},
              {{"drop": null}}]}}}}"#,
            i + 2,
            100 + i / 250,
            i % 250,
            1000 + i % 5000
        ));
    }
    items.push(format!(
        r#"{{"rule": {{"family": "inet", "table": "b", "chain": "fwd", "handle": {}, "expr": [{{"accept": null}}]}}}}"#,
        n + 2
    ));
    format!(r#"{{"nftables": [{}]}}"#, items.join(","))
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let packet = Packet::tcp(
        "10.50.0.2".parse().unwrap(),
        40000,
        "10.50.0.3".parse().unwrap(),
        80,
    )
    .iif("br0")
    .oif("br0");
    let ctx = Context::default();

    let table = parse_save(&rules(n))
        .into_iter()
        .find(|t| t.name == "filter")
        .unwrap();
    let rounds = 2000;
    let t0 = Instant::now();
    for _ in 0..rounds {
        black_box(evaluate(black_box(&table), "FORWARD", &packet, &ctx));
    }
    let dt = t0.elapsed().as_secs_f64();
    let matches = (rounds * (n + 1)) as f64;
    println!(
        "iptables: {n} rules, {rounds} walks in {:.3} s: {:.1} M rule matches/s ({:.1} us per walk)",
        dt,
        matches / dt / 1e6,
        dt / rounds as f64 * 1e6
    );

    let rs = parse_nft_json(&nft_rules(n)).unwrap();
    let t0 = Instant::now();
    for _ in 0..rounds {
        black_box(nft_eval::evaluate(
            black_box(&rs.tables[0]),
            "fwd",
            &packet,
            &ctx,
            None,
        ));
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "nft:      {n} rules, {rounds} walks in {:.3} s: {:.1} M rule matches/s ({:.1} us per walk)",
        dt,
        matches / dt / 1e6,
        dt / rounds as f64 * 1e6
    );
}
