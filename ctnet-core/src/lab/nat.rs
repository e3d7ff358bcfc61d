//! The lab's firewall rules: MASQUERADE and FORWARD accepts, tagged with a comment.
//!
//! Rules go through `iptables-restore --noflush`, which works with whichever backend
//! (nft or legacy) the host's `iptables` points at, and adds or removes a whole set in
//! one process. Every rule carries `-m comment --comment ctnet-lab:NAME`, so finding and
//! removing them is exact.

use crate::error::{Error, ErrorKind, Result};
use crate::lab::LabPlan;
use crate::tool::Cmd;

/// One rule: its table and its spec as `iptables-save` prints it after `-A`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    /// `nat` or `filter`.
    pub table: String,
    /// Chain and match/target, e.g. `POSTROUTING -s 10.0.0.0/24 ... -j MASQUERADE`.
    pub spec: String,
}

/// The rules a NAT lab adds.
pub fn lab_rules(plan: &LabPlan) -> Vec<Rule> {
    let c = &plan.tag;
    let br = &plan.bridge;
    let net = plan.spec.subnet;
    vec![
        Rule {
            table: "nat".into(),
            spec: format!("POSTROUTING -s {net} ! -o {br} -m comment --comment {c} -j MASQUERADE"),
        },
        Rule {
            table: "filter".into(),
            spec: format!("FORWARD -i {br} -m comment --comment {c} -j ACCEPT"),
        },
        Rule {
            table: "filter".into(),
            spec: format!("FORWARD -o {br} -m comment --comment {c} -j ACCEPT"),
        },
    ]
}

/// What to do with rules fed to `iptables-restore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `-I`: insert at the top (ahead of a Docker-style DROP policy's rules).
    Insert,
    /// `-D`: delete the rule with exactly this spec.
    Delete,
}

/// The `iptables-restore --noflush` input for `rules`, grouped by table.
pub fn restore_input(rules: &[Rule], op: Op) -> String {
    let flag = match op {
        Op::Insert => "-I",
        Op::Delete => "-D",
    };
    let mut tables: Vec<&str> = Vec::new();
    for r in rules {
        if !tables.contains(&r.table.as_str()) {
            tables.push(&r.table);
        }
    }
    let mut out = String::new();
    for t in tables {
        out.push_str(&format!("*{t}\n"));
        // Insert in reverse so the rules end up in the order given.
        let in_table: Vec<&Rule> = rules.iter().filter(|r| r.table == t).collect();
        let ordered: Box<dyn Iterator<Item = &&Rule>> = match op {
            Op::Insert => Box::new(in_table.iter().rev()),
            Op::Delete => Box::new(in_table.iter()),
        };
        for r in ordered {
            out.push_str(&format!("{flag} {}\n", r.spec));
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// The rules in `iptables-save` output whose comment is exactly `tag`.
pub fn find_tagged(save: &str, tag: &str) -> Vec<Rule> {
    let plain = format!("--comment {tag}");
    let quoted = format!("--comment \"{tag}\"");
    let mut table = String::new();
    let mut out = Vec::new();
    for line in save.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
            continue;
        }
        // Counters (`[p:b] -A ...`) appear with -c; accept both forms.
        let line = match line.strip_prefix('[') {
            Some(rest) => rest.split_once("] ").map_or(line, |(_, r)| r),
            None => line,
        };
        let Some(spec) = line.strip_prefix("-A ") else {
            continue;
        };
        let tagged = spec.split(" -").any(|part| {
            let part = format!("-{part}");
            part.trim_end() == plain || part.trim_end() == quoted
        });
        if tagged {
            out.push(Rule {
                table: table.clone(),
                spec: spec.to_string(),
            });
        }
    }
    out
}

/// Run `program args` with `input` on stdin; stdout on success. The program is looked
/// up in `path` (so a non-root shell without /usr/sbin on `PATH` still finds iptables),
/// run by [`crate::tool`] on tokio's blocking pool (never on a worker).
async fn run_tool(program: &str, args: &[&str], input: Option<&str>, path: &str) -> Result<String> {
    let mut cmd = Cmd::new(program, path).args(args);
    if let Some(text) = input {
        cmd = cmd.input(text);
    }
    tokio::task::spawn_blocking(move || cmd.run())
        .await
        .map_err(|e| Error::Tool {
            program: program.into(),
            detail: format!("its runner stopped: {e}"),
            kind: ErrorKind::Other,
        })?
}

/// Add or delete `rules` in one `iptables-restore --noflush` run.
pub async fn apply(rules: &[Rule], op: Op, path: &str) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    run_tool(
        "iptables-restore",
        &["--noflush", "-w", "5"],
        Some(&restore_input(rules, op)),
        path,
    )
    .await
    .map(|_| ())
}

/// The rules currently tagged `tag` (`iptables-save`). A missing `iptables-save` means
/// no rules can exist that this lab added through it: returns none.
pub async fn current_tagged(tag: &str, path: &str) -> Result<Vec<Rule>> {
    match run_tool("iptables-save", &[], None, path).await {
        Ok(save) => Ok(find_tagged(&save, tag)),
        Err(Error::Tool {
            kind: ErrorKind::MissingTool,
            ..
        }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Tables present in `iptables-save` output (`*nat`, `*filter`, ...).
pub fn tables_in(save: &str) -> Vec<String> {
    save.lines()
        .filter_map(|l| l.strip_prefix('*'))
        .map(|t| t.trim().to_string())
        .collect()
}

/// Whether `table` in `iptables-save` output has no rules and only ACCEPT policies,
/// i.e. holds nothing anyone configured.
pub fn table_is_pristine(save: &str, table: &str) -> bool {
    let mut inside = false;
    for line in save.lines() {
        if let Some(t) = line.strip_prefix('*') {
            inside = t.trim() == table;
            continue;
        }
        if !inside {
            continue;
        }
        if line.starts_with("-A ") || line.contains("] -A ") {
            return false;
        }
        if let Some(chain) = line.strip_prefix(':') {
            let policy = chain.split_whitespace().nth(1).unwrap_or("-");
            if policy != "ACCEPT" && policy != "-" {
                return false;
            }
            if policy == "-" {
                // A user-defined chain: someone made it.
                return false;
            }
        }
    }
    true
}

/// Tables `iptables-save` shows now.
pub async fn present_tables(path: &str) -> Result<Vec<String>> {
    match run_tool("iptables-save", &[], None, path).await {
        Ok(save) => Ok(tables_in(&save)),
        Err(Error::Tool {
            kind: ErrorKind::MissingTool,
            ..
        }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Tables a lab writes rules into.
const LAB_TABLES: [&str; 2] = ["nat", "filter"];

/// Remove the iptables-nft tables a lab brought into being (`nat`/`filter` absent from
/// `before`) once they hold nothing again, so the ruleset reads as before the lab.
/// Legacy tables cannot be removed from a netns; they are left (empty) and not reported.
/// Keeps going past a failure and reports them all. Returns what was removed.
pub async fn remove_tables_created(before: &[String], path: &str) -> Result<Vec<String>> {
    let save = match run_tool("iptables-save", &[], None, path).await {
        Ok(s) => s,
        Err(Error::Tool {
            kind: ErrorKind::MissingTool,
            ..
        }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let new: Vec<String> = tables_in(&save)
        .into_iter()
        .filter(|t| LAB_TABLES.contains(&t.as_str()) && !before.contains(t) && table_is_pristine(&save, t))
        .collect();
    if new.is_empty() {
        return Ok(new);
    }
    let version = run_tool("iptables", &["-V"], None, path).await?;
    if !version.contains("nf_tables") {
        return Ok(Vec::new());
    }
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    for t in new {
        match run_tool("nft", &["delete", "table", "ip", &t], None, path).await {
            Ok(_) => removed.push(t),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(removed),
        1 => Err(errors.remove(0)),
        _ => Err(Error::Many(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::LabSpec;

    fn plan() -> LabPlan {
        let mut spec = LabSpec::new("t");
        spec.subnet = "10.9.0.0/24".parse().unwrap();
        spec.nat = true;
        LabPlan::new(&spec).unwrap()
    }

    #[test]
    fn builds_tagged_masquerade_and_forward_rules() {
        let rules = lab_rules(&plan());
        assert_eq!(rules.len(), 3);
        assert!(rules.iter().all(|r| r.spec.contains("--comment ctnet-lab:t ")));
        assert_eq!(
            rules[0].spec,
            "POSTROUTING -s 10.9.0.0/24 ! -o t-br -m comment --comment ctnet-lab:t -j MASQUERADE"
        );
    }

    #[test]
    fn restore_input_groups_by_table_and_keeps_order() {
        let rules = lab_rules(&plan());
        let ins = restore_input(&rules, Op::Insert);
        assert_eq!(
            ins,
            "*nat\n-I POSTROUTING -s 10.9.0.0/24 ! -o t-br -m comment --comment ctnet-lab:t -j MASQUERADE\nCOMMIT\n\
             *filter\n-I FORWARD -o t-br -m comment --comment ctnet-lab:t -j ACCEPT\n\
             -I FORWARD -i t-br -m comment --comment ctnet-lab:t -j ACCEPT\nCOMMIT\n"
        );
        let del = restore_input(&rules, Op::Delete);
        assert!(del.contains("-D FORWARD -i t-br"), "{del}");
        assert!(!del.contains("-I "), "{del}");
    }

    #[test]
    fn finds_exactly_the_rules_of_one_lab_in_iptables_save() {
        // As iptables-save 1.8.9 (nf_tables) prints them, plus a rule of lab "t2"
        // and a foreign rule that must never match.
        let save = "# Generated by iptables-save v1.8.9 (nf_tables)\n\
            *filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n\
            -A FORWARD -o t-br -m comment --comment \"ctnet-lab:t\" -j ACCEPT\n\
            -A FORWARD -o t2-br -m comment --comment \"ctnet-lab:t2\" -j ACCEPT\n\
            -A FORWARD -i docker0 -j ACCEPT\nCOMMIT\n\
            *nat\n:POSTROUTING ACCEPT [3:180]\n\
            [3:180] -A POSTROUTING -s 10.9.0.0/24 ! -o t-br -m comment --comment ctnet-lab:t -j MASQUERADE\n\
            COMMIT\n";
        let found = find_tagged(save, "ctnet-lab:t");
        assert_eq!(
            found,
            vec![
                Rule {
                    table: "filter".into(),
                    spec: "FORWARD -o t-br -m comment --comment \"ctnet-lab:t\" -j ACCEPT".into()
                },
                Rule {
                    table: "nat".into(),
                    spec:
                        "POSTROUTING -s 10.9.0.0/24 ! -o t-br -m comment --comment ctnet-lab:t -j MASQUERADE"
                            .into()
                },
            ]
        );
        assert!(find_tagged(save, "ctnet-lab:x").is_empty());
    }

    #[test]
    fn tells_tables_nobody_configured_from_configured_ones() {
        let save = "*nat\n:PREROUTING ACCEPT [4:240]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n\
            *filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\nCOMMIT\n\
            *mangle\n:PREROUTING ACCEPT [0:0]\n:MINE - [0:0]\nCOMMIT\n\
            *raw\n:PREROUTING ACCEPT [0:0]\n[1:2] -A PREROUTING -j ACCEPT\nCOMMIT\n";
        assert_eq!(tables_in(save), ["nat", "filter", "mangle", "raw"]);
        assert!(table_is_pristine(save, "nat"));
        assert!(!table_is_pristine(save, "filter"), "DROP policy is configuration");
        assert!(
            !table_is_pristine(save, "mangle"),
            "a user chain is configuration"
        );
        assert!(!table_is_pristine(save, "raw"), "a rule is configuration");
    }
}
