//! One module per command; each returns the exit code or an error.

pub mod bundle;
pub mod capture;
pub mod check;
pub mod demo;
pub mod docs;
pub mod fault;
pub mod lab;
pub mod read;
pub mod trace;
pub mod tui;
pub mod world;
