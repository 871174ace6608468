//! Expected texts come from reading the Go sources named in each test
//! (k8s.io/pod-security-admission v0.37.2 unless a minor is named, and
//! apimachinery's errors for the Forbidden/Invalid wrapping), and from
//! PSA's own unit tests where a case is ported from one.

use serde_json::{json, Value};

use super::*;

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

// ---- pod controllers (admission.go ValidatePodController) ----

fn deployment(template_spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": template_spec}}})
}

#[test]
fn a_deployment_is_warned_for_the_enforce_level_through_warn() {
    let d = deployment(plain_injected_pod()["spec"].clone());
    let out = admit_pod_controller("Deployment", &d, &restricted_ns(), MINOR);
    assert!(out.allowed());
    assert_eq!(
        out.warnings,
        [
            r#"would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (containers "app", "envoy" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (containers "app", "envoy" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or containers "app", "envoy" must set securityContext.runAsNonRoot=true), seccompProfile (pod or containers "app", "envoy" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
        ]
    );
    // No enforce-policy annotation: enforce is not evaluated for controllers.
    assert!(!out
        .audit_annotations
        .contains_key("pod-security.kubernetes.io/enforce-policy"));
}

#[test]
fn a_deployment_is_checked_against_warn_only() {
    let d = deployment(hardened_app_with_sidecar()["spec"].clone());
    // enforce restricted, warn baseline: a restricted-only violation says nothing.
    let ns = namespace(json!({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "baseline",
    }));
    assert_eq!(
        admit_pod_controller("Deployment", &d, &ns, MINOR),
        Outcome::default()
    );
    // enforce baseline, warn restricted pinned to a version.
    let ns = namespace(json!({
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "v1.30",
    }));
    assert_eq!(
        admit_pod_controller("Deployment", &d, &ns, MINOR).warnings,
        [
            r#"would violate PodSecurity "restricted:v1.30": allowPrivilegeEscalation != false (container "envoy" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "envoy" must set securityContext.capabilities.drop=["ALL"])"#
        ]
    );
}

#[test]
fn cron_job_and_other_templates_are_found() {
    let spec = json!({"hostNetwork": true, "containers": [{"name": "c"}]});
    let warning =
        r#"would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#;
    let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}});
    assert_eq!(
        admit_pod_controller("CronJob", &cron, &baseline_ns(), MINOR).warnings,
        [warning]
    );
    let pt = json!({"template": {"spec": spec}});
    assert_eq!(
        admit_pod_controller("PodTemplate", &pt, &baseline_ns(), MINOR).warnings,
        [warning]
    );
    for kind in [
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "ReplicationController",
    ] {
        let o = json!({"spec": {"template": {"spec": spec}}});
        assert_eq!(
            admit_pod_controller(kind, &o, &baseline_ns(), MINOR).warnings,
            [warning],
            "{kind}"
        );
    }
    assert_eq!(
        admit_pod_controller("Service", &json!({}), &baseline_ns(), MINOR),
        Outcome::default()
    );
    assert!(pod_template("ReplicationController", &json!({"spec": {}})).is_none());
}

// ---- namespaces (admission.go ValidateNamespace, EvaluatePodsInNamespace) ----

#[test]
fn invalid_labels_refuse_a_namespace_create() {
    let out = admit_namespace_create(&namespace(
        json!({"pod-security.kubernetes.io/enforce": "strict"}),
    ));
    let r = out.refusal.as_ref().unwrap();
    assert_eq!((r.code, r.reason), (422, "Invalid"));
    assert_eq!(
        r.message,
        r#"Namespace "demo" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#
    );
    let out = admit_namespace_create(&namespace(json!({
        "pod-security.kubernetes.io/enforce": "strict",
        "pod-security.kubernetes.io/warn-version": "1.30",
    })));
    assert_eq!(
        refusal(&out),
        r#"Namespace "demo" is invalid: [metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted, metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.30": must be "latest" or "v1.x"]"#
    );
    assert_eq!(admit_namespace_create(&restricted_ns()), Outcome::default());
    // kube-system is not exempt without a config file: same rules.
    let mut ks = namespace(json!({"pod-security.kubernetes.io/enforce": "bogus"}));
    ks["metadata"]["name"] = json!("kube-system");
    assert!(refusal(&admit_namespace_create(&ks))
        .starts_with(r#"Namespace "kube-system" is invalid: "#));
}

#[test]
fn an_update_keeping_the_same_invalid_labels_is_allowed() {
    let bad = namespace(json!({"pod-security.kubernetes.io/enforce": "strict"}));
    let mut relabelled = bad.clone();
    relabelled["metadata"]["labels"]["team"] = json!("shop");
    assert!(admit_namespace_update(&relabelled, &bad, &[], MINOR).allowed());
    assert!(!admit_namespace_update(&bad, &baseline_ns(), &[], MINOR).allowed());
}

fn replica(name: &str, uid: &str, spec: Value) -> Value {
    let mut p = pod(name, spec);
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c", "uid": uid, "controller": true}]);
    p
}

#[test]
fn tightening_enforce_warns_about_existing_pods() {
    let plain = plain_injected_pod()["spec"].clone();
    let pods = vec![
        replica("web-7d9c-x2x9q", "rs-1", plain.clone()),
        replica("web-7d9c-abcde", "rs-1", plain.clone()),
        pod("debug", plain),
        pod(
            "agent",
            json!({"hostNetwork": true, "containers": [{"name": "agent",
                "ports": [{"containerPort": 9100, "hostPort": 9100}], "securityContext": {"privileged": true}}]}),
        ),
        compliant_pod("ok"),
    ];
    let mut new = restricted_ns();
    new["metadata"]["name"] = json!("shop");
    let out = admit_namespace_update(&new, &namespace(json!({})), &pods, MINOR);
    assert!(out.allowed());
    assert_eq!(
        out.warnings,
        [
            r#"existing pods in namespace "shop" violate the new PodSecurity enforce level "restricted:latest""#,
            "agent: host namespaces, hostPort, privileged, allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile",
            "debug (and 2 other pods): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile",
        ]
    );
    let two = &pods[..2];
    assert_eq!(
        admit_namespace_update(&new, &namespace(json!({})), two, MINOR).warnings[1],
        "web-7d9c-abcde (and 1 other pod): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
    );
}

#[test]
fn relaxing_or_keeping_enforce_checks_no_pods() {
    let pods = vec![plain_injected_pod()];
    let none = |new: &Value, old: &Value| {
        admit_namespace_update(new, old, &pods, MINOR)
            .warnings
            .is_empty()
    };
    assert!(none(&restricted_ns(), &restricted_ns()));
    assert!(none(&baseline_ns(), &restricted_ns()));
    assert!(none(&namespace(json!({})), &restricted_ns()));
    // Only the warn level changes: nothing.
    assert!(none(
        &namespace(json!({"pod-security.kubernetes.io/warn": "restricted"})),
        &namespace(json!({}))
    ));
    // A version change at the same level is a tightening as far as PSA knows.
    let pinned = namespace(json!({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "v1.30",
    }));
    assert!(!none(&restricted_ns(), &pinned));
}

#[test]
fn at_most_3000_pods_are_checked() {
    let spec = plain_injected_pod()["spec"].clone();
    let pods: Vec<Value> = (0..3001)
        .map(|i| pod(&format!("pod-{i:04}"), spec.clone()))
        .collect();
    let out = admit_namespace_update(&restricted_ns(), &baseline_ns(), &pods, MINOR);
    assert_eq!(
        out.warnings,
        [
            "new PodSecurity enforce level only checked against the first 3000 of 3001 existing pods",
            r#"existing pods in namespace "demo" violate the new PodSecurity enforce level "restricted:latest""#,
            "pod-0000 (and 2999 other pods): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile",
        ]
    );
}

// ---- version-dependent checks ----

#[test]
fn sysctls_allowed_from_1_37() {
    // check_sysctls.go: tcp_slow_start_after_idle joins the safe set in 1.37 (absent in v0.36.3).
    let p = pod(
        "s",
        json!({"securityContext": {"sysctls": [
        {"name": "net.ipv4.tcp_slow_start_after_idle", "value": "0"}, {"name": "kernel.msgmax", "value": "1"}]},
        "containers": [{"name": "c"}]}),
    );
    let base = |v| lv(Level::Baseline, v);
    assert_eq!(
        details(base(Version::Latest), &p, 37),
        "forbidden sysctls (kernel.msgmax)"
    );
    assert_eq!(
        details(base(Version::Latest), &p, 36),
        "forbidden sysctls (net.ipv4.tcp_slow_start_after_idle, kernel.msgmax)"
    );
    assert_eq!(
        details(base(Version::Minor(36)), &p, 37),
        "forbidden sysctls (net.ipv4.tcp_slow_start_after_idle, kernel.msgmax)"
    );
    // tcp_rmem from 1.32, tcp_keepalive_time from 1.29, ip_local_reserved_ports from 1.27.
    let q = pod(
        "s",
        json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem"},
        {"name": "net.ipv4.tcp_keepalive_time"}, {"name": "net.ipv4.ip_local_reserved_ports"}]}}),
    );
    assert_eq!(
        details(base(Version::Minor(31)), &q, 37),
        "forbidden sysctls (net.ipv4.tcp_rmem)"
    );
    assert_eq!(
        details(base(Version::Minor(26)), &q, 37),
        "forbidden sysctls (net.ipv4.tcp_rmem, net.ipv4.tcp_keepalive_time, net.ipv4.ip_local_reserved_ports)"
    );
}

fn user_namespace_pod() -> Value {
    pod(
        "userns",
        json!({"hostUsers": false, "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}, "procMount": "Unmasked", "runAsUser": 0}}]}),
    )
}

#[test]
fn user_namespace_pods_are_relaxed_from_1_35() {
    // check_procMount_baseline.go, check_procMount_restricted.go, check_runAsNonRoot.go,
    // check_runAsUser.go (v0.35.4+); v0.34.4 gates the relaxation off by default.
    let p = user_namespace_pod();
    let restricted = |v| lv(Level::Restricted, v);
    let baseline = |v| lv(Level::Baseline, v);
    assert_eq!(
        details(restricted(Version::Latest), &p, 35),
        r#"procMount (container "app" must not set securityContext.procMount to "Unmasked")"#
    );
    let before = r#"procMount (container "app" must not set securityContext.procMount to "Unmasked"), runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), runAsUser=0 (container "app" must not set runAsUser=0)"#;
    assert_eq!(details(restricted(Version::Latest), &p, 34), before);
    assert_eq!(details(restricted(Version::Minor(34)), &p, 37), before);
    assert_eq!(details(baseline(Version::Latest), &p, 35), "");
    assert_eq!(
        details(baseline(Version::Minor(34)), &p, 37),
        r#"procMount (container "app" must not set securityContext.procMount to "Unmasked")"#
    );
    // In the restricted level, procMount now sits among the restricted checks.
    let mut q = p.clone();
    q["spec"]["containers"][0]["securityContext"]["capabilities"] =
        json!({"drop": ["ALL"], "add": ["SYS_ADMIN"]});
    assert_eq!(
        details(restricted(Version::Latest), &q, 37),
        r#"unrestricted capabilities (container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add), procMount (container "app" must not set securityContext.procMount to "Unmasked")"#
    );
}

#[test]
fn old_restricted_versions_run_old_checks() {
    // Before 1.19 seccomp is the alpha annotation (check_seccompProfile_baseline.go), before
    // 1.22 capabilities are baseline's, runAsUser starts in 1.23.
    let mut p = pod(
        "old",
        json!({"containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": false,
            "runAsNonRoot": true, "runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN"]}}}]}),
    );
    p["metadata"]["annotations"] =
        json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"});
    let restricted = |n| lv(Level::Restricted, Version::Minor(n));
    assert_eq!(
        details(restricted(18), &p, MINOR),
        r#"non-default capabilities (container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add), seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")"#
    );
    assert_eq!(
        details(restricted(22), &p, MINOR),
        r#"unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]; container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add), seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    assert_eq!(
        details(restricted(23), &p, MINOR),
        r#"unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]; container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add), runAsUser=0 (container "app" must not set runAsUser=0), seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    // allowPrivilegeEscalation starts in 1.8.
    let q = pod(
        "old",
        json!({"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "app"}]}),
    );
    assert_eq!(details(restricted(7), &q, MINOR), "");
    assert_eq!(
        details(restricted(8), &q, MINOR),
        r#"allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false)"#
    );
}

#[test]
fn windows_pods_are_exempt_from_linux_checks_from_1_25() {
    let p = pod(
        "win",
        json!({"os": {"name": "windows"}, "containers": [{"name": "app"}]}),
    );
    let restricted = |v| lv(Level::Restricted, v);
    assert_eq!(
        details(restricted(Version::Latest), &p, MINOR),
        r#"runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true)"#
    );
    assert_eq!(
        details(restricted(Version::Minor(24)), &p, MINOR),
        r#"allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
}

#[test]
fn probe_hosts_are_checked_from_1_34() {
    // check_hostProbesAndhostLifecycle.go (new in v0.34).
    let p = pod(
        "probe",
        json!({"containers": [
            {"name": "b", "livenessProbe": {"httpGet": {"path": "/", "port": 80, "host": "10.0.0.1"}},
                "lifecycle": {"preStop": {"tcpSocket": {"port": 80, "host": "localhost"}}}},
            {"name": "a", "readinessProbe": {"tcpSocket": {"port": 80, "host": "10.0.0.1"}}}
        ]}),
    );
    let baseline = |v| lv(Level::Baseline, v);
    assert_eq!(
        details(baseline(Version::Latest), &p, 34),
        r#"probe or lifecycle host (containers "a", "b" use probe or lifecycle hosts "10.0.0.1", "localhost")"#
    );
    assert_eq!(details(baseline(Version::Minor(33)), &p, 37), "");
}

#[test]
fn se_linux_container_engine_t_is_allowed_from_1_31() {
    let p = pod(
        "se",
        json!({"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}),
    );
    assert_eq!(
        details(lv(Level::Baseline, Version::Minor(30)), &p, MINOR),
        r#"seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "container_engine_t")"#
    );
    assert_eq!(details(lv(Level::Baseline, Version::Latest), &p, MINOR), "");
}

// ---- single checks, ported from policy/*_test.go ----

fn restricted_latest(spec: Value, meta: Value) -> Vec<Violation> {
    evaluate(lv(Level::Restricted, Version::Latest), &meta, &spec, MINOR)
}

fn only(violations: Vec<Violation>, id: &str) -> (&'static str, String) {
    let v = violations.into_iter().find(|v| v.check == id).expect(id);
    (v.reason, v.detail)
}

#[test]
fn app_armor_annotations() {
    // check_appArmorProfile_test.go "multiple containers".
    let meta = json!({"annotations": {
        "container.apparmor.security.beta.kubernetes.io/": "bogus",
        "container.apparmor.security.beta.kubernetes.io/a": "",
        "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
        "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
        "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
        "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
        "container.apparmor.security.beta.kubernetes.io/f": "unknown",
    }});
    assert_eq!(
        only(restricted_latest(json!({}), meta), "appArmorProfile"),
        (
            "forbidden AppArmor profiles",
            r#"annotations must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/="bogus"", "container.apparmor.security.beta.kubernetes.io/e="unconfined"", "container.apparmor.security.beta.kubernetes.io/f="unknown"""#.to_string()
        )
    );
    let spec = json!({"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{"name": "bar", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}],
        "containers": [{"name": "foo"}]});
    assert_eq!(
        only(restricted_latest(spec, json!({})), "appArmorProfile"),
        (
            "forbidden AppArmor profile",
            r#"container "bar" must not set AppArmor profile type to "Unconfined""#.to_string()
        )
    );
}

#[test]
fn restricted_volume_types() {
    // check_restrictedVolumes_test.go.
    let mut volumes: Vec<Value> = [
        "emptyDir",
        "secret",
        "persistentVolumeClaim",
        "downwardAPI",
        "configMap",
        "projected",
        "csi",
        "ephemeral",
        "image",
    ]
    .iter()
    .enumerate()
    .map(|(i, s)| json!({"name": format!("a{}", i + 1), *s: {}}))
    .collect();
    let restricted = [
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "nfs",
        "iscsi",
        "glusterfs",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "fc",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
    ];
    volumes.extend(
        restricted
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"name": format!("b{}", i + 1), *s: {}})),
    );
    volumes.push(json!({"name": "c1"}));
    assert_eq!(
        only(restricted_latest(json!({"volumes": volumes}), json!({})), "restrictedVolumes"),
        (
            "restricted volume types",
            concat!(
                r#"volumes "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "b10", "b11", "b12", "b13", "b14", "b15", "b16", "b17", "b18", "b19", "b20", "b21", "c1""#,
                r#" use restricted volume types "#,
                r#""awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "#,
                r#""hostPath", "iscsi", "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "unknown", "vsphereVolume""#
            )
            .to_string()
        )
    );
}

#[test]
fn host_ports_capabilities_se_linux_and_host_process() {
    // check_hostPorts_test.go.
    let spec = json!({"containers": [
        {"name": "a", "ports": [{"hostPort": 0}]},
        {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 20}]},
        {"name": "c", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 30}]}]});
    assert_eq!(
        only(restricted_latest(spec, json!({})), "hostPorts"),
        (
            "hostPort",
            r#"containers "b", "c" use hostPorts 10, 20, 30"#.to_string()
        )
    );
    // check_capabilities_restricted_test.go.
    let spec = json!({"containers": [
        {"name": "a", "securityContext": {"capabilities": {"add": ["FOO", "BAR"]}}},
        {"name": "b", "securityContext": {"capabilities": {"add": ["BAR", "BAZ"], "drop": ["NET_RAW"]}}},
        {"name": "c", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL", "FOO"]}}}]});
    assert_eq!(
        only(restricted_latest(spec, json!({})), "capabilities_restricted"),
        ("unrestricted capabilities", r#"containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; containers "a", "b", "c" must not include "BAR", "BAZ", "CHOWN", "FOO" in securityContext.capabilities.add"#.to_string())
    );
    // check_seLinuxOptions_test.go.
    let spec = json!({"securityContext": {"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}},
        "containers": [
            {"name": "a", "securityContext": {"seLinuxOptions": {}}},
            {"name": "e", "securityContext": {"seLinuxOptions": {"type": "bar"}}},
            {"name": "f", "securityContext": {"seLinuxOptions": {"user": "bar"}}},
            {"name": "g", "securityContext": {"seLinuxOptions": {"role": "baz"}}}]});
    assert_eq!(
        only(restricted_latest(spec, json!({})), "seLinuxOptions"),
        ("seLinuxOptions", r#"pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set"#.to_string())
    );
    // check_windowsHostProcess_test.go.
    let hp = json!({"windowsOptions": {"hostProcess": true}});
    let spec = json!({"securityContext": hp, "containers": [
        {"name": "d", "securityContext": {"windowsOptions": {"hostProcess": false}}},
        {"name": "e", "securityContext": hp}, {"name": "f", "securityContext": hp}]});
    assert_eq!(
        only(restricted_latest(spec, json!({})), "windowsHostProcess"),
        ("hostProcess", r#"pod and containers "e", "f" must not set securityContext.windowsOptions.hostProcess=true"#.to_string())
    );
}

#[test]
fn malformed_specs_are_just_values() {
    for spec in [
        json!(null),
        json!("x"),
        json!([1, 2]),
        json!({"containers": "x", "volumes": [null, 3], "securityContext": [1]}),
        json!({"containers": [null, 1, {"name": 5, "securityContext": "x", "ports": [{"hostPort": "80"}]}],
            "hostNetwork": "yes", "os": "windows", "hostUsers": "false"}),
    ] {
        for level in [Level::Baseline, Level::Restricted] {
            for minor in [0, 18, 34, 35, 37, 99] {
                let _ = evaluate(lv(level, Version::Minor(minor)), &json!(7), &spec, MINOR);
                let _ = evaluate(lv(level, Version::Latest), &spec, &spec, minor);
            }
        }
        let p = json!({"metadata": "x", "spec": spec});
        let _ = admit_pod_create(&p, "p", &restricted_ns(), MINOR);
        let _ = admit_pod_update(&p, &json!(1), "p", "", &restricted_ns(), MINOR);
        let _ = admit_pod_controller("CronJob", &p, &restricted_ns(), MINOR);
        let _ = admit_namespace_update(
            &restricted_ns(),
            &json!(1),
            &[p.clone(), json!(null)],
            MINOR,
        );
    }
    let _ = NamespacePolicy::from_labels(&json!({"pod-security.kubernetes.io/enforce": 3}));
}
