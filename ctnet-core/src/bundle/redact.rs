//! Consistent redaction for a support bundle: the same MAC, address or name becomes the
//! same token in every file (the snapshot, each check, the captures, the kernel log),
//! so a bundle stays readable (`--from` reads it, the topology still joins) while none
//! of the originals is left.
//!
//! - **Addresses** are mapped prefix-preserving (the construction of Crypto-PAn, with
//!   a keyed hash from a key made fresh for each bundle): two addresses that share
//!   their first n bits still do after, so subnets, gateways and routes keep their
//!   relations. The block of a private or special range is kept (10/8 stays in 10/8,
//!   fe80::/64 stays link-local); loopback, unspecified, broadcast and multicast
//!   addresses are not identifying and stay as they are.
//! - **MACs** become locally administered unicast MACs; broadcast, multicast and the
//!   zero MAC stay.
//! - **Names** (the host name, container names, ids, images, runtime networks, netns
//!   names) become `container-1`, `image-1`, ...; a container id becomes another
//!   64-hex id, and its 12-character short form the short form of that.
//!
//! Text is scanned once, left to right; what a replacement writes is never scanned
//! again. A name is replaced only where it stands as a whole word (not inside a longer
//! name), so `web` is not taken out of `web10`.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::Snapshot;

/// A redaction key and the names to replace, built from a snapshot.
pub struct Redactor {
    key: std::collections::hash_map::RandomState,
    /// Original name -> token; looked up by a name's first word.
    names: HashMap<String, String>,
    by_first_word: HashMap<String, Vec<String>>,
}

/// How many keys [`Redactor::new`] draws at most to find one that maps no original
/// onto an original. A block so full that no key can (200 hosts of a /24) keeps the
/// last draw: each address still has its own stand-in.
const KEY_DRAWS: usize = 64;

/// The addresses and MACs of `snap` that redaction replaces (loopback, unspecified,
/// multicast, broadcast and the zero MAC stay as they are, so they are not counted).
fn originals(
    snap: &Snapshot,
) -> (
    std::collections::HashSet<IpAddr>,
    std::collections::HashSet<[u8; 6]>,
) {
    let mut ips = std::collections::HashSet::new();
    let mut macs = std::collections::HashSet::new();
    let mut ip = |a: IpAddr| {
        let stays = match a {
            IpAddr::V4(v) => v.is_unspecified() || v.is_loopback() || v.is_broadcast() || v.is_multicast(),
            IpAddr::V6(v) => v.is_unspecified() || v.is_loopback() || v.is_multicast(),
        };
        if !stays {
            ips.insert(a);
        }
    };
    let mut mac = |m: &str| {
        if let Some(b) = crate::capture::parse_mac(m)
            && b != [0; 6]
            && b[0] & 1 == 0
        {
            macs.insert(b);
        }
    };
    for ns in &snap.netns {
        ns.addresses.iter().for_each(|a| ip(a.address));
        for n in &ns.neighbours {
            ip(n.ip);
            n.mac.as_deref().map(&mut mac);
        }
        for r in &ns.routes {
            r.gateway.into_iter().chain(r.prefsrc).for_each(&mut ip);
        }
        ns.links
            .iter()
            .filter_map(|l| l.mac.as_deref())
            .for_each(&mut mac);
        ns.fdb.iter().for_each(|f| mac(&f.mac));
    }
    for c in &snap.containers {
        for n in &c.networks {
            n.ip.into_iter().chain(n.gateway).for_each(&mut ip);
            n.mac.as_deref().map(&mut mac);
        }
    }
    (ips, macs)
}

/// Runtime network names that are the runtimes' own defaults, not a user's.
const DEFAULT_NETWORKS: &[&str] = &["bridge", "host", "none", "podman", "default"];

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn first_word(s: &str) -> &str {
    let end = s.find(|c: char| !is_word(c)).unwrap_or(s.len());
    &s[..end]
}

impl Redactor {
    /// A fresh key and the names of `snap`.
    ///
    /// The key is drawn again (up to [`KEY_DRAWS`] times) while it would map one of the
    /// snapshot's addresses or MACs onto one of its originals (itself or another): in a
    /// kept block only the host bits change, so in a /24 two addresses of four collide
    /// once in forty draws, and a reader would take the stand-in for a real host.
    pub fn new(snap: &Snapshot) -> Self {
        let (ips, macs) = originals(snap);
        let mut key = std::collections::hash_map::RandomState::new();
        for _ in 1..KEY_DRAWS {
            let probe = Self {
                key: key.clone(),
                names: HashMap::new(),
                by_first_word: HashMap::new(),
            };
            let clash = ips.iter().any(|a| ips.contains(&probe.ip(*a)))
                || macs.iter().any(|m| macs.contains(&probe.mac(*m)));
            if !clash {
                break;
            }
            key = std::collections::hash_map::RandomState::new();
        }
        let mut r = Self {
            key,
            names: HashMap::new(),
            by_first_word: HashMap::new(),
        };
        let mut counters: HashMap<&'static str, usize> = HashMap::new();
        let mut add = |r: &mut Self, kind: &'static str, name: &str| {
            // Too short to stand for anything (and to replace safely), or taken.
            if name.len() < 2 || r.names.contains_key(name) || first_word(name).is_empty() {
                return;
            }
            let n = counters.entry(kind).or_default();
            *n += 1;
            let token = format!("{kind}-{n}");
            r.insert(name, token);
        };
        if !snap.hostname.is_empty() {
            add(&mut r, "host", &snap.hostname);
        }
        for c in &snap.containers {
            // An id and its short form: the same hidden id in both.
            if c.id.len() >= 12 && c.id.bytes().all(|b| b.is_ascii_hexdigit()) {
                let token = r.hex(&c.id);
                r.insert(&c.id[..12], token[..12].to_string());
                if c.id.len() > 12 {
                    r.insert(&c.id, token);
                }
            }
            add(&mut r, "container", &c.name);
            if let Some(p) = &c.pod {
                add(&mut r, "pod", p);
            }
            if let Some(i) = &c.image {
                add(&mut r, "image", i);
            }
            for n in &c.networks {
                if !DEFAULT_NETWORKS.contains(&n.name.as_str()) {
                    add(&mut r, "network", &n.name);
                }
            }
        }
        for ns in &snap.netns {
            for rf in &ns.refs {
                if let crate::netns::NetnsRef::Named { name, .. } = rf {
                    add(&mut r, "netns", name);
                }
            }
        }
        r
    }

    fn insert(&mut self, name: &str, token: String) {
        if self.names.insert(name.to_string(), token).is_none() {
            let list = self
                .by_first_word
                .entry(first_word(name).to_string())
                .or_default();
            list.push(name.to_string());
            // Longest first: `web-1` before `web`.
            list.sort_by_key(|n| std::cmp::Reverse(n.len()));
        }
    }

    /// The names being replaced and their tokens.
    pub fn names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.names.iter().map(|(a, b)| (a.as_str(), b.as_str()))
    }

    fn hash(&self, v: impl std::hash::Hash) -> u64 {
        self.key.hash_one(v)
    }

    /// 64 hex digits standing for `s`.
    fn hex(&self, s: &str) -> String {
        (0..4u8).map(|i| format!("{:016x}", self.hash((s, i)))).collect()
    }

    /// `bits` (the top `width` bits of a u128) with every bit after the first `keep`
    /// flipped by a keyed function of the bits before it: prefix-preserving.
    fn scramble(&self, bits: u128, width: u32, keep: u32) -> u128 {
        let mut out = bits;
        for i in keep..width {
            let prefix = if i == 0 { 0 } else { bits >> (width - i) };
            if self.hash((width, i, prefix)) & 1 == 1 {
                out ^= 1u128 << (width - 1 - i);
            }
        }
        out
    }

    /// An IPv4 address's stand-in.
    pub fn ipv4(&self, a: Ipv4Addr) -> Ipv4Addr {
        let o = a.octets();
        if a.is_unspecified() || a.is_loopback() || a.is_broadcast() || a.is_multicast() || o[0] >= 240 {
            return a;
        }
        let keep = match o {
            [10, ..] => 8,
            [172, b, ..] if (16..32).contains(&b) => 12,
            [192, 168, ..] | [169, 254, ..] => 16,
            [100, b, ..] if (64..128).contains(&b) => 10,
            [198, 18 | 19, ..] => 15,
            [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => 24,
            _ => 0,
        };
        Ipv4Addr::from(self.scramble(u32::from(a) as u128, 32, keep) as u32)
    }

    /// An IPv6 address's stand-in (an IPv4-mapped one through [`Redactor::ipv4`]).
    pub fn ipv6(&self, a: Ipv6Addr) -> Ipv6Addr {
        if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
            return a;
        }
        if let Some(v4) = a.to_ipv4_mapped() {
            return self.ipv4(v4).to_ipv6_mapped();
        }
        let seg = a.segments();
        let keep = if seg[0] & 0xffc0 == 0xfe80 {
            64
        } else if seg[0] & 0xfe00 == 0xfc00 {
            7
        } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
            32
        } else {
            0
        };
        Ipv6Addr::from(self.scramble(u128::from(a), 128, keep))
    }

    /// An address's stand-in.
    pub fn ip(&self, a: IpAddr) -> IpAddr {
        match a {
            IpAddr::V4(v) => IpAddr::V4(self.ipv4(v)),
            IpAddr::V6(v) => IpAddr::V6(self.ipv6(v)),
        }
    }

    /// A MAC's stand-in.
    pub fn mac(&self, m: [u8; 6]) -> [u8; 6] {
        if m == [0; 6] || m[0] & 1 == 1 {
            return m;
        }
        let h = self.hash(("mac", m)).to_be_bytes();
        [(h[0] & 0xfc) | 0x02, h[1], h[2], h[3], h[4], h[5]]
    }

    /// `s` with every address, MAC and name replaced.
    pub fn text(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        let bytes = s.as_bytes();
        while i < s.len() {
            let prev_word = i > 0 && is_word(s[..i].chars().next_back().unwrap_or(' '));
            if !prev_word
                && let Some((taken, with)) = self.at(&s[i..], i > 0 && matches!(bytes[i - 1], b'.' | b':'))
            {
                out.push_str(&with);
                i += taken;
                continue;
            }
            let c = s[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
        out
    }

    /// What to replace at the start of `rest` (a word start): bytes taken and the
    /// replacement.
    fn at(&self, rest: &str, after_sep: bool) -> Option<(usize, String)> {
        let c = rest.chars().next()?;
        if c.is_ascii_hexdigit() && !after_sep {
            let run = rest
                .find(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
                .unwrap_or(rest.len());
            let next_word = rest[run..].chars().next().is_some_and(is_word);
            if run > 0 && !next_word {
                if let Some(found) = self.address_run(&rest[..run]) {
                    return Some(found);
                }
            }
        }
        if is_word(c) {
            let word = first_word(rest);
            if let Some(list) = self.by_first_word.get(word) {
                for name in list {
                    if rest.starts_with(name.as_str())
                        && !rest[name.len()..].chars().next().is_some_and(is_word)
                    {
                        return Some((name.len(), self.names[name].clone()));
                    }
                }
            }
            return None;
        }
        None
    }

    /// An address or MAC at the start of `run` (hex digits, colons and dots): the
    /// longest prefix that parses, so `10.0.0.1:53` gives `10.0.0.1` and a sentence's
    /// final dot is left alone.
    fn address_run(&self, run: &str) -> Option<(usize, String)> {
        let mut end = run.len();
        loop {
            let cand = &run[..end];
            if let Some(m) = crate::capture::parse_mac(cand) {
                let r = self.mac(m);
                let upper = cand.bytes().any(|b| b.is_ascii_uppercase());
                let s = format!(
                    "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    r[0], r[1], r[2], r[3], r[4], r[5]
                );
                return Some((end, if upper { s.to_uppercase() } else { s }));
            }
            if cand.contains('.') && !cand.contains(':') {
                if let Ok(a) = cand.parse::<Ipv4Addr>() {
                    return Some((end, self.ipv4(a).to_string()));
                }
            } else if cand.contains(':')
                && let Ok(a) = cand.parse::<Ipv6Addr>()
            {
                return Some((end, self.ipv6(a).to_string()));
            }
            // Shorten to the last separator and try again.
            end = cand.rfind([':', '.'])?;
            if end == 0 {
                return None;
            }
        }
    }

    /// Every string in `v` redacted; the keys of maps keyed by data (`conf`: by
    /// interface name; `labels`) too.
    pub fn json(&self, v: &mut serde_json::Value) {
        self.json_in(v, false);
    }

    fn json_in(&self, v: &mut serde_json::Value, data_keys: bool) {
        match v {
            serde_json::Value::String(s) => {
                let r = self.text(s);
                if r != *s {
                    *s = r;
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.json_in(x, false)),
            serde_json::Value::Object(m) => {
                let old = std::mem::take(m);
                for (k, mut x) in old {
                    let child_keys = matches!(k.as_str(), "conf" | "labels");
                    self.json_in(&mut x, child_keys);
                    let k = if data_keys { self.text(&k) } else { k };
                    m.insert(k, x);
                }
            }
            _ => {}
        }
    }

    /// A captured frame with its addresses replaced in place (Ethernet, ARP, IPv4 and
    /// IPv6 headers; the IPv4 header checksum is recomputed) and cut after the
    /// transport header, where payloads (DNS answers, HTTP) would name more; the
    /// length kept.
    pub fn frame(&self, data: &mut Vec<u8>) {
        fn mac_at(r: &Redactor, d: &mut [u8], at: usize) {
            if let Some(b) = d.get_mut(at..at + 6) {
                let m: [u8; 6] = b.try_into().unwrap_or([0; 6]);
                b.copy_from_slice(&r.mac(m));
            }
        }
        fn v4_at(r: &Redactor, d: &mut [u8], at: usize) {
            if let Some(b) = d.get_mut(at..at + 4) {
                let a = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
                b.copy_from_slice(&r.ipv4(a).octets());
            }
        }
        fn v6_at(r: &Redactor, d: &mut [u8], at: usize) {
            if let Some(b) = d.get_mut(at..at + 16) {
                let a: [u8; 16] = b.try_into().unwrap_or([0; 16]);
                b.copy_from_slice(&r.ipv6(Ipv6Addr::from(a)).octets());
            }
        }
        if data.len() < 14 {
            data.clear();
            return;
        }
        mac_at(self, data, 0);
        mac_at(self, data, 6);
        let mut at = 12;
        let mut ethertype = u16::from_be_bytes([data[12], data[13]]);
        // 802.1Q / 802.1ad tags.
        while matches!(ethertype, 0x8100 | 0x88a8) && data.len() >= at + 6 {
            at += 4;
            ethertype = u16::from_be_bytes([data[at], data[at + 1]]);
        }
        let l3 = at + 2;
        let keep = match ethertype {
            0x0806 if data.len() >= l3 + 28 => {
                mac_at(self, data, l3 + 8);
                v4_at(self, data, l3 + 14);
                mac_at(self, data, l3 + 18);
                v4_at(self, data, l3 + 24);
                l3 + 28
            }
            0x0800 if data.len() >= l3 + 20 => {
                let ihl = usize::from(data[l3] & 0x0f) * 4;
                v4_at(self, data, l3 + 12);
                v4_at(self, data, l3 + 16);
                // Options may carry addresses (record route): zeroed.
                let opts_end = (l3 + ihl).min(data.len());
                for b in data.iter_mut().take(opts_end).skip(l3 + 20) {
                    *b = 0;
                }
                if data.len() >= l3 + ihl && ihl >= 20 {
                    data[l3 + 10] = 0;
                    data[l3 + 11] = 0;
                    let sum = checksum(&data[l3..l3 + ihl]);
                    data[l3 + 10..l3 + 12].copy_from_slice(&sum.to_be_bytes());
                }
                l3 + ihl + transport_len(data.get(l3 + 9).copied(), data.get(l3 + ihl..))
            }
            0x86dd if data.len() >= l3 + 40 => {
                v6_at(self, data, l3 + 8);
                v6_at(self, data, l3 + 24);
                l3 + 40 + transport_len(data.get(l3 + 6).copied(), data.get(l3 + 40..))
            }
            _ => l3,
        };
        data.truncate(keep.min(data.len()));
    }
}

/// The length of the transport header at the start of `rest` for IP protocol `proto`
/// (TCP: its data offset; UDP and ICMP: 8; anything else: nothing kept).
fn transport_len(proto: Option<u8>, rest: Option<&[u8]>) -> usize {
    let rest = rest.unwrap_or(&[]);
    let n = match proto {
        Some(6) => rest.get(12).map_or(20, |b| usize::from(b >> 4) * 4),
        Some(17 | 1 | 58) => 8,
        _ => 0,
    };
    n.min(rest.len())
}

/// The Internet checksum of `b`.
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in b.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Container, ContainerNetwork};

    fn redactor() -> Redactor {
        let mut snap = Snapshot::from_slice(include_bytes!("../../../fixtures/lab-healthy.json")).unwrap();
        snap.hostname = "db-prod-7".into();
        snap.netns.clear();
        let mut c = Container {
            id: "f".repeat(12) + &"a".repeat(52),
            name: "web".into(),
            image: Some("acme/shop:1.2".into()),
            ..Container::default()
        };
        c.networks.push(ContainerNetwork {
            name: "appnet".into(),
            ..ContainerNetwork::default()
        });
        let mut c2 = c.clone();
        c2.id = "b".repeat(64);
        c2.name = "web-1".into();
        c2.networks[0].name = "bridge".into();
        snap.containers = vec![c, c2];
        Redactor::new(&snap)
    }

    #[test]
    fn no_address_of_the_snapshot_stands_in_for_another() {
        // Sixteen hosts of a documentation /24 keep 24 bits: only 8 are scrambled, so
        // most keys map one of them onto another (or onto itself).
        let mut snap = Snapshot::from_slice(include_bytes!("../../../fixtures/lab-healthy.json")).unwrap();
        let ns = &mut snap.netns[0];
        let ifindex = ns.addresses[0].ifindex;
        let hosts: Vec<IpAddr> = (1..=16u8)
            .map(|h| IpAddr::V4(Ipv4Addr::new(192, 0, 2, h * 3)))
            .collect();
        for a in &hosts {
            ns.addresses.push(crate::model::Address {
                ifindex,
                address: *a,
                prefix_len: 24,
                scope: "global".into(),
                label: None,
            });
        }
        let (ips, macs) = originals(&snap);
        assert!(ips.len() >= 16 && !macs.is_empty());
        for _ in 0..100 {
            let r = Redactor::new(&snap);
            for a in &ips {
                assert!(!ips.contains(&r.ip(*a)), "{a} -> {} is an original", r.ip(*a));
            }
            for m in &macs {
                assert!(!macs.contains(&r.mac(*m)), "{m:02x?} -> an original");
            }
            let t = r.text("192.0.2.3 and 192.0.2.48");
            assert!(!t.contains("192.0.2.3 ") && !t.ends_with("192.0.2.48"), "{t}");
        }
    }

    #[test]
    fn the_same_input_gives_the_same_token_and_no_original_is_left() {
        let r = redactor();
        let text = "web (ffffffffffff) on appnet, web-1 at 172.18.0.2/16 via 172.18.0.1, \
                    MAC 02:42:ac:12:00:02, fe80::42:acff:fe12:2%eth0, 10.0.0.1:53, \
                    host db-prod-7; web10 stays; bridge stays; 127.0.0.1 and ff:ff:ff:ff:ff:ff stay.";
        let a = r.text(text);
        assert_eq!(a, r.text(text), "the same key maps the same way");
        for gone in [
            "web ",
            "ffffffffffff",
            "appnet",
            "web-1",
            "172.18.0.2",
            "172.18.0.1",
            "02:42:ac:12:00:02",
            "fe80::42:acff:fe12:2",
            "10.0.0.1",
            "db-prod-7",
        ] {
            assert!(!a.contains(gone), "{gone} is left in {a}");
        }
        for kept in [
            "web10",
            "bridge stays",
            "127.0.0.1",
            "ff:ff:ff:ff:ff:ff",
            "%eth0",
            ":53,",
        ] {
            assert!(a.contains(kept), "{kept} is gone from {a}");
        }
        assert!(a.contains("container-1 (") && a.contains("container-2 at"), "{a}");
        assert!(a.contains("network-1") && a.contains("host-1"), "{a}");
    }

    #[test]
    fn addresses_keep_their_prefixes_and_their_blocks() {
        let r = redactor();
        let a: Ipv4Addr = "172.18.0.2".parse().unwrap();
        let b: Ipv4Addr = "172.18.0.3".parse().unwrap();
        let c: Ipv4Addr = "172.19.5.5".parse().unwrap();
        let (ra, rb, rc) = (r.ipv4(a), r.ipv4(b), r.ipv4(c));
        assert_eq!(u32::from(ra) >> 2, u32::from(rb) >> 2, "a /30 stays a /30");
        assert_ne!(
            u32::from(ra) >> 16,
            u32::from(rc) >> 16,
            "172.18/16 and 172.19/16 stay apart"
        );
        assert!(
            ra.octets()[0] == 172 && (16..32).contains(&ra.octets()[1]),
            "private stays private: {ra}"
        );
        let ll: Ipv6Addr = "fe80::42:acff:fe12:2".parse().unwrap();
        assert_eq!(r.ipv6(ll).segments()[..4], [0xfe80, 0, 0, 0]);
        assert_ne!(r.ipv6(ll), ll);
        let m = r.mac([2, 0x42, 0xac, 0x12, 0, 2]);
        assert_eq!(m[0] & 3, 2, "locally administered unicast");
    }

    #[test]
    fn frames_lose_their_addresses_and_their_payload() {
        let r = redactor();
        // Ethernet + IPv4 + UDP + 4 bytes of payload.
        let mut f = vec![
            0x02, 0x42, 0xac, 0x12, 0, 3, 0x02, 0x42, 0xac, 0x12, 0, 2, 0x08, 0x00, 0x45, 0, 0, 32, 0, 0, 0,
            0, 64, 17, 0, 0, 172, 18, 0, 2, 172, 18, 0, 3, 0x30, 0x39, 0, 53, 0, 12, 0, 0, b'w', b'e', b'b',
            b'1',
        ];
        r.frame(&mut f);
        assert_eq!(f.len(), 14 + 20 + 8, "payload cut after the UDP header");
        assert_ne!(f[0..6], [0x02, 0x42, 0xac, 0x12, 0, 3]);
        assert_ne!(f[26..30], [172, 18, 0, 2]);
        assert_eq!(checksum(&f[14..34]), 0, "a valid IPv4 header checksum");
        let mut short = vec![1, 2, 3];
        r.frame(&mut short);
        assert!(short.is_empty());
    }
}
