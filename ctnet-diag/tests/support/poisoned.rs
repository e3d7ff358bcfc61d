//! Recorded snapshots with a hostile payload added to every free-text string, as a
//! hostile `--from` file would have them (shared by the hostile-input tests).

use std::path::{Path, PathBuf};

/// A recorded fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
}

/// `fixtures/docker-host.json` with `payload` added to every free-text string (names,
/// paths, comms, MACs, images, rule specs, sysctl keys), written to `dir`.
pub fn snapshot(dir: &Path, payload: &str) -> PathBuf {
    fn poison(v: &mut serde_json::Value, key: &str, payload: &str) {
        use serde_json::Value;
        match v {
            // Typed strings (enum names, addresses) stay, so the file still loads.
            Value::String(s)
                if !matches!(key, "schema" | "kind" | "owner" | "type")
                    && s.parse::<std::net::IpAddr>().is_err()
                    && s.parse::<ipnet::IpNet>().is_err() =>
            {
                s.push_str(payload);
            }
            Value::Array(a) => a.iter_mut().for_each(|x| poison(x, key, payload)),
            Value::Object(m) => {
                let old = std::mem::take(m);
                for (k, mut x) in old {
                    poison(&mut x, &k, payload);
                    let k = if key == "sysctls" {
                        format!("{k}{payload}")
                    } else {
                        k
                    };
                    m.insert(k, x);
                }
            }
            _ => {}
        }
    }
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("docker-host.json")).unwrap()).unwrap();
    poison(&mut doc, "", payload);
    let path = dir.join("hostile.json");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    path
}
