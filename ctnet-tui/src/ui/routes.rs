//! The Routes tab: every routing table of the selection's netns.

use super::*;

pub(super) fn routes_tab(app: &App, snap: &Snapshot) -> Vec<Line<'static>> {
    let Some(ns) = table_netns(app, snap) else {
        return vec![Line::raw("the snapshot has no netns")];
    };
    let mut out = vec![Line::styled(
        format!(
            "routes of {} (ip route show table all, local table left out)",
            ns.label()
        ),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    let mut any = false;
    for r in ns.routes.iter().filter(|r| r.table != 255 && r.kind != "local") {
        any = true;
        let mut s = r.dst.clone();
        if let Some(g) = r.gateway {
            s.push_str(&format!(" via {g}"));
        }
        if let Some(l) = r.oif.and_then(|i| ns.link(i)) {
            s.push_str(&format!(" dev {}", l.name));
        }
        if r.protocol != "boot" && !r.protocol.is_empty() {
            s.push_str(&format!(" proto {}", r.protocol));
        }
        if r.scope != "universe" && !r.scope.is_empty() {
            s.push_str(&format!(" scope {}", r.scope));
        }
        if let Some(p) = r.prefsrc {
            s.push_str(&format!(" src {p}"));
        }
        if let Some(m) = r.metric {
            s.push_str(&format!(" metric {m}"));
        }
        if r.table != 254 {
            s.push_str(&format!(" table {}", r.table));
        }
        let style = if r.dst == "default" {
            Style::new().add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        out.push(Line::styled(s, style));
    }
    if !any {
        out.push(Line::styled(
            "(no routes: nothing leaves this netns)",
            Style::new().fg(WARN),
        ));
    }
    let fwd = ns.sysctls.ip_forward.map_or("?".into(), |v| v.to_string());
    out.push(Line::styled(
        format!("net.ipv4.ip_forward = {fwd}"),
        Style::new().fg(DIM),
    ));
    out
}
