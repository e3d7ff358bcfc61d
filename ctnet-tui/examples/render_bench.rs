//! Benchmark (not a test): how long the dashboard takes to take in a snapshot and to
//! draw a frame, on ratatui's TestBackend, for a recorded host.
//!
//!   cargo run --release -p ctnet-tui --example render_bench -- SNAPSHOT.json [FRAMES]

use std::time::{Duration, Instant};

use ctnet_core::model::Snapshot;
use ctnet_tui::app::{Action, App, Event, Mode, Tab};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| ms(v[((v.len() - 1) as f64 * q).round() as usize]);
    (p(0.5), p(0.99), ms(*v.last().unwrap_or(&Duration::ZERO)))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: render_bench SNAPSHOT.json [FRAMES]");
        std::process::exit(2);
    };
    let frames: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(300);
    let snap = match Snapshot::load(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("render_bench: {e}");
            std::process::exit(2);
        }
    };
    let mut app = App::new(Mode::Live, 2.0, true);
    // Taking in a snapshot: the topology join, the tree, rates and rule counters.
    let mut takes = Vec::new();
    for i in 0..20u64 {
        let mut s = snap.clone();
        s.taken_at_unix_ms += i * 2000;
        let t0 = Instant::now();
        app.on_event(Event::Snapshot(Box::new(s), 0));
        takes.push(t0.elapsed());
    }
    let (p50, p99, max) = stats(takes);
    println!(
        "{} netns, {} tree rows; take in a raw snapshot (join on the UI thread): p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        snap.netns.len(),
        app.rows.len()
    );
    // What the poller hands over: the join built on its thread.
    let mut takes = Vec::new();
    for i in 0..20u64 {
        let mut s = snap.clone();
        s.taken_at_unix_ms += 40_000 + i * 2000;
        let topo = ctnet_core::topology::Topology::build(&s);
        let ev = Event::Scanned(Box::new(ctnet_tui::app::Scanned {
            snap: s,
            topo,
            full: i % 10 == 0,
            ms: 0,
            every: std::time::Duration::from_secs(2),
        }));
        let t0 = Instant::now();
        app.on_event(ev);
        takes.push(t0.elapsed());
    }
    let (p50, p99, max) = stats(takes);
    println!(
        "take in a scan the poller prepared (the dashboard's path): p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms"
    );
    // The background checks of every container (the poller runs them after each full
    // scan, off the UI thread), then taking their result in (on it).
    let mut checks = Vec::new();
    let mut health = Default::default();
    for _ in 0..5 {
        let t0 = Instant::now();
        health = ctnet_tui::app::health_of(&snap);
        checks.push(t0.elapsed());
    }
    let (c50, c99, _) = stats(checks);
    let t0 = Instant::now();
    app.on_event(Event::Health(health, 0));
    let took = t0.elapsed().as_secs_f64() * 1000.0;
    println!(
        "background checks of every container (poller thread): p50 {c50:.1} ms, max {c99:.1} ms; taking them in: {took:.2} ms"
    );
    println!(
        "{:<10} {:>8} {:>10} {:>10} {:>10}",
        "tab", "size", "p50 ms", "p99 ms", "max ms"
    );
    for tab in Tab::ALL {
        for (w, h) in [(80u16, 24u16), (160, 48)] {
            let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
            app.selected = 1;
            app.update(Action::ShowTab(tab));
            if tab == Tab::Checks {
                let t0 = Instant::now();
                app.update(Action::RunChecks);
                println!(
                    "checks of the selection (c, on the UI thread): {:.2} ms",
                    t0.elapsed().as_secs_f64() * 1000.0
                );
            }
            if tab == Tab::Trace {
                // A trace from the first container to the second on tcp/80 (t).
                let to = app
                    .snap
                    .as_ref()
                    .and_then(|s| s.containers.get(1).map(|c| c.name.clone()))
                    .or_else(|| {
                        app.rows
                            .get(2)
                            .map(|r| r.label.split(' ').nth(2).unwrap_or("host").to_string())
                    })
                    .unwrap_or_else(|| "host".into());
                app.update(Action::Trace);
                for c in format!("{to} tcp 80").chars() {
                    app.update(Action::Type(c));
                }
                let t0 = Instant::now();
                app.update(Action::Submit);
                println!(
                    "trace to {to} tcp/80 (t, on the UI thread): {:.2} ms, {}",
                    t0.elapsed().as_secs_f64() * 1000.0,
                    app.message.as_deref().unwrap_or("")
                );
                app.update(Action::ShowTab(Tab::Trace));
            }
            let mut times = Vec::with_capacity(frames);
            for i in 0..frames {
                // Walk the tree so every frame differs (scrolling, a new detail).
                app.selected = 1 + i % app.rows.len().saturating_sub(1).max(1);
                let t0 = Instant::now();
                term.draw(|f| ctnet_tui::ui::draw(f, &app)).expect("draw");
                times.push(t0.elapsed());
            }
            let (p50, p99, max) = stats(times);
            println!(
                "{:<10} {:>8} {p50:>10.3} {p99:>10.3} {max:>10.3}",
                tab.title(),
                format!("{w}x{h}")
            );
        }
    }
}
