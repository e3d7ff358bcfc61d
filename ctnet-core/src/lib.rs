//! ctnet-core: read, join, judge and watch Linux container networking.
//!
//! A tool built on this crate does some of four jobs. Each starts from a
//! [`model::Snapshot`], plain serde data that can be saved as JSON and loaded again, so
//! everything after the first step works the same on a live host and on a file a user
//! sent.
//!
//! # 1. Read a host: [`source::snapshot`]
//!
//! Every netns (named, the runtimes' sandbox keys, `/proc/*/ns/net`), and in each the
//! links with stats64, addresses, routes, neighbours, the bridge FDB, sysctls and
//! `ethtool -S`; the host's iptables and nft rules with their counters; the containers
//! the runtimes know. A source that cannot be read is listed in
//! [`Snapshot::sources`](model::Snapshot::sources), never silently left out. Reading
//! another netns needs CAP_SYS_ADMIN (and the firewall CAP_NET_ADMIN): run as root, or
//! inside a rootless [`world`].
//!
//! ```no_run
//! use ctnet_core::source::{self, ScanOptions};
//!
//! let snap = source::snapshot(&ScanOptions::default())?;
//! std::fs::write("host.json", snap.to_json())?;
//! // ... later, anywhere:
//! let again = ctnet_core::model::Snapshot::load("host.json")?;
//! assert_eq!(again.netns.len(), snap.netns.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 2. Join it: [`topology::Topology`] and [`target`]
//!
//! Veth pairs resolved across netns by `@ifN` and `link-netnsid` (never by guessing
//! from ifindex arithmetic), bridges with their ports and FDB, and every container-side
//! interface joined to its host veth, bridge and container. [`target::resolve`] maps
//! what a user types (a container name or id prefix, a netns name or path, `pid:N`, a
//! host interface) to a netns.
//!
//! ```no_run
//! # let snap = ctnet_core::model::Snapshot::load("host.json")?;
//! use ctnet_core::topology::{Peer, Topology};
//!
//! let topo = Topology::build(&snap);
//! for v in &topo.veths {
//!     if let Peer::Resolved { iface, .. } = &v.peer {
//!         println!("{} -> {} in {} {:?}", v.host.name, iface.name, iface.netns_label, v.containers);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 3. Judge it: [`check`] and [`flow`]
//!
//! [`check::run`] is the support runbook as pure functions: each [`check::Finding`] has
//! a stable id, a status, the evidence read and the manual commands that show the same.
//! [`flow::trace`] walks one packet (and its reply) through routing, the bridge and
//! every netfilter hook in kernel order, naming the rule that decides each hop.
//!
//! ```no_run
//! # let snap = ctnet_core::model::Snapshot::load("host.json")?;
//! use ctnet_core::flow::{self, Destination, FlowSpec, L4, Source};
//! use ctnet_core::{check, target, topology::Topology};
//!
//! let topo = Topology::build(&snap);
//! let web = target::resolve(&snap, "web1")?;
//! let report = check::run(&snap, &topo, &web, None);
//! println!("{}", serde_json::to_string_pretty(&report)?);
//!
//! let netns = web.netns.expect("web1 is running");
//! let spec = FlowSpec::new(Source::Netns { netns, addr: None }, Destination::Host, L4::Tcp(53));
//! let t = flow::trace(&snap, &spec)?;
//! println!("{:?}: {}", t.verdict, t.summary);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # 4. Watch it: [`capture`]
//!
//! A libpcap handle opened inside the interface's own netns (on a thread of its own, so
//! no other thread changes netns), with a BPF filter, feeding a pcap file, decoded lines
//! or a bounded ring.
//!
//! ```no_run
//! use ctnet_core::capture::{self, CaptureOptions, Control, Endpoint, Sink, Ring};
//! use ctnet_core::netns::Netns;
//! use std::sync::Arc;
//!
//! let ep = Endpoint {
//!     netns: Netns::named("/run/netns", "web1")?,
//!     iface: "eth0".into(),
//!     label: "eth0@web1".into(),
//!     peer_mac: None,
//! };
//! let opts = CaptureOptions { filter: Some("icmp".into()), ..CaptureOptions::default() };
//! let ring = Arc::new(Ring::new(1024));
//! let control = Control::new(Some(10));
//! let session = capture::start(0, &ep, &opts, Sink::Ring(ring.clone()), control)?;
//! let stats = session.join(); // after 10 packets
//! println!("{} frames, {} dropped by the kernel", ring.len(), stats.dropped_by_kernel);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Beyond the four jobs: [`lab`] builds throwaway bridge/veth/netns/NAT labs over
//! netlink (and injects named faults), [`world`] gives a rootless user+net+mount
//! namespace to build them in, and [`netns`] is the one place a thread enters a netns.
//! The crate's `examples/` are complete programs for each job.
//!
//! # Stability
//!
//! The crate follows semver from 1.0; before it, a minor version may break the Rust API
//! and says so in its notes. Stable already, and kept so across versions:
//! - the JSON documents and their schemas (`ctnet.snapshot/v2`, `ctnet.check/v1`,
//!   `ctnet.trace/v1`, `ctnet.packet/v1`): fields are added, never renamed or removed,
//!   and a newer crate reads every older snapshot;
//! - check ids and categories ([`check::CATALOG`]) and the meaning of each status.
//!
//! Not stable: the Rust shape of the model (structs that will grow are
//! `#[non_exhaustive]`: build them from `Default` or deserialize them, and match them
//! with `..`), the text of summaries, hints and errors (match on ids and
//! [`ErrorKind`], never on text), and the modules hidden from these docs.

pub mod bundle;
pub mod capture;
pub mod check;
pub mod error;
pub mod flow;
pub mod lab;
pub mod model;
pub mod netfilter;
pub mod netns;
pub mod nfnetlink;
pub mod output;
pub mod privilege;
pub mod probe;
#[doc(hidden)]
pub mod prop;
pub mod runtime;
pub mod source;
pub mod target;
pub mod text;
pub mod tool;
pub mod topology;
pub mod vocab;
pub mod world;

pub use error::{Error, ErrorKind, Result};
