//! Seeded mutation test of everything that reads a snapshot file: thousands of mutated
//! recorded snapshots through the loader, the join, `veths`, `show`, `show TARGET`,
//! `check` and the dashboard. Every input is either refused as invalid input (exit 2)
//! or rendered, with no panic and no raw control character on any screen.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ctnet_core::check;
use ctnet_core::model::Snapshot;
use ctnet_core::prop::{Rng, mutate_json};
use ctnet_core::text::is_unsafe;
use ctnet_core::topology::Topology;
use ctnet_tui::app::{Action, App, Event, Mode};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::Value;

use crate::render;

fn assert_text_clean(what: &str, text: &str) {
    let bad: Vec<char> = text.chars().filter(|&c| c != '\n' && is_unsafe(c)).collect();
    assert!(bad.is_empty(), "{what}: raw {bad:?}");
}

/// Everything a text command and the dashboard do with a loaded snapshot.
fn exercise(snap: &Snapshot) {
    let shown = ctnet_core::text::escaped(snap);
    let shown = shown.as_ref().unwrap_or(snap);
    let topo = Topology::build(shown);
    let table = render::veths_table(&topo);
    assert_text_clean("veths", &table);
    if !topo.veths.is_empty() {
        // One row per veth and the header: no name forged a row.
        assert_eq!(table.lines().count(), topo.veths.len() + 1, "{table}");
    }
    assert_text_clean("show", &render::show_tree(shown, &topo));
    let raw_topo = Topology::build(snap);
    let mut names: Vec<String> = snap.containers.iter().map(|c| c.name.clone()).collect();
    names.extend(snap.netns.iter().take(3).map(|n| n.label()));
    for name in names.iter().take(4) {
        let Ok(target) = ctnet_core::target::resolve(snap, name) else {
            continue;
        };
        let shown_target = ctnet_core::text::escaped(&target);
        let view = render::target_view(shown, &topo, shown_target.as_ref().unwrap_or(&target));
        assert_text_clean("show TARGET", &view);
        let report = check::run(snap, &raw_topo, &target, None);
        assert_text_clean("check", &crate::cmd::check::render(&report, false));
        let _ = serde_json::to_string(&report).expect("reports serialise");
    }
    let mut app = App::new(Mode::Live, 2.0, true);
    app.on_event(Event::Snapshot(Box::new(snap.clone()), 3));
    let mut term = Terminal::new(TestBackend::new(100, 30)).expect("test terminal");
    for action in [
        Action::Down,
        Action::Down,
        Action::NextTab,
        Action::NextTab,
        Action::NextTab,
    ] {
        app.update(action);
        term.draw(|f| ctnet_tui::ui::draw(f, &app)).expect("draw");
        let bad: Vec<&str> = term
            .backend()
            .buffer()
            .content
            .iter()
            .map(|c| c.symbol())
            .filter(|s| s.contains(is_unsafe))
            .collect();
        assert!(bad.is_empty(), "dashboard cells: {bad:?}");
    }
}

#[test]
fn mutated_snapshot_files_are_refused_or_rendered_never_a_panic_nor_a_raw_control() {
    let fixtures = ["docker-host.json", "lab-faults.json", "lab-healthy.json"];
    let docs: Vec<Value> = fixtures
        .iter()
        .map(|f| {
            let path = format!("{}/../fixtures/{f}", env!("CARGO_MANIFEST_DIR"));
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        })
        .collect();
    let (mut loaded, mut refused) = (0, 0);
    const CASES: u64 = 3000;
    for seed in 1..=CASES {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        // The recorded Docker host most of the time (containers, images, rules).
        let base = match rng.below(10) {
            0..=6 => 0,
            7 | 8 => 1,
            _ => 2,
        };
        let mut doc = docs[base].clone();
        for _ in 0..1 + rng.below(4) {
            let before = doc.clone();
            mutate_json(&mut rng, &mut doc, "schema");
            // Most mutations that the model refuses are taken back, so most cases reach
            // the renderers; the rest prove the refusals.
            if rng.below(10) < 8 && serde_json::from_value::<Snapshot>(doc.clone()).is_err() {
                doc = before;
            }
        }
        let mut bytes = serde_json::to_vec(&doc).unwrap();
        if rng.below(5) == 0 {
            bytes = ctnet_core::prop::mutate_bytes(&mut rng, bytes, &[b"\\u001b", b"\"", b"\xff"]);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| match Snapshot::from_slice(&bytes) {
            Ok(snap) => {
                exercise(&snap);
                true
            }
            Err(e) => {
                // What `--from` turns into exit 2, with a message that is one clean line.
                assert_eq!(e.kind(), ctnet_core::ErrorKind::InvalidInput, "{e}");
                assert_text_clean("error", &e.to_string());
                assert!(!e.to_string().contains('\n'), "{e}");
                false
            }
        }));
        match outcome {
            Ok(true) => loaded += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("seed {seed} (base {}) panicked", fixtures[base]),
        }
    }
    eprintln!("mutation: {CASES} cases, {loaded} loaded and rendered, {refused} refused as invalid input");
    assert!(
        loaded > CASES / 4 && refused > CASES / 10,
        "{loaded} loaded, {refused} refused"
    );
}

#[test]
fn the_dashboard_shows_hostile_names_escaped_on_every_tab() {
    fn poison(v: &mut Value, key: &str) {
        match v {
            Value::String(s)
                if !matches!(key, "schema" | "kind" | "owner" | "type")
                    && s.parse::<std::net::IpAddr>().is_err()
                    && s.parse::<ipnet::IpNet>().is_err() =>
            {
                s.push_str("\x1b]0;OWNED\x07\n\u{202e}");
            }
            Value::Array(a) => a.iter_mut().for_each(|x| poison(x, key)),
            Value::Object(m) => m.iter_mut().for_each(|(k, x)| poison(x, k)),
            _ => {}
        }
    }
    let path = format!("{}/../fixtures/docker-host.json", env!("CARGO_MANIFEST_DIR"));
    let mut doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    poison(&mut doc, "");
    let snap = Snapshot::from_slice(&serde_json::to_vec(&doc).unwrap()).expect("still a snapshot");
    let mut app = App::new(Mode::Live, 2.0, true);
    app.on_event(Event::Snapshot(Box::new(snap), 3));
    let mut term = Terminal::new(TestBackend::new(160, 48)).expect("test terminal");
    let mut seen_escaped = false;
    for step in 0..14 {
        app.update(if step % 2 == 0 {
            Action::Down
        } else {
            Action::NextTab
        });
        term.draw(|f| ctnet_tui::ui::draw(f, &app)).expect("draw");
        let screen: String = term
            .backend()
            .buffer()
            .content
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(
            !screen.contains(is_unsafe),
            "a raw control on screen at step {step}"
        );
        seen_escaped |= screen.contains("\\x1b]0;OWNED\\x07\\n\\u{202e}");
    }
    assert!(seen_escaped, "the names are shown, escaped");
}
