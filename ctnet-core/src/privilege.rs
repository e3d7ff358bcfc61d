//! What this process may do: its capabilities, and whether it holds them through file
//! capabilities (`setcap`) rather than as root.
//!
//! A copy of `ctnet-diag` given file capabilities lets a user who is not root read
//! every netns, capture and probe. Two rules keep that from becoming a way to root:
//! the tools it starts are found only in the system directories (never through the
//! caller's `$PATH`), and only those tools inherit the capabilities (as ambient
//! capabilities raised in the child between fork and exec); a shell or any other
//! program it starts gets none. Commands that change the host (`lab`) are refused
//! under file capabilities: see [`file_capabilities`].

use std::os::unix::process::CommandExt;
use std::process::Command;

/// `CAP_NET_ADMIN`: netlink changes, the firewall's rules and counters.
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_NET_RAW`: packet sockets (capture) and raw sockets (the probe).
pub const CAP_NET_RAW: u32 = 13;
/// `CAP_SYS_ADMIN`: `setns(2)` into another netns, mounts.
pub const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_SYS_PTRACE`: open `/proc/PID/ns/net` of another user's process.
pub const CAP_SYS_PTRACE: u32 = 19;
/// `CAP_DAC_READ_SEARCH`: read a container's `/etc/resolv.conf` through `/proc/PID/root`.
pub const CAP_DAC_READ_SEARCH: u32 = 2;

/// The system directories tools are taken from when the caller's `$PATH` must not be
/// trusted (file capabilities, setuid).
pub const SYSTEM_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The capabilities a copy needs to read every netns, its firewall and its resolver
/// (`veths`, `show`, `snapshot`, `check`, `trace`, the dashboard), in `setcap` syntax.
pub const READ_CAPS: &str = "cap_net_admin,cap_sys_admin,cap_sys_ptrace,cap_dac_read_search";

/// The `setcap` line that lets users who are not root read, capture and probe with the
/// binary at `exe`: [`READ_CAPS`] and `cap_net_raw`.
pub fn setcap_line(exe: &str) -> String {
    format!("sudo setcap {READ_CAPS},cap_net_raw+ep {exe}")
}

/// The path of the running binary for advice (`ctnet-diag` when unknown), escaped.
pub fn own_path() -> String {
    std::env::current_exe()
        .map(|p| crate::text::path(&p).into_owned())
        .unwrap_or_else(|_| "$(command -v ctnet-diag)".into())
}

/// Capabilities in `/proc/self/status` under `field` (`CapEff`, `CapPrm`), or 0.
fn caps(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// The effective capabilities of this process.
pub fn effective() -> u64 {
    caps("CapEff")
}

/// Whether this process has capability `cap` in effect.
pub fn has(cap: u32) -> bool {
    effective() & (1u64 << cap) != 0
}

/// Whether the kernel started this program in secure mode (`AT_SECURE`): file
/// capabilities or setuid. Its environment is the caller's and is not to be trusted.
pub fn secure_exec() -> bool {
    // SAFETY: getauxval reads the auxiliary vector; it cannot fail.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Whether this process holds capabilities through file capabilities as a user other
/// than root: the case where reading is allowed and changing the host is not.
pub fn file_capabilities() -> bool {
    secure_exec() && !nix::unistd::geteuid().is_root() && effective() != 0
}

/// The directories a tool is looked up in: `$PATH` plus the sbin directories a
/// non-root shell on Debian leaves out; only the system directories under
/// [`secure_exec`].
pub fn tool_path() -> String {
    if secure_exec() {
        return SYSTEM_PATH.into();
    }
    let mut p = std::env::var("PATH").unwrap_or_default();
    for extra in SYSTEM_PATH.split(':') {
        if !p.split(':').any(|d| d == extra) {
            if !p.is_empty() {
                p.push(':');
            }
            p.push_str(extra);
        }
    }
    p
}

/// The first executable file named `program` in the directories of `path`.
pub fn find_tool(program: &str, path: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Let the tool `cmd` will run inherit this process's capabilities, when they come
/// from file capabilities: a program started by a process with file capabilities gets
/// none of them, so `iptables-save` or `nft` would be refused what `ctnet-diag` may do.
/// The child raises them as ambient capabilities after fork, before exec. Only for
/// tools found in [`SYSTEM_PATH`]; never for a shell or a user's command.
pub fn inherit_caps(cmd: &mut Command) -> &mut Command {
    if !file_capabilities() {
        return cmd;
    }
    let mut head = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget fills the header and two data structs of version 3, which are
    // what it is given.
    if unsafe { libc::syscall(libc::SYS_capget, &mut head as *mut CapHeader, data.as_mut_ptr()) } != 0 {
        return cmd;
    }
    for d in data.iter_mut() {
        d.inheritable |= d.permitted;
    }
    let permitted = u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32);
    // SAFETY: between fork and exec only capset(2) and prctl(2) run, both
    // async-signal-safe system calls on memory moved into the closure; nothing
    // allocates or takes a lock.
    unsafe {
        cmd.pre_exec(move || {
            let mut head = CapHeader {
                version: CAP_VERSION_3,
                pid: 0,
            };
            if libc::syscall(libc::SYS_capset, &mut head as *mut CapHeader, data.as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for cap in 0..64u64 {
                if permitted & (1 << cap) != 0
                    && libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setcap_line_names_every_capability_a_read_and_a_capture_need() {
        let l = setcap_line("/usr/bin/ctnet-diag");
        for cap in [
            "cap_net_admin",
            "cap_sys_admin",
            "cap_sys_ptrace",
            "cap_dac_read_search",
            "cap_net_raw",
        ] {
            assert!(l.contains(cap), "{l}");
        }
        assert!(
            l.starts_with("sudo setcap ") && l.ends_with("+ep /usr/bin/ctnet-diag"),
            "{l}"
        );
    }

    #[test]
    fn tools_come_from_path_and_the_system_directories() {
        // Not under secure exec here: $PATH first, then every system directory.
        assert!(!secure_exec());
        let p = tool_path();
        for d in SYSTEM_PATH.split(':') {
            assert!(p.split(':').any(|x| x == d), "{p}");
        }
        assert!(find_tool("sh", &p).is_some());
        assert!(find_tool("no-such-tool-ctnet", &p).is_none());
    }
}
