//! Whether a pod gets the sidecar, and why.
//!
//! The precedence follows Istio's injector: hostNetwork, then ignored
//! namespaces, then "already injected", then the pod's own annotation, then
//! the never- and always-inject selectors, then the default policy. Namespace
//! gating is the job of the MutatingWebhookConfiguration's namespaceSelector
//! and objectSelector, which decide whether the injector is called at all.

use std::collections::BTreeMap;

use crate::config::Policy;
use crate::selector;

/// Why a request ended the way it did. Every outcome has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The object is not a pod (or is a pod subresource).
    NotAPod,
    /// UPDATE, DELETE or CONNECT: pods may not gain containers after creation.
    NotCreate,
    HostNetwork,
    IgnoredNamespace,
    AlreadyInjected,
    AnnotationDisabled,
    AnnotationEnabled,
    NeverInjectSelector,
    AlwaysInjectSelector,
    PolicyEnabled,
    PolicyDisabled,
    /// The policy says inject, but the pod already has a container or volume
    /// named like one the config injects: skipped, or denied under
    /// `onNameConflict: reject`.
    NameConflict,
    /// The policy says inject, but a sidecar port clashes with the pod's and
    /// `onPortConflict` (reject, or remap without a free port) denies it.
    PortConflict,
    /// The pod object could not be read; it is refused.
    InvalidPod,
}

impl Reason {
    pub const ALL: [Reason; 14] = [
        Reason::NotAPod,
        Reason::NotCreate,
        Reason::HostNetwork,
        Reason::IgnoredNamespace,
        Reason::AlreadyInjected,
        Reason::AnnotationDisabled,
        Reason::AnnotationEnabled,
        Reason::NeverInjectSelector,
        Reason::AlwaysInjectSelector,
        Reason::PolicyEnabled,
        Reason::PolicyDisabled,
        Reason::NameConflict,
        Reason::PortConflict,
        Reason::InvalidPod,
    ];

    /// Stable snake_case name, used in logs, metrics and `check` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotAPod => "not_a_pod",
            Reason::NotCreate => "not_create",
            Reason::HostNetwork => "host_network",
            Reason::IgnoredNamespace => "ignored_namespace",
            Reason::AlreadyInjected => "already_injected",
            Reason::AnnotationDisabled => "annotation_disabled",
            Reason::AnnotationEnabled => "annotation_enabled",
            Reason::NeverInjectSelector => "never_inject_selector",
            Reason::AlwaysInjectSelector => "always_inject_selector",
            Reason::PolicyEnabled => "policy_enabled",
            Reason::PolicyDisabled => "policy_disabled",
            Reason::NameConflict => "name_conflict",
            Reason::PortConflict => "port_conflict",
            Reason::InvalidPod => "invalid_pod",
        }
    }

    /// Whether this reason leads to injection.
    pub fn injects(self) -> bool {
        matches!(
            self,
            Reason::AnnotationEnabled | Reason::AlwaysInjectSelector | Reason::PolicyEnabled
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts about a pod that the policy looks at.
#[derive(Debug, Clone, Copy)]
pub struct PodFacts<'a> {
    pub namespace: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    pub host_network: bool,
}

/// The decision with a human-readable detail and any warning for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub reason: Reason,
    pub detail: String,
    pub warnings: Vec<String>,
}

impl Decision {
    pub fn inject(&self) -> bool {
        self.reason.injects()
    }

    fn new(reason: Reason, detail: impl Into<String>) -> Decision {
        Decision {
            reason,
            detail: detail.into(),
            warnings: Vec::new(),
        }
    }
}

/// Reads an inject annotation value the way Istio does (case-insensitive).
pub fn parse_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "y" | "yes" | "on" => Some(true),
        "false" | "n" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Decides for one pod. `own_namespace` is the injector's namespace, always
/// ignored so the injector never injects itself.
pub fn decide(policy: &Policy, own_namespace: Option<&str>, pod: PodFacts<'_>) -> Decision {
    if pod.host_network {
        return Decision::new(
            Reason::HostNetwork,
            "pod uses hostNetwork; a sidecar would share the node's ports",
        );
    }
    if policy.ignored_namespaces.iter().any(|n| n == pod.namespace)
        || own_namespace == Some(pod.namespace)
    {
        return Decision::new(
            Reason::IgnoredNamespace,
            format!("namespace {} is ignored", pod.namespace),
        );
    }
    if pod.annotations.contains_key(&policy.status_annotation) {
        return Decision::new(
            Reason::AlreadyInjected,
            format!("pod already has {}", policy.status_annotation),
        );
    }
    let mut warnings = Vec::new();
    if let Some(value) = pod.annotations.get(&policy.inject_annotation) {
        match parse_flag(value) {
            Some(true) => {
                return Decision::new(
                    Reason::AnnotationEnabled,
                    format!("annotation {}={value}", policy.inject_annotation),
                )
            }
            Some(false) => {
                return Decision::new(
                    Reason::AnnotationDisabled,
                    format!("annotation {}={value}", policy.inject_annotation),
                )
            }
            None => warnings.push(shorten(&format!(
                "ignored {}={value:?}: not true or false",
                policy.inject_annotation
            ))),
        }
    }
    let mut decision = if let Some(i) = policy
        .never_inject_selector
        .iter()
        .position(|s| selector::matches(s, pod.labels))
    {
        Decision::new(
            Reason::NeverInjectSelector,
            format!("labels match policy.neverInjectSelector[{i}]"),
        )
    } else if let Some(i) = policy
        .always_inject_selector
        .iter()
        .position(|s| selector::matches(s, pod.labels))
    {
        Decision::new(
            Reason::AlwaysInjectSelector,
            format!("labels match policy.alwaysInjectSelector[{i}]"),
        )
    } else if policy.enabled {
        Decision::new(Reason::PolicyEnabled, "injection is enabled by default")
    } else {
        Decision::new(Reason::PolicyDisabled, "injection is disabled by default")
    };
    decision.warnings = warnings;
    decision
}

/// Admission warnings should stay under 120 characters (longer ones may be
/// truncated by clients); cut at a character boundary and mark the cut.
pub fn shorten(text: &str) -> String {
    const MAX: usize = 119;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let mut out: String = text.chars().take(MAX - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn decide_for(
        policy: &Policy,
        ns: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
        host_network: bool,
    ) -> Decision {
        let (l, a) = (map(labels), map(annotations));
        decide(
            policy,
            Some("sidecar-injector"),
            PodFacts {
                namespace: ns,
                labels: &l,
                annotations: &a,
                host_network,
            },
        )
    }

    fn policy_with_selectors() -> Policy {
        serde_yaml::from_str(
            "neverInjectSelector: [{matchLabels: {inject: never}}]\nalwaysInjectSelector: [{matchLabels: {inject: always}}]\nenabled: false\n",
        )
        .unwrap()
    }

    #[test]
    fn default_policy_injects() {
        let d = decide_for(&Policy::default(), "default", &[], &[], false);
        assert_eq!(d.reason, Reason::PolicyEnabled);
        assert!(d.inject());
    }

    #[test]
    fn precedence_follows_istio() {
        let p = policy_with_selectors();
        let on = [("sidecar-injector.io/inject", "true")];
        // hostNetwork beats everything, even an explicit opt-in.
        assert_eq!(
            decide_for(&p, "default", &[], &on, true).reason,
            Reason::HostNetwork
        );
        // ignored namespaces beat the annotation.
        assert_eq!(
            decide_for(&p, "kube-system", &[], &on, false).reason,
            Reason::IgnoredNamespace
        );
        assert_eq!(
            decide_for(&p, "sidecar-injector", &[], &on, false).reason,
            Reason::IgnoredNamespace
        );
        // already injected beats the annotation.
        let injected = [
            ("sidecar-injector.io/inject", "true"),
            ("sidecar-injector.io/status", "{}"),
        ];
        assert_eq!(
            decide_for(&p, "default", &[], &injected, false).reason,
            Reason::AlreadyInjected
        );
        // the annotation beats the selectors.
        assert_eq!(
            decide_for(&p, "default", &[("inject", "never")], &on, false).reason,
            Reason::AnnotationEnabled
        );
        let off = [("sidecar-injector.io/inject", "no")];
        assert_eq!(
            decide_for(&p, "default", &[("inject", "always")], &off, false).reason,
            Reason::AnnotationDisabled
        );
        // never beats always.
        assert_eq!(
            decide_for(&p, "default", &[("inject", "never")], &[], false).reason,
            Reason::NeverInjectSelector
        );
        assert_eq!(
            decide_for(&p, "default", &[("inject", "always")], &[], false).reason,
            Reason::AlwaysInjectSelector
        );
        // and the default decides the rest.
        assert_eq!(
            decide_for(&p, "default", &[], &[], false).reason,
            Reason::PolicyDisabled
        );
    }

    #[test]
    fn annotation_values() {
        for v in ["true", "TRUE", "y", "yes", "on", " On "] {
            assert_eq!(parse_flag(v), Some(true), "{v}");
        }
        for v in ["false", "n", "no", "off", "OFF"] {
            assert_eq!(parse_flag(v), Some(false), "{v}");
        }
        for v in ["", "maybe", "1", "0"] {
            assert_eq!(parse_flag(v), None, "{v}");
        }
    }

    #[test]
    fn invalid_annotation_falls_through_with_a_warning() {
        let d = decide_for(
            &Policy::default(),
            "default",
            &[],
            &[("sidecar-injector.io/inject", "maybe")],
            false,
        );
        assert_eq!(d.reason, Reason::PolicyEnabled);
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains("maybe"), "{:?}", d.warnings);
    }

    #[test]
    fn warnings_are_short() {
        let long = "x".repeat(500);
        let s = shorten(&long);
        assert_eq!(s.chars().count(), 119);
        assert_eq!(shorten("short"), "short");
    }
}
