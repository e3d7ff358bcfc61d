//! Shared by the dashboard tests: fixtures, a second snapshot with moved counters,
//! and frames decoded the way the capture pump decodes them.

#![allow(dead_code)]

use ctnet_core::capture::{self, DirectionHint, LineFormat};
use ctnet_core::model::Snapshot;
use ctnet_tui::app::{App, Event, Mode, Packet};
use ctnet_tui::tree::Item;

/// A recorded snapshot from `fixtures/`.
pub fn fixture(name: &str) -> Snapshot {
    let path = format!("{}/../fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    Snapshot::load(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The same host one second later, with every counter moved: `pps` packets a second
/// on each link, 3 more packets on each firewall rule of FORWARD.
pub fn later(snap: &Snapshot, pps: u64) -> Snapshot {
    let mut s = snap.clone();
    s.taken_at_unix_ms += 1000;
    for ns in &mut s.netns {
        for l in &mut ns.links {
            if let Some(st) = &mut l.stats {
                st.rx_packets += pps;
                st.tx_packets += pps;
                st.rx_bytes += pps * 98;
                st.tx_bytes += pps * 98;
            }
        }
    }
    if let Some(fw) = &mut s.firewall {
        for d in &mut fw.iptables {
            for t in &mut d.tables {
                for r in t.rules.iter_mut().filter(|r| r.chain == "FORWARD") {
                    r.packets += 3;
                }
            }
        }
    }
    s
}

/// An app showing `snap` offline (as `--from` does), privileged.
pub fn app_with(snap: Snapshot) -> App {
    let mut app = App::new(Mode::Live, 2.0, true);
    app.on_event(Event::Snapshot(Box::new(snap), 12));
    app
}

/// Select the row whose item is the bridge port `port`.
pub fn select_port(app: &mut App, port: &str) {
    app.selected = app
        .rows
        .iter()
        .position(|r| matches!(&r.item, Item::Port { port: p, .. } if p == port))
        .unwrap_or_else(|| panic!("no port row {port}: {:?}", app.rows));
}

/// ICMP echo requests and replies between two MACs/IPs, as the pane shows them.
pub fn icmp_packets(label: &str, n: u16) -> Vec<Packet> {
    let a = ([0x02, 0, 0, 0, 0, 0x11], [10, 50, 0, 2]);
    let b = ([0x02, 0, 0, 0, 0, 0x22], [10, 50, 0, 3]);
    let mut out = Vec::new();
    for seq in 1..=n {
        for (i, (src, dst)) in [(a, b), (b, a)].into_iter().enumerate() {
            let builder = etherparse::PacketBuilder::ethernet2(src.0, dst.0)
                .ipv4(src.1, dst.1, 64)
                .icmpv4_echo_request(7, seq);
            let builder = if i == 0 {
                builder
            } else {
                etherparse::PacketBuilder::ethernet2(src.0, dst.0)
                    .ipv4(src.1, dst.1, 64)
                    .icmpv4_echo_reply(7, seq)
            };
            let payload = [0u8; 56];
            let mut data = Vec::with_capacity(builder.size(payload.len()));
            builder.write(&mut data, &payload).expect("build a frame");
            let ts_us = 1_795_811_720_000_000 + i64::from(seq) * 1_000_000 + i as i64 * 120;
            let hint = DirectionHint {
                own: Some(a.0),
                peer: None,
            };
            out.push(Packet {
                ts_us,
                len: data.len() as u32,
                line: capture::format_line(label, ts_us, data.len() as u32, &data, hint, LineFormat::Text),
                data,
                iface: label.to_string(),
            });
        }
    }
    out
}

/// `snap` with the `port-drop` fault of `lab break` in the host's FORWARD chain, first:
/// c1 (10.50.0.2) to c2 (10.50.0.3) on tcp/80 dropped, everything else as recorded.
pub fn port_drop(snap: &Snapshot) -> Snapshot {
    let mut v = serde_json::to_value(snap).unwrap();
    let filter = v["firewall"]["iptables"][0]["tables"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["name"] == "filter")
        .unwrap();
    let rules = filter["rules"].as_array_mut().unwrap();
    for r in rules.iter_mut().filter(|r| r["chain"] == "FORWARD") {
        r["position"] = (r["position"].as_u64().unwrap() + 1).into();
    }
    rules.insert(
        0,
        serde_json::json!({"chain": "FORWARD", "position": 1,
            "spec": "-s 10.50.0.2/32 -d 10.50.0.3/32 -p tcp -m tcp --dport 80 -m comment --comment ctnet-fault -j DROP",
            "target": "DROP", "packets": 3, "bytes": 180, "owner": "other"}),
    );
    serde_json::from_value(v).unwrap()
}
