//! The engine on snapshots recorded from real labs.

use super::*;

fn fixture(name: &str) -> Snapshot {
    Snapshot::load(format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn netns(snap: &Snapshot, label: &str) -> NetnsKey {
    snap.netns
        .iter()
        .find(|n| n.label() == label)
        .unwrap_or_else(|| panic!("no netns {label}"))
        .key
}

fn show(t: &Trace) -> String {
    let mut s = format!("{:?}: {}\n", t.verdict, t.summary);
    for (name, hops) in [("hops", &t.hops), ("reply", &t.reply), ("established", &t.established)] {
        s.push_str(&format!("{name}:\n"));
        for h in hops.iter() {
            s.push_str(&format!(
                "  [{}] {} {:?} {:?} {:?} {} | {}\n",
                h.netns, h.step, h.iface, h.verdict, h.rule, h.detail, h.packet
            ));
        }
    }
    s
}

#[test]
fn explore() {
    let snap = fixture("lab-faults.json");
    let c1 = netns(&snap, "c1");
    for other in ["c2", "c3", "c4"] {
        let o = netns(&snap, other);
        let t = trace(&snap, &FlowSpec::new(Source::Netns { netns: c1, addr: None }, Destination::Netns { netns: o }, L4::Tcp(80))).unwrap();
        println!("c1 -> {other}\n{}", show(&t));
    }
    let snap = fixture("lab-healthy.json");
    let c1 = netns(&snap, "c1");
    let c2 = netns(&snap, "c2");
    let t = trace(&snap, &FlowSpec::new(Source::Netns { netns: c1, addr: None }, Destination::Netns { netns: c2 }, L4::Tcp(80))).unwrap();
    println!("healthy c1 -> c2\n{}", show(&t));
    let t = trace(&snap, &FlowSpec::new(Source::Netns { netns: c1, addr: None }, Destination::Addr { addr: "192.0.2.1".parse().unwrap() }, L4::Udp(53))).unwrap();
    println!("healthy c1 -> out\n{}", show(&t));
    let snap = fixture("docker-host.json");
    for c in &snap.containers { println!("{} {:?} {:?}", c.name, c.netns.is_some(), c.ports); }
}
