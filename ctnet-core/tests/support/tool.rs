//! Running a tool with text on its stdin (iptables-restore, nft -f): shared by the
//! netfilter kernel tests.

#![allow(dead_code)]

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Run `program args` with `input` on stdin: whether it succeeded, its stdout and its
/// stderr.
pub fn run_stdin(program: &str, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`run_stdin`] that must succeed: its stdout.
pub fn run(program: &str, args: &[&str], input: &str) -> String {
    let (ok, out, err) = run_stdin(program, args, input);
    assert!(ok, "{program} {args:?} failed: {err}");
    out
}
