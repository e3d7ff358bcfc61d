//! The real binary in a real terminal: `ctnet-diag demo` inside tmux, driven by keys
//! as a user would drive it, read back with `capture-pane`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/poisoned.rs"]
mod poisoned;
#[path = "support/tmux.rs"]
mod tmux;

use tmux::Tmux;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

fn available(test: &str) -> bool {
    let tmux = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    let worlds = Command::new(BIN)
        .args(["world", "--", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !(tmux && worlds) {
        let why = if tmux {
            "this kernel refuses user namespaces"
        } else {
            "tmux is not installed (apt-get install tmux)"
        };
        assert!(
            !ctnet_core::world::in_ci(),
            "{test} needs tmux and rootless worlds: {why}; under CI this is a failure"
        );
        ctnet_core::world::report_skip(&format!("{test}: {why}"));
        return false;
    }
    true
}

/// `q`, then the demo's exit as the shell saw it: the lab removed (`removed` is its
/// line), exit code 0 in `AFTER.rc`, the terminal modes in `AFTER.stty` those of
/// `AFTER.stty.before`. The last screen and the modes, for more checks.
fn quit_and_expect_clean_exit(tmux: &Tmux, after: &Path, secs: u64, removed: &str) -> (String, String) {
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", secs, |s| s.contains("E2E-DONE"));
    assert!(s.contains(removed), "{s}");
    let rc = std::fs::read_to_string(format!("{}.rc", after.display())).unwrap();
    assert_eq!(rc.trim(), "0", "ctnet-diag demo exit code");
    let before = std::fs::read_to_string(format!("{}.stty.before", after.display())).unwrap();
    let stty = std::fs::read_to_string(format!("{}.stty", after.display())).unwrap();
    assert_eq!(stty, before, "terminal modes are back to what they were");
    (s, stty)
}

#[test]
fn demo_dashboard_selects_captures_checks_and_restores_the_terminal() {
    if !available("demo_dashboard_selects_captures_checks_and_restores_the_terminal") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ctnet-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let after = dir.join("after");
    // After the dashboard exits, record its exit code and the terminal modes.
    let script = format!(
        "stty -a > {after}.stty.before; {BIN} demo --interval 0.5; echo $? > {after}.rc; \
         stty -a > {after}.stty; echo E2E-DONE; sleep 600",
        after = after.display()
    );
    let tmux = Tmux::start("e2e", 160, 48, &script);

    // The topology appears: the demo bridge and its three ports.
    tmux.wait_for("the topology", 60, |s| {
        s.contains("demo-br") && s.contains("demo-v3 → demo-c3")
    });
    // Select the first port (demo-c1 behind demo-v1) and capture both veth ends.
    tmux.keys(&["j"]);
    tmux.wait_for("demo-v1 selected", 10, |s| s.contains("demo-v1 (host) veth UP"));
    tmux.keys(&["p"]);
    let s = tmux.wait_for("ICMP in the capture pane", 20, |s| {
        s.contains("Capture: demo-v1, eth0@demo-c1")
            && s.contains("ICMP echo request")
            && s.contains("ICMP echo reply")
    });
    assert!(s.contains("eth0@demo-c1 "), "both ends are captured:\n{s}");
    // Run the guided checks for demo-c1.
    tmux.keys(&["c"]);
    // A healthy lab: no failure. (A warning is possible: a veth counts a drop when
    // its first packets leave before the other end is up.)
    let s = tmux.wait_for("the checks", 10, |s| {
        s.contains("demo-c1: ") && s.contains("(0 fail,")
    });
    // With a warning's evidence above it, the passes may run past the pane: the FDB
    // line, when on screen, passes.
    assert!(
        s.contains("pass fdb.own_mac") || !s.contains("fdb.own_mac"),
        "{s}"
    );
    assert!(!s.contains("FAIL "), "{s}");
    // Help opens and closes.
    tmux.keys(&["?"]);
    tmux.wait_for("the help", 10, |s| {
        s.contains(" Keys ") && s.contains("write the packets to a file")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("help closed", 10, |s| !s.contains(" Keys "));
    // Quit: the lab is removed and the shell gets its terminal back.
    let (s, stty) = quit_and_expect_clean_exit(
        &tmux,
        &after,
        60,
        "lab demo: removed 3 veth(s), 1 bridge(s), 3 netns",
    );
    assert!(
        stty.contains(" icanon") && stty.contains(" echo "),
        "cooked mode with echo:\n{stty}"
    );
    // No alternate screen left behind: the shell's output is on the normal screen.
    assert!(!s.contains("┌ Topology"), "the dashboard's screen is gone:\n{s}");
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

#[test]
fn a_sigterm_ends_the_demo_dashboard_and_still_removes_the_lab() {
    if !available("a_sigterm_ends_the_demo_dashboard_and_still_removes_the_lab") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ctnet-e2e-term-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = |name: &str| dir.join(name).display().to_string();
    // The inner shell records its pid, then becomes the demo (same pid).
    let script = format!(
        "stty -a > {before}; sh -c 'echo $$ > {pid}; exec {BIN} demo --containers 2'; echo $? > {rc}; \
         stty -a > {after}; echo E2E-DONE; sleep 600",
        before = f("before"),
        pid = f("pid"),
        rc = f("rc"),
        after = f("after"),
    );
    let tmux = Tmux::start("e2e-term", 100, 30, &script);
    tmux.wait_for("the topology", 60, |s| s.contains("demo-v2 → demo-c2"));
    let pid: i32 = std::fs::read_to_string(f("pid")).unwrap().trim().parse().unwrap();
    // Our own child, by pid.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM).unwrap();
    let s = tmux.wait_for("the exit", 60, |s| s.contains("E2E-DONE"));
    assert!(
        s.contains("lab demo: removed 2 veth(s), 1 bridge(s), 2 netns"),
        "{s}"
    );
    assert_eq!(std::fs::read_to_string(f("rc")).unwrap().trim(), "0");
    assert_eq!(
        std::fs::read_to_string(f("after")).unwrap(),
        std::fs::read_to_string(f("before")).unwrap(),
        "terminal modes restored"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_terminal_that_goes_away_ends_the_demo_instead_of_spinning() {
    if !available("a_terminal_that_goes_away_ends_the_demo_instead_of_spinning") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ctnet-e2e-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("pid");
    // The shell ignores SIGHUP and stays: only the dead pty tells the demo.
    let outer_file = dir.join("outer");
    let script = format!(
        "echo $$ > {outer}; trap '' HUP; sh -c 'echo $$ > {pid}; exec {BIN} demo --containers 2'; exec sleep 600",
        outer = outer_file.display(),
        pid = pid_file.display()
    );
    let tmux = Tmux::start("e2e-hup", 100, 30, &script);
    tmux.wait_for("the topology", 60, |s| s.contains("demo-v2 → demo-c2"));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stat = || std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    let cpu = |st: &str| -> u64 {
        let f: Vec<&str> = st.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    };
    let before = stat().map(|s| cpu(&s)).unwrap_or(0);
    // Closing the terminal: the pty goes away under the demo.
    let _ = tmux.cmd(&["kill-server"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    // A zombie (state Z) has exited; its parent reaps it.
    while let Some(st) = stat() {
        if st
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        {
            break;
        }
        if Instant::now() > deadline {
            let spent = cpu(&st) - before;
            // Our own process (started through tmux): do not leave it behind.
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            panic!("the demo is still running 30 s after its terminal went away ({spent} ticks of CPU)");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The shell that ignored SIGHUP (now `sleep 600`) is ours: do not leave it behind.
    if let Some(outer) = std::fs::read_to_string(&outer_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(outer),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_dashboard_without_a_terminal_says_what_to_use_instead() {
    let o = Command::new(BIN)
        .args(["tui", "--from", "/nonexistent.json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("needs a terminal") && err.contains("ctnet-diag show"),
        "{err}"
    );
}

#[test]
fn hostile_names_reach_the_real_terminal_escaped_never_obeyed() {
    if !available("hostile_names_reach_the_real_terminal_escaped_never_obeyed") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ctnet-e2e-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A window title, a screen clear and a newline in every name of a recorded host.
    let file = poisoned::snapshot(&dir, "\x1b]2;PWNED\x07\x1b[2J\nFORGED");
    let script = format!("{BIN} --from {}; echo E2E-DONE; sleep 600", file.display());
    let tmux = Tmux::start("hostile", 160, 48, &script);
    let title = || {
        String::from_utf8_lossy(
            &tmux
                .cmd(&["display-message", "-p", "-t", "e2e", "#{pane_title}"])
                .stdout,
        )
        .trim()
        .to_string()
    };
    tmux.wait_for("the topology, names escaped", 30, |s| {
        s.contains("Topology (file") && s.contains("\\x1b]2;PWNED\\x07")
    });
    // Walk the tree and every tab: the title never changes, no line is forged.
    for key in ["j", "j", "Right", "Right", "Right", "Right", "Right", "j"] {
        tmux.keys(&[key]);
        let s = tmux.screen();
        assert!(!s.lines().any(|l| l.starts_with("FORGED")), "a forged line:\n{s}");
        assert_ne!(title(), "PWNED", "the window title was set by a name:\n{s}");
    }
    tmux.keys(&["q"]);
    tmux.wait_for("the dashboard to end", 10, |s| s.contains("E2E-DONE"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The dashboard reads a support bundle as it reads a snapshot: `--from FILE.tar.gz`
/// (the archive written by the library's own bundle writer, around a recorded lab).
#[test]
fn the_dashboard_reads_a_support_bundle() {
    if !available("the_dashboard_reads_a_support_bundle") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ctnet-e2e-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = format!("{}/../fixtures/lab-healthy.json", env!("CARGO_MANIFEST_DIR"));
    let file = dir.join("case.tar.gz");
    let mut a = ctnet_core::bundle::Archive::create(&file).unwrap();
    a.add("manifest.json", b"{\"schema\": \"ctnet.bundle/v1\"}")
        .unwrap();
    a.add(
        ctnet_core::bundle::SNAPSHOT_MEMBER,
        &std::fs::read(&fixture).unwrap(),
    )
    .unwrap();
    a.finish().unwrap();
    let script = format!("{BIN} --from {}; echo E2E-DONE; sleep 600", file.display());
    let tmux = Tmux::start("bundle", 160, 48, &script);
    tmux.wait_for("the bundle's topology", 30, |s| {
        s.contains("Topology (file") && s.contains("br0") && s.contains("vc1")
    });
    tmux.keys(&["q"]);
    tmux.wait_for("the dashboard to end", 10, |s| s.contains("E2E-DONE"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The issue's walk on a large host: a 200-container demo with the `port-drop` fault
/// (demo-c1 → demo-c2, tcp/80, each container serving tcp/80). Found by IP with `f`,
/// demo-c2 is red before any key asks for checks; from demo-c1, `t` traces to demo-c2
/// on port 80 and names the rule; the Firewall tab marks it; `x` sends the real SYNs
/// and the kernel agrees; `q` restores the terminal and removes the lab.
#[test]
fn at_200_containers_find_by_ip_a_red_badge_a_trace_to_the_rule_and_its_probe() {
    if !available("at_200_containers_find_by_ip_a_red_badge_a_trace_to_the_rule_and_its_probe") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ctnet-e2e200-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let after = dir.join("after");
    let script = format!(
        "stty -a > {after}.stty.before; {BIN} demo --containers 200 --fault port-drop --interval 2; \
         echo $? > {after}.rc; stty -a > {after}.stty; echo E2E-DONE; sleep 600",
        after = after.display()
    );
    let tmux = Tmux::start("e2e200", 160, 48, &script);
    // The background checks of every container come after the first full scan.
    tmux.wait_for("the fault banner and the host-wide counts", 240, |s| {
        s.contains("Fault port-drop on demo-c1, peer demo-c2") && s.contains("✗1 fail")
    });
    tmux.keys(&["f"]);
    tmux.keys(&["-l", "10.77.0.3"]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["6"]);
    let s = tmux.wait_for("demo-c2's background findings", 10, |s| {
        s.contains("demo-c2: FAIL")
            && s.contains("FAIL port.listening tcp/80 on demo-c2 does not arrive from demo-c1")
    });
    // Its row is red (ANSI colour 1) without c having been pressed.
    let colored =
        String::from_utf8_lossy(&tmux.cmd(&["capture-pane", "-p", "-e", "-t", "e2e"]).stdout).into_owned();
    let row = colored
        .lines()
        .find(|l| l.contains("demo-v2 ") && l.contains("demo-c2"))
        .unwrap_or_else(|| panic!("no demo-c2 row:\n{s}"));
    assert!(
        row.contains("\x1b[38;5;1m●") || row.contains("\x1b[31m●"),
        "{row:?}"
    );
    // From demo-c1, by its IP, a trace to demo-c2 on the dropped port.
    tmux.keys(&["f"]);
    tmux.keys(&["-l", "10.77.0.2"]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["t"]);
    tmux.keys(&["-l", "demo-c2 tcp 80"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the trace", 10, |s| {
        s.contains("demo-c1 → demo-c2 tcp 80  static: UNREACHABLE")
            && s.contains("DROP    [host demo-br] forward/filter/FORWARD: dropped by a rule")
            && s.contains("rule: iptables filter FORWARD rule 1: -A FORWARD -s 10.77.0.2/32 -d 10.77.0.3/32")
    });
    tmux.keys(&["5"]);
    tmux.wait_for("the rule marked in the Firewall tab", 10, |s| {
        s.lines()
            .any(|l| l.contains("▶") && l.contains("-A FORWARD -s 10.77.0.2/32 -d 10.77.0.3/32"))
    });
    // The live probe runs off the UI thread: the screen answers keys meanwhile.
    tmux.keys(&["x"]);
    tmux.keys(&["7"]);
    tmux.wait_for("the probe beside the static verdict", 60, |s| {
        s.contains("static: UNREACHABLE  live: FAIL")
            && s.contains("FAIL probe.path SYN to tcp/80 to 10.77.0.3")
    });
    quit_and_expect_clean_exit(
        &tmux,
        &after,
        120,
        "lab demo: removed 200 veth(s), 1 bridge(s), 200 netns",
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
