//! The Docker Engine API (and Podman's Docker-compatible API) over a unix socket: a
//! small blocking HTTP/1.1 client and the typed subset of the API ctnet reads.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{Container, ContainerNetwork, PublishedPort};
use crate::runtime::Runtime;

/// The largest answer read from a daemon (a list of thousands of containers is a few MB).
const MAX_BODY: usize = 64 << 20;

/// How long one API call may take before the daemon is called unresponsive.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A Docker-API endpoint.
#[derive(Debug, Clone)]
pub struct DockerApi {
    socket: PathBuf,
    kind: &'static str,
}

fn api_error(kind: &'static str, socket: &std::path::Path, e: std::io::Error) -> Error {
    let hint = match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            " (permission denied: run as root or as a member of the group owning {})",
            socket.display()
        ),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            format!(" (is the {kind} daemon running?)")
        }
        _ => String::new(),
    };
    Error::Tool {
        program: format!("{kind} API at {}", socket.display()),
        detail: format!("{e}{hint}"),
        kind: match e.kind() {
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::Unsupported,
        },
    }
}

/// Split an HTTP/1.1 response into status and body (Content-Length or chunked).
pub fn read_response(stream: impl Read) -> std::io::Result<(u16, Vec<u8>)> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("0").trim(), 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {line:?}")))?;
            if body.len() + size > MAX_BODY {
                return Err(std::io::Error::other("answer larger than 64 MiB"));
            }
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(std::io::Error::other("answer larger than 64 MiB"));
        }
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok((status, body))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListEntry {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    image: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    host_config: HostConfig,
    #[serde(default)]
    network_settings: NetworkSettings,
    #[serde(default)]
    ports: Vec<PortEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HostConfig {
    #[serde(default)]
    network_mode: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkSettings {
    #[serde(default)]
    networks: Option<BTreeMap<String, Endpoint>>,
    #[serde(default)]
    sandbox_key: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Endpoint {
    #[serde(default, rename = "NetworkID")]
    network_id: String,
    #[serde(default, rename = "IPAddress")]
    ip_address: String,
    #[serde(default, rename = "IPPrefixLen")]
    ip_prefix_len: u8,
    #[serde(default)]
    mac_address: String,
    #[serde(default)]
    gateway: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PortEntry {
    #[serde(default, rename = "IP")]
    ip: Option<String>,
    private_port: u16,
    #[serde(default)]
    public_port: Option<u16>,
    #[serde(default, rename = "Type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    state: InspectState,
    #[serde(default)]
    network_settings: NetworkSettings,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectState {
    #[serde(default)]
    pid: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkEntry {
    id: String,
    #[serde(default)]
    driver: String,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
}

impl DockerApi {
    /// An API endpoint at `socket`; `kind` is `docker` or `podman`.
    pub fn new(socket: PathBuf, kind: &'static str) -> Self {
        Self { socket, kind }
    }

    /// `GET path`, JSON-decoded. 404 becomes `NotFound`.
    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let mut s = UnixStream::connect(&self.socket).map_err(|e| api_error(self.kind, &self.socket, e))?;
        let _ = s.set_read_timeout(Some(TIMEOUT));
        let _ = s.set_write_timeout(Some(TIMEOUT));
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: ctnet\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .map_err(|e| api_error(self.kind, &self.socket, e))?;
        let (status, body) = read_response(&s).map_err(|e| api_error(self.kind, &self.socket, e))?;
        if status == 404 {
            return Err(Error::Tool {
                program: format!("{} API", self.kind),
                detail: format!("GET {path}: not found"),
                kind: ErrorKind::NotFound,
            });
        }
        if status != 200 {
            return Err(Error::Tool {
                program: format!("{} API", self.kind),
                detail: format!(
                    "GET {path}: HTTP {status}: {}",
                    String::from_utf8_lossy(&body).trim()
                ),
                kind: ErrorKind::Other,
            });
        }
        serde_json::from_slice(&body).map_err(|e| Error::Tool {
            program: format!("{} API", self.kind),
            detail: format!("GET {path}: unexpected answer: {e}"),
            kind: ErrorKind::Other,
        })
    }

    /// Linux bridge of each bridge-driver network, by network id.
    fn bridges(&self) -> Result<BTreeMap<String, String>> {
        let nets: Vec<NetworkEntry> = self.get("/networks")?;
        Ok(nets
            .into_iter()
            .filter(|n| n.driver == "bridge")
            .map(|n| {
                let name = n
                    .options
                    .as_ref()
                    .and_then(|o| o.get("com.docker.network.bridge.name").cloned())
                    .unwrap_or_else(|| format!("br-{}", n.id.get(..12).unwrap_or(&n.id)));
                (n.id, name)
            })
            .collect())
    }
}

fn parse_ip(s: &str) -> Option<std::net::IpAddr> {
    s.parse().ok()
}

impl Runtime for DockerApi {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn endpoint(&self) -> String {
        self.socket.display().to_string()
    }

    fn containers(&self) -> Result<Vec<Container>> {
        let list: Vec<ListEntry> = self.get("/containers/json?all=1")?;
        let bridges = self.bridges().unwrap_or_default();
        let mut out = Vec::with_capacity(list.len());
        for e in list {
            let running = e.state == "running" || e.state == "paused";
            // The list has no pid or sandbox key. A container with a MAC on some network
            // is tied to its netns by that MAC; only the others (`none`, or no endpoint
            // yet) are inspected, so a host with hundreds of containers costs one call.
            let has_mac = e
                .network_settings
                .networks
                .as_ref()
                .is_some_and(|n| n.values().any(|ep| !ep.mac_address.is_empty()));
            let shares =
                e.host_config.network_mode.starts_with("container:") || e.host_config.network_mode == "host";
            let inspect: Option<Inspect> = if running && !has_mac && !shares {
                self.get(&format!("/containers/{}/json", e.id)).ok()
            } else {
                None
            };
            let nets: BTreeMap<String, Endpoint> = inspect
                .as_ref()
                .and_then(|i| i.network_settings.networks.clone())
                .or_else(|| e.network_settings.networks.clone())
                .unwrap_or_default();
            out.push(Container {
                runtime: self.kind.into(),
                name: e
                    .names
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_else(|| e.id.get(..12).unwrap_or(&e.id).to_string()),
                image: (!e.image.is_empty()).then(|| e.image.clone()),
                state: e.state.clone(),
                pid: inspect.as_ref().map(|i| i.state.pid).filter(|p| *p > 0),
                sandbox_key: inspect
                    .as_ref()
                    .map(|i| i.network_settings.sandbox_key.clone())
                    .filter(|k| !k.is_empty())
                    .map(PathBuf::from),
                network_mode: e.host_config.network_mode.clone(),
                networks: nets
                    .into_iter()
                    .filter(|(name, _)| name != "none" && name != "host")
                    .map(|(name, ep)| ContainerNetwork {
                        bridge: bridges.get(&ep.network_id).cloned(),
                        ip: parse_ip(&ep.ip_address),
                        prefix_len: ep.ip_prefix_len,
                        mac: (!ep.mac_address.is_empty()).then(|| ep.mac_address.to_ascii_lowercase()),
                        gateway: parse_ip(&ep.gateway),
                        name,
                    })
                    .collect(),
                ports: e
                    .ports
                    .iter()
                    .map(|p| PublishedPort {
                        container_port: p.private_port,
                        protocol: p.kind.clone(),
                        host_ip: p.ip.clone(),
                        host_port: p.public_port,
                    })
                    .collect(),
                id: e.id,
                ..Container::default()
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_length_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]";
        assert_eq!(read_response(&plain[..]).unwrap(), (200, b"[]".to_vec()));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n";
        assert_eq!(read_response(&chunked[..]).unwrap(), (200, b"[1,2]".to_vec()));
        let missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 40\r\n\r\n{\"message\":\"No such container: nosuch\"}\n";
        assert_eq!(read_response(&missing[..]).unwrap().0, 404);
        assert!(read_response(&b"garbage"[..]).is_err());
    }

    #[test]
    fn decodes_the_container_list_of_docker_20_10() {
        // As /containers/json?all=1 answered on Debian's docker.io 20.10.
        let body = r#"[{"Id":"96d0976f74e0e1fc2cc2101150affec3411fd39147935081b50fe386d508318d","Names":["/side1"],"Image":"bb:t","State":"running","HostConfig":{"NetworkMode":"container:fde53445fb6e"},"NetworkSettings":{"Networks":{}},"Ports":[]},
          {"Id":"fde53445fb6e13d3c7a4dfd6b826e959a8b82dab0f5fa36ba751199b7328a542","Names":["/web1"],"Image":"bb:t","State":"running","HostConfig":{"NetworkMode":"default"},"NetworkSettings":{"Networks":{"bridge":{"NetworkID":"43171eb53cd9","EndpointID":"3083","Gateway":"172.17.0.1","IPAddress":"172.17.0.2","IPPrefixLen":16,"MacAddress":"02:42:ac:11:00:02"}}},"Ports":[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}]}]"#;
        let list: Vec<ListEntry> = serde_json::from_str(body).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].host_config.network_mode, "container:fde53445fb6e");
        let web = &list[1];
        let ep = &web.network_settings.networks.as_ref().unwrap()["bridge"];
        assert_eq!((ep.ip_address.as_str(), ep.ip_prefix_len), ("172.17.0.2", 16));
        assert_eq!(web.ports[0].public_port, Some(8080));
    }
}
