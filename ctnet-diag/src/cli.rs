//! Command-line interface: every command, flag and help text of `ctnet-diag`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ipnet::Ipv4Net;

/// Diagnose Linux container networking: bridges, veth pairs, network namespaces, NAT.
#[derive(Debug, Parser)]
#[command(
    name = "ctnet-diag",
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("CTNET_GIT_REV"), ")"),
    about,
    long_about = "Diagnose Linux container networking: bridges, veth pairs, network \
                  namespaces, the bridge FDB, ARP, routes, NAT and firewall counters.\n\n\
                  With no command it opens the dashboard on this host. Start with \
                  `ctnet-diag demo`: the dashboard on a throwaway lab with traffic, inside a \
                  private, rootless world, touching nothing on this host.",
    after_help = "With no command, opens the dashboard on this host (the same as `ctnet-diag tui`).\n\
                  Exit codes: 0 done, 1 a check failed, 2 usage or unknown target, \
                  3 missing privilege or environment, 4 internal error.\n\n\
                  Without root: `sudo setcap cap_net_admin,cap_sys_admin,cap_sys_ptrace,\
                  cap_dac_read_search,cap_net_raw+ep $(command -v ctnet-diag)` lets users who may \
                  execute the binary read, capture and probe (restrict it to a group first); \
                  `lab` still needs root."
)]
pub struct Cli {
    /// When to colour text output: auto (on a terminal, unless NO_COLOR is set),
    /// always, or never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// Diagnostics on stderr: what each scan step read, how long it took, what it
    /// skipped and why (-v), per netns and per tool (-vv), everything (-vvv). RUST_LOG
    /// (`debug`, `ctnet_core=trace`) overrides.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Dashboard options, when no command is given.
    #[command(flatten)]
    pub dashboard: TuiArgs,
    /// What to do (default: the dashboard).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// When to colour text output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always (also into a pipe or a file).
    Always,
    /// Never.
    Never,
}

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `ctnet-diag.1` and one `ctnet-diag-COMMAND.1` per command (lab's too) into
    /// this directory instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Arguments of the dashboard.
#[derive(Debug, Args)]
pub struct TuiArgs {
    /// Seconds between scans of the host (rates and counters are per interval).
    #[arg(long, value_name = "SECS", default_value_t = 2.0, value_parser = parse_interval)]
    pub interval: f64,
    /// Where to read.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// A scan interval: 0.2 s to an hour.
fn parse_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds (e.g. 2 or 0.5)"))?;
    if (0.2..=3600.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} s is out of range: use 0.2 to 3600 seconds"))
    }
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The dashboard: topology tree, links and rates, FDB, ARP, routes, firewall
    /// counters, live capture on any veth and the guided checks. Press ? inside for keys.
    #[command(
        after_help = "Keys: q quit, ? help, Tab panes, arrows/j/k move, Enter fold, p capture, / filter, \
                            w write pcap, c checks, C pair checks, s save snapshot, r refresh.\n\
                            Offline: ctnet-diag tui --from snapshot.json (everything but capture)."
    )]
    Tui(TuiArgs),
    /// Every host veth with its bridge, port state, peer ifindex, peer netns, peer MAC
    /// and IPs: which container is behind `vethXXXX`.
    Veths(VethsArgs),
    /// A readable tree: bridge -> ports -> netns eth0 with IP/MAC (`brctl show` joined
    /// with `ip addr`), then netns that are isolated or orphaned. With a TARGET, that
    /// container or netns alone: its interfaces, host veths, bridge, FDB, gateway.
    #[command(
        after_help = "TARGET is, in this order: a container name or id prefix (Docker/Podman), \
                            a netns name, a netns path, pid:<PID>, or a host interface name."
    )]
    Show(ShowArgs),
    /// Read everything (links, addresses, routes, neighbours, FDB, sysctls, ethtool -S,
    /// iptables/nft counters) from the host and every netns, as JSON.
    Snapshot(SnapshotArgs),
    /// Run the guided checks for a container (and a peer): link, veth, bridge port,
    /// addresses, routes, ARP, FDB, MTU, drops, forwarding, NAT, firewall. Prints a
    /// verdict, the evidence and the manual commands that confirm each finding.
    #[command(
        after_help = "Exit codes: 0 no failure (warnings allowed unless --strict), 1 a check failed, \
                            2 unknown target, 3 missing privilege or environment.\n\
                            Examples:\n  ctnet-diag check web1\n  ctnet-diag check web1 --peer api1 --json"
    )]
    Check(CheckArgs),
    /// List every check: id, category and what it looks at.
    Checks(JsonArg),
    /// Trace a flow through this host without sending a packet: routing, bridge, FDB,
    /// neighbours, sysctls and every netfilter hook (iptables-nft, iptables-legacy and
    /// native nft, in the kernel's order), NAT included; then its reply. Names the hop
    /// and the rule that decide.
    ///
    /// SRC is a TARGET (container, netns name or path, pid:<PID>), `host`, or
    /// `external` (a client beyond the interface of the host's default route;
    /// `external:IP` and `external@IFACE` choose its address and interface). DST is a
    /// TARGET, an IP address, or `host` (the host's own address where the flow arrives:
    /// `trace external host --tcp 8080` follows a published port).
    #[command(after_help = "Without --tcp or --udp the flow is an ICMP echo (ping).\n\
                            Exit codes: 0 reachable, 1 unreachable or ambiguous, 2 usage or unknown target, \
                            3 missing privilege or environment.\n\
                            Examples:\n  ctnet-diag trace web1 api1 --tcp 80\n  \
                            ctnet-diag trace external host --tcp 8080\n  \
                            ctnet-diag trace web1 192.0.2.10 --udp 53 --json\n  \
                            ctnet-diag trace c1 c2 --from snapshot.json")]
    Trace(TraceArgs),
    /// Capture packets on interfaces in any netns at once (like tcpdump -nn -e), merged in
    /// time order; Ctrl-C prints the statistics.
    #[command(
        after_help = "TARGET is a host interface (veth3f2a1b, docker0) or a container, netns or pid:<PID>, \
                            which captures each of its interfaces inside its netns (add --both for their host veths).\n\
                            Examples:\n  ctnet-diag capture web1 --both -f icmp\n  \
                            ctnet-diag capture web1 api1 --follow -c 20\n  ctnet-diag capture veth3f2a1b -w /tmp/x.pcap"
    )]
    Capture(CaptureArgs),
    /// A support bundle: one .tar.gz with the snapshot (every netns's own rules too),
    /// the checks of every container (JSON and text), optional short captures of every
    /// host veth (pcapng), tool and kernel versions, the kernel log lines that matter,
    /// and a manifest of what could not be read and why. Read it back with any read
    /// command or the dashboard: `--from FILE.tar.gz`.
    #[command(
        after_help = "--redact replaces every MAC, address and name (host, containers, ids, images, \
                            networks, netns) with the same token in every file, keeping subnets \
                            (addresses are mapped prefix-preserving), so the bundle still reads with --from.\n\
                            Bounded: captures keep 512 bytes of a frame (headers only with --redact) and at \
                            most 20,000 frames; the kernel log its newest 2,000 matching lines. The file is \
                            mode 0600. Progress goes to stderr.\n\
                            Examples:\n  ctnet-diag bundle -o /tmp/ctnet.tar.gz\n  \
                            ctnet-diag bundle -o case-1234.tar.gz --capture 5 --redact\n  \
                            ctnet-diag check web1 --from case-1234.tar.gz"
    )]
    Bundle(BundleArgs),
    /// Print a shell completion script for ctnet-diag.
    #[command(after_help = "Install, for example:\n  \
                            ctnet-diag completions bash > /etc/bash_completion.d/ctnet-diag\n  \
                            ctnet-diag completions zsh > \"${fpath[1]}/_ctnet-diag\"\n  \
                            ctnet-diag completions fish > ~/.config/fish/completions/ctnet-diag.fish")]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    #[command(after_help = "Read it with: ctnet-diag man | man -l -\n\
                            Install every page: ctnet-diag man --dir /usr/local/share/man/man1")]
    Man(ManArgs),
    /// Build, list and remove throwaway labs (bridge + veths + netns "containers").
    #[command(subcommand)]
    Lab(LabCommand),
    /// The dashboard on a throwaway lab with traffic, in a private rootless world;
    /// removed on exit.
    ///
    /// Needs no root: it runs in fresh user, network and mount namespaces, so nothing is
    /// changed on this host. The containers ping each other, so a capture (p) shows
    /// packets at once, and each serves tcp/80; --fault breaks something first for the
    /// checks (c, and the colours of the tree) to find and a trace (t) to explain.
    /// Without a terminal (or with --no-tui) it prints the lab and a ping matrix instead.
    #[command(
        after_help = "Examples:\n  ctnet-diag demo\n  ctnet-diag demo --fault stale-arp   \
                            (then select demo-c1, press C and pick demo-c2)\n  ctnet-diag demo --fault port-drop   \
                            (demo-c2 turns red; on demo-c1 press t, type demo-c2 tcp 80)\n  ctnet-diag demo --no-tui"
    )]
    Demo(DemoArgs),
    /// Run a command (default: your shell) inside a fresh rootless world.
    ///
    /// The world has its own network namespace (with only `lo`), its own /run (so its own
    /// /run/netns) and you are root inside it: `ctnet-diag lab up`, `ip`, `bridge`,
    /// `iptables` and `tcpdump -Z root` work there without privilege on this host.
    #[command(
        after_help = "Example:\n  ctnet-diag world -- sh -c 'ctnet-diag lab up --name t --nat && \
                            ip netns exec t-c1 ping -c1 10.77.0.3'"
    )]
    World(WorldArgs),
}

/// Arguments of `bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The bundle to write (a .tar.gz, mode 0600).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Also capture every host veth for SECONDS (1-60) into captures.pcapng.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=60))]
    pub capture: Option<u64>,
    /// Replace MACs, addresses and names consistently across every file, so the bundle
    /// can leave the host.
    #[arg(long)]
    pub redact: bool,
    /// Where to read (this host; --from is refused: a bundle is made live).
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Where read commands get their data: this host, or a snapshot file.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Read a snapshot file (from `ctnet-diag snapshot -o FILE`) or a support bundle
    /// (`ctnet-diag bundle -o FILE.tar.gz`) instead of this host.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["netns_dirs", "host_netns", "no_daemon"])]
    pub from: Option<PathBuf>,
    /// Another directory of netns bind mounts to scan (repeatable); /run/netns and
    /// /var/run/docker/netns are always scanned.
    #[arg(long = "netns-dir", value_name = "DIR")]
    pub netns_dirs: Vec<PathBuf>,
    /// Treat this netns as the host (nested setups: docker-in-docker, kind nodes).
    #[arg(long, value_name = "PATH")]
    pub host_netns: Option<PathBuf>,
    /// Treat this named netns (/run/netns/NODE) as the host: a node of a multi-node lab
    /// (`lab up --nodes`), a kind node bound there. A pod NAME-nI-cJ of a multi-node lab
    /// picks its node by itself.
    #[arg(long, value_name = "NODE", conflicts_with_all = ["host_netns", "from"])]
    pub node: Option<String>,
    /// The Docker engine's socket (unix:///path) [default: unix:///var/run/docker.sock
    /// when it exists]; Podman's compatible socket is found at /run/podman/podman.sock or
    /// $XDG_RUNTIME_DIR/podman/podman.sock.
    #[arg(long, env = "DOCKER_HOST", value_name = "URL")]
    pub docker_host: Option<String>,
    /// Ask no container daemon: find containers through their processes' cgroups only.
    #[arg(long)]
    pub no_daemon: bool,
}

/// Arguments of `veths`.
#[derive(Debug, Args)]
pub struct VethsArgs {
    /// Where to read.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print JSON (schema ctnet.veths/v1) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A container, netns, pid:<PID> or host interface to show alone.
    pub target: Option<String>,
    /// Where to read.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print the joined topology as JSON (schema ctnet.topology/v1).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The container, netns or pid:<PID> to check.
    pub target: String,
    /// A second container: also check the path between the two.
    #[arg(long, value_name = "TARGET")]
    pub peer: Option<String>,
    /// Print JSON (schema ctnet.check/v1).
    #[arg(long)]
    pub json: bool,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub strict: bool,
    /// Also ping the peer (or the gateway) from inside the target (or send --port's
    /// packets), capturing on every hop, tracing them through netfilter (a temporary
    /// nft table) and reading the kernel's drop reasons (a tracefs instance), both
    /// removed after, and diffing drop and firewall counters: names the hop where they
    /// stop and why. Needs CAP_NET_ADMIN and CAP_NET_RAW, and CAP_SYS_ADMIN for the drop
    /// reasons; traffic stays on the path.
    #[arg(long, conflicts_with = "from")]
    pub probe: bool,
    /// With --probe: send the flow's own packet instead of a ping: three TCP connections
    /// (each closed at once) or UDP datagrams to this port of the peer (or gateway).
    #[arg(long, value_name = "PORT/PROTO", requires = "probe", value_parser = ctnet_core::probe::Flow::parse)]
    pub port: Option<ctnet_core::probe::Flow>,
    /// With --probe: add no temporary nft table (the netfilter trace) and no tracefs
    /// instance (the kernel's drop reasons); the hops and counters are still watched.
    #[arg(long, requires = "probe")]
    pub no_kernel_trace: bool,
    /// Where to read the host from.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Where the flow starts: a TARGET, `host`, or `external[:IP][@IFACE]`.
    pub src: String,
    /// Where it goes: a TARGET, an IP address, or `host`.
    pub dst: String,
    /// A TCP flow to this port (SYN, the SYN-ACK back, the ACK).
    #[arg(long, value_name = "PORT", conflicts_with_all = ["udp", "icmp"])]
    pub tcp: Option<u16>,
    /// A UDP flow to this port (a datagram and its answer).
    #[arg(long, value_name = "PORT", conflicts_with = "icmp")]
    pub udp: Option<u16>,
    /// An ICMP echo (the default).
    #[arg(long)]
    pub icmp: bool,
    /// The source port of a TCP or UDP flow [default: 40000].
    #[arg(long, value_name = "PORT")]
    pub sport: Option<u16>,
    /// Packets of this IP length in bytes, with DF set (as `ping -M do -s SIZE-28`):
    /// every interface on the path whose MTU is smaller drops them ("fragmentation
    /// needed"), a VXLAN device's 50 bytes of overhead included. Without it, no MTU is
    /// checked.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(68..=65535), conflicts_with = "probe")]
    pub size: Option<u32>,
    /// Also send the flow's own packets from SRC (a container or netns) to DST (3 pings,
    /// TCP connections closed at once, or UDP datagrams), watch every hop, trace them
    /// through netfilter and read the kernel's drop reasons, then compare with the
    /// static walk. Changes nothing but a temporary nft table and tracefs instance,
    /// both removed after. Needs CAP_NET_ADMIN and CAP_SYS_ADMIN.
    #[arg(long, conflicts_with = "sport")]
    pub probe: bool,
    /// With --probe: add no temporary nft table and no tracefs instance.
    #[arg(long, requires = "probe")]
    pub no_kernel_trace: bool,
    /// Print JSON (schema ctnet.trace/v1; with --probe, `probe` and `probe_checks` too).
    #[arg(long)]
    pub json: bool,
    /// Where to read the host from.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Interfaces, containers, netns or pid:<PID> to capture on.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// A BPF filter, as tcpdump takes it (e.g. "icmp or arp").
    #[arg(long, short = 'f', value_name = "BPF")]
    pub filter: Option<String>,
    /// Stop after N packets in all.
    #[arg(long, short = 'c', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=i64::MAX as u64))]
    pub count: Option<u64>,
    /// Write the packets to a file (mode 0600) instead of printing them: pcapng, with
    /// an interface block per captured interface so Wireshark and tshark show where each
    /// packet was seen, when FILE ends in .pcapng or more than one interface is
    /// captured; plain pcap for one interface otherwise.
    #[arg(long, short = 'w', value_name = "FILE", conflicts_with_all = ["json", "follow"])]
    pub write: Option<PathBuf>,
    /// Print one JSON object per packet (schema ctnet.packet/v1).
    #[arg(long)]
    pub json: bool,
    /// For a container or netns: also capture the host veth of each interface.
    #[arg(long)]
    pub both: bool,
    /// At the end, list each packet and every interface it was seen on.
    #[arg(long, conflicts_with = "json")]
    pub follow: bool,
    /// Bytes kept of each packet (65535 at most with -w).
    #[arg(long, default_value_t = 262_144, value_parser = clap::value_parser!(i32).range(64..=262_144))]
    pub snaplen: i32,
    /// Deliver each packet at once (interactive use; drops under load).
    #[arg(long)]
    pub immediate: bool,
    /// Promiscuous mode (a veth sees its pair's traffic without it).
    #[arg(long)]
    pub promisc: bool,
    /// Kernel capture buffer per interface, in KiB.
    #[arg(long, value_name = "KIB", default_value_t = 4096, value_parser = clap::value_parser!(i32).range(64..=1_048_576))]
    pub buffer_size: i32,
    /// Where to read the host from.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Where to read.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Write to FILE (mode 0600) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also read the firewall rules inside every netns (a container's INPUT, its own
    /// nat table as Docker's embedded DNS has), so `trace --from` sees them: a few tool
    /// runs per netns.
    #[arg(long, conflicts_with = "from")]
    pub netns_rules: bool,
}

/// `ctnet-diag lab ...`
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Create a lab: bridge NAME-br with the gateway address, and K netns NAME-c1..K,
    /// each with eth0 on a veth whose host end NAME-vI is on the bridge; or, with
    /// --nodes N --overlay vxlan, N nodes of K containers joined by a VXLAN overlay.
    #[command(
        after_help = "Needs CAP_NET_ADMIN and CAP_SYS_ADMIN: run as root, or rootless inside \
                            `ctnet-diag world`.\nExamples:\n  ctnet-diag lab up --name t --containers 3 --nat\n  \
                            ctnet-diag lab up --name ov --nodes 3 --overlay vxlan --containers 2 && ctnet-diag check ov-n1-c1 --peer ov-n2-c1"
    )]
    Up(LabUpArgs),
    /// Remove every object of a lab (veths, bridge, netns, tagged firewall rules) and
    /// restore ip_forward; safe to run twice.
    Down(LabDownArgs),
    /// List labs found in this network namespace.
    List(JsonArg),
    /// Inject a fault into a container's networking, to drill `check` and runbooks.
    ///
    /// The fault is planned from live state (any bridge/veth/netns container, ours or
    /// not), printed as the commands that apply and undo it, applied, and recorded so
    /// `lab fix` restores what was there. Only the target's path changes, and for
    /// forward-drop, port-drop, nft-drop, isolation, published-port and ip-forward-off
    /// the host's forwarding settings.
    #[command(after_help = FAULT_HELP)]
    Break(LabBreakArgs),
    /// Undo faults injected by `lab break`, newest first (all of them by default).
    Fix(LabFixArgs),
}

/// The fault list under `lab break --help`.
const FAULT_HELP: &str = "Faults:
  veth-down       sets the host veth down: nothing crosses it
  eth0-down       sets the container's interface down: it loses its link and routes
  detach          takes the host veth off the bridge
  bridge-down     sets the bridge down: every container on it is cut off
  ageing-zero     FDB ageing 0 (brctl setageing 0): nothing learned, every frame floods
  wrong-subnet    moves the container's address to 192.0.2.0/24
  no-route        removes the container's default route
  stale-arp       pins a wrong MAC for --peer (or the gateway) in the container's ARP table
  forward-drop    bridge-nf-call-iptables=1 (when br_netfilter is loaded) + FORWARD DROP first
  no-masquerade   removes the subnet's MASQUERADE rule
  mtu             raises the container's MTU to 9000, above the path's
  ip-forward-off  net.ipv4.ip_forward=0
  port-drop       a FORWARD rule drops TCP port 80 to --peer (ping still works)
  nft-drop        a native nft table (inet ctnet_fault) drops what goes to --peer
  isolation       moves the container to a second bridge ctnet-iso and drops between the two
  published-port  publishes the host's TCP 8080 to the container's 80 (DNAT), FORWARD drops it
  arp-ignore      the container answers no ARP request (arp_ignore 8)
  rp-filter       strict rp_filter on the bridge with the route back through another interface
  dns-blocked     drops the container's DNS (udp/tcp 53) in INPUT and FORWARD
  conntrack-full  fills the lab host's conntrack table: new connections are dropped

Overlay faults (on a node: a pod NAME-nI-cJ of `lab up --nodes`, or --node NODE):
  vxlan-mtu         raises the pod's MTU to the underlay's, above the node's VXLAN device
  vtep-fdb-missing  removes the node's FDB entry for --peer's node: its pods are unreachable
  vni-mismatch      rebuilds the node's VXLAN device with another VNI than the other nodes'
  underlay-drop     the node's INPUT drops the overlay's UDP port (4789)

Examples:
  ctnet-diag lab break veth-down lab-c1 && ctnet-diag check lab-c1
  ctnet-diag lab break stale-arp lab-c1 --peer lab-c2
  ctnet-diag lab break port-drop lab-c1 --peer lab-c2 && ctnet-diag trace lab-c1 lab-c2 --tcp 80
  ctnet-diag lab break vtep-fdb-missing ov-n1-c1 --peer ov-n2-c1 && ctnet-diag check ov-n1-c1 --peer ov-n2-c1
  ctnet-diag lab fix";

/// Arguments of `lab break`.
#[derive(Debug, Args)]
pub struct LabBreakArgs {
    /// The fault (see the list below).
    pub fault: String,
    /// The container, netns or pid:<PID> whose path to break.
    pub target: String,
    /// The peer, for stale-arp (default: the gateway).
    #[arg(long, value_name = "TARGET")]
    pub peer: Option<String>,
    /// Print the commands only; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON (schema ctnet.fault/v1) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Where to read the host from.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `lab fix`.
#[derive(Debug, Args)]
pub struct LabFixArgs {
    /// Only this fault.
    pub fault: Option<String>,
    /// Only faults on this target (as given to `lab break`).
    pub target: Option<String>,
    /// Print JSON (schema ctnet.fault-fix/v1) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `lab up`.
#[derive(Debug, Args)]
pub struct LabUpArgs {
    /// Lab name: 1-8 lowercase letters/digits, letter first; prefixes every object.
    #[arg(long, default_value = ctnet_core::lab::LabSpec::DEFAULT_NAME)]
    pub name: String,
    /// Number of netns "containers".
    #[arg(long, short = 'k', default_value_t = 3)]
    pub containers: u32,
    /// IPv4 subnet: the bridge gets the first address, containers the next ones
    /// [default: 10.77.0.0/24].
    #[arg(long, conflicts_with = "nodes")]
    pub subnet: Option<Ipv4Net>,
    /// Add MASQUERADE for the subnet, FORWARD accepts for the bridge, and ip_forward=1.
    #[arg(long, conflicts_with = "nodes")]
    pub nat: bool,
    /// Build N simulated nodes joined by an overlay instead (2-16): netns NAME-n1..N,
    /// each with a bridge cni0 (pods 10.77.I.0/24), --containers netns NAME-nI-c1..K on
    /// it, an underlay eth0 (10.78.0.I) on a switch netns NAME-ul, and a VXLAN device
    /// flannel.1 (VNI 1, UDP 4789) with flannel's routes, neighbours and FDB entries for
    /// every other node. Check a pod from the host as NAME-nI-cJ: its node is picked as
    /// the host netns.
    #[arg(long, value_name = "N", requires = "overlay")]
    pub nodes: Option<u32>,
    /// The overlay between nodes (with --nodes): vxlan.
    #[arg(long, value_name = "KIND", value_parser = ["vxlan"], requires = "nodes")]
    pub overlay: Option<String>,
    /// With --nodes: VXLAN devices learn remote MACs and flood to every node (an
    /// all-zeros FDB entry per node), instead of flannel's static entries.
    #[arg(long, requires = "nodes")]
    pub learning: bool,
    /// Print JSON (schema ctnet.lab/v1) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `lab down`.
#[derive(Debug, Args)]
pub struct LabDownArgs {
    /// The lab to remove.
    #[arg(long)]
    pub name: String,
    /// When the lab's record is corrupt: remove what the lab's tags and names prove is
    /// its own (bridge, veths, netns, tagged firewall rules) and the record. What only
    /// the record knew (ip_forward and the iptables tables as they were) is left as it
    /// is, and said so.
    #[arg(long)]
    pub force: bool,
    /// Print JSON (schema ctnet.lab-down/v1) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A lone `--json` flag.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of netns "containers" in the demo lab.
    #[arg(long, short = 'k', default_value_t = 3)]
    pub containers: u32,
    /// After showing the lab, open your shell inside the world to explore it with
    /// `ip`, `bridge`, `iptables`; the lab is removed when the shell exits.
    #[arg(long)]
    pub shell: bool,
    /// Break this first, on demo-c1 (peer demo-c2): veth-down, eth0-down, detach,
    /// bridge-down, ageing-zero, wrong-subnet, no-route, stale-arp, forward-drop,
    /// no-masquerade, mtu, ip-forward-off, port-drop, nft-drop, isolation, published-port.
    #[arg(long, value_name = "FAULT")]
    pub fault: Option<String>,
    /// Print the lab and a ping matrix instead of opening the dashboard.
    #[arg(long)]
    pub no_tui: bool,
    /// Seconds between scans in the dashboard.
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = parse_interval)]
    pub interval: f64,
}

/// Arguments of `world`.
#[derive(Debug, Args)]
pub struct WorldArgs {
    /// The command and its arguments (after `--`); default: $SHELL or /bin/sh.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn rejects_a_bad_subnet_with_a_usage_error() {
        let err = Cli::try_parse_from(["ctnet-diag", "lab", "up", "--subnet", "10.0.0.0/33"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--subnet"), "{err}");
    }
}
