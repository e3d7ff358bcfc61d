//! `ctnet-diag lab break FAULT TARGET [--peer PEER]` and `lab fix [FAULT] [TARGET]`.

use std::fmt::Write as _;
use std::process::ExitCode;

use ctnet_core::lab::LabEnv;
use ctnet_core::lab::fault::{self, Fault, Injection};
use ctnet_core::topology::Topology;

use crate::cli::{LabBreakArgs, LabFixArgs};
use crate::cmd::read::{load, resolve_pair};
use crate::exit;

/// Text for people: what breaks, the commands run, and how to undo them.
pub fn render_break(inj: &Injection, dry_run: bool) -> String {
    // Targets and the commands' arguments are names from the kernel or a runtime.
    let escaped = ctnet_core::text::escaped(inj);
    let inj = escaped.as_ref().unwrap_or(inj);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} on {}{}: {}",
        if dry_run { "would break" } else { "broke" },
        inj.fault.name(),
        inj.target,
        inj.peer
            .as_ref()
            .map(|p| format!(" (peer {p})"))
            .unwrap_or_default(),
        inj.breaks
    );
    for s in &inj.apply {
        let _ = writeln!(out, "  ran:  {}", s.command());
    }
    for s in &inj.undo {
        let _ = writeln!(out, "  undo: {}", s.command());
    }
    let _ = writeln!(
        out,
        "see it: ctnet-diag check {}{}\nundo it: ctnet-diag lab fix {} {}",
        inj.target,
        inj.peer
            .as_ref()
            .map(|p| format!(" --peer {p}"))
            .unwrap_or_default(),
        inj.fault.name(),
        inj.target
    );
    if dry_run {
        out = out.replace("  ran:  ", "  run:  ");
    }
    out
}

/// `lab break`.
pub fn apply(mut args: LabBreakArgs) -> anyhow::Result<ExitCode> {
    crate::cmd::read::pick_node(&mut args.source, &args.target);
    let which = Fault::parse(&args.fault)?;
    if !args.dry_run {
        if let Some(file) = &args.source.from {
            anyhow::bail!(ctnet_core::error::Error::Invalid(format!(
                "--from {} describes a recorded host, not this one: add --dry-run to see the commands it would take",
                ctnet_core::text::path(file)
            )));
        }
        exit::require_lab_caps("lab break")?;
    }
    let snap = load(&args.source)?;
    let topo = Topology::build(&snap);
    let (target, peer) = match resolve_pair(&snap, &args.target, args.peer.as_deref()) {
        Ok(pair) => pair,
        Err(code) => return Ok(code),
    };
    let inj = fault::plan(which, &snap, &topo, &target, peer.as_ref())?;
    if !args.dry_run {
        fault::apply(&inj, &LabEnv::default())?;
    }
    if args.json {
        let doc = serde_json::json!({ "schema": "ctnet.fault/v1", "applied": !args.dry_run, "fault": inj });
        crate::out::json(&doc)?;
    } else {
        crate::out::text(&render_break(&inj, args.dry_run))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `lab fix`.
pub fn fix(args: LabFixArgs) -> anyhow::Result<ExitCode> {
    let which = args.fault.as_deref().map(Fault::parse).transpose()?;
    let env = LabEnv::default();
    if fault::applied(&env)?.is_empty() {
        if args.json {
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "schema": "ctnet.fault-fix/v1", "fixed": [], "errors": [] })
                )?
            )?;
        } else {
            crate::outln!("no faults recorded: nothing to fix")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    exit::require_lab_caps("lab fix")?;
    let (fixed, errors) = fault::fix(&env, which, args.target.as_deref())?;
    if args.json {
        let errs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let doc = serde_json::json!({ "schema": "ctnet.fault-fix/v1", "fixed": fixed, "errors": errs });
        crate::out::json(&doc)?;
    } else {
        if fixed.is_empty() && errors.is_empty() {
            crate::outln!(
                "no recorded fault matches: `ctnet-diag lab fix` with no arguments fixes them all"
            )?;
        }
        for inj in &fixed {
            crate::outln!(
                "fixed {} on {}",
                inj.fault.name(),
                ctnet_core::text::Esc(&inj.target)
            )?;
            for s in &inj.undo {
                crate::outln!("  ran: {}", ctnet_core::text::Esc(&s.command()))?;
            }
        }
        for e in &errors {
            crate::say!("ctnet-diag: could not undo: {e}");
        }
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::INTERNAL)
    })
}
