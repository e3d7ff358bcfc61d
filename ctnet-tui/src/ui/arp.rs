//! The ARP tab: the neighbour table of the selection's netns.

use super::*;

pub(super) fn arp_tab(app: &App, snap: &Snapshot) -> Vec<Line<'static>> {
    let Some(ns) = table_netns(app, snap) else {
        return vec![Line::raw("the snapshot has no netns")];
    };
    let mut out = vec![
        Line::styled(
            format!("neighbours of {} (ip neigh)", ns.label()),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Line::styled(
            format!("{:<26} {:<18} {:<12} {}", "address", "lladdr", "dev", "state"),
            Style::new().fg(DIM),
        ),
    ];
    if ns.neighbours.is_empty() {
        out.push(Line::raw("(none: nothing resolved yet)"));
    }
    for n in &ns.neighbours {
        let bad = n.state.unresolved();
        out.push(Line::styled(
            format!(
                "{:<26} {:<18} {:<12} {}",
                n.ip,
                n.mac.as_deref().unwrap_or("-"),
                ns.link(n.ifindex)
                    .map_or(format!("if{}", n.ifindex), |l| l.name.clone()),
                n.state
            ),
            if bad { Style::new().fg(BAD) } else { Style::new() },
        ));
    }
    out
}
