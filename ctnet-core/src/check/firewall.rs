//! `firewall`: the host's netfilter lets the container's traffic through: its egress
//! through FORWARD, and with br_netfilter the pair's bridged traffic.

use std::net::{IpAddr, Ipv4Addr};

use super::ctx::{Ctx, PairCtx};
use super::path::hop_line;
use super::{Finding, Status, finding};
use crate::model::Snapshot;

/// `firewall.forward`: with a default route and a firewall read, every FORWARD base
/// chain lets a connection from the container to an outside address leave.
pub(super) fn forward(c: &Ctx<'_>) -> Vec<Finding> {
    let Some((a, _, b)) = c.bridge() else {
        return Vec::new();
    };
    let (snap, host, br) = (c.snap, a.host, b.br);
    if a.default.is_none() || snap.firewall.is_none() {
        return Vec::new();
    }
    let (packet, uplink, src) = egress_packet(host, &a.nets, br);
    let via = if uplink == UPLINK {
        format!("any interface but {br} (the host has no default route)")
    } else {
        uplink.clone()
    };
    let what = format!("tcp from {src} leaving {br} for {EGRESS_PROBE}:443 via {via}");
    // With an uplink, the whole egress is traced (every hook on the way: raw,
    // mangle, nat, filter); without one, or when the trace stops before netfilter,
    // the FORWARD hook alone is evaluated.
    let traced = (uplink != UPLINK).then(|| egress_trace(c, src)).flatten();
    let (status, summary, evidence) = match traced {
        Some(found) => found,
        None => forward_by_engine(c.flow, packet, &what),
    };
    let mut f = finding(status, summary)
        .ev(format!(
            "FORWARD policy {}",
            forward_policy(snap).unwrap_or_else(|| "?".into())
        ))
        .cmd("iptables -S FORWARD -v")
        .cmd("nft list ruleset")
        .cmd(format!(
            "ctnet-diag trace {} {EGRESS_PROBE} --tcp 443",
            c.t.target
        ))
        .hint(format!(
            "iptables -I FORWARD -i {br} -j ACCEPT; iptables -I FORWARD -o {br} -j ACCEPT"
        ));
    for e in evidence {
        f = f.ev(e);
    }
    vec![f]
}

/// The container's egress to [`EGRESS_PROBE`] traced by the flow engine: the status,
/// a sentence and the netfilter hops, or `None` when the trace did not reach the
/// host's netfilter (another check says why).
fn egress_trace(c: &Ctx<'_>, src: IpAddr) -> Option<(Status, String, Vec<String>)> {
    use crate::flow::{Destination, FlowSpec, HopVerdict, L4, Source};
    let netns = c.t.netns?;
    let spec = FlowSpec::new(
        Source::Netns {
            netns,
            addr: Some(src),
        },
        Destination::Addr {
            addr: IpAddr::V4(EGRESS_PROBE),
        },
        L4::Tcp(443),
    );
    let tr = c.flow.trace(&spec).ok()?;
    let nf: Vec<&crate::flow::Hop> = tr
        .hops
        .iter()
        .chain(&tr.established)
        .filter(|h| h.step.contains('/') && h.netns == "host")
        .collect();
    if nf.is_empty() {
        return None;
    }
    let evidence: Vec<String> = std::iter::once(format!("traced: {}", tr.summary))
        .chain(nf.iter().map(|h| hop_line(h)))
        .collect();
    let quote = |h: &crate::flow::Hop| {
        let rule = h.rule.as_deref().unwrap_or("?");
        match h.rule_ref.as_ref().and_then(|r| r.counters) {
            Some(k) => format!("`{rule}` in {} ({} packets)", h.step, k.packets),
            None => format!("`{rule}` in {}", h.step),
        }
    };
    let what = format!("the egress of {src} to {EGRESS_PROBE}:443");
    Some(
        match nf
            .iter()
            .find(|h| matches!(h.verdict, HopVerdict::Drop | HopVerdict::Reject | HopVerdict::May))
        {
            Some(h) if h.verdict == HopVerdict::May => (
                Status::Warn,
                format!("the firewall may drop {what}: {}", h.detail),
                evidence,
            ),
            Some(h) => (
                Status::Fail,
                format!("the firewall drops {what}: {}", quote(h)),
                evidence,
            ),
            None => {
                let fwd = nf
                    .iter()
                    .rev()
                    .find(|h| h.step.starts_with("forward/"))
                    .unwrap_or(&nf[nf.len() - 1]);
                (
                    Status::Pass,
                    format!("the firewall lets {what} through: {}", quote(fwd)),
                    evidence,
                )
            }
        },
    )
}

/// A connection from the container's address on `br` to an outside address, leaving
/// through the host's uplink (the default route's interface, or [`UPLINK`] when the
/// host has none): the packet, the uplink's name and the source.
pub(super) fn egress_packet(
    host: &crate::model::NetnsState,
    nets: &[ipnet::Ipv4Net],
    br: &str,
) -> (crate::netfilter::Packet, String, IpAddr) {
    let uplink = host
        .routes
        .iter()
        .find(|r| r.table == 254 && r.dst == "default" && r.family == "inet")
        .and_then(|r| r.oif)
        .and_then(|ix| host.link(ix))
        .map_or(UPLINK.to_string(), |l| l.name.clone());
    let src = nets
        .first()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |n| IpAddr::V4(n.addr()));
    let packet = crate::netfilter::Packet::tcp(src, 40000, IpAddr::V4(EGRESS_PROBE), 443)
        .iif(br)
        .oif(&uplink);
    (packet, uplink, src)
}

/// `firewall.bridged`: on a shared bridge, no netfilter hop of the traced path drops
/// the pair's bridged traffic (br_netfilter sends it through the IP hooks).
pub(super) fn bridged(c: &PairCtx<'_>) -> Vec<Finding> {
    use crate::flow::{Hop, HopVerdict, Reach};
    let Some(s) = c.sides.as_ref().filter(|s| s.same) else {
        return Vec::new();
    };
    let Ok(tr) = &s.trace else {
        return Vec::new();
    };
    let (snap, topo) = (c.snap, c.topo);
    let br = s.ti.bridge.clone().unwrap_or_default();
    // br_netfilter: bridged frames cross the IP hooks; what they do is read off
    // the trace.
    let host = snap.host_netns();
    let nf = host.and_then(|h| h.sysctls.bridge_nf_call_iptables) == Some(1)
        || topo
            .bridges
            .iter()
            .find(|b| b.iface.name == br)
            .and_then(|b| host.and_then(|h| h.link(b.iface.ifindex)))
            .and_then(|l| l.bridge.as_ref())
            .is_some_and(|b| b.nf_call_iptables);
    let all: Vec<&Hop> = tr.hops.iter().chain(&tr.reply).collect();
    // The netfilter hops of the bridged legs.
    let nf_hops: Vec<&&Hop> = all.iter().filter(|h| h.step.contains('/')).collect();
    let stop = nf_hops
        .iter()
        .find(|h| matches!(h.verdict, HopVerdict::Drop | HopVerdict::Reject | HopVerdict::May));
    let reached = tr.verdict == Reach::Reachable || !nf_hops.is_empty();
    let mut f = match (nf, stop) {
        (true, None) if !reached => finding(
            Status::Skip,
            "the trace stops before netfilter (see path.trace): the bridged rules are not reached",
        ),
        (false, _) if nf_hops.is_empty() => finding(
            Status::Pass,
            "br_netfilter is off: bridged traffic does not cross iptables",
        ),
        (_, Some(h)) => {
            let rule = h.rule.as_deref().unwrap_or("?");
            let counters = h
                .rule_ref
                .as_ref()
                .and_then(|r| r.counters)
                .map(|c| format!(" ({} packets)", c.packets))
                .unwrap_or_default();
            finding(
                if h.verdict == HopVerdict::May {
                    Status::Warn
                } else {
                    Status::Fail
                },
                format!(
                    "br_netfilter sends bridged traffic through {}, where `{rule}`{counters} {}",
                    h.step,
                    if h.verdict == HopVerdict::May {
                        "may drop it"
                    } else {
                        "drops it"
                    }
                ),
            )
        }
        (_, None) => finding(
            Status::Pass,
            if nf_hops.is_empty() {
                "br_netfilter is on; no rules on the bridged path".to_string()
            } else {
                format!("br_netfilter is on and every hook on {br} lets the pair through")
            },
        ),
    };
    for h in &nf_hops {
        f = f.ev(hop_line(h));
    }
    vec![
        f.ev(format!(
            "net.bridge.bridge-nf-call-iptables = {}",
            snap.host_netns()
                .and_then(|h| h.sysctls.bridge_nf_call_iptables)
                .map_or("?".into(), |v| v.to_string())
        ))
        .cmd("sysctl net.bridge.bridge-nf-call-iptables")
        .cmd("iptables -S FORWARD -v")
        .hint(format!("iptables -I FORWARD -i {br} -o {br} -j ACCEPT")),
    ]
}

/// The policy of the IPv4 iptables FORWARD chain.
fn forward_policy(snap: &Snapshot) -> Option<String> {
    snap.firewall
        .iter()
        .flat_map(|f| f.iptables.iter().filter(|d| d.family == "ip"))
        .flat_map(|d| d.tables.iter().filter(|t| t.name == "filter"))
        .flat_map(|t| t.chains.iter())
        .find(|c| c.name == "FORWARD")
        .and_then(|c| c.policy.clone())
}

/// The name used for "any interface but the bridge" when evaluating egress on a host
/// without a default route.
pub(super) const UPLINK: &str = "(uplink)";

/// The outside address egress is evaluated toward (TEST-NET-3: never sent to, the
/// evaluation is static).
pub(super) const EGRESS_PROBE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);

/// What the host's FORWARD hook does to `packet`, as the flow engine evaluates it
/// (every base chain of both iptables backends and native nft, typed matches): the
/// status, one sentence about `what`, and the hops as evidence.
fn forward_by_engine(
    flow: &crate::flow::Tracer<'_>,
    packet: crate::netfilter::Packet,
    what: &str,
) -> (Status, String, Vec<String>) {
    use crate::flow::{Hook, HopVerdict};
    let (goes_on, hops) = flow.host_hook(Hook::Forward, packet);
    let evidence: Vec<String> = hops.iter().map(hop_line).collect();
    let quote = |h: &crate::flow::Hop| {
        let rule = h.rule.as_deref().unwrap_or("?");
        match h.rule_ref.as_ref().and_then(|r| r.counters) {
            Some(c) => format!("`{rule}` in {} ({} packets)", h.step, c.packets),
            None => format!("`{rule}` in {}", h.step),
        }
    };
    let may = hops.iter().find(|h| h.verdict == HopVerdict::May);
    if !goes_on {
        let h = hops.last().expect("a dropping hook has a hop");
        return match h.verdict {
            HopVerdict::May => (
                Status::Warn,
                format!("FORWARD may drop {what}: {}", h.detail),
                evidence,
            ),
            _ => (
                Status::Fail,
                format!("FORWARD drops {what}: {}", quote(h)),
                evidence,
            ),
        };
    }
    if let Some(h) = may {
        return (
            Status::Warn,
            format!("FORWARD may drop {what}: {}", h.detail),
            evidence,
        );
    }
    match hops.last() {
        Some(h) => (
            Status::Pass,
            format!("FORWARD accepts {what}: {}", quote(h)),
            evidence,
        ),
        None => (Status::Pass, format!("no FORWARD rules: {what} passes"), evidence),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// lab-healthy with an uplink eth9 (192.0.2.1/24, the default route via
    /// 192.0.2.254) and, when `drop`, a FORWARD rule refusing the subnet's HTTPS out.
    fn with_uplink(drop: bool) -> Snapshot {
        let mut snap = Snapshot::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/lab-healthy.json"
        ))
        .unwrap();
        let host = snap.host;
        let h = snap.netns.iter_mut().find(|n| n.key == host).unwrap();
        h.links.push(crate::model::Link {
            ifindex: 99,
            name: "eth9".into(),
            flags: vec!["up".into(), "lower_up".into()],
            operstate: "up".into(),
            ..Default::default()
        });
        h.addresses.push(crate::model::Address {
            ifindex: 99,
            address: "192.0.2.1".parse().unwrap(),
            prefix_len: 24,
            scope: "global".into(),
            label: None,
        });
        for (dst, gw) in [
            ("192.0.2.0/24", None),
            ("default", Some("192.0.2.254".parse().unwrap())),
        ] {
            h.routes.push(crate::model::Route {
                family: "inet".into(),
                table: 254,
                dst: dst.into(),
                gateway: gw,
                oif: Some(99),
                kind: "unicast".into(),
                ..Default::default()
            });
        }
        if drop {
            let fw = snap.firewall.as_mut().unwrap();
            let filter = fw.iptables[0]
                .tables
                .iter_mut()
                .find(|t| t.name == "filter")
                .unwrap();
            filter.rules.insert(
                0,
                crate::model::IptRule {
                    chain: "FORWARD".into(),
                    position: 1,
                    spec: "-s 10.50.0.0/24 -o eth9 -p tcp -m tcp --dport 443 -j DROP".into(),
                    target: Some("DROP".into()),
                    packets: 7,
                    bytes: 0,
                    owner: crate::model::Owner::Other,
                },
            );
        }
        snap
    }

    #[test]
    fn with_an_uplink_the_egress_is_traced_and_a_port_rule_named() {
        use crate::topology::Topology;
        for (drop, want) in [(false, Status::Pass), (true, Status::Fail)] {
            let snap = with_uplink(drop);
            let topo = Topology::build(&snap);
            let t = crate::target::resolve(&snap, "c1").unwrap();
            let r = crate::check::run(&snap, &topo, &t, None);
            let f = r.checks.iter().find(|c| c.id == "firewall.forward").unwrap();
            assert_eq!(f.status, want, "{f:#?}");
            assert!(f.evidence.iter().any(|e| e.starts_with("traced: ")), "{f:#?}");
            if drop {
                assert!(
                    f.summary
                        .contains("-A FORWARD -s 10.50.0.0/24 -o eth9 -p tcp -m tcp --dport 443 -j DROP")
                        && f.summary.contains("(7 packets)"),
                    "{}",
                    f.summary
                );
            } else {
                assert!(
                    f.summary.starts_with("the firewall lets the egress of 10.50.0.2"),
                    "{}",
                    f.summary
                );
            }
            // MASQUERADE toward the real uplink.
            let n = r.checks.iter().find(|c| c.id == "nat.masquerade").unwrap();
            assert_eq!(n.status, Status::Pass, "{n:#?}");
        }
    }

    #[test]
    fn forward_is_evaluated_in_order_through_jumps() {
        let snap = Snapshot::from_json(r#"{"schema":"ctnet.snapshot/v1","taken_at_unix_ms":0,"hostname":"","kernel":"","host":{"dev":1,"ino":1},"netns":[],
            "firewall":{"iptables":[{"backend":"nft","family":"ip","tables":[{"name":"filter",
              "chains":[{"name":"FORWARD","policy":"DROP","packets":0,"bytes":0,"owner":"other"},
                        {"name":"DOCKER-USER","policy":null,"packets":0,"bytes":0,"owner":"docker"}],
              "rules":[
                {"chain":"FORWARD","position":1,"spec":"-j DOCKER-USER","target":"DOCKER-USER","packets":0,"bytes":0,"owner":"docker"},
                {"chain":"DOCKER-USER","position":1,"spec":"-i br0 -o br0 -j DROP","target":"DROP","packets":3,"bytes":0,"owner":"docker"},
                {"chain":"DOCKER-USER","position":2,"spec":"-j RETURN","target":"RETURN","packets":0,"bytes":0,"owner":"docker"},
                {"chain":"FORWARD","position":2,"spec":"-i br0 -j ACCEPT","target":"ACCEPT","packets":0,"bytes":0,"owner":"other"}
              ]}]}],"nft":[],"warnings":[]}}"#)
        .unwrap();
        let p = |i: &str, o: &str| {
            crate::netfilter::Packet::tcp(
                "10.0.0.2".parse().unwrap(),
                40000,
                "10.0.0.3".parse().unwrap(),
                80,
            )
            .iif(i)
            .oif(o)
        };
        let (st, why, ev) = forward_by_engine(&crate::flow::Tracer::new(&snap), p("br0", "br0"), "the pair");
        assert_eq!(st, Status::Fail);
        assert!(
            why.contains("-A DOCKER-USER -i br0 -o br0 -j DROP") && why.contains("3 packets"),
            "{why}"
        );
        assert!(ev.iter().any(|e| e.contains("forward/filter/FORWARD")), "{ev:?}");
        assert_eq!(
            forward_by_engine(&crate::flow::Tracer::new(&snap), p("br0", UPLINK), "egress").0,
            Status::Pass
        );
        let (st, why, _) = forward_by_engine(&crate::flow::Tracer::new(&snap), p("eth9", UPLINK), "x");
        assert_eq!(st, Status::Fail);
        assert!(why.contains("policy DROP"), "{why}");
    }
}
