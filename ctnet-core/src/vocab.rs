//! The snapshot's enumerated vocabulary, typed: a link's kind and operational state, a
//! neighbour's (or FDB entry's) NUD state, a source's read status.
//!
//! Each type is written in JSON as the lowercase word iproute2 prints (`veth`, `up`,
//! `lowerlayerdown`, `reachable`), so a snapshot reads like `ip -j` output and files
//! written before these types existed read unchanged. A word the kernel or a newer
//! release adds is kept as [`Other`](LinkKind::Other) with its text, never refused
//! (nispor's model). Code matches on the variants: the words are parsed here and
//! nowhere else.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A word not known to this release, as read.
            Other(String),
        }

        impl $name {
            /// The word iproute2 prints for it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $word, )+
                    Self::Other(s) => s,
                }
            }

            /// Parse a word (case-insensitive); an unknown one is kept as `Other`.
            pub fn parse(word: &str) -> Self {
                $( if word.eq_ignore_ascii_case($word) { return Self::$variant; } )+
                Self::Other(word.to_string())
            }
        }

        impl From<&str> for $name {
            fn from(word: &str) -> Self {
                Self::parse(word)
            }
        }

        impl From<String> for $name {
            fn from(word: String) -> Self {
                Self::parse(&word)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Ok(Self::parse(&word))
            }
        }
    };
}

vocabulary! {
    /// `IFLA_INFO_KIND` of a link (`None` in [`crate::model::Link`] for physical
    /// devices and loopback).
    pub enum LinkKind {
        /// A veth pair's end.
        Veth => "veth",
        /// A Linux bridge.
        Bridge => "bridge",
        /// A VXLAN tunnel endpoint.
        Vxlan => "vxlan",
        /// A macvlan.
        Macvlan => "macvlan",
        /// A macvtap.
        Macvtap => "macvtap",
        /// An ipvlan.
        Ipvlan => "ipvlan",
        /// An ipvtap.
        Ipvtap => "ipvtap",
        /// An 802.1Q VLAN.
        Vlan => "vlan",
        /// A bond.
        Bond => "bond",
        /// A tun/tap device (slirp4netns, pasta).
        Tun => "tun",
        /// A dummy device.
        Dummy => "dummy",
        /// A WireGuard tunnel.
        Wireguard => "wireguard",
        /// A VRF.
        Vrf => "vrf",
        /// A Geneve tunnel.
        Geneve => "geneve",
        /// An IP-in-IP tunnel.
        Ipip => "ipip",
    }
}

vocabulary! {
    /// `IFLA_OPERSTATE` (RFC 2863).
    pub enum OperState {
        /// Up and running.
        Up => "up",
        /// Down.
        Down => "down",
        /// Down because a lower device is (a veth whose peer is down).
        LowerLayerDown => "lowerlayerdown",
        /// The driver does not say (loopback, tun).
        Unknown => "unknown",
        /// Not present.
        NotPresent => "notpresent",
        /// In a test mode.
        Testing => "testing",
        /// Waiting for an external event.
        Dormant => "dormant",
    }
}

vocabulary! {
    /// A neighbour's NUD state (`ip neigh`), also an FDB entry's (`bridge fdb`).
    pub enum NeighState {
        /// Resolution in progress.
        Incomplete => "incomplete",
        /// Confirmed recently.
        Reachable => "reachable",
        /// Valid but not confirmed lately.
        Stale => "stale",
        /// Waiting before a probe.
        Delay => "delay",
        /// Being probed.
        Probe => "probe",
        /// Resolution failed.
        Failed => "failed",
        /// Valid, never probed (an FDB entry added by hand).
        Noarp => "noarp",
        /// Static.
        Permanent => "permanent",
        /// No state.
        None => "none",
    }
}

#[allow(clippy::derivable_impls)] // the enum comes from `vocabulary!`: no `#[default]` there
impl Default for OperState {
    /// What a link that says nothing is: `unknown`.
    fn default() -> Self {
        Self::Unknown
    }
}

#[allow(clippy::derivable_impls)] // the enum comes from `vocabulary!`: no `#[default]` there
impl Default for NeighState {
    fn default() -> Self {
        Self::None
    }
}

#[allow(clippy::derivable_impls)] // the enum comes from `vocabulary!`: no `#[default]` there
impl Default for SourceState {
    fn default() -> Self {
        Self::Ok
    }
}

impl NeighState {
    /// Failed or still incomplete: no usable MAC.
    pub fn unresolved(&self) -> bool {
        matches!(self, Self::Failed | Self::Incomplete)
    }
}

vocabulary! {
    /// A bridge port's STP state (`IFLA_BRPORT_STATE`).
    pub enum PortState {
        /// Down, or taken out by STP.
        Disabled => "disabled",
        /// STP: listening.
        Listening => "listening",
        /// STP: learning MACs, forwarding nothing yet.
        Learning => "learning",
        /// Forwarding.
        Forwarding => "forwarding",
        /// STP: blocked.
        Blocking => "blocking",
    }
}

#[allow(clippy::derivable_impls)] // the enum comes from `vocabulary!`: no `#[default]` there
impl Default for PortState {
    /// A port that says nothing (STP off) forwards.
    fn default() -> Self {
        Self::Forwarding
    }
}

vocabulary! {
    /// Whether a source could be read.
    pub enum SourceState {
        /// Read.
        Ok => "ok",
        /// Read in part.
        Partial => "partial",
        /// Could not be read.
        Failed => "failed",
        /// Not read, by choice or for lack of a tool.
        Skipped => "skipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_words_are_kept() {
        for w in ["veth", "bridge", "vxlan", "netkit"] {
            let k = LinkKind::parse(w);
            assert_eq!(k.as_str(), w);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{w}\""));
            assert_eq!(serde_json::from_str::<LinkKind>(&format!("\"{w}\"")).unwrap(), k);
        }
        assert_eq!(LinkKind::parse("netkit"), LinkKind::Other("netkit".into()));
        assert_eq!(OperState::parse("LowerLayerDown"), OperState::LowerLayerDown);
        assert_eq!(OperState::from("UP".to_string()), OperState::Up);
        assert_eq!(format!("{:>6}|", NeighState::Stale), " stale|");
        assert!(NeighState::Incomplete.unresolved() && !NeighState::Stale.unresolved());
        assert_eq!(
            serde_json::from_str::<Vec<SourceState>>(r#"["ok","partial","failed","skipped","odd"]"#).unwrap(),
            vec![
                SourceState::Ok,
                SourceState::Partial,
                SourceState::Failed,
                SourceState::Skipped,
                SourceState::Other("odd".into())
            ]
        );
    }

    #[test]
    fn a_v1_file_reads_as_v2_with_its_words_unchanged() {
        use crate::model::{Snapshot, SourceStatus};
        let bytes = include_bytes!("../../fixtures/lab-healthy.json");
        let raw: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(raw["schema"], "ctnet.snapshot/v1");
        let snap = Snapshot::from_slice(bytes).unwrap();
        assert_eq!(snap.schema, crate::model::SNAPSHOT_SCHEMA);
        let host = snap.host_netns().unwrap();
        assert!(host.links.iter().any(|l| l.kind == Some(LinkKind::Veth)));
        assert!(host.links.iter().any(|l| l.kind == Some(LinkKind::Bridge)));
        // Written again, every link, neighbour and FDB entry says what the file said.
        let again = serde_json::to_value(&snap).unwrap();
        for (i, ns) in raw["netns"].as_array().unwrap().iter().enumerate() {
            for field in ["links", "neighbours", "fdb"] {
                assert_eq!(again["netns"][i][field], ns[field], "{field} of netns {i}");
            }
        }
        // v2: a source's failure kind, written only when known.
        let s = SourceStatus::problem("netns", None, SourceState::Failed, "setns: EPERM")
            .of_kind(crate::ErrorKind::PermissionDenied);
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains(r#""status":"failed""#) && text.contains(r#""kind":"permission_denied""#),
            "{text}"
        );
        assert!(serde_json::from_str::<SourceStatus>(&text).unwrap().denied());
        let v1 = r#"{"source":"nft","netns":null,"status":"skipped","detail":"not installed"}"#;
        assert_eq!(serde_json::from_str::<SourceStatus>(v1).unwrap().kind, None);
    }
}
