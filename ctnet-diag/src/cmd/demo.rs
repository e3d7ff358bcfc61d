//! `ctnet-diag demo`: a lab in a private rootless world, shown, pinged across, removed.

use std::process::{Command, ExitCode};

use ctnet_core::lab::{self, LabEnv, LabSpec, LabSummary};
use ctnet_core::netns::Netns;

use crate::cli::DemoArgs;
use crate::cmd::lab::{render_down, render_up};

/// Enter a world, build the lab, ping across it, optionally open a shell, tear down.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    crate::exit::enter_world()?;
    let rt = crate::runtime()?;
    let env = LabEnv::default();
    let mut spec = LabSpec::new("demo");
    spec.containers = args.containers;
    spec.nat = true;
    let built = rt.block_on(lab::up(&spec, &env))?;
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
