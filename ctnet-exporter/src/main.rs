//! ctnet-exporter: Prometheus metrics of Linux container networking, per container.
//!
//! Built only on `ctnet-core`'s public API: each scrape (at most one per
//! `--min-interval`) takes a snapshot of the host, joins it, runs the light checks of
//! every container and renders the Prometheus text format.

mod metrics;
mod server;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ctnet_core::runtime::RuntimeOptions;
use ctnet_core::source::ScanOptions;

/// The address served when `--listen` is not given (9587: not taken on Prometheus's
/// list of default exporter ports).
const DEFAULT_LISTEN: &str = "127.0.0.1:9587";

#[derive(Parser, Debug)]
#[command(
    name = "ctnet-exporter",
    version,
    about = "Prometheus exporter of container networking: per-container veth counters and drops, \
             bridge FDB, neighbour and conntrack fill, firewall rule counters, check status",
    after_help = "Scrape http://127.0.0.1:9587/metrics. Each scrape reuses the last scan while it is \
younger than --min-interval; a burst of scrapes costs one scan.

Reading every netns needs CAP_SYS_ADMIN, the firewall CAP_NET_ADMIN: run as root, or
with those file capabilities. What could not be read is in ctnet_scan_source_problems.

Examples:
  ctnet-exporter                                 serve on 127.0.0.1:9587
  ctnet-exporter --listen 0.0.0.0:9587 --min-interval 15s
  ctnet-exporter --once | promtool check metrics print one scrape and exit

Exit codes: 0 stopped cleanly (or --once printed a scan); 1 --once could not scan;
2 usage; 3 the listen address could not be bound."
)]
struct Args {
    /// Address and port to serve /metrics on.
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// A scrape within this long of the last scan gets that scan (`500ms`, `5s`, `1m`).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    min_interval: Duration,
    /// How long a scrape waits for a new scan before it is answered with the previous
    /// one (the scan goes on).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    scan_budget: Duration,
    /// Do not run the light checks (no ctnet_check_status).
    #[arg(long)]
    no_checks: bool,
    /// Most firewall rules exported (in dump order); the rest are counted in
    /// ctnet_firewall_rules_omitted.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_rules: usize,
    /// Also look for named netns in this directory (repeatable).
    #[arg(long = "netns-dir", value_name = "DIR")]
    netns_dirs: Vec<PathBuf>,
    /// The netns to treat as the host (default: the exporter's own).
    #[arg(long, value_name = "PATH")]
    host_netns: Option<PathBuf>,
    /// Docker endpoint (`unix:///path`).
    #[arg(long, env = "DOCKER_HOST", value_name = "URL")]
    docker_host: Option<String>,
    /// Ask no container daemon (containers are found through cgroups only).
    #[arg(long)]
    no_daemon: bool,
    /// Print one scrape on stdout and exit.
    #[arg(long)]
    once: bool,
}

/// `500ms`, `5s`, `2m`, or a number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: use a number with ms, s or m (500ms, 5s, 1m)");
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut scan = ScanOptions::default();
    scan.netns_dirs.extend(args.netns_dirs.iter().cloned());
    scan.host_netns = args.host_netns.clone();
    scan.runtime = Some(RuntimeOptions {
        docker_host: args.docker_host.clone(),
        no_daemon: args.no_daemon,
    });
    let cfg = server::Config {
        scan,
        checks: !args.no_checks,
        min_interval: args.min_interval,
        budget: args.scan_budget,
        limits: metrics::Limits {
            max_rules: args.max_rules,
        },
    };
    let exporter = server::Exporter::new(cfg);
    if args.once {
        return match exporter.scrape() {
            Ok(text) => {
                use std::io::Write as _;
                let mut out = std::io::stdout().lock();
                match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("ctnet-exporter: writing the metrics: {e}");
                        ExitCode::from(1)
                    }
                }
            }
            Err(e) => {
                eprintln!("ctnet-exporter: {}", ctnet_core::text::escape(&e));
                ExitCode::from(1)
            }
        };
    }
    let listener = match TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "ctnet-exporter: cannot listen on {}: {e} (choose another with --listen ADDR:PORT)",
                args.listen
            );
            return ExitCode::from(3);
        }
    };
    let addr = listener.local_addr().map_or(args.listen, |a| a);
    eprintln!("ctnet-exporter: serving http://{addr}/metrics");
    // The first scan starts now, so the first scrape does not wait for it.
    let _ = std::thread::Builder::new().spawn({
        let e = std::sync::Arc::clone(&exporter);
        move || {
            let _ = e.scrape();
        }
    });
    match server::serve(listener, exporter) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctnet-exporter: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        for bad in ["", "s", "5h", "-1s", "1e9s", "NaNs", "99999999"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("500ms, 5s, 1m"), "{bad}: {e}");
        }
    }
}
