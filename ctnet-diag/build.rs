//! `ctnet-diag --version` names the git revision it was built from (`unknown` when
//! built outside a git checkout, e.g. from a source package).

use std::path::Path;
use std::process::Command;

fn main() {
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CTNET_GIT_REV={rev}");
    // Rebuilt when the checkout moves to another commit (only files that exist: a
    // missing one would rerun this script on every build).
    let git = Path::new("../.git");
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(r) = head.trim().strip_prefix("ref: ")
    {
        watch.push(r.to_string());
    }
    for f in watch {
        if git.join(&f).is_file() {
            println!("cargo:rerun-if-changed=../.git/{f}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
