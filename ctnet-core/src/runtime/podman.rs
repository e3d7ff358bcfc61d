//! Podman without its API socket: the `podman` CLI's JSON, as root.
//!
//! Podman is daemonless and most hosts run no `podman.socket`, so a host's Podman
//! containers are known only to its store. ctnet asks Podman itself, three calls per
//! scan: `podman ps --all --format json` (names, image, state, pid, published ports, pod),
//! `podman container inspect` of the running ones (sandbox key, each network's address,
//! MAC and gateway) and `podman network ls --format json` (the bridge behind each
//! network: netavark's `network_interface`, `podman0` for the default network).
//!
//! It is asked only as root and only once Podman has run on this host since boot (its
//! runtime directory `/run/libpod` exists): `podman` run as another user, or on a host
//! where it never ran, would create a store rather than read one. The configuration is
//! Podman's own (`CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF` and the files they name are
//! honoured, because Podman reads them).
//!
//! Users' (rootless) stores are read the same way, by their own Podman: for each user
//! whose rootless Podman has run since boot (`/run/user/UID/libpod` exists, owned by
//! that user), root runs `setpriv --reuid UID --regid GID --clear-groups podman ...`
//! with the user's `HOME` and `XDG_RUNTIME_DIR`, so Podman reads that user's
//! configuration and store and nothing of root's. At most [`MAX_USERS`] users are asked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{Container, ContainerNetwork, PublishedPort};
use crate::runtime::Runtime;
use crate::tool::Cmd;

/// Where root's Podman keeps its runtime state (`tmp_dir`): present once Podman has run.
pub const RUNTIME_DIR: &str = "/run/libpod";

/// How long one `podman` call may take (a store locked by a hung Podman would otherwise
/// stop the scan).
const TIMEOUT: Duration = Duration::from_secs(10);

/// The most container ids inspected in one call (an argv stays far below the kernel's
/// limit).
const INSPECT_BATCH: usize = 200;

/// Where users' runtime directories are (`XDG_RUNTIME_DIR` of each, made by logind).
pub const USERS_RUNTIME_DIR: &str = "/run/user";

/// The most users whose rootless Podman is asked in one scan.
pub const MAX_USERS: usize = 16;

/// Root's Podman, or a user's rootless one, asked through its CLI.
#[derive(Debug, Clone)]
pub struct PodmanCli {
    exe: PathBuf,
    /// For a user's store: who, and how to run as them.
    user: Option<User>,
}

/// A user whose rootless Podman is asked.
#[derive(Debug, Clone)]
struct User {
    uid: u32,
    gid: u32,
    home: PathBuf,
    runtime_dir: PathBuf,
    setpriv: PathBuf,
}

impl PodmanCli {
    /// Root's Podman when it can be asked here: the `podman` program on the tool path,
    /// this process root, and Podman's runtime directory present.
    pub fn find() -> Option<Self> {
        if !nix::unistd::geteuid().is_root() || !Path::new(RUNTIME_DIR).is_dir() {
            return None;
        }
        crate::tool::find("podman", &crate::privilege::tool_path()).map(|exe| Self { exe, user: None })
    }

    /// Each user's rootless Podman that has run since boot, when this process is root:
    /// a directory `/run/user/UID/libpod` owned by UID, a user UID in the password
    /// database, and `setpriv` to become them.
    pub fn users() -> Vec<Self> {
        Self::users_in(Path::new(USERS_RUNTIME_DIR))
    }

    fn users_in(dir: &Path) -> Vec<Self> {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            return Vec::new();
        }
        let path = crate::privilege::tool_path();
        let (Some(exe), Some(setpriv)) = (
            crate::tool::find("podman", &path),
            crate::tool::find("setpriv", &path),
        ) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut uids: Vec<u32> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|uid| *uid != 0)
            .collect();
        uids.sort_unstable();
        uids.into_iter()
            .filter_map(|uid| {
                let runtime_dir = dir.join(uid.to_string());
                let libpod = std::fs::symlink_metadata(runtime_dir.join("libpod")).ok()?;
                let own = std::fs::symlink_metadata(&runtime_dir).ok()?;
                // Both the user's own: a directory planted by someone else is not asked about.
                if !libpod.is_dir() || libpod.uid() != uid || own.uid() != uid {
                    return None;
                }
                let u = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
                Some(Self {
                    exe: exe.clone(),
                    user: Some(User {
                        uid,
                        gid: u.gid.as_raw(),
                        home: u.dir,
                        runtime_dir,
                        setpriv: setpriv.clone(),
                    }),
                })
            })
            .take(MAX_USERS)
            .collect()
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let Some(u) = &self.user else {
            return Cmd::exe(&self.exe).args(args).timeout(TIMEOUT).run();
        };
        let (uid, gid) = (u.uid.to_string(), u.gid.to_string());
        let exe = self.exe.to_string_lossy().into_owned();
        Cmd::exe(&u.setpriv)
            .args(["--reuid", &uid, "--regid", &gid, "--clear-groups", "--", &exe])
            .args(args)
            .env("HOME", u.home.to_string_lossy())
            .env("XDG_RUNTIME_DIR", u.runtime_dir.to_string_lossy())
            .env_remove("CONTAINERS_CONF")
            .env_remove("CONTAINERS_STORAGE_CONF")
            .env_remove("CONTAINER_HOST")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .timeout(TIMEOUT)
            .run()
    }

    fn json<T: serde::de::DeserializeOwned>(&self, args: &[&str]) -> Result<T> {
        let text = self.run(args)?;
        super::docker::decode(text.as_bytes()).map_err(|e| Error::Tool {
            program: format!("podman {}", args.first().copied().unwrap_or_default()),
            detail: format!("its JSON was not understood: {e}"),
            kind: ErrorKind::Other,
        })
    }
}

/// One entry of `podman ps --all --format json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct PsEntry {
    id: String,
    names: Vec<String>,
    image: String,
    state: String,
    pid: u32,
    #[serde(deserialize_with = "super::docker::bounded::vec")]
    ports: Vec<PsPort>,
    pod_name: String,
}

/// A published port as `podman ps` lists it (`range` ports from `container_port` on).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PsPort {
    host_ip: String,
    container_port: u16,
    host_port: u16,
    range: u16,
    protocol: String,
}

/// The part of `podman container inspect` read here.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Inspect {
    id: String,
    network_settings: InspectNet,
    host_config: InspectHost,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct InspectNet {
    sandbox_key: String,
    #[serde(deserialize_with = "super::docker::bounded::opt_map")]
    networks: Option<BTreeMap<String, Endpoint>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct InspectHost {
    network_mode: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Endpoint {
    #[serde(rename = "IPAddress")]
    ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    ip_prefix_len: u8,
    mac_address: String,
    gateway: String,
}

/// One entry of `podman network ls --format json` (netavark's network config).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Network {
    name: String,
    driver: String,
    network_interface: String,
}

/// The most ports one published range expands to (a `-p 1000-65000:...` stays a line
/// per port only up to here; the rest of the range is not listed).
const MAX_RANGE: u16 = 1024;

fn ports(list: &[PsPort]) -> Vec<PublishedPort> {
    let mut out = Vec::new();
    for p in list {
        for i in 0..p.range.clamp(1, MAX_RANGE) {
            let (Some(c), Some(h)) = (p.container_port.checked_add(i), p.host_port.checked_add(i)) else {
                break;
            };
            out.push(PublishedPort {
                container_port: c,
                protocol: if p.protocol.is_empty() {
                    "tcp".into()
                } else {
                    p.protocol.clone()
                },
                // Podman lists "all addresses" as an empty host IP; Docker as 0.0.0.0.
                host_ip: Some(if p.host_ip.is_empty() {
                    "0.0.0.0".into()
                } else {
                    p.host_ip.clone()
                }),
                host_port: Some(h),
            });
        }
    }
    out
}

/// The containers of one `podman ps`, completed by the inspection of the running ones
/// and the networks' bridges.
fn containers_of(ps: Vec<PsEntry>, inspected: Vec<Inspect>, networks: Vec<Network>) -> Vec<Container> {
    let bridges: BTreeMap<String, String> = networks
        .into_iter()
        .filter(|n| n.driver == "bridge" && !n.network_interface.is_empty())
        .map(|n| (n.name, n.network_interface))
        .collect();
    let mut by_id: BTreeMap<String, Inspect> = inspected.into_iter().map(|i| (i.id.clone(), i)).collect();
    ps.into_iter()
        .filter(|e| !e.id.is_empty())
        .map(|e| {
            let running = e.state == "running" || e.state == "paused";
            let inspect = by_id.remove(&e.id).unwrap_or_default();
            let networks = inspect
                .network_settings
                .networks
                .unwrap_or_default()
                .into_iter()
                .map(|(name, ep)| ContainerNetwork {
                    bridge: bridges.get(&name).cloned(),
                    ip: ep.ip_address.parse().ok(),
                    prefix_len: ep.ip_prefix_len,
                    mac: (!ep.mac_address.is_empty()).then(|| ep.mac_address.to_ascii_lowercase()),
                    gateway: ep.gateway.parse().ok(),
                    name,
                })
                .collect();
            Container {
                runtime: "podman".into(),
                name: e
                    .names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| e.id.get(..12).unwrap_or(&e.id).to_string()),
                image: (!e.image.is_empty()).then(|| e.image.clone()),
                state: e.state.clone(),
                pid: Some(e.pid).filter(|p| running && *p > 0),
                sandbox_key: Some(inspect.network_settings.sandbox_key)
                    .filter(|k| running && !k.is_empty())
                    .map(PathBuf::from),
                network_mode: inspect.host_config.network_mode,
                networks,
                ports: ports(&e.ports),
                pod: (!e.pod_name.is_empty()).then(|| e.pod_name.clone()),
                id: e.id,
                ..Container::default()
            }
        })
        .collect()
}

impl Runtime for PodmanCli {
    fn kind(&self) -> &'static str {
        "podman"
    }

    fn endpoint(&self) -> String {
        match &self.user {
            None => format!("{} (CLI)", self.exe.display()),
            Some(u) => format!("{} (CLI, rootless, as uid {})", self.exe.display(), u.uid),
        }
    }

    fn containers(&self) -> Result<Vec<Container>> {
        let ps: Vec<PsEntry> = self.json(&["ps", "--all", "--format", "json"])?;
        // Only ids as Podman makes them go on the command line.
        let running: Vec<&str> = ps
            .iter()
            .filter(|e| e.state == "running" || e.state == "paused")
            .map(|e| e.id.as_str())
            .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
            .collect();
        let mut inspected: Vec<Inspect> = Vec::new();
        for batch in running.chunks(INSPECT_BATCH) {
            let mut args = vec!["container", "inspect"];
            args.extend_from_slice(batch);
            // A container that stops between the two calls fails the whole call: the
            // others are then tied by pid alone (the inspect only adds addresses).
            match self.json::<Vec<Inspect>>(&args) {
                Ok(i) => inspected.extend(i),
                Err(e) => log::debug!("podman container inspect: {e}"),
            }
        }
        let networks = if ps.is_empty() {
            Vec::new()
        } else {
            self.json::<Vec<Network>>(&["network", "ls", "--format", "json"])
                .unwrap_or_default()
        };
        let mut out = containers_of(ps, inspected, networks);
        if let Some(u) = &self.user {
            for c in &mut out {
                c.user = Some(u.uid);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Podman 4.3.1 (netavark) printed for a container `pweb` on the default
    /// network with `-p 8080:80`, trimmed to the fields read.
    const PS: &str = r#"[{"AutoRemove":false,"Command":["httpd","-f","-p","80"],"Exited":false,
      "Id":"cece9dbcfa1ea2342c1ed2fa90416cd352556972366b06fbd4dbc520f81fbc5a",
      "Image":"localhost/bbox:latest","IsInfra":false,"Labels":null,"Mounts":[],
      "Names":["pweb"],"Namespaces":{},"Networks":["podman"],"Pid":90,"Pod":"","PodName":"",
      "Ports":[{"host_ip":"","container_port":80,"host_port":8080,"range":1,"protocol":"tcp"}],
      "Size":null,"State":"running","Status":"Up 1 second ago"},
      {"Id":"15045080fe962007d303d6a9af44b9f1988acbaa0af5283e62e4a96f7559893f",
      "Image":"localhost/bbox:latest","Names":["pold"],"Pid":0,"Ports":null,"State":"exited"}]"#;
    const INSPECT: &str = r#"[{"Id":"cece9dbcfa1ea2342c1ed2fa90416cd352556972366b06fbd4dbc520f81fbc5a",
      "Name":"pweb","NetworkSettings":{"EndpointID":"","Gateway":"10.88.0.1","IPAddress":"10.88.0.2",
      "IPPrefixLen":16,"MacAddress":"9a:de:60:d3:67:af","Ports":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},
      "SandboxKey":"/run/netns/netns-2ebf9556-863c-df4f-1a8d-d6009b34edf0",
      "Networks":{"podman":{"EndpointID":"","Gateway":"10.88.0.1","IPAddress":"10.88.0.2",
      "IPPrefixLen":16,"MacAddress":"9A:DE:60:D3:67:AF","NetworkID":"podman","Aliases":["cece9dbcfa1e"]}}},
      "HostConfig":{"NetworkMode":"bridge"}}]"#;
    const NETS: &str = r#"[{"name":"pnet","id":"3cef","driver":"bridge","network_interface":"podman1",
      "subnets":[{"subnet":"10.77.0.0/24","gateway":"10.77.0.1"}]},
      {"name":"podman","id":"2f25","driver":"bridge","network_interface":"podman0"},
      {"name":"mv","driver":"macvlan","network_interface":"eth0"}]"#;

    #[test]
    fn podmans_json_becomes_containers_with_their_networks_bridges_and_ports() {
        let c = containers_of(
            serde_json::from_str(PS).unwrap(),
            serde_json::from_str(INSPECT).unwrap(),
            serde_json::from_str(NETS).unwrap(),
        );
        assert_eq!(c.len(), 2);
        let web = &c[0];
        assert_eq!((web.runtime.as_str(), web.name.as_str()), ("podman", "pweb"));
        assert_eq!(web.image.as_deref(), Some("localhost/bbox:latest"));
        assert_eq!(web.pid, Some(90));
        assert_eq!(
            web.sandbox_key.as_deref(),
            Some(Path::new("/run/netns/netns-2ebf9556-863c-df4f-1a8d-d6009b34edf0"))
        );
        assert_eq!(web.network_mode, "bridge");
        assert_eq!(web.networks.len(), 1);
        let n = &web.networks[0];
        assert_eq!(n.name, "podman");
        assert_eq!(n.bridge.as_deref(), Some("podman0"));
        assert_eq!(n.ip, Some("10.88.0.2".parse().unwrap()));
        assert_eq!(n.prefix_len, 16);
        assert_eq!(n.mac.as_deref(), Some("9a:de:60:d3:67:af"));
        assert_eq!(n.gateway, Some("10.88.0.1".parse().unwrap()));
        assert_eq!(
            web.ports,
            vec![PublishedPort {
                container_port: 80,
                protocol: "tcp".into(),
                host_ip: Some("0.0.0.0".into()),
                host_port: Some(8080),
            }]
        );
        let old = &c[1];
        assert_eq!((old.name.as_str(), old.state.as_str()), ("pold", "exited"));
        assert_eq!((old.pid, old.sandbox_key.as_ref()), (None, None));
        assert!(old.networks.is_empty() && old.ports.is_empty());
    }

    #[test]
    fn a_published_range_is_one_port_per_line_up_to_a_bound() {
        let one = |range| PsPort {
            host_ip: "127.0.0.1".into(),
            container_port: 8000,
            host_port: 9000,
            range,
            protocol: "udp".into(),
        };
        let p = ports(&[one(3)]);
        assert_eq!(
            p.iter()
                .map(|p| (p.container_port, p.host_port.unwrap()))
                .collect::<Vec<_>>(),
            [(8000, 9000), (8001, 9001), (8002, 9002)]
        );
        assert!(
            p.iter()
                .all(|p| p.protocol == "udp" && p.host_ip.as_deref() == Some("127.0.0.1"))
        );
        assert_eq!(ports(&[one(u16::MAX)]).len(), MAX_RANGE as usize);
        // Near the top of the port space the range stops rather than wraps.
        let top = PsPort {
            container_port: 65534,
            host_port: 65534,
            range: 5,
            ..one(0)
        };
        assert_eq!(ports(&[top]).len(), 2);
    }

    #[test]
    fn output_that_is_not_podmans_json_is_an_error_naming_the_call() {
        // A real program whose output is not JSON: echo prints its arguments.
        let not_podman = PodmanCli {
            exe: "/bin/echo".into(),
            user: None,
        };
        let e = not_podman
            .json::<Vec<PsEntry>>(&["ps", "--all", "--format", "json"])
            .unwrap_err();
        assert!(e.to_string().contains("podman ps"), "{e}");
        // As a user, through setpriv: echo prints setpriv's arguments too, still not JSON.
        let as_user = PodmanCli {
            exe: "/bin/echo".into(),
            user: Some(User {
                uid: 65534,
                gid: 65534,
                home: "/nonexistent".into(),
                runtime_dir: "/run/user/65534".into(),
                setpriv: "/bin/echo".into(),
            }),
        };
        let text = as_user.run(&["ps"]).unwrap();
        assert_eq!(
            text.trim(),
            "--reuid 65534 --regid 65534 --clear-groups -- /bin/echo ps"
        );
        assert!(e.to_string().contains("not understood"), "{e}");
    }
}
