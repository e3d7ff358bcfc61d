//! `ctnet-diag lab up|down|list`: build and remove throwaway labs, text or JSON.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use ctnet_core::lab::{self, DownReport, LabEnv, LabInfo, LabSpec, LabSummary};

use crate::cli::LabCommand;
use crate::exit;

/// Run one `lab` subcommand.
pub async fn run(cmd: LabCommand) -> anyhow::Result<ExitCode> {
    let env = LabEnv::default();
    match cmd {
        LabCommand::Up(a) => {
            let nodes = a.nodes.map(|n| lab::nodes::NodeLabSpec {
                name: a.name.clone(),
                nodes: n,
                containers: a.containers,
                learning: a.learning,
            });
            let spec = LabSpec {
                name: a.name,
                containers: a.containers,
                subnet: a
                    .subnet
                    .unwrap_or_else(|| LabSpec::DEFAULT_SUBNET.parse().expect("valid default")),
                nat: a.nat,
            };
            // Usage errors first: they need no privilege to report.
            match &nodes {
                Some(n) => drop(lab::nodes::NodeLabPlan::new(n)?),
                None => drop(lab::LabPlan::new(&spec)?),
            }
            exit::require_lab_caps("lab up")?;
            // An interrupted `up` would leave half a lab: finish (or roll back) first,
            // whether a terminal (SIGINT), a service manager (SIGTERM) or a closed
            // session (SIGHUP) asks. The handlers go in now, before anything is built:
            // a task's first poll could come too late.
            use tokio::signal::unix::{SignalKind, signal};
            let mut int = signal(SignalKind::interrupt())?;
            let mut term = signal(SignalKind::terminate())?;
            let mut hup = signal(SignalKind::hangup())?;
            // While another lab command holds the lock nothing is built yet: a signal
            // then ends the wait, and `up`, at once.
            let state = Arc::new(UpSignals::default());
            let seen = state.clone();
            let guard = tokio::spawn(async move {
                loop {
                    let sig = tokio::select! {
                        _ = int.recv() => libc::SIGINT,
                        _ = term.recv() => libc::SIGTERM,
                        _ = hup.recv() => libc::SIGHUP,
                    };
                    seen.signal.store(sig, Ordering::SeqCst);
                    seen.stop.store(true, Ordering::SeqCst);
                    if !seen.waiting.load(Ordering::SeqCst) {
                        crate::say!(
                            "ctnet-diag: lab up is finishing (or rolling back) so nothing is left half-built"
                        );
                    }
                }
            });
            let waiting = |now: bool| {
                state.waiting.store(now, Ordering::SeqCst);
                if now {
                    crate::say!("ctnet-diag: waiting for another lab command to finish (Ctrl-C stops)");
                }
            };
            let wait = lab::LockWait {
                stop: Some(&state.stop),
                waiting: Some(&waiting),
            };
            let code = match nodes {
                Some(n) => {
                    let built = lab::nodes::up(&n, &env, wait).await;
                    guard.abort();
                    built_up(built, &state, a.json, render_nodes)?
                }
                None => {
                    let built = lab::up_with(&spec, &env, wait).await;
                    guard.abort();
                    built_up(built, &state, a.json, render_up)?
                }
            };
            Ok(code)
        }
        LabCommand::Down(a) => {
            lab::validate_name(&a.name)?;
            exit::require_lab_caps("lab down")?;
            let report = lab::down_with(&a.name, &env, lab::DownOptions { force: a.force }).await?;
            if a.json {
                crate::out::rendered(&json(&report)?)?;
            } else {
                crate::out::text(&render_down(&report))?;
            }
            Ok(match report.failure_kind {
                None => ExitCode::SUCCESS,
                Some(kind) => ExitCode::from(exit::code_for(kind)),
            })
        }
        LabCommand::List(a) => {
            let labs = lab::list(&env).await?;
            let demos = crate::cmd::demo::leftovers();
            if a.json {
                let doc = serde_json::json!({
                    "schema": "ctnet.lab-list/v1",
                    "labs": labs,
                    "leftover_demos": demos,
                });
                crate::out::rendered(&json(&doc)?)?;
            } else {
                crate::out::text(&render_list(&labs))?;
                crate::out::text(&render_leftovers(&demos))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        // Synchronous: they scan the host like `check` does (see main).
        LabCommand::Break(a) => crate::cmd::fault::apply(a),
        LabCommand::Fix(a) => crate::cmd::fault::fix(a),
    }
}

/// Print what `lab up` built (JSON or `render`'s text); a stop while waiting for the
/// lock exits 128 + the signal, having built nothing.
fn built_up<T: serde::Serialize>(
    built: ctnet_core::Result<T>,
    state: &UpSignals,
    as_json: bool,
    render: fn(&T) -> String,
) -> anyhow::Result<ExitCode> {
    if let Err(ctnet_core::Error::Stopped { .. }) = &built {
        crate::say!("ctnet-diag: lab up stopped while waiting for another lab command; nothing was built");
        let sig = state.signal.load(Ordering::SeqCst);
        return Ok(ExitCode::from(128u8.saturating_add(sig as u8)));
    }
    let built = built?;
    if as_json {
        crate::out::rendered(&json(&built)?)?;
    } else {
        crate::out::text(&render(&built))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What the signal guard of `lab up` shares with the lock wait.
#[derive(Debug, Default)]
struct UpSignals {
    /// Set by a signal: give up waiting for the lock.
    stop: AtomicBool,
    /// The last signal taken (for the exit status).
    signal: AtomicI32,
    /// Whether `up` is waiting for another lab command's lock.
    waiting: AtomicBool,
}

fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(v)? + "\n")
}

/// Text for a built multi-node lab:
/// ```text
/// lab ov: 2 nodes joined by VXLAN flannel.1 (VNI 1, UDP 4789, static entries), underlay switch ov-ul
///   NODE   UNDERLAY   VTEP            PODS          CONTAINERS
///   ov-n1  10.78.0.1  10.77.1.0 02:.. 10.77.1.0/24  ov-n1-c1 10.77.1.2, ...
/// ```
pub fn render_nodes(s: &lab::nodes::NodeLabSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lab {}: {} nodes joined by VXLAN {} (VNI {}, UDP {}, {}), underlay switch netns {}",
        s.name,
        s.nodes.len(),
        s.device,
        s.vni,
        s.port,
        if s.learning { "learning" } else { "static entries" },
        s.switch
    );
    let _ = writeln!(
        out,
        "  {:<8}  {:<10}  {:<29}  {:<14}  CONTAINERS",
        "NODE", "UNDERLAY", "VTEP", "PODS"
    );
    for n in &s.nodes {
        let pods: Vec<String> = n
            .containers
            .iter()
            .map(|c| format!("{} {}", c.netns, c.ip.split('/').next().unwrap_or("")))
            .collect();
        let _ = writeln!(
            out,
            "  {:<8}  {:<10}  {:<29}  {:<14}  {}",
            n.netns,
            n.underlay_ip,
            format!("{} {}", n.vtep_ip, n.vtep_mac),
            n.pod_subnet.to_string(),
            pods.join(", ")
        );
    }
    let first = s.nodes.first().and_then(|n| n.containers.first());
    let other = s.nodes.get(1).and_then(|n| n.containers.first());
    if let (Some(a), Some(b)) = (first, other) {
        let _ = writeln!(
            out,
            "check a pod (its node is taken as the host): ctnet-diag check {} --peer {}",
            a.netns, b.netns
        );
    }
    let _ = writeln!(out, "remove it: ctnet-diag lab down --name {}", s.name);
    out
}

/// Text for a built lab:
/// ```text
/// lab t: bridge t-br 10.77.0.1/24, 3 containers, NAT on
///   NETNS  ETH0 ADDRESS  MAC                HOST VETH
///   t-c1   10.77.0.2/24  02:..              t-v1
/// ```
pub fn render_up(s: &LabSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lab {}: bridge {} {}, {} container(s), NAT {}",
        s.name,
        s.bridge,
        s.gateway,
        s.containers.len(),
        if s.nat { "on" } else { "off" }
    );
    let w = s
        .containers
        .iter()
        .map(|c| c.netns.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "  {:<w$}  {:<18}  {:<17}  HOST VETH",
        "NETNS", "ETH0 ADDRESS", "MAC"
    );
    for c in &s.containers {
        let _ = writeln!(
            out,
            "  {:<w$}  {:<18}  {:<17}  {}",
            c.netns, c.ip, c.mac, c.host_veth
        );
    }
    if let [first, second, ..] = s.containers.as_slice() {
        let peer = second.ip.split('/').next().unwrap_or_default();
        let _ = writeln!(out, "try:    ip netns exec {} ping -c1 {peer}", first.netns);
    }
    let _ = writeln!(out, "remove: ctnet-diag lab down --name {}", s.name);
    out
}

/// Text for a teardown report.
pub fn render_down(r: &DownReport) -> String {
    let mut out = String::new();
    if r.nothing_found() && r.failures.is_empty() {
        let _ = writeln!(out, "lab {}: nothing to remove", r.name);
        return out;
    }
    let _ = writeln!(
        out,
        "lab {}: removed {} veth(s), {} bridge(s), {} netns, {} firewall rule(s){}{}",
        r.name,
        r.veths.len(),
        r.bridges.len(),
        r.netns.len(),
        r.rules.len(),
        if r.tables.is_empty() {
            String::new()
        } else {
            format!(" (and the empty table(s) {} it had created)", r.tables.join(", "))
        },
        r.ip_forward_restored
            .as_ref()
            .map(|v| format!(", ip_forward back to {v}"))
            .unwrap_or_default()
    );
    for f in &r.failures {
        let _ = writeln!(out, "  FAILED: {f}");
    }
    out
}

/// Text for `lab list`.
pub fn render_list(labs: &[LabInfo]) -> String {
    if labs.is_empty() {
        return "no labs here (create one: ctnet-diag lab up --name t)\n".into();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8}  {:<10}  {:>5}  {:>5}  {:<18}  {:<3}  STATE",
        "LAB", "BRIDGE", "VETHS", "NETNS", "SUBNET", "NAT"
    );
    for l in labs {
        let corrupt = format!("corrupt record (run lab down --name {} --force)", l.name);
        let state = match (l.partial, l.bridge_up) {
            _ if l.record_error.is_some() => corrupt.as_str(),
            (true, _) => "partial (run lab down)",
            (false, _) if l.nodes.is_some() => "up",
            (false, true) => "up",
            (false, false) => "bridge down",
        };
        let _ = writeln!(
            out,
            "{:<8}  {:<10}  {:>5}  {:>5}  {:<18}  {:<3}  {state}",
            l.name,
            l.bridge.as_deref().unwrap_or("-"),
            l.veths,
            l.netns,
            l.subnet.as_deref().unwrap_or("?"),
            match l.nat {
                Some(true) => "yes",
                Some(false) => "no",
                None => "?",
            }
        );
    }
    out
}

/// Text for demos killed while their world lives on:
/// ```text
/// leftover demo (pid 812 was killed): its lab lives on in a private world; remove it: kill 815
/// ```
pub fn render_leftovers(demos: &[crate::cmd::demo::Leftover]) -> String {
    let mut out = String::new();
    for d in demos {
        let _ = writeln!(
            out,
            "leftover demo (pid {} was killed): its lab lives on in a private world; remove it: {}",
            d.demo_pid, d.remove
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctnet_core::lab::ContainerSummary;

    fn summary() -> LabSummary {
        LabSummary {
            schema: "ctnet.lab/v1".into(),
            name: "t".into(),
            bridge: "t-br".into(),
            gateway: "10.9.0.1/24".into(),
            subnet: "10.9.0.0/24".into(),
            nat: true,
            containers: (1..=2)
                .map(|i| ContainerSummary {
                    netns: format!("t-c{i}"),
                    netns_path: format!("/run/netns/t-c{i}").into(),
                    host_veth: format!("t-v{i}"),
                    ifname: "eth0".into(),
                    ip: format!("10.9.0.{}/24", i + 1),
                    mac: format!("02:00:00:00:00:0{i}"),
                })
                .collect(),
        }
    }

    #[test]
    fn up_text_lists_every_container_and_how_to_remove() {
        let text = render_up(&summary());
        assert_eq!(
            text,
            "lab t: bridge t-br 10.9.0.1/24, 2 container(s), NAT on\n  \
             NETNS  ETH0 ADDRESS        MAC                HOST VETH\n  \
             t-c1   10.9.0.2/24         02:00:00:00:00:01  t-v1\n  \
             t-c2   10.9.0.3/24         02:00:00:00:00:02  t-v2\n\
             try:    ip netns exec t-c1 ping -c1 10.9.0.3\n\
             remove: ctnet-diag lab down --name t\n"
        );
    }

    #[test]
    fn down_text_says_nothing_to_remove_when_idempotent() {
        let r = DownReport {
            name: "t".into(),
            ..DownReport::default()
        };
        assert_eq!(render_down(&r), "lab t: nothing to remove\n");
        let r = DownReport {
            name: "t".into(),
            veths: vec!["t-v1".into()],
            failures: vec!["deleting link t-br: busy".into()],
            ..DownReport::default()
        };
        let text = render_down(&r);
        assert!(
            text.contains("removed 1 veth(s)") && text.contains("FAILED: deleting link t-br"),
            "{text}"
        );
    }
}
