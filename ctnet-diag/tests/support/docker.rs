//! A real Docker engine (Debian `docker.io`) for tests, started inside its own
//! network, mount, pid and uts namespaces, with a busybox image imported from
//! `busybox-static` (no registry). Its exec-root stays the default `/var/run/docker` on a
//! private tmpfs, so sandbox keys live where they do on a real host
//! (`/var/run/docker/netns`). Torn down (containers, daemon, namespaces, state) on drop.
//! Needs root; under CI a test that cannot start it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "namespaces.rs"]
mod namespaces;
use namespaces::Namespaces;
use std::time::{Duration, Instant};

/// The image every test container runs.
pub const IMAGE: &str = "ctnet/busybox:test";

/// A running private Docker engine.
pub struct Engine {
    dir: PathBuf,
    ns: Namespaces,
}

/// The nameserver the engine gives its containers: the default bridge's gateway, where
/// [`RESOLVER`] listens.
pub const DNS: &str = "172.17.0.1";

/// A resolver for the engine's host: on udp/53 and tcp/53 of every address, it answers
/// every query NXDOMAIN (a real answer, from a real socket, for `--probe` and clients).
const RESOLVER: &str = include_str!("dns.py");

impl Engine {
    /// Start an engine, or say why it cannot run here (`Err`).
    pub fn start() -> Result<Self, String> {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("a real Docker engine needs root".into());
        }
        for tool in [
            "/usr/sbin/dockerd",
            "/bin/busybox",
            "/usr/bin/nsenter",
            "/usr/bin/unshare",
        ] {
            if !Path::new(tool).exists() {
                return Err(format!(
                    "{tool} is missing (install docker.io, busybox-static, util-linux)"
                ));
            }
        }
        // Short: containerd's socket lives below it, and unix socket paths stop at 107
        // bytes.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}x{n}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/ctd{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let d = dir.display();
        // The engine's host runs a resolver (every name answers NXDOMAIN) on port 53,
        // and containers are given the default bridge's gateway as their nameserver:
        // the host's own resolv.conf names a server this private network cannot reach.
        std::fs::write(dir.join("dns.py"), RESOLVER).map_err(|e| e.to_string())?;
        let script = format!(
            "set -e\n\
             hostname docker-host\n\
             mount -t tmpfs tmpfs /run\n\
             mkdir -p /run/netns\n\
             ip link set lo up\n\
             python3 {d}/dns.py >{d}/dns.log 2>&1 &\n\
             dockerd --data-root {d}/root --pidfile {d}/docker.pid \\\n\
               -H unix://{d}/docker.sock --containerd-namespace ctnet{id} \\\n\
               --containerd-plugins-namespace ctnet{id}p --dns {DNS} >{d}/dockerd.log 2>&1 &\n\
             wait\n"
        );
        std::fs::write(dir.join("start.sh"), script).map_err(|e| e.to_string())?;
        let ns = Namespaces::start(&dir.join("start.sh"))?;
        let engine = Self { dir, ns };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if engine.dir.join("docker.sock").exists() && engine.docker(&["version"]).status.success() {
                break;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(engine.dir.join("dockerd.log")).unwrap_or_default();
                return Err(format!("dockerd did not come up in 60 s:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        engine.import_busybox()?;
        Ok(engine)
    }

    fn import_busybox(&self) -> Result<(), String> {
        let root = self.dir.join("rootfs");
        std::fs::create_dir_all(root.join("bin")).map_err(|e| e.to_string())?;
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).map_err(|e| e.to_string())?;
        for applet in [
            "sh", "ping", "ip", "sleep", "httpd", "nc", "arp", "cat", "ls", "ifconfig", "route", "nslookup",
        ] {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
        let tar = Command::new("tar")
            .args(["-C"])
            .arg(&root)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let out = Command::new("docker")
            .env("DOCKER_HOST", self.host())
            .args(["import", "-", IMAGE])
            .stdin(tar.stdout.expect("piped"))
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("docker import: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(())
    }

    /// `DOCKER_HOST` of this engine.
    pub fn host(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.display())
    }

    /// Run the docker CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", self.host())
            .args(args)
            .output()
            .expect("docker CLI")
    }

    /// Run the docker CLI and return stdout, failing the test on error.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Run a command inside the engine's network, mount and pid namespaces.
    pub fn inside(&self, argv: &[&str]) -> Output {
        self.ns.nsenter().args(argv).output().expect("nsenter")
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        let ids = String::from_utf8_lossy(&ids.stdout).to_string();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            let _ = self.docker(&args);
        }
        // Stop the daemon cleanly, then end the namespace: killing its init kills
        // every process left in it, and the netns and mounts go with them.
        let pidfile = self.dir.join("docker.pid");
        let _ = self.inside(&["sh", "-c", &format!("kill $(cat {})", pidfile.display())]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while pidfile.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.ns.end();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Start an engine or decide what the test does without one: `None` means "skipped"
/// (reported loudly); under CI it panics instead.
pub fn engine_or_skip(test: &str) -> Option<Engine> {
    match Engine::start() {
        Ok(e) => Some(e),
        Err(why) => {
            assert!(
                !ctnet_core::world::in_ci(),
                "{test} needs a real Docker engine: {why}; under CI this is a failure"
            );
            ctnet_core::world::report_skip(&format!("{test}: {why}"));
            None
        }
    }
}
