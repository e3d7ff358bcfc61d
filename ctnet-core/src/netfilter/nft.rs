//! The typed model of native nftables rule sets, from `nft -j list ruleset`: tables,
//! base chains with their hook, priority and policy, sets and maps, and rules whose
//! expressions are typed matches and statements.
//!
//! As in the iptables model, what is not understood is kept, never dropped: an
//! expression the model does not know is [`Stmt::Unknown`] (or [`Expr::Unknown`],
//! [`Value::Unknown`]) and makes its rule a *may* match; so do the statements decided
//! at run time (`limit`, `numgen`, `queue`).
//!
//! ```
//! use ctnet_core::netfilter::nft::{parse_nft_json, Stmt, Verdict};
//!
//! let doc = r#"{"nftables": [
//!   {"table": {"family": "ip", "name": "docker-bridges", "handle": 1}},
//!   {"chain": {"family": "ip", "table": "docker-bridges", "name": "raw-PREROUTING",
//!     "handle": 1, "type": "filter", "hook": "prerouting", "prio": -300, "policy": "accept"}},
//!   {"rule": {"family": "ip", "table": "docker-bridges", "chain": "raw-PREROUTING",
//!     "handle": 2, "comment": "DROP DIRECT ACCESS", "expr": [
//!     {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
//!       "right": "192.0.2.2"}},
//!     {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}]}"#;
//! let rs = parse_nft_json(doc).unwrap();
//! let chain = &rs.tables[0].chains[0];
//! assert_eq!(chain.base.as_ref().unwrap().priority, Some(-300));
//! assert_eq!(chain.rules[0].verdict(), Some(&Verdict::Drop));
//! assert!(matches!(chain.rules[0].stmts[0], Stmt::Match { .. }));
//! assert_eq!(rs.unknowns().unknown, 0);
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::rule::keywords;
use super::{Counters, Unknowns};
use crate::error::{Error, Result};
use crate::model::{Firewall, NftTable};

keywords! {
    /// The address family of a table.
    Family {
        /// IPv4.
        Ip = "ip",
        /// IPv6.
        Ip6 = "ip6",
        /// IPv4 and IPv6.
        Inet = "inet",
        /// Bridged frames.
        Bridge = "bridge",
        /// Ingress/egress of one device.
        Netdev = "netdev",
        /// ARP.
        Arp = "arp",
    }
}

keywords! {
    /// A base chain's hook.
    Hook {
        /// Before routing.
        Prerouting = "prerouting",
        /// To this host.
        Input = "input",
        /// Routed or bridged through.
        Forward = "forward",
        /// Sent by this host.
        Output = "output",
        /// After routing.
        Postrouting = "postrouting",
        /// Device ingress (netdev, inet).
        Ingress = "ingress",
        /// Device egress (netdev).
        Egress = "egress",
    }
}

keywords! {
    /// A base chain's type.
    ChainType {
        /// Filtering.
        Filter = "filter",
        /// NAT (first packet of a connection only).
        Nat = "nat",
        /// Rerouting after a mark change (output).
        Route = "route",
    }
}

keywords! {
    /// The standard priority names and the family they are resolved in.
    PriorityName {
        /// `raw`.
        Raw = "raw",
        /// `mangle`.
        Mangle = "mangle",
        /// `dstnat`.
        Dstnat = "dstnat",
        /// `filter`.
        Filter = "filter",
        /// `security`.
        Security = "security",
        /// `srcnat`.
        Srcnat = "srcnat",
        /// `out` (bridge family).
        Out = "out",
    }
}

/// The number of a named priority in `family` (nft's own table: the bridge family has
/// its own values); `None` where the name is not defined for the family.
pub fn named_priority(family: Family, name: PriorityName) -> Option<i32> {
    if family == Family::Bridge {
        return match name {
            PriorityName::Dstnat => Some(-300),
            PriorityName::Filter => Some(-200),
            PriorityName::Out => Some(100),
            PriorityName::Srcnat => Some(300),
            _ => None,
        };
    }
    match name {
        PriorityName::Raw => Some(-300),
        PriorityName::Mangle => Some(-150),
        PriorityName::Dstnat => Some(-100),
        PriorityName::Filter => Some(0),
        PriorityName::Security => Some(50),
        PriorityName::Srcnat => Some(100),
        PriorityName::Out => None,
    }
}

/// A priority as `nft -j` may write it: a number, or a name with an offset
/// (`"dstnat"`, `"filter + 10"`, `"srcnat - 5"`). `None` when it cannot be resolved.
pub fn resolve_priority(family: Family, prio: &Json) -> Option<i32> {
    if let Some(n) = prio.as_i64() {
        return i32::try_from(n).ok();
    }
    let s = prio.as_str()?.trim();
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let (name, offset) = match s.find(['+', '-']) {
        Some(at) => {
            let off: i32 = s[at + 1..].trim().parse().ok()?;
            let off = if s[at..].starts_with('-') {
                off.checked_neg()?
            } else {
                off
            };
            (s[..at].trim(), off)
        }
        None => (s, 0),
    };
    named_priority(family, PriorityName::from_name(name)?)?.checked_add(offset)
}

/// A base chain's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// `accept`.
    Accept,
    /// `drop`.
    Drop,
    /// Anything else written there.
    Other(String),
}

/// What makes a chain a base chain: where the kernel calls it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseChain {
    /// `filter`, `nat`, `route`; `None` for a name the model does not know (`type`).
    pub kind: Option<ChainType>,
    /// The type as written.
    pub kind_name: String,
    /// The hook; `None` for a name the model does not know (`hook_name` has it).
    pub hook: Option<Hook>,
    /// The hook as written.
    pub hook_name: String,
    /// The priority as a number, named priorities resolved for the family; `None` when
    /// it could not be resolved (the engine cannot order this chain).
    pub priority: Option<i32>,
    /// The policy (`accept` when nft omits it).
    pub policy: Policy,
    /// The device of a netdev (or inet ingress) chain.
    pub device: Option<String>,
}

/// One chain: a base chain when `base` is set, a regular chain otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    /// Name.
    pub name: String,
    /// Kernel handle.
    pub handle: Option<u64>,
    /// Hook, priority and policy of a base chain.
    pub base: Option<BaseChain>,
    /// Rules in evaluation order.
    pub rules: Vec<Rule>,
}

/// Whether a named set holds keys only or maps them to data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetKind {
    /// `set`.
    Set,
    /// `map` (a verdict map when `data_type` is `verdict`).
    Map,
}

/// A named set or map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Set {
    /// Name (rules refer to it as `@name`).
    pub name: String,
    /// Set or map.
    pub kind: SetKind,
    /// Kernel handle.
    pub handle: Option<u64>,
    /// Key type, one entry per part of a concatenation (`ipv4_addr`, `inet_service`).
    pub key_type: Vec<String>,
    /// Data type of a map (`verdict`, `ipv4_addr`, ...).
    pub data_type: Option<String>,
    /// Flags (`interval`, `timeout`, `dynamic`, `constant`).
    pub flags: Vec<String>,
    /// Elements when the listing holds them; `None` when it did not list them (the
    /// set's contents are then unknown, not empty). Map elements are [`Value::Mapping`].
    pub elements: Option<Vec<Value>>,
}

impl Set {
    /// Whether elements are ranges or prefixes (`flags interval`).
    pub fn interval(&self) -> bool {
        self.flags.iter().any(|f| f == "interval")
    }
}

/// One table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Family; `None` for one the model does not know (`family_name` has it).
    pub family: Option<Family>,
    /// The family as written.
    pub family_name: String,
    /// Name.
    pub name: String,
    /// Kernel handle.
    pub handle: Option<u64>,
    /// Chains in the order listed.
    pub chains: Vec<Chain>,
    /// Named sets and maps.
    pub sets: Vec<Set>,
}

/// The native nftables rule set of a netns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ruleset {
    /// Native tables in the order listed.
    pub tables: Vec<Table>,
    /// `(family, name)` of tables left out because iptables-nft owns them (the iptables
    /// model covers those).
    pub iptables_nft: Vec<(String, String)>,
    /// What in the document could not be placed (a rule of a chain never listed, an
    /// object with no name): kept as text so nothing is lost silently.
    pub problems: Vec<String>,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Kernel handle (stable id, what `nft -a` and a trace print).
    pub handle: Option<u64>,
    /// 1-based position in its chain.
    pub position: u32,
    /// Comment.
    pub comment: Option<String>,
    /// Counter of the rule's first `counter` statement.
    pub counter: Option<Counters>,
    /// Statements in order: matches first, then actions.
    pub stmts: Vec<Stmt>,
}

keywords! {
    /// A relational operator.
    Op {
        /// Equal (or, with a set on the right, member of).
        Eq = "==",
        /// Not equal.
        Ne = "!=",
        /// Less than.
        Lt = "<",
        /// Greater than.
        Gt = ">",
        /// Less or equal.
        Le = "<=",
        /// Greater or equal.
        Ge = ">=",
        /// Flag test: any of the listed bits set (`ct state established,related`).
        In = "in",
    }
}

keywords! {
    /// A header field the model knows.
    Field {
        /// `ip saddr`.
        IpSaddr = "ip saddr",
        /// `ip daddr`.
        IpDaddr = "ip daddr",
        /// `ip protocol`.
        IpProtocol = "ip protocol",
        /// `ip6 saddr`.
        Ip6Saddr = "ip6 saddr",
        /// `ip6 daddr`.
        Ip6Daddr = "ip6 daddr",
        /// `ip6 nexthdr`.
        Ip6Nexthdr = "ip6 nexthdr",
        /// `tcp sport`.
        TcpSport = "tcp sport",
        /// `tcp dport`.
        TcpDport = "tcp dport",
        /// `udp sport`.
        UdpSport = "udp sport",
        /// `udp dport`.
        UdpDport = "udp dport",
        /// `th sport`: transport source port, whatever the protocol.
        ThSport = "th sport",
        /// `th dport`: transport destination port, whatever the protocol.
        ThDport = "th dport",
        /// `icmp type`.
        IcmpType = "icmp type",
        /// `icmpv6 type`.
        Icmpv6Type = "icmpv6 type",
        /// `ether saddr`.
        EtherSaddr = "ether saddr",
        /// `ether daddr`.
        EtherDaddr = "ether daddr",
        /// `ether type`.
        EtherType = "ether type",
        /// `vlan id`.
        VlanId = "vlan id",
    }
}

keywords! {
    /// A `meta` key the model knows.
    MetaKey {
        /// Input interface name.
        Iifname = "iifname",
        /// Output interface name.
        Oifname = "oifname",
        /// Input interface index (written as a name, resolved when the rule was added).
        Iif = "iif",
        /// Output interface index.
        Oif = "oif",
        /// Transport protocol.
        L4proto = "l4proto",
        /// Netfilter protocol family (`ipv4`, `ipv6`).
        Nfproto = "nfproto",
        /// Packet mark.
        Mark = "mark",
        /// Ethertype of the packet.
        Protocol = "protocol",
        /// Packet type (`host`, `broadcast`, `multicast`, `other`).
        Pkttype = "pkttype",
    }
}

keywords! {
    /// A `ct` key the model knows.
    CtKey {
        /// Connection state.
        State = "state",
        /// Direction of the packet.
        Direction = "direction",
        /// Status bits (`dnat`, `snat`, `confirmed`, ...).
        Status = "status",
        /// Connection mark.
        Mark = "mark",
        /// `ct original ip daddr`: the destination before DNAT.
        OriginalIpDaddr = "original ip daddr",
    }
}

keywords! {
    /// A bitwise operator in an expression.
    BinOp {
        /// And.
        And = "&",
        /// Or.
        Or = "|",
        /// Exclusive or.
        Xor = "^",
    }
}

/// A left-hand expression: what a match reads from the packet or its context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// A header field.
    Payload(Field),
    /// A `meta` key.
    Meta(MetaKey),
    /// A `ct` key.
    Ct(CtKey),
    /// A fib lookup: `flags` say what it is keyed by (`daddr`, `saddr`, `iif`, `oif`,
    /// `mark`), `result` what it returns (`type`, `oif`, `oifname`).
    Fib {
        /// Lookup keys.
        flags: Vec<String>,
        /// What the lookup returns.
        result: String,
    },
    /// Expressions concatenated (`ip daddr . meta l4proto . th dport`).
    Concat(Vec<Expr>),
    /// A bitwise operation (`meta mark & 0x4000`).
    Bin {
        /// Operator.
        op: BinOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Value>,
    },
    /// `numgen`: a number drawn per packet, decided at run time (makes a *may*).
    Numgen {
        /// `random` or `inc`.
        mode: String,
        /// Modulus.
        modulus: u64,
    },
    /// An expression the model does not know, kept as the JSON it came as.
    Unknown(Json),
}

/// A right-hand value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// A string as written (an address, interface name, symbolic constant).
    Str(String),
    /// A number.
    Num(u64),
    /// A boolean (`fib ... oif missing` is `false`).
    Bool(bool),
    /// An address prefix.
    Prefix {
        /// Network address.
        addr: String,
        /// Prefix length.
        len: u8,
    },
    /// An inclusive range.
    Range(Box<Value>, Box<Value>),
    /// An anonymous set `{ a, b }`.
    Set(Vec<Value>),
    /// A list of flags (`ct state` with `in`).
    List(Vec<Value>),
    /// A reference to a named set or map (`@name`, without the `@`).
    Named(String),
    /// One element of a concatenation `a . b . c`.
    Concat(Vec<Value>),
    /// A map element `key : data`.
    Mapping(Box<Value>, Box<Value>),
    /// A verdict, as the data of a verdict map.
    Verdict(Verdict),
    /// An expression on the right (`meta mark | 0x4000` in `mark set`).
    Expr(Box<Expr>),
    /// A value the model does not know, kept as the JSON it came as.
    Unknown(Json),
}

/// A verdict: what ends (or continues) evaluation of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Accept: ends this base chain (later base chains still run).
    Accept,
    /// Drop: ends the packet.
    Drop,
    /// Reject with an ICMP error or TCP reset (`kind` as written).
    Reject {
        /// `tcp reset`, `icmpx admin-prohibited`, ... when given.
        kind: Option<String>,
    },
    /// Call a chain and come back.
    Jump(String),
    /// Go to a chain without coming back.
    Goto(String),
    /// Back to the calling chain (or the policy).
    Return,
    /// The next rule.
    Continue,
    /// Hand to user space: decided at run time, a *may*.
    Queue,
}

keywords! {
    /// A NAT statement.
    NatKind {
        /// Destination NAT.
        Dnat = "dnat",
        /// Source NAT.
        Snat = "snat",
        /// Source NAT to the address of the output interface.
        Masquerade = "masquerade",
        /// Destination NAT to this host.
        Redirect = "redirect",
    }
}

/// A statement of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stmt {
    /// A match: `left op right`; the rule goes on only when it holds.
    Match {
        /// What is read.
        left: Expr,
        /// Operator.
        op: Op,
        /// What it is compared with.
        right: Value,
    },
    /// `counter` (its numbers are also in [`Rule::counter`]).
    Counter(Option<Counters>),
    /// `log`: no verdict.
    Log {
        /// Prefix.
        prefix: Option<String>,
    },
    /// `limit`: matches depending on the rate at run time (a *may*).
    Limit(Json),
    /// A verdict.
    Verdict(Verdict),
    /// `KEY vmap MAP`: the verdict is looked up; `map` is [`Value::Named`] or an
    /// anonymous [`Value::Set`] of [`Value::Mapping`]s.
    Vmap {
        /// The lookup key.
        key: Expr,
        /// The map.
        map: Value,
    },
    /// NAT.
    Nat {
        /// Which NAT.
        kind: NatKind,
        /// `ip`/`ip6` in an inet table.
        family: Option<String>,
        /// Address (or range, or map lookup).
        addr: Option<Value>,
        /// Port (or range).
        port: Option<Value>,
        /// Flags (`random`, `persistent`, `fully-random`).
        flags: Vec<String>,
    },
    /// `meta mark set`, `ct mark set` (any `KEY set VALUE`).
    Set {
        /// What is written.
        key: Expr,
        /// The value.
        value: Value,
    },
    /// `notrack`.
    Notrack,
    /// An iptables-nft compat expression (`xt match conntrack`): its parameters are not
    /// in the JSON, so it is unknown.
    Xt {
        /// `match` or `target`.
        kind: String,
        /// Extension name.
        name: String,
    },
    /// A statement the model does not know, kept as the JSON it came as.
    Unknown(Json),
}

impl Expr {
    fn unknowns(&self) -> usize {
        match self {
            Expr::Unknown(_) => 1,
            Expr::Concat(parts) => parts.iter().map(Expr::unknowns).sum(),
            Expr::Bin { left, right, .. } => left.unknowns() + right.unknowns(),
            _ => 0,
        }
    }

    fn runtime(&self) -> bool {
        match self {
            Expr::Numgen { .. } => true,
            Expr::Concat(parts) => parts.iter().any(Expr::runtime),
            Expr::Bin { left, .. } => left.runtime(),
            _ => false,
        }
    }
}

impl Value {
    fn unknowns(&self) -> usize {
        match self {
            Value::Unknown(_) => 1,
            Value::Range(a, b) | Value::Mapping(a, b) => a.unknowns() + b.unknowns(),
            Value::Set(v) | Value::List(v) | Value::Concat(v) => v.iter().map(Value::unknowns).sum(),
            Value::Expr(e) => e.unknowns(),
            _ => 0,
        }
    }
}

impl Stmt {
    /// Expressions and statements in it the model does not know.
    pub fn unknown_count(&self) -> usize {
        match self {
            Stmt::Unknown(_) | Stmt::Xt { .. } => 1,
            Stmt::Match { left, right, .. } => left.unknowns() + right.unknowns(),
            Stmt::Vmap { key, map } => key.unknowns() + map.unknowns(),
            Stmt::Set { key, value } => key.unknowns() + value.unknowns(),
            Stmt::Nat { addr, port, .. } => {
                addr.as_ref().map_or(0, Value::unknowns) + port.as_ref().map_or(0, Value::unknowns)
            }
            _ => 0,
        }
    }

    /// Whether it is decided at run time (`limit`, `queue`, a `numgen` key).
    pub fn is_runtime(&self) -> bool {
        match self {
            Stmt::Limit(_) | Stmt::Verdict(Verdict::Queue) => true,
            Stmt::Match { left, .. } | Stmt::Vmap { key: left, .. } => left.runtime(),
            _ => false,
        }
    }
}

impl Rule {
    /// Unknown expressions and statements in the rule.
    pub fn unknown_count(&self) -> usize {
        self.stmts.iter().map(Stmt::unknown_count).sum()
    }

    /// Whether the rule can only *may* match: it holds an unknown or a run-time part.
    pub fn is_may(&self) -> bool {
        self.stmts.iter().any(|s| s.is_runtime() || s.unknown_count() > 0)
    }

    /// The rule's verdict statement, when it has one.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.stmts.iter().find_map(|s| match s {
            Stmt::Verdict(v) => Some(v),
            _ => None,
        })
    }
}

impl Table {
    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// The set or map called `name` (without `@`).
    pub fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// What in this table a static evaluator cannot decide.
    pub fn unknowns(&self) -> Unknowns {
        let mut u = Unknowns::default();
        for r in self.chains.iter().flat_map(|c| &c.rules) {
            u.rules += 1;
            u.unknown += r.unknown_count();
            u.may_rules += usize::from(r.is_may());
        }
        u
    }
}

impl Ruleset {
    /// The table of `family` called `name`.
    pub fn table(&self, family: Family, name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.family == Some(family) && t.name == name)
    }

    /// What in every table a static evaluator cannot decide.
    pub fn unknowns(&self) -> Unknowns {
        let mut u = Unknowns::default();
        for t in &self.tables {
            let o = t.unknowns();
            u.rules += o.rules;
            u.unknown += o.unknown;
            u.may_rules += o.may_rules;
        }
        u
    }

    /// The typed form of the native tables a snapshot holds.
    ///
    /// From the kernel's `nft -j` document when the snapshot kept it (`nft_json`):
    /// every expression and set typed. Snapshots written before that keep each rule
    /// only as short text, so there each rule is one [`Stmt::Unknown`] holding that
    /// text (a *may*), followed by the verdict the snapshot recorded; tables, base
    /// chains, handles, positions, comments and counters are exact, sets absent.
    pub fn from_firewall(fw: &Firewall) -> Ruleset {
        // The kernel's own document when the snapshot kept it: every expression typed.
        // Only the native tables the snapshot lists are typed: the iptables-nft tables
        // in the same document (thousands of rules on a busy host) are skipped unparsed.
        let native = |family: &str, name: &str| fw.nft.iter().any(|t| t.family == family && t.name == name);
        if let Some(rs) = fw
            .nft_json
            .as_deref()
            .and_then(|t| parse_nft_json_where(t, native).ok())
        {
            return rs;
        }
        // Older snapshots hold each rule as short text only: exact tables, chains and
        // verdicts, each rule's matches a *may*.
        let mut rs = Ruleset::default();
        for t in &fw.nft {
            rs.tables.push(table_from_snapshot(t, &mut rs.problems));
        }
        rs
    }
}

fn policy(p: Option<&str>) -> Policy {
    match p {
        None | Some("accept") => Policy::Accept,
        Some("drop") => Policy::Drop,
        Some(other) => Policy::Other(other.to_string()),
    }
}

fn snapshot_verdict(v: &str) -> Option<Stmt> {
    let (word, arg) = v.split_once(' ').unwrap_or((v, ""));
    let verdict = match word {
        "accept" => Verdict::Accept,
        "drop" => Verdict::Drop,
        "reject" => Verdict::Reject { kind: None },
        "return" => Verdict::Return,
        "continue" => Verdict::Continue,
        "jump" => Verdict::Jump(arg.to_string()),
        "goto" => Verdict::Goto(arg.to_string()),
        other => {
            return NatKind::from_name(other).map(|kind| Stmt::Nat {
                kind,
                family: None,
                addr: None,
                port: None,
                flags: Vec::new(),
            });
        }
    };
    Some(Stmt::Verdict(verdict))
}

fn table_from_snapshot(t: &NftTable, problems: &mut Vec<String>) -> Table {
    let family = Family::from_name(&t.family);
    let mut chains: Vec<Chain> = t
        .chains
        .iter()
        .map(|c| Chain {
            name: c.name.clone(),
            handle: None,
            base: c.hook.as_ref().map(|hook| BaseChain {
                kind: c.kind.as_deref().and_then(ChainType::from_name),
                kind_name: c.kind.clone().unwrap_or_default(),
                hook: Hook::from_name(hook),
                hook_name: hook.clone(),
                priority: c.priority.and_then(|p| i32::try_from(p).ok()),
                policy: policy(c.policy.as_deref()),
                device: None,
            }),
            rules: Vec::new(),
        })
        .collect();
    let index: HashMap<String, usize> = chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    for r in &t.rules {
        let Some(&at) = index.get(&r.chain) else {
            problems.push(format!(
                "rule {} of {} {} is in chain {:?}, which is not listed",
                r.handle, t.family, t.name, r.chain
            ));
            continue;
        };
        let counter = r
            .packets
            .zip(r.bytes)
            .map(|(packets, bytes)| Counters { packets, bytes });
        let mut stmts = vec![Stmt::Unknown(Json::String(r.text.clone()))];
        stmts.extend(r.verdict.as_deref().and_then(snapshot_verdict));
        chains[at].rules.push(Rule {
            handle: Some(r.handle),
            position: r.position,
            comment: r.comment.clone(),
            counter,
            stmts,
        });
    }
    Table {
        family,
        family_name: t.family.clone(),
        name: t.name.clone(),
        handle: None,
        chains,
        sets: Vec::new(),
    }
}

/// Built-in chain names of iptables-nft tables.
const IPTABLES_CHAINS: &[&str] = &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
/// Table names iptables-nft (and ebtables-nft, arptables-nft) creates.
const IPTABLES_TABLES: &[&str] = &["filter", "nat", "mangle", "raw", "security", "broute"];

/// Whether a table looks like one iptables-nft owns: an iptables table name in an
/// ip/ip6/arp/bridge family, whose base chains all carry iptables' built-in names.
/// nft's JSON does not mark these tables, so this is the same test by name that
/// `nft list ruleset` uses for its "managed by iptables-nft" warning, plus the chain
/// names.
pub fn is_iptables_nft_table(family: &str, name: &str, base_chains: &[&str]) -> bool {
    matches!(family, "ip" | "ip6" | "arp" | "bridge")
        && IPTABLES_TABLES.contains(&name)
        && base_chains.iter().all(|c| IPTABLES_CHAINS.contains(c))
}

fn str_of(v: &Json, key: &str) -> Option<String> {
    v.get(key).and_then(Json::as_str).map(str::to_string)
}

fn strings(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::String(s)) => vec![s.clone()],
        Some(Json::Array(a)) => a.iter().filter_map(Json::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// Parse one left-hand expression.
pub fn parse_expr(v: &Json) -> Expr {
    let Some((kind, body)) = v
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return Expr::Unknown(v.clone());
    };
    let known = match kind.as_str() {
        "payload" => match (str_of(body, "protocol"), str_of(body, "field")) {
            (Some(p), Some(f)) => Field::from_name(&format!("{p} {f}")).map(Expr::Payload),
            _ => None,
        },
        "meta" => str_of(body, "key")
            .and_then(|k| MetaKey::from_name(&k))
            .map(Expr::Meta),
        "ct" => {
            let key = str_of(body, "key").unwrap_or_default();
            let full = match str_of(body, "dir") {
                Some(dir) => format!("{dir} {key}"),
                None => key,
            };
            CtKey::from_name(&full).map(Expr::Ct)
        }
        "fib" => str_of(body, "result").map(|result| Expr::Fib {
            flags: strings(body.get("flags")),
            result,
        }),
        "concat" => body
            .as_array()
            .map(|parts| Expr::Concat(parts.iter().map(parse_expr).collect())),
        "numgen" => match (str_of(body, "mode"), body.get("mod").and_then(Json::as_u64)) {
            (Some(mode), Some(modulus)) => Some(Expr::Numgen { mode, modulus }),
            _ => None,
        },
        op => match (BinOp::from_name(op), body.as_array().map(Vec::as_slice)) {
            (Some(op), Some([left, right])) => Some(Expr::Bin {
                op,
                left: Box::new(parse_expr(left)),
                right: Box::new(parse_value(right)),
            }),
            _ => None,
        },
    };
    known.unwrap_or_else(|| Expr::Unknown(v.clone()))
}

fn verdict_of(kind: &str, body: &Json) -> Option<Verdict> {
    let target = || str_of(body, "target");
    Some(match kind {
        "accept" => Verdict::Accept,
        "drop" => Verdict::Drop,
        "return" => Verdict::Return,
        "continue" => Verdict::Continue,
        "queue" => Verdict::Queue,
        "reject" => Verdict::Reject {
            kind: match (str_of(body, "type"), str_of(body, "expr")) {
                (Some(t), Some(e)) => Some(format!("{t} {e}")),
                (t, e) => t.or(e),
            },
        },
        "jump" => Verdict::Jump(target()?),
        "goto" => Verdict::Goto(target()?),
        _ => return None,
    })
}

/// Parse one right-hand value.
pub fn parse_value(v: &Json) -> Value {
    match v {
        Json::String(s) => match s.strip_prefix('@') {
            Some(name) => Value::Named(name.to_string()),
            None => Value::Str(s.clone()),
        },
        Json::Number(n) => n.as_u64().map_or_else(|| Value::Unknown(v.clone()), Value::Num),
        Json::Bool(b) => Value::Bool(*b),
        // A bare array: a flag list (`ct state in [...]`), or a map element `[key, data]`
        // inside an anonymous map (handled by the caller).
        Json::Array(a) => Value::List(a.iter().map(parse_value).collect()),
        Json::Object(o) if o.len() == 1 => {
            let Some((kind, body)) = o.iter().next() else {
                return Value::Unknown(v.clone());
            };
            let known = match kind.as_str() {
                "prefix" => match (
                    body.get("addr").and_then(Json::as_str),
                    body.get("len")
                        .and_then(Json::as_u64)
                        .and_then(|l| u8::try_from(l).ok()),
                ) {
                    (Some(addr), Some(len)) => Some(Value::Prefix {
                        addr: addr.to_string(),
                        len,
                    }),
                    _ => None,
                },
                "range" => match body.as_array().map(Vec::as_slice) {
                    Some([a, b]) => Some(Value::Range(Box::new(parse_value(a)), Box::new(parse_value(b)))),
                    _ => None,
                },
                "set" => Some(Value::Set(match body {
                    Json::Array(items) => items.iter().map(element).collect(),
                    one => vec![element(one)],
                })),
                "concat" => body
                    .as_array()
                    .map(|parts| Value::Concat(parts.iter().map(parse_value).collect())),
                "elem" => body.get("val").map(parse_value),
                "payload" | "meta" | "ct" | "fib" | "numgen" | "&" | "|" | "^" => {
                    Some(Value::Expr(Box::new(parse_expr(v))))
                }
                other => verdict_of(other, body).map(Value::Verdict),
            };
            known.unwrap_or_else(|| Value::Unknown(v.clone()))
        }
        _ => Value::Unknown(v.clone()),
    }
}

/// A set or map element: `[key, data]` is a mapping, anything else a key.
fn element(v: &Json) -> Value {
    match v.as_array().map(Vec::as_slice) {
        Some([key, data]) => Value::Mapping(Box::new(parse_value(key)), Box::new(parse_value(data))),
        _ => parse_value(v),
    }
}

/// Parse one statement of a rule's `expr` array.
pub fn parse_stmt(v: &Json) -> Stmt {
    let Some((kind, body)) = v
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return Stmt::Unknown(v.clone());
    };
    let known = match kind.as_str() {
        "match" => match (
            body.get("left"),
            body.get("op")
                .and_then(Json::as_str)
                .map_or(Some(Op::Eq), Op::from_name),
            body.get("right"),
        ) {
            (Some(left), Some(op), Some(right)) => Some(Stmt::Match {
                left: parse_expr(left),
                op,
                right: parse_value(right),
            }),
            _ => None,
        },
        "counter" => match body {
            Json::Null => Some(Stmt::Counter(None)),
            _ => match (
                body.get("packets").and_then(Json::as_u64),
                body.get("bytes").and_then(Json::as_u64),
            ) {
                (Some(packets), Some(bytes)) => Some(Stmt::Counter(Some(Counters { packets, bytes }))),
                // A named counter (`"counter": "name"`): its numbers live elsewhere.
                _ if body.is_string() => Some(Stmt::Counter(None)),
                _ => None,
            },
        },
        "log" => Some(Stmt::Log {
            prefix: str_of(body, "prefix"),
        }),
        "limit" => Some(Stmt::Limit(body.clone())),
        "vmap" => match (body.get("key"), body.get("data")) {
            (Some(key), Some(data)) => Some(Stmt::Vmap {
                key: parse_expr(key),
                map: parse_value(data),
            }),
            _ => None,
        },
        "mangle" => match (body.get("key"), body.get("value")) {
            (Some(key), Some(value)) => Some(Stmt::Set {
                key: parse_expr(key),
                value: parse_value(value),
            }),
            _ => None,
        },
        "notrack" => Some(Stmt::Notrack),
        "xt" => Some(Stmt::Xt {
            kind: str_of(body, "type").unwrap_or_default(),
            name: str_of(body, "name").unwrap_or_default(),
        }),
        other => match NatKind::from_name(other) {
            Some(kind) => match body {
                Json::Null => Some(Stmt::Nat {
                    kind,
                    family: None,
                    addr: None,
                    port: None,
                    flags: Vec::new(),
                }),
                Json::Object(_) => Some(Stmt::Nat {
                    kind,
                    family: str_of(body, "family"),
                    addr: body.get("addr").map(parse_value),
                    port: body.get("port").map(parse_value),
                    flags: strings(body.get("flags")),
                }),
                _ => None,
            },
            None => verdict_of(other, body).map(Stmt::Verdict),
        },
    };
    known.unwrap_or_else(|| Stmt::Unknown(v.clone()))
}

fn parse_set(v: &Json, kind: SetKind) -> Option<Set> {
    Some(Set {
        name: str_of(v, "name")?,
        kind,
        handle: v.get("handle").and_then(Json::as_u64),
        key_type: strings(v.get("type")),
        data_type: str_of(v, "map"),
        flags: strings(v.get("flags")),
        elements: v.get("elem").map(|e| match e {
            Json::Array(items) => items.iter().map(element).collect(),
            one => vec![element(one)],
        }),
    })
}

fn parse_chain(c: &Json, family: Option<Family>) -> Option<Chain> {
    let name = str_of(c, "name")?;
    let base = str_of(c, "hook").map(|hook_name| BaseChain {
        kind: c
            .get("type")
            .and_then(Json::as_str)
            .and_then(ChainType::from_name),
        kind_name: str_of(c, "type").unwrap_or_default(),
        hook: Hook::from_name(&hook_name),
        hook_name,
        priority: match (family, c.get("prio")) {
            (Some(f), Some(p)) => resolve_priority(f, p),
            (None, Some(p)) => p.as_i64().and_then(|n| i32::try_from(n).ok()),
            _ => None,
        },
        policy: policy(c.get("policy").and_then(Json::as_str)),
        device: str_of(c, "dev"),
    });
    Some(Chain {
        name,
        handle: c.get("handle").and_then(Json::as_u64),
        base,
        rules: Vec::new(),
    })
}

/// Parse a whole `nft -j list ruleset` document into native tables. Tables that
/// iptables-nft owns ([`is_iptables_nft_table`]) are left out and named in
/// [`Ruleset::iptables_nft`]. An object that cannot be placed is named in
/// [`Ruleset::problems`]; only a document that is not an nft JSON listing is an error.
pub fn parse_nft_json(text: &str) -> Result<Ruleset> {
    let doc: Json =
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("nft -j output is not JSON: {e}")))?;
    let items = doc
        .get("nftables")
        .and_then(Json::as_array)
        .ok_or_else(|| Error::Invalid("nft -j output has no \"nftables\" array".into()))?;
    from_items(items)
}

/// [`parse_nft_json`] of the tables `keep(family, name)` accepts; the others' chains,
/// sets and rules are skipped without being parsed.
pub fn parse_nft_json_where(text: &str, keep: impl Fn(&str, &str) -> bool) -> Result<Ruleset> {
    #[derive(Deserialize)]
    struct Doc<'a> {
        #[serde(borrow)]
        nftables: Vec<&'a serde_json::value::RawValue>,
    }
    #[derive(Deserialize)]
    struct Names {
        family: Option<String>,
        name: Option<String>,
        table: Option<String>,
    }
    #[derive(Deserialize)]
    struct Head {
        table: Option<Names>,
        chain: Option<Names>,
        set: Option<Names>,
        map: Option<Names>,
        rule: Option<Names>,
    }
    let doc: Doc =
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("nft -j output is not JSON: {e}")))?;
    let mut items = Vec::new();
    for raw in doc.nftables {
        let wanted = match serde_json::from_str::<Head>(raw.get()) {
            Ok(Head { table: Some(n), .. }) => {
                keep(n.family.as_deref().unwrap_or(""), n.name.as_deref().unwrap_or(""))
            }
            Ok(
                Head { chain: Some(n), .. }
                | Head { set: Some(n), .. }
                | Head { map: Some(n), .. }
                | Head { rule: Some(n), .. },
            ) => keep(
                n.family.as_deref().unwrap_or(""),
                n.table.as_deref().unwrap_or(""),
            ),
            // Anything else (metainfo, an object the model does not know) is kept for
            // `from_items` to judge.
            _ => true,
        };
        if wanted {
            items.push(
                serde_json::from_str::<Json>(raw.get())
                    .map_err(|e| Error::Invalid(format!("nft -j output is not JSON: {e}")))?,
            );
        }
    }
    from_items(&items)
}

type Key = (String, String);

fn key_of(v: &Json, name: &str) -> Option<Key> {
    Some((str_of(v, "family")?, str_of(v, name)?))
}

fn from_items(items: &[Json]) -> Result<Ruleset> {
    let mut rs = Ruleset::default();
    let mut tables: HashMap<Key, usize> = HashMap::new();
    let mut chains: HashMap<(usize, String), usize> = HashMap::new();
    // Base chain names per table, to tell iptables-nft's tables at the end.
    let mut base_names: HashMap<usize, Vec<String>> = HashMap::new();
    for item in items {
        let Some((kind, body)) = item.as_object().and_then(|o| o.iter().next()) else {
            rs.problems.push(format!("not an object: {item}"));
            continue;
        };
        match kind.as_str() {
            "metainfo" => {}
            "table" => {
                let Some(key) = key_of(body, "name") else {
                    rs.problems.push(format!("table without family or name: {body}"));
                    continue;
                };
                if tables.contains_key(&key) {
                    continue;
                }
                tables.insert(key.clone(), rs.tables.len());
                rs.tables.push(Table {
                    family: Family::from_name(&key.0),
                    family_name: key.0,
                    name: key.1,
                    handle: body.get("handle").and_then(Json::as_u64),
                    chains: Vec::new(),
                    sets: Vec::new(),
                });
            }
            "chain" | "set" | "map" | "rule" => {
                let Some(&t) = key_of(body, "table").and_then(|k| tables.get(&k)) else {
                    rs.problems
                        .push(format!("{kind} of a table never listed: {body}"));
                    continue;
                };
                let table = &mut rs.tables[t];
                match kind.as_str() {
                    "chain" => match parse_chain(body, table.family) {
                        Some(c) => {
                            if c.base.is_some() {
                                base_names.entry(t).or_default().push(c.name.clone());
                            }
                            chains.insert((t, c.name.clone()), table.chains.len());
                            table.chains.push(c);
                        }
                        None => rs.problems.push(format!("chain without a name: {body}")),
                    },
                    "set" | "map" => {
                        let k = if kind == "set" { SetKind::Set } else { SetKind::Map };
                        match parse_set(body, k) {
                            Some(s) => table.sets.push(s),
                            None => rs.problems.push(format!("{kind} without a name: {body}")),
                        }
                    }
                    _ => {
                        let chain = str_of(body, "chain").unwrap_or_default();
                        let Some(&c) = chains.get(&(t, chain)) else {
                            rs.problems.push(format!("rule of a chain never listed: {body}"));
                            continue;
                        };
                        let stmts: Vec<Stmt> = match body.get("expr") {
                            Some(Json::Array(e)) => e.iter().map(parse_stmt).collect(),
                            Some(other) => vec![Stmt::Unknown(other.clone())],
                            None => Vec::new(),
                        };
                        let counter = stmts.iter().find_map(|s| match s {
                            Stmt::Counter(c) => *c,
                            _ => None,
                        });
                        let chain = &mut table.chains[c];
                        let position = u32::try_from(chain.rules.len() + 1).unwrap_or(u32::MAX);
                        chain.rules.push(Rule {
                            handle: body.get("handle").and_then(Json::as_u64),
                            position,
                            comment: str_of(body, "comment"),
                            counter,
                            stmts,
                        });
                    }
                }
            }
            // Named counters, quotas, flowtables, ...: not part of the rule model.
            _ => {}
        }
    }
    let mut kept = Vec::with_capacity(rs.tables.len());
    for (i, t) in std::mem::take(&mut rs.tables).into_iter().enumerate() {
        let names: Vec<&str> = base_names
            .get(&i)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if is_iptables_nft_table(&t.family_name, &t.name, &names) {
            rs.iptables_nft.push((t.family_name, t.name));
        } else {
            kept.push(t);
        }
    }
    rs.tables = kept;
    Ok(rs)
}

#[cfg(test)]
mod tests;
