//! Kernel tests of live capture, each in a fresh rootless world with a two-container
//! lab built by iproute2; tcpdump on the same traffic is the ground truth.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctnet_core::capture::{self, CaptureOptions, Control, Endpoint, LineFormat, Ring, Sink};
use ctnet_core::netns::Netns;
use ctnet_core::world::run_test_in_world;
use serde_json::Value;

fn sh(script: &str) -> String {
    let out = Command::new("sh").args(["-ec", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// br0 10.60.0.1/24; c1 10.60.0.2 on v1, c2 10.60.0.3 on v2.
fn lab() {
    sh(
        "ip link add name br0 type bridge && ip addr add 10.60.0.1/24 dev br0 && ip link set br0 up
        for i in 1 2; do
          ip netns add c$i
          ip link add name v$i type veth peer name eth0 netns c$i
          ip link set v$i master br0 && ip link set v$i up
          ip -n c$i link set lo up && ip -n c$i link set eth0 up
          ip -n c$i addr add 10.60.0.$((i + 1))/24 dev eth0
        done",
    );
}

fn host_ep(iface: &str) -> Endpoint {
    Endpoint {
        netns: Netns::current().unwrap(),
        iface: iface.into(),
        label: iface.into(),
        peer_mac: None,
    }
}

fn c1_eth0() -> Endpoint {
    Endpoint {
        netns: Netns::named("/run/netns", "c1").unwrap(),
        iface: "eth0".into(),
        label: "eth0@c1".into(),
        peer_mac: None,
    }
}

/// tcpdump writing to `file`, ready (it said "listening") when this returns.
fn tcpdump(netns: Option<&str>, iface: &str, filter: &str, file: &str) -> Child {
    let mut cmd = match netns {
        Some(n) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", n, "tcpdump"]);
            c
        }
        None => Command::new("tcpdump"),
    };
    let mut child = cmd
        .args(["-Z", "root", "-n", "-U", "-i", iface, "-w", file, filter])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("tcpdump");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !line.contains("listening on") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "tcpdump exited");
        assert!(Instant::now() < deadline, "tcpdump never listened");
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    });
    child
}

fn stop_tcpdump(mut c: Child) {
    // SAFETY: kill(2) on a child this test spawned.
    unsafe {
        libc::kill(c.id() as i32, libc::SIGINT);
    }
    c.wait().unwrap();
}

/// Wait (with a deadline) until `ring` holds at least `n` frames of session `session`.
fn wait_for(ring: &Ring, held: &mut Vec<capture::Frame>, session: usize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        held.extend(ring.drain());
        if held.iter().filter(|f| f.session == session).count() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} frames arrived",
            held.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait (with a deadline) until `ring` holds at least `n` ICMP frames of `session`.
fn wait_for_icmp(ring: &Ring, held: &mut Vec<capture::Frame>, session: usize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        held.extend(ring.drain());
        let icmp = held
            .iter()
            .filter(|f| f.session == session)
            .filter(|f| {
                matches!(
                    capture::decode::decode(&f.data).transport,
                    Some(capture::decode::Transport::Icmp { .. })
                )
            })
            .count();
        if icmp >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {icmp} of {n} ICMP frames arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait (with a deadline) until tcpdump has written `n` packets to `file` (it hands
/// packets over a buffer timeout late, and drops what it holds when interrupted).
fn wait_file(file: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while tcpdump_count(file) < n {
        assert!(
            Instant::now() < deadline,
            "tcpdump never wrote {n} packets to {file}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tcpdump_count(file: &str) -> usize {
    sh(&format!("tcpdump -n -r {file} 2>/dev/null | wc -l"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn both_ends_of_a_veth_see_exactly_what_tcpdump_sees() {
    run_test_in_world("both_ends_of_a_veth_see_exactly_what_tcpdump_sees", || {
        lab();
        let n = 5;
        let opts = CaptureOptions {
            filter: Some("icmp".into()),
            ..CaptureOptions::default()
        };
        let ring = Arc::new(Ring::new(10_000));
        let control = Control::new(None);
        let eps = [host_ep("v1"), c1_eth0()];
        let sessions: Vec<_> = eps
            .iter()
            .enumerate()
            .map(|(i, ep)| capture::start(i, ep, &opts, Sink::Ring(ring.clone()), control.clone()).unwrap())
            .collect();
        let td_host = tcpdump(None, "v1", "icmp", "/tmp/ctnet-kc-host.pcap");
        let td_c1 = tcpdump(Some("c1"), "eth0", "icmp", "/tmp/ctnet-kc-c1.pcap");
        sh(&format!(
            "ip netns exec c1 ping -c{n} -i0.2 -W2 10.60.0.3 >/dev/null"
        ));
        // The last batch reaches the ring within one buffer timeout.
        let mut frames = Vec::new();
        wait_for(&ring, &mut frames, 0, 2 * n);
        wait_for(&ring, &mut frames, 1, 2 * n);
        wait_file("/tmp/ctnet-kc-host.pcap", 2 * n);
        wait_file("/tmp/ctnet-kc-c1.pcap", 2 * n);
        control.stop();
        let stats: Vec<_> = sessions.into_iter().map(|s| s.join()).collect();
        stop_tcpdump(td_host);
        stop_tcpdump(td_c1);
        frames.extend(ring.drain());
        for (i, file) in [(0, "/tmp/ctnet-kc-host.pcap"), (1, "/tmp/ctnet-kc-c1.pcap")] {
            let ours = frames.iter().filter(|f| f.session == i).count();
            assert_eq!(ours, 2 * n, "{}: echo requests and replies", stats[i].label);
            assert_eq!(ours, tcpdump_count(file), "{} vs tcpdump", stats[i].label);
            assert_eq!(stats[i].captured as usize, ours);
            assert_eq!(stats[i].dropped_by_kernel, 0);
            let _ = std::fs::remove_file(file);
            assert!(stats[i].ended.is_none(), "{:?}", stats[i].ended);
        }
        // The same echo, hop by hop: both hops saw every packet (their order can tie
        // within a microsecond, so it is checked only where the times differ).
        let tracks = capture::follow::follow(&frames, 1_000_000);
        assert_eq!(tracks.len(), 2 * n);
        for t in &tracks {
            let mut hops: Vec<usize> = t.hops.iter().map(|h| h.0).collect();
            hops.sort();
            assert_eq!(hops, [0, 1], "{t:?}");
            let at = |s: usize| t.hops.iter().find(|h| h.0 == s).unwrap().1;
            if t.packet.starts_with("icmp echo-request") {
                assert!(at(1) <= at(0), "a request leaves c1 before it crosses v1: {t:?}");
            } else {
                assert!(at(0) <= at(1), "a reply crosses v1 before it reaches c1: {t:?}");
            }
        }
    });
}

/// Finish the file the sessions wrote (they are all joined: the last `Arc`).
fn sink_done(writer: Arc<std::sync::Mutex<capture::PcapWriter>>) -> u64 {
    let w = Arc::try_unwrap(writer)
        .map_err(|_| "a session still holds the file")
        .expect("every session joined")
        .into_inner()
        .unwrap();
    w.finish().map_err(|(_, e)| e).unwrap()
}

#[test]
fn pcap_files_read_back_with_tcpdump_and_json_lines_decode_arp_and_icmp() {
    run_test_in_world(
        "pcap_files_read_back_with_tcpdump_and_json_lines_decode_arp_and_icmp",
        || {
            lab();
            let n = 4;
            let file = std::path::Path::new("/tmp/ctnet-kc-ours.pcap");
            let writer = Arc::new(std::sync::Mutex::new(capture::PcapWriter::create(file).unwrap()));
            let sink = Sink::Pcap(writer.clone());
            let ring = Arc::new(Ring::new(1000));
            let control = Control::new(None);
            let opts = CaptureOptions {
                filter: Some("icmp or arp".into()),
                ..CaptureOptions::default()
            };
            // The file session stops by itself after the echoes (a budget), so the
            // file is complete when it ends.
            let file_opts = CaptureOptions {
                filter: Some("icmp".into()),
                ..CaptureOptions::default()
            };
            let to_file = capture::start(
                0,
                &host_ep("v1"),
                &file_opts,
                sink,
                Control::new(Some(2 * n as u64)),
            )
            .unwrap();
            let to_ring = capture::start(
                1,
                &host_ep("v1"),
                &opts,
                Sink::Ring(ring.clone()),
                control.clone(),
            )
            .unwrap();
            // Empty neighbour caches, so the first ping needs ARP.
            sh("ip -n c1 neigh flush all; ip -n c2 neigh flush all");
            sh(&format!(
                "ip netns exec c1 ping -c{n} -i0.2 -W2 10.60.0.3 >/dev/null"
            ));
            let mut frames = Vec::new();
            wait_for_icmp(&ring, &mut frames, 1, 2 * n);
            control.stop();
            let file_stats = to_file.join();
            assert_eq!(file_stats.captured, 2 * n as u64);
            assert_eq!(sink_done(writer), 2 * n as u64);
            let _ = to_ring.join();
            frames.extend(ring.drain());
            assert_eq!(
                tcpdump_count("/tmp/ctnet-kc-ours.pcap"),
                file_stats.captured as usize
            );
            assert_eq!(
                sh("tcpdump -n -r /tmp/ctnet-kc-ours.pcap icmp 2>/dev/null | wc -l").trim(),
                (2 * n).to_string()
            );
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(file).unwrap().permissions().mode() & 0o777,
                0o600
            );

            let lines: Vec<Value> = frames
                .iter()
                .map(|f| {
                    let l = capture::format_line(
                        "v1",
                        f.ts_us,
                        f.len,
                        &f.data,
                        capture::DirectionHint::default(),
                        LineFormat::Json,
                    );
                    serde_json::from_str(&l).unwrap()
                })
                .collect();
            let arp: Vec<&Value> = lines.iter().filter(|l| l["net"]["kind"] == "arp").collect();
            assert!(
                arp.iter().any(|l| l["net"]["op"] == "request"
                    && l["net"]["target_ip"] == "10.60.0.3"
                    && l["net"]["sender_ip"] == "10.60.0.2"),
                "{arp:#?}"
            );
            assert!(
                arp.iter()
                    .any(|l| l["net"]["op"] == "reply" && l["net"]["sender_ip"] == "10.60.0.3")
            );
            let seqs: Vec<u64> = lines
                .iter()
                .filter(|l| l["transport"]["what"] == "echo-request")
                .map(|l| l["transport"]["seq"].as_u64().unwrap())
                .collect();
            assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>());
            assert!(
                lines
                    .iter()
                    .all(|l| l["schema"] == "ctnet.packet/v1" && l["malformed"].is_null())
            );
            let _ = std::fs::remove_file(file);
        },
    );
}

#[test]
fn an_interface_deleted_during_capture_ends_only_its_own_session() {
    run_test_in_world(
        "an_interface_deleted_during_capture_ends_only_its_own_session",
        || {
            lab();
            let ring = Arc::new(Ring::new(1000));
            let control = Control::new(None);
            let opts = CaptureOptions::default();
            let s1 = capture::start(
                0,
                &host_ep("v1"),
                &opts,
                Sink::Ring(ring.clone()),
                control.clone(),
            )
            .unwrap();
            let s2 = capture::start(
                1,
                &host_ep("v2"),
                &opts,
                Sink::Ring(ring.clone()),
                control.clone(),
            )
            .unwrap();
            sh("ip link del v2");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !s2.is_finished() {
                assert!(
                    Instant::now() < deadline,
                    "the session on a deleted interface never ended"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let gone = s2.join();
            let why = gone.ended.expect("a reason");
            // The label, and what libpcap said about the interface.
            let reason = why.split_once("ended: ").map(|(_, r)| r).unwrap_or("");
            assert!(
                why.starts_with("capture on v2 ended: ") && !reason.is_empty(),
                "{why}"
            );
            assert!(!s1.is_finished(), "the other session goes on");
            ring.drain();
            sh("ip netns exec c1 ping -c2 -i0.2 -W2 10.60.0.1 >/dev/null");
            let mut frames = Vec::new();
            wait_for(&ring, &mut frames, 0, 4);
            control.stop();
            let alive = s1.join();
            assert!(alive.ended.is_none());
        },
    );
}

#[test]
fn a_quiet_capture_stops_at_once() {
    run_test_in_world("a_quiet_capture_stops_at_once", || {
        lab();
        let control = Control::new(None);
        // A buffer timeout far longer than the test: only breakloop can end the read.
        let opts = CaptureOptions {
            timeout_ms: 600_000,
            ..CaptureOptions::default()
        };
        let s = capture::start(
            0,
            &c1_eth0(),
            &opts,
            Sink::Ring(Arc::new(Ring::new(10))),
            control.clone(),
        )
        .unwrap();
        control.stop();
        // breakloop wakes a read blocked on a link with no traffic at all; without it the
        // reader would sit there forever.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s.is_finished() {
            assert!(
                Instant::now() < deadline,
                "a stopped capture on a quiet link never ended"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(s.join().ended.is_none());
    });
}
