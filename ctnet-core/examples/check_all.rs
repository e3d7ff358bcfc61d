//! The support runbook for every container on this host: one `ctnet.check/v1` JSON
//! report per line, the verdict of the worst first. Run as root, or inside
//! `ctnet-diag world`. Exit status 1 when any container has a failing check.

use ctnet_core::check::{self, Status};
use ctnet_core::source::{self, ScanOptions};
use ctnet_core::target;
use ctnet_core::topology::Topology;

fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    let snap = source::snapshot(&ScanOptions::default())?;
    let topo = Topology::build(&snap);
    let runner = check::Runner::new(&snap, &topo);
    let mut reports: Vec<_> = target::containers(&snap, &topo)
        .iter()
        .map(|t| runner.run(t, None))
        .collect();
    reports.sort_by_key(|r| std::cmp::Reverse(r.verdict));
    for r in &reports {
        // JSON escapes every control character a container could put in a name.
        println!("{}", serde_json::to_string(r)?);
    }
    let failed = reports.iter().any(|r| r.verdict == Status::Fail);
    Ok(std::process::ExitCode::from(u8::from(failed)))
}
