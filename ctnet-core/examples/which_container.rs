//! Which container is behind each host veth (or the one named): `which_container [VETH]`.
//! Run as root, or inside `ctnet-diag world`.

use ctnet_core::source::{self, ScanOptions};
use ctnet_core::topology::{Peer, Topology};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let only = std::env::args().nth(1);
    let snap = source::snapshot(&ScanOptions::default())?;
    let topo = Topology::build(&snap);
    for v in topo
        .veths
        .iter()
        .filter(|v| only.as_ref().is_none_or(|n| *n == v.host.name))
    {
        let name = ctnet_core::text::escape(&v.host.name);
        match &v.peer {
            Peer::Resolved { iface, .. } => {
                let who = v.containers.first().unwrap_or(&iface.netns_label);
                println!(
                    "{name} {} {}",
                    ctnet_core::text::escape(who),
                    ctnet_core::text::escape(&iface.name)
                );
            }
            other => println!("{name} ? {other:?}"),
        }
    }
    Ok(())
}
