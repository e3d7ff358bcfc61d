//! The real `ctnet-diag` binary: help, exit codes, and the lab cycle inside rootless
//! worlds, checked with iproute2 and iptables-save.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

#[path = "support/world.rs"]
mod world;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run ctnet-diag")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether rootless worlds can be made here; under CI they must.
fn worlds_available(test: &str) -> bool {
    world::available(BIN, test)
}

#[test]
fn help_teaches_the_commands_and_exit_codes() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let (out, _) = text(&o);
    for want in ["lab", "demo", "world", "Exit codes", "3 missing privilege"] {
        assert!(out.contains(want), "--help lacks {want:?}:\n{out}");
    }
    let (up_help, _) = text(&run(&["lab", "up", "--help"]));
    for want in [
        "--name",
        "--containers",
        "--subnet",
        "--nat",
        "--json",
        "CAP_NET_ADMIN",
    ] {
        assert!(up_help.contains(want), "lab up --help lacks {want:?}:\n{up_help}");
    }
    let v = run(&["--version"]);
    assert!(
        text(&v)
            .0
            .starts_with(&format!("ctnet-diag {} (git ", env!("CARGO_PKG_VERSION"))),
        "{:?}",
        text(&v)
    );
}

#[test]
fn bad_input_is_a_usage_error_naming_what_would_be_right() {
    let cases: &[(&[&str], &str)] = &[
        (&["lab", "up", "--name", "Bad-Name"], "invalid lab name"),
        (
            &["lab", "up", "--subnet", "10.0.0.7/24"],
            "did you mean 10.0.0.0/24",
        ),
        (&["lab", "up", "--containers", "0"], "between 1 and"),
        (&["lab", "up", "--subnet", "not-a-cidr"], "--subnet"),
        (&["lab", "down"], "--name"),
        (&["lab", "frobnicate"], "unrecognized subcommand"),
        (&["lab", "break", "cable-cut", "c1"], "expected one of veth-down"),
        (&["lab", "break", "veth-down"], "<TARGET>"),
        (&["lab", "fix", "cable-cut"], "expected one of veth-down"),
    ];
    for (args, want) in cases {
        let o = run(args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn missing_privilege_exits_3_and_says_how_to_get_it() {
    // Strip every capability (as root: an empty bounding set; as a user: none to begin with).
    let o = if is_root() {
        Command::new("setpriv")
            .args([
                "--inh-caps=-all",
                "--bounding-set=-all",
                BIN,
                "lab",
                "up",
                "--name",
                "t",
            ])
            .output()
            .expect("setpriv (util-linux)")
    } else {
        run(&["lab", "up", "--name", "t"])
    };
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    // Root without capabilities (a confined container) is told that, not to use sudo.
    let how = if is_root() {
        "you are root but without them"
    } else {
        "sudo"
    };
    for want in ["CAP_NET_ADMIN", how, "ctnet-diag world --", "ctnet-diag demo"] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
}

/// A private copy of the binary that an unprivileged user can execute.
fn binary_for_nobody() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ctnet-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("ctnet-diag");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// The acceptance cycle: `lab up --nat`, iproute2 sees it, containers ping each other,
/// `lab down` leaves links, netns and the ruleset exactly as before.
const CYCLE: &str = r#"
set -eu
state() {
  ip -j link > "$1.link"
  ip netns > "$1.netns"
  iptables-save | grep -v '^#' | sed -e 's/\[[0-9]*:[0-9]*\]//g' > "$1.rules"
}
d=$(mktemp -d)
state "$d/before"
# ctnet-diag itself runs with a plain user PATH when CTNET_CHILD_PATH says so.
ctnet() { if [ -n "${CTNET_CHILD_PATH:-}" ]; then PATH="$CTNET_CHILD_PATH" "$BIN" "$@"; else "$BIN" "$@"; fi; }
ctnet lab up --name t --containers 3 --nat --json > "$d/up.json"
grep -q '"schema": "ctnet.lab/v1"' "$d/up.json"
ip -br link show master t-br | awk '{sub("@.*", "", $1); print $1}' | sort | tr '\n' ' '; echo
ip netns | awk '{print $1}' | sort | tr '\n' ' '; echo
for i in 1 2 3; do ip -n t-c$i -br addr show dev eth0 | awk '{print $2, $3}'; done
ip netns exec t-c1 ping -c1 -W2 10.77.0.3 > /dev/null && echo PING-OK
ctnet lab list
ctnet lab down --name t
ctnet lab down --name t
state "$d/after"
for f in link netns rules; do cmp "$d/before.$f" "$d/after.$f"; done
echo SAME-AS-BEFORE
rm -rf "$d"
"#;

fn check_cycle_output(o: &Output) {
    let (out, err) = text(o);
    assert!(o.status.success(), "cycle failed: {out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "t-v1 t-v2 t-v3", "{out}");
    assert_eq!(lines[1].trim(), "t-c1 t-c2 t-c3", "{out}");
    assert_eq!(
        lines[2..5],
        ["UP 10.77.0.2/24", "UP 10.77.0.3/24", "UP 10.77.0.4/24"],
        "{out}"
    );
    assert!(out.contains("PING-OK"), "{out}");
    assert!(
        out.contains("t         t-br            3      3  10.77.0.0/24        yes  up"),
        "{out}"
    );
    assert!(
        out.contains("lab t: removed 3 veth(s), 1 bridge(s), 3 netns, 3 firewall rule(s)"),
        "{out}"
    );
    assert!(out.contains("lab t: nothing to remove"), "{out}");
    assert!(out.contains("SAME-AS-BEFORE"), "{out}");
}

#[test]
fn lab_cycle_inside_a_world_leaves_it_as_it_was() {
    if !worlds_available("lab_cycle_inside_a_world_leaves_it_as_it_was") {
        return;
    }
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", CYCLE])
        .env("BIN", BIN)
        .output()
        .unwrap();
    check_cycle_output(&o);
}

#[test]
fn lab_cycle_works_for_an_unprivileged_user() {
    if !is_root() {
        // Already unprivileged: the plain world test covers it.
        return;
    }
    if !worlds_available("lab_cycle_works_for_an_unprivileged_user") {
        return;
    }
    let bin = binary_for_nobody();
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&bin)
        .args(["world", "--", "sh", "-c", CYCLE])
        .env("BIN", &bin)
        .env("TMPDIR", "/tmp")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(bin.parent().unwrap());
    check_cycle_output(&o);
}

#[test]
fn demo_builds_pings_and_removes_a_lab_without_privilege() {
    if !worlds_available("demo_builds_pings_and_removes_a_lab_without_privilege") {
        return;
    }
    let o = run(&["demo", "--containers", "3"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for want in [
        "lab demo: bridge demo-br 10.77.0.1/24, 3 container(s), NAT on",
        "ping demo-c1 -> gateway 10.77.0.1: ok",
        "ping demo-c1 -> demo-c2 10.77.0.3: ok",
        "ping demo-c1 -> demo-c3 10.77.0.4: ok",
        "lab demo: removed 3 veth(s), 1 bridge(s), 3 netns, 3 firewall rule(s)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn world_runs_the_command_in_a_fresh_network_namespace() {
    if !worlds_available("world_runs_the_command_in_a_fresh_network_namespace") {
        return;
    }
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let o = Command::new(BIN)
        .args([
            "world",
            "--",
            "sh",
            "-c",
            "readlink /proc/self/ns/net; ip -br link; ls /run/netns | wc -l; id -u",
        ])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], host.to_str().unwrap(), "world shares the host netns");
    assert!(lines[1].starts_with("lo ") && lines[1].contains("UP"), "{out}");
    assert_eq!(lines.len(), 4, "only lo in a new world: {out}");
    assert_eq!(lines[2], "0", "a fresh /run/netns: {out}");
    assert_eq!(lines[3], "0", "root inside the world: {out}");
    let missing = run(&["world", "--", "/nonexistent/cmd"]);
    assert_ne!(missing.status.code(), Some(0));
    assert!(
        text(&missing).1.contains("/nonexistent/cmd"),
        "{}",
        text(&missing).1
    );
}

/// `snapshot -o FILE`, then every read command `--from FILE` prints what it printed live.
const READS: &str = r#"
set -eu
d=$(mktemp -d)
"$BIN" lab up --name r --containers 3 --nat > /dev/null
ip netns exec r-c1 ping -c1 -W2 10.77.0.3 > /dev/null
ip netns add lonely
# A new lab settles for a moment (bridge carrier, IPv6 DAD): wait, with a deadline,
# so two reads a few ms apart see the same state.
for _ in $(seq 1 400); do
  busy=$( (ip -br link show r-br | grep -v ' UP ') || true; for n in "" r-c1 r-c2 r-c3; do ip ${n:+-n $n} -6 addr show tentative; done)
  [ -z "$busy" ] && break
  sleep 0.05
done
# The bridge keeps learning (IPv6 multicast from the new netns) between two reads:
# `show` is compared without its FDB count, and `show --json` (FDB ages) not at all.
# A world has no pid namespace of its own, so a scan also finds the netns of other
# tests' worlds through their processes: one that starts or ends between the file and
# the live read makes them differ. Such a pair is taken again (a real difference
# repeats every time).
for cmd in veths "veths --json" show; do
  for try in 1 2 3 4 5; do
    "$BIN" snapshot -o "$d/s.json"
    "$BIN" $cmd | sed -e 's/  fdb [0-9]*$//' > "$d/live"
    "$BIN" $cmd --from "$d/s.json" | sed -e 's/  fdb [0-9]*$//' > "$d/offline"
    cmp -s "$d/live" "$d/offline" && break
    [ "$try" = 5 ] && { echo "DIFFERS: $cmd"; diff "$d/live" "$d/offline" | head; }
  done
done
echo "== veths"; "$BIN" veths --from "$d/s.json"
echo "== show"; "$BIN" show --from "$d/s.json"
stat -c '%a' "$d/s.json"
rm -rf "$d"
"#;

#[test]
fn read_commands_print_the_same_from_a_snapshot_file_as_live() {
    if !worlds_available("read_commands_print_the_same_from_a_snapshot_file_as_live") {
        return;
    }
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", READS])
        .env("BIN", BIN)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(!out.contains("DIFFERS"), "{out}");
    let veths: Vec<&str> = out
        .split("== veths\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.starts_with("=="))
        .collect();
    assert!(veths[0].starts_with("HOST VETH"), "{out}");
    assert_eq!(veths.len(), 4, "three veths and a header: {out}");
    for (i, row) in veths[1..].iter().enumerate() {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[0], format!("r-v{}", i + 1));
        assert_eq!(cells[2], "r-br");
        assert_eq!(cells[4], "forwarding");
        assert_eq!(cells[6], "-", "no container runtime in this world");
        assert_eq!(cells[7], format!("/run/netns/r-c{}", i + 1));
        assert_eq!(cells[8], "eth0");
        assert!(cells[10].starts_with(&format!("10.77.0.{}/24", i + 2)), "{row}");
    }
    assert!(out.contains("bridge r-br  10.77.0.1/24"), "{out}");
    assert!(
        out.contains("isolated netns (only lo):\n  /run/netns/lonely: only lo"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("600"), "snapshot file mode: {out}");
}

#[test]
fn bad_snapshot_files_are_usage_errors_that_say_what_is_wrong() {
    let dir = std::env::temp_dir().join(format!("ctnet-bad-snap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("missing.json", None, "no such file"),
        ("garbage.json", Some("{not json"), "not a JSON document"),
        (
            "other.json",
            Some(r#"{"schema": "ctnet.check/v1"}"#),
            "expected \"ctnet.snapshot/v2\"",
        ),
        ("noschema.json", Some(r#"{"netns": []}"#), "no \"schema\" field"),
        (
            "broken.json",
            Some(r#"{"schema": "ctnet.snapshot/v1", "netns": 5}"#),
            "malformed snapshot",
        ),
    ];
    for (name, content, want) in cases {
        let path = dir.join(name);
        if let Some(c) = content {
            std::fs::write(&path, c).unwrap();
        }
        for cmd in ["veths", "show", "snapshot"] {
            let o = run(&[cmd, "--from", path.to_str().unwrap()]);
            let (_, err) = text(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {name}: {err}");
            assert!(err.contains(want), "{cmd} {name}: {err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Capture through the CLI: -c, --json, -w read back by tcpdump, an invalid filter,
/// Ctrl-C printing the statistics.
const CAPTURE: &str = r#"
set -u
d=$(mktemp -d)
# Wait (at most 10 s) until the capture whose stderr is $1 says it is capturing.
ready() { for _ in $(seq 1 200); do grep -q 'capturing on' "$1" 2>/dev/null && return 0; sleep 0.05; done; echo "never ready: $1"; }
"$BIN" lab up --name k --containers 2 > /dev/null
"$BIN" capture k-c1 --both -f icmp -c 4 --json > "$d/json" 2> "$d/json.err" &
cap=$!
ready "$d/json.err"
ip netns exec k-c1 ping -c1 -W2 10.77.0.3 > /dev/null
wait $cap; echo "json rc=$?"
grep -c '"what":"echo-request"' "$d/json"
grep -c '"iface":"k-v1"' "$d/json"
"$BIN" capture k-v1 -f icmp -c 6 -w "$d/x.pcap" 2> "$d/pcap.err" &
cap=$!
ready "$d/pcap.err"
ip netns exec k-c1 ping -c3 -i0.2 -W2 10.77.0.3 > /dev/null
wait $cap; echo "pcap rc=$?"
echo "read back: $(tcpdump -n -r "$d/x.pcap" 2>/dev/null | wc -l)"
"$BIN" capture k-v1 -f 'icmp and' 2> "$d/bad.err"; echo "bad rc=$?"
cat "$d/bad.err"
"$BIN" capture k-v1 > /dev/null 2> "$d/int.err" &
cap=$!
ready "$d/int.err"
kill -INT $cap; wait $cap; echo "sigint rc=$?"
cat "$d/int.err"
"$BIN" capture nosuch 2> "$d/unknown.err"; echo "unknown rc=$?"
"$BIN" capture k-c1 --both -f icmp -c 4 -w "$d/x.pcapng" 2> "$d/ng.err" &
cap=$!
ready "$d/ng.err"
ip netns exec k-c1 ping -c1 -W2 10.77.0.3 > /dev/null
wait $cap; echo "pcapng rc=$?"
grep -o 'writing [^ ]* ([a-z]*)' "$d/ng.err"
echo "seen on: $(tshark -r "$d/x.pcapng" -T fields -e frame.interface_name 2>/dev/null | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')"
echo "described: $(tshark -r "$d/x.pcapng" -T fields -e frame.interface_description 2>/dev/null | sort -u | tr '\n' '|')"
"$BIN" capture k-v1 -f icmp -c 2 -w "$d/one.pcap" 2> "$d/one.err" &
cap=$!
ready "$d/one.err"
ip netns exec k-c1 ping -c1 -W2 10.77.0.3 > /dev/null
wait $cap
echo "one: $(od -An -tx4 -N4 "$d/one.pcap" | tr -d ' ')"
rm -rf "$d"
"#;

#[test]
fn capture_command_counts_writes_and_stops_like_tcpdump() {
    if !worlds_available("capture_command_counts_writes_and_stops_like_tcpdump") {
        return;
    }
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", CAPTURE])
        .env("BIN", BIN)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "json rc=0", "{out}");
    assert_eq!(lines[1], "2", "one echo request, on eth0 and on k-v1: {out}");
    assert_eq!(lines[2], "2", "k-v1 saw the request and the reply: {out}");
    assert_eq!(lines[3], "pcap rc=0", "{out}");
    assert_eq!(lines[4], "read back: 6", "{out}");
    assert_eq!(lines[5], "bad rc=2", "{out}");
    assert!(
        lines[6].contains("invalid capture filter") && lines[6].contains("syntax error"),
        "{out}"
    );
    assert_eq!(lines[7], "sigint rc=0", "Ctrl-C ends a capture normally: {out}");
    assert!(
        out.contains("k-v1: ") && out.contains("dropped by kernel"),
        "stats printed: {out}"
    );
    assert!(out.contains("unknown rc=2"), "{out}");
    // Two interfaces into one file: pcapng, each packet naming where it was seen, as
    // Debian's tshark reads it; one interface stays plain pcap.
    assert!(out.contains("pcapng rc=0"), "{out}");
    assert!(out.contains("(pcapng)"), "the format is said: {out}");
    assert!(out.contains("seen on: eth0@k-c1=2 k-v1=2 "), "{out}");
    assert!(
        out.contains("described: eth0 in netns k-c1|k-v1 in the host netns|"),
        "{out}"
    );
    assert!(
        out.contains("one: a1b2c3d4"),
        "a single interface stays pcap: {out}"
    );
}

/// A name in a world where no daemon is asked: each command says why a container
/// name cannot be known, not which interface is close (`db` is two edits from `lo`).
const NO_DAEMON: &str = r#"
for cmd in show check capture; do
  "$BIN" $cmd db --no-daemon 2> "$d.err"; echo "$cmd rc=$?"
  cat "$d.err"
done
"#;

#[test]
fn container_names_with_no_daemon_say_the_daemon_was_turned_off() {
    if !worlds_available("container_names_with_no_daemon_say_the_daemon_was_turned_off") {
        return;
    }
    let d = std::env::temp_dir().join(format!("ctnet-no-daemon-{}", std::process::id()));
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", NO_DAEMON])
        .env("BIN", BIN)
        .env("d", &d)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(d.with_extension("err"));
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for cmd in ["show", "check", "capture"] {
        let said = out
            .split(&format!("{cmd} rc="))
            .nth(1)
            .unwrap_or_else(|| panic!("{cmd} did not run: {out}"));
        let said = said.split(" rc=").next().unwrap();
        assert!(said.starts_with('2'), "{cmd}: exit 2 (usage): {out}");
        for want in [
            "unknown target \"db\"",
            "container names are resolved through the Docker/Podman API, which --no-daemon turned off",
            "netns name or path, pid:<PID>",
            "hint: drop --no-daemon",
        ] {
            assert!(said.contains(want), "{cmd}: {want:?} missing:\n{out}");
        }
        assert!(!said.contains("did you mean"), "{cmd}:\n{out}");
    }
}

#[test]
fn capture_without_cap_net_raw_exits_3_and_says_what_to_do() {
    if !is_root() {
        let o = run(&["capture", "lo", "-c", "1"]);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o).1);
        return;
    }
    // Root with no capabilities at all (an empty bounding set): the socket is refused
    // before any packet could be seen.
    let o = Command::new("setpriv")
        .args([
            "--inh-caps=-all",
            "--bounding-set=-all",
            BIN,
            "capture",
            "lo",
            "-c",
            "1",
        ])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("CAP_NET_RAW"), "{err}");
}

/// `check` on a real lab: healthy, then one veth down (exit 1, link category).
const CHECK: &str = r#"
set -u
"$BIN" lab up --name h --containers 2 --nat > /dev/null
ip netns exec h-c1 ping -c1 -W2 10.77.0.3 > /dev/null
"$BIN" check h-c1 --peer h-c2 > /dev/null; echo "healthy rc=$?"
ip link set h-v2 down
d=$(mktemp -d)
"$BIN" check h-c2 --json > "$d/check.json"; echo "down rc=$?"
grep -o '"verdict": "[a-z]*"' "$d/check.json"
rm -rf "$d"
"$BIN" check nosuch > /dev/null 2>&1; echo "unknown rc=$?"
iptables -I FORWARD 1 -i h-br ! -o h-br -j DROP
"$BIN" check h-c1 --json > "$d.fw"; echo "forward-drop rc=$?"
grep -o '"id": "firewall.forward",' "$d.fw" | head -1
grep -A2 '"id": "firewall.forward",' "$d.fw" | grep -o '"status": "[a-z]*"'
rm -f "$d.fw"
"#;

#[test]
fn check_exits_0_on_a_healthy_lab_and_1_when_a_veth_is_down() {
    if !worlds_available("check_exits_0_on_a_healthy_lab_and_1_when_a_veth_is_down") {
        return;
    }
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", CHECK])
        .env("BIN", BIN)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "healthy rc=0",
            "down rc=1",
            "\"verdict\": \"fail\"",
            "unknown rc=2",
            "forward-drop rc=1",
            "\"id\": \"firewall.forward\",",
            "\"status\": \"fail\""
        ],
        "{out}\n{err}"
    );
}

/// Break a lab's path with `lab break`, see `check` fail on it, `lab fix`, see it pass.
const BREAK_FIX: &str = r#"
set -e
$BIN lab up --name t --containers 2 --nat >/dev/null
ip netns exec t-c1 ping -c1 -W2 10.77.0.3 >/dev/null
ip netns exec t-c2 ping -c1 -W2 10.77.0.2 >/dev/null
$BIN lab break stale-arp t-c1 --peer t-c2 --dry-run | head -2 | tail -1
$BIN check t-c1 --peer t-c2 >&2 && echo "dry-run changed nothing"
$BIN lab break stale-arp t-c1 --peer t-c2 >/dev/null
rc=0; $BIN check t-c1 --peer t-c2 --json >/tmp/ctnet-breakfix.$$ || rc=$?
echo "broken rc=$rc"
grep -c '"status": "fail"' /tmp/ctnet-breakfix.$$
rm -f /tmp/ctnet-breakfix.$$
$BIN lab fix | head -1
$BIN check t-c1 --peer t-c2 >/dev/null && echo "fixed rc=0"
$BIN lab fix
$BIN lab down --name t >/dev/null
"#;

#[test]
fn lab_break_makes_check_fail_and_lab_fix_heals_it() {
    if !worlds_available("lab_break_makes_check_fail_and_lab_fix_heals_it") {
        return;
    }
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", BREAK_FIX])
        .env("BIN", BIN)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "  run:  ip -n t-c1 neigh replace 10.77.0.3 lladdr 02:00:00:00:de:ad dev eth0 nud permanent",
            "dry-run changed nothing",
            "broken rc=1",
            // arp.peer_entry, and path.trace naming the neighbour entry.
            "2",
            "fixed stale-arp on t-c1",
            "fixed rc=0",
            "no faults recorded: nothing to fix",
        ],
        "{out}\n{err}"
    );
}

/// `lab up` told to stop by a service manager (SIGTERM) or a closed session (SIGHUP)
/// mid-build: it finishes, as on SIGINT, and no half-built lab is left.
const UP_SIGNALLED: &str = r#"
set -u
for sig in TERM HUP; do
  case $sig in TERM) n=t; net=10.77.0.0/24;; *) n=u; net=10.78.0.0/24;; esac
  "$BIN" lab up --name $n --containers 200 --subnet $net > /dev/null 2>&1 &
  pid=$!
  i=0
  while [ ! -e /run/ctnet/labs/$n.json ]; do
    i=$((i+1)); if [ $i -gt 6000 ]; then echo "no record for $n"; exit 1; fi
    sleep 0.005
  done
  kill -$sig $pid
  rc=0; wait $pid || rc=$?
  echo "$sig rc=$rc"
done
"$BIN" lab list
"#;

#[test]
fn lab_up_finishes_when_terminated_or_hung_up() {
    if !worlds_available("lab_up_finishes_when_terminated_or_hung_up") {
        return;
    }
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", UP_SIGNALLED])
        .env("BIN", BIN)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("TERM rc=0") && out.contains("HUP rc=0"),
        "{out}\n{err}"
    );
    for lab in ["t", "u"] {
        let row: Vec<&str> = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(lab))
            .unwrap_or_else(|| panic!("lab {lab} not listed:\n{out}"))
            .split_whitespace()
            .collect();
        assert_eq!(
            (row[2], row[3], row[row.len() - 1]),
            ("200", "200", "up"),
            "{out}"
        );
    }
}

/// A scratch directory with a `$SHELL` for the demo that notes its pid and waits,
/// and a runtime directory for the demo's note.
struct DemoScratch {
    dir: PathBuf,
    shell: PathBuf,
    pid_file: PathBuf,
    runtime: PathBuf,
}

impl DemoScratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ctnet-demo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let runtime = dir.join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        let shell = dir.join("shell.sh");
        std::fs::write(
            &shell,
            "#!/bin/sh\necho $$ > \"$DEMO_SHELL_PID\"\nexec sleep 600 </dev/null >/dev/null 2>&1\n",
        )
        .unwrap();
        std::fs::set_permissions(&shell, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pid_file = dir.join("shell.pid");
        Self {
            dir,
            shell,
            pid_file,
            runtime,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("SHELL", &self.shell)
            .env("DEMO_SHELL_PID", &self.pid_file)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    }

    /// The shell's pid, once the demo has started it.
    fn shell_pid(&self, demo: &mut std::process::Child) -> i32 {
        let pid = wait_until(Duration::from_secs(60), || {
            if let Ok(Some(st)) = demo.try_wait() {
                panic!("the demo ended before its shell started: {st}");
            }
            std::fs::read_to_string(&self.pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
        });
        pid.expect("the demo's shell never started")
    }

    fn note_texts(&self) -> Vec<String> {
        self.notes()
            .iter()
            .filter_map(|n| std::fs::read_to_string(self.runtime.join("ctnet/demos").join(n)).ok())
            .collect()
    }

    fn notes(&self) -> Vec<String> {
        std::fs::read_dir(self.runtime.join("ctnet/demos"))
            .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default()
    }
}

impl Drop for DemoScratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

use std::time::{Duration, Instant};

/// Poll `f` until it gives a value or `limit` passes.
fn wait_until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    // A zombie has no ns links left: it is as good as gone.
    std::path::Path::new(&format!("/proc/{pid}/ns/net")).exists()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid this test started (directly or through the demo).
    unsafe { libc::kill(pid, sig) };
}

fn finish(mut demo: std::process::Child) -> (Option<std::process::ExitStatus>, String) {
    let status = wait_until(Duration::from_secs(60), || demo.try_wait().ok().flatten());
    if status.is_none() {
        let _ = demo.kill();
        let _ = demo.wait();
    }
    let mut out = String::new();
    use std::io::Read as _;
    let _ = demo.stdout.take().unwrap().read_to_string(&mut out);
    let _ = demo.stderr.take().unwrap().read_to_string(&mut out);
    (status, out)
}

#[test]
fn demo_without_the_dashboard_applies_the_fault() {
    if !worlds_available("demo_without_the_dashboard_applies_the_fault") {
        return;
    }
    let o = run(&["demo", "--containers", "2", "--no-tui", "--fault", "veth-down"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    for want in [
        "broke veth-down on demo-c1 (peer demo-c2)",
        "  ran:  ip link set dev demo-v1 down",
        "ping demo-c1 -> gateway 10.77.0.1: FAILED",
        "lab demo: removed 2 veth(s), 1 bridge(s), 2 netns, 3 firewall rule(s)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}\n{err}");
    }
}

#[test]
fn demo_shell_terminated_ends_the_shell_and_removes_the_lab() {
    if !worlds_available("demo_shell_terminated_ends_the_shell_and_removes_the_lab") {
        return;
    }
    let s = DemoScratch::new("term");
    let mut demo = s
        .command(&["demo", "--containers", "2", "--shell", "--fault", "stale-arp"])
        .spawn()
        .unwrap();
    let shell = s.shell_pid(&mut demo);
    let notes_while_running = s.notes().len();
    signal(demo.id() as i32, libc::SIGTERM);
    let (status, out) = finish(demo);
    let shell_gone = wait_until(Duration::from_secs(10), || (!alive(shell)).then_some(())).is_some();
    if !shell_gone {
        signal(shell, libc::SIGKILL);
    }
    assert!(shell_gone, "the demo's shell outlived it:\n{out}");
    assert_eq!(status.and_then(|s| s.code()), Some(128 + libc::SIGTERM), "{out}");
    for want in [
        "broke stale-arp on demo-c1 (peer demo-c2)",
        "lab demo: removed 2 veth(s), 1 bridge(s), 2 netns, 3 firewall rule(s)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert_eq!(notes_while_running, 1, "a running demo leaves a note");
    assert!(s.notes().is_empty(), "note left: {:?}", s.notes());
}

#[test]
fn a_killed_demo_shows_in_lab_list_with_the_command_that_removes_it() {
    if !worlds_available("a_killed_demo_shows_in_lab_list_with_the_command_that_removes_it") {
        return;
    }
    let s = DemoScratch::new("kill");
    let mut demo = s
        .command(&["demo", "--containers", "2", "--shell"])
        .spawn()
        .unwrap();
    let demo_pid = demo.id();
    let shell = s.shell_pid(&mut demo);
    // The demo names its shell in its note just after starting it.
    let named = wait_until(Duration::from_secs(60), || {
        s.note_texts()
            .iter()
            .any(|t| t.contains(&format!("\"shell\":{{\"pid\":{shell},")))
            .then_some(())
    });
    signal(demo_pid as i32, libc::SIGKILL);
    if named.is_none() {
        signal(shell, libc::SIGKILL);
    }
    let _ = finish(demo);
    assert!(
        named.is_some(),
        "the note never named shell {shell}: {:?}",
        s.note_texts()
    );
    let list = s.command(&["lab", "list"]).output().unwrap();
    let (out, err) = text(&list);
    signal(shell, libc::SIGKILL);
    assert!(list.status.success(), "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "leftover demo (pid {demo_pid} was killed): its lab lives on in a private world; remove it: kill {shell}\n"
        )),
        "{out}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || (!alive(shell)).then_some(())).is_some(),
        "pid {shell} still running"
    );
    let again = s.command(&["lab", "list"]).output().unwrap();
    assert!(!text(&again).0.contains("leftover demo"), "{}", text(&again).0);
    assert!(s.notes().is_empty(), "note left: {:?}", s.notes());
}

/// A corrupt lab record: `lab down` stops with exit 2 naming the file, `lab list` says
/// so with the command, and `lab down --force` removes what the tags prove.
const CORRUPT_RECORD: &str = r#"
set -u
"$BIN" lab up --name t --containers 2 --nat > /dev/null
echo '{"schema": "ctnet.lab' > /run/ctnet/labs/t.json
rc=0; "$BIN" lab down --name t 2> /tmp/ctnet-corrupt.$$ || rc=$?
echo "down rc=$rc"
cat /tmp/ctnet-corrupt.$$; rm -f /tmp/ctnet-corrupt.$$
ip -br link show t-br > /dev/null && echo "bridge kept"
"$BIN" lab list
"$BIN" lab down --name t --force
ip netns | wc -l
"#;

#[test]
fn a_corrupt_lab_record_is_an_error_and_force_removes_the_lab() {
    if !worlds_available("a_corrupt_lab_record_is_an_error_and_force_removes_the_lab") {
        return;
    }
    let (help, _) = text(&run(&["lab", "down", "--help"]));
    assert!(help.contains("--force") && help.contains("corrupt"), "{help}");
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", CORRUPT_RECORD])
        .env("BIN", BIN)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for want in [
        "down rc=2",
        "ctnet-diag: error: lab record /run/ctnet/labs/t.json is not a lab record",
        "bridge kept",
        "corrupt record (run lab down --name t --force)",
        "lab t: removed 2 veth(s), 1 bridge(s), 2 netns, 3 firewall rule(s)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}\n{err}");
    }
    assert_eq!(out.lines().last(), Some("0"), "{out}");
}

/// The (dev, ino) of namespace `ns` of process `pid`, as a note's JSON.
fn ns_key(pid: u32, ns: &str) -> serde_json::Value {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/ns/{ns}")).unwrap();
    serde_json::json!({ "dev": m.dev(), "ino": m.ino() })
}

/// Field 22 of `/proc/PID/stat`.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// A demo note whose world is gone while its netns inode number was reused by another
/// process's netns (here: an unrelated `sleep` in this test's own namespaces). Whatever
/// else the note says, `lab list` must not tell anyone to kill that process, and the
/// note is stale: removed.
#[test]
fn lab_list_never_names_pids_from_a_demo_note_whose_world_is_gone() {
    let s = DemoScratch::new("stale");
    let mut other = Command::new("sleep").arg("600").spawn().unwrap();
    let other_pid = other.id();
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let other_start = start_time(other_pid);
    let cases = [
        (
            "its shell is gone too",
            serde_json::json!({ "pid": gone_pid, "start": 1 }),
        ),
        (
            "its shell's pid went to another process",
            serde_json::json!({ "pid": other_pid, "start": other_start + 1 }),
        ),
        ("it never started a shell", serde_json::Value::Null),
    ];
    let dir = s.runtime.join("ctnet/demos");
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (what, shell) in cases {
        // What an older demo wrote (`pid`, `netns`) and what a newer one writes.
        let note = serde_json::json!({
            "schema": "ctnet.demo/v2",
            "pid": gone_pid,
            "demo": { "pid": gone_pid, "start": 1 },
            "netns": ns_key(other_pid, "net"),
            "userns": ns_key(other_pid, "user"),
            "shell": shell,
        });
        let path = dir.join(format!("demo-{gone_pid}.json"));
        std::fs::write(&path, note.to_string()).unwrap();
        let o = s.command(&["lab", "list"]).output().unwrap();
        let (out, err) = text(&o);
        if !o.status.success() || out.contains("leftover demo") || out.contains("kill") {
            failures.push(format!("{what}: exit {:?}\n{out}{err}", o.status.code()));
        }
        if path.exists() {
            failures.push(format!("{what}: the stale note was kept"));
            let _ = std::fs::remove_file(&path);
        }
    }
    let _ = other.kill();
    let _ = other.wait();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Another lab command holds the lock: `lab up` says it waits, and a signal ends it at
/// once (128 + the signal) with nothing built.
const UP_WAITS_FOR_THE_LOCK: &str = r#"
set -u
mkdir -p /run/ctnet/labs
gone() { [ ! -e /proc/$1 ] || [ "$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null)" = Z ]; }
for sig in INT TERM; do
  exec 9> /run/ctnet/labs/.lock
  flock -x 9
  : > /tmp/up.err
  "$BIN" lab up --name t --containers 1 > /dev/null 2> /tmp/up.err 9>&- &
  pid=$!
  i=0
  until grep -q "waiting for another lab command" /tmp/up.err; do
    i=$((i+1)); if [ $i -gt 1000 ]; then echo "$sig: never said it waits"; break; fi
    sleep 0.01
  done
  kill -$sig $pid
  i=0
  until gone $pid; do
    i=$((i+1)); if [ $i -gt 500 ]; then echo "$sig: still waiting"; kill -9 $pid; break; fi
    sleep 0.01
  done
  rc=0; wait $pid || rc=$?
  echo "$sig rc=$rc"
  cat /tmp/up.err
  exec 9>&-
done
ls /run/ctnet/labs
ip -br link show type bridge
"$BIN" lab up --name t --containers 1 > /dev/null && echo "up once free"
"#;

#[test]
fn lab_up_waiting_for_another_lab_command_stops_at_once_on_a_signal() {
    if !worlds_available("lab_up_waiting_for_another_lab_command_stops_at_once_on_a_signal") {
        return;
    }
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", UP_WAITS_FOR_THE_LOCK])
        .env("BIN", BIN)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for unwanted in ["never said", "still waiting", "t-br", "t.json"] {
        assert!(!out.contains(unwanted), "{unwanted:?} in:\n{out}\n{err}");
    }
    for want in [
        "INT rc=130",
        "TERM rc=143",
        "ctnet-diag: waiting for another lab command to finish",
        "ctnet-diag: lab up stopped while waiting for another lab command; nothing was built",
        "up once free",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}\n{err}");
    }
    assert_eq!(
        out.matches("waiting for another lab command to finish").count(),
        2,
        "said once per wait:\n{out}"
    );
}

/// A lab whose record is corrupt cannot say its subnet: `lab up` refuses every subnet
/// (exit 2) naming the record and the command that removes it, until it is removed.
const UP_WITH_A_CORRUPT_RECORD: &str = r#"
set -u
"$BIN" lab up --name t --containers 1 > /dev/null
ip link del t-br
echo '{"schema": "ctnet.lab' > /run/ctnet/labs/t.json
rc=0; "$BIN" lab up --name u --containers 1 --subnet 10.77.0.0/25 > /dev/null 2> /tmp/up.err || rc=$?
echo "overlapping rc=$rc"
cat /tmp/up.err
ip -br link show type bridge
"$BIN" lab down --name t --force > /dev/null
"$BIN" lab up --name u --containers 1 --subnet 10.77.0.0/25 > /dev/null && echo "up once removed"
"#;

#[test]
fn lab_up_refuses_while_another_labs_record_is_corrupt() {
    if !worlds_available("lab_up_refuses_while_another_labs_record_is_corrupt") {
        return;
    }
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", UP_WITH_A_CORRUPT_RECORD])
        .env("BIN", BIN)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for want in [
        "overlapping rc=2",
        "lab record /run/ctnet/labs/t.json is not a lab record",
        "`ctnet-diag lab down --name t --force`",
        "up once removed",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}\n{err}");
    }
    assert!(
        !out.contains("u-br"),
        "built on a subnet it could not check:\n{out}"
    );
}

/// Shell completions come from the parser itself: bash loads the script and completes
/// the real subcommands and flags; every shell clap_complete knows gets a script; an
/// unknown shell is a usage error listing the known ones.
#[test]
fn completions_are_generated_for_every_shell_and_bash_loads_them() {
    let o = run(&["completions", "bash"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let script = std::env::temp_dir().join(format!("ctnet-completion-{}.bash", std::process::id()));
    std::fs::write(&script, &out).unwrap();
    // bash itself: the script loads, registers a completion for ctnet-diag, and offers
    // the real subcommands for `ctnet-diag ch` and the real flags for `check --pr`.
    let probe = format!(
        "source {s}; complete -p ctnet-diag; \
         COMP_WORDS=(ctnet-diag ch); COMP_CWORD=1; COMP_LINE='ctnet-diag ch'; COMP_POINT=13; \
         _ctnet__diag ctnet-diag ch ctnet-diag; echo \"words: ${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(ctnet-diag check --pr); COMP_CWORD=2; COMP_LINE='ctnet-diag check --pr'; COMP_POINT=22; \
         _ctnet__diag ctnet-diag --pr check; echo \"flags: ${{COMPREPLY[*]}}\"",
        s = script.display()
    );
    let b = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let _ = std::fs::remove_file(&script);
    let (bout, berr) = text(&b);
    assert!(b.status.success(), "{bout}\n{berr}");
    assert!(bout.contains("-F _ctnet__diag ctnet-diag"), "{bout}");
    let words = bout
        .lines()
        .find_map(|l| l.strip_prefix("words: "))
        .unwrap_or_default();
    assert!(
        words.split(' ').any(|w| w == "check") && words.split(' ').any(|w| w == "checks"),
        "{bout}"
    );
    let flags = bout
        .lines()
        .find_map(|l| l.strip_prefix("flags: "))
        .unwrap_or_default();
    assert!(flags.split(' ').any(|w| w == "--probe"), "{bout}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = run(&["completions", shell]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{shell}: {err}");
        assert!(
            out.contains("ctnet-diag") && out.contains("--probe"),
            "{shell}: {out}"
        );
    }
    let o = run(&["completions", "tcsh"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bash") && err.contains("zsh") && err.contains("fish"),
        "{err}"
    );
}

/// The manual: `man` renders the main page, which man(1) itself formats, naming the
/// commands; `--dir` writes one page per command, lab's included.
#[test]
fn man_pages_are_generated_and_man_reads_them() {
    let o = run(&["man"]);
    let (page, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(page.contains(".TH ctnet-diag 1"), "{page}");
    let dir = std::env::temp_dir().join(format!("ctnet-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = run(&["man", "--dir", dir.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for page in [
        "ctnet-diag.1",
        "ctnet-diag-check.1",
        "ctnet-diag-trace.1",
        "ctnet-diag-lab-break.1",
    ] {
        assert!(dir.join(page).is_file(), "{page} missing: {out}");
    }
    // A directory that cannot be made: the environment's error (exit 3), said plainly.
    let o = run(&["man", "--dir", "/proc/ctnet-no-such-dir"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("writing the manual pages into /proc/ctnet-no-such-dir"),
        "{err}"
    );
    // man(1) formats the page as a reader sees it.
    let m = Command::new("man")
        .args(["-l", dir.join("ctnet-diag-check.1").to_str().unwrap()])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let (shown, merr) = text(&m);
    assert!(m.status.success(), "{merr}");
    assert!(
        shown.contains("ctnet-diag-check")
            && shown.contains("--probe")
            && shown.contains("--no-kernel-trace"),
        "{shown}"
    );
}

/// `--color`: `always` colours even into a pipe, `never` never does, and `auto` (the
/// default) follows the terminal: a pipe gets none. Global: it goes before or after the
/// command.
#[test]
fn color_is_chosen_by_the_flag_and_off_into_a_pipe() {
    let from = format!("{}/../fixtures/lab-healthy.json", env!("CARGO_MANIFEST_DIR"));
    let esc = |args: &[&str]| {
        let o = run(args);
        let (out, err) = text(&o);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{args:?}: {err}");
        assert!(out.contains("verdict:"), "{args:?}: {out}");
        out.contains('\x1b')
    };
    assert!(esc(&["--color", "always", "check", "c1", "--from", &from]));
    assert!(esc(&["check", "c1", "--from", &from, "--color", "always"]));
    assert!(esc(&["trace", "c1", "c3", "--from", &from, "--color", "always"]));
    assert!(!esc(&["check", "c1", "--from", &from, "--color", "never"]));
    assert!(!esc(&["check", "c1", "--from", &from]));
    // The dashboard's own options before a command are refused, not ignored.
    let o = run(&["--interval", "5", "check", "c1", "--from", &from]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("options before the command are the dashboard's (--interval)"),
        "{err}"
    );
    let o = run(&["--color", "sometimes", "checks"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("auto") && err.contains("always") && err.contains("never"),
        "{err}"
    );
}

/// `--version` names the release and the git revision the binary was built from.
#[test]
fn version_names_the_git_revision() {
    let o = run(&["--version"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let want = format!("ctnet-diag {} (git ", env!("CARGO_PKG_VERSION"));
    assert!(out.starts_with(&want), "{out}");
    match head {
        Some(h) => assert!(out.contains(&h), "{out} does not name {h}"),
        None => assert!(out.contains("(git unknown"), "{out}"),
    }
}

/// `-v`/`-vv` and `RUST_LOG`: what each scan step read and how long it took, on stderr
/// only, escaped like every other line (a netns named with an escape sequence stays
/// inert), and nothing at all without them.
#[test]
fn verbose_logs_each_scan_step_on_stderr_escaped() {
    if !worlds_available("verbose_logs_each_scan_step_on_stderr_escaped") {
        return;
    }
    let script = r#"
set -eu
ip netns add "$(printf 'x\033[31mevil')"
echo "== quiet"; "$BIN" veths --no-daemon 2>&1 >/dev/null
echo "== v"; "$BIN" -v veths --no-daemon 2>&1 >/dev/null
echo "== vv"; "$BIN" veths --no-daemon -vv 2>&1 >/dev/null
echo "== env"; RUST_LOG=ctnet_core::source::firewall=debug "$BIN" veths --no-daemon 2>&1 >/dev/null
echo "== json"; "$BIN" -vv veths --no-daemon --json 2>/dev/null | head -c 1
"#;
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", script])
        .env("BIN", BIN)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let part = |name: &str| {
        let head = format!("== {name}");
        out.lines()
            .skip_while(|l| *l != head)
            .skip(1)
            .take_while(|l| !l.starts_with("== "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(part("quiet").trim(), "", "no flag, no diagnostics");
    let v = part("v");
    for want in [
        "INFO",
        "discovery:",
        "netns:",
        "firewall host: read in",
        "scan:",
        " ms",
    ] {
        assert!(v.contains(want), "-v lacks {want:?}: {v}");
    }
    assert!(!v.contains("DEBUG"), "-v is info only: {v}");
    let vv = part("vv");
    assert!(
        vv.contains("DEBUG") && vv.contains("link(s)"),
        "-vv is per netns: {vv}"
    );
    assert!(vv.contains(r"x\x1b[31mevil"), "the netns name is escaped: {vv}");
    assert!(
        !out.contains('\x1b'),
        "a raw escape reached the terminal: {out:?}"
    );
    let env = part("env");
    assert!(env.contains("DEBUG ctnet_core::source::firewall]"), "{env}");
    assert!(
        !env.contains("ctnet_core::source]"),
        "RUST_LOG filters by module: {env}"
    );
    assert_eq!(part("json").trim(), "{", "stdout stays the document");
}

/// The Unix way to run without root: a copy given the capabilities of the README's
/// `setcap` line, run as `nobody` inside a world, reads the lab exactly as root does
/// (the firewall too: `iptables-save` inherits the capabilities), captures, probes, is
/// refused `lab up` with what to do instead, and never runs a tool from the caller's
/// `$PATH`. A copy without them says the setcap line.
#[test]
fn a_setcap_copy_run_as_nobody_reads_captures_and_is_refused_lab_up() {
    let test = "a_setcap_copy_run_as_nobody_reads_captures_and_is_refused_lab_up";
    if !is_root() {
        // File capabilities and a switch to nobody need root (of the initial namespace).
        assert!(!ctnet_core::world::in_ci(), "{test} runs as root under CI");
        ctnet_core::world::report_skip(&format!("{test}: needs root to setcap and become nobody"));
        return;
    }
    if !worlds_available(test) {
        return;
    }
    let script = r#"
set -u
d=$(mktemp -d /tmp/ctnet-setcap.XXXXXX); chmod 755 "$d"
trap 'rm -rf "$d"' EXIT
cp "$BIN" "$d/ctnet-diag"; cp "$BIN" "$d/plain"; chmod 755 "$d/ctnet-diag" "$d/plain"
setcap "$CAPS" "$d/ctnet-diag" || exit 9
mkdir -m 755 "$d/evil"
printf '#!/bin/sh\ntouch %s/evil/ran\nexit 1\n' "$d" > "$d/evil/iptables-nft-save"
chmod 755 "$d/evil/iptables-nft-save"
"$BIN" lab up --name s --containers 2 --nat > /dev/null || exit 8
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$@"; }
echo "== root veths"; "$BIN" veths --no-daemon 2>&1
echo "== nobody veths"; nobody "$d/ctnet-diag" veths --no-daemon 2>&1
echo "== check"; PATH="$d/evil:$PATH" nobody "$d/ctnet-diag" check s-c1 --peer s-c2 --no-daemon 2>&1; echo "rc=$?"
[ -e "$d/evil/ran" ] && echo "EVIL-TOOL-RAN"
ip netns exec s-c1 ping -c 40 -i 0.1 -W 1 10.77.0.3 > /dev/null 2>&1 &
ping=$!
echo "== capture"; nobody "$d/ctnet-diag" capture s-c1 -c 2 -f icmp --no-daemon 2>&1; echo "rc=$?"
kill "$ping" 2>/dev/null; wait "$ping" 2>/dev/null
echo "== probe"; nobody "$d/ctnet-diag" check s-c1 --peer s-c2 --probe --no-daemon 2>&1 | grep '^verdict\|probe.path'
echo "== lab up"; nobody "$d/ctnet-diag" lab up --name z 2>&1; echo "rc=$?"
echo "== plain"; nobody "$d/plain" veths --no-daemon 2>&1 >/dev/null; echo "rc=$?"
"$BIN" lab down --name s > /dev/null
echo "== end"
"#;
    let caps = "cap_net_admin,cap_sys_admin,cap_sys_ptrace,cap_dac_read_search,cap_net_raw+ep";
    let o = Command::new(BIN)
        .args(["world", "--", "sh", "-c", script])
        .env("BIN", BIN)
        .env("CAPS", caps)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success() && out.contains("== end"), "{out}\n{err}");
    let part = |name: &str| {
        let head = format!("== {name}");
        out.lines()
            .skip_while(|l| *l != head)
            .skip(1)
            .take_while(|l| !l.starts_with("== "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // The README's line is the one the binary prints.
    let readme = std::fs::read_to_string(format!("{}/../README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert!(
        readme.contains(&format!("setcap {caps}")),
        "the README gives the setcap line"
    );
    let root = part("root veths");
    assert!(root.contains("s-v1") && root.contains("10.77.0.2/24"), "{root}");
    assert_eq!(
        part("nobody veths"),
        root,
        "nobody with file capabilities sees what root sees"
    );
    let check = part("check");
    assert!(check.starts_with("verdict: PASS"), "{check}");
    assert!(
        check.contains("rc=0") && check.contains("PASS nat.masquerade"),
        "{check}"
    );
    assert!(
        !out.contains("EVIL-TOOL-RAN"),
        "a tool came from the caller's PATH: {out}"
    );
    let capture = part("capture");
    assert!(
        capture.contains("2 packets captured") && capture.contains("rc=0"),
        "{capture}"
    );
    let probe = part("probe");
    assert!(
        probe.contains("verdict: PASS") && probe.contains("PASS probe.path"),
        "{probe}"
    );
    let lab = part("lab up");
    for want in [
        "lab up changes this host",
        "uid 65534 with file capabilities",
        "sudo ctnet-diag lab up",
        "rc=3",
    ] {
        assert!(lab.contains(want), "lab up as nobody lacks {want:?}: {lab}");
    }
    let plain = part("plain");
    assert!(
        plain.contains("could not be entered without CAP_SYS_ADMIN")
            && plain.contains(&format!("sudo setcap {caps}"))
            && plain.contains("/plain"),
        "{plain}"
    );
}

/// An output name that cannot exist (`/proc/nope/x`, a directory that is not there) is
/// a wrong argument (exit 2) that names the path, for every command that writes one.
#[test]
fn an_output_path_that_cannot_exist_is_a_usage_error() {
    let from = format!("{}/../fixtures/lab-healthy.json", env!("CARGO_MANIFEST_DIR"));
    for path in ["/proc/nope/x", "/nonexistent-ctnet/x.json"] {
        let o = run(&["snapshot", "--from", &from, "-o", path]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{path}: {err}");
        assert!(err.contains(&format!("cannot write {path}")), "{err}");
    }
}
