//! Container runtimes: who runs the containers, and which netns each one uses.
//!
//! - Docker Engine API over its unix socket (`DOCKER_HOST`, `--docker-host`, default
//!   `/var/run/docker.sock`): a small typed HTTP/1.1 client, no `docker` CLI parsing.
//! - Podman through its Docker-compatible API socket (`/run/podman/podman.sock`, or the
//!   user's `$XDG_RUNTIME_DIR/podman/podman.sock`), and without one (Podman is
//!   daemonless: most hosts run no socket) through the `podman` CLI's JSON, as root
//!   ([`podman`]).
//! - Pods and containers a CNI plugin chain networked (containerd for kubelet,
//!   `ctr run --cni`, nerdctl, CRI-O): libcni's result cache ([`cni`]), which names
//!   Kubernetes pods by the CNI args kubelet passed.
//! - Without any daemon: container ids read from `/proc/<pid>/cgroup` of the processes
//!   in each netns (Docker, containerd/Kubernetes incl. pause sandboxes, CRI-O, Podman).
//!
//! A runtime that cannot be reached is recorded with the reason; the others and the
//! daemon-less path are still used.

pub mod cgroup;
pub mod cni;
pub mod docker;
pub mod podman;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::model::{Container, Snapshot, SourceStatus};
use crate::netns::{NetnsKey, NetnsRef};
use crate::vocab::SourceState;

/// A source of containers.
pub trait Runtime {
    /// `docker`, `podman`, ...
    fn kind(&self) -> &'static str;
    /// Where it is reached (a socket path).
    fn endpoint(&self) -> String;
    /// Every container it knows, running or not.
    fn containers(&self) -> Result<Vec<Container>>;
}

/// Which runtimes to ask.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// The Docker endpoint (`unix:///path` or a path); by default `/var/run/docker.sock`
    /// when it exists (the CLI fills this from `DOCKER_HOST`).
    pub docker_host: Option<String>,
    /// Do not ask any daemon (cgroups only).
    pub no_daemon: bool,
}

/// The socket path of a `DOCKER_HOST`-style endpoint.
pub fn socket_of(endpoint: &str) -> std::result::Result<PathBuf, String> {
    if let Some(p) = endpoint.strip_prefix("unix://") {
        return Ok(PathBuf::from(p));
    }
    if endpoint.starts_with('/') {
        return Ok(PathBuf::from(endpoint));
    }
    Err(format!(
        "docker host {endpoint:?} is not supported: ctnet talks to the engine on this host \
         over its unix socket (unix:///var/run/docker.sock)"
    ))
}

/// The source name of the record that says no container runtime was asked.
pub const NOT_ASKED_SOURCE: &str = "runtime";
/// Its detail under `--no-daemon`.
const NOT_ASKED_NO_DAEMON: &str = "--no-daemon: Docker and Podman were not asked; containers are found through cgroups only (ids, no names)";
/// Its detail when no API socket exists.
const NOT_ASKED_NO_SOCKET: &str = "no Docker or Podman API socket found (/var/run/docker.sock, \
     /run/podman/podman.sock, $XDG_RUNTIME_DIR/podman/podman.sock) and no root Podman to ask \
     (podman on the PATH, /run/libpod present, run as root); containers are found through \
     cgroups only (ids, no names)";
/// The same detail as snapshots written before Podman's CLI was asked record it.
pub(crate) const NOT_ASKED_NO_SOCKET_BEFORE_CLI: &str = "no Docker or Podman API socket found (/var/run/docker.sock, \
     /run/podman/podman.sock, $XDG_RUNTIME_DIR/podman/podman.sock); containers are found through \
     cgroups only (ids, no names)";

/// Why no container runtime was asked while a snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAsked {
    /// `--no-daemon` turned them off.
    NoDaemon,
    /// No Docker or Podman API socket exists on the host, and no root Podman CLI.
    NoSocket,
}

impl NotAsked {
    /// The source record a snapshot keeps of it.
    pub fn status(self) -> SourceStatus {
        let detail = match self {
            Self::NoDaemon => NOT_ASKED_NO_DAEMON,
            Self::NoSocket => NOT_ASKED_NO_SOCKET,
        };
        SourceStatus::problem(NOT_ASKED_SOURCE, None, SourceState::Skipped, detail)
    }

    /// Why `snap` knows no container names from a runtime API, when its sources say no
    /// runtime was asked (a snapshot from an older ctnet records nothing: `None`).
    pub fn of(snap: &Snapshot) -> Option<Self> {
        snap.sources
            .iter()
            .filter(|s| s.source == NOT_ASKED_SOURCE && s.status == SourceState::Skipped)
            .find_map(|s| match s.detail.as_deref() {
                Some(NOT_ASKED_NO_DAEMON) => Some(Self::NoDaemon),
                Some(NOT_ASKED_NO_SOCKET | NOT_ASKED_NO_SOCKET_BEFORE_CLI) => Some(Self::NoSocket),
                _ => None,
            })
    }
}

/// The runtimes to ask, by the options and what exists on this host. When none is
/// asked, the statuses say why ([`NotAsked`]), so a name that only a runtime could know
/// is not reported as merely unknown.
pub fn runtimes(opts: &RuntimeOptions) -> (Vec<Box<dyn Runtime + Send + Sync>>, Vec<SourceStatus>) {
    let mut out: Vec<Box<dyn Runtime + Send + Sync>> = Vec::new();
    let mut status = Vec::new();
    if opts.no_daemon {
        status.push(NotAsked::NoDaemon.status());
        return (out, status);
    }
    let explicit = opts.docker_host.clone();
    // The same socket under two names (podman-docker links docker.sock to podman's)
    // is asked once.
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut add = |p: PathBuf, kind: &'static str, out: &mut Vec<Box<dyn Runtime + Send + Sync>>| {
        let real = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if !seen.contains(&real) {
            seen.push(real);
            out.push(Box::new(docker::DockerApi::new(p, kind)));
        }
    };
    match explicit.as_deref().map(socket_of) {
        Some(Ok(p)) => add(p, "docker", &mut out),
        Some(Err(e)) => status.push(SourceStatus::problem("docker", None, SourceState::Failed, e)),
        None => {
            let p = PathBuf::from("/var/run/docker.sock");
            if p.exists() {
                add(p, "docker", &mut out);
            }
        }
    }
    let mut podman = vec![PathBuf::from("/run/podman/podman.sock")];
    if let Ok(dir) = std::env::var("XDG_RUNTIME_DIR") {
        podman.push(Path::new(&dir).join("podman/podman.sock"));
    }
    let mut podman_socket = false;
    for p in podman {
        if p.exists() {
            add(p, "podman", &mut out);
            podman_socket = true;
        }
    }
    // Podman without its socket: root's store, through the CLI.
    if !podman_socket {
        if let Some(cli) = podman::PodmanCli::find() {
            out.push(Box::new(cli));
        }
    }
    // Users' rootless Podman, each through its own CLI.
    for cli in podman::PodmanCli::users() {
        out.push(Box::new(cli));
    }
    let asked_a_daemon = !out.is_empty();
    if let Some(cache) = cni::CniCache::find() {
        out.push(Box::new(cache));
    }
    if !asked_a_daemon && status.is_empty() {
        status.push(NotAsked::NoSocket.status());
    }
    (out, status)
}

/// Ask every runtime for its containers (each id once); failures become statuses, so a
/// command can tell "not found" from "the daemon did not answer".
pub fn discover(opts: &RuntimeOptions) -> (Vec<Container>, Vec<SourceStatus>) {
    let (rts, mut status) = runtimes(opts);
    let mut all: Vec<Container> = Vec::new();
    for rt in rts {
        let t = std::time::Instant::now();
        let answer = rt.containers();
        log::debug!(
            "runtime {}: {} in {:.1} ms",
            rt.kind(),
            match &answer {
                Ok(c) => format!("{} container(s)", c.len()),
                Err(e) => format!("no answer ({e})"),
            },
            crate::source::ms_since(t)
        );
        match answer {
            Ok(c) => {
                for c in c {
                    if !all.iter().any(|x| x.id == c.id) {
                        all.push(c);
                    }
                }
            }
            Err(e) => status.push(SourceStatus::problem(
                rt.kind(),
                None,
                SourceState::Failed,
                format!("{e}; containers are found through cgroups instead"),
            )),
        }
    }
    (all, status)
}

/// Tie every container to the netns it uses, and add the containers that only the
/// cgroups of netns processes reveal (no daemon answered for them).
///
/// A container is tied by: `host` mode to the host netns; its endpoints' MACs to the
/// netns holding an interface with that MAC; its pid to the netns that pid is in; its
/// sandbox key to that netns; `container:<id>` to the netns of `<id>`.
pub fn attach(snap: &mut Snapshot, mut containers: Vec<Container>) {
    let host = snap.host;
    // A MAC ties a container to a netns only when one netns has it: engines that
    // derive MACs from IPs (Docker < 25) repeat them across nested engines.
    let mut by_mac: HashMap<String, Option<NetnsKey>> = HashMap::new();
    let mut by_pid: HashMap<u32, NetnsKey> = HashMap::new();
    let mut by_path: HashMap<PathBuf, NetnsKey> = HashMap::new();
    for ns in snap.netns.iter().filter(|n| n.key != host) {
        for l in &ns.links {
            if let Some(m) = &l.mac {
                by_mac
                    .entry(m.to_ascii_lowercase())
                    .and_modify(|k| {
                        if *k != Some(ns.key) {
                            *k = None;
                        }
                    })
                    .or_insert(Some(ns.key));
            }
        }
        for r in &ns.refs {
            match r {
                NetnsRef::Pid { pid, .. } => {
                    by_pid.insert(*pid, ns.key);
                }
                NetnsRef::Named { path, .. } | NetnsRef::Path { path } => {
                    by_path.insert(path.clone(), ns.key);
                }
                NetnsRef::Current => {}
            }
        }
    }
    for c in containers.iter_mut() {
        if !c.is_running() {
            continue;
        }
        c.netns = if c.network_mode == "host" {
            Some(host)
        } else {
            // The engine's own facts first (pid, sandbox key), then a unique MAC.
            c.pid
                .and_then(|p| by_pid.get(&p).copied())
                .or_else(|| c.sandbox_key.as_ref().and_then(|k| by_path.get(k).copied()))
                .or_else(|| {
                    c.networks
                        .iter()
                        .filter_map(|n| n.mac.as_ref())
                        .find_map(|m| by_mac.get(&m.to_ascii_lowercase()).copied().flatten())
                })
                .or_else(|| {
                    c.sandbox_key
                        .as_ref()
                        .and_then(|k| NetnsKey::of_path(k).ok())
                        .filter(|k| snap.netns_by_key(*k).is_some())
                })
        };
    }
    // container:<id> shares another's netns.
    let owners: Vec<(String, String, Option<NetnsKey>)> = containers
        .iter()
        .map(|c| (c.id.clone(), c.name.clone(), c.netns))
        .collect();
    for c in containers.iter_mut() {
        if let Some(other) = c.network_mode.strip_prefix("container:") {
            if let Some((_, name, key)) = owners
                .iter()
                .find(|(id, name, _)| id.starts_with(other) || name == other)
            {
                c.shares_netns_of = Some(name.clone());
                if c.is_running() && c.netns.is_none() {
                    c.netns = *key;
                }
            }
        }
    }
    // What no daemon told us: containers seen only through their processes' cgroups.
    for ns in &snap.netns {
        for r in &ns.refs {
            let NetnsRef::Pid { pid, .. } = r else { continue };
            let Some(found) = cgroup::container_of_pid(*pid) else {
                continue;
            };
            if containers.iter().any(|c| c.id == found.id) {
                continue;
            }
            containers.push(Container {
                runtime: found.runtime.to_string(),
                name: found.id.get(..12).unwrap_or(&found.id).to_string(),
                id: found.id,
                state: "running".into(),
                pid: Some(*pid),
                network_mode: if ns.key == host {
                    "host".into()
                } else {
                    "unknown (no daemon answered)".into()
                },
                pod: found.pod,
                netns: Some(ns.key),
                ..Container::default()
            });
        }
    }
    containers
        .sort_by(|a, b| (a.runtime.as_str(), a.name.as_str()).cmp(&(b.runtime.as_str(), b.name.as_str())));
    snap.containers = containers;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_unix_endpoints_and_explains_the_rest() {
        assert_eq!(
            socket_of("unix:///run/docker.sock").unwrap(),
            PathBuf::from("/run/docker.sock")
        );
        assert_eq!(socket_of("/tmp/d.sock").unwrap(), PathBuf::from("/tmp/d.sock"));
        let e = socket_of("tcp://10.0.0.1:2375").unwrap_err();
        assert!(e.contains("unix socket"), "{e}");
    }
}
