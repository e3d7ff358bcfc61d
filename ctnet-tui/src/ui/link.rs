//! The Link tab: flags, MTU, peer, counters and rates of each interface.

use super::*;

pub(super) fn link_block(
    app: &App,
    topo: &Topology,
    snap: &Snapshot,
    ns: &NetnsState,
    l: &Link,
) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let up = l.is_up();
    let state_style = Style::new().fg(if up && l.operstate != OperState::Down {
        OK
    } else {
        BAD
    });
    out.push(Line::from(vec![
        Span::styled(l.name.clone(), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(" ({}) ", ns_name(topo, snap, ns.key))),
        Span::raw(format!("{} ", l.kind.as_ref().map_or("device", LinkKind::as_str))),
        Span::styled(
            format!(
                "{}{}",
                if up { "UP" } else { "DOWN" },
                if l.operstate != OperState::Up {
                    format!("/{}", l.operstate)
                } else {
                    String::new()
                }
            ),
            state_style,
        ),
        Span::raw(format!(
            " mtu {} {} if{}",
            l.mtu.map_or("?".into(), |m| m.to_string()),
            l.mac.as_deref().unwrap_or("-"),
            l.ifindex
        )),
    ]));
    let mut rel = Vec::new();
    if let Some(m) = l.master.and_then(|m| ns.link(m)) {
        rel.push(format!("master {}", m.name));
    }
    if let Some(p) = &l.port {
        rel.push(format!(
            "port {}{}",
            p.state,
            if p.learning { "" } else { ", learning OFF" }
        ));
    }
    let mut brnf = None;
    if let Some(b) = &l.bridge {
        rel.push(format!(
            "stp {} ageing {}s nf_call_iptables {}",
            if b.stp_state == 0 { "off" } else { "on" },
            b.ageing_time_cs / 100,
            if b.nf_call_iptables { "on" } else { "off" }
        ));
        // br_netfilter hands bridged IPv4 to iptables when the global sysctl or the
        // bridge's own option is on: either is enough.
        brnf = Some(match ns.sysctls.bridge_nf_call_iptables {
            None => "br_netfilter not loaded: bridged frames skip iptables".to_string(),
            Some(g) if g != 0 || b.nf_call_iptables => format!(
                "bridged IPv4 goes through iptables (bridge-nf-call-iptables={g}, bridge {}: either is enough)",
                if b.nf_call_iptables { "on" } else { "off" }
            ),
            Some(g) => {
                format!("bridged IPv4 skips iptables (bridge-nf-call-iptables={g} and the bridge's off)")
            }
        });
    }
    if l.kind == Some(LinkKind::Veth) {
        let peer = if ns.key == snap.host {
            topo.veths
                .iter()
                .find(|v| v.host.ifindex == l.ifindex)
                .map(|v| &v.peer)
        } else {
            topo.netns
                .iter()
                .find(|n| n.key == ns.key)
                .and_then(|n| n.ifaces.iter().find(|i| i.iface.ifindex == l.ifindex))
                .and_then(|i| i.peer.as_ref())
        };
        match peer {
            Some(Peer::Resolved { iface, confirmed, .. }) => rel.push(format!(
                "peer {}@{} (if{}){}",
                iface.name,
                ns_name(topo, snap, iface.netns),
                iface.ifindex,
                if *confirmed { "" } else { ", not confirmed" }
            )),
            Some(p) => rel.push(format!("peer {}", crate::tree::peer_text(p))),
            None => {}
        }
    }
    let ips = ns.addrs_of(l.ifindex);
    if !ips.is_empty() {
        rel.push(ips.join(" "));
    }
    if !rel.is_empty() {
        out.push(Line::raw(format!("  {}", rel.join("; "))));
    }
    if let Some(b) = brnf {
        out.push(Line::raw(format!("  {b}")));
    }
    if let Some(r) = app.rates.get(&(ns.key, l.name.clone())) {
        out.push(Line::from(vec![
            Span::raw(format!(
                "  rx {:.1} pps {}  tx {:.1} pps {}  ",
                r.rx_pps,
                human_bits(r.rx_bps),
                r.tx_pps,
                human_bits(r.tx_bps)
            )),
            Span::styled(spark(r.history.iter().copied(), 24), Style::new().fg(Color::Cyan)),
        ]));
    } else if l.stats.is_some() {
        out.push(Line::styled(
            match app.mode {
                Mode::Offline(_) => "  no rate: a file holds one moment (counters below)",
                Mode::Live => "  rate: from the next scan on",
            },
            Style::new().fg(DIM),
        ));
    }
    if let Some(s) = &l.stats {
        let drops = s.rx_dropped + s.tx_dropped + s.rx_errors + s.tx_errors;
        out.push(Line::styled(
            format!(
                "  rx {} pkts {} err {} drop {} │ tx {} pkts {} err {} drop {}",
                s.rx_packets,
                human_bytes(s.rx_bytes),
                s.rx_errors,
                s.rx_dropped,
                s.tx_packets,
                human_bytes(s.tx_bytes),
                s.tx_errors,
                s.tx_dropped
            ),
            if drops > 0 {
                Style::new().fg(WARN)
            } else {
                Style::new()
            },
        ));
    }
    if let Some(e) = &l.ethtool {
        let nonzero: Vec<String> = e
            .counters
            .iter()
            .filter(|(k, v)| **v > 0 && k.contains("drop"))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !nonzero.is_empty() {
            out.push(Line::styled(
                format!("  ethtool -S: {}", nonzero.join(", ")),
                Style::new().fg(WARN),
            ));
        }
    }
    out.push(Line::styled(
        format!("  flags {}", l.flags.join(",")),
        Style::new().fg(DIM),
    ));
    out
}

pub(super) fn link_tab(app: &App, snap: &Snapshot, topo: &Topology) -> Vec<Line<'static>> {
    let Some(host) = snap.host_netns() else {
        return vec![Line::raw("the snapshot has no host netns")];
    };
    let mut pairs: Vec<(&NetnsState, &Link)> = Vec::new();
    match app.selected_item() {
        Some(Item::Bridge(b)) | Some(Item::HostVeth(b)) => {
            if let Some(l) = host.link_by_name(b) {
                pairs.push((host, l));
            }
        }
        Some(Item::Port { port, netns, .. }) => {
            if let Some(l) = host.link_by_name(port) {
                pairs.push((host, l));
                if let (Some(k), Some(idx)) = (netns, l.link)
                    && let Some(ns) = snap.netns_by_key(*k)
                    && let Some(p) = ns.link(idx)
                {
                    pairs.push((ns, p));
                }
            }
        }
        Some(Item::Netns(k)) => {
            if let Some(ns) = snap.netns_by_key(*k) {
                if let Some(err) = &ns.read_error {
                    return vec![Line::styled(
                        format!("this netns could not be read: {err}"),
                        Style::new().fg(WARN),
                    )];
                }
                if *k == snap.host {
                    return vec![Line::raw(
                        "Host-network containers use the host's own interfaces: select a bridge or veth.",
                    )];
                }
                for l in ns.links.iter().filter(|l| l.name != "lo") {
                    pairs.push((ns, l));
                    if l.link_netnsid.is_some()
                        && let Some(v) = topo.veths.iter().find(|v| {
                            matches!(&v.peer, Peer::Resolved { iface, .. } if iface.netns == *k && iface.ifindex == l.ifindex)
                        })
                        && let Some(h) = host.link(v.host.ifindex)
                    {
                        pairs.push((host, h));
                    }
                }
                if pairs.is_empty() {
                    return vec![Line::raw("only lo: this netns has no network (--network none)")];
                }
            }
        }
        Some(Item::Heading(_)) | None => {
            return vec![
                Line::raw(format!("host {} · kernel {}", snap.hostname, snap.kernel)),
                Line::raw(format!(
                    "{} bridge(s), {} veth(s), {} other netns, {} container(s)",
                    topo.bridges.len(),
                    topo.veths.len(),
                    topo.netns.len(),
                    snap.containers.len()
                )),
                Line::raw("Select a bridge, port or netns for its links."),
            ];
        }
    }
    let mut out = Vec::new();
    for (ns, l) in pairs {
        out.extend(link_block(app, topo, snap, ns, l));
    }
    out
}
