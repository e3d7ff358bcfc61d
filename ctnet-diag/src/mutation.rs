//! Seeded mutation test of everything that reads a snapshot file: thousands of mutated
//! recorded snapshots through the loader, the join, `veths`, `show`, `show TARGET`,
//! `check` and the dashboard. Every input is either refused as invalid input (exit 2)
//! or rendered, with no panic and no raw control character on any screen.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ctnet_core::check;
use ctnet_core::model::Snapshot;
use ctnet_core::text::is_unsafe;
use ctnet_core::topology::Topology;
use ctnet_tui::app::{Action, App, Event, Mode};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::Value;

use crate::render;

/// A small deterministic generator (xorshift64*): a failing case replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const HOSTILE: &[&str] = &[
    "\x1b]0;OWNED\x07",
    "\x1b[2J\x1b[H",
    "row\nFORGED",
    "\u{202e}evil",
    "\u{9b}31m",
    "",
    "..",
    "/",
    "lo",
    "eth0",
    "default",
    "10.0.0.1",
    "forwarding",
    "veth",
    "bridge",
];

fn hostile_value(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::String(HOSTILE[rng.below(HOSTILE.len())].to_string()),
        1 => Value::String("x".repeat(1 + rng.below(70_000))),
        2 => Value::from(u64::MAX),
        3 => Value::from(-1),
        4 => Value::from(1e300),
        5 => Value::Null,
        6 => Value::Array(Vec::new()),
        7 => Value::Object(Default::default()),
        _ => Value::from(rng.below(70_000) as u64),
    }
}

/// One structural mutation somewhere in the document: a value replaced by a hostile
/// one, a key removed, an array emptied or an element repeated, or a string poisoned.
fn mutate(rng: &mut Rng, v: &mut Value, depth: usize) {
    let descend = depth < 12 && rng.below(4) != 0;
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(rng.below(m.len())).cloned().unwrap_or_default();
            if descend {
                if let Some(child) = m.get_mut(&key) {
                    mutate(rng, child, depth + 1);
                }
            } else if rng.below(3) == 0 && key != "schema" {
                m.remove(&key);
            } else if let Some(child) = m.get_mut(&key) {
                *child = replacement(rng, child);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = rng.below(a.len());
            if descend {
                mutate(rng, &mut a[i], depth + 1);
            } else {
                match rng.below(3) {
                    0 => a.clear(),
                    1 => {
                        let copy = a[i].clone();
                        a.extend(std::iter::repeat_n(copy, 1 + rng.below(50)));
                    }
                    _ => a[i] = replacement(rng, &a[i]),
                }
            }
        }
        Value::String(s) => s.push_str(HOSTILE[rng.below(HOSTILE.len())]),
        other => *other = replacement(rng, other),
    }
}

/// Mostly a value of the same type (so the model still reads it and the renderers
/// meet it), sometimes anything at all.
fn replacement(rng: &mut Rng, old: &Value) -> Value {
    if rng.below(3) == 0 {
        return hostile_value(rng);
    }
    match old {
        Value::String(s) => Value::String(format!("{s}{}", HOSTILE[rng.below(HOSTILE.len())])),
        Value::Number(_) => Value::from([0u64, 1, 2, 255, 65_535, 4_294_967_295][rng.below(6)]),
        Value::Bool(b) => Value::Bool(!b),
        Value::Array(a) => Value::Array(a.iter().take(rng.below(a.len() + 1)).cloned().collect()),
        _ => old.clone(),
    }
}

/// Byte-level damage to the text: cut short, a byte flipped, junk inserted.
fn damage(rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    let at = rng.below(b.len());
    match rng.below(3) {
        0 => b.truncate(at),
        1 => b[at] ^= 1 << rng.below(8),
        _ => {
            let junk: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
            b.splice(at..at, junk);
        }
    }
    b
}

fn assert_text_clean(what: &str, text: &str) {
    let bad: Vec<char> = text.chars().filter(|&c| c != '\n' && is_unsafe(c)).collect();
    assert!(bad.is_empty(), "{what}: raw {bad:?}");
}

/// Everything a text command and the dashboard do with a loaded snapshot.
fn exercise(snap: &Snapshot) {
    let shown = ctnet_core::text::escaped(snap);
    let shown = shown.as_ref().unwrap_or(snap);
    let topo = Topology::build(shown);
    assert_text_clean("veths", &render::veths_table(&topo));
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
            mutate(&mut rng, &mut doc, 0);
            // Most mutations that the model refuses are taken back, so most cases reach
            // the renderers; the rest prove the refusals.
            if rng.below(10) < 8 && serde_json::from_value::<Snapshot>(doc.clone()).is_err() {
                doc = before;
            }
        }
        let mut bytes = serde_json::to_vec(&doc).unwrap();
        if rng.below(5) == 0 {
            bytes = damage(&mut rng, bytes);
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
