//! Evaluating one packet through a native nftables chain the way `nft_do_chain` does:
//! rules in order, statements in order (a failed match ends the rule), `jump` that
//! returns, `goto` that does not, `return`, verdict maps, NAT statements that end the
//! chain, and the base chain's policy at the bottom. The result has the same shape as
//! the iptables evaluator's ([`Outcome`]), so the flow engine treats both alike.
//!
//! What the packet and the [`Context`] cannot decide (an unknown expression, `limit`,
//! `numgen`, a named set listed without its elements, an Ethernet field) makes the
//! rule a *may*: both branches are explored and the outcome is [`Verdict::May`] when
//! they differ.
//!
//! ```
//! use ctnet_core::netfilter::nft::parse_nft_json;
//! use ctnet_core::netfilter::nft_eval::evaluate;
//! use ctnet_core::netfilter::{Context, Packet, Verdict};
//!
//! let doc = r#"{"nftables": [
//!   {"table": {"family": "inet", "name": "fw", "handle": 1}},
//!   {"chain": {"family": "inet", "table": "fw", "name": "fwd", "handle": 1,
//!     "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
//!   {"rule": {"family": "inet", "table": "fw", "chain": "fwd", "handle": 2, "expr": [
//!     {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
//!       "right": {"set": [80, 443]}}}, {"accept": null}]}}]}"#;
//! let rs = parse_nft_json(doc).unwrap();
//! let p = Packet::tcp("10.0.0.2".parse().unwrap(), 40000, "10.0.1.2".parse().unwrap(), 443);
//! assert_eq!(evaluate(&rs.tables[0], "fwd", &p, &Context::default(), None).verdict, Verdict::Accept);
//! let p = Packet::tcp("10.0.0.2".parse().unwrap(), 40000, "10.0.1.2".parse().unwrap(), 22);
//! assert_eq!(evaluate(&rs.tables[0], "fwd", &p, &Context::default(), None).verdict, Verdict::Drop);
//! ```

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::eval::{
    ConnState, Context, Decider, Hit, MAX_JUMP_DEPTH, NatKind, Outcome, Packet, Proto, RuleRef, Step, Verdict,
};
use super::nft::{
    BinOp, Chain, CtKey, Expr, Field, MetaKey, NatKind as NftNat, Op, Policy, Rule, Stmt, Table, Value,
    Verdict as NftVerdict,
};
use super::{CtDir, NatRange, PortRange};

/// How many forks over *may* rules one evaluation explores.
const MAX_FORKS: usize = 256;

/// The rule texts of a table by handle (from the snapshot's `nft list` text), to quote
/// the deciding rule as nft prints it.
pub type RuleTexts = HashMap<u64, String>;

/// Evaluate `packet` through `chain` of the native table `table`. `texts` gives the
/// rules' text by handle when known.
pub fn evaluate(
    table: &Table,
    chain: &str,
    packet: &Packet,
    ctx: &Context,
    texts: Option<&RuleTexts>,
) -> Outcome {
    let index: HashMap<&str, usize> = table
        .chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let Some(&start) = index.get(chain) else {
        return error(format!(
            "no chain {chain} in table {} {}",
            table.family_name, table.name
        ));
    };
    if let Err(m) = check_graph(table, &index, start) {
        return error(m);
    }
    let ev = Eval {
        table,
        index,
        packet,
        ctx,
        texts,
        start,
    };
    let mut forks = 0;
    ev.run(
        State {
            chain: start,
            pos: 0,
            stack: Vec::new(),
            mark: Some(packet.mark),
            ctmark: Some(packet.ctmark),
            notrack: false,
            trace: Vec::new(),
        },
        &mut forks,
    )
}

fn error(message: String) -> Outcome {
    Outcome {
        verdict: Verdict::Error { message },
        decided_by: None,
        trace: Vec::new(),
        mark: None,
        ctmark: None,
        notrack: false,
    }
}

fn targets(c: &Chain) -> impl Iterator<Item = &str> {
    c.rules.iter().flat_map(|r| {
        r.stmts.iter().flat_map(|s| {
            let mut v: Vec<&str> = Vec::new();
            match s {
                Stmt::Verdict(NftVerdict::Jump(t) | NftVerdict::Goto(t)) => v.push(t),
                Stmt::Vmap {
                    map: Value::Set(items),
                    ..
                } => {
                    for i in items {
                        if let Value::Mapping(_, d) = i {
                            if let Value::Verdict(NftVerdict::Jump(t) | NftVerdict::Goto(t)) = d.as_ref() {
                                v.push(t);
                            }
                        }
                    }
                }
                _ => {}
            }
            v
        })
    })
}

/// Refuse a loop of jumps reachable from `start` (the kernel refuses it at load time)
/// and a path deeper than [`MAX_JUMP_DEPTH`].
fn check_graph(table: &Table, index: &HashMap<&str, usize>, start: usize) -> Result<(), String> {
    fn visit(
        table: &Table,
        index: &HashMap<&str, usize>,
        c: usize,
        path: &mut Vec<usize>,
        done: &mut Vec<bool>,
    ) -> Result<(), String> {
        if path.len() > MAX_JUMP_DEPTH {
            return Err(format!("jumps nested deeper than {} chains", MAX_JUMP_DEPTH));
        }
        if path.contains(&c) {
            let names: Vec<&str> = path
                .iter()
                .skip_while(|&&p| p != c)
                .chain([&c])
                .map(|&i| table.chains[i].name.as_str())
                .collect();
            return Err(format!("loop of jumps: {}", names.join(" -> ")));
        }
        if done[c] {
            return Ok(());
        }
        path.push(c);
        for t in targets(&table.chains[c]) {
            if let Some(&to) = index.get(t) {
                visit(table, index, to, path, done)?;
            }
        }
        path.pop();
        done[c] = true;
        Ok(())
    }
    let mut done = vec![false; table.chains.len()];
    visit(table, index, start, &mut Vec::new(), &mut done)
}

#[derive(Clone)]
struct State {
    chain: usize,
    pos: usize,
    stack: Vec<(usize, usize)>,
    mark: Option<u32>,
    ctmark: Option<u32>,
    notrack: bool,
    trace: Vec<Step>,
}

/// A three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    May,
}

impl Tri {
    fn of(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::May => Tri::May,
        }
    }
}

/// What a left-hand expression reads from the packet.
#[derive(Debug, Clone, PartialEq)]
enum Lhs {
    /// The header is not there (a TCP port of a UDP packet): no match.
    Absent,
    /// Not decidable from the packet and context.
    Unknown,
    Addr(IpAddr),
    Num(u64),
    /// An interface name (`""` when there is none at this hook).
    Name(String),
    /// One symbolic value of a flag-like key (`established`, `original`, `ipv4`).
    Sym(&'static str, u64),
    /// Several status bits (`ct status`).
    Bits(Vec<&'static str>),
    Concat(Vec<Lhs>),
}

/// What a matched rule does to the walk.
enum Effect {
    Continue,
    Jump(usize),
    Goto(usize),
    Return,
    Stop(Verdict),
    Unknown,
}

struct Eval<'a> {
    table: &'a Table,
    index: HashMap<&'a str, usize>,
    packet: &'a Packet,
    ctx: &'a Context,
    texts: Option<&'a RuleTexts>,
    start: usize,
}

impl Eval<'_> {
    fn table_name(&self) -> String {
        format!("{} {}", self.table.family_name, self.table.name)
    }

    fn rule_ref(&self, chain: usize, pos: usize) -> RuleRef {
        let c = &self.table.chains[chain];
        let r = &c.rules[pos];
        let text = r
            .handle
            .and_then(|h| self.texts.and_then(|t| t.get(&h)).cloned())
            .unwrap_or_else(|| describe(r));
        RuleRef {
            table: self.table_name(),
            chain: c.name.clone(),
            position: r.position,
            text,
            counters: r.counter,
            handle: r.handle,
        }
    }

    fn finish(&self, s: State, verdict: Verdict, decided_by: Option<Decider>) -> Outcome {
        Outcome {
            verdict,
            decided_by,
            trace: s.trace,
            mark: s.mark,
            ctmark: s.ctmark,
            notrack: s.notrack,
        }
    }

    fn bottom(&self, s: State) -> Outcome {
        let c = &self.table.chains[self.start];
        match &c.base {
            Some(b) => {
                let decided = Some(Decider::Policy {
                    table: self.table_name(),
                    chain: c.name.clone(),
                    counters: super::Counters { packets: 0, bytes: 0 },
                });
                let v = match &b.policy {
                    Policy::Accept => Verdict::Accept,
                    Policy::Drop => Verdict::Drop,
                    Policy::Other(_) => Verdict::May {
                        candidates: Vec::new(),
                        open: true,
                    },
                };
                self.finish(s, v, decided)
            }
            None => {
                let decided = Some(Decider::Return {
                    table: self.table_name(),
                    chain: c.name.clone(),
                });
                self.finish(s, Verdict::Return, decided)
            }
        }
    }

    fn run(&self, mut s: State, forks: &mut usize) -> Outcome {
        loop {
            let chain = &self.table.chains[s.chain];
            let Some(rule) = chain.rules.get(s.pos) else {
                match s.stack.pop() {
                    Some((c, p)) => {
                        s.chain = c;
                        s.pos = p;
                        continue;
                    }
                    None => return self.bottom(s),
                }
            };
            let here = (s.chain, s.pos);
            // Statements in order; the first failed match ends the rule.
            let mut hit = Hit::Yes;
            let mut effect = Effect::Continue;
            let before = s.clone();
            for stmt in &rule.stmts {
                match self.stmt(stmt, &mut s) {
                    StmtOut::Next => {}
                    StmtOut::NoMatch => {
                        hit = Hit::No;
                        break;
                    }
                    StmtOut::MayMatch => hit = Hit::May,
                    StmtOut::End(e) => {
                        effect = e;
                        break;
                    }
                }
            }
            if hit == Hit::No {
                // Nothing of a rule that did not match applies (a `set` before the
                // failed match is rare; keep the state from before).
                let trace = std::mem::take(&mut s.trace);
                s = before;
                s.trace = trace;
                s.pos += 1;
                continue;
            }
            s.trace.push(Step {
                rule: self.rule_ref(here.0, here.1),
                hit,
            });
            if hit == Hit::May {
                let pure = matches!(effect, Effect::Continue)
                    && before.mark == s.mark
                    && before.ctmark == s.ctmark
                    && before.notrack == s.notrack;
                if !pure {
                    *forks += 1;
                    if *forks > MAX_FORKS {
                        return self.finish(
                            s,
                            Verdict::May {
                                candidates: Vec::new(),
                                open: true,
                            },
                            Some(Decider::Rule(self.rule_ref(here.0, here.1))),
                        );
                    }
                    let mut miss = before;
                    miss.pos += 1;
                    let at_fork = s.clone();
                    let taken = self.apply(s, effect, forks);
                    let skipped = self.run(miss, forks);
                    return self.merge(taken, skipped, at_fork, here);
                }
            }
            match self.step(s, effect) {
                Ok(next) => s = next,
                Err(out) => return *out,
            }
        }
    }

    fn apply(&self, s: State, effect: Effect, forks: &mut usize) -> Outcome {
        match self.step(s, effect) {
            Ok(next) => self.run(next, forks),
            Err(out) => *out,
        }
    }

    fn step(&self, mut s: State, effect: Effect) -> Result<State, Box<Outcome>> {
        let here = (s.chain, s.pos);
        match effect {
            Effect::Continue => s.pos += 1,
            Effect::Jump(to) => {
                if s.stack.len() >= MAX_JUMP_DEPTH {
                    return Err(Box::new(error(format!(
                        "jumps nested deeper than {} chains",
                        MAX_JUMP_DEPTH
                    ))));
                }
                s.stack.push((s.chain, s.pos + 1));
                s.chain = to;
                s.pos = 0;
            }
            Effect::Goto(to) => {
                s.chain = to;
                s.pos = 0;
            }
            Effect::Return => match s.stack.pop() {
                Some((c, p)) => {
                    s.chain = c;
                    s.pos = p;
                }
                None => return Err(Box::new(self.bottom(s))),
            },
            Effect::Stop(v) => {
                let d = Some(Decider::Rule(self.rule_ref(here.0, here.1)));
                return Err(Box::new(self.finish(s, v, d)));
            }
            Effect::Unknown => {
                let d = Some(Decider::Rule(self.rule_ref(here.0, here.1)));
                return Err(Box::new(self.finish(
                    s,
                    Verdict::May {
                        candidates: Vec::new(),
                        open: true,
                    },
                    d,
                )));
            }
        }
        Ok(s)
    }

    fn merge(&self, taken: Outcome, skipped: Outcome, s: State, here: (usize, usize)) -> Outcome {
        match super::eval::merge_branches(taken, skipped) {
            Ok(one) => one,
            Err(may) => {
                let d = Some(Decider::Rule(self.rule_ref(here.0, here.1)));
                self.finish(s, may, d)
            }
        }
    }

    fn chain_effect(&self, v: &NftVerdict) -> Effect {
        match v {
            NftVerdict::Accept => Effect::Stop(Verdict::Accept),
            NftVerdict::Drop => Effect::Stop(Verdict::Drop),
            NftVerdict::Reject { kind } => Effect::Stop(Verdict::Reject { with: kind.clone() }),
            NftVerdict::Jump(c) => self
                .index
                .get(c.as_str())
                .map_or(Effect::Unknown, |&i| Effect::Jump(i)),
            NftVerdict::Goto(c) => self
                .index
                .get(c.as_str())
                .map_or(Effect::Unknown, |&i| Effect::Goto(i)),
            NftVerdict::Return => Effect::Return,
            NftVerdict::Continue => Effect::Continue,
            NftVerdict::Queue => Effect::Unknown,
        }
    }

    fn stmt(&self, stmt: &Stmt, s: &mut State) -> StmtOut {
        match stmt {
            Stmt::Match { left, op, right } => match self.test(left, *op, right, s) {
                Tri::Yes => StmtOut::Next,
                Tri::No => StmtOut::NoMatch,
                Tri::May => StmtOut::MayMatch,
            },
            Stmt::Counter(_) | Stmt::Log { .. } => StmtOut::Next,
            Stmt::Limit(_) => StmtOut::MayMatch,
            Stmt::Verdict(v) => StmtOut::End(self.chain_effect(v)),
            Stmt::Vmap { key, map } => {
                let lhs = self.lhs(key, s);
                let items: Option<&[Value]> = match map {
                    Value::Set(items) => Some(items),
                    Value::Named(n) => self.table.set(n).and_then(|set| set.elements.as_deref()),
                    _ => None,
                };
                let Some(items) = items else {
                    return StmtOut::End(Effect::Unknown);
                };
                let mut unsure = false;
                for item in items {
                    let Value::Mapping(k, d) = item else {
                        unsure = true;
                        continue;
                    };
                    match self.member(&lhs, key, k) {
                        Tri::Yes => {
                            if unsure {
                                return StmtOut::End(Effect::Unknown);
                            }
                            return match d.as_ref() {
                                Value::Verdict(v) => StmtOut::End(self.chain_effect(v)),
                                _ => StmtOut::End(Effect::Unknown),
                            };
                        }
                        Tri::May => unsure = true,
                        Tri::No => {}
                    }
                }
                // No element: the lookup breaks the rule (the next rule runs).
                if unsure {
                    StmtOut::MayMatch
                } else {
                    StmtOut::NoMatch
                }
            }
            Stmt::Nat { kind, addr, port, .. } => {
                let to_addr = addr.as_ref().map(|a| self.nat_addr(a, s));
                let to_port = port.as_ref().map(|p| self.nat_port(p));
                if matches!(to_addr, Some(None)) || matches!(to_port, Some(None)) {
                    return StmtOut::End(Effect::Unknown);
                }
                let (addr_first, addr_last) = to_addr.flatten().unwrap_or((None, None));
                let ports = to_port.flatten();
                let range = (addr_first.is_some() || ports.is_some()).then_some(NatRange {
                    addr_first,
                    addr_last,
                    ports,
                });
                let kind = match kind {
                    NftNat::Dnat => NatKind::Dnat,
                    NftNat::Snat => NatKind::Snat,
                    NftNat::Masquerade => NatKind::Masquerade,
                    NftNat::Redirect => NatKind::Redirect,
                };
                let (to, to_ports) = match kind {
                    NatKind::Dnat | NatKind::Snat => (range, None),
                    _ => (None, ports),
                };
                StmtOut::End(Effect::Stop(Verdict::Nat { kind, to, to_ports }))
            }
            Stmt::Set { key, value } => {
                let v = match value {
                    Value::Num(n) => Some(*n as u32),
                    Value::Str(t) => parse_num(t).map(|n| n as u32),
                    Value::Expr(e) => match self.lhs(e, s) {
                        Lhs::Num(n) => Some(n as u32),
                        _ => None,
                    },
                    _ => None,
                };
                match key {
                    Expr::Meta(MetaKey::Mark) => s.mark = v,
                    Expr::Ct(CtKey::Mark) if self.packet.ct_state != ConnState::Untracked => s.ctmark = v,
                    // Other keys (priority, nftrace) do not change what rules test.
                    _ => {}
                }
                StmtOut::Next
            }
            Stmt::Notrack => {
                s.notrack = true;
                StmtOut::Next
            }
            Stmt::Xt { .. } | Stmt::Unknown(_) => StmtOut::MayMatch,
        }
    }

    /// A NAT address: `Some((first, last))`, `None` when not decidable (a map lookup).
    fn nat_addr(&self, v: &Value, _s: &State) -> Option<(Option<IpAddr>, Option<IpAddr>)> {
        match v {
            Value::Str(t) => t.parse().ok().map(|a| (Some(a), None)),
            Value::Range(a, b) => match (a.as_ref(), b.as_ref()) {
                (Value::Str(a), Value::Str(b)) => Some((a.parse().ok(), b.parse().ok())),
                _ => None,
            },
            _ => None,
        }
    }

    fn nat_port(&self, v: &Value) -> Option<PortRange> {
        match v {
            Value::Num(n) => u16::try_from(*n).ok().map(|p| PortRange { first: p, last: p }),
            Value::Str(t) => t.parse().ok().map(|p| PortRange { first: p, last: p }),
            Value::Range(a, b) => match (a.as_ref(), b.as_ref()) {
                (Value::Num(a), Value::Num(b)) => Some(PortRange {
                    first: u16::try_from(*a).ok()?,
                    last: u16::try_from(*b).ok()?,
                }),
                _ => None,
            },
            _ => None,
        }
    }

    fn lhs(&self, e: &Expr, s: &State) -> Lhs {
        let p = self.packet;
        let v4 = p.src.is_ipv4();
        let l4 = |want: Proto, v: Option<u16>| -> Lhs {
            if p.proto != want || p.fragment {
                return Lhs::Absent;
            }
            v.map_or(Lhs::Unknown, |n| Lhs::Num(n.into()))
        };
        let th = |v: Option<u16>| -> Lhs {
            if !matches!(p.proto, Proto::Tcp | Proto::Udp) || p.fragment {
                return Lhs::Absent;
            }
            v.map_or(Lhs::Unknown, |n| Lhs::Num(n.into()))
        };
        match e {
            Expr::Payload(f) => match f {
                Field::IpSaddr if v4 => Lhs::Addr(p.src),
                Field::IpDaddr if v4 => Lhs::Addr(p.dst),
                Field::IpProtocol if v4 => Lhs::Num(p.proto.number().into()),
                Field::Ip6Saddr if !v4 => Lhs::Addr(p.src),
                Field::Ip6Daddr if !v4 => Lhs::Addr(p.dst),
                Field::Ip6Nexthdr if !v4 => Lhs::Num(p.proto.number().into()),
                Field::IpSaddr | Field::IpDaddr | Field::IpProtocol => Lhs::Absent,
                Field::Ip6Saddr | Field::Ip6Daddr | Field::Ip6Nexthdr => Lhs::Absent,
                Field::TcpSport => l4(Proto::Tcp, p.sport),
                Field::TcpDport => l4(Proto::Tcp, p.dport),
                Field::UdpSport => l4(Proto::Udp, p.sport),
                Field::UdpDport => l4(Proto::Udp, p.dport),
                Field::ThSport => th(p.sport),
                Field::ThDport => th(p.dport),
                Field::IcmpType => match (p.proto, p.icmp) {
                    (Proto::Icmp, Some((t, _))) => Lhs::Num(t.into()),
                    _ => Lhs::Absent,
                },
                Field::Icmpv6Type => match (p.proto, p.icmp) {
                    (Proto::Icmpv6, Some((t, _))) => Lhs::Num(t.into()),
                    _ => Lhs::Absent,
                },
                Field::EtherType => Lhs::Num(if v4 { 0x0800 } else { 0x86dd }),
                Field::EtherSaddr | Field::EtherDaddr | Field::VlanId => Lhs::Unknown,
            },
            Expr::Meta(k) => match k {
                MetaKey::Iifname | MetaKey::Iif => Lhs::Name(p.iif.clone().unwrap_or_default()),
                MetaKey::Oifname | MetaKey::Oif => Lhs::Name(p.oif.clone().unwrap_or_default()),
                MetaKey::L4proto => {
                    if p.fragment {
                        Lhs::Unknown
                    } else {
                        Lhs::Num(p.proto.number().into())
                    }
                }
                MetaKey::Nfproto => {
                    if v4 {
                        Lhs::Sym("ipv4", 2)
                    } else {
                        Lhs::Sym("ipv6", 10)
                    }
                }
                MetaKey::Protocol => {
                    if v4 {
                        Lhs::Sym("ip", 0x0800)
                    } else {
                        Lhs::Sym("ip6", 0x86dd)
                    }
                }
                MetaKey::Mark => s.mark.map_or(Lhs::Unknown, |m| Lhs::Num(m.into())),
                MetaKey::Pkttype => Lhs::Sym("host", 0),
            },
            Expr::Ct(k) => match k {
                CtKey::State => match p.ct_state {
                    ConnState::New => Lhs::Sym("new", 8),
                    ConnState::Established => Lhs::Sym("established", 2),
                    ConnState::Related => Lhs::Sym("related", 4),
                    ConnState::Invalid => Lhs::Sym("invalid", 1),
                    ConnState::Untracked => Lhs::Sym("untracked", 64),
                },
                CtKey::Direction => match p.ct_dir {
                    CtDir::Original => Lhs::Sym("original", 0),
                    CtDir::Reply => Lhs::Sym("reply", 1),
                },
                CtKey::Status => {
                    let mut bits = Vec::new();
                    if p.ct_state == ConnState::Established {
                        bits.push("seen-reply");
                        bits.push("confirmed");
                    }
                    if p.ct_snat {
                        bits.push("snat");
                    }
                    if p.ct_dnat {
                        bits.push("dnat");
                    }
                    Lhs::Bits(bits)
                }
                CtKey::Mark => s.ctmark.map_or(Lhs::Unknown, |m| Lhs::Num(m.into())),
                CtKey::OriginalIpDaddr => {
                    if p.ct_state == ConnState::New && p.ct_dir == CtDir::Original && !p.ct_dnat {
                        Lhs::Addr(p.dst)
                    } else {
                        Lhs::Unknown
                    }
                }
            },
            Expr::Fib { flags, result } => {
                // `fib daddr type local` (and with `. iif`): the address types of this
                // netns, from its addresses.
                if result == "type" && flags.iter().any(|f| f == "daddr") {
                    match self.addr_is_local(p.dst) {
                        Some(true) => Lhs::Sym("local", 2),
                        Some(false) => Lhs::Sym("unicast", 1),
                        None => Lhs::Unknown,
                    }
                } else if result == "type" && flags.iter().any(|f| f == "saddr") {
                    match self.addr_is_local(p.src) {
                        Some(true) => Lhs::Sym("local", 2),
                        Some(false) => Lhs::Sym("unicast", 1),
                        None => Lhs::Unknown,
                    }
                } else {
                    Lhs::Unknown
                }
            }
            Expr::Concat(parts) => Lhs::Concat(parts.iter().map(|e| self.lhs(e, s)).collect()),
            Expr::Bin { op, left, right } => {
                let l = self.lhs(left, s);
                let r = match right.as_ref() {
                    Value::Num(n) => Some(*n),
                    Value::Str(t) => parse_num(t),
                    _ => None,
                };
                match (l, r) {
                    (Lhs::Num(a), Some(b)) => Lhs::Num(match op {
                        BinOp::And => a & b,
                        BinOp::Or => a | b,
                        BinOp::Xor => a ^ b,
                    }),
                    (Lhs::Absent, _) => Lhs::Absent,
                    _ => Lhs::Unknown,
                }
            }
            Expr::Numgen { .. } | Expr::Unknown(_) => Lhs::Unknown,
        }
    }

    /// Whether `a` is an address of this netns (broadcast and multicast are not
    /// "local"); `None` when the addresses are unknown or for a subnet broadcast.
    fn addr_is_local(&self, a: IpAddr) -> Option<bool> {
        if a.is_multicast() || a.is_unspecified() {
            return Some(false);
        }
        if a.is_loopback() {
            return Some(true);
        }
        let locals = self.ctx.local_addrs.as_ref()?;
        let mut broadcast = false;
        for nets in locals.values() {
            for n in nets {
                if n.addr() == a {
                    return Some(true);
                }
                if let IpNet::V4(v) = n {
                    if v.prefix_len() < 31 && IpAddr::V4(v.broadcast()) == a {
                        broadcast = true;
                    }
                }
            }
        }
        if broadcast { None } else { Some(false) }
    }

    fn test(&self, left: &Expr, op: Op, right: &Value, s: &State) -> Tri {
        let lhs = self.lhs(left, s);
        if lhs == Lhs::Absent {
            // A header the packet lacks: nft's implicit dependency fails the rule,
            // whatever the operator.
            return Tri::No;
        }
        match op {
            Op::Eq => self.member(&lhs, left, right),
            Op::Ne => self.member(&lhs, left, right).not(),
            Op::In => match (&lhs, right) {
                // `ct state established,related` and `ct status dnat`: any bit set.
                (Lhs::Bits(bits), _) => Tri::of(flag_names(right).iter().any(|f| bits.contains(&f.as_str()))),
                _ => self.member(&lhs, left, right),
            },
            Op::Lt | Op::Gt | Op::Le | Op::Ge => {
                let (Lhs::Num(a), Some(b)) = (&lhs, self.num(left, right)) else {
                    return Tri::May;
                };
                Tri::of(match op {
                    Op::Lt => *a < b,
                    Op::Gt => *a > b,
                    Op::Le => *a <= b,
                    _ => *a >= b,
                })
            }
        }
    }

    /// A right-hand scalar as a number for key `key`.
    fn num(&self, key: &Expr, v: &Value) -> Option<u64> {
        match v {
            Value::Num(n) => Some(*n),
            Value::Str(t) => symbol(key, t).or_else(|| parse_num(t)),
            _ => None,
        }
    }

    /// Whether `lhs` equals (or is a member of) `v`.
    fn member(&self, lhs: &Lhs, key: &Expr, v: &Value) -> Tri {
        if *lhs == Lhs::Unknown {
            return Tri::May;
        }
        match v {
            Value::Set(items) | Value::List(items) => any(items.iter().map(|i| match i {
                Value::Mapping(k, _) => self.member(lhs, key, k),
                other => self.member(lhs, key, other),
            })),
            Value::Named(name) => match self.table.set(name).and_then(|s| s.elements.as_deref()) {
                Some(items) => any(items.iter().map(|i| match i {
                    Value::Mapping(k, _) => self.member(lhs, key, k),
                    other => self.member(lhs, key, other),
                })),
                None => match self.ctx.sets.get(name) {
                    Some(nets) => match lhs {
                        Lhs::Addr(a) => Tri::of(nets.iter().any(|n| n.contains(a))),
                        _ => Tri::May,
                    },
                    None => Tri::May,
                },
            },
            Value::Concat(vals) => match (lhs, key) {
                (Lhs::Concat(ls), Expr::Concat(keys))
                    if ls.len() == vals.len() && keys.len() == vals.len() =>
                {
                    all(ls
                        .iter()
                        .zip(keys)
                        .zip(vals)
                        .map(|((l, k), v)| self.member(l, k, v)))
                }
                _ => Tri::May,
            },
            Value::Prefix { addr, len } => match (lhs, addr.parse::<IpAddr>()) {
                (Lhs::Addr(a), Ok(net)) => match IpNet::new(net, *len) {
                    Ok(n) => Tri::of(n.contains(a)),
                    Err(_) => Tri::May,
                },
                _ => Tri::May,
            },
            Value::Range(lo, hi) => match lhs {
                Lhs::Addr(a) => match (lo.as_ref(), hi.as_ref()) {
                    (Value::Str(x), Value::Str(y)) => match (x.parse::<IpAddr>(), y.parse::<IpAddr>()) {
                        (Ok(x), Ok(y)) => Tri::of(x <= *a && *a <= y),
                        _ => Tri::May,
                    },
                    _ => Tri::May,
                },
                Lhs::Num(n) => match (self.num(key, lo), self.num(key, hi)) {
                    (Some(x), Some(y)) => Tri::of(x <= *n && *n <= y),
                    _ => Tri::May,
                },
                _ => Tri::May,
            },
            Value::Str(t) => match lhs {
                Lhs::Addr(a) => match t.parse::<IpAddr>() {
                    Ok(b) => Tri::of(*a == b),
                    Err(_) => Tri::May,
                },
                Lhs::Name(n) => Tri::of(ifname_matches(t, n)),
                Lhs::Num(n) => match self.num(key, v) {
                    Some(x) => Tri::of(*n == x),
                    None => Tri::May,
                },
                Lhs::Sym(name, num) => Tri::of(t.eq_ignore_ascii_case(name) || parse_num(t) == Some(*num)),
                Lhs::Bits(bits) => Tri::of(bits.contains(&t.as_str())),
                _ => Tri::May,
            },
            Value::Num(x) => match lhs {
                Lhs::Num(n) => Tri::of(n == x),
                Lhs::Sym(_, num) => Tri::of(num == x),
                _ => Tri::May,
            },
            Value::Bool(_) | Value::Mapping(..) | Value::Verdict(_) | Value::Expr(_) | Value::Unknown(_) => {
                Tri::May
            }
        }
    }
}

enum StmtOut {
    Next,
    NoMatch,
    MayMatch,
    End(Effect),
}

fn any(it: impl Iterator<Item = Tri>) -> Tri {
    let mut out = Tri::No;
    for t in it {
        match t {
            Tri::Yes => return Tri::Yes,
            Tri::May => out = Tri::May,
            Tri::No => {}
        }
    }
    out
}

fn all(it: impl Iterator<Item = Tri>) -> Tri {
    let mut out = Tri::Yes;
    for t in it {
        match t {
            Tri::No => return Tri::No,
            Tri::May => out = Tri::May,
            Tri::Yes => {}
        }
    }
    out
}

fn flag_names(v: &Value) -> Vec<String> {
    match v {
        Value::Str(s) => vec![s.clone()],
        Value::List(items) | Value::Set(items) => items.iter().flat_map(flag_names).collect(),
        _ => Vec::new(),
    }
}

/// nft's interface name match: exact, or a prefix when written with a trailing `*`.
fn ifname_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) if !pattern.ends_with("\\*") => name.starts_with(prefix),
        _ => pattern == name,
    }
}

fn parse_num(t: &str) -> Option<u64> {
    match t.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

/// A symbolic constant on the right of `key` as its number.
fn symbol(key: &Expr, t: &str) -> Option<u64> {
    let t = t.to_ascii_lowercase();
    match key {
        Expr::Meta(MetaKey::L4proto) | Expr::Payload(Field::IpProtocol | Field::Ip6Nexthdr) => {
            Some(match t.as_str() {
                "icmp" => 1,
                "igmp" => 2,
                "tcp" => 6,
                "udp" => 17,
                "gre" => 47,
                "esp" => 50,
                "ah" => 51,
                "icmpv6" | "ipv6-icmp" => 58,
                "sctp" => 132,
                _ => return None,
            })
        }
        Expr::Payload(Field::IcmpType) => Some(match t.as_str() {
            "echo-reply" => 0,
            "destination-unreachable" => 3,
            "source-quench" => 4,
            "redirect" => 5,
            "echo-request" => 8,
            "router-advertisement" => 9,
            "router-solicitation" => 10,
            "time-exceeded" => 11,
            "parameter-problem" => 12,
            "timestamp-request" => 13,
            "timestamp-reply" => 14,
            _ => return None,
        }),
        Expr::Payload(Field::Icmpv6Type) => Some(match t.as_str() {
            "destination-unreachable" => 1,
            "packet-too-big" => 2,
            "time-exceeded" => 3,
            "parameter-problem" => 4,
            "echo-request" => 128,
            "echo-reply" => 129,
            "nd-router-solicit" => 133,
            "nd-router-advert" => 134,
            "nd-neighbor-solicit" => 135,
            "nd-neighbor-advert" => 136,
            _ => return None,
        }),
        Expr::Payload(Field::EtherType) => Some(match t.as_str() {
            "ip" => 0x0800,
            "ip6" => 0x86dd,
            "arp" => 0x0806,
            "8021q" => 0x8100,
            _ => return None,
        }),
        Expr::Payload(
            Field::TcpSport
            | Field::TcpDport
            | Field::UdpSport
            | Field::UdpDport
            | Field::ThSport
            | Field::ThDport,
        ) => Some(match t.as_str() {
            "ssh" => 22,
            "domain" => 53,
            "http" => 80,
            "https" => 443,
            "bootps" => 67,
            "bootpc" => 68,
            _ => return None,
        }),
        _ => None,
    }
}

/// A short text for a rule whose `nft list` text is not at hand.
fn describe(r: &Rule) -> String {
    let mut s = match r.handle {
        Some(h) => format!("rule handle {h}"),
        None => format!("rule {}", r.position),
    };
    if let Some(v) = r.verdict() {
        s.push_str(&format!(" ({v:?})").to_lowercase());
    }
    if let Some(c) = &r.comment {
        s.push_str(&format!(" comment {}", super::quote(c)));
    }
    s
}

#[cfg(test)]
mod tests;
