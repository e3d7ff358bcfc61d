//! Support bundles: one `.tar.gz` a customer sends, holding the snapshot, the checks of
//! every container, short captures, tool and kernel versions, the kernel log lines
//! that matter, and a manifest of what could not be read and why. Any read command
//! takes a bundle as `--from` (the snapshot inside is what it reads).
//!
//! This module holds the parts a library user needs as much as the CLI: the archive
//! (written safely, members mode 0600, bounded), the reader, the kernel log and the
//! versions, and [`redact::Redactor`].

pub mod redact;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::output::OutputFile;

/// The `schema` of a bundle's `manifest.json`.
pub const BUNDLE_SCHEMA: &str = "ctnet.bundle/v1";

/// The member of a bundle that `--from` reads.
pub const SNAPSHOT_MEMBER: &str = "snapshot.json";

/// Kernel log lines kept at most (the newest).
pub const MAX_KERNEL_LINES: usize = 2_000;

/// Whether `bytes` start like a gzip stream (a bundle, not a JSON snapshot).
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// A bundle being written: a gzip'd tar into an [`OutputFile`] (never opened by its
/// name, mode 0600, put in place only when whole).
pub struct Archive {
    tar: tar::Builder<flate2::write::GzEncoder<OutputFile>>,
    path: std::path::PathBuf,
    mtime: u64,
    /// Each member and its size, in order.
    pub members: Vec<(String, u64)>,
}

impl Archive {
    /// Start writing `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let file = OutputFile::create(path)?;
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        Ok(Self {
            tar,
            path: path.to_path_buf(),
            mtime: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            members: Vec::new(),
        })
    }

    /// Add `bytes` as member `name` (a relative path the caller made safe), mode 0600.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(self.mtime);
        h.set_entry_type(tar::EntryType::Regular);
        self.tar
            .append_data(&mut h, name, bytes)
            .map_err(|e| Error::io("writing", &self.path, e))?;
        self.members.push((name.to_string(), bytes.len() as u64));
        Ok(())
    }

    /// Finish the archive and put the file in place; its size in bytes.
    pub fn finish(self) -> Result<u64> {
        let path = self.path;
        let gz = self
            .tar
            .into_inner()
            .map_err(|e| Error::io("writing", &path, e))?;
        let mut file = gz.finish().map_err(|e| Error::io("writing", &path, e))?;
        file.flush().map_err(|e| Error::io("writing", &path, e))?;
        file.commit()?;
        Ok(std::fs::metadata(&path).map_or(0, |m| m.len()))
    }
}

/// Member `name` of the bundle `bytes`, at most `cap` bytes: `Ok(None)` when the
/// bundle has no such member. A member larger than `cap`, or a stream that is not a
/// tar in gzip, is an error that says so.
pub fn member(bytes: &[u8], name: &str, cap: u64) -> Result<Option<Vec<u8>>> {
    let bad = |why: String| {
        Error::Invalid(format!(
            "not a ctnet bundle ({why}): make one with `ctnet-diag bundle -o FILE.tar.gz`"
        ))
    };
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(gz);
    let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| bad(e.to_string()))?;
        let is = entry
            .path()
            .map(|p| p.as_ref() == Path::new(name))
            .unwrap_or(false);
        if !is {
            continue;
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!("{name} is not a regular file")));
        }
        let mut out = Vec::new();
        entry
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(e.to_string()))?;
        if out.len() as u64 > cap {
            return Err(Error::Invalid(format!(
                "{name} in the bundle is larger than {} MiB",
                cap >> 20
            )));
        }
        return Ok(Some(out));
    }
    Ok(None)
}

/// What the kernel log says that matters for container networking: neighbour table
/// overflow, a full conntrack table, martian packets, SYN floods. Read from
/// `/dev/kmsg` (the whole ring buffer, without waiting), the newest
/// [`MAX_KERNEL_LINES`] kept, each as `[seconds since boot] message`.
pub fn kernel_log() -> std::result::Result<Vec<String>, String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    const PATTERNS: &[&str] = &[
        "table overflow",
        "nf_conntrack: table full",
        "table full, dropping packet",
        "expectation table full",
        "martian",
        "ll header:",
        "Possible SYN flooding",
    ];
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .map_err(|e| {
            format!("/dev/kmsg: {e} (reading the kernel log needs CAP_SYSLOG when kernel.dmesg_restrict=1)")
        })?;
    let mut lines = std::collections::VecDeque::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                // `prio,seq,usec,flags;message` then continuation lines (` KEY=value`).
                let Some((head, rest)) = rec.split_once(';') else {
                    continue;
                };
                let msg = rest.lines().next().unwrap_or("");
                if !PATTERNS.iter().any(|p| msg.contains(p)) {
                    continue;
                }
                let usec: u64 = head.split(',').nth(2).and_then(|v| v.parse().ok()).unwrap_or(0);
                lines.push_back(format!(
                    "[{:>6}.{:06}] {}",
                    usec / 1_000_000,
                    usec % 1_000_000,
                    crate::text::escape(msg)
                ));
                if lines.len() > MAX_KERNEL_LINES {
                    lines.pop_front();
                }
            }
            // A record overwritten while being read: the next one follows.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(format!("/dev/kmsg: {e}")),
        }
    }
    Ok(lines.into())
}

/// The versions of the tools ctnet runs and of this system: each line `name: answer`,
/// or `name: not read: why`. Every tool is given 2 s and 4 KiB of output.
pub fn versions(tool_path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .map_err(|e| e.to_string())
    };
    for (name, path) in [
        ("kernel release", "/proc/sys/kernel/osrelease"),
        ("kernel version", "/proc/sys/kernel/version"),
    ] {
        out.push(match read(path) {
            Ok(v) => format!("{name}: {v}"),
            Err(e) => format!("{name}: not read: {e}"),
        });
    }
    match read("/etc/os-release") {
        Ok(text) => {
            let pretty = text
                .lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_default();
            out.push(format!("os: {pretty}"));
        }
        Err(e) => out.push(format!("os: not read: {e}")),
    }
    for (tool, args) in [
        ("ip", &["-V"][..]),
        ("iptables", &["-V"][..]),
        ("ip6tables", &["-V"][..]),
        ("nft", &["--version"][..]),
        ("tcpdump", &["--version"][..]),
        ("ethtool", &["--version"][..]),
        ("conntrack", &["--version"][..]),
        ("docker", &["--version"][..]),
        ("podman", &["--version"][..]),
        ("containerd", &["--version"][..]),
    ] {
        out.push(match tool_version(tool, args, tool_path) {
            Ok(v) => format!("{tool}: {v}"),
            Err(e) => format!("{tool}: not read: {e}"),
        });
    }
    out
}

/// The first line a tool prints of its version (on stdout, else stderr).
fn tool_version(tool: &str, args: &[&str], path: &str) -> std::result::Result<String, String> {
    let out = crate::tool::Cmd::new(tool, path)
        .args(args)
        .timeout(Duration::from_secs(2))
        .spawn()
        .output()
        .map_err(|e| match e {
            crate::Error::Tool { detail, .. } => detail,
            e => e.to_string(),
        })?;
    let first = |b: &[u8]| {
        String::from_utf8_lossy(&b[..b.len().min(4096)])
            .lines()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string())
    };
    let line = first(&out.stdout)
        .or_else(|| first(&out.stderr))
        .unwrap_or_default();
    Ok(crate::text::escape(&line).into_owned())
}

/// A member name made of `name`: letters, digits, `.`, `_` and `-` kept, anything else
/// `_`, at most 64 characters (names are a user's: never a path).
pub fn safe_member_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_never_paths() {
        assert_eq!(safe_member_name("web1"), "web1");
        assert_eq!(safe_member_name("../../etc/passwd"), "_.._.._etc_passwd");
        assert_eq!(safe_member_name(".."), "_..");
        assert_eq!(safe_member_name(""), "_");
        assert_eq!(safe_member_name("x\x1b[31m"), "x__31m");
        assert_eq!(safe_member_name(&"a".repeat(100)).len(), 64);
    }

    #[test]
    fn an_archive_is_read_back_and_bad_ones_are_named() {
        let dir = std::env::temp_dir().join(format!("ctnet-bundle-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.tar.gz");
        let mut a = Archive::create(&path).unwrap();
        a.add("manifest.json", b"{}").unwrap();
        a.add(SNAPSHOT_MEMBER, b"{\"x\": 1}").unwrap();
        let size = a.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, size);
        assert!(is_gzip(&bytes));
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            member(&bytes, SNAPSHOT_MEMBER, 100).unwrap().unwrap(),
            b"{\"x\": 1}"
        );
        assert_eq!(member(&bytes, "nope", 100).unwrap(), None);
        let too_big = member(&bytes, SNAPSHOT_MEMBER, 3).unwrap_err().to_string();
        assert!(too_big.contains("larger than"), "{too_big}");
        let cut = member(&bytes[..bytes.len() / 2], SNAPSHOT_MEMBER, 100);
        assert!(cut.is_err() || cut.unwrap().is_none());
        let not = member(b"\x1f\x8bgarbage", SNAPSHOT_MEMBER, 100)
            .unwrap_err()
            .to_string();
        assert!(not.contains("not a ctnet bundle"), "{not}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
