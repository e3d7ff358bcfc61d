//! The topology pane: the tree of bridges, ports and netns with their badges.

use super::*;

pub(super) fn draw_tree(f: &mut Frame, app: &App, area: Rect) {
    let title = match &app.mode {
        Mode::Live => " Topology ".to_string(),
        Mode::Offline(p) => format!(" Topology (file {}) ", ctnet_core::text::path(p)),
    };
    let block = pane(title, app.focus == Focus::Tree);
    if app.snap.is_none() {
        f.render_widget(Paragraph::new("scanning this host…").block(block), area);
        return;
    }
    if app.rows.is_empty() {
        f.render_widget(
            Paragraph::new("no bridge, veth or other netns on this host")
                .wrap(Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    app.tree_page.set(area.height.saturating_sub(2) as usize);
    let width = area.width.saturating_sub(2) as usize;
    let items: Vec<ListItem> = app
        .rows
        .iter()
        .map(|r| {
            let fold = match r.fold {
                Some(true) => "▸ ",
                Some(false) => "▾ ",
                None => "  ",
            };
            let mut spans = vec![Span::raw("  ".repeat(r.depth as usize)), Span::raw(fold)];
            if r.badge != Badge::None || matches!(r.item, Item::Bridge(_) | Item::Port { .. }) {
                spans.push(Span::styled("● ", Style::new().fg(badge_color(r.badge))));
            }
            let label_style = match r.item {
                Item::Heading(_) => Style::new().add_modifier(Modifier::BOLD | Modifier::ITALIC),
                Item::Bridge(_) => Style::new().add_modifier(Modifier::BOLD),
                _ => Style::new(),
            };
            spans.push(Span::styled(esc(&r.label), label_style));
            if !r.detail.is_empty() {
                spans.push(Span::styled(format!(" {}", esc(&r.detail)), Style::new().fg(DIM)));
            }
            ListItem::new(Line::from(fit(spans, width)))
        })
        .collect();
    let mut st = ListState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(
        List::new(items)
            .block(block)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        area,
        &mut st,
    );
}

/// Spans cut to `width` columns, the last one kept ending in `…` when anything was
/// cut (the detail pane shows the whole value).
pub fn fit(spans: Vec<Span<'static>>, width: usize) -> Vec<Span<'static>> {
    let total: usize = spans.iter().map(|s| s.width()).sum();
    if total <= width || width == 0 {
        return spans;
    }
    let mut out = Vec::new();
    let mut left = width - 1;
    for s in spans {
        if left == 0 {
            break;
        }
        let w = s.width();
        if w <= left {
            left -= w;
            out.push(s);
        } else {
            let mut cut = String::new();
            let mut used = 0;
            for ch in s.content.chars() {
                let cw = Span::raw(ch.to_string()).width();
                if used + cw > left {
                    break;
                }
                used += cw;
                cut.push(ch);
            }
            out.push(Span::styled(cut, s.style));
            left = 0;
        }
    }
    let style = out.last().map(|s| s.style).unwrap_or_default();
    out.push(Span::styled("…", style));
    out
}
