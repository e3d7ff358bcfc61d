//! The Debian package `scripts/deb` builds (`CTNET_DEB`, made by `scripts/test` before
//! the suite): installed for real with `dpkg -i` into this system seen through an
//! overlay (the writes go to a tmpfs thrown away with the test's mount namespace, so
//! dpkg checks the dependencies against the real package database and the host is not
//! changed), then run from where the package put it: `--version`, `veths` on a lab in a
//! world, the man pages and the bash completion; and removed again.

#[path = "support/script.rs"]
#[allow(dead_code)]
mod script;

use script::Script;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

const SCRIPT: &str = r#"
R=$(mktemp -d)
mount -t tmpfs tmpfs "$R"
mkdir "$R/upper" "$R/work" "$R/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$R/upper,workdir=$R/work" "$R/root"
for m in proc sys dev; do mount --rbind "/$m" "$R/root/$m"; done
mount -t tmpfs tmpfs "$R/root/run"
mount -t tmpfs tmpfs "$R/root/tmp"
cp "$DEB" "$R/root/tmp/ctnet.deb"
in_root() { chroot "$R/root" "$@"; }
echo "BEFORE: $(in_root sh -c 'dpkg-query -W -f="\${Status}" ctnet-diag 2>/dev/null || echo none')"
in_root dpkg -i /tmp/ctnet.deb > "$R/dpkg.log" 2>&1 || { cat "$R/dpkg.log"; exit 1; }
echo "STATUS: $(in_root dpkg-query -W -f='${Status} ${Version}' ctnet-diag)"
echo "DEPENDS: $(in_root dpkg-query -W -f='${Depends}' ctnet-diag)"
echo "WHERE: $(in_root sh -c 'command -v ctnet-diag')"
echo "VERSION: $(in_root ctnet-diag --version)"
echo "VETHS: $(in_root ctnet-diag world -- sh -c 'ctnet-diag lab up --name p --containers 2 > /dev/null && ctnet-diag veths' | awk 'NR > 1 { print $1 }' | sort | tr '\n' ' ')"
echo "MAN: $(in_root sh -c 'ls /usr/share/man/man1/ctnet-diag*.1.gz | wc -l') $(in_root zcat /usr/share/man/man1/ctnet-diag-bundle.1.gz | grep -c '^\.TH')"
echo "BASH: $(in_root bash -c '. /usr/share/bash-completion/completions/ctnet-diag && complete -p ctnet-diag')"
echo "COPYRIGHT: $(in_root head -1 /usr/share/doc/ctnet-diag/copyright)"
in_root dpkg -r ctnet-diag > /dev/null 2>&1
echo "REMOVED: $(in_root sh -c 'command -v ctnet-diag || echo gone')"
"#;

#[test]
fn the_deb_installs_with_dpkg_runs_and_removes() {
    let test = "the_deb_installs_with_dpkg_runs_and_removes";
    let deb = match std::env::var("CTNET_DEB") {
        Ok(p) if !p.is_empty() => std::fs::canonicalize(&p).unwrap_or_else(|e| panic!("CTNET_DEB={p}: {e}")),
        _ => {
            assert!(
                !ctnet_core::world::in_ci(),
                "{test}: CTNET_DEB is not set: scripts/test builds the package first (scripts/deb)"
            );
            ctnet_core::world::report_skip(&format!("{test}: no package (run scripts/deb, set CTNET_DEB)"));
            return;
        }
    };
    let deb = deb.to_string_lossy().into_owned();
    let Some(s) = Script::run_rooted(BIN, test, SCRIPT, &[("DEB", &deb)]) else {
        return;
    };
    assert_eq!(s.line("BEFORE: "), "none", "{s}");
    assert_eq!(
        s.line("STATUS: "),
        format!("install ok installed {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(s.line("DEPENDS: ").contains("libpcap0.8"), "{s}");
    assert_eq!(s.line("WHERE: "), "/usr/bin/ctnet-diag");
    assert!(
        s.line("VERSION: ")
            .starts_with(&format!("ctnet-diag {} (git ", env!("CARGO_PKG_VERSION"))),
        "{s}"
    );
    assert_eq!(s.line("VETHS: ").trim(), "p-v1 p-v2", "{s}");
    let man: Vec<u32> = s.line("MAN: ").split(' ').map(|n| n.parse().unwrap()).collect();
    assert!(man[0] >= 15 && man[1] == 1, "{s}");
    assert!(s.line("BASH: ").contains("ctnet-diag"), "{s}");
    assert!(s.line("COPYRIGHT: ").starts_with("Format: "), "{s}");
    assert_eq!(s.line("REMOVED: "), "gone", "{s}");
    // And the host itself has no ctnet-diag package.
    let host = std::process::Command::new("dpkg-query")
        .args(["-W", "ctnet-diag"])
        .output()
        .unwrap();
    assert!(!host.status.success(), "the package reached the host");
}
