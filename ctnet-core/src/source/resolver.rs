//! The DNS resolver a netns's processes use: `etc/resolv.conf` inside a process's root,
//! or `/etc/netns/NAME/resolv.conf` (what `ip netns exec NAME` bind-mounts) for a named
//! netns no process is known in.
//!
//! A container's files are hostile: `/proc/PID/root/etc/resolv.conf` opened by path
//! would follow a symlink planted in the container (`resolv.conf -> /etc/shadow`)
//! against the *host's* root. The file is opened with `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)` on the opened root, without blocking (a FIFO), checked to be
//! a regular file, and read up to [`MAX_RESOLV_CONF`] bytes.

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

use crate::model::Resolver;
use crate::netns::NetnsRef;

/// The most bytes of a `resolv.conf` read (glibc reads a few lines; 64 KiB is plenty).
pub const MAX_RESOLV_CONF: u64 = 64 << 10;

/// The resolver of a netns known by `refs`: the first process's root, else the named
/// netns's `/etc/netns` file; `None` when there is neither (a bare named netns: what
/// resolves there is whatever a program started in it reads).
pub(crate) fn read(refs: &[NetnsRef]) -> Option<Resolver> {
    if let Some(pid) = refs.iter().find_map(|r| match r {
        NetnsRef::Pid { pid, .. } => Some(*pid),
        _ => None,
    }) {
        let root = format!("/proc/{pid}/root");
        let path = format!("{root}/etc/resolv.conf");
        return Some(match read_in_root(Path::new(&root), "etc/resolv.conf") {
            Ok(bytes) => parse(&path, &bytes),
            Err(e) => Resolver {
                path,
                error: Some(e),
                ..Resolver::default()
            },
        });
    }
    let name = refs.iter().find_map(|r| match r {
        NetnsRef::Named { name, .. } => Some(name),
        _ => None,
    })?;
    crate::netns::validate_netns_name(name).ok()?;
    let dir = Path::new("/etc/netns").join(name);
    if !dir.exists() {
        return None;
    }
    let path = dir.join("resolv.conf").display().to_string();
    Some(match read_in_root(&dir, "resolv.conf") {
        Ok(bytes) => parse(&path, &bytes),
        Err(e) => Resolver {
            path,
            error: Some(e),
            ..Resolver::default()
        },
    })
}

/// `rel` opened inside `root` as if `root` were `/`, read up to the cap.
fn read_in_root(root: &Path, rel: &str) -> Result<Vec<u8>, String> {
    let dir = std::fs::File::open(root).map_err(|e| format!("opening {}: {e}", root.display()))?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(&dir, rel, how).map_err(|e| format!("opening {rel} in {}: {e}", root.display()))?;
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!("{rel} in {} is not a regular file", root.display()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_RESOLV_CONF + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading {rel} in {}: {e}", root.display()))?;
    if bytes.len() as u64 > MAX_RESOLV_CONF {
        return Err(format!(
            "{rel} in {} is larger than {MAX_RESOLV_CONF} bytes",
            root.display()
        ));
    }
    Ok(bytes)
}

/// Parse `resolv.conf` as the C library does: `nameserver ADDR` (an IPv6 address may
/// carry `%zone`), `search` (the last one wins), `domain`; comments start with `#` or
/// `;`; anything else is ignored.
pub(crate) fn parse(path: &str, bytes: &[u8]) -> Resolver {
    let text = String::from_utf8_lossy(bytes);
    let mut r = Resolver {
        path: path.to_string(),
        ..Resolver::default()
    };
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(a) = words.next()
                    && let Ok(ip) = a.split('%').next().unwrap_or(a).parse::<IpAddr>()
                    && r.nameservers.len() < 16
                {
                    r.nameservers.push(ip);
                }
            }
            Some("search") | Some("domain") => {
                r.search = words.take(16).map(|w| w.chars().take(253).collect()).collect();
            }
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_parses_like_the_c_library() {
        let r = parse(
            "x",
            b"# generated\nnameserver 127.0.0.11\nnameserver fe80::1%eth0 ; zone\nnameserver bogus\n\
              search a.example b.example\noptions ndots:0\n",
        );
        assert_eq!(
            r.nameservers,
            vec![
                "127.0.0.11".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        assert_eq!(r.search, vec!["a.example", "b.example"]);
        assert!(r.error.is_none());
        // Garbage is not an error, and never a panic.
        let r = parse("x", &[0xff, b'\n', 0, b'n', b'a', b'm', b'e']);
        assert!(r.nameservers.is_empty());
    }

    #[test]
    fn a_symlink_in_the_root_resolves_inside_it_and_fifos_and_big_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("ctnet-resolv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("inner")).unwrap();
        std::fs::write(dir.join("inner/hosts"), "nameserver 192.0.2.53\n").unwrap();
        // An absolute link: resolved against `dir`, never against the host's `/`.
        std::os::unix::fs::symlink("/inner/hosts", dir.join("etc/resolv.conf")).unwrap();
        let bytes = read_in_root(&dir, "etc/resolv.conf").unwrap();
        assert_eq!(
            parse("x", &bytes).nameservers,
            vec!["192.0.2.53".parse::<IpAddr>().unwrap()]
        );
        // A link out of the root stays inside it: /etc/hostname of the root, which is absent.
        std::fs::remove_file(dir.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("etc/resolv.conf")).unwrap();
        assert!(read_in_root(&dir, "etc/resolv.conf").is_err());
        std::fs::remove_file(dir.join("etc/resolv.conf")).unwrap();
        nix::unistd::mkfifo(
            &dir.join("etc/resolv.conf"),
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap();
        let e = read_in_root(&dir, "etc/resolv.conf").unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::remove_file(dir.join("etc/resolv.conf")).unwrap();
        std::fs::write(
            dir.join("etc/resolv.conf"),
            vec![b'#'; (MAX_RESOLV_CONF + 10) as usize],
        )
        .unwrap();
        let e = read_in_root(&dir, "etc/resolv.conf").unwrap_err();
        assert!(e.contains("larger than"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
