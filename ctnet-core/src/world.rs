//! Rootless worlds: a fresh user + network + mount namespace with its own `/run`.
//!
//! Inside a world the caller is root over namespaces it owns: it can create bridges,
//! veths, named netns, iptables-nft rules and pcap captures with no privilege on the
//! real host, and nothing it does is seen outside. Labs, demos and kernel tests run here.
//!
//! `unshare(CLONE_NEWUSER)` fails in a multi-threaded process, so a world is entered
//! by a *child* right after `fork` (see [`command_in_new_world`]), or by a process that
//! is still single-threaded ([`enter_current_process`]).

use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::error::{Error, Result};

/// Everything [`World::enter`] needs, prepared before `fork` so that the child only
/// makes raw system calls (no allocation between `fork` and `exec`).
#[derive(Debug)]
pub struct World {
    /// Whether a user namespace is needed: only for an unprivileged caller. Real root
    /// gets net + mount namespaces alone, so tools that switch users (tcpdump drops to
    /// its own user, which a one-id user namespace cannot map) work as on a host.
    userns: bool,
    setgroups: CString,
    deny: CString,
    uid_map_path: CString,
    uid_map: CString,
    gid_map_path: CString,
    gid_map: CString,
    root: CString,
    run: CString,
    tmpfs: CString,
    run_opts: CString,
    netns_dir: CString,
    sys: CString,
    sysfs: CString,
    lo: [libc::c_char; libc::IFNAMSIZ],
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("static strings have no NUL")
}

impl World {
    /// Prepare to enter a world as the current user (mapped to root inside).
    pub fn prepare() -> Self {
        let (uid, gid) = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
        let mut lo = [0 as libc::c_char; libc::IFNAMSIZ];
        lo[0] = b'l' as libc::c_char;
        lo[1] = b'o' as libc::c_char;
        Self {
            userns: uid != 0,
            setgroups: cstr("/proc/self/setgroups"),
            deny: cstr("deny"),
            uid_map_path: cstr("/proc/self/uid_map"),
            uid_map: cstr(&format!("0 {uid} 1\n")),
            gid_map_path: cstr("/proc/self/gid_map"),
            gid_map: cstr(&format!("0 {gid} 1\n")),
            root: cstr("/"),
            run: cstr("/run"),
            tmpfs: cstr("tmpfs"),
            run_opts: cstr("mode=0755"),
            netns_dir: cstr("/run/netns"),
            sys: cstr("/sys"),
            sysfs: cstr("sysfs"),
            lo,
        }
    }

    /// Enter the world: new user (unless already root), net and mount namespaces;
    /// uid/gid mapped to root;
    /// mounts made private; a fresh tmpfs on `/run` (so `/run/netns` and
    /// `/run/xtables.lock` are the world's own); sysfs remounted for the new netns;
    /// `lo` up.
    ///
    /// # Safety
    /// The process must be single-threaded (a child between `fork` and `exec`, or a
    /// `main` before any thread or runtime starts). Only raw system calls are made.
    pub unsafe fn enter(&self) -> Result<(), (&'static str, io::Error)> {
        let step = |name: &'static str| move |e: io::Error| (name, e);
        // SAFETY: every pointer below comes from a CString owned by self and outlives
        // the call; the caller guarantees a single-threaded process.
        unsafe {
            if self.userns {
                check(libc::unshare(
                    libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWNS,
                ))
                .map_err(step("creating user, network and mount namespaces (unshare)"))?;
                write_file(&self.setgroups, &self.deny).map_err(step("writing /proc/self/setgroups"))?;
                write_file(&self.uid_map_path, &self.uid_map).map_err(step("writing /proc/self/uid_map"))?;
                write_file(&self.gid_map_path, &self.gid_map).map_err(step("writing /proc/self/gid_map"))?;
            } else {
                check(libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS))
                    .map_err(step("creating network and mount namespaces (unshare)"))?;
            }
            check(libc::mount(
                std::ptr::null(),
                self.root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))
            .map_err(step("making mounts private"))?;
            check(libc::mount(
                self.tmpfs.as_ptr(),
                self.run.as_ptr(),
                self.tmpfs.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                self.run_opts.as_ptr().cast(),
            ))
            .map_err(step("mounting a tmpfs on /run"))?;
            check(libc::mkdir(self.netns_dir.as_ptr(), 0o755)).map_err(step("creating /run/netns"))?;
            // sysfs must show this netns's interfaces (`ip` reads /sys/class/net for some
            // commands); mounting it is allowed because the world owns the netns.
            check(libc::mount(
                self.sysfs.as_ptr(),
                self.sys.as_ptr(),
                self.sysfs.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ))
            .map_err(step("mounting sysfs on /sys (refused inside some containers)"))?;
            self.loopback_up().map_err(step("setting lo up"))
        }
    }

    unsafe fn loopback_up(&self) -> io::Result<()> {
        // SAFETY: ifreq is plain data; the socket fd is closed on every path.
        unsafe {
            let fd = check(libc::socket(
                libc::AF_INET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                0,
            ))?;
            let mut req: libc::ifreq = std::mem::zeroed();
            req.ifr_name = self.lo;
            let mut res = check(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req));
            if res.is_ok() {
                req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                res = check(libc::ioctl(fd, libc::SIOCSIFFLAGS, &req));
            }
            libc::close(fd);
            res.map(|_| ())
        }
    }
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

unsafe fn write_file(path: &CString, data: &CString) -> io::Result<()> {
    // SAFETY: valid NUL-terminated strings; fd closed on every path.
    unsafe {
        let fd = check(libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC))?;
        let bytes = data.as_bytes();
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        // Read errno before close() can change it; a short write has none of its own.
        let err = if n < 0 {
            io::Error::last_os_error()
        } else {
            io::Error::from_raw_os_error(libc::EIO)
        };
        libc::close(fd);
        if n != bytes.len() as isize {
            return Err(err);
        }
        Ok(())
    }
}

/// Make `cmd` start inside a fresh world. Spawning fails with the OS error if the
/// kernel refuses unprivileged user namespaces.
pub fn command_in_new_world(cmd: &mut Command) -> &mut Command {
    let world = World::prepare();
    // SAFETY: the hook runs in the forked child, which is single-threaded, and
    // World::enter only makes raw system calls on data prepared above.
    unsafe { cmd.pre_exec(move || world.enter().map_err(|(_, e)| e)) }
}

/// Enter a fresh world in this process. Fails unless the process is single-threaded:
/// call it first thing in `main`, before any runtime or thread starts.
pub fn enter_current_process() -> Result<()> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .map_err(|e| Error::io("counting threads in", "/proc/self/task", e))?;
    if threads != 1 {
        return Err(Error::Invalid(format!(
            "cannot enter a rootless world from a process with {threads} threads: \
             user namespaces need a single-threaded caller"
        )));
    }
    let world = World::prepare();
    // SAFETY: checked single-threaded just above.
    unsafe { world.enter() }.map_err(|(step, e)| Error::Netns {
        op: format!("entering a rootless world: {step}"),
        path: "/proc/self/ns".into(),
        source: e,
    })
}

/// Whether this run is CI (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Say loudly, past libtest's output capture, that a test did not run.
pub fn report_skip(message: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(format!("SKIPPED {message}\n").as_bytes());
}

/// Environment variable that marks a test process already re-executed inside a world.
pub const TEST_WORLD_ENV: &str = "CTNET_TEST_IN_WORLD";

/// Test helper: run the test `name` (its exact libtest name) inside a fresh rootless
/// world by re-executing the current test binary there, and fail if it failed.
///
/// Inside the world the same call runs `body`. When namespaces are unavailable the
/// test fails under `CI=true` and is reported as skipped (loudly, on stderr) otherwise.
pub fn run_test_in_world(name: &str, body: impl FnOnce()) {
    if std::env::var(TEST_WORLD_ENV).as_deref() == Ok(name) {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(TEST_WORLD_ENV, name);
    command_in_new_world(&mut cmd);
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            let why = format!("test {name} needs a rootless world (user+net+mount namespaces): {e}");
            if in_ci() {
                panic!("{why}; under CI this is a failure, not a skip");
            }
            report_skip(&why);
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Printed through the harness so it shows only when the test fails.
    println!("--- {name} inside world: stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(
        out.status.success(),
        "test {name} failed inside its world ({})",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "test {name} did not run inside its world (filter matched nothing?)"
    );
}
