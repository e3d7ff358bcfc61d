//! Hostile names, hostile files, closed pipes and full disks, through the real binary:
//! nothing reaches the terminal raw, nothing is lost silently, nothing panics.

use std::io::Read as _;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/poisoned.rs"]
mod poisoned;

#[path = "support/world.rs"]
mod world;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

/// What an unprivileged user can put in a name: a window-title OSC, a colour CSI, a
/// newline that would forge a row, a bidi override and a C1 CSI.
const PAYLOAD: &str = "\x1b]0;OWNED\x07\x1b[31m\nFORGED\u{202e}\u{9b}";

fn fixture(name: &str) -> PathBuf {
    poisoned::fixture(name)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ctnet-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Every byte a terminal would obey, other than the line ends ctnet lays out.
fn raw_controls(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|&c| c != '\n' && ctnet_core::text::is_unsafe(c))
        .map(|c| format!("{c:?}"))
        .collect()
}

fn assert_clean(what: &str, o: &Output) {
    for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        let bad = raw_controls(bytes);
        assert!(
            bad.is_empty(),
            "{what}: {stream} has raw {bad:?}:\n{}",
            String::from_utf8_lossy(bytes)
        );
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.lines().any(|l| l.starts_with("FORGED")),
            "{what}: {stream} has a forged line:\n{text}"
        );
        assert!(!text.contains("panicked"), "{what}: {text}");
    }
}

#[test]
fn hostile_names_in_a_snapshot_file_are_shown_escaped_by_every_text_command() {
    let dir = scratch("file");
    let file = poisoned::snapshot(&dir, PAYLOAD);
    let f = file.to_str().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let container = doc["containers"][0]["name"].as_str().unwrap().to_string();
    let mut near = container.clone();
    near.insert(1, 'x');
    let cases: Vec<Vec<&str>> = vec![
        vec!["veths", "--from", f],
        vec!["show", "--from", f],
        vec!["show", &container, "--from", f],
        vec!["check", &container, "--from", f],
        vec!["show", &near, "--from", f],
        vec!["trace", &container, "host", "--from", f],
        vec!["trace", &container, "192.0.2.1", "--tcp", "80", "--from", f],
        vec!["trace", &near, "host", "--from", f],
    ];
    for args in &cases {
        let o = run(args);
        assert_clean(&args.join(" "), &o);
        assert!(matches!(o.status.code(), Some(0..=2)), "{args:?}: {:?}", o.status);
    }
    // The names are there, escaped.
    let o = run(&["veths", "--from", f]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("\\x1b]0;OWNED\\x07\\x1b[31m\\nFORGED\\u{202e}\\u{9b}"),
        "{out}"
    );
    // The suggestion for a near miss names the container, escaped.
    let o = run(&["show", &near, "--from", f]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("did you mean"),
        "{o:?}"
    );
    // JSON stays exact: the payload comes back as it was.
    let o = run(&["veths", "--json", "--from", f]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.to_string().contains("\\u001b]0;OWNED"), "exact JSON: {v}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pipe whose reader has gone: the child's first write gets EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe fills two fds we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are ours and open.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

#[test]
fn a_closed_pipe_ends_quietly_with_141_and_a_full_disk_is_an_error() {
    let f = fixture("lab-faults.json");
    let f = f.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["veths", "--from", f],
        vec!["veths", "--json", "--from", f],
        vec!["show", "--from", f],
        vec!["show", "--json", "--from", f],
        vec!["show", "c1", "--from", f],
        vec!["snapshot", "--from", f],
        vec!["check", "c1", "--from", f],
        vec!["trace", "c1", "c2", "--from", f],
        vec!["trace", "c1", "c2", "--json", "--from", f],
        vec!["checks"],
        vec!["checks", "--json"],
        vec!["lab", "list"],
        vec!["--help"],
        vec!["capture", "--help"],
    ];
    for args in &cases {
        let o = Command::new(BIN)
            .args(args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(141), "{args:?} into a closed pipe: {o:?}");
        assert!(
            o.stderr.is_empty(),
            "{args:?} quiet: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let o = Command::new(BIN)
            .args(args)
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{args:?} > /dev/full: {err}");
        assert!(
            err.contains("writing standard output: No space left on device"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn from_reads_regular_files_only_and_says_what_is_wrong() {
    let dir = scratch("from");
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let bad_utf8 = dir.join("latin1.json");
    std::fs::write(
        &bad_utf8,
        b"{\"schema\": \"ctnet.snapshot/v1\", \"hostname\": \"caf\xe9\"}",
    )
    .unwrap();
    let huge = dir.join("huge.json");
    std::fs::File::create(&huge).unwrap().set_len(600 << 20).unwrap();
    let cases: [(&Path, &str); 5] = [
        (&dir, "is a directory"),
        (&fifo, "not a regular file"),
        (Path::new("/dev/zero"), "not a regular file"),
        (&bad_utf8, "UTF-8"),
        (&huge, "over the 512 MiB"),
    ];
    for (path, want) in cases {
        for cmd in ["veths", "show", "check", "trace"] {
            let mut args = vec![cmd];
            if cmd == "check" {
                args.push("c1");
            }
            if cmd == "trace" {
                args.extend(["c1", "c2"]);
            }
            args.extend(["--from", path.to_str().unwrap()]);
            let started = Instant::now();
            let o = run(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(want), "{args:?}: {err}");
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{args:?} did not block"
            );
        }
    }
    let o = run(&[
        "capture",
        "c1",
        "--from",
        fixture("lab-faults.json").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("capture needs a live host"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cell_wider_than_65535_characters_is_printed_whole() {
    let dir = scratch("wide");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("docker-host.json")).unwrap()).unwrap();
    let wide = "w".repeat(70_000);
    doc["containers"][0]["name"] = serde_json::Value::String(wide.clone());
    let path = dir.join("wide.json");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    for cmd in ["veths", "show"] {
        let o = run(&[cmd, "--from", path.to_str().unwrap()]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains(&wide), "{cmd}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `script` under `sh -c` in a fresh rootless world, with `$BIN` the binary.
fn in_world(script: &str) -> Output {
    Command::new(BIN)
        .args(["world", "--", "sh", "-c", script])
        .env("BIN", BIN)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Whether rootless worlds can be made here; under CI they must.
fn worlds_available(test: &str) -> bool {
    world::available(BIN, test)
}

/// Inside a world: an interface, a netns file and a process comm with escapes in
/// them, made the way an unprivileged user could, then every text command.
const LIVE: &str = r#"
set -u
d=$(mktemp -d)
"$BIN" lab up --name h --containers 2 > /dev/null
# An interface named with an OSC (15 bytes at most), on the lab's bridge.
evil=$(printf 'e\033]0;OWN\007x')
ip link add "$evil" type veth peer name hpeer
ip link set dev "$evil" master h-br up
# A netns file whose name holds a newline and a bidi override.
ip netns add "$(printf 'n\nFORGED\342\200\256')"
# A process in its own netns that sets its own comm to a window-title OSC (a process
# may rename only itself).
unshare -n sh -c 'printf "\033]0;PWNED\007" > /proc/$$/comm; while :; do sleep 1; done' &
sleeper=$!
for _ in $(seq 1 100); do grep -q PWNED /proc/$sleeper/comm 2>/dev/null && break; sleep 0.05; done
run() { name=$1; shift; "$@" > "$d/$name.out" 2> "$d/$name.err"; echo "$name rc=$?" >> "$d/rc"; }
run veths "$BIN" veths
run show "$BIN" show
run showif "$BIN" show "$evil"
run showpid "$BIN" show "pid:$sleeper"
run check "$BIN" check h-c1
run checkpid "$BIN" check "pid:$sleeper"
run near "$BIN" show "$(printf 'e\033]0;OWN\007y')"
run capture timeout -s INT 2 "$BIN" capture "$evil" -c 1
run dry "$BIN" lab break veth-down h-c1 --dry-run
kill $sleeper
cat "$d/rc"
for f in "$d"/*.out "$d"/*.err; do echo "=== $f"; cat "$f"; done
rm -rf "$d"
"#;

#[test]
fn hostile_live_names_never_reach_the_terminal_raw() {
    if !worlds_available("hostile_live_names_never_reach_the_terminal_raw") {
        return;
    }
    let o = in_world(LIVE);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for cmd in ["veths", "show", "showif", "showpid", "check", "dry"] {
        assert!(out.lines().any(|l| l == format!("{cmd} rc=0")), "{cmd}: {out}");
    }
    // Only lo in that netns: a failed check, said with the comm escaped.
    assert!(out.contains("checkpid rc=1"), "{out}");
    assert!(out.contains("near rc=2"), "{out}");
    // Ended by SIGINT from timeout(1) (124): the header and statistics were printed.
    assert!(out.contains("capture rc=124"), "{out}");
    assert!(out.contains("capturing on e\\x1b]0;OWN\\x07x"), "{out}");
    // Every text output was checked by the shell only through `cat`: look at the bytes.
    let bad = raw_controls(&o.stdout);
    assert!(bad.is_empty(), "raw {bad:?} in:\n{out}");
    assert!(
        !out.lines().any(|l| l.starts_with("FORGED")),
        "forged line:\n{out}"
    );
    assert!(
        out.contains("e\\x1b]0;OWN\\x07x"),
        "the interface, escaped: {out}"
    );
    assert!(
        out.contains("n\\nFORGED\\u{202e}"),
        "the netns name, escaped: {out}"
    );
    assert!(out.contains("(\\x1b]0;PWNED\\x07)"), "the comm, escaped: {out}");
    assert!(!out.contains("panicked"), "{out}");
}

/// Output files: a planted symlink is replaced (its target untouched), an old 0644
/// file becomes 0600, a missing directory is a usage error, a full disk an error with
/// the path and the packets the file keeps.
const FILES: &str = r#"
set -u
d=$(mktemp -d)
"$BIN" lab up --name o --containers 2 > /dev/null
echo secret > "$d/victim"; chmod 644 "$d/victim"
ln -s "$d/victim" "$d/planted.pcap"
ln -s "$d/victim" "$d/planted.json"
"$BIN" snapshot -o "$d/planted.json" 2>/dev/null; echo "snap-symlink rc=$?"
echo "victim: $(cat "$d/victim") $(stat -c %a "$d/victim")"
echo "planted: $(stat -c %F "$d/planted.json") $(stat -c %a "$d/planted.json")"
echo old > "$d/old.json"; chmod 644 "$d/old.json"
"$BIN" snapshot -o "$d/old.json" 2>/dev/null; echo "old mode $(stat -c %a "$d/old.json")"
"$BIN" snapshot -o "$d/nodir/x.json" 2> "$d/nodir.err"; echo "nodir rc=$?"; cat "$d/nodir.err"
"$BIN" snapshot -o /dev/full 2> "$d/full.err"; echo "full rc=$?"; cat "$d/full.err"
"$BIN" capture o-v1 -c 2 -w "$d/planted.pcap" 2>/dev/null &
cap=$!
for _ in $(seq 1 100); do ip netns exec o-c1 ping -c1 -W1 10.77.0.3 >/dev/null 2>&1; kill -0 $cap 2>/dev/null || break; done
wait $cap; echo "pcap-symlink rc=$?"
echo "victim after pcap: $(cat "$d/victim")"
echo "pcap: $(stat -c %F "$d/planted.pcap") $(stat -c %a "$d/planted.pcap") $(tcpdump -r "$d/planted.pcap" 2>/dev/null | wc -l)"
"$BIN" capture o-v1 -c 2 -w "$d/nodir/x.pcap" 2> "$d/wnodir.err"; echo "wnodir rc=$?"; cat "$d/wnodir.err"
# A pcap to standard output (a pipe, through the /dev/stdout link): written through,
# the link left alone.
( for _ in $(seq 1 100); do ip netns exec o-c1 ping -c1 -W1 10.77.0.3 >/dev/null 2>&1; done ) &
pinger=$!
echo "stdout pcap: $("$BIN" capture o-v1 -f icmp -c 2 -w /dev/stdout 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l)"
kill $pinger 2>/dev/null; wait $pinger 2>/dev/null
echo "dev stdout: $(readlink /dev/stdout)"
"$BIN" capture o-v1 -c 50 -w /dev/full 2> "$d/wfull.err" &
cap=$!
for _ in $(seq 1 200); do ip netns exec o-c1 ping -c1 -W1 10.77.0.3 >/dev/null 2>&1; kill -0 $cap 2>/dev/null || break; done
wait $cap; echo "wfull rc=$?"; cat "$d/wfull.err"
# A real filesystem that fills up mid-capture: the file keeps whole records only,
# and the message says how many.
mkdir "$d/small"; mount -t tmpfs -o size=64k tmpfs "$d/small"
"$BIN" capture o-v1 -f icmp -c 400 -w "$d/small/x.pcap" 2> "$d/small.err" &
cap=$!
for _ in $(seq 1 100); do ip netns exec o-c1 ping -c 10 -i 0.01 -s 1400 -W1 10.77.0.3 >/dev/null 2>&1; kill -0 $cap 2>/dev/null || break; done
wait $cap; echo "small rc=$?"; cat "$d/small.err"
echo "small read back: $(tcpdump -r "$d/small/x.pcap" 2>/dev/null | wc -l)"
umount "$d/small"
"$BIN" capture o-c1 -c 1 --json > /dev/full 2> "$d/jfull.err" &
cap=$!
for _ in $(seq 1 100); do ip netns exec o-c1 ping -c1 -W1 10.77.0.3 >/dev/null 2>&1; kill -0 $cap 2>/dev/null || break; done
wait $cap; echo "jfull rc=$?"; cat "$d/jfull.err"
rm -rf "$d"
"#;

#[test]
fn output_files_are_never_followed_always_0600_and_errors_name_the_path() {
    if !worlds_available("output_files_are_never_followed_always_0600_and_errors_name_the_path") {
        return;
    }
    let o = in_world(FILES);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for want in [
        "snap-symlink rc=0",
        "victim: secret 644",
        "planted: regular file 600",
        "old mode 600",
        "nodir rc=2",
        "directory",
        "full rc=3",
        "writing /dev/full: No space left on device",
        "pcap-symlink rc=0",
        "victim after pcap: secret",
        "pcap: regular file 600 2",
        "wnodir rc=2",
        "stdout pcap: 2\n",
        "dev stdout: /proc/self/fd/1\n",
        "jfull rc=3",
        "writing standard output: No space left on device",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    let wfull = out.split("wfull rc=").nth(1).unwrap();
    assert!(
        wfull.starts_with('3') && wfull.contains("writing /dev/full"),
        "{out}"
    );
    let small = out.split("small rc=").nth(1).unwrap();
    assert!(small.starts_with('3'), "{out}");
    let kept: usize = small
        .split("the file keeps the first ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("how many packets the file keeps: {out}"));
    assert!(kept > 0 && kept < 400, "{out}");
    assert!(small.contains("No space left on device"), "{out}");
    assert!(
        out.contains(&format!("small read back: {kept}\n")),
        "the file holds exactly what the message says: {out}"
    );
    assert!(!out.contains("File exists (os error 17): File exists"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
}

/// `-c N` over two interfaces is the first N in time order, and `--follow -c N` does
/// not call a packet lost when only the count cut its other copies.
const COUNTS: &str = r#"
set -u
d=$(mktemp -d)
"$BIN" lab up --name q --containers 2 > /dev/null
"$BIN" capture q-c1 --both -f icmp -c 12 > "$d/both" 2> "$d/both.err" &
cap=$!
ip netns exec q-c1 ping -c 6 -i 0.2 -W1 10.77.0.3 > /dev/null
wait $cap; echo "both rc=$?"
echo "eth0 $(grep -c ' eth0@' "$d/both")"
echo "veth $(grep -c ' q-v1 ' "$d/both")"
"$BIN" capture q-c1 --both --follow -f icmp -c 3 > "$d/follow" 2> "$d/follow.err" &
cap=$!
ip netns exec q-c1 ping -c 4 -i 0.2 -W1 10.77.0.3 > /dev/null
wait $cap; echo "follow rc=$?"
cat "$d/follow"
rm -rf "$d"
"#;

#[test]
fn a_count_over_several_interfaces_is_the_first_packets_in_time_order() {
    if !worlds_available("a_count_over_several_interfaces_is_the_first_packets_in_time_order") {
        return;
    }
    let o = in_world(COUNTS);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("both rc=0"), "{out}");
    // 3 echo exchanges: each request and reply seen on eth0 and on the host veth.
    assert!(out.contains("eth0 6\n"), "{out}");
    assert!(out.contains("veth 6\n"), "{out}");
    assert!(out.contains("follow rc=0"), "{out}");
    let tracks: Vec<&str> = out.lines().filter(|l| l.starts_with("icmp ")).collect();
    assert!(!tracks.is_empty(), "{out}");
    assert!(
        !tracks.iter().any(|t| t.contains("not seen")),
        "only the count cut these: {out}"
    );
}

#[test]
fn stderr_gone_or_full_never_panics() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut child = Command::new(BIN)
        .args([
            "show",
            "nosuch",
            "--from",
            fixture("lab-faults.json").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(full)
        .spawn()
        .unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "unknown target, stderr full: {status:?}");
}
