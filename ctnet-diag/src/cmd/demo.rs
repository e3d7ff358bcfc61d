//! `ctnet-diag demo`: a lab in a private rootless world with traffic, shown in the
//! dashboard (or printed with a ping matrix), removed on exit.

use std::io::IsTerminal;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ctnet_core::lab::{self, LabEnv, LabSpec, LabSummary};
use ctnet_core::netns::Netns;

use crate::cli::DemoArgs;
use crate::cmd::lab::{render_down, render_up};

/// Enter a world, build the lab, then the dashboard with traffic (or a printed ping
/// matrix and optionally a shell), tear down.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let fault = args
        .fault
        .as_deref()
        .map(ctnet_core::lab::fault::Fault::parse)
        .transpose()?;
    if fault.is_some() && args.containers < 2 {
        anyhow::bail!(ctnet_core::error::Error::Invalid(
            "--fault needs at least 2 containers (it breaks demo-c1 with demo-c2 as its peer)".into()
        ));
    }
    let dashboard =
        !args.no_tui && !args.shell && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if dashboard {
        // Before any thread exists, so a SIGTERM or SIGHUP ends the dashboard and the
        // lab is still removed.
        ctnet_tui::run::block_quit_signals()?;
    }
    crate::exit::enter_world()?;
    let rt = crate::runtime()?;
    let env = LabEnv::default();
    let mut spec = LabSpec::new("demo");
    spec.containers = args.containers;
    spec.nat = true;
    let built = rt.block_on(lab::up(&spec, &env))?;
    if dashboard {
        return dashboard_run(&args, fault, &built, &spec, &env, &rt);
    }
    println!("In a private world (user+net+mount namespaces); nothing on this host is touched.\n");
    print!("{}", render_up(&built));
    println!();
    let all_ok = ping_matrix(&built, &env);
    if args.shell {
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
        println!(
            "\nOpening {shell} inside the world; try `ip netns`, `bridge link`, `iptables-save`. Exit to tear down."
        );
        let _ = Command::new(&shell).status();
    }
    let report = rt.block_on(lab::down(&spec.name, &env))?;
    println!();
    print!("{}", render_down(&report));
    Ok(if !report.failures.is_empty() {
        ExitCode::from(crate::exit::INTERNAL)
    } else if !all_ok {
        ExitCode::from(crate::exit::CHECK_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Ping the gateway and every other container from the first container; print each.
fn ping_matrix(built: &LabSummary, env: &LabEnv) -> bool {
    let Some(first) = built.containers.first() else {
        return true;
    };
    let ns = match Netns::named(&env.netns_dir, &first.netns) {
        Ok(ns) => ns,
        Err(e) => {
            println!("cannot open {}: {e}", first.netns);
            return false;
        }
    };
    let gateway = built.gateway.split('/').next().unwrap_or_default().to_string();
    let targets =
        std::iter::once(("gateway".to_string(), gateway)).chain(built.containers[1..].iter().map(|c| {
            (
                c.netns.clone(),
                c.ip.split('/').next().unwrap_or_default().to_string(),
            )
        }));
    let mut ok = true;
    for (label, ip) in targets {
        let out = ns.run(|| Command::new("ping").args(["-c1", "-W2", "-n", &ip]).output());
        let line = match out {
            Ok(Ok(o)) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                let rtt = text
                    .lines()
                    .find_map(|l| l.split("time=").nth(1))
                    .unwrap_or("?")
                    .to_string();
                format!("ok   time={rtt}")
            }
            Ok(Ok(o)) => {
                ok = false;
                format!("FAILED ({})", o.status)
            }
            Ok(Err(e)) => {
                ok = false;
                format!("cannot run ping: {e} (install iputils-ping)")
            }
            Err(e) => {
                ok = false;
                format!("cannot enter {}: {e}", first.netns)
            }
        };
        println!("ping {} -> {label} {ip}: {line}", first.netns);
    }
    ok
}

/// Background traffic: each container sends the next one (the last, the first) an ICMP
/// echo request once a second; the kernel of the other one answers. Sent from raw
/// sockets made inside each container's netns, by a thread of this process: nothing
/// outlives the demo, even a `kill -9`. Only between the lab's own netns.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An ICMP echo request: type 8, code 0, checksum, id, seq, 56 bytes of payload.
fn echo_request(id: u16, seq: u16) -> [u8; 64] {
    let mut p = [0u8; 64];
    p[0] = 8;
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut sum: u32 = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

fn start_traffic(built: &LabSummary, env: &LabEnv) -> Traffic {
    let stop = Arc::new(AtomicBool::new(false));
    let n = built.containers.len();
    let mut senders: Vec<(OwnedFd, Ipv4Addr)> = Vec::new();
    if n < 2 {
        return Traffic { stop, thread: None };
    }
    for (i, c) in built.containers.iter().enumerate() {
        let next = &built.containers[(i + 1) % n];
        let Ok(dst) = next.ip.split('/').next().unwrap_or_default().parse::<Ipv4Addr>() else {
            continue;
        };
        let Ok(ns) = Netns::named(&env.netns_dir, &c.netns) else {
            continue;
        };
        // A socket keeps the netns it was made in.
        let made = ns.run(|| {
            // SAFETY: plain socket(2); the result is checked before use.
            let fd = unsafe {
                libc::socket(
                    libc::AF_INET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    libc::IPPROTO_ICMP,
                )
            };
            // SAFETY: a fresh descriptor owned by nothing else.
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
        });
        if let Ok(Some(fd)) = made {
            senders.push((fd, dst));
        }
    }
    let thread = (!senders.is_empty()).then(|| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seq: u16 = 0;
            while !stop.load(Ordering::SeqCst) {
                seq = seq.wrapping_add(1);
                for (i, (fd, dst)) in senders.iter().enumerate() {
                    let pkt = echo_request(0x4354 + i as u16, seq);
                    let addr = libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: 0,
                        sin_addr: libc::in_addr {
                            s_addr: u32::from(*dst).to_be(),
                        },
                        sin_zero: [0; 8],
                    };
                    // SAFETY: a valid socket, buffer and address of the given sizes.
                    unsafe {
                        libc::sendto(
                            fd.as_raw_fd(),
                            pkt.as_ptr().cast(),
                            pkt.len(),
                            libc::MSG_DONTWAIT,
                            (&addr as *const libc::sockaddr_in).cast(),
                            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                        );
                    }
                }
                // A second, in steps that notice a stop.
                for _ in 0..10 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    });
    Traffic { stop, thread }
}

/// The dashboard on the lab: traffic, the fault if asked, then tear down whatever
/// happened in between.
fn dashboard_run(
    args: &DemoArgs,
    fault: Option<ctnet_core::lab::fault::Fault>,
    built: &LabSummary,
    spec: &LabSpec,
    env: &LabEnv,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let traffic = start_traffic(built, env);
    // A panic in the dashboard (its hook restores the terminal) must still stop the
    // traffic and remove the lab, then go on as a panic.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> anyhow::Result<()> {
        if let Some(f) = fault {
            let snap = ctnet_core::source::snapshot(&ctnet_core::source::ScanOptions::default())?;
            let topo = ctnet_core::topology::Topology::build(&snap);
            let (t, p) = crate::cmd::read::resolve_pair(&snap, "demo-c1", Some("demo-c2"))
                .map_err(|_| anyhow::anyhow!("the demo lab's containers were not found"))?;
            let inj = ctnet_core::lab::fault::plan(f, &snap, &topo, &t, p.as_ref())?;
            ctnet_core::lab::fault::apply(&inj, env)?;
        }
        ctnet_tui::run::run(ctnet_tui::run::Options {
            // The lab's netns are named; /proc would also show netns of this host
            // outside the world (of pid 2, say), which are no part of the demo.
            source: ctnet_tui::run::Source::Live(ctnet_core::source::ScanOptions {
                scan_proc: false,
                ..ctnet_core::source::ScanOptions::default()
            }),
            interval: Duration::from_secs_f64(args.interval),
        })?;
        Ok(())
    }));
    drop(traffic);
    let _ = ctnet_core::lab::fault::fix(env, None, None);
    let down = rt.block_on(lab::down(&spec.name, env));
    if let Ok(report) = &down {
        print!("{}", render_down(report));
    }
    // What went wrong in the dashboard comes first; then the teardown's own failure.
    if !matches!(result, Ok(Ok(())))
        && let Err(e) = &down
    {
        eprintln!("ctnet-diag: removing the demo lab: {e}");
    }
    match result {
        Ok(r) => r?,
        Err(panic) => std::panic::resume_unwind(panic),
    }
    let report = down?;
    Ok(if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::INTERNAL)
    })
}
