//! The `kind` backend: scenarios on a kind cluster, with real kubelets and
//! containers. The injector runs in the cluster as a Deployment behind a
//! Service in a namespace of its own (one per scenario that acts on it,
//! one per config for the others: [`crate::subject::shared`]) and the
//! apiserver calls it through `clientConfig.service`. Applying, settling
//! and observing go through the same code as the `kubeconfig` backend, with
//! the real kubelet's notion of a settled pod.

pub mod environment;
pub mod ownership;
pub mod tools;

pub use environment::KindEnvironment;
