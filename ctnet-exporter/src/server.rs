//! The scrape cache and a small HTTP/1.1 server for `/metrics`.
//!
//! A scrape reuses the last scan while it is younger than the minimum interval; else it
//! starts one scan (concurrent scrapes wait for that same scan) and waits for it at most
//! the scan budget, after which it is answered with the previous scan and the scan goes
//! on in the background. Requests are read with a size cap and timeouts, and the number
//! of connections served at once is bounded: a scraper, or anything else that can
//! reach the port, cannot make the exporter hold unbounded memory or threads.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ctnet_core::source::ScanOptions;
use ctnet_core::topology::Topology;
use ctnet_core::{check, source, target};

use crate::metrics::{self, Limits, Meta, Scan};

/// How the exporter scans.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the scan reads.
    pub scan: ScanOptions,
    /// Run the light checks of every container.
    pub checks: bool,
    /// A scrape within this long of the last scan gets that scan.
    pub min_interval: Duration,
    /// How long a scrape waits for a new scan.
    pub budget: Duration,
    /// Output bounds.
    pub limits: Limits,
}

#[derive(Default)]
struct State {
    last: Option<Scan>,
    finished_at: Option<Instant>,
    running: bool,
    last_error: Option<String>,
    meta: Meta,
}

/// The exporter: configuration and the cache shared by every connection.
pub struct Exporter {
    cfg: Config,
    state: Mutex<State>,
    done: Condvar,
}

/// Run one scan and the checks: what a scrape costs.
pub fn scan(cfg: &Config) -> Result<Scan, String> {
    let t0 = Instant::now();
    let snap = source::snapshot(&cfg.scan).map_err(|e| e.to_string())?;
    let topo = Topology::build(&snap);
    let reports = if cfg.checks {
        let runner = check::Runner::new(&snap, &topo);
        target::containers(&snap, &topo)
            .into_iter()
            .map(|t| {
                let r = runner.run(&t, None);
                (t, r)
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Scan {
        snap,
        topo,
        reports,
        duration_s: t0.elapsed().as_secs_f64(),
    })
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Exporter {
    /// An exporter with an empty cache.
    pub fn new(cfg: Config) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start_scan(self: &Arc<Self>, st: &mut State) {
        st.running = true;
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("ctnet-scan".into())
            .spawn(move || {
                let r = scan(&me.cfg);
                let mut st = me.lock();
                st.meta.scans += 1;
                match r {
                    Ok(s) => {
                        st.meta.scan_time_unix_s = unix_now();
                        st.last = Some(s);
                        st.last_error = None;
                    }
                    Err(e) => {
                        eprintln!("ctnet-exporter: scan failed: {}", ctnet_core::text::escape(&e));
                        st.meta.scan_errors += 1;
                        st.last_error = Some(e);
                    }
                }
                st.finished_at = Some(Instant::now());
                st.running = false;
                me.done.notify_all();
            });
        if let Err(e) = spawned {
            st.running = false;
            st.meta.scan_errors += 1;
            st.last_error = Some(format!("could not start a scan thread: {e}"));
        }
    }

    /// The exposition for one scrape, or why there is none yet.
    pub fn scrape(self: &Arc<Self>) -> Result<String, String> {
        let mut st = self.lock();
        let fresh = |st: &State| {
            st.finished_at
                .is_some_and(|t| t.elapsed() < self.cfg.min_interval)
        };
        if !fresh(&st) {
            if !st.running {
                self.start_scan(&mut st);
            }
            let deadline = Instant::now() + self.cfg.budget;
            while st.running {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                st = self
                    .done
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if st.running {
                st.meta.budget_exceeded += 1;
            }
        }
        match &st.last {
            Some(scan) => Ok(metrics::render(scan, &st.meta, self.cfg.limits)),
            None if st.running => Err(format!(
                "the first scan is still running after the scan budget ({:?}); try again",
                self.cfg.budget
            )),
            None => Err(format!(
                "no scan succeeded yet: {}",
                st.last_error.as_deref().unwrap_or("unknown error")
            )),
        }
    }
}

/// The most request bytes read before the headers end.
const MAX_REQUEST: usize = 8 << 10;
/// Connections served at once; more are refused with 503.
const MAX_CONNECTIONS: usize = 16;

/// Accept connections forever.
pub fn serve(listener: TcpListener, exporter: Arc<Exporter>) -> std::io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(mut stream) = conn else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = respond(&mut stream, 503, "text/plain", b"too many connections\n", false);
            continue;
        }
        let exporter = Arc::clone(&exporter);
        let active2 = Arc::clone(&active);
        let spawned = std::thread::Builder::new()
            .name("ctnet-http".into())
            .spawn(move || {
                handle(stream, &exporter);
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

/// Read the request head: at most [`MAX_REQUEST`] bytes, up to the blank line.
fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Some(buf);
        }
        if buf.len() > MAX_REQUEST {
            return None;
        }
    }
}

fn handle(mut stream: TcpStream, exporter: &Arc<Exporter>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let Some(head) = read_head(&mut stream) else {
        let _ = respond(&mut stream, 400, "text/plain", b"bad request\n", false);
        return;
    };
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        let _ = respond(&mut stream, 405, "text/plain", b"only GET and HEAD\n", false);
        return;
    }
    match path {
        "/metrics" => match exporter.scrape() {
            Ok(text) => {
                let _ = respond(
                    &mut stream,
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    text.as_bytes(),
                    head_only,
                );
            }
            Err(e) => {
                let body = format!("{}\n", ctnet_core::text::escape(&e));
                let _ = respond(&mut stream, 503, "text/plain", body.as_bytes(), head_only);
            }
        },
        "/" => {
            let body = b"ctnet-exporter: container networking metrics at /metrics\n";
            let _ = respond(&mut stream, 200, "text/plain", body, head_only);
        }
        _ => {
            let _ = respond(
                &mut stream,
                404,
                "text/plain",
                b"not found: try /metrics\n",
                head_only,
            );
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    code: u16,
    ctype: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}
