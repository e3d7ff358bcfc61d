//! Parse one `iptables-save` rule line into a [`Rule`]: lenient inside a rule (what
//! it does not know becomes [`Match::Unknown`] / [`Target::Unknown`]), strict only
//! about the line's frame (`[p:b] -A CHAIN`, balanced quotes).

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::rule::*;
use crate::{Error, Result};

/// One word of a rule line: as written (`raw`, quotes and escapes kept) and as meant
/// (`text`, unquoted).
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub raw: String,
    pub text: String,
}

fn invalid(line: &str, why: &str) -> Error {
    Error::Invalid(format!("iptables rule {:?}: {why}", crate::text::escape(line)))
}

/// Split a rule line into words the way iptables-restore does: spaces separate,
/// double quotes group, a backslash inside quotes escapes the next character.
pub(super) fn tokenize(line: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut raw = String::new();
        let mut text = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            if !quoted && c.is_ascii_whitespace() {
                break;
            }
            chars.next();
            raw.push(c);
            match c {
                '"' => quoted = !quoted,
                '\\' if quoted => {
                    let Some(n) = chars.next() else {
                        return Err(invalid(line, "a backslash ends the line"));
                    };
                    raw.push(n);
                    text.push(n);
                }
                _ => text.push(c),
            }
        }
        if quoted {
            return Err(invalid(line, "a quote is not closed"));
        }
        out.push(Token { raw, text });
    }
    Ok(out)
}

const CORE: &[&str] = &[
    "-s",
    "--source",
    "--src",
    "-d",
    "--destination",
    "--dst",
    "-i",
    "--in-interface",
    "-o",
    "--out-interface",
    "-p",
    "--protocol",
    "-f",
    "--fragment",
    "-m",
    "--match",
    "-j",
    "--jump",
    "-g",
    "--goto",
];

fn is_core(t: &Token) -> bool {
    CORE.contains(&t.raw.as_str())
}

/// Whether a new top-level option starts at `k`: a core option, or `!` before one.
fn starts_core(toks: &[Token], k: usize) -> bool {
    match toks.get(k) {
        Some(t) if is_core(t) => true,
        Some(t) if t.raw == "!" => toks.get(k + 1).is_some_and(is_core),
        _ => false,
    }
}

/// The end of the module options starting at `from`: the next top-level option.
fn module_end(toks: &[Token], from: usize) -> usize {
    (from..toks.len())
        .find(|&k| starts_core(toks, k))
        .unwrap_or(toks.len())
}

fn raws(toks: &[Token]) -> Vec<String> {
    toks.iter().map(|t| t.raw.clone()).collect()
}

/// `[!] --name values...` groups of a module's tokens, or `None` when a token is
/// not where an option should be.
struct RawOpt<'a> {
    negated: bool,
    name: &'a str,
    values: &'a [Token],
}

fn is_opt_start(t: &Token) -> bool {
    t.raw == "!" || (t.raw.starts_with("--") && t.raw.len() > 2)
}

fn raw_opts(toks: &[Token]) -> Option<Vec<RawOpt<'_>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let negated = toks[i].raw == "!";
        if negated {
            i += 1;
        }
        let name = toks.get(i)?.raw.strip_prefix("--").filter(|n| !n.is_empty())?;
        i += 1;
        let start = i;
        while i < toks.len() && !is_opt_start(&toks[i]) {
            i += 1;
        }
        out.push(RawOpt {
            negated,
            name,
            values: &toks[start..i],
        });
    }
    Some(out)
}

fn to_opts(opts: &[RawOpt<'_>]) -> Vec<Opt> {
    opts.iter()
        .map(|o| Opt {
            negated: o.negated,
            name: o.name.to_string(),
            values: raws(o.values),
        })
        .collect()
}

/// The single value of an option, or `None` when it has none or several.
fn one<'a>(o: &RawOpt<'a>) -> Option<&'a str> {
    match o.values {
        [v] => Some(v.text.as_str()),
        _ => None,
    }
}

fn none(o: &RawOpt<'_>) -> Option<()> {
    o.values.is_empty().then_some(())
}

fn port(s: &str) -> Option<u16> {
    // Service names need /etc/services of the host that wrote the rule: left unknown.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `a`, `a:b`, `:b`, `a:` (iptables match syntax).
fn port_range(s: &str) -> Option<PortRange> {
    match s.split_once(':') {
        None => port(s).map(|p| PortRange { first: p, last: p }),
        Some((a, b)) => {
            let first = if a.is_empty() { 0 } else { port(a)? };
            let last = if b.is_empty() { u16::MAX } else { port(b)? };
            (first <= last).then_some(PortRange { first, last })
        }
    }
}

/// `a` or `a-b` (NAT target syntax).
fn nat_ports(s: &str) -> Option<PortRange> {
    match s.split_once('-') {
        None => port(s).map(|p| PortRange { first: p, last: p }),
        Some((a, b)) => {
            let (first, last) = (port(a)?, port(b)?);
            (first <= last).then_some(PortRange { first, last })
        }
    }
}

fn port_list(s: &str) -> Option<Vec<PortRange>> {
    let v = s.split(',').map(port_range).collect::<Option<Vec<_>>>()?;
    (!v.is_empty() && v.len() <= 15).then_some(v)
}

/// An address with an optional `/prefix` or contiguous dotted `/mask`.
fn net(s: &str) -> Option<IpNet> {
    if let Ok(n) = IpNet::from_str(s) {
        return Some(n);
    }
    if let Ok(a) = IpAddr::from_str(s) {
        return Some(IpNet::from(a));
    }
    let (a, m) = s.split_once('/')?;
    let (IpAddr::V4(a), IpAddr::V4(m)) = (IpAddr::from_str(a).ok()?, IpAddr::from_str(m).ok()?) else {
        return None;
    };
    let bits = u32::from(m);
    let len = bits.leading_ones();
    // A non-contiguous mask has no prefix form: such a rule stays unknown.
    if bits.checked_shl(len).unwrap_or(0) != 0 {
        return None;
    }
    ipnet::Ipv4Net::new(a, len as u8).ok().map(IpNet::V4)
}

fn number_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn mark_mask(s: &str) -> Option<MarkMask> {
    match s.split_once('/') {
        None => Some(MarkMask {
            value: number_u32(s)?,
            mask: None,
        }),
        Some((v, m)) => Some(MarkMask {
            value: number_u32(v)?,
            mask: Some(number_u32(m)?),
        }),
    }
}

fn list<T>(s: &str, f: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    let v = s.split(',').map(f).collect::<Option<Vec<_>>>()?;
    (!v.is_empty()).then_some(v)
}

fn icmp_type(s: &str, v6: bool) -> Option<IcmpType> {
    if s.eq_ignore_ascii_case("any") {
        return Some(IcmpType {
            kind: u8::MAX,
            code: None,
            any: true,
        });
    }
    let numeric = |kind: &str, code: Option<&str>| -> Option<IcmpType> {
        Some(IcmpType {
            kind: kind.parse().ok()?,
            code: match code {
                Some(c) => Some(c.parse().ok()?),
                None => None,
            },
            any: false,
        })
    };
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return match s.split_once('/') {
            Some((t, c)) => numeric(t, Some(c)),
            None => numeric(s, None),
        };
    }
    let v4: &[(&str, u8, Option<u8>)] = &[
        ("echo-reply", 0, None),
        ("pong", 0, None),
        ("destination-unreachable", 3, None),
        ("network-unreachable", 3, Some(0)),
        ("host-unreachable", 3, Some(1)),
        ("protocol-unreachable", 3, Some(2)),
        ("port-unreachable", 3, Some(3)),
        ("fragmentation-needed", 3, Some(4)),
        ("source-route-failed", 3, Some(5)),
        ("network-prohibited", 3, Some(9)),
        ("host-prohibited", 3, Some(10)),
        ("communication-prohibited", 3, Some(13)),
        ("source-quench", 4, None),
        ("redirect", 5, None),
        ("echo-request", 8, None),
        ("ping", 8, None),
        ("router-advertisement", 9, None),
        ("router-solicitation", 10, None),
        ("time-exceeded", 11, None),
        ("ttl-exceeded", 11, None),
        ("ttl-zero-during-transit", 11, Some(0)),
        ("ttl-zero-during-reassembly", 11, Some(1)),
        ("parameter-problem", 12, None),
        ("timestamp-request", 13, None),
        ("timestamp-reply", 14, None),
        ("address-mask-request", 17, None),
        ("address-mask-reply", 18, None),
    ];
    let v6t: &[(&str, u8, Option<u8>)] = &[
        ("destination-unreachable", 1, None),
        ("no-route", 1, Some(0)),
        ("communication-prohibited", 1, Some(1)),
        ("address-unreachable", 1, Some(3)),
        ("port-unreachable", 1, Some(4)),
        ("packet-too-big", 2, None),
        ("time-exceeded", 3, None),
        ("ttl-exceeded", 3, None),
        ("parameter-problem", 4, None),
        ("echo-request", 128, None),
        ("ping", 128, None),
        ("echo-reply", 129, None),
        ("pong", 129, None),
        ("router-solicitation", 133, None),
        ("router-advertisement", 134, None),
        ("neighbour-solicitation", 135, None),
        ("neighbor-solicitation", 135, None),
        ("neighbour-advertisement", 136, None),
        ("neighbor-advertisement", 136, None),
        ("redirect", 137, None),
    ];
    let table = if v6 { v6t } else { v4 };
    table
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(s))
        .map(|&(_, kind, code)| IcmpType {
            kind,
            code,
            any: false,
        })
}

fn port_opts(opts: &[RawOpt<'_>], tcp: bool) -> Option<Vec<Neg<PortOpt>>> {
    opts.iter()
        .map(|o| {
            let value = match o.name {
                "sport" | "source-port" => PortOpt::Sport(port_range(one(o)?)?),
                "dport" | "destination-port" => PortOpt::Dport(port_range(one(o)?)?),
                "tcp-flags" if tcp => match o.values {
                    [m, s] => PortOpt::TcpFlags {
                        mask: list(&m.text, TcpFlag::from_name)?,
                        set: list(&s.text, TcpFlag::from_name)?,
                    },
                    _ => return None,
                },
                "syn" if tcp => {
                    none(o)?;
                    PortOpt::Syn
                }
                "tcp-option" if tcp => PortOpt::TcpOption(one(o)?.parse().ok()?),
                _ => return None,
            };
            Some(Neg {
                negated: o.negated,
                value,
            })
        })
        .collect()
}

fn typed<T>(opts: &[RawOpt<'_>], f: impl Fn(&RawOpt<'_>) -> Option<T>) -> Option<Vec<Neg<T>>> {
    opts.iter()
        .map(|o| {
            Some(Neg {
                negated: o.negated,
                value: f(o)?,
            })
        })
        .collect()
}

fn single<'a, 'b>(opts: &'b [RawOpt<'a>], name: &str) -> Option<&'b RawOpt<'a>> {
    match opts {
        [o] if o.name == name => Some(o),
        _ => None,
    }
}

/// A module's options in typed form; `None` when anything is not understood.
fn module(name: &str, toks: &[Token], implicit: bool) -> Option<Match> {
    let opts = raw_opts(toks)?;
    let m = match name {
        "tcp" => Match::Tcp {
            implicit,
            options: port_opts(&opts, true)?,
        },
        "udp" => Match::Udp {
            implicit,
            options: port_opts(&opts, false)?,
        },
        "multiport" => Match::Multiport(typed(&opts, |o| {
            let ports = port_list(one(o)?)?;
            Some(match o.name {
                "sports" | "source-ports" => MultiportOpt::Sports(ports),
                "dports" | "destination-ports" => MultiportOpt::Dports(ports),
                "ports" => MultiportOpt::Ports(ports),
                _ => return None,
            })
        })?),
        "conntrack" => Match::Conntrack(typed(&opts, |o| {
            Some(match o.name {
                "ctstate" => ConntrackOpt::State(list(one(o)?, CtState::from_name)?),
                "ctproto" => ConntrackOpt::Proto(Protocol(one(o)?.to_string())),
                "ctorigsrc" => ConntrackOpt::OrigSrc(net(one(o)?)?),
                "ctorigdst" => ConntrackOpt::OrigDst(net(one(o)?)?),
                "ctreplsrc" => ConntrackOpt::ReplSrc(net(one(o)?)?),
                "ctrepldst" => ConntrackOpt::ReplDst(net(one(o)?)?),
                "ctorigsrcport" => ConntrackOpt::OrigSrcPort(port_range(one(o)?)?),
                "ctorigdstport" => ConntrackOpt::OrigDstPort(port_range(one(o)?)?),
                "ctreplsrcport" => ConntrackOpt::ReplSrcPort(port_range(one(o)?)?),
                "ctrepldstport" => ConntrackOpt::ReplDstPort(port_range(one(o)?)?),
                "ctstatus" => ConntrackOpt::Status(list(one(o)?, |s| {
                    ["NONE", "EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED"]
                        .contains(&s)
                        .then(|| s.to_string())
                })?),
                "ctexpire" => {
                    let v = one(o)?;
                    port_range(v)?;
                    ConntrackOpt::Expire(v.to_string())
                }
                "ctdir" => ConntrackOpt::Dir(CtDir::from_name(one(o)?)?),
                _ => return None,
            })
        })?),
        "state" => {
            let o = single(&opts, "state")?;
            Match::State(Neg {
                negated: o.negated,
                value: list(one(o)?, CtState::from_name)?,
            })
        }
        "addrtype" => Match::AddrType(typed(&opts, |o| {
            Some(match o.name {
                "src-type" => AddrTypeOpt::SrcType(list(one(o)?, AddrType::from_name)?),
                "dst-type" => AddrTypeOpt::DstType(list(one(o)?, AddrType::from_name)?),
                "limit-iface-in" => none(o).map(|_| AddrTypeOpt::LimitIfaceIn)?,
                "limit-iface-out" => none(o).map(|_| AddrTypeOpt::LimitIfaceOut)?,
                _ => return None,
            })
        })?),
        "physdev" => Match::Physdev(typed(&opts, |o| {
            Some(match o.name {
                "physdev-in" => PhysdevOpt::In(Iface(one(o)?.to_string())),
                "physdev-out" => PhysdevOpt::Out(Iface(one(o)?.to_string())),
                "physdev-is-in" => none(o).map(|_| PhysdevOpt::IsIn)?,
                "physdev-is-out" => none(o).map(|_| PhysdevOpt::IsOut)?,
                "physdev-is-bridged" => none(o).map(|_| PhysdevOpt::IsBridged)?,
                _ => return None,
            })
        })?),
        "icmp" => {
            let o = single(&opts, "icmp-type")?;
            Match::Icmp {
                implicit,
                icmp_type: Neg {
                    negated: o.negated,
                    value: icmp_type(one(o)?, false)?,
                },
            }
        }
        "icmp6" => {
            let o = single(&opts, "icmpv6-type")?;
            Match::Icmp6 {
                implicit,
                icmp_type: Neg {
                    negated: o.negated,
                    value: icmp_type(one(o)?, true)?,
                },
            }
        }
        "mark" | "connmark" => {
            let o = single(&opts, "mark")?;
            let value = Neg {
                negated: o.negated,
                value: mark_mask(one(o)?)?,
            };
            if name == "mark" {
                Match::Mark(value)
            } else {
                Match::Connmark(value)
            }
        }
        "set" => {
            let o = single(&opts, "match-set")?;
            let [set, dirs] = o.values else { return None };
            let dirs = list(&dirs.text, SetDir::from_name)?;
            if set.text.is_empty() || dirs.len() > 6 {
                return None;
            }
            Match::Set {
                negated: o.negated,
                name: set.text.clone(),
                dirs,
            }
        }
        "comment" => {
            let o = single(&opts, "comment")?;
            if o.negated {
                return None;
            }
            Match::Comment(one(o)?.to_string())
        }
        _ => Match::Runtime {
            module: RuntimeModule::from_name(name)?,
            options: to_opts(&opts),
        },
    };
    Some(m)
}

fn nat_range(s: &str) -> Option<NatRange> {
    if s.is_empty() {
        return None;
    }
    // IPv6 with a port: `[a]:p`, `[a]-[b]:p`; without: `a`, `a-b`.
    let (addrs, ports) = if s.starts_with('[') {
        let close = s.rfind(']')?;
        let (a, rest) = s.split_at(close + 1);
        let ports = match rest.strip_prefix(':') {
            Some(p) => Some(nat_ports(p)?),
            None if rest.is_empty() => None,
            None => return None,
        };
        (a, ports)
    } else if s.matches(':').count() == 1 || s.starts_with(':') {
        let (a, p) = s.split_once(':')?;
        (a, Some(nat_ports(p)?))
    } else {
        (s, None)
    };
    let addr = |a: &str| IpAddr::from_str(a.trim_start_matches('[').trim_end_matches(']')).ok();
    let (addr_first, addr_last) = if addrs.is_empty() {
        (None, None)
    } else {
        match addrs.split_once("-") {
            Some((a, b)) => (Some(addr(a)?), Some(addr(b)?)),
            None => (Some(addr(addrs)?), None),
        }
    };
    Some(NatRange {
        addr_first,
        addr_last,
        ports,
    })
}

fn nat_to(opts: &[RawOpt<'_>], to: &str) -> Option<(Option<NatRange>, Vec<Opt>)> {
    let (range, rest) = match opts.split_first() {
        Some((o, rest)) if o.name == to && !o.negated => (Some(nat_range(one(o)?)?), rest),
        _ => (None, opts),
    };
    // The flags are bare switches; a second range or a `!` is not understood.
    rest.iter()
        .all(|o| !o.negated && o.values.is_empty() && o.name != to)
        .then_some(())?;
    Some((range, to_opts(rest)))
}

fn to_ports(opts: &[RawOpt<'_>]) -> Option<(Option<PortRange>, Vec<Opt>)> {
    let (ports, rest) = match opts.split_first() {
        Some((o, rest)) if o.name == "to-ports" && !o.negated => (Some(nat_ports(one(o)?)?), rest),
        _ => (None, opts),
    };
    rest.iter()
        .all(|o| !o.negated && o.values.is_empty())
        .then_some(())?;
    Some((ports, to_opts(rest)))
}

fn mark_op(opts: &[RawOpt<'_>]) -> Option<MarkOp> {
    let [o] = opts else { return None };
    if o.negated {
        return None;
    }
    let v = one(o)?;
    Some(match o.name {
        "set-xmark" => {
            let m = mark_mask(v)?;
            MarkOp::SetXmark {
                value: m.value,
                mask: m.mask.unwrap_or(u32::MAX),
            }
        }
        "set-mark" => {
            let m = mark_mask(v)?;
            MarkOp::SetMark {
                value: m.value,
                mask: m.mask,
            }
        }
        "and-mark" => MarkOp::AndMark(number_u32(v)?),
        "or-mark" => MarkOp::OrMark(number_u32(v)?),
        "xor-mark" => MarkOp::XorMark(number_u32(v)?),
        _ => return None,
    })
}

fn target(name: &str, toks: &[Token]) -> Target {
    typed_target(name, toks).unwrap_or_else(|| Target::Unknown {
        name: name.to_string(),
        args: raws(toks),
    })
}

fn typed_target(name: &str, toks: &[Token]) -> Option<Target> {
    let opts = raw_opts(toks)?;
    let bare = |t: Target| opts.is_empty().then_some(t);
    let plain = || opts.iter().all(|o| !o.negated).then(|| to_opts(&opts));
    match name {
        "ACCEPT" => bare(Target::Accept),
        "DROP" => bare(Target::Drop),
        "RETURN" => bare(Target::Return),
        "NOTRACK" => bare(Target::Notrack),
        "TRACE" => bare(Target::Trace),
        "REJECT" => match opts.as_slice() {
            [] => Some(Target::Reject { with: None }),
            [o] if o.name == "reject-with" && !o.negated => Some(Target::Reject {
                with: Some(one(o)?.to_string()),
            }),
            _ => None,
        },
        "LOG" => plain().map(Target::Log),
        "NFLOG" => plain().map(Target::Nflog),
        "CONNMARK" => plain().map(Target::Connmark),
        "CT" => plain().map(Target::Ct),
        "MARK" => mark_op(&opts).map(Target::Mark),
        "DNAT" => nat_to(&opts, "to-destination").map(|(to, flags)| Target::Dnat { to, flags }),
        "SNAT" => nat_to(&opts, "to-source").map(|(to, flags)| Target::Snat { to, flags }),
        "MASQUERADE" => to_ports(&opts).map(|(to_ports, flags)| Target::Masquerade { to_ports, flags }),
        "REDIRECT" => to_ports(&opts).map(|(to_ports, flags)| Target::Redirect { to_ports, flags }),
        _ if !name.is_empty() && !name.starts_with('-') => bare(Target::Jump(name.to_string())),
        _ => None,
    }
}

fn counters(s: &str) -> Option<Counters> {
    let (p, b) = s.split_once(':')?;
    Some(Counters {
        packets: p.parse().ok()?,
        bytes: b.parse().ok()?,
    })
}

/// The module a protocol's options belong to when written without `-m`.
fn implicit_module(proto: &str) -> Option<&'static str> {
    match proto {
        "tcp" | "6" => Some("tcp"),
        "udp" | "17" => Some("udp"),
        "icmp" | "1" => Some("icmp"),
        "icmpv6" | "ipv6-icmp" | "58" => Some("icmp6"),
        _ => None,
    }
}

/// Parse one rule line as `iptables-save [-c]` writes it:
/// `[pkts:bytes] -A CHAIN [matches...] [-j TARGET [options...] | -g CHAIN]`.
///
/// Fails only when the line is not a rule (no `-A CHAIN`, bad counters, an open
/// quote); anything inside the rule that the model does not know is kept as
/// [`Match::Unknown`] or [`Target::Unknown`].
pub fn parse_rule(line: &str) -> Result<Rule> {
    let text = line.trim();
    let (counters, rest) = match text.strip_prefix('[') {
        Some(r) => {
            let (c, rest) = r
                .split_once(']')
                .ok_or_else(|| invalid(line, "`[` is not closed"))?;
            let c = counters(c).ok_or_else(|| invalid(line, "counters are not `[packets:bytes]`"))?;
            (Some(c), rest)
        }
        None => (None, text),
    };
    let toks = tokenize(rest)?;
    let (Some(a), Some(chain)) = (toks.first(), toks.get(1)) else {
        return Err(invalid(line, "no `-A CHAIN`"));
    };
    if a.raw != "-A" && a.raw != "--append" {
        return Err(invalid(line, "does not start with `-A CHAIN`"));
    }
    if chain.raw.is_empty() || chain.raw.starts_with('-') || chain.raw.starts_with('"') {
        return Err(invalid(line, "no chain name after `-A`"));
    }
    let mut rule = Rule {
        chain: chain.raw.clone(),
        counters,
        matches: Vec::new(),
        target: Target::None,
    };
    let mut proto: Option<String> = None;
    let mut i = 2;
    while i < toks.len() {
        let negated = toks[i].raw == "!" && toks.get(i + 1).is_some_and(is_core);
        let at = if negated { i + 1 } else { i };
        let opt = toks[at].raw.as_str();
        // Old iptables wrote `-s ! NET`; take the `!` in either place.
        let value_at = |k: usize| -> (bool, Option<&Token>) {
            match toks.get(k) {
                Some(t) if t.raw == "!" => (true, toks.get(k + 1)),
                t => (false, t),
            }
        };
        match opt {
            "-s" | "--source" | "--src" | "-d" | "--destination" | "--dst" | "-i" | "--in-interface"
            | "-o" | "--out-interface" | "-p" | "--protocol" => {
                let (late, value) = value_at(at + 1);
                let next = at + 2 + usize::from(late);
                let neg = negated || late;
                let m = value.and_then(|v| {
                    let t = v.text.as_str();
                    // A value that is itself an option means the option had none.
                    if t.is_empty() || v.raw.starts_with('-') {
                        return None;
                    }
                    Some(match opt {
                        "-s" | "--source" | "--src" => Match::Source(Neg {
                            negated: neg,
                            value: net(t)?,
                        }),
                        "-d" | "--destination" | "--dst" => Match::Destination(Neg {
                            negated: neg,
                            value: net(t)?,
                        }),
                        "-i" | "--in-interface" => Match::InInterface(Neg {
                            negated: neg,
                            value: Iface(t.to_string()),
                        }),
                        "-o" | "--out-interface" => Match::OutInterface(Neg {
                            negated: neg,
                            value: Iface(t.to_string()),
                        }),
                        _ => {
                            if !neg {
                                proto = Some(t.to_ascii_lowercase());
                            }
                            Match::Protocol(Neg {
                                negated: neg,
                                value: Protocol(t.to_string()),
                            })
                        }
                    })
                });
                let end = next.min(toks.len());
                rule.matches.push(m.unwrap_or_else(|| Match::Unknown {
                    module: opt.to_string(),
                    args: raws(&toks[i..end]),
                }));
                i = end;
            }
            "-f" | "--fragment" => {
                rule.matches.push(Match::Fragment { negated });
                i = at + 1;
            }
            "-m" | "--match" => {
                let name = toks.get(at + 1).map(|t| t.raw.as_str()).unwrap_or("");
                let start = (at + 2).min(toks.len());
                let end = module_end(&toks, start);
                let m = (!negated && !name.is_empty() && !name.starts_with('-'))
                    .then(|| module(name, &toks[start..end], false))
                    .flatten();
                rule.matches.push(m.unwrap_or_else(|| {
                    if negated || name.is_empty() || name.starts_with('-') {
                        Match::Unknown {
                            module: String::new(),
                            args: raws(&toks[i..end.max(at + 1)]),
                        }
                    } else {
                        Match::Unknown {
                            module: name.to_string(),
                            args: raws(&toks[start..end]),
                        }
                    }
                }));
                i = end.max(at + 1);
            }
            "-j" | "--jump" | "-g" | "--goto" if !negated => {
                let name = toks.get(at + 1).map(|t| t.raw.clone()).unwrap_or_default();
                let args = toks.get(at + 2..).unwrap_or(&[]);
                rule.target = if name.is_empty() || name.starts_with('-') || name.starts_with('"') {
                    Target::Unknown {
                        name: String::new(),
                        args: raws(&toks[at..]),
                    }
                } else if opt == "-g" || opt == "--goto" {
                    if args.is_empty() {
                        Target::Goto(name)
                    } else {
                        Target::Unknown {
                            name: String::new(),
                            args: raws(&toks[at..]),
                        }
                    }
                } else {
                    target(&name, args)
                };
                break;
            }
            _ => {
                // Options after `-p tcp` without `-m tcp` belong to the implicit module.
                let end = module_end(&toks, i + 1);
                let implicit = proto.as_deref().and_then(implicit_module);
                let m = implicit
                    .filter(|_| is_opt_start(&toks[i]))
                    .and_then(|name| module(name, &toks[i..end], true));
                rule.matches.push(m.unwrap_or_else(|| Match::Unknown {
                    module: String::new(),
                    args: raws(&toks[i..end]),
                }));
                i = end;
            }
        }
    }
    Ok(rule)
}
