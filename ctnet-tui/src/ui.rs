//! Drawing: a pure function of [`App`] onto a ratatui frame.
//!
//! ```text
//! ┌ banner (missing privilege, partial scan) ──────────────────────────┐
//! ┌ Topology ──────────────┐┌ Link │ FDB │ ARP │ Routes │ Firewall │ Checks ┐
//! │▾ ● demo-br 10.77.0.1/24││ demo-v1 (host) veth UP mtu 1500 …       │
//! │  ● demo-v1 → demo-c1 … ││   rx 2 pps 1.6 kbit/s ▁▂▃                │
//! └────────────────────────┘└─────────────────────────────────────────┘
//! ┌ Capture: demo-v1, eth0@demo-c1 · filter icmp · 12 seen ───────────┐
//! │21:30:01.123456 demo-v1 in 02:… > 02:…, ethertype IPv4 …            │
//! └────────────────────────────────────────────────────────────────────┘
//!  message or counts                                    key hints
//! ```

use ctnet_core::check::Status;
use ctnet_core::flow::{HopVerdict, Reach};
use ctnet_core::model::{Link, NetnsState, Snapshot};
use ctnet_core::netns::NetnsKey;
use ctnet_core::topology::{Peer, Topology};
use ctnet_core::vocab::{LinkKind, OperState};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Tabs, Wrap};

use crate::app::{App, Focus, Mode, PickFor, ProbeState, PromptKind, Tab, ipt_rule_key, nft_rule_key};
use crate::tree::{Badge, Item};

/// Every key, for `?`.
pub const KEYS: &[(&str, &str)] = &[
    ("q, Ctrl-C", "quit (the terminal is restored)"),
    ("?, m", "this help; every message of the session, whole"),
    (
        "Tab, Shift-Tab",
        "next / previous pane: topology, detail, capture",
    ),
    ("↑ ↓, j k", "move in the focused pane (scrolls detail, capture)"),
    ("PgUp PgDn, g G", "a screen up / down; first / last (Home End)"),
    (
        "f, n N",
        "find a name, IP, MAC, ifindex or netns; next / previous",
    ),
    ("!", "only what fails or warns (background checks), or all"),
    ("Enter, - +", "fold/unfold a bridge (a port: its Link tab); all"),
    ("← →, h l, 1-7", "tab: Link FDB ARP Routes Firewall Checks Trace"),
    ("p, P", "capture the selection (again: stop it); stop all"),
    ("/", "set the BPF filter (tcpdump syntax; empty clears it)"),
    ("w", "write the packets to a file (pcapng: which interface)"),
    ("c, C", "checks for the selection; pick a peer for the pair"),
    ("t T, x", "trace a flow from the selection: type / pick; probe it"),
    (
        "s, r, u",
        "save the snapshot (--from); refresh; undo a demo's fault",
    ),
    ("Esc", "close a prompt, picker, help or the messages"),
    ("in a prompt", "^A ^E ←→ move, ^U ^K ^W erase, ↑↓ earlier entries"),
];

const OK: Color = Color::Green;
const WARN: Color = Color::Yellow;
const BAD: Color = Color::Red;
const DIM: Color = Color::DarkGray;

/// A name from the kernel, a runtime, a file or the keyboard, as the screen shows it
/// (see `ctnet_core::text`).
fn esc(s: &str) -> String {
    ctnet_core::text::escape(s).into_owned()
}

/// Lines with every span escaped: they hold names whatever tab built them.
fn esc_lines(mut lines: Vec<Line<'_>>) -> Vec<Line<'_>> {
    for span in lines.iter_mut().flat_map(|l| l.spans.iter_mut()) {
        if let std::borrow::Cow::Owned(e) = ctnet_core::text::escape(&span.content) {
            span.content = e.into();
        }
    }
    lines
}

/// The last net under every escape above: a cell that still holds an unsafe
/// character is drawn as `?`, so nothing reaches the terminal raw.
fn scrub(f: &mut Frame) {
    for cell in f.buffer_mut().content.iter_mut() {
        if cell.symbol().contains(ctnet_core::text::is_unsafe) {
            cell.set_symbol("?");
        }
    }
}

/// Draw the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    draw_all(f, app);
    scrub(f);
}

fn draw_all(f: &mut Frame, app: &App) {
    let area = f.area();
    let banner_h = if app.banner.is_empty() || area.height < 12 {
        0
    } else {
        (app.banner.len() as u16 + 1).min(3)
    };
    let capture_h = match area.height {
        h if h >= 40 => 12,
        h if h >= 20 => 7,
        _ => 4,
    };
    let [banner, main, capture, status] = Layout::vertical([
        Constraint::Length(banner_h),
        Constraint::Min(3),
        Constraint::Length(capture_h),
        Constraint::Length(1),
    ])
    .areas(area);
    if banner_h > 0 {
        let text: Vec<Line> = app
            .banner
            .iter()
            .map(|b| Line::styled(format!("⚠ {}", esc(b)), Style::new().fg(Color::Black).bg(WARN)))
            .collect();
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), banner);
    }
    let tree_w = (area.width * 2 / 5).clamp(24, 60);
    let [left, right] = Layout::horizontal([Constraint::Length(tree_w), Constraint::Min(10)]).areas(main);
    draw_tree(f, app, left);
    draw_detail(f, app, right);
    draw_capture(f, app, capture);
    draw_status(f, app, status);
    if let Some(p) = &app.picker {
        let h = (p.choices.len() as u16 + 2)
            .min(area.height.saturating_sub(4))
            .max(3);
        let r = centered(area, 50.min(area.width), h);
        let items: Vec<ListItem> = p
            .choices
            .iter()
            .map(|(_, name)| ListItem::new(esc(name)))
            .collect();
        let mut st = ListState::default().with_selected(Some(p.index));
        f.render_widget(Clear, r);
        f.render_stateful_widget(
            List::new(items)
                .block(Block::bordered().title(match p.purpose {
                    PickFor::Peer => " Peer for the pair checks (Enter, Esc) ",
                    PickFor::TraceTo => " Trace to (Enter, then a protocol; Esc) ",
                }))
                .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
            r,
            &mut st,
        );
    }
    if app.show_log {
        draw_log(f, app, area);
    }
    if app.help {
        let h = (KEYS.len() as u16 + 5).min(area.height);
        let r = centered(area, 92.min(area.width), h);
        let mut lines: Vec<Line> = KEYS
            .iter()
            .map(|(k, what)| {
                Line::from(vec![
                    Span::styled(format!("{k:>20}  "), Style::new().add_modifier(Modifier::BOLD)),
                    Span::raw(*what),
                ])
            })
            .collect();
        lines.push(Line::styled(
            "Badges: ● green up/forwarding, yellow something off, red down/unresolved",
            Style::new().fg(DIM),
        ));
        lines.push(Line::styled(
            "+N after an address: N more addresses (the Link tab lists them); … a cut value",
            Style::new().fg(DIM),
        ));
        f.render_widget(Clear, r);
        f.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Keys ")), r);
    }
}

/// The session's messages, whole and wrapped, the newest at the bottom.
fn draw_log(f: &mut Frame, app: &App, area: Rect) {
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

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    Rect {
        x: area.x + area.width.saturating_sub(w) / 2,
        y: area.y + area.height.saturating_sub(h) / 2,
        width: w.min(area.width),
        height: h.min(area.height),
    }
}

fn pane(title: String, focused: bool) -> Block<'static> {
    let b = Block::new().borders(Borders::ALL).title(title);
    if focused {
        b.border_style(Style::new().fg(Color::Cyan))
    } else {
        b
    }
}

fn badge_color(b: Badge) -> Color {
    match b {
        Badge::Ok => OK,
        Badge::Warn => WARN,
        Badge::Bad => BAD,
        Badge::None => DIM,
    }
}

fn draw_tree(f: &mut Frame, app: &App, area: Rect) {
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

fn draw_detail(f: &mut Frame, app: &App, area: Rect) {
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

fn human_bits(bps: f64) -> String {
    match bps {
        b if b >= 1e9 => format!("{:.1} Gbit/s", b / 1e9),
        b if b >= 1e6 => format!("{:.1} Mbit/s", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kbit/s", b / 1e3),
        b => format!("{b:.0} bit/s"),
    }
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// A sparkline as text, scaled to the largest sample.
pub fn spark(samples: impl Iterator<Item = u64> + Clone, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let v: Vec<u64> = samples.collect();
    let v = &v[v.len().saturating_sub(width)..];
    let max = v.iter().copied().max().unwrap_or(0);
    v.iter()
        .map(|&x| {
            if max == 0 {
                BARS[0]
            } else {
                BARS[((x as f64 / max as f64) * 7.0).round() as usize]
            }
        })
        .collect()
}

/// The netns the selection's tables come from: a port's or netns's own, else the host.
fn table_netns<'a>(app: &App, snap: &'a Snapshot) -> Option<&'a NetnsState> {
    app.selected_netns()
        .and_then(|k| snap.netns_by_key(k))
        .or_else(|| snap.host_netns())
}

fn ns_name(topo: &Topology, snap: &Snapshot, key: NetnsKey) -> String {
    if key == snap.host {
        return "host".into();
    }
    topo.netns
        .iter()
        .find(|n| n.key == key)
        .map_or_else(|| format!("netns {}", key.ino), crate::tree::netns_name)
}

fn link_block(app: &App, topo: &Topology, snap: &Snapshot, ns: &NetnsState, l: &Link) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let up = l.is_up();
    let state_style = Style::new().fg(if up && l.operstate != OperState::Down {
        OK
    } else {
        BAD
    });
    out.push(Line::from(vec![
        Span::styled(l.name.clone(), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(" ({}) ", ns_name(topo, snap, ns.key))),
        Span::raw(format!("{} ", l.kind.as_ref().map_or("device", LinkKind::as_str))),
        Span::styled(
            format!(
                "{}{}",
                if up { "UP" } else { "DOWN" },
                if l.operstate != OperState::Up {
                    format!("/{}", l.operstate)
                } else {
                    String::new()
                }
            ),
            state_style,
        ),
        Span::raw(format!(
            " mtu {} {} if{}",
            l.mtu.map_or("?".into(), |m| m.to_string()),
            l.mac.as_deref().unwrap_or("-"),
            l.ifindex
        )),
    ]));
    let mut rel = Vec::new();
    if let Some(m) = l.master.and_then(|m| ns.link(m)) {
        rel.push(format!("master {}", m.name));
    }
    if let Some(p) = &l.port {
        rel.push(format!(
            "port {}{}",
            p.state,
            if p.learning { "" } else { ", learning OFF" }
        ));
    }
    let mut brnf = None;
    if let Some(b) = &l.bridge {
        rel.push(format!(
            "stp {} ageing {}s nf_call_iptables {}",
            if b.stp_state == 0 { "off" } else { "on" },
            b.ageing_time_cs / 100,
            if b.nf_call_iptables { "on" } else { "off" }
        ));
        // br_netfilter hands bridged IPv4 to iptables when the global sysctl or the
        // bridge's own option is on: either is enough.
        brnf = Some(match ns.sysctls.bridge_nf_call_iptables {
            None => "br_netfilter not loaded: bridged frames skip iptables".to_string(),
            Some(g) if g != 0 || b.nf_call_iptables => format!(
                "bridged IPv4 goes through iptables (bridge-nf-call-iptables={g}, bridge {}: either is enough)",
                if b.nf_call_iptables { "on" } else { "off" }
            ),
            Some(g) => {
                format!("bridged IPv4 skips iptables (bridge-nf-call-iptables={g} and the bridge's off)")
            }
        });
    }
    if l.kind == Some(LinkKind::Veth) {
        let peer = if ns.key == snap.host {
            topo.veths
                .iter()
                .find(|v| v.host.ifindex == l.ifindex)
                .map(|v| &v.peer)
        } else {
            topo.netns
                .iter()
                .find(|n| n.key == ns.key)
                .and_then(|n| n.ifaces.iter().find(|i| i.iface.ifindex == l.ifindex))
                .and_then(|i| i.peer.as_ref())
        };
        match peer {
            Some(Peer::Resolved { iface, confirmed, .. }) => rel.push(format!(
                "peer {}@{} (if{}){}",
                iface.name,
                ns_name(topo, snap, iface.netns),
                iface.ifindex,
                if *confirmed { "" } else { ", not confirmed" }
            )),
            Some(p) => rel.push(format!("peer {}", crate::tree::peer_text(p))),
            None => {}
        }
    }
    let ips = ns.addrs_of(l.ifindex);
    if !ips.is_empty() {
        rel.push(ips.join(" "));
    }
    if !rel.is_empty() {
        out.push(Line::raw(format!("  {}", rel.join("; "))));
    }
    if let Some(b) = brnf {
        out.push(Line::raw(format!("  {b}")));
    }
    if let Some(r) = app.rates.get(&(ns.key, l.name.clone())) {
        out.push(Line::from(vec![
            Span::raw(format!(
                "  rx {:.1} pps {}  tx {:.1} pps {}  ",
                r.rx_pps,
                human_bits(r.rx_bps),
                r.tx_pps,
                human_bits(r.tx_bps)
            )),
            Span::styled(spark(r.history.iter().copied(), 24), Style::new().fg(Color::Cyan)),
        ]));
    } else if l.stats.is_some() {
        out.push(Line::styled(
            match app.mode {
                Mode::Offline(_) => "  no rate: a file holds one moment (counters below)",
                Mode::Live => "  rate: from the next scan on",
            },
            Style::new().fg(DIM),
        ));
    }
    if let Some(s) = &l.stats {
        let drops = s.rx_dropped + s.tx_dropped + s.rx_errors + s.tx_errors;
        out.push(Line::styled(
            format!(
                "  rx {} pkts {} err {} drop {} │ tx {} pkts {} err {} drop {}",
                s.rx_packets,
                human_bytes(s.rx_bytes),
                s.rx_errors,
                s.rx_dropped,
                s.tx_packets,
                human_bytes(s.tx_bytes),
                s.tx_errors,
                s.tx_dropped
            ),
            if drops > 0 {
                Style::new().fg(WARN)
            } else {
                Style::new()
            },
        ));
    }
    if let Some(e) = &l.ethtool {
        let nonzero: Vec<String> = e
            .counters
            .iter()
            .filter(|(k, v)| **v > 0 && k.contains("drop"))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !nonzero.is_empty() {
            out.push(Line::styled(
                format!("  ethtool -S: {}", nonzero.join(", ")),
                Style::new().fg(WARN),
            ));
        }
    }
    out.push(Line::styled(
        format!("  flags {}", l.flags.join(",")),
        Style::new().fg(DIM),
    ));
    out
}

fn link_tab(app: &App, snap: &Snapshot, topo: &Topology) -> Vec<Line<'static>> {
    let Some(host) = snap.host_netns() else {
        return vec![Line::raw("the snapshot has no host netns")];
    };
    let mut pairs: Vec<(&NetnsState, &Link)> = Vec::new();
    match app.selected_item() {
        Some(Item::Bridge(b)) | Some(Item::HostVeth(b)) => {
            if let Some(l) = host.link_by_name(b) {
                pairs.push((host, l));
            }
        }
        Some(Item::Port { port, netns, .. }) => {
            if let Some(l) = host.link_by_name(port) {
                pairs.push((host, l));
                if let (Some(k), Some(idx)) = (netns, l.link)
                    && let Some(ns) = snap.netns_by_key(*k)
                    && let Some(p) = ns.link(idx)
                {
                    pairs.push((ns, p));
                }
            }
        }
        Some(Item::Netns(k)) => {
            if let Some(ns) = snap.netns_by_key(*k) {
                if let Some(err) = &ns.read_error {
                    return vec![Line::styled(
                        format!("this netns could not be read: {err}"),
                        Style::new().fg(WARN),
                    )];
                }
                if *k == snap.host {
                    return vec![Line::raw(
                        "Host-network containers use the host's own interfaces: select a bridge or veth.",
                    )];
                }
                for l in ns.links.iter().filter(|l| l.name != "lo") {
                    pairs.push((ns, l));
                    if l.link_netnsid.is_some()
                        && let Some(v) = topo.veths.iter().find(|v| {
                            matches!(&v.peer, Peer::Resolved { iface, .. } if iface.netns == *k && iface.ifindex == l.ifindex)
                        })
                        && let Some(h) = host.link(v.host.ifindex)
                    {
                        pairs.push((host, h));
                    }
                }
                if pairs.is_empty() {
                    return vec![Line::raw("only lo: this netns has no network (--network none)")];
                }
            }
        }
        Some(Item::Heading(_)) | None => {
            return vec![
                Line::raw(format!("host {} · kernel {}", snap.hostname, snap.kernel)),
                Line::raw(format!(
                    "{} bridge(s), {} veth(s), {} other netns, {} container(s)",
                    topo.bridges.len(),
                    topo.veths.len(),
                    topo.netns.len(),
                    snap.containers.len()
                )),
                Line::raw("Select a bridge, port or netns for its links."),
            ];
        }
    }
    let mut out = Vec::new();
    for (ns, l) in pairs {
        out.extend(link_block(app, topo, snap, ns, l));
    }
    out
}

fn bridge_of(app: &App, topo: &Topology) -> Option<String> {
    match app.selected_item()? {
        Item::Bridge(b) => Some(b.clone()),
        Item::Port { bridge, .. } => Some(bridge.clone()),
        Item::Netns(k) => topo
            .netns
            .iter()
            .find(|n| n.key == *k)
            .and_then(|n| n.ifaces.iter().find_map(|i| i.bridge.clone())),
        Item::HostVeth(_) | Item::Heading(_) => None,
    }
}

fn fdb_tab(app: &App, snap: &Snapshot, topo: &Topology) -> Vec<Line<'static>> {
    let Some(name) = bridge_of(app, topo) else {
        return vec![Line::raw(
            "Select a bridge, or a port or container on one, for its FDB.",
        )];
    };
    let Some(b) = topo.bridges.iter().find(|b| b.iface.name == name) else {
        return vec![Line::raw(format!("bridge {name} is gone"))];
    };
    let host = snap.host_netns();
    // One lookup per port, not per entry: a bridge with hundreds of ports has
    // thousands of entries.
    let names: std::collections::HashMap<u32, &str> = host
        .map(|h| h.links.iter().map(|l| (l.ifindex, l.name.as_str())).collect())
        .unwrap_or_default();
    let port_name = |i: u32| names.get(&i).map_or(format!("if{i}"), |n| n.to_string());
    let highlight: Option<String> = match app.selected_item() {
        Some(Item::Port { port, .. }) => Some(port.clone()),
        _ => None,
    };
    let mut out = vec![
        Line::styled(
            format!(
                "{name}: {} entries, ageing {}s  (brctl showmacs {name}; bridge fdb show br {name})",
                b.fdb.len(),
                b.ageing_time_cs / 100
            ),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Line::styled(
            format!(
                "{:<16} {:<18} {:<6} {:<7} {}",
                "port", "mac addr", "local", "static", "age"
            ),
            Style::new().fg(DIM),
        ),
    ];
    let entries: Vec<_> = b.fdb.iter().collect();
    let mut entries: Vec<_> = entries.into_iter().map(|e| (port_name(e.ifindex), e)).collect();
    entries.sort_by_cached_key(|(port, e)| (ctnet_core::text::natural_key(port), e.mac.clone()));
    for (port, e) in entries {
        let style = if highlight.as_deref() == Some(port.as_str()) {
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        out.push(Line::styled(
            format!(
                "{:<16} {:<18} {:<6} {:<7} {}",
                port,
                e.mac,
                if e.is_local { "yes" } else { "no" },
                if e.is_static { "yes" } else { "no" },
                e.age_s.map_or("-".into(), |a| format!("{a:.2}"))
            ),
            style,
        ));
    }
    out
}

fn arp_tab(app: &App, snap: &Snapshot) -> Vec<Line<'static>> {
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

fn routes_tab(app: &App, snap: &Snapshot) -> Vec<Line<'static>> {
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

fn firewall_tab(app: &App, snap: &Snapshot) -> Vec<Line<'static>> {
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

fn hop_word(v: HopVerdict) -> (&'static str, Style) {
    match v {
        HopVerdict::Allow => ("ALLOW", Style::new().fg(OK)),
        HopVerdict::Nat => ("NAT", Style::new().fg(Color::Cyan)),
        HopVerdict::Drop => ("DROP", Style::new().fg(BAD).add_modifier(Modifier::BOLD)),
        HopVerdict::Reject => ("REJECT", Style::new().fg(BAD).add_modifier(Modifier::BOLD)),
        HopVerdict::May => ("MAY", Style::new().fg(WARN).add_modifier(Modifier::BOLD)),
        HopVerdict::Deliver => ("DELIVER", Style::new().fg(OK).add_modifier(Modifier::BOLD)),
    }
}

fn reach_style(r: Reach) -> (Style, &'static str) {
    match r {
        Reach::Reachable => (Style::new().fg(OK).add_modifier(Modifier::BOLD), "REACHABLE"),
        Reach::Unreachable => (Style::new().fg(BAD).add_modifier(Modifier::BOLD), "UNREACHABLE"),
        Reach::Ambiguous => (Style::new().fg(WARN).add_modifier(Modifier::BOLD), "AMBIGUOUS"),
    }
}

fn hop_lines(out: &mut Vec<Line<'static>>, title: &str, hops: &[ctnet_core::flow::Hop]) {
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
fn trace_tab(app: &App) -> Vec<Line<'static>> {
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

fn status_style(s: Status) -> (Style, &'static str) {
    match s {
        Status::Fail => (Style::new().fg(BAD).add_modifier(Modifier::BOLD), "FAIL"),
        Status::Warn => (Style::new().fg(WARN).add_modifier(Modifier::BOLD), "WARN"),
        Status::Pass => (Style::new().fg(OK), "pass"),
        Status::Skip => (Style::new().fg(DIM), "skip"),
    }
}

fn checks_tab(app: &App) -> Vec<Line<'static>> {
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

fn draw_capture(f: &mut Frame, app: &App, area: Rect) {
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

fn draw_status(f: &mut Frame, app: &App, area: Rect) {
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
