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

/// Property tests: any bytes decode without a panic into lines that are safe to print,
/// and well-formed frames decode to exactly what they carry.
#[cfg(test)]
mod props {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::capture::DirectionHint;
    use crate::prop::{Rng, mutate_bytes};

    /// A frame built byte by byte (not with etherparse, so the decoder is checked
    /// against an independent writer), and what decoding it must give.
    struct Built {
        frame: Vec<u8>,
        want: Decoded,
    }

    fn be16(b: &mut Vec<u8>, v: u16) {
        b.extend_from_slice(&v.to_be_bytes());
    }

    fn mac_of(rng: &mut Rng) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&rng.bytes(6));
        m
    }

    fn flags_text(f: u8) -> String {
        let mut s: String = [(0x02, 'S'), (0x01, 'F'), (0x04, 'R'), (0x08, 'P'), (0x20, 'U')]
            .iter()
            .filter(|(bit, _)| f & bit != 0)
            .map(|(_, c)| *c)
            .collect();
        if f & 0x10 != 0 {
            s.push('.');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        s
    }

    /// A layer 4 header and payload for `proto` (`v6`: ICMPv6 instead of ICMP), and the
    /// transport it decodes to.
    fn l4(rng: &mut Rng, proto: u8) -> (Vec<u8>, Option<Transport>) {
        let mut b = Vec::new();
        let n = rng.below(48);
        let payload = rng.bytes(n);
        let (sport, dport) = (rng.next() as u16, rng.next() as u16);
        let t = match proto {
            6 => {
                let seq = rng.next() as u32;
                let flags = rng.next() as u8;
                let opt_words = rng.below(11);
                be16(&mut b, sport);
                be16(&mut b, dport);
                b.extend_from_slice(&seq.to_be_bytes());
                b.extend_from_slice(&(rng.next() as u32).to_be_bytes());
                b.push(((5 + opt_words) as u8) << 4);
                b.push(flags);
                be16(&mut b, rng.next() as u16);
                be16(&mut b, 0);
                be16(&mut b, rng.next() as u16);
                // Options: no-ops and an end, or random bytes; slicing does not judge them.
                for _ in 0..opt_words * 4 {
                    b.push(if rng.one_in(2) { 1 } else { rng.next() as u8 });
                }
                Some(Transport::Tcp {
                    sport,
                    dport,
                    flags: flags_text(flags),
                    seq,
                })
            }
            17 => {
                let length = (8 + payload.len()) as u16;
                be16(&mut b, sport);
                be16(&mut b, dport);
                be16(&mut b, length);
                be16(&mut b, 0);
                Some(Transport::Udp { sport, dport, length })
            }
            1 | 58 => {
                let (id, seq) = (rng.next() as u16, rng.next() as u16);
                let request = rng.one_in(2);
                let ty = match (proto, request) {
                    (1, true) => 8,
                    (1, false) => 0,
                    (_, true) => 128,
                    (_, false) => 129,
                };
                b.extend_from_slice(&[ty, 0, 0, 0]);
                be16(&mut b, id);
                be16(&mut b, seq);
                Some(Transport::Icmp {
                    what: if request { "echo-request" } else { "echo-reply" }.into(),
                    id: Some(id),
                    seq: Some(seq),
                })
            }
            _ => None,
        };
        b.extend_from_slice(&payload);
        (b, t)
    }

    /// A well-formed frame: Ethernet, up to two VLAN tags, then ARP, IPv4 (with
    /// options) or IPv6 (with a hop-by-hop header), then TCP (with options), UDP,
    /// ICMP/ICMPv6 echo or an opaque protocol.
    fn build(rng: &mut Rng) -> Built {
        let (src, dst) = (mac_of(rng), mac_of(rng));
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        let tags = rng.below(3);
        let mut vlan = None;
        for i in 0..tags {
            let vid = rng.below(4096) as u16;
            if i == 0 {
                vlan = Some(vid);
            }
            be16(&mut f, if i == 0 && tags == 2 { 0x88a8 } else { 0x8100 });
            be16(&mut f, vid | (rng.below(16) as u16) << 12);
        }
        let mut want = Decoded {
            src_mac: Some(mac(src)),
            dst_mac: Some(mac(dst)),
            vlan,
            ethertype: None,
            net: None,
            transport: None,
            malformed: None,
        };
        match rng.below(5) {
            0 => {
                be16(&mut f, 0x0806);
                want.ethertype = Some(0x0806);
                let op = match rng.below(3) {
                    0 => 1,
                    1 => 2,
                    _ => 3 + rng.below(100) as u16,
                };
                let (sha, tha) = (mac_of(rng), mac_of(rng));
                let (spa, tpa) = (rng.next() as u32, rng.next() as u32);
                be16(&mut f, 1);
                be16(&mut f, 0x0800);
                f.extend_from_slice(&[6, 4]);
                be16(&mut f, op);
                f.extend_from_slice(&sha);
                f.extend_from_slice(&spa.to_be_bytes());
                f.extend_from_slice(&tha);
                f.extend_from_slice(&tpa.to_be_bytes());
                want.net = Some(Net::Arp {
                    op: match op {
                        1 => "request".into(),
                        2 => "reply".into(),
                        n => n.to_string(),
                    },
                    sender_mac: mac(sha),
                    sender_ip: Ipv4Addr::from(spa).to_string(),
                    target_mac: mac(tha),
                    target_ip: Ipv4Addr::from(tpa).to_string(),
                });
            }
            1 | 2 => {
                be16(&mut f, 0x0800);
                want.ethertype = Some(0x0800);
                let proto = *rng.pick(&[1u8, 6, 17, 6, 17, 47, 132]);
                let (body, t) = l4(rng, proto);
                let opt_words = rng.below(11);
                let (src, dst) = (
                    Ipv4Addr::from(rng.next() as u32),
                    Ipv4Addr::from(rng.next() as u32),
                );
                let (ttl, id) = (rng.next() as u8, rng.next() as u16);
                f.push(0x40 | (5 + opt_words) as u8);
                f.push(rng.next() as u8);
                be16(&mut f, (20 + opt_words * 4 + body.len()) as u16);
                be16(&mut f, id);
                // Don't-fragment or not, never a fragment (those stop at layer 3).
                be16(&mut f, if rng.one_in(2) { 0x4000 } else { 0 });
                f.push(ttl);
                f.push(proto);
                be16(&mut f, 0);
                f.extend_from_slice(&src.octets());
                f.extend_from_slice(&dst.octets());
                // No-op options.
                f.extend(std::iter::repeat_n(1, opt_words * 4));
                f.extend_from_slice(&body);
                want.net = Some(Net::Ip {
                    src: src.into(),
                    dst: dst.into(),
                    proto,
                    ttl,
                    id: Some(id),
                });
                want.transport = t;
            }
            _ => {
                be16(&mut f, 0x86dd);
                want.ethertype = Some(0x86dd);
                let proto = *rng.pick(&[58u8, 6, 17, 6, 17, 47, 132]);
                let (mut body, t) = l4(rng, proto);
                let hop_by_hop = rng.one_in(3);
                if hop_by_hop {
                    let mut ext = vec![proto, 0, 1, 4];
                    ext.extend_from_slice(&[0; 4]);
                    ext.extend_from_slice(&body);
                    body = ext;
                }
                let (src, dst): (Ipv6Addr, Ipv6Addr) = (
                    u128::from(rng.next()).wrapping_shl(64).into(),
                    Ipv6Addr::from(rng.next() as u128 * 3),
                );
                let hop = rng.next() as u8;
                f.extend_from_slice(&(0x6000_0000u32 | rng.below(1 << 20) as u32).to_be_bytes());
                be16(&mut f, body.len() as u16);
                f.push(if hop_by_hop { 0 } else { proto });
                f.push(hop);
                f.extend_from_slice(&src.octets());
                f.extend_from_slice(&dst.octets());
                f.extend_from_slice(&body);
                want.net = Some(Net::Ip {
                    src: src.into(),
                    dst: dst.into(),
                    proto,
                    ttl: hop,
                    id: None,
                });
                want.transport = t;
            }
        }
        Built { frame: f, want }
    }

    /// Header fields written over a valid frame: lengths, flags and counts at their
    /// extremes.
    const WORDS: &[u16] = &[
        0, 1, 4, 5, 8, 0x0f, 0x14, 0x28, 0x45, 0x4f, 0xff, 0x3fff, 0x7fff, 0x8000, 0xffff,
    ];

    /// Tokens spliced into frames: ethertypes, VLAN tags and IP version nibbles.
    const TOKENS: &[&[u8]] = &[
        &[0x81, 0x00],
        &[0x88, 0xa8],
        &[0x08, 0x00],
        &[0x08, 0x06],
        &[0x86, 0xdd],
        &[0x45],
        &[0x4f],
        &[0x60, 0, 0, 0],
        &[0, 0, 0, 0],
        &[0xff; 8],
    ];

    fn mutate_frame(rng: &mut Rng, f: Vec<u8>) -> Vec<u8> {
        if f.is_empty() || rng.one_in(3) {
            return mutate_bytes(rng, f, TOKENS);
        }
        let mut f = f;
        // Header-aware: overwrite a byte or a big-endian word inside the first 100
        // bytes, where the length, flag and option fields are.
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(f.len().min(100));
            if rng.one_in(2) || at + 1 >= f.len() {
                f[at] = if rng.one_in(2) {
                    rng.next() as u8
                } else {
                    *rng.pick(WORDS) as u8
                };
            } else {
                let w = if rng.one_in(2) {
                    *rng.pick(WORDS)
                } else {
                    rng.next() as u16
                };
                f[at..at + 2].copy_from_slice(&w.to_be_bytes());
            }
        }
        if rng.one_in(4) {
            let at = rng.below(f.len() + 1);
            f.truncate(at);
        }
        f
    }

    const LABEL: &str = "eth0@web1";

    /// Everything printed for `frame` holds up: the summary and the text line are safe
    /// to print and agree; the JSON line is one line of valid JSON that says what
    /// [`decode`] says.
    fn check_lines(frame: &[u8], rng: &mut Rng, what: &dyn Fn() -> String) -> Decoded {
        let d = decode(frame);
        let len = if rng.one_in(4) {
            rng.next() as u32
        } else {
            frame.len() as u32
        };
        let ts = match rng.below(4) {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => -(rng.next() as i64 >> 8),
            _ => rng.next() as i64 >> 12,
        };
        let hint = DirectionHint {
            own: rng.one_in(2).then(|| mac_of(rng)),
            peer: rng
                .one_in(3)
                .then(|| frame.get(6..12).and_then(|m| m.try_into().ok()))
                .flatten(),
        };
        let summary = summary(&d, len);
        assert!(
            !summary.chars().any(crate::text::is_unsafe),
            "{}: summary {summary:?}",
            what()
        );

        let mut buf = Vec::new();
        fast::text_line(&mut buf, LABEL, ts, len, frame, hint);
        let text = String::from_utf8(buf).unwrap_or_else(|e| panic!("{}: text line not UTF-8: {e}", what()));
        let body = text
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("{}: text line without its end {text:?}", what()));
        assert!(
            !body.chars().any(crate::text::is_unsafe),
            "{}: text line {text:?}",
            what()
        );
        let dir = fast::direction(frame.get(6..12).and_then(|m| m.try_into().ok()), hint);
        let want = format!("{} {LABEL} {dir:<4}{summary}", clock(ts));
        // The fast line prints what the summary of the full decoder says (the fast path
        // exists only to avoid allocating per packet).
        if d.src_mac.is_some() {
            assert_eq!(body, want, "{}", what());
        }

        let mut buf = Vec::new();
        fast::json_line(&mut buf, "v\"1\u{1b}]0;x\u{7}\n", ts, len, frame, hint);
        assert_eq!(buf.last(), Some(&b'\n'), "{}", what());
        assert_eq!(
            buf.iter().filter(|&&c| c == b'\n').count(),
            1,
            "{}: {:?}",
            what(),
            String::from_utf8_lossy(&buf)
        );
        let v: serde_json::Value = serde_json::from_slice(&buf)
            .unwrap_or_else(|e| panic!("{}: JSON line {e}: {}", what(), String::from_utf8_lossy(&buf)));
        assert_eq!(v["iface"], "v\"1\u{1b}]0;x\u{7}\n", "{}", what());
        assert_eq!(v["caplen"].as_u64(), Some(frame.len() as u64), "{}", what());
        assert_eq!(v["len"].as_u64(), Some(u64::from(len)), "{}", what());
        assert_eq!(v["src_mac"].as_str(), d.src_mac.as_deref(), "{}", what());
        assert_eq!(v["dst_mac"].as_str(), d.dst_mac.as_deref(), "{}", what());
        assert_eq!(v["vlan"].as_u64(), d.vlan.map(u64::from), "{}", what());
        assert_eq!(v["ethertype"].as_u64(), d.ethertype.map(u64::from), "{}", what());
        assert_eq!(
            serde_json::from_value::<Option<Net>>(v["net"].clone()).ok(),
            Some(d.net.clone()),
            "{}",
            what()
        );
        assert_eq!(
            serde_json::from_value::<Option<Transport>>(v["transport"].clone()).ok(),
            Some(d.transport.clone()),
            "{}",
            what()
        );
        assert_eq!(v["malformed"].as_str(), d.malformed.as_deref(), "{}", what());
        d
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn well_formed_frames_decode_to_what_they_carry() {
        let mut rng = Rng(0x0f0f_1234_5678_9abc);
        for case in 0..3000 {
            let Built { frame, want } = build(&mut rng);
            let d = check_lines(&frame, &mut rng, &|| format!("case {case} frame {}", hex(&frame)));
            assert_eq!(d, want, "case {case} frame {}", hex(&frame));
        }
    }

    #[test]
    fn mutated_frames_never_panic_and_print_safe_lines() {
        for &seed in &[0x5eed_u64, 0xfeed_face_cafe_beef, 0x0123_4567_89ab_cdef] {
            let mut rng = Rng(seed);
            for case in 0..2000 {
                let Built { frame, .. } = build(&mut rng);
                let frame = mutate_frame(&mut rng, frame);
                check_lines(&frame, &mut rng, &|| {
                    format!("seed {seed:#x} case {case} frame {}", hex(&frame))
                });
            }
        }
    }

    #[test]
    fn frames_truncated_at_every_length_never_panic() {
        let mut rng = Rng(0x7a11);
        for case in 0..40 {
            let Built { frame, .. } = build(&mut rng);
            for cut in 0..=frame.len() {
                let f = &frame[..cut];
                check_lines(f, &mut rng, &|| format!("case {case} cut {cut} frame {}", hex(f)));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_and_print_safe_lines() {
        let mut rng = Rng(0xdead_beef);
        for case in 0..3000 {
            let n = rng.below(200);
            let mut frame = rng.bytes(n);
            // Half of them with a real ethertype, so the bytes reach layers 3 and 4.
            if frame.len() >= 14 && rng.one_in(2) {
                let t = *rng.pick(&[0x0800u16, 0x86dd, 0x0806, 0x8100, 0x88a8]);
                frame[12..14].copy_from_slice(&t.to_be_bytes());
                if frame.len() > 14 && t == 0x0800 {
                    frame[14] = 0x45;
                }
            }
            check_lines(&frame, &mut rng, &|| format!("case {case} frame {}", hex(&frame)));
        }
    }
}
