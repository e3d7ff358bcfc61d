//! The status bar: health, counts and the key hints that fit.

use super::*;

/// The key hints that fit in `budget` columns: `? help` always, then `q quit`, then
/// the pane's own from the first, shown in their order.
pub fn status_hints(pane: &[&str], budget: usize) -> String {
    let mut kept: Vec<&str> = vec!["? help"];
    let mut used = "? help".chars().count();
    let fits = |used: usize, h: &str| used + 1 + h.chars().count() <= budget;
    let quit = fits(used, "q quit");
    if quit {
        used += 1 + "q quit".chars().count();
    }
    let mut own = Vec::new();
    for h in pane {
        if fits(used, h) {
            used += 1 + h.chars().count();
            own.push(*h);
        } else {
            break;
        }
    }
    own.append(&mut kept);
    if quit {
        own.push("q quit");
    }
    own.join(" ")
}

pub(super) fn draw_status(f: &mut Frame, app: &App, area: Rect) {
    if let Some(p) = &app.prompt {
        let (what, help) = match p.kind {
            PromptKind::Filter => ("BPF filter", "Enter apply, Esc cancel, empty clears"),
            PromptKind::PcapPath => ("write pcap to", "Enter write, Esc cancel"),
            PromptKind::SnapshotPath => ("save snapshot to", "Enter save, Esc cancel"),
            PromptKind::Find => ("find", "name, IP, MAC, ifN; Enter keep, Esc back; then n/N"),
            PromptKind::TraceTo => ("trace to", "NAME|IP|host|external [tcp|udp PORT]; Enter, Esc"),
        };
        let text = format!("{what}: {}", esc(&p.text));
        // The cursor after the escaped form of what precedes it.
        let before: String = p.text.chars().take(p.cursor).collect();
        let cursor_x = area.x + format!("{what}: {}", esc(&before)).chars().count() as u16;
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(text, Style::new().add_modifier(Modifier::BOLD)),
                Span::styled(format!("   ({help})"), Style::new().fg(DIM)),
            ])),
            area,
        );
        f.set_cursor_position((cursor_x.min(area.right().saturating_sub(1)), area.y));
        return;
    }
    let hints: &[&str] = match app.focus {
        Focus::Tree => &[
            "↑↓ move",
            "⏎ fold",
            "f find",
            "p capture",
            "c check",
            "C pair",
            "m msgs",
        ],
        Focus::Detail => &["←→ tab", "↑↓ scroll", "Tab pane", "m msgs"],
        Focus::Capture => &[
            "↑↓ scroll",
            "p add/remove",
            "P stop",
            "/ filter",
            "w write",
            "m msgs",
        ],
    };
    let left = match (&app.message, &app.snap, &app.topo) {
        (Some(m), _, _) => esc(m),
        (None, Some(s), Some(t)) => format!(
            "{}{} · {} br · {} veth · {} netns · {} ctr · scan {} ms{}{}",
            // Health first: it is what a glance is for, and it survives 80 columns.
            match app.problem_counts() {
                _ if app.health.is_empty() => String::new(),
                (0, 0) => "checks ok · ".into(),
                (f, w) => format!(
                    "✗{f} fail ⚠{w} warn{} · ",
                    if app.only_problems { " (only these)" } else { "" }
                ),
            },
            s.host_netns().map_or("host".into(), |h| esc(&h.label())),
            t.bridges.len(),
            t.veths.len(),
            t.netns.len(),
            s.containers.len(),
            match (app.scan_ms, app.light_ms) {
                (Some(f), Some(h)) => format!("{f}/{h}"),
                (Some(f), None) => f.to_string(),
                _ => "-".into(),
            },
            match app.mode {
                Mode::Live => format!(" every {}s", app.interval_s),
                Mode::Offline(_) => " (offline)".into(),
            },
            if app.capture.active.is_empty() {
                String::new()
            } else {
                format!(
                    " · capture {} on {} if{}",
                    app.capture.seen,
                    app.capture.active.len(),
                    if app.capture.lost > 0 {
                        format!(", {} not shown", app.capture.lost)
                    } else {
                        String::new()
                    }
                )
            }
        ),
        _ => "scanning…".into(),
    };
    let width = area.width as usize;
    let hints = status_hints(hints, (width / 2).max(6));
    let hint_w = hints.chars().count();
    let left_w = width.saturating_sub(hint_w + 1);
    let left: String = if left.chars().count() > left_w {
        left.chars()
            .take(left_w.saturating_sub(1))
            .chain(std::iter::once('…'))
            .collect()
    } else {
        format!("{left:<left_w$}")
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(left, Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(" "),
            Span::styled(hints, Style::new().fg(DIM)),
        ])),
        area,
    );
}
