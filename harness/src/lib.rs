//! `injector-harness`: scenario files, run on a cluster (simulated or real),
//! through the real injector over HTTPS, snapshot-tested.
//!
//! The data flow, one module each: [`scenario`] (the file) -> [`cluster`]
//! (sim, kubeconfig or kind, behind one trait) -> [`admission`] (the injector
//! over HTTPS) -> [`kubelet`] and [`status`] (pods and their READY count) ->
//! [`snapshot`] (normalized, backend-independent) and [`expect`]; [`run`]
//! ties them together, as [`options`] say. The webhook under test is a
//! [`subject`].

pub mod admission;
pub mod cluster;
pub mod error;
pub mod expect;
pub mod fake_kubelet;
pub mod images;
pub mod isolation;
pub mod junit;
pub mod kubelet;
pub mod object;
pub mod options;
/// The probe program's flags and failure text, shared with the kubelet model
/// (its own std-only crate, `harness/probe`, so the image build stays small).
pub use injector_probe as probe;
pub mod process_group;
pub mod quantity;
pub mod report;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod snapshot;
// What check_scenario_snapshot! expands to: the caller need not depend on insta.
#[doc(hidden)]
pub use insta as __insta;
pub mod status;
pub mod subject;
pub mod version;
pub mod wait;
