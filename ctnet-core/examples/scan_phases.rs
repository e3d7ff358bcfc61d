//! temporary
use ctnet_core::source::{self, Depth, ScanOptions};
use std::time::Instant;
fn t(name: &str, o: &ScanOptions) {
    let mut v = Vec::new();
    for _ in 0..7 {
        let t0 = Instant::now();
        let _ = source::snapshot(o).unwrap();
        v.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("{name:<40} median {:.1} ms", v[3]);
}
fn main() {
    let light = ScanOptions {
        others: Depth::Links,
        runtime: None,
        ..ScanOptions::default()
    };
    t("links depth", &light);
    t(
        "links depth, no ethtool",
        &ScanOptions {
            ethtool: false,
            ..light.clone()
        },
    );
    t(
        "links depth, no firewall",
        &ScanOptions {
            firewall: false,
            ..light.clone()
        },
    );
    t(
        "links depth, no fw, no ethtool",
        &ScanOptions {
            firewall: false,
            ethtool: false,
            ..light.clone()
        },
    );
    t(
        "host only, no fw",
        &ScanOptions {
            firewall: false,
            netns_dirs: vec![],
            scan_proc: false,
            ..light.clone()
        },
    );
    t(
        "host only, no fw no ethtool",
        &ScanOptions {
            firewall: false,
            ethtool: false,
            netns_dirs: vec![],
            scan_proc: false,
            ..light.clone()
        },
    );
    t(
        "firewall only",
        &ScanOptions {
            ethtool: false,
            netns_dirs: vec![],
            scan_proc: false,
            ..light.clone()
        },
    );
    t(
        "links depth 1 worker no fw no eth",
        &ScanOptions {
            firewall: false,
            ethtool: false,
            workers: 1,
            ..light.clone()
        },
    );
    t(
        "links depth 4 workers no fw no eth",
        &ScanOptions {
            firewall: false,
            ethtool: false,
            workers: 4,
            ..light.clone()
        },
    );
}
