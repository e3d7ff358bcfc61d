//! The FDB tab: the bridge's forwarding database.

use super::*;

pub(super) fn bridge_of(app: &App, topo: &Topology) -> Option<String> {
    match app.selected_item()? {
        Item::Bridge(b) => Some(b.clone()),
        Item::Port { bridge, .. } => Some(bridge.clone()),
        Item::Netns(k) => topo
            .netns
            .iter()
            .find(|n| n.key == *k)
            .and_then(|n| n.ifaces.iter().find_map(|i| i.bridge.clone())),
        Item::HostVeth(_) | Item::Heading(_) => None,
    }
}

pub(super) fn fdb_tab(app: &App, snap: &Snapshot, topo: &Topology) -> Vec<Line<'static>> {
    let Some(name) = bridge_of(app, topo) else {
        return vec![Line::raw(
            "Select a bridge, or a port or container on one, for its FDB.",
        )];
    };
    let Some(b) = topo.bridges.iter().find(|b| b.iface.name == name) else {
        return vec![Line::raw(format!("bridge {name} is gone"))];
    };
    let host = snap.host_netns();
    // One lookup per port, not per entry: a bridge with hundreds of ports has
    // thousands of entries.
    let names: std::collections::HashMap<u32, &str> = host
        .map(|h| h.links.iter().map(|l| (l.ifindex, l.name.as_str())).collect())
        .unwrap_or_default();
    let port_name = |i: u32| names.get(&i).map_or(format!("if{i}"), |n| n.to_string());
    let highlight: Option<String> = match app.selected_item() {
        Some(Item::Port { port, .. }) => Some(port.clone()),
        _ => None,
    };
    let mut out = vec![
        Line::styled(
            format!(
                "{name}: {} entries, ageing {}s  (brctl showmacs {name}; bridge fdb show br {name})",
                b.fdb.len(),
                b.ageing_time_cs / 100
            ),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Line::styled(
            format!(
                "{:<16} {:<18} {:<6} {:<7} {}",
                "port", "mac addr", "local", "static", "age"
            ),
            Style::new().fg(DIM),
        ),
    ];
    let entries: Vec<_> = b.fdb.iter().collect();
    let mut entries: Vec<_> = entries.into_iter().map(|e| (port_name(e.ifindex), e)).collect();
    entries.sort_by_cached_key(|(port, e)| (ctnet_core::text::natural_key(port), e.mac.clone()));
    for (port, e) in entries {
        let style = if highlight.as_deref() == Some(port.as_str()) {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        out.push(Line::styled(
            format!(
                "{:<16} {:<18} {:<6} {:<7} {}",
                port,
                e.mac,
                if e.is_local { "yes" } else { "no" },
                if e.is_static { "yes" } else { "no" },
                e.age_s.map_or("-".into(), |a| format!("{a:.2}"))
            ),
            style,
        ));
    }
    out
}
