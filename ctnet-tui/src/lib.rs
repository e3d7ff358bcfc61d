//! `ctnet-tui`: the dashboard of `ctnet-diag`. A topology tree (bridges → ports →
//! containers, then every other netns), detail tabs (Link, FDB, ARP, Routes, Firewall,
//! Checks), a live capture pane and a status bar, drawn with ratatui.
//!
//! State lives in [`app::App`] and changes only through [`app::App::on_event`] and
//! [`app::App::update`], so it is tested without a terminal: the workers and the
//! effects' executor ([`run::Executor`]) only send events. [`ui::draw`] is a pure
//! function of it, one file per tab or region under `ui/`; the keys and their help are
//! one table ([`app::KEYMAP`]); [`run::run`] owns the terminal and the workers.
//!
//! ```no_run
//! use std::time::Duration;
//! use ctnet_core::source::ScanOptions;
//! use ctnet_tui::run::{self, Options, Source};
//!
//! run::run(Options {
//!     source: Source::Live(ScanOptions::default()),
//!     interval: Duration::from_secs(2),
//!     fault: None,
//! })
//! .expect("dashboard");
//! ```

pub mod app;
pub mod run;
pub mod tree;
pub mod ui;

/// What can go wrong running the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The terminal could not be set up or drawn on.
    #[error("terminal: {0}")]
    Terminal(std::io::Error),
    /// The core library failed.
    #[error(transparent)]
    Core(#[from] ctnet_core::Error),
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;
