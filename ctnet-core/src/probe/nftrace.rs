//! Rule-level netfilter trace of the probe's own packets: a temporary table of ctnet's
//! sets `meta nftrace set 1` on packets between the probe's two addresses only, and
//! `nft -a monitor trace` reports every chain and rule they meet, with the verdict and
//! the rule handle (native nft and iptables-nft alike, both being nftables rules).
//!
//! The tables are named after the process (`ctnet_trace_PID`). They are deleted when
//! the trace stops or is dropped; a run killed before that leaves them, and the next
//! run deletes every such table whose process is gone. The monitor is started with
//! `PR_SET_PDEATHSIG` (SIGKILL) and no blocked signal, so it dies with the process.

use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::netns::Netns;

/// Tables ctnet adds for a trace: this prefix and the pid of the process.
pub const TABLE_PREFIX: &str = "ctnet_trace_";
/// Most monitor lines kept (a probe sends a handful of packets).
const MAX_LINES: usize = 20_000;
/// Longest monitor line kept.
const MAX_LINE: usize = 4096;

/// One step of a traced packet: a rule it matched, a chain's verdict or policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// The kernel's trace id of the packet.
    pub id: String,
    /// `ip`, `ip6`, `inet`, `bridge`.
    pub family: String,
    /// Table.
    pub table: String,
    /// Chain.
    pub chain: String,
    /// `rule`, `verdict` or `policy`.
    pub kind: String,
    /// The rule as nft prints it (for `rule`).
    pub rule: Option<String>,
    /// Its handle.
    pub handle: Option<u64>,
    /// `accept`, `drop`, `continue`, `jump X`, `return`, ...
    pub verdict: Option<String>,
}

/// A running trace.
pub struct NfTrace {
    ns: Netns,
    nft: std::path::PathBuf,
    table: String,
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn run_nft(ns: &Netns, nft: &std::path::Path, args: &[&str], stdin: Option<String>) -> Result<String> {
    let nft = nft.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    // Started in the netns (a child is born in its parent thread's netns), waited
    // for anywhere.
    ns.run(move || {
        let mut cmd = crate::tool::Cmd::exe(&nft).args(&args);
        if let Some(text) = stdin {
            cmd = cmd.input(text);
        }
        cmd.spawn()
    })?
    .finish()
}

/// Delete the trace tables of processes that are gone (a probe killed mid-run); returns
/// the tables deleted.
pub fn remove_leftovers(ns: &Netns, nft: &std::path::Path) -> Result<Vec<String>> {
    let list = run_nft(ns, nft, &["list", "tables"], None)?;
    let mut gone = Vec::new();
    for line in list.lines() {
        let mut w = line.split_whitespace();
        let (Some("table"), Some(family), Some(name)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(TABLE_PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        run_nft(ns, nft, &["delete", "table", family, name], None)?;
        gone.push(format!("{family} {name}"));
    }
    Ok(gone)
}

/// Delete this process's trace tables, if any: for a signal handler that ends the
/// process while a probe runs (the monitor dies with the process by itself).
pub fn remove_own(ns: &Netns, tool_path: &str) {
    let Some(nft) = crate::source::firewall::find_tool("nft", tool_path) else {
        return;
    };
    let table = format!("{TABLE_PREFIX}{}", std::process::id());
    for family in ["inet", "bridge"] {
        let _ = run_nft(ns, &nft, &["delete", "table", family, &table], None);
    }
}

impl NfTrace {
    /// Trace, in `ns`, the packets from `a` to `b` and back.
    pub fn start(ns: &Netns, tool_path: &str, a: Ipv4Addr, b: Ipv4Addr) -> Result<NfTrace> {
        let nft = crate::source::firewall::find_tool("nft", tool_path).ok_or_else(|| Error::Tool {
            program: "nft".into(),
            detail: "nft is not installed (Debian package nftables)".into(),
            kind: ErrorKind::NotFound,
        })?;
        remove_leftovers(ns, &nft)?;
        let table = format!("{TABLE_PREFIX}{}", std::process::id());
        // The monitor first, so no event of the probe's packets is missed.
        let fd = ns.fd().as_raw_fd();
        let mut cmd = Command::new(&nft);
        crate::privilege::inherit_caps(&mut cmd);
        cmd.args(["-a", "monitor", "trace"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec: setns(2) into the
        // netns (whose fd is open in the parent and inherited), sigprocmask(2) and
        // prctl(2). The caller may block signals for a signal thread (a blocked mask is
        // inherited across exec, and would keep the death signal pending forever): the
        // monitor gets an empty mask, and SIGKILL when the process dies.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                if libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| Error::Tool {
            program: "nft".into(),
            detail: format!("nft monitor trace: {e}"),
            kind: ErrorKind::of_io(&e),
        })?;
        let stdout = child.stdout.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::Builder::new()
            .name("ctnet-nftrace".into())
            .spawn(move || {
                let mut r = BufReader::new(stdout);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.by_ref().take(MAX_LINE as u64).read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let mut l = sink.lock().unwrap_or_else(|p| p.into_inner());
                            if l.len() < MAX_LINES {
                                l.push(String::from_utf8_lossy(&buf).trim_end().to_string());
                            }
                        }
                    }
                }
            })
            .map_err(|e| Error::io("starting a reader for", "nft monitor trace", e))?;
        let mut t = NfTrace {
            ns: ns.clone(),
            nft,
            table,
            child: Some(child),
            lines,
            reader: Some(reader),
        };
        // Give the monitor a moment to subscribe before any packet is marked.
        std::thread::sleep(Duration::from_millis(150));
        let rules = |family: &str| {
            let m = format!(
                "ip saddr {a} ip daddr {b} meta nftrace set 1; ip saddr {b} ip daddr {a} meta nftrace set 1;"
            );
            format!(
                "table {family} {t} {{\n  chain pre {{ type filter hook prerouting priority -350; policy accept; {m} }}\n  \
                 chain out {{ type filter hook output priority -350; policy accept; {m} }}\n}}\n",
                t = t.table
            )
        };
        // The bridge family sees bridged frames that never reach the IP hooks.
        let text = format!("{}{}", rules("inet"), rules("bridge"));
        if let Err(e) = run_nft(&t.ns, &t.nft, &["-f", "-"], Some(text)) {
            t.cleanup();
            return Err(e);
        }
        Ok(t)
    }

    /// The table's name (`ctnet_trace_PID`).
    pub fn table(&self) -> &str {
        &self.table
    }

    fn cleanup(&mut self) {
        for family in ["inet", "bridge"] {
            let _ = run_nft(
                &self.ns,
                &self.nft,
                &["delete", "table", family, &self.table],
                None,
            );
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    /// Stop: remove the tables, stop the monitor, and return what it reported (the
    /// events of ctnet's own table left out).
    pub fn stop(mut self) -> Vec<TraceEvent> {
        // Events still in flight when the last reply arrived.
        std::thread::sleep(Duration::from_millis(100));
        self.cleanup();
        let lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()));
        lines
            .iter()
            .filter_map(|l| parse(l))
            .filter(|e| e.table != self.table)
            .collect()
    }
}

impl Drop for NfTrace {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// One `nft -a monitor trace` line: `trace id ID FAMILY TABLE CHAIN (packet: ... | rule
/// RULE # handle N (verdict V) | verdict V | policy P)`.
pub fn parse(line: &str) -> Option<TraceEvent> {
    let rest = line.strip_prefix("trace id ")?;
    let mut w = rest.splitn(5, ' ');
    let (id, family, table, chain, tail) = (w.next()?, w.next()?, w.next()?, w.next()?, w.next()?);
    let tail = tail.trim_end();
    let ev = |kind: &str, rule: Option<String>, handle: Option<u64>, verdict: Option<String>| TraceEvent {
        id: id.to_string(),
        family: family.to_string(),
        table: table.to_string(),
        chain: chain.to_string(),
        kind: kind.to_string(),
        rule,
        handle,
        verdict,
    };
    if let Some(r) = tail.strip_prefix("rule ") {
        let (body, verdict) = match r.rsplit_once(" (verdict ") {
            Some((b, v)) => (b, v.strip_suffix(')').map(str::to_string)),
            None => (r, None),
        };
        let (text, handle) = match body.rsplit_once(" # handle ") {
            Some((t, h)) => (t, h.trim().parse().ok()),
            None => (body, None),
        };
        return Some(ev("rule", Some(text.to_string()), handle, verdict));
    }
    if let Some(v) = tail.strip_prefix("verdict ") {
        return Some(ev("verdict", None, None, Some(v.trim().to_string())));
    }
    if let Some(v) = tail.strip_prefix("policy ") {
        return Some(ev("policy", None, None, Some(v.trim().to_string())));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_parse_into_rules_verdicts_and_policies() {
        let r = parse(
            "trace id a100b8d3 ip filter INPUT rule meta l4proto icmp ip saddr 10.9.0.2 counter packets 0 bytes 0 drop # handle 2 (verdict drop)",
        )
        .unwrap();
        assert_eq!(
            (r.family.as_str(), r.table.as_str(), r.chain.as_str()),
            ("ip", "filter", "INPUT")
        );
        assert_eq!(r.kind, "rule");
        assert_eq!(r.handle, Some(2));
        assert_eq!(r.verdict.as_deref(), Some("drop"));
        assert_eq!(
            r.rule.as_deref(),
            Some("meta l4proto icmp ip saddr 10.9.0.2 counter packets 0 bytes 0 drop")
        );
        let p = parse("trace id a100b8d3 inet t pre policy accept ").unwrap();
        assert_eq!(
            (p.kind.as_str(), p.verdict.as_deref()),
            ("policy", Some("accept"))
        );
        let v =
            parse("trace id 1 inet firewalld filter_FORWARD verdict jump filter_FORWARD_POLICIES").unwrap();
        assert_eq!(v.verdict.as_deref(), Some("jump filter_FORWARD_POLICIES"));
        assert!(parse("trace id a100b8d3 ip filter INPUT packet: iif \"va\" ip saddr 10.9.0.2").is_none());
        for junk in ["", "trace id", "trace id x y", "\u{1b}[2J"] {
            assert!(parse(junk).is_none());
        }
    }
}
