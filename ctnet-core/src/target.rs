//! Target resolution: what a user means by `web-1`, `3f2a`, `cni-1234`, `/run/netns/x`,
//! `pid:4242` or `veth3f2a1b`, resolved against a [`Snapshot`] in the order DESIGN.md
//! gives: container name or id prefix, netns name, netns path, `pid:<PID>`, host
//! interface name.

use serde::{Deserialize, Serialize};

use crate::model::{Container, Snapshot};
use crate::netns::{NetnsKey, NetnsRef};
use crate::runtime::NotAsked;
use crate::topology::{Role, Topology};

/// What a target turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A container, by name or id prefix.
    Container,
    /// A named netns (`ip netns` name).
    NetnsName,
    /// An nsfs path.
    NetnsPath,
    /// `pid:<PID>`.
    Pid,
    /// An interface of the host netns.
    HostInterface,
}

/// A resolved target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// What the user typed.
    pub target: String,
    /// What it is.
    pub kind: TargetKind,
    /// Its netns; `None` for a container that is not running.
    pub netns: Option<NetnsKey>,
    /// The container, when the target is one (or the netns belongs to one).
    pub container: Option<Container>,
    /// For a host interface: its ifindex in the host netns.
    pub ifindex: Option<u32>,
    /// What a reader must know about this target's networking (`--network host`,
    /// `none`, `container:`, not running), in one sentence.
    pub note: Option<String>,
}

/// Why a target could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Nothing has that name.
    #[error("unknown target {target:?}{}", hint(.close))]
    Unknown {
        /// What the user typed.
        target: String,
        /// Close matches, best first.
        close: Vec<String>,
    },
    /// A name that only a container runtime could resolve, in a snapshot taken without
    /// asking one: it may well be a container.
    #[error(
        "unknown target {target:?}: container names are resolved through the Docker/Podman API, {}; \
         name the target by its netns name or path, pid:<PID> of a process in it, or a host interface{}",
        not_asked(*.why),
        found_without(.close)
    )]
    NoRuntime {
        /// What the user typed.
        target: String,
        /// Why no runtime was asked.
        why: NotAsked,
        /// Close names that are known without a runtime (netns, interfaces), best first.
        close: Vec<String>,
    },
    /// An id prefix that matches several containers, or a pod name several pods have.
    #[error("ambiguous target {target:?}: it matches {}", listed(.candidates))]
    Ambiguous {
        /// What the user typed.
        target: String,
        /// `name (id)` of each container it matches.
        candidates: Vec<String>,
    },
}

fn hint(close: &[String]) -> String {
    if close.is_empty() {
        "; `ctnet-diag show` lists containers, netns and interfaces".into()
    } else {
        format!("; did you mean {}?", listed(close))
    }
}

fn not_asked(why: NotAsked) -> &'static str {
    match why {
        NotAsked::NoDaemon => "which --no-daemon turned off",
        NotAsked::NoSocket => "and no Docker or Podman API socket was found",
    }
}

fn found_without(close: &[String]) -> String {
    if close.is_empty() {
        String::new()
    } else {
        format!(" (close matches found without it: {})", listed(close))
    }
}

/// Whether `target` could be a container name or id (Docker's and Podman's rule:
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
fn could_be_container(target: &str) -> bool {
    let mut b = target.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Names for a message, each escaped: they come from the kernel or a runtime.
fn listed(names: &[String]) -> String {
    let shown: Vec<_> = names.iter().map(|n| crate::text::escape(n)).collect();
    shown.join(", ")
}

/// Levenshtein distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Names worth suggesting for `target`, best first (at most five).
pub fn close_matches<'a>(target: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let t = target.to_ascii_lowercase();
    let mut scored: Vec<(usize, String)> = names
        .filter(|n| !n.is_empty())
        .filter_map(|n| {
            let l = n.to_ascii_lowercase();
            let d = distance(&t, &l);
            let related = l.contains(&t) || t.contains(&l) || d <= (t.len().max(3) / 3).max(2);
            related.then(|| (if l.contains(&t) { 0 } else { d }, n.to_string()))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, n)| n).collect()
}

fn container_note(c: &Container) -> Option<String> {
    if !c.is_running() {
        return Some(format!(
            "container {} is not running ({}): it has no netns",
            c.name, c.state
        ));
    }
    if c.network_mode == "host" {
        return Some(format!(
            "container {} shares the host netns (--network host): no veth",
            c.name
        ));
    }
    if c.network_mode == "none" {
        return Some(format!("container {} has --network none: only lo", c.name));
    }
    c.shares_netns_of.as_ref().map(|o| {
        format!(
            "container {} shares the netns of container {o} (--network container:{o})",
            c.name
        )
    })
}

fn container_target(target: &str, c: &Container) -> Resolved {
    Resolved {
        target: target.into(),
        kind: TargetKind::Container,
        netns: c.netns,
        container: Some(c.clone()),
        ifindex: None,
        note: container_note(c),
    }
}

/// Every netns joined to the host like a container's (a veth or macvlan toward the
/// host: [`Role::Container`]) as a target, in topology order: by the name of the
/// running container that uses it, else by its netns name, path or pid, each a string
/// [`resolve`] maps back to the same netns. What a tool that judges every container
/// (an exporter, a report of the whole host) iterates over.
///
/// ```no_run
/// # fn demo(snap: &ctnet_core::model::Snapshot) {
/// use ctnet_core::{check, target, topology::Topology};
///
/// let topo = Topology::build(snap);
/// for t in target::containers(snap, &topo) {
///     let report = check::run(snap, &topo, &t, None);
///     println!("{} {:?}", t.target, report.verdict);
/// }
/// # }
/// ```
pub fn containers(snap: &Snapshot, topo: &Topology) -> Vec<Resolved> {
    topo.netns
        .iter()
        .filter(|v| v.role == Role::Container)
        .filter_map(|v| {
            // The container that made the netns, not one that joined it.
            let owner = snap
                .containers_in(v.key)
                .filter(|c| c.is_running())
                .min_by_key(|c| c.shares_netns_of.is_some());
            if let Some(c) = owner {
                return Some(container_target(&c.name, c));
            }
            let ns = snap.netns_by_key(v.key)?;
            let r = ns
                .refs
                .iter()
                .find(|r| matches!(r, NetnsRef::Named { .. }))
                .or(ns.refs.first())?;
            let (target, kind) = match r {
                NetnsRef::Named { name, .. } => (name.clone(), TargetKind::NetnsName),
                NetnsRef::Path { path } => (path.display().to_string(), TargetKind::NetnsPath),
                NetnsRef::Pid { pid, .. } => (format!("pid:{pid}"), TargetKind::Pid),
                NetnsRef::Current => return None,
            };
            Some(Resolved {
                target,
                kind,
                netns: Some(v.key),
                container: None,
                ifindex: None,
                note: None,
            })
        })
        .collect()
}

/// Resolve `target` against `snap`.
pub fn resolve(snap: &Snapshot, target: &str) -> Result<Resolved, TargetError> {
    // 1. container name, then id prefix.
    if let Some(c) = snap.containers.iter().find(|c| c.name == target) {
        return Ok(container_target(target, c));
    }
    // Kubernetes pods: `pod/NAMESPACE/NAME`, `NAMESPACE/NAME`, or a bare pod name that
    // one pod has. A pod's containers share its netns: any running one stands for it.
    let wanted = target.strip_prefix("pod/").unwrap_or(target);
    let mut pods: Vec<(&str, &Container)> = Vec::new();
    for c in &snap.containers {
        let Some(pod) = c.pod.as_deref().filter(|p| p.contains('/')) else {
            continue;
        };
        let name = pod.rsplit_once('/').map_or(pod, |(_, n)| n);
        if pod == wanted || (!wanted.contains('/') && name == wanted) {
            match pods.iter_mut().find(|(p, _)| *p == pod) {
                Some(seen) if !seen.1.is_running() && c.is_running() => seen.1 = c,
                Some(_) => {}
                None => pods.push((pod, c)),
            }
        }
    }
    match pods.as_slice() {
        [(_, c)] => return Ok(container_target(target, c)),
        [] => {}
        many => {
            return Err(TargetError::Ambiguous {
                target: target.into(),
                candidates: many.iter().map(|(p, _)| format!("pod/{p}")).collect(),
            });
        }
    }
    let lower = target.to_ascii_lowercase();
    if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        let by_id: Vec<&Container> = snap
            .containers
            .iter()
            .filter(|c| c.id.starts_with(&lower))
            .collect();
        match by_id.as_slice() {
            [c] => return Ok(container_target(target, c)),
            [] => {}
            many => {
                return Err(TargetError::Ambiguous {
                    target: target.into(),
                    candidates: many
                        .iter()
                        .map(|c| format!("{} ({})", c.name, c.short_id()))
                        .collect(),
                });
            }
        }
    }
    let found = |kind, key: NetnsKey| {
        // A netns that belongs to a container names it; the host netns belongs to none.
        let container = (key != snap.host)
            .then(|| snap.containers_in(key).find(|c| c.is_running()).cloned())
            .flatten();
        Ok(Resolved {
            target: target.into(),
            kind,
            netns: Some(key),
            container,
            ifindex: None,
            note: None,
        })
    };
    // 2. netns name.
    for ns in &snap.netns {
        if ns
            .refs
            .iter()
            .any(|r| matches!(r, NetnsRef::Named { name, .. } if name == target))
        {
            return found(TargetKind::NetnsName, ns.key);
        }
    }
    // 3. netns path: a name we know, or (live) the identity of that file.
    if target.starts_with('/') {
        for ns in &snap.netns {
            if ns.refs.iter().any(|r| {
                matches!(r, NetnsRef::Named { path, .. } | NetnsRef::Path { path } if path.as_os_str() == target)
            }) {
                return found(TargetKind::NetnsPath, ns.key);
            }
        }
        if let Ok(key) = NetnsKey::of_path(std::path::Path::new(target))
            && snap.netns_by_key(key).is_some()
        {
            return found(TargetKind::NetnsPath, key);
        }
    }
    // 4. pid:<PID>.
    if let Some(pid) = target.strip_prefix("pid:").and_then(|p| p.parse::<u32>().ok()) {
        for ns in &snap.netns {
            if ns
                .refs
                .iter()
                .any(|r| matches!(r, NetnsRef::Pid { pid: p, .. } if *p == pid))
            {
                return found(TargetKind::Pid, ns.key);
            }
        }
        if let Ok(key) = NetnsKey::of_path(std::path::Path::new(&format!("/proc/{pid}/ns/net")))
            && snap.netns_by_key(key).is_some()
        {
            return found(TargetKind::Pid, key);
        }
    }
    // 5. host interface.
    if let Some(host) = snap.host_netns()
        && let Some(l) = host.link_by_name(target)
    {
        return Ok(Resolved {
            target: target.into(),
            kind: TargetKind::HostInterface,
            netns: Some(host.key),
            container: None,
            ifindex: Some(l.ifindex),
            note: None,
        });
    }
    let mut names: Vec<&str> = snap.containers.iter().map(|c| c.name.as_str()).collect();
    for ns in &snap.netns {
        for r in &ns.refs {
            if let NetnsRef::Named { name, .. } = r {
                names.push(name);
            }
        }
    }
    if let Some(host) = snap.host_netns() {
        names.extend(host.links.iter().map(|l| l.name.as_str()));
    }
    let close = close_matches(target, names.into_iter());
    // Without a runtime, a container's name is unknown for certain: say that rather
    // than suggest an interface that happens to be close.
    if could_be_container(target)
        && let Some(why) = NotAsked::of(snap)
    {
        return Err(TargetError::NoRuntime {
            target: target.into(),
            why,
            close,
        });
    }
    Err(TargetError::Unknown {
        target: target.into(),
        close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Link, NetnsState};

    fn snap() -> Snapshot {
        let host = NetnsKey { dev: 4, ino: 1 };
        let ns = |ino, refs| NetnsState {
            key: NetnsKey { dev: 4, ino },
            refs,
            ..NetnsState::default()
        };
        let container = |name: &str, id: &str, mode: &str, state: &str, netns| Container {
            runtime: "docker".into(),
            id: id.into(),
            name: name.into(),
            state: state.into(),
            network_mode: mode.into(),
            netns,
            ..Container::default()
        };
        let mut h = ns(1, vec![NetnsRef::Current]);
        h.links = vec![Link {
            ifindex: 5,
            name: "veth3f2a".into(),
            ..Link::default()
        }];
        Snapshot {
            schema: crate::model::SNAPSHOT_SCHEMA.into(),
            taken_at_unix_ms: 0,
            hostname: "h".into(),
            kernel: "k".into(),
            host,
            netns: vec![
                h,
                ns(2, vec![NetnsRef::Pid { pid: 42, comm: None }]),
                ns(
                    3,
                    vec![NetnsRef::Named {
                        name: "cni-77".into(),
                        path: "/run/netns/cni-77".into(),
                    }],
                ),
            ],
            firewall: None,
            sources: Vec::new(),
            containers: vec![
                container(
                    "web-1",
                    "abc123",
                    "default",
                    "running",
                    Some(NetnsKey { dev: 4, ino: 2 }),
                ),
                container("web-2", "abd456", "default", "running", None),
                container("db", "ff00ee", "host", "running", Some(host)),
                container("old", "ee11", "default", "exited", None),
            ],
        }
    }

    #[test]
    fn pods_resolve_by_namespace_and_name_and_by_a_name_one_pod_has() {
        let mut s = snap();
        let key = Some(NetnsKey { dev: 4, ino: 2 });
        for (name, id, pod, state) in [
            ("shop/web", "aa01", "shop/web", "exited"),
            ("7c1e0f", "aa02", "shop/web", "running"),
            ("dev/web", "aa03", "dev/web", "running"),
            ("shop/cache", "aa04", "shop/cache", "running"),
        ] {
            s.containers.push(Container {
                runtime: "kubernetes".into(),
                id: id.into(),
                name: name.into(),
                state: state.into(),
                pod: Some(pod.into()),
                netns: key,
                ..Container::default()
            });
        }
        for t in ["pod/shop/cache", "shop/cache", "cache"] {
            let r = resolve(&s, t).unwrap();
            assert_eq!(r.kind, TargetKind::Container, "{t}");
            assert_eq!(r.container.unwrap().pod.as_deref(), Some("shop/cache"), "{t}");
        }
        // A pod stands for its running container.
        let r = resolve(&s, "pod/shop/web").unwrap();
        assert_eq!(r.container.unwrap().id, "aa02");
        let e = resolve(&s, "web").unwrap_err();
        assert!(matches!(e, TargetError::Ambiguous { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("pod/shop/web") && e.contains("pod/dev/web"), "{e}");
        assert!(matches!(
            resolve(&s, "pod/shop/nope").unwrap_err(),
            TargetError::Unknown { .. }
        ));
    }

    #[test]
    fn resolves_in_the_documented_order() {
        let s = snap();
        let cases = [
            ("web-1", TargetKind::Container),
            ("abc", TargetKind::Container),
            ("cni-77", TargetKind::NetnsName),
            ("/run/netns/cni-77", TargetKind::NetnsPath),
            ("pid:42", TargetKind::Pid),
            ("veth3f2a", TargetKind::HostInterface),
        ];
        for (t, kind) in cases {
            assert_eq!(resolve(&s, t).unwrap().kind, kind, "{t}");
        }
        // pid 42's netns belongs to web-1.
        assert_eq!(resolve(&s, "pid:42").unwrap().container.unwrap().name, "web-1");
    }

    #[test]
    fn special_modes_are_told_truthfully() {
        let s = snap();
        assert!(
            resolve(&s, "db")
                .unwrap()
                .note
                .unwrap()
                .contains("shares the host netns")
        );
        let old = resolve(&s, "old").unwrap();
        assert!(old.netns.is_none());
        assert!(old.note.unwrap().contains("not running"));
    }

    #[test]
    fn unknown_and_ambiguous_targets_say_what_is_close() {
        let s = snap();
        match resolve(&s, "web1").unwrap_err() {
            TargetError::Unknown { close, .. } => assert_eq!(close[..2], ["web-1", "web-2"]),
            other => panic!("{other:?}"),
        }
        let e = resolve(&s, "ab").unwrap_err();
        assert!(matches!(e, TargetError::Ambiguous { .. }));
        assert!(
            e.to_string().contains("web-1 (abc123)") && e.to_string().contains("web-2 (abd456)"),
            "{e}"
        );
        let e = resolve(&s, "zzzzzz").unwrap_err().to_string();
        assert!(e.contains("ctnet-diag show"), "{e}");
    }

    #[test]
    fn names_without_a_runtime_say_that_containers_need_one() {
        let mut s = snap();
        s.containers.clear();
        s.netns[0].links.push(Link {
            ifindex: 1,
            name: "lo".into(),
            ..Link::default()
        });
        // Recorded nothing about runtimes (an older snapshot): unknown, as before.
        assert!(matches!(
            resolve(&s, "db").unwrap_err(),
            TargetError::Unknown { .. }
        ));
        for (why, says) in [
            (NotAsked::NoDaemon, "which --no-daemon turned off"),
            (NotAsked::NoSocket, "no Docker or Podman API socket was found"),
        ] {
            s.sources = vec![why.status()];
            assert_eq!(NotAsked::of(&s), Some(why));
            let e = resolve(&s, "db").unwrap_err();
            assert!(
                matches!(e, TargetError::NoRuntime { why: w, .. } if w == why),
                "{e:?}"
            );
            let e = e.to_string();
            for want in [
                "container names are resolved through the Docker/Podman API",
                says,
                "netns name or path, pid:<PID>",
                "host interface",
            ] {
                assert!(e.contains(want), "{want:?} missing: {e}");
            }
            assert!(!e.contains("did you mean"), "{e}");
            // What cannot be a container name stays a plain unknown target.
            for t in ["/run/netns/nope", "pid:99", "-x", "a b"] {
                assert!(
                    matches!(resolve(&s, t).unwrap_err(), TargetError::Unknown { .. }),
                    "{t}"
                );
            }
            // Netns, pids and interfaces still resolve.
            assert_eq!(resolve(&s, "cni-77").unwrap().kind, TargetKind::NetnsName);
            assert_eq!(resolve(&s, "lo").unwrap().kind, TargetKind::HostInterface);
        }
        // A file written before Podman's CLI was asked says it in its own words.
        s.sources = vec![crate::model::SourceStatus::problem(
            crate::runtime::NOT_ASKED_SOURCE,
            None,
            crate::vocab::SourceState::Skipped,
            crate::runtime::NOT_ASKED_NO_SOCKET_BEFORE_CLI,
        )];
        assert_eq!(NotAsked::of(&s), Some(NotAsked::NoSocket));
        // A runtime-controlled name in the message is escaped.
        s.netns[2].refs = vec![NetnsRef::Named {
            name: "db\x1b".into(),
            path: "/run/netns/db\x1b".into(),
        }];
        let e = resolve(&s, "db").unwrap_err().to_string();
        assert!(!e.contains('\x1b') && e.contains("\\x1b"), "{e}");
    }

    #[test]
    fn every_container_target_resolves_back_to_its_netns() {
        for file in ["docker-host.json", "lab-healthy.json"] {
            let path = format!("{}/../fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
            let snap = Snapshot::load(&path).unwrap();
            let topo = Topology::build(&snap);
            let all = containers(&snap, &topo);
            let joined = topo.netns.iter().filter(|v| v.role == Role::Container).count();
            assert!(
                !all.is_empty() && all.len() == joined,
                "{file}: {} of {joined}",
                all.len()
            );
            for t in &all {
                let again = resolve(&snap, &t.target).unwrap();
                assert_eq!(again.netns, t.netns, "{file}: {}", t.target);
                assert_eq!(again.kind, t.kind, "{file}: {}", t.target);
            }
            if file == "docker-host.json" {
                assert!(
                    all.iter()
                        .any(|t| t.kind == TargetKind::Container && t.container.is_some())
                );
            }
        }
    }
}
