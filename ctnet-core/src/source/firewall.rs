//! Firewall rules and counters: `iptables-save -c` of both backends (IPv4 and IPv6) and
//! native nftables from `nft -j list ruleset`, with each chain, rule and table
//! attributed to whoever installed it.
//!
//! The tools act on the netns of the thread that spawns them, so [`collect`] must run
//! on a thread inside the netns to read.

use std::process::Command;

use serde_json::Value;

use crate::model::{
    Firewall, IptChain, IptRule, IptTable, IptablesDump, NftChain, NftRule, NftTable, Owner, SourceStatus,
};

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
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix('*') {
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
        let position = table.rules.iter().filter(|r| r.chain == chain).count() as u32 + 1;
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
    let skip = |family: &str, name: &str| iptables_nft_tables.iter().any(|(f, n)| f == family && n == name);
    for item in items {
        if let Some(t) = item.get("table") {
            let family = t["family"].as_str().unwrap_or("").to_string();
            let name = t["name"].as_str().unwrap_or("").to_string();
            if skip(&family, &name) {
                continue;
            }
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
            if let Some(t) = tables.iter_mut().find(|t| t.family == family && t.name == table) {
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
            let Some(t) = tables.iter_mut().find(|t| t.family == family && t.name == table) else {
                continue;
            };
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
            let position = t.rules.iter().filter(|x| x.chain == chain).count() as u32 + 1;
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

/// Find `program` in the `PATH`-style list `path`.
pub fn find_tool(program: &str, path: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Run a tool; `Err` says why it could not run or what it printed on failure
/// (`true`: the tool is not installed).
fn run(program: &str, args: &[&str], path: &str) -> Result<String, (bool, String)> {
    let Some(exe) = find_tool(program, path) else {
        return Err((true, format!("{program} not installed")));
    };
    match Command::new(&exe).args(args).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err((true, format!("{program} not installed"))),
        Err(e) => Err((false, format!("{program}: {e}"))),
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err((
            false,
            format!(
                "{program} {}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        )),
    }
}

fn has_legacy_tables(proc_file: &str) -> bool {
    std::fs::read_to_string(proc_file).is_ok_and(|s| !s.trim().is_empty())
}

/// Read the firewall of the calling thread's netns (`ipv6`: the ip6tables dumps too).
/// Each tool that is missing or fails is reported in the returned statuses; the rest is
/// still read.
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
    for (tool, backend, family, legacy_probe) in dumps {
        if family == "ip6" && !ipv6 {
            continue;
        }
        if let Some(probe) = legacy_probe
            && !has_legacy_tables(probe)
        {
            continue;
        }
        match run(tool, &["-c"], tool_path) {
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
            Err((missing, why)) => status.push(SourceStatus::problem(
                tool,
                at.clone(),
                if missing { "skipped" } else { "failed" },
                why,
            )),
        }
    }
    match run("nft", &["-j", "list", "ruleset"], tool_path) {
        Ok(text) => match parse_nft_json(&text, &nft_backend_tables) {
            Ok(tables) => fw.nft = tables,
            Err(why) => status.push(SourceStatus::problem("nft", at.clone(), "failed", why)),
        },
        Err((missing, why)) => status.push(SourceStatus::problem(
            "nft",
            at.clone(),
            if missing { "skipped" } else { "failed" },
            why,
        )),
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

    const DOCKER_SAVE: &str = "# Generated by iptables-save v1.8.9 (nf_tables) on Fri Nov 27 2026
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
