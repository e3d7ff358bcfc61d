//! The typed netfilter model: `iptables-save -c` rules parsed into matches and
//! targets, and a table/chain view of a snapshot's firewall built from the raw text
//! the snapshot keeps (the snapshot format is unchanged; the typed form is derived).
//!
//! What the model does not know is kept, never dropped: an unknown module is
//! [`Match::Unknown`] and makes its rule a *may* match; so do the modules decided at
//! run time ([`Match::Runtime`]: `owner`, `limit`, `statistic`, `recent`, ...).
//! [`parse_rule`] and the [`Display`](std::fmt::Display) of [`Rule`] round-trip every
//! line iptables-save writes.
//!
//! ```
//! use ctnet_core::netfilter::{parse_rule, Match, Target};
//!
//! let line = "[3:180] -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.3:80";
//! let rule = parse_rule(line).unwrap();
//! assert!(matches!(rule.matches[0], Match::InInterface(ref i) if i.negated));
//! assert!(matches!(rule.target, Target::Dnat { .. }));
//! assert_eq!(rule.to_string(), line);
//! ```

pub mod eval;
pub mod nft;
pub mod nft_eval;
mod parse;
mod print;
mod rule;

use serde::{Deserialize, Serialize};

pub use eval::{
    ConnState, Context, Decider, Hit, NatKind, Outcome, Packet, Physdev, Proto, RuleRef, Step, Verdict,
    evaluate,
};
pub use parse::parse_rule;
pub use print::quote;
pub use rule::*;

use crate::model::{Firewall, IptTable};

/// The iptables backend a dump was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// iptables-nft: x_tables rules stored in nf_tables.
    Nft,
    /// iptables-legacy: x_tables.
    Legacy,
    /// Something else the snapshot named.
    Other(String),
}

/// The address family of a dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// `iptables`.
    Ipv4,
    /// `ip6tables`.
    Ipv6,
    /// Something else the snapshot named.
    Other(String),
}

/// A built-in chain's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// `ACCEPT`.
    Accept,
    /// `DROP`.
    Drop,
    /// Anything else written there.
    Other(String),
}

/// A rule in its chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainRule {
    /// 1-based position (the rule number `iptables -L --line-numbers` shows).
    pub position: u32,
    /// The typed rule.
    pub rule: Rule,
    /// Why the line did not parse, when it did not; the rule is then one unknown match
    /// holding the text, so it counts as a *may*.
    pub error: Option<String>,
}

/// A chain: policy, counters, rules in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    /// Name.
    pub name: String,
    /// Policy of a built-in chain; `None` for a user chain.
    pub policy: Option<Policy>,
    /// Policy counters.
    pub counters: Counters,
    /// Rules in evaluation order.
    pub rules: Vec<ChainRule>,
}

/// One table (`filter`, `nat`, `mangle`, `raw`, `security`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Name.
    pub name: String,
    /// Chains in the order declared.
    pub chains: Vec<Chain>,
}

/// One backend and family's tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dump {
    /// Backend.
    pub backend: Backend,
    /// Family.
    pub family: Family,
    /// Tables in the order printed.
    pub tables: Vec<Table>,
}

/// The typed iptables state of a netns, every backend and family.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ruleset {
    /// One per backend and family that had tables.
    pub dumps: Vec<Dump>,
}

/// Counts of what a static evaluator cannot decide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unknowns {
    /// Rules.
    pub rules: usize,
    /// Unknown matches and targets ([`Rule::unknown_count`]).
    pub unknown: usize,
    /// Rules that can only *may* match (unknown or run-time matches).
    pub may_rules: usize,
}

impl Unknowns {
    fn add(&mut self, other: Unknowns) {
        self.rules += other.rules;
        self.unknown += other.unknown;
        self.may_rules += other.may_rules;
    }
}

fn policy(p: &str) -> Policy {
    match p {
        "ACCEPT" => Policy::Accept,
        "DROP" => Policy::Drop,
        other => Policy::Other(other.to_string()),
    }
}

impl Table {
    /// The typed form of a table the snapshot stores as text. A jump to a name that is
    /// no chain of this table is an extension target the model does not know, so it
    /// becomes [`Target::Unknown`].
    pub fn from_ipt(t: &IptTable) -> Table {
        let mut chains: Vec<Chain> = t
            .chains
            .iter()
            .map(|c| Chain {
                name: c.name.clone(),
                policy: c.policy.as_deref().map(policy),
                counters: Counters {
                    packets: c.packets,
                    bytes: c.bytes,
                },
                rules: Vec::new(),
            })
            .collect();
        let mut index: std::collections::HashMap<String, usize> = chains
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        for r in &t.rules {
            let counters = Some(Counters {
                packets: r.packets,
                bytes: r.bytes,
            });
            let (rule, error) = match parse_rule(&format!("-A {} {}", r.chain, r.spec)) {
                Ok(mut rule) => {
                    rule.counters = counters;
                    (rule, None)
                }
                Err(e) => (
                    Rule {
                        chain: r.chain.clone(),
                        counters,
                        matches: vec![Match::Unknown {
                            module: String::new(),
                            args: vec![r.spec.clone()],
                        }],
                        target: Target::Unknown {
                            name: String::new(),
                            args: Vec::new(),
                        },
                    },
                    Some(e.to_string()),
                ),
            };
            let at = *index.entry(r.chain.clone()).or_insert_with(|| {
                chains.push(Chain {
                    name: r.chain.clone(),
                    policy: None,
                    counters: Counters { packets: 0, bytes: 0 },
                    rules: Vec::new(),
                });
                chains.len() - 1
            });
            chains[at].rules.push(ChainRule {
                position: r.position,
                rule,
                error,
            });
        }
        let names: std::collections::HashSet<String> = chains.iter().map(|c| c.name.clone()).collect();
        for c in &mut chains {
            for r in &mut c.rules {
                let unknown = match &r.rule.target {
                    Target::Jump(name) if !names.contains(name) => Some(name.clone()),
                    _ => None,
                };
                if let Some(name) = unknown {
                    r.rule.target = Target::Unknown {
                        name,
                        args: Vec::new(),
                    };
                }
            }
        }
        Table {
            name: t.name.clone(),
            chains,
        }
    }

    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// What in this table a static evaluator cannot decide.
    pub fn unknowns(&self) -> Unknowns {
        let mut u = Unknowns::default();
        for r in self.chains.iter().flat_map(|c| &c.rules) {
            u.rules += 1;
            u.unknown += r.rule.unknown_count();
            u.may_rules += usize::from(r.rule.is_may() || r.rule.unknown_count() > 0);
        }
        u
    }
}

/// Parse a whole `iptables-save [-c]` text into typed tables.
pub fn parse_save(text: &str) -> Vec<Table> {
    crate::source::firewall::parse_iptables_save(text)
        .iter()
        .map(Table::from_ipt)
        .collect()
}

impl Ruleset {
    /// The typed form of the iptables dumps a snapshot holds.
    pub fn from_firewall(fw: &Firewall) -> Ruleset {
        let dumps = fw
            .iptables
            .iter()
            .map(|d| Dump {
                backend: match d.backend.as_str() {
                    "nft" => Backend::Nft,
                    "legacy" => Backend::Legacy,
                    other => Backend::Other(other.to_string()),
                },
                family: match d.family.as_str() {
                    "ip" => Family::Ipv4,
                    "ip6" => Family::Ipv6,
                    other => Family::Other(other.to_string()),
                },
                tables: d.tables.iter().map(Table::from_ipt).collect(),
            })
            .collect();
        Ruleset { dumps }
    }

    /// What in every dump a static evaluator cannot decide.
    pub fn unknowns(&self) -> Unknowns {
        let mut u = Unknowns::default();
        for t in self.dumps.iter().flat_map(|d| &d.tables) {
            u.add(t.unknowns());
        }
        u
    }
}

#[cfg(test)]
mod tests;
