//! The base chains of one netns by hook, in the kernel's order: iptables tables of
//! both backends at their fixed priorities, native nft base chains at theirs.

use std::collections::HashMap;

use crate::model::{Firewall as Raw, NetnsState};
use crate::netfilter::nft::{self, Family as NftFamily, Hook as NftHook};
use crate::netfilter::nft_eval::{self, RuleTexts};
use crate::netfilter::{self, Backend, Context, Family, Outcome, Packet};

/// A netfilter hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Before routing (raw, mangle, nat DNAT).
    Prerouting,
    /// Delivered locally.
    Input,
    /// Routed through (and, with br_netfilter, bridged).
    Forward,
    /// Sent by a local process.
    Output,
    /// Leaving (nat SNAT, MASQUERADE).
    Postrouting,
    /// A device's ingress (netdev family): not walked; its chains are listed as
    /// not evaluated.
    Ingress,
}

impl Hook {
    fn word(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
            Hook::Ingress => "ingress",
        }
    }

    fn of_iptables(chain: &str) -> Option<Hook> {
        Some(match chain {
            "PREROUTING" => Hook::Prerouting,
            "INPUT" => Hook::Input,
            "FORWARD" => Hook::Forward,
            "OUTPUT" => Hook::Output,
            "POSTROUTING" => Hook::Postrouting,
            _ => return None,
        })
    }

    fn of_nft(h: NftHook) -> Hook {
        match h {
            NftHook::Prerouting => Hook::Prerouting,
            NftHook::Input => Hook::Input,
            NftHook::Forward => Hook::Forward,
            NftHook::Output => Hook::Output,
            NftHook::Postrouting => Hook::Postrouting,
            NftHook::Ingress | NftHook::Egress => Hook::Ingress,
        }
    }
}

/// The priority of an iptables table's chain on a hook (what the kernel registers).
fn iptables_priority(table: &str, hook: Hook) -> Option<i32> {
    Some(match (table, hook) {
        ("raw", Hook::Prerouting | Hook::Output) => -300,
        ("mangle", _) => -150,
        ("nat", Hook::Prerouting | Hook::Output) => -100,
        ("nat", Hook::Input | Hook::Postrouting) => 100,
        ("filter", Hook::Input | Hook::Forward | Hook::Output) => 0,
        ("security", Hook::Input | Hook::Forward | Hook::Output) => 50,
        _ => return None,
    })
}

/// Where a base chain lives.
#[derive(Debug, Clone)]
enum Place {
    Ipt { dump: usize, table: usize },
    Nft { table: usize },
}

/// One base chain on a hook.
#[derive(Debug, Clone)]
pub(super) struct ChainAt {
    place: Place,
    chain: String,
    table_name: String,
    hook: Hook,
    priority: i32,
    nat: bool,
    /// `Some(true)` IPv4 only, `Some(false)` IPv6 only, `None` both (inet, bridge).
    v4: Option<bool>,
    bridge: bool,
    backend: Option<Backend>,
    rules: usize,
    policy: String,
}

impl ChainAt {
    pub(super) fn is_nat(&self) -> bool {
        self.nat
    }

    pub(super) fn rule_count(&self) -> usize {
        self.rules
    }

    /// `prerouting/nat/PREROUTING`, `forward/inet firewalld/filter_FORWARD`.
    pub(super) fn step_name(&self, hook: Hook) -> String {
        format!("{}/{}/{}", hook.word(), self.table_name, self.chain)
    }

    pub(super) fn source_name(&self) -> String {
        match (&self.place, &self.backend, self.v4) {
            (Place::Nft { .. }, _, _) => "nft".into(),
            (Place::Ipt { .. }, Some(Backend::Legacy), Some(false)) => "ip6tables-legacy".into(),
            (Place::Ipt { .. }, Some(Backend::Legacy), _) => "iptables-legacy".into(),
            (Place::Ipt { .. }, _, Some(false)) => "ip6tables".into(),
            (Place::Ipt { .. }, _, _) => "iptables".into(),
        }
    }

    pub(super) fn policy_word(&self) -> &str {
        &self.policy
    }
}

/// The firewall of one netns, typed and ordered.
pub(super) struct Firewall {
    ipt: netfilter::Ruleset,
    nft: nft::Ruleset,
    texts: Vec<RuleTexts>,
    chains: Vec<ChainAt>,
    pub(super) context: Context,
}

impl Firewall {
    /// Type the snapshot's rules; the notes say what could not be placed.
    pub(super) fn from_snapshot(raw: &Raw, ns: Option<&NetnsState>) -> (Firewall, Vec<String>) {
        let ipt = netfilter::Ruleset::from_firewall(raw);
        let nft = nft::Ruleset::from_firewall(raw);
        let mut notes = Vec::new();
        let mut chains = Vec::new();
        for (di, d) in ipt.dumps.iter().enumerate() {
            let v4 = match d.family {
                Family::Ipv4 => true,
                Family::Ipv6 => false,
                Family::Other(_) => continue,
            };
            for (ti, t) in d.tables.iter().enumerate() {
                for c in &t.chains {
                    let Some(hook) = Hook::of_iptables(&c.name) else {
                        continue;
                    };
                    let Some(priority) = iptables_priority(&t.name, hook) else {
                        continue;
                    };
                    chains.push(ChainAt {
                        place: Place::Ipt { dump: di, table: ti },
                        chain: c.name.clone(),
                        table_name: t.name.clone(),
                        hook,
                        priority,
                        nat: t.name == "nat",
                        v4: Some(v4),
                        bridge: false,
                        backend: Some(d.backend.clone()),
                        rules: c.rules.len(),
                        policy: match &c.policy {
                            Some(netfilter::Policy::Accept) => "ACCEPT".into(),
                            Some(netfilter::Policy::Drop) => "DROP".into(),
                            Some(netfilter::Policy::Other(o)) => o.clone(),
                            None => "RETURN".into(),
                        },
                    });
                }
            }
        }
        let mut texts = Vec::new();
        for (ti, t) in nft.tables.iter().enumerate() {
            let mut m = RuleTexts::new();
            if let Some(raw_t) = raw
                .nft
                .iter()
                .find(|x| x.family == t.family_name && x.name == t.name)
            {
                for r in &raw_t.rules {
                    m.insert(r.handle, r.text.clone());
                }
            }
            texts.push(m);
            let (v4, bridge) = match t.family {
                Some(NftFamily::Ip) => (Some(true), false),
                Some(NftFamily::Ip6) => (Some(false), false),
                Some(NftFamily::Inet) => (None, false),
                Some(NftFamily::Bridge) => (None, true),
                Some(NftFamily::Netdev) => (None, false),
                _ => continue,
            };
            for c in &t.chains {
                let Some(b) = &c.base else { continue };
                let Some(h) = b.hook else {
                    notes.push(format!(
                        "nft chain {} {} {} has hook {:?}, which the engine does not know: not evaluated",
                        t.family_name, t.name, c.name, b.hook_name
                    ));
                    continue;
                };
                let Some(priority) = b.priority else {
                    notes.push(format!(
                        "nft chain {} {} {}: its priority could not be resolved: not evaluated",
                        t.family_name, t.name, c.name
                    ));
                    continue;
                };
                let hook = Hook::of_nft(h);
                if hook == Hook::Ingress {
                    notes.push(format!(
                        "nft chain {} {} {} runs at ingress/egress of a device: not evaluated",
                        t.family_name, t.name, c.name
                    ));
                    continue;
                }
                chains.push(ChainAt {
                    place: Place::Nft { table: ti },
                    chain: c.name.clone(),
                    table_name: format!("{} {}", t.family_name, t.name),
                    hook,
                    priority,
                    nat: b.kind == Some(nft::ChainType::Nat),
                    v4,
                    bridge,
                    backend: None,
                    rules: c.rules.len(),
                    policy: match &b.policy {
                        nft::Policy::Accept => "accept".into(),
                        nft::Policy::Drop => "drop".into(),
                        nft::Policy::Other(o) => o.clone(),
                    },
                });
            }
        }
        for p in &nft.problems {
            notes.push(format!("nft: {p}"));
        }
        // Stable: equal priorities keep the order read (legacy dumps come as read).
        chains.sort_by_key(|c| c.priority);
        let mut context = super::context_of(ns);
        // Address sets (hash:ip, hash:net) are decidable; the others stay unknown.
        for set in raw
            .ipsets
            .iter()
            .filter(|s| s.kind == "hash:ip" || s.kind == "hash:net")
        {
            let members: Option<Vec<ipnet::IpNet>> = set
                .members
                .iter()
                .map(|m| {
                    m.parse::<ipnet::IpNet>()
                        .ok()
                        .or_else(|| m.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
                })
                .collect();
            match members {
                Some(m) => {
                    context.sets.insert(set.name.clone(), m);
                }
                None => notes.push(format!(
                    "ipset {}: a member is not an address; the set is not evaluated",
                    set.name
                )),
            }
        }
        (
            Firewall {
                ipt,
                nft,
                texts,
                chains,
                context,
            },
            notes,
        )
    }

    /// The base chains at `hook` for a packet of `family`, in priority order; the
    /// bridge family's when `bridge`.
    pub(super) fn chains(&self, hook: Hook, family: Family, bridge: bool) -> Vec<&ChainAt> {
        let v4 = family == Family::Ipv4;
        self.chains
            .iter()
            .filter(|c| c.hook == hook && c.bridge == bridge && c.v4.is_none_or(|x| x == v4))
            .collect()
    }

    pub(super) fn has_bridge_family(&self) -> bool {
        self.chains.iter().any(|c| c.bridge)
    }

    pub(super) fn evaluate(&self, c: &ChainAt, p: &Packet, ctx: &Context) -> Outcome {
        match c.place {
            Place::Ipt { dump, table } => {
                netfilter::evaluate(&self.ipt.dumps[dump].tables[table], &c.chain, p, ctx)
            }
            Place::Nft { table } => {
                nft_eval::evaluate(&self.nft.tables[table], &c.chain, p, ctx, self.texts.get(table))
            }
        }
    }
}

#[allow(dead_code)]
fn unused(_: HashMap<(), ()>) {}
