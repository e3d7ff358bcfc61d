//! The runner: terminal set-up and restore, the event loop (generic over ratatui's
//! `Backend`), and the workers that feed it: keys, the snapshot poller and capture
//! pumps. Workers send [`Event`]s over bounded channels; the loop never blocks on I/O.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossterm::event::{self as ct, Event as CtEvent, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ctnet_core::capture::{self, CaptureOptions, Control, DirectionHint, LineFormat, Ring, Session, Sink};
use ctnet_core::model::Snapshot;
use ctnet_core::source::{self, ScanOptions};
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};

use crate::app::{App, CaptureSpec, Effect, Event, Mode, Packet, ProbeRequest, ProbeTo, Scanned};
use crate::{Error, Result};
use ctnet_core::check::Report;
use ctnet_core::topology::Topology;

/// Bytes kept of each captured frame (headers and then some; `w` writes these).
pub const SNAPLEN: i32 = 2048;
/// Frames held between the capture readers and the pane.
const RING_FRAMES: usize = 20_000;
/// Events waiting for the loop at most.
const QUEUE: usize = 256;
/// Time between two full scans on a small host.
pub const FULL_EVERY: Duration = Duration::from_secs(20);

/// Time between two full scans: [`FULL_EVERY`] (at least ten intervals), longer on a
/// host whose full scan is costly, so that full scans take at most 0.5 % of a core
/// (`last_full_took` is the CPU the last one used, on every thread, its tools and the
/// background checks included: 350 ms at 500 containers, so every 70 s). A change in
/// the host's links still brings one at once.
pub fn full_every(interval: Duration, last_full_took: Duration) -> Duration {
    FULL_EVERY.max(interval * 10).max(last_full_took * 200)
}

/// Time between two host-only scans: `--interval`, longer on a host whose host-only
/// scan is costly, so that they take at most 1 % of a core (`last_light_took`: the CPU
/// it used, its tools included; 35 ms at 500 veths: every 4 s). The status bar shows
/// the time in effect.
pub fn light_every(interval: Duration, last_light_took: Duration) -> Duration {
    // Whole seconds, so the status bar reads `every 4s`.
    interval.max(Duration::from_secs(
        (last_light_took * 100).as_secs_f64().ceil() as u64
    ))
}

/// CPU this process has used so far, on all its threads, and its children that were
/// waited for (the firewall tools a scan runs).
fn cpu_used() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let of = |who| {
        getrusage(who).map_or(Duration::ZERO, |u| {
            let t = |v: nix::sys::time::TimeVal| {
                Duration::from_secs(v.tv_sec().max(0) as u64)
                    + Duration::from_micros(v.tv_usec().max(0) as u64)
            };
            t(u.user_time()) + t(u.system_time())
        })
    };
    of(UsageWho::RUSAGE_SELF) + of(UsageWho::RUSAGE_CHILDREN)
}

/// Where the dashboard reads from, and how often.
#[derive(Debug, Clone)]
pub struct Options {
    /// A live scan of this host, or a file.
    pub source: Source,
    /// Seconds between scans.
    pub interval: Duration,
    /// A fault the caller broke (the demo's `--fault`): a banner while it lasts, `u`
    /// undoes it.
    pub fault: Option<ActiveFault>,
}

/// A fault that is active while the dashboard runs.
#[derive(Clone)]
pub struct ActiveFault {
    /// What is broken where (`stale-arp on demo-c1, peer demo-c2: ...`).
    pub what: String,
    /// Undo it (run off the UI thread); Ok says what was restored.
    pub undo: Arc<dyn Fn() -> std::result::Result<String, String> + Send + Sync>,
}

impl std::fmt::Debug for ActiveFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveFault")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

/// Live or from a snapshot file.
#[derive(Debug, Clone)]
pub enum Source {
    /// Scan this host with these options.
    Live(ScanOptions),
    /// A snapshot loaded from this file.
    File(PathBuf, Box<Snapshot>),
}

/// Whether this process may enter any netns and capture: effective CAP_SYS_ADMIN and
/// CAP_NET_RAW (bits 21 and 13 of `CapEff`).
pub fn privileged() -> bool {
    use ctnet_core::privilege::{CAP_NET_RAW, CAP_SYS_ADMIN, has};
    has(CAP_SYS_ADMIN) && has(CAP_NET_RAW)
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(std::io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Restores the terminal and the caller's panic hook when dropped (normal return,
/// errors, unwinding).
struct TerminalGuard {
    previous: Arc<Hook>,
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        let previous = self.previous.clone();
        // Not from inside a panic: the panicking thread holds the hook lock.
        if !std::thread::panicking() {
            std::panic::set_hook(Box::new(move |info| previous(info)));
        }
    }
}

/// Stops the workers when dropped, also when the loop unwinds: no capture reader or
/// pump outlives the dashboard.
struct StopGuard {
    stop: Arc<AtomicBool>,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.stop_capture();
        if let Some(p) = self.probe.take() {
            let _ = p.join();
        }
    }
}

/// The signals that end the dashboard cleanly (terminal restored, captures stopped,
/// a demo lab removed): SIGTERM, SIGHUP (the terminal went away), SIGINT.
fn quit_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set.add(Signal::SIGINT);
    set
}

/// Block the quit signals in this thread and every thread it starts from now on, so
/// only the dashboard's signal thread takes them. Call it before starting threads
/// (runtimes, workers) that would otherwise take the default action.
pub fn block_quit_signals() -> Result<()> {
    quit_signals()
        .thread_block()
        .map_err(|e| Error::Terminal(std::io::Error::from(e)))
}

/// Open the dashboard on this terminal until the user quits (or a quit signal).
pub fn run(opts: Options) -> Result<()> {
    block_quit_signals()?;
    // The hook goes in before raw mode, so a panic of the dashboard leaves a usable
    // terminal. Panics of other threads are caught where they happen (a netns reader,
    // the firewall reader, a capture reader) and the dashboard goes on: those must not
    // take the terminal away from it.
    let previous: Arc<Hook> = Arc::new(std::panic::take_hook());
    let ui_thread = std::thread::current().id();
    {
        let previous = previous.clone();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().id() == ui_thread {
                restore_terminal();
            }
            previous(info);
        }));
    }
    let _guard = TerminalGuard { previous };
    enable_raw_mode().map_err(Error::Terminal)?;
    execute!(std::io::stdout(), EnterAlternateScreen).map_err(Error::Terminal)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(Error::Terminal)?;
    terminal.clear().map_err(Error::Terminal)?;

    let (tx, rx) = mpsc::sync_channel::<Event>(QUEUE);
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_guard = StopGuard { stop: stop.clone() };
    let keys = spawn_keys(tx.clone(), stop.clone()).map_err(Error::Terminal)?;
    {
        // Never joined: it waits in sigwait for the life of the process.
        let tx = tx.clone();
        let _ = std::thread::Builder::new()
            .name("ctnet-tui-signals".into())
            .spawn(move || {
                while let Ok(sig) = quit_signals().wait() {
                    if tx.send(Event::Signal(sig.as_str().to_string())).is_err() {
                        return;
                    }
                }
            });
    }
    let mode = match &opts.source {
        Source::Live(_) => Mode::Live,
        Source::File(p, _) => Mode::Offline(p.clone()),
    };
    let mut app = App::new(mode, opts.interval.as_secs_f64(), privileged());
    if let Some(f) = &opts.fault {
        app.set_fault(Some(f.what.clone()));
    }
    let mut runner = Runner {
        tx: tx.clone(),
        refresh: None,
        capture: None,
        opening: None,
        fault: opts.fault.clone(),
        scan: match &opts.source {
            Source::Live(scan) => Some(scan.clone()),
            Source::File(..) => None,
        },
        probe: None,
    };
    let poller = match opts.source {
        Source::Live(scan) => {
            let (rtx, rrx) = mpsc::sync_channel::<()>(1);
            runner.refresh = Some(rtx);
            Some(spawn_poller(scan, opts.interval, tx.clone(), rrx, stop.clone()))
        }
        Source::File(_, snap) => {
            app.set_snapshot(*snap);
            None
        }
    };
    let result = event_loop(&mut terminal, &mut app, &rx, &mut runner);
    stop.store(true, Ordering::SeqCst);
    runner.stop_capture();
    drop(runner);
    drop(tx);
    // Drain so no worker waits on a full queue while it is being joined.
    let drain = std::thread::spawn(move || while rx.recv_timeout(Duration::from_millis(50)).is_ok() {});
    // Not joined: should crossterm be stuck on a terminal that vanished between two
    // polls, the dashboard still ends (the thread goes with the process).
    drop(keys);
    if let Some(p) = poller {
        let _ = p.join();
    }
    let _ = drain.join();
    result
}

/// Draw, wait for an event, apply it, run its effects; until the app quits. Drawing is
/// skipped while nothing changed.
pub fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    rx: &Receiver<Event>,
    effects: &mut dyn Executor,
) -> Result<()> {
    let mut dirty = true;
    while !app.quit {
        if dirty {
            terminal
                .draw(|f| crate::ui::draw(f, app))
                .map_err(Error::Terminal)?;
            dirty = false;
        }
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(ev) => {
                let mut batch = vec![ev];
                // Take what is already waiting, so a burst costs one frame.
                while batch.len() < 64 {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                apply(app, effects, batch);
                dirty = true;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let done = effects.poll();
        if !done.is_empty() {
            apply(app, effects, done);
            dirty = true;
        }
    }
    Ok(())
}

/// Hand `events` to the app, run the effects it asks for, and hand it what they tell
/// in turn, until nothing is left: the one place the app's state changes.
fn apply(app: &mut App, effects: &mut dyn Executor, events: Vec<Event>) {
    let mut queue: std::collections::VecDeque<Event> = events.into();
    while let Some(ev) = queue.pop_front() {
        for e in app.on_event(ev) {
            queue.extend(effects.run(e, app));
        }
    }
}

/// What carries out [`Effect`]s (the real one touches the host; tests record them).
/// It never writes the app's state: what comes of an effect is told as events, which
/// the loop hands to [`App::on_event`].
pub trait Executor {
    /// Carry out one effect (reading the app, never writing it).
    fn run(&mut self, e: Effect, app: &App) -> Vec<Event>;
    /// On every turn of the loop: what finished in the background since.
    fn poll(&mut self) -> Vec<Event> {
        Vec::new()
    }
}

struct CaptureRun {
    control: Arc<Control>,
    sessions: Vec<Session>,
    pump_stop: Arc<AtomicBool>,
    pump: JoinHandle<()>,
}

/// What the thread that opens a capture hands back: the sessions it started (their
/// readers already filling the ring), and what to tell the app.
struct Opened {
    control: Arc<Control>,
    sessions: Vec<Session>,
    ring: Arc<Ring>,
    names: Vec<String>,
    hints: Vec<DirectionHint>,
    labels: Vec<String>,
    errors: Vec<String>,
}

struct Runner {
    tx: SyncSender<Event>,
    refresh: Option<SyncSender<()>>,
    capture: Option<CaptureRun>,
    /// A capture being opened (netns entered, pcap handles opened) off the UI thread.
    opening: Option<JoinHandle<Opened>>,
    fault: Option<ActiveFault>,
    /// How this dashboard scans (the probe scans again to see what changed).
    scan: Option<ScanOptions>,
    /// A live probe on its way (joined before the dashboard ends: it removes its
    /// trace table and tracefs instance itself).
    probe: Option<std::thread::JoinHandle<()>>,
}

impl Runner {
    fn stop_capture(&mut self) -> Vec<String> {
        if let Some(h) = self.opening.take() {
            // Stopped while it opens: wait for it, then stop what it started.
            let _ = self.adopt(h);
        }
        let Some(run) = self.capture.take() else {
            return Vec::new();
        };
        run.control.stop();
        let stats: Vec<String> = run
            .sessions
            .into_iter()
            .map(|s| {
                let st = s.join();
                format!(
                    "{}: {} captured, {} dropped by kernel{}",
                    st.label,
                    st.captured,
                    st.dropped_by_kernel,
                    st.ended.map(|e| format!(" ({e})")).unwrap_or_default()
                )
            })
            .collect();
        run.pump_stop.store(true, Ordering::SeqCst);
        let _ = run.pump.join();
        stats
    }

    /// Open a capture on `endpoints` on a thread of its own: entering 50 netns and
    /// opening 50 pcap handles takes a while, and the UI keeps drawing meanwhile.
    fn start_capture(&mut self, endpoints: Vec<CaptureSpec>, filter: Option<String>) -> Vec<Event> {
        let mut out = Vec::new();
        let ended = self.stop_capture();
        if !ended.is_empty() {
            out.push(Event::CaptureReplaced(ended));
        }
        let n = endpoints.len();
        let tx = self.tx.clone();
        let opener = std::thread::Builder::new()
            .name("ctnet-tui-open".into())
            .spawn(move || {
                let opened = open_capture(&endpoints, filter);
                // Wake the loop: `poll` takes it from here.
                let _ = tx.send(Event::Tick);
                opened
            });
        match opener {
            Ok(h) => {
                self.opening = Some(h);
                out.push(Event::Message(format!("opening {n} capture(s)…")));
            }
            Err(e) => out.push(Event::CaptureFailed(format!("could not start a thread: {e}"))),
        }
        out
    }

    /// Take a finished opener's sessions: start the pump, say what was opened.
    fn adopt(&mut self, h: JoinHandle<Opened>) -> Vec<Event> {
        let Ok(o) = h.join() else {
            return vec![Event::CaptureFailed("opening the capture panicked".into())];
        };
        if o.sessions.is_empty() {
            return vec![Event::CaptureFailed(o.errors.join("; "))];
        }
        let pump_stop = Arc::new(AtomicBool::new(false));
        let pump = spawn_pump(o.ring, o.names, o.hints, self.tx.clone(), pump_stop.clone());
        self.capture = Some(CaptureRun {
            control: o.control,
            sessions: o.sessions,
            pump_stop,
            pump,
        });
        let mut out = vec![Event::CaptureStarted(o.labels)];
        if !o.errors.is_empty() {
            out.push(Event::Message(format!("not captured: {}", o.errors.join("; "))));
        }
        out
    }
}

/// Enter each endpoint's netns and start a session on it (off the UI thread).
fn open_capture(endpoints: &[CaptureSpec], filter: Option<String>) -> Opened {
    let control = Control::new(None);
    let ring = Arc::new(Ring::new(RING_FRAMES));
    let mut sessions = Vec::new();
    let mut labels = Vec::new();
    // Indexed by session number (the endpoint's index), whatever fails to open.
    let mut hints = vec![DirectionHint::default(); endpoints.len()];
    let mut errors = Vec::new();
    for (i, spec) in endpoints.iter().enumerate() {
        let ep = match spec.open() {
            Ok(ep) => ep,
            Err(e) => {
                errors.push(format!("{}: {e}", spec.label));
                continue;
            }
        };
        let opts = CaptureOptions {
            snaplen: SNAPLEN,
            promisc: spec.promisc,
            immediate: false,
            buffer_size: 2 << 20,
            timeout_ms: 100,
            filter: filter.clone(),
        };
        match capture::start(i, &ep, &opts, Sink::Ring(ring.clone()), control.clone()) {
            Ok(s) => {
                hints[i] = s.hint();
                labels.push(spec.label.clone());
                sessions.push(s);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    Opened {
        control,
        sessions,
        ring,
        names: endpoints.iter().map(|e| e.label.clone()).collect(),
        hints,
        labels,
        errors,
    }
}

impl Runner {
    /// The traced flow as real packets, on a thread of its own; the findings come back
    /// as [`Event::ProbeDone`].
    fn probe(&mut self, req: ProbeRequest, snap: Snapshot) -> Vec<Event> {
        let Some(scan) = self.scan.clone() else {
            return vec![Event::ProbeDone(Box::new(Err(
                "no live scan: the probe needs the live host".into(),
            )))];
        };
        if let Some(p) = self.probe.take() {
            let _ = p.join();
        }
        let tx = self.tx.clone();
        self.probe = Some(std::thread::spawn(move || {
            let _ = tx.send(Event::ProbeDone(Box::new(run_probe(&snap, &scan, &req))));
        }));
        Vec::new()
    }
}

/// What `trace --probe` does: the flow's own packets from the source, the path they
/// took, and whether it agrees with the static trace.
fn run_probe(snap: &Snapshot, scan: &ScanOptions, req: &ProbeRequest) -> std::result::Result<Report, String> {
    use ctnet_core::probe::To;
    let topo = ctnet_core::topology::Topology::build(snap);
    let to = match &req.to {
        ProbeTo::Peer(p) => To::Peer(p),
        ProbeTo::Addr(a) => To::Addr(*a),
        ProbeTo::Gateway => To::Gateway,
    };
    let rescan = || ctnet_core::source::snapshot(scan);
    let found = ctnet_core::probe::run_to(snap, &topo, &req.from, to, req.flow, true, &rescan)
        .map_err(|e| e.to_string())?;
    let mut report = Report {
        schema: ctnet_core::check::CHECK_SCHEMA.into(),
        target: req.from.target.clone(),
        peer: None,
        verdict: ctnet_core::check::Status::Pass,
        checks: Vec::new(),
    };
    report.add(ctnet_core::probe::finding(&found));
    report.add(ctnet_core::probe::compare(
        &found,
        &req.trace,
        req.command.clone(),
    ));
    Ok(report)
}

impl Executor for Runner {
    fn run(&mut self, e: Effect, app: &App) -> Vec<Event> {
        match e {
            Effect::Refresh => {
                if let Some(r) = &self.refresh {
                    let _ = r.try_send(());
                }
                Vec::new()
            }
            Effect::StartCapture { endpoints, filter } => self.start_capture(endpoints, filter),
            Effect::StopCapture => vec![Event::CaptureEnded(self.stop_capture())],
            Effect::WritePcap(path) => vec![Event::Message(match write_pcap(&path, app) {
                Ok((n, format)) => {
                    format!("wrote {n} packet(s) to {} ({})", path.display(), format.name())
                }
                Err(e) => format!("pcap not written: {e}"),
            })],
            Effect::Probe(req, snap) => self.probe(*req, *snap),
            Effect::UndoFault => vec![Event::Message(match self.fault.take() {
                Some(f) => {
                    let tx = self.tx.clone();
                    let what = format!("undoing {}…", f.what);
                    // Undoing runs tools (ip, iptables): never on the UI thread.
                    std::thread::spawn(move || {
                        let _ = tx.send(Event::FaultUndone((f.undo)()));
                    });
                    what
                }
                None => "the fault is being undone already".into(),
            })],
            Effect::SaveSnapshot(path) => vec![Event::Message(match save_snapshot(&path, app) {
                Ok(()) => format!(
                    "saved to {} (open it with ctnet-diag --from {})",
                    path.display(),
                    path.display()
                ),
                Err(e) => format!("snapshot not saved: {e}"),
            })],
        }
    }

    fn poll(&mut self) -> Vec<Event> {
        if self.opening.as_ref().is_some_and(JoinHandle::is_finished)
            && let Some(h) = self.opening.take()
        {
            return self.adopt(h);
        }
        // A session ends on its own when its interface is deleted (a container went
        // away): say so, and end the capture when none is left.
        let Some(run) = self.capture.as_mut() else {
            return Vec::new();
        };
        if !run.sessions.iter().any(|s| s.is_finished()) {
            return Vec::new();
        }
        if run.sessions.iter().all(|s| s.is_finished()) {
            return vec![Event::CaptureEnded(self.stop_capture())];
        }
        let (done, alive): (Vec<Session>, Vec<Session>) = std::mem::take(&mut run.sessions)
            .into_iter()
            .partition(|s| s.is_finished());
        run.sessions = alive;
        let mut labels = Vec::new();
        let mut ended = Vec::new();
        for s in done {
            let st = s.join();
            ended.push(
                st.ended
                    .clone()
                    .unwrap_or_else(|| format!("capture on {} ended", st.label)),
            );
            labels.push(st.label);
        }
        vec![Event::CaptureSessionsEnded(labels, ended.join("; "))]
    }
}

/// The packets of the pane into `path`: pcapng with an interface block per interface
/// they were seen on when the name ends in `.pcapng` or there is more than one, plain
/// pcap otherwise. Returns the packets written and the format.
pub fn write_pcap(path: &std::path::Path, app: &App) -> ctnet_core::Result<(u64, capture::FileFormat)> {
    let mut names: Vec<&str> = Vec::new();
    for p in &app.capture.packets {
        if !names.contains(&p.iface.as_str()) {
            names.push(&p.iface);
        }
    }
    let interfaces: Vec<capture::pcapng::Interface> = names
        .iter()
        .map(|n| capture::pcapng::Interface {
            name: n.to_string(),
            description: format!("captured by the ctnet dashboard as {n}"),
            link_type: capture::pcapng::LINKTYPE_ETHERNET,
            snaplen: capture::FILE_SNAPLEN as u32,
        })
        .collect();
    let format = capture::FileFormat::for_file(path, names.len());
    let mut file = capture::PcapWriter::create_as(
        path,
        format,
        &format!("ctnet dashboard {}", env!("CARGO_PKG_VERSION")),
        &interfaces,
    )?;
    for p in &app.capture.packets {
        let i = names.iter().position(|n| *n == p.iface).unwrap_or(0) as u32;
        if !file.write(i, p.ts_us, p.len, &p.data) {
            break;
        }
    }
    file.finish().map(|n| (n, format)).map_err(|(kept, e)| {
        ctnet_core::Error::Invalid(format!("{e} (the file keeps the first {kept} packets)"))
    })
}

fn save_snapshot(path: &std::path::Path, app: &App) -> ctnet_core::Result<()> {
    let Some(s) = &app.snap else {
        return Err(ctnet_core::Error::Invalid("no snapshot yet".into()));
    };
    ctnet_core::output::OutputFile::write_all_at(path, (s.to_json() + "\n").as_bytes())
}

/// Whether the terminal on stdin has hung up (its pty closed): `Some(true)` hung up,
/// `Some(false)` input waiting, `None` nothing within `timeout_ms`.
fn stdin_state(timeout_ms: i32) -> Option<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(&stdin), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(timeout_ms.max(0)).unwrap_or(PollTimeout::MAX);
    if poll(&mut fds, timeout).ok()? == 0 {
        return None;
    }
    let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
    Some(fds[0].revents().is_some_and(|r| r.intersects(gone)))
}

/// Keys and resizes, read with crossterm. A terminal that goes away leaves stdin
/// readable forever, and crossterm's reader then spins without returning
/// (crossterm-rs/crossterm#793): so stdin is polled here first, a hangup ends the
/// dashboard, and crossterm is only asked without waiting.
fn spawn_keys(tx: SyncSender<Event>, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ctnet-tui-keys".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if stdin_state(200) == Some(true) {
                    let _ = tx.send(Event::Signal("the terminal hung up".into()));
                    return;
                }
                // Input, a resize, or nothing: take every event crossterm has now.
                while matches!(ct::poll(Duration::ZERO), Ok(true)) {
                    let ev = match ct::read() {
                        Ok(CtEvent::Key(k)) if k.kind != KeyEventKind::Release => Event::Key(k),
                        Ok(CtEvent::Resize(..)) => Event::Resize,
                        Ok(_) => continue,
                        Err(_) => return,
                    };
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
            }
        })
}

/// The host's links as (ifindex, name, master, peer netns id).
type Shape = Vec<(u32, String, Option<u32>, Option<i32>)>;

/// The shape of the host's links: what a new container or a removed veth changes.
fn host_shape(s: &Snapshot) -> Shape {
    s.host_netns()
        .map(|h| {
            h.links
                .iter()
                .map(|l| (l.ifindex, l.name.clone(), l.master, l.link_netnsid))
                .collect()
        })
        .unwrap_or_default()
}

/// Scans on a schedule. A full scan (every netns, runtimes, ethtool) costs about
/// 0.3 ms of CPU per container; between full scans the poller reads the host netns
/// and the firewall only (links with their counters, FDB, neighbours, routes), which
/// is what rates, the FDB view and rule counters need. A change in the host's links
/// (a container came or went), `r`, or [`full_every`] brings the next full scan.
fn spawn_poller(
    opts: ScanOptions,
    interval: Duration,
    tx: SyncSender<Event>,
    refresh: Receiver<()>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    let light = ScanOptions {
        netns_dirs: Vec::new(),
        scan_proc: false,
        ethtool: false,
        runtime: None,
        ..opts.clone()
    };
    std::thread::spawn(move || {
        let mut last_full: Option<(Instant, Shape, Duration)> = None;
        // The last full scan with every host-only scan merged in: what the UI gets,
        // its topology built here, so taking a scan in costs the UI thread no join.
        let mut current: Option<Snapshot> = None;
        let mut every = interval;
        let mut forced = true;
        while !stop.load(Ordering::SeqCst) {
            let t0 = Instant::now();
            let cpu0 = cpu_used();
            let full = forced
                || last_full
                    .as_ref()
                    .is_none_or(|(at, _, took)| at.elapsed() >= full_every(interval, *took));
            forced = false;
            let mut health = false;
            let ev = if full {
                match source::snapshot(&opts) {
                    Ok(s) => {
                        let ms = t0.elapsed().as_millis() as u64;
                        // What it cost is known once the checks ran (below).
                        last_full = Some((Instant::now(), host_shape(&s), t0.elapsed()));
                        // The light checks of every container, here and not on the UI
                        // thread; sent after the snapshot they judge.
                        health = true;
                        current = Some(s.clone());
                        let topo = Topology::build(&s);
                        Event::Scanned(Box::new(Scanned {
                            snap: s,
                            topo,
                            full: true,
                            ms,
                            every,
                        }))
                    }
                    Err(e) => Event::ScanFailed(e.to_string()),
                }
            } else {
                match source::snapshot(&light) {
                    Ok(s) => {
                        let ms = t0.elapsed().as_millis() as u64;
                        every = light_every(interval, cpu_used().saturating_sub(cpu0));
                        if last_full
                            .as_ref()
                            .is_some_and(|(_, shape, _)| *shape != host_shape(&s))
                        {
                            forced = true;
                        }
                        match current.as_mut() {
                            Some(cur) => {
                                // The runner keeps its full scan: its captures open
                                // netns, and a new host link brings a full scan anyway.
                                // The host-only scan is small: a copy stays here,
                                // the scan itself goes to the app, which merges it in
                                // place (no copy of every netns per scan).
                                crate::app::merge_host_owned(cur, s.clone());
                                let topo = Topology::build(cur);
                                Event::Scanned(Box::new(Scanned {
                                    snap: s,
                                    topo,
                                    full: false,
                                    ms,
                                    every,
                                }))
                            }
                            None => Event::HostUpdate(Box::new(s), ms),
                        }
                    }
                    Err(e) => Event::ScanFailed(e.to_string()),
                }
            };
            if tx.send(ev).is_err() {
                break;
            }
            if health && let Some(s) = &current {
                let t = Instant::now();
                let h = crate::app::health_of(s);
                if tx.send(Event::Health(h, t.elapsed().as_millis() as u64)).is_err() {
                    break;
                }
                if let Some((_, _, took)) = last_full.as_mut() {
                    *took = cpu_used().saturating_sub(cpu0);
                }
            }
            if forced {
                continue;
            }
            // Wake every 200 ms to notice a stop; a refresh request ends the wait.
            let deadline = Instant::now() + every;
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                match refresh.recv_timeout(Duration::from_millis(200)) {
                    Ok(()) => {
                        forced = true;
                        break;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        }
    })
}

/// Move frames from the ring to the loop every 100 ms, formatted off the UI thread.
/// When the loop is behind, the batch is counted as lost instead of queued.
fn spawn_pump(
    ring: Arc<Ring>,
    labels: Vec<String>,
    hints: Vec<DirectionHint>,
    tx: SyncSender<Event>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    let evicted_seen = Mutex::new(0u64);
    std::thread::spawn(move || {
        // Lines from several interfaces in time order: a reader hands its frames over
        // up to one buffer timeout late, so they are held back a little.
        let mut reorder = capture::Reorder::default();
        loop {
            let last = stop.load(Ordering::SeqCst);
            reorder.push(ring.drain());
            let frames = reorder.ready(last, capture::now_us());
            let mut lost = {
                let mut seen = evicted_seen.lock().unwrap_or_else(|p| p.into_inner());
                let now = ring.evicted();
                let d = now - *seen;
                *seen = now;
                d
            };
            if !frames.is_empty() {
                // Only the newest frames can be shown; older ones are counted.
                let keep = frames.len().min(crate::app::PANE_PACKETS);
                lost += (frames.len() - keep) as u64;
                let packets: Vec<Packet> = frames[frames.len() - keep..]
                    .iter()
                    .map(|f| {
                        let label = labels.get(f.session).map_or("?", String::as_str);
                        let hint = hints.get(f.session).copied().unwrap_or_default();
                        Packet {
                            ts_us: f.ts_us,
                            len: f.len,
                            line: capture::format_line(
                                label,
                                f.ts_us,
                                f.len,
                                &f.data,
                                hint,
                                LineFormat::Text,
                            ),
                            data: f.data.clone(),
                            iface: label.to_string(),
                        }
                    })
                    .collect();
                let n = packets.len() as u64;
                match tx.try_send(Event::Packets(packets)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => lost += n,
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            if lost > 0 {
                let _ = tx.try_send(Event::PacketsLost(lost));
            }
            if last {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctnet_core::capture::plan;

    /// 25 netns, each with a veth to the host: 50 interfaces to capture on.
    fn fifty_endpoints() -> Vec<CaptureSpec> {
        let script = "for i in $(seq 1 25); do ip netns add o$i; \
                      ip link add h$i type veth peer name eth0 netns o$i; \
                      ip link set h$i up; ip -n o$i link set eth0 up; done";
        let out = std::process::Command::new("sh")
            .args(["-ec", script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let snap = ctnet_core::source::snapshot(&ScanOptions::default()).unwrap();
        let topo = Topology::build(&snap);
        let mut specs = Vec::new();
        for view in topo.netns.iter().filter(|n| n.label.starts_with('o')) {
            specs.extend(plan::netns(
                &snap,
                &topo,
                view.key,
                &view.label,
                plan::Ifaces::All,
                true,
            ));
        }
        specs
    }

    #[test]
    fn a_capture_of_fifty_endpoints_opens_off_the_ui_thread() {
        ctnet_core::world::run_test_in_world(
            "run::tests::a_capture_of_fifty_endpoints_opens_off_the_ui_thread",
            || {
                let endpoints = fifty_endpoints();
                assert_eq!(endpoints.len(), 50);
                let (tx, rx) = mpsc::sync_channel(QUEUE);
                let mut runner = Runner {
                    tx,
                    refresh: None,
                    capture: None,
                    opening: None,
                    fault: None,
                    scan: None,
                    probe: None,
                };
                let app = App::new(Mode::Live, 2.0, true);
                let said = runner.run(
                    Effect::StartCapture {
                        endpoints,
                        filter: None,
                    },
                    &app,
                );
                // Back at once: nothing opened on this (the UI) thread, the opener has it.
                assert!(matches!(said.as_slice(), [Event::Message(m)] if m == "opening 50 capture(s)…"));
                assert!(runner.capture.is_none() && runner.opening.is_some());
                // The opener wakes the loop when done; then `poll` takes its sessions. The
                // wake is sent just before the opener's thread ends, so the loop polls on
                // every wake and every tick after it, as the event loop does.
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                let started = loop {
                    let _ = rx.recv_timeout(Duration::from_millis(100));
                    let done = runner.poll();
                    if !done.is_empty() {
                        break done;
                    }
                    assert!(std::time::Instant::now() < deadline, "the opener never finished");
                };
                let [Event::CaptureStarted(labels)] = started.as_slice() else {
                    panic!("{started:?}");
                };
                assert_eq!(labels.len(), 50, "{labels:?}");
                assert_eq!(runner.stop_capture().len(), 50);
            },
        );
    }
}
