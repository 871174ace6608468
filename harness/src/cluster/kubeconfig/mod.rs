//! The `kubeconfig` backend: scenarios on the cluster in KUBECONFIG, through
//! kube-rs. The webhook runs either in the harness process on 127.0.0.1,
//! registered by `url` (the apiserver must then run on this host: the local
//! control plane, `kind/local-cluster.sh`), or in the cluster as a
//! Deployment behind a Service (`HARNESS_WEBHOOK=in-cluster`, as on kind),
//! which any cluster can call. Each scenario gets its own
//! MutatingWebhookConfiguration, scoped to the scenario's namespaces, so
//! scenarios can run side by side, and each run its own names
//! ([`crate::isolation`]), so runs can share a cluster. Objects are applied
//! server-side; waiting is driven by watch events with a quiet period and a
//! timeout.
//!
//! One file a job: [`state`] holds the cluster handle, [`canary`] registers
//! a scenario's webhooks and waits until the apiserver calls them,
//! [`settle`] waits until nothing more happens by itself, [`observe`] reads
//! what the scenario made, [`cleanup`] removes it (and sweeps an interrupted
//! run), [`diagnostics`] says what failed; [`cluster`] is the [`Cluster`]
//! trait over them.
//!
//! [`Cluster`]: super::Cluster

mod canary;
mod cleanup;
mod cluster;
mod connect;
pub mod diagnostics;
mod observe;
mod resources;
mod settle;
mod state;
mod write_request;

pub use cleanup::{sweep, sweep_with};
pub use connect::connect_client;
pub use resources::{api_error_message, api_resource, is_unreachable_webhook};
pub use state::{KubeconfigCluster, Kubelet};
