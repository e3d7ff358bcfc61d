//! The Checks tab: the findings for the selection.

use super::*;

pub(super) fn status_style(s: Status) -> (Style, &'static str) {
    match s {
        Status::Fail => (Style::new().fg(BAD).add_modifier(Modifier::BOLD), "FAIL"),
        Status::Warn => (Style::new().fg(WARN).add_modifier(Modifier::BOLD), "WARN"),
        Status::Pass => (Style::new().fg(OK), "pass"),
        Status::Skip => (Style::new().fg(DIM), "skip"),
    }
}

pub(super) fn checks_tab(app: &App) -> Vec<Line<'static>> {
    let here = app.selected_netns();
    // The last `c`/`C` when it is about the selection; otherwise the background checks
    // of the selection (no probe, as of the last full scan); otherwise the last report.
    let explicit = app
        .report
        .as_ref()
        .filter(|(keys, _)| here.is_none_or(|k| keys.contains(&k)));
    let background = here.and_then(|k| app.health.get(&k).map(|r| (vec![k], r.clone())));
    let (keys, r, note) = match (explicit, background, &app.report) {
        (Some((k, r)), _, _) => (k.clone(), r.clone(), None),
        (None, Some((k, r)), _) => (
            k,
            r,
            Some("background checks (no probe) from the last full scan: c runs them now, C with a peer"),
        ),
        (None, None, Some((k, r))) => (k.clone(), r.clone(), None),
        (None, None, None) => {
            return vec![
                Line::raw("Press c to run the guided checks for the selected container or netns,"),
                Line::raw("or C to pick a peer and run the pair checks (ARP both ways, FDB, firewall)."),
            ];
        }
    };
    let (keys, r) = (&keys, &r);
    let count = |s: Status| r.checks.iter().filter(|f| f.status == s).count();
    let (vs, vt) = status_style(r.verdict);
    let mut out = vec![Line::from(vec![
        Span::raw(format!(
            "{}{}: ",
            r.target,
            r.peer.as_deref().map(|p| format!(" ↔ {p}")).unwrap_or_default()
        )),
        Span::styled(vt.to_uppercase(), vs),
        Span::raw(format!(
            "  ({} fail, {} warn, {} pass, {} skip)",
            count(Status::Fail),
            count(Status::Warn),
            count(Status::Pass),
            count(Status::Skip)
        )),
    ])];
    if let Some(n) = note {
        out.push(Line::styled(n, Style::new().fg(DIM)));
    } else if app.selected_netns().is_some_and(|k| !keys.contains(&k)) {
        out.push(Line::styled(
            "(for an earlier selection: press c to check this one)",
            Style::new().fg(DIM),
        ));
    }
    for f in &r.checks {
        let (st, word) = status_style(f.status);
        out.push(Line::from(vec![
            Span::styled(format!("{word:<4} "), st),
            Span::styled(format!("{} ", f.id), Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(f.summary.clone()),
        ]));
        if matches!(f.status, Status::Fail | Status::Warn) {
            for e in &f.evidence {
                out.push(Line::raw(format!("     · {e}")));
            }
            for c in &f.commands {
                out.push(Line::styled(format!("     $ {c}"), Style::new().fg(Color::Cyan)));
            }
            if let Some(h) = &f.hint {
                out.push(Line::styled(format!("     hint: {h}"), Style::new().fg(WARN)));
            }
        }
    }
    out
}
