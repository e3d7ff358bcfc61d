//! Filling a netns's conntrack table for the `conntrack-full` fault, through ctnetlink
//! (`IPCTNL_MSG_CT_NEW` in batches: what `conntrack -I` does one process at a time).
//!
//! `nf_conntrack_max` is one value for the whole host, writable only from the initial
//! netns; each netns counts its own entries against it. So a lab cannot lower the
//! limit: it fills its own count up to it instead, with entries that are assured (the
//! kernel evicts only unassured ones to make room), marked [`MARK`] so that the undo
//! removes exactly them, and with a timeout so they go by themselves if nothing undoes
//! them. The tuples use 198.18.0.0/15 (benchmarking addresses, RFC 2544), UDP to port 9.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, ErrorKind, Result};

/// The mark on every entry the fault adds ("ctnf").
pub const MARK: u32 = 0x6374_6e66;
/// Seconds each entry lives if nothing removes it.
pub const TIMEOUT: u32 = 600;

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_TIMEOUT: u16 = 7;
const CTA_MARK: u16 = 8;
const CTA_MARK_MASK: u16 = 21;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const IPS_SEEN_REPLY: u32 = 1 << 1;
const IPS_ASSURED: u32 = 1 << 2;
/// The kernel marks a created entry confirmed before it reads CTA_STATUS, and refuses a
/// status that would clear it (EBUSY).
const IPS_CONFIRMED: u32 = 1 << 3;
/// Messages per send (each 120 bytes; a send must fit the socket's default send
/// buffer, about 208 KiB).
const BATCH: u32 = 1000;

fn attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn nest(buf: &mut Vec<u8>, ty: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    body(buf);
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    buf[start + 2..start + 4].copy_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
}

fn tuple(buf: &mut Vec<u8>, ty: u16, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) {
    nest(buf, ty, |b| {
        nest(b, CTA_TUPLE_IP, |b| {
            attr(b, CTA_IP_V4_SRC, &src.octets());
            attr(b, CTA_IP_V4_DST, &dst.octets());
        });
        nest(b, CTA_TUPLE_PROTO, |b| {
            attr(b, CTA_PROTO_NUM, &[libc::IPPROTO_UDP as u8]);
            attr(b, CTA_PROTO_SRC_PORT, &sport.to_be_bytes());
            attr(b, CTA_PROTO_DST_PORT, &dport.to_be_bytes());
        });
    });
}

/// One ctnetlink message: header, nfgenmsg (AF_INET), then `body`'s attributes.
fn message(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | kind).to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
    body(buf);
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// The `i`th entry's original direction: 198.18.0.0/15 sources, then source ports.
fn entry(i: u32) -> (Ipv4Addr, u16) {
    let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (i % 0x1_0000));
    (src, 1024 + (i / 0x1_0000) as u16)
}

const DST: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 254);

fn sock() -> Result<OwnedFd> {
    let err = |e: std::io::Error| Error::Tool {
        program: "ctnetlink".into(),
        detail: format!("opening a netfilter netlink socket: {e}"),
        kind: ErrorKind::of_io(&e),
    };
    // SAFETY: socket(2) with constant arguments; the result is a new fd or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    };
    if fd < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn send(fd: &OwnedFd, buf: &[u8]) -> std::io::Result<()> {
    // SAFETY: buf is a valid slice; the kernel is the destination (no address: the
    // socket is unbound, and netlink sends to the kernel by default).
    let n = unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Read answers until the acknowledgement of `last`; the first error the kernel sent
/// back (an errno) along the way, if any.
fn acks(fd: &OwnedFd, last: u32) -> std::io::Result<Option<i32>> {
    let mut buf = vec![0u8; 1 << 16];
    let mut first = None;
    loop {
        // SAFETY: buf is a valid, writable buffer of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut at = 0usize;
        let n = n as usize;
        while at + 16 <= n {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
            let ty = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().expect("2 bytes"));
            let seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().expect("4 bytes"));
            if len < 16 || at + len > n {
                break;
            }
            if ty == libc::NLMSG_ERROR as u16 && len >= 20 {
                let errno = i32::from_ne_bytes(buf[at + 16..at + 20].try_into().expect("4 bytes"));
                if errno != 0 && first.is_none() {
                    first = Some(-errno);
                }
                if seq == last {
                    return Ok(first);
                }
            }
            at += len.next_multiple_of(4);
        }
    }
}

/// Add `count` assured UDP entries marked [`MARK`] to the current thread's netns.
/// Stops at the first batch the kernel refuses (the table full, say): returns how many
/// were added before it, and the refusal.
pub fn fill(count: u32) -> Result<(u32, Option<std::io::Error>)> {
    let fd = sock()?;
    let io = |e: std::io::Error| Error::io("filling the conntrack table through", "ctnetlink", e);
    let mut added = 0;
    let mut buf = Vec::with_capacity(BATCH as usize * 128);
    while added < count {
        buf.clear();
        let n = BATCH.min(count - added);
        for k in 0..n {
            let i = added + k;
            let (src, sport) = entry(i);
            // An acknowledgement only for the batch's last message; errors come anyway.
            let ack = if k == n - 1 { libc::NLM_F_ACK } else { 0 };
            let flags = (libc::NLM_F_REQUEST | libc::NLM_F_CREATE | libc::NLM_F_EXCL | ack) as u16;
            message(&mut buf, IPCTNL_MSG_CT_NEW, flags, i + 1, |b| {
                tuple(b, CTA_TUPLE_ORIG, src, DST, sport, 9);
                tuple(b, CTA_TUPLE_REPLY, DST, src, 9, sport);
                attr(
                    b,
                    CTA_STATUS,
                    &(IPS_ASSURED | IPS_SEEN_REPLY | IPS_CONFIRMED).to_be_bytes(),
                );
                attr(b, CTA_TIMEOUT, &TIMEOUT.to_be_bytes());
                attr(b, CTA_MARK, &MARK.to_be_bytes());
            });
        }
        send(&fd, &buf).map_err(io)?;
        if let Some(errno) = acks(&fd, added + n).map_err(io)? {
            // Entries of this batch before the refusal may have gone in: the caller
            // reads the count back.
            return Ok((added, Some(std::io::Error::from_raw_os_error(errno))));
        }
        added += n;
    }
    Ok((added, None))
}

/// Remove every entry marked [`MARK`] from the current thread's netns (one flush the
/// kernel filters by mark).
pub fn flush_marked() -> Result<()> {
    let fd = sock()?;
    let io = |e: std::io::Error| Error::io("removing the fault's entries through", "ctnetlink", e);
    let mut buf = Vec::new();
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    message(&mut buf, IPCTNL_MSG_CT_DELETE, flags, 1, |b| {
        attr(b, CTA_MARK, &MARK.to_be_bytes());
        attr(b, CTA_MARK_MASK, &u32::MAX.to_be_bytes());
    });
    send(&fd, &buf).map_err(io)?;
    match acks(&fd, 1).map_err(io)? {
        None => Ok(()),
        Some(errno) => Err(io(std::io::Error::from_raw_os_error(errno))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_well_formed_netlink() {
        let mut buf = Vec::new();
        message(&mut buf, IPCTNL_MSG_CT_NEW, 1, 7, |b| {
            tuple(b, CTA_TUPLE_ORIG, Ipv4Addr::new(198, 18, 0, 1), DST, 1024, 9);
            attr(b, CTA_MARK, &MARK.to_be_bytes());
        });
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        assert_eq!(len, buf.len());
        assert_eq!(len % 4, 0);
        assert_eq!(u16::from_ne_bytes(buf[4..6].try_into().unwrap()), 0x100);
        // nfgenmsg, then the nested tuple: ip (2 addresses) and proto (number, 2 ports).
        assert_eq!(buf[16], libc::AF_INET as u8);
        let tlen = u16::from_ne_bytes(buf[20..22].try_into().unwrap());
        assert_eq!(tlen, 4 + (4 + 8 + 8) + (4 + 8 + 8 + 8));
        assert_eq!(
            u16::from_ne_bytes(buf[22..24].try_into().unwrap()),
            CTA_TUPLE_ORIG | NLA_F_NESTED
        );
        // Distinct tuples for every entry the fault can add.
        assert_eq!(entry(0), (Ipv4Addr::new(198, 18, 0, 0), 1024));
        assert_eq!(entry(0x1_0001), (Ipv4Addr::new(198, 18, 0, 1), 1025));
        assert_eq!(entry(262_143), (Ipv4Addr::new(198, 18, 255, 255), 1027));
    }
}
