//! The one error type of ctnet-core: what was attempted, where, and what kind of failure.

use std::io;
use std::path::PathBuf;

/// Result alias used across ctnet-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is; renderers turn this into hints and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A capability or file permission is missing (EPERM/EACCES).
    PermissionDenied,
    /// The object (interface, netns, file) does not exist.
    NotFound,
    /// An object with that name already exists.
    AlreadyExists,
    /// The caller gave something invalid (a bad name, subnet, count).
    InvalidInput,
    /// The kernel or a tool does not support what was asked.
    Unsupported,
    /// A program ctnet runs (iptables-restore, nft, ...) is not installed.
    MissingTool,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Classify an `io::Error` (netlink and syscalls end up here).
    pub fn of_io(err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::PermissionDenied => Self::PermissionDenied,
            io::ErrorKind::NotFound => Self::NotFound,
            io::ErrorKind::AlreadyExists => Self::AlreadyExists,
            io::ErrorKind::Unsupported => Self::Unsupported,
            _ => match err.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => Self::PermissionDenied,
                Some(libc::ENODEV | libc::ENOENT) => Self::NotFound,
                Some(libc::EEXIST) => Self::AlreadyExists,
                Some(libc::EOPNOTSUPP) => Self::Unsupported,
                _ => Self::Other,
            },
        }
    }
}

/// Errors of ctnet-core. Each variant says what was attempted and on what.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A namespace operation (open, setns, unshare, mount) failed.
    #[error("{} {}: {source}", crate::text::escape(op), crate::text::path(path))]
    Netns {
        /// What was attempted, e.g. "entering netns".
        op: String,
        /// The nsfs file or mount point involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A netlink request failed.
    #[error(
        "{} (in netns {}): {source}",
        crate::text::escape(op),
        crate::text::escape(netns)
    )]
    Netlink {
        /// What was attempted, e.g. "creating veth t-v1".
        op: String,
        /// Which netns the socket lives in.
        netns: String,
        /// The OS error the kernel answered with.
        source: io::Error,
    },
    /// A file or sysctl could not be read or written.
    #[error("{} {}: {source}", crate::text::escape(op), crate::text::path(path))]
    Io {
        /// What was attempted.
        op: String,
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An external tool (iptables-restore, ...) failed or is missing.
    #[error(
        "{}: {}",
        crate::text::escape(program),
        crate::text::escape_keep_newlines(detail)
    )]
    Tool {
        /// The program that was run.
        program: String,
        /// Its stderr, or why it could not start.
        detail: String,
        /// The kind of failure (a tool that is not installed is `MissingTool`).
        kind: ErrorKind,
    },
    /// A multi-step operation failed and was undone, but parts of the undo failed too.
    #[error("{cause}\nrolling back also failed ({} step(s)); left behind:\n  - {}", .undo_failures.len(), .undo_failures.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  - "))]
    RolledBack {
        /// What went wrong first.
        cause: Box<Error>,
        /// What could not be undone.
        undo_failures: Vec<Error>,
    },
    /// The caller gave invalid input; the message says what would be right.
    #[error("{0}")]
    Invalid(String),
    /// Several independent steps failed (teardown reports every failure).
    #[error("{} step(s) failed:\n  - {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  - "))]
    Many(Vec<Error>),
    /// The caller asked to stop (a signal, say) before anything was done.
    #[error("stopped while {what}; nothing was done")]
    Stopped {
        /// What was going on, e.g. "waiting for the lab lock".
        what: String,
    },
    /// A worker thread panicked: a bug in ctnet, reported as an internal error rather
    /// than passed off as a partial read.
    #[error(
        "{}: a thread panicked ({}); this is a bug in ctnet, please report it",
        crate::text::escape(what),
        crate::text::escape(message)
    )]
    Panic {
        /// What the thread was doing, e.g. "reading the container runtimes".
        what: String,
        /// The panic message, when it was a string.
        message: String,
    },
}

impl Error {
    /// The kind of this error, for hints and exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Netns { source, .. } | Error::Netlink { source, .. } | Error::Io { source, .. } => {
                ErrorKind::of_io(source)
            }
            Error::Tool { kind, .. } => *kind,
            Error::Invalid(_) => ErrorKind::InvalidInput,
            // A missing permission explains the rest; otherwise the first failure rules.
            Error::Many(errs) => errs
                .iter()
                .map(Error::kind)
                .find(|k| *k == ErrorKind::PermissionDenied)
                .or_else(|| errs.first().map(Error::kind))
                .unwrap_or(ErrorKind::Other),
            Error::RolledBack { cause, .. } => cause.kind(),
            Error::Panic { .. } | Error::Stopped { .. } => ErrorKind::Other,
        }
    }

    /// The error for a thread that panicked while doing `what`, from its panic payload
    /// (what `JoinHandle::join` or `catch_unwind` hand back).
    pub fn panic(what: impl Into<String>, payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Error::Panic {
            what: what.into(),
            message,
        }
    }

    pub(crate) fn netns(op: impl Into<String>, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Netns {
            op: op.into(),
            path: path.into(),
            source,
        }
    }

    pub(crate) fn io(op: impl Into<String>, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op: op.into(),
            path: path.into(),
            source,
        }
    }

    pub(crate) fn netlink(op: impl Into<String>, netns: impl Into<String>, err: rtnetlink::Error) -> Self {
        Error::Netlink {
            op: op.into(),
            netns: netns.into(),
            source: rtnl_to_io(err),
        }
    }
}

/// Turn an rtnetlink error into the `io::Error` (errno) the kernel answered with.
pub(crate) fn rtnl_to_io(err: rtnetlink::Error) -> io::Error {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

impl From<nix::Error> for ErrorKind {
    fn from(e: nix::Error) -> Self {
        ErrorKind::of_io(&io::Error::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_errno_into_kinds() {
        let cases = [
            (libc::EPERM, ErrorKind::PermissionDenied),
            (libc::EACCES, ErrorKind::PermissionDenied),
            (libc::ENODEV, ErrorKind::NotFound),
            (libc::EEXIST, ErrorKind::AlreadyExists),
            (libc::EINVAL, ErrorKind::Other),
            (libc::EBUSY, ErrorKind::Other),
            (libc::EOPNOTSUPP, ErrorKind::Unsupported),
            (libc::EIO, ErrorKind::Other),
        ];
        for (errno, kind) in cases {
            assert_eq!(
                ErrorKind::of_io(&io::Error::from_raw_os_error(errno)),
                kind,
                "errno {errno}"
            );
        }
    }

    #[test]
    fn a_panic_is_an_internal_error_that_keeps_its_message() {
        fn overflow(n: u32) {
            panic!("overflow at {n}")
        }
        fn fixed() {
            panic!("fixed text")
        }
        let payload = std::thread::spawn(|| overflow(7)).join().unwrap_err();
        let e = Error::panic("reading the container runtimes", &*payload);
        assert_eq!(e.kind(), ErrorKind::Other);
        let text = e.to_string();
        assert!(
            text.contains("reading the container runtimes") && text.contains("overflow at 7"),
            "{text}"
        );
        let payload = std::thread::spawn(fixed).join().unwrap_err();
        assert!(Error::panic("x", &*payload).to_string().contains("fixed text"));
    }

    #[test]
    fn many_reports_every_failure_and_surfaces_permission() {
        let e = Error::Many(vec![
            Error::Invalid("first".into()),
            Error::io("writing", "/x", io::Error::from_raw_os_error(libc::EPERM)),
        ]);
        let text = e.to_string();
        assert!(text.contains("2 step(s) failed"), "{text}");
        assert!(text.contains("first") && text.contains("writing /x"), "{text}");
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }
}
