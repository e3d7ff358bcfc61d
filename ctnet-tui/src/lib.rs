//! ctnet-tui: the ratatui dashboard of ctnet (topology, tables, live capture, checks).
//!
//! The dashboard itself arrives with its own issue; this crate holds the workspace slot
//! so the dependency direction `ctnet-diag -> ctnet-tui -> ctnet-core` is fixed now.
