//! Real flows between namespaces a test made: an echo server (TCP and UDP ports) and
//! a client that sends many flows at once (TCP connect with data both ways, UDP echo,
//! ICMP echo) and prints what each got. Shared by the kernel oracles.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};

pub const SERVER: &str = r#"
import selectors, socket, sys, threading
def echo(c):
    try:
        c.settimeout(5); d = c.recv(64)
        if d: c.sendall(d)
    except OSError:
        pass
    finally:
        c.close()
tcp = [int(p) for p in sys.argv[1].split(",")]
udp = [int(p) for p in sys.argv[2].split(",")]
sel = selectors.DefaultSelector()
for p in tcp:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", p)); s.listen(256); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, "t")
for p in udp:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("", p)); u.setblocking(False)
    sel.register(u, selectors.EVENT_READ, "u")
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        try:
            if key.data == "t":
                c, _ = key.fileobj.accept()
                threading.Thread(target=echo, args=(c,), daemon=True).start()
            else:
                d, a = key.fileobj.recvfrom(2048); key.fileobj.sendto(d, a)
        except OSError:
            pass
"#;

pub const CLIENT: &str = r#"
import errno, json, socket, struct, sys, threading, time
T = float(sys.argv[1])
flows = json.load(sys.stdin)
out = [None] * len(flows)
def err(e):
    return errno.errorcode.get(e.errno, str(e)) if getattr(e, "errno", None) else type(e).__name__
def tcp(f):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.bind(("", f["sport"])); s.settimeout(T)
    try:
        # A connection works when data goes both ways, not when the handshake ends:
        # the ACK and the data are the ESTABLISHED packets of the original direction.
        s.connect((f["dst"], f["dport"])); s.sendall(b"ctnet")
        return "ok" if s.recv(64) == b"ctnet" else "garbled"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return err(e)
    finally:
        s.close()
def udp(f):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", f["sport"])); s.settimeout(T)
    try:
        s.connect((f["dst"], f["dport"])); s.send(b"ctnet")
        return "ok" if s.recv(64) == b"ctnet" else "garbled"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return err(e)
    finally:
        s.close()
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
def icmp(f):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = f["sport"]
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"ctnet"
    pkt = hdr[:2] + struct.pack("!H", csum(hdr)) + hdr[4:]
    try:
        s.sendto(pkt, (f["dst"], 0))
        end = time.monotonic() + T
        while True:
            left = end - time.monotonic()
            if left <= 0: return "timeout"
            s.settimeout(left)
            try:
                d, a = s.recvfrom(2048)
            except socket.timeout:
                return "timeout"
            ihl = (d[0] & 15) * 4
            t, _, _, i = struct.unpack("!BBHH", d[ihl:ihl + 6])
            if t == 0 and i == ident and a[0] == f["dst"]: return "ok"
    finally:
        s.close()
def run(k, f):
    out[k] = {"tcp": tcp, "udp": udp, "icmp": icmp}[f["proto"]](f)
ts = [threading.Thread(target=run, args=(k, f)) for k, f in enumerate(flows)]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps(out))
"#;

pub fn sh(script: &str) {
    let out = Command::new("sh")
        .args(["-ec", script])
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Servers this test started; killed (by their own pid) when dropped.
pub struct Servers(pub Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn start_server(py: &str, netns: Option<&str>, tcp_ports: &[u16], udp_ports: &[u16]) -> Child {
    let tcp: Vec<String> = tcp_ports.iter().map(u16::to_string).collect();
    let udp: Vec<String> = udp_ports.iter().map(u16::to_string).collect();
    let mut child = python_in(netns, py)
        .args(["-c", SERVER])
        .args([tcp.join(","), udp.join(",")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout piped"))
        .read_line(&mut line)
        .expect("server says ready");
    assert_eq!(line.trim(), "ready", "server in {netns:?}");
    child
}

/// Start the client in `netns` with `flows` (a JSON list of `{proto, dst, dport, sport}`)
/// and a timeout in seconds.
pub fn send_json(py: &str, netns: &str, flows: &str, timeout: &str) -> Child {
    send_in(Some(netns), py, flows, timeout)
}

/// [`send_json`] from this process's own netns.
pub fn send_here(py: &str, flows: &str, timeout: &str) -> Child {
    send_in(None, py, flows, timeout)
}

/// `py` to run in `netns` (`ip netns exec`), or here.
fn python_in(netns: Option<&str>, py: &str) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, py]);
            c
        }
        None => Command::new(py),
    }
}

fn send_in(netns: Option<&str>, py: &str, flows: &str, timeout: &str) -> Child {
    let mut child = python_in(netns, py)
        .args(["-c", CLIENT, timeout])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client starts");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(flows.as_bytes())
        .expect("flows written");
    child
}

/// What each flow got: `ok`, `timeout`, or an errno name.
pub fn results(child: Child) -> Vec<String> {
    let out = child.wait_with_output().expect("client ends");
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client prints a JSON list")
}
