//! ctnet-core: build and introspect Linux container networking.
//!
//! - [`netns`]: network namespace identity, handles, and the one helper that enters a
//!   netns ([`netns::Netns::run`]) on a dedicated thread.
//! - [`world`]: rootless worlds (user + net + mount namespaces) for labs, demos and tests.
//! - [`lab`]: throwaway bridge/veth/netns/NAT labs built over netlink.
//!
//! ```no_run
//! use ctnet_core::lab::{self, LabEnv, LabSpec};
//!
//! # async fn demo() -> ctnet_core::Result<()> {
//! let mut spec = LabSpec::new("t");
//! spec.containers = 3;
//! spec.nat = true;
//! let built = lab::up(&spec, &LabEnv::default()).await?;
//! for c in &built.containers {
//!     println!("{} {} {} on {}", c.netns, c.ip, c.mac, c.host_veth);
//! }
//! let report = lab::down("t", &LabEnv::default()).await?;
//! assert!(report.failures.is_empty());
//! # Ok(())
//! # }
//! ```

pub mod capture;
pub mod check;
pub mod error;
pub mod flow;
pub mod lab;
pub mod model;
pub mod netfilter;
pub mod netns;
pub mod output;
pub mod probe;
#[doc(hidden)]
pub mod prop;
pub mod runtime;
pub mod source;
pub mod target;
pub mod text;
pub mod topology;
pub mod world;

pub use error::{Error, ErrorKind, Result};
