//! Capture a few packets of one interface inside a named netns, with a BPF filter:
//! `capture_one NETNS IFACE [FILTER] [COUNT]`, e.g. `capture_one web1 eth0 icmp 5`.
//! Prints one tcpdump-like line per packet. Run as root, or inside `ctnet-diag world`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ctnet_core::capture::{self, CaptureOptions, Control, Endpoint, LineFormat, Sink};
use ctnet_core::netns::Netns;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [netns, iface, rest @ ..] = args.as_slice() else {
        eprintln!("usage: capture_one NETNS IFACE [FILTER] [COUNT]");
        std::process::exit(2);
    };
    let filter = rest.first().filter(|f| !f.is_empty()).cloned();
    let count: u64 = rest.get(1).map_or(Ok(10), |c| c.parse())?;
    if let Some(f) = &filter {
        capture::check_filter(f)?;
    }
    let ep = Endpoint {
        netns: Netns::named("/run/netns", netns)?,
        iface: iface.clone(),
        label: format!("{iface}@{netns}"),
        peer_mac: None,
    };
    let opts = CaptureOptions {
        filter,
        immediate: true,
        ..CaptureOptions::default()
    };
    let out: Box<dyn Write + Send> = Box::new(std::io::stdout());
    let sink = Sink::Lines {
        out: Arc::new(Mutex::new(out)),
        format: LineFormat::Text,
    };
    let session = capture::start(0, &ep, &opts, sink, Control::new(Some(count)))?;
    let stats = session.join();
    eprintln!(
        "{} captured, {} dropped by the kernel{}",
        stats.captured,
        stats.dropped_by_kernel,
        stats.ended.map(|e| format!(" ({e})")).unwrap_or_default()
    );
    Ok(())
}
