//! A real Prometheus scrapes ctnet-exporter on a lab with traffic, in a rootless world
//! of the test's own; the test asks Prometheus's HTTP API what it stored.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ctnet_core::lab::fault::{self, Fault};
use ctnet_core::lab::{self, LabEnv, LabSpec};
use ctnet_core::source::{self, ScanOptions};
use ctnet_core::topology::Topology;
use ctnet_core::world::{in_ci, report_skip, run_test_in_world};
use serde_json::Value;

const EXPORTER: &str = env!("CARGO_BIN_EXE_ctnet-exporter");
const EXPORTER_ADDR: &str = "127.0.0.1:9587";
const PROM_ADDR: &str = "127.0.0.1:9090";

fn sh(script: &str) -> String {
    let out = Command::new("sh").args(["-ec", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `bin` runs; under CI its absence is a failure.
fn have(bin: &str, test: &str) -> bool {
    let ok = Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !in_ci(),
            "{test} needs {bin} (Debian package prometheus); under CI this is a failure"
        );
        report_skip(&format!(
            "{test}: {bin} is not installed (apt install prometheus)"
        ));
    }
    ok
}

/// GET `path` from `addr`: the status code and the body.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    // Prometheus answers HTTP/1.1 with chunked bodies: take the JSON between the braces.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let start = body.find('{').unwrap_or(0);
        let end = body.rfind('}').map_or(body.len(), |e| e + 1);
        body[start..end].to_string()
    } else {
        body.to_string()
    };
    Some((code, body))
}

fn urlencode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The values of an instant query, by the labels asked for.
fn query(q: &str) -> Vec<(Value, f64)> {
    let (code, body) =
        get(PROM_ADDR, &format!("/api/v1/query?query={}", urlencode(q))).expect("prometheus answers");
    assert_eq!(code, 200, "{q}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{q}: {e}: {body}"));
    assert_eq!(v["status"], "success", "{q}: {body}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// Wait until `q` has a sample above zero, or fail with what it had.
fn wait_positive(q: &str, within: Duration) -> Vec<(Value, f64)> {
    let deadline = Instant::now() + within;
    loop {
        let r = query(q);
        if r.iter().any(|(_, v)| *v > 0.0) {
            return r;
        }
        assert!(Instant::now() < deadline, "{q} stayed at {r:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

struct Kill(Vec<Child>);
impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_http(addr: &str, path: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(addr, path).is_none_or(|(c, _)| c != 200) {
        assert!(Instant::now() < deadline, "{what} never answered on {addr}{path}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_real_prometheus_stores_veth_drops_rule_counters_and_a_check_that_breaks() {
    const NAME: &str = "a_real_prometheus_stores_veth_drops_rule_counters_and_a_check_that_breaks";
    if std::env::var(ctnet_core::world::TEST_WORLD_ENV).is_err()
        && (!have("prometheus", NAME) || !have("promtool", NAME))
    {
        return;
    }
    run_test_in_world(NAME, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut spec = LabSpec::new("p");
        spec.nat = true;
        spec.containers = 3;
        let env = LabEnv::default();
        let built = rt.block_on(lab::up(&spec, &env)).unwrap();
        let ip = |i: usize| built.containers[i].ip.split('/').next().unwrap().to_string();
        let mac = |i: usize| built.containers[i].mac.to_string();
        // An "outside" netns behind a host interface, so c1's traffic is forwarded.
        sh("ip link set lo up
            ip netns add out
            ip link add up0 type veth peer name eth0 netns out
            ip addr add 192.0.2.1/24 dev up0 && ip link set up0 up
            ip -n out link set lo up && ip -n out link set eth0 up
            ip -n out addr add 192.0.2.2/24 dev eth0 && ip -n out route add default via 192.0.2.1");

        // The exporter's text passes promtool's lint.
        let once = Command::new(EXPORTER)
            .args(["--once", "--no-daemon"])
            .output()
            .unwrap();
        assert!(once.status.success(), "{}", String::from_utf8_lossy(&once.stderr));
        let mut lint = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        lint.stdin.take().unwrap().write_all(&once.stdout).unwrap();
        let lint = lint.wait_with_output().unwrap();
        assert!(
            lint.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );

        let dir = std::env::temp_dir().join(format!("ctnet-prom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ctnet\n    \
                 static_configs:\n      - targets: ['{EXPORTER_ADDR}']\n"
            ),
        )
        .unwrap();
        let mut kids = Kill(Vec::new());
        kids.0.push(
            Command::new(EXPORTER)
                .args([
                    "--listen",
                    EXPORTER_ADDR,
                    "--min-interval",
                    "500ms",
                    "--no-daemon",
                ])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_http(EXPORTER_ADDR, "/metrics", "ctnet-exporter");
        kids.0.push(
            Command::new("prometheus")
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address={PROM_ADDR}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_http(PROM_ADDR, "/-/ready", "prometheus");
        wait_positive("up{job=\"ctnet\"}", Duration::from_secs(30));

        // Traffic: c1 to the outside (forwarded by the lab's FORWARD accept), and c2 to
        // c1 with a permanent neighbour entry, so c2 keeps sending when its peer is down.
        let pings = format!(
            "ip -n p-c2 neigh replace {c1} lladdr {m1} dev eth0 nud permanent
             ip netns exec p-c1 ping -q -i 0.05 192.0.2.2 >/dev/null 2>&1 &
             echo $!
             ip netns exec p-c2 ping -q -i 0.02 {c1} >/dev/null 2>&1 &
             echo $!",
            c1 = ip(0),
            m1 = mac(0),
        );
        let pids: Vec<String> = sh(&pings).split_whitespace().map(String::from).collect();
        assert_eq!(pids.len(), 2);
        struct KillPids(Vec<String>);
        impl Drop for KillPids {
            fn drop(&mut self) {
                for p in &self.0 {
                    let _ = Command::new("kill").arg(p).status();
                }
            }
        }
        let _pings = KillPids(pids);

        // The FORWARD rule that accepts c1's traffic counts while it flows.
        let fwd = "rate(ctnet_firewall_rule_packets_total{table=\"filter\",chain=\"FORWARD\",rule=~\"-i p-br .*\"}[5s])";
        let r = wait_positive(fwd, Duration::from_secs(30));
        assert!(r.iter().all(|(m, _)| m["owner"] == "ctnet"), "{r:?}");

        // Before: c2 drops nothing, c3's default route passes.
        let drops = "rate(ctnet_veth_transmit_drops_total{container=\"p-c2\",side=\"container\"}[5s])";
        let before = query(drops);
        assert_eq!(before.len(), 1, "{before:?}");
        assert_eq!(before[0].1, 0.0, "{before:?}");
        let route = "ctnet_check_status{container=\"p-c3\",check=\"route.default\",status=\"fail\"}";
        assert_eq!(query(route).first().map(|r| r.1), Some(0.0));
        assert_eq!(
            query("ctnet_check_status{container=\"p-c3\",check=\"route.default\",status=\"pass\"}")
                .first()
                .map(|r| r.1),
            Some(1.0)
        );

        // c2's veth peer (the host end) goes down mid-traffic: its eth0 drops what it sends.
        sh("ip link set p-v2 down");
        let r = wait_positive(drops, Duration::from_secs(30));
        assert!(
            r[0].0["host_veth"] == "p-v2" && r[0].0["bridge"] == "p-br",
            "{r:?}"
        );

        // `lab break no-route p-c3`: the check gauge flips to failing.
        let snap = source::snapshot(&ScanOptions::default()).unwrap();
        let topo = Topology::build(&snap);
        let t = ctnet_core::target::resolve(&snap, "p-c3").unwrap();
        let inj = fault::plan(Fault::NoRoute, &snap, &topo, &t, None).unwrap();
        fault::apply(&inj, &env).unwrap();
        wait_positive(route, Duration::from_secs(30));
        assert_eq!(
            query("ctnet_check_status{container=\"p-c3\",check=\"route.default\",status=\"pass\"}")
                .first()
                .map(|r| r.1),
            Some(0.0)
        );

        // A burst of scrapes costs one scan: ten scrapes within the minimum interval.
        let scans = |m: &str| -> f64 {
            m.lines()
                .find_map(|l| l.strip_prefix("ctnet_scans_total "))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        let first = get(EXPORTER_ADDR, "/metrics").unwrap().1;
        let mut last = first.clone();
        for _ in 0..9 {
            last = get(EXPORTER_ADDR, "/metrics").unwrap().1;
        }
        assert!(
            scans(&last) - scans(&first) <= 1.0,
            "{} -> {}",
            scans(&first),
            scans(&last)
        );
        drop(kids);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
