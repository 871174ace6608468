//! Expected texts come from reading the Go sources named in each test
//! (k8s.io/pod-security-admission v0.37.2 unless a minor is named, and
//! apimachinery's errors for the Forbidden/Invalid wrapping), and from
//! PSA's own unit tests where a case is ported from one.

use serde_json::{json, Value};

use super::admission::*;
use super::checks::*;
use super::policy::*;
use super::*;

mod check_versions;
mod controllers;

const MINOR: u64 = 37;

fn namespace(labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": labels}})
}

fn restricted_ns() -> Value {
    namespace(json!({"pod-security.kubernetes.io/enforce": "restricted"}))
}

fn baseline_ns() -> Value {
    namespace(json!({"pod-security.kubernetes.io/enforce": "baseline"}))
}

fn pod(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "demo"}, "spec": spec})
}

/// An app container and an injected envoy sidecar, neither with a
/// securityContext.
fn plain_injected_pod() -> Value {
    pod(
        "web",
        json!({"containers": [
            {"name": "app", "image": "shop/app:1.4"},
            {"name": "envoy", "image": "envoyproxy/envoy:v1.31"}
        ]}),
    )
}

/// A compliant app; the injected envoy sidecar has no securityContext.
fn hardened_app_with_sidecar() -> Value {
    pod(
        "web",
        json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {"name": "app", "image": "shop/app:1.4", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}},
                {"name": "envoy", "image": "envoyproxy/envoy:v1.31"}
            ]
        }),
    )
}

fn compliant_container(name: &str) -> Value {
    json!({"name": name, "image": format!("{name}:1"), "securityContext": {
        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}})
}

fn compliant_pod(name: &str) -> Value {
    pod(
        name,
        json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [compliant_container("app"), compliant_container("envoy")]
        }),
    )
}

fn refusal(out: &Outcome) -> &str {
    &out.refusal.as_ref().expect("refused").message
}

fn details(policy: Policy, pod: &Value, minor: u64) -> String {
    forbidden_detail(&evaluate_pod(policy, pod, minor))
}

fn lv(level: Level, version: Version) -> Policy {
    Policy::new(level, version)
}

// ---- levels, versions, labels (api/helpers.go) ----

#[test]
fn policies_display_as_the_apiserver_does() {
    assert_eq!(
        lv(Level::Restricted, Version::Latest).to_string(),
        "restricted:latest"
    );
    assert_eq!(
        lv(Level::Baseline, Version::Minor(30)).to_string(),
        "baseline:v1.30"
    );
}

#[test]
fn versions_parse_like_parse_version() {
    assert_eq!(Version::parse("latest"), Some(Version::Latest));
    assert_eq!(Version::parse("v1.0"), Some(Version::Minor(0)));
    assert_eq!(Version::parse("v1.35"), Some(Version::Minor(35)));
    for bad in [
        "v1.05",
        "v2.0",
        "V1.3",
        "v1.",
        "1.30",
        "v1.3a",
        "Latest",
        "v1.99999999999999999999",
        "",
    ] {
        assert_eq!(Version::parse(bad), None, "{bad}");
    }
}

#[test]
fn no_labels_is_privileged_everywhere() {
    let (p, errors) = NamespacePolicy::of_namespace(&Value::Null);
    assert!(errors.is_empty());
    assert!(p.fully_privileged());
    assert_eq!(p.enforce, Policy::PRIVILEGED);
}

#[test]
fn warn_follows_a_valid_enforce_level_unless_set() {
    // api/helpers.go PolicyToEvaluate: warn takes enforce's level and version.
    let (p, _) = NamespacePolicy::from_labels(&json!({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "v1.30",
    }));
    assert_eq!(p.warn, lv(Level::Restricted, Version::Minor(30)));
    assert_eq!(p.audit, Policy::PRIVILEGED);

    // An explicit warn-version is kept.
    let (p, _) = NamespacePolicy::from_labels(&json!({
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn-version": "v1.28",
    }));
    assert_eq!(p.warn, lv(Level::Baseline, Version::Minor(28)));

    // An explicit warn level is kept, even a looser one.
    let (p, _) = NamespacePolicy::from_labels(&json!({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "baseline",
    }));
    assert_eq!(p.warn, lv(Level::Baseline, Version::Latest));
}

#[test]
fn invalid_labels_fail_closed_for_enforce_and_open_for_the_rest() {
    let (p, errors) = NamespacePolicy::from_labels(&json!({
        "pod-security.kubernetes.io/enforce": "strict",
        "pod-security.kubernetes.io/enforce-version": "1.30",
        "pod-security.kubernetes.io/audit": "Restricted",
        "pod-security.kubernetes.io/warn": "loud",
    }));
    assert_eq!(p.enforce, lv(Level::Restricted, Version::Latest));
    assert_eq!(p.audit.level, Level::Privileged);
    // An invalid enforce level is not followed by warn.
    assert_eq!(p.warn.level, Level::Privileged);
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            r#"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#,
            r#"metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: "1.30": must be "latest" or "v1.x""#,
            r#"metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: "Restricted": must be one of privileged, baseline, restricted"#,
            r#"metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "loud": must be one of privileged, baseline, restricted"#,
        ]
    );
}

#[test]
fn go_quote_escapes_like_strconv_quote() {
    assert_eq!(go_quote("web"), r#""web""#);
    assert_eq!(
        go_quote("a\"b\\c\n\u{7f}é\u{200b}\u{1F600}"),
        "\"a\\\"b\\\\c\\n\\x7fé\\u200b\u{1F600}\""
    );
}

#[test]
fn check_order_is_baseline_then_restricted_each_by_id() {
    // policy/registry.go: baseline IDs sorted, then restricted IDs sorted.
    let ids = checks::check_ids();
    let split = ids
        .iter()
        .position(|(_, l)| *l == Level::Restricted)
        .unwrap();
    assert!(ids[..split].iter().all(|(_, l)| *l == Level::Baseline));
    assert!(ids[split..].iter().all(|(_, l)| *l == Level::Restricted));
    for group in [&ids[..split], &ids[split..]] {
        assert!(
            group
                .windows(2)
                .all(|w| w[0].0.as_bytes() < w[1].0.as_bytes()),
            "{group:?}"
        );
    }
    assert_eq!(ids.len(), 19);
}

// ---- pods (admission.go EvaluatePod, response.go forbiddenResponse) ----

#[test]
fn injected_pod_without_security_context_is_refused_in_a_restricted_namespace() {
    let out = admit_pod_create(&plain_injected_pod(), "web", &restricted_ns(), MINOR);
    assert_eq!(
        out.refusal.as_ref().map(|r| (r.code, r.reason)),
        Some((403, "Forbidden"))
    );
    assert_eq!(
        refusal(&out),
        r#"pods "web" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (containers "app", "envoy" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (containers "app", "envoy" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or containers "app", "envoy" must set securityContext.runAsNonRoot=true), seccompProfile (pod or containers "app", "envoy" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    // Refused: no warnings, although warn (defaulted to restricted) fails too.
    assert!(out.warnings.is_empty());
    assert_eq!(
        out.audit_annotations["pod-security.kubernetes.io/enforce-policy"],
        "restricted:latest"
    );
}

#[test]
fn only_the_sidecar_is_named_when_the_app_is_hardened() {
    let out = admit_pod_create(&hardened_app_with_sidecar(), "web", &restricted_ns(), MINOR);
    assert_eq!(
        refusal(&out),
        r#"pods "web" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "envoy" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "envoy" must set securityContext.capabilities.drop=["ALL"])"#
    );
}

#[test]
fn the_compliant_pod_is_admitted_silently() {
    for ns in [restricted_ns(), baseline_ns(), namespace(json!({}))] {
        let out = admit_pod_create(&compliant_pod("web"), "web", &ns, MINOR);
        assert!(out.allowed());
        assert!(out.warnings.is_empty());
    }
}

#[test]
fn istio_init_violates_baseline_and_restricted() {
    let mut p = hardened_app_with_sidecar();
    p["spec"]["initContainers"] = json!([{"name": "istio-init", "image": "istio/proxyv2", "securityContext": {
        "allowPrivilegeEscalation": false, "privileged": false,
        "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        "runAsNonRoot": false, "runAsUser": 0}}]);
    let out = admit_pod_create(&p, "web", &restricted_ns(), MINOR);
    assert_eq!(
        refusal(&out),
        r#"pods "web" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "envoy" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "envoy" must set securityContext.capabilities.drop=["ALL"]; container "istio-init" must not include "NET_ADMIN", "NET_RAW" in securityContext.capabilities.add), runAsNonRoot != true (container "istio-init" must not set securityContext.runAsNonRoot=false), runAsUser=0 (container "istio-init" must not set runAsUser=0)"#
    );
    let out = admit_pod_create(&p, "web", &baseline_ns(), MINOR);
    assert_eq!(
        refusal(&out),
        r#"pods "web" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities (container "istio-init" must not include "NET_ADMIN", "NET_RAW" in securityContext.capabilities.add)"#
    );
}

#[test]
fn host_network_and_privileged_under_baseline() {
    // hostPort as API defaulting sets it for a hostNetwork pod.
    let p = pod(
        "agent",
        json!({"hostNetwork": true, "containers": [{"name": "agent", "image": "agent:2",
            "ports": [{"containerPort": 8080, "hostPort": 8080}],
            "securityContext": {"privileged": true}}]}),
    );
    let out = admit_pod_create(&p, "agent", &baseline_ns(), MINOR);
    assert_eq!(
        refusal(&out),
        r#"pods "agent" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), hostPort (container "agent" uses hostPort 8080), privileged (container "agent" must not set securityContext.privileged=true)"#
    );
}

#[test]
fn baseline_failures_come_before_restricted_ones() {
    let p = pod(
        "node-exporter",
        json!({"hostNetwork": true, "hostPID": true,
            "containers": [{"name": "exporter", "image": "prom/node-exporter",
                "ports": [{"containerPort": 9100, "hostPort": 9100}]}],
            "volumes": [{"name": "proc", "hostPath": {"path": "/proc"}}, {"name": "config", "configMap": {"name": "x"}}]}),
    );
    let out = admit_pod_create(&p, "node-exporter", &restricted_ns(), MINOR);
    // restrictedVolumes overrides hostPathVolumes at restricted.
    assert_eq!(
        refusal(&out),
        r#"pods "node-exporter" is forbidden: violates PodSecurity "restricted:latest": host namespaces (hostNetwork=true, hostPID=true), hostPort (container "exporter" uses hostPort 9100), allowPrivilegeEscalation != false (container "exporter" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "exporter" must set securityContext.capabilities.drop=["ALL"]), restricted volume types (volume "proc" uses restricted volume type "hostPath"), runAsNonRoot != true (pod or container "exporter" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "exporter" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    let out = admit_pod_create(&p, "node-exporter", &baseline_ns(), MINOR);
    assert_eq!(
        refusal(&out),
        r#"pods "node-exporter" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume "proc"), hostPort (container "exporter" uses hostPort 9100)"#
    );
}

#[test]
fn warn_level_warns_admitted_pods_only() {
    let ns = namespace(json!({
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
    }));
    let out = admit_pod_create(&hardened_app_with_sidecar(), "web", &ns, MINOR);
    assert!(out.allowed());
    assert_eq!(
        out.warnings,
        [
            r#"would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "envoy" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "envoy" must set securityContext.capabilities.drop=["ALL"])"#
        ]
    );
    // Refused by enforce: the warning is dropped.
    let mut p = hardened_app_with_sidecar();
    p["spec"]["hostPID"] = json!(true);
    let out = admit_pod_create(&p, "web", &ns, MINOR);
    assert_eq!(
        refusal(&out),
        r#"pods "web" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostPID=true)"#
    );
    assert!(out.warnings.is_empty());
}

#[test]
fn audit_is_never_shown_to_the_client() {
    let ns = namespace(json!({"pod-security.kubernetes.io/audit": "restricted"}));
    let out = admit_pod_create(&hardened_app_with_sidecar(), "web", &ns, MINOR);
    assert!(out.allowed());
    assert!(out.warnings.is_empty());
    assert_eq!(
        out.audit_annotations["pod-security.kubernetes.io/audit-violations"],
        r#"would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "envoy" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "envoy" must set securityContext.capabilities.drop=["ALL"])"#
    );
    assert_eq!(
        out.audit_annotations["pod-security.kubernetes.io/enforce-policy"],
        "privileged:latest"
    );
}

#[test]
fn privileged_namespace_admits_anything() {
    let p = pod(
        "x",
        json!({"hostPID": true, "containers": [{"name": "c", "securityContext": {"privileged": true}}]}),
    );
    let out = admit_pod_create(
        &p,
        "x",
        &namespace(json!({"pod-security.kubernetes.io/enforce-version": "v1.30"})),
        MINOR,
    );
    assert!(out.allowed() && out.warnings.is_empty());
    // response.go: the shortcut always records privileged:latest.
    assert_eq!(
        out.audit_annotations["pod-security.kubernetes.io/enforce-policy"],
        "privileged:latest"
    );
}

#[test]
fn a_namespace_with_an_invalid_enforce_level_enforces_restricted() {
    let ns = namespace(json!({"pod-security.kubernetes.io/enforce": "strict"}));
    let out = admit_pod_create(&hardened_app_with_sidecar(), "web", &ns, MINOR);
    assert_eq!(
        refusal(&out),
        r#"pods "web" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "envoy" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "envoy" must set securityContext.capabilities.drop=["ALL"])"#
    );
    assert_eq!(
        out.audit_annotations["pod-security.kubernetes.io/error"],
        r#"Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#
    );
}

#[test]
fn a_pod_without_a_name_is_refused_without_one() {
    let out = admit_pod_create(&plain_injected_pod(), "", &baseline_ns(), MINOR);
    assert!(out.allowed());
    let p = pod("", json!({"hostIPC": true, "containers": [{"name": "c"}]}));
    let out = admit_pod_create(&p, "", &baseline_ns(), MINOR);
    assert_eq!(
        refusal(&out),
        r#"pods is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostIPC=true)"#
    );
}

// ---- pod updates (admission.go isSignificantPodUpdate) ----

#[test]
fn metadata_only_updates_are_not_checked() {
    let old = plain_injected_pod();
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"version": "2"});
    new["spec"]["activeDeadlineSeconds"] = json!(30);
    assert!(!is_significant_pod_update(&new, &old));
    let out = admit_pod_update(&new, &old, "web", "", &restricted_ns(), MINOR);
    assert_eq!(out, Outcome::default());
}

#[test]
fn an_image_change_is_checked() {
    let old = plain_injected_pod();
    let mut new = old.clone();
    new["spec"]["containers"][1]["image"] = json!("envoyproxy/envoy:v1.32");
    assert!(is_significant_pod_update(&new, &old));
    let out = admit_pod_update(&new, &old, "web", "", &restricted_ns(), MINOR);
    assert!(refusal(&out)
        .starts_with(r#"pods "web" is forbidden: violates PodSecurity "restricted:latest": "#));
    // The status subresource is never checked.
    let out = admit_pod_update(&new, &old, "web", "status", &restricted_ns(), MINOR);
    assert!(out.allowed());
}

#[test]
fn an_added_ephemeral_container_is_checked() {
    let old = compliant_pod("web");
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"] =
        json!([{"name": "debugger", "image": "busybox", "targetContainerName": "app"}]);
    let out = admit_pod_update(
        &new,
        &old,
        "web",
        "ephemeralcontainers",
        &restricted_ns(),
        MINOR,
    );
    assert_eq!(
        refusal(&out),
        r#"pods "web" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "debugger" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "debugger" must set securityContext.capabilities.drop=["ALL"])"#
    );
    // The same ephemeral container again, unchanged: not checked.
    assert!(!is_significant_pod_update(&new, &new));
}
