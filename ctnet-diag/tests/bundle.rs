//! `ctnet-diag bundle` on a lab in a rootless world: the file is mode 0600 and holds
//! what the manifest says; `veths` and `check` read it back with `--from` exactly as
//! they read the host live; tshark reads its pcapng with each packet on the host veth
//! it was seen on; and with `--redact` no original MAC, address or container name is
//! left in any file (the capture's bytes included), while the redacted bundle still
//! reads.

#[path = "support/script.rs"]
#[allow(dead_code)]
mod script;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ctnet_core::model::Snapshot;
use script::Script;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

const SCRIPT: &str = r#"
set -euo pipefail
d="$OUT"
"$BIN" lab up --name s --containers 2 --nat > /dev/null
ip netns exec s-c1 ping -c 60 -i 0.1 -W 1 10.77.0.3 > /dev/null 2>&1 &
ping=$!
"$BIN" snapshot -o "$d/live.json"
"$BIN" veths > "$d/veths.live"
"$BIN" check s-c1 --peer s-c2 > "$d/check.live" || true
"$BIN" bundle -o "$d/b.tar.gz" --capture 2 2> "$d/progress"
echo "MODE: $(stat -c %a "$d/b.tar.gz")"
echo "MEMBERS: $(tar tzf "$d/b.tar.gz" | sort | tr '\n' ' ')"
"$BIN" veths --from "$d/b.tar.gz" > "$d/veths.from"
"$BIN" check s-c1 --peer s-c2 --from "$d/b.tar.gz" > "$d/check.from" || true
mkdir "$d/b"; tar xzf "$d/b.tar.gz" -C "$d/b"
echo "IFACES: $(tshark -r "$d/b/captures.pcapng" -T fields -e frame.interface_name -Y icmp 2>/dev/null | sort -u | tr '\n' ' ')"
"$BIN" bundle -o "$d/r.tar.gz" --capture 2 --redact 2> /dev/null
kill "$ping" 2>/dev/null || true; wait "$ping" 2>/dev/null || true
mkdir "$d/r"; tar xzf "$d/r.tar.gz" -C "$d/r"
tshark -r "$d/r/captures.pcapng" -T fields -e frame.interface_name -e eth.src -e eth.dst \
  -e arp.src.proto_ipv4 -e arp.dst.proto_ipv4 -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst \
  2>/dev/null > "$d/r.decoded"
echo "RFRAMES: $(wc -l < "$d/r.decoded")"
"$BIN" veths --from "$d/r.tar.gz" > "$d/veths.redacted"
t=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["checks"][0]["target"])' "$d/r/manifest.json")
"$BIN" check "$t" --from "$d/r.tar.gz" > "$d/check.redacted" && echo "RCHECK: $?" || echo "RCHECK: $?"
# A bundle that cannot be written is the environment's error, and says where.
"$BIN" bundle -o /dev/full 2> "$d/full.err" && echo "FULL: 0" || echo "FULL: $?"
"$BIN" lab down --name s > /dev/null
echo "DONE: yes"
"#;

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

/// Whether `hay` holds `needle` standing alone (not inside a longer name or number).
fn has_word(hay: &str, needle: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    hay.match_indices(needle).any(|(i, _)| {
        let mut before = hay[..i].chars().rev();
        let mut after = hay[i + needle.len()..].chars();
        // A dot joins two numbers (`10.77.0.2.5`), and ends a sentence otherwise.
        let joined = |c: Option<char>, next: Option<char>| {
            c.is_some_and(|c| word(c) || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())))
        };
        let (b1, b2) = (before.next(), before.next());
        let (a1, a2) = (after.next(), after.next());
        !joined(b1, b2) && !joined(a1, a2)
    })
}

/// What `--redact` must hide, read from the live snapshot: every unicast MAC, every
/// address that is not loopback, unspecified or multicast, every netns name, the host name.
fn originals(snap: &Snapshot) -> (BTreeSet<String>, Vec<Vec<u8>>) {
    let mut text = BTreeSet::new();
    let mut bytes = Vec::new();
    let mut mac = |m: &str| {
        let Some(b) = ctnet_core::capture::parse_mac(m) else {
            return;
        };
        if b != [0; 6] && b[0] & 1 == 0 {
            text.insert(m.to_ascii_lowercase());
            bytes.push(b.to_vec());
        }
    };
    for ns in &snap.netns {
        ns.links
            .iter()
            .filter_map(|l| l.mac.as_deref())
            .for_each(&mut mac);
        ns.neighbours
            .iter()
            .filter_map(|n| n.mac.as_deref())
            .for_each(&mut mac);
        ns.fdb.iter().map(|f| f.mac.as_str()).for_each(&mut mac);
    }
    for ns in &snap.netns {
        for a in &ns.addresses {
            let special = match a.address {
                IpAddr::V4(v) => v.is_loopback() || v.is_unspecified() || v.is_multicast(),
                IpAddr::V6(v) => v.is_loopback() || v.is_unspecified() || v.is_multicast(),
            };
            if !special {
                text.insert(a.address.to_string());
                if let IpAddr::V4(v) = a.address {
                    bytes.push(v.octets().to_vec());
                }
            }
        }
        for r in &ns.refs {
            if let ctnet_core::netns::NetnsRef::Named { name, .. } = r {
                text.insert(name.clone());
            }
        }
    }
    text.insert(snap.hostname.clone());
    (text, bytes)
}

#[test]
fn a_bundle_reads_back_and_redacted_keeps_no_original() {
    let test = "a_bundle_reads_back_and_redacted_keeps_no_original";
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bundle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.to_string_lossy().into_owned();
    let Some(s) = Script::run(BIN, test, SCRIPT, &[("OUT", &out)]) else {
        return;
    };
    assert_eq!(s.line("DONE: "), "yes", "{s}");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();

    // The file, its members and its progress.
    assert_eq!(s.line("MODE: "), "600");
    let members = s.line("MEMBERS: ");
    for m in [
        "manifest.json",
        "snapshot.json",
        "checks/001-s-c1.json",
        "checks/001-s-c1.txt",
        "checks/002-s-c2.txt",
        "captures.pcapng",
        "kernel-log.txt",
        "versions.txt",
    ] {
        assert!(members.contains(m), "{m} missing from {members}");
    }
    let progress = read("progress");
    assert!(
        progress.contains("capturing 2 host veth(s) for 2 s") && progress.contains("wrote"),
        "{progress}"
    );
    let manifest: serde_json::Value = serde_json::from_str(&read("b/manifest.json")).unwrap();
    assert_eq!(manifest["schema"], "ctnet.bundle/v1");
    assert!(manifest["capture"]["frames"].as_u64().unwrap() > 0, "{manifest}");
    assert!(read("b/versions.txt").contains("kernel release: "));
    assert!(read("b/checks/001-s-c1.txt").starts_with("verdict: "));

    // Read back as the host is read live.
    assert_eq!(read("veths.from"), read("veths.live"));
    let verdict = |t: &str| t.lines().next().unwrap_or("").to_string();
    assert_eq!(verdict(&read("check.from")), verdict(&read("check.live")));
    assert!(read("check.from").contains("PASS nat.masquerade"));

    // Each ICMP packet on the host veth it crossed, by name.
    assert_eq!(s.line("IFACES: ").trim(), "s-v1 s-v2");

    // Redacted: nothing original in any file, in text or in a packet's bytes.
    let live = Snapshot::load(dir.join("live.json")).unwrap();
    let (text, bytes) = originals(&live);
    assert!(text.contains("s-c1") && text.contains("10.77.0.2"), "{text:?}");
    let mut all = files(&dir.join("r"));
    all.push((dir.join("r.decoded"), read("r.decoded").into_bytes()));
    all.push((dir.join("veths.redacted"), read("veths.redacted").into_bytes()));
    all.push((dir.join("check.redacted"), read("check.redacted").into_bytes()));
    assert!(all.len() >= 10, "{all:?}");
    for (path, content) in &all {
        let t = String::from_utf8_lossy(content);
        for o in &text {
            assert!(!has_word(&t, o), "{o} is left in {}", path.display());
        }
        if path.extension().is_some_and(|e| e == "pcapng") {
            for b in &bytes {
                assert!(
                    !content.windows(b.len()).any(|w| w == b.as_slice()),
                    "{b:02x?} is left in the bytes of {}",
                    path.display()
                );
            }
        }
    }
    assert!(s.line("RFRAMES: ").parse::<u32>().unwrap() > 0);
    // The redacted bundle still reads: two veths, a check of a token.
    assert_eq!(
        read("veths.redacted").lines().count(),
        3,
        "{}",
        read("veths.redacted")
    );
    assert!(
        read("check.redacted").starts_with("verdict: "),
        "{}",
        read("check.redacted")
    );
    assert!(matches!(s.line("RCHECK: ").as_str(), "0" | "1"));

    // /dev/full: exit 3 and the path.
    assert_eq!(s.line("FULL: "), "3");
    assert!(read("full.err").contains("/dev/full"), "{}", read("full.err"));
    let _ = std::fs::remove_dir_all(&dir);
}
