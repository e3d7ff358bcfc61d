//! A hostile container runtime: the real `ctnet-diag veths`, inside a rootless world,
//! asks a fake daemon (a real unix socket this test serves) that answers with endless,
//! oversized, malformed or no bytes at all. Each answer must end in a note that names
//! the socket, no panic, and a process that stays under 100 MB.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/world.rs"]
mod world;

const BIN: &str = env!("CARGO_BIN_EXE_ctnet-diag");

/// The most a `veths` run against any hostile daemon may use.
const MAX_RSS_KIB: i64 = 100 * 1024;

/// How the fake daemon answers each connection.
#[derive(Clone)]
enum Answer {
    /// These bytes, then close.
    Bytes(Vec<u8>),
    /// `head`, then `unit` repeated until the client goes away.
    Endless { head: String, unit: String },
    /// Reads the request and never says anything.
    Silent,
    /// One byte of an endless header every 100 ms: each read is quick, the answer never
    /// ends.
    Trickle,
}

/// A daemon on `dir/name` answering every connection with `answer` on its own thread.
fn serve(dir: &Path, name: &str, answer: Answer) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let answer = answer.clone();
            std::thread::spawn(move || answer_one(conn, answer));
        }
    });
    path
}

fn answer_one(mut conn: UnixStream, answer: Answer) {
    // The request: up to its empty line (bounded; the client is ours).
    let mut req = Vec::new();
    let mut byte = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") && req.len() < 64 << 10 {
        match conn.read(&mut byte) {
            Ok(1) => req.push(byte[0]),
            _ => return,
        }
    }
    // Every loop below ends when the client closes (a write fails, a read sees EOF).
    match answer {
        Answer::Bytes(b) => {
            let _ = conn.write_all(&b);
        }
        Answer::Endless { head, unit } => {
            if conn.write_all(head.as_bytes()).is_err() {
                return;
            }
            let block = unit.repeat((64 << 10) / unit.len().max(1) + 1);
            while conn.write_all(block.as_bytes()).is_ok() {}
        }
        Answer::Silent => {
            let _ = conn.read_to_end(&mut Vec::new());
        }
        Answer::Trickle => {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ");
            while conn.write_all(b"a").is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A listener that never accepts, its queue filled by connections of ours: a connect to
/// it blocks unless bounded.
fn serve_full_queue(dir: &Path) -> (PathBuf, UnixListener, Vec<OwnedFd>) {
    let path = dir.join("full.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut held = Vec::new();
    for _ in 0..100_000 {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: a socket just made, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let (addr, len) = sockaddr(&path);
        // SAFETY: addr is an initialised sockaddr_un of at least len bytes.
        let rc = unsafe { libc::connect(fd.as_raw_fd(), (&raw const addr).cast(), len) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "filling the queue: {e}");
            return (path, listener, held);
        }
        held.push(fd);
    }
    panic!("the accept queue of {} never filled", path.display());
}

fn sockaddr(path: &Path) -> (libc::sockaddr_un, libc::socklen_t) {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: sockaddr_un is plain data; all zeroes is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len(), "socket path too long");
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    (addr, len as libc::socklen_t)
}

/// What one `ctnet-diag` run left: exit code, stderr, and its peak RSS in KiB.
struct Run {
    code: Option<i32>,
    stderr: String,
    max_rss_kib: i64,
}

/// Run `ctnet-diag world -- ctnet-diag ARGS` (the world execs the command, so the
/// child's `ru_maxrss` is that of `veths` itself) and reap it with `wait4`.
fn run_in_world(dir: &Path, tag: &str, args: &[&str], env: &[(&str, &Path)]) -> Run {
    let err_path = dir.join(format!("{tag}.stderr"));
    let stderr = std::fs::File::create(&err_path).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["world", "--", BIN])
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also gives its rusage"
    )]
    let child = cmd.spawn().expect("start ctnet-diag");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; zeroed is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet reaped; both pointers are valid.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Run {
        code,
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        max_rss_kib: usage.ru_maxrss,
    }
}

/// Whether rootless worlds can be made here; under CI they must.
fn worlds_available(test: &str) -> bool {
    world::available(BIN, test)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ctnet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `veths` against `socket`, asked as `--docker-host` (or found as the user's podman
/// socket when `xdg` is given): the scan goes on without the daemon (exit 0, as for
/// any unreachable daemon), with a note naming the socket and the fault.
fn check_case(dir: &Path, case: &str, socket: &Path, xdg: Option<&Path>, want: &str) -> i64 {
    let host = format!("unix://{}", socket.display());
    let run = match xdg {
        Some(x) => run_in_world(dir, case, &["veths"], &[("XDG_RUNTIME_DIR", x)]),
        None => run_in_world(dir, case, &["veths", "--docker-host", &host], &[]),
    };
    let err = &run.stderr;
    eprintln!("{case}: max RSS {} KiB", run.max_rss_kib);
    assert!(!err.contains("panicked"), "{case}: a panic:\n{err}");
    assert_eq!(run.code, Some(0), "{case}: {err}");
    let note = err
        .lines()
        .find(|l| l.contains(&socket.display().to_string()))
        .unwrap_or_else(|| panic!("{case}: no note names {}:\n{err}", socket.display()));
    assert!(note.contains(want), "{case}: wanted {want:?} in:\n{err}");
    assert!(
        !err.contains('\x1b'),
        "{case}: a raw escape reached stderr:\n{err}"
    );
    assert!(
        run.max_rss_kib < MAX_RSS_KIB,
        "{case}: ctnet-diag grew to {} KiB",
        run.max_rss_kib
    );
    run.max_rss_kib
}

fn ok(head: &str, body: &str) -> Answer {
    Answer::Bytes(format!("{head}\r\n\r\n{body}").into_bytes())
}

#[test]
fn hostile_daemon_answers_are_notes_naming_the_socket_in_bounded_memory() {
    if !worlds_available("hostile_daemon_answers_are_notes_naming_the_socket_in_bounded_memory") {
        return;
    }
    let dir = temp_dir("hostile-runtime");
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let names = format!(
        "[{{\"Id\":\"x\",\"Names\":[{}]}}]",
        vec!["\"a\""; 60_000].join(",")
    );
    let cases: Vec<(&str, Answer, &str)> = vec![
        (
            "endless body without a length",
            Answer::Endless {
                head: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n".into(),
                unit: "[".into(),
            },
            "answer larger than 16 MiB",
        ),
        (
            "overflowing chunk size",
            Answer::Bytes(format!("{chunked}3\r\n[1,\r\nfffffffffffffffd\r\n").into_bytes()),
            "answer larger than 16 MiB",
        ),
        (
            "chunk size beyond 64 bits",
            Answer::Bytes(format!("{chunked}1ffffffffffffffff\r\n").into_bytes()),
            "bad chunk size",
        ),
        (
            "endless chunks",
            Answer::Endless {
                head: chunked.into(),
                unit: format!("1000\r\n{}\r\n", " ".repeat(0x1000)),
            },
            "answer larger than 16 MiB",
        ),
        (
            "endless header line",
            Answer::Endless {
                head: "HTTP/1.1 200 OK\r\nX-Junk: ".into(),
                unit: "a".into(),
            },
            "header longer than 8192 bytes",
        ),
        (
            "too many headers",
            Answer::Endless {
                head: "HTTP/1.1 200 OK\r\n".into(),
                unit: "X-A: b\r\n".into(),
            },
            "more than 100 headers",
        ),
        (
            "body over the cap",
            Answer::Endless {
                head: "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n".into(),
                unit: "[".into(),
            },
            "answer larger than 16 MiB",
        ),
        ("never answers", Answer::Silent, "no complete answer within 5 s"),
        ("trickles bytes", Answer::Trickle, "no complete answer within 5 s"),
        (
            "not HTTP",
            Answer::Bytes(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()),
            "not an HTTP response: SSH-2.0",
        ),
        (
            "invalid JSON",
            ok("HTTP/1.1 200 OK\r\nContent-Length: 8", "{\"oops\":"),
            "unexpected answer",
        ),
        (
            "too many items",
            ok(
                &format!("HTTP/1.1 200 OK\r\nContent-Length: {}", names.len()),
                &names,
            ),
            "more than 50000 items",
        ),
        (
            "escapes in an error",
            ok(
                "HTTP/1.1 500 Oops\r\nContent-Length: 17",
                "\x1b]0;pwned\x07\x1b[2Jgone",
            ),
            "HTTP 500: \\u{1b}]0;pwned",
        ),
    ];
    // The cases that wait for the 5 s deadline run side by side; the others one after
    // another, so a loaded machine cannot turn a cap into a timeout.
    let mut rss = Vec::new();
    std::thread::scope(|s| {
        let mut slow = Vec::new();
        for (i, (case, answer, want)) in cases.into_iter().enumerate() {
            let socket = serve(&dir, &format!("d{i}.sock"), answer);
            let dir = &dir;
            if want.contains("within 5 s") {
                slow.push((case, s.spawn(move || check_case(dir, case, &socket, None, want))));
            } else {
                rss.push((case, check_case(dir, case, &socket, None, want)));
            }
        }
        for (case, run) in slow {
            match run.join() {
                Ok(kib) => rss.push((case, kib)),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
    });
    // The attack as reported: no flag at all, the user's own podman socket.
    let xdg = dir.join("xdg");
    let podman = serve(
        &xdg,
        "podman/podman.sock",
        Answer::Bytes(format!("{chunked}3\r\n[1,\r\nfffffffffffffffd\r\n").into_bytes()),
    );
    rss.push((
        "podman socket, overflowing chunk",
        check_case(
            &dir,
            "podman socket",
            &podman,
            Some(&xdg),
            "answer larger than 16 MiB",
        ),
    ));
    let (full, _listener, _held) = serve_full_queue(&dir);
    rss.push((
        "accept queue full",
        check_case(
            &dir,
            "accept queue full",
            &full,
            None,
            "accepted no connection within 5 s",
        ),
    ));
    for (case, kib) in &rss {
        eprintln!("max RSS {kib:>7} KiB  {case}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
