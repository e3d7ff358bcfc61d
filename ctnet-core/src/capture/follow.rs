//! "Follow the packet": the same frame seen on several hops (container eth0, host veth,
//! bridge, peer veth, peer eth0) grouped together, so a reader sees where it stopped.
//!
//! Frames are matched by what a bridge does not change: for ICMP echo the addresses, id
//! and sequence; for TCP/UDP the addresses, ports and IPv4 id; for ARP the operation
//! and the addresses. Several frames of one group seen on the same interface (a flood,
//! a retransmission) count as that hop seen more than once.

use serde::{Deserialize, Serialize};

use crate::capture::Frame;
use crate::capture::decode::{self, Net, Transport};

/// What identifies one packet across hops.
pub fn fingerprint(d: &decode::Decoded) -> Option<String> {
    match (&d.net, &d.transport) {
        (
            Some(Net::Arp {
                op,
                sender_ip,
                target_ip,
                ..
            }),
            _,
        ) => Some(format!("arp {op} {sender_ip}>{target_ip}")),
        (
            Some(Net::Ip { src, dst, .. }),
            Some(Transport::Icmp {
                what,
                id: Some(id),
                seq: Some(seq),
            }),
        ) => Some(format!("icmp {what} {src}>{dst} id {id} seq {seq}")),
        (
            Some(Net::Ip { src, dst, id, .. }),
            Some(Transport::Tcp {
                sport,
                dport,
                seq,
                flags,
            }),
        ) => Some(format!(
            "tcp {src}.{sport}>{dst}.{dport} [{flags}] seq {seq} ipid {}",
            id.map_or(String::from("-"), |i| i.to_string())
        )),
        (Some(Net::Ip { src, dst, id, .. }), Some(Transport::Udp { sport, dport, length })) => Some(format!(
            "udp {src}.{sport}>{dst}.{dport} len {length} ipid {}",
            id.map_or(String::from("-"), |i| i.to_string())
        )),
        (
            Some(Net::Ip {
                src,
                dst,
                id: Some(id),
                proto,
                ..
            }),
            _,
        ) => Some(format!("ip {src}>{dst} proto {proto} ipid {id}")),
        _ => None,
    }
}

/// One packet and every hop it was seen on, in time order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    /// What the packet is (the fingerprint).
    pub packet: String,
    /// `(session index, time seen there in Unix microseconds, times seen there)`.
    pub hops: Vec<(usize, i64, u32)>,
}

/// Group frames into tracks. A track spans at most `window_us` from the first time its
/// packet was seen, and a second copy on a hop it already crossed starts a new track (a
/// retransmission or a repeated ARP is another packet).
pub fn follow(frames: &[Frame], window_us: i64) -> Vec<Track> {
    let mut sorted: Vec<&Frame> = frames.iter().collect();
    sorted.sort_by_key(|f| f.ts_us);
    let mut tracks: Vec<(Track, i64)> = Vec::new();
    let mut open: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for f in sorted {
        let Some(key) = fingerprint(&decode::decode(&f.data)) else {
            continue;
        };
        let idx = match open.get(&key) {
            Some(&i)
                if f.ts_us - tracks[i].1 <= window_us
                    && !tracks[i].0.hops.iter().any(|h| h.0 == f.session) =>
            {
                i
            }
            _ => {
                tracks.push((
                    Track {
                        packet: key.clone(),
                        hops: Vec::new(),
                    },
                    f.ts_us,
                ));
                open.insert(key, tracks.len() - 1);
                tracks.len() - 1
            }
        };
        tracks[idx].0.hops.push((f.session, f.ts_us, 1));
    }
    tracks.into_iter().map(|(t, _)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn echo(seq: u16, src_mac: [u8; 6]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(src_mac, [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 2], [10, 0, 0, 3], 64)
            .icmpv4_echo_request(9, seq)
            .write(&mut out, &[0; 8])
            .unwrap();
        out
    }

    #[test]
    fn a_repeat_on_the_same_hop_is_another_packet() {
        let f = |session, ts_us| Frame {
            session,
            ts_us,
            len: 50,
            data: echo(1, [2, 0, 0, 0, 0, 1]),
        };
        let t = follow(&[f(0, 10), f(1, 11), f(0, 500), f(0, 2_000_000)], 1_000_000);
        let hops: Vec<Vec<usize>> = t.iter().map(|t| t.hops.iter().map(|h| h.0).collect()).collect();
        assert_eq!(hops, [vec![0, 1], vec![0], vec![0]]);
    }

    #[test]
    fn groups_one_echo_across_hops_and_shows_where_it_stopped() {
        let hop = |session, ts_us, seq| Frame {
            session,
            ts_us,
            len: 50,
            data: echo(seq, [2, 0, 0, 0, 0, 1]),
        };
        // seq 1 crosses eth0 (0), vethA (1) and vethB (2); seq 2 stops after vethA.
        let frames = vec![
            hop(0, 10, 1),
            hop(1, 12, 1),
            hop(2, 15, 1),
            hop(0, 1_000_010, 2),
            hop(1, 1_000_012, 2),
        ];
        let t = follow(&frames, 500_000);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].hops.iter().map(|h| h.0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(t[1].hops.iter().map(|h| h.0).collect::<Vec<_>>(), [0, 1]);
        assert!(t[1].packet.contains("seq 2"));
    }
}
