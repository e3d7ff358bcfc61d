//! Kernel drop reasons of the probe's packets: the `skb:kfree_skb` tracepoint, read
//! through a tracefs instance of ctnet's own, gives the reason and the code location of
//! every packet the kernel frees as dropped (`NEIGH_FAILED`, `IP_RPFILTER`, `OTHERHOST`,
//! `NETFILTER_DROP`, ...), drops outside netfilter included. No eBPF toolchain needed.
//!
//! The instance (`instances/ctnet-PID`) has its own buffer and its own event switch, so
//! the host's global trace buffer and anyone else's settings stay untouched; removing
//! the instance removes its filter and switch with it. It is removed when the watch
//! stops or is dropped; a run killed before that leaves it, and the next run removes
//! every `ctnet-*` instance nobody holds open (the kernel refuses to remove an instance
//! whose files are open, so a running probe's instance is safe from another's sweep).
//!
//! The tracepoint is host-wide and carries no network namespace: drops are attributed
//! to the probe by its time window and protocol (IPv4 and ARP), and those freed in the
//! context of the probe's own sending process are marked as such. Where tracefs is not
//! mounted, a detached tracefs mount is made for the watch alone (`fsopen`/`fsmount`),
//! so nothing changes in the host's mount table. A rootless namespace cannot use tracefs
//! at all: the watch then fails with that reason, and the probe goes on without it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Instances ctnet makes: this prefix and the pid of the process.
pub const INSTANCE_PREFIX: &str = "ctnet-";
/// The instance's buffer per CPU, in KiB (a probe sees a handful of drops).
const BUFFER_KB: &str = "256";
/// Most bytes of the instance's `trace` read back.
const MAX_READ: u64 = 8 << 20;
/// Most drop lines kept (distinct reason, location and task).
const MAX_DROPS: usize = 200;

/// Packets the kernel dropped during the probe, grouped by reason, location and task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelDrop {
    /// The kernel's drop reason (`IP_RPFILTER`, `NEIGH_FAILED`, ...).
    pub reason: String,
    /// The code that freed the packet (`ip_rcv_finish_core+0x2b9/0x4c0`).
    pub location: String,
    /// `ipv4` or `arp`.
    pub protocol: String,
    /// The task the kernel ran in when it dropped (`ping-4242`; softirq work runs in
    /// whatever task was on the CPU).
    pub task: String,
    /// How many packets.
    pub count: u32,
    /// Dropped in the context of one of the probe's own senders: surely the probe's.
    pub own: bool,
}

impl KernelDrop {
    /// The function of `location`, without its offset (`ip_rcv_finish_core`).
    pub fn function(&self) -> &str {
        self.location.split('+').next().unwrap_or(&self.location)
    }
}

/// A tracefs root: a mounted one, or a detached mount held by its fd.
struct Root {
    path: PathBuf,
    _mount: Option<OwnedFd>,
}

fn tracefs_error(detail: String, kind: ErrorKind) -> Error {
    Error::Tool {
        program: "tracefs".into(),
        detail,
        kind,
    }
}

/// A detached tracefs mount (`fsopen`, `fsconfig`, `fsmount`): nothing is added to any
/// mount table, and it goes away with its last fd.
fn detached_tracefs() -> std::io::Result<OwnedFd> {
    let fs = c"tracefs";
    // SAFETY: fsopen(2) with a valid NUL-terminated name and no flags; the result is a
    // new fd or -1.
    let fsfd = unsafe { libc::syscall(libc::SYS_fsopen, fs.as_ptr(), 0) };
    if fsfd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fsfd is a fresh fd that nothing else owns.
    let fsfd = unsafe { OwnedFd::from_raw_fd(fsfd as i32) };
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    // SAFETY: fsconfig(2) CREATE takes no key, value or aux.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fsmount(2) on the configured context, no flags, no attributes.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fsfd.as_raw_fd(), 0, 0) };
    if m < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: m is a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(m as i32) })
}

fn root() -> Result<Root> {
    for p in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let path = PathBuf::from(p);
        if path.join("instances").is_dir() {
            return Ok(Root { path, _mount: None });
        }
    }
    match detached_tracefs() {
        Ok(fd) => Ok(Root {
            path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            _mount: Some(fd),
        }),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => Err(tracefs_error(
            format!(
                "tracefs is not mounted and mounting it needs CAP_SYS_ADMIN of the host ({e}); \
                 a rootless namespace cannot use it"
            ),
            ErrorKind::PermissionDenied,
        )),
        Err(e) => Err(tracefs_error(
            format!("tracefs is not mounted and cannot be ({e}): mount -t tracefs nodev /sys/kernel/tracing"),
            ErrorKind::Unsupported,
        )),
    }
}

fn write(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io("writing", path.display().to_string(), e))
}

/// The number the running kernel gives `NOT_SPECIFIED`, from the event's format (the
/// numbers change between kernels).
fn not_specified(format: &str) -> Option<u32> {
    let at = format.find("\"NOT_SPECIFIED\"")?;
    let open = format[..at].rfind('{')?;
    format[open + 1..at]
        .trim()
        .trim_end_matches(',')
        .trim()
        .parse()
        .ok()
}

/// Remove the `ctnet-*` instances of runs that are gone (nobody holds them open);
/// returns the instances removed.
pub fn remove_leftovers() -> Result<Vec<String>> {
    let root = root()?;
    Ok(sweep(&root))
}

fn sweep(root: &Root) -> Vec<String> {
    let own = format!("{INSTANCE_PREFIX}{}", std::process::id());
    let mut gone = Vec::new();
    let Ok(dir) = std::fs::read_dir(root.path.join("instances")) else {
        return gone;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(INSTANCE_PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        // Alive here: leave it (in another pid namespace the number may be anyone's,
        // and there the kernel's EBUSY on an open instance protects it).
        if name == own || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if std::fs::remove_dir(e.path()).is_ok() {
            gone.push(name);
        }
    }
    gone
}

/// The open event switch of this process's running watch: held here, not in the watch,
/// so that [`remove_own`] can close it (the kernel removes no instance with an open file).
static ENABLE: std::sync::Mutex<Option<File>> = std::sync::Mutex::new(None);

fn close_enable() {
    let f = ENABLE.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(mut f) = f {
        let _ = f.write_all(b"0");
    }
}

/// Remove this process's instance, if any: for a signal handler that ends the process
/// while a probe runs.
pub fn remove_own() {
    close_enable();
    if let Ok(root) = root() {
        let _ = std::fs::remove_dir(
            root.path
                .join("instances")
                .join(format!("{INSTANCE_PREFIX}{}", std::process::id())),
        );
    }
}

/// A running watch of `skb:kfree_skb`.
///
/// The event's switch stays open while it runs: the kernel will not remove an instance
/// with an open file, so another run's sweep leaves this one alone.
pub struct DropWatch {
    /// Held for its detached mount (when there is one): `dir` lies inside it.
    _root: Root,
    dir: PathBuf,
}

impl DropWatch {
    /// Start recording IPv4 and ARP packets the kernel drops for a reason.
    pub fn start() -> Result<DropWatch> {
        let root = root()?;
        sweep(&root);
        let format_path = root.path.join("events/skb/kfree_skb/format");
        let format = std::fs::read_to_string(&format_path).map_err(|e| {
            tracefs_error(
                format!("this kernel has no skb:kfree_skb tracepoint ({e})"),
                ErrorKind::of_io(&e),
            )
        })?;
        if !format.contains("reason") {
            return Err(tracefs_error(
                "this kernel's skb:kfree_skb carries no drop reason (5.17 or newer has it)".into(),
                ErrorKind::Unsupported,
            ));
        }
        let unspecified = not_specified(&format).unwrap_or(2);
        let dir = root
            .path
            .join("instances")
            .join(format!("{INSTANCE_PREFIX}{}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            // Our own, from an earlier probe of this process that could not remove it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(tracefs_error(
                    format!("cannot make a trace instance in {}: {e}", root.path.display()),
                    ErrorKind::of_io(&e),
                ));
            }
        }
        let w = DropWatch { _root: root, dir };
        let event = w.dir.join("events/skb/kfree_skb");
        let setup = || -> Result<File> {
            write(&w.dir.join("buffer_size_kb"), BUFFER_KB)?;
            write(
                &event.join("filter"),
                &format!("reason != {unspecified} && (protocol == 2048 || protocol == 2054)"),
            )?;
            let mut enable = std::fs::OpenOptions::new()
                .write(true)
                .open(event.join("enable"))
                .map_err(|e| Error::io("opening", event.join("enable").display().to_string(), e))?;
            enable
                .write_all(b"1")
                .map_err(|e| Error::io("enabling", "skb:kfree_skb", e))?;
            Ok(enable)
        };
        match setup() {
            Ok(f) => {
                // One watch at a time per process (the instance is named by the pid).
                *ENABLE.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
                Ok(w)
            }
            Err(e) => {
                w.cleanup();
                Err(e)
            }
        }
    }

    /// The instance's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn cleanup(&self) {
        close_enable();
        let _ = std::fs::remove_dir(&self.dir);
    }

    /// Stop, remove the instance, and return the drops it recorded; `senders` are the
    /// command names and pids (or thread ids) that sent the probe's packets.
    pub fn stop(self, senders: &[(&str, u32)]) -> Result<Vec<KernelDrop>> {
        close_enable();
        let path = self.dir.join("trace");
        let mut text = String::new();
        let read = File::open(&path)
            .and_then(|f| f.take(MAX_READ).read_to_string(&mut text))
            .map_err(|e| Error::io("reading", path.display().to_string(), e));
        self.cleanup();
        read?;
        Ok(group(text.lines().filter_map(parse), senders))
    }
}

impl Drop for DropWatch {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// One drop as the trace prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `comm-pid`.
    pub task: String,
    /// The pid part of it.
    pub pid: Option<u32>,
    /// `protocol=` (an ethertype).
    pub protocol: u16,
    /// `location=`.
    pub location: String,
    /// `reason: `.
    pub reason: String,
}

/// Parse one `trace` line: `  ping-4242  [001] ..s1. 12.345: kfree_skb: skbaddr=.. rx_sk=..
/// protocol=2048 location=ip_rcv_finish_core+0x2b9/0x4c0 reason: IP_RPFILTER`.
pub fn parse(line: &str) -> Option<Line> {
    if line.starts_with('#') {
        return None;
    }
    let (head, body) = line.split_once(" kfree_skb: ")?;
    let task = head.split(" [").next()?.trim().to_string();
    let pid = task.rsplit_once('-').and_then(|(_, p)| p.parse().ok());
    let (fields, reason) = body.split_once(" reason: ")?;
    let mut protocol = None;
    let mut location = None;
    for kv in fields.split_whitespace() {
        match kv.split_once('=') {
            Some(("protocol", v)) => protocol = v.parse().ok(),
            Some(("location", v)) => location = Some(v.to_string()),
            _ => {}
        }
    }
    Some(Line {
        task,
        pid,
        protocol: protocol?,
        location: location?,
        reason: reason.trim().to_string(),
    })
}

/// Group lines by reason, location and task, the probe's own first: those of a sender's
/// pid, or of its command name (the trace shows pids as the host's pid namespace sees
/// them, which a probe inside another pid namespace cannot know).
pub fn group(lines: impl Iterator<Item = Line>, senders: &[(&str, u32)]) -> Vec<KernelDrop> {
    let mut out: Vec<KernelDrop> = Vec::new();
    for l in lines {
        let protocol = match l.protocol {
            0x0800 => "ipv4",
            0x0806 => "arp",
            _ => continue,
        };
        let comm = l.task.rsplit_once('-').map_or(l.task.as_str(), |(c, _)| c);
        let own = senders
            .iter()
            .any(|(c, p)| l.pid == Some(*p) || (!c.is_empty() && *c == comm));
        let full = out.len() >= MAX_DROPS;
        match out
            .iter_mut()
            .find(|d| d.reason == l.reason && d.location == l.location && d.task == l.task)
        {
            Some(d) => d.count = d.count.saturating_add(1),
            None if !full => out.push(KernelDrop {
                reason: l.reason,
                location: l.location,
                protocol: protocol.into(),
                task: l.task,
                count: 1,
                own,
            }),
            None => {}
        }
    }
    out.sort_by_key(|d| (!d.own, std::cmp::Reverse(d.count)));
    out
}

/// What a drop reason means for a container's path, in a support engineer's words.
pub fn meaning(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "NEIGH_FAILED" | "NEIGH_QUEUEFULL" | "NEIGH_CREATEFAIL" => {
            "ARP for the next hop got no answer (the peer is gone, or arp_ignore/arp_filter keeps it silent)"
        }
        "IP_RPFILTER" => {
            "the reverse-path filter refused it: rp_filter is strict where it arrived and the route back to its \
             source leaves by another interface (set rp_filter=2, or fix the route)"
        }
        "OTHERHOST" => {
            "it arrived addressed to another MAC than the receiver's: a stale ARP entry at the sender"
        }
        "NETFILTER_DROP" => {
            "netfilter dropped it: a rule or chain policy (the nft trace names which), or, when no rule in the \
             trace did, conntrack itself (a full table, an invalid packet) or an iptables-legacy rule"
        }
        "BRIDGE_INGRESS_STP_STATE" => {
            "the bridge port is not forwarding (its STP state is blocking or disabled)"
        }
        "PKT_TOO_BIG" => "larger than the path's MTU with DF set: lower the MTU inside or fix the link",
        "NO_SOCKET" => "nothing listens on that port in the receiving namespace",
        "IP_INNOROUTES" | "IP_OUTNOROUTES" => "no route for it where it was dropped",
        "IP_INADDRERRORS" | "IP_INVALID_DEST" => "its destination address is not valid where it arrived",
        "IP_LOCAL_SOURCE" | "IP_INVALID_SOURCE" | "IP_LOCALNET" => {
            "its source address is refused where it arrived (a local or loopback source)"
        }
        "QDISC_DROP" | "QDISC_OVERLIMIT" | "TC_EGRESS" | "TC_INGRESS" => {
            "a traffic-control rule or queue dropped it"
        }
        "DEV_READY" => "the interface was down or not ready",
        "SOCKET_FILTER" => "a socket filter (BPF) on the receiver refused it",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_parse_and_group() {
        let lines = [
            "# tracer: nop",
            "            ping-4242    [001] ..s1.  3483.959: kfree_skb: skbaddr=000000001 rx_sk=0000000000000000 protocol=2048 location=ip_rcv_finish_core+0x2b9/0x4c0 reason: IP_RPFILTER",
            "            ping-4242    [001] ..s1.  3484.159: kfree_skb: skbaddr=000000002 rx_sk=0000000000000000 protocol=2048 location=ip_rcv_finish_core+0x2b9/0x4c0 reason: IP_RPFILTER",
            "     kworker/u8:2-77     [000] ..s1.  3484.200: kfree_skb: skbaddr=000000003 rx_sk=0000000000000000 protocol=2054 location=arp_rcv+0x1/0x2 reason: OTHERHOST",
            "  my-proc-name-5 [000] ..s1. 1.0: kfree_skb: skbaddr=1 rx_sk=0 protocol=34525 location=x+1/2 reason: NO_SOCKET",
            "junk",
            "",
            "\u{1b}[2J kfree_skb: reason: X",
        ];
        let parsed: Vec<Line> = lines.iter().filter_map(|l| parse(l)).collect();
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[0].task, "ping-4242");
        assert_eq!(parsed[0].pid, Some(4242));
        assert_eq!(parsed[2].task, "kworker/u8:2-77");
        assert_eq!(parsed[3].pid, Some(5));
        let g = group(parsed.into_iter(), &[("", 4242)]);
        // IPv6 left out; the probe's own first.
        assert_eq!(g.len(), 2);
        assert_eq!(
            (g[0].reason.as_str(), g[0].count, g[0].own, g[0].function()),
            ("IP_RPFILTER", 2, true, "ip_rcv_finish_core")
        );
        assert_eq!((g[1].protocol.as_str(), g[1].own), ("arp", false));
        // By name, when the pid is another namespace's.
        let by_name = group(lines.iter().filter_map(|l| parse(l)), &[("ping", 7)]);
        assert!(by_name[0].own && by_name[0].reason == "IP_RPFILTER");
        assert!(meaning("IP_RPFILTER").is_some());
        assert!(meaning("SOMETHING_NEW").is_none());
    }

    #[test]
    fn not_specified_is_read_from_the_format() {
        let f =
            r#"print fmt: "...", __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" })"#;
        assert_eq!(not_specified(f), Some(2));
        let g = r#"__print_symbolic(REC->reason, { 1, "NOT_SPECIFIED" }, { 7, "X" })"#;
        assert_eq!(not_specified(g), Some(1));
        assert_eq!(not_specified("nothing"), None);
    }
}
