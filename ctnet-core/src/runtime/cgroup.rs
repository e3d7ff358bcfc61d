//! Daemon-less attribution: which container a process belongs to, from the ids the
//! runtimes put in its cgroup path (`/proc/<pid>/cgroup`).
//!
//! ```text
//! docker       /docker/<64hex>                    docker-<64hex>.scope
//! containerd   cri-containerd-<64hex>.scope       /kubepods/.../pod<uid>/<64hex>
//! cri-o        crio-<64hex>.scope
//! podman       libpod-<64hex>.scope               /libpod_parent/libpod-<64hex>
//! ```

/// A container found through a cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupContainer {
    /// `docker`, `containerd`, `cri-o`, `podman`, or `kubernetes` (a kubepods path
    /// whose runtime prefix says nothing more).
    pub runtime: &'static str,
    /// The 64-hex container id.
    pub id: String,
    /// The Kubernetes pod uid, for kubepods cgroups.
    pub pod: Option<String>,
}

fn hex64(s: &str) -> Option<&str> {
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

/// Parse one cgroup path.
pub fn parse_path(path: &str) -> Option<CgroupContainer> {
    let pod = path
        .split('/')
        .find_map(|seg| {
            let seg = seg.strip_suffix(".slice").unwrap_or(seg);
            seg.rsplit_once("-pod")
                .map(|(_, uid)| uid)
                .or_else(|| seg.strip_prefix("pod"))
        })
        .filter(|_| path.contains("kubepods"))
        .map(|uid| uid.replace('_', "-"));
    for seg in path.split('/').rev() {
        let seg = seg.strip_suffix(".scope").unwrap_or(seg);
        for (prefix, runtime) in [
            ("docker-", "docker"),
            ("cri-containerd-", "containerd"),
            ("crio-", "cri-o"),
            ("libpod-", "podman"),
        ] {
            if let Some(id) = seg.strip_prefix(prefix).and_then(hex64) {
                return Some(CgroupContainer {
                    runtime,
                    id: id.into(),
                    pod,
                });
            }
        }
        if let Some(id) = hex64(seg) {
            let runtime = if path.contains("/docker/") {
                "docker"
            } else if path.contains("kubepods") {
                "kubernetes"
            } else {
                continue;
            };
            return Some(CgroupContainer {
                runtime,
                id: id.into(),
                pod,
            });
        }
    }
    None
}

/// The container a process belongs to, if its cgroup says so.
pub fn container_of_pid(pid: u32) -> Option<CgroupContainer> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find_map(parse_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "fde53445fb6e13d3c7a4dfd6b826e959a8b82dab0f5fa36ba751199b7328a542";

    #[test]
    fn recognises_each_runtime_s_cgroup_layout() {
        let cases = [
            (format!("/docker/{ID}"), "docker", None),
            (format!("/system.slice/docker-{ID}.scope"), "docker", None),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                "podman",
                None,
            ),
            (format!("/system.slice/crio-{ID}.scope"), "cri-o", None),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b_3c4d.slice/cri-containerd-{ID}.scope"
                ),
                "containerd",
                Some("1a2b-3c4d"),
            ),
            (
                format!("/kubepods/burstable/pod1a2b-3c4d/{ID}"),
                "kubernetes",
                Some("1a2b-3c4d"),
            ),
        ];
        for (path, runtime, pod) in cases {
            let c = parse_path(&path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(c.runtime, runtime, "{path}");
            assert_eq!(c.id, ID);
            assert_eq!(c.pod.as_deref(), pod, "{path}");
        }
    }

    #[test]
    fn ignores_cgroups_of_ordinary_processes() {
        for path in [
            "/",
            "/user.slice/user-1000.slice/session-2.scope",
            "/system.slice/sshd.service",
            "/docker",
        ] {
            assert_eq!(parse_path(path), None, "{path}");
        }
    }
}
