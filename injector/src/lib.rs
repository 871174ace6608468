//! `sidecar-injector`: a mutating admission webhook that injects a sidecar
//! proxy into pods.
//!
//! The library holds everything; the binary is a thin clap front end.
//! - [`config`]: what to inject and when, loaded and validated from YAML.
//! - [`policy`]: the injection decision and its reason.
//! - [`inject`]: the engine that turns a pod into a JSON Patch.
//! - [`admission`]: AdmissionReview in, AdmissionReview out.
//! - [`server`]: the HTTPS webhook server (axum + rustls).
//! - [`certs`], [`manifests`], [`workload`]: what the CLI offers besides.

pub mod admission;
pub mod certs;
pub mod config;
pub mod inject;
pub mod manifests;
pub mod metrics;
pub mod patch;
pub mod policy;
pub mod ports;
pub mod pruned;
pub mod selector;
pub mod server;
pub mod tls;
pub mod watch;
pub mod workload;
/// Lines of a YAML document's fields by path, for errors found after
/// parsing; the harness points its scenario errors with it too.
pub mod yaml_position;

pub use config::Config;
pub use inject::{Injector, Outcome, PodRef};
pub use policy::Reason;
