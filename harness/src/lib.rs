//! `injector-harness`: scenario files, run on a cluster (simulated or real),
//! through the webhook under test over HTTPS, snapshot-tested.
//!
//! What a webhook author's test needs is here at the top:
//!
//! ```no_run
//! use injector_harness::{check_scenario_snapshot, load_scenario, run_scenario, Backend, RunOptions};
//!
//! # async fn test() -> anyhow::Result<()> {
//! let options = RunOptions::for_backend(Backend::Sim)?;
//! let scenario = load_scenario("scenarios/my-webhook.yaml".as_ref())?;
//! let result = run_scenario(&scenario, &options).await;
//! check_scenario_snapshot!(result, "snapshots").map_err(anyhow::Error::msg)?;
//! # Ok(())
//! # }
//! ```
//!
//! [`run`] runs many files on one [`Environment`], as the CLI does;
//! [`run_scenario`] one on an environment of its own. A result is
//! `Ok(`[`ScenarioRun`]`)` (its `failures` are the unmet expectations) or a
//! [`RunError`] whose [`ErrorKind`] says why it could not be judged.
//!
//! The modules below the facade are the harness's own, public for its
//! binary and its tests, hidden from these docs and not a stable API. The
//! data flow reads as they are named: `scenario` (the file) -> `backend`
//! (the environment: sim, kubeconfig or kind) -> `cluster` (behind one
//! trait) -> `admission` (the apiserver's webhook calls, over HTTPS, to a
//! `subject`) -> `kubelet` and `status` (pods and their READY count) ->
//! `snapshot` (normalized, backend-independent) and `expect`.

#[doc(hidden)]
pub mod admission;
#[doc(hidden)]
pub mod backend;
#[doc(hidden)]
pub mod cluster;
#[doc(hidden)]
pub mod error;
#[doc(hidden)]
pub mod expect;
#[doc(hidden)]
pub mod fake_kubelet;
#[doc(hidden)]
pub mod images;
#[doc(hidden)]
pub mod isolation;
#[doc(hidden)]
pub mod junit;
#[doc(hidden)]
pub mod kubelet;
#[doc(hidden)]
pub mod object;
#[doc(hidden)]
pub mod options;
#[doc(hidden)]
pub mod outcome;
#[doc(hidden)]
pub mod pass;
/// The probe program's flags and failure text, shared with the kubelet model
/// (its own std-only crate, `harness/probe`, so the image build stays small).
#[doc(hidden)]
pub use injector_probe as probe;
#[doc(hidden)]
pub mod process_group;
#[doc(hidden)]
pub mod quantity;
#[doc(hidden)]
pub mod report;
#[doc(hidden)]
pub mod run;
#[doc(hidden)]
pub mod scenario;
#[doc(hidden)]
pub mod scenario_files;
#[doc(hidden)]
pub mod schedule;
#[doc(hidden)]
pub mod snapshot;
// What check_scenario_snapshot! expands to: the caller need not depend on insta.
#[doc(hidden)]
pub use insta as __insta;
#[doc(hidden)]
pub mod status;
#[doc(hidden)]
pub mod subject;
#[doc(hidden)]
pub mod version;
#[doc(hidden)]
pub mod wait;

// The facade: what a library user needs, and all the docs show.
pub use backend::Environment;
pub use cluster::Backend;
pub use error::{ErrorKind, RunError};
pub use options::RunOptions;
pub use outcome::{Outcome, Progress, ScenarioRun};
pub use run::{run, run_scenario};
pub use scenario::Scenario;
pub use scenario_files::{expand_paths, load_scenario, parse_scenario};
