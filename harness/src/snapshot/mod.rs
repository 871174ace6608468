//! The normalized, backend-independent view of a settled scenario: what the
//! insta snapshot holds. Generated names, hashes, uids, IPs, timestamps and
//! resourceVersions become placeholders; pods are sorted by content; the
//! service-account token volume (a built-in plugin's, not the scenario's) is
//! left out. What remains is what a user reviews: pod specs, container
//! states and one READY line per pod.
//!
//! This file only declares and re-exports; the modules import each other
//! directly, never through here.

pub mod check;
pub mod file;
pub mod versioned;

mod canonical;
mod checkpoints;
mod container_state;
mod document;
mod generated_names;
mod pod_view;
mod redact;

pub use canonical::canonical;
pub use checkpoints::{checkpoint, with_checkpoints};
pub use container_state::container_state;
pub use document::build;
