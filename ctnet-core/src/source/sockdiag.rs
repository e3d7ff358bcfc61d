//! The sockets that accept in the calling thread's netns, asked of the kernel over
//! NETLINK_SOCK_DIAG (what `ss -ltun` does).
//!
//! Reading `/proc/net/tcp` walks the whole established-connection hash of the host,
//! which every netns shares and which is sized by memory: on a host with hundreds of
//! netns that walk, once per netns, was most of a full scan's CPU. A sock_diag dump
//! that asks only for TCP_LISTEN walks the listening hash alone.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};

use crate::model::Listener;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
/// TCP_LISTEN.
const TCP_LISTEN: u32 = 10;
/// TCP_CLOSE: an unconnected UDP socket (bound, receiving from anyone).
const TCP_CLOSE: u32 = 7;
/// The most sockets read from one dump (a bound on memory, whatever the netns holds).
const MAX_SOCKETS: usize = 1 << 20;

/// Every listening TCP and bound unconnected UDP socket of this thread's netns, or the
/// error that stopped the dump (the caller falls back to `/proc`).
pub(crate) fn listeners() -> io::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for (proto_num, proto, state) in [
        (libc::IPPROTO_TCP as u8, "tcp", TCP_LISTEN),
        (libc::IPPROTO_UDP as u8, "udp", TCP_CLOSE),
    ] {
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            for (port, addr) in dump(family, proto_num, 1 << state)? {
                out.push(Listener {
                    proto: proto.to_string(),
                    addr,
                    port,
                });
            }
        }
    }
    Ok(out)
}

fn socket() -> io::Result<OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, setsockopt, socket, sockopt};
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(5, 0))?;
    Ok(fd)
}

/// The request: nlmsghdr, then inet_diag_req_v2 (family, protocol, ext, pad, states,
/// and a zero inet_diag_sockid: every socket).
fn request(family: u8, proto: u8, states: u32) -> Vec<u8> {
    let len: u32 = 16 + 56;
    let mut r = Vec::with_capacity(len as usize);
    r.extend_from_slice(&len.to_ne_bytes());
    r.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    r.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    r.extend_from_slice(&1u32.to_ne_bytes());
    r.extend_from_slice(&0u32.to_ne_bytes());
    r.extend_from_slice(&[family, proto, 0, 0]);
    r.extend_from_slice(&states.to_ne_bytes());
    r.extend_from_slice(&[0u8; 48]);
    r
}

/// (local port, local address) of every socket one dump returns.
fn dump(family: u8, proto: u8, states: u32) -> io::Result<Vec<(u16, IpAddr)>> {
    let fd = socket()?;
    let req = request(family, proto, states);
    nix::sys::socket::send(fd.as_raw_fd(), &req, nix::sys::socket::MsgFlags::empty())?;
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Vec::new();
    loop {
        let n = match nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, nix::sys::socket::MsgFlags::empty()) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "sock_diag dump ended early",
            ));
        }
        if parse(&buf[..n], &mut out)? || out.len() >= MAX_SOCKETS {
            return Ok(out);
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parse the messages of one datagram into `out`; true at the end of the dump.
fn parse(mut b: &[u8], out: &mut Vec<(u16, IpAddr)>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed sock_diag message");
    while b.len() >= 16 {
        let len = u32_at(b, 0).ok_or_else(bad)? as usize;
        let kind = u16_at(b, 4).ok_or_else(bad)?;
        if len < 16 || len > b.len() {
            return Err(bad());
        }
        let payload = &b[16..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = u32_at(payload, 0).ok_or_else(bad)? as i32;
                return match code {
                    0 => Ok(true),
                    c => Err(io::Error::from_raw_os_error(-c)),
                };
            }
            SOCK_DIAG_BY_FAMILY => {
                // inet_diag_msg: family, state, timer, retrans, then inet_diag_sockid:
                // sport and dport (big-endian), src[16], dst[16], if, cookie.
                let family = *payload.first().ok_or_else(bad)?;
                let port =
                    u16::from_be_bytes(payload.get(4..6).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
                let src: [u8; 16] = payload
                    .get(8..24)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?;
                let addr = if i32::from(family) == libc::AF_INET {
                    IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3]))
                } else {
                    IpAddr::V6(Ipv6Addr::from(src))
                };
                out.push((port, addr));
            }
            _ => {}
        }
        // Messages are 4-byte aligned.
        let next = (len + 3) & !3;
        b = b.get(next..).unwrap_or_default();
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn messages_parse_into_ports_and_addresses_and_garbage_is_an_error() {
        let mut p = vec![libc::AF_INET as u8, 10, 0, 0];
        p.extend_from_slice(&8080u16.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&[10, 0, 0, 1]);
        p.extend_from_slice(&[0u8; 12 + 16 + 4 + 8 + 20]);
        let mut b = msg(SOCK_DIAG_BY_FAMILY, &p);
        b.extend(msg(NLMSG_DONE, &[0, 0, 0, 0]));
        let mut out = Vec::new();
        assert!(parse(&b, &mut out).unwrap());
        assert_eq!(out, vec![(8080, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))]);
        // A length beyond the datagram, a short message, an error: never a panic.
        let mut out = Vec::new();
        assert!(parse(&[255, 255, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &mut out).is_err());
        assert!(parse(&msg(SOCK_DIAG_BY_FAMILY, &[2, 10]), &mut out).is_err());
        let e = parse(&msg(NLMSG_ERROR, &(-1i32).to_ne_bytes()), &mut out).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(1));
    }

    #[test]
    fn the_dump_agrees_with_proc_net_on_this_netns() {
        // A listener of our own, so there is at least one of each.
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut diag = listeners().unwrap();
        diag.sort_by(|a, b| (&a.proto, a.port, a.addr).cmp(&(&b.proto, b.port, b.addr)));
        diag.dedup();
        let mut procfs = Vec::new();
        for (file, proto, v6) in [
            ("tcp", "tcp", false),
            ("tcp6", "tcp", true),
            ("udp", "udp", false),
            ("udp6", "udp", true),
        ] {
            if let Ok(text) = std::fs::read_to_string(format!("/proc/thread-self/net/{file}")) {
                procfs.extend(super::super::parse_proc_net(&text, proto, v6));
            }
        }
        procfs.sort_by(|a, b| (&a.proto, a.port, a.addr).cmp(&(&b.proto, b.port, b.addr)));
        procfs.dedup();
        // Sockets may open or close between the two reads; ours are in both.
        for port in [tcp.local_addr().unwrap().port(), udp.local_addr().unwrap().port()] {
            assert!(diag.iter().any(|l| l.port == port), "{port} not in {diag:?}");
            assert!(procfs.iter().any(|l| l.port == port), "{port} not in {procfs:?}");
        }
    }
}
