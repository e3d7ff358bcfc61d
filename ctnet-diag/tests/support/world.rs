//! Whether this machine lets the tests make rootless worlds; under CI it must (shared
//! by the tests that run the binary inside worlds).

use std::process::Command;

/// True when `bin world -- true` works; otherwise a failure under CI, a reported skip
/// elsewhere.
pub fn available(bin: &str, test: &str) -> bool {
    let ok = Command::new(bin)
        .args(["world", "--", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !ctnet_core::world::in_ci(),
            "{test} needs rootless worlds (user namespaces); under CI this is a failure"
        );
        ctnet_core::world::report_skip(&format!("{test}: this kernel refuses user namespaces"));
    }
    ok
}
