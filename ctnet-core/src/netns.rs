//! Network namespaces: identity, handles, and the one place that enters a netns.
//!
//! `setns(2)` moves only the calling *thread*. Every netns-bound resource (netlink
//! socket, pcap handle, ioctl socket, child process, `/proc/thread-self/net` read) is
//! created by [`Netns::run`] on a dedicated short-lived OS thread; the resource stays
//! bound to that netns after the thread ends. Nothing else in ctnet calls `setns`, so
//! tokio workers and the main thread never leave the netns the process started in.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where iproute2 (and ctnet) keep named network namespaces.
pub const DEFAULT_NETNS_DIR: &str = "/run/netns";

/// The identity of a network namespace: `(st_dev, st_ino)` of its nsfs file.
///
/// Two paths name the same netns exactly when their keys are equal; names lie, keys don't.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NetnsKey {
    /// `st_dev` of the nsfs inode.
    pub dev: u64,
    /// `st_ino` of the nsfs inode (what `readlink /proc/PID/ns/net` prints as `net:[ino]`).
    pub ino: u64,
}

impl NetnsKey {
    /// The key of the netns behind an nsfs path (`/run/netns/x`, `/proc/1/ns/net`).
    pub fn of_path(path: &Path) -> Result<Self> {
        let meta = fs::metadata(path).map_err(|e| Error::netns("reading identity of", path, e))?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The key of the netns the calling thread is in.
    pub fn of_current_thread() -> Result<Self> {
        Self::of_path(Path::new("/proc/thread-self/ns/net"))
    }
}

impl fmt::Display for NetnsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "net:[{}]", self.ino)
    }
}

/// One way a netns is known: a name, a path, or a process living in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum NetnsRef {
    /// A bind mount under a netns directory (`ip netns` name).
    Named {
        /// The name (file name under the directory).
        name: String,
        /// The full path of the bind mount.
        path: PathBuf,
    },
    /// Any other nsfs path (a runtime's sandbox key, a `--host-netns` argument).
    Path {
        /// The path.
        path: PathBuf,
    },
    /// A process whose `/proc/PID/ns/net` is this netns.
    Pid {
        /// The process id.
        pid: u32,
        /// Its command name (`/proc/PID/comm`), when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comm: Option<String>,
    },
    /// The netns the tool started in.
    Current,
}

impl fmt::Display for NetnsRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetnsRef::Named { name, .. } => f.write_str(name),
            NetnsRef::Path { path } => write!(f, "{}", path.display()),
            NetnsRef::Pid { pid, comm: Some(c) } => write!(f, "pid:{pid}({c})"),
            NetnsRef::Pid { pid, comm: None } => write!(f, "pid:{pid}"),
            NetnsRef::Current => f.write_str("host"),
        }
    }
}

/// An open network namespace: its identity, an fd that keeps it alive, and every
/// name/path/pid known to point at it.
#[derive(Debug, Clone)]
pub struct Netns {
    key: NetnsKey,
    file: Arc<File>,
    refs: Vec<NetnsRef>,
}

impl Netns {
    /// The netns the calling thread is in (the "host" netns when called from main).
    pub fn current() -> Result<Self> {
        let mut ns = Self::open_path(Path::new("/proc/thread-self/ns/net"))?;
        ns.refs = vec![NetnsRef::Current];
        Ok(ns)
    }

    /// Open any nsfs path (bind mount, `/proc/PID/ns/net`, runtime sandbox key).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut ns = Self::open_path(path)?;
        ns.refs = vec![NetnsRef::Path {
            path: path.to_path_buf(),
        }];
        Ok(ns)
    }

    /// Open a named netns under `dir` (normally [`DEFAULT_NETNS_DIR`]).
    pub fn named(dir: impl AsRef<Path>, name: &str) -> Result<Self> {
        validate_netns_name(name)?;
        let path = dir.as_ref().join(name);
        let mut ns = Self::open_path(&path)?;
        ns.refs = vec![NetnsRef::Named {
            name: name.to_string(),
            path,
        }];
        Ok(ns)
    }

    /// Open the netns of a process.
    pub fn of_pid(pid: u32) -> Result<Self> {
        let mut ns = Self::open_path(Path::new(&format!("/proc/{pid}/ns/net")))?;
        ns.refs = vec![NetnsRef::Pid {
            pid,
            comm: comm_of(pid),
        }];
        Ok(ns)
    }

    fn open_path(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::netns("opening netns", path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::netns("reading identity of", path, e))?;
        // NS_GET_NSTYPE answers only on nsfs files: anything else is not a netns.
        const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
        // SAFETY: an ioctl without argument on an fd we own.
        let nstype = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&file), NS_GET_NSTYPE) };
        if nstype != libc::CLONE_NEWNET {
            return Err(Error::Invalid(format!(
                "{} is not a network namespace (expected /run/netns/NAME, /proc/PID/ns/net or \
                 a runtime's sandbox key)",
                crate::text::path(path)
            )));
        }
        Ok(Self {
            key: NetnsKey {
                dev: meta.dev(),
                ino: meta.ino(),
            },
            file: Arc::new(file),
            refs: Vec::new(),
        })
    }

    /// The uid that owns the user namespace owning this netns, when that user namespace
    /// is not the caller's own: a rootless runtime's netns (rootless Podman, a user's
    /// `unshare -rn`). `None` for a netns of the caller's user namespace, or when the
    /// kernel does not say (an owner outside the caller's view).
    pub fn foreign_userns_owner(&self) -> Option<u32> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        const NS_GET_USERNS: libc::c_ulong = 0xb701;
        const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;
        // SAFETY: an ioctl without argument on an fd we own; it returns a new fd or -1.
        let raw = unsafe { libc::ioctl(self.file.as_raw_fd(), NS_GET_USERNS) };
        if raw < 0 {
            return None;
        }
        // SAFETY: `raw` is a fresh fd the kernel just opened for us, owned from here on.
        let userns = unsafe { OwnedFd::from_raw_fd(raw) };
        let theirs = File::from(userns);
        let ino = theirs.metadata().ok()?.ino();
        let ours = fs::metadata("/proc/thread-self/ns/user").ok()?.ino();
        if ino == ours {
            return None;
        }
        let mut uid: libc::uid_t = 0;
        // SAFETY: NS_GET_OWNER_UID writes one uid_t through the pointer, which points at
        // a live local of that type.
        let r = unsafe { libc::ioctl(theirs.as_raw_fd(), NS_GET_OWNER_UID, &mut uid as *mut libc::uid_t) };
        (r == 0).then_some(uid)
    }

    /// Open a netns by whichever of `refs` still works (a name, a path, a live pid, or
    /// the current netns), checking it is still the netns `key` names.
    pub fn open_any(refs: &[NetnsRef], key: NetnsKey) -> Result<Self> {
        let mut last = None;
        for r in refs {
            let opened = match r {
                NetnsRef::Named { path, .. } | NetnsRef::Path { path } => Self::open(path),
                NetnsRef::Pid { pid, .. } => Self::of_pid(*pid),
                NetnsRef::Current => Self::current(),
            };
            match opened {
                Ok(mut ns) if ns.key == key => {
                    ns.refs = refs.to_vec();
                    return Ok(ns);
                }
                Ok(_) => {}
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::netns(
                "opening netns",
                key.to_string(),
                io::Error::from_raw_os_error(libc::ENOENT),
            )
        }))
    }

    /// The identity of this netns.
    pub fn key(&self) -> NetnsKey {
        self.key
    }

    /// Every name/path/pid known to point at this netns.
    pub fn refs(&self) -> &[NetnsRef] {
        &self.refs
    }

    /// Remember one more name/path/pid for this netns (deduplicated).
    pub fn add_ref(&mut self, r: NetnsRef) {
        if !self.refs.contains(&r) {
            self.refs.push(r);
        }
    }

    /// A short human label: `host`, else the first name, else the first path or pid,
    /// else the key.
    pub fn label(&self) -> String {
        label_of(&self.refs, self.key)
    }

    /// The open nsfs fd (keeps the netns alive while this handle lives).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Run `f` inside this netns on a dedicated OS thread and hand back its result.
    ///
    /// This is the only place in ctnet that calls `setns`. Whatever `f` creates that is
    /// bound at creation (sockets, pcap handles, child processes) stays in this netns.
    /// A panic inside `f` is propagated to the caller.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let fd = self.fd();
        // A new thread starts in its creator's netns: entering that one again needs no
        // setns (and no CAP_SYS_ADMIN, which an unprivileged reader of its own netns
        // does not have).
        let same = NetnsKey::of_current_thread().is_ok_and(|k| k == self.key);
        std::thread::scope(|s| {
            let worker = std::thread::Builder::new()
                .name("ctnet-netns".into())
                .spawn_scoped(s, move || {
                    if !same {
                        nix::sched::setns(fd, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                    }
                    Ok::<T, io::Error>(f())
                })
                .map_err(|e| Error::netns("spawning a thread for", self.label(), e))?;
            match worker.join() {
                Ok(res) => res.map_err(|e| Error::netns("entering netns", self.label(), e)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// An rtnetlink handle whose socket lives in this netns; its connection task is
    /// spawned on `rt`. `strict` turns on `NETLINK_GET_STRICT_CHK` (filtered dumps).
    pub fn rtnetlink(&self, rt: &tokio::runtime::Handle, strict: bool) -> Result<rtnetlink::Handle> {
        let label = self.label();
        let made = self.run(|| {
            // new_connection registers the socket with the reactor, so it needs rt's context.
            let _guard = rt.enter();
            if strict {
                rtnetlink::new_connection_with_strict_check()
            } else {
                rtnetlink::new_connection()
            }
        })?;
        let (conn, handle, _multicast) =
            made.map_err(|e| Error::netns("opening a netlink socket in", label, e))?;
        rt.spawn(conn);
        Ok(handle)
    }
}

/// Run `f` inside each of `spaces` on a small pool of dedicated OS threads (at most
/// `workers`), and return the results in order. Each pool thread enters one netns after
/// another and ends when the work is done; no other thread moves. This is the scan
/// path: one thread per netns would spend more time being born than reading.
///
/// A panic of `f` is caught and its slot is an [`Error::Panic`].
pub fn run_each<T, F>(spaces: &[&Netns], workers: usize, f: F) -> Vec<Result<T>>
where
    F: Fn(usize, &Netns) -> T + Sync,
    T: Send,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<T>>>> = spaces.iter().map(|_| Mutex::new(None)).collect();
    // Scan threads start in the caller's netns: no setns (and no CAP_SYS_ADMIN) is
    // needed to read that one, as long as the thread has not moved yet.
    let home = NetnsKey::of_current_thread().ok();
    let workers = workers.clamp(1, spaces.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            // A worker that cannot be started leaves its share to the others; if none
            // starts, every slot reports it below.
            let _ = std::thread::Builder::new()
                .name("ctnet-netns-scan".into())
                .spawn_scoped(s, || {
                    let mut here = home;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(ns) = spaces.get(i) else { break };
                        let entered = if here == Some(ns.key()) {
                            Ok(())
                        } else {
                            here = None;
                            nix::sched::setns(ns.fd(), CloneFlags::CLONE_NEWNET)
                                .inspect(|_| here = Some(ns.key()))
                        };
                        let r = match entered {
                            // A reader that panics leaves the other netns to this
                            // worker; its slot holds `Error::Panic`, which callers must
                            // not pass off as an unreadable netns.
                            Ok(()) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i, ns)))
                                .map_err(|p| Error::panic(format!("reading netns {}", ns.label()), &*p)),
                            Err(e) => Err(Error::netns("entering netns", ns.label(), e.into())),
                        };
                        *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                    }
                });
        }
    });
    slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| {
                    Err(Error::netns(
                        "scanning netns (no scan thread could be started)",
                        spaces[i].label(),
                        io::Error::other("thread spawn failed"),
                    ))
                })
        })
        .collect()
}

/// The label of a netns known by `refs`: `host` wins, then a name, then whatever
/// comes first, then the inode.
pub fn label_of(refs: &[NetnsRef], key: NetnsKey) -> String {
    refs.iter()
        .find(|r| matches!(r, NetnsRef::Current))
        .or_else(|| refs.iter().find(|r| matches!(r, NetnsRef::Named { .. })))
        .or(refs.first())
        .map(ToString::to_string)
        .unwrap_or_else(|| key.to_string())
}

/// The command name of a process (`/proc/PID/comm`).
pub fn comm_of(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// Check a netns name the way `ip netns add` would accept it.
pub fn validate_netns_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.len() > 255 {
        return Err(Error::Invalid(format!(
            "invalid netns name {name:?}: use 1-255 characters, no '/', not '.' or '..'"
        )));
    }
    Ok(())
}

/// Make `dir` a shared mount point, as iproute2 does, so netns bind mounts made here are
/// seen by other mount namespaces (`ip netns exec` among them). Done once per process.
fn prepare_netns_dir(dir: &Path) -> Result<()> {
    static PREPARED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut prepared = PREPARED.lock().unwrap_or_else(|p| p.into_inner());
    if prepared.iter().any(|p| p == dir) {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| Error::io("creating netns directory", dir, e))?;
    let shared = |d: &Path| {
        nix::mount::mount(
            None::<&str>,
            d,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    if let Err(nix::Error::EINVAL) = shared(dir) {
        // Not a mount point yet: bind it onto itself first (iproute2's netns_add does the same).
        nix::mount::mount(
            Some(dir),
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Error::netns("bind-mounting netns directory", dir, e.into()))?;
        shared(dir).map_err(|e| Error::netns("making netns directory shared", dir, e.into()))?;
    }
    prepared.push(dir.to_path_buf());
    Ok(())
}

/// Create a named netns under `dir` without forking: a throwaway thread unshares its
/// netns and bind-mounts `/proc/thread-self/ns/net` (never `/proc/self/...`, which is the
/// thread-group leader's) onto `dir/name`.
pub fn create_named(dir: impl AsRef<Path>, name: &str) -> Result<Netns> {
    let dir = dir.as_ref();
    validate_netns_name(name)?;
    prepare_netns_dir(dir)?;
    let path = dir.join(name);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => {
                Error::netns("creating netns (a netns with this name already exists)", &path, e)
            }
            _ => Error::netns("creating netns file", &path, e),
        })?;
    let target = path.clone();
    let made = std::thread::Builder::new()
        .name("ctnet-netns-new".into())
        .spawn(move || -> io::Result<()> {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })
        .and_then(|t| {
            t.join()
                .unwrap_or_else(|_| Err(io::Error::other("netns thread panicked")))
        });
    if let Err(e) = made {
        let _ = fs::remove_file(&path);
        return Err(Error::netns("creating netns", &path, e));
    }
    // Mounted but not opened (fd exhaustion, say): remove it again rather than leave a
    // netns nobody recorded.
    Netns::named(dir, name).inspect_err(|_| {
        let _ = delete_named(dir, name);
    })
}

/// Delete a named netns: detach its bind mount and remove the file. The netns itself
/// dies when no fd or process holds it any more. Returns `NotFound` when there was none.
pub fn delete_named(dir: impl AsRef<Path>, name: &str) -> Result<()> {
    validate_netns_name(name)?;
    let path = dir.as_ref().join(name);
    let unmounted = match nix::mount::umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) => true,
        Err(nix::Error::EINVAL | nix::Error::ENOENT) => false,
        Err(e) => return Err(Error::netns("unmounting netns", &path, e.into())),
    };
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound && unmounted => Ok(()),
        Err(e) => Err(Error::netns("removing netns file", &path, e)),
    }
}

/// Names of the netns under `dir` (what `ip netns list` shows), sorted.
pub fn list_named(dir: impl AsRef<Path>) -> Result<Vec<String>> {
    let dir = dir.as_ref();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing netns directory", dir, e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The netns of every thread of this process, as `(tid, key)`: proof that no thread
/// was left inside another netns.
pub fn thread_netns_keys() -> Result<Vec<(u32, NetnsKey)>> {
    let task = Path::new("/proc/self/task");
    let mut out = Vec::new();
    for entry in fs::read_dir(task).map_err(|e| Error::io("listing threads in", task, e))? {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        match NetnsKey::of_path(&entry.path().join("ns/net")) {
            Ok(key) => out.push((tid, key)),
            // The thread ended between listing and stat: it is in no netns any more.
            Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_netns_names_ip_would_reject() {
        for bad in ["", ".", "..", "a/b", &"x".repeat(256)] {
            assert!(validate_netns_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["t-c1", "cni-1234", "netns-ab"] {
            validate_netns_name(good).unwrap();
        }
    }

    #[test]
    fn same_netns_through_two_paths_has_one_key() {
        let a = NetnsKey::of_path(Path::new("/proc/self/ns/net")).unwrap();
        let b = NetnsKey::of_path(Path::new("/proc/thread-self/ns/net")).unwrap();
        assert_eq!(a, b);
        let current = Netns::current().unwrap();
        assert_eq!(current.key(), a);
        assert_eq!(current.label(), "host");
    }

    #[test]
    fn opening_a_missing_netns_is_not_found() {
        let err = Netns::named("/nonexistent-ctnet-dir", "x").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::NotFound);
        assert!(err.to_string().contains("/nonexistent-ctnet-dir/x"), "{err}");
    }

    #[test]
    fn a_panicking_reader_is_a_panic_error_and_the_others_still_run() {
        // The current netns twice: no setns (no privilege) is needed to read it.
        let here = Netns::current().unwrap();
        let out = run_each(&[&here, &here, &here], 2, |i, _| {
            assert_ne!(i, 1, "reader {i} failed");
            i * 10
        });
        assert_eq!(out.len(), 3);
        assert_eq!(*out[0].as_ref().unwrap(), 0);
        assert_eq!(*out[2].as_ref().unwrap(), 20);
        match &out[1] {
            Err(Error::Panic { what, message }) => {
                assert!(
                    what.contains("host") && message.contains("reader 1 failed"),
                    "{what}: {message}"
                );
            }
            other => panic!("expected a panic error, got {other:?}"),
        }
    }
}
