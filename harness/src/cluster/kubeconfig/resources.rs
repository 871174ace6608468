//! What the harness calls the API's resources, and how it reads the
//! apiserver's answers.

use kube::api::ApiResource;
use kube::core::GroupVersionKind;

pub(super) use crate::admission::FIELD_MANAGER;
/// Namespaces a scenario may use but never deletes.
pub(super) const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// The API resource of a built-in kind the harness names itself (Pods,
/// workloads, Events); a scenario's objects are found by discovery.
pub fn api_resource(kind: &str) -> Option<(ApiResource, bool)> {
    let info = *crate::cluster::kind_info(kind)?;
    let gvk = GroupVersionKind::gvk(info.group, info.version, info.kind);
    Some((
        ApiResource::from_gvk_with_plural(&gvk, info.plural),
        info.namespaced,
    ))
}

/// The controllers whose objects a scenario observes.
pub(super) const WORKLOAD_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
];

/// The apiserver's own message for a refusal, else the error's text.
pub fn api_error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Whether an apiserver message says a webhook could not be reached or did
/// not answer in time: the failures a retry cures once the injector is back.
pub fn is_unreachable_webhook(message: &str) -> bool {
    message.contains("failed calling webhook")
        && (message.contains("connect: connection refused")
            || message.contains("no endpoints available for service")
            || message.contains("context deadline exceeded"))
}
