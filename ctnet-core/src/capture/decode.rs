//! Decoding captured Ethernet frames with etherparse (lax slicing, so truncated frames
//! still decode as far as they go) into one summary per frame, printed like
//! `tcpdump -nn -e` or as one JSON object.

use std::fmt::Write as _;
use std::net::IpAddr;

use etherparse::{
    ArpOperation, EtherType, Icmpv4Type, Icmpv6Type, LaxNetSlice, LaxSlicedPacket, LinkSlice, TransportSlice,
};
use serde::{Deserialize, Serialize};

/// Layer 3 of a frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Net {
    /// ARP request or reply.
    Arp {
        /// `request`, `reply`, or the number.
        op: String,
        /// Sender MAC.
        sender_mac: String,
        /// Sender IP.
        sender_ip: String,
        /// Target MAC.
        target_mac: String,
        /// Target IP.
        target_ip: String,
    },
    /// IPv4 or IPv6.
    Ip {
        /// Source.
        src: IpAddr,
        /// Destination.
        dst: IpAddr,
        /// IP protocol number (final next-header for IPv6).
        proto: u8,
        /// TTL / hop limit.
        ttl: u8,
        /// IPv4 identification (for matching the same packet on several hops).
        id: Option<u16>,
    },
}

/// Layer 4 of a frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Transport {
    /// ICMP / ICMPv6.
    Icmp {
        /// `echo-request`, `echo-reply`, `dest-unreachable`, `time-exceeded`,
        /// `neighbor-solicitation`, ... or `type N code M`.
        what: String,
        /// Echo id.
        id: Option<u16>,
        /// Echo sequence.
        seq: Option<u16>,
    },
    /// TCP.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Flags as tcpdump prints them (`S`, `S.`, `.`, `P.`, `F.`, `R`).
        flags: String,
        /// Sequence number.
        seq: u32,
    },
    /// UDP.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// UDP length.
        length: u16,
    },
}

/// What one frame is, as far as it could be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decoded {
    /// Source MAC.
    pub src_mac: Option<String>,
    /// Destination MAC.
    pub dst_mac: Option<String>,
    /// Outer VLAN id.
    pub vlan: Option<u16>,
    /// Ethertype of the payload.
    pub ethertype: Option<u16>,
    /// Layer 3.
    pub net: Option<Net>,
    /// Layer 4.
    pub transport: Option<Transport>,
    /// Why decoding stopped early (a truncated or malformed frame), when it did.
    pub malformed: Option<String>,
}

fn mac(b: [u8; 6]) -> String {
    crate::source::rtnl::mac_string(&b)
}

fn ip_of(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let a: [u8; 16] = b.try_into().expect("16 bytes");
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => crate::source::rtnl::mac_string(b),
    }
}

fn tcp_flags(t: &etherparse::TcpSlice<'_>) -> String {
    let mut f = String::new();
    for (on, c) in [
        (t.syn(), 'S'),
        (t.fin(), 'F'),
        (t.rst(), 'R'),
        (t.psh(), 'P'),
        (t.urg(), 'U'),
    ] {
        if on {
            f.push(c);
        }
    }
    if t.ack() {
        f.push('.');
    }
    if f.is_empty() {
        f.push_str("none");
    }
    f
}

/// Decode one Ethernet frame. Never panics, whatever the bytes.
pub fn decode(frame: &[u8]) -> Decoded {
    let mut d = Decoded {
        src_mac: None,
        dst_mac: None,
        vlan: None,
        ethertype: None,
        net: None,
        transport: None,
        malformed: None,
    };
    let p = match LaxSlicedPacket::from_ethernet(frame) {
        Ok(p) => p,
        Err(e) => {
            d.malformed = Some(format!("not an Ethernet frame: {e}"));
            return d;
        }
    };
    if let Some(LinkSlice::Ethernet2(eth)) = &p.link {
        d.src_mac = Some(mac(eth.source()));
        d.dst_mac = Some(mac(eth.destination()));
        d.ethertype = Some(eth.ether_type().0);
    }
    if let Some(v) = p.vlan_ids().first() {
        d.vlan = Some(v.value());
    }
    if let Some(ep) = p.ether_payload() {
        d.ethertype = Some(ep.ether_type.0);
    }
    match &p.net {
        Some(LaxNetSlice::Arp(a)) => {
            let op = a.operation();
            d.net = Some(Net::Arp {
                op: if op == ArpOperation::REQUEST {
                    "request".into()
                } else if op == ArpOperation::REPLY {
                    "reply".into()
                } else {
                    op.0.to_string()
                },
                sender_mac: crate::source::rtnl::mac_string(a.sender_hw_addr()),
                sender_ip: ip_of(a.sender_protocol_addr()),
                target_mac: crate::source::rtnl::mac_string(a.target_hw_addr()),
                target_ip: ip_of(a.target_protocol_addr()),
            });
        }
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            d.net = Some(Net::Ip {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                proto: h.protocol().0,
                ttl: h.ttl(),
                id: Some(h.identification()),
            });
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            d.net = Some(Net::Ip {
                src: IpAddr::V6(h.source_addr()),
                dst: IpAddr::V6(h.destination_addr()),
                proto: v6.payload().ip_number.0,
                ttl: h.hop_limit(),
                id: None,
            });
        }
        None => {}
    }
    d.transport = match &p.transport {
        Some(TransportSlice::Icmpv4(i)) => Some(match i.icmp_type() {
            Icmpv4Type::EchoRequest(e) => icmp("echo-request", Some(e.id), Some(e.seq)),
            Icmpv4Type::EchoReply(e) => icmp("echo-reply", Some(e.id), Some(e.seq)),
            Icmpv4Type::DestinationUnreachable(_) => {
                icmp(&format!("dest-unreachable code {}", i.code_u8()), None, None)
            }
            Icmpv4Type::TimeExceeded(_) => icmp("time-exceeded", None, None),
            Icmpv4Type::Redirect(_) => icmp("redirect", None, None),
            _ => icmp(&format!("type {} code {}", i.type_u8(), i.code_u8()), None, None),
        }),
        Some(TransportSlice::Icmpv6(i)) => Some(match i.icmp_type() {
            Icmpv6Type::EchoRequest(e) => icmp("echo-request", Some(e.id), Some(e.seq)),
            Icmpv6Type::EchoReply(e) => icmp("echo-reply", Some(e.id), Some(e.seq)),
            Icmpv6Type::NeighborSolicitation => icmp("neighbor-solicitation", None, None),
            Icmpv6Type::NeighborAdvertisement(_) => icmp("neighbor-advertisement", None, None),
            Icmpv6Type::RouterSolicitation => icmp("router-solicitation", None, None),
            Icmpv6Type::RouterAdvertisement(_) => icmp("router-advertisement", None, None),
            Icmpv6Type::DestinationUnreachable(_) => icmp("dest-unreachable", None, None),
            _ => icmp(&format!("type {} code {}", i.type_u8(), i.code_u8()), None, None),
        }),
        Some(TransportSlice::Tcp(t)) => Some(Transport::Tcp {
            sport: t.source_port(),
            dport: t.destination_port(),
            flags: tcp_flags(t),
            seq: t.sequence_number(),
        }),
        Some(TransportSlice::Udp(u)) => Some(Transport::Udp {
            sport: u.source_port(),
            dport: u.destination_port(),
            length: u.length(),
        }),
        _ => None,
    };
    if let Some((err, layer)) = &p.stop_err {
        d.malformed = Some(format!("{layer:?}: {err}"));
    }
    d
}

fn icmp(what: &str, id: Option<u16>, seq: Option<u16>) -> Transport {
    Transport::Icmp {
        what: what.into(),
        id,
        seq,
    }
}

/// `HH:MM:SS.uuuuuu` in UTC from Unix microseconds (no time-zone lookup per packet).
pub fn clock(ts_us: i64) -> String {
    let secs = ts_us.div_euclid(1_000_000);
    let us = ts_us.rem_euclid(1_000_000);
    let day = secs.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}.{us:06}", day / 3600, day / 60 % 60, day % 60)
}

fn ethertype_name(t: u16) -> String {
    let name = match EtherType(t) {
        EtherType::IPV4 => "IPv4",
        EtherType::IPV6 => "IPv6",
        EtherType::ARP => "ARP",
        EtherType::VLAN_TAGGED_FRAME => "802.1Q",
        _ => "unknown",
    };
    format!("{name} (0x{t:04x})")
}

/// One line like `tcpdump -nn -e`, after `when where dir`:
/// `aa:.. > bb:.., ethertype IPv4 (0x0800), length 98: 10.0.0.2 > 10.0.0.3: ICMP echo request, id 5, seq 1`
pub fn summary(d: &Decoded, len: u32) -> String {
    let mut s = String::with_capacity(160);
    let _ = write!(
        s,
        "{} > {}",
        d.src_mac.as_deref().unwrap_or("?"),
        d.dst_mac.as_deref().unwrap_or("?")
    );
    if let Some(v) = d.vlan {
        let _ = write!(s, ", vlan {v}");
    }
    if let Some(t) = d.ethertype {
        let _ = write!(s, ", ethertype {}", ethertype_name(t));
    }
    let _ = write!(s, ", length {len}: ");
    match &d.net {
        Some(Net::Arp {
            op,
            sender_mac,
            sender_ip,
            target_ip,
            ..
        }) => match op.as_str() {
            "request" => {
                let _ = write!(s, "Request who-has {target_ip} tell {sender_ip}");
            }
            "reply" => {
                let _ = write!(s, "Reply {sender_ip} is-at {sender_mac}");
            }
            other => {
                let _ = write!(s, "ARP op {other} {sender_ip} -> {target_ip}");
            }
        },
        Some(Net::Ip { src, dst, proto, .. }) => match &d.transport {
            Some(Transport::Tcp {
                sport,
                dport,
                flags,
                seq,
            }) => {
                let _ = write!(s, "{src}.{sport} > {dst}.{dport}: Flags [{flags}], seq {seq}");
            }
            Some(Transport::Udp { sport, dport, length }) => {
                let _ = write!(
                    s,
                    "{src}.{sport} > {dst}.{dport}: UDP, length {}",
                    length.saturating_sub(8)
                );
            }
            Some(Transport::Icmp { what, id, seq }) => {
                let v = if src.is_ipv6() { "ICMP6" } else { "ICMP" };
                let _ = write!(s, "{src} > {dst}: {v} {}", what.replace('-', " "));
                if let (Some(id), Some(seq)) = (id, seq) {
                    let _ = write!(s, ", id {id}, seq {seq}");
                }
            }
            None => {
                let _ = write!(s, "{src} > {dst}: ip-proto-{proto}");
            }
        },
        None => s.push_str("(payload not decoded)"),
    }
    if let Some(m) = &d.malformed {
        let _ = write!(s, " [malformed: {m}]");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{ArpHardwareId, ArpPacket, PacketBuilder};

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn echo(seq: u16) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 2], [10, 0, 0, 3], 64)
            .icmpv4_echo_request(7, seq);
        let mut out = Vec::new();
        b.write(&mut out, &[0u8; 56]).unwrap();
        out
    }

    #[test]
    fn decodes_icmp_echo_like_tcpdump() {
        let f = echo(3);
        let d = decode(&f);
        assert_eq!(d.src_mac.as_deref(), Some("02:00:00:00:00:01"));
        assert_eq!(
            d.transport,
            Some(Transport::Icmp {
                what: "echo-request".into(),
                id: Some(7),
                seq: Some(3)
            })
        );
        assert_eq!(
            summary(&d, f.len() as u32),
            "02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 98: \
             10.0.0.2 > 10.0.0.3: ICMP echo request, id 7, seq 3"
        );
        assert!(d.malformed.is_none());
    }

    #[test]
    fn decodes_arp_who_has_and_is_at() {
        let arp = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            ArpOperation::REQUEST,
            &A,
            &[10, 0, 0, 2],
            &[0; 6],
            &[10, 0, 0, 3],
        )
        .unwrap();
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, [0xff; 6])
            .arp(arp)
            .write(&mut f)
            .unwrap();
        let d = decode(&f);
        assert!(
            matches!(&d.net, Some(Net::Arp { op, target_ip, .. }) if op == "request" && target_ip == "10.0.0.3")
        );
        assert!(summary(&d, 42).ends_with("Request who-has 10.0.0.3 tell 10.0.0.2"));
    }

    #[test]
    fn truncated_and_garbage_frames_decode_as_far_as_they_go() {
        let f = echo(1);
        // A 40-byte snap of a 98-byte frame: still IPv4 and its addresses.
        let d = decode(&f[..40]);
        assert!(matches!(d.net, Some(Net::Ip { .. })));
        assert!(d.malformed.is_some());
        for junk in [&[][..], &[1, 2, 3][..], &[0xff; 13][..], &[0u8; 64][..]] {
            let d = decode(junk);
            let _ = summary(&d, junk.len() as u32);
        }
        assert!(decode(&[]).malformed.is_some());
    }

    #[test]
    fn prints_utc_clock_without_time_zone_lookups() {
        assert_eq!(clock(1_795_807_692_123_456), "19:28:12.123456");
        assert_eq!(clock(0), "00:00:00.000000");
    }
}
