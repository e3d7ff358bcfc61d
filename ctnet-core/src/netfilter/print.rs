//! Print a [`Rule`] back as the `-A ...` line iptables-save writes for it: options in
//! the order parsed, values in iptables' canonical spelling, strings quoted the way
//! libxtables quotes them.

use std::fmt::{self, Display, Formatter, Write as _};

use ipnet::IpNet;

use super::rule::*;

/// A string as `xtables_save_string` writes it: bare when it is only letters, digits,
/// `_` and `-`; otherwise in double quotes with `"`, `\` and `'` escaped.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A value iptables-save prints bare (an interface, a protocol): quoted only when it
/// could not be read back as one word (a value from a hand-written or damaged line).
fn word(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_ascii_whitespace() || matches!(c, '"' | '\\'))
    {
        std::borrow::Cow::Owned(quote(s))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn bang(f: &mut Formatter<'_>, negated: bool) -> fmt::Result {
    if negated { f.write_str("! ") } else { Ok(()) }
}

impl Display for PortRange {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

fn nat_ports(p: &PortRange) -> String {
    if p.first == p.last {
        p.first.to_string()
    } else {
        format!("{}-{}", p.first, p.last)
    }
}

fn join<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    items.iter().map(f).collect::<Vec<_>>().join(",")
}

fn hex(v: u32) -> String {
    format!("0x{v:x}")
}

impl Display for MarkMask {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(self.value))?;
        match self.mask {
            Some(m) => write!(f, "/{}", hex(m)),
            None => Ok(()),
        }
    }
}

impl Display for IcmpType {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.any {
            return f.write_str("any");
        }
        write!(f, "{}", self.kind)?;
        match self.code {
            Some(c) => write!(f, "/{c}"),
            None => Ok(()),
        }
    }
}

/// An address as libxt_conntrack writes it: a host without its `/32` or `/128`.
fn short_net(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

impl Display for Opt {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        bang(f, self.negated)?;
        write!(f, "--{}", self.name)?;
        for v in &self.values {
            write!(f, " {v}")?;
        }
        Ok(())
    }
}

fn opts(f: &mut Formatter<'_>, opts: &[Opt]) -> fmt::Result {
    for o in opts {
        write!(f, " {o}")?;
    }
    Ok(())
}

fn port_opt(o: &PortOpt) -> String {
    match o {
        PortOpt::Sport(p) => format!("--sport {p}"),
        PortOpt::Dport(p) => format!("--dport {p}"),
        PortOpt::TcpFlags { mask, set } => format!(
            "--tcp-flags {} {}",
            join(mask, |f| f.as_str().to_string()),
            join(set, |f| f.as_str().to_string())
        ),
        PortOpt::Syn => "--syn".to_string(),
        PortOpt::TcpOption(n) => format!("--tcp-option {n}"),
    }
}

fn multiport_opt(o: &MultiportOpt) -> String {
    let (name, ports) = match o {
        MultiportOpt::Sports(p) => ("sports", p),
        MultiportOpt::Dports(p) => ("dports", p),
        MultiportOpt::Ports(p) => ("ports", p),
    };
    format!("--{name} {}", join(ports, PortRange::to_string))
}

fn states(s: &[CtState]) -> String {
    join(s, |s| s.as_str().to_string())
}

fn conntrack_opt(o: &ConntrackOpt) -> String {
    match o {
        ConntrackOpt::State(s) => format!("--ctstate {}", states(s)),
        ConntrackOpt::Proto(p) => format!("--ctproto {}", p.0),
        ConntrackOpt::OrigSrc(n) => format!("--ctorigsrc {}", short_net(n)),
        ConntrackOpt::OrigDst(n) => format!("--ctorigdst {}", short_net(n)),
        ConntrackOpt::ReplSrc(n) => format!("--ctreplsrc {}", short_net(n)),
        ConntrackOpt::ReplDst(n) => format!("--ctrepldst {}", short_net(n)),
        ConntrackOpt::OrigSrcPort(p) => format!("--ctorigsrcport {p}"),
        ConntrackOpt::OrigDstPort(p) => format!("--ctorigdstport {p}"),
        ConntrackOpt::ReplSrcPort(p) => format!("--ctreplsrcport {p}"),
        ConntrackOpt::ReplDstPort(p) => format!("--ctrepldstport {p}"),
        ConntrackOpt::Status(s) => format!("--ctstatus {}", s.join(",")),
        ConntrackOpt::Expire(e) => format!("--ctexpire {e}"),
        ConntrackOpt::Dir(d) => format!("--ctdir {}", d.as_str()),
    }
}

fn addrtype_opt(o: &AddrTypeOpt) -> String {
    let types = |t: &[AddrType]| join(t, |t| t.as_str().to_string());
    match o {
        AddrTypeOpt::SrcType(t) => format!("--src-type {}", types(t)),
        AddrTypeOpt::DstType(t) => format!("--dst-type {}", types(t)),
        AddrTypeOpt::LimitIfaceIn => "--limit-iface-in".to_string(),
        AddrTypeOpt::LimitIfaceOut => "--limit-iface-out".to_string(),
    }
}

fn physdev_opt(o: &PhysdevOpt) -> String {
    match o {
        PhysdevOpt::In(i) => format!("--physdev-in {}", i.0),
        PhysdevOpt::Out(i) => format!("--physdev-out {}", i.0),
        PhysdevOpt::IsIn => "--physdev-is-in".to_string(),
        PhysdevOpt::IsOut => "--physdev-is-out".to_string(),
        PhysdevOpt::IsBridged => "--physdev-is-bridged".to_string(),
    }
}

fn module<T>(
    f: &mut Formatter<'_>,
    name: Option<&str>,
    items: &[Neg<T>],
    show: fn(&T) -> String,
) -> fmt::Result {
    let mut sep = "";
    if let Some(name) = name {
        write!(f, "-m {name}")?;
        sep = " ";
    }
    for o in items {
        f.write_str(sep)?;
        bang(f, o.negated)?;
        f.write_str(&show(&o.value))?;
        sep = " ";
    }
    Ok(())
}

impl Display for Match {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Match::Source(n) => {
                bang(f, n.negated)?;
                write!(f, "-s {}", n.value)
            }
            Match::Destination(n) => {
                bang(f, n.negated)?;
                write!(f, "-d {}", n.value)
            }
            Match::InInterface(i) => {
                bang(f, i.negated)?;
                write!(f, "-i {}", word(&i.value.0))
            }
            Match::OutInterface(i) => {
                bang(f, i.negated)?;
                write!(f, "-o {}", word(&i.value.0))
            }
            Match::Protocol(p) => {
                bang(f, p.negated)?;
                write!(f, "-p {}", word(&p.value.0))
            }
            Match::Fragment { negated } => {
                bang(f, *negated)?;
                f.write_str("-f")
            }
            Match::Tcp { implicit, options } => module(f, (!implicit).then_some("tcp"), options, port_opt),
            Match::Udp { implicit, options } => module(f, (!implicit).then_some("udp"), options, port_opt),
            Match::Multiport(o) => module(f, Some("multiport"), o, multiport_opt),
            Match::Conntrack(o) => module(f, Some("conntrack"), o, conntrack_opt),
            Match::State(s) => {
                f.write_str("-m state ")?;
                bang(f, s.negated)?;
                write!(f, "--state {}", states(&s.value))
            }
            Match::AddrType(o) => module(f, Some("addrtype"), o, addrtype_opt),
            Match::Physdev(o) => module(f, Some("physdev"), o, physdev_opt),
            Match::Icmp { implicit, icmp_type } => {
                if !implicit {
                    f.write_str("-m icmp ")?;
                }
                bang(f, icmp_type.negated)?;
                write!(f, "--icmp-type {}", icmp_type.value)
            }
            Match::Icmp6 { implicit, icmp_type } => {
                if !implicit {
                    f.write_str("-m icmp6 ")?;
                }
                bang(f, icmp_type.negated)?;
                write!(f, "--icmpv6-type {}", icmp_type.value)
            }
            Match::Mark(m) | Match::Connmark(m) => {
                let name = if matches!(self, Match::Mark(_)) {
                    "mark"
                } else {
                    "connmark"
                };
                write!(f, "-m {name} ")?;
                bang(f, m.negated)?;
                write!(f, "--mark {}", m.value)
            }
            Match::Set { negated, name, dirs } => {
                f.write_str("-m set ")?;
                bang(f, *negated)?;
                write!(f, "--match-set {name} {}", join(dirs, |d| d.as_str().to_string()))
            }
            Match::Comment(c) => write!(f, "-m comment --comment {}", quote(c)),
            Match::Runtime { module, options } => {
                write!(f, "-m {}", module.as_str())?;
                opts(f, options)
            }
            Match::Unknown { module, args } => {
                if module.is_empty() || module.starts_with('-') {
                    f.write_str(&args.join(" "))
                } else {
                    write!(f, "-m {module}")?;
                    for a in args {
                        write!(f, " {a}")?;
                    }
                    Ok(())
                }
            }
        }
    }
}

impl Display for NatRange {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let v6 = self.addr_first.is_some_and(|a| a.is_ipv6());
        let bracket = v6 && self.ports.is_some();
        let addr = |a: std::net::IpAddr| if bracket { format!("[{a}]") } else { a.to_string() };
        if let Some(a) = self.addr_first {
            f.write_str(&addr(a))?;
        }
        if let Some(a) = self.addr_last {
            write!(f, "-{}", addr(a))?;
        }
        if let Some(p) = &self.ports {
            write!(f, ":{}", nat_ports(p))?;
        }
        Ok(())
    }
}

impl Display for MarkOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            MarkOp::SetXmark { value, mask } => write!(f, "--set-xmark {}/{}", hex(*value), hex(*mask)),
            MarkOp::SetMark { value, mask } => write!(
                f,
                "--set-mark {}",
                MarkMask {
                    value: *value,
                    mask: *mask
                }
            ),
            MarkOp::AndMark(v) => write!(f, "--and-mark {}", hex(*v)),
            MarkOp::OrMark(v) => write!(f, "--or-mark {}", hex(*v)),
            MarkOp::XorMark(v) => write!(f, "--xor-mark {}", hex(*v)),
        }
    }
}

impl Display for Target {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Target::None => Ok(()),
            Target::Accept => f.write_str("-j ACCEPT"),
            Target::Drop => f.write_str("-j DROP"),
            Target::Reject { with } => {
                f.write_str("-j REJECT")?;
                match with {
                    Some(w) => write!(f, " --reject-with {w}"),
                    None => Ok(()),
                }
            }
            Target::Return => f.write_str("-j RETURN"),
            Target::Jump(c) => write!(f, "-j {c}"),
            Target::Goto(c) => write!(f, "-g {c}"),
            Target::Log(o) => {
                f.write_str("-j LOG")?;
                opts(f, o)
            }
            Target::Nflog(o) => {
                f.write_str("-j NFLOG")?;
                opts(f, o)
            }
            Target::Mark(op) => write!(f, "-j MARK {op}"),
            Target::Connmark(o) => {
                f.write_str("-j CONNMARK")?;
                opts(f, o)
            }
            Target::Dnat { to, flags } | Target::Snat { to, flags } => {
                let (name, opt) = if matches!(self, Target::Dnat { .. }) {
                    ("DNAT", "to-destination")
                } else {
                    ("SNAT", "to-source")
                };
                write!(f, "-j {name}")?;
                if let Some(r) = to {
                    write!(f, " --{opt} {r}")?;
                }
                opts(f, flags)
            }
            Target::Masquerade { to_ports, flags } | Target::Redirect { to_ports, flags } => {
                let name = if matches!(self, Target::Masquerade { .. }) {
                    "MASQUERADE"
                } else {
                    "REDIRECT"
                };
                write!(f, "-j {name}")?;
                if let Some(p) = to_ports {
                    write!(f, " --to-ports {}", nat_ports(p))?;
                }
                opts(f, flags)
            }
            Target::Notrack => f.write_str("-j NOTRACK"),
            Target::Ct(o) => {
                f.write_str("-j CT")?;
                opts(f, o)
            }
            Target::Trace => f.write_str("-j TRACE"),
            Target::Unknown { name, args } => {
                let mut out = String::new();
                if !name.is_empty() {
                    let _ = write!(out, "-j {name}");
                }
                for a in args {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(a);
                }
                f.write_str(&out)
            }
        }
    }
}

impl Display for Rule {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.counters {
            write!(f, "[{}:{}] ", c.packets, c.bytes)?;
        }
        write!(f, "-A {}", self.chain)?;
        for m in &self.matches {
            let text = m.to_string();
            if !text.is_empty() {
                write!(f, " {text}")?;
            }
        }
        let t = self.target.to_string();
        if !t.is_empty() {
            write!(f, " {t}")?;
        }
        Ok(())
    }
}
