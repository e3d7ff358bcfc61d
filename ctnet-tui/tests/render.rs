//! Whole screens drawn on ratatui's `TestBackend` from recorded snapshots, at 80x24
//! and 160x48: every tab, the help, a capture pane with decoded packets, a checks view
//! with a failing finding, the privilege banner.

mod common;

use common::{app_with, fixture, icmp_packets, later, select_port};
use ctnet_tui::app::{Action, App, Event, Mode, Tab};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn screen(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("a test terminal");
    t.draw(|f| ctnet_tui::ui::draw(f, app)).expect("draw");
    t.backend().to_string()
}

/// The healthy lab, one second apart (so rates and counting rules show), port vc1.
fn healthy_on_vc1() -> App {
    let snap = fixture("lab-healthy");
    let mut app = app_with(snap.clone());
    app.on_event(Event::Snapshot(Box::new(later(&snap, 40)), 9));
    select_port(&mut app, "vc1");
    app
}

#[test]
fn every_tab_at_both_sizes() {
    let mut app = healthy_on_vc1();
    for tab in Tab::ALL {
        app.update(Action::ShowTab(tab));
        if tab == Tab::Checks {
            app.update(Action::RunChecks);
        }
        for (w, h) in [(80, 24), (160, 48)] {
            insta::assert_snapshot!(
                format!("tab_{}_{w}x{h}", tab.title().to_lowercase()),
                screen(&app, w, h)
            );
        }
    }
}

#[test]
fn help_at_both_sizes() {
    let mut app = healthy_on_vc1();
    app.update(Action::ToggleHelp);
    insta::assert_snapshot!("help_80x24", screen(&app, 80, 24));
    insta::assert_snapshot!("help_160x48", screen(&app, 160, 48));
}

#[test]
fn capture_pane_with_decoded_packets() {
    let mut app = healthy_on_vc1();
    app.on_event(Event::CaptureStarted(vec!["vc1".into(), "eth0@c1".into()]));
    app.on_event(Event::Packets(icmp_packets("vc1", 6)));
    let small = screen(&app, 80, 24);
    assert!(small.contains("ICMP echo"), "{small}");
    insta::assert_snapshot!("capture_80x24", small);
    insta::assert_snapshot!("capture_160x48", screen(&app, 160, 48));
}

#[test]
fn checks_view_with_a_failing_finding() {
    let mut app = app_with(fixture("lab-faults"));
    select_port(&mut app, "vc2");
    app.update(Action::RunChecks);
    let big = screen(&app, 160, 48);
    assert!(big.contains("FAIL link.host_veth_up"), "{big}");
    insta::assert_snapshot!("checks_fail_160x48", big);
    insta::assert_snapshot!("checks_fail_80x24", screen(&app, 80, 24));
}

#[test]
fn a_docker_host_and_the_pair_picker() {
    let mut app = app_with(fixture("docker-host"));
    insta::assert_snapshot!("docker_160x48", screen(&app, 160, 48));
    select_port(&mut app, "veth8d6f617");
    app.update(Action::PickPeer);
    insta::assert_snapshot!("picker_80x24", screen(&app, 80, 24));
}

#[test]
fn unprivileged_banner_and_a_prompt() {
    let mut app = App::new(Mode::Live, 2.0, false);
    app.on_event(Event::Snapshot(Box::new(fixture("lab-healthy")), 5));
    app.update(Action::EditFilter);
    for c in "icmp".chars() {
        app.update(Action::Type(c));
    }
    insta::assert_snapshot!("banner_prompt_80x24", screen(&app, 80, 24));
}

#[test]
fn tiny_and_empty_screens_do_not_panic() {
    let mut app = healthy_on_vc1();
    app.update(Action::ToggleHelp);
    for (w, h) in [(1, 1), (10, 5), (40, 10), (80, 3)] {
        screen(&app, w, h);
    }
    let waiting = App::new(Mode::Live, 2.0, true);
    assert!(screen(&waiting, 80, 24).contains("scanning"));
    // An ended capture with packets, squeezed.
    let mut ended = healthy_on_vc1();
    ended.on_event(Event::Packets(icmp_packets("vc1", 3)));
    ended.on_event(Event::CaptureEnded(vec!["vc1: 6 captured".into()]));
    for h in 1..12 {
        screen(&ended, 80, h);
    }
    // A file with no netns at all.
    let mut empty = fixture("lab-healthy");
    empty.netns.clear();
    let mut app = App::new(Mode::Offline("empty.json".into()), 2.0, true);
    app.on_event(Event::Snapshot(Box::new(empty), 0));
    for tab in Tab::ALL {
        app.update(Action::ShowTab(tab));
        screen(&app, 80, 24);
    }
}

#[test]
fn scrolling_the_detail_stops_at_the_end_and_comes_back_at_once() {
    let mut app = healthy_on_vc1();
    app.update(Action::FocusNext);
    screen(&app, 80, 24);
    for _ in 0..50 {
        app.update(Action::PageDown);
    }
    let max = app.detail_max.get();
    assert_eq!(app.detail_scroll, max, "stops where the content ends");
    app.update(Action::Up);
    assert_eq!(app.detail_scroll, max.saturating_sub(1));
}

/// The find prompt over a folded tree, and the message log with a long message whole
/// (the status bar cuts it), at 80x24 and 160x48.
#[test]
fn find_prompt_and_the_message_log() {
    let mut app = healthy_on_vc1();
    app.update(Action::FoldAll);
    app.update(Action::Find);
    for c in "10.50.0.4".chars() {
        app.update(Action::Type(c));
    }
    insta::assert_snapshot!("find_80x24", screen(&app, 80, 24));
    app.update(Action::Submit);
    app.on_event(Event::Message(
        "capture: libpcap error: eth0@c1: SIOCGIFHWADDR: No such device (the interface went away while the capture was opening)"
            .into(),
    ));
    for (i, (t, _)) in app.log.iter_mut().enumerate() {
        *t = format!("12:00:0{i}");
    }
    app.update(Action::ShowLog);
    insta::assert_snapshot!("log_80x24", screen(&app, 80, 24));
    insta::assert_snapshot!("log_160x48", screen(&app, 160, 48));
}

/// Background checks on the faulty lab: red badges, the counts in the status bar, and
/// the Checks tab of vc2 without `c` pressed; then only the problems (`!`).
#[test]
fn health_at_a_glance() {
    let snap = fixture("lab-faults");
    let mut app = app_with(snap.clone());
    app.on_event(Event::Health(ctnet_tui::app::health_of(&snap), 2));
    select_port(&mut app, "vc2");
    app.update(Action::ShowTab(Tab::Checks));
    insta::assert_snapshot!("health_80x24", screen(&app, 80, 24));
    insta::assert_snapshot!("health_160x48", screen(&app, 160, 48));
    app.update(Action::ToggleProblems);
    insta::assert_snapshot!("problems_80x24", screen(&app, 80, 24));
}

#[test]
fn a_trace_on_screen_and_its_rule_marked_in_the_firewall() {
    let mut app = app_with(common::port_drop(&fixture("lab-healthy")));
    select_port(&mut app, "vc1");
    app.update(Action::Trace);
    for c in "c2 tcp 80".chars() {
        app.update(Action::Type(c));
    }
    insta::assert_snapshot!("trace_prompt_80x24", screen(&app, 80, 24));
    app.update(Action::Submit);
    for (w, h) in [(80, 24), (160, 48)] {
        insta::assert_snapshot!(format!("trace_{w}x{h}"), screen(&app, w, h));
    }
    app.update(Action::ShowTab(Tab::Firewall));
    insta::assert_snapshot!("trace_firewall_160x48", screen(&app, 160, 48));
    app.update(Action::ShowTab(Tab::Trace));
    app.on_event(Event::ProbeDone(Box::new(Err(
        "the probe needs tracefs: mount -t tracefs nodev /sys/kernel/tracing".into(),
    ))));
    insta::assert_snapshot!("trace_probe_failed_80x24", screen(&app, 80, 24));
}
