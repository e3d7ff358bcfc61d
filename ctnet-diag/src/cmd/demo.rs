//! `ctnet-diag demo`: a lab in a private rootless world with traffic, shown in the
//! dashboard (or printed with a ping matrix), removed on exit.

use std::io::IsTerminal;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use ctnet_core::lab::{self, LabEnv, LabSpec, LabSummary};
use ctnet_core::netns::{Netns, NetnsKey};

use crate::cli::DemoArgs;
use crate::cmd::lab::{render_down, render_up};

/// Enter a world, build the lab, then the dashboard with traffic (or a printed ping
/// matrix and optionally a shell), tear down.
///
/// A catchable quit signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) ends the shell and
/// removes the lab before the demo exits (128 + the signal). A note left while it runs
/// lets `lab list` find the world of a demo killed by a signal no process can catch.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let fault = args
        .fault
        .as_deref()
        .map(ctnet_core::lab::fault::Fault::parse)
        .transpose()?;
    if fault.is_some() && args.containers < 2 {
        anyhow::bail!(ctnet_core::error::Error::Invalid(
            "--fault needs at least 2 containers (it breaks demo-c1 with demo-c2 as its peer)".into()
        ));
    }
    let dashboard =
        !args.no_tui && !args.shell && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    // Before any thread exists, so every thread inherits the mask: a quit signal then
    // waits for whoever takes it (the dashboard's loop, or `quit_signals` below) and
    // the lab is still removed.
    if dashboard {
        ctnet_tui::run::block_quit_signals()?;
    } else {
        demo_signals().thread_block()?;
    }
    // Opened before the world hides this /run.
    let note_dir = NoteDir::open();
    crate::exit::enter_world()?;
    let mut note = note_dir.and_then(|d| d.write());
    let rt = crate::runtime()?;
    let env = LabEnv::default();
    let mut spec = LabSpec::new("demo");
    spec.containers = args.containers;
    spec.nat = true;
    let built = rt.block_on(lab::up(&spec, &env))?;
    if dashboard {
        return dashboard_run(&args, fault, &built, &spec, &env, &rt);
    }
    let quit = quit_signals();
    crate::outln!("In a private world (user+net+mount namespaces); nothing on this host is touched.\n")?;
    crate::out::text(&render_up(&built))?;
    crate::out::text("\n")?;
    let broke = match fault {
        Some(f) if quit.load(Ordering::SeqCst) == 0 => match inject(f, &env) {
            Ok(inj) => {
                crate::out::text(&crate::cmd::fault::render_break(&inj, false))?;
                crate::out::text("\n")?;
                Ok(())
            }
            Err(e) => Err(e),
        },
        _ => Ok(()),
    };
    let all_ok = broke.is_ok() && quit.load(Ordering::SeqCst) == 0 && ping_matrix(&built, &env, &quit);
    if args.shell && broke.is_ok() && quit.load(Ordering::SeqCst) == 0 {
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
        crate::outln!(
            "\nOpening {shell} inside the world; try `ip netns`, `bridge link`, `iptables-save`. Exit to tear down."
        )?;
        run_shell(&shell, &quit, note.as_mut());
    }
    let _ = ctnet_core::lab::fault::fix(&env, None, None);
    let report = rt.block_on(lab::down(&spec.name, &env))?;
    crate::out::text("\n")?;
    crate::out::text(&render_down(&report))?;
    broke?;
    let sig = quit.load(Ordering::SeqCst);
    Ok(if sig != 0 {
        ExitCode::from(128u8.saturating_add(sig as u8))
    } else if !report.failures.is_empty() {
        ExitCode::from(crate::exit::INTERNAL)
    } else if !all_ok {
        ExitCode::from(crate::exit::CHECK_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Break `fault` on demo-c1 (peer demo-c2), planned from a scan of the world.
fn inject(
    fault: ctnet_core::lab::fault::Fault,
    env: &LabEnv,
) -> anyhow::Result<ctnet_core::lab::fault::Injection> {
    let snap = ctnet_core::source::snapshot(&ctnet_core::source::ScanOptions::default())?;
    let topo = ctnet_core::topology::Topology::build(&snap);
    let (t, p) = crate::cmd::read::resolve_pair(&snap, "demo-c1", Some("demo-c2"))
        .map_err(|_| anyhow::anyhow!("the demo lab's containers were not found"))?;
    let inj = ctnet_core::lab::fault::plan(fault, &snap, &topo, &t, p.as_ref())?;
    ctnet_core::lab::fault::apply(&inj, env)?;
    Ok(inj)
}

/// The signals that end a demo without a dashboard, lab removed.
fn demo_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        set.add(s);
    }
    set
}

/// A thread that takes the (blocked) demo signals for the life of the process and
/// keeps the number of the last one: 0 until one arrives.
fn quit_signals() -> Arc<AtomicI32> {
    let got = Arc::new(AtomicI32::new(0));
    let mark = got.clone();
    // Never joined: it waits in sigwait until the process ends.
    let _ = std::thread::Builder::new()
        .name("ctnet-demo-signals".into())
        .spawn(move || {
            while let Ok(sig) = demo_signals().wait() {
                mark.store(sig as i32, Ordering::SeqCst);
            }
        });
    got
}

/// Run the shell until it exits, or until a quit signal: then hang it up (an
/// interactive shell ignores SIGTERM and SIGINT), and kill it if it is still there
/// after a grace period. The note names the shell: it is what outlives a killed demo.
fn run_shell(shell: &str, quit: &AtomicI32, note: Option<&mut NoteFile>) {
    const GRACE: Duration = Duration::from_secs(3);
    // std gives the child an empty signal mask: the shell gets its signals as usual.
    let mut child = match Command::new(shell).spawn() {
        Ok(c) => c,
        Err(e) => {
            crate::say!("ctnet-diag: cannot start {shell}: {e}");
            return;
        }
    };
    if let Some(note) = note {
        note.set_shell(child.id());
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut hung_up: Option<std::time::Instant> = None;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => {}
        }
        if quit.load(Ordering::SeqCst) != 0 {
            match hung_up {
                None => {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
                    hung_up = Some(std::time::Instant::now());
                }
                Some(at) if at.elapsed() > GRACE => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The directory of demo notes: `$XDG_RUNTIME_DIR/ctnet/demos`, or `/run/ctnet/demos`
/// for root. None for a user without a runtime directory.
fn notes_path() -> Option<PathBuf> {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => Some(PathBuf::from(d).join("ctnet/demos")),
        None if nix::unistd::geteuid().is_root() => Some(PathBuf::from("/run/ctnet/demos")),
        None => None,
    }
}

/// What a running demo leaves in the notes directory (`demo-PID.json`).
///
/// The kernel reuses nsfs inode numbers (and pids): a netns key alone can name a later,
/// unrelated netns once the demo's world is gone. A world is taken as the demo's only
/// while a process recorded here still lives (same pid, same start time) in a netns and
/// user namespace with the recorded keys: that process holds them, so no reuse can
/// have happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Note {
    /// Always `ctnet.demo/v2`.
    schema: String,
    /// The demo, which made the world.
    demo: Proc,
    /// Its world's network namespace.
    netns: NetnsKey,
    /// Its world's user namespace (nsfs identity, as for the netns).
    userns: NetnsKey,
    /// The shell the demo started in its world, once started: what lives on when the
    /// demo is killed.
    shell: Option<Proc>,
}

/// The schema of a [`Note`].
const NOTE_SCHEMA: &str = "ctnet.demo/v2";

/// One process, told from a later one with its pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Proc {
    pid: u32,
    /// `starttime` of `/proc/PID/stat` (field 22: clock ticks after boot).
    start: u64,
}

impl Proc {
    /// The process `pid` as it is now; None when it is gone.
    fn of(pid: u32) -> Option<Self> {
        Some(Self {
            pid,
            start: start_time(pid)?,
        })
    }

    /// Whether this very process still runs (not a later one given its pid).
    fn alive(&self) -> bool {
        Self::of(self.pid) == Some(*self)
    }
}

/// Field 22 (`starttime`) of `/proc/PID/stat`.
fn start_time(pid: u32) -> Option<u64> {
    parse_start_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `starttime` from the text of a `/proc/PID/stat`: counted after the `)` that ends
/// the comm (which may itself hold spaces and parentheses); field 3 comes first there.
fn parse_start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_ascii_whitespace().nth(22 - 3)?.parse().ok()
}

/// The keys of the network and user namespaces of process `pid`.
fn namespaces_of(pid: &str) -> Option<(NetnsKey, NetnsKey)> {
    let key = |ns: &str| NetnsKey::of_path(Path::new(&format!("/proc/{pid}/ns/{ns}"))).ok();
    Some((key("net")?, key("user")?))
}

impl Note {
    /// Whether process `pid` is in this note's world.
    fn holds(&self, pid: &str) -> bool {
        namespaces_of(pid) == Some((self.netns, self.userns))
    }

    /// Whether the recorded shell still lives in the recorded world: only then do the
    /// keys name the demo's world. Namespaces are read before the start time is
    /// compared, so a pid reused in between is caught.
    fn anchored(&self) -> bool {
        self.shell
            .is_some_and(|s| self.holds(&s.pid.to_string()) && s.alive())
    }
}

/// The notes directory, opened outside the world.
struct NoteDir(OwnedFd);

impl NoteDir {
    /// Create (0700) and open the notes directory; None when there is none to use.
    fn open() -> Option<Self> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let path = notes_path()?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .ok()?;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .ok()?;
        Some(Self(dir.into()))
    }

    /// Write this demo's note (from inside its world); it is removed when dropped.
    fn write(self) -> Option<NoteFile> {
        let pid = std::process::id();
        let key = |ns: &str| NetnsKey::of_path(Path::new(&format!("/proc/thread-self/ns/{ns}"))).ok();
        let note = Note {
            schema: NOTE_SCHEMA.into(),
            demo: Proc::of(pid)?,
            netns: key("net")?,
            userns: key("user")?,
            shell: None,
        };
        let file = NoteFile {
            dir: self,
            name: std::ffi::CString::new(format!("demo-{pid}.json")).ok()?,
            note,
        };
        file.store().then_some(file)
    }
}

/// A written note, removed when the demo ends (any way but an uncatchable kill).
struct NoteFile {
    dir: NoteDir,
    name: std::ffi::CString,
    note: Note,
}

impl NoteFile {
    /// Record the shell the demo started.
    fn set_shell(&mut self, pid: u32) {
        self.note.shell = Proc::of(pid);
        self.store();
    }

    /// Write the note whole: to a temporary name, then renamed over the note, so that
    /// `lab list` never reads half a note.
    fn store(&self) -> bool {
        let Ok(text) = serde_json::to_string(&self.note) else {
            return false;
        };
        let mut tmp = self.name.as_bytes().to_vec();
        tmp.extend_from_slice(b".tmp");
        let Ok(tmp) = std::ffi::CString::new(tmp) else {
            return false;
        };
        use nix::fcntl::{OFlag, openat, renameat};
        use nix::unistd::{UnlinkatFlags, unlinkat};
        let dir = &self.dir.0;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let Ok(fd) = openat(
            dir,
            tmp.as_c_str(),
            flags,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        ) else {
            return false;
        };
        let mut file = std::fs::File::from(fd);
        use std::io::Write as _;
        let stored = file.write_all(text.as_bytes()).is_ok()
            && renameat(dir, tmp.as_c_str(), dir, self.name.as_c_str()).is_ok();
        if !stored {
            let _ = unlinkat(dir, tmp.as_c_str(), UnlinkatFlags::NoRemoveDir);
        }
        stored
    }
}

impl Drop for NoteFile {
    fn drop(&mut self) {
        let _ = nix::unistd::unlinkat(
            &self.dir.0,
            self.name.as_c_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
}

/// A demo killed while its world lives on (a shell it started still runs there).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Leftover {
    /// The pid the demo had.
    pub demo_pid: u32,
    /// Processes still in its world.
    pub pids: Vec<u32>,
    /// The command that ends the world, and the lab in it.
    pub remove: String,
}

/// Demos whose process is gone but whose world provably lives on (see [`Note`]).
/// Notes that prove nothing (the world is gone, or its keys may name another's
/// namespaces now, or the note cannot be read) are removed: no pid is ever named from
/// them.
pub fn leftovers() -> Vec<Leftover> {
    let Some(dir) = notes_path() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.filter_map(|e| e.ok()) {
        let file = e.file_name();
        // `demo-PID.json` only: a `.tmp` is a note being written.
        let is_note = file
            .to_str()
            .and_then(|f| f.strip_prefix("demo-")?.strip_suffix(".json"))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if !is_note {
            continue;
        }
        let path = e.path();
        let note = ctnet_core::model::read_regular_file(&path, 64 << 10)
            .ok()
            .and_then(|b| serde_json::from_slice::<Note>(&b).ok())
            .filter(|n| n.schema == NOTE_SCHEMA);
        let Some(note) = note else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        if note.demo.alive() {
            continue; // still running
        }
        if !note.anchored() {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                    .filter(|p| note.holds(&p.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        // The shell may have ended while the others were read: then the keys prove
        // nothing any more.
        if pids.is_empty() || !note.anchored() {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        pids.sort_unstable();
        let list = pids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
        out.push(Leftover {
            demo_pid: note.demo.pid,
            remove: format!("kill {list}"),
            pids,
        });
    }
    out.sort_by_key(|l| l.demo_pid);
    out
}

/// Ping the gateway and every other container from the first container; print each.
fn ping_matrix(built: &LabSummary, env: &LabEnv, quit: &AtomicI32) -> bool {
    let Some(first) = built.containers.first() else {
        return true;
    };
    let ns = match Netns::named(&env.netns_dir, &first.netns) {
        Ok(ns) => ns,
        Err(e) => {
            let _ = crate::outln!("cannot open {}: {e}", first.netns);
            return false;
        }
    };
    let gateway = built.gateway.split('/').next().unwrap_or_default().to_string();
    let targets =
        std::iter::once(("gateway".to_string(), gateway)).chain(built.containers[1..].iter().map(|c| {
            (
                c.netns.clone(),
                c.ip.split('/').next().unwrap_or_default().to_string(),
            )
        }));
    let mut ok = true;
    for (label, ip) in targets {
        if quit.load(Ordering::SeqCst) != 0 {
            return false;
        }
        let out = ns.run(|| {
            ctnet_core::tool::Cmd::new("ping", &ctnet_core::privilege::tool_path())
                .args(["-c1", "-W2", "-n", &ip])
                .spawn()
        });
        let out = out.map(|running| running.output());
        let line = match out {
            Ok(Ok(o)) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                let rtt = text
                    .lines()
                    .find_map(|l| l.split("time=").nth(1))
                    .unwrap_or("?")
                    .to_string();
                format!("ok   time={rtt}")
            }
            Ok(Ok(o)) => {
                ok = false;
                format!("FAILED ({})", o.status)
            }
            Ok(Err(e)) => {
                ok = false;
                format!("cannot run ping: {e}")
            }
            Err(e) => {
                ok = false;
                format!("cannot enter {}: {e}", first.netns)
            }
        };
        let _ = crate::outln!("ping {} -> {label} {ip}: {line}", first.netns);
    }
    ok
}

/// Background traffic: each container sends the next one (the last, the first) an ICMP
/// echo request once a second; the kernel of the other one answers. Each container also
/// serves tcp/80 (connections accepted and closed at once), so what a port check, a
/// trace or a probe to port 80 finds is real. Sent from raw
/// sockets made inside each container's netns, by a thread of this process: nothing
/// outlives the demo, even a `kill -9`. Only between the lab's own netns.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An ICMP echo request: type 8, code 0, checksum, id, seq, 56 bytes of payload.
fn echo_request(id: u16, seq: u16) -> [u8; 64] {
    let mut p = [0u8; 64];
    p[0] = 8;
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut sum: u32 = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

fn start_traffic(built: &LabSummary, env: &LabEnv) -> Traffic {
    let stop = Arc::new(AtomicBool::new(false));
    let n = built.containers.len();
    let mut senders: Vec<(OwnedFd, Ipv4Addr)> = Vec::new();
    let mut servers: Vec<std::net::TcpListener> = Vec::new();
    if n < 2 {
        return Traffic { stop, thread: None };
    }
    for (i, c) in built.containers.iter().enumerate() {
        let next = &built.containers[(i + 1) % n];
        let Ok(dst) = next.ip.split('/').next().unwrap_or_default().parse::<Ipv4Addr>() else {
            continue;
        };
        let Ok(ns) = Netns::named(&env.netns_dir, &c.netns) else {
            continue;
        };
        // A socket keeps the netns it was made in.
        let made = ns.run(|| {
            use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
            socket(
                AddressFamily::Inet,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::Icmp,
            )
            .ok()
        });
        if let Ok(Some(fd)) = made {
            senders.push((fd, dst));
        }
        let server = ns.run(|| {
            let l = std::net::TcpListener::bind(("0.0.0.0", 80)).ok()?;
            l.set_nonblocking(true).ok()?;
            Some(l)
        });
        if let Ok(Some(l)) = server {
            servers.push(l);
        }
    }
    let thread = (!senders.is_empty()).then(|| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seq: u16 = 0;
            // Every connection waiting is answered and closed.
            let serve = || {
                for l in &servers {
                    while let Ok((conn, _)) = l.accept() {
                        drop(conn);
                    }
                }
            };
            // The requests spread over the second: sent all at once, the first ones'
            // ARP broadcasts (each flooded to every port) overflow the kernel's
            // backlog on a large lab, and every veth counts drops.
            let gap = Duration::from_millis(1000) / senders.len().max(1) as u32;
            while !stop.load(Ordering::SeqCst) {
                seq = seq.wrapping_add(1);
                for (i, (fd, dst)) in senders.iter().enumerate() {
                    let pkt = echo_request(0x4354 + i as u16, seq);
                    let addr = libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: 0,
                        sin_addr: libc::in_addr {
                            s_addr: u32::from(*dst).to_be(),
                        },
                        sin_zero: [0; 8],
                    };
                    // SAFETY: a valid socket, buffer and address of the given sizes.
                    unsafe {
                        libc::sendto(
                            fd.as_raw_fd(),
                            pkt.as_ptr().cast(),
                            pkt.len(),
                            libc::MSG_DONTWAIT,
                            (&addr as *const libc::sockaddr_in).cast(),
                            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                        );
                    }
                    // In steps that notice a stop and take connections.
                    let mut left = gap;
                    while !left.is_zero() {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let step = left.min(Duration::from_millis(100));
                        std::thread::sleep(step);
                        left -= step;
                        serve();
                    }
                }
            }
        })
    });
    Traffic { stop, thread }
}

/// The dashboard on the lab: traffic, the fault if asked, then tear down whatever
/// happened in between.
fn dashboard_run(
    args: &DemoArgs,
    fault: Option<ctnet_core::lab::fault::Fault>,
    built: &LabSummary,
    spec: &LabSpec,
    env: &LabEnv,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let traffic = start_traffic(built, env);
    // A panic in the dashboard (its hook restores the terminal) must still stop the
    // traffic and remove the lab, then go on as a panic.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> anyhow::Result<()> {
        let active = match fault {
            Some(f) => {
                let inj = inject(f, env)?;
                let env = env.clone();
                let name = inj.fault.name();
                Some(ctnet_tui::run::ActiveFault {
                    what: format!(
                        "{name} on {}{} ({})",
                        inj.target,
                        inj.peer
                            .as_deref()
                            .map(|p| format!(", peer {p}"))
                            .unwrap_or_default(),
                        inj.breaks
                    ),
                    undo: std::sync::Arc::new(move || {
                        match ctnet_core::lab::fault::fix(&env, Some(f), None) {
                            Ok((done, errors)) if errors.is_empty() => Ok(format!(
                                "{name} undone ({} fix(es)); the next scan shows the repair",
                                done.len()
                            )),
                            Ok((_, errors)) => Err(errors
                                .iter()
                                .map(|e| e.to_string())
                                .collect::<Vec<_>>()
                                .join("; ")),
                            Err(e) => Err(e.to_string()),
                        }
                    }),
                })
            }
            None => None,
        };
        ctnet_tui::run::run(ctnet_tui::run::Options {
            fault: active,
            // The lab's netns are named; /proc would also show netns of this host
            // outside the world (of pid 2, say), which are no part of the demo.
            source: ctnet_tui::run::Source::Live(ctnet_core::source::ScanOptions {
                scan_proc: false,
                ..ctnet_core::source::ScanOptions::default()
            }),
            interval: Duration::from_secs_f64(args.interval),
        })?;
        Ok(())
    }));
    drop(traffic);
    let _ = ctnet_core::lab::fault::fix(env, None, None);
    let down = rt.block_on(lab::down(&spec.name, env));
    if let Ok(report) = &down {
        crate::out::text(&render_down(report))?;
    }
    // What went wrong in the dashboard comes first; then the teardown's own failure.
    if !matches!(result, Ok(Ok(())))
        && let Err(e) = &down
    {
        crate::say!("ctnet-diag: removing the demo lab: {e}");
    }
    match result {
        Ok(r) => r?,
        Err(panic) => std::panic::resume_unwind(panic),
    }
    let report = down?;
    Ok(if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::INTERNAL)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_whatever_the_comm_holds() {
        let tail = "S 1 812 812 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        for comm in [
            "sh",
            "a b",
            "x) (y",
            ") 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 (",
            "",
        ] {
            let stat = format!("812 ({comm}) {tail}\n");
            assert_eq!(parse_start_time(&stat), Some(987_654), "{stat:?}");
        }
        assert_eq!(parse_start_time("812 (sh) S 1 2"), None);
        assert_eq!(parse_start_time("no parenthesis"), None);
    }

    #[test]
    fn this_process_is_itself_and_not_a_later_one_with_its_pid() {
        let me = Proc::of(std::process::id()).unwrap();
        assert!(me.alive());
        let later = Proc {
            start: me.start + 1,
            ..me
        };
        assert!(!later.alive());
    }
}
