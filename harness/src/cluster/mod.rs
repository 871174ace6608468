//! Where scenarios run: one trait, three backends. `sim` is an in-process
//! model of a one-node kind cluster; `kubeconfig` and `kind` drive real ones.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use serde_json::Value;

use crate::scenario::Target;

pub mod api_resources;
pub mod kind;
pub mod kubeconfig;
pub mod namespaces;
pub mod settled;
pub mod sim;

pub use api_resources::{ApiKind, KindInfo};

/// The built-in kind named `kind` (in its first group and version), for
/// code that names built-in kinds alone: `Deployment`, `Pod`.
pub fn kind_info(kind: &str) -> Option<&'static KindInfo> {
    api_resources::BUILT_IN.iter().find(|k| k.kind == kind)
}

/// Which backend runs the scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sim,
    Kind,
    Kubeconfig,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sim => "sim",
            Backend::Kind => "kind",
            Backend::Kubeconfig => "kubeconfig",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sim" => Ok(Backend::Sim),
            "kind" => Ok(Backend::Kind),
            "kubeconfig" => Ok(Backend::Kubeconfig),
            other => Err(format!(
                "unknown backend {other:?}: use sim, kind or kubeconfig"
            )),
        }
    }
}

/// An object the apiserver refused, or that a controller could not create
/// pods for (a FailedCreate event), attributed to the scenario's object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rejection {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub message: String,
}

/// A warning the apiserver returned to one of the scenario's requests
/// (a `Warning: 299` header, which kubectl prints as `Warning: ...`), from
/// a webhook's `warnings`, the object's registry strategy or PodSecurity's
/// warn level, attributed to the object as the scenario wrote it. Warnings
/// sent to controllers (on the pods they create) reach no client.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub message: String,
}

/// An event a component recorded about an object. Backends report the
/// scheduler's FailedScheduling events (the sim models no other component's
/// events).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectEvent {
    pub namespace: String,
    /// The object the event is about (`involvedObject`).
    pub kind: String,
    pub name: String,
    pub reason: String,
    pub message: String,
}

/// The event reason the scheduler records when a pod does not fit.
pub const FAILED_SCHEDULING: &str = "FailedScheduling";

/// Whether a FailedScheduling message says that no node fits the pod (the
/// scheduler's fit error, `0/1 nodes are available: ...`), as opposed to a
/// transient error such as a bind retry ("pod ... is already assigned to
/// node"), which a loaded real scheduler records under the same reason and
/// which says nothing about the scenario.
pub fn is_fit_error(message: &str) -> bool {
    message
        .split_once(" nodes are available")
        .is_some_and(|(head, _)| {
            head.strip_prefix("0/")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// What a backend shows once a scenario has settled.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Pod objects as the API returns them (spec, metadata, status).
    pub pods: Vec<Value>,
    /// The scenario's workloads (Deployments, StatefulSets, DaemonSets,
    /// ReplicaSets, Jobs) as stored.
    pub workloads: Vec<Value>,
    /// Objects of the kinds the scenario's CustomResourceDefinitions
    /// define, as stored (pruned and defaulted by their schema).
    pub objects: Vec<Value>,
    pub rejections: Vec<Rejection>,
    /// Warnings returned to the scenario's own requests, in order.
    pub warnings: Vec<Warning>,
    /// FailedScheduling events, one per pod and message.
    pub events: Vec<ObjectEvent>,
    /// The Kubernetes minor the cluster runs (the sim's modeled one; a real
    /// apiserver's `/version`), which picks a version-specific snapshot.
    pub kubernetes: Option<crate::version::Minor>,
}

/// A cluster a scenario runs on. Calls come in this order: `register`,
/// `apply` for each manifest, `settle`, then any steps each followed by
/// `settle`, then `observe`.
#[allow(async_fn_in_trait)]
pub trait Cluster {
    /// Registers the scenario's webhooks (one MutatingWebhookConfiguration).
    async fn register(&mut self, webhooks: Vec<MutatingWebhook>) -> anyhow::Result<()>;
    /// Creates (or updates) one object. A refusal is recorded, not an error.
    async fn apply(&mut self, object: &Value) -> anyhow::Result<()>;
    /// [`Cluster::apply`] as a server-side dry run: admitted the same way
    /// (webhooks are sent `dryRun: true`), a refusal recorded, nothing
    /// stored or charged.
    async fn apply_dry_run(&mut self, object: &Value) -> anyhow::Result<()>;
    /// Sets labels on a namespace; a `None` value removes the label.
    async fn label_namespace(
        &mut self,
        name: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> anyhow::Result<()>;
    /// `kubectl rollout restart` of a workload.
    async fn rollout_restart(
        &mut self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> anyhow::Result<()>;
    /// `kubectl scale` of a Deployment, ReplicaSet or StatefulSet.
    async fn scale(
        &mut self,
        namespace: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> anyhow::Result<()>;
    /// `kubectl patch --type merge` of one object (an UPDATE). A refusal
    /// is recorded, not an error.
    async fn patch(&mut self, target: &Target, patch: &Value) -> anyhow::Result<()>;
    /// `kubectl delete` of one object, its dependents in the background. A
    /// refusal is recorded, not an error.
    async fn delete(&mut self, target: &Target) -> anyhow::Result<()>;
    /// Tells the backend whether the injector answers webhook calls in time
    /// from now on (fault steps change it). A controller that failed to
    /// create pods because a call was refused or timed out retries with
    /// back-off: while the injector is down that failure is final for
    /// settling, once it answers again settling waits for the retry.
    fn injector_answering(&mut self, _answering: bool) {}
    /// Waits until controllers and kubelets have nothing left to do.
    async fn settle(&mut self) -> anyhow::Result<()>;
    async fn observe(&mut self) -> anyhow::Result<Observed>;
    /// One line per webhook call the cluster made, where the harness sees
    /// them (the sim); a real apiserver keeps its own.
    fn admission_log(&self) -> Vec<String> {
        Vec::new()
    }
    /// What only this cluster can say about a failure (failing containers'
    /// logs, events), gathered before anything is deleted.
    async fn diagnostics(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Deleting what the scenario made, done when it is gone; not started
    /// until awaited. Nothing to delete by default (the sim goes with its
    /// memory).
    fn into_cleanup(self) -> Removal
    where
        Self: Sized,
    {
        Box::pin(async { Ok(()) })
    }
}

/// Removing what a scenario made: its namespaces, its webhook's, its
/// webhook configuration; done when they are gone. Returned unawaited, so
/// a suite can run the next scenario while the last one's namespaces go.
pub type Removal = futures::future::BoxFuture<'static, anyhow::Result<()>>;

#[cfg(test)]
mod tests {
    use super::is_fit_error;

    #[test]
    fn only_the_schedulers_fit_errors_are_scenario_events() {
        assert!(is_fit_error(
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
        ));
        assert!(is_fit_error(
            "0/12 nodes are available: 12 Insufficient cpu."
        ));
        assert!(!is_fit_error(
            "binding rejected: running Bind plugin \"DefaultBinder\": Operation cannot be fulfilled on pods/binding \"web\": pod web is already assigned to node \"kind-control-plane\""
        ));
        assert!(!is_fit_error("0/ nodes are available"));
        assert!(!is_fit_error(""));
    }
}
