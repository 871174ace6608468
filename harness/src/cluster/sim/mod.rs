//! The simulated cluster: an in-process apiserver (store, defaulting,
//! built-in admission, the real injector over HTTPS as a mutating webhook,
//! validation), the workload controllers, and a one-node kubelet model.
//!
//! It behaves like a one-node kind cluster wherever a scenario can see it.
//! It never reads a scenario's expectations. Time is simulated: nothing
//! sleeps, so a scenario settles in milliseconds.
//!
//! This file only declares and re-exports: the modules import each other
//! directly (`super::store::SimCluster`), never through here, so the
//! folder has no import circle.

mod apply_typing;
mod backend;
mod controllers;
mod custom_resources;
pub mod defaults;
mod limit_ranger;
pub mod metadata;
mod names;
pub mod node;
mod pod_security;
mod quantities;
mod quotas;
mod registry_warnings;
mod resource_quota;
pub mod scheduler;
mod steps;
mod store;
mod turns;
pub mod validation;
mod warning_recorder;
mod write_path;

pub use names::{fnv32a, safe_encode};
pub use node::NODE_NAME;
pub use store::SimCluster;
