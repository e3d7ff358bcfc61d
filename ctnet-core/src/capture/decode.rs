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
        Err(_) => {
            d.malformed = Some("not an Ethernet frame".into());
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
        Some(t @ (TransportSlice::Icmpv4(_) | TransportSlice::Icmpv6(_))) => icmp_of(t),
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

/// The ICMP / ICMPv6 message of a transport slice, by name (one naming for every
/// output).
fn icmp_of(t: &TransportSlice<'_>) -> Option<Transport> {
    Some(match t {
        TransportSlice::Icmpv4(i) => match i.icmp_type() {
            Icmpv4Type::EchoRequest(e) => icmp("echo-request", Some(e.id), Some(e.seq)),
            Icmpv4Type::EchoReply(e) => icmp("echo-reply", Some(e.id), Some(e.seq)),
            Icmpv4Type::DestinationUnreachable(_) => {
                icmp(&format!("dest-unreachable code {}", i.code_u8()), None, None)
            }
            Icmpv4Type::TimeExceeded(_) => icmp("time-exceeded", None, None),
            Icmpv4Type::Redirect(_) => icmp("redirect", None, None),
            _ => icmp(&format!("type {} code {}", i.type_u8(), i.code_u8()), None, None),
        },
        TransportSlice::Icmpv6(i) => match i.icmp_type() {
            Icmpv6Type::EchoRequest(e) => icmp("echo-request", Some(e.id), Some(e.seq)),
            Icmpv6Type::EchoReply(e) => icmp("echo-reply", Some(e.id), Some(e.seq)),
            Icmpv6Type::NeighborSolicitation => icmp("neighbor-solicitation", None, None),
            Icmpv6Type::NeighborAdvertisement(_) => icmp("neighbor-advertisement", None, None),
            Icmpv6Type::RouterSolicitation => icmp("router-solicitation", None, None),
            Icmpv6Type::RouterAdvertisement(_) => icmp("router-advertisement", None, None),
            Icmpv6Type::DestinationUnreachable(_) => icmp("dest-unreachable", None, None),
            _ => icmp(&format!("type {} code {}", i.type_u8(), i.code_u8()), None, None),
        },
        _ => return None,
    })
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
    fn the_fast_json_line_says_what_decode_says() {
        let mut frames = vec![echo(5), echo(6)[..40].to_vec(), vec![1, 2, 3]];
        let mut udp = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 2], [10, 0, 0, 3], 64)
            .udp(5000, 9)
            .write(&mut udp, &[0; 18])
            .unwrap();
        frames.push(udp);
        let mut tcp = Vec::new();
        PacketBuilder::ethernet2(A, B)
            .ipv6([0xfd; 16], [0xfe; 16], 64)
            .tcp(40000, 80, 7, 100)
            .syn()
            .write(&mut tcp, &[])
            .unwrap();
        frames.push(tcp);
        for f in frames {
            let mut buf = Vec::new();
            fast::json_line(
                &mut buf,
                "v\"1",
                1_000_000_123_456,
                f.len() as u32,
                &f,
                Default::default(),
            );
            assert_eq!(buf.last(), Some(&b'\n'));
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            let d = decode(&f);
            assert_eq!(v["iface"], "v\"1");
            assert_eq!(v["ts"].as_f64().unwrap(), 1_000_000.123456);
            assert_eq!(v["src_mac"].as_str(), d.src_mac.as_deref());
            assert_eq!(v["ethertype"].as_u64(), d.ethertype.map(u64::from));
            assert_eq!(
                serde_json::from_value::<Option<Net>>(v["net"].clone()).unwrap(),
                d.net
            );
            assert_eq!(
                serde_json::from_value::<Option<Transport>>(v["transport"].clone()).unwrap(),
                d.transport
            );
            assert_eq!(v["malformed"].is_null(), d.malformed.is_none());
        }
    }

    #[test]
    fn the_fast_text_line_matches_the_summary() {
        let f = echo(4);
        let mut buf = Vec::new();
        fast::text_line(
            &mut buf,
            "eth0@c1",
            1_795_807_692_123_456,
            f.len() as u32,
            &f,
            Default::default(),
        );
        let d = decode(&f);
        let want = format!(
            "{} eth0@c1 ?   {}\n",
            clock(1_795_807_692_123_456),
            summary(&d, f.len() as u32)
        );
        assert_eq!(String::from_utf8(buf).unwrap(), want);
    }

    #[test]
    fn the_fast_text_line_keeps_arp_addresses_of_other_ops() {
        // Found by `props`: for an ARP op other than request/reply the fast line
        // printed only the op, where the summary also names both addresses.
        let arp = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            ArpOperation(95),
            &A,
            &[10, 0, 0, 2],
            &B,
            &[10, 0, 0, 3],
        )
        .unwrap();
        let mut f = Vec::new();
        PacketBuilder::ethernet2(A, B).arp(arp).write(&mut f).unwrap();
        let mut buf = Vec::new();
        fast::text_line(&mut buf, "v1", 0, 42, &f, Default::default());
        let line = String::from_utf8(buf).unwrap();
        assert!(line.ends_with(": ARP op 95 10.0.0.2 -> 10.0.0.3\n"), "{line:?}");
        assert!(
            line.ends_with(&format!("{}\n", summary(&decode(&f), 42))),
            "{line:?}"
        );
    }

    #[test]
    fn prints_utc_clock_without_time_zone_lookups() {
        assert_eq!(clock(1_795_807_692_123_456), "19:28:12.123456");
        assert_eq!(clock(0), "00:00:00.000000");
    }
}

/// Fast paths for the capture hot loop: the same line as [`summary`] / the JSON of
/// [`crate::capture::format_line`], written straight into a reused buffer from the
/// etherparse slices, with no allocation per packet.
pub mod fast {
    use super::*;

    const HEX: &[u8; 16] = b"0123456789abcdef";

    fn mac(buf: &mut Vec<u8>, m: &[u8]) {
        for (i, b) in m.iter().enumerate() {
            if i > 0 {
                buf.push(b':');
            }
            buf.push(HEX[(b >> 4) as usize]);
            buf.push(HEX[(b & 15) as usize]);
        }
    }

    fn num(buf: &mut Vec<u8>, mut n: u64) {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        buf.extend_from_slice(&tmp[i..]);
    }

    fn ip4(buf: &mut Vec<u8>, a: [u8; 4]) {
        for (i, o) in a.iter().enumerate() {
            if i > 0 {
                buf.push(b'.');
            }
            num(buf, u64::from(*o));
        }
    }

    fn ip(buf: &mut Vec<u8>, a: &IpAddr) {
        match a {
            IpAddr::V4(v) => ip4(buf, v.octets()),
            IpAddr::V6(v) => {
                use std::io::Write as _;
                let _ = write!(buf, "{v}");
            }
        }
    }

    /// `src.sport > dst.dport`, as tcpdump prints a TCP/UDP flow.
    fn endpoints(buf: &mut Vec<u8>, s: &IpAddr, sport: u16, d: &IpAddr, dport: u16) {
        ip(buf, s);
        buf.push(b'.');
        num(buf, u64::from(sport));
        buf.extend_from_slice(b" > ");
        ip(buf, d);
        buf.push(b'.');
        num(buf, u64::from(dport));
    }

    fn proto_ip(buf: &mut Vec<u8>, b: &[u8]) {
        match b.len() {
            4 => ip4(buf, [b[0], b[1], b[2], b[3]]),
            _ => buf.extend_from_slice(ip_of(b).as_bytes()),
        }
    }

    /// A JSON string, escaped.
    pub fn json_str(buf: &mut Vec<u8>, s: &str) {
        buf.push(b'"');
        for c in s.bytes() {
            match c {
                b'"' => buf.extend_from_slice(b"\\\""),
                b'\\' => buf.extend_from_slice(b"\\\\"),
                0..=0x1f => {
                    buf.extend_from_slice(b"\\u00");
                    buf.push(HEX[(c >> 4) as usize]);
                    buf.push(HEX[(c & 15) as usize]);
                }
                _ => buf.push(c),
            }
        }
        buf.push(b'"');
    }

    /// The parts of a frame the hot loop prints, borrowed from the frame.
    struct View<'a> {
        src: Option<[u8; 6]>,
        dst: Option<[u8; 6]>,
        vlan: Option<u16>,
        ethertype: Option<u16>,
        p: Option<LaxSlicedPacket<'a>>,
    }

    fn view(frame: &[u8]) -> View<'_> {
        let p = LaxSlicedPacket::from_ethernet(frame).ok();
        let mut v = View {
            src: None,
            dst: None,
            vlan: None,
            ethertype: None,
            p: None,
        };
        if let Some(p) = &p {
            if let Some(LinkSlice::Ethernet2(e)) = &p.link {
                v.src = Some(e.source());
                v.dst = Some(e.destination());
                v.ethertype = Some(e.ether_type().0);
            }
            v.vlan = p.vlan_ids().first().map(|x| x.value());
            if let Some(ep) = p.ether_payload() {
                v.ethertype = Some(ep.ether_type.0);
            }
        }
        v.p = p;
        v
    }

    /// `in`/`out`/`?` from the source MAC and the hint, without formatting the MAC.
    pub fn direction(src: Option<[u8; 6]>, hint: crate::capture::DirectionHint) -> &'static str {
        match (src, hint.peer, hint.own) {
            (None, _, _) => "?",
            (Some(s), Some(p), _) => {
                if s == p {
                    "in"
                } else {
                    "out"
                }
            }
            (Some(s), None, Some(o)) => {
                if s == o {
                    "out"
                } else {
                    "in"
                }
            }
            _ => "?",
        }
    }

    /// What an ICMP message is (the same names as [`super::decode`]) and its echo id
    /// and sequence.
    fn icmp_fields(t: &TransportSlice<'_>) -> Option<(String, Option<(u16, u16)>)> {
        match super::icmp_of(t)? {
            Transport::Icmp { what, id, seq } => Some((what, id.zip(seq))),
            _ => None,
        }
    }

    /// One text line like `tcpdump -nn -e` for a frame, appended to `buf` with `\n`.
    pub fn text_line(
        buf: &mut Vec<u8>,
        label: &str,
        ts_us: i64,
        len: u32,
        frame: &[u8],
        hint: crate::capture::DirectionHint,
    ) {
        let v = view(frame);
        let secs = ts_us.div_euclid(1_000_000).rem_euclid(86_400) as u64;
        let us = ts_us.rem_euclid(1_000_000) as u64;
        for (i, (n, w)) in [(secs / 3600, 2), (secs / 60 % 60, 2), (secs % 60, 2), (us, 6)]
            .into_iter()
            .enumerate()
        {
            if i == 3 {
                buf.push(b'.');
            } else if i > 0 {
                buf.push(b':');
            }
            let mut d = [b'0'; 6];
            let mut x = n;
            for c in d[..w].iter_mut().rev() {
                *c = b'0' + (x % 10) as u8;
                x /= 10;
            }
            buf.extend_from_slice(&d[..w]);
        }
        buf.push(b' ');
        buf.extend_from_slice(label.as_bytes());
        buf.push(b' ');
        let dir = direction(v.src, hint);
        buf.extend_from_slice(dir.as_bytes());
        buf.extend_from_slice(&b"    "[..4 - dir.len()]);
        match (v.src, v.dst) {
            (Some(s), Some(d)) => {
                mac(buf, &s);
                buf.extend_from_slice(b" > ");
                mac(buf, &d);
            }
            _ => buf.extend_from_slice(b"? > ?"),
        }
        if let Some(x) = v.vlan {
            buf.extend_from_slice(b", vlan ");
            num(buf, u64::from(x));
        }
        if let Some(t) = v.ethertype {
            buf.extend_from_slice(b", ethertype ");
            buf.extend_from_slice(ethertype_name(t).as_bytes());
        }
        buf.extend_from_slice(b", length ");
        num(buf, u64::from(len));
        buf.extend_from_slice(b": ");
        let p = v.p.as_ref();
        let (src, dst): (Option<IpAddr>, Option<IpAddr>) = match p.and_then(|p| p.net.as_ref()) {
            Some(LaxNetSlice::Arp(a)) => {
                let op = a.operation();
                if op == ArpOperation::REQUEST {
                    buf.extend_from_slice(b"Request who-has ");
                    proto_ip(buf, a.target_protocol_addr());
                    buf.extend_from_slice(b" tell ");
                    proto_ip(buf, a.sender_protocol_addr());
                } else if op == ArpOperation::REPLY {
                    buf.extend_from_slice(b"Reply ");
                    proto_ip(buf, a.sender_protocol_addr());
                    buf.extend_from_slice(b" is-at ");
                    mac(buf, a.sender_hw_addr());
                } else {
                    buf.extend_from_slice(b"ARP op ");
                    num(buf, u64::from(op.0));
                    buf.push(b' ');
                    proto_ip(buf, a.sender_protocol_addr());
                    buf.extend_from_slice(b" -> ");
                    proto_ip(buf, a.target_protocol_addr());
                }
                (None, None)
            }
            Some(LaxNetSlice::Ipv4(x)) => (
                Some(IpAddr::V4(x.header().source_addr())),
                Some(IpAddr::V4(x.header().destination_addr())),
            ),
            Some(LaxNetSlice::Ipv6(x)) => (
                Some(IpAddr::V6(x.header().source_addr())),
                Some(IpAddr::V6(x.header().destination_addr())),
            ),
            None => {
                buf.extend_from_slice(b"(payload not decoded)");
                (None, None)
            }
        };
        if let (Some(s), Some(d)) = (src, dst) {
            match p.and_then(|p| p.transport.as_ref()) {
                Some(TransportSlice::Udp(u)) => {
                    endpoints(buf, &s, u.source_port(), &d, u.destination_port());
                    buf.extend_from_slice(b": UDP, length ");
                    num(buf, u64::from(u.length().saturating_sub(8)));
                }
                Some(TransportSlice::Tcp(t)) => {
                    endpoints(buf, &s, t.source_port(), &d, t.destination_port());
                    buf.extend_from_slice(b": Flags [");
                    buf.extend_from_slice(tcp_flags(t).as_bytes());
                    buf.extend_from_slice(b"], seq ");
                    num(buf, u64::from(t.sequence_number()));
                }
                Some(t @ (TransportSlice::Icmpv4(_) | TransportSlice::Icmpv6(_))) => {
                    let (what, echo) = icmp_fields(t).expect("icmp");
                    ip(buf, &s);
                    buf.extend_from_slice(b" > ");
                    ip(buf, &d);
                    buf.extend_from_slice(if s.is_ipv6() { b": ICMP6 " } else { b": ICMP " });
                    buf.extend_from_slice(what.replace('-', " ").as_bytes());
                    if let Some((id, seq)) = echo {
                        buf.extend_from_slice(b", id ");
                        num(buf, u64::from(id));
                        buf.extend_from_slice(b", seq ");
                        num(buf, u64::from(seq));
                    }
                }
                _ => {
                    ip(buf, &s);
                    buf.extend_from_slice(b" > ");
                    ip(buf, &d);
                    buf.extend_from_slice(b": ip-proto-");
                    let proto = match p.and_then(|p| p.net.as_ref()) {
                        Some(LaxNetSlice::Ipv4(x)) => x.header().protocol().0,
                        Some(LaxNetSlice::Ipv6(x)) => x.payload().ip_number.0,
                        _ => 0,
                    };
                    num(buf, u64::from(proto));
                }
            }
        }
        match p.map(|p| &p.stop_err) {
            None => buf.extend_from_slice(b" [malformed: not an Ethernet frame]"),
            Some(Some((err, layer))) => {
                let _ = std::io::Write::write_fmt(buf, format_args!(" [malformed: {layer:?}: {err}]"));
            }
            Some(None) => {}
        }
        buf.push(b'\n');
    }

    /// One JSON object (`ctnet.packet/v1`) for a frame, appended to `buf` with `\n`.
    pub fn json_line(
        buf: &mut Vec<u8>,
        label: &str,
        ts_us: i64,
        len: u32,
        frame: &[u8],
        hint: crate::capture::DirectionHint,
    ) {
        let v = view(frame);
        buf.extend_from_slice(b"{\"schema\":\"ctnet.packet/v1\",\"ts\":");
        if ts_us < 0 {
            buf.push(b'-');
        }
        let abs = ts_us.unsigned_abs();
        num(buf, abs / 1_000_000);
        buf.push(b'.');
        let us = abs % 1_000_000;
        let mut frac = [b'0'; 6];
        let mut x = us;
        for d in frac.iter_mut().rev() {
            *d = b'0' + (x % 10) as u8;
            x /= 10;
        }
        buf.extend_from_slice(&frac);
        buf.extend_from_slice(b",\"iface\":");
        json_str(buf, label);
        buf.extend_from_slice(b",\"dir\":\"");
        buf.extend_from_slice(direction(v.src, hint).as_bytes());
        buf.extend_from_slice(b"\",\"len\":");
        num(buf, u64::from(len));
        buf.extend_from_slice(b",\"caplen\":");
        num(buf, frame.len() as u64);
        for (key, m) in [(&b",\"src_mac\":"[..], v.src), (&b",\"dst_mac\":"[..], v.dst)] {
            buf.extend_from_slice(key);
            match m {
                Some(m) => {
                    buf.push(b'"');
                    mac(buf, &m);
                    buf.push(b'"');
                }
                None => buf.extend_from_slice(b"null"),
            }
        }
        buf.extend_from_slice(b",\"vlan\":");
        match v.vlan {
            Some(x) => num(buf, u64::from(x)),
            None => buf.extend_from_slice(b"null"),
        }
        buf.extend_from_slice(b",\"ethertype\":");
        match v.ethertype {
            Some(x) => num(buf, u64::from(x)),
            None => buf.extend_from_slice(b"null"),
        }
        buf.extend_from_slice(b",\"net\":");
        let p = v.p.as_ref();
        match p.and_then(|p| p.net.as_ref()) {
            Some(LaxNetSlice::Arp(a)) => {
                let op = a.operation();
                buf.extend_from_slice(b"{\"kind\":\"arp\",\"op\":\"");
                if op == ArpOperation::REQUEST {
                    buf.extend_from_slice(b"request");
                } else if op == ArpOperation::REPLY {
                    buf.extend_from_slice(b"reply");
                } else {
                    num(buf, u64::from(op.0));
                }
                buf.extend_from_slice(b"\",\"sender_mac\":\"");
                mac(buf, a.sender_hw_addr());
                buf.extend_from_slice(b"\",\"sender_ip\":\"");
                proto_ip(buf, a.sender_protocol_addr());
                buf.extend_from_slice(b"\",\"target_mac\":\"");
                mac(buf, a.target_hw_addr());
                buf.extend_from_slice(b"\",\"target_ip\":\"");
                proto_ip(buf, a.target_protocol_addr());
                buf.extend_from_slice(b"\"}");
            }
            Some(LaxNetSlice::Ipv4(v4)) => {
                let h = v4.header();
                buf.extend_from_slice(b"{\"kind\":\"ip\",\"src\":\"");
                ip4(buf, h.source());
                buf.extend_from_slice(b"\",\"dst\":\"");
                ip4(buf, h.destination());
                buf.extend_from_slice(b"\",\"proto\":");
                num(buf, u64::from(h.protocol().0));
                buf.extend_from_slice(b",\"ttl\":");
                num(buf, u64::from(h.ttl()));
                buf.extend_from_slice(b",\"id\":");
                num(buf, u64::from(h.identification()));
                buf.push(b'}');
            }
            Some(LaxNetSlice::Ipv6(v6)) => {
                let h = v6.header();
                buf.extend_from_slice(b"{\"kind\":\"ip\",\"src\":\"");
                ip(buf, &IpAddr::V6(h.source_addr()));
                buf.extend_from_slice(b"\",\"dst\":\"");
                ip(buf, &IpAddr::V6(h.destination_addr()));
                buf.extend_from_slice(b"\",\"proto\":");
                num(buf, u64::from(v6.payload().ip_number.0));
                buf.extend_from_slice(b",\"ttl\":");
                num(buf, u64::from(h.hop_limit()));
                buf.extend_from_slice(b",\"id\":null}");
            }
            None => buf.extend_from_slice(b"null"),
        }
        buf.extend_from_slice(b",\"transport\":");
        match p.and_then(|p| p.transport.as_ref()) {
            Some(TransportSlice::Udp(u)) => {
                buf.extend_from_slice(b"{\"kind\":\"udp\",\"sport\":");
                num(buf, u64::from(u.source_port()));
                buf.extend_from_slice(b",\"dport\":");
                num(buf, u64::from(u.destination_port()));
                buf.extend_from_slice(b",\"length\":");
                num(buf, u64::from(u.length()));
                buf.push(b'}');
            }
            Some(TransportSlice::Tcp(t)) => {
                buf.extend_from_slice(b"{\"kind\":\"tcp\",\"sport\":");
                num(buf, u64::from(t.source_port()));
                buf.extend_from_slice(b",\"dport\":");
                num(buf, u64::from(t.destination_port()));
                buf.extend_from_slice(b",\"flags\":\"");
                buf.extend_from_slice(tcp_flags(t).as_bytes());
                buf.extend_from_slice(b"\",\"seq\":");
                num(buf, u64::from(t.sequence_number()));
                buf.push(b'}');
            }
            Some(t @ (TransportSlice::Icmpv4(_) | TransportSlice::Icmpv6(_))) => {
                let (what, echo) = icmp_fields(t).expect("icmp");
                buf.extend_from_slice(b"{\"kind\":\"icmp\",\"what\":\"");
                buf.extend_from_slice(what.as_bytes());
                buf.extend_from_slice(b"\",\"id\":");
                match echo {
                    Some((id, seq)) => {
                        num(buf, u64::from(id));
                        buf.extend_from_slice(b",\"seq\":");
                        num(buf, u64::from(seq));
                    }
                    None => buf.extend_from_slice(b"null,\"seq\":null"),
                }
                buf.push(b'}');
            }
            _ => buf.extend_from_slice(b"null"),
        }
        buf.extend_from_slice(b",\"malformed\":");
        match p.map(|p| &p.stop_err) {
            None => json_str(buf, "not an Ethernet frame"),
            Some(Some((err, layer))) => json_str(buf, &format!("{layer:?}: {err}")),
            Some(None) => buf.extend_from_slice(b"null"),
        }
        buf.extend_from_slice(b"}\n");
    }
}
