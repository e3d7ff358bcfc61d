//! Live capture: a libpcap handle on any interface in any netns, a reader thread per
//! handle, and where the packets go (a pcap file, decoded lines, or a bounded ring).
//!
//! ```text
//!  Netns::run: pcap open + BPF in the netns ──> reader thread: pcap_dispatch (TPACKET_V3
//!  batches, 100 ms buffer timeout) ──> sink: pcap file | lines (text/JSON) | ring
//!  stop: a shared flag + pcap_breakloop (a blocked read on a quiet link returns at once)
//! ```
//! Bulk capture never uses immediate mode: batching is what keeps up with a flood
//! (measured: `tcpdump --immediate-mode` drops two thirds of what `tcpdump` keeps).

pub mod decode;
pub mod follow;
pub mod pcapng;
pub mod plan;

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::netns::Netns;
use crate::output::OutputFile;

/// How to open a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Bytes kept of each frame.
    pub snaplen: i32,
    /// Promiscuous mode (needs CAP_NET_ADMIN; a veth sees its pair's traffic anyway).
    pub promisc: bool,
    /// Deliver each packet at once (for interactive views; costly under load).
    pub immediate: bool,
    /// Kernel ring buffer size in bytes.
    pub buffer_size: i32,
    /// How long the kernel may hold a batch, in milliseconds.
    pub timeout_ms: i32,
    /// A BPF filter (tcpdump syntax).
    pub filter: Option<String>,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            snaplen: 262_144,
            promisc: false,
            immediate: false,
            buffer_size: 4 << 20,
            timeout_ms: 100,
            filter: None,
        }
    }
}

/// An interface in a netns to capture on.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The netns.
    pub netns: Netns,
    /// The interface name in it.
    pub iface: String,
    /// How to call it in output (`eth0@web1`).
    pub label: String,
    /// For the host end of a veth: the MAC of the container interface at the other end.
    /// Frames from it arrive ("in"); everything else leaves toward it ("out").
    pub peer_mac: Option<[u8; 6]>,
}

/// What tells a frame's direction on an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectionHint {
    /// The endpoint's own MAC.
    pub own: Option<[u8; 6]>,
    /// The MAC of the only sender behind it (the peer of a host veth).
    pub peer: Option<[u8; 6]>,
}

/// One captured frame, copied out of the kernel ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Index of the session (endpoint) that saw it.
    pub session: usize,
    /// Capture time, Unix microseconds.
    pub ts_us: i64,
    /// Length on the wire.
    pub len: u32,
    /// The captured bytes (up to snaplen).
    pub data: Vec<u8>,
}

/// Frames from several readers put back in time order. Each reader hands over its
/// frames up to one buffer timeout late, so frames are held back until they are older
/// than [`Reorder::HOLD_US`] behind the newest frame or the clock, whichever is later
/// (a quiet link must not hold its last frames back).
#[derive(Debug, Default)]
pub struct Reorder {
    pending: Vec<Frame>,
}

impl Reorder {
    /// How long a frame is held for a late one from another interface.
    pub const HOLD_US: i64 = 300_000;

    /// Take frames in, in any order.
    pub fn push(&mut self, frames: impl IntoIterator<Item = Frame>) {
        self.pending.extend(frames);
    }

    /// The frames old enough to be in order for good (every one with `all`), oldest
    /// first; `now_us` is the clock in Unix microseconds.
    pub fn ready(&mut self, all: bool, now_us: i64) -> Vec<Frame> {
        self.pending.sort_by_key(|f| f.ts_us);
        let newest = self.pending.last().map_or(0, |f| f.ts_us).max(now_us);
        let cut = if all {
            self.pending.len()
        } else {
            self.pending.partition_point(|f| f.ts_us < newest - Self::HOLD_US)
        };
        self.pending.drain(..cut).collect()
    }

    /// Frames still held.
    pub fn held(&self) -> usize {
        self.pending.len()
    }
}

/// The clock as capture stamps it: Unix microseconds.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A bounded ring of frames: the reader never waits for the consumer; when full, the
/// oldest frame goes and is counted.
#[derive(Debug)]
pub struct Ring {
    frames: Mutex<(VecDeque<Frame>, usize)>,
    capacity: usize,
    max_bytes: usize,
    evicted: AtomicU64,
}

impl Ring {
    /// A ring holding at most `capacity` frames and 256 MiB of frame bytes (a veth
    /// hands over 64 KiB GSO frames).
    pub fn new(capacity: usize) -> Self {
        Self {
            frames: Mutex::new((VecDeque::with_capacity(capacity.min(65_536)), 0)),
            capacity: capacity.max(1),
            max_bytes: 256 << 20,
            evicted: AtomicU64::new(0),
        }
    }

    /// Add a frame, evicting the oldest when full.
    pub fn push(&self, f: Frame) {
        let mut g = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        let (q, bytes) = &mut *g;
        *bytes += f.data.len();
        q.push_back(f);
        while q.len() > self.capacity || (*bytes > self.max_bytes && q.len() > 1) {
            if let Some(old) = q.pop_front() {
                *bytes -= old.data.len();
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Take every frame held now.
    pub fn drain(&self) -> Vec<Frame> {
        let mut g = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        g.1 = 0;
        g.0.drain(..).collect()
    }

    /// Frames dropped because the consumer was slower than the traffic.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Frames held now.
    pub fn len(&self) -> usize {
        self.frames.lock().unwrap_or_else(|p| p.into_inner()).0.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Output format of a lines sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// Like `tcpdump -nn -e`.
    Text,
    /// One JSON object per line (`schema` in each: `ctnet.packet/v1`).
    Json,
}

/// Where a session's packets go.
#[derive(Clone)]
pub enum Sink {
    /// Straight into a pcap file from the reader thread (shared by sessions).
    Pcap(Arc<Mutex<PcapWriter>>),
    /// Decoded and written as lines from the reader thread.
    Lines {
        /// The writer (shared by sessions; one line is written whole).
        out: Arc<Mutex<Box<dyn Write + Send>>>,
        /// Text or JSON.
        format: LineFormat,
    },
    /// Copied into a bounded ring for a consumer (merging, following, a dashboard).
    Ring(Arc<Ring>),
}

/// Shared stop control of a set of sessions: a flag, an optional packet budget, and
/// the handles that wake readers blocked on a quiet link.
#[derive(Default)]
pub struct Control {
    stop: AtomicBool,
    remaining: AtomicI64,
    limited: AtomicBool,
    breakers: Mutex<Vec<pcap::BreakLoop>>,
}

impl Control {
    /// A control that stops after `count` packets in all (`None`: no limit).
    pub fn new(count: Option<u64>) -> Arc<Self> {
        let c = Self::default();
        if let Some(n) = count {
            c.limited.store(true, Ordering::Relaxed);
            c.remaining
                .store(n.min(i64::MAX as u64) as i64, Ordering::Relaxed);
        }
        Arc::new(c)
    }

    /// Stop after `count` more packets in all (set before the sessions start).
    pub fn limit(&self, count: u64) {
        self.remaining
            .store(count.min(i64::MAX as u64) as i64, Ordering::SeqCst);
        self.limited.store(true, Ordering::SeqCst);
    }

    /// Stop every session (from any thread).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for b in self.breakers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            b.breakloop();
        }
    }

    /// Whether a stop was asked for.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Count one packet; true when it is within the budget.
    fn take(&self) -> bool {
        if !self.limited.load(Ordering::Relaxed) {
            return true;
        }
        let left = self.remaining.fetch_sub(1, Ordering::SeqCst);
        if left <= 1 {
            self.stop();
        }
        left >= 1
    }
}

/// Counters of a session when it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStats {
    /// `eth0@web1`.
    pub label: String,
    /// Frames this session handed to its sink.
    pub captured: u64,
    /// Frames the kernel passed the filter (libpcap `ps_recv`).
    pub received: u64,
    /// Frames the kernel dropped for lack of buffer space (`ps_drop`).
    pub dropped_by_kernel: u64,
    /// Frames the interface dropped (`ps_ifdrop`).
    pub dropped_by_interface: u64,
    /// Why the session ended, when not asked to (interface gone, error).
    pub ended: Option<String>,
    /// The reader thread panicked: a bug, which the caller reports as one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub panicked: bool,
}

/// A running capture on one endpoint.
pub struct Session {
    label: String,
    hint: DirectionHint,
    thread: std::thread::JoinHandle<SessionStats>,
}

impl Session {
    /// What tells a frame's direction on its endpoint (its MAC, read once at start).
    pub fn hint(&self) -> DirectionHint {
        self.hint
    }

    /// The endpoint label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether the session has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Wait for the session to end (after [`Control::stop`], the budget, or an error).
    pub fn join(self) -> SessionStats {
        let label = self.label.clone();
        self.thread.join().unwrap_or_else(|_| SessionStats {
            label,
            ended: Some("the reader panicked".into()),
            panicked: true,
            ..SessionStats::default()
        })
    }
}

/// Why libpcap could not open `iface` in the calling thread's netns, asked of the
/// kernel rather than read from libpcap's message (which the pcap crate hands over as
/// text only): the interface is gone (`if_nametoindex`: ENODEV), or a packet socket is
/// refused (EPERM/EACCES: no CAP_NET_RAW over this netns).
fn open_failure_kind(iface: &str) -> ErrorKind {
    if nix::net::if_::if_nametoindex(iface).is_err() {
        return ErrorKind::NotFound;
    }
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    match socket(AddressFamily::Packet, SockType::Raw, SockFlag::SOCK_CLOEXEC, None) {
        Ok(_fd) => ErrorKind::Other,
        Err(nix::errno::Errno::EPERM | nix::errno::Errno::EACCES) => ErrorKind::PermissionDenied,
        Err(_) => ErrorKind::Other,
    }
}

fn pcap_error(what: &str, label: &str, e: pcap::Error, kind: ErrorKind) -> Error {
    let text = e.to_string();
    match kind {
        ErrorKind::PermissionDenied => Error::Tool {
            program: "libpcap".into(),
            detail: format!(
                "{what} {label}: {text}: capturing needs CAP_NET_RAW (run as root, or inside \
                 `ctnet-diag world` on its own netns, or give the binary file capabilities: {})",
                crate::privilege::setcap_line(&crate::privilege::own_path())
            ),
            kind,
        },
        _ => Error::Tool {
            program: "libpcap".into(),
            detail: format!("{what} {label}: {text}"),
            kind,
        },
    }
}

/// Open a capture on `ep` (inside its netns) with `opts`. An invalid filter is
/// `InvalidInput` with libpcap's own message.
pub fn open(ep: &Endpoint, opts: &CaptureOptions) -> Result<pcap::Capture<pcap::Active>> {
    let iface = ep.iface.clone();
    let o = opts.clone();
    let opened = ep.netns.run(
        move || -> std::result::Result<pcap::Capture<pcap::Active>, (Option<ErrorKind>, pcap::Error)> {
            let failed = |e| (Some(open_failure_kind(&iface)), e);
            let mut cap = pcap::Capture::from_device(iface.as_str())
                .map_err(failed)?
                .snaplen(o.snaplen)
                .promisc(o.promisc)
                .immediate_mode(o.immediate)
                .buffer_size(o.buffer_size)
                .timeout(o.timeout_ms)
                .open()
                .map_err(failed)?;
            if let Some(f) = &o.filter {
                cap.filter(f, true).map_err(|e| (None, e))?;
            }
            Ok(cap)
        },
    )?;
    match opened {
        Ok(c) => Ok(c),
        Err((None, e)) => Err(Error::Invalid(format!(
            "invalid capture filter {:?}: {e}",
            opts.filter.as_deref().unwrap_or("")
        ))),
        Err((Some(kind), e)) => Err(pcap_error("opening a capture on", &ep.label, e, kind)),
    }
}

/// The MAC of `iface` as seen from inside its netns, to tell in from out.
pub fn iface_mac(ep: &Endpoint) -> Option<[u8; 6]> {
    let iface = ep.iface.clone();
    ep.netns
        .run(move || {
            let mut e = crate::source::rtnl::Rtnl::open().ok()?;
            let (links, _) = e.links(false).ok()?;
            let l = links.into_iter().find(|(l, _)| l.name == iface)?.0;
            let m = l.mac?;
            let bytes: Vec<u8> = m
                .split(':')
                .filter_map(|x| u8::from_str_radix(x, 16).ok())
                .collect();
            bytes.try_into().ok()
        })
        .ok()
        .flatten()
}

/// `in` or `out` of the interface. libpcap's Ethernet link type carries no direction,
/// so it is read from the MACs: on the host end of a veth, frames from the container's
/// MAC came in and all others (its own and what the bridge forwards) go out; elsewhere a
/// frame with the interface's own MAC as source goes out, the rest came in.
pub fn direction(src: Option<[u8; 6]>, hint: DirectionHint) -> &'static str {
    decode::fast::direction(src, hint)
}

/// Format one frame as a line (no newline), with the same formatter as the reader's
/// hot loop, so a merged capture prints exactly what a single one does.
pub fn format_line(
    label: &str,
    ts_us: i64,
    len: u32,
    data: &[u8],
    hint: DirectionHint,
    format: LineFormat,
) -> String {
    let mut buf = Vec::with_capacity(256);
    match format {
        LineFormat::Text => decode::fast::text_line(&mut buf, label, ts_us, len, data, hint),
        LineFormat::Json => decode::fast::json_line(&mut buf, label, ts_us, len, data, hint),
    }
    buf.pop();
    String::from_utf8(buf).unwrap_or_default()
}

/// Parse a MAC written `aa:bb:cc:dd:ee:ff` (as the snapshot holds them).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Open and start a session on `ep`, feeding `sink`, under `control`.
pub fn start(
    index: usize,
    ep: &Endpoint,
    opts: &CaptureOptions,
    sink: Sink,
    control: Arc<Control>,
) -> Result<Session> {
    let mut cap = open(ep, opts)?;
    control
        .breakers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(cap.breakloop_handle());
    let own = DirectionHint {
        own: iface_mac(ep),
        peer: ep.peer_mac,
    };
    let label = ep.label.clone();
    let thread_label = label.clone();
    let thread = std::thread::Builder::new()
        .name(format!("ctnet-capture-{index}"))
        .spawn(move || read_loop(index, &thread_label, &mut cap, &sink, &control, own))
        .map_err(|e| Error::io("starting a capture thread for", &label, e))?;
    Ok(Session {
        label,
        hint: own,
        thread,
    })
}

fn read_loop(
    index: usize,
    label: &str,
    cap: &mut pcap::Capture<pcap::Active>,
    sink: &Sink,
    control: &Control,
    own: DirectionHint,
) -> SessionStats {
    let mut stats = SessionStats {
        label: label.to_string(),
        ..SessionStats::default()
    };
    // Lines are formatted into one buffer per batch and written with one lock.
    let mut batch: Vec<u8> = Vec::with_capacity(1 << 16);
    while !control.stopped() {
        let mut captured = 0u64;
        let r = cap.dispatch(None, |p| {
            if control.stopped() || !control.take() {
                return;
            }
            captured += 1;
            // time_t and suseconds_t are i64 on every 64-bit Linux; widen where not.
            #[allow(clippy::useless_conversion)]
            let ts_us = i64::from(p.header.ts.tv_sec) * 1_000_000 + i64::from(p.header.ts.tv_usec);
            match sink {
                Sink::Pcap(file) => {
                    let mut w = file.lock().unwrap_or_else(|e| e.into_inner());
                    // A full disk stops every session: nothing is counted that was
                    // not written.
                    if !w.write(index as u32, ts_us, p.header.len, p.data) {
                        captured -= 1;
                        control.stop();
                    }
                }
                Sink::Lines { format, out } => {
                    match format {
                        LineFormat::Json => {
                            decode::fast::json_line(&mut batch, label, ts_us, p.header.len, p.data, own)
                        }
                        LineFormat::Text => {
                            decode::fast::text_line(&mut batch, label, ts_us, p.header.len, p.data, own)
                        }
                    }
                    // A dispatch under a flood may run on for many blocks: write out as
                    // it goes, so the buffer stays small.
                    if batch.len() >= 1 << 18 {
                        if out
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .write_all(&batch)
                            .is_err()
                        {
                            control.stop();
                        }
                        batch.clear();
                    }
                }
                Sink::Ring(ring) => ring.push(Frame {
                    session: index,
                    ts_us,
                    len: p.header.len,
                    data: p.data.to_vec(),
                }),
            }
        });
        stats.captured += captured;
        if let Sink::Lines { out, .. } = sink
            && !batch.is_empty()
        {
            // Each batch reaches the reader at once (a ping is seen as it happens); a
            // reader that went away (`| head`) ends the capture.
            let mut w = out.lock().unwrap_or_else(|e| e.into_inner());
            if w.write_all(&batch).and_then(|_| w.flush()).is_err() {
                control.stop();
            }
            batch.clear();
        }
        match r {
            Ok(_) | Err(pcap::Error::TimeoutExpired) => {}
            Err(_) if control.stopped() => break,
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => {
                stats.ended = Some(format!("capture on {label} ended: {e}"));
                break;
            }
        }
    }
    if let Ok(s) = cap.stats() {
        stats.received = u64::from(s.received);
        stats.dropped_by_kernel = u64::from(s.dropped);
        stats.dropped_by_interface = u64::from(s.if_dropped);
    }
    match sink {
        Sink::Lines { out, .. } => {
            let _ = out.lock().unwrap_or_else(|e| e.into_inner()).flush();
        }
        // The file is finished once, by its owner, after every session ended.
        Sink::Pcap(_) | Sink::Ring(_) => {}
    }
    stats
}

/// The snaplen a pcap file gets (libpcap's dead handles write 65535 in the header):
/// captures meant for a file keep at most this much of each frame, so every record
/// fits what the header promises.
pub const FILE_SNAPLEN: i32 = 65_535;

/// Check a BPF filter without opening a live capture (before creating files).
pub fn check_filter(filter: &str) -> Result<()> {
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET)
        .map_err(|e| pcap_error("preparing a filter check for", filter, e, ErrorKind::Other))?;
    dead.compile(filter, true)
        .map(|_| ())
        .map_err(|e| Error::Invalid(format!("invalid capture filter {filter:?}: {e}")))
}

/// The format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic pcap: one link type, no interface per packet.
    Pcap,
    /// pcapng: an interface block per captured interface, each packet naming its own.
    Pcapng,
}

impl FileFormat {
    /// pcapng for a name ending in `.pcapng`, or when more than one interface is
    /// captured (plain pcap would lose where each packet was seen); pcap otherwise.
    pub fn for_file(path: &Path, interfaces: usize) -> Self {
        let ng = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("pcapng"));
        if ng || interfaces > 1 {
            Self::Pcapng
        } else {
            Self::Pcap
        }
    }

    /// `pcap` or `pcapng`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pcap => "pcap",
            Self::Pcapng => "pcapng",
        }
    }
}

/// A capture file written through an [`OutputFile`]: classic pcap (Ethernet,
/// microseconds, snaplen [`FILE_SNAPLEN`]) or pcapng with an interface block per
/// interface; created safely, each error kept with the path, and a count of the
/// records that are really in the file.
#[derive(Debug)]
pub struct PcapWriter {
    file: OutputFile,
    format: FileFormat,
    /// Records not yet handed to the kernel, and where each ends in `batch`.
    batch: Vec<u8>,
    ends: Vec<usize>,
    /// Bytes and records the kernel has taken.
    offset: u64,
    written: u64,
    error: Option<std::io::Error>,
}

/// Of a batch whose records end at `ends`, with `done` bytes written: how many records
/// are whole, and how many bytes those take (what a file cut short keeps).
fn whole_records(ends: &[usize], done: usize) -> (usize, usize) {
    let whole = ends.iter().take_while(|&&end| end <= done).count();
    (whole, whole.checked_sub(1).map_or(0, |i| ends[i]))
}

/// How much a [`PcapWriter`] gathers before one `write(2)`.
const PCAP_BATCH: usize = 1 << 16;

impl PcapWriter {
    /// Create `path` (see [`OutputFile`]) as a classic pcap file and write its header.
    pub fn create(path: &Path) -> Result<Self> {
        let mut head = Vec::with_capacity(PCAP_BATCH + 256);
        head.extend_from_slice(&0xa1b2_c3d4u32.to_ne_bytes());
        head.extend_from_slice(&2u16.to_ne_bytes());
        head.extend_from_slice(&4u16.to_ne_bytes());
        head.extend_from_slice(&[0u8; 8]);
        head.extend_from_slice(&(FILE_SNAPLEN as u32).to_ne_bytes());
        head.extend_from_slice(&1u32.to_ne_bytes());
        Self::start(path, FileFormat::Pcap, head)
    }

    /// Create `path` as pcapng: the section header, then one interface description
    /// block per entry of `interfaces`, whose index is what [`PcapWriter::write`] takes.
    pub fn create_pcapng(path: &Path, application: &str, interfaces: &[pcapng::Interface]) -> Result<Self> {
        let mut w = pcapng::Writer::new(application);
        for i in interfaces {
            w.interface(i);
        }
        let mut head = w.into_bytes();
        head.reserve(PCAP_BATCH);
        Self::start(path, FileFormat::Pcapng, head)
    }

    /// Create `path` in `format`, the interfaces described as pcapng wants them.
    pub fn create_as(
        path: &Path,
        format: FileFormat,
        application: &str,
        interfaces: &[pcapng::Interface],
    ) -> Result<Self> {
        match format {
            FileFormat::Pcap => Self::create(path),
            FileFormat::Pcapng => Self::create_pcapng(path, application, interfaces),
        }
    }

    fn start(path: &Path, format: FileFormat, head: Vec<u8>) -> Result<Self> {
        let mut w = Self {
            file: OutputFile::create(path)?,
            format,
            batch: head,
            ends: Vec::new(),
            offset: 0,
            written: 0,
            error: None,
        };
        w.drain();
        match w.error.take() {
            Some(e) => Err(Error::io("writing", path, e)),
            None => Ok(w),
        }
    }

    /// Hand the batch to the kernel; on an error keep only whole records in the file.
    fn drain(&mut self) {
        let mut done = 0;
        while done < self.batch.len() {
            match self.file.write(&self.batch[done..]) {
                Ok(0) => {
                    self.error = Some(std::io::Error::from(std::io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
        let (whole, keep) = whole_records(&self.ends, done);
        self.written += whole as u64;
        if self.error.is_some() {
            // A record cut in half would make the whole file unreadable to some
            // readers: cut the file back to the last whole record.
            let _ = self.file.truncate(self.offset + keep as u64);
            self.offset += keep as u64;
        } else {
            self.offset += done as u64;
        }
        self.batch.clear();
        self.ends.clear();
    }

    /// The file's format.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Add one record seen on `interface` (an index into the interfaces the file was
    /// created with; ignored by pcap), `data` cut to [`FILE_SNAPLEN`]; false once a
    /// write failed, after which nothing more is written.
    pub fn write(&mut self, interface: u32, ts_us: i64, len: u32, data: &[u8]) -> bool {
        if self.error.is_some() {
            return false;
        }
        let data = &data[..data.len().min(FILE_SNAPLEN as usize)];
        match self.format {
            FileFormat::Pcap => {
                self.batch
                    .extend_from_slice(&(ts_us.div_euclid(1_000_000) as u32).to_ne_bytes());
                self.batch
                    .extend_from_slice(&(ts_us.rem_euclid(1_000_000) as u32).to_ne_bytes());
                self.batch.extend_from_slice(&(data.len() as u32).to_ne_bytes());
                self.batch
                    .extend_from_slice(&len.max(data.len() as u32).to_ne_bytes());
                self.batch.extend_from_slice(data);
            }
            FileFormat::Pcapng => pcapng::packet_block(&mut self.batch, interface, ts_us, len, data),
        }
        self.ends.push(self.batch.len());
        if self.batch.len() >= PCAP_BATCH {
            self.drain();
        }
        self.error.is_none()
    }

    /// Hand what is gathered to the kernel now (a reader at the other end of a FIFO or
    /// pipe sees packets as they come, not 64 KiB at a time).
    pub fn flush(&mut self) {
        if self.error.is_none() && !self.batch.is_empty() {
            self.drain();
        }
    }

    /// Records in the file so far (those still gathered are not counted).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The first write error, if any.
    pub fn failed(&self) -> Option<&std::io::Error> {
        self.error.as_ref()
    }

    /// The path being written.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Write what is gathered, sync, and put the file in place: the records in it, or
    /// the error with the path and the records the file keeps. A capture cut short by a
    /// full disk keeps its whole records: the file is put in place all the same.
    pub fn finish(mut self) -> std::result::Result<u64, (u64, Error)> {
        if self.error.is_none() && !self.batch.is_empty() {
            self.drain();
        }
        let path = self.path().to_path_buf();
        let written = self.written;
        let first = self.error.take();
        match (first, self.file.commit()) {
            (None, Ok(())) => Ok(written),
            (Some(e), Ok(())) => Err((written, Error::io("writing", &path, e))),
            (Some(e), Err(_)) => Err((0, Error::io("writing", &path, e))),
            (None, Err(e)) => Err((0, e)),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn reorder_holds_late_frames_back_and_releases_in_time_order() {
        let f = |session: usize, ts_us: i64| Frame {
            session,
            ts_us,
            len: 60,
            data: vec![],
        };
        let mut r = Reorder::default();
        // Interface 1's batch arrives first, interface 0's older frame after it.
        r.push([f(1, 1_000_441), f(1, 1_200_000)]);
        assert!(r.ready(false, 1_100_000).is_empty(), "nothing is old enough yet");
        r.push([f(0, 1_000_429)]);
        let out: Vec<i64> = r.ready(false, 1_400_000).iter().map(|x| x.ts_us).collect();
        assert_eq!(out, vec![1_000_429, 1_000_441]);
        assert_eq!(r.held(), 1);
        // A quiet link: the clock moving on releases the last frame.
        assert_eq!(r.ready(false, 1_900_000).len(), 1);
        r.push([f(0, 5), f(1, 3)]);
        let out: Vec<i64> = r.ready(true, 0).iter().map(|x| x.ts_us).collect();
        assert_eq!(out, vec![3, 5], "all at the end, in order");
    }

    #[test]
    fn parses_macs_and_refuses_anything_else() {
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some([2, 0x42, 0xac, 0x11, 0, 2]));
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "zz:42:ac:11:00:02",
            "02:42:ac:11::02",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }

    use super::*;

    fn frame(i: u8) -> Frame {
        Frame {
            session: 0,
            ts_us: i64::from(i),
            len: 60,
            data: vec![i; 60],
        }
    }

    #[test]
    fn ring_is_bounded_and_counts_what_it_evicts() {
        let r = Ring::new(3);
        for i in 0..5 {
            r.push(frame(i));
        }
        assert_eq!(r.evicted(), 2);
        let got: Vec<i64> = r.drain().iter().map(|f| f.ts_us).collect();
        assert_eq!(got, [2, 3, 4]);
        assert!(r.is_empty());
    }

    #[test]
    fn capture_files_are_0600_but_devices_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ctnet-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("old.pcap");
        std::fs::write(&old, b"x").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut w = PcapWriter::create(&old).unwrap();
        assert!(w.write(0, 1_500_000, 60, &[0u8; 60]));
        assert_eq!(w.finish().unwrap(), 1);
        assert_eq!(
            std::fs::metadata(&old).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // libpcap reads it back: one record, its time and length.
        let mut cap = pcap::Capture::from_file(&old).unwrap();
        let p = cap.next_packet().unwrap();
        assert_eq!(
            (p.header.ts.tv_sec, p.header.ts.tv_usec, p.header.len),
            (1, 500_000, 60)
        );
        assert!(cap.next_packet().is_err());
        let _ = std::fs::remove_dir_all(&dir);
        // Writing to /dev/null must not touch its mode (it is everyone's).
        let before = std::fs::metadata("/dev/null").unwrap().permissions().mode();
        if let Ok(f) = PcapWriter::create(Path::new("/dev/null")) {
            let _ = f.finish();
        }
        assert_eq!(
            std::fs::metadata("/dev/null").unwrap().permissions().mode(),
            before
        );
    }

    #[test]
    fn a_batch_cut_short_keeps_only_whole_records() {
        let ends = [100, 250, 400];
        assert_eq!(whole_records(&ends, 0), (0, 0));
        assert_eq!(whole_records(&ends, 60), (0, 0), "half the first record: nothing");
        assert_eq!(whole_records(&ends, 100), (1, 100));
        assert_eq!(whole_records(&ends, 399), (2, 250));
        assert_eq!(whole_records(&ends, 400), (3, 400));
        assert_eq!(whole_records(&[], 0), (0, 0));
    }

    #[test]
    fn a_full_disk_is_reported_and_never_counted() {
        match PcapWriter::create(Path::new("/dev/full")) {
            // The header alone may already fail, or only at the flush.
            Err(e) => assert!(e.to_string().contains("/dev/full"), "{e}"),
            Ok(mut w) => {
                for _ in 0..10_000 {
                    w.write(0, 0, 1500, &[0u8; 1500]);
                }
                assert!(w.failed().is_some() || w.written() > 0);
                let (kept, e) = w.finish().unwrap_err();
                assert!(e.to_string().contains("/dev/full"), "{e}");
                assert!(e.to_string().contains("No space left"), "{e}");
                assert_eq!(kept, 0, "nothing reached /dev/full");
            }
        }
    }

    #[test]
    fn budget_stops_after_exactly_n_packets() {
        let c = Control::new(Some(3));
        let taken = (0..10).filter(|_| c.take()).count();
        assert_eq!(taken, 3);
        assert!(c.stopped());
        let unlimited = Control::new(None);
        assert!((0..1000).all(|_| unlimited.take()));
    }

    #[test]
    fn direction_is_read_from_the_macs() {
        let inside = DirectionHint {
            own: Some([2, 0, 0, 0, 0, 1]),
            peer: None,
        };
        assert_eq!(direction(Some([2, 0, 0, 0, 0, 1]), inside), "out");
        assert_eq!(direction(Some([2, 0, 0, 0, 0, 9]), inside), "in");
        assert_eq!(direction(None, inside), "?");
        // Host end of a veth: only the container (peer) sends into it.
        let host_end = DirectionHint {
            own: Some([2, 0, 0, 0, 0, 7]),
            peer: Some([2, 0, 0, 0, 0, 1]),
        };
        assert_eq!(direction(Some([2, 0, 0, 0, 0, 1]), host_end), "in");
        assert_eq!(
            direction(Some([2, 0, 0, 0, 0, 9]), host_end),
            "out",
            "forwarded by the bridge"
        );
    }
}
