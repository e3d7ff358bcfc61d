//! A real containerd (Debian `containerd` 1.6) with Debian's CNI plugins, inside its own
//! network, mount, pid and uts namespaces with a private `/run`, `/etc/cni` and
//! `/var/lib/cni` (where libcni reads its config and writes its result cache, as on a
//! node). Containers are started with `ctr run --cni`, which calls the plugin chain
//! through libcni as a runtime does. Torn down on drop. Needs root; under CI a test that
//! cannot start it fails.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

#[path = "namespaces.rs"]
mod namespaces;
use namespaces::Namespaces;
use std::time::{Duration, Instant};

/// A private containerd node.
pub struct Node {
    dir: PathBuf,
    ns: Namespaces,
}

/// The node's resolver (NXDOMAIN for every name, on every address): a pod's nameserver.
const RESOLVER: &str = include_str!("dns.py");

/// The CNI network every container joins: a bridge `cni0`, host-local addresses,
/// portmap.
const CONFLIST: &str = r#"{"cniVersion":"0.4.0","name":"ctnet-pods","plugins":[
 {"type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":true,
  "ipam":{"type":"host-local","ranges":[[{"subnet":"10.22.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}
"#;

impl Node {
    /// Start one, or say why it cannot run here (`Err`).
    pub fn start() -> Result<Self, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("a real containerd needs root".into());
        }
        for (tool, package) in [
            ("/usr/bin/containerd", "containerd"),
            ("/usr/bin/ctr", "containerd"),
            ("/usr/lib/cni/bridge", "containernetworking-plugins"),
            ("/bin/busybox", "busybox-static"),
        ] {
            if !Path::new(tool).exists() {
                return Err(format!("{tool} is missing (install {package})"));
            }
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Short: containerd's socket lives below it (unix socket paths stop at 107 bytes).
        let dir = PathBuf::from(format!("/tmp/ctc{}x{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs/bin")).map_err(|e| e.to_string())?;
        std::fs::copy("/bin/busybox", dir.join("rootfs/bin/busybox")).map_err(|e| e.to_string())?;
        for applet in ["sh", "sleep", "ip", "ping"] {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("rootfs/bin").join(applet));
        }
        let d = dir.display();
        let write =
            |name: &str, text: String| std::fs::write(dir.join(name), text).map_err(|e| e.to_string());
        write(
            "config.toml",
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n[grpc]\n  address = \"{d}/c.sock\"\n"
            ),
        )?;
        write("ctnet-pods.conflist", CONFLIST.into())?;
        write("dns.py", RESOLVER.into())?;
        // The mount points exist on a node with the packages installed; made when not.
        write(
            "start.sh",
            format!(
                "set -e\n\
                 hostname containerd-node\n\
                 mkdir -p /etc/cni /var/lib/cni /etc/netns\n\
                 mount -t tmpfs tmpfs /run\n\
                 mount -t tmpfs tmpfs /etc/cni\n\
                 mount -t tmpfs tmpfs /var/lib/cni\n\
                 mount -t tmpfs tmpfs /etc/netns\n\
                 mkdir -p /run/netns /etc/cni/net.d\n\
                 cp {d}/ctnet-pods.conflist /etc/cni/net.d/10-ctnet-pods.conflist\n\
                 ip link set lo up\n\
                 python3 {d}/dns.py >{d}/dns.log 2>&1 &\n\
                 containerd --config {d}/config.toml >{d}/containerd.log 2>&1 &\n\
                 touch /run/.ctnet-containerd-node\n\
                 wait\n"
            ),
        )?;
        let ns = Namespaces::start(&dir.join("start.sh"))?;
        let node = Self { dir, ns };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !node.ctr(&["version"]).status.success() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(node.dir.join("containerd.log")).unwrap_or_default();
                return Err(format!("containerd did not come up in 30 s:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(node)
    }

    /// Run a command inside the namespaces, with `CONTAINERD_ADDRESS` naming this
    /// containerd (as `ctr` reads it).
    pub fn inside(&self, argv: &[&str]) -> Output {
        self.ns
            .nsenter()
            .args(argv)
            .env("CONTAINERD_ADDRESS", self.dir.join("c.sock"))
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// Run `ctr` against this containerd.
    pub fn ctr(&self, args: &[&str]) -> Output {
        let sock = format!("{}/c.sock", self.dir.display());
        let mut argv = vec!["ctr", "--address", sock.as_str()];
        argv.extend_from_slice(args);
        self.inside(&argv)
    }

    /// Start `id` with `ctr run --cni` (namespace `default`), sleeping, with these
    /// labels.
    pub fn run_pod(&self, id: &str, labels: &[&str]) {
        let rootfs = format!("{}/rootfs", self.dir.display());
        let mut args = vec!["run", "-d", "--cni"];
        for l in labels {
            args.extend(["--label", l]);
        }
        args.extend(["--rootfs", &rootfs, id, "/bin/sleep", "3600"]);
        let o = self.ctr(&args);
        assert!(
            o.status.success(),
            "ctr run {id}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// The pid of a running task.
    pub fn pid_of(&self, id: &str) -> u32 {
        let o = self.ctr(&["tasks", "ls"]);
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no task {id}:\n{text}"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Ending the namespaces' init kills containerd, the shims and the containers;
        // the netns and the private mounts go with them.
        self.ns.end();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Start a node or decide what the test does without one: `None` means "skipped"
/// (reported loudly); under CI it panics instead.
pub fn node_or_skip(test: &str) -> Option<Node> {
    match Node::start() {
        Ok(n) => Some(n),
        Err(why) => {
            assert!(
                !ctnet_core::world::in_ci(),
                "{test} needs a real containerd: {why}; under CI this is a failure"
            );
            ctnet_core::world::report_skip(&format!("{test}: {why}"));
            None
        }
    }
}
