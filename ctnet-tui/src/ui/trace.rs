//! The Trace tab: a flow walked hook by hook, and its live probe.

use super::*;

pub(super) fn hop_word(v: HopVerdict) -> (&'static str, Style) {
    match v {
        HopVerdict::Allow => ("ALLOW", Style::new().fg(OK)),
        HopVerdict::Nat => ("NAT", Style::new().fg(Color::Cyan)),
        HopVerdict::Drop => ("DROP", Style::new().fg(BAD).add_modifier(Modifier::BOLD)),
        HopVerdict::Reject => ("REJECT", Style::new().fg(BAD).add_modifier(Modifier::BOLD)),
        HopVerdict::May => ("MAY", Style::new().fg(WARN).add_modifier(Modifier::BOLD)),
        HopVerdict::Deliver => ("DELIVER", Style::new().fg(OK).add_modifier(Modifier::BOLD)),
    }
}

pub(super) fn reach_style(r: Reach) -> (Style, &'static str) {
    match r {
        Reach::Reachable => (Style::new().fg(OK).add_modifier(Modifier::BOLD), "REACHABLE"),
        Reach::Unreachable => (Style::new().fg(BAD).add_modifier(Modifier::BOLD), "UNREACHABLE"),
        Reach::Ambiguous => (Style::new().fg(WARN).add_modifier(Modifier::BOLD), "AMBIGUOUS"),
    }
}

pub(super) fn hop_lines(out: &mut Vec<Line<'static>>, title: &str, hops: &[ctnet_core::flow::Hop]) {
    if hops.is_empty() {
        return;
    }
    out.push(Line::styled(
        title.to_string(),
        Style::new().add_modifier(Modifier::BOLD),
    ));
    let mut last_packet: Option<&str> = None;
    for (i, h) in hops.iter().enumerate() {
        let (word, st) = hop_word(h.verdict);
        let iface = h.iface.as_ref().map(|i| format!(" {i}")).unwrap_or_default();
        out.push(Line::from(vec![
            Span::raw(format!("{:>3}. ", i + 1)),
            Span::styled(format!("{word:<7} "), st),
            Span::styled(format!("[{}{iface}] ", h.netns), Style::new().fg(DIM)),
            Span::raw(format!("{}: {}", h.step, h.detail)),
        ]));
        if let Some(rule) = &h.rule {
            let place = h
                .rule_ref
                .as_ref()
                .map(|r| format!("{}: ", r.place()))
                .unwrap_or_default();
            let counters = h.rule_ref.as_ref().map(|r| r.so_far()).unwrap_or_default();
            let deciding = matches!(h.verdict, HopVerdict::Drop | HopVerdict::Reject | HopVerdict::May);
            out.push(Line::styled(
                format!("       rule: {place}{rule}{counters}"),
                if deciding {
                    st
                } else {
                    Style::new().fg(Color::Cyan)
                },
            ));
        }
        if last_packet != Some(h.packet.as_str()) {
            out.push(Line::styled(
                format!("       packet: {}", h.packet),
                Style::new().fg(DIM),
            ));
            last_packet = Some(&h.packet);
        }
    }
}

/// The Trace tab: the last flow traced from a selection (`t`), like a packet tracer,
/// and its live probe beside it.
pub(super) fn trace_tab(app: &App) -> Vec<Line<'static>> {
    let Some(tv) = &app.trace else {
        return vec![
            Line::raw("Press t on a container or netns and type where to: a container, a netns, an IP,"),
            Line::raw("host or external, then tcp PORT, udp PORT or nothing for ICMP (web2 tcp 80)."),
            Line::raw("T picks the destination from a list. The flow engine walks routing, the bridge"),
            Line::raw("and every netfilter hook; x then sends the same flow as real packets."),
        ];
    };
    let t = &tv.trace;
    let f = &t.flow;
    let ports = match (f.sport, f.dport) {
        (Some(s), Some(d)) => format!("{} {}:{s} > {}:{d}", f.proto, f.src_addr, f.dst_addr),
        _ => format!("{} {} > {}", f.proto, f.src_addr, f.dst_addr),
    };
    let (vs, vw) = reach_style(t.verdict);
    let live = match &tv.probe {
        ProbeState::NotRun => match &tv.probe_request {
            Ok(_) => Span::styled("not run (x sends it)", Style::new().fg(DIM)),
            Err(why) => Span::styled(format!("cannot run: {why}"), Style::new().fg(DIM)),
        },
        ProbeState::Running => Span::styled("running…", Style::new().fg(WARN)),
        ProbeState::Done(r) => {
            let (st, w) = status_style(r.verdict);
            Span::styled(w.to_uppercase(), st)
        }
        ProbeState::Failed(e) => Span::styled(format!("could not run: {e}"), Style::new().fg(WARN)),
    };
    let mut out = vec![
        Line::from(vec![
            Span::raw(format!("{} → {}  ", f.src, tv.to)),
            Span::raw("static: "),
            Span::styled(vw, vs),
            Span::raw("  live: "),
            live,
        ]),
        Line::raw(format!("  {ports}")),
        Line::styled(format!("  {}", t.summary), vs.remove_modifier(Modifier::BOLD)),
    ];
    if let ProbeState::Done(r) = &tv.probe {
        out.push(Line::styled(
            "live probe:",
            Style::new().add_modifier(Modifier::BOLD),
        ));
        for fd in &r.checks {
            let (st, word) = status_style(fd.status);
            out.push(Line::from(vec![
                Span::styled(format!("  {word:<4} "), st),
                Span::styled(format!("{} ", fd.id), Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(fd.summary.clone()),
            ]));
            for e in &fd.evidence {
                out.push(Line::raw(format!("       · {e}")));
            }
        }
    }
    hop_lines(&mut out, "first packet:", &t.hops);
    hop_lines(&mut out, "reply:", &t.reply);
    let ends = |h: &[ctnet_core::flow::Hop]| h.last().map(|h| h.verdict);
    if ends(&t.established) != ends(&t.hops) {
        hop_lines(&mut out, "handshake ACK (established):", &t.established);
    }
    if !t.assumptions.is_empty() {
        out.push(Line::styled(
            "assumed:",
            Style::new().add_modifier(Modifier::BOLD),
        ));
        for a in &t.assumptions {
            out.push(Line::raw(format!("  - {a}")));
        }
    }
    if let Ok(r) = &tv.probe_request {
        out.push(Line::styled(
            format!("$ {}", r.command),
            Style::new().fg(Color::Cyan),
        ));
    }
    out
}
