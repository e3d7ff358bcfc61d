//! `port`: the container's published ports arrive, traced by the flow engine from
//! where users come: the host's own address, localhost, and (with a default route)
//! a client beyond the uplink.

use crate::vocab::NeighState;
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

/// The netns holding `ip` on an interface with `mac` (when known), other than `not`
/// and the host. The MAC tells apart netns that reuse an address in isolation (two
/// labs, two hosts' worth of containers): only the one on the wire answered the ARP.
fn netns_with_addr(
    snap: &crate::model::Snapshot,
    ip: IpAddr,
    mac: Option<&str>,
    not: crate::netns::NetnsKey,
) -> Option<crate::netns::NetnsKey> {
    let mut found = snap
        .netns
        .iter()
        .filter(|n| n.key != not && n.key != snap.host)
        .filter(|n| {
            n.addresses.iter().any(|a| {
                a.address == ip
                    && mac.is_none_or(|m| {
                        n.links.iter().any(|l| {
                            l.ifindex == a.ifindex
                                && l.mac.as_deref().is_some_and(|lm| lm.eq_ignore_ascii_case(m))
                        })
                    })
            })
        })
        .map(|n| n.key);
    let first = found.next()?;
    // Without a MAC to tell them apart, two holders are no answer.
    (mac.is_some() || found.next().is_none()).then_some(first)
}

/// At most this many talking peers are traced from, per port.
const LISTEN_PEERS: usize = 8;

/// The netns that `key` talks to, by its neighbour table: each IPv4 neighbour (not
/// failed, incomplete or noarp) that is an address of another netns than `key` and the
/// host, at most [`LISTEN_PEERS`], with that address. What `port.listening` traces
/// from; a caller that scanned other netns only for links reads these in full
/// ([`crate::source::deepen`]) so their routes and rules are known.
pub fn talkers(
    snap: &crate::model::Snapshot,
    key: crate::netns::NetnsKey,
) -> Vec<(crate::netns::NetnsKey, IpAddr)> {
    let Some(ns) = snap.netns_by_key(key) else {
        return Vec::new();
    };
    let mut out: Vec<(crate::netns::NetnsKey, IpAddr)> = Vec::new();
    for n in &ns.neighbours {
        if !n.ip.is_ipv4()
            || matches!(
                n.state,
                NeighState::Failed | NeighState::Incomplete | NeighState::Noarp
            )
        {
            continue;
        }
        let Some(k) = netns_with_addr(snap, n.ip, n.mac.as_deref(), key) else {
            continue;
        };
        if out.iter().any(|(o, _)| *o == k) {
            continue;
        }
        out.push((k, n.ip));
        if out.len() >= LISTEN_PEERS {
            break;
        }
    }
    out
}

/// `port.listening`: each port the target serves (TCP in LISTEN, UDP bound, on an
/// address other than loopback) arrives from the containers it talks to (the
/// addresses in its neighbour table that belong to another netns, at most
/// [`LISTEN_PEERS`]) and from the host: each path traced by the flow engine through
/// every hook, so a firewall rule that drops one peer's traffic to that port is named
/// without a peer given.
pub(super) fn listening(c: &Ctx<'_>) -> Vec<Finding> {
    let Ok(a) = &c.at else {
        return Vec::new();
    };
    let snap = c.snap;
    let Some(key) = c.t.netns else {
        return Vec::new();
    };
    let Some(ns) = snap.netns_by_key(key) else {
        return Vec::new();
    };
    let Some(listeners) = &ns.listening else {
        return Vec::new();
    };
    let target_addrs: Vec<IpAddr> = a.nets.iter().map(|n| IpAddr::V4(n.addr())).collect();
    let mut ports: Vec<(String, u16)> = Vec::new();
    for l in listeners {
        let usable = l.addr.is_unspecified() || target_addrs.contains(&l.addr);
        if usable && !ports.contains(&(l.proto.clone(), l.port)) && (l.proto == "tcp" || l.proto == "udp") {
            ports.push((l.proto.clone(), l.port));
        }
    }
    if ports.is_empty() {
        return Vec::new();
    }
    ports.sort();
    // Who talks to it: neighbours that are other containers, then the host.
    let mut peers: Vec<(String, Source, String)> = Vec::new();
    for (k, ip) in talkers(snap, key) {
        let name = snap
            .containers_in(k)
            .find(|c| c.is_running())
            .map(|c| c.name.clone())
            .or_else(|| snap.netns_by_key(k).map(|s| s.label()))
            .unwrap_or_else(|| ip.to_string());
        peers.push((
            format!("from {name} ({ip})"),
            Source::Netns {
                netns: k,
                addr: Some(ip),
            },
            name,
        ));
    }
    peers.push(("from the host".into(), Source::Host { addr: None }, "host".into()));
    let name =
        c.t.container
            .as_ref()
            .map_or(c.t.target.clone(), |k| k.name.clone());
    let mut out = Vec::new();
    for (proto, port) in ports {
        let l4 = if proto == "tcp" {
            L4::Tcp(port)
        } else {
            L4::Udp(port)
        };
        let traced: Vec<(&str, &str, Option<Trace>)> = peers
            .iter()
            .map(|(what, src, from)| {
                let spec = FlowSpec::new(src.clone(), Destination::Netns { netns: key }, l4);
                (what.as_str(), from.as_str(), c.flow.trace(&spec).ok())
            })
            .collect();
        // A path through a netns this scan did not read in full is not judged (the
        // evidence says so); `check` reads the talkers in full, a file may not hold them.
        let status = |t: Option<&Trace>| match t {
            Some(t) if !t.needs.is_empty() && t.verdict != Reach::Unreachable => Status::Skip,
            Some(t) if t.verdict == Reach::Reachable => Status::Pass,
            Some(t) if t.verdict == Reach::Unreachable => Status::Fail,
            _ => Status::Warn,
        };
        let worst = traced
            .iter()
            .map(|(_, _, t)| status(t.as_ref()))
            .max()
            .unwrap_or(Status::Skip);
        let label = format!("{proto}/{port} on {name}");
        let blocked: Vec<String> = traced
            .iter()
            .filter(|(_, _, t)| matches!(status(t.as_ref()), Status::Fail | Status::Warn))
            .map(|(what, _, t)| match t {
                Some(t) => format!("{what}: {}", t.summary),
                None => format!("{what}: could not be traced"),
            })
            .collect();
        let summary = if blocked.is_empty() {
            format!(
                "{label} arrives {}",
                traced
                    .iter()
                    .filter(|(_, _, t)| status(t.as_ref()) == Status::Pass)
                    .map(|(w, _, _)| *w)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!("{label} does not arrive {}", blocked.join("; "))
        };
        let mut f = finding(worst, summary);
        for (what, from, t) in &traced {
            let Some(t) = t else { continue };
            if status(Some(t)) == Status::Skip {
                f = f.ev(format!("{what}: not judged, its netns was not read in full"));
                continue;
            }
            if t.verdict == Reach::Reachable {
                f = f.ev(format!("{what}: reachable"));
                continue;
            }
            f = f.ev(format!("{what}: {}", t.summary));
            for h in t
                .hops
                .iter()
                .filter(|h| h.verdict != crate::flow::HopVerdict::Allow)
            {
                f = f.ev(format!("  {}", hop_line(h)));
            }
            f = f.cmd(format!("ctnet-diag trace {from} {} --{proto} {port}", c.t.target));
        }
        if worst >= Status::Warn {
            f = f.hint("the first hop that is not ALLOW names the rule that drops the port's traffic (trace it: the command above)");
        }
        out.push(f);
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
