//! A minimal netfilter netlink (nfnetlink) client: messages built by hand, sent on a
//! socket of the calling thread's netns, answers read with bounds. Used where running a
//! tool per namespace costs more than the answer: listing nf_tables tables (is there any
//! firewall here at all?) and the conntrack entries of the `conntrack-full` fault.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::error::{Error, ErrorKind, Result};

/// `nfnetlink` subsystems.
pub(crate) const SUBSYS_CTNETLINK: u16 = 1;
pub(crate) const SUBSYS_NFTABLES: u16 = 10;
const NLA_F_NESTED: u16 = 0x8000;
/// Most bytes one dump may answer (a table list is tiny; this bounds a hostile kernel
/// module or a bug, not a real host).
const MAX_DUMP: usize = 16 << 20;

/// Append an attribute.
pub(crate) fn attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// Append a nested attribute whose body `body` writes.
pub(crate) fn nest(buf: &mut Vec<u8>, ty: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    body(buf);
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    buf[start + 2..start + 4].copy_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
}

/// Append one message: header, `nfgenmsg` (`family`), then `body`'s attributes.
pub(crate) fn message(
    buf: &mut Vec<u8>,
    subsys: u16,
    kind: u16,
    flags: u16,
    seq: u32,
    family: u8,
    body: impl FnOnce(&mut Vec<u8>),
) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&((subsys << 8) | kind).to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[family, 0, 0, 0]);
    body(buf);
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// One answer: its type, sequence number, and what follows its header.
pub(crate) struct Answer<'a> {
    pub kind: u16,
    pub seq: u32,
    pub body: &'a [u8],
}

/// The messages in one datagram, stopping at the first malformed one.
pub(crate) fn answers(buf: &[u8]) -> Vec<Answer<'_>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
        if len < 16 || at + len > buf.len() {
            break;
        }
        out.push(Answer {
            kind: u16::from_ne_bytes(buf[at + 4..at + 6].try_into().expect("2 bytes")),
            seq: u32::from_ne_bytes(buf[at + 8..at + 12].try_into().expect("4 bytes")),
            body: &buf[at + 16..at + len],
        });
        at += len.next_multiple_of(4);
    }
    out
}

/// The attributes of `buf` (after the `nfgenmsg`): (type without flags, payload).
pub(crate) fn attrs(buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 4 <= buf.len() {
        let len = u16::from_ne_bytes(buf[at..at + 2].try_into().expect("2 bytes")) as usize;
        let ty = u16::from_ne_bytes(buf[at + 2..at + 4].try_into().expect("2 bytes")) & 0x3fff;
        if len < 4 || at + len > buf.len() {
            break;
        }
        out.push((ty, &buf[at + 4..at + len]));
        at += len.next_multiple_of(4);
    }
    out
}

/// An nfnetlink socket in the calling thread's netns.
pub(crate) struct Socket {
    fd: OwnedFd,
}

impl Socket {
    pub(crate) fn open(what: &str) -> Result<Socket> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(|e| {
            let e = std::io::Error::from(e);
            Error::Tool {
                program: what.into(),
                detail: format!("opening a netfilter netlink socket: {e}"),
                kind: ErrorKind::of_io(&e),
            }
        })?;
        Ok(Socket { fd })
    }

    pub(crate) fn send(&self, buf: &[u8]) -> std::io::Result<()> {
        // An unbound netlink socket sends to the kernel.
        nix::sys::socket::send(self.fd.as_raw_fd(), buf, nix::sys::socket::MsgFlags::empty())?;
        Ok(())
    }

    /// One datagram into `buf`; its length.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(nix::sys::socket::recv(
            self.fd.as_raw_fd(),
            buf,
            nix::sys::socket::MsgFlags::empty(),
        )?)
    }

    /// Read answers until the acknowledgement of `last`; the first error the kernel
    /// sent back along the way (an errno), if any.
    pub(crate) fn acks(&self, last: u32) -> std::io::Result<Option<i32>> {
        let mut buf = vec![0u8; 1 << 16];
        let mut first = None;
        loop {
            let n = self.recv(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            for a in answers(&buf[..n]) {
                if a.kind == libc::NLMSG_ERROR as u16 && a.body.len() >= 4 {
                    let errno = i32::from_ne_bytes(a.body[..4].try_into().expect("4 bytes"));
                    if errno != 0 && first.is_none() {
                        first = Some(-errno);
                    }
                    if a.seq == last {
                        return Ok(first);
                    }
                }
            }
        }
    }

    /// Send one dump request and collect its answers' bodies (`nfgenmsg` included)
    /// until `NLMSG_DONE`.
    pub(crate) fn dump(&self, request: &[u8]) -> std::io::Result<Vec<(u16, Vec<u8>)>> {
        self.send(request)?;
        let mut buf = vec![0u8; 1 << 16];
        let mut out = Vec::new();
        let mut total = 0usize;
        loop {
            let n = self.recv(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            total += n;
            if total > MAX_DUMP {
                return Err(std::io::Error::other("the answer is larger than any real one"));
            }
            for a in answers(&buf[..n]) {
                match a.kind {
                    k if k == libc::NLMSG_DONE as u16 => return Ok(out),
                    k if k == libc::NLMSG_ERROR as u16 => {
                        let errno = a
                            .body
                            .get(..4)
                            .map_or(libc::EIO, |b| -i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                        if errno != 0 {
                            return Err(std::io::Error::from_raw_os_error(errno));
                        }
                    }
                    k => out.push((k, a.body.to_vec())),
                }
            }
        }
    }
}

/// The nf_tables tables of the calling thread's netns: (family, name), the family as
/// nft names it (`ip`, `ip6`, `inet`, `arp`, `bridge`, `netdev`).
pub fn nft_tables() -> Result<Vec<(String, String)>> {
    const NFT_MSG_GETTABLE: u16 = 1;
    const NFTA_TABLE_NAME: u16 = 1;
    let sock = Socket::open("nf_tables")?;
    let mut req = Vec::new();
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    message(&mut req, SUBSYS_NFTABLES, NFT_MSG_GETTABLE, flags, 1, 0, |_| {});
    let answers = sock
        .dump(&req)
        .map_err(|e| Error::io("listing nf_tables tables through", "nfnetlink", e))?;
    let mut out = Vec::new();
    for (_, body) in answers {
        let Some(&family) = body.first() else { continue };
        let family = match family as i32 {
            libc::NFPROTO_IPV4 => "ip",
            libc::NFPROTO_IPV6 => "ip6",
            libc::NFPROTO_INET => "inet",
            libc::NFPROTO_ARP => "arp",
            libc::NFPROTO_BRIDGE => "bridge",
            libc::NFPROTO_NETDEV => "netdev",
            _ => continue,
        };
        let name = attrs(body.get(4..).unwrap_or_default())
            .into_iter()
            .find(|(t, _)| *t == NFTA_TABLE_NAME)
            .map(|(_, v)| String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)).into_owned());
        if let Some(name) = name {
            out.push((family.to_string(), name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_attributes_round_trip() {
        let mut buf = Vec::new();
        message(
            &mut buf,
            SUBSYS_NFTABLES,
            0,
            0,
            9,
            libc::NFPROTO_INET as u8,
            |b| {
                attr(b, 1, b"filter\0");
                nest(b, 2, |b| attr(b, 3, &[1, 2, 3]));
            },
        );
        let a = answers(&buf);
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].kind, a[0].seq), (0x0a00, 9));
        assert_eq!(a[0].body[0], libc::NFPROTO_INET as u8);
        let at = attrs(&a[0].body[4..]);
        assert_eq!(at[0], (1, &b"filter\0"[..]));
        assert_eq!(at[1].0, 2);
        assert_eq!(attrs(at[1].1), vec![(3, &[1u8, 2, 3][..])]);
        // Truncated or lying lengths end the walk, never panic.
        for cut in 0..buf.len() {
            let _ = answers(&buf[..cut]);
            let _ = attrs(&buf[..cut]);
        }
        let mut bad = buf.clone();
        bad[0] = 0xff;
        assert!(answers(&bad).is_empty());
    }
}
