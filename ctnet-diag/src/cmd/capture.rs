//! `ctnet-diag capture TARGET... [-f BPF] [-c N] [-w FILE] [--json] [--both] [--follow]`:
//! tcpdump on any interface in any netns, several at once, merged in time order.

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use ctnet_core::capture::{
    self, CaptureOptions, Control, Endpoint, Frame, LineFormat, Ring, Sink, follow, plan,
};
use ctnet_core::model::Snapshot;
use ctnet_core::target::TargetKind;
use ctnet_core::topology::Topology;
use nix::sys::signal::{SigSet, Signal};

use crate::cli::CaptureArgs;
use crate::cmd::read::{load, resolve_target};

/// Frames a merging or following capture keeps in memory at most.
const RING_FRAMES: usize = 200_000;
/// Frames `--follow` keeps for its summary at most (the oldest go first).
const FOLLOW_FRAMES: usize = 200_000;

fn esc_text(s: &str) -> String {
    ctnet_core::text::escape(s).into_owned()
}

/// Turn targets into endpoints: a host interface as it is; a container or netns as
/// each of its interfaces (and, with `--both`, the host veth of each).
fn endpoints(snap: &Snapshot, args: &CaptureArgs) -> Result<Vec<Endpoint>, ExitCode> {
    let topo = Topology::build(snap);
    let mut planned = Vec::new();
    for t in &args.targets {
        let r = resolve_target(snap, t)?;
        if r.kind == TargetKind::HostInterface {
            planned.push(plan::host_iface(snap, &topo, t));
            continue;
        }
        // The target as typed and the note on it (a container's name and state) are
        // shown escaped, like every name.
        let t = &esc_text(t);
        let note = r.note.as_deref().map(esc_text);
        let Some(key) = r.netns else {
            crate::say!(
                "ctnet-diag: {}",
                note.unwrap_or_else(|| format!("{t} has no netns"))
            );
            return Err(ExitCode::from(crate::exit::USAGE));
        };
        if key == snap.host {
            crate::say!(
                "ctnet-diag: {t} is in the host netns ({}): capture one of its host interfaces by name",
                note.unwrap_or_default()
            );
            return Err(ExitCode::from(crate::exit::USAGE));
        }
        let Some(view) = topo.netns.iter().find(|n| n.key == key) else {
            crate::say!("ctnet-diag: the netns of {t} is not in the snapshot");
            return Err(ExitCode::from(crate::exit::INTERNAL));
        };
        if view.ifaces.is_empty() {
            crate::say!("ctnet-diag: {t} has only lo: nothing to capture between it and anything");
            return Err(ExitCode::from(crate::exit::USAGE));
        }
        let name = r
            .container
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_else(|| view.label.clone());
        planned.extend(plan::netns(snap, &topo, key, &name, plan::Ifaces::All, args.both));
    }
    // A label in a text line is escaped (names are the kernel's or a user's); JSON
    // lines carry it exact, serde escapes what JSON needs.
    let mut out = Vec::with_capacity(planned.len());
    for p in planned {
        let mut ep = p.open().map_err(|e| {
            crate::say!("ctnet-diag: opening the netns of {}: {e}", esc_text(&p.label));
            ExitCode::from(if p.netns == snap.host {
                crate::exit::INTERNAL
            } else {
                crate::exit::ENV
            })
        })?;
        if !args.json {
            ep.label = esc_text(&ep.label);
        }
        out.push(ep);
    }
    Ok(out)
}

/// What a pcapng file says of each endpoint, in session order: its label as the
/// interface's name (`eth0@web1`, unique where plain names repeat across netns), where
/// it is as the description, Ethernet, the snaplen.
fn file_interfaces(snap: &Snapshot, eps: &[Endpoint], snaplen: i32) -> Vec<capture::pcapng::Interface> {
    let esc = |s: &str| ctnet_core::text::escape(s).into_owned();
    eps.iter()
        .map(|e| capture::pcapng::Interface {
            name: e.label.clone(),
            description: if e.netns.key() == snap.host {
                format!("{} in the host netns", esc(&e.iface))
            } else {
                format!("{} in netns {}", esc(&e.iface), esc(&e.netns.label()))
            },
            link_type: capture::pcapng::LINKTYPE_ETHERNET,
            snaplen: snaplen.max(0) as u32,
        })
        .collect()
}

/// Print merged frames older than the hold-back window (all of them at the end), at
/// most `limit` in all: with `-c N` over several interfaces the first N in time order.
struct Merger {
    pending: capture::Reorder,
    labels: Vec<String>,
    own: Vec<capture::DirectionHint>,
    format: LineFormat,
    limit: Option<u64>,
    shown: u64,
    /// The time of the last frame shown once the limit was reached.
    cut_at: Option<i64>,
}

impl Merger {
    fn flush(&mut self, all: bool, out: &mut impl Write) {
        // Held back from now as well as from the newest frame: a `-c N` reached in one
        // burst must not wait forever for a frame that never comes.
        for f in self.pending.ready(all, capture::now_us()) {
            if self.cut_at.is_some() {
                continue;
            }
            let line = capture::format_line(
                &self.labels[f.session],
                f.ts_us,
                f.len,
                &f.data,
                self.own[f.session],
                self.format,
            );
            if writeln!(out, "{line}").is_err() {
                return;
            }
            self.shown += 1;
            if self.limit.is_some_and(|n| self.shown >= n) {
                self.cut_at = Some(f.ts_us);
            }
        }
        let _ = out.flush();
    }
}

/// `ctnet-diag capture`.
pub fn run(mut args: CaptureArgs) -> anyhow::Result<ExitCode> {
    if let Some(t) = args.targets.first().cloned() {
        crate::cmd::read::pick_node(&mut args.source, &t);
    }
    // Ctrl-C, SIGTERM and SIGHUP are taken by one thread (sigwait), which stops every reader;
    // blocked here first so every thread inherits the mask.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGHUP);
    signals
        .thread_block()
        .context("blocking SIGINT, SIGTERM and SIGHUP")?;
    // The packet budget is set once the interfaces are known (see below).
    let control = Control::new(None);
    {
        // Taken from the start (the scan and the daemon calls too). A second Ctrl-C
        // ends the process even if a reader is stuck writing to a blocked pipe.
        let control = control.clone();
        std::thread::Builder::new()
            .name("ctnet-signals".into())
            .spawn(move || {
                let mut seen = 0;
                while signals.wait().is_ok() {
                    seen += 1;
                    if seen > 1 {
                        std::process::exit(130);
                    }
                    control.stop();
                }
            })
            .context("starting the signal thread")?;
    }

    if let Some(f) = &args.filter {
        // Before anything is created.
        capture::check_filter(f)?;
    }
    if args.source.from.is_some() {
        anyhow::bail!(ctnet_core::Error::Invalid(
            "capture needs a live host: --from FILE holds no packets (open a pcap with tcpdump -r, \
             or drop --from to capture here)"
                .into()
        ));
    }
    let snap = load(&args.source)?;
    if control.stopped() {
        return Ok(ExitCode::SUCCESS);
    }
    let eps = match endpoints(&snap, &args) {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let opts = CaptureOptions {
        // A pcap file's header promises 65535 bytes at most per record.
        snaplen: if args.write.is_some() {
            args.snaplen.min(capture::FILE_SNAPLEN)
        } else {
            args.snaplen
        },
        immediate: args.immediate,
        promisc: args.promisc,
        buffer_size: args.buffer_size.saturating_mul(1024),
        filter: args.filter.clone(),
        ..CaptureOptions::default()
    };
    let merging = eps.len() > 1 || args.follow;
    // Merged lines: `-c N` is the first N in time order, counted by the merger (readers
    // racing for a shared budget would show whichever interface came first). A file or
    // one interface: the readers count exactly.
    let merger_counts = merging && args.write.is_none();
    if let Some(n) = args.count
        && !merger_counts
    {
        control.limit(n);
    }
    let ring = Arc::new(Ring::new(RING_FRAMES));
    let format = if args.json {
        LineFormat::Json
    } else {
        LineFormat::Text
    };
    let stdout_latch = crate::out::Latch::new(std::io::stdout());
    let stdout_error = stdout_latch.error.clone();
    let pcap = match &args.write {
        Some(path) => {
            let format = capture::FileFormat::for_file(path, eps.len());
            let interfaces = file_interfaces(&snap, &eps, opts.snaplen);
            Some(Arc::new(Mutex::new(capture::PcapWriter::create_as(
                path,
                format,
                &format!("ctnet-diag {} capture", env!("CARGO_PKG_VERSION")),
                &interfaces,
            )?)))
        }
        None => None,
    };
    let sink = match &pcap {
        Some(w) => Sink::Pcap(w.clone()),
        None if merging => Sink::Ring(ring.clone()),
        None => Sink::Lines {
            out: Arc::new(Mutex::new(Box::new(std::io::BufWriter::with_capacity(
                1 << 16,
                stdout_latch,
            )))),
            format,
        },
    };
    let mut sessions = Vec::new();
    for (i, ep) in eps.iter().enumerate() {
        match capture::start(i, ep, &opts, sink.clone(), control.clone()) {
            Ok(s) => sessions.push(s),
            Err(e) => {
                control.stop();
                for s in sessions {
                    let _ = s.join();
                }
                return Err(e.into());
            }
        }
    }
    drop(sink);
    let labels: Vec<String> = eps.iter().map(|e| e.label.clone()).collect();
    crate::say!(
        "ctnet-diag: capturing on {}{} (Ctrl-C to stop)",
        ctnet_core::text::escape(&labels.join(", ")),
        match (&args.write, &pcap) {
            (Some(p), Some(w)) => format!(
                ", writing {} ({})",
                ctnet_core::text::path(p),
                w.lock().unwrap_or_else(|e| e.into_inner()).format().name()
            ),
            _ => String::new(),
        }
    );
    let mut merger = Merger {
        pending: capture::Reorder::default(),
        labels: labels.clone(),
        // Read once, when each session started.
        own: sessions.iter().map(capture::Session::hint).collect(),
        format,
        limit: if merger_counts { args.count } else { None },
        shown: 0,
        cut_at: None,
    };
    let mut followed: Vec<Frame> = Vec::new();
    let mut follow_dropped = 0u64;
    let mut stdout = std::io::BufWriter::new(crate::out::Latch::new(std::io::stdout()));
    let merged_error = stdout.get_ref().error.clone();
    // Once `-c N` is reached, readers run on for one hold-back window, so the last
    // packets' copies on the other interfaces are seen too (for --follow).
    let mut stop_at: Option<std::time::Instant> = None;
    let mut finished: Vec<capture::SessionStats> = Vec::new();
    let mut running = sessions;
    while !running.is_empty() {
        std::thread::sleep(Duration::from_millis(100));
        if merging && args.write.is_none() {
            let batch = ring.drain();
            if args.follow {
                followed.extend(batch.iter().cloned());
                if followed.len() > FOLLOW_FRAMES {
                    let extra = followed.len() - FOLLOW_FRAMES;
                    followed.drain(..extra);
                    follow_dropped += extra as u64;
                }
            }
            merger.pending.push(batch);
            merger.flush(false, &mut stdout);
            if merger.cut_at.is_some() && stop_at.is_none() {
                stop_at = Some(std::time::Instant::now() + Duration::from_millis(400));
            }
            if stop_at.is_some_and(|t| std::time::Instant::now() >= t) {
                control.stop();
            }
            if merged_error.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                control.stop();
            }
        }
        if let Some(w) = &pcap {
            w.lock().unwrap_or_else(|p| p.into_inner()).flush();
        }
        let (done, still): (Vec<_>, Vec<_>) = running.into_iter().partition(|s| s.is_finished());
        running = still;
        for s in done {
            let st = s.join();
            if let Some(why) = &st.ended {
                // Others go on: say so now, not only at the end.
                crate::say!("ctnet-diag: {}", ctnet_core::text::Esc(why));
            }
            finished.push(st);
        }
    }
    if merging && args.write.is_none() {
        let batch = ring.drain();
        if args.follow {
            followed.extend(batch.iter().cloned());
        }
        merger.pending.push(batch);
        merger.flush(true, &mut stdout);
    }
    if args.follow {
        let lost: u64 =
            finished.iter().map(|s| s.dropped_by_kernel).sum::<u64>() + ring.evicted() + follow_dropped;
        if lost > 0 {
            let _ = writeln!(
                stdout,
                "note: {lost} packets were dropped before they could be followed: \"not seen\" below may be wrong"
            );
        }
        let mut tracks = follow::follow(&followed, 1_000_000);
        if let Some(cut) = merger.cut_at {
            // Packets first seen after the N-th were cut by the count, not lost.
            tracks.retain(|t| t.hops.first().is_some_and(|h| h.1 <= cut));
        }
        let _ = writeln!(
            stdout,
            "-- where each packet was seen ({} packets) --",
            tracks.len()
        );
        for t in &tracks {
            let hops: Vec<String> = t
                .hops
                .iter()
                .map(|(s, _, n)| {
                    if *n > 1 {
                        format!("{} x{n}", labels[*s])
                    } else {
                        labels[*s].clone()
                    }
                })
                .collect();
            let missing: Vec<&str> = labels
                .iter()
                .enumerate()
                .filter(|(i, _)| !t.hops.iter().any(|h| h.0 == *i))
                .map(|(_, l)| l.as_str())
                .collect();
            let _ = writeln!(
                stdout,
                "{}: {}{}",
                t.packet,
                hops.join(" -> "),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!("  (not seen on {})", missing.join(", "))
                }
            );
        }
        let _ = stdout.flush();
    }
    let _ = stdout.flush();
    finished.sort_by_key(|s| labels.iter().position(|l| *l == s.label));
    // A file that could not take everything: what it keeps is said below, and no line
    // claims more packets than that.
    let write_failed = pcap
        .as_ref()
        .is_some_and(|w| w.lock().unwrap_or_else(|p| p.into_inner()).failed().is_some());
    for s in &finished {
        let captured = if write_failed {
            String::new()
        } else {
            format!("{} packets captured, ", s.captured)
        };
        crate::say!(
            "{}: {captured}{} received by filter, {} dropped by kernel, {} dropped by interface",
            ctnet_core::text::Esc(&s.label),
            s.received,
            s.dropped_by_kernel,
            s.dropped_by_interface
        );
    }
    if ring.evicted() > 0 {
        crate::say!(
            "{} packets dropped by ctnet (output slower than the traffic)",
            ring.evicted()
        );
    }
    if let Some(s) = finished.iter().find(|s| s.panicked) {
        // A bug, never a capture that ended well.
        return Err(
            ctnet_core::Error::panic(format!("the capture on {}", s.label), &"a reader thread").into(),
        );
    }
    for slot in [&stdout_error, &merged_error] {
        if let Some(e) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(crate::out::stdout_error(e));
        }
    }
    if let Some(w) = pcap {
        let Ok(w) = Arc::try_unwrap(w) else {
            anyhow::bail!("internal: a capture session still holds the pcap file");
        };
        let w = w.into_inner().unwrap_or_else(|p| p.into_inner());
        let path = ctnet_core::text::path(w.path()).into_owned();
        match w.finish() {
            Ok(n) => crate::say!("{n} packets written to {path}"),
            Err((kept, e)) => {
                return Err(anyhow::Error::new(crate::out::WriteFailed {
                    what: format!("{path} (the file keeps the first {kept} packets)"),
                    source: match e {
                        ctnet_core::Error::Io { source, .. } => source,
                        other => std::io::Error::other(other.to_string()),
                    },
                }));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
