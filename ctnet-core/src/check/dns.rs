//! `dns`: the container's nameservers answer on port 53, as the flow engine walks a
//! query there (UDP, and TCP for answers too big for a datagram).

use std::net::IpAddr;

use super::ctx::Ctx;
use super::path::hop_line;
use super::{Finding, Status, finding};
use crate::flow::{Destination, FlowSpec, HopVerdict, L4, Reach, Source};

/// Docker's embedded resolver on user networks: the container's own nat table sends
/// 127.0.0.11:53 to the port dockerd listens on inside the container.
const DOCKER_DNS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 11));

/// How many nameservers the C library asks.
const MAXNS: usize = 3;

/// `dns.resolver`: every nameserver of the container's `resolv.conf` (the first three,
/// as the C library asks) is reachable on udp/53 and tcp/53 from inside it.
pub(super) fn resolver(c: &Ctx<'_>) -> Vec<Finding> {
    let Some(key) = c.t.netns else {
        return Vec::new();
    };
    if key == c.snap.host {
        return Vec::new();
    }
    let Some(ns) = c.snap.netns_by_key(key) else {
        return Vec::new();
    };
    let label = ns.label();
    let Some(r) = &ns.resolver else {
        return vec![finding(
            Status::Skip,
            format!(
                "no resolver found for {label}: no process of it is known and there is no \
                 /etc/netns/{label}/resolv.conf (a program run there reads the host's /etc/resolv.conf)"
            ),
        )];
    };
    let cmd = format!("cat {}", r.path);
    if let Some(e) = &r.error {
        return vec![
            finding(
                Status::Skip,
                format!("the resolver configuration could not be read: {e}"),
            )
            .cmd(cmd),
        ];
    }
    if r.nameservers.is_empty() {
        return vec![
            finding(
                Status::Warn,
                "resolv.conf names no nameserver: glibc then asks 127.0.0.1 inside the container, musl asks nothing",
            )
            .ev(format!("{}: no nameserver line", r.path))
            .cmd(cmd)
            .hint("give the container a nameserver it can reach (docker run --dns ADDR)"),
        ];
    }
    let mut worst = Status::Pass;
    let mut ev = vec![format!(
        "{}: nameserver {}",
        r.path,
        r.nameservers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )];
    let mut bad: Vec<String> = Vec::new();
    let mut hint = None;
    let mut judged = 0;
    for &server in r.nameservers.iter().take(MAXNS) {
        if server == DOCKER_DNS && ns.firewall.is_none() {
            ev.push(format!(
                "{server}: Docker's embedded resolver, sent by the container's own nat rules to dockerd's \
                 port; those rules were not read"
            ));
            continue;
        }
        judged += 1;
        for l4 in [L4::Udp(53), L4::Tcp(53)] {
            let proto = if matches!(l4, L4::Udp(_)) { "udp" } else { "tcp" };
            let spec = FlowSpec::new(
                Source::Netns {
                    netns: key,
                    addr: None,
                },
                Destination::Addr { addr: server },
                l4,
            );
            let tr = match c.flow.trace(&spec) {
                Ok(t) => t,
                Err(e) => {
                    worst = worst.max(Status::Fail);
                    bad.push(format!("{server} {proto}/53"));
                    ev.push(format!("{server} {proto}/53: {e}"));
                    continue;
                }
            };
            let status = match tr.verdict {
                Reach::Reachable => Status::Pass,
                // A TCP-only failure breaks large answers; UDP is what every query starts with.
                Reach::Unreachable if proto == "udp" => Status::Fail,
                Reach::Unreachable | Reach::Ambiguous => Status::Warn,
            };
            worst = worst.max(status);
            if status == Status::Pass {
                ev.push(format!("{server} {proto}/53: reachable"));
                continue;
            }
            bad.push(format!("{server} {proto}/53"));
            ev.push(format!("{server} {proto}/53: {}", tr.summary));
            for h in tr.hops.iter().chain(&tr.reply) {
                if !matches!(
                    h.verdict,
                    HopVerdict::Allow | HopVerdict::Nat | HopVerdict::Deliver
                ) {
                    ev.push(hop_line(h));
                }
            }
            if hint.is_none() {
                hint = Some(if server.is_loopback() && server != DOCKER_DNS {
                    format!(
                        "{server} is a loopback address: in the container it is the container's own loopback, \
                         not the host's resolver (a systemd-resolved stub copied from the host); give the \
                         container a nameserver it can reach (docker run --dns ADDR, or the network's gateway \
                         resolver)"
                    )
                } else {
                    format!(
                        "let {proto}/53 from the container reach {server} (see the hop above), or give it another \
                         nameserver"
                    )
                });
            }
        }
    }
    if judged == 0 {
        worst = Status::Skip;
    }
    let summary = match worst {
        Status::Pass => format!(
            "{} nameserver(s) reachable on udp/53 and tcp/53",
            r.nameservers.len().min(MAXNS)
        ),
        Status::Skip => "the nameservers could not all be judged".to_string(),
        _ => format!("DNS does not get through: {}", bad.join(", ")),
    };
    let mut f = finding(worst, summary).cmd(cmd).cmd(format!(
        "ctnet-diag trace {} {} --udp 53",
        c.t.target,
        r.nameservers.first().map_or(String::new(), ToString::to_string)
    ));
    for e in ev {
        f = f.ev(e);
    }
    if let Some(h) = hint {
        f = f.hint(h);
    }
    vec![f]
}
