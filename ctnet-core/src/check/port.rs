//! `port`: the container's published ports arrive, traced by the flow engine from
//! where users come: the host's own address, localhost, and (with a default route)
//! a client beyond the uplink.

use std::net::IpAddr;

use super::ctx::Ctx;
use super::path::hop_line;
use super::{Finding, Status, finding};
use crate::flow::{Destination, FlowSpec, L4, Reach, Source, Trace};

/// A port published to the target: by its runtime, or by a DNAT rule of the host to
/// one of its addresses.
struct Published {
    protocol: String,
    host_port: u16,
    container_port: u16,
}

/// The host's iptables DNAT rules (IPv4 nat table, both backends) to one of `addrs`
/// for one TCP or UDP port: `(protocol, port, port it is sent to)`.
fn dnat_ports(snap: &crate::model::Snapshot, addrs: &[IpAddr]) -> Vec<Published> {
    use crate::netfilter::{Family, Match, PortOpt, Target};
    let Some(fw) = &snap.firewall else {
        return Vec::new();
    };
    let rs = crate::netfilter::Ruleset::from_firewall(fw);
    let mut out = Vec::new();
    for d in rs.dumps.iter().filter(|d| d.family == Family::Ipv4) {
        for t in d.tables.iter().filter(|t| t.name == "nat") {
            for r in t.chains.iter().flat_map(|c| &c.rules) {
                let Target::Dnat { to: Some(to), .. } = &r.rule.target else {
                    continue;
                };
                if !to.addr_first.is_some_and(|a| addrs.contains(&a)) {
                    continue;
                }
                let mut proto = None;
                let mut dport = None;
                for m in &r.rule.matches {
                    match m {
                        Match::Protocol(p) if !p.negated => proto = Some(p.value.0.clone()),
                        Match::Tcp { options, .. } | Match::Udp { options, .. } => {
                            for o in options {
                                if let (false, PortOpt::Dport(range)) = (o.negated, &o.value) {
                                    if range.first == range.last {
                                        dport = Some(range.first);
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                if let (Some(protocol), Some(host_port)) = (proto, dport) {
                    if protocol == "tcp" || protocol == "udp" {
                        out.push(Published {
                            protocol,
                            host_port,
                            container_port: to.ports.map_or(host_port, |p| p.first),
                        });
                    }
                }
            }
        }
    }
    out
}

/// `port.published`: one finding per port published to the target (by its runtime,
/// or by a DNAT rule of the host to its address).
pub(super) fn published(c: &Ctx<'_>) -> Vec<Finding> {
    let Ok(a) = &c.at else {
        return Vec::new();
    };
    let snap = c.snap;
    let host = a.host;
    let mut ports: Vec<Published> =
        c.t.container
            .iter()
            .flat_map(|k| &k.ports)
            .filter_map(|p| {
                Some(Published {
                    protocol: p.protocol.clone(),
                    host_port: p.host_port?,
                    container_port: p.container_port,
                })
            })
            .collect();
    let addrs: Vec<IpAddr> = a.nets.iter().map(|n| IpAddr::V4(n.addr())).collect();
    ports.extend(dnat_ports(snap, &addrs));
    let name =
        c.t.container
            .as_ref()
            .map_or(c.t.target.clone(), |k| k.name.clone());
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for p in &ports {
        let host_port = p.host_port;
        let l4 = match p.protocol.as_str() {
            "tcp" => L4::Tcp(host_port),
            "udp" => L4::Udp(host_port),
            _ => continue,
        };
        // `-p 8080:80` is listed once per address family; trace it once.
        if seen.contains(&(p.protocol.clone(), host_port)) {
            continue;
        }
        seen.push((p.protocol.clone(), host_port));
        // The host's address where users arrive: the uplink's, else the container's
        // gateway on the host.
        let uplink = host
            .routes
            .iter()
            .find(|r| r.table == 254 && r.dst == "default" && r.family == "inet")
            .and_then(|r| r.oif);
        let addr_of = |ix: u32| {
            host.addresses
                .iter()
                .find(|x| x.ifindex == ix && x.address.is_ipv4() && x.scope == "global")
                .map(|x| x.address)
        };
        let host_addr = uplink.and_then(addr_of).or_else(|| {
            a.i.gateway
                .filter(|g| host.addresses.iter().any(|x| x.address == *g))
        });
        let mut paths: Vec<(String, FlowSpec)> = Vec::new();
        if let Some(ha) = host_addr {
            paths.push((
                format!("from the host to {ha}:{host_port}"),
                FlowSpec::new(Source::Host { addr: None }, Destination::Addr { addr: ha }, l4),
            ));
        }
        paths.push((
            format!("from the host to localhost:{host_port}"),
            FlowSpec::new(
                Source::Host { addr: None },
                Destination::Addr {
                    addr: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                },
                l4,
            ),
        ));
        if uplink.is_some() {
            paths.push((
                format!("from outside to the host's port {host_port}"),
                FlowSpec::new(
                    Source::External {
                        addr: None,
                        iface: None,
                    },
                    Destination::Host,
                    l4,
                ),
            ));
        }
        let traced: Vec<(String, Option<Trace>)> = paths
            .into_iter()
            .map(|(what, spec)| (what, c.flow.trace(&spec).ok()))
            .collect();
        let worst = traced
            .iter()
            .map(|(_, t)| match t.as_ref().map(|t| t.verdict) {
                Some(Reach::Reachable) => Status::Pass,
                Some(Reach::Unreachable) => Status::Fail,
                _ => Status::Warn,
            })
            .max()
            .unwrap_or(Status::Skip);
        let label = format!("{}/{host_port} -> {name}:{}", p.protocol, p.container_port);
        let summary = match traced
            .iter()
            .find(|(_, t)| t.as_ref().is_none_or(|t| t.verdict != Reach::Reachable))
        {
            None => format!(
                "{label} arrives {}",
                traced
                    .iter()
                    .map(|(w, _)| w.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some((what, Some(t))) => format!("{label} does not arrive {what}: {}", t.summary),
            Some((what, None)) => format!("{label}: {what} could not be traced"),
        };
        let mut f = finding(worst, summary).cmd(format!(
            "ctnet-diag trace host {} --{} {host_port}",
            host_addr.map_or("127.0.0.1".to_string(), |a| a.to_string()),
            p.protocol
        ));
        for (what, t) in &traced {
            let Some(t) = t else { continue };
            let verdict = match t.verdict {
                Reach::Reachable => "reachable",
                Reach::Unreachable => "unreachable",
                Reach::Ambiguous => "ambiguous",
            };
            f = f.ev(format!("{what}: {verdict}: {}", t.summary));
            for h in t
                .hops
                .iter()
                .filter(|h| h.verdict != crate::flow::HopVerdict::Allow)
            {
                f = f.ev(format!("  {}", hop_line(h)));
            }
        }
        out.push(f.hint(
            "the first failing hop names the rule or the missing listener (docker-proxy, or a DNAT with route_localnet for localhost)",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::check::{Status, run};
    use crate::model::Snapshot;
    use crate::topology::Topology;

    fn port_finding(snap: &Snapshot) -> crate::check::Finding {
        let topo = Topology::build(snap);
        let t = crate::target::resolve(snap, "api1").unwrap();
        let r = run(snap, &topo, &t, None);
        r.checks
            .into_iter()
            .find(|c| c.id == "port.published")
            .expect("a port finding")
    }

    #[test]
    fn a_published_port_is_traced_from_the_host_address_and_localhost() {
        let mut snap = Snapshot::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/docker-host.json"
        ))
        .unwrap();
        let f = port_finding(&snap);
        assert_eq!(f.status, Status::Pass, "{f:#?}");
        assert!(
            f.summary
                .starts_with("tcp/8080 -> api1:80 arrives from the host to"),
            "{}",
            f.summary
        );
        assert!(f.evidence.iter().any(|e| e.contains("DNAT")), "{f:#?}");
        // The host's sockets read, and nobody (no docker-proxy) on 8080: the DNAT
        // still serves the host's address, localhost finds no listener.
        let host = snap.host;
        snap.netns.iter_mut().find(|n| n.key == host).unwrap().listening = Some(Vec::new());
        let f = port_finding(&snap);
        assert_eq!(f.status, Status::Fail, "{f:#?}");
        assert!(
            f.summary
                .contains("does not arrive from the host to localhost:8080")
                && f.summary.contains("nothing listens on tcp/8080"),
            "{}",
            f.summary
        );
    }
}
