//! The private host every runtime harness (Docker, Podman, containerd) starts its
//! engine in: network, mount, pid and uts namespaces made by `unshare`, with a shell
//! script as their init. Killing that init ends every process in them; the netns and
//! the private mounts go with it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Namespaces whose init runs a script.
pub struct Namespaces {
    unshare: Child,
    /// Outer pid of the namespaces' init: the `nsenter -t` target.
    pub init: u32,
}

fn outer_child_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

impl Namespaces {
    /// Start `sh script` as the init of new namespaces, or say why not.
    pub fn start(script: &Path) -> Result<Self, String> {
        let unshare = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--pid",
                "--uts",
                "--fork",
                "--mount-proc",
                "--propagation",
                "private",
                "sh",
            ])
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(init) = outer_child_of(unshare.id()) {
                return Ok(Self { unshare, init });
            }
            if Instant::now() > deadline {
                return Err("the namespaces never started".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nsenter` into all four namespaces, ready for the command's argv.
    pub fn nsenter(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.init.to_string(), "-n", "-m", "-p", "-u"]);
        c
    }

    /// End the init (and so everything in the namespaces) and reap `unshare`.
    pub fn end(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.init as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.unshare.wait();
    }
}
