//! Every byte ctnet-diag writes to its standard output and error goes through here.
//!
//! - Text is passed through [`ctnet_core::text::escape_keep_newlines`] as a last net:
//!   the renderers escape each name already (so a newline cannot forge a row), and
//!   nothing that slipped past them reaches the terminal raw. JSON is written exact.
//! - A reader that went away (`| head -1`) ends the program quietly with the status a
//!   shell shows for SIGPIPE ([`Closed`], 141); any other write error (`> /dev/full`)
//!   is an error that says so ([`WriteFailed`]), never a panic and never exit 0.
//! - Messages on stderr never fail the program: if stderr itself is gone there is
//!   nobody left to tell.

use std::io::{self, Write};

use ctnet_core::text;

/// The exit status of a program whose output pipe was closed (128 + SIGPIPE).
pub const CLOSED_STATUS: u8 = 141;

/// Standard output was closed by its reader.
#[derive(Debug)]
pub struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for Closed {}

/// Writing an output (standard output or a file) failed.
#[derive(Debug)]
pub struct WriteFailed {
    /// `standard output`, or the file's path.
    pub what: String,
    /// The OS error.
    pub source: io::Error,
}

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "writing {}: {}", self.what, self.source)
    }
}

impl std::error::Error for WriteFailed {}

/// The error for a failed write to standard output.
pub fn stdout_error(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        anyhow::Error::new(Closed)
    } else {
        anyhow::Error::new(WriteFailed {
            what: "standard output".into(),
            source: e,
        })
    }
}

/// `--color`: 0 auto, 1 always, 2 never.
static COLOR: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Set what `--color` asked for.
pub fn set_color(when: crate::cli::ColorWhen) {
    use crate::cli::ColorWhen;
    let v = match when {
        ColorWhen::Auto => 0,
        ColorWhen::Always => 1,
        ColorWhen::Never => 2,
    };
    COLOR.store(v, std::sync::atomic::Ordering::Relaxed);
}

/// Whether text output is coloured: `--color always`, or `auto` (the default) on a
/// terminal with NO_COLOR unset (https://no-color.org).
pub fn color() -> bool {
    use std::io::IsTerminal;
    match COLOR.load(std::sync::atomic::Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// Diagnostics on stderr through the `log` facade: none by default; `-v` what each scan
/// step read and how long it took, with every source skipped or failed and why; `-vv`
/// per netns and per tool; `-vvv` everything. `RUST_LOG` (env_logger's syntax:
/// `debug`, `ctnet_core::source=trace`) wins over `-v`. Each line carries the time
/// since the start and is escaped like every other line we print: a name in a log
/// line is as hostile as one in a table.
///
/// The dashboard owns the terminal: its diagnostics are written only when stderr is
/// redirected (`ctnet-diag -v 2>ctnet.log`), and a note says so otherwise.
pub fn init_log(verbose: u8, dashboard: bool) {
    use std::io::IsTerminal;
    let env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    if verbose == 0 && env.is_none() {
        return;
    }
    if dashboard && io::stderr().is_terminal() {
        stderr(
            "ctnet-diag: note: the dashboard's diagnostics need stderr redirected: \
             ctnet-diag -v 2>ctnet.log",
        );
        return;
    }
    let level = match verbose {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = env.unwrap_or_else(|| format!("ctnet_core={level},ctnet_diag={level},ctnet_tui={level}"));
    let start = std::time::Instant::now();
    let _ = env_logger::Builder::new()
        .parse_filters(&filter)
        .target(env_logger::Target::Stderr)
        .format(move |buf, record| {
            let line = format!(
                "[{:>9.1} ms {:<5} {}] {}",
                start.elapsed().as_secs_f64() * 1e3,
                record.level(),
                record.target(),
                record.args()
            );
            writeln!(buf, "{}", text::escape(&line))
        })
        .try_init();
}

/// Write text to standard output (escaped, newlines kept) and flush it.
pub fn text(s: &str) -> anyhow::Result<()> {
    raw(text::escape_keep_newlines(s).as_bytes())
}

/// Write text whose every name the renderer escaped already (so the only escape
/// sequences in it are the renderer's own colours) to standard output.
pub fn rendered(s: &str) -> anyhow::Result<()> {
    raw(s.as_bytes())
}

/// Write a JSON document (exact) and a newline to standard output.
pub fn json(doc: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut s = serde_json::to_string_pretty(doc)?;
    s.push('\n');
    raw(s.as_bytes())
}

fn raw(b: &[u8]) -> anyhow::Result<()> {
    let mut o = io::stdout().lock();
    o.write_all(b).and_then(|()| o.flush()).map_err(stdout_error)
}

/// Write one message line to standard error (escaped, newlines kept); errors ignored.
pub fn stderr(s: &str) {
    let mut line = text::escape_keep_newlines(s).into_owned();
    line.push('\n');
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// `println!` that escapes, never panics, and turns a closed or full output into an
/// error (`?` it).
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::out::text(&format!("{}\n", format_args!($($t)*)))
    };
}

/// `eprintln!` that escapes and never panics.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {
        $crate::out::stderr(&format!($($t)*))
    };
}

/// A writer that remembers its first error, for writers handed to threads that can
/// only stop on an error, not return it.
pub struct Latch<W> {
    inner: W,
    /// The first error a write or flush returned.
    pub error: std::sync::Arc<std::sync::Mutex<Option<io::Error>>>,
}

impl<W> Latch<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            error: Default::default(),
        }
    }
}

impl<W: Write> Latch<W> {
    fn keep<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(io::Error::new(e.kind(), e.to_string()));
                if let Some(code) = e.raw_os_error() {
                    *slot = Some(io::Error::from_raw_os_error(code));
                }
            }
        }
        r
    }
}

impl<W: Write> Write for Latch<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.write(buf);
        self.keep(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.inner.flush();
        self.keep(r)
    }
}
