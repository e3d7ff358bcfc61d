//! The capture pane: decoded packets from every captured interface.

use super::*;

pub(super) fn draw_capture(f: &mut Frame, app: &App, area: Rect) {
    let c = &app.capture;
    let mut title = if c.active.is_empty() {
        " Capture (stopped) ".to_string()
    } else {
        format!(" Capture: {} ", c.active.join(", "))
    };
    title.push_str(&format!(
        "· filter {} · {} seen{} ",
        c.filter.as_deref().unwrap_or("none"),
        c.seen,
        if c.lost > 0 {
            format!(", {} not shown", c.lost)
        } else {
            String::new()
        }
    ));
    let block = pane(esc(&title), app.focus == Focus::Capture);
    let inner_h = area.height.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    if c.packets.is_empty() {
        if c.active.is_empty() {
            lines.push(Line::styled(
                "p: capture on the selection (a port: both ends of its veth) · /: BPF filter · w: write a pcap",
                Style::new().fg(DIM),
            ));
        } else {
            lines.push(Line::styled("waiting for packets…", Style::new().fg(DIM)));
        }
        for e in &c.ended {
            lines.push(Line::styled(e.clone(), Style::new().fg(DIM)));
        }
    } else {
        let end = c.packets.len() - c.scroll.min(c.packets.len() - 1);
        let start = end.saturating_sub(inner_h);
        let narrow = area.width < 150;
        for p in c.packets.range(start..end) {
            let style = if p.line.contains("ICMP") {
                Style::new().fg(Color::Cyan)
            } else if p.line.contains("ARP") {
                Style::new().fg(Color::Magenta)
            } else {
                Style::new()
            };
            let text = if narrow { compact(&p.line) } else { p.line.clone() };
            lines.push(Line::styled(esc(&text), style));
        }
        if c.active.is_empty() && !c.ended.is_empty() && !lines.is_empty() && lines.len() >= inner_h {
            lines.remove(0);
            lines.push(Line::styled(esc(&c.ended.join("; ")), Style::new().fg(DIM)));
        }
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// A capture line without the link layer (MACs, ethertype), for narrow screens:
/// `12:00:01.000000 vc1 out 10.0.0.2 > 10.0.0.3: ICMP echo request, id 7, seq 1 (98)`.
pub fn compact(line: &str) -> String {
    let mut words = line.split_whitespace();
    let (Some(time), Some(label), Some(dir)) = (words.next(), words.next(), words.next()) else {
        return line.to_string();
    };
    let Some(at) = line.find(", length ") else {
        return line.to_string();
    };
    let after = &line[at + ", length ".len()..];
    match after.split_once(": ") {
        Some((len, rest)) => format!("{time} {label} {dir:<3} {rest} ({len})"),
        None => line.to_string(),
    }
}
