//! A bash script run inside a fresh rootless world, and the `TAG: value` lines it
//! printed (shared by the tests that prove checks and probes against real packets).

use std::process::Command;

#[path = "world.rs"]
mod world;

/// What the script printed.
pub struct Script {
    out: String,
    err: String,
}

impl Script {
    /// Run `script` with bash in a fresh world, with `BIN` set to `bin` and `envs`; fail
    /// the test when it fails. `None` when this machine makes no worlds (a failure
    /// under CI, a reported skip elsewhere).
    pub fn run(bin: &str, test: &str, script: &str, envs: &[(&str, &str)]) -> Option<Script> {
        if !world::available(bin, test) {
            return None;
        }
        let mut cmd = Command::new(bin);
        cmd.args(["world", "--", "bash", "-c", script]);
        Some(Script::finish(cmd, bin, envs))
    }

    /// Run `cmd` with `BIN` and `envs` set; fail the test when it fails.
    fn finish(mut cmd: Command, bin: &str, envs: &[(&str, &str)]) -> Script {
        let o = cmd.env("BIN", bin).envs(envs.iter().copied()).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{out}\n{err}");
        Script { out, err }
    }

    /// Run `script` with bash as the host's root, in fresh network, mount and pid
    /// namespaces (a private `/run`, loopback up): for what a rootless world cannot do,
    /// such as tracefs. `None` when not root (a failure under CI, a reported skip
    /// elsewhere).
    #[allow(dead_code)]
    pub fn run_rooted(bin: &str, test: &str, script: &str, envs: &[(&str, &str)]) -> Option<Script> {
        if !nix::unistd::geteuid().is_root() {
            assert!(
                !ctnet_core::world::in_ci(),
                "{test} needs root (tracefs is the host root's); under CI this is a failure"
            );
            ctnet_core::world::report_skip(&format!("{test}: needs root"));
            return None;
        }
        let script =
            format!("set -e\nmount -t tmpfs tmpfs /run\nmkdir -p /run/netns\nip link set lo up\n{script}");
        let mut cmd = Command::new("unshare");
        cmd.args(["--net", "--mount", "--pid", "--fork", "--propagation", "private"])
            .args(["bash", "-c", &script]);
        Some(Script::finish(cmd, bin, envs))
    }

    /// The rest of the first line that starts with `tag`.
    pub fn line(&self, tag: &str) -> String {
        self.out
            .lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_else(|| panic!("no {tag} in\n{}\n{}", self.out, self.err))
            .to_string()
    }
}

/// Everything it printed, for a failing assertion's message.
impl std::fmt::Display for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n{}", self.out, self.err)
    }
}
