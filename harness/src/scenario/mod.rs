//! Scenario files: one YAML stream per scenario. The first document is the
//! header (`kind: Scenario`): what the injector and its webhook registration
//! look like, steps to run after applying, and what the user expects. Every
//! following document is a Kubernetes manifest to apply, in order.
//!
//! `model` holds what a scenario says, `parse` reads a file into it,
//! `validate` checks what serde cannot, `document` points those checks'
//! errors at their lines, and `skeleton` is the scenario `new` writes.

mod document;
mod error;
mod model;
mod parse;
mod skeleton;
#[cfg(test)]
mod testing;
mod validate;

pub use error::ScenarioError;
pub use model::{
    Expectations, Header, ImageSpec, InjectorSpec, Manifest, PodExpectation, ProcessSpec,
    RejectionExpectation, Scenario, StateExpectation, Step, SubjectSpec, Target, WebhookSpec,
    WorkloadExpectation, API_VERSION, DEFAULT_WEBHOOK_NAME, KIND,
};
pub use parse::{discover, load, load_base_config, parse};
pub use skeleton::skeleton;
