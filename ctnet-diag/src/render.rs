//! Text renderers of the joined topology: the `veths` table and the `show` tree.
//! Pure functions of a Snapshot/Topology, so live and `--from FILE` print the same.

use ctnet_core::vocab::LinkKind;
use ctnet_core::vocab::PortState;
use std::fmt::Write as _;

use ctnet_core::model::Snapshot;
use ctnet_core::target::Resolved;
use ctnet_core::text::natural_key;
use ctnet_core::topology::{NetnsView, Peer, Role, Topology};

/// Left-aligned columns, two spaces apart, the last one not padded. A cell is one line
/// whatever it holds: it is escaped, so a name with a newline cannot forge a row.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let escaped: Vec<Vec<std::borrow::Cow<'_, str>>> = rows
        .iter()
        .map(|r| r.iter().map(|c| ctnet_core::text::escape(c)).collect())
        .collect();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &escaped {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        let start = out.len();
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i != last {
                // Padded by hand: `format!`'s width is a u16 and panics past 65 535.
                let pad = width[i].saturating_sub(c.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in &escaped {
        line(r.iter().map(|c| c.as_ref()).collect(), &mut out);
    }
    out
}

/// A netns's names for a table cell: the first (paths before pids) and how many more,
/// so a container with fifty processes stays one short cell. JSON has them all.
pub fn compact_names(names: &[String], label: &str) -> String {
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort_by_key(|n| n.starts_with("pid:"));
    match sorted.as_slice() {
        [] => label.to_string(),
        [one] => one.replace(' ', "_"),
        [first, rest @ ..] => format!("{}+{}", first.replace(' ', "_"), rest.len()),
    }
}

/// A netns's names for a line: up to three, then how many more.
fn names_line(names: &[String], key: ctnet_core::netns::NetnsKey) -> String {
    match names.len() {
        0 => key.to_string(),
        1..=3 => names.join(", "),
        more => format!("{} and {} more", names[..3].join(", "), more - 3),
    }
}

/// Addresses for text output: IPv6 link-local ones (every interface has one) are left
/// to the JSON unless they are all there is.
pub fn shown_ips(ips: &[String]) -> String {
    let useful: Vec<&str> = ips
        .iter()
        .map(String::as_str)
        .filter(|ip| !ip.to_ascii_lowercase().starts_with("fe80:"))
        .collect();
    match (useful.is_empty(), ips.is_empty()) {
        (_, true) => "-".into(),
        (true, false) => ips.join(","),
        (false, false) => useful.join(","),
    }
}

fn dash(v: Option<&str>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or("-").to_string()
}

/// The peer columns: ifindex, netns, interface, MAC, IPs.
fn peer_cells(p: &Peer) -> [String; 5] {
    match p {
        Peer::Resolved {
            iface,
            netns_names,
            mac,
            ips,
            ..
        } => [
            iface.ifindex.to_string(),
            compact_names(netns_names, &iface.netns_label),
            iface.name.clone(),
            dash(mac.as_deref()),
            shown_ips(ips),
        ],
        Peer::SameNetns { ifindex, name } => [
            ifindex.to_string(),
            "(same netns)".into(),
            dash(name.as_deref()),
            "-".into(),
            "-".into(),
        ],
        Peer::NetnsNotFound { nsid, ifindex } => [
            ifindex.to_string(),
            format!("nsid {nsid}: netns not found"),
            "?".into(),
            "?".into(),
            "?".into(),
        ],
        Peer::NetnsUnread { netns_label, .. } => [
            "?".into(),
            format!("{netns_label}: not read"),
            "?".into(),
            "?".into(),
            "?".into(),
        ],
        Peer::Missing { netns_label, ifindex } => [
            ifindex.to_string(),
            format!("{netns_label}: no such ifindex"),
            "?".into(),
            "?".into(),
            "?".into(),
        ],
        Peer::Unknown => ["?".into(), "?".into(), "?".into(), "?".into(), "?".into()],
    }
}

/// `ctnet-diag veths`: one row per host veth.
pub fn veths_table(t: &Topology) -> String {
    if t.veths.is_empty() {
        return "no veth interfaces in the host netns\n".into();
    }
    let mut veths: Vec<_> = t.veths.iter().collect();
    veths.sort_by_key(|v| natural_key(&v.host.name));
    let rows: Vec<Vec<String>> = veths
        .into_iter()
        .map(|v| {
            let [pidx, netns, pif, pmac, pips] = peer_cells(&v.peer);
            vec![
                v.host.name.clone(),
                v.host.ifindex.to_string(),
                dash(v.bridge.as_deref()),
                v.operstate.to_string(),
                dash(v.port_state.as_ref().map(PortState::as_str)),
                pidx,
                if v.containers.is_empty() {
                    "-".into()
                } else {
                    v.containers.join(",")
                },
                netns,
                pif,
                pmac,
                pips,
            ]
        })
        .collect();
    table(
        &[
            "HOST VETH",
            "IFINDEX",
            "BRIDGE",
            "STATE",
            "PORT",
            "PEER IFINDEX",
            "CONTAINER",
            "PEER NETNS",
            "PEER IF",
            "PEER MAC",
            "PEER IPS",
        ],
        &rows,
    )
}

fn ageing(cs: u32) -> String {
    if cs == 0 {
        "ageing 0 (no learning memory)".into()
    } else if cs % 100 == 0 {
        format!("ageing {}s", cs / 100)
    } else {
        format!("ageing {:.2}s", f64::from(cs) / 100.0)
    }
}

fn peer_summary(p: &Peer) -> String {
    match p {
        Peer::Resolved {
            iface,
            mac,
            ips,
            operstate,
            ..
        } => format!(
            "{} {} if{}  {}  {}  {}",
            iface.netns_label,
            iface.name,
            iface.ifindex,
            shown_ips(ips),
            dash(mac.as_deref()),
            operstate
        ),
        Peer::SameNetns { ifindex, name } => format!("{} if{ifindex} (same netns)", dash(name.as_deref())),
        Peer::NetnsNotFound { nsid, ifindex } => format!("if{ifindex} in nsid {nsid}: netns not found"),
        Peer::NetnsUnread { netns_label, reason } => format!("{netns_label}: not read ({reason})"),
        Peer::Missing { netns_label, ifindex } => format!("{netns_label}: no if{ifindex}"),
        Peer::Unknown => "peer unknown".into(),
    }
}

fn netns_line(n: &NetnsView) -> String {
    let names = names_line(&n.names, n.key);
    if n.role == Role::Unread {
        return format!("{names}: not read (see `sources` in `ctnet-diag snapshot`)");
    }
    let ifaces: Vec<String> = n
        .ifaces
        .iter()
        .map(|i| {
            let mut s = format!(
                "{} ({})",
                i.iface.name,
                i.kind.as_ref().map_or("device", LinkKind::as_str)
            );
            if let Some(p) = &i.parent {
                let _ = write!(s, " on host {p}");
            }
            if !i.ips.is_empty() {
                let _ = write!(s, " {}", shown_ips(&i.ips));
            }
            if let Some(p) = &i.peer {
                let _ = write!(s, " -> {}", peer_summary(p));
            }
            s
        })
        .collect();
    let what = match n.role {
        Role::Isolated => "only lo".to_string(),
        _ => ifaces.join("; "),
    };
    let who = if n.containers.is_empty() {
        String::new()
    } else {
        format!(" [{}]", n.containers.join(","))
    };
    format!("{names}{who}: {what}")
}

/// `ctnet-diag show`: bridges with their ports and the netns behind each, then veths
/// off any bridge, then every other netns by role.
///
/// ```text
/// host net:[4026531840] (hostname, kernel)
/// bridge t-br  10.9.0.1/24  up  stp off  ageing 300s  fdb 6
/// ├── t-v1 if4 forwarding ═ t-c1 eth0 if2  10.9.0.2/24  aa:..  up
/// └── t-v2 ...
/// ```
pub fn show_tree(snap: &Snapshot, t: &Topology) -> String {
    let mut out = String::new();
    let host_label = snap
        .host_netns()
        .map(|h| h.label())
        .unwrap_or_else(|| "host".into());
    let _ = writeln!(
        out,
        "{} {} ({}, {}), {} netns",
        host_label,
        snap.host,
        snap.hostname,
        snap.kernel,
        snap.netns.len()
    );
    // Each port's containers, found once (not by a scan of every veth per port).
    let containers_of: std::collections::HashMap<u32, &Vec<String>> = t
        .veths
        .iter()
        .rev()
        .filter(|v| !v.containers.is_empty())
        .map(|v| (v.host.ifindex, &v.containers))
        .collect();
    for b in &t.bridges {
        let _ = writeln!(
            out,
            "bridge {}  {}  {}  stp {}  {}  fdb {}",
            b.iface.name,
            shown_ips(&b.ips),
            if b.up {
                b.operstate.as_str()
            } else {
                "DOWN (admin)"
            },
            if b.stp_state == 0 { "off" } else { "on" },
            ageing(b.ageing_time_cs),
            b.fdb.iter().filter(|e| !e.is_local).count()
        );
        if b.ports.is_empty() {
            let _ = writeln!(out, "└── (no ports)");
        }
        for (i, p) in b.ports.iter().enumerate() {
            let branch = if i + 1 == b.ports.len() {
                "└──"
            } else {
                "├──"
            };
            let state = p.state.as_ref().map_or("-", PortState::as_str);
            let who = containers_of
                .get(&p.ifindex)
                .map(|c| format!(" [{}]", c.join(",")))
                .unwrap_or_default();
            let peer = p
                .peer
                .as_ref()
                .map(|x| format!(" ═ {}{who}", peer_summary(x)))
                .unwrap_or_else(|| format!(" ({})", p.kind.as_ref().map_or("device", LinkKind::as_str)));
            let _ = writeln!(out, "{branch} {} if{} {state}{peer}", p.name, p.ifindex);
        }
    }
    let loose: Vec<_> = t.veths.iter().filter(|v| v.bridge.is_none()).collect();
    if !loose.is_empty() {
        let _ = writeln!(out, "veths on no bridge:");
        for v in loose {
            let _ = writeln!(
                out,
                "  {} if{} {} ═ {}",
                v.host.name,
                v.host.ifindex,
                v.operstate,
                peer_summary(&v.peer)
            );
        }
    }
    for (role, title) in [
        (Role::Container, "netns attached without a bridge port"),
        (Role::Detached, "netns not tied to the host"),
        (Role::Orphan, "netns with veths whose peer is missing"),
        (Role::Isolated, "isolated netns (only lo)"),
        (Role::Unread, "netns that could not be read"),
    ] {
        let list: Vec<&NetnsView> = t
            .netns
            .iter()
            .filter(|n| n.role == role)
            // Interfaces on a bridge were shown under it; list a container here only for
            // the others (a veth off any bridge, a macvlan).
            .filter(|n| role != Role::Container || n.ifaces.iter().any(|i| i.bridge.is_none()))
            .collect();
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}:");
        for n in list {
            let _ = writeln!(out, "  {}", netns_line(n));
        }
    }
    out
}

/// `ctnet-diag show TARGET`: one container or netns, everything about its networking.
///
/// ```text
/// container web1 (docker abc123def456, image bb:t): running, network mode default
/// netns /var/run/docker/netns/e325, pid:147(sleep)   containers: web1, side1
///   eth0  172.17.0.2/16  02:42:ac:11:00:02  up  mtu 1500
///         host veth veth8ed48b0 if5 on docker0 (forwarding); FDB: learned on veth8ed48b0
///         gateway 172.17.0.1
/// ```
pub fn target_view(snap: &Snapshot, t: &Topology, r: &Resolved) -> String {
    let mut out = String::new();
    if let Some(c) = &r.container {
        let _ = writeln!(
            out,
            "container {} ({} {}{}{}): {}, network mode {}",
            c.name,
            c.runtime,
            c.short_id(),
            c.user
                .map(|u| format!(", rootless as uid {u}"))
                .unwrap_or_default(),
            c.image
                .as_ref()
                .map(|i| format!(", image {i}"))
                .unwrap_or_default(),
            c.state,
            if c.network_mode.is_empty() {
                "-"
            } else {
                c.network_mode.as_str()
            }
        );
        for n in &c.networks {
            let _ = writeln!(
                out,
                "  network {}: {}{} {}{}",
                n.name,
                n.ip.map(|ip| format!("{ip}/{}", n.prefix_len))
                    .unwrap_or_else(|| "-".into()),
                n.gateway.map(|g| format!(" via {g}")).unwrap_or_default(),
                dash(n.mac.as_deref()),
                n.bridge.as_ref().map(|b| format!(" on {b}")).unwrap_or_default()
            );
        }
        if !c.ports.is_empty() {
            let ports: Vec<String> = c
                .ports
                .iter()
                .map(|p| match p.host_port {
                    Some(h) => format!(
                        "{}:{h}->{}/{}",
                        p.host_ip.as_deref().unwrap_or("*"),
                        p.container_port,
                        p.protocol
                    ),
                    None => format!("{}/{}", p.container_port, p.protocol),
                })
                .collect();
            let _ = writeln!(out, "  ports: {}", ports.join(", "));
        }
    }
    if let Some(note) = &r.note {
        let _ = writeln!(out, "note: {note}");
    }
    let Some(key) = r.netns else {
        return out;
    };
    if key == snap.host {
        let host = snap.host_netns().map(|h| h.label()).unwrap_or_default();
        if let (Some(idx), Some(h)) = (r.ifindex, snap.host_netns()) {
            if let Some(v) = t.veths.iter().find(|v| v.host.ifindex == idx) {
                let who = if v.containers.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", v.containers.join(","))
                };
                let _ = writeln!(
                    out,
                    "host veth {} if{} {} on {} ({}) ═ {}{who}",
                    v.host.name,
                    idx,
                    v.operstate,
                    dash(v.bridge.as_deref()),
                    dash(v.port_state.as_ref().map(PortState::as_str)),
                    peer_summary(&v.peer)
                );
            } else if let Some(l) = h.link(idx) {
                let _ = writeln!(
                    out,
                    "host interface {} if{idx} ({}) {} {}",
                    l.name,
                    l.kind.as_ref().map_or("device", LinkKind::as_str),
                    l.operstate,
                    shown_ips(&h.addrs_of(idx))
                );
                if let Some(v) = &l.vxlan {
                    let _ = writeln!(out, "  vxlan {}", v.summary());
                }
            }
        } else {
            let _ = writeln!(out, "netns: the host netns ({host})");
        }
        return out;
    }
    let Some(view) = t.netns.iter().find(|n| n.key == key) else {
        let _ = writeln!(out, "netns {key}: not in this snapshot");
        return out;
    };
    let names = names_line(&view.names, key);
    let owner = snap
        .netns_by_key(key)
        .and_then(|n| n.owner.as_ref())
        .map(|o| format!("   owner: {}", o.describe()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "netns {names}{owner}{}",
        if view.containers.is_empty() {
            String::new()
        } else {
            format!("   containers: {}", view.containers.join(", "))
        }
    );
    if let Some(uid) = snap.netns_by_key(key).and_then(|n| n.userns_uid) {
        let _ = writeln!(
            out,
            "  in a user namespace of uid {uid}{}",
            if uid == 0 {
                ""
            } else {
                " (rootless): seen and entered by root, changed only by that user"
            }
        );
    }
    if view.ifaces.is_empty() {
        let _ = writeln!(out, "  only lo: no interface to the host");
    }
    for i in &view.ifaces {
        let _ = writeln!(
            out,
            "  {}  {}  {}  {}{}",
            i.iface.name,
            shown_ips(&i.ips),
            dash(i.mac.as_deref()),
            if i.up {
                i.operstate.as_str()
            } else {
                "DOWN (admin)"
            },
            i.mtu.map(|m| format!("  mtu {m}")).unwrap_or_default()
        );
        match (&i.host_veth, &i.parent) {
            (Some(hv), _) => {
                let fdb = match &i.fdb {
                    Some(f) if f.port == hv.name => format!("learned on {}", f.port),
                    Some(f) => format!("learned on {} (not its own port {})", f.port, hv.name),
                    None => "not learned".into(),
                };
                let _ = writeln!(
                    out,
                    "        host veth {} if{} on {} ({}); FDB: {fdb}",
                    hv.name,
                    hv.ifindex,
                    dash(i.bridge.as_deref()),
                    dash(i.port_state.as_ref().map(PortState::as_str))
                );
            }
            (None, Some(parent)) => {
                let _ = writeln!(
                    out,
                    "        {} on host device {parent}",
                    i.kind.as_ref().map_or("link", LinkKind::as_str)
                );
            }
            (None, None) => {
                if i.kind != Some(LinkKind::Tun)
                    && let Some(p) = &i.peer
                {
                    let _ = writeln!(out, "        peer: {}", peer_summary(p));
                } else if i.kind == Some(LinkKind::Tun) {
                    let _ = writeln!(
                        out,
                        "        a tap served in user space (slirp4netns or pasta, rootless): no host veth or \
                         bridge, the host sees its traffic as that process's sockets"
                    );
                }
            }
        }
        if let Some(g) = i.gateway {
            let _ = writeln!(out, "        gateway {g}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Snapshot {
        Snapshot::load(format!("{}/../fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn renders_each_fixture_the_same_as_last_time() {
        for name in ["lab-healthy", "lab-faults", "docker-host"] {
            let snap = fixture(name);
            let topo = Topology::build(&snap);
            insta::assert_snapshot!(format!("veths-{name}"), veths_table(&topo));
            insta::assert_snapshot!(format!("show-{name}"), show_tree(&snap, &topo));
        }
    }

    #[test]
    fn hides_link_local_addresses_unless_alone() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(shown_ips(&v(&["10.0.0.2/24", "fe80::1/64"])), "10.0.0.2/24");
        assert_eq!(shown_ips(&v(&["fe80::1/64"])), "fe80::1/64");
        assert_eq!(shown_ips(&[]), "-");
    }

    #[test]
    fn table_aligns_columns_and_trims_the_last() {
        let t = table(
            &["A", "BB", "C"],
            &[
                vec!["xxx".into(), "y".into(), "z".into()],
                vec!["1".into(), "22".into(), "".into()],
            ],
        );
        assert_eq!(t, "A    BB  C\nxxx  y   z\n1    22\n");
    }

    #[test]
    fn ageing_zero_is_called_out() {
        assert_eq!(ageing(30000), "ageing 300s");
        assert!(ageing(0).contains("no learning"));
    }
}
