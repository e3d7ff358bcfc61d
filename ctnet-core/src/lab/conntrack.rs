//! Filling a netns's conntrack table for the `conntrack-full` fault, through ctnetlink
//! (`IPCTNL_MSG_CT_NEW` in batches: what `conntrack -I` does one process at a time).
//!
//! `nf_conntrack_max` is one value for the whole host, writable only from the initial
//! netns; each netns counts its own entries against it. So a lab cannot lower the
//! limit: it fills its own count up to it instead, with entries that are assured (the
//! kernel evicts only unassured ones to make room), marked [`MARK`] so that the undo
//! removes exactly them, and with a timeout so they go by themselves if nothing undoes
//! them. Entries already there that are not assured (an IGMP report from the bridge, a
//! flow never answered) would be evicted by the kernel's garbage collector once the table
//! is over 95 % full, and each slot freed would let one new flow in: the fault removes
//! them itself and tops the table up until it stays full. The tuples use 198.18.0.0/15 (benchmarking addresses, RFC 2544), UDP to port 9.

use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::nfnetlink::{self as nfnl, attr, nest};

/// The mark on every entry the fault adds ("ctnf").
pub const MARK: u32 = 0x6374_6e66;
/// Seconds each entry lives if nothing removes it.
pub const TIMEOUT: u32 = 600;

const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_TIMEOUT: u16 = 7;
const CTA_MARK: u16 = 8;
const CTA_MARK_MASK: u16 = 21;
const CTA_STATUS_MASK: u16 = 26;
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

/// One ctnetlink message (IPv4).
fn message(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, body: impl FnOnce(&mut Vec<u8>)) {
    nfnl::message(
        buf,
        nfnl::SUBSYS_CTNETLINK,
        kind,
        flags,
        seq,
        libc::AF_INET as u8,
        body,
    );
}

/// The `i`th entry's original direction: 198.18.0.0/15 sources, then source ports.
fn entry(i: u32) -> (Ipv4Addr, u16) {
    let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (i % 0x1_0000));
    (src, 1024 + (i / 0x1_0000) as u16)
}

const DST: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 254);

/// Add `count` assured UDP entries marked [`MARK`] to the current thread's netns.
/// Stops at the first batch the kernel refuses (the table full, say): returns how many
/// were added before it, and the refusal.
pub fn fill(count: u32) -> Result<(u32, Option<std::io::Error>)> {
    fill_from(0, count)
}

/// [`fill`] with the tuples numbered from `first` on: a top-up after an earlier fill
/// adds entries of its own rather than ones the kernel already holds.
pub fn fill_from(first: u32, count: u32) -> Result<(u32, Option<std::io::Error>)> {
    let sock = nfnl::Socket::open("ctnetlink")?;
    let io = |e: std::io::Error| Error::io("filling the conntrack table through", "ctnetlink", e);
    let mut added = 0;
    let mut buf = Vec::with_capacity(BATCH as usize * 128);
    while added < count {
        buf.clear();
        let n = BATCH.min(count - added);
        for k in 0..n {
            // The sequence number counts this call's messages (what the acks are
            // matched by); the tuple's number goes on from `first`.
            let i = added + k;
            let (src, sport) = entry(first.saturating_add(i));
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
        sock.send(&buf).map_err(io)?;
        if let Some(errno) = sock.acks(added + n).map_err(io)? {
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
    let sock = nfnl::Socket::open("ctnetlink")?;
    let io = |e: std::io::Error| Error::io("removing the fault's entries through", "ctnetlink", e);
    let mut buf = Vec::new();
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    message(&mut buf, IPCTNL_MSG_CT_DELETE, flags, 1, |b| {
        attr(b, CTA_MARK, &MARK.to_be_bytes());
        attr(b, CTA_MARK_MASK, &u32::MAX.to_be_bytes());
    });
    sock.send(&buf).map_err(io)?;
    match sock.acks(1).map_err(io)? {
        None => Ok(()),
        Some(errno) => Err(io(std::io::Error::from_raw_os_error(errno))),
    }
}

/// Remove every entry that is not assured from the current thread's netns (one flush
/// the kernel filters by status: `CTA_STATUS` under `CTA_STATUS_MASK`). On a table over
/// 95 % full the kernel's garbage collector evicts such entries anyway, and each slot
/// it frees would let one new flow into a table the fault keeps full.
pub fn flush_unassured() -> Result<()> {
    let sock = nfnl::Socket::open("ctnetlink")?;
    let io = |e: std::io::Error| Error::io("removing unassured entries through", "ctnetlink", e);
    let mut buf = Vec::new();
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    message(&mut buf, IPCTNL_MSG_CT_DELETE, flags, 1, |b| {
        attr(b, CTA_STATUS, &0u32.to_be_bytes());
        attr(b, CTA_STATUS_MASK, &IPS_ASSURED.to_be_bytes());
    });
    sock.send(&buf).map_err(io)?;
    match sock.acks(1).map_err(io)? {
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
            CTA_TUPLE_ORIG | 0x8000
        );
        // Distinct tuples for every entry the fault can add.
        assert_eq!(entry(0), (Ipv4Addr::new(198, 18, 0, 0), 1024));
        assert_eq!(entry(0x1_0001), (Ipv4Addr::new(198, 18, 0, 1), 1025));
        assert_eq!(entry(262_143), (Ipv4Addr::new(198, 18, 255, 255), 1027));
    }
}
