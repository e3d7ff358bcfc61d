//! A real rootful Podman (Debian `podman` 4.3 with `netavark`) for tests, inside its own
//! network, mount, pid and uts namespaces with a private `/run`, so its runtime state
//! (`/run/libpod`, `/run/containers`, `/run/netns/netns-*`) is where it is on a real
//! host. Its store, network configs and events log live in a scratch directory, named by
//! `CONTAINERS_CONF` and `CONTAINERS_STORAGE_CONF`: Podman's own way, which `podman` run
//! by ctnet-diag inside the namespaces honours too. The image is imported from
//! `busybox-static` (no registry). Torn down (containers, namespaces, files) on drop.
//! Needs root; under CI a test that cannot start it fails.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

#[path = "namespaces.rs"]
mod namespaces;
use namespaces::Namespaces;
use std::time::{Duration, Instant};

/// The image every test container runs.
pub const IMAGE: &str = "localhost/bbox";

/// The nameserver containers are given: the default network's gateway, where
/// [`RESOLVER`] listens.
pub const DNS: &str = "10.88.0.1";

/// A resolver for the host: on udp/53 and tcp/53 of every address, it answers every
/// query NXDOMAIN (the Docker harness's).
const RESOLVER: &str = include_str!("dns.py");

/// A private Podman host.
pub struct Host {
    dir: PathBuf,
    ns: Namespaces,
}

impl Host {
    /// Start one, or say why it cannot run here (`Err`).
    pub fn start() -> Result<Self, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("a real rootful Podman needs root".into());
        }
        for (tool, package) in [
            ("/usr/bin/podman", "podman"),
            ("/usr/lib/podman/netavark", "netavark"),
            ("/bin/busybox", "busybox-static"),
            ("/usr/bin/nsenter", "util-linux"),
        ] {
            if !Path::new(tool).exists() {
                return Err(format!("{tool} is missing (install {package})"));
            }
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = PathBuf::from(format!("/tmp/ctp{}x{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("networks")).map_err(|e| e.to_string())?;
        let d = dir.display();
        let write =
            |name: &str, text: String| std::fs::write(dir.join(name), text).map_err(|e| e.to_string());
        // runc refuses the default rlimits inside these namespaces ("error setting
        // rlimit type 7: operation not permitted"): the containers get modest ones.
        write(
            "containers.conf",
            format!(
                "[containers]\n\
                 dns_servers = [\"{DNS}\"]\n\
                 default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
                 [engine]\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 events_logfile_path = \"{d}/events.log\"\n\
                 [network]\n\
                 network_backend = \"netavark\"\n\
                 network_config_dir = \"{d}/networks\"\n"
            ),
        )?;
        write(
            "storage.conf",
            format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/run\"\n"),
        )?;
        // The host's own resolv.conf names a server this private network cannot reach:
        // the host runs a resolver (every name answers NXDOMAIN) on port 53 of every
        // address, and containers are given the default network's gateway.
        write("dns.py", RESOLVER.into())?;
        write(
            "start.sh",
            format!(
                "set -e\n\
                 hostname podman-host\n\
                 mount -t tmpfs tmpfs /run\n\
                 mkdir -p /run/netns\n\
                 ip link set lo up\n\
                 python3 {d}/dns.py >{d}/dns.log 2>&1 &\n\
                 touch /run/.ctnet-podman-host\n\
                 while :; do sleep 3600; done\n"
            ),
        )?;
        let ns = Namespaces::start(&dir.join("start.sh"))?;
        let host = Self { dir, ns };
        // The private /run holds the mark once it is mounted and `lo` is up.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !host
            .inside(&["test", "-e", "/run/.ctnet-podman-host"])
            .status
            .success()
        {
            if Instant::now() > deadline {
                return Err("the private /run never appeared".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        host.import_busybox()?;
        Ok(host)
    }

    fn import_busybox(&self) -> Result<(), String> {
        let root = self.dir.join("rootfs");
        std::fs::create_dir_all(root.join("bin")).map_err(|e| e.to_string())?;
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).map_err(|e| e.to_string())?;
        for applet in ["sh", "ping", "ip", "sleep", "httpd", "nc", "cat"] {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
        let o = self.inside(&[
            "sh",
            "-c",
            &format!("tar -C {} -c . | podman import - {IMAGE}", root.display()),
        ]);
        if !o.status.success() {
            return Err(format!("podman import: {}", String::from_utf8_lossy(&o.stderr)));
        }
        Ok(())
    }

    /// The environment that points Podman at this host's store and configuration.
    pub fn env(&self) -> [(&'static str, PathBuf); 2] {
        [
            ("CONTAINERS_CONF", self.dir.join("containers.conf")),
            ("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf")),
        ]
    }

    /// Run a command inside the namespaces, with [`Host::env`].
    pub fn inside(&self, argv: &[&str]) -> Output {
        self.ns
            .nsenter()
            .args(argv)
            .envs(self.env())
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// Run the podman CLI inside and return stdout, failing the test on error.
    pub fn podman_ok(&self, args: &[&str]) -> String {
        let mut argv = vec!["podman"];
        argv.extend_from_slice(args);
        let o = self.inside(&argv);
        assert!(
            o.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

/// The user whose rootless Podman [`Host::rootless`] runs.
pub const ROOTLESS_UID: u32 = 4242;

/// A user `ctnetu` (uid [`ROOTLESS_UID`]) as a host would have one, inside the host's
/// own mount namespace only: its passwd and group lines and subordinate ids bound over
/// /etc's files, a home with its own Podman configuration (vfs storage, cgroupfs), its
/// runtime directory `/run/user/UID`, and `/dev/net/tun` readable by users as hosts
/// have it (here it is root's alone; a node of its own is bound over it). The busybox
/// image is imported into its store.
const ROOTLESS_SETUP: &str = r#"
set -e
D=$1; U=4242
mkdir -p "$D/home/.config/containers" /run/user/$U /run/ctnet-dev
cp /etc/passwd "$D/passwd"; echo "ctnetu:x:$U:$U::$D/home:/bin/sh" >> "$D/passwd"
cp /etc/group "$D/group"; echo "ctnetu:x:$U:" >> "$D/group"
echo "ctnetu:200000:65536" > "$D/subuid"
mount --bind "$D/passwd" /etc/passwd
mount --bind "$D/group" /etc/group
for f in subuid subgid; do
  [ -e /etc/$f ] || { echo "/etc/$f is missing (the login package makes it)" >&2; exit 1; }
  mount --bind "$D/subuid" /etc/$f
done
mknod -m 666 /run/ctnet-dev/tun c 10 200
mount --bind /run/ctnet-dev/tun /dev/net/tun
printf '[storage]
driver = "vfs"
' > "$D/home/.config/containers/storage.conf"
printf '[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
'   > "$D/home/.config/containers/containers.conf"
chown -R $U:$U "$D/home" /run/user/$U
chmod 700 /run/user/$U
tar -C "$D/rootfs" -cf "$D/rootfs.tar" . && chmod 644 "$D/rootfs.tar"
setpriv --reuid=$U --regid=$U --clear-groups env -u CONTAINERS_CONF -u CONTAINERS_STORAGE_CONF   HOME="$D/home" XDG_RUNTIME_DIR=/run/user/$U podman import "$D/rootfs.tar" localhost/bbox >/dev/null
"#;

impl Host {
    /// Set up the rootless user (see [`ROOTLESS_SETUP`]), or say why it cannot be.
    pub fn rootless(&self) -> Result<(), String> {
        for (tool, package) in [
            ("/usr/bin/newuidmap", "uidmap"),
            ("/usr/bin/slirp4netns", "slirp4netns"),
            ("/usr/bin/setpriv", "util-linux"),
        ] {
            if !Path::new(tool).exists() {
                return Err(format!("{tool} is missing (install {package})"));
            }
        }
        let dir = self.dir.display().to_string();
        let o = self.inside(&["bash", "-c", ROOTLESS_SETUP, "setup", &dir]);
        if !o.status.success() {
            return Err(format!(
                "setting up the rootless user: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Ok(())
    }

    /// Run the rootless user's podman CLI with `args`; stdout, failing the test on error.
    pub fn podman_as_user(&self, args: &[&str]) -> String {
        let home = format!("HOME={}/home", self.dir.display());
        let run = format!("XDG_RUNTIME_DIR=/run/user/{ROOTLESS_UID}");
        let uid = format!("--reuid={ROOTLESS_UID}");
        let gid = format!("--regid={ROOTLESS_UID}");
        let mut argv = vec![
            "setpriv",
            &uid,
            &gid,
            "--clear-groups",
            "env",
            "-u",
            "CONTAINERS_CONF",
            "-u",
            "CONTAINERS_STORAGE_CONF",
            &home,
            &run,
            "podman",
        ];
        argv.extend_from_slice(args);
        let o = self.inside(&argv);
        assert!(
            o.status.success(),
            "rootless podman {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.inside(&["podman", "rm", "--all", "--force", "--time", "0"]);
        // Ending the namespaces' init kills every process left in them (conmon, the
        // containers); the netns and the private /run go with them.
        self.ns.end();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Start a Podman host or decide what the test does without one: `None` means
/// "skipped" (reported loudly); under CI it panics instead.
pub fn host_or_skip(test: &str) -> Option<Host> {
    match Host::start() {
        Ok(h) => Some(h),
        Err(why) => {
            assert!(
                !ctnet_core::world::in_ci(),
                "{test} needs a real Podman: {why}; under CI this is a failure"
            );
            ctnet_core::world::report_skip(&format!("{test}: {why}"));
            None
        }
    }
}
