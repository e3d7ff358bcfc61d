//! The message log overlay (`m`): every message of the session, whole.

use super::*;

/// The session's messages, whole and wrapped, the newest at the bottom.
pub(super) fn draw_log(f: &mut Frame, app: &App, area: Rect) {
    let r = centered(area, 100.min(area.width), area.height.saturating_sub(2).max(3));
    let mut lines: Vec<Line> = app
        .log
        .iter()
        .map(|(t, m)| {
            Line::from(vec![
                Span::styled(format!("{t} "), Style::new().fg(DIM)),
                Span::raw(esc(m)),
            ])
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::raw("no message yet"));
    }
    let inner_w = r.width.saturating_sub(2).max(1) as usize;
    // Wrapped height, so the newest stays in view.
    let height: usize = lines.iter().map(|l| l.width().div_ceil(inner_w).max(1)).sum();
    let visible = r.height.saturating_sub(2) as usize;
    let scroll = height.saturating_sub(visible) as u16;
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(Block::bordered().title(format!(" Messages ({}; any key closes) ", app.log.len()))),
        r,
    );
}
