//! Pods and containers whose network a CNI plugin chain made, from libcni's result
//! cache (`/var/lib/cni/results/<network>-<containerId>-<ifname>`).
//!
//! Every runtime that calls CNI through libcni (containerd's CRI plugin for kubelet,
//! `ctr run --cni`, nerdctl, CRI-O, Podman with CNI) writes one file per interface it
//! added: `kind: cniCacheV1`, the container id, the interface, the network's name, the
//! CNI args the runtime passed (kubelet's path: `K8S_POD_NAMESPACE`, `K8S_POD_NAME`,
//! `K8S_POD_UID`) and the plugins' result (the interfaces with their MACs and the
//! sandbox, the addresses and gateways). The file stays until the runtime calls CNI DEL,
//! so an entry whose sandbox is gone is kept as a container that is not running.
//!
//! ```text
//! {"kind":"cniCacheV1","containerId":"default-pod1","ifName":"eth0","networkName":"pods",
//!  "cniArgs":[["K8S_POD_NAMESPACE","shop"],["K8S_POD_NAME","web"]],
//!  "result":{"interfaces":[{"name":"cni0","mac":".."},{"name":"veth12ab","mac":".."},
//!                          {"name":"eth0","mac":"..","sandbox":"/var/run/netns/cni-.."}],
//!            "ips":[{"address":"10.22.0.2/24","gateway":"10.22.0.1","interface":2}]}}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Result;
use crate::model::{Container, ContainerNetwork};
use crate::runtime::Runtime;

/// Where libcni keeps its results.
pub const RESULTS_DIR: &str = "/var/lib/cni/results";

/// The most cache files read (a node runs at most a few hundred pods, each with a file
/// per interface).
const MAX_FILES: usize = 8192;

/// The largest cache file read (one holds a base64 network config and a result: a few
/// KiB).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// libcni's result cache of this host.
#[derive(Debug, Clone)]
pub struct CniCache {
    dir: PathBuf,
}

impl CniCache {
    /// The cache in its standard place, when it exists.
    pub fn find() -> Option<Self> {
        Self::at(Path::new(RESULTS_DIR))
    }

    /// A cache in `dir`, when it is a directory.
    pub fn at(dir: &Path) -> Option<Self> {
        dir.is_dir().then(|| Self {
            dir: dir.to_path_buf(),
        })
    }
}

/// One cache file, the fields read.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Entry {
    kind: String,
    container_id: String,
    if_name: String,
    network_name: String,
    cni_args: Vec<(String, String)>,
    /// What the runtime asked of the plugins' capabilities: the `portMappings` the
    /// portmap plugin DNATs (kubelet's `hostPort`s, nerdctl's `-p`).
    capability_args: CapabilityArgs,
    result: CniResult,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CapabilityArgs {
    port_mappings: Vec<PortMapping>,
}

/// One of libcni's `portMappings` (the portmap plugin's runtime config).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PortMapping {
    host_port: u16,
    container_port: u16,
    protocol: String,
    #[serde(rename = "hostIP")]
    host_ip: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CniResult {
    interfaces: Vec<Iface>,
    ips: Vec<IpConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Iface {
    name: String,
    mac: String,
    sandbox: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IpConfig {
    address: String,
    gateway: String,
    interface: Option<usize>,
}

impl Entry {
    fn arg(&self, key: &str) -> Option<&str> {
        self.cni_args
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// `namespace/name` of the Kubernetes pod, when the runtime passed them.
    fn pod(&self) -> Option<String> {
        Some(format!(
            "{}/{}",
            self.arg("K8S_POD_NAMESPACE")?,
            self.arg("K8S_POD_NAME")?
        ))
    }

    /// The container's interface of this entry: the one in a sandbox named `ifName`,
    /// else the first in a sandbox.
    fn sandboxed(&self) -> Option<(usize, &Iface)> {
        let ifaces = self.result.interfaces.iter().enumerate();
        ifaces
            .clone()
            .find(|(_, i)| !i.sandbox.is_empty() && i.name == self.if_name)
            .or_else(|| ifaces.clone().find(|(_, i)| !i.sandbox.is_empty()))
    }

    /// The network as the container sees it.
    fn network(&self) -> ContainerNetwork {
        let inside = self.sandboxed();
        // The address of the sandboxed interface (or the only one listed).
        let ip = self
            .result
            .ips
            .iter()
            .find(|ip| ip.interface.is_some() && ip.interface == inside.map(|(i, _)| i))
            .or_else(|| self.result.ips.first());
        let (addr, prefix_len) = ip
            .and_then(|ip| ip.address.split_once('/'))
            .map_or((None, 0), |(a, p)| (a.parse().ok(), p.parse().unwrap_or(0)));
        // The bridge plugin lists the bridge, then the host veth, then the container's
        // interface; ptp, macvlan and ipvlan list no bridge.
        let outside: Vec<&Iface> = self
            .result
            .interfaces
            .iter()
            .filter(|i| i.sandbox.is_empty())
            .collect();
        ContainerNetwork {
            name: self.network_name.clone(),
            bridge: (outside.len() >= 2).then(|| outside[0].name.clone()),
            ip: addr,
            prefix_len,
            mac: inside
                .map(|(_, i)| i.mac.to_ascii_lowercase())
                .filter(|m| !m.is_empty()),
            gateway: ip.and_then(|ip| ip.gateway.parse().ok()),
        }
    }
}

/// The pid a `/proc/<pid>/ns/net` sandbox names.
fn pid_of_sandbox(sandbox: &str) -> Option<u32> {
    sandbox
        .strip_prefix("/proc/")?
        .strip_suffix("/ns/net")?
        .parse()
        .ok()
}

/// The containers of the cache entries, one per container id (its networks in the
/// order of their files' names).
fn containers_of(entries: Vec<Entry>, exists: impl Fn(&Path) -> bool) -> Vec<Container> {
    let mut by_id: BTreeMap<String, Container> = BTreeMap::new();
    for e in entries {
        if e.kind != "cniCacheV1" || e.container_id.is_empty() {
            continue;
        }
        let sandbox = e.sandboxed().map(|(_, i)| i.sandbox.clone()).unwrap_or_default();
        let pod = e.pod();
        let network = e.network();
        let c = by_id.entry(e.container_id.clone()).or_insert_with(|| {
            let pid = pid_of_sandbox(&sandbox);
            let alive = !sandbox.is_empty() && exists(Path::new(&sandbox));
            Container {
                runtime: if pod.is_some() { "kubernetes" } else { "cni" }.into(),
                id: e.container_id.clone(),
                name: pod.clone().unwrap_or_else(|| e.container_id.clone()),
                // A result outlives its sandbox when the runtime never called CNI DEL.
                state: if alive { "running" } else { "exited" }.into(),
                pid: pid.filter(|_| alive),
                sandbox_key: (alive && pid.is_none()).then(|| PathBuf::from(&sandbox)),
                network_mode: e.network_name.clone(),
                pod: pod.clone(),
                ..Container::default()
            }
        });
        c.networks.push(network);
        for m in &e.capability_args.port_mappings {
            if m.container_port == 0 {
                continue;
            }
            let port = crate::model::PublishedPort {
                container_port: m.container_port,
                protocol: if m.protocol.is_empty() {
                    "tcp".into()
                } else {
                    m.protocol.to_lowercase()
                },
                // The portmap plugin's empty hostIP is every address, as Docker's 0.0.0.0.
                host_ip: Some(if m.host_ip.is_empty() {
                    "0.0.0.0".into()
                } else {
                    m.host_ip.clone()
                }),
                host_port: (m.host_port != 0).then_some(m.host_port),
            };
            if !c.ports.contains(&port) {
                c.ports.push(port);
            }
        }
    }
    by_id.into_values().collect()
}

impl Runtime for CniCache {
    fn kind(&self) -> &'static str {
        "cni"
    }

    fn endpoint(&self) -> String {
        self.dir.display().to_string()
    }

    fn containers(&self) -> Result<Vec<Container>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| crate::error::Error::io("listing", &self.dir, e))?
            .filter_map(|d| d.ok().map(|d| d.path()))
            .take(MAX_FILES)
            .collect();
        names.sort();
        let mut entries = Vec::with_capacity(names.len());
        for path in names {
            // A file that is not libcni's (or vanished, or too large) is passed over:
            // the others still name their pods.
            let parsed = crate::model::read_regular_file(&path, MAX_FILE_BYTES).and_then(|bytes| {
                super::docker::decode::<Entry>(&bytes)
                    .map_err(|e| crate::error::Error::Invalid(format!("{}: {e}", crate::text::path(&path))))
            });
            match parsed {
                Ok(e) => entries.push(e),
                Err(e) => log::debug!("cni cache: {e}"),
            }
        }
        let mut out = containers_of(entries, Path::exists);
        if let Some(ctr) = Containerd::find() {
            ctr.label(&mut out);
        }
        Ok(out)
    }
}

/// The most containers whose labels are asked of containerd per scan (one `ctr` call
/// each).
const MAX_LABEL_LOOKUPS: usize = 32;

/// containerd, asked through `ctr` for the labels of the containers `ctr run --cni`
/// networked: their cache entries carry no CNI args, and their ids are
/// `<namespace>-<id>`. Kubelet's pod labels (`io.kubernetes.pod.namespace`,
/// `io.kubernetes.pod.name`) name the pod. As root only, at `CONTAINERD_ADDRESS` (the
/// variable `ctr` itself reads) or `/run/containerd/containerd.sock`.
struct Containerd {
    exe: PathBuf,
    address: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CtrInfo {
    #[serde(deserialize_with = "super::docker::bounded::opt_map")]
    labels: Option<BTreeMap<String, String>>,
}

/// A namespace or id `ctr` may be given: containerd's own rule for both (it starts
/// with a letter or digit, so it is never read as an option).
fn plain(s: &str) -> bool {
    s.len() <= 76
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Containerd {
    fn find() -> Option<Self> {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let address = std::env::var_os("CONTAINERD_ADDRESS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run/containerd/containerd.sock"));
        if !address.exists() {
            return None;
        }
        let exe = crate::tool::find("ctr", &crate::privilege::tool_path())?;
        Some(Self { exe, address })
    }

    fn ctr(&self, args: &[&str]) -> Result<String> {
        let address = self.address.to_string_lossy().into_owned();
        crate::tool::Cmd::exe(&self.exe)
            .args(["--address", address.as_str()])
            .args(args)
            .timeout(std::time::Duration::from_secs(5))
            .run()
    }

    /// Name the unnamed containers by their pod labels; the others keep their ids and
    /// become containerd's.
    fn label(&self, containers: &mut [Container]) {
        let namespaces: Vec<String> = match self.ctr(&["namespaces", "ls", "-q"]) {
            Ok(text) => text
                .lines()
                .map(str::trim)
                .filter(|n| plain(n))
                .map(String::from)
                .collect(),
            Err(e) => {
                log::debug!("ctr namespaces ls: {e}");
                return;
            }
        };
        let unnamed = containers
            .iter_mut()
            .filter(|c| c.runtime == "cni" && c.pod.is_none());
        for c in unnamed.take(MAX_LABEL_LOOKUPS) {
            let Some((ns, id)) = namespaces
                .iter()
                .filter_map(|ns| Some((ns.as_str(), c.id.strip_prefix(ns.as_str())?.strip_prefix('-')?)))
                .find(|(_, id)| plain(id))
            else {
                continue;
            };
            let info = self
                .ctr(&["--namespace", ns, "containers", "info", id])
                .and_then(|text| {
                    super::docker::decode::<CtrInfo>(text.as_bytes())
                        .map_err(|e| crate::error::Error::Invalid(format!("ctr containers info {id}: {e}")))
                });
            let labels = match info {
                Ok(i) => i.labels.unwrap_or_default(),
                Err(e) => {
                    log::debug!("{e}");
                    continue;
                }
            };
            let pod = labels
                .get("io.kubernetes.pod.namespace")
                .zip(labels.get("io.kubernetes.pod.name"))
                .map(|(n, p)| format!("{n}/{p}"));
            c.runtime = if pod.is_some() { "kubernetes" } else { "containerd" }.into();
            c.name = pod.clone().unwrap_or_else(|| id.to_string());
            c.pod = pod;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `ctr run --cni` (containerd 1.6, Debian's CNI plugins: bridge, host-local,
    /// portmap) wrote for container `pod1` in namespace `default`, its config elided.
    const CTR: &str = r#"{"kind":"cniCacheV1","containerId":"default-pod1","config":"eyJ9",
      "ifName":"eth0","networkName":"ctnet-pods","result":{"cniVersion":"0.4.0","dns":{},
      "interfaces":[{"mac":"72:61:c1:a8:e5:ce","name":"cni0"},{"mac":"6e:3e:3d:cd:6b:76","name":"vethcf93225f"},
      {"mac":"E2:E7:44:D5:1E:9B","name":"eth0","sandbox":"/proc/56/ns/net"}],
      "ips":[{"address":"10.22.0.2/24","gateway":"10.22.0.1","interface":2,"version":"4"}],
      "routes":[{"dst":"0.0.0.0/0"}]}}"#;

    /// The same on kubelet's path: the CNI args name the pod, the sandbox is a named
    /// netns, and a second network (a ptp plugin: no bridge) adds `net1`.
    const CRI: &str = r#"{"kind":"cniCacheV1","containerId":"4f2a","ifName":"eth0","networkName":"pods",
      "cniArgs":[["IgnoreUnknown","1"],["K8S_POD_NAMESPACE","shop"],["K8S_POD_NAME","web"],["K8S_POD_UID","u1"]],
      "result":{"interfaces":[{"name":"cni0","mac":"aa:00:00:00:00:01"},{"name":"veth1","mac":"aa:00:00:00:00:02"},
      {"name":"eth0","mac":"aa:00:00:00:00:03","sandbox":"/var/run/netns/cni-1"}],
      "ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1","interface":2}]}}"#;
    const CRI2: &str = r#"{"kind":"cniCacheV1","containerId":"4f2a","ifName":"net1","networkName":"side",
      "cniArgs":[["K8S_POD_NAMESPACE","shop"],["K8S_POD_NAME","web"]],
      "result":{"interfaces":[{"name":"vethp","mac":"aa:00:00:00:00:04"},
      {"name":"net1","mac":"aa:00:00:00:00:05","sandbox":"/var/run/netns/cni-1"}],
      "ips":[{"address":"192.168.9.2/32","interface":1}]}}"#;

    fn entry(text: &str) -> Entry {
        super::super::docker::decode(text.as_bytes()).unwrap()
    }

    #[test]
    fn a_ctr_result_is_a_container_tied_by_its_pid() {
        let c = containers_of(vec![entry(CTR)], |p| p == Path::new("/proc/56/ns/net"));
        assert_eq!(c.len(), 1);
        let c = &c[0];
        assert_eq!(
            (c.runtime.as_str(), c.name.as_str(), c.id.as_str()),
            ("cni", "default-pod1", "default-pod1")
        );
        assert_eq!(
            (c.state.as_str(), c.pid, c.sandbox_key.as_ref()),
            ("running", Some(56), None)
        );
        assert_eq!(c.pod, None);
        let n = &c.networks[0];
        assert_eq!(n.name, "ctnet-pods");
        assert_eq!(n.bridge.as_deref(), Some("cni0"));
        assert_eq!(n.mac.as_deref(), Some("e2:e7:44:d5:1e:9b"));
        assert_eq!((n.ip, n.prefix_len), (Some("10.22.0.2".parse().unwrap()), 24));
        assert_eq!(n.gateway, Some("10.22.0.1".parse().unwrap()));
    }

    #[test]
    fn kubelets_args_name_the_pod_and_its_networks_join_in_one_container() {
        let c = containers_of(vec![entry(CRI), entry(CRI2)], |_| true);
        assert_eq!(c.len(), 1);
        let c = &c[0];
        assert_eq!((c.runtime.as_str(), c.name.as_str()), ("kubernetes", "shop/web"));
        assert_eq!(c.pod.as_deref(), Some("shop/web"));
        assert_eq!(c.sandbox_key.as_deref(), Some(Path::new("/var/run/netns/cni-1")));
        assert_eq!(c.pid, None);
        assert_eq!(c.networks.len(), 2);
        let side = &c.networks[1];
        assert_eq!((side.name.as_str(), side.bridge.as_deref()), ("side", None));
        assert_eq!(side.mac.as_deref(), Some("aa:00:00:00:00:05"));
        assert_eq!(
            (side.ip, side.prefix_len, side.gateway),
            (Some("192.168.9.2".parse().unwrap()), 32, None)
        );
    }

    #[test]
    fn the_port_mappings_the_runtime_asked_portmap_for_are_published_ports() {
        let with_ports = CRI.replace(
            r#""cniArgs""#,
            r#""capabilityArgs":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":""},
              {"hostPort":5353,"containerPort":53,"protocol":"UDP","hostIP":"127.0.0.1"},{"containerPort":0}]},"cniArgs""#,
        );
        let c = containers_of(vec![entry(&with_ports), entry(CRI2)], |_| true);
        let ports: Vec<_> = c[0]
            .ports
            .iter()
            .map(|p| {
                (
                    p.host_ip.as_deref(),
                    p.host_port,
                    p.container_port,
                    p.protocol.as_str(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                (Some("0.0.0.0"), Some(8080), 80, "tcp"),
                (Some("127.0.0.1"), Some(5353), 53, "udp")
            ]
        );
        assert!(containers_of(vec![entry(CRI)], |_| true)[0].ports.is_empty());
    }

    #[test]
    fn a_result_whose_sandbox_is_gone_is_not_running_and_foreign_files_are_passed_over() {
        let c = containers_of(
            vec![entry(CRI), entry(r#"{"kind":"other","containerId":"x"}"#)],
            |_| false,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].state.as_str(), c[0].sandbox_key.as_ref(), c[0].pid),
            ("exited", None, None)
        );
        assert!(!c[0].is_running());
    }

    #[test]
    fn only_names_as_containerd_makes_them_reach_ctrs_command_line() {
        for ok in ["default", "k8s.io", "pod_1-a"] {
            assert!(plain(ok), "{ok}");
        }
        for bad in ["", "-x", "a b", "a/b", "a\nb", &"x".repeat(77)] {
            assert!(!plain(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_cache_directory_is_read_file_by_file() {
        let dir = std::env::temp_dir().join(format!("ctnet-cni-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pods-4f2a-eth0"), CRI).unwrap();
        std::fs::write(dir.join("side-4f2a-net1"), CRI2).unwrap();
        std::fs::write(dir.join("broken"), "{not json").unwrap();
        std::fs::create_dir(dir.join("a-directory")).unwrap();
        let c = CniCache::at(&dir).unwrap().containers().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].networks.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["pods", "side"]
        );
        assert!(CniCache::at(Path::new("/nonexistent/cni")).is_none());
    }
}
