//! Evaluating one packet through an iptables chain the way the kernel's x_tables walk
//! does: rules in order, jumps (`-j CHAIN`) that return, gotos (`-g CHAIN`) that do
//! not, `RETURN`, the base chain's policy at the bottom; marks set on the way apply to
//! later rules. What cannot be decided from the packet and the [`Context`] (unknown
//! or run-time matches, unknown targets, sets or local addresses not known) makes the
//! outcome a [`Verdict::May`], never a silent accept or drop.
//!
//! ```
//! use ctnet_core::netfilter::{evaluate, parse_save, Context, Packet, Verdict};
//!
//! let tables = parse_save("*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n");
//! let packet = Packet::tcp("10.0.0.2".parse().unwrap(), 40000, "10.0.1.2".parse().unwrap(), 80)
//!     .iif("eth0")
//!     .oif("eth1");
//! let out = evaluate(&tables[0], "FORWARD", &packet, &Context::default());
//! assert_eq!(out.verdict, Verdict::Accept);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{
    AddrType, AddrTypeOpt, Chain, ConntrackOpt, Counters, CtDir, CtState, IcmpType, MarkMask, MarkOp, Match,
    MultiportOpt, NatRange, Neg, Opt, PhysdevOpt, Policy, PortOpt, PortRange, Protocol, SetDir, Table,
    Target, TcpFlag,
};

/// The deepest chain of jumps evaluated; deeper is an [`Verdict::Error`]. nf_tables
/// (iptables-nft) refuses more than 16 at load time; legacy x_tables allows more.
pub const MAX_JUMP_DEPTH: usize = 64;

/// How many forks over *may* rules one evaluation explores before it gives up with
/// [`Verdict::May`].
const MAX_FORKS: usize = 256;

/// A packet's layer-4 protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP (1).
    Icmp,
    /// ICMPv6 (58).
    Icmpv6,
    /// Any other protocol number.
    Other(u8),
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Icmp => 1,
            Proto::Icmpv6 => 58,
            Proto::Other(n) => n,
        }
    }
}

/// The conntrack state of a packet (what `--ctstate` tests, besides SNAT/DNAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    /// The first packet of a connection.
    New,
    /// A packet of a connection that has seen both directions.
    Established,
    /// Related to a known connection (ICMP errors, expectations).
    Related,
    /// No valid connection (conntrack could not track it).
    Invalid,
    /// Exempted from tracking (`NOTRACK`, `CT --notrack`).
    Untracked,
}

impl ConnState {
    /// Whether the packet has a conntrack entry (the kernel's `nf_ct_get` is not null).
    fn tracked(self) -> bool {
        matches!(self, ConnState::New | ConnState::Established | ConnState::Related)
    }
}

/// The bridge facts br_netfilter attaches to a bridged IP packet.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Physdev {
    /// The bridge port the frame came in on.
    pub in_port: Option<String>,
    /// The bridge port the frame leaves on; set means bridged (`--physdev-is-bridged`).
    pub out_port: Option<String>,
}

/// TCP flag bits as on the wire.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// A packet at one netfilter hook: what the rules can test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    /// Source address (its family is the packet's family).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Layer-4 protocol.
    pub proto: Proto,
    /// Source port (TCP/UDP).
    pub sport: Option<u16>,
    /// Destination port (TCP/UDP).
    pub dport: Option<u16>,
    /// TCP flags; `None` when unknown (a `--tcp-flags` match is then a *may*).
    pub tcp_flags: Option<u8>,
    /// ICMP/ICMPv6 type and code.
    pub icmp: Option<(u8, u8)>,
    /// Input interface (none at OUTPUT).
    pub iif: Option<String>,
    /// Output interface (none at PREROUTING/INPUT).
    pub oif: Option<String>,
    /// Conntrack state.
    pub ct_state: ConnState,
    /// Direction in the connection.
    pub ct_dir: CtDir,
    /// The connection is source-NATed.
    pub ct_snat: bool,
    /// The connection is destination-NATed.
    pub ct_dnat: bool,
    /// Packet mark (`skb->mark`).
    pub mark: u32,
    /// Connection mark.
    pub ctmark: u32,
    /// A second or later fragment (no layer-4 header).
    pub fragment: bool,
    /// Bridge facts when br_netfilter handles the packet; `None` for a routed packet.
    pub physdev: Option<Physdev>,
    /// Its IP length in bytes, sent with DF set, when the walk is to check it against
    /// each interface's MTU (`trace --size`); `None`: a small packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
}

impl Packet {
    fn base(src: IpAddr, dst: IpAddr, proto: Proto) -> Packet {
        Packet {
            src,
            dst,
            proto,
            sport: None,
            dport: None,
            tcp_flags: None,
            icmp: None,
            iif: None,
            oif: None,
            ct_state: ConnState::New,
            ct_dir: CtDir::Original,
            ct_snat: false,
            ct_dnat: false,
            mark: 0,
            ctmark: 0,
            fragment: false,
            physdev: None,
            size: None,
        }
    }

    /// A TCP SYN from `src:sport` to `dst:dport`, conntrack NEW.
    pub fn tcp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Packet {
        Packet {
            sport: Some(sport),
            dport: Some(dport),
            tcp_flags: Some(tcp_flags::SYN),
            ..Packet::base(src, dst, Proto::Tcp)
        }
    }

    /// A UDP datagram, conntrack NEW.
    pub fn udp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Packet {
        Packet {
            sport: Some(sport),
            dport: Some(dport),
            ..Packet::base(src, dst, Proto::Udp)
        }
    }

    /// An ICMP (IPv4) or ICMPv6 echo request, conntrack NEW.
    pub fn ping(src: IpAddr, dst: IpAddr) -> Packet {
        let (proto, kind) = if src.is_ipv4() {
            (Proto::Icmp, 8)
        } else {
            (Proto::Icmpv6, 128)
        };
        Packet {
            icmp: Some((kind, 0)),
            ..Packet::base(src, dst, proto)
        }
    }

    /// A packet of another protocol number.
    pub fn other(src: IpAddr, dst: IpAddr, proto: u8) -> Packet {
        Packet::base(src, dst, Proto::Other(proto))
    }

    /// The packet's address family (that of its source address).
    pub fn family(&self) -> super::Family {
        match self.src {
            IpAddr::V4(_) => super::Family::Ipv4,
            IpAddr::V6(_) => super::Family::Ipv6,
        }
    }

    /// The reply of this packet in an established connection: addresses, ports and
    /// interfaces swapped, ESTABLISHED, direction REPLY, TCP SYN+ACK, ICMP echo reply.
    pub fn reply(&self) -> Packet {
        let mut p = self.clone();
        std::mem::swap(&mut p.src, &mut p.dst);
        std::mem::swap(&mut p.sport, &mut p.dport);
        std::mem::swap(&mut p.iif, &mut p.oif);
        if let Some(ph) = &mut p.physdev {
            std::mem::swap(&mut ph.in_port, &mut ph.out_port);
        }
        p.ct_state = ConnState::Established;
        p.ct_dir = CtDir::Reply;
        if p.proto == Proto::Tcp {
            p.tcp_flags = Some(tcp_flags::SYN | tcp_flags::ACK);
        }
        p.icmp = match p.icmp {
            Some((8, c)) => Some((0, c)),
            Some((128, c)) => Some((129, c)),
            other => other,
        };
        p
    }

    /// With input interface `name`.
    pub fn iif(mut self, name: &str) -> Packet {
        self.iif = Some(name.to_string());
        self
    }

    /// With output interface `name`.
    pub fn oif(mut self, name: &str) -> Packet {
        self.oif = Some(name.to_string());
        self
    }

    /// With conntrack state `state`.
    pub fn state(mut self, state: ConnState) -> Packet {
        self.ct_state = state;
        self
    }

    /// With conntrack direction `dir`.
    pub fn dir(mut self, dir: CtDir) -> Packet {
        self.ct_dir = dir;
        self
    }

    /// With packet mark `mark`.
    pub fn mark(mut self, mark: u32) -> Packet {
        self.mark = mark;
        self
    }

    /// With connection mark `mark`.
    pub fn ctmark(mut self, mark: u32) -> Packet {
        self.ctmark = mark;
        self
    }

    /// With ICMP type and code.
    pub fn icmp_type(mut self, kind: u8, code: u8) -> Packet {
        self.icmp = Some((kind, code));
        self
    }

    /// With TCP flags (see [`tcp_flags`]).
    pub fn flags(mut self, flags: u8) -> Packet {
        self.tcp_flags = Some(flags);
        self
    }

    /// A second or later fragment.
    pub fn fragment(mut self) -> Packet {
        self.fragment = true;
        self
    }

    /// Bridged by br_netfilter between ports `in_port` and `out_port`.
    pub fn bridged(mut self, in_port: Option<&str>, out_port: Option<&str>) -> Packet {
        self.physdev = Some(Physdev {
            in_port: in_port.map(str::to_string),
            out_port: out_port.map(str::to_string),
        });
        self
    }

    /// With conntrack NAT status bits.
    pub fn nat_status(mut self, snat: bool, dnat: bool) -> Packet {
        self.ct_snat = snat;
        self.ct_dnat = dnat;
        self
    }
}

/// Host facts some matches need beyond the packet; anything absent makes those
/// matches a *may*.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// The host's addresses per interface, with their prefix (for `-m addrtype`);
    /// `None` when not known.
    pub local_addrs: Option<BTreeMap<String, Vec<IpNet>>>,
    /// Contents of one-dimensional address ipsets (`hash:ip`, `hash:net`) by name;
    /// a set not here is unknown.
    pub sets: BTreeMap<String, Vec<IpNet>>,
}

/// A rule as the outcome names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    /// Table name.
    pub table: String,
    /// Chain name.
    pub chain: String,
    /// 1-based position in the chain.
    pub position: u32,
    /// The rule as iptables-save prints it.
    pub text: String,
    /// Its counters, when the dump had them.
    pub counters: Option<Counters>,
    /// The nft rule handle (native nft rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
}

/// What decided an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decider {
    /// A rule.
    Rule(RuleRef),
    /// A base chain's policy.
    Policy {
        /// Table name.
        table: String,
        /// Chain name.
        chain: String,
        /// The policy counters.
        counters: Counters,
    },
    /// The end of (or a `RETURN` in) the user chain the evaluation started in.
    Return {
        /// Table name.
        table: String,
        /// Chain name.
        chain: String,
    },
}

/// The NAT targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatKind {
    /// `DNAT`.
    Dnat,
    /// `SNAT`.
    Snat,
    /// `MASQUERADE`: source-NAT to the output interface's address.
    Masquerade,
    /// `REDIRECT`: destination-NAT to the host itself.
    Redirect,
}

/// What happens to the packet in this chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Accepted (by a rule or the policy); the next hook or table runs.
    Accept,
    /// Dropped.
    Drop,
    /// Dropped with an answer (`REJECT`).
    Reject {
        /// The `--reject-with` type as written; the kernel default
        /// (`icmp-port-unreachable`) when `None`.
        with: Option<String>,
    },
    /// NAT applied (the connection's mapping); the packet goes on.
    Nat {
        /// Which NAT target.
        kind: NatKind,
        /// The address/port range given (`--to-destination`/`--to-source`).
        to: Option<NatRange>,
        /// The ports given (`--to-ports`).
        to_ports: Option<PortRange>,
    },
    /// The user chain evaluation started in returned to its (absent) caller.
    Return,
    /// A *may* rule could decide: the outcome is one of `candidates`, or, when `open`,
    /// something the model cannot name (an unknown target).
    May {
        /// The verdicts the explored alternatives reached.
        candidates: Vec<Verdict>,
        /// An unknown target or an exhausted budget could also decide.
        open: bool,
    },
    /// The table cannot be evaluated (a loop of jumps, a chain too deep, a missing
    /// chain); the kernel refuses such a table at load time.
    Error {
        /// Why.
        message: String,
    },
}

/// How a rule on the way matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hit {
    /// Every match matched.
    Yes,
    /// Some match is undecidable; the others matched.
    May,
    /// A match failed.
    No,
}

/// A rule that matched (or may have) on the way, in evaluation order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The rule.
    pub rule: RuleRef,
    /// [`Hit::Yes`] or [`Hit::May`].
    pub hit: Hit,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// The rule or policy that decided; for [`Verdict::May`], the *may* rule.
    pub decided_by: Option<Decider>,
    /// Rules that matched on the way (jumps, logs, marks, the deciding rule).
    pub trace: Vec<Step>,
    /// The packet mark when the chain was left; `None` when a mark operation the model
    /// does not know changed it.
    pub mark: Option<u32>,
    /// The connection mark when the chain was left, likewise.
    pub ctmark: Option<u32>,
    /// `NOTRACK`/`CT --notrack` applied: the packet will be untracked.
    pub notrack: bool,
}

impl Outcome {
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
}

/// Evaluate `packet` through `chain` of `table`, as the kernel would. A base chain
/// (one with a policy) ends in its policy; a user chain evaluated on its own ends in
/// [`Verdict::Return`].
pub fn evaluate(table: &Table, chain: &str, packet: &Packet, ctx: &Context) -> Outcome {
    let index: HashMap<&str, usize> = table
        .chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let Some(&start) = index.get(chain) else {
        return Outcome::error(format!("no chain {chain} in table {}", table.name));
    };
    if let Err(message) = check_graph(table, &index, start) {
        return Outcome::error(message);
    }
    let eval = Eval {
        table,
        index,
        packet,
        ctx,
        start,
    };
    let mut forks = 0;
    eval.run(
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

/// The two branches of a *may* rule (it matched, it did not), as one: `Ok` with the
/// branch that stands when both reach the same definite verdict (or one cannot be
/// evaluated), else `Err` with the [`Verdict::May`] of every verdict they reach.
/// Shared by the iptables and the nft evaluators.
pub(super) fn merge_branches(taken: Outcome, skipped: Outcome) -> Result<Outcome, Verdict> {
    let definite = |v: &Verdict| !matches!(v, Verdict::May { .. } | Verdict::Error { .. });
    if taken.verdict == skipped.verdict && definite(&taken.verdict) {
        return Ok(skipped);
    }
    if let Verdict::Error { .. } = taken.verdict {
        return Ok(taken);
    }
    if let Verdict::Error { .. } = skipped.verdict {
        return Ok(skipped);
    }
    let mut candidates = Vec::new();
    let mut open = false;
    for v in [taken.verdict, skipped.verdict] {
        let list = match v {
            Verdict::May {
                candidates: c,
                open: o,
            } => {
                open |= o;
                c
            }
            v => vec![v],
        };
        for v in list {
            if !candidates.contains(&v) {
                candidates.push(v);
            }
        }
    }
    Err(Verdict::May { candidates, open })
}

/// The chain a jump or goto target names.
fn jump_target(t: &Target) -> Option<&str> {
    match t {
        Target::Jump(c) | Target::Goto(c) => Some(c),
        _ => None,
    }
}

/// Refuse what the kernel refuses at load time: a loop of jumps/gotos reachable from
/// `start`, a jump to a missing chain, or a path deeper than [`MAX_JUMP_DEPTH`].
fn check_graph(table: &Table, index: &HashMap<&str, usize>, start: usize) -> Result<(), String> {
    // Iterative depth-first search with colours, so a deep table cannot overflow.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let n = table.chains.len();
    let mut colour = vec![Colour::White; n];
    let mut depth = vec![0usize; n];
    let edges = |c: usize| -> Result<Vec<usize>, String> {
        table.chains[c]
            .rules
            .iter()
            .filter_map(|r| jump_target(&r.rule.target))
            .map(|name| {
                index.get(name).copied().ok_or_else(|| {
                    format!(
                        "chain {} jumps to {name}, which is no chain of table {}",
                        table.chains[c].name, table.name
                    )
                })
            })
            .collect()
    };
    let mut stack: Vec<(usize, Vec<usize>, usize)> = vec![(start, edges(start)?, 0)];
    colour[start] = Colour::Grey;
    while let Some((node, next, i)) = stack.last_mut() {
        if let Some(&to) = next.get(*i) {
            *i += 1;
            let d = stack.len();
            match colour[to] {
                Colour::Grey => {
                    let path: Vec<&str> = stack
                        .iter()
                        .map(|(c, _, _)| table.chains[*c].name.as_str())
                        .chain([table.chains[to].name.as_str()])
                        .collect();
                    return Err(format!("loop of jumps: {}", path.join(" -> ")));
                }
                Colour::Black if depth[to] + d <= MAX_JUMP_DEPTH => {}
                _ => {
                    if d >= MAX_JUMP_DEPTH {
                        return Err(format!(
                            "jumps nested deeper than {MAX_JUMP_DEPTH} chains from {}",
                            table.chains[start].name
                        ));
                    }
                    colour[to] = Colour::Grey;
                    let e = edges(to)?;
                    stack.push((to, e, 0));
                }
            }
        } else {
            let node = *node;
            let below = table.chains[node]
                .rules
                .iter()
                .filter_map(|r| jump_target(&r.rule.target))
                .filter_map(|name| index.get(name))
                .map(|&c| depth[c] + 1)
                .max()
                .unwrap_or(0);
            depth[node] = below;
            colour[node] = Colour::Black;
            stack.pop();
        }
    }
    Ok(())
}

#[derive(Clone)]
struct State {
    chain: usize,
    pos: usize,
    /// Return points of the jumps taken (chain, next rule).
    stack: Vec<(usize, usize)>,
    mark: Option<u32>,
    ctmark: Option<u32>,
    notrack: bool,
    trace: Vec<Step>,
}

struct Eval<'a> {
    table: &'a Table,
    index: HashMap<&'a str, usize>,
    packet: &'a Packet,
    ctx: &'a Context,
    start: usize,
}

/// What a matched target does to the walk.
enum Effect {
    Continue,
    Jump(usize),
    Goto(usize),
    Return,
    Stop(Verdict),
    Unknown,
}

impl Eval<'_> {
    fn chain(&self, i: usize) -> &Chain {
        &self.table.chains[i]
    }

    fn rule_ref(&self, chain: usize, pos: usize) -> RuleRef {
        let c = self.chain(chain);
        let r = &c.rules[pos];
        RuleRef {
            table: self.table.name.clone(),
            chain: c.name.clone(),
            position: r.position,
            text: r.rule.to_string(),
            counters: r.rule.counters,
            handle: None,
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

    /// The end of the walk from the start chain: its policy, or a return.
    fn bottom(&self, s: State) -> Outcome {
        let c = self.chain(self.start);
        match &c.policy {
            Some(p) => {
                let decided = Some(Decider::Policy {
                    table: self.table.name.clone(),
                    chain: c.name.clone(),
                    counters: c.counters,
                });
                let verdict = match p {
                    Policy::Accept => Verdict::Accept,
                    Policy::Drop => Verdict::Drop,
                    Policy::Other(_) => Verdict::May {
                        candidates: Vec::new(),
                        open: true,
                    },
                };
                self.finish(s, verdict, decided)
            }
            None => {
                let decided = Some(Decider::Return {
                    table: self.table.name.clone(),
                    chain: c.name.clone(),
                });
                self.finish(s, Verdict::Return, decided)
            }
        }
    }

    fn run(&self, mut s: State, forks: &mut usize) -> Outcome {
        loop {
            let chain = self.chain(s.chain);
            let Some(cr) = chain.rules.get(s.pos) else {
                // Falling off a chain is an implicit RETURN.
                match s.stack.pop() {
                    Some((c, p)) => {
                        s.chain = c;
                        s.pos = p;
                        continue;
                    }
                    None => return self.bottom(s),
                }
            };
            let hit = self.rule_hit(&cr.rule.matches, &s);
            if hit == Hit::No {
                s.pos += 1;
                continue;
            }
            // A *may* rule forks the walk; keep the state from before its effect.
            let before = (hit == Hit::May).then(|| s.clone());
            let effect = self.effect(&cr.rule.target, &mut s);
            let here = (s.chain, s.pos);
            s.trace.push(Step {
                rule: self.rule_ref(here.0, here.1),
                hit,
            });
            if let Some(mut miss) = before {
                let pure = matches!(effect, Effect::Continue)
                    && miss.mark == s.mark
                    && miss.ctmark == s.ctmark
                    && miss.notrack == s.notrack;
                if !pure {
                    // Explore both: the rule matched, and it did not.
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
                    miss.pos += 1;
                    let at_fork = s.clone();
                    let taken = self.apply(s, effect, forks);
                    let skipped = self.run(miss, forks);
                    return self.merge(taken, skipped, at_fork, here);
                }
            }
            if let Effect::Unknown = effect {
                return self.finish(
                    s,
                    Verdict::May {
                        candidates: Vec::new(),
                        open: true,
                    },
                    Some(Decider::Rule(self.rule_ref(here.0, here.1))),
                );
            }
            match self.step(s, effect) {
                Ok(next) => s = next,
                Err(out) => return *out,
            }
        }
    }

    /// Take a matched rule's effect and keep walking.
    fn apply(&self, s: State, effect: Effect, forks: &mut usize) -> Outcome {
        if let Effect::Unknown = effect {
            let here = (s.chain, s.pos);
            return self.finish(
                s,
                Verdict::May {
                    candidates: Vec::new(),
                    open: true,
                },
                Some(Decider::Rule(self.rule_ref(here.0, here.1))),
            );
        }
        match self.step(s, effect) {
            Ok(next) => self.run(next, forks),
            Err(out) => *out,
        }
    }

    /// Move the walk past a matched rule; `Err` when the walk ends there.
    fn step(&self, mut s: State, effect: Effect) -> Result<State, Box<Outcome>> {
        let here = (s.chain, s.pos);
        match effect {
            Effect::Continue | Effect::Unknown => s.pos += 1,
            Effect::Jump(to) => {
                if s.stack.len() >= MAX_JUMP_DEPTH {
                    return Err(Box::new(Outcome::error(format!(
                        "jumps nested deeper than {MAX_JUMP_DEPTH} chains"
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
                let decided = Some(Decider::Rule(self.rule_ref(here.0, here.1)));
                return Err(Box::new(self.finish(s, v, decided)));
            }
        }
        Ok(s)
    }

    fn merge(&self, taken: Outcome, skipped: Outcome, s: State, here: (usize, usize)) -> Outcome {
        match merge_branches(taken, skipped) {
            Ok(one) => one,
            Err(may) => {
                let decided = Some(Decider::Rule(self.rule_ref(here.0, here.1)));
                self.finish(s, may, decided)
            }
        }
    }

    /// What the target does; marks and notrack are applied to `s` (only when the rule
    /// surely matched; a *may* rule's effect is applied in its fork).
    fn effect(&self, t: &Target, s: &mut State) -> Effect {
        match t {
            Target::None | Target::Log(_) | Target::Nflog(_) | Target::Trace => Effect::Continue,
            Target::Accept => Effect::Stop(Verdict::Accept),
            Target::Drop => Effect::Stop(Verdict::Drop),
            Target::Reject { with } => Effect::Stop(Verdict::Reject { with: with.clone() }),
            Target::Return => Effect::Return,
            Target::Jump(c) => match self.index.get(c.as_str()) {
                Some(&i) => Effect::Jump(i),
                None => Effect::Unknown,
            },
            Target::Goto(c) => match self.index.get(c.as_str()) {
                Some(&i) => Effect::Goto(i),
                None => Effect::Unknown,
            },
            Target::Mark(op) => {
                s.mark = s.mark.map(|m| apply_mark(m, *op));
                Effect::Continue
            }
            Target::Connmark(opts) => {
                self.connmark(opts, s);
                Effect::Continue
            }
            Target::Dnat { to, .. } => Effect::Stop(Verdict::Nat {
                kind: NatKind::Dnat,
                to: *to,
                to_ports: None,
            }),
            Target::Snat { to, .. } => Effect::Stop(Verdict::Nat {
                kind: NatKind::Snat,
                to: *to,
                to_ports: None,
            }),
            Target::Masquerade { to_ports, .. } => Effect::Stop(Verdict::Nat {
                kind: NatKind::Masquerade,
                to: None,
                to_ports: *to_ports,
            }),
            Target::Redirect { to_ports, .. } => Effect::Stop(Verdict::Nat {
                kind: NatKind::Redirect,
                to: None,
                to_ports: *to_ports,
            }),
            // NOTRACK and CT return XT_CONTINUE in the kernel: later rules still run.
            Target::Notrack => {
                s.notrack = true;
                Effect::Continue
            }
            Target::Ct(opts) => {
                if t.is_notrack() {
                    s.notrack = true;
                } else if opts.iter().any(|o| o.name != "zone" && o.name != "helper") {
                    return Effect::Unknown;
                }
                Effect::Continue
            }
            Target::Unknown { .. } => Effect::Unknown,
        }
    }

    fn connmark(&self, opts: &[Opt], s: &mut State) {
        if !self.packet.ct_state.tracked() {
            // No connection to mark: the kernel's CONNMARK does nothing.
            return;
        }
        let val = |name: &str| -> Option<(u32, Option<u32>)> {
            let o = opts.iter().find(|o| o.name == name)?;
            let v = o.values.first()?;
            let (a, b) = match v.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (v.as_str(), None),
            };
            Some((num(a)?, b.and_then(num)))
        };
        let mask = |name: &str| val(name).map(|(v, _)| v).unwrap_or(u32::MAX);
        let has = |name: &str| opts.iter().any(|o| o.name == name);
        if let Some((v, m)) = val("set-xmark") {
            let m = m.unwrap_or(u32::MAX);
            s.ctmark = s.ctmark.map(|c| (c & !m) ^ v);
        } else if let Some((v, m)) = val("set-mark") {
            let m = m.unwrap_or(u32::MAX);
            s.ctmark = s.ctmark.map(|c| (c & !m) ^ v);
        } else if has("save-mark") {
            let (nf, ct) = (mask("nfmask"), mask("ctmask"));
            s.ctmark = match (s.ctmark, s.mark) {
                (Some(c), Some(m)) => Some((c & !ct) ^ (m & nf)),
                _ => None,
            };
        } else if has("restore-mark") {
            let (nf, ct) = (mask("nfmask"), mask("ctmask"));
            s.mark = match (s.ctmark, s.mark) {
                (Some(c), Some(m)) => Some((m & !nf) ^ (c & ct)),
                _ => None,
            };
        } else {
            s.ctmark = None;
            s.mark = None;
        }
    }

    fn rule_hit(&self, matches: &[Match], s: &State) -> Hit {
        let mut hit = Hit::Yes;
        for m in matches {
            match self.match_hit(m, s) {
                Hit::No => return Hit::No,
                Hit::May => hit = Hit::May,
                Hit::Yes => {}
            }
        }
        hit
    }

    fn match_hit(&self, m: &Match, s: &State) -> Hit {
        let p = self.packet;
        match m {
            Match::Source(n) => neg(n.negated, n.value.contains(&p.src)),
            Match::Destination(n) => neg(n.negated, n.value.contains(&p.dst)),
            Match::InInterface(n) => neg(n.negated, n.value.matches(p.iif.as_deref().unwrap_or(""))),
            Match::OutInterface(n) => neg(n.negated, n.value.matches(p.oif.as_deref().unwrap_or(""))),
            Match::Protocol(n) => proto_hit(n, p.proto),
            Match::Fragment { negated } => neg(*negated, p.fragment),
            Match::Tcp { options, .. } => {
                if p.proto != Proto::Tcp || p.fragment {
                    return Hit::No;
                }
                all(options.iter().map(|o| port_opt_hit(o, p)))
            }
            Match::Udp { options, .. } => {
                if p.proto != Proto::Udp || p.fragment {
                    return Hit::No;
                }
                all(options.iter().map(|o| port_opt_hit(o, p)))
            }
            Match::Multiport(opts) => {
                if p.fragment {
                    return Hit::No;
                }
                let (Some(sp), Some(dp)) = (p.sport, p.dport) else {
                    return Hit::No;
                };
                let any = |l: &[PortRange], port: u16| l.iter().any(|r| r.contains(port));
                all(opts.iter().map(|o| {
                    let yes = match &o.value {
                        MultiportOpt::Sports(l) => any(l, sp),
                        MultiportOpt::Dports(l) => any(l, dp),
                        MultiportOpt::Ports(l) => any(l, sp) || any(l, dp),
                    };
                    neg(o.negated, yes)
                }))
            }
            Match::Conntrack(opts) => self.conntrack_hit(opts),
            Match::State(n) => neg(n.negated, state_bit(p, &n.value, false)),
            Match::AddrType(opts) => self.addrtype_hit(opts),
            Match::Physdev(opts) => physdev_hit(opts, p.physdev.as_ref()),
            Match::Icmp { icmp_type, .. } => icmp_hit(icmp_type, p, Proto::Icmp),
            Match::Icmp6 { icmp_type, .. } => icmp_hit(icmp_type, p, Proto::Icmpv6),
            Match::Mark(n) => match s.mark {
                Some(mark) => neg(n.negated, mark_hit(n.value, mark)),
                None => Hit::May,
            },
            Match::Connmark(n) => {
                if !p.ct_state.tracked() {
                    return Hit::No;
                }
                match s.ctmark {
                    Some(mark) => neg(n.negated, mark_hit(n.value, mark)),
                    None => Hit::May,
                }
            }
            Match::Set { negated, name, dirs } => {
                let (Some(members), [dir]) = (self.ctx.sets.get(name), dirs.as_slice()) else {
                    return Hit::May;
                };
                let addr = match dir {
                    SetDir::Src => p.src,
                    SetDir::Dst => p.dst,
                };
                neg(*negated, members.iter().any(|n| n.contains(&addr)))
            }
            Match::Comment(_) => Hit::Yes,
            Match::Runtime { .. } | Match::Unknown { .. } => Hit::May,
        }
    }

    fn conntrack_hit(&self, opts: &[Neg<ConntrackOpt>]) -> Hit {
        let p = self.packet;
        let mut hit = Hit::Yes;
        let mut has_state = false;
        // The kernel tests --ctstate first, then fails every other option when the
        // packet has no connection.
        for o in opts {
            if let ConntrackOpt::State(states) = &o.value {
                has_state = true;
                if neg(o.negated, state_bit(p, states, true)) == Hit::No {
                    return Hit::No;
                }
            }
        }
        if !p.ct_state.tracked() {
            return if has_state { Hit::Yes } else { Hit::No };
        }
        for o in opts {
            let h = match &o.value {
                ConntrackOpt::State(_) => Hit::Yes,
                ConntrackOpt::Proto(pr) => match pr.number() {
                    Some(n) => neg(o.negated, n == p.proto.number()),
                    None => Hit::May,
                },
                ConntrackOpt::Dir(d) => neg(o.negated, *d == p.ct_dir),
                _ => Hit::May,
            };
            match h {
                Hit::No => return Hit::No,
                Hit::May => hit = Hit::May,
                Hit::Yes => {}
            }
        }
        hit
    }

    fn addrtype_hit(&self, opts: &[Neg<AddrTypeOpt>]) -> Hit {
        let p = self.packet;
        let limit_in = opts.iter().any(|o| matches!(o.value, AddrTypeOpt::LimitIfaceIn));
        let limit_out = opts.iter().any(|o| matches!(o.value, AddrTypeOpt::LimitIfaceOut));
        let dev = if limit_in {
            Some(p.iif.as_deref().unwrap_or(""))
        } else if limit_out {
            Some(p.oif.as_deref().unwrap_or(""))
        } else {
            None
        };
        all(opts.iter().map(|o| {
            let (types, addr) = match &o.value {
                AddrTypeOpt::SrcType(t) => (t, p.src),
                AddrTypeOpt::DstType(t) => (t, p.dst),
                _ => return Hit::Yes,
            };
            match self.addr_type(addr, dev) {
                Some(t) => neg(o.negated, types.contains(&t)),
                None => Hit::May,
            }
        }))
    }

    /// The kernel's `inet_dev_addr_type` for IPv4 from the local addresses; `None`
    /// when undecidable (IPv6, addresses unknown, a subnet broadcast).
    fn addr_type(&self, addr: IpAddr, dev: Option<&str>) -> Option<AddrType> {
        let IpAddr::V4(a) = addr else { return None };
        if a.is_unspecified() || a.is_broadcast() {
            return Some(AddrType::Broadcast);
        }
        if a.is_multicast() {
            return Some(AddrType::Multicast);
        }
        let locals = self.ctx.local_addrs.as_ref()?;
        for (ifname, nets) in locals {
            for net in nets {
                let IpNet::V4(n) = net else { continue };
                // A loopback address puts its whole prefix in the local table.
                let local = n.addr() == a || (ifname == "lo" && n.contains(&a));
                if local {
                    return Some(match dev {
                        Some(d) if d != ifname => AddrType::Unicast,
                        _ => AddrType::Local,
                    });
                }
                if n.prefix_len() < 31 && (n.broadcast() == a || n.network() == a) {
                    // Broadcast routes exist only when `brd` was set: not known here.
                    return None;
                }
            }
        }
        Some(AddrType::Unicast)
    }
}

fn num(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn apply_mark(mark: u32, op: MarkOp) -> u32 {
    match op {
        MarkOp::SetXmark { value, mask } => (mark & !mask) ^ value,
        MarkOp::SetMark { value, mask } => {
            let mask = mask.unwrap_or(u32::MAX);
            (mark & !mask) ^ value
        }
        MarkOp::AndMark(v) => mark & v,
        MarkOp::OrMark(v) => mark | v,
        MarkOp::XorMark(v) => mark ^ v,
    }
}

fn neg(negated: bool, yes: bool) -> Hit {
    if yes != negated { Hit::Yes } else { Hit::No }
}

fn all(hits: impl Iterator<Item = Hit>) -> Hit {
    let mut out = Hit::Yes;
    for h in hits {
        match h {
            Hit::No => return Hit::No,
            Hit::May => out = Hit::May,
            Hit::Yes => {}
        }
    }
    out
}

fn proto_hit(n: &Neg<Protocol>, proto: Proto) -> Hit {
    match n.value.number() {
        // Protocol 0 (`all`) is not tested at all, `!` or not (ip_packet_match).
        Some(0) => Hit::Yes,
        Some(want) => neg(n.negated, want == proto.number()),
        None => Hit::May,
    }
}

fn port_opt_hit(o: &Neg<PortOpt>, p: &Packet) -> Hit {
    let yes = match &o.value {
        PortOpt::Sport(r) => p.sport.is_some_and(|x| r.contains(x)),
        PortOpt::Dport(r) => p.dport.is_some_and(|x| r.contains(x)),
        PortOpt::TcpFlags { mask, set } => {
            let Some(flags) = p.tcp_flags else {
                return Hit::May;
            };
            let (m, c) = (flag_bits(mask), flag_bits(set));
            (flags & m) == c
        }
        PortOpt::Syn => {
            let Some(flags) = p.tcp_flags else {
                return Hit::May;
            };
            let m = tcp_flags::SYN | tcp_flags::RST | tcp_flags::ACK | tcp_flags::FIN;
            (flags & m) == tcp_flags::SYN
        }
        PortOpt::TcpOption(_) => return Hit::May,
    };
    neg(o.negated, yes)
}

fn flag_bits(flags: &[TcpFlag]) -> u8 {
    flags.iter().fold(0, |acc, f| {
        acc | match f {
            TcpFlag::Fin => tcp_flags::FIN,
            TcpFlag::Syn => tcp_flags::SYN,
            TcpFlag::Rst => tcp_flags::RST,
            TcpFlag::Psh => tcp_flags::PSH,
            TcpFlag::Ack => tcp_flags::ACK,
            TcpFlag::Urg => tcp_flags::URG,
            TcpFlag::Ece => tcp_flags::ECE,
            TcpFlag::Cwr => tcp_flags::CWR,
            TcpFlag::All => 0xff,
            TcpFlag::None => 0,
        }
    })
}

/// Whether the packet's state is in `states` (xt_conntrack adds the SNAT/DNAT bits of a
/// NATed connection; xt_state does not).
fn state_bit(p: &Packet, states: &[CtState], nat_bits: bool) -> bool {
    let own = match p.ct_state {
        ConnState::New => CtState::New,
        ConnState::Established => CtState::Established,
        ConnState::Related => CtState::Related,
        ConnState::Invalid => CtState::Invalid,
        ConnState::Untracked => CtState::Untracked,
    };
    states.iter().any(|s| {
        *s == own
            || (nat_bits && p.ct_state.tracked() && *s == CtState::Snat && p.ct_snat)
            || (nat_bits && p.ct_state.tracked() && *s == CtState::Dnat && p.ct_dnat)
    })
}

fn icmp_hit(t: &Neg<IcmpType>, p: &Packet, want: Proto) -> Hit {
    if p.proto != want || p.fragment {
        return Hit::No;
    }
    let Some((kind, code)) = p.icmp else {
        return Hit::May;
    };
    let v = t.value;
    let yes = v.any || v.kind == u8::MAX || (kind == v.kind && v.code.is_none_or(|c| c == code));
    neg(t.negated, yes)
}

fn mark_hit(m: MarkMask, mark: u32) -> bool {
    mark & m.mask.unwrap_or(u32::MAX) == m.value
}

/// xt_physdev's `physdev_mt`, option by option as the kernel orders them.
fn physdev_hit(opts: &[Neg<PhysdevOpt>], ph: Option<&Physdev>) -> Hit {
    let Some(ph) = ph else {
        // Not bridged: only inverted options match.
        return if opts.iter().all(|o| o.negated) {
            Hit::Yes
        } else {
            Hit::No
        };
    };
    let indev = ph.in_port.as_deref();
    let outdev = ph.out_port.as_deref();
    for o in opts {
        let ok = match &o.value {
            PhysdevOpt::IsBridged => outdev.is_some() != o.negated,
            PhysdevOpt::IsIn => indev.is_some() != o.negated,
            PhysdevOpt::IsOut => outdev.is_some() != o.negated,
            // A missing port passes the name test (the kernel skips it).
            PhysdevOpt::In(i) => indev.is_none_or(|d| i.matches(d) != o.negated),
            PhysdevOpt::Out(i) => outdev.is_none_or(|d| i.matches(d) != o.negated),
        };
        if !ok {
            return Hit::No;
        }
    }
    Hit::Yes
}

#[cfg(test)]
mod tests;
