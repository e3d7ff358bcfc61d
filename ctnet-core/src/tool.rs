//! The one way ctnet runs an external program (iptables-save, nft, ipset, ping, ...):
//! found in a `PATH`-style list (never the caller's `PATH` under file capabilities, see
//! [`crate::privilege::tool_path`]), started with the capabilities it may inherit,
//! stdin from the caller or `/dev/null`, stdout and stderr captured, killed when it
//! outlives its timeout, and every failure a typed [`Error::Tool`]:
//! [`ErrorKind::MissingTool`] when it is not installed, `PermissionDenied` when it says
//! so, `Other` for the rest, with its stderr as the detail.
//!
//! [`Cmd::spawn`] starts a tool and returns at once, so several can run side by side
//! (a firewall read runs its dumps together); [`Running::finish`] waits for one.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// How long a tool may run unless told otherwise: far longer than any dump takes on a
/// busy host, short enough that a tool stuck on a lock cannot hang a scan for good.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The first executable file named `program` in the directories of `path`.
pub fn find(program: &str, path: &str) -> Option<PathBuf> {
    crate::privilege::find_tool(program, path)
}

/// The Debian package that ships `program`, for the "not installed" hint.
fn package_of(program: &str) -> Option<&'static str> {
    Some(match program {
        p if p.starts_with("iptables") || p.starts_with("ip6tables") => "iptables",
        "nft" => "nftables",
        "ipset" => "ipset",
        "conntrack" => "conntrack",
        "ping" => "iputils-ping",
        "tcpdump" => "tcpdump",
        "ethtool" => "ethtool",
        "ip" | "bridge" => "iproute2",
        _ => return None,
    })
}

/// A program to run.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    exe: Option<PathBuf>,
    args: Vec<String>,
    input: Option<Vec<u8>>,
    path: String,
    timeout: Duration,
    /// Variables set (`Some`) or removed (`None`) in its environment.
    env: Vec<(String, Option<String>)>,
}

impl Cmd {
    /// `program`, looked up in `path` (a `PATH`-style list).
    pub fn new(program: &str, path: &str) -> Self {
        Self {
            program: program.to_string(),
            exe: None,
            args: Vec::new(),
            input: None,
            path: path.to_string(),
            timeout: DEFAULT_TIMEOUT,
            env: Vec::new(),
        }
    }

    /// The executable `exe`, already found.
    pub fn exe(exe: &std::path::Path) -> Self {
        let program = exe
            .file_name()
            .map_or_else(|| exe.display().to_string(), |n| n.to_string_lossy().into_owned());
        let mut c = Self::new(&program, "");
        c.exe = Some(exe.to_path_buf());
        c
    }

    /// Its arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Set `key` to `value` in its environment.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Remove `key` from its environment.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// Text written to its stdin (otherwise stdin is `/dev/null`).
    pub fn input(mut self, text: impl Into<Vec<u8>>) -> Self {
        self.input = Some(text.into());
        self
    }

    /// How long it may run before it is killed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The program and its arguments as a shell would show them.
    pub fn line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Start it; what went wrong, if anything, is told by [`Running::finish`].
    pub fn spawn(self) -> Running {
        let started = Instant::now();
        let state = self.start();
        Running {
            program: self.program,
            timeout: self.timeout,
            started,
            state,
        }
    }

    /// Run it to the end: its stdout when it exits 0.
    pub fn run(self) -> Result<String> {
        self.spawn().finish()
    }

    fn error(&self, detail: String, kind: ErrorKind) -> Error {
        Error::Tool {
            program: self.program.clone(),
            detail,
            kind,
        }
    }

    fn start(&self) -> Result<Waiting> {
        let missing = || {
            let hint =
                package_of(&self.program).map_or(String::new(), |p| format!(": install the {p} package"));
            self.error(
                format!("not installed (looked in {}){hint}", self.path),
                ErrorKind::MissingTool,
            )
        };
        let exe = match &self.exe {
            Some(exe) => exe.clone(),
            None => find(&self.program, &self.path).ok_or_else(missing)?,
        };
        let mut command = Command::new(&exe);
        for (k, v) in &self.env {
            match v {
                Some(v) => command.env(k, v),
                None => command.env_remove(k),
            };
        }
        let mut child = crate::privilege::inherit_caps(&mut command)
            .args(&self.args)
            .stdin(if self.input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    missing()
                } else {
                    self.error(
                        format!("could not start {}: {e}", exe.display()),
                        ErrorKind::of_io(&e),
                    )
                }
            })?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let stdin = child.stdin.take();
        let input = self.input.clone();
        let (tx, rx) = mpsc::sync_channel(1);
        // One thread waits (std reads stdout and stderr together, no deadlock on a
        // full pipe) and another writes stdin, so a tool that reads its input slowly
        // while it writes cannot block either side.
        let writer = match (stdin, input) {
            (Some(mut stdin), Some(text)) => Some(std::thread::spawn(move || {
                // A tool that exits early closes its stdin: its own message says why,
                // so a broken pipe is not the error to report.
                match stdin.write_all(&text) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
                    _ => Ok(()),
                }
            })),
            _ => None,
        };
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        Ok(Waiting { pid, rx, writer })
    }
}

/// A started tool, not yet waited for.
pub struct Running {
    program: String,
    timeout: Duration,
    started: Instant,
    state: Result<Waiting>,
}

struct Waiting {
    pid: nix::unistd::Pid,
    rx: mpsc::Receiver<std::io::Result<std::process::Output>>,
    writer: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// The program's name.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Its process id, once started.
    pub fn pid(&self) -> Option<u32> {
        self.state.as_ref().ok().map(|w| w.pid.as_raw() as u32)
    }

    /// Wait for it: its stdout when it exits 0; otherwise why not (its stderr and exit
    /// status, or that it was killed after its timeout).
    pub fn finish(self) -> Result<String> {
        let program = self.program.clone();
        let out = self.output()?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(Error::Tool {
            program,
            detail: format!("{stderr} ({})", out.status),
            kind: kind_of_refusal(&stderr),
        })
    }

    /// Wait for it and take what it did, whatever its exit status (for tools whose
    /// status carries an answer: `ping` exits 1 when nothing replied). An error only
    /// when it could not run, or outlived its timeout.
    pub fn output(self) -> Result<std::process::Output> {
        let w = self.state?;
        let program = self.program;
        let error = |detail: String, kind| Error::Tool {
            program: program.clone(),
            detail,
            kind,
        };
        let left = self.timeout.saturating_sub(self.started.elapsed());
        let out = match w.rx.recv_timeout(left) {
            Ok(out) => out,
            Err(_) => {
                // Not reaped yet (the waiter holds it), so the pid is still this child's.
                let _ = nix::sys::signal::kill(w.pid, nix::sys::signal::Signal::SIGKILL);
                let _ = w.rx.recv();
                return Err(error(
                    format!("did not finish within {} s: killed", self.timeout.as_secs_f64()),
                    ErrorKind::Other,
                ));
            }
        };
        let written = w.writer.map(|h| h.join().unwrap_or(Ok(())));
        let out = out.map_err(|e| error(e.to_string(), ErrorKind::of_io(&e)))?;
        if out.status.success()
            && let Some(Err(e)) = written
        {
            return Err(error(format!("writing its input: {e}"), ErrorKind::Other));
        }
        Ok(out)
    }
}

/// What a tool's stderr says about why it failed: the one place a tool's words are
/// read (iptables, nft and ipset print strerror's text and return 1 or 4 either way).
fn kind_of_refusal(stderr: &str) -> ErrorKind {
    if stderr.contains("Permission denied") || stderr.contains("Operation not permitted") {
        ErrorKind::PermissionDenied
    } else {
        ErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> String {
        "/usr/local/bin:/usr/bin:/bin".into()
    }

    #[test]
    fn stdout_on_success_and_stderr_with_the_status_on_failure() {
        assert_eq!(
            Cmd::new("sh", &path()).args(["-c", "echo hi"]).run().unwrap(),
            "hi\n"
        );
        let e = Cmd::new("sh", &path())
            .args(["-c", "echo nope >&2; exit 3"])
            .run()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Other);
        assert!(e.to_string().contains("nope (exit status: 3)"), "{e}");
        let e = Cmd::new("sh", &path())
            .args([
                "-c",
                "echo 'iptables: Permission denied (you must be root).' >&2; exit 4",
            ])
            .run()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }

    #[test]
    fn a_missing_tool_says_where_it_looked_and_what_to_install() {
        let e = Cmd::new("iptables-ctnet-none", "/nonexistent").run().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingTool);
        assert!(e.to_string().contains("looked in /nonexistent"), "{e}");
        assert!(e.to_string().contains("install the iptables package"), "{e}");
    }

    #[test]
    fn input_reaches_stdin_even_when_larger_than_a_pipe() {
        let text = "x".repeat(1 << 20);
        let out = Cmd::new("wc", &path()).args(["-c"]).input(text).run().unwrap();
        assert_eq!(out.trim(), (1 << 20).to_string());
    }

    #[test]
    fn a_tool_that_outlives_its_timeout_is_killed() {
        let t = Instant::now();
        let e = Cmd::new("sleep", &path())
            .args(["30"])
            .timeout(Duration::from_millis(200))
            .run()
            .unwrap_err();
        assert!(e.to_string().contains("did not finish within 0.2 s"), "{e}");
        // Killed, not waited for (a generous bound: this is not a timing test).
        assert!(t.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn several_run_side_by_side() {
        let a = Cmd::new("sh", &path()).args(["-c", "echo a"]).spawn();
        let b = Cmd::new("sh", &path()).args(["-c", "echo b"]).spawn();
        assert_eq!(b.program(), "sh");
        assert_eq!(a.finish().unwrap() + &b.finish().unwrap(), "a\nb\n");
    }
}
