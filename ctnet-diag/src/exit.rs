//! Exit codes and the hints printed with an error.

use std::process::ExitCode;

use ctnet_core::{Error, ErrorKind};

/// A check failed (or a probe did not get through).
pub const CHECK_FAILED: u8 = 1;
/// Usage error, unknown target, or a name that is already taken.
pub const USAGE: u8 = 2;
/// Missing privilege or environment (no netlink, missing tool).
pub const ENV: u8 = 3;
/// Anything else.
pub const INTERNAL: u8 = 4;

/// The exit code for an error kind.
pub fn code_for(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::PermissionDenied | ErrorKind::Unsupported | ErrorKind::MissingTool => ENV,
        ErrorKind::InvalidInput | ErrorKind::AlreadyExists => USAGE,
        ErrorKind::NotFound | ErrorKind::Other => INTERNAL,
    }
}

/// A command failed because the caller lacks what it needs, not because of a bug.
#[derive(Debug)]
pub struct Missing {
    /// What is missing and how to get it.
    pub message: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Missing {}

/// Print `err` with a hint on stderr and return its exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<crate::out::Closed>().is_some() {
        // `| head -1`: the reader has what it wanted; say nothing.
        return ExitCode::from(crate::out::CLOSED_STATUS);
    }
    if let Some(m) = err.downcast_ref::<Missing>() {
        crate::say!("ctnet-diag: {m}");
        return ExitCode::from(ENV);
    }
    if err.downcast_ref::<crate::out::WriteFailed>().is_some() {
        crate::say!("ctnet-diag: error: {}", message(err));
        return ExitCode::from(ENV);
    }
    let core = err.downcast_ref::<Error>();
    let kind = core.map(Error::kind);
    crate::say!("ctnet-diag: error: {}", message(err));
    let code = match (core, kind) {
        (Some(Error::Io { source, .. }), _) if is_storage_error(source) => ENV,
        (_, Some(kind)) => code_for(kind),
        (_, None) => INTERNAL,
    };
    if kind == Some(ErrorKind::PermissionDenied) {
        crate::say!(
            "hint: this needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN); try sudo, or run rootless \
             in a private world: `ctnet-diag world -- ctnet-diag ...` or `ctnet-diag demo`; \
             or file capabilities for users who are not root: {}",
            privilege::setcap_line(&privilege::own_path())
        );
    }
    ExitCode::from(code)
}

/// A write that failed because of where it went (a full or read-only disk, a device
/// error), not because of a bug: an environment problem.
fn is_storage_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EIO | libc::EROFS | libc::EFBIG | libc::EPIPE)
    )
}

/// An error and its causes on one line, each cause said once: ctnet-core's errors
/// already end with their OS error, which is also their `source()`.
pub fn message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

use ctnet_core::privilege::{self, CAP_NET_ADMIN, CAP_SYS_ADMIN};

/// Fail with [`Missing`] unless the process can create interfaces and netns, as root
/// (or root of a world): file capabilities never change the host.
pub fn require_lab_caps(what: &str) -> Result<(), Missing> {
    if privilege::file_capabilities() && !what.contains("--probe") {
        return Err(Missing {
            message: format!(
                "{what} changes this host (interfaces, network namespaces under /run/netns, \
                 firewall rules, the lab records), and this copy of ctnet-diag runs as uid {} \
                 with file capabilities (setcap), which cover reading, capturing and probing, \
                 never changing the host.\n  - run it as root: sudo ctnet-diag {what} ...\n  \
                 - or see a lab at once, rootless: ctnet-diag demo (with a copy of the binary \
                 that has no file capabilities)",
                nix::unistd::geteuid()
            ),
        });
    }
    let missing = lacking_admin_caps();
    if missing.is_empty() {
        return Ok(());
    }
    let root = nix::unistd::geteuid().is_root();
    let first = if root {
        "you are root but without them (a container started without \
         --cap-add NET_ADMIN --cap-add SYS_ADMIN?): grant them to this container"
            .to_string()
    } else {
        format!("run it as root: sudo ctnet-diag {what} ...")
    };
    Err(Missing {
        message: format!(
            "{what} needs {} (to create interfaces and network namespaces), which this \
             process does not have.\n  - {first}\n  - or rootless, \
             in a private world that touches nothing on this host: \
             ctnet-diag world -- ctnet-diag {what} ...\n  - or see a lab at once: ctnet-diag demo",
            missing.join(" and ")
        ),
    })
}

/// Which of CAP_NET_ADMIN and CAP_SYS_ADMIN this process lacks, by name.
fn lacking_admin_caps() -> Vec<&'static str> {
    let caps = privilege::effective();
    [(CAP_NET_ADMIN, "CAP_NET_ADMIN"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN")]
        .into_iter()
        .filter(|(bit, _)| caps & (1u64 << bit) == 0)
        .map(|(_, name)| name)
        .collect()
}

/// Fail with [`Missing`] unless the process can read every netns and the firewall
/// (`what` reads the host live).
pub fn require_read_caps(what: &str) -> Result<(), Missing> {
    let missing = lacking_admin_caps();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Missing {
        message: format!(
            "{what} reads the firewall rules (CAP_NET_ADMIN) and every container's netns \
             (CAP_SYS_ADMIN); this process lacks {}: a trace without them would guess.\n  \
             - run it as root: sudo ctnet-diag {what} ...\n  \
             - or let users who are not root read with this binary (file capabilities; \
             restrict who may run it first, e.g. chgrp netdiag and chmod 0750): {}\n  \
             - or on a snapshot taken as root: ctnet-diag snapshot -o FILE, then \
             ctnet-diag {what} ... --from FILE",
            missing.join(" and "),
            privilege::setcap_line(&privilege::own_path())
        ),
    })
}

/// Enter a rootless world in this (still single-threaded) process, or explain why not.
pub fn enter_world() -> Result<(), Missing> {
    ctnet_core::world::enter_current_process().map_err(|e| Missing {
        message: format!(
            "{e}\nA rootless world needs unprivileged user namespaces (sysctl \
             user.max_user_namespaces > 0; on Debian kernels kernel.unprivileged_userns_clone=1; \
             inside a container, one allowed to create namespaces)."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_each_cause_once() {
        let io = std::io::Error::from_raw_os_error(libc::EEXIST);
        let e = anyhow::Error::new(Error::Io {
            op: "creating".into(),
            path: "/x".into(),
            source: io,
        })
        .context("writing snapshot");
        assert_eq!(
            message(&e),
            "writing snapshot: creating /x: File exists (os error 17)"
        );
    }

    #[test]
    fn maps_kinds_to_design_exit_codes() {
        assert_eq!(code_for(ErrorKind::PermissionDenied), 3);
        assert_eq!(code_for(ErrorKind::InvalidInput), 2);
        assert_eq!(code_for(ErrorKind::AlreadyExists), 2);
        assert_eq!(code_for(ErrorKind::Other), 4);
    }
}
