//! The Firewall tab: iptables and nft rules with their counters, the traced path marked.

use super::*;

pub(super) fn firewall_tab(app: &App, snap: &Snapshot) -> Vec<Line<'static>> {
    let Some(fw) = &snap.firewall else {
        return vec![Line::raw(
            "the firewall was not read (no iptables/nft, or no privilege)",
        )];
    };
    let mut out = vec![Line::styled(
        "host firewall: packets counted, +per second; rules counting now are highlighted",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    for w in &fw.warnings {
        out.push(Line::styled(format!("⚠ {w}"), Style::new().fg(WARN)));
    }
    let rate_span = |key: &str, packets: u64| -> (String, bool) {
        let pps = app.rule_rates.get(key).map_or(0.0, |r| r.pps);
        (format!("{packets:>9} {:>9}", format!("+{pps:.0}/s")), pps > 0.0)
    };
    let hot = Style::new().fg(WARN).add_modifier(Modifier::BOLD);
    // The host's rules the last trace (t) went through: marked, red for the one that
    // dropped or rejected it.
    let on_path: Vec<(&ctnet_core::flow::RuleView, HopVerdict)> = app
        .trace
        .as_ref()
        .map(|t| {
            t.trace
                .hops
                .iter()
                .chain(&t.trace.reply)
                .chain(&t.trace.established)
                .filter(|h| h.netns == "host")
                .filter_map(|h| h.rule_ref.as_ref().map(|r| (r, h.verdict)))
                .collect()
        })
        .unwrap_or_default();
    if !on_path.is_empty() {
        out.push(Line::styled(
            "▶ marks the rules the traced flow met (Trace tab, t); red: the one that stopped it",
            Style::new().fg(DIM),
        ));
    }
    let path_style = |v: Option<HopVerdict>, base: Style| match v {
        Some(HopVerdict::Drop | HopVerdict::Reject) => Style::new()
            .fg(BAD)
            .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        Some(_) => Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        None => base,
    };
    let mark = |v: Option<HopVerdict>| if v.is_some() { "▶" } else { " " };
    for d in &fw.iptables {
        for t in &d.tables {
            if t.rules.is_empty() {
                continue;
            }
            out.push(Line::styled(
                format!("{} {} -t {}", d.backend, d.family, t.name),
                Style::new().fg(Color::Cyan),
            ));
            let source = match (d.backend.as_str(), d.family.as_str()) {
                ("legacy", "ip6") => "ip6tables-legacy",
                ("legacy", _) => "iptables-legacy",
                (_, "ip6") => "ip6tables",
                _ => "iptables",
            };
            let met = |chain: &str, position: Option<u32>| {
                on_path
                    .iter()
                    .find(|(r, _)| {
                        r.source == source && r.table == t.name && r.chain == chain && r.position == position
                    })
                    .map(|(_, v)| *v)
            };
            for c in t.chains.iter().filter(|c| c.policy.is_some()) {
                let v = met(&c.name, None);
                out.push(Line::styled(
                    format!(
                        "{} :{} policy {} [{} pkts]",
                        mark(v),
                        c.name,
                        c.policy.as_deref().unwrap_or("-"),
                        c.packets
                    ),
                    path_style(v, Style::new().fg(DIM)),
                ));
            }
            for r in &t.rules {
                let key = ipt_rule_key(&d.backend, &d.family, &t.name, &r.chain, r.position, &r.spec);
                let (count, counting) = rate_span(&key, r.packets);
                let v = met(&r.chain, Some(r.position));
                out.push(Line::styled(
                    format!("{} {count}  -A {} {}", mark(v), r.chain, r.spec),
                    path_style(v, if counting { hot } else { Style::new() }),
                ));
            }
        }
    }
    for t in &fw.nft {
        if t.rules.is_empty() {
            continue;
        }
        out.push(Line::styled(
            format!("nft table {} {}", t.family, t.name),
            Style::new().fg(Color::Cyan),
        ));
        let table = format!("{} {}", t.family, t.name);
        for r in &t.rules {
            let key = nft_rule_key(&t.family, &t.name, r.handle);
            let (count, counting) = match r.packets {
                Some(p) => rate_span(&key, p),
                None => (format!("{:>9} {:>9}", "-", ""), false),
            };
            let v = on_path
                .iter()
                .find(|(rv, _)| rv.source == "nft" && rv.table == table && rv.handle == Some(r.handle))
                .map(|(_, v)| *v);
            out.push(Line::styled(
                format!("{} {count}  {}: {}", mark(v), r.chain, r.text),
                path_style(v, if counting { hot } else { Style::new() }),
            ));
        }
    }
    out
}
