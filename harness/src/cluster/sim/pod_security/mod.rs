//! The PodSecurity admission plugin (Pod Security Standards) as a default
//! kube-apiserver of minor 1.34 to 1.37 runs it: no admission config file,
//! so every namespace without labels is `privileged:latest` and nothing is
//! exempt (not `kube-system` either).
//!
//! A pure function library over `serde_json::Value`. Its texts (refusals,
//! warnings, audit annotations) are the real apiserver's byte for byte,
//! because the harness compares a simulated cluster's answers with a real
//! one's. The facts come from `k8s.io/pod-security-admission` v0.34.4 to
//! v0.37.2 (`api/helpers.go`, `policy/check_*.go`, `policy/registry.go`,
//! `admission/admission.go`) and the in-tree wrapper
//! `plugin/pkg/admission/security/podsecurity/admission.go`.
//!
//! - [`NamespacePolicy::from_labels`]: the namespace labels, read as PSA
//!   reads them (defaults, invalid values, warn following enforce).
//! - [`evaluate`]: the failed checks of a pod against one policy.
//! - `admit_*`: the plugin's decisions for pods, pod controllers and
//!   namespaces.
//!
//! Pods must be given as the apiserver holds them at validating admission:
//! after API defaulting (a `hostNetwork` pod's ports get `hostPort` =
//! `containerPort`) and after the pod strategy copied AppArmor annotations
//! into fields. Modelling those is not this module's job.
//!
//! Not modelled: emulated versions (`--emulation-version`), the 1-second
//! budget for checking a namespace's pods (the simulation is instant), and
//! the apiserver's truncation of warning headers past 4096 runes in total.

mod admission;
mod checks;
mod policy;
#[cfg(test)]
mod tests;

pub use admission::{
    admit_namespace_create, admit_namespace_update, admit_pod_controller, admit_pod_create,
    admit_pod_update,
};
