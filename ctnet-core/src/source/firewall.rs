//! Firewall rules and counters: `iptables-save -c` of both backends (IPv4 and IPv6) and
//! native nftables from `nft -j list ruleset`, with each chain, rule and table
//! attributed to whoever installed it.
//!
//! The tools act on the netns of the thread that spawns them, so [`collect`] must run
//! on a thread inside the netns to read.

use std::collections::HashMap;

use serde_json::Value;

use crate::model::{
    Firewall, IptChain, IptRule, IptTable, IptablesDump, NftChain, NftRule, NftTable, Owner, SourceStatus,
};
use crate::tool::{Cmd, Running};
use crate::vocab::SourceState;

/// Who installed a chain, from its name (survives Docker's renames: any `DOCKER*`).
pub fn chain_owner(chain: &str) -> Owner {
    let up = chain.to_ascii_uppercase();
    if up.starts_with("DOCKER") {
        Owner::Docker
    } else if up.starts_with("KUBE-")
        || up.starts_with("CNI-")
        || up.starts_with("CALI-")
        || up.starts_with("FLANNEL")
    {
        Owner::Kubernetes
    } else if up.starts_with("NETAVARK") {
        Owner::Podman
    } else if up.starts_with("LIBVIRT") {
        Owner::Libvirt
    } else {
        Owner::Other
    }
}

/// Who installed a rule: its comment, target and interfaces, then its chain.
pub fn rule_owner(chain: &str, spec: &str) -> Owner {
    if spec.contains("ctnet-lab:") {
        return Owner::Ctnet;
    }
    let by_chain = chain_owner(chain);
    if by_chain != Owner::Other {
        return by_chain;
    }
    let mut words = spec.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "-j" | "-g" => {
                let owner = words.next().map(chain_owner).unwrap_or(Owner::Other);
                if owner != Owner::Other {
                    return owner;
                }
            }
            "-i" | "-o" => {
                if let Some(dev) = words.next()
                    && (dev == "docker0" || dev.starts_with("br-"))
                {
                    return Owner::Docker;
                }
            }
            _ => {}
        }
    }
    Owner::Other
}

/// Who owns an nftables table.
pub fn nft_table_owner(name: &str) -> Owner {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("docker") {
        Owner::Docker
    } else if lower.starts_with("netavark") {
        Owner::Podman
    } else if lower.starts_with("kube") || lower.starts_with("cilium") || lower.starts_with("calico") {
        Owner::Kubernetes
    } else if lower.starts_with("ctnet") {
        Owner::Ctnet
    } else if lower.starts_with("libvirt") {
        Owner::Libvirt
    } else {
        Owner::Other
    }
}

fn counters(s: &str) -> Option<(u64, u64)> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let (p, b) = inner.split_once(':')?;
    Some((p.parse().ok()?, b.parse().ok()?))
}

/// Parse `iptables-save -c` output. Unknown lines are skipped, never fatal.
pub fn parse_iptables_save(text: &str) -> Vec<IptTable> {
    let mut tables: Vec<IptTable> = Vec::new();
    // Rules so far per chain of the last table: a rule's position without rescanning
    // the table (kube-proxy writes tens of thousands of rules).
    let mut counts: HashMap<String, u32> = HashMap::new();
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix('*') {
            counts.clear();
            tables.push(IptTable {
                name: name.trim().to_string(),
                ..IptTable::default()
            });
            continue;
        }
        let Some(table) = tables.last_mut() else { continue };
        if let Some(rest) = line.strip_prefix(':') {
            // :CHAIN POLICY [p:b]
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(policy)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (packets, bytes) = parts.next().and_then(counters).unwrap_or((0, 0));
            table.chains.push(IptChain {
                name: name.to_string(),
                policy: (policy != "-").then(|| policy.to_string()),
                packets,
                bytes,
                owner: chain_owner(name),
            });
            continue;
        }
        // [p:b] -A CHAIN spec   (or -A CHAIN spec without -c)
        let (cnt, rule) = match line.strip_prefix('[').and_then(|_| line.split_once("] ")) {
            Some((c, r)) => (counters(&format!("{c}]")), r),
            None => (None, line),
        };
        let Some(rule) = rule.strip_prefix("-A ") else {
            continue;
        };
        let (chain, spec) = rule.split_once(' ').unwrap_or((rule, ""));
        let position = {
            let n = counts.entry(chain.to_string()).or_default();
            *n = n.saturating_add(1);
            *n
        };
        let target = {
            let mut words = spec.split_whitespace();
            let mut t = None;
            while let Some(w) = words.next() {
                if w == "-j" || w == "-g" {
                    t = words.next().map(str::to_string);
                }
            }
            t
        };
        let (packets, bytes) = cnt.unwrap_or((0, 0));
        table.rules.push(IptRule {
            chain: chain.to_string(),
            position,
            spec: spec.to_string(),
            target,
            packets,
            bytes,
            owner: rule_owner(chain, spec),
        });
    }
    tables
}

/// Render one nft expression statement in short text.
fn stmt_text(stmt: &Value) -> String {
    let Some((kind, body)) = stmt.as_object().and_then(|o| o.iter().next()) else {
        return stmt.to_string();
    };
    match kind.as_str() {
        "match" => {
            let left = operand(&body["left"]);
            let right = operand(&body["right"]);
            let op = body["op"].as_str().unwrap_or("==");
            if op == "==" || op == "in" {
                format!("{left} {right}")
            } else {
                format!("{left} {op} {right}")
            }
        }
        "counter" => "counter".into(),
        "accept" | "drop" | "return" | "continue" | "masquerade" => kind.clone(),
        "jump" | "goto" => format!("{kind} {}", body["target"].as_str().unwrap_or("?")),
        "dnat" | "snat" => format!(
            "{kind} to {}{}",
            operand(&body["addr"]),
            body.get("port")
                .map(|p| format!(":{}", operand(p)))
                .unwrap_or_default()
        ),
        "xt" => format!(
            "xt {} {}",
            body["type"].as_str().unwrap_or(""),
            body["name"].as_str().unwrap_or("")
        ),
        other => other.to_string(),
    }
}

fn operand(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) => {
            if let Some(p) = o.get("payload") {
                format!(
                    "{} {}",
                    p["protocol"].as_str().unwrap_or("?"),
                    p["field"].as_str().unwrap_or("?")
                )
            } else if let Some(m) = o.get("meta") {
                m["key"].as_str().unwrap_or("meta").to_string()
            } else if let Some(ct) = o.get("ct") {
                format!("ct {}", ct["key"].as_str().unwrap_or("?"))
            } else if let Some(p) = o.get("prefix") {
                format!("{}/{}", operand(&p["addr"]), p["len"])
            } else if let Some(s) = o.get("set") {
                format!(
                    "{{ {} }}",
                    s.as_array()
                        .map(|a| a.iter().map(operand).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                )
            } else {
                v.to_string()
            }
        }
        Value::Array(a) => a.iter().map(operand).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Parse `nft -j list ruleset`. Tables managed by iptables-nft are left out: their
/// rules come, complete, from `iptables-nft-save`.
pub fn parse_nft_json(text: &str, iptables_nft_tables: &[(String, String)]) -> Result<Vec<NftTable>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("nft -j output is not JSON: {e}"))?;
    let items = doc["nftables"]
        .as_array()
        .ok_or("nft -j output has no \"nftables\" array")?;
    let mut tables: Vec<NftTable> = Vec::new();
    // The first table of each family and name, and the rules so far per chain of each
    // table: lookups without rescanning (a ruleset may hold tens of thousands of rules).
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut counts: HashMap<(usize, String), u32> = HashMap::new();
    let skip = |family: &str, name: &str| iptables_nft_tables.iter().any(|(f, n)| f == family && n == name);
    for item in items {
        if let Some(t) = item.get("table") {
            let family = t["family"].as_str().unwrap_or("").to_string();
            let name = t["name"].as_str().unwrap_or("").to_string();
            if skip(&family, &name) {
                continue;
            }
            index
                .entry((family.clone(), name.clone()))
                .or_insert(tables.len());
            tables.push(NftTable {
                owner: Some(nft_table_owner(&name)),
                family,
                name,
                ..NftTable::default()
            });
        } else if let Some(c) = item.get("chain") {
            let (family, table) = (
                c["family"].as_str().unwrap_or(""),
                c["table"].as_str().unwrap_or(""),
            );
            let at = index.get(&(family.to_string(), table.to_string()));
            if let Some(t) = at.and_then(|&i| tables.get_mut(i)) {
                t.chains.push(NftChain {
                    name: c["name"].as_str().unwrap_or("").to_string(),
                    hook: c["hook"].as_str().map(str::to_string),
                    kind: c["type"].as_str().map(str::to_string),
                    priority: c["prio"].as_i64(),
                    policy: c["policy"].as_str().map(str::to_string),
                });
            }
        } else if let Some(r) = item.get("rule") {
            let (family, table) = (
                r["family"].as_str().unwrap_or(""),
                r["table"].as_str().unwrap_or(""),
            );
            let Some(&at) = index.get(&(family.to_string(), table.to_string())) else {
                continue;
            };
            let t = &mut tables[at];
            let chain = r["chain"].as_str().unwrap_or("").to_string();
            let exprs = r["expr"].as_array().cloned().unwrap_or_default();
            let mut packets = None;
            let mut bytes = None;
            let mut verdict = None;
            for e in &exprs {
                if let Some(c) = e.get("counter") {
                    packets = c["packets"].as_u64();
                    bytes = c["bytes"].as_u64();
                }
                for v in [
                    "accept",
                    "drop",
                    "return",
                    "masquerade",
                    "jump",
                    "goto",
                    "dnat",
                    "snat",
                    "reject",
                ] {
                    if e.get(v).is_some() {
                        verdict = Some(match v {
                            "jump" | "goto" => format!("{v} {}", e[v]["target"].as_str().unwrap_or("?")),
                            _ => v.to_string(),
                        });
                    }
                }
            }
            let position = {
                let n = counts.entry((at, chain.clone())).or_default();
                *n = n.saturating_add(1);
                *n
            };
            t.rules.push(NftRule {
                chain,
                handle: r["handle"].as_u64().unwrap_or(0),
                position,
                text: exprs.iter().map(stmt_text).collect::<Vec<_>>().join(" "),
                verdict,
                comment: r["comment"].as_str().map(str::to_string),
                packets,
                bytes,
            });
        }
    }
    Ok(tables)
}

pub use crate::privilege::find_tool;

/// The native tables of `nft -j list tables` (those iptables-nft does not own), each
/// listed with `nft -j list table`, as one `nft -j` document.
fn native_tables(list: &str, iptables_nft: &[(String, String)], tool_path: &str) -> crate::Result<String> {
    let doc: Value = serde_json::from_str(list)
        .map_err(|e| malformed("nft", format!("-j list tables is not JSON: {e}")))?;
    let items = doc["nftables"]
        .as_array()
        .ok_or_else(|| malformed("nft", "-j list tables has no \"nftables\" array".to_string()))?;
    let head: Vec<Value> = items
        .iter()
        .filter(|i| i.get("metainfo").is_some())
        .cloned()
        .collect();
    let all: Vec<(String, String)> = items
        .iter()
        .filter_map(|i| i.get("table"))
        .filter_map(|t| Some((t["family"].as_str()?.to_string(), t["name"].as_str()?.to_string())))
        .collect();
    list_tables(head, &all, iptables_nft, tool_path)
}

/// Each of `all` that iptables-nft does not own, listed with `nft -j list table`, after
/// `head`, as one `nft -j` document.
fn list_tables(
    mut out: Vec<Value>,
    all: &[(String, String)],
    iptables_nft: &[(String, String)],
    tool_path: &str,
) -> crate::Result<String> {
    let natives = all
        .iter()
        .filter(|(f, n)| !iptables_nft.iter().any(|(xf, xn)| xf == f && xn == n));
    let runs: Vec<Running> = natives
        .map(|(f, n)| start("nft", &["-j", "list", "table", f, n], tool_path))
        .collect();
    for run in runs {
        let text = run.finish()?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| malformed("nft", format!("-j list table is not JSON: {e}")))?;
        if let Some(items) = doc["nftables"].as_array() {
            out.extend(items.iter().filter(|i| i.get("metainfo").is_none()).cloned());
        }
    }
    Ok(serde_json::json!({ "nftables": out }).to_string())
}

/// Parse `ipset save`: `create NAME TYPE ...` and `add NAME MEMBER ...` lines.
pub fn parse_ipset_save(text: &str) -> Vec<crate::model::IpSet> {
    let mut sets: Vec<crate::model::IpSet> = Vec::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("create"), Some(name), Some(kind)) => sets.push(crate::model::IpSet {
                name: name.to_string(),
                kind: kind.to_string(),
                members: Vec::new(),
            }),
            (Some("add"), Some(name), Some(member)) => {
                if let Some(s) = sets.iter_mut().find(|s| s.name == name) {
                    s.members.push(member.to_string());
                }
            }
            _ => {}
        }
    }
    sets
}

fn has_legacy_tables(proc_file: &str) -> bool {
    std::fs::read_to_string(proc_file).is_ok_and(|s| !s.trim().is_empty())
}

/// Start `program args` (found in `path`): every tool of one firewall read runs at once.
fn start(program: &str, args: &[&str], path: &str) -> Running {
    Cmd::new(program, path).args(args).spawn()
}

/// A failed tool as a source status: skipped when it is not installed, failed otherwise,
/// with the kind of failure.
fn tool_problem(tool: &str, at: &Option<String>, e: &crate::Error) -> SourceStatus {
    let state = if e.kind() == crate::ErrorKind::MissingTool {
        SourceState::Skipped
    } else {
        SourceState::Failed
    };
    SourceStatus::problem(tool, at.clone(), state, e.to_string()).of_kind(e.kind())
}

/// A document a tool printed that is not what it should be.
fn malformed(program: &str, detail: String) -> crate::Error {
    crate::Error::Tool {
        program: program.into(),
        detail,
        kind: crate::ErrorKind::Other,
    }
}

/// Read the firewall of the calling thread's netns (`ipv6`: the ip6tables dumps too).
/// Each tool that is missing or fails is reported in the returned statuses; the rest is
/// still read.
///
/// The tools run at once (children of this thread, so in its netns). nft lists only
/// the native tables, one by one: the iptables-nft tables are read by iptables-save,
/// and `nft list ruleset` would print their (on a busy host, thousands of) rules again
/// at several times the cost.
pub fn collect(netns: &str, tool_path: &str, ipv6: bool) -> (Firewall, Vec<SourceStatus>) {
    let mut fw = Firewall::default();
    let mut status = Vec::new();
    let at = Some(netns.to_string());
    let mut nft_backend_tables: Vec<(String, String)> = Vec::new();
    // Legacy tables exist in a netns only once used: /proc/net/ip{,6}_tables_names
    // lists them, so the legacy tools run only when there is something to see.
    let dumps = [
        ("iptables-nft-save", "nft", "ip", None),
        ("ip6tables-nft-save", "nft", "ip6", None),
        (
            "iptables-legacy-save",
            "legacy",
            "ip",
            Some("/proc/thread-self/net/ip_tables_names"),
        ),
        (
            "ip6tables-legacy-save",
            "legacy",
            "ip6",
            Some("/proc/thread-self/net/ip6_tables_names"),
        ),
    ];
    // Which nf_tables tables exist, asked of the kernel itself (no process): an
    // iptables-nft family without a table has nothing to dump, and a netns with no table
    // at all (most containers) needs no tool. Where the kernel will not say (no
    // CAP_NET_ADMIN, no nf_tables), every tool runs and reports for itself.
    let listed = crate::nfnetlink::nft_tables().ok();
    match &listed {
        Some(l) => log::debug!(
            "firewall {netns}: nf_tables holds {} table(s) (nfnetlink)",
            l.len()
        ),
        None => log::debug!("firewall {netns}: nf_tables would not list its tables; every tool runs"),
    }
    let t = std::time::Instant::now();
    let has_table = |family: &str| listed.as_ref().is_none_or(|l| l.iter().any(|(f, _)| f == family));
    let tables_listing = listed
        .is_none()
        .then(|| start("nft", &["-j", "list", "tables"], tool_path));
    let started: Vec<_> = dumps
        .into_iter()
        .filter(|(_, backend, family, probe)| {
            (*family != "ip6" || ipv6)
                && probe.is_none_or(has_legacy_tables)
                && (*backend != "nft" || has_table(family))
        })
        .map(|(tool, backend, family, _)| (backend, family, start(tool, &["-c"], tool_path)))
        .collect();
    for (backend, family, run) in started {
        let tool = run.program().to_string();
        let done = run.finish();
        log::debug!(
            "firewall {netns}: {tool} -c {} after {:.1} ms",
            if done.is_ok() { "read" } else { "did not answer" },
            crate::source::ms_since(t)
        );
        match done {
            Ok(text) => {
                let tables = parse_iptables_save(&text);
                if backend == "nft" {
                    nft_backend_tables.extend(tables.iter().map(|t| (family.to_string(), t.name.clone())));
                }
                if !tables.is_empty() {
                    fw.iptables.push(IptablesDump {
                        backend: backend.into(),
                        family: family.into(),
                        tables,
                    });
                }
            }
            Err(e) => status.push(tool_problem(&tool, &at, &e)),
        }
    }
    let document = match (&listed, tables_listing) {
        // The kernel's list: only the native tables need nft (none: no nft at all).
        (Some(all), _) => {
            let natives = all
                .iter()
                .any(|(f, n)| !nft_backend_tables.iter().any(|(xf, xn)| xf == f && xn == n));
            if !natives {
                return finish(fw, status, tool_path, at);
            }
            list_tables(Vec::new(), all, &nft_backend_tables, tool_path)
        }
        (None, Some(run)) => run
            .finish()
            .and_then(|list| native_tables(&list, &nft_backend_tables, tool_path)),
        (None, None) => Err(malformed("nft", "was not started".to_string())),
    };
    match document {
        Ok(text) => match parse_nft_json(&text, &nft_backend_tables) {
            Ok(tables) => {
                fw.nft = tables;
                fw.nft_json = Some(text);
            }
            Err(why) => status.push(SourceStatus::problem("nft", at.clone(), SourceState::Failed, why)),
        },
        Err(e) => status.push(tool_problem("nft", &at, &e)),
    }
    finish(fw, status, tool_path, at)
}

/// The rest of [`collect`]: the ipsets its rules use, and the warnings.
fn finish(
    mut fw: Firewall,
    mut status: Vec<SourceStatus>,
    tool_path: &str,
    at: Option<String>,
) -> (Firewall, Vec<SourceStatus>) {
    // The sets rules refer to: without their members a `--match-set` is a *may*.
    let uses_sets = fw
        .iptables
        .iter()
        .flat_map(|d| &d.tables)
        .flat_map(|t| &t.rules)
        .any(|r| r.spec.contains("--match-set"));
    if uses_sets {
        match start("ipset", &["save"], tool_path).finish() {
            Ok(text) => fw.ipsets = parse_ipset_save(&text),
            Err(e) => status.push(tool_problem("ipset", &at, &e)),
        }
    }
    let has_rules = |backend: &str| {
        fw.iptables
            .iter()
            .filter(|d| d.backend == backend)
            .any(|d| d.tables.iter().any(|t| !t.rules.is_empty()))
    };
    if has_rules("nft") && has_rules("legacy") {
        fw.warnings.push(
            "rules in both iptables backends (nft and legacy): packets pass both; \
             `iptables -L` shows only one of them"
                .into(),
        );
    }
    (fw, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const DOCKER_SAVE: &str = "# Generated by iptables-save v1.8.9 (nf_tables) on Fri Nov 27 2026
*nat
:PREROUTING ACCEPT [12:720]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [5:300]
:POSTROUTING ACCEPT [5:300]
:DOCKER - [0:0]
[3:180] -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
[0:0] -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
[0:0] -A DOCKER -i docker0 -j RETURN
[1:60] -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [7:420]
:OUTPUT ACCEPT [0:0]
:DOCKER-FORWARD - [0:0]
:DOCKER-USER - [0:0]
[9:540] -A FORWARD -j DOCKER-USER
[9:540] -A FORWARD -j DOCKER-FORWARD
[2:120] -A FORWARD -i t-br -m comment --comment \"ctnet-lab:t\" -j ACCEPT
[0:0] -A FORWARD -i eth9 -j DROP
COMMIT
";

    #[test]
    fn ipset_save_gives_each_set_its_type_and_members() {
        let text = include_str!("../../../fixtures/rulesets/oracle/ipset.save");
        let sets = parse_ipset_save(text);
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].name, "ctnet-outside");
        assert_eq!(sets[0].kind, "hash:net");
        assert_eq!(sets[0].members, ["203.0.113.0/24"]);
        assert_eq!(sets[1].kind, "hash:ip");
        assert_eq!(sets[1].members, ["10.62.0.3", "10.62.1.2"]);
        // An add for a set never created, and noise, are ignored.
        assert!(parse_ipset_save("add nosuch 1.2.3.4\ngarbage\n").is_empty());
    }

    #[test]
    fn parses_iptables_save_with_counters_positions_and_owners() {
        let tables = parse_iptables_save(DOCKER_SAVE);
        assert_eq!(
            tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["nat", "filter"]
        );
        let nat = &tables[0];
        assert_eq!(nat.chains.len(), 5);
        assert_eq!(nat.chains[0].policy.as_deref(), Some("ACCEPT"));
        assert_eq!((nat.chains[0].packets, nat.chains[0].bytes), (12, 720));
        assert_eq!(nat.chains[4].policy, None);
        assert_eq!(nat.chains[4].owner, Owner::Docker);
        let dnat = &nat.rules[3];
        assert_eq!(dnat.chain, "DOCKER");
        assert_eq!(dnat.position, 2);
        assert_eq!(dnat.target.as_deref(), Some("DNAT"));
        assert_eq!((dnat.packets, dnat.bytes), (1, 60));
        assert_eq!(nat.rules[1].owner, Owner::Docker, "MASQUERADE ! -o docker0");
        let filter = &tables[1];
        assert_eq!(filter.chains[1].policy.as_deref(), Some("DROP"));
        let owners: Vec<Owner> = filter.rules.iter().map(|r| r.owner).collect();
        assert_eq!(owners, [Owner::Docker, Owner::Docker, Owner::Ctnet, Owner::Other]);
        assert_eq!(filter.rules[3].position, 4);
    }

    #[test]
    fn survives_docker_chain_renames_and_garbage() {
        for chain in [
            "DOCKER",
            "DOCKER-USER",
            "DOCKER-FORWARD",
            "DOCKER-CT",
            "DOCKER-INTERNAL",
            "DOCKER-BRIDGE",
        ] {
            assert_eq!(chain_owner(chain), Owner::Docker, "{chain}");
        }
        assert_eq!(chain_owner("KUBE-SERVICES"), Owner::Kubernetes);
        assert_eq!(chain_owner("FORWARD"), Owner::Other);
        let t = parse_iptables_save("garbage\n-A X\n*filter\n:broken\n[x:y] -A FORWARD -j ACCEPT\nCOMMIT\n");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].rules.len(), 1);
        assert_eq!((t[0].rules[0].packets, t[0].rules[0].bytes), (0, 0));
    }

    #[test]
    fn parses_nft_json_with_counters_and_skips_iptables_nft_tables() {
        // Shape of `nft -j list ruleset` (nft 1.0.6) with Docker 29's nftables backend
        // and an iptables-nft table.
        let json = r#"{"nftables": [
          {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
          {"table": {"family": "ip", "name": "filter", "handle": 1}},
          {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
          {"table": {"family": "ip", "name": "docker-bridges", "handle": 2}},
          {"chain": {"family": "ip", "table": "docker-bridges", "name": "filter-FORWARD", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
          {"rule": {"family": "ip", "table": "docker-bridges", "chain": "filter-FORWARD", "handle": 7,
            "comment": "DROP DIRECT ACCESS",
            "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "docker0"}},
                     {"counter": {"packets": 3, "bytes": 252}}, {"drop": null}]}},
          {"rule": {"family": "ip", "table": "docker-bridges", "chain": "filter-FORWARD", "handle": 9,
            "expr": [{"jump": {"target": "filter-forward-in__docker0"}}]}},
          {"table": {"family": "bridge", "name": "guard", "handle": 3}},
          {"rule": {"family": "bridge", "table": "guard", "chain": "fwd", "handle": 2, "expr": [{"accept": null}]}}
        ]}"#;
        let tables = parse_nft_json(json, &[("ip".into(), "filter".into())]).unwrap();
        assert_eq!(
            tables.len(),
            2,
            "iptables-nft's table is left to iptables-nft-save"
        );
        let docker = &tables[0];
        assert_eq!(docker.owner, Some(Owner::Docker));
        assert_eq!(docker.chains[0].hook.as_deref(), Some("forward"));
        let drop = &docker.rules[0];
        assert_eq!((drop.packets, drop.bytes), (Some(3), Some(252)));
        assert_eq!(drop.verdict.as_deref(), Some("drop"));
        assert_eq!(drop.comment.as_deref(), Some("DROP DIRECT ACCESS"));
        assert_eq!(drop.text, "iifname docker0 counter drop");
        assert_eq!(
            docker.rules[1].verdict.as_deref(),
            Some("jump filter-forward-in__docker0")
        );
        assert_eq!((docker.rules[1].packets, docker.rules[1].position), (None, 2));
        assert_eq!(tables[1].family, "bridge");
        assert!(parse_nft_json("not json", &[]).is_err());
        assert!(parse_nft_json("{}", &[]).is_err());
    }
}

/// Property tests: hostile `iptables-save -c` text and `nft -j` documents never panic,
/// and well-formed ones parse back to exactly what was generated.
#[cfg(test)]
mod props {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::prop::{Rng, mutate_bytes};

    /// `iptables-save -c` text for `tables`, as the tool prints it.
    fn render_save(tables: &[IptTable], with_counters: bool) -> String {
        let mut s = String::from("# Generated by iptables-save v1.8.9 (nf_tables)\n");
        for t in tables {
            s.push_str(&format!("*{}\n", t.name));
            for c in &t.chains {
                let policy = c.policy.as_deref().unwrap_or("-");
                s.push_str(&format!(":{} {policy} [{}:{}]\n", c.name, c.packets, c.bytes));
            }
            for r in &t.rules {
                if with_counters {
                    s.push_str(&format!("[{}:{}] ", r.packets, r.bytes));
                }
                s.push_str(&format!("-A {}", r.chain));
                if !r.spec.is_empty() {
                    s.push_str(&format!(" {}", r.spec));
                }
                s.push('\n');
            }
            s.push_str("COMMIT\n");
        }
        s
    }

    /// Every firewall dump recorded in the fixtures, and the test dump above.
    fn recorded_dumps() -> Vec<Vec<IptTable>> {
        let mut out = vec![parse_iptables_save(super::tests::DOCKER_SAVE)];
        for text in [
            include_str!("../../../fixtures/docker-host.json"),
            include_str!("../../../fixtures/lab-faults.json"),
            include_str!("../../../fixtures/lab-healthy.json"),
        ] {
            let doc: Value = serde_json::from_str(text).expect("fixture is JSON");
            for dump in doc["firewall"]["iptables"].as_array().expect("firewall.iptables") {
                let tables: Vec<IptTable> =
                    serde_json::from_value(dump["tables"].clone()).expect("fixture tables");
                out.push(tables);
            }
        }
        out
    }

    const NAME_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:[]*!\"'#";

    fn name(rng: &mut Rng) -> String {
        let n = 1 + rng.below(28);
        (0..n).map(|_| *rng.pick(NAME_CHARS) as char).collect()
    }

    fn counter(rng: &mut Rng) -> u64 {
        match rng.below(4) {
            0 => 0,
            1 => u64::MAX,
            2 => rng.next(),
            _ => rng.below(100_000) as u64,
        }
    }

    /// A rule spec as iptables prints one: options, quoted comments with spaces, and at
    /// most the target it jumps to.
    fn spec(rng: &mut Rng) -> (String, Option<String>) {
        let mut words: Vec<String> = Vec::new();
        for _ in 0..rng.below(6) {
            words.push(
                match rng.below(6) {
                    0 => "-i docker0".to_string(),
                    1 => format!("! -o br-{}", name(rng)),
                    2 => format!("-s 172.{}.0.0/16", rng.below(256)),
                    3 => format!("-m comment --comment \"{} {}\"", name(rng), name(rng)),
                    4 => format!("-p tcp -m tcp --dport {}", rng.below(65536)),
                    _ => "-m conntrack --ctstate RELATED,ESTABLISHED".to_string(),
                }
                .replace("-j", "-J")
                .replace("-g", "-G"),
            );
        }
        let target = rng.one_in(5).then(|| name(rng)).or_else(|| {
            (!rng.one_in(4)).then(|| {
                rng.pick(&["ACCEPT", "DROP", "RETURN", "DOCKER-USER", "KUBE-SVC-X"])
                    .to_string()
            })
        });
        if let Some(t) = &target {
            words.push(format!("{} {t}", rng.pick(&["-j", "-g"])));
            if t == "DNAT" || rng.one_in(5) {
                words.push("--to-destination 172.17.0.2:80".into());
            }
        }
        (words.join(" "), target)
    }

    /// A well-formed ruleset: tables, chains with policies and counters, and rules of
    /// those chains in any order.
    fn ruleset(rng: &mut Rng) -> Vec<IptTable> {
        (0..1 + rng.below(4))
            .map(|_| {
                let chains: Vec<IptChain> = (0..1 + rng.below(6))
                    .map(|_| {
                        let name = name(rng);
                        IptChain {
                            owner: chain_owner(&name),
                            policy: rng.one_in(2).then(|| rng.pick(&["ACCEPT", "DROP"]).to_string()),
                            packets: counter(rng),
                            bytes: counter(rng),
                            name,
                        }
                    })
                    .collect();
                let mut seen: HashMap<String, u32> = HashMap::new();
                let rules = (0..rng.below(20))
                    .map(|_| {
                        let chain = rng.pick(&chains).name.clone();
                        let (spec, target) = spec(rng);
                        let position = seen.entry(chain.clone()).or_default();
                        *position += 1;
                        IptRule {
                            owner: rule_owner(&chain, &spec),
                            position: *position,
                            packets: counter(rng),
                            bytes: counter(rng),
                            chain,
                            spec,
                            target,
                        }
                    })
                    .collect();
                IptTable {
                    name: name(rng),
                    chains,
                    rules,
                }
            })
            .collect()
    }

    /// Rules of a chain are numbered 1, 2, 3... in their order, whatever the input.
    fn assert_positions(tables: &[IptTable], what: &dyn Fn() -> String) {
        for t in tables {
            let mut seen: HashMap<&str, u32> = HashMap::new();
            for r in &t.rules {
                let n = seen.entry(r.chain.as_str()).or_default();
                *n += 1;
                assert_eq!(r.position, *n, "{}: {r:?}", what());
            }
        }
    }

    #[test]
    fn generated_iptables_rulesets_parse_back_to_what_was_generated() {
        let mut rng = Rng(0x1b7a_b1e5);
        for case in 0..2000 {
            let tables = ruleset(&mut rng);
            let with_counters = !rng.one_in(4);
            let text = render_save(&tables, with_counters);
            let mut want = tables.clone();
            if !with_counters {
                for r in want.iter_mut().flat_map(|t| t.rules.iter_mut()) {
                    (r.packets, r.bytes) = (0, 0);
                }
            }
            assert_eq!(parse_iptables_save(&text), want, "case {case}:\n{text}");
        }
    }

    #[test]
    fn recorded_iptables_dumps_parse_back_to_themselves() {
        for (i, tables) in recorded_dumps().into_iter().enumerate() {
            let text = render_save(&tables, true);
            assert_eq!(parse_iptables_save(&text), tables, "dump {i}:\n{text}");
        }
    }

    /// Whole lines a hostile or broken dump holds where a chain or rule belongs.
    const SAVE_LINES: &[&str] = &[
        "[18446744073709551615:1] -A FORWARD -j ACCEPT",
        "[18446744073709551616:0] -A FORWARD -j ACCEPT",
        "[-1:-1] -A FORWARD -j DROP",
        "[:] -A X",
        "[1:2]-A X -j Y",
        "[1:2] -A",
        "[1:2] -A ",
        "[",
        "]",
        "[] ",
        "-A",
        "-A ",
        "-A  ",
        ":",
        ": ",
        ":X",
        ":X - [18446744073709551615:18446744073709551615]",
        ":X ACCEPT [1:2:3]",
        "*",
        "* ",
        "COMMIT",
        "-A X -m comment --comment \"unbalanced -j",
        "-A X -m comment --comment \"a\\\" b\" -j \"",
        "-A X -j",
        "-A X -g",
        "-A \u{1b}]0;x\u{7} -j \u{202e}DROP",
        "\u{0}\u{0}",
        "\r",
    ];

    const SAVE_TOKENS: &[&[u8]] = &[
        b"\n",
        b"\r\n",
        b" ",
        b"\"",
        b"[",
        b"]",
        b":",
        b"-A ",
        b"-j ",
        b"*filter\n",
        b"18446744073709551615",
        b"\xff\xfe",
        b"\xe2\x80\xae",
    ];

    fn mutate_save(rng: &mut Rng, text: &str) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(lines.len() + 1);
            match rng.below(7) {
                0 if at < lines.len() => {
                    let cut = rng.below(lines[at].len() + 1);
                    let mut b = lines[at].as_bytes().to_vec();
                    b.truncate(cut);
                    lines[at] = String::from_utf8_lossy(&b).into_owned();
                }
                1 => lines.insert(at, rng.pick(SAVE_LINES).to_string()),
                2 if at < lines.len() => {
                    lines.remove(at);
                }
                3 if at < lines.len() => {
                    let line = lines[at].clone();
                    lines.insert(rng.below(lines.len()), line);
                }
                4 => {
                    // A long line: a rule with a spec of up to 10 kB (one of 10 MB has
                    // its own test).
                    let n = 1 + rng.below(2_000);
                    lines.insert(at, format!("[1:1] -A BIG {}-j ACCEPT", "-m x ".repeat(n)));
                }
                5 if at < lines.len() => {
                    let b = mutate_bytes(rng, lines[at].as_bytes().to_vec(), SAVE_TOKENS);
                    lines[at] = String::from_utf8_lossy(&b).into_owned();
                }
                _ => {
                    let n = rng.below(64);
                    let junk = rng.bytes(n);
                    lines.insert(at, String::from_utf8_lossy(&junk).into_owned());
                }
            }
        }
        let mut text = lines.join(if rng.one_in(5) { "\r\n" } else { "\n" });
        if rng.one_in(2) {
            text.push('\n');
        }
        text
    }

    #[test]
    fn mutated_iptables_dumps_never_panic() {
        let recorded: Vec<String> = recorded_dumps().iter().map(|t| render_save(t, true)).collect();
        for &seed in &[0x5eed_u64, 0xbad_c0de] {
            let mut rng = Rng(seed);
            for case in 0..1500 {
                let base = if rng.one_in(2) {
                    rng.pick(&recorded).clone()
                } else {
                    render_save(&ruleset(&mut rng), true)
                };
                let text = mutate_save(&mut rng, &base);
                let tables = parse_iptables_save(&text);
                assert_positions(&tables, &|| format!("seed {seed:#x} case {case}"));
                let lines = text.lines().count();
                let parsed: usize = tables.iter().map(|t| 1 + t.chains.len() + t.rules.len()).sum();
                assert!(
                    parsed <= lines,
                    "seed {seed:#x} case {case}: {parsed} items from {lines} lines"
                );
            }
        }
    }

    #[test]
    fn random_text_never_panics_the_iptables_parser() {
        let mut rng = Rng(0xdead_beef);
        for _ in 0..2000 {
            let n = rng.below(400);
            let mut b = rng.bytes(n);
            // Random bytes rarely start a table; give half of them one.
            if rng.one_in(2) {
                b.splice(0..0, b"*filter\n[1:1] -A ".iter().copied());
            }
            let text = String::from_utf8_lossy(&b);
            assert_positions(&parse_iptables_save(&text), &|| format!("{text:?}"));
        }
    }

    /// `nft -j list ruleset` for tables, chains and rules generated at random, and the
    /// tables it must parse to (`skip` lists the iptables-nft tables, left out).
    fn nft_ruleset(rng: &mut Rng) -> (Value, Vec<NftTable>, Vec<(String, String)>) {
        let mut items = vec![json!({"metainfo": {"version": "1.0.6", "json_schema_version": 1}})];
        let mut want = Vec::new();
        let mut skip = Vec::new();
        for i in 0..1 + rng.below(4) {
            let family = rng.pick(&["ip", "ip6", "inet", "bridge"]).to_string();
            // Unique, so the skip list names exactly the tables drawn for it.
            let name = if rng.one_in(3) {
                format!("docker-{}-{i}", name(rng))
            } else {
                format!("{}-{i}", name(rng))
            };
            items.push(json!({"table": {"family": family, "name": name, "handle": rng.below(100)}}));
            let skipped = rng.one_in(5);
            if skipped {
                skip.push((family.clone(), name.clone()));
            }
            let mut t = NftTable {
                owner: Some(nft_table_owner(&name)),
                family: family.clone(),
                name: name.clone(),
                ..NftTable::default()
            };
            let chains: Vec<String> = (0..1 + rng.below(4)).map(|_| name_of(rng)).collect();
            for c in &chains {
                let base = rng.one_in(2);
                let prio = rng.next() as i64 >> rng.below(64);
                let mut chain = json!({"family": family, "table": name, "name": c, "handle": 1});
                if base {
                    chain["type"] = json!("filter");
                    chain["hook"] = json!("forward");
                    chain["prio"] = json!(prio);
                    chain["policy"] = json!("drop");
                }
                items.push(json!({ "chain": chain }));
                t.chains.push(NftChain {
                    name: c.clone(),
                    hook: base.then(|| "forward".into()),
                    kind: base.then(|| "filter".into()),
                    priority: base.then_some(prio),
                    policy: base.then(|| "drop".into()),
                });
            }
            let mut seen: HashMap<String, u32> = HashMap::new();
            for _ in 0..rng.below(12) {
                let chain = rng.pick(&chains).clone();
                let handle = rng.next();
                let mut expr = Vec::new();
                let mut text = Vec::new();
                if rng.one_in(2) {
                    let dev = name_of(rng);
                    expr.push(
                        json!({"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": dev}}),
                    );
                    text.push(format!("iifname {dev}"));
                }
                let counters = rng.one_in(2).then(|| (counter(rng), counter(rng)));
                if let Some((p, b)) = counters {
                    expr.push(json!({"counter": {"packets": p, "bytes": b}}));
                    text.push("counter".into());
                }
                let verdict = match rng.below(4) {
                    0 => None,
                    1 => Some("accept".to_string()),
                    2 => Some("drop".to_string()),
                    _ => Some(format!("jump {}", name_of(rng))),
                };
                if let Some(v) = &verdict {
                    match v.split_once(' ') {
                        Some((kind, target)) => expr.push(json!({ kind: {"target": target} })),
                        None => expr.push(json!({ v.as_str(): null })),
                    }
                    text.push(v.clone());
                }
                let comment = rng.one_in(3).then(|| format!("{} \u{1b}[2J", name_of(rng)));
                let mut rule =
                    json!({"family": family, "table": name, "chain": chain, "handle": handle, "expr": expr});
                if let Some(c) = &comment {
                    rule["comment"] = json!(c);
                }
                items.push(json!({ "rule": rule }));
                let position = seen.entry(chain.clone()).or_default();
                *position += 1;
                t.rules.push(NftRule {
                    chain,
                    handle,
                    position: *position,
                    text: text.join(" "),
                    verdict,
                    comment,
                    packets: counters.map(|c| c.0),
                    bytes: counters.map(|c| c.1),
                });
            }
            if !skipped {
                want.push(t);
            }
        }
        (json!({ "nftables": items }), want, skip)
    }

    /// A chain or device name without spaces (so the rule text is unambiguous).
    fn name_of(rng: &mut Rng) -> String {
        name(rng).replace(['"', '\''], "q")
    }

    #[test]
    fn generated_nft_rulesets_parse_back_to_what_was_generated() {
        let mut rng = Rng(0x00f7_5eed);
        for case in 0..2000 {
            let (doc, want, skip) = nft_ruleset(&mut rng);
            let text = if rng.one_in(2) {
                serde_json::to_string_pretty(&doc)
            } else {
                serde_json::to_string(&doc)
            }
            .expect("JSON");
            assert_eq!(parse_nft_json(&text, &skip), Ok(want), "case {case}:\n{text}");
        }
    }

    #[test]
    fn huge_iptables_dumps_parse_completely() {
        // One rule line of 10 MB, then 50 000 rules in one chain (kube-proxy writes
        // that many): every rule is kept, numbered in order.
        let mut text = format!(
            "*filter\n:KUBE-SVC - [0:0]\n[1:2] -A KUBE-SVC {}-j DROP\n",
            "-m x ".repeat(2 << 20)
        );
        for i in 0..50_000 {
            text.push_str(&format!(
                "[{i}:{i}] -A KUBE-SVC -d 10.{}.{}.1/32 -j KUBE-SEP-{i}\n",
                i / 256 % 256,
                i % 256
            ));
        }
        let tables = parse_iptables_save(&text);
        let rules = &tables[0].rules;
        assert_eq!(rules.len(), 50_001);
        assert_eq!(
            (rules[0].spec.len(), rules[0].target.as_deref()),
            (10 << 20 | 7, Some("DROP"))
        );
        assert_eq!(rules[50_000].position, 50_001);
        assert_eq!(rules[50_000].target.as_deref(), Some("KUBE-SEP-49999"));
        assert_positions(&tables, &|| "huge".into());
    }

    #[test]
    fn huge_nft_rulesets_parse_completely() {
        let mut text = String::from(r#"{"nftables":[{"table":{"family":"ip","name":"kube-proxy"}}"#);
        for i in 0..50_000u64 {
            text.push_str(&format!(
                r#",{{"rule":{{"family":"ip","table":"kube-proxy","chain":"services","handle":{i},"expr":[{{"counter":{{"packets":{i},"bytes":18446744073709551615}}}},{{"jump":{{"target":"svc-{i}"}}}}]}}}}"#
            ));
        }
        text.push_str("]}");
        let tables = parse_nft_json(&text, &[]).expect("parses");
        let rules = &tables[0].rules;
        assert_eq!(rules.len(), 50_000);
        assert_eq!(rules[49_999].position, 50_000);
        assert_eq!(rules[49_999].verdict.as_deref(), Some("jump svc-49999"));
        assert_eq!(
            (rules[49_999].packets, rules[49_999].bytes),
            (Some(49_999), Some(u64::MAX))
        );
    }

    /// Values of every type, at the edges of their ranges, to put where another belongs.
    fn odd_value(rng: &mut Rng) -> Value {
        match rng.below(14) {
            0 => Value::Null,
            1 => json!(true),
            2 => json!(0),
            3 => json!(-1),
            4 => json!(u64::MAX),
            5 => json!(i64::MIN),
            6 => json!(1e308),
            7 => json!(-0.5),
            8 => json!(""),
            9 => json!("\u{1b}]0;x\u{7}\u{202e}"),
            10 => json!([]),
            11 => json!({}),
            12 => json!([null, {"accept": null}]),
            _ => json!({"counter": {"packets": "many", "bytes": -1}}),
        }
    }

    /// Keys `nft -j` uses, to rename one key into another.
    const NFT_KEYS: &[&str] = &[
        "table", "chain", "rule", "family", "name", "expr", "counter", "packets", "bytes", "jump", "target",
        "match", "left", "right", "op", "payload", "meta", "prefix", "set", "handle", "comment", "prio",
        "nftables",
    ];

    /// One change somewhere in `v`: a value of another type, a field or item dropped,
    /// duplicated or renamed, or a value buried under deep nesting.
    fn mutate_value(rng: &mut Rng, v: &mut Value) {
        let children = match v {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 0,
        };
        if children > 0 && !rng.one_in(4) {
            let i = rng.below(children);
            match v {
                Value::Array(a) => return mutate_value(rng, &mut a[i]),
                Value::Object(o) => {
                    if let Some((_, child)) = o.iter_mut().nth(i) {
                        return mutate_value(rng, child);
                    }
                }
                _ => {}
            }
        }
        match rng.below(6) {
            0 => *v = odd_value(rng),
            1 => match v {
                Value::Array(a) if !a.is_empty() => {
                    let i = rng.below(a.len());
                    if rng.one_in(2) {
                        a.remove(i);
                    } else {
                        let copy = a[i].clone();
                        a.insert(i, copy);
                    }
                }
                Value::Object(o) if !o.is_empty() => {
                    let key = o.keys().nth(rng.below(o.len())).cloned().unwrap_or_default();
                    let val = o.remove(&key).unwrap_or_default();
                    if rng.one_in(2) {
                        o.insert(rng.pick(NFT_KEYS).to_string(), val);
                    }
                }
                _ => *v = odd_value(rng),
            },
            2 => {
                // A little deeper; nesting past serde_json's limit has its own test.
                let depth = 1 + rng.below(8);
                let mut inner = std::mem::take(v);
                for _ in 0..depth {
                    inner = if rng.one_in(2) {
                        json!([inner])
                    } else {
                        json!({ *rng.pick(NFT_KEYS): inner })
                    };
                }
                *v = inner;
            }
            3 => {
                if let Value::Object(o) = v {
                    o.insert(rng.pick(NFT_KEYS).to_string(), odd_value(rng));
                } else {
                    *v = odd_value(rng);
                }
            }
            4 => *v = json!({ *rng.pick(NFT_KEYS): std::mem::take(v) }),
            _ => *v = json!([std::mem::take(v), odd_value(rng)]),
        }
    }

    /// Pieces of JSON text spliced in: numbers beyond every integer type, broken
    /// escapes and structure.
    const JSON_TOKENS: &[&[u8]] = &[
        b"1e999",
        b"-1e999",
        b"18446744073709551616",
        b"-9223372036854775809",
        b"99999999999999999999999999999999",
        b"0.0000000000000000000000001",
        b"\\ud800",
        b"\\u0000",
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\"",
        b"null",
        b"\xff",
    ];

    #[test]
    fn mutated_nft_documents_never_panic_and_fail_only_as_errors() {
        for &seed in &[0x5eed_u64, 0x0dd_ba11] {
            let mut rng = Rng(seed);
            for case in 0..1500 {
                let (mut doc, _, skip) = nft_ruleset(&mut rng);
                for _ in 0..1 + rng.below(3) {
                    mutate_value(&mut rng, &mut doc);
                }
                let mut text = doc.to_string().into_bytes();
                if rng.one_in(3) {
                    text = mutate_bytes(&mut rng, text, JSON_TOKENS);
                }
                let text = String::from_utf8_lossy(&text);
                let what = || format!("seed {seed:#x} case {case}: {text}");
                let is_ruleset = serde_json::from_str::<Value>(&text).is_ok_and(|d| d["nftables"].is_array());
                match parse_nft_json(&text, &skip) {
                    Ok(tables) => {
                        assert!(is_ruleset, "{}: parsed", what());
                        for t in &tables {
                            assert!(!skip.contains(&(t.family.clone(), t.name.clone())), "{}", what());
                            let mut seen: HashMap<&str, u32> = HashMap::new();
                            for r in &t.rules {
                                let n = seen.entry(r.chain.as_str()).or_default();
                                *n += 1;
                                assert_eq!(r.position, *n, "{}: {r:?}", what());
                            }
                        }
                    }
                    Err(e) => {
                        assert!(!is_ruleset, "{}: {e}", what());
                        assert!(e.starts_with("nft -j output"), "{}: {e}", what());
                    }
                }
            }
        }
    }

    #[test]
    fn deeply_nested_nft_documents_are_errors_or_parse() {
        let rule = r#"{"rule":{"family":"ip","table":"t","chain":"c","expr":[EXPR]}}"#;
        for depth in [1, 64, 120, 126, 127, 128, 129, 200, 100_000] {
            let deep = |inner: &str| format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth));
            let deep_obj =
                |inner: &str| format!("{}{inner}{}", r#"{"set":"#.repeat(depth), "}".repeat(depth));
            for text in [
                deep(r#"{"nftables":[]}"#),
                format!(r#"{{"nftables":{}}}"#, deep("")),
                format!(
                    r#"{{"nftables":[{{"table":{{"family":"ip","name":"t"}}}},{}]}}"#,
                    rule.replace("EXPR", &deep(r#"{"accept":null}"#))
                ),
                format!(
                    r#"{{"nftables":[{{"table":{{"family":"ip","name":"t"}}}},{}]}}"#,
                    rule.replace(
                        "EXPR",
                        &format!(
                            r#"{{"match":{{"op":"==","left":"x","right":{}}}}}"#,
                            deep_obj("1")
                        )
                    )
                ),
            ] {
                let parsed = serde_json::from_str::<Value>(&text);
                let is_ruleset = parsed.as_ref().is_ok_and(|d| d["nftables"].is_array());
                // Dropping a deep value recurses; the ones serde_json accepts are shallow.
                drop(parsed);
                let got = parse_nft_json(&text, &[]);
                assert_eq!(got.is_ok(), is_ruleset, "depth {depth}: {got:?}");
                if depth > 128 {
                    assert!(got.is_err(), "depth {depth} is past serde_json's limit");
                }
            }
        }
    }
}
