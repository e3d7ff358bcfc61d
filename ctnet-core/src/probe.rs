//! The active probe of `check --probe`: from inside the target's netns, ping the peer
//! (or the gateway) while capturing on every hop of the path (eth0 -> host veth ->
//! bridge -> peer host veth -> peer eth0), and diff drop and firewall counters across
//! it. The result names the last hop that saw the echo requests and the counters that
//! moved. Traffic stays between the namespaces of the path.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::capture::{self, CaptureOptions, Control, Endpoint, Ring, Sink, decode, plan};
use crate::check::{Finding, Status};
use crate::error::{Error, Result};
use crate::model::Snapshot;
use crate::netns::Netns;
use crate::target::Resolved;
use crate::topology::{NetnsIface, Topology};

pub mod drops;
pub mod nftrace;

/// Echo requests (or connections, or datagrams) sent per probe.
pub const PROBES: u32 = 3;

/// What the probe sends: the flow's own packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "proto", content = "port")]
pub enum Flow {
    /// ICMP echo (`ping`).
    #[default]
    Icmp,
    /// A TCP connection to this port: the SYN and its answer; closed at once.
    Tcp(u16),
    /// A UDP datagram to this port: an answer, or an ICMP port unreachable.
    Udp(u16),
}

impl Flow {
    /// Parse `80/tcp`, `53/udp`, `80` (TCP) or `icmp`.
    pub fn parse(s: &str) -> std::result::Result<Flow, String> {
        let bad = || format!("invalid probe flow {s:?}: use PORT/tcp, PORT/udp or icmp (80/tcp, 53/udp)");
        if s.eq_ignore_ascii_case("icmp") {
            return Ok(Flow::Icmp);
        }
        let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
        match proto.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Flow::Tcp(port)),
            "udp" => Ok(Flow::Udp(port)),
            _ => Err(bad()),
        }
    }

    /// `icmp`, `tcp/80`, `udp/53`.
    pub fn label(self) -> String {
        match self {
            Flow::Icmp => "icmp".into(),
            Flow::Tcp(p) => format!("tcp/{p}"),
            Flow::Udp(p) => format!("udp/{p}"),
        }
    }

    fn l4(self) -> crate::flow::L4 {
        match self {
            Flow::Icmp => crate::flow::L4::Icmp,
            Flow::Tcp(p) => crate::flow::L4::Tcp(p),
            Flow::Udp(p) => crate::flow::L4::Udp(p),
        }
    }
}

/// What one hop saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopSeen {
    /// `eth0@web1`, `vethab12`, `docker0`.
    pub hop: String,
    /// Echo requests to the destination.
    pub requests: u32,
    /// Echo replies from it.
    pub replies: u32,
    /// ARP requests for it.
    pub arp_requests: u32,
    /// ARP replies from it.
    pub arp_replies: u32,
    /// Echo requests whose destination MAC is not the destination's.
    pub misaddressed: u32,
    /// Why this hop could not be watched.
    pub error: Option<String>,
    /// How to watch this hop by hand.
    pub command: String,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Who was pinged.
    pub dst: Ipv4Addr,
    /// The MAC it has (the peer's interface, or the bridge for the gateway).
    pub dst_mac: Option<String>,
    /// Echo replies `ping` got.
    pub answered: u32,
    /// Each hop in path order.
    pub hops: Vec<HopSeen>,
    /// Counters that moved during the probe (drops, firewall rules).
    pub moved: Vec<String>,
    /// The host's netfilter trace of the probe's packets (`nft monitor trace`): every
    /// rule they matched and every chain's verdict, in order.
    #[serde(default)]
    pub trace: Vec<nftrace::TraceEvent>,
    /// Why the netfilter trace could not run, when it could not.
    #[serde(default)]
    pub trace_error: Option<String>,
    /// What was sent.
    #[serde(default)]
    pub flow: Flow,
    /// Answers that said nothing listens there (a TCP reset, an ICMP port unreachable):
    /// the path works, the port does not.
    #[serde(default)]
    pub refused: u32,
    /// Packets the kernel dropped during the probe, with its reason and the code that
    /// dropped them (`skb:kfree_skb`; host-wide, attributed by the probe's window).
    #[serde(default)]
    pub drops: Vec<drops::KernelDrop>,
    /// Why the drop reasons could not be read, when they could not.
    #[serde(default)]
    pub drops_error: Option<String>,
}

struct Hop {
    ep: Endpoint,
    /// How to watch this hop by hand.
    command: String,
}

fn iface_in(topo: &Topology, r: &Resolved) -> Result<NetnsIface> {
    let key = r
        .netns
        .ok_or_else(|| Error::Invalid(format!("{} has no network namespace to probe from", r.target)))?;
    topo.netns
        .iter()
        .find(|n| n.key == key)
        .and_then(|v| v.ifaces.iter().find(|i| i.host_veth.is_some()).cloned())
        .ok_or_else(|| Error::Invalid(format!("{} has no veth to the host to probe along", r.target)))
}

fn open_ns(snap: &Snapshot, key: crate::netns::NetnsKey) -> Result<Netns> {
    let refs = snap
        .netns
        .iter()
        .find(|n| n.key == key)
        .map(|n| n.refs.clone())
        .unwrap_or_default();
    Netns::open_any(&refs, key)
}

fn v4(i: &NetnsIface) -> Option<Ipv4Addr> {
    i.ips
        .iter()
        .find_map(|s| s.parse::<ipnet::Ipv4Net>().ok())
        .map(|n| n.addr())
}

/// The capture sessions of a probe: stopped and their readers joined when the probe is
/// done, or when it ends early on an error (no reader thread is left behind).
struct Sessions {
    control: Arc<Control>,
    list: Vec<capture::Session>,
}

impl Sessions {
    /// Stop every session and wait for its reader.
    fn join(&mut self) -> Vec<capture::SessionStats> {
        self.control.stop();
        self.list.drain(..).map(capture::Session::join).collect()
    }
}

impl Drop for Sessions {
    fn drop(&mut self) {
        self.join();
    }
}

/// Probe the path from `target` to `peer` (or to its gateway). `rescan` takes a fresh
/// snapshot for the counter diff.
pub fn run(
    snap: &Snapshot,
    topo: &Topology,
    target: &Resolved,
    peer: Option<&Resolved>,
    rescan: &dyn Fn() -> Result<Snapshot>,
) -> Result<ProbeResult> {
    run_flow(snap, topo, target, peer, Flow::Icmp, rescan)
}

/// [`run`] with the flow's own packet: a ping, a TCP connection or a UDP datagram to a
/// port of the peer (or the gateway).
pub fn run_flow(
    snap: &Snapshot,
    topo: &Topology,
    target: &Resolved,
    peer: Option<&Resolved>,
    flow: Flow,
    rescan: &dyn Fn() -> Result<Snapshot>,
) -> Result<ProbeResult> {
    let to = match peer {
        Some(p) => To::Peer(p),
        None => To::Gateway,
    };
    run_to(snap, topo, target, to, flow, true, rescan)
}

/// Where a probe sends.
#[derive(Debug, Clone, Copy)]
pub enum To<'a> {
    /// The source's IPv4 gateway.
    Gateway,
    /// A container or netns (its interface with a host veth).
    Peer(&'a Resolved),
    /// An address: a container's (watched like a peer) or any other (watched up to
    /// the source's bridge).
    Addr(Ipv4Addr),
}

/// The interface of a netns with a host veth that holds `addr`.
fn iface_with(topo: &Topology, addr: Ipv4Addr) -> Option<NetnsIface> {
    topo.netns
        .iter()
        .flat_map(|n| n.ifaces.iter())
        .find(|i| {
            i.host_veth.is_some()
                && i.ips
                    .iter()
                    .any(|s| s.parse::<ipnet::Ipv4Net>().is_ok_and(|n| n.addr() == addr))
        })
        .cloned()
}

/// [`run_flow`] to any destination: the flow's own packets from `target` to `to`. With
/// `kernel_trace` off, no nft table and no tracefs instance is made (the hops and the
/// counters are still watched).
#[allow(clippy::too_many_arguments)]
pub fn run_to(
    snap: &Snapshot,
    topo: &Topology,
    target: &Resolved,
    to: To<'_>,
    flow: Flow,
    kernel_trace: bool,
    rescan: &dyn Fn() -> Result<Snapshot>,
) -> Result<ProbeResult> {
    let src = iface_in(topo, target)?;
    let src_ns = open_ns(snap, src.iface.netns)?;
    let host_ns = open_ns(snap, snap.host)?;
    let bridge = src.bridge.clone();
    let bridge_view = bridge
        .as_ref()
        .and_then(|b| topo.bridges.iter().find(|v| &v.iface.name == b));
    let watch = |key: crate::netns::NetnsKey, iface: &str| {
        let cmd = format!("tcpdump -nn -e -i {iface} 'icmp or arp'");
        match snap.netns.iter().find(|n| n.key == key) {
            Some(ns) if key != snap.host => crate::check::in_ns(ns, &cmd),
            _ => cmd,
        }
    };
    // The hops, as the capture plan names them (the one the CLI and the dashboard use):
    // the source's end of its veth, the host end, the bridge, then the peer's host end
    // and its own end. The probe tells requests from replies by their addresses.
    let hop = |p: &plan::Planned| -> Result<Hop> {
        let ns = if p.netns == snap.host {
            host_ns.clone()
        } else if p.netns == src.iface.netns {
            src_ns.clone()
        } else {
            p.open()?.netns
        };
        Ok(Hop {
            ep: Endpoint {
                netns: ns,
                iface: p.iface.clone(),
                label: p.label.clone(),
                peer_mac: None,
            },
            command: watch(p.netns, &p.iface),
        })
    };
    let hv = src
        .host_veth
        .clone()
        .expect("iface_in picks one with a host veth");
    let mut planned = plan::netns(
        snap,
        topo,
        src.iface.netns,
        &src.iface.netns_label,
        plan::Ifaces::BehindPort(&hv.name),
        true,
    );
    if let Some(b) = &bridge {
        planned.push(plan::host_iface(snap, topo, b));
    }
    let mut hops = planned.iter().map(hop).collect::<Result<Vec<_>>>()?;
    let peer_iface = match to {
        To::Peer(p) => {
            let pi = iface_in(topo, p)?;
            let ip =
                v4(&pi).ok_or_else(|| Error::Invalid(format!("{} has no IPv4 address to ping", p.target)))?;
            Some((pi, ip))
        }
        To::Addr(a) => iface_with(topo, a).map(|pi| (pi, a)),
        To::Gateway => None,
    };
    let (dst, dst_mac) = match (peer_iface, to) {
        (Some((pi, ip)), _) => {
            // The peer's host end first, then its own end.
            let theirs = match &pi.host_veth {
                Some(phv) => plan::port(
                    snap,
                    topo,
                    &phv.name,
                    Some((pi.iface.netns, &pi.iface.netns_label)),
                ),
                None => plan::netns(
                    snap,
                    topo,
                    pi.iface.netns,
                    &pi.iface.netns_label,
                    plan::Ifaces::All,
                    false,
                )
                .into_iter()
                .filter(|p| p.iface == pi.iface.name)
                .collect(),
            };
            for p in &theirs {
                hops.push(hop(p)?);
            }
            (ip, pi.mac.clone())
        }
        // Not a container's: the bridge's MAC when it is the bridge's address (the
        // host), none otherwise (it leaves through the gateway).
        (None, To::Addr(a)) => (
            a,
            bridge_view
                .filter(|b| {
                    b.ips
                        .iter()
                        .any(|s| s.parse::<ipnet::Ipv4Net>().is_ok_and(|n| n.addr() == a))
                })
                .and_then(|b| b.mac.clone()),
        ),
        (None, _) => match src.gateway {
            Some(IpAddr::V4(g)) => (g, bridge_view.and_then(|b| b.mac.clone())),
            _ => {
                return Err(Error::Invalid(format!(
                    "{} has no IPv4 gateway to probe: name a peer with --peer",
                    target.target
                )));
            }
        },
    };

    // Capture like tcpdump does (promiscuous: a bridge device sees frames it forwards
    // between ports only so), as soon as each packet comes.
    let opts = CaptureOptions {
        promisc: true,
        immediate: true,
        timeout_ms: 10,
        buffer_size: 1 << 20,
        snaplen: 256,
        filter: Some(match flow {
            Flow::Icmp => format!("arp or (icmp and host {dst})"),
            Flow::Tcp(p) => format!("arp or (tcp and host {dst} and port {p})"),
            // The answer may be an ICMP port unreachable.
            Flow::Udp(p) => format!("arp or (udp and host {dst} and port {p}) or (icmp and host {dst})"),
        }),
    };
    let ring = Arc::new(Ring::new(10_000));
    let control = Control::new(None);
    // Stopped and joined however the probe ends, an early error included.
    let mut sessions = Sessions {
        control: control.clone(),
        list: Vec::new(),
    };
    let mut seen: Vec<HopSeen> = Vec::new();
    for (n, h) in hops.iter().enumerate() {
        let error = match capture::start(n, &h.ep, &opts, Sink::Ring(ring.clone()), control.clone()) {
            Ok(s) => {
                sessions.list.push(s);
                None
            }
            Err(e) => Some(e.to_string()),
        };
        seen.push(HopSeen {
            hop: h.ep.label.clone(),
            requests: 0,
            replies: 0,
            arp_requests: 0,
            arp_replies: 0,
            misaddressed: 0,
            error,
            command: h.command.clone(),
        });
    }

    let before = rescan().ok();
    // The host's netfilter trace of these packets only (a table of ctnet's own, removed
    // after; where nft or the privilege is missing, the rest of the probe still runs).
    let (trace, trace_error) = match v4(&src) {
        _ if !kernel_trace => (None, Some("not asked for (--no-kernel-trace)".to_string())),
        Some(a) => match nftrace::NfTrace::start(&host_ns, &crate::source::default_tool_path(), a, dst) {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e.to_string())),
        },
        None => (None, Some("the source has no IPv4 address".to_string())),
    };
    // The kernel's drop reasons in the probe's window (tracefs; where it cannot be used,
    // the rest of the probe still runs).
    let (watch, mut drops_error) = match kernel_trace.then(drops::DropWatch::start) {
        None => (None, Some("not asked for (--no-kernel-trace)".to_string())),
        Some(Ok(w)) => (Some(w), None),
        Some(Err(e)) => (None, Some(e.to_string())),
    };
    let mut stop_drops = |watch: Option<drops::DropWatch>, senders: &[(&str, u32)]| match watch {
        Some(w) => match w.stop(senders) {
            Ok(d) => d,
            Err(e) => {
                drops_error = Some(e.to_string());
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    // The flow's own packets: TCP connections or UDP datagrams from a thread in the
    // source netns, or `ping` started there. On an error the sessions are joined by
    // their guard, the trace and the drop watch removed by theirs.
    let (answered, refused, senders): (u32, u32, Vec<(&str, u32)>) = match flow {
        Flow::Tcp(port) | Flow::Udp(port) => {
            let ((answered, refused), tid) =
                src_ns.run(move || (send_l4(flow, dst, port), nix::unistd::gettid().as_raw() as u32))?;
            // Sent by a `ctnet-netns` thread of this process.
            (answered, refused, vec![("ctnet-netns", tid)])
        }
        Flow::Icmp => {
            let dst_s = dst.to_string();
            // Started in the source netns, waited for here.
            let ping = src_ns.run(move || {
                crate::tool::Cmd::new("ping", &crate::privilege::tool_path())
                    .args(["-n", "-c", &PROBES.to_string(), "-i", "0.2", "-W", "1", &dst_s])
                    .spawn()
            })?;
            let pinger: Vec<(&str, u32)> = ping.pid().map(|pid| ("ping", pid)).into_iter().collect();
            let o = ping.output()?;
            // 0: replies, 1: none; anything else is ping failing, not the path.
            if !matches!(o.status.code(), Some(0 | 1)) {
                return Err(Error::Tool {
                    program: "ping".into(),
                    detail: format!("{}: {}", o.status, String::from_utf8_lossy(&o.stderr).trim()),
                    kind: crate::error::ErrorKind::Other,
                });
            }
            let answered = String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains("bytes from"))
                .count() as u32;
            (answered, 0, pinger)
        }
    };
    std::thread::sleep(Duration::from_millis(150));
    control.stop();
    let drops = stop_drops(watch, &senders);
    let trace = trace.map(nftrace::NfTrace::stop).unwrap_or_default();
    for stats in sessions.join() {
        if let Some(why) = stats.ended
            && let Some(h) = seen.iter_mut().find(|h| h.hop == stats.label)
        {
            h.error.get_or_insert(why);
        }
    }
    count_frames(&ring, &mut seen, flow, dst, &dst_mac);
    let moved = match (before, rescan().ok()) {
        (Some(a), Some(b)) => counters_moved(&a, &b, &hops),
        _ => Vec::new(),
    };
    Ok(ProbeResult {
        dst,
        dst_mac,
        answered,
        hops: seen,
        moved,
        trace,
        trace_error,
        flow,
        refused,
        drops,
        drops_error,
    })
}

/// Send the flow's packets from this thread's netns: `PROBES` TCP connections (each
/// closed at once) or UDP datagrams. Returns (answered, refused).
fn send_l4(flow: Flow, dst: Ipv4Addr, port: u16) -> (u32, u32) {
    use std::net::{SocketAddr, TcpStream, UdpSocket};
    let to = SocketAddr::from((dst, port));
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..PROBES {
        match flow {
            Flow::Tcp(_) => match TcpStream::connect_timeout(&to, Duration::from_secs(1)) {
                Ok(c) => {
                    answered += 1;
                    drop(c);
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused += 1,
                Err(_) => {}
            },
            Flow::Udp(_) => {
                let Ok(s) = UdpSocket::bind("0.0.0.0:0") else {
                    continue;
                };
                if s.connect(to).is_err() || s.set_read_timeout(Some(Duration::from_secs(1))).is_err() {
                    continue;
                }
                let _ = s.send(b"ctnet probe\n");
                let mut buf = [0u8; 512];
                match s.recv(&mut buf) {
                    Ok(_) => answered += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused += 1,
                    Err(_) => {}
                }
            }
            Flow::Icmp => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (answered, refused)
}

/// Count what each hop saw of the probe's packets (requests to the destination and its
/// answers) and of ARP for it.
fn count_frames(ring: &Ring, seen: &mut [HopSeen], flow: Flow, dst: Ipv4Addr, dst_mac: &Option<String>) {
    let last = seen.len() - 1;
    for f in ring.drain() {
        let d = decode::decode(&f.data);
        let h = &mut seen[f.session];
        let to_dst = matches!(&d.net, Some(decode::Net::Ip { dst: to, .. }) if *to == IpAddr::V4(dst));
        let from_dst = matches!(&d.net, Some(decode::Net::Ip { src, .. }) if *src == IpAddr::V4(dst));
        let request = match (flow, &d.transport) {
            (Flow::Icmp, Some(decode::Transport::Icmp { what, .. })) => to_dst && what == "echo-request",
            (Flow::Tcp(p), Some(decode::Transport::Tcp { dport, flags, .. })) => {
                to_dst && *dport == p && flags == "S"
            }
            (Flow::Udp(p), Some(decode::Transport::Udp { dport, .. })) => to_dst && *dport == p,
            _ => false,
        };
        let reply = match (flow, &d.transport) {
            (Flow::Icmp, Some(decode::Transport::Icmp { what, .. })) => from_dst && what == "echo-reply",
            (Flow::Tcp(p), Some(decode::Transport::Tcp { sport, flags, .. })) => {
                from_dst && *sport == p && (flags == "S." || flags.contains('R'))
            }
            (Flow::Udp(p), Some(decode::Transport::Udp { sport, .. })) => from_dst && *sport == p,
            (Flow::Udp(_), Some(decode::Transport::Icmp { what, .. })) => {
                from_dst && what == "dest-unreachable"
            }
            _ => false,
        };
        if request {
            h.requests += 1;
            if f.session == last
                && let (Some(want), Some(got)) = (dst_mac, &d.dst_mac)
                && !want.eq_ignore_ascii_case(got)
            {
                h.misaddressed += 1;
            }
        } else if reply {
            h.replies += 1;
        } else if let Some(decode::Net::Arp {
            op,
            sender_ip,
            target_ip,
            ..
        }) = &d.net
        {
            if op == "request" && *target_ip == dst.to_string() {
                h.arp_requests += 1;
            } else if op == "reply" && *sender_ip == dst.to_string() {
                h.arp_replies += 1;
            }
        }
    }
}

/// Drop counters of the path's links and firewall rules that dropped, which grew.
fn counters_moved(a: &Snapshot, b: &Snapshot, hops: &[Hop]) -> Vec<String> {
    let mut out = Vec::new();
    for h in hops {
        let key = h.ep.netns.key();
        let find = |s: &Snapshot| {
            s.netns
                .iter()
                .find(|n| n.key == key)
                .and_then(|n| n.links.iter().find(|l| l.name == h.ep.iface))
                .and_then(|l| l.stats)
        };
        if let (Some(x), Some(y)) = (find(a), find(b)) {
            for (what, d) in [
                ("rx_dropped", y.rx_dropped.saturating_sub(x.rx_dropped)),
                ("tx_dropped", y.tx_dropped.saturating_sub(x.tx_dropped)),
            ] {
                if d > 0 {
                    out.push(format!("{} {what} +{d}", h.ep.label));
                }
            }
        }
    }
    let rules = |s: &Snapshot| -> Vec<(String, String, String, u64)> {
        s.firewall
            .iter()
            .flat_map(|f| f.iptables.iter().filter(|d| d.family == "ip"))
            .flat_map(|d| d.tables.iter())
            .flat_map(|t| {
                t.rules
                    .iter()
                    .map(move |r| (t.name.clone(), r.chain.clone(), r.spec.clone(), r.packets))
            })
            .collect()
    };
    let old = rules(a);
    for (table, chain, spec, packets) in rules(b) {
        let was = old
            .iter()
            .find(|(t, c, s, _)| *t == table && *c == chain && *s == spec)
            .map_or(0, |r| r.3);
        let dropping = spec.contains("-j DROP") || spec.contains("-j REJECT");
        if dropping && packets > was {
            out.push(format!("rule `-t {table} -A {chain} {spec}` +{}", packets - was));
        }
    }
    out
}

/// `probe.agrees`: what the probe saw live and what the flow engine says of the same
/// ping (from the target to the probed address, on `snap`) agree; a disagreement shows
/// both, since one of them misses something about this host.
pub fn agreement(p: &ProbeResult, snap: &Snapshot, target: &Resolved) -> Finding {
    use crate::flow::{Destination, FlowSpec, Source};
    let command = format!(
        "ctnet-diag trace {} {} {}",
        target.target,
        p.dst,
        match p.flow {
            Flow::Icmp => "--icmp".to_string(),
            Flow::Tcp(port) => format!("--tcp {port}"),
            Flow::Udp(port) => format!("--udp {port}"),
        }
    );
    let Some(netns) = target.netns else {
        return agreement_skip(command, "no netns to trace from".into());
    };
    let spec = FlowSpec::new(
        Source::Netns { netns, addr: None },
        Destination::Addr {
            addr: IpAddr::V4(p.dst),
        },
        p.flow.l4(),
    );
    match crate::flow::trace(snap, &spec) {
        Ok(t) => compare(p, &t, command),
        Err(e) => agreement_skip(command, format!("no static trace to compare: {e}")),
    }
}

fn agreement_skip(command: String, summary: String) -> Finding {
    Finding {
        id: "probe.agrees".into(),
        category: "probe".into(),
        status: Status::Skip,
        summary,
        evidence: Vec::new(),
        commands: vec![command],
        hint: None,
    }
}

/// `probe.agrees` against a static trace of the same flow already made (`trace
/// --probe`); `command` is how to make it again.
pub fn compare(p: &ProbeResult, t: &crate::flow::Trace, command: String) -> Finding {
    use crate::flow::Reach;
    let mut f = agreement_skip(command, String::new());
    let live = p.answered > 0;
    f.evidence
        .push(format!("static: {:?}: {}", t.verdict, t.summary).to_lowercase());
    f.evidence.push(format!(
        "live: {}/{PROBES} {} probes answered by {}{}",
        p.answered,
        p.flow.label(),
        p.dst,
        if p.refused > 0 {
            format!(", {} refused", p.refused)
        } else {
            String::new()
        }
    ));
    (f.status, f.summary) = match (t.verdict, live) {
        (Reach::Reachable, true) => (Status::Pass, "the probe and the static trace agree: reachable".into()),
        (Reach::Unreachable, false) => (Status::Pass, "the probe and the static trace agree: unreachable".into()),
        (Reach::Ambiguous, _) => (
            Status::Skip,
            format!("the static trace is ambiguous; the probe {}", if live { "got replies" } else { "got none" }),
        ),
        (Reach::Reachable, false) => (
            Status::Fail,
            "the static trace says reachable but the probe got no reply: something the snapshot does not show \
             stops it (see probe.path)"
                .into(),
        ),
        (Reach::Unreachable, true) => (
            Status::Warn,
            format!("the static trace says unreachable ({}) but the probe got replies", t.summary),
        ),
    };
    f
}

/// The name `dns.query` asks: in `.invalid` (RFC 6761), so no real name is looked up
/// and any resolver answers at once (NXDOMAIN).
pub const DNS_NAME: &str = "ctnet-probe.invalid";

/// A DNS query for [`DNS_NAME`] (type A, recursion desired) with this id.
fn dns_query_packet(id: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(40);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in DNS_NAME.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// The response code of an answer to query `id`, if `buf` is one.
fn dns_rcode(buf: &[u8], id: u16) -> Option<u8> {
    (buf.len() >= 12 && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0).then(|| buf[3] & 0x0f)
}

fn rcode_name(rc: u8) -> String {
    match rc {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("rcode {n}"),
    }
}

/// `dns.query`: one real query from inside the target's netns to the first nameserver
/// of its `resolv.conf` (UDP, 2 s), as a program there would send it. `None` when the
/// target has no nameserver to ask (`dns.resolver` says why).
pub fn dns_query(snap: &Snapshot, target: &Resolved) -> Option<Finding> {
    let key = target.netns.filter(|k| *k != snap.host)?;
    let ns = snap.netns_by_key(key)?;
    let server = ns.resolver.as_ref()?.nameservers.first().copied()?;
    let mut f = Finding {
        id: "dns.query".into(),
        category: "dns".into(),
        status: Status::Skip,
        summary: String::new(),
        evidence: Vec::new(),
        commands: vec![crate::check::in_ns(ns, &format!("nslookup {DNS_NAME} {server}"))],
        hint: None,
    };
    let netns = match Netns::open_any(&ns.refs, key) {
        Ok(n) => n,
        Err(e) => {
            f.summary = format!("the container's netns could not be entered to ask: {e}");
            return Some(f);
        }
    };
    let id = (std::process::id() as u16) ^ 0x5a5a;
    let asked = netns.run(move || -> std::io::Result<(u8, Duration)> {
        let sock = std::net::UdpSocket::bind(match server {
            IpAddr::V4(_) => "0.0.0.0:0",
            IpAddr::V6(_) => "[::]:0",
        })?;
        sock.connect((server, 53))?;
        sock.set_read_timeout(Some(Duration::from_secs(2)))?;
        let start = std::time::Instant::now();
        sock.send(&dns_query_packet(id))?;
        let mut buf = [0u8; 512];
        loop {
            let n = sock.recv(&mut buf)?;
            if let Some(rc) = dns_rcode(&buf[..n], id) {
                return Ok((rc, start.elapsed()));
            }
        }
    });
    let what = format!("a query for {DNS_NAME} (A) to {server}:53/udp");
    (f.status, f.summary) = match asked {
        Ok(Ok((rc, took))) => (
            Status::Pass,
            format!(
                "{what} was answered {} in {} ms",
                rcode_name(rc),
                took.as_millis()
            ),
        ),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => (
            Status::Fail,
            format!("{what} was refused (ICMP port unreachable): nothing listens on port 53 there"),
        ),
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            (
                Status::Fail,
                format!("{what} got no answer in 2 s: the query or its answer is dropped on the way"),
            )
        }
        Ok(Err(e)) => (Status::Fail, format!("{what} failed: {e}")),
        Err(e) => (
            Status::Skip,
            format!("the container's netns could not be entered to ask: {e}"),
        ),
    };
    if f.status == Status::Fail {
        f.hint = Some(format!(
            "see dns.resolver for where the flow engine stops a query to {server}:53, or trace it: \
             ctnet-diag trace {} {server} --udp 53",
            target.target
        ));
    }
    Some(f)
}

/// The `probe.path` finding when the probe could not run: a skip saying why.
pub fn skipped(why: &str) -> Finding {
    Finding {
        id: "probe.path".into(),
        category: "probe".into(),
        status: Status::Skip,
        summary: format!("the probe could not run: {why}"),
        evidence: Vec::new(),
        commands: Vec::new(),
        hint: None,
    }
}

/// The probe's finding: `probe.path`, failing when no reply came back, naming the last
/// hop that saw the requests and why they went no further when it can tell.
pub fn finding(p: &ProbeResult) -> Finding {
    finding_with(p, &[])
}

/// [`finding`], with the static findings of the same report: when the kernel gives no
/// reason for a loss, the hint names the failing check that explains it.
pub fn finding_with(p: &ProbeResult, checks: &[Finding]) -> Finding {
    let last_seen = p.hops.iter().rposition(|h| h.requests > 0);
    let final_hop = p.hops.len() - 1;
    let what = match p.flow {
        Flow::Icmp => "echo request".to_string(),
        Flow::Tcp(port) => format!("SYN to tcp/{port}"),
        Flow::Udp(port) => format!("datagram to udp/{port}"),
    };
    let whats = match p.flow {
        Flow::Icmp => "echo requests".to_string(),
        Flow::Tcp(port) => format!("SYNs to tcp/{port}"),
        Flow::Udp(port) => format!("datagrams to udp/{port}"),
    };
    let (status, summary) = if p.answered > 0 {
        (
            Status::Pass,
            match p.flow {
                Flow::Icmp => format!("{}/{PROBES} echo replies from {}", p.answered, p.dst),
                f => format!(
                    "{}/{PROBES} {} probes answered by {}",
                    p.answered,
                    f.label(),
                    p.dst
                ),
            },
        )
    } else if p.refused > 0 {
        (
            Status::Fail,
            format!(
                "{} refused {} ({}/{PROBES} {}): the packets arrive, nothing listens there",
                p.dst,
                p.flow.label(),
                p.refused,
                if matches!(p.flow, Flow::Tcp(_)) {
                    "resets"
                } else {
                    "ICMP port unreachable"
                }
            ),
        )
    } else {
        let s = match last_seen {
            None => {
                let first = &p.hops[0];
                let dropped: Vec<&str> = p
                    .moved
                    .iter()
                    .filter(|m| m.starts_with(&format!("{} tx_dropped", first.hop)))
                    .map(String::as_str)
                    .collect();
                let unwatched: Vec<String> = p
                    .hops
                    .iter()
                    .filter_map(|h| h.error.as_ref().map(|e| format!("{}: {e}", h.hop)))
                    .collect();
                let mut s = if first.error.is_some() {
                    format!(
                        "no {what} to {} was seen: {} could not be watched",
                        p.dst, first.hop
                    )
                } else if first.arp_requests > 0 && p.hops.iter().all(|h| h.arp_replies == 0) {
                    format!(
                        "no {what} to {} left {}: its ARP requests got no answer",
                        p.dst, first.hop
                    )
                } else {
                    format!("no {what} to {} left {}", p.dst, first.hop)
                };
                if !dropped.is_empty() {
                    s.push_str(&format!(
                        " ({}: nothing takes frames off the link)",
                        dropped.join(", ")
                    ));
                }
                if !unwatched.is_empty() {
                    s.push_str(&format!("; {}", unwatched.join("; ")));
                }
                s
            }
            Some(i) if i < final_hop => {
                let next = &p.hops[i + 1];
                format!(
                    "{what} to {} seen on {}, not on {}{}",
                    p.dst,
                    p.hops[..=i]
                        .iter()
                        .map(|h| h.hop.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    next.hop,
                    match &next.error {
                        // Not watched: it may have passed there unseen.
                        Some(e) => format!(" (not watched: {e})"),
                        None => ": it dies between them".to_string(),
                    }
                )
            }
            Some(i) if p.hops[i].misaddressed > 0 => format!(
                "{whats} reached {} addressed to another MAC than its {}: dropped as not for it (a stale ARP entry at the sender)",
                p.hops[i].hop,
                p.dst_mac.as_deref().unwrap_or("?")
            ),
            Some(i) => format!("{whats} reached {} but no answer came back", p.hops[i].hop),
        };
        (Status::Fail, s)
    };
    let mut f = Finding {
        id: "probe.path".into(),
        category: "probe".into(),
        status,
        summary,
        evidence: Vec::new(),
        commands: Vec::new(),
        hint: None,
    };
    for h in &p.hops {
        f.evidence.push(match &h.error {
            Some(e) => format!("{}: not watched ({e})", h.hop),
            None => format!(
                "{}: {} {what}(s), {} answer(s), {} ARP request(s), {} ARP reply(ies){}",
                h.hop,
                h.requests,
                h.replies,
                h.arp_requests,
                h.arp_replies,
                if h.misaddressed > 0 {
                    format!(", {} to a wrong MAC", h.misaddressed)
                } else {
                    String::new()
                }
            ),
        });
    }
    for m in &p.moved {
        f.evidence.push(format!("moved: {m}"));
    }
    // The kernel's own account: the rule that dropped the probe's packets, by handle.
    let dropped = p.trace.iter().find(|e| {
        matches!(e.verdict.as_deref(), Some("drop") | Some("reject"))
            || e.verdict.as_deref().is_some_and(|v| v.starts_with("reject"))
    });
    // One line per rule that decided, with how many of the probe's packets it decided.
    let mut decided: Vec<(String, usize)> = Vec::new();
    for e in p
        .trace
        .iter()
        .filter(|e| e.kind == "rule" && e.verdict.as_deref() != Some("continue"))
    {
        let line = format!(
            "nft trace: {} {} {}: `{}`{} (verdict {})",
            e.family,
            e.table,
            e.chain,
            e.rule.as_deref().unwrap_or(""),
            e.handle.map(|h| format!(" handle {h}")).unwrap_or_default(),
            e.verdict.as_deref().unwrap_or("?")
        );
        match decided.iter_mut().find(|(l, _)| *l == line) {
            Some((_, n)) => *n += 1,
            None => decided.push((line, 1)),
        }
    }
    for (line, n) in decided {
        f.evidence.push(format!("{line} x{n}"));
    }
    if let Some(e) = &p.trace_error {
        f.evidence.push(format!("nft trace: not run ({e})"));
    }
    // A bridge watched promiscuously passes the frames it forwards up to its own stack,
    // which drops them as not for it: OTHERHOST is the probe's own doing unless frames
    // really went to a wrong MAC.
    let misaddressed = p.hops.iter().any(|h| h.misaddressed > 0);
    let echo = |d: &drops::KernelDrop| d.reason == "OTHERHOST" && !misaddressed;
    for d in &p.drops {
        f.evidence.push(format!(
            "kernel drop: {} at {} x{} ({} in {}{}){}",
            d.reason,
            d.location,
            d.count,
            d.protocol,
            d.task,
            if d.own {
                ", the probe's own sender"
            } else {
                "; host-wide, attributed by the probe's window"
            },
            if echo(d) {
                ": expected, the bridge watched promiscuously drops the frames it forwards as not for itself"
            } else {
                ""
            }
        ));
    }
    if let Some(e) = &p.drops_error {
        f.evidence.push(format!("kernel drop reasons: not read ({e})"));
    }
    // The kernel's reason for a drop outside netfilter (netfilter's own are named by the
    // trace above): the probe's own first.
    // A netfilter drop the trace names by rule is told above; one it does not name
    // (conntrack's own, an iptables-legacy rule) is a cause here.
    let candidates = || {
        p.drops
            .iter()
            .filter(|d| d.reason != "NETFILTER_DROP" || dropped.is_none())
            .filter(|d| !echo(d))
    };
    let cause = candidates()
        .find(|d| d.own)
        .or_else(|| candidates().find(|d| drops::meaning(&d.reason).is_some()));
    if status == Status::Fail
        && let Some(d) = dropped
    {
        f.summary.push_str(&format!(
            "; the kernel's trace: dropped by {} {} {}{}{}",
            d.family,
            d.table,
            d.chain,
            d.rule
                .as_deref()
                .map(|r| format!(" `{r}`"))
                .unwrap_or_else(|| " (policy)".into()),
            d.handle.map(|h| format!(" handle {h}")).unwrap_or_default()
        ));
        f.commands
            .push(format!("nft -a list chain {} {} {}", d.family, d.table, d.chain));
    } else if status == Status::Fail
        && let Some(c) = cause
    {
        f.summary.push_str(&format!(
            "; the kernel dropped {} as {} in {}",
            if c.own {
                "them"
            } else {
                "packets in the probe's window"
            },
            c.reason,
            c.function()
        ));
    }
    if status == Status::Fail && (dropped.is_some() || cause.is_some()) {
        f.commands.push(
            "cd /sys/kernel/tracing && echo 1 > events/skb/kfree_skb/enable && timeout 10 cat trace_pipe; \
             echo 0 > events/skb/kfree_skb/enable"
                .into(),
        );
    }
    for h in &p.hops {
        f.commands.push(h.command.clone());
    }
    if status == Status::Fail {
        f.hint = Some(match dropped {
            Some(d) => format!(
                "the kernel dropped the probe in {} {} {}: remove or narrow that rule, or accept the flow before it \
                 (nft -a list chain {} {} {})",
                d.family, d.table, d.chain, d.family, d.table, d.chain
            ),
            None => {
                let why = cause.map(|c| {
                    format!(
                        "the kernel dropped {} as {} in {}: {}",
                        if c.own {
                            "them"
                        } else {
                            "packets in the probe's window"
                        },
                        c.reason,
                        c.function(),
                        drops::meaning(&c.reason).unwrap_or("see the kernel's drop reason")
                    )
                });
                let place = match last_seen {
                    Some(i) if i < final_hop => {
                        format!(
                            "the packets stop between {} and {}",
                            p.hops[i].hop,
                            p.hops[i + 1].hop
                        )
                    }
                    Some(i) => format!("they reach {} and go no further", p.hops[i].hop),
                    None => format!("they never leave {}", p.hops[0].hop),
                };
                let why = why.or_else(|| {
                    misaddressed.then(|| {
                        format!(
                            "the sender's ARP entry for {} holds another MAC than its {}: delete it in the sender \
                             (ip neigh del {} dev {}) and the next packet asks again",
                            p.dst,
                            p.dst_mac.as_deref().unwrap_or("?"),
                            p.dst,
                            p.hops[0].hop.split('@').next().unwrap_or("IFACE")
                        )
                    })
                });
                // The failing static check that explains it (beside the kernel's reason,
                // which says what dropped them but rarely why).
                let check = || -> Option<String> {
                    // The engine's walk of the same packet first: it names the hop.
                    let mut failing: Vec<&Finding> = checks
                        .iter()
                        .filter(|c| c.status == Status::Fail && c.category != "probe")
                        .collect();
                    failing.sort_by_key(|c| c.id != "path.trace");
                    let (c, rest) = failing.split_first()?;
                    let others: Vec<&str> = rest.iter().map(|c| c.id.as_str()).collect();
                    Some(format!(
                        "the failing check {} says why: {}{}{}",
                        c.id,
                        c.summary,
                        c.hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default(),
                        if others.is_empty() {
                            String::new()
                        } else {
                            format!("; also failing: {}", others.join(", "))
                        }
                    ))
                };
                let check = check();
                let why = match (why, check) {
                    (Some(k), Some(c)) => Some(format!("{k}; {c}")),
                    (k, c) => k.or(c),
                };
                match why {
                    Some(why) => format!("{place}; {why}"),
                    None if last_seen.is_some_and(|i| i < final_hop) => {
                        format!("{place}: look at that link and its bridge port")
                    }
                    None => format!("{place}: no check and no kernel trace says why; watch the hops by hand"),
                }
            }
        });
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(name: &str, requests: u32) -> HopSeen {
        HopSeen {
            hop: name.into(),
            requests,
            replies: 0,
            arp_requests: 0,
            arp_replies: 0,
            misaddressed: 0,
            error: None,
            command: format!("tcpdump -i {name}"),
        }
    }

    #[test]
    fn dns_queries_and_answers() {
        let q = dns_query_packet(0x1234);
        assert_eq!(&q[..2], &[0x12, 0x34]);
        assert_eq!(q.len(), 12 + 1 + 11 + 1 + 7 + 1 + 4);
        // An answer has QR set and the same id; its rcode is the low nibble.
        let mut a = q.clone();
        a[2] |= 0x80;
        a[3] = 0x83;
        assert_eq!(dns_rcode(&a, 0x1234), Some(3));
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(dns_rcode(&a, 0x1235), None);
        assert_eq!(dns_rcode(&q, 0x1234), None, "a query is no answer");
        assert_eq!(dns_rcode(&a[..5], 0x1234), None);
    }

    #[test]
    fn a_kernel_drop_reason_names_the_cause() {
        let mut p = ProbeResult {
            dst: Ipv4Addr::new(10, 0, 0, 3),
            dst_mac: None,
            answered: 0,
            hops: vec![
                hop("eth0@a", 3),
                hop("veth-a", 3),
                hop("br0", 0),
                hop("eth0@b", 0),
            ],
            moved: Vec::new(),
            trace: Vec::new(),
            trace_error: None,
            flow: Flow::Icmp,
            refused: 0,
            drops: vec![
                drops::KernelDrop {
                    reason: "NO_SOCKET".into(),
                    location: "tcp_v4_rcv+0x1/0x2".into(),
                    protocol: "ipv4".into(),
                    task: "sshd-9".into(),
                    count: 1,
                    own: false,
                },
                drops::KernelDrop {
                    reason: "IP_RPFILTER".into(),
                    location: "ip_rcv_finish_core+0x2b9/0x4c0".into(),
                    protocol: "ipv4".into(),
                    task: "ping-42".into(),
                    count: 3,
                    own: true,
                },
            ],
            drops_error: None,
        };
        // What `group` sorts: the probe's own first.
        p.drops.reverse();
        let f = finding(&p);
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.summary
                .ends_with("the kernel dropped them as IP_RPFILTER in ip_rcv_finish_core"),
            "{f:#?}"
        );
        let hint = f.hint.as_deref().unwrap();
        assert!(
            hint.starts_with(
                "the packets stop between veth-a and br0; the kernel dropped them as IP_RPFILTER"
            ) && hint.contains("rp_filter"),
            "{hint}"
        );
        assert!(f.evidence.iter().any(|e| e
            == "kernel drop: NO_SOCKET at tcp_v4_rcv+0x1/0x2 x1 (ipv4 in sshd-9; host-wide, attributed by the probe's window)"));
        // Only others' drops, none with a known meaning: no cause is claimed.
        p.drops.retain(|d| !d.own);
        p.drops[0].reason = "SOMETHING_NEW".into();
        let f = finding(&p);
        assert!(!f.summary.contains("the kernel dropped"), "{f:#?}");
        // Not readable: said so, and the rest stands.
        p.drops.clear();
        p.drops_error = Some("tracefs is not mounted".into());
        let f = finding(&p);
        assert!(
            f.evidence
                .iter()
                .any(|e| e == "kernel drop reasons: not read (tracefs is not mounted)")
        );
    }
}
