//! `App` driven by actions and events, with no terminal: what each key asks of the
//! runner, and how state follows new snapshots.

mod common;

use std::path::PathBuf;

use common::{app_with, fixture, icmp_packets, later, select_port};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ctnet_core::check::Status;
use ctnet_tui::app::{Action, App, Effect, Event, Focus, Mode, PANE_PACKETS, PromptKind, Tab};
use ctnet_tui::tree::Item;

fn key(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

#[test]
fn keys_map_to_actions_and_prompts_take_keys_first() {
    let mut app = app_with(fixture("lab-healthy"));
    let k = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    assert_eq!(app.keymap(k('q')), Some(Action::Quit));
    assert_eq!(app.keymap(k('C')), Some(Action::PickPeer));
    assert_eq!(app.keymap(k('4')), Some(Action::ShowTab(Tab::Routes)));
    assert_eq!(
        app.keymap(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Action::Quit)
    );
    app.update(Action::EditFilter);
    assert_eq!(
        app.keymap(k('q')),
        Some(Action::Type('q')),
        "q is text in a prompt"
    );
    app.update(Action::Cancel);
    assert!(app.prompt.is_none());
    app.on_event(key('q'));
    assert!(app.quit);
}

#[test]
fn p_on_a_port_captures_both_ends_of_its_veth_and_again_stops() {
    let mut app = app_with(fixture("lab-healthy"));
    select_port(&mut app, "vc1");
    let fx = app.on_event(key('p'));
    let [Effect::StartCapture { endpoints, filter }] = fx.as_slice() else {
        panic!("{fx:?}");
    };
    assert_eq!(filter, &None);
    let labels: Vec<&str> = endpoints.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["vc1", "eth0@c1"]);
    let host_end = &endpoints[0];
    assert_eq!(host_end.netns, app.snap.as_ref().unwrap().host);
    assert!(
        host_end.peer_mac.is_some(),
        "the host end knows its container's MAC"
    );
    assert_ne!(endpoints[1].netns, host_end.netns);
    app.on_event(Event::CaptureStarted(
        labels.iter().map(|s| s.to_string()).collect(),
    ));
    assert_eq!(app.on_event(key('p')), vec![Effect::StopCapture]);
}

#[test]
fn p_adds_selections_to_the_capture_and_takes_them_out_again() {
    let mut app = app_with(fixture("lab-healthy"));
    let labels = |fx: &[Effect]| -> Vec<String> {
        match fx {
            [Effect::StartCapture { endpoints, .. }] => endpoints.iter().map(|e| e.label.clone()).collect(),
            other => panic!("{other:?}"),
        }
    };
    select_port(&mut app, "vc1");
    app.update(Action::ToggleCapture);
    select_port(&mut app, "vc2");
    let fx = app.update(Action::ToggleCapture);
    assert_eq!(labels(&fx), ["vc1", "eth0@c1", "vc2", "eth0@c2"]);
    select_port(&mut app, "vc1");
    let fx = app.update(Action::ToggleCapture);
    assert_eq!(labels(&fx), ["vc2", "eth0@c2"]);
    assert_eq!(app.update(Action::StopCapture), vec![Effect::StopCapture]);
    assert!(app.capture.specs.is_empty());
    assert!(app.update(Action::StopCapture).is_empty(), "nothing left to stop");
}

#[test]
fn p_on_a_bridge_captures_it_promiscuously_and_offline_refuses() {
    let mut app = app_with(fixture("lab-healthy"));
    app.selected = 0;
    assert!(matches!(app.selected_item(), Some(Item::Bridge(b)) if b == "br0"));
    let fx = app.update(Action::ToggleCapture);
    assert!(
        matches!(fx.as_slice(), [Effect::StartCapture { endpoints, .. }] if endpoints.len() == 1 && endpoints[0].promisc)
    );
    let mut off = App::new(Mode::Offline(PathBuf::from("x.json")), 2.0, true);
    off.on_event(Event::Snapshot(Box::new(fixture("lab-healthy")), 1));
    assert!(off.update(Action::ToggleCapture).is_empty());
    assert!(
        off.message.as_deref().unwrap().contains("offline"),
        "{:?}",
        off.message
    );
    assert!(off.update(Action::Refresh).is_empty());
}

#[test]
fn a_filter_is_checked_before_it_is_taken_and_restarts_a_running_capture() {
    let mut app = app_with(fixture("lab-healthy"));
    select_port(&mut app, "vc2");
    app.update(Action::EditFilter);
    for c in "icmp and".chars() {
        app.update(Action::Type(c));
    }
    assert!(app.update(Action::Submit).is_empty());
    assert_eq!(app.capture.filter, None, "an invalid filter is not taken");
    assert!(
        app.message.as_deref().unwrap().contains("icmp and"),
        "{:?}",
        app.message
    );
    app.update(Action::ToggleCapture);
    app.on_event(Event::CaptureStarted(vec!["vc2".into(), "eth0@c2".into()]));
    app.update(Action::EditFilter);
    for c in "icmp".chars() {
        app.update(Action::Type(c));
    }
    let fx = app.update(Action::Submit);
    assert_eq!(app.capture.filter.as_deref(), Some("icmp"));
    assert!(matches!(fx.as_slice(), [Effect::StartCapture { filter: Some(f), .. }] if f == "icmp"));
}

#[test]
fn c_runs_the_checks_for_the_selection_and_shows_the_failure() {
    let mut app = app_with(fixture("lab-faults"));
    select_port(&mut app, "vc2");
    app.update(Action::RunChecks);
    assert_eq!(app.tab, Tab::Checks);
    let (_, report) = app.report.as_ref().expect("a report");
    assert_eq!(report.verdict, Status::Fail);
    assert!(
        report
            .checks
            .iter()
            .any(|f| f.id == "link.host_veth_up" && f.status == Status::Fail)
    );
    // A bridge is no container.
    app.selected = 0;
    app.update(Action::RunChecks);
    assert!(app.message.as_deref().unwrap().contains("select a container"));
}

#[test]
fn capital_c_picks_a_peer_and_runs_the_pair_checks() {
    let mut app = app_with(fixture("lab-faults"));
    select_port(&mut app, "vc1");
    app.update(Action::PickPeer);
    let picker = app.picker.clone().expect("a picker");
    assert!(
        picker
            .choices
            .iter()
            .all(|(k, _)| Some(*k) != app.selected_netns())
    );
    let c4 = picker
        .choices
        .iter()
        .position(|(_, name)| name.contains("c4"))
        .expect("c4 is a choice");
    for _ in 0..c4 {
        app.update(Action::Down);
    }
    app.update(Action::Submit);
    assert!(app.picker.is_none());
    let (keys, report) = app.report.as_ref().expect("a pair report");
    assert_eq!(keys.len(), 2);
    assert_eq!(report.peer.as_deref(), Some("c4"));
    assert!(
        report
            .checks
            .iter()
            .any(|f| f.id == "arp.peer_entry" && f.status == Status::Fail),
        "the stale ARP entry for c4 is found"
    );
}

#[test]
fn enter_folds_a_bridge_and_selection_follows_new_snapshots() {
    let snap = fixture("lab-healthy");
    let mut app = app_with(snap.clone());
    let all = app.rows.len();
    app.selected = 0;
    app.update(Action::Enter);
    assert_eq!(app.rows.len(), all - 4, "br0's four ports are folded");
    app.update(Action::Enter);
    assert_eq!(app.rows.len(), all);
    select_port(&mut app, "vc3");
    let item = app.selected_item().cloned();
    // A new scan keeps the selection on the same port, wherever its row moved.
    app.on_event(Event::Snapshot(Box::new(later(&snap, 5)), 10));
    assert_eq!(app.selected_item().cloned(), item);
    // The port vanishes: the app says so and keeps a valid selection.
    let mut gone = later(&snap, 5);
    gone.taken_at_unix_ms += 1000;
    let host = gone.host;
    let ns = gone.netns.iter_mut().find(|n| n.key == host).unwrap();
    ns.links.retain(|l| l.name != "vc3");
    app.on_event(Event::Snapshot(Box::new(gone), 10));
    assert!(
        app.message.as_deref().unwrap().contains("vc3 is gone"),
        "{:?}",
        app.message
    );
    assert!(app.selected < app.rows.len());
}

#[test]
fn rates_and_rule_counters_come_from_consecutive_snapshots() {
    let snap = fixture("lab-healthy");
    let mut app = app_with(snap.clone());
    assert!(app.rates.values().all(|r| r.history.is_empty()));
    app.on_event(Event::Snapshot(Box::new(later(&snap, 40)), 10));
    let host = snap.host;
    let r = &app.rates[&(host, "vc1".to_string())];
    assert!((r.rx_pps - 40.0).abs() < 1e-9, "{r:?}");
    assert!((r.tx_bps - 40.0 * 98.0 * 8.0).abs() < 1e-6, "{r:?}");
    assert_eq!(r.history.iter().copied().collect::<Vec<_>>(), [80]);
    assert!(
        app.rule_rates.values().any(|r| (r.pps - 3.0).abs() < 1e-9),
        "FORWARD rules count 3/s: {:?}",
        app.rule_rates
    );
}

#[test]
fn the_pane_keeps_the_newest_packets_and_w_asks_for_a_file() {
    let mut app = app_with(fixture("lab-healthy"));
    assert!(app.update(Action::WritePcap).is_empty());
    assert!(app.prompt.is_none(), "nothing to write yet");
    let burst = icmp_packets("vc1", (PANE_PACKETS / 2 + 10) as u16);
    let last = burst.last().cloned().unwrap();
    app.on_event(Event::Packets(burst));
    assert_eq!(app.capture.packets.len(), PANE_PACKETS);
    assert_eq!(app.capture.packets.back(), Some(&last));
    assert_eq!(app.capture.seen, (PANE_PACKETS + 20) as u64);
    app.update(Action::WritePcap);
    assert_eq!(app.prompt.as_ref().map(|p| p.kind), Some(PromptKind::PcapPath));
    let name = app.prompt.as_ref().unwrap().text.clone();
    assert!(name.ends_with(".pcap"), "one interface: plain pcap ({name})");
    // Packets from a second interface: the file offered is pcapng.
    app.update(Action::Cancel);
    app.on_event(Event::Packets(icmp_packets("vc2", 2)));
    app.update(Action::WritePcap);
    let name = app.prompt.as_ref().unwrap().text.clone();
    assert!(name.ends_with(".pcapng"), "two interfaces: pcapng ({name})");
    while app.prompt.as_ref().is_some_and(|p| !p.text.is_empty()) {
        app.update(Action::Backspace);
    }
    for c in "/tmp/x.pcap".chars() {
        app.update(Action::Type(c));
    }
    assert_eq!(
        app.update(Action::Submit),
        vec![Effect::WritePcap("/tmp/x.pcap".into())]
    );
}

#[test]
fn tab_cycles_panes_and_arrows_scroll_the_focused_one() {
    let mut app = app_with(fixture("lab-healthy"));
    app.on_event(Event::Packets(icmp_packets("vc1", 20)));
    assert_eq!(app.focus, Focus::Tree);
    app.update(Action::FocusNext);
    app.update(Action::Down);
    assert_eq!(
        (app.focus, app.detail_scroll, app.selected),
        (Focus::Detail, 1, 0)
    );
    app.update(Action::FocusNext);
    app.update(Action::Up);
    app.update(Action::Up);
    assert_eq!((app.focus, app.capture.scroll), (Focus::Capture, 2));
    app.update(Action::FocusPrev);
    app.update(Action::FocusPrev);
    assert_eq!(app.focus, Focus::Tree);
    app.update(Action::NextTab);
    assert_eq!(app.tab, Tab::Fdb);
    app.update(Action::PrevTab);
    app.update(Action::PrevTab);
    assert_eq!(app.tab, Tab::Trace, "the last tab, wrapping");
}

#[test]
fn r_asks_for_a_scan_and_s_for_a_file() {
    let mut app = app_with(fixture("lab-healthy"));
    assert_eq!(app.update(Action::Refresh), vec![Effect::Refresh]);
    app.update(Action::SaveSnapshot);
    assert_eq!(
        app.prompt.as_ref().map(|p| p.kind),
        Some(PromptKind::SnapshotPath)
    );
    let fx = app.update(Action::Submit);
    assert!(
        matches!(fx.as_slice(), [Effect::SaveSnapshot(p)] if p.to_string_lossy().starts_with("ctnet-snapshot-"))
    );
}

#[test]
fn an_unprivileged_live_view_says_what_works_and_what_needs_root() {
    let app = App::new(Mode::Live, 2.0, false);
    assert!(app.banner[0].contains("Not root"), "{:?}", app.banner);
    assert!(app.banner[0].contains("sudo"));
    let offline = App::new(Mode::Offline("f.json".into()), 2.0, false);
    assert!(offline.banner.is_empty(), "a file needs no privilege");
}

#[test]
fn a_host_update_refreshes_the_host_and_keeps_every_other_netns() {
    let snap = fixture("lab-healthy");
    let mut app = app_with(snap.clone());
    // A host-only scan: the host netns alone, counters moved, one second later.
    let mut host_only = later(&snap, 10);
    let host = host_only.host;
    host_only.netns.retain(|n| n.key == host);
    for l in &mut host_only.netns[0].links {
        l.ethtool = None;
    }
    app.on_event(Event::HostUpdate(Box::new(host_only), 3));
    let merged = app.snap.as_ref().unwrap();
    assert_eq!(merged.netns.len(), snap.netns.len(), "other netns are kept");
    assert_eq!(merged.taken_at_unix_ms, snap.taken_at_unix_ms + 1000);
    let r = &app.rates[&(host, "vc1".to_string())];
    assert!((r.rx_pps - 10.0).abs() < 1e-9, "{r:?}");
    let vc1 = |s: &ctnet_core::model::Snapshot| {
        s.host_netns()
            .unwrap()
            .link_by_name("vc1")
            .unwrap()
            .ethtool
            .clone()
    };
    assert_eq!(vc1(merged), vc1(&snap), "ethtool counters come from full scans");
    assert_eq!(app.light_ms, Some(3));
    // The tree still resolves every port to its container.
    select_port(&mut app, "vc4");
    assert!(app.selected_netns().is_some());
}

#[test]
fn container_rates_hold_between_full_scans() {
    let snap = fixture("lab-healthy");
    let mut app = app_with(snap.clone());
    let second = later(&snap, 10);
    app.on_event(Event::Snapshot(Box::new(second.clone()), 9));
    let c1 = second
        .netns
        .iter()
        .find(|n| n.label() == "c1")
        .map(|n| n.key)
        .unwrap();
    let before = app.rates[&(c1, "eth0".to_string())].clone();
    assert!((before.rx_pps - 10.0).abs() < 1e-9, "{before:?}");
    // A host-only scan a second later: c1's counters in it are the old ones.
    let mut host_only = later(&second, 30);
    let host = host_only.host;
    host_only.netns.retain(|n| n.key == host);
    app.on_event(Event::HostUpdate(Box::new(host_only), 3));
    assert_eq!(
        app.rates[&(c1, "eth0".to_string())],
        before,
        "container rates wait for a full scan"
    );
    assert!((app.rates[&(host, "vc1".to_string())].rx_pps - 30.0).abs() < 1e-9);
}

#[test]
fn an_endpoint_that_did_not_open_is_tried_again_by_p() {
    let mut app = app_with(fixture("lab-healthy"));
    select_port(&mut app, "vc1");
    app.update(Action::ToggleCapture);
    // The container end could not be opened.
    app.on_event(Event::CaptureStarted(vec!["vc1".into()]));
    assert_eq!(app.capture.specs.len(), 1);
    let fx = app.update(Action::ToggleCapture);
    assert!(
        matches!(fx.as_slice(), [Effect::StartCapture { endpoints, .. }] if endpoints.len() == 2),
        "{fx:?}"
    );
}

/// `w` with packets from two interfaces writes pcapng: Debian's tshark names the
/// interface of each packet; from one interface, plain pcap.
#[test]
fn the_pane_is_written_as_pcapng_naming_each_interface() {
    let mut app = app_with(fixture("lab-healthy"));
    app.on_event(Event::Packets(icmp_packets("eth0@c1", 2)));
    let dir = std::env::temp_dir().join(format!("ctnet-tui-pcapng-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let one = dir.join("one.pcap");
    let (n, format) = ctnet_tui::run::write_pcap(&one, &app).unwrap();
    assert_eq!((n, format.name()), (4, "pcap"));
    assert_eq!(&std::fs::read(&one).unwrap()[..4], &0xa1b2_c3d4u32.to_ne_bytes());
    app.on_event(Event::Packets(icmp_packets("vc1", 1)));
    let two = dir.join("two.pcap");
    let (n, format) = ctnet_tui::run::write_pcap(&two, &app).unwrap();
    assert_eq!(
        (n, format.name()),
        (6, "pcapng"),
        "two interfaces: pcapng whatever the name"
    );
    let o = std::process::Command::new("tshark")
        .args([
            "-r",
            two.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
        ])
        .output()
        .expect("tshark (scripts/deps.sh installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        names,
        ["eth0@c1"; 4].into_iter().chain(["vc1"; 2]).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Prompts edit as readline does: Ctrl-U, Ctrl-W, Ctrl-K, Ctrl-A/E, arrows and
/// Delete at the cursor, and Up/Down recall what was given before. A Ctrl key that is
/// no edit types nothing (Ctrl-U once typed a literal `u` into the filter).
#[test]
fn prompts_edit_like_readline_and_remember_what_was_given() {
    let mut app = app_with(fixture("lab-healthy"));
    let mut press = |app: &mut App, code: KeyCode, m: KeyModifiers| {
        if let Some(a) = app.keymap(KeyEvent::new(code, m)) {
            app.update(a)
        } else {
            Vec::new()
        }
    };
    let typed =
        |app: &mut App, s: &str, press: &mut dyn FnMut(&mut App, KeyCode, KeyModifiers) -> Vec<Effect>| {
            for c in s.chars() {
                press(app, KeyCode::Char(c), KeyModifiers::NONE);
            }
        };
    let ctrl = KeyModifiers::CONTROL;
    let none = KeyModifiers::NONE;
    app.update(Action::EditFilter);
    let text = |app: &App| {
        let p = app.prompt.as_ref().expect("a prompt is open");
        (p.text.clone(), p.cursor)
    };
    press(&mut app, KeyCode::Char('u'), ctrl);
    assert_eq!(
        text(&app),
        (String::new(), 0),
        "Ctrl-U on an empty prompt types no u"
    );
    typed(&mut app, "icmp and host 10.0.0.9", &mut press);
    press(&mut app, KeyCode::Char('w'), ctrl);
    assert_eq!(
        text(&app),
        ("icmp and host ".into(), 14),
        "Ctrl-W erases the word"
    );
    press(&mut app, KeyCode::Char('w'), ctrl);
    assert_eq!(text(&app).0, "icmp and ", "then the word before, over the space");
    press(&mut app, KeyCode::Char('a'), ctrl);
    typed(&mut app, "(", &mut press);
    press(&mut app, KeyCode::End, none);
    press(&mut app, KeyCode::Backspace, none);
    typed(&mut app, ") or arp", &mut press);
    assert_eq!(text(&app).0, "(icmp and) or arp");
    for _ in 0..4 {
        press(&mut app, KeyCode::Left, none);
    }
    press(&mut app, KeyCode::Char('k'), ctrl);
    assert_eq!(
        text(&app),
        ("(icmp and) or".into(), 13),
        "Ctrl-K cuts from the cursor"
    );
    press(&mut app, KeyCode::Home, none);
    press(&mut app, KeyCode::Delete, none);
    press(&mut app, KeyCode::Right, none);
    press(&mut app, KeyCode::Right, none);
    press(&mut app, KeyCode::Right, none);
    press(&mut app, KeyCode::Char('u'), ctrl);
    assert_eq!(
        text(&app),
        ("p and) or".into(), 0),
        "Ctrl-U erases before the cursor"
    );
    press(&mut app, KeyCode::Char('e'), ctrl);
    press(&mut app, KeyCode::Char('x'), ctrl);
    assert_eq!(
        text(&app),
        ("p and) or".into(), 9),
        "Ctrl-X is no edit and types nothing"
    );
    press(&mut app, KeyCode::Char('u'), ctrl);
    typed(&mut app, "icmp", &mut press);
    press(&mut app, KeyCode::Enter, none);
    assert_eq!(app.capture.filter.as_deref(), Some("icmp"));
    app.update(Action::EditFilter);
    press(&mut app, KeyCode::Char('u'), ctrl);
    typed(&mut app, "arp", &mut press);
    press(&mut app, KeyCode::Enter, none);
    // Up recalls, newest first; Down goes back to what was being typed.
    app.update(Action::EditFilter);
    press(&mut app, KeyCode::Char('u'), ctrl);
    typed(&mut app, "tcp", &mut press);
    press(&mut app, KeyCode::Up, none);
    assert_eq!(text(&app), ("arp".into(), 3));
    press(&mut app, KeyCode::Up, none);
    assert_eq!(text(&app).0, "icmp");
    press(&mut app, KeyCode::Up, none);
    assert_eq!(text(&app).0, "icmp", "the oldest stays");
    press(&mut app, KeyCode::Down, none);
    assert_eq!(text(&app).0, "arp");
    press(&mut app, KeyCode::Down, none);
    assert_eq!(text(&app).0, "tcp", "back to what was typed");
    press(&mut app, KeyCode::Esc, none);
    // Each kind of prompt has its own history.
    app.on_event(Event::Packets(icmp_packets("vc1", 1)));
    app.update(Action::WritePcap);
    let offered = text(&app).0;
    press(&mut app, KeyCode::Up, none);
    assert_eq!(text(&app).0, offered, "no filter is offered as a file name");
}

/// Find as a new user would on a big host: by IP, MAC, ifindex or netns name, with n/N
/// wrapping through the matches; a row inside a folded bridge is found and its bridge
/// unfolded; Esc goes back to where the find started; every message is kept in a log.
#[test]
fn find_jumps_to_a_row_by_ip_mac_ifindex_or_name_and_n_n_walk_the_matches() {
    let mut app = app_with(fixture("lab-healthy"));
    let label = |app: &App| app.rows[app.selected].label.clone();
    let find = |app: &mut App, q: &str| {
        app.update(Action::Find);
        for c in q.chars() {
            app.update(Action::Type(c));
        }
    };
    // Incremental: each key moves the selection; Enter keeps it.
    find(&mut app, "10.50.0.4");
    assert!(label(&app).starts_with("vc3"), "{}", label(&app));
    app.update(Action::Submit);
    assert!(
        app.message
            .as_deref()
            .unwrap_or("")
            .contains("found \"10.50.0.4\""),
        "{:?}",
        app.message
    );
    // By the container's MAC, upper case typed.
    find(&mut app, "56:9D:79");
    app.update(Action::Submit);
    assert!(label(&app).starts_with("vc4"), "{}", label(&app));
    // By ifindex: vc2 is if4 on the host, and another netns has an if4 too.
    find(&mut app, "if4");
    app.update(Action::Submit);
    let mut hits = vec![label(&app)];
    app.update(Action::FindNext);
    hits.push(label(&app));
    assert!(hits.iter().any(|l| l.starts_with("vc2")), "{hits:?}");
    // Every port of br0 matches 10.50.0.: n walks them and wraps, N goes back.
    find(&mut app, "10.50.0.");
    app.update(Action::Submit);
    let first = label(&app);
    let mut seen = vec![first.clone()];
    for _ in 0..10 {
        app.update(Action::FindNext);
        seen.push(label(&app));
        if label(&app) == first {
            break;
        }
    }
    // The bridge (10.50.0.1) and its four ports, then around to the first again.
    assert_eq!(seen.len(), 6, "n wraps around: {seen:?}");
    assert_eq!(seen.first(), seen.last(), "n wraps around: {seen:?}");
    app.update(Action::FindPrev);
    assert_eq!(label(&app), seen[4], "N goes back: {seen:?}");
    // Folded away: found all the same, its bridge unfolded.
    app.update(Action::FoldAll);
    assert!(app.rows.iter().all(|r| !r.label.starts_with("vc")), "folded");
    find(&mut app, "c3");
    app.update(Action::Submit);
    assert!(label(&app).starts_with("vc3"), "{}", label(&app));
    // Esc goes back to where the find started.
    app.update(Action::First);
    let top = label(&app);
    find(&mut app, "lonely");
    assert!(label(&app).contains("lonely"), "{}", label(&app));
    app.update(Action::Cancel);
    assert_eq!(label(&app), top, "Esc returns");
    find(&mut app, "no-such-thing");
    assert_eq!(label(&app), top, "no match: the selection stays");
    app.update(Action::Submit);
    // The log has what was said, whole.
    assert!(
        app.log.iter().any(|(_, m)| m.contains("found \"10.50.0.4\"")),
        "{:?}",
        app.log
    );
    app.update(Action::ShowLog);
    assert!(app.show_log);
    app.on_event(key('x'));
    assert!(!app.show_log, "any key closes the messages");
}

/// Home/End/g/G jump to the ends; PgUp/PgDn move by the screen the tree was drawn on;
/// `-` folds every bridge and `+` unfolds them.
#[test]
fn jumps_pages_and_folding_everything() {
    let mut app = app_with(fixture("lab-healthy"));
    let last = app.rows.len() - 1;
    app.on_event(key('G'));
    assert_eq!(app.selected, last);
    app.on_event(key('g'));
    assert_eq!(app.selected, 0);
    app.on_event(Event::Key(KeyEvent::new(KeyCode::End, KeyModifiers::NONE)));
    assert_eq!(app.selected, last);
    app.on_event(Event::Key(KeyEvent::new(KeyCode::Home, KeyModifiers::NONE)));
    assert_eq!(app.selected, 0);
    app.tree_page.set(4);
    app.update(Action::PageDown);
    assert_eq!(app.selected, 3, "a screen of 4 rows, one kept in view");
    app.update(Action::PageUp);
    assert_eq!(app.selected, 0);
    let all = app.rows.len();
    app.on_event(key('-'));
    assert!(app.rows.len() < all, "folded: {} of {all}", app.rows.len());
    app.on_event(key('+'));
    assert_eq!(app.rows.len(), all);
}

/// The background checks (what `ctnet-diag check` says of each container, no probe)
/// turn the badges red without a key pressed, the bridge takes its worst port, the
/// status bar counts them, `!` keeps only the problems, and the Checks tab of a
/// selection shows its findings.
#[test]
fn background_checks_color_the_badges_and_the_problem_filter_keeps_them() {
    use ctnet_tui::tree::Badge;
    // Healthy: nothing fails; the isolated netns has no checks.
    let healthy = fixture("lab-healthy");
    let mut app = app_with(healthy.clone());
    app.on_event(Event::Health(ctnet_tui::app::health_of(&healthy), 2));
    assert_eq!(app.problem_counts().0, 0, "{:?}", app.health.keys());
    assert!(
        app.health.len() >= 4,
        "every container is checked: {}",
        app.health.len()
    );

    // Faults: c1..c4 each FAIL in `ctnet-diag check --from fixtures/lab-faults.json`.
    let faults = fixture("lab-faults");
    let mut app = app_with(faults.clone());
    let badge = |app: &App, port: &str| {
        app.rows
            .iter()
            .find(|r| matches!(&r.item, Item::Port { port: p, .. } if p == port))
            .map(|r| r.badge)
    };
    assert_eq!(badge(&app, "vc1"), Some(Badge::Ok), "green before the checks");
    app.on_event(Event::Health(ctnet_tui::app::health_of(&faults), 2));
    for port in ["vc1", "vc2", "vc4"] {
        assert_eq!(badge(&app, port), Some(Badge::Bad), "{port}");
    }
    let bridge = app
        .rows
        .iter()
        .find(|r| matches!(r.item, Item::Bridge(_)))
        .unwrap();
    assert_eq!(bridge.badge, Badge::Bad, "the bridge takes its worst port");
    let (fail, _) = app.problem_counts();
    assert!(fail >= 4, "c1..c4 fail: {fail}");
    // Folded, the bridge still shows it.
    app.update(Action::FoldAll);
    let bridge = app
        .rows
        .iter()
        .find(|r| matches!(r.item, Item::Bridge(_)))
        .unwrap();
    assert_eq!(bridge.badge, Badge::Bad);
    app.update(Action::UnfoldAll);
    // Only the problems: the isolated netns (no checks) goes, the failing ports stay.
    let all = app.rows.len();
    app.on_event(key('!'));
    assert!(app.only_problems);
    assert!(app.rows.len() < all, "{} of {all}", app.rows.len());
    assert!(
        app.rows.iter().all(|r| !r.label.contains("lonely")),
        "{:?}",
        app.rows
    );
    assert!(badge(&app, "vc2").is_some(), "a failing port stays");
    app.on_event(key('!'));
    assert_eq!(app.rows.len(), all);
    // The selection's findings without pressing c.
    select_port(&mut app, "vc2");
    app.update(Action::ShowTab(Tab::Checks));
    let c2 = app.selected_netns().unwrap();
    let report = &app.health[&c2];
    assert!(
        report
            .checks
            .iter()
            .any(|f| f.status == Status::Fail && f.id == "link.iface_up"),
        "{report:?}"
    );
}

/// A demo's fault: a banner names it and the key that undoes it; `u` asks the runner
/// to undo it, and once undone the banner goes and a scan is asked for.
#[test]
fn the_demo_fault_banner_and_u_to_undo_it() {
    let mut app = app_with(fixture("lab-healthy"));
    app.on_event(key('u'));
    assert!(
        app.message
            .as_deref()
            .unwrap_or("")
            .contains("no fault is active"),
        "{:?}",
        app.message
    );
    app.set_fault(Some(
        "stale-arp on demo-c1, peer demo-c2 (a wrong MAC for demo-c2)".into(),
    ));
    assert!(app.banner[0].starts_with("Fault stale-arp on demo-c1") && app.banner[0].contains("u undoes it"));
    assert_eq!(app.on_event(key('u')), vec![Effect::UndoFault]);
    assert_eq!(
        app.on_event(Event::FaultUndone(Err(
            "ip: RTNETLINK answers: No such device".into()
        ))),
        Vec::new()
    );
    assert!(app.fault.is_some(), "still active after a failed undo");
    assert!(
        app.message
            .as_deref()
            .unwrap_or("")
            .contains("could not be undone")
    );
    assert_eq!(
        app.on_event(Event::FaultUndone(Ok("stale-arp undone".into()))),
        vec![Effect::Refresh]
    );
    assert!(app.fault.is_none() && app.banner.iter().all(|b| !b.starts_with("Fault ")));
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        app.on_event(key(c));
    }
}

#[test]
fn t_traces_from_the_selection_names_the_rule_and_x_probes_it_off_the_ui_thread() {
    use ctnet_core::flow::{HopVerdict, L4, Reach};
    use ctnet_tui::app::{ProbeState, ProbeTo};
    let mut app = app_with(common::port_drop(&fixture("lab-healthy")));
    // Nothing to trace from on a bridge row.
    app.selected = 0;
    app.on_event(key('t'));
    assert!(app.prompt.is_none());
    assert!(
        app.message.as_deref().unwrap().contains("select a container"),
        "{:?}",
        app.message
    );
    select_port(&mut app, "vc1");
    assert!(app.on_event(key('x')).is_empty(), "nothing traced yet");
    assert!(app.message.as_deref().unwrap().starts_with("nothing traced yet"));
    app.on_event(key('t'));
    assert_eq!(app.prompt.as_ref().map(|p| p.kind), Some(PromptKind::TraceTo));
    typed(&mut app, "c2 tcp 80");
    app.on_event(Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    assert_eq!(app.tab, Tab::Trace);
    let tv = app.trace.clone().expect("a trace");
    assert_eq!(tv.spec.l4, L4::Tcp(80));
    assert_eq!(tv.trace.verdict, Reach::Unreachable, "{:#?}", tv.trace);
    let drop = tv
        .trace
        .hops
        .iter()
        .find(|h| h.verdict == HopVerdict::Drop)
        .expect("a drop hop");
    assert!(drop.rule.as_deref().unwrap().contains("--dport 80"), "{drop:?}");
    assert_eq!(drop.rule_ref.as_ref().unwrap().position, Some(1));
    assert!(
        app.message.as_deref().unwrap().contains("UNREACHABLE"),
        "{:?}",
        app.message
    );
    // The same flow on another port, and ICMP, pass the DROP.
    app.on_event(key('t'));
    typed(&mut app, "c2 --tcp 81");
    app.on_event(Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    assert_eq!(app.trace.as_ref().unwrap().spec.l4, L4::Tcp(81));
    assert!(
        app.trace
            .as_ref()
            .unwrap()
            .trace
            .hops
            .iter()
            .all(|h| h.verdict != HopVerdict::Drop)
    );
    // Up recalls the earlier destination.
    app.on_event(key('t'));
    app.on_event(Event::Key(KeyEvent::new(KeyCode::Up, KeyModifiers::NONE)));
    assert_eq!(app.prompt.as_ref().unwrap().text, "c2 --tcp 81");
    app.on_event(Event::Key(KeyEvent::new(KeyCode::Up, KeyModifiers::NONE)));
    assert_eq!(app.prompt.as_ref().unwrap().text, "c2 tcp 80");
    app.on_event(Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    // x asks the runner for the probe; the UI goes on, the result comes as an event.
    let fx = app.on_event(key('x'));
    let [Effect::Probe(req, _)] = fx.as_slice() else {
        panic!("{fx:?}");
    };
    assert_eq!(req.flow, ctnet_core::probe::Flow::Tcp(80));
    assert!(matches!(&req.to, ProbeTo::Peer(p) if p.target == "c2"), "{req:?}");
    assert_eq!(req.command, "ctnet-diag trace c1 c2 --tcp 80");
    assert_eq!(app.trace.as_ref().unwrap().probe, ProbeState::Running);
    assert!(app.on_event(key('x')).is_empty(), "one probe at a time");
    let report = ctnet_core::check::Report {
        schema: ctnet_core::check::CHECK_SCHEMA.into(),
        target: "c1".into(),
        peer: None,
        verdict: Status::Fail,
        checks: Vec::new(),
    };
    app.on_event(Event::ProbeDone(Box::new(Ok(report.clone()))));
    assert_eq!(app.trace.as_ref().unwrap().probe, ProbeState::Done(report));
    app.on_event(Event::ProbeDone(Box::new(Err("tracefs is not mounted".into()))));
    assert!(app.message.as_deref().unwrap().contains("tracefs is not mounted"));
}

#[test]
fn the_trace_prompt_says_what_is_wrong_and_t_capital_picks_the_destination() {
    let mut app = app_with(fixture("lab-healthy"));
    select_port(&mut app, "vc1");
    for (input, want) in [
        ("c2 tcp", "tcp needs a port"),
        ("c2 tcp 0", "0 is not a port"),
        ("c2 sctp 9", "sctp 9 is not a protocol"),
        ("nosuch", "nosuch"),
    ] {
        app.on_event(key('t'));
        typed(&mut app, input);
        app.on_event(Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        assert!(app.trace.is_none(), "{input}");
        let m = app.message.clone().unwrap_or_default();
        assert!(m.contains(want), "{input}: {m}");
    }
    // host, external and an address are destinations too.
    for input in ["host udp 53", "external tcp 443", "10.50.0.4"] {
        app.on_event(key('t'));
        typed(&mut app, input);
        app.on_event(Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        let tv = app
            .trace
            .as_ref()
            .unwrap_or_else(|| panic!("{input}: {:?}", app.message));
        assert_eq!(tv.to, input);
    }
    assert_eq!(
        app.trace.as_ref().unwrap().trace.flow.dst_addr.to_string(),
        "10.50.0.4"
    );
    // T: a list of names a trace takes, the host last; Enter fills the prompt.
    app.on_event(key('T'));
    let pk = app.picker.clone().expect("a picker");
    let names: Vec<&str> = pk.choices.iter().map(|c| c.1.as_str()).collect();
    assert!(names.contains(&"c2") && !names.contains(&"c1"), "{names:?}");
    assert_eq!(names.last(), Some(&"host"));
    app.on_event(key('j'));
    app.on_event(Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    let p = app.prompt.clone().expect("the trace prompt");
    assert_eq!(p.kind, PromptKind::TraceTo);
    assert_eq!(p.text, format!("{} ", names[1]));
    // Offline, a file cannot be probed.
    let mut off = App::new(Mode::Offline(PathBuf::from("x.json")), 2.0, true);
    off.set_snapshot(fixture("lab-healthy"));
    select_port(&mut off, "vc1");
    off.on_event(key('t'));
    typed(&mut off, "c2");
    off.on_event(Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    assert!(off.on_event(key('x')).is_empty());
    assert!(
        off.message.as_deref().unwrap().contains("offline"),
        "{:?}",
        off.message
    );
}

#[test]
fn full_scans_space_out_on_a_host_whose_full_scan_is_slow() {
    use ctnet_tui::run::full_every;
    use std::time::Duration;
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    assert_eq!(full_every(s(2), ms(50)), s(20));
    assert_eq!(full_every(s(5), ms(10)), s(50), "ten intervals at least");
    assert_eq!(full_every(s(2), ms(230)), s(46), "0.5 % of the time at most");
    use ctnet_tui::run::light_every;
    assert_eq!(light_every(s(2), ms(12)), s(2));
    assert_eq!(light_every(s(2), ms(40)), s(4), "1 % of the time at most");
    assert_eq!(light_every(s(2), ms(43)), s(5), "in whole seconds");
}

#[test]
fn a_scan_the_poller_prepared_is_taken_in_as_it_comes_and_a_host_only_one_merged_in_place() {
    use ctnet_core::topology::Topology;
    use ctnet_tui::app::Scanned;
    use std::time::Duration;
    let snap = fixture("lab-healthy");
    let mut app = App::new(Mode::Live, 2.0, true);
    app.on_event(Event::Scanned(Box::new(Scanned {
        topo: Topology::build(&snap),
        snap: snap.clone(),
        full: true,
        ms: 40,
        every: Duration::from_secs(2),
    })));
    assert_eq!(app.scan_ms, Some(40));
    assert_eq!(app.rows.len(), app_with(snap.clone()).rows.len());
    // A host-only scan one second later: the host netns alone, with the join of the
    // merged host (built by the poller), and a longer time between scans.
    let mut host_only = later(&snap, 10);
    let host = host_only.host;
    host_only.netns.retain(|n| n.key == host);
    for l in &mut host_only.netns[0].links {
        l.ethtool = None;
    }
    let mut merged = snap.clone();
    ctnet_tui::app::merge_host(&mut merged, &host_only);
    app.on_event(Event::Scanned(Box::new(Scanned {
        topo: Topology::build(&merged),
        snap: host_only,
        full: false,
        ms: 3,
        every: Duration::from_secs(4),
    })));
    let now = app.snap.as_ref().unwrap();
    assert_eq!(now.netns.len(), snap.netns.len(), "other netns are kept");
    assert_eq!(now, &merged, "merged in place as the poller merged it");
    assert_eq!((app.light_ms, app.interval_s), (Some(3), 4.0));
    let r = &app.rates[&(host, "vc1".to_string())];
    assert!((r.rx_pps - 10.0).abs() < 1e-9, "{r:?}");
    select_port(&mut app, "vc4");
    assert!(app.selected_netns().is_some());
}

#[test]
fn the_help_is_the_key_map_and_every_key_is_shown_once() {
    use ctnet_tui::app::KEYMAP;
    let glyph = |c: &KeyCode| -> String {
        match c {
            KeyCode::Char(ch) => ch.to_string(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            other => format!("{other:?}"),
        }
    };
    let mut seen = std::collections::HashSet::new();
    for b in KEYMAP {
        for (code, action) in b.keys {
            assert!(seen.insert(*code), "{code:?} is bound twice");
            let g = glyph(code);
            // `1-7` stands for the digits; `]`, `[` and `=` are aliases of their row.
            let shown = b.shown.contains(&g)
                || b.what.contains(&g)
                || (g.len() == 1 && g.chars().all(|c| c.is_ascii_digit()) && b.shown.contains("1-7"))
                || matches!(g.as_str(), "]" | "[" | "=");
            assert!(shown, "{code:?} ({action:?}) is not shown in {:?}", b.shown);
            // And the app does what the row says.
            let app = App::new(Mode::Live, 2.0, false);
            assert_eq!(
                app.keymap(crossterm::event::KeyEvent::from(*code)).as_ref(),
                Some(action),
                "{code:?}"
            );
        }
    }
    assert!(
        KEYMAP.iter().filter(|b| b.keys.is_empty()).count() == 1,
        "only the prompt row has no key"
    );
}
