//! The detail pane: the tabs over the selection.

use super::*;

pub(super) fn draw_detail(f: &mut Frame, app: &App, area: Rect) {
    let block = pane(String::new(), app.focus == Focus::Detail);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [tabs_area, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    // Numbered when they fit (the digits are the keys), the names alone otherwise.
    let numbered: Vec<String> = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {}", i + 1, t.title()))
        .collect();
    let width: usize = numbered.iter().map(|t| t.chars().count() + 1).sum();
    let titles: Vec<String> = if width <= tabs_area.width as usize {
        numbered
    } else {
        Tab::ALL.iter().map(|t| t.title().to_string()).collect()
    };
    let index = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    f.render_widget(
        Tabs::new(titles)
            .select(index)
            .highlight_style(Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED))
            .divider("│")
            .padding("", ""),
        tabs_area,
    );
    let lines = match (&app.snap, &app.topo) {
        (Some(s), Some(t)) => match app.tab {
            Tab::Link => link_tab(app, s, t),
            Tab::Fdb => fdb_tab(app, s, t),
            Tab::Arp => arp_tab(app, s),
            Tab::Routes => routes_tab(app, s),
            Tab::Firewall => firewall_tab(app, s),
            Tab::Checks => checks_tab(app),
            Tab::Trace => trace_tab(app),
        },
        _ => vec![Line::raw("waiting for the first scan…")],
    };
    let lines = esc_lines(lines);
    if matches!(app.tab, Tab::Checks | Tab::Trace) {
        // Findings are sentences: wrapped, so evidence and hints are read whole; the
        // scroll counts wrapped rows.
        let w = body.width.max(1) as usize;
        let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(w)).sum();
        let max = rows.saturating_sub(body.height as usize);
        app.detail_max.set(max);
        let scroll = app.detail_scroll.min(max) as u16;
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .scroll((scroll, 0)),
            body,
        );
        return;
    }
    let max = lines.len().saturating_sub(body.height as usize);
    app.detail_max.set(max);
    let scroll = app.detail_scroll.min(max) as u16;
    f.render_widget(Paragraph::new(lines).scroll((scroll, 0)), body);
}
