//! The typed form of one `iptables-save` rule: its matches and its target.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Packet and byte counters of a rule (`[pkts:bytes]` with `iptables-save -c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

/// One rule line: `[pkts:bytes] -A CHAIN matches... [-j TARGET options...]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// The chain the rule is appended to.
    pub chain: String,
    /// Counters, when the dump was taken with `-c`.
    pub counters: Option<Counters>,
    /// Matches in the order written; all must match for the target to apply.
    pub matches: Vec<Match>,
    /// What happens to a matching packet.
    pub target: Target,
}

/// A value with the `!` that may precede its option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neg<T> {
    /// `!` was written: the match is inverted.
    pub negated: bool,
    /// The value matched.
    pub value: T,
}

/// An option of a module kept as written: `[!] --name value...`.
///
/// Used where the option list itself is the model (LOG, CT, CONNMARK, and the modules
/// decided at run time); values are the raw tokens, quotes included, so they print
/// back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opt {
    /// `!` before the option.
    pub negated: bool,
    /// Option name without the leading `--`.
    pub name: String,
    /// The tokens after the name, as written.
    pub values: Vec<String>,
}

/// An inclusive port range; a single port has `first == last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    /// Lowest port.
    pub first: u16,
    /// Highest port.
    pub last: u16,
}

impl PortRange {
    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// A protocol as written after `-p` (`tcp`, `gre`, `47`, `all`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Protocol(pub String);

impl Protocol {
    /// The IP protocol number, when the name is one iptables prints (`all` is 0);
    /// `None` for a name this table does not know.
    pub fn number(&self) -> Option<u8> {
        if let Ok(n) = self.0.parse::<u8>() {
            return Some(n);
        }
        let n = match self.0.to_ascii_lowercase().as_str() {
            "all" => 0,
            "icmp" => 1,
            "igmp" => 2,
            "ipencap" | "ipip" => 4,
            "tcp" => 6,
            "udp" => 17,
            "ipv6" => 41,
            "gre" => 47,
            "esp" => 50,
            "ah" => 51,
            "icmpv6" | "ipv6-icmp" => 58,
            "ospf" => 89,
            "sctp" => 132,
            "udplite" => 136,
            "mh" | "ipv6-mh" => 135,
            _ => return None,
        };
        Some(n)
    }
}

/// An interface name after `-i`/`-o`/`--physdev-in`; a trailing `+` is a prefix match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Iface(pub String);

impl Iface {
    /// Whether the kernel would match the interface `name` (`eth+` matches `eth0`).
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_suffix('+') {
            Some(prefix) => name.starts_with(prefix),
            None => self.0 == name,
        }
    }
}

/// Declares a closed set of upper-case keywords with their iptables spelling.
macro_rules! keywords {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// The keyword as iptables or nft writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The keyword from its spelling (case-insensitive).
            pub fn from_name(s: &str) -> Option<Self> {
                $(if s.eq_ignore_ascii_case($text) {
                    return Some($name::$variant);
                })*
                None
            }
        }
    };
}
pub(crate) use keywords;

keywords! {
    /// A conntrack state (`--ctstate`, `--state`).
    CtState {
        /// Not part of a valid connection.
        Invalid = "INVALID",
        /// The first packet of a connection.
        New = "NEW",
        /// Related to an existing connection (ICMP errors, FTP data).
        Related = "RELATED",
        /// Part of a connection that has seen both directions.
        Established = "ESTABLISHED",
        /// Exempted from tracking (`NOTRACK`, `CT --notrack`).
        Untracked = "UNTRACKED",
        /// Source-NATed (conntrack only).
        Snat = "SNAT",
        /// Destination-NATed (conntrack only).
        Dnat = "DNAT",
    }
}

keywords! {
    /// The direction of a packet in its connection (`--ctdir`).
    CtDir {
        /// The direction of the first packet.
        Original = "ORIGINAL",
        /// The reply direction.
        Reply = "REPLY",
    }
}

keywords! {
    /// A route type (`-m addrtype`).
    AddrType {
        /// Unspecified.
        Unspec = "UNSPEC",
        /// A unicast address.
        Unicast = "UNICAST",
        /// An address of this host.
        Local = "LOCAL",
        /// A broadcast address.
        Broadcast = "BROADCAST",
        /// Anycast.
        Anycast = "ANYCAST",
        /// Multicast.
        Multicast = "MULTICAST",
        /// Blackhole route.
        Blackhole = "BLACKHOLE",
        /// Unreachable route.
        Unreachable = "UNREACHABLE",
        /// Prohibit route.
        Prohibit = "PROHIBIT",
        /// Throw route.
        Throw = "THROW",
        /// NAT route.
        Nat = "NAT",
        /// External resolver.
        Xresolve = "XRESOLVE",
    }
}

keywords! {
    /// A TCP flag name in `--tcp-flags`.
    TcpFlag {
        /// FIN.
        Fin = "FIN",
        /// SYN.
        Syn = "SYN",
        /// RST.
        Rst = "RST",
        /// PSH.
        Psh = "PSH",
        /// ACK.
        Ack = "ACK",
        /// URG.
        Urg = "URG",
        /// ECE.
        Ece = "ECE",
        /// CWR.
        Cwr = "CWR",
        /// All flags.
        All = "ALL",
        /// No flag.
        None = "NONE",
    }
}

keywords! {
    /// Which address of the packet an ipset is looked up with.
    SetDir {
        /// The source address (or port).
        Src = "src",
        /// The destination address (or port).
        Dst = "dst",
    }
}

/// An option of `-m tcp` / `-m udp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortOpt {
    /// `--sport a[:b]`.
    Sport(PortRange),
    /// `--dport a[:b]`.
    Dport(PortRange),
    /// `--tcp-flags MASK COMP`: of the flags in `mask`, exactly those in `set` are on.
    TcpFlags {
        /// Flags examined.
        mask: Vec<TcpFlag>,
        /// Flags that must be set.
        set: Vec<TcpFlag>,
    },
    /// `--syn` (only in hand-written rules; iptables-save prints `--tcp-flags`).
    Syn,
    /// `--tcp-option N`.
    TcpOption(u8),
}

/// An option of `-m multiport`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MultiportOpt {
    /// `--sports` (`--source-ports`).
    Sports(Vec<PortRange>),
    /// `--dports` (`--destination-ports`).
    Dports(Vec<PortRange>),
    /// `--ports`: source or destination.
    Ports(Vec<PortRange>),
}

/// An option of `-m conntrack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConntrackOpt {
    /// `--ctstate LIST`.
    State(Vec<CtState>),
    /// `--ctproto P`.
    Proto(Protocol),
    /// `--ctorigsrc NET`.
    OrigSrc(IpNet),
    /// `--ctorigdst NET`.
    OrigDst(IpNet),
    /// `--ctreplsrc NET`.
    ReplSrc(IpNet),
    /// `--ctrepldst NET`.
    ReplDst(IpNet),
    /// `--ctorigsrcport a[:b]`.
    OrigSrcPort(PortRange),
    /// `--ctorigdstport a[:b]`.
    OrigDstPort(PortRange),
    /// `--ctreplsrcport a[:b]`.
    ReplSrcPort(PortRange),
    /// `--ctrepldstport a[:b]`.
    ReplDstPort(PortRange),
    /// `--ctstatus LIST` (`EXPECTED`, `SEEN_REPLY`, `ASSURED`, `CONFIRMED`, `NONE`).
    Status(Vec<String>),
    /// `--ctexpire a[:b]` seconds, as written.
    Expire(String),
    /// `--ctdir ORIGINAL|REPLY`.
    Dir(CtDir),
}

/// An option of `-m addrtype`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddrTypeOpt {
    /// `--src-type LIST`.
    SrcType(Vec<AddrType>),
    /// `--dst-type LIST`.
    DstType(Vec<AddrType>),
    /// `--limit-iface-in`: look the address up on the input interface only.
    LimitIfaceIn,
    /// `--limit-iface-out`.
    LimitIfaceOut,
}

/// An option of `-m physdev` (bridge ports seen by the IP hooks with br_netfilter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhysdevOpt {
    /// `--physdev-in PORT`.
    In(Iface),
    /// `--physdev-out PORT`.
    Out(Iface),
    /// `--physdev-is-in`: entered through a bridge port.
    IsIn,
    /// `--physdev-is-out`: leaves through a bridge port.
    IsOut,
    /// `--physdev-is-bridged`: bridged, not routed.
    IsBridged,
}

/// An ICMP or ICMPv6 type, with a code when only one code matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcmpType {
    /// Type number; 255 with `any` set means every type.
    pub kind: u8,
    /// The one code matched; `None` matches every code.
    pub code: Option<u8>,
    /// Written as `any`.
    pub any: bool,
}

/// A mark value with an optional mask (`--mark v[/m]`): matches when
/// `mark & mask == value`; no mask means all 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkMask {
    /// The value.
    pub value: u32,
    /// The mask.
    pub mask: Option<u32>,
}

/// A module decided by state a snapshot does not hold, so a static evaluator can only
/// say a rule with it *may* match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeModule {
    /// `-m owner`: the local socket's uid/gid.
    Owner,
    /// `-m limit`: a token bucket.
    Limit,
    /// `-m statistic`: random or every nth packet (kube-proxy's load balancing).
    Statistic,
    /// `-m recent`: a list of recently seen addresses (session affinity).
    Recent,
    /// `-m hashlimit`: per-flow token buckets.
    Hashlimit,
    /// `-m connlimit`: connection counts.
    Connlimit,
}

impl RuntimeModule {
    /// The module name after `-m`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeModule::Owner => "owner",
            RuntimeModule::Limit => "limit",
            RuntimeModule::Statistic => "statistic",
            RuntimeModule::Recent => "recent",
            RuntimeModule::Hashlimit => "hashlimit",
            RuntimeModule::Connlimit => "connlimit",
        }
    }

    /// The module from its name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "owner" => RuntimeModule::Owner,
            "limit" => RuntimeModule::Limit,
            "statistic" => RuntimeModule::Statistic,
            "recent" => RuntimeModule::Recent,
            "hashlimit" => RuntimeModule::Hashlimit,
            "connlimit" => RuntimeModule::Connlimit,
            _ => return None,
        })
    }
}

/// One match of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// `[!] -s NET`.
    Source(Neg<IpNet>),
    /// `[!] -d NET`.
    Destination(Neg<IpNet>),
    /// `[!] -i IFACE`.
    InInterface(Neg<Iface>),
    /// `[!] -o IFACE`.
    OutInterface(Neg<Iface>),
    /// `[!] -p PROTO`.
    Protocol(Neg<Protocol>),
    /// `[!] -f`: second and later fragments.
    Fragment {
        /// `! -f`: not a later fragment.
        negated: bool,
    },
    /// `-m tcp` options (or, with `implicit`, written after `-p tcp` without `-m`).
    Tcp {
        /// Written without `-m tcp`.
        implicit: bool,
        /// Options in the order written.
        options: Vec<Neg<PortOpt>>,
    },
    /// `-m udp` options.
    Udp {
        /// Written without `-m udp`.
        implicit: bool,
        /// Options in the order written.
        options: Vec<Neg<PortOpt>>,
    },
    /// `-m multiport` options.
    Multiport(Vec<Neg<MultiportOpt>>),
    /// `-m conntrack` options.
    Conntrack(Vec<Neg<ConntrackOpt>>),
    /// `-m state [!] --state LIST`.
    State(Neg<Vec<CtState>>),
    /// `-m addrtype` options.
    AddrType(Vec<Neg<AddrTypeOpt>>),
    /// `-m physdev` options.
    Physdev(Vec<Neg<PhysdevOpt>>),
    /// `-m icmp [!] --icmp-type T[/C]`.
    Icmp {
        /// Written without `-m icmp`.
        implicit: bool,
        /// The type.
        icmp_type: Neg<IcmpType>,
    },
    /// `-m icmp6 [!] --icmpv6-type T[/C]`.
    Icmp6 {
        /// Written without `-m icmp6`.
        implicit: bool,
        /// The type.
        icmp_type: Neg<IcmpType>,
    },
    /// `-m mark [!] --mark V[/M]`: the packet's mark.
    Mark(Neg<MarkMask>),
    /// `-m connmark [!] --mark V[/M]`: the connection's mark.
    Connmark(Neg<MarkMask>),
    /// `-m set [!] --match-set NAME DIRS`: ipset membership, decided with the set's
    /// contents (read elsewhere).
    Set {
        /// `!`: not a member.
        negated: bool,
        /// Set name.
        name: String,
        /// Which packet fields are looked up, in order (`src,dst`).
        dirs: Vec<SetDir>,
    },
    /// `-m comment --comment TEXT`: matches every packet.
    Comment(String),
    /// A known module decided at run time (rate, randomness, socket owner): *may*.
    Runtime {
        /// Which module.
        module: RuntimeModule,
        /// Its options as written.
        options: Vec<Opt>,
    },
    /// A module or option the model does not know, kept as written: the rule *may*
    /// match. `module` is the `-m` name; when it is empty or starts with `-`, `args`
    /// holds the whole option as written (an unparsable core option).
    Unknown {
        /// Module name.
        module: String,
        /// Raw tokens after `-m NAME`.
        args: Vec<String>,
    },
}

impl Match {
    /// An option the model keeps but does not understand.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Match::Unknown { .. })
    }

    /// Whether a static evaluator can only say *may* for this match: unknown matches
    /// and matches decided at run time. Ipset membership is not here: it is decided
    /// with the set's contents when those were read.
    pub fn is_may(&self) -> bool {
        matches!(self, Match::Unknown { .. } | Match::Runtime { .. })
    }
}

/// A NAT address/port range: `ip[-ip][:port[-port]]` (IPv6: `[ip]:port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatRange {
    /// First address, if given.
    pub addr_first: Option<IpAddr>,
    /// Last address of an address range.
    pub addr_last: Option<IpAddr>,
    /// Ports, if given.
    pub ports: Option<PortRange>,
}

/// A MARK target operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkOp {
    /// `--set-xmark V/M`: `mark = (mark & !M) ^ V` (what iptables-save prints).
    SetXmark {
        /// Value.
        value: u32,
        /// Mask.
        mask: u32,
    },
    /// `--set-mark V[/M]`.
    SetMark {
        /// Value.
        value: u32,
        /// Mask.
        mask: Option<u32>,
    },
    /// `--and-mark V`.
    AndMark(u32),
    /// `--or-mark V`.
    OrMark(u32),
    /// `--xor-mark V`.
    XorMark(u32),
}

/// What a matching packet does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// No `-j`: the rule only counts.
    None,
    /// `-j ACCEPT`.
    Accept,
    /// `-j DROP`.
    Drop,
    /// `-j REJECT [--reject-with TYPE]`.
    Reject {
        /// The ICMP or TCP reset sent back, as written.
        with: Option<String>,
    },
    /// `-j RETURN`.
    Return,
    /// `-j CHAIN`: a user chain (or a target this model does not know and that takes
    /// no options; the table view tells them apart by the chains it has).
    Jump(String),
    /// `-g CHAIN`.
    Goto(String),
    /// `-j LOG ...`: logs, then continues.
    Log(Vec<Opt>),
    /// `-j NFLOG ...`: logs over netlink, then continues.
    Nflog(Vec<Opt>),
    /// `-j MARK`: sets the packet mark, then continues.
    Mark(MarkOp),
    /// `-j CONNMARK ...`: sets or copies the connection mark, then continues.
    Connmark(Vec<Opt>),
    /// `-j DNAT --to-destination R [flags]`.
    Dnat {
        /// The new destination.
        to: Option<NatRange>,
        /// Further options (`--random`, `--persistent`).
        flags: Vec<Opt>,
    },
    /// `-j SNAT --to-source R [flags]`.
    Snat {
        /// The new source.
        to: Option<NatRange>,
        /// Further options (`--random`, `--random-fully`, `--persistent`).
        flags: Vec<Opt>,
    },
    /// `-j MASQUERADE [--to-ports P] [flags]`.
    Masquerade {
        /// Source ports used.
        to_ports: Option<PortRange>,
        /// Further options (`--random`, `--random-fully`).
        flags: Vec<Opt>,
    },
    /// `-j REDIRECT [--to-ports P] [flags]`.
    Redirect {
        /// Local ports redirected to.
        to_ports: Option<PortRange>,
        /// Further options (`--random`).
        flags: Vec<Opt>,
    },
    /// `-j NOTRACK`.
    Notrack,
    /// `-j CT ...` (`--notrack`, `--zone N`, `--helper H`).
    Ct(Vec<Opt>),
    /// `-j TRACE`.
    Trace,
    /// A target (or target options) the model does not know: its effect is unknown.
    Unknown {
        /// Target name after `-j`.
        name: String,
        /// Raw tokens after it.
        args: Vec<String>,
    },
}

impl Target {
    /// Whether evaluation stops in this chain when the rule matches (`ACCEPT`, `DROP`,
    /// `REJECT`, `RETURN`, NAT targets); jumps, logs and marks continue.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Target::Accept
                | Target::Drop
                | Target::Reject { .. }
                | Target::Return
                | Target::Dnat { .. }
                | Target::Snat { .. }
                | Target::Masquerade { .. }
                | Target::Redirect { .. }
        )
    }

    /// `CT --notrack` or `NOTRACK`.
    pub fn is_notrack(&self) -> bool {
        match self {
            Target::Notrack => true,
            Target::Ct(opts) => opts.iter().any(|o| o.name == "notrack"),
            _ => false,
        }
    }
}

impl Rule {
    /// Matches the model does not know (each one makes the rule a *may*), plus one for
    /// an unknown target.
    pub fn unknown_count(&self) -> usize {
        self.matches.iter().filter(|m| m.is_unknown()).count()
            + usize::from(matches!(self.target, Target::Unknown { .. }))
    }

    /// Whether a static evaluator can only say the rule *may* match.
    pub fn is_may(&self) -> bool {
        self.matches.iter().any(Match::is_may)
    }
}
