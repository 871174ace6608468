//! Pod controllers and namespaces (admission.go ValidatePodController,
//! ValidateNamespace, EvaluatePodsInNamespace).

use serde_json::{json, Value};

use super::*;

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
