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

use crate::app::{
    App, Focus, KEYMAP, Mode, PickFor, ProbeState, PromptKind, Tab, ipt_rule_key, nft_rule_key,
};
use crate::tree::{Badge, Item};

const OK: Color = Color::Green;
const WARN: Color = Color::Yellow;
const BAD: Color = Color::Red;
const DIM: Color = Color::DarkGray;

mod arp;
mod capture;
mod checks;
mod detail;
mod fdb;
mod firewall;
mod link;
mod overlay;
mod routes;
mod status;
mod topology;
mod trace;

use arp::*;
pub use capture::compact;
use capture::*;
use checks::*;
use detail::*;
use fdb::*;
use firewall::*;
use link::*;
use overlay::*;
use routes::*;
pub use status::status_hints;
use status::*;
pub use topology::fit;
use topology::*;
use trace::*;

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
        let h = (KEYMAP.len() as u16 + 5).min(area.height);
        let r = centered(area, 92.min(area.width), h);
        // Written from the key map itself.
        let mut lines: Vec<Line> = KEYMAP
            .iter()
            .map(|b| {
                Line::from(vec![
                    Span::styled(
                        format!("{:>20}  ", b.shown),
                        Style::new().add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(b.what),
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
