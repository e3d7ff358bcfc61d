//! Dashboard state and what changes it: [`Event`]s from the world, [`Action`]s from
//! keys, and [`Effect`]s asked of the runner. Nothing here does I/O, so every path is
//! testable without a terminal.

use ctnet_core::vocab::SourceState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ctnet_core::check::{self, Report};
use ctnet_core::model::{Snapshot, Stats};
use ctnet_core::netns::NetnsKey;
use ctnet_core::target::{Resolved, TargetKind};
use ctnet_core::topology::{Peer, Topology};

use crate::tree::{self, Item, Row};

/// What `t` and `T` say without a selection to trace from.
const TRACE_FROM: &str = "select a container or netns to trace from (a port row or a netns row), then t";

/// How to write a trace's destination.
pub const TRACE_HELP: &str = "trace to: a container, a netns, an IP, host or external, then tcp PORT, udp PORT or nothing for ICMP (web2 tcp 80)";

/// The status line while a refresh is asked for.
const SCANNING: &str = "scanning…";

/// Packets the capture pane keeps (the oldest go first).
pub const PANE_PACKETS: usize = 2000;
/// Samples of rate history kept per interface (sparklines).
pub const HISTORY: usize = 60;

/// Input from the world.
#[derive(Debug)]
pub enum Event {
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal was resized.
    Resize,
    /// A fresh snapshot, and how long the scan took.
    Snapshot(Box<Snapshot>, u64),
    /// A scan of the host netns and firewall only, between full scans.
    HostUpdate(Box<Snapshot>, u64),
    /// A scan failed.
    ScanFailed(String),
    /// Captured packets, decoded.
    Packets(Vec<Packet>),
    /// Packets the pane could not take in time (the UI was busy): counted, not shown.
    PacketsLost(u64),
    /// Capture sessions started on these labels.
    CaptureStarted(Vec<String>),
    /// Starting or running a capture failed.
    CaptureFailed(String),
    /// Capture sessions ended, with one line of statistics each.
    CaptureEnded(Vec<String>),
    /// A capture was stopped to start another: its sessions' statistics.
    CaptureReplaced(Vec<String>),
    /// Some sessions of the capture ended on their own (their interface went away):
    /// their labels, and why.
    CaptureSessionsEnded(Vec<String>, String),
    /// Something the runner wants to say (file written, error).
    Message(String),
    /// A quit signal (SIGTERM, SIGHUP, SIGINT) arrived.
    Signal(String),
    /// Time passed (ages, spinners).
    Tick,
    /// A scan made ready off the UI thread: the snapshot (a host-only scan already
    /// merged into the last full one) with its topology built.
    Scanned(Box<Scanned>),
    /// The light checks of every container after a full scan (see [`health_of`]), and
    /// how long they took in ms.
    Health(HashMap<NetnsKey, Report>, u64),
    /// The active fault was undone (what was restored), or could not be.
    FaultUndone(std::result::Result<String, String>),
    /// The live probe of the traced flow ended: its findings (the path, and whether
    /// it agrees with the static trace), or why it could not run.
    ProbeDone(Box<std::result::Result<Report, String>>),
}

/// A scan as the poller hands it over: nothing left to build on the UI thread.
#[derive(Debug)]
pub struct Scanned {
    /// A full scan: the whole host; a host-only scan: the host netns and firewall
    /// alone, which the app merges into the snapshot it has (no copy of the rest).
    pub snap: Snapshot,
    /// The join of the whole host as of this scan (the poller merged it too).
    pub topo: Topology,
    /// A full scan (every netns read), or a host-only one.
    pub full: bool,
    /// How long the scan took, ms.
    pub ms: u64,
    /// The time between scans now in effect (`--interval`, or longer on a large host:
    /// see `run::light_every`).
    pub every: std::time::Duration,
}

/// The light checks (those needing no probe: pure over the snapshot) of every
/// container and container-like netns, keyed by netns: what the dashboard runs off the
/// UI thread after each full scan, so badges show failures before anyone presses `c`.
pub fn health_of(snap: &Snapshot) -> HashMap<NetnsKey, Report> {
    let topo = Topology::build(snap);
    // The snapshot is made ready for the flow engine once, not once per container.
    let runner = check::Runner::new(snap, &topo);
    ctnet_core::target::containers(snap, &topo)
        .into_iter()
        .filter_map(|t| {
            let key = t.netns?;
            Some((key, runner.run(&t, None)))
        })
        .collect()
}

/// Failing and warning findings of a report.
pub fn tally(r: &Report) -> (usize, usize) {
    let n = |s| r.checks.iter().filter(|f| f.status == s).count();
    (n(check::Status::Fail), n(check::Status::Warn))
}

/// One decoded packet for the capture pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Capture time, Unix microseconds.
    pub ts_us: i64,
    /// Length on the wire.
    pub len: u32,
    /// The bytes kept.
    pub data: Vec<u8>,
    /// The interface it was seen on, as the capture labels it (`eth0@web1`).
    pub iface: String,
    /// `HH:MM:SS.us label dir summary`, like `ctnet-diag capture`.
    pub line: String,
}

/// One row of the key map: what `?` shows (the keys as written, what they do) and
/// the action of each key. The dashboard's keys and its help are both read from
/// [`KEYMAP`], so the help cannot drift from what the keys do.
pub struct Binding {
    /// The keys as the help writes them.
    pub shown: &'static str,
    /// What they do.
    pub what: &'static str,
    /// Each key and its action (outside prompts, pickers and overlays).
    pub keys: &'static [(KeyCode, Action)],
}

/// Every key of the dashboard, in the order `?` lists them.
pub const KEYMAP: &[Binding] = &[
    Binding {
        shown: "q, Ctrl-C",
        what: "quit (the terminal is restored)",
        keys: &[(KeyCode::Char('q'), Action::Quit)],
    },
    Binding {
        shown: "?, m",
        what: "this help; every message of the session, whole",
        keys: &[
            (KeyCode::Char('?'), Action::ToggleHelp),
            (KeyCode::Char('m'), Action::ShowLog),
        ],
    },
    Binding {
        shown: "Tab, Shift-Tab",
        what: "next / previous pane: topology, detail, capture",
        keys: &[
            (KeyCode::Tab, Action::FocusNext),
            (KeyCode::BackTab, Action::FocusPrev),
        ],
    },
    Binding {
        shown: "↑ ↓, j k",
        what: "move in the focused pane (scrolls detail, capture)",
        keys: &[
            (KeyCode::Up, Action::Up),
            (KeyCode::Char('k'), Action::Up),
            (KeyCode::Down, Action::Down),
            (KeyCode::Char('j'), Action::Down),
        ],
    },
    Binding {
        shown: "PgUp PgDn, g G",
        what: "a screen up / down; first / last (Home End)",
        keys: &[
            (KeyCode::PageUp, Action::PageUp),
            (KeyCode::PageDown, Action::PageDown),
            (KeyCode::Home, Action::First),
            (KeyCode::Char('g'), Action::First),
            (KeyCode::End, Action::Last),
            (KeyCode::Char('G'), Action::Last),
        ],
    },
    Binding {
        shown: "f, n N",
        what: "find a name, IP, MAC, ifindex or netns; next / previous",
        keys: &[
            (KeyCode::Char('f'), Action::Find),
            (KeyCode::Char('n'), Action::FindNext),
            (KeyCode::Char('N'), Action::FindPrev),
        ],
    },
    Binding {
        shown: "!",
        what: "only what fails or warns (background checks), or all",
        keys: &[(KeyCode::Char('!'), Action::ToggleProblems)],
    },
    Binding {
        shown: "Enter, - +",
        what: "fold/unfold a bridge (a port: its Link tab); all",
        keys: &[
            (KeyCode::Enter, Action::Enter),
            (KeyCode::Char('-'), Action::FoldAll),
            (KeyCode::Char('+'), Action::UnfoldAll),
            (KeyCode::Char('='), Action::UnfoldAll),
        ],
    },
    Binding {
        shown: "← →, h l, 1-7",
        what: "tab: Link FDB ARP Routes Firewall Checks Trace",
        keys: &[
            (KeyCode::Right, Action::NextTab),
            (KeyCode::Char('l'), Action::NextTab),
            (KeyCode::Char(']'), Action::NextTab),
            (KeyCode::Left, Action::PrevTab),
            (KeyCode::Char('h'), Action::PrevTab),
            (KeyCode::Char('['), Action::PrevTab),
            (KeyCode::Char('1'), Action::ShowTab(Tab::ALL[0])),
            (KeyCode::Char('2'), Action::ShowTab(Tab::ALL[1])),
            (KeyCode::Char('3'), Action::ShowTab(Tab::ALL[2])),
            (KeyCode::Char('4'), Action::ShowTab(Tab::ALL[3])),
            (KeyCode::Char('5'), Action::ShowTab(Tab::ALL[4])),
            (KeyCode::Char('6'), Action::ShowTab(Tab::ALL[5])),
            (KeyCode::Char('7'), Action::ShowTab(Tab::ALL[6])),
        ],
    },
    Binding {
        shown: "p, P",
        what: "capture the selection (again: stop it); stop all",
        keys: &[
            (KeyCode::Char('p'), Action::ToggleCapture),
            (KeyCode::Char('P'), Action::StopCapture),
        ],
    },
    Binding {
        shown: "/",
        what: "set the BPF filter (tcpdump syntax; empty clears it)",
        keys: &[(KeyCode::Char('/'), Action::EditFilter)],
    },
    Binding {
        shown: "w",
        what: "write the packets to a file (pcapng: which interface)",
        keys: &[(KeyCode::Char('w'), Action::WritePcap)],
    },
    Binding {
        shown: "c, C",
        what: "checks for the selection; pick a peer for the pair",
        keys: &[
            (KeyCode::Char('c'), Action::RunChecks),
            (KeyCode::Char('C'), Action::PickPeer),
        ],
    },
    Binding {
        shown: "t T, x",
        what: "trace a flow from the selection: type / pick; probe it",
        keys: &[
            (KeyCode::Char('t'), Action::Trace),
            (KeyCode::Char('T'), Action::PickTraceTo),
            (KeyCode::Char('x'), Action::Probe),
        ],
    },
    Binding {
        shown: "s, r, u",
        what: "save the snapshot (--from); refresh; undo a demo's fault",
        keys: &[
            (KeyCode::Char('s'), Action::SaveSnapshot),
            (KeyCode::Char('r'), Action::Refresh),
            (KeyCode::Char('u'), Action::UndoFault),
        ],
    },
    Binding {
        shown: "Esc",
        what: "close a prompt, picker, help or the messages",
        keys: &[(KeyCode::Esc, Action::Cancel)],
    },
    Binding {
        shown: "in a prompt",
        what: "^A ^E ←→ move, ^U ^K ^W erase, ↑↓ earlier entries",
        keys: &[],
    },
];

/// Intent, from a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Leave.
    Quit,
    /// Show or hide the key help.
    ToggleHelp,
    /// Next pane.
    FocusNext,
    /// Previous pane.
    FocusPrev,
    /// Move up in the focused pane.
    Up,
    /// Move down in the focused pane.
    Down,
    /// A page up.
    PageUp,
    /// A page down.
    PageDown,
    /// The first row (the oldest packet in the capture pane).
    First,
    /// The last row (the newest packet).
    Last,
    /// Fold every bridge and heading.
    FoldAll,
    /// Unfold everything.
    UnfoldAll,
    /// Ask what to find (name, IP, MAC, ifindex, netns).
    Find,
    /// The next row matching the last find.
    FindNext,
    /// The previous row matching it.
    FindPrev,
    /// Show every message of this session.
    ShowLog,
    /// Show only rows with warnings or failures, or everything again.
    ToggleProblems,
    /// Undo the fault the demo broke.
    UndoFault,
    /// Fold or unfold the selected bridge; on anything else, show its Link tab.
    Enter,
    /// Next detail tab.
    NextTab,
    /// Previous detail tab.
    PrevTab,
    /// This detail tab.
    ShowTab(Tab),
    /// Add the selection to the capture, or take it out when it is already in.
    ToggleCapture,
    /// Stop every capture.
    StopCapture,
    /// Ask for a BPF filter.
    EditFilter,
    /// Ask where to write the captured packets.
    WritePcap,
    /// Run the guided checks for the selection.
    RunChecks,
    /// Trace a flow from the selection to a destination typed in a prompt.
    Trace,
    /// Trace a flow from the selection to a container picked from a list.
    PickTraceTo,
    /// Send the traced flow as real packets.
    Probe,
    /// Pick a peer, then run the pair checks.
    PickPeer,
    /// Ask where to save the snapshot.
    SaveSnapshot,
    /// Scan now.
    Refresh,
    /// A character typed into a prompt.
    Type(char),
    /// Erase in a prompt.
    Backspace,
    /// Any other edit in a prompt (cursor, kill, history).
    Edit(Edit),
    /// Confirm a prompt or a pick.
    Submit,
    /// Close a prompt, a pick or the help.
    Cancel,
}

/// What the runner must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Scan now.
    Refresh,
    /// Stop any capture and start one on these endpoints.
    StartCapture {
        /// Where.
        endpoints: Vec<CaptureSpec>,
        /// BPF filter.
        filter: Option<String>,
    },
    /// Stop the capture.
    StopCapture,
    /// Write the pane's packets to a pcap file.
    WritePcap(PathBuf),
    /// Save the snapshot as JSON.
    SaveSnapshot(PathBuf),
    /// Undo the active fault.
    UndoFault,
    /// Send the traced flow as real packets (off the UI thread), on this host as the
    /// dashboard last read it.
    Probe(Box<ProbeRequest>, Box<Snapshot>),
}

/// What the live probe of a traced flow needs (the runner has the snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    /// Where the packets start.
    pub from: Resolved,
    /// Where they go.
    pub to: ProbeTo,
    /// ICMP, a TCP port or a UDP port.
    pub flow: ctnet_core::probe::Flow,
    /// The static trace, to compare with.
    pub trace: ctnet_core::flow::Trace,
    /// The command that traces it from a shell.
    pub command: String,
}

/// Where a probe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTo {
    /// A container or netns.
    Peer(Box<Resolved>),
    /// An IPv4 address.
    Addr(std::net::Ipv4Addr),
    /// The source's gateway (the host).
    Gateway,
}

/// A flow traced from the selection (`t`) and its live probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceView {
    /// Where it starts.
    pub from: NetnsKey,
    /// What was typed for the destination (`web2 tcp 80`).
    pub to: String,
    /// The flow.
    pub spec: ctnet_core::flow::FlowSpec,
    /// The static walk on the snapshot.
    pub trace: ctnet_core::flow::Trace,
    /// What the probe needs, or why the flow cannot be probed.
    pub probe_request: std::result::Result<ProbeRequest, String>,
    /// The live probe.
    pub probe: ProbeState,
}

/// Where the live probe of a trace is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeState {
    /// Not asked for (`x` runs it).
    NotRun,
    /// Packets are on their way.
    Running,
    /// Its findings.
    Done(Report),
    /// Why it could not run.
    Failed(String),
}

/// What a picker's choice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickFor {
    /// The peer of the pair checks (`C`).
    Peer,
    /// The destination of a trace (`T`).
    TraceTo,
}

/// An address outside every lab and container network (TEST-NET-3): `external` in the
/// trace prompt.
pub const EXTERNAL: std::net::Ipv4Addr = std::net::Ipv4Addr::new(203, 0, 113, 80);

/// Where a capture opens, from the plan in core (one for the CLI, the dashboard and
/// the probe).
pub type CaptureSpec = ctnet_core::capture::plan::Planned;

/// Which pane has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The topology tree.
    Tree,
    /// The detail tabs.
    Detail,
    /// The capture pane.
    Capture,
}

/// Detail tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Flags, MTU, peer, stats and rates.
    Link,
    /// The bridge's forwarding database.
    Fdb,
    /// Neighbours (ARP/NDP).
    Arp,
    /// Routes.
    Routes,
    /// Firewall rules with counters and rates.
    Firewall,
    /// Guided check findings.
    Checks,
    /// A flow traced from the selection: hops, verdicts, the deciding rule, the probe.
    Trace,
}

impl Tab {
    /// Every tab, in order.
    pub const ALL: [Tab; 7] = [
        Tab::Link,
        Tab::Fdb,
        Tab::Arp,
        Tab::Routes,
        Tab::Firewall,
        Tab::Checks,
        Tab::Trace,
    ];

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Link => "Link",
            Tab::Fdb => "FDB",
            Tab::Arp => "ARP",
            Tab::Routes => "Routes",
            Tab::Firewall => "Firewall",
            Tab::Checks => "Checks",
            Tab::Trace => "Trace",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// What a prompt asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// A BPF filter.
    Filter,
    /// Where to write a pcap file.
    PcapPath,
    /// Where to save the snapshot.
    SnapshotPath,
    /// What to find in the tree.
    Find,
    /// Where to trace a flow to from the selection.
    TraceTo,
}

/// A one-line text prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// What for.
    pub kind: PromptKind,
    /// Text so far.
    pub text: String,
    /// Where the cursor is, in characters from the start.
    pub cursor: usize,
    /// With Up/Down: the history entry shown (0 the newest), and the text typed before.
    pub recalled: Option<(usize, String)>,
}

impl Prompt {
    /// A prompt holding `text`, the cursor at its end.
    pub fn new(kind: PromptKind, text: String) -> Self {
        let cursor = text.chars().count();
        Self {
            kind,
            text,
            cursor,
            recalled: None,
        }
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    fn set(&mut self, text: String) {
        self.cursor = text.chars().count();
        self.text = text;
    }

    /// Apply a readline-style edit.
    pub fn edit(&mut self, e: Edit, history: &[String]) {
        let len = self.text.chars().count();
        match e {
            Edit::Insert(c) => {
                let at = self.byte_at(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
            }
            Edit::Backspace if self.cursor > 0 => {
                let at = self.byte_at(self.cursor - 1);
                self.text.remove(at);
                self.cursor -= 1;
            }
            Edit::Delete if self.cursor < len => {
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
            }
            Edit::Backspace | Edit::Delete => {}
            Edit::Left => self.cursor = self.cursor.saturating_sub(1),
            Edit::Right => self.cursor = (self.cursor + 1).min(len),
            Edit::Home => self.cursor = 0,
            Edit::End => self.cursor = len,
            Edit::KillToStart => {
                let at = self.byte_at(self.cursor);
                self.text.replace_range(..at, "");
                self.cursor = 0;
            }
            Edit::KillToEnd => {
                let at = self.byte_at(self.cursor);
                self.text.truncate(at);
            }
            Edit::KillWord => {
                // Back over spaces, then over the word before them (readline's Ctrl-W).
                let chars: Vec<char> = self.text.chars().collect();
                let mut from = self.cursor;
                while from > 0 && chars[from - 1].is_whitespace() {
                    from -= 1;
                }
                while from > 0 && !chars[from - 1].is_whitespace() {
                    from -= 1;
                }
                let (a, b) = (self.byte_at(from), self.byte_at(self.cursor));
                self.text.replace_range(a..b, "");
                self.cursor = from;
            }
            Edit::Older => {
                let next = self.recalled.as_ref().map_or(0, |(i, _)| i + 1);
                if next < history.len() {
                    let typed = match self.recalled.take() {
                        Some((_, typed)) => typed,
                        None => self.text.clone(),
                    };
                    self.set(history[history.len() - 1 - next].clone());
                    self.recalled = Some((next, typed));
                }
            }
            Edit::Newer => match self.recalled.take() {
                Some((0, typed)) => self.set(typed),
                Some((i, typed)) => {
                    self.set(history[history.len() - i].clone());
                    self.recalled = Some((i - 1, typed));
                }
                None => {}
            },
        }
    }
}

/// An edit in a prompt, as readline (and bash) bind them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// A character at the cursor.
    Insert(char),
    /// Backspace: the character before the cursor.
    Backspace,
    /// Delete, Ctrl-D: the character under the cursor.
    Delete,
    /// Left, Ctrl-B.
    Left,
    /// Right, Ctrl-F.
    Right,
    /// Home, Ctrl-A.
    Home,
    /// End, Ctrl-E.
    End,
    /// Ctrl-U: everything before the cursor.
    KillToStart,
    /// Ctrl-K: everything from the cursor on.
    KillToEnd,
    /// Ctrl-W: the word before the cursor.
    KillWord,
    /// Up, Ctrl-P: the previous entry of this prompt's history.
    Older,
    /// Down, Ctrl-N: back toward what was typed.
    Newer,
}

/// The peer picker for pair checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picker {
    /// Candidate netns and their names.
    pub choices: Vec<(NetnsKey, String)>,
    /// Highlighted choice.
    pub index: usize,
    /// What the choice is for.
    pub purpose: PickFor,
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// This host, scanned every interval.
    Live,
    /// A snapshot file: no capture, no refresh.
    Offline(PathBuf),
}

/// Rates of one interface.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rate {
    /// Packets per second received.
    pub rx_pps: f64,
    /// Packets per second sent.
    pub tx_pps: f64,
    /// Bits per second received.
    pub rx_bps: f64,
    /// Bits per second sent.
    pub tx_bps: f64,
    /// Recent total pps (rx + tx), oldest first.
    pub history: VecDeque<u64>,
}

/// A firewall rule's counter and its rate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RuleRate {
    /// Packets counted.
    pub packets: u64,
    /// Packets per second over the last interval.
    pub pps: f64,
}

/// The capture pane's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureView {
    /// Labels being captured now.
    pub active: Vec<String>,
    /// The endpoints asked for (several selections at once).
    pub specs: Vec<CaptureSpec>,
    /// The filter for the next capture.
    pub filter: Option<String>,
    /// The latest packets.
    pub packets: VecDeque<Packet>,
    /// Packets seen since the capture started (from none running).
    pub seen: u64,
    /// Packets that could not be shown (the pane was slower than the traffic).
    pub lost: u64,
    /// How the last sessions ended.
    pub ended: Vec<String>,
    /// Lines scrolled back from the newest (0 follows the newest).
    pub scroll: usize,
}

/// The dashboard.
#[derive(Debug)]
pub struct App {
    /// Live or offline.
    pub mode: Mode,
    /// The latest snapshot.
    pub snap: Option<Snapshot>,
    /// Its join.
    pub topo: Option<Topology>,
    /// The tree as shown.
    pub rows: Vec<Row>,
    /// Selected row.
    pub selected: usize,
    /// Folded bridges and headings.
    pub folded: HashSet<String>,
    /// Focused pane.
    pub focus: Focus,
    /// Detail tab shown.
    pub tab: Tab,
    /// Detail lines scrolled.
    pub detail_scroll: usize,
    /// How far the detail tab could scroll when it was last drawn (the draw knows the
    /// content and the height; moving stops there).
    pub detail_max: std::cell::Cell<usize>,
    /// Help shown.
    pub help: bool,
    /// An open prompt.
    pub prompt: Option<Prompt>,
    /// The last find, for n and N.
    pub find: Option<String>,
    /// The row selected when the find prompt opened (Esc goes back to it).
    find_origin: Option<Item>,
    /// Rows the tree pane shows at once (set when drawn; PgUp/PgDn move by it).
    pub tree_page: std::cell::Cell<usize>,
    /// Every message of the session with its time, oldest first (`m` shows them).
    pub log: std::collections::VecDeque<(String, String)>,
    /// The message log is shown.
    pub show_log: bool,
    /// What each kind of prompt was given before, oldest first (Up recalls it).
    pub history: Vec<(PromptKind, Vec<String>)>,
    /// An open peer picker.
    pub picker: Option<Picker>,
    /// The capture pane.
    pub capture: CaptureView,
    /// The last flow traced (`t`), and its probe.
    pub trace: Option<TraceView>,
    /// Where the open trace prompt traces from.
    trace_from: Option<NetnsKey>,
    /// The last check report and the netns keys it was for.
    pub report: Option<(Vec<NetnsKey>, Report)>,
    /// The background light checks of every container, by netns, after the last full
    /// scan, and how long they took (ms).
    pub health: HashMap<NetnsKey, Report>,
    /// How long the last background checks took, ms.
    pub health_ms: Option<u64>,
    /// Only rows with a warning or a failure (and what holds them) are shown.
    pub only_problems: bool,
    /// The fault a demo broke, while it is active (shown in the banner; `u` undoes it).
    pub fault: Option<String>,
    /// Rates per (netns, interface).
    pub rates: HashMap<(NetnsKey, String), Rate>,
    /// Rates per firewall rule (keyed by its text and position).
    pub rule_rates: HashMap<String, RuleRate>,
    /// Warnings shown above everything (missing privilege, partial scans).
    pub banner: Vec<String>,
    /// The last message (bottom line).
    pub message: Option<String>,
    /// Scan time of the latest full snapshot, ms.
    pub scan_ms: Option<u64>,
    /// Scan time of the latest host-only update, ms.
    pub light_ms: Option<u64>,
    /// Seconds between scans (for the status bar).
    pub interval_s: f64,
    /// Whether the process can enter other netns and capture (root or CAP_SYS_ADMIN).
    pub privileged: bool,
    /// Set by [`Action::Quit`].
    pub quit: bool,
    prev_stats: HashMap<(NetnsKey, String), (Stats, u64)>,
    prev_rules: HashMap<String, (u64, u64)>,
}

impl App {
    /// An empty dashboard waiting for its first snapshot.
    pub fn new(mode: Mode, interval_s: f64, privileged: bool) -> Self {
        let mut banner = Vec::new();
        if !privileged && mode == Mode::Live {
            banner.push(
                "Not root: netns you do not own stay unread and capture needs CAP_NET_RAW. \
                 What works: your own netns, the host's links, FDB and routes. Run with sudo \
                 (or try `ctnet-diag demo`) for everything."
                    .to_string(),
            );
        }
        Self {
            mode,
            snap: None,
            topo: None,
            rows: Vec::new(),
            selected: 0,
            folded: HashSet::new(),
            focus: Focus::Tree,
            tab: Tab::Link,
            detail_scroll: 0,
            detail_max: std::cell::Cell::new(usize::MAX),
            help: false,
            prompt: None,
            history: Vec::new(),
            find: None,
            find_origin: None,
            health: HashMap::new(),
            health_ms: None,
            only_problems: false,
            fault: None,
            tree_page: std::cell::Cell::new(10),
            log: std::collections::VecDeque::new(),
            show_log: false,
            picker: None,
            capture: CaptureView::default(),
            report: None,
            trace: None,
            trace_from: None,
            rates: HashMap::new(),
            rule_rates: HashMap::new(),
            banner,
            message: None,
            scan_ms: None,
            light_ms: None,
            interval_s,
            privileged,
            quit: false,
            prev_stats: HashMap::new(),
            prev_rules: HashMap::new(),
        }
    }

    /// The item selected in the tree.
    pub fn selected_item(&self) -> Option<&Item> {
        self.rows.get(self.selected).map(|r| &r.item)
    }

    /// The netns the selection is about (a port's container, a netns row).
    pub fn selected_netns(&self) -> Option<NetnsKey> {
        match self.selected_item()? {
            Item::Port { netns, .. } => *netns,
            Item::Netns(k) => Some(*k),
            Item::HostVeth(name) => self.topo.as_ref().and_then(|t| {
                t.veths
                    .iter()
                    .find(|v| &v.host.name == name)
                    .and_then(|v| match &v.peer {
                        Peer::Resolved { iface, .. } => Some(iface.netns),
                        _ => None,
                    })
            }),
            _ => None,
        }
    }

    /// Take in an event; keys become actions. Returns what the runner must do.
    pub fn on_event(&mut self, ev: Event) -> Vec<Effect> {
        let effects = self.handle(ev);
        self.log_message();
        effects
    }

    fn handle(&mut self, ev: Event) -> Vec<Effect> {
        match ev {
            Event::Key(k) => match self.keymap(k) {
                Some(a) => self.update(a),
                None => Vec::new(),
            },
            Event::Resize | Event::Tick => Vec::new(),
            Event::FaultUndone(r) => {
                match r {
                    Ok(m) => {
                        self.set_fault(None);
                        self.message = Some(m);
                        // The next scan shows the repaired state.
                        return vec![Effect::Refresh];
                    }
                    Err(e) => self.message = Some(format!("the fault could not be undone: {e}")),
                }
                Vec::new()
            }
            Event::ProbeDone(r) => {
                let (state, msg) = match *r {
                    Ok(report) => {
                        let m = format!("probe: {}", format!("{:?}", report.verdict).to_uppercase());
                        (ProbeState::Done(report), m)
                    }
                    Err(e) => (
                        ProbeState::Failed(e.clone()),
                        format!("the probe could not run: {e}"),
                    ),
                };
                if let Some(t) = self.trace.as_mut() {
                    t.probe = state;
                }
                self.message = Some(msg);
                Vec::new()
            }
            Event::Health(health, ms) => {
                self.health = health;
                self.health_ms = Some(ms);
                let keep = self.selected_item().cloned();
                self.rebuild_rows();
                if let Some(item) = keep {
                    self.select_item(&item);
                }
                Vec::new()
            }
            Event::Signal(name) => {
                self.message = Some(format!("{name}: quitting"));
                self.quit = true;
                Vec::new()
            }
            Event::Snapshot(snap, ms) => {
                self.scan_ms = Some(ms);
                if self.message.as_deref() == Some(SCANNING) {
                    self.message = None;
                }
                self.set_snapshot(*snap);
                Vec::new()
            }
            Event::Scanned(sc) => {
                let Scanned {
                    snap,
                    topo,
                    full,
                    ms,
                    every,
                    ..
                } = *sc;
                self.interval_s = every.as_secs_f64();
                if full {
                    self.scan_ms = Some(ms);
                    if self.message.as_deref() == Some(SCANNING) {
                        self.message = None;
                    }
                    self.take_snapshot(snap, None, Some(topo));
                } else if let Some(mut cur) = self.snap.take() {
                    self.light_ms = Some(ms);
                    merge_host_owned(&mut cur, snap);
                    let host_key = cur.host;
                    self.take_snapshot(cur, Some(host_key), Some(topo));
                }
                Vec::new()
            }
            Event::HostUpdate(host, ms) => {
                if let Some(cur) = &self.snap {
                    let mut merged = cur.clone();
                    merge_host(&mut merged, &host);
                    self.light_ms = Some(ms);
                    // Only the host was read again: rates of the other netns wait for
                    // the next full scan (their counters did not move in between).
                    let host_key = merged.host;
                    self.take_snapshot(merged, Some(host_key), None);
                }
                Vec::new()
            }
            Event::ScanFailed(e) => {
                self.message = Some(format!("scan failed: {e}"));
                Vec::new()
            }
            Event::Packets(p) => {
                self.capture.seen += p.len() as u64;
                for pkt in p {
                    if self.capture.packets.len() == PANE_PACKETS {
                        self.capture.packets.pop_front();
                    }
                    self.capture.packets.push_back(pkt);
                    if self.capture.scroll > 0 {
                        // Keep the lines being read in place while new ones arrive.
                        self.capture.scroll = (self.capture.scroll + 1).min(PANE_PACKETS - 1);
                    }
                }
                Vec::new()
            }
            Event::PacketsLost(n) => {
                self.capture.lost += n;
                Vec::new()
            }
            Event::CaptureStarted(labels) => {
                self.message = Some(format!("capturing on {}", labels.join(", ")));
                // What could not be opened is not being captured: `p` on it tries again.
                self.capture.specs.retain(|s| labels.contains(&s.label));
                self.capture.active = labels;
                self.capture.ended.clear();
                Vec::new()
            }
            Event::CaptureFailed(e) => {
                self.capture.active.clear();
                self.capture.specs.clear();
                self.message = Some(format!("capture: {e}"));
                Vec::new()
            }
            Event::CaptureEnded(stats) => {
                self.capture.active.clear();
                self.capture.specs.clear();
                self.capture.ended = stats;
                Vec::new()
            }
            Event::CaptureReplaced(stats) => {
                self.capture.ended = stats;
                Vec::new()
            }
            Event::CaptureSessionsEnded(labels, why) => {
                self.capture.active.retain(|l| !labels.contains(l));
                self.capture.specs.retain(|s| !labels.contains(&s.label));
                self.message = Some(why);
                Vec::new()
            }
            Event::Message(m) => {
                self.message = Some(m);
                Vec::new()
            }
        }
    }

    /// The action a key means here (prompts and pickers take keys first).
    pub fn keymap(&self, k: KeyEvent) -> Option<Action> {
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            return Some(Action::Quit);
        }
        if self.prompt.is_some() {
            if k.modifiers.contains(KeyModifiers::CONTROL) {
                return Some(Action::Edit(match k.code {
                    KeyCode::Char('u') => Edit::KillToStart,
                    KeyCode::Char('k') => Edit::KillToEnd,
                    KeyCode::Char('w') | KeyCode::Backspace => Edit::KillWord,
                    KeyCode::Char('a') => Edit::Home,
                    KeyCode::Char('e') => Edit::End,
                    KeyCode::Char('b') => Edit::Left,
                    KeyCode::Char('f') => Edit::Right,
                    KeyCode::Char('d') => Edit::Delete,
                    KeyCode::Char('p') => Edit::Older,
                    KeyCode::Char('n') => Edit::Newer,
                    // Anything else with Ctrl is not text.
                    _ => return None,
                }));
            }
            return match k.code {
                KeyCode::Enter => Some(Action::Submit),
                KeyCode::Esc => Some(Action::Cancel),
                KeyCode::Backspace => Some(Action::Backspace),
                KeyCode::Delete => Some(Action::Edit(Edit::Delete)),
                KeyCode::Left => Some(Action::Edit(Edit::Left)),
                KeyCode::Right => Some(Action::Edit(Edit::Right)),
                KeyCode::Home => Some(Action::Edit(Edit::Home)),
                KeyCode::End => Some(Action::Edit(Edit::End)),
                KeyCode::Up => Some(Action::Edit(Edit::Older)),
                KeyCode::Down => Some(Action::Edit(Edit::Newer)),
                KeyCode::Char(c) => Some(Action::Type(c)),
                _ => None,
            };
        }
        if self.picker.is_some() {
            return match k.code {
                KeyCode::Enter => Some(Action::Submit),
                KeyCode::Esc | KeyCode::Char('q') => Some(Action::Cancel),
                KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
                KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
                _ => None,
            };
        }
        if self.help || self.show_log {
            return match k.code {
                KeyCode::Char('q') => Some(Action::Quit),
                _ => Some(Action::Cancel),
            };
        }
        KEYMAP
            .iter()
            .flat_map(|b| b.keys)
            .find(|(code, _)| *code == k.code)
            .map(|(_, a)| a.clone())
    }

    /// Keep `text` in the history of `kind` prompts (not twice in a row, 50 at most).
    fn remember(&mut self, kind: PromptKind, text: &str) {
        if text.is_empty() {
            return;
        }
        let h = match self.history.iter_mut().position(|(k, _)| *k == kind) {
            Some(i) => &mut self.history[i].1,
            None => {
                self.history.push((kind, Vec::new()));
                &mut self.history.last_mut().expect("just pushed").1
            }
        };
        if h.last().map(String::as_str) != Some(text) {
            h.push(text.to_string());
        }
        if h.len() > 50 {
            h.remove(0);
        }
    }

    /// Keep the message shown now in the session's log (once; 200 at most).
    pub fn log_message(&mut self) {
        let Some(m) = &self.message else { return };
        if self.log.back().is_some_and(|(_, last)| last == m) {
            return;
        }
        let now = chrono_like_now();
        self.log.push_back((now, m.clone()));
        if self.log.len() > 200 {
            self.log.pop_front();
        }
    }

    /// Apply an action.
    pub fn update(&mut self, a: Action) -> Vec<Effect> {
        let effects = self.apply(a);
        self.log_message();
        effects
    }

    fn apply(&mut self, a: Action) -> Vec<Effect> {
        if a != Action::Refresh {
            self.message = None;
        }
        if let Some(p) = self.prompt.as_mut() {
            let history = self
                .history
                .iter()
                .find(|(k, _)| *k == p.kind)
                .map_or(&[][..], |(_, h)| h.as_slice());
            let find = p.kind == PromptKind::Find;
            match a {
                Action::Type(c) => p.edit(Edit::Insert(c), history),
                Action::Backspace => p.edit(Edit::Backspace, history),
                Action::Edit(e) => p.edit(e, history),
                Action::Cancel => {
                    self.prompt = None;
                    if find && let Some(item) = self.find_origin.take() {
                        self.select_item(&item);
                    }
                    return Vec::new();
                }
                Action::Submit => {
                    let p = self
                        .prompt
                        .take()
                        .unwrap_or_else(|| Prompt::new(PromptKind::Filter, String::new()));
                    self.remember(p.kind, &p.text);
                    return self.submit(p);
                }
                Action::Quit => self.quit = true,
                _ => {}
            }
            if find && let Some(text) = self.prompt.as_ref().map(|p| p.text.clone()) {
                // Incremental: the first match from where the find started.
                if let Some(item) = self.find_origin.clone() {
                    self.select_item(&item);
                }
                if !text.is_empty() && !self.find_step(&text, true, true) {
                    self.message = Some(format!("no match for {text:?}"));
                }
            }
            return Vec::new();
        }
        if let Some(pk) = self.picker.as_mut() {
            match a {
                Action::Up => pk.index = pk.index.saturating_sub(1),
                Action::Down => pk.index = (pk.index + 1).min(pk.choices.len().saturating_sub(1)),
                Action::Cancel => self.picker = None,
                Action::Submit => {
                    let choice = pk.choices.get(pk.index).cloned();
                    let purpose = pk.purpose;
                    self.picker = None;
                    match (purpose, self.selected_netns(), choice) {
                        (PickFor::Peer, Some(me), Some((peer, _))) => self.run_checks(me, Some(peer)),
                        // The destination is filled in; the protocol and port are typed.
                        (PickFor::TraceTo, Some(me), Some((_, name))) => {
                            self.trace_from = Some(me);
                            self.prompt = Some(Prompt::new(PromptKind::TraceTo, format!("{name} ")));
                        }
                        _ => {}
                    }
                }
                Action::Quit => self.quit = true,
                _ => {}
            }
            return Vec::new();
        }
        match a {
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.help = !self.help,
            Action::Cancel => {
                self.help = false;
                self.show_log = false;
            }
            Action::ShowLog => self.show_log = true,
            Action::UndoFault => {
                if self.fault.is_some() {
                    return vec![Effect::UndoFault];
                }
                self.message =
                    Some("no fault is active here (ctnet-diag demo --fault FAULT breaks one)".into());
            }
            Action::ToggleProblems => {
                self.only_problems = !self.only_problems;
                let keep = self.selected_item().cloned();
                self.rebuild_rows();
                if let Some(item) = keep {
                    self.select_item(&item);
                }
                let (fail, warn) = self.problem_counts();
                self.message = Some(if self.only_problems {
                    format!("showing only problems: {fail} failing, {warn} warning (! shows all)")
                } else {
                    "showing everything".into()
                });
            }
            Action::First => self.move_to(true),
            Action::Last => self.move_to(false),
            Action::FoldAll => {
                if let (Some(s), Some(t)) = (&self.snap, &self.topo) {
                    let all = tree::rows(s, t, &HashSet::new());
                    self.folded = all.iter().filter_map(|r| tree::fold_key(&r.item)).collect();
                    let keep = self.selected_item().cloned();
                    self.rebuild_rows();
                    // The selection goes to its bridge when it is folded away.
                    if let Some(item) = keep
                        && !self.select_item(&item)
                    {
                        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
                    }
                }
            }
            Action::UnfoldAll => {
                let keep = self.selected_item().cloned();
                self.folded.clear();
                self.rebuild_rows();
                if let Some(item) = keep {
                    self.select_item(&item);
                }
            }
            Action::Find => {
                self.focus = Focus::Tree;
                self.find_origin = self.selected_item().cloned();
                self.prompt = Some(Prompt::new(PromptKind::Find, String::new()));
            }
            Action::FindNext | Action::FindPrev => match self.find.clone() {
                Some(q) => {
                    if !self.find_step(&q, a == Action::FindNext, false) {
                        self.message = Some(format!("no match for {q:?}"));
                    }
                }
                None => self.message = Some("nothing to find yet: press f and type a name, IP or MAC".into()),
            },
            Action::FocusNext => {
                self.focus = match self.focus {
                    Focus::Tree => Focus::Detail,
                    Focus::Detail => Focus::Capture,
                    Focus::Capture => Focus::Tree,
                }
            }
            Action::FocusPrev => {
                self.focus = match self.focus {
                    Focus::Tree => Focus::Capture,
                    Focus::Detail => Focus::Tree,
                    Focus::Capture => Focus::Detail,
                }
            }
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page() as isize)),
            Action::PageDown => self.move_by(self.page() as isize),
            Action::Enter => {
                let key = self.selected_item().and_then(tree::fold_key);
                if let Some(key) = key {
                    if !self.folded.remove(&key) {
                        self.folded.insert(key);
                    }
                    self.rebuild_rows();
                } else {
                    self.tab = Tab::Link;
                    self.detail_scroll = 0;
                }
            }
            Action::NextTab => {
                self.tab = Tab::ALL[(self.tab.index() + 1) % Tab::ALL.len()];
                self.detail_scroll = 0;
            }
            Action::PrevTab => {
                self.tab = Tab::ALL[(self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()];
                self.detail_scroll = 0;
            }
            Action::ShowTab(t) => {
                self.tab = t;
                self.detail_scroll = 0;
            }
            Action::ToggleCapture => return self.toggle_capture(),
            Action::StopCapture => {
                if self.capture.specs.is_empty() && self.capture.active.is_empty() {
                    self.message = Some("no capture is running".into());
                    return Vec::new();
                }
                self.capture.specs.clear();
                return vec![Effect::StopCapture];
            }
            Action::EditFilter => {
                self.prompt = Some(Prompt::new(
                    PromptKind::Filter,
                    self.capture.filter.clone().unwrap_or_default(),
                ))
            }
            Action::WritePcap => {
                if self.capture.packets.is_empty() {
                    self.message = Some("nothing captured yet: press p to capture first".into());
                } else {
                    // Packets from more than one interface go to pcapng, which says
                    // where each was seen; one interface to plain pcap.
                    let first = &self.capture.packets[0].iface;
                    let several = self.capture.packets.iter().any(|p| &p.iface != first);
                    self.prompt = Some(Prompt::new(
                        PromptKind::PcapPath,
                        format!(
                            "ctnet-{}.{}",
                            self.stamp(),
                            if several { "pcapng" } else { "pcap" }
                        ),
                    ));
                }
            }
            Action::SaveSnapshot => {
                if self.snap.is_some() {
                    self.prompt = Some(Prompt::new(
                        PromptKind::SnapshotPath,
                        format!("ctnet-snapshot-{}.json", self.stamp()),
                    ));
                }
            }
            Action::RunChecks => match self.selected_netns() {
                Some(k) => self.run_checks(k, None),
                None => {
                    self.message =
                        Some("select a container or netns to check (a port row or a netns row)".into())
                }
            },
            Action::Trace => match self.selected_netns() {
                Some(me) => {
                    self.trace_from = Some(me);
                    self.prompt = Some(Prompt::new(PromptKind::TraceTo, String::new()));
                }
                None => self.message = Some(TRACE_FROM.into()),
            },
            Action::PickTraceTo => match self.selected_netns() {
                Some(me) => {
                    // By the names a trace takes (a container's, a netns's), the host last.
                    let mut choices: Vec<(NetnsKey, String)> = self
                        .pick_choices(me)
                        .into_iter()
                        .filter_map(|(k, _)| self.resolved(k).map(|r| (k, r.target)))
                        .collect();
                    choices.dedup();
                    if let Some(host) = self.snap.as_ref().map(|s| s.host).filter(|h| *h != me) {
                        choices.retain(|(k, _)| *k != host);
                        choices.push((host, "host".into()));
                    }
                    self.picker = Some(Picker {
                        choices,
                        index: 0,
                        purpose: PickFor::TraceTo,
                    });
                }
                None => self.message = Some(TRACE_FROM.into()),
            },
            Action::Probe => return self.probe(),
            Action::PickPeer => match self.selected_netns() {
                Some(me) => {
                    let choices = self.pick_choices(me);
                    if choices.is_empty() {
                        self.message = Some("no other container or netns to pair with".into());
                    } else {
                        self.picker = Some(Picker {
                            choices,
                            index: 0,
                            purpose: PickFor::Peer,
                        });
                    }
                }
                None => self.message = Some("select a container first, then press C to pick its peer".into()),
            },
            Action::Refresh => {
                if self.mode == Mode::Live {
                    self.message = Some(SCANNING.into());
                    return vec![Effect::Refresh];
                }
                self.message = Some("offline: showing a snapshot file, nothing to refresh".into());
            }
            Action::Type(_) | Action::Backspace | Action::Edit(_) | Action::Submit => {}
        }
        Vec::new()
    }

    /// Every container and netns row other than `me`, with its row label.
    fn pick_choices(&self, me: NetnsKey) -> Vec<(NetnsKey, String)> {
        self.rows
            .iter()
            .filter_map(|r| match &r.item {
                Item::Port { netns: Some(k), .. } | Item::Netns(k) => Some((*k, r.label.clone())),
                _ => None,
            })
            .filter(|(k, _)| *k != me)
            .collect()
    }

    /// Trace the flow typed in the prompt from `from` on the snapshot; the Trace tab
    /// shows it.
    fn trace_to(&mut self, from: NetnsKey, text: &str) {
        let (Some(snap), Some(me)) = (self.snap.as_ref(), self.resolved(from)) else {
            return;
        };
        let (dst, l4) = match parse_trace_to(snap, text) {
            Ok(x) => x,
            Err(e) => {
                self.message = Some(e);
                return;
            }
        };
        use ctnet_core::flow::{Destination, FlowSpec, L4, Source};
        let src = if from == snap.host {
            Source::Host { addr: None }
        } else {
            Source::Netns {
                netns: from,
                addr: None,
            }
        };
        let spec = FlowSpec::new(src, dst.clone(), l4);
        let trace = match ctnet_core::flow::trace(snap, &spec) {
            Ok(t) => t,
            Err(e) => {
                self.message = Some(format!("cannot trace from {}: {e}", me.target));
                return;
            }
        };
        let words = text.split_whitespace().collect::<Vec<_>>();
        let dest_word = words.first().copied().unwrap_or("host");
        let flow = match l4 {
            L4::Tcp(p) => ctnet_core::probe::Flow::Tcp(p),
            L4::Udp(p) => ctnet_core::probe::Flow::Udp(p),
            L4::Icmp => ctnet_core::probe::Flow::Icmp,
        };
        let command = format!(
            "ctnet-diag trace {} {} {}",
            me.target,
            match &dst {
                Destination::Addr { addr } => addr.to_string(),
                _ => dest_word.to_string(),
            },
            match flow {
                ctnet_core::probe::Flow::Icmp => "--icmp".to_string(),
                ctnet_core::probe::Flow::Tcp(p) => format!("--tcp {p}"),
                ctnet_core::probe::Flow::Udp(p) => format!("--udp {p}"),
            }
        );
        let to = match &dst {
            Destination::Netns { netns } => self
                .resolved(*netns)
                .map(|r| ProbeTo::Peer(Box::new(r)))
                .ok_or_else(|| "its netns is gone".to_string()),
            Destination::Addr {
                addr: std::net::IpAddr::V4(a),
            } => Ok(ProbeTo::Addr(*a)),
            Destination::Host => Ok(ProbeTo::Gateway),
            _ => Err("the probe sends IPv4 packets: trace to an IPv4 address".to_string()),
        };
        let probe_request = match (&self.mode, from == snap.host) {
            (Mode::Offline(_), _) => {
                Err("offline: a file cannot be probed (the probe sends real packets on this host)".into())
            }
            (_, true) => Err("the probe sends from a container or netns, not from the host".into()),
            _ => to.map(|to| ProbeRequest {
                from: me.clone(),
                to,
                flow,
                trace: trace.clone(),
                command: command.clone(),
            }),
        };
        self.message = Some(format!(
            "trace {} → {}: {}",
            me.target,
            text.trim(),
            format!("{:?}", trace.verdict).to_uppercase()
        ));
        self.trace = Some(TraceView {
            from,
            to: text.trim().to_string(),
            spec,
            trace,
            probe_request,
            probe: ProbeState::NotRun,
        });
        self.tab = Tab::Trace;
        self.detail_scroll = 0;
    }

    /// `x`: send the traced flow as real packets, off the UI thread.
    fn probe(&mut self) -> Vec<Effect> {
        let Some(t) = self.trace.as_mut() else {
            self.message =
                Some("nothing traced yet: press t on a container to trace a flow, then x probes it".into());
            return Vec::new();
        };
        if t.probe == ProbeState::Running {
            self.message = Some("the probe is running already".into());
            return Vec::new();
        }
        if !self.privileged {
            self.message =
                Some("the probe needs root (it enters netns, sends packets and captures them)".into());
            return Vec::new();
        }
        match (&t.probe_request, &self.snap) {
            (Ok(_), None) => {
                self.message = Some("no scan yet: the probe needs the host read first".into());
                Vec::new()
            }
            (Ok(r), Some(snap)) => {
                t.probe = ProbeState::Running;
                self.tab = Tab::Trace;
                self.message = Some(format!("probing {}…", r.command));
                // A copy for the probe's thread: one per `x`, not one per scan.
                vec![Effect::Probe(Box::new(r.clone()), Box::new(snap.clone()))]
            }
            (Err(why), _) => {
                self.message = Some(format!("cannot probe: {why}"));
                Vec::new()
            }
        }
    }

    fn stamp(&self) -> String {
        let ms = self.snap.as_ref().map_or(0, |s| s.taken_at_unix_ms);
        (ms / 1000).to_string()
    }

    fn submit(&mut self, p: Prompt) -> Vec<Effect> {
        let text = p.text.trim().to_string();
        match p.kind {
            PromptKind::Filter => {
                if let Err(e) = ctnet_core::capture::check_filter(&text)
                    .map(|_| ())
                    .or_else(|e| if text.is_empty() { Ok(()) } else { Err(e) })
                {
                    self.message = Some(e.to_string());
                    return Vec::new();
                }
                self.capture.filter = (!text.is_empty()).then_some(text);
                self.message = Some(format!(
                    "filter {}; {}",
                    self.capture.filter.as_deref().unwrap_or("off"),
                    if self.capture.active.is_empty() {
                        "press p to capture"
                    } else {
                        "capture restarted with it"
                    }
                ));
                if !self.capture.active.is_empty() {
                    return self.start_capture();
                }
                Vec::new()
            }
            PromptKind::TraceTo => {
                if let Some(from) = self.trace_from.take() {
                    if text.is_empty() {
                        self.message = Some(TRACE_HELP.into());
                    } else {
                        self.trace_to(from, &text);
                    }
                }
                Vec::new()
            }
            PromptKind::Find => {
                self.find_origin = None;
                if !text.is_empty() {
                    self.message = self
                        .selected_item()
                        .map(|i| format!("found {text:?}: {} (n next, N previous)", item_name(i)));
                    self.find = Some(text);
                }
                Vec::new()
            }
            PromptKind::PcapPath if !text.is_empty() => vec![Effect::WritePcap(PathBuf::from(text))],
            PromptKind::SnapshotPath if !text.is_empty() => vec![Effect::SaveSnapshot(PathBuf::from(text))],
            _ => Vec::new(),
        }
    }

    /// How far PgUp/PgDn move: a screen of the focused pane, less one row of overlap.
    fn page(&self) -> usize {
        self.tree_page.get().saturating_sub(1).max(1)
    }

    fn move_to(&mut self, first: bool) {
        match self.focus {
            Focus::Tree => {
                self.selected = if first {
                    0
                } else {
                    self.rows.len().saturating_sub(1)
                };
                self.detail_scroll = 0;
            }
            Focus::Detail => self.detail_scroll = if first { 0 } else { self.detail_max.get() },
            Focus::Capture => {
                // Up goes back in time: the first is the oldest.
                self.capture.scroll = if first {
                    self.capture.packets.len().saturating_sub(1)
                } else {
                    0
                };
            }
        }
    }

    /// Select `item` if it is shown; whether it was.
    pub fn select_item(&mut self, item: &Item) -> bool {
        match self.rows.iter().position(|r| &r.item == item) {
            Some(i) => {
                self.selected = i;
                self.detail_scroll = 0;
                true
            }
            None => false,
        }
    }

    /// What a row can be found by: its text, and for a netns (or the port in front of
    /// one) every name, container, address, MAC and ifindex in it.
    fn haystack(&self, row: &Row) -> String {
        let mut h = format!("{} {}", row.label, row.detail);
        let key = match &row.item {
            Item::Port { netns, port, .. } => {
                h.push_str(&format!(" {port}"));
                *netns
            }
            Item::Netns(k) => Some(*k),
            Item::Bridge(b) | Item::HostVeth(b) => {
                h.push_str(&format!(" {b}"));
                None
            }
            Item::Heading(_) => None,
        };
        if let (Some(snap), Some(topo)) = (&self.snap, &self.topo) {
            let port_name = match &row.item {
                Item::Port { port, .. } | Item::HostVeth(port) => Some(port.as_str()),
                Item::Bridge(b) => Some(b.as_str()),
                _ => None,
            };
            if let Some(host) = snap.host_netns()
                && let Some(l) = port_name.and_then(|n| host.links.iter().find(|l| l.name == n))
            {
                h.push_str(&format!(" if{} {}", l.ifindex, l.mac.as_deref().unwrap_or("")));
                for a in host.addresses.iter().filter(|a| a.ifindex == l.ifindex) {
                    h.push_str(&format!(" {}", a.address));
                }
            }
            if let Some(k) = key {
                if let Some(v) = topo.netns.iter().find(|n| n.key == k) {
                    h.push_str(&format!(" {} {}", v.label, v.names.join(" ")));
                }
                for c in snap.containers_in(k) {
                    h.push_str(&format!(" {} {}", c.name, c.id));
                }
                if let Some(ns) = snap.netns_by_key(k) {
                    h.push_str(&format!(" {}", ns.key.ino));
                    for l in &ns.links {
                        h.push_str(&format!(
                            " {} if{} {}",
                            l.name,
                            l.ifindex,
                            l.mac.as_deref().unwrap_or("")
                        ));
                    }
                    for a in &ns.addresses {
                        h.push_str(&format!(" {}", a.address));
                    }
                }
            }
        }
        h.to_lowercase()
    }

    /// Select the next (or previous) row matching `query` (words, all of them, case
    /// aside), from the selection (`inclusive`: it counts), wrapping around. Rows in a
    /// folded bridge count: their bridge is unfolded. Whether one matched.
    fn find_step(&mut self, query: &str, forward: bool, inclusive: bool) -> bool {
        let (Some(snap), Some(topo)) = (&self.snap, &self.topo) else {
            return false;
        };
        let words: Vec<String> = query
            .to_lowercase()
            .split_whitespace()
            .map(String::from)
            .collect();
        if words.is_empty() {
            return false;
        }
        let all = tree::rows(snap, topo, &HashSet::new());
        let n = all.len();
        if n == 0 {
            return false;
        }
        let here = self
            .selected_item()
            .and_then(|i| all.iter().position(|r| &r.item == i))
            .unwrap_or(0);
        let order: Vec<usize> = (0..n)
            .map(|k| {
                let step = if inclusive { k } else { k + 1 };
                if forward {
                    (here + step) % n
                } else {
                    (here + n * 2 - step) % n
                }
            })
            .collect();
        // A row where every word is a whole name or address ranks first (`c3` is the
        // container c3, not every MAC with c3 in it); otherwise any row containing them.
        let hays: Vec<String> = all.iter().map(|r| self.haystack(r)).collect();
        let whole = |hay: &str| {
            let tokens: Vec<&str> = hay
                .split(|c: char| !(c.is_alphanumeric() || ".:-_@".contains(c)))
                .collect();
            words.iter().all(|w| tokens.contains(&w.as_str()))
        };
        let exact = hays.iter().any(|h| whole(h));
        let found = order.into_iter().find(|&i| {
            if exact {
                whole(&hays[i])
            } else {
                words.iter().all(|w| hays[i].contains(w.as_str()))
            }
        });
        let Some(i) = found else {
            return false;
        };
        // Unfold what holds it: the nearest foldable row above it at a lower depth.
        let depth = all[i].depth;
        if let Some(holder) = all[..i]
            .iter()
            .rev()
            .find(|r| r.depth < depth && tree::fold_key(&r.item).is_some())
            .and_then(|r| tree::fold_key(&r.item))
            && self.folded.remove(&holder)
        {
            self.rebuild_rows();
        }
        let item = all[i].item.clone();
        self.focus = Focus::Tree;
        self.select_item(&item)
    }

    fn move_by(&mut self, d: isize) {
        match self.focus {
            Focus::Tree => {
                if self.rows.is_empty() {
                    return;
                }
                let last = self.rows.len() as isize - 1;
                self.selected = (self.selected as isize + d).clamp(0, last) as usize;
                self.detail_scroll = 0;
            }
            Focus::Detail => {
                self.detail_scroll =
                    ((self.detail_scroll as isize + d).max(0) as usize).min(self.detail_max.get())
            }
            Focus::Capture => {
                let max = self.capture.packets.len().saturating_sub(1) as isize;
                // Up goes back in time.
                self.capture.scroll = (self.capture.scroll as isize - d).clamp(0, max) as usize;
            }
        }
    }

    fn toggle_capture(&mut self) -> Vec<Effect> {
        if let Mode::Offline(path) = &self.mode {
            self.message = Some(format!(
                "offline ({}): capture needs the live host; run ctnet-diag without --from",
                path.display()
            ));
            return Vec::new();
        }
        let here = self.capture_endpoints();
        if here.is_empty() {
            self.message =
                Some("nothing to capture here: select a bridge, a port or a netns with interfaces".into());
            return Vec::new();
        }
        let same = |a: &CaptureSpec, b: &CaptureSpec| a.same_iface(b);
        let specs = &mut self.capture.specs;
        if here.iter().all(|h| specs.iter().any(|s| same(s, h))) {
            // Already captured: take it out.
            specs.retain(|s| !here.iter().any(|h| same(s, h)));
            if specs.is_empty() {
                return vec![Effect::StopCapture];
            }
        } else {
            for h in here {
                if !specs.iter().any(|s| same(s, &h)) {
                    specs.push(h);
                }
            }
        }
        self.start_capture()
    }

    /// (Re)start the capture on every endpoint asked for; the pane keeps its lines,
    /// and its counts while a capture runs on.
    fn start_capture(&mut self) -> Vec<Effect> {
        if self.capture.specs.is_empty() {
            return Vec::new();
        }
        if self.capture.active.is_empty() {
            self.capture.seen = 0;
            self.capture.lost = 0;
        }
        self.capture.scroll = 0;
        vec![Effect::StartCapture {
            endpoints: self.capture.specs.clone(),
            filter: self.capture.filter.clone(),
        }]
    }

    /// Where `p` captures: a bridge itself; both ends of a port's veth; every interface
    /// of a netns (and the host veth of each).
    pub fn capture_endpoints(&self) -> Vec<CaptureSpec> {
        use ctnet_core::capture::plan;
        let (Some(snap), Some(topo), Some(item)) = (&self.snap, &self.topo, self.selected_item()) else {
            return Vec::new();
        };
        let name_of = |k: NetnsKey| {
            topo.netns
                .iter()
                .find(|n| n.key == k)
                .map_or_else(|| format!("netns {}", k.ino), tree::netns_name)
        };
        match item {
            Item::Heading(_) => Vec::new(),
            Item::Bridge(b) | Item::HostVeth(b) => vec![plan::host_iface(snap, topo, b)],
            Item::Port { port, netns, .. } => {
                let behind = netns.map(|k| (k, name_of(k)));
                plan::port(snap, topo, port, behind.as_ref().map(|(k, n)| (*k, n.as_str())))
            }
            Item::Netns(k) if *k == snap.host => Vec::new(),
            Item::Netns(k) => {
                // Its interfaces first, then the host end of each.
                let (mut inside, host): (Vec<_>, Vec<_>) =
                    plan::netns(snap, topo, *k, &name_of(*k), plan::Ifaces::All, true)
                        .into_iter()
                        .partition(|p| p.netns == *k);
                inside.extend(host);
                inside
            }
        }
    }

    /// A target for the checks, built from the snapshot (no name lookup).
    fn resolved(&self, key: NetnsKey) -> Option<Resolved> {
        let snap = self.snap.as_ref()?;
        let topo = self.topo.as_ref()?;
        let container = snap.containers_in(key).find(|c| c.is_running()).cloned();
        let label = match &container {
            Some(c) => c.name.clone(),
            None if key == snap.host => "host".into(),
            None => topo
                .netns
                .iter()
                .find(|n| n.key == key)
                .map_or_else(|| format!("netns {}", key.ino), tree::netns_name),
        };
        Some(Resolved {
            target: label,
            kind: if container.is_some() {
                TargetKind::Container
            } else {
                TargetKind::NetnsName
            },
            netns: Some(key),
            container,
            ifindex: None,
            note: None,
        })
    }

    fn run_checks(&mut self, me: NetnsKey, peer: Option<NetnsKey>) {
        let (Some(t), Some(snap), Some(topo)) = (self.resolved(me), &self.snap, &self.topo) else {
            return;
        };
        let p = peer.and_then(|k| self.resolved(k));
        let report = check::run(snap, topo, &t, p.as_ref());
        let fails = report
            .checks
            .iter()
            .filter(|f| f.status == check::Status::Fail)
            .count();
        self.message = Some(format!(
            "checks for {}{}: {}{}",
            report.target,
            report
                .peer
                .as_deref()
                .map(|p| format!(" ↔ {p}"))
                .unwrap_or_default(),
            format!("{:?}", report.verdict).to_uppercase(),
            if fails > 0 {
                format!(", {fails} failing")
            } else {
                String::new()
            }
        ));
        let mut keys = vec![me];
        keys.extend(peer);
        self.report = Some((keys, report));
        self.tab = Tab::Checks;
        self.detail_scroll = 0;
    }

    /// Take a new snapshot: rates, rule counters, the tree (keeping the selection).
    pub fn set_snapshot(&mut self, snap: Snapshot) {
        self.take_snapshot(snap, None, None);
    }

    /// [`App::set_snapshot`], with rates taken only for netns `rates_of` when given.
    fn take_snapshot(&mut self, snap: Snapshot, rates_of: Option<NetnsKey>, topo: Option<Topology>) {
        let now = snap.taken_at_unix_ms;
        for ns in snap.netns.iter().filter(|n| rates_of.is_none_or(|k| k == n.key)) {
            for l in &ns.links {
                let Some(s) = &l.stats else { continue };
                let key = (ns.key, l.name.clone());
                // A rate needs two samples: the first scan (and a file) has none.
                if let Some((old, then)) = self.prev_stats.get(&key)
                    && now > *then
                {
                    let rate = self.rates.entry(key.clone()).or_default();
                    let dt = (now - then) as f64 / 1000.0;
                    let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
                    rate.rx_pps = d(s.rx_packets, old.rx_packets);
                    rate.tx_pps = d(s.tx_packets, old.tx_packets);
                    rate.rx_bps = d(s.rx_bytes, old.rx_bytes) * 8.0;
                    rate.tx_bps = d(s.tx_bytes, old.tx_bytes) * 8.0;
                    if rate.history.len() == HISTORY {
                        rate.history.pop_front();
                    }
                    rate.history.push_back((rate.rx_pps + rate.tx_pps).round() as u64);
                }
                self.prev_stats.insert(key, (*s, now));
            }
        }
        // Interfaces gone from the host stop taking memory.
        let live: HashSet<(NetnsKey, String)> = snap
            .netns
            .iter()
            .flat_map(|n| n.links.iter().map(move |l| (n.key, l.name.clone())))
            .collect();
        self.prev_stats.retain(|k, _| live.contains(k));
        self.rates.retain(|k, _| live.contains(k));
        let mut seen = HashSet::new();
        for (key, packets) in rule_counters(&snap) {
            let entry = self.rule_rates.entry(key.clone()).or_default();
            entry.packets = packets;
            entry.pps = match self.prev_rules.get(&key) {
                Some((old, then)) if now > *then => {
                    packets.saturating_sub(*old) as f64 * 1000.0 / (now - then) as f64
                }
                _ => 0.0,
            };
            self.prev_rules.insert(key.clone(), (packets, now));
            seen.insert(key);
        }
        self.rule_rates.retain(|k, _| seen.contains(k));
        self.prev_rules.retain(|k, _| seen.contains(k));
        self.banner.retain(|b| !b.starts_with("Partial view"));
        let failed = snap
            .sources
            .iter()
            .filter(|s| s.status == SourceState::Failed)
            .count();
        if failed > 0 {
            self.banner.push(format!(
                "Partial view: {failed} source(s) could not be read (`ctnet-diag snapshot` lists them under \"sources\")."
            ));
        }
        let before = self.selected_item().cloned();
        self.topo = Some(topo.unwrap_or_else(|| Topology::build(&snap)));
        self.snap = Some(snap);
        self.rebuild_rows();
        if let Some(item) = before {
            match self.rows.iter().position(|r| r.item == item) {
                Some(i) => self.selected = i,
                None => {
                    self.message = Some(format!("{} is gone from the host", item_name(&item)));
                }
            }
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    fn rebuild_rows(&mut self) {
        if let (Some(s), Some(t)) = (&self.snap, &self.topo) {
            let rows = tree::rows(s, t, &self.folded);
            self.rows = overlay_health(&self.health, self.only_problems, s, t, rows);
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    /// Show `what` as the active fault (a banner line naming `u`), or clear it.
    pub fn set_fault(&mut self, what: Option<String>) {
        self.banner.retain(|b| !b.starts_with("Fault "));
        if let Some(w) = &what {
            self.banner
                .insert(0, format!("Fault {w} is active: u undoes it (quitting does too)"));
        }
        self.fault = what;
    }

    /// Netns whose background checks fail, and those that only warn.
    pub fn problem_counts(&self) -> (usize, usize) {
        let mut out = (0, 0);
        for r in self.health.values() {
            match tally(r) {
                (f, _) if f > 0 => out.0 += 1,
                (_, w) if w > 0 => out.1 += 1,
                _ => {}
            }
        }
        out
    }
}

/// Put a host-only scan into a full snapshot: the host netns, the firewall and the
/// time; every other netns and the containers stay as the last full scan saw them.
pub fn merge_host(full: &mut Snapshot, host: &Snapshot) {
    merge_host_owned(full, host.clone());
}

/// [`merge_host`], taking the host-only scan (nothing of it is copied; what the full
/// scan alone knows is moved over from the old host state).
pub fn merge_host_owned(full: &mut Snapshot, mut host: Snapshot) {
    if host.host != full.host {
        return;
    }
    let key = full.host;
    let Some(at) = host.netns.iter().position(|n| n.key == key) else {
        return;
    };
    let mut fresh = host.netns.swap_remove(at);
    if let Some(old) = full.netns.iter_mut().find(|n| n.key == key) {
        // The host's ids for other netns are only known from a full scan, and so are
        // the `ethtool -S` counters.
        fresh.nsid = old.nsid;
        fresh.peer_ids = std::mem::take(&mut old.peer_ids);
        let mut ethtool: HashMap<u32, _> = old
            .links
            .iter_mut()
            .filter_map(|l| l.ethtool.take().map(|e| (l.ifindex, e)))
            .collect();
        for l in &mut fresh.links {
            if l.ethtool.is_none() {
                l.ethtool = ethtool.remove(&l.ifindex);
            }
        }
        *old = fresh;
    }
    full.firewall = host.firewall.take();
    full.taken_at_unix_ms = host.taken_at_unix_ms;
}

/// A readable name for an item (messages).
pub fn item_name(item: &Item) -> String {
    match item {
        Item::Heading(h) => h.clone(),
        Item::Bridge(b) => format!("bridge {b}"),
        Item::Port { port, .. } => format!("port {port}"),
        Item::Netns(k) => format!("netns {}", k.ino),
        Item::HostVeth(v) => format!("veth {v}"),
    }
}

/// Badges from the background checks: a netns (and the port in front of it) that
/// fails turns red, one that warns yellow; a bridge takes the worst of its ports,
/// folded or not. With `only_problems`, only those rows and what holds them stay.
fn overlay_health(
    health: &HashMap<NetnsKey, Report>,
    only_problems: bool,
    snap: &Snapshot,
    topo: &Topology,
    mut rows: Vec<Row>,
) -> Vec<Row> {
    use tree::Badge;
    let worse = |a: Badge, b: Badge| {
        let rank = |x: Badge| match x {
            Badge::Bad => 3,
            Badge::Warn => 2,
            Badge::Ok => 1,
            Badge::None => 0,
        };
        if rank(b) > rank(a) { b } else { a }
    };
    let of = |key: &NetnsKey| {
        health.get(key).map(|r| match tally(r) {
            (f, _) if f > 0 => Badge::Bad,
            (_, w) if w > 0 => Badge::Warn,
            _ => Badge::Ok,
        })
    };
    let mut bridges: HashMap<String, Badge> = HashMap::new();
    if !health.is_empty() {
        for r in tree::rows(snap, topo, &HashSet::new()) {
            if let Item::Port {
                bridge,
                netns: Some(k),
                ..
            } = &r.item
                && let Some(b) = of(k)
            {
                let e = bridges.entry(bridge.clone()).or_insert(Badge::None);
                *e = worse(*e, b);
            }
        }
    }
    for r in &mut rows {
        let b = match &r.item {
            Item::Port { netns: Some(k), .. } | Item::Netns(k) => of(k),
            Item::Bridge(name) => bridges.get(name).copied(),
            _ => None,
        };
        if let Some(b) = b
            && b != Badge::Ok
        {
            r.badge = worse(r.badge, b);
        }
    }
    if only_problems {
        let mut keep = vec![false; rows.len()];
        for (i, r) in rows.iter().enumerate() {
            if matches!(r.badge, Badge::Bad | Badge::Warn) && !matches!(r.item, Item::Heading(_)) {
                keep[i] = true;
                // What holds it: each nearest row above at a lower depth.
                let mut depth = r.depth;
                for j in (0..i).rev() {
                    if rows[j].depth < depth {
                        keep[j] = true;
                        depth = rows[j].depth;
                    }
                }
            }
        }
        rows = rows
            .into_iter()
            .zip(keep)
            .filter_map(|(r, k)| k.then_some(r))
            .collect();
    }
    rows
}

/// The wall clock as `HH:MM:SS` (UTC) for the message log.
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// The key a firewall rule's counter is tracked under.
pub fn ipt_rule_key(
    backend: &str,
    family: &str,
    table: &str,
    chain: &str,
    position: u32,
    spec: &str,
) -> String {
    format!("ipt {backend} {family} {table} {chain} {position} {spec}")
}

/// The key an nft rule's counter is tracked under.
pub fn nft_rule_key(family: &str, table: &str, handle: u64) -> String {
    format!("nft {family} {table} {handle}")
}

/// The destination and protocol of a trace as typed: `DEST [tcp PORT | udp PORT |
/// icmp]`, where DEST is a container or netns name (anything `check` takes), an IP
/// address, `host`, or `external` ([`EXTERNAL`]); `--tcp 80` and `tcp/80` work too.
pub fn parse_trace_to(
    snap: &Snapshot,
    text: &str,
) -> std::result::Result<(ctnet_core::flow::Destination, ctnet_core::flow::L4), String> {
    use ctnet_core::flow::{Destination, L4};
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((dest, rest)) = words.split_first() else {
        return Err(TRACE_HELP.into());
    };
    let rest: Vec<String> = rest
        .iter()
        .flat_map(|w| {
            w.trim_start_matches('-')
                .split('/')
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let port = |w: Option<&String>, proto: &str| -> std::result::Result<u16, String> {
        let w = w.ok_or_else(|| format!("{proto} needs a port: {proto} 80"))?;
        w.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{} is not a port (1-65535)", ctnet_core::text::escape(w)))
    };
    let l4 = match rest.first().map(String::as_str) {
        None | Some("icmp") | Some("ping") if rest.len() <= 1 => L4::Icmp,
        Some("tcp") if rest.len() <= 2 => L4::Tcp(port(rest.get(1), "tcp")?),
        Some("udp") if rest.len() <= 2 => L4::Udp(port(rest.get(1), "udp")?),
        _ => {
            return Err(format!(
                "{} is not a protocol: write tcp PORT, udp PORT or nothing for ICMP (web2 tcp 80)",
                ctnet_core::text::escape(&rest.join(" "))
            ));
        }
    };
    let dst = match *dest {
        "host" => Destination::Host,
        "external" => Destination::Addr {
            addr: std::net::IpAddr::V4(EXTERNAL),
        },
        d => match d.parse::<std::net::IpAddr>() {
            Ok(addr) => Destination::Addr { addr },
            Err(_) => {
                let r = ctnet_core::target::resolve(snap, d).map_err(|e| e.to_string())?;
                match r.netns {
                    Some(k) if k == snap.host => Destination::Host,
                    Some(netns) => Destination::Netns { netns },
                    None => {
                        return Err(format!(
                            "{}: {}; nothing can reach it",
                            ctnet_core::text::escape(d),
                            r.note.unwrap_or_else(|| "not running".into())
                        ));
                    }
                }
            }
        },
    };
    Ok((dst, l4))
}

/// Every rule counter of the snapshot, by key.
fn rule_counters(snap: &Snapshot) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Some(fw) = &snap.firewall else { return out };
    for d in &fw.iptables {
        for t in &d.tables {
            for r in &t.rules {
                out.push((
                    ipt_rule_key(&d.backend, &d.family, &t.name, &r.chain, r.position, &r.spec),
                    r.packets,
                ));
            }
        }
    }
    for t in &fw.nft {
        for r in &t.rules {
            if let Some(p) = r.packets {
                out.push((nft_rule_key(&t.family, &t.name, r.handle), p));
            }
        }
    }
    out
}
