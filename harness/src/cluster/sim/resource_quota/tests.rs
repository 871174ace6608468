//! The sidecar cases, scopes and fixtures.

use serde_json::json;

use super::lists::*;
use super::pods::*;
use super::quota::*;
use super::selector::*;
use super::*;

pub(super) const MINOR: u32 = 37;

// ----- fixtures

pub(super) fn container(name: &str, limits: Value) -> Value {
    // As stored: defaulting copied the limits into the requests.
    json!({"name": name, "image": "img", "resources": {"limits": limits, "requests": limits}})
}

pub(super) fn bare(name: &str) -> Value {
    json!({"name": name, "image": "img", "resources": {}})
}

pub(super) fn pod(name: &str, containers: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "shop"},
           "spec": {"containers": containers}})
}

/// A pod after sidecar injection: `app` as written plus `envoy` with
/// its own limits.
pub(super) fn injected(name: &str, app: Value) -> Value {
    pod(
        name,
        vec![
            app,
            container("envoy", json!({"cpu": "500m", "memory": "64Mi"})),
        ],
    )
}

pub(super) fn quota(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ResourceQuota",
           "metadata": {"name": name, "namespace": "shop"}, "spec": spec})
}

pub(super) fn compute() -> Value {
    quota(
        "compute",
        json!({"hard": {"limits.cpu": "1", "limits.memory": "1Gi", "pods": "2"}}),
    )
}

pub(super) fn served(group: &str, resource: &str) -> bool {
    (group, resource) == ("apps", "deployments")
}

pub(super) fn pods_of(pods: &[Value]) -> Vec<Stored<'_>> {
    pods.iter()
        .map(|p| Stored {
            group: "",
            resource: "pods",
            object: p,
        })
        .collect()
}

/// The quota as the controller syncs it over `objects`.
pub(super) fn synced(mut q: Value, objects: &[Stored]) -> Value {
    q["status"] = quota_status(MINOR, &q, objects, &served, None);
    q
}

/// Applies what admission wrote to the quotas.
pub(super) fn apply(quotas: &mut [Value], updates: Vec<QuotaUpdate>) {
    for u in updates {
        for q in quotas.iter_mut() {
            if q["metadata"]["name"] == u.name.as_str() {
                q["status"]["used"] = u.used.clone();
            }
        }
    }
}

pub(super) fn refusal(r: Result<Vec<QuotaUpdate>, Refusal>) -> String {
    r.expect_err("should be refused").message
}

// ----- the sidecar scenario

/// A fresh quota's status: hard as written, every tracked resource
/// used `0` (`CalculateUsageStats` starts from
/// `Quantity{Format: DecimalSI}`).
#[test]
pub(super) fn a_new_quota_reports_zero_usage() {
    let q = synced(compute(), &[]);
    assert_eq!(
        q["status"],
        json!({"hard": {"limits.cpu": "1", "limits.memory": "1Gi", "pods": "2"},
               "used": {"limits.cpu": "0", "limits.memory": "0", "pods": "0"}})
    );
}

/// The app states no limits, the injected envoy does: the quota
/// tracks limits.cpu and limits.memory, so every container must state
/// them (pods.go `Constraints`; controller.go `failed quota: %s: %v`;
/// errors.go `NewForbidden`).
#[test]
pub(super) fn an_injected_pod_whose_app_lacks_limits_is_refused() {
    let quotas = [synced(compute(), &[])];
    let web = injected("web", bare("app"));
    assert_eq!(
        refusal(admit_pod_create(MINOR, "web", &web, &quotas)),
        "pods \"web\" is forbidden: failed quota: compute: must specify limits.cpu for: app; limits.memory for: app"
    );
}

/// Containers lacking a resource are listed sorted and joined by `,`,
/// resources sorted and joined by `; ` (pods_test.go
/// `TestPodConstraintsFunc`, "container resource missing multiple").
#[test]
pub(super) fn missing_resources_are_listed_per_resource_and_container() {
    let q = synced(
        quota("q", json!({"hard": {"cpu": "4", "memory": "4Gi"}})),
        &[],
    );
    let p = pod("p", vec![bare("foo"), bare("bar")]);
    assert_eq!(
        refusal(admit_pod_create(MINOR, "p", &p, std::slice::from_ref(&q))),
        "pods \"p\" is forbidden: failed quota: q: must specify cpu for: bar,foo; memory for: bar,foo"
    );
    // Init containers too ("init container resource missing").
    let mut p = pod(
        "p",
        vec![container("app", json!({"cpu": "1", "memory": "1Gi"}))],
    );
    p["spec"]["initContainers"] = json!([{"name": "dummy", "resources": {
        "requests": {"cpu": "1m"}, "limits": {"cpu": "2m"}}}]);
    assert_eq!(
        refusal(admit_pod_create(MINOR, "p", &p, std::slice::from_ref(&q))),
        "pods \"p\" is forbidden: failed quota: q: must specify memory for: dummy"
    );
    // Pod-level resources lift the requirement.
    let mut p = pod("p", vec![bare("foo")]);
    p["spec"]["resources"] = json!({"requests": {"cpu": "1m", "memory": "1Mi"}});
    assert!(admit_pod_create(MINOR, "p", &p, &[q]).is_ok());
}

/// Only the cpu/memory names of `validationSet` must be stated: a
/// quota on `pods` alone or on ephemeral storage asks nothing.
#[test]
pub(super) fn other_resources_need_not_be_stated() {
    let q = synced(
        quota(
            "q",
            json!({"hard": {"pods": "5", "requests.ephemeral-storage": "1Gi"}}),
        ),
        &[],
    );
    let p = injected("web", bare("app"));
    let updates = admit_pod_create(MINOR, "web", &p, &[q]).unwrap();
    assert_eq!(
        updates,
        [QuotaUpdate {
            name: "q".into(),
            used: json!({"pods": "1", "requests.ephemeral-storage": "0"})
        }]
    );
}

/// 500m used, the injected pod asks 100m + 500m: over the limit of 1.
/// Only the exceeded resource is printed (controller.go
/// `exceeded quota: %s, requested: %s, used: %s, limited: %s`).
#[test]
pub(super) fn a_pod_over_the_cpu_limit_is_refused() {
    let mut quotas = [synced(compute(), &[])];
    let first = pod(
        "web-1",
        vec![container("app", json!({"cpu": "500m", "memory": "128Mi"}))],
    );
    let updates = admit_pod_create(MINOR, "web-1", &first, &quotas).unwrap();
    assert_eq!(
        updates[0].used,
        json!({"limits.cpu": "500m", "limits.memory": "128Mi", "pods": "1"})
    );
    apply(&mut quotas, updates);

    let second = injected(
        "web-2",
        container("app", json!({"cpu": "100m", "memory": "64Mi"})),
    );
    assert_eq!(
        refusal(admit_pod_create(MINOR, "web-2", &second, &quotas)),
        "pods \"web-2\" is forbidden: exceeded quota: compute, requested: limits.cpu=600m, used: limits.cpu=500m, limited: limits.cpu=1"
    );
}

/// The count: `pods=1` requested, two used, two allowed.
#[test]
pub(super) fn a_third_pod_is_refused_by_the_pod_count() {
    let mut quotas = [synced(compute(), &[])];
    for (name, cpu) in [("web-1", "500m"), ("web-2", "200m")] {
        let p = pod(
            name,
            vec![container("app", json!({"cpu": cpu, "memory": "128Mi"}))],
        );
        let updates = admit_pod_create(MINOR, name, &p, &quotas).unwrap();
        apply(&mut quotas, updates);
    }
    assert_eq!(
        quotas[0]["status"]["used"],
        json!({"limits.cpu": "700m", "limits.memory": "256Mi", "pods": "2"})
    );
    let third = pod(
        "web-3",
        vec![container("app", json!({"cpu": "100m", "memory": "64Mi"}))],
    );
    assert_eq!(
        refusal(admit_pod_create(MINOR, "web-3", &third, &quotas)),
        "pods \"web-3\" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"
    );
}

/// Several resources over: all of them, sorted by name.
#[test]
pub(super) fn every_exceeded_resource_is_listed() {
    let q = json!({"metadata": {"name": "compute"},
        "status": {"hard": {"limits.cpu": "1", "limits.memory": "1Gi", "pods": "2"},
                   "used": {"limits.cpu": "900m", "limits.memory": "1000Mi", "pods": "2"}}});
    let p = injected(
        "web",
        container("app", json!({"cpu": "100m", "memory": "64Mi"})),
    );
    assert_eq!(
        refusal(admit_pod_create(MINOR, "web", &p, &[q])),
        "pods \"web\" is forbidden: exceeded quota: compute, requested: limits.cpu=600m,limits.memory=128Mi,pods=1, used: limits.cpu=900m,limits.memory=1000Mi,pods=2, limited: limits.cpu=1,limits.memory=1Gi,pods=2"
    );
}

/// The controller's status after two pods; a finished pod and other
/// objects do not count.
#[test]
pub(super) fn status_after_two_pods() {
    let mut done = pod(
        "job",
        vec![container("app", json!({"cpu": "1", "memory": "1Gi"}))],
    );
    done["status"]["phase"] = json!("Succeeded");
    let pods = [
        pod(
            "web-1",
            vec![container("app", json!({"cpu": "500m", "memory": "128Mi"}))],
        ),
        done,
        injected(
            "web-2",
            container("app", json!({"cpu": "100m", "memory": "64Mi"})),
        ),
    ];
    let q = synced(compute(), &pods_of(&pods));
    assert_eq!(
        q["status"]["used"],
        json!({"limits.cpu": "1100m", "limits.memory": "256Mi", "pods": "2"})
    );
    // count/pods counts every stored pod, finished ones too.
    let counted = synced(
        quota("n", json!({"hard": {"count/pods": "10", "pods": "10"}})),
        &pods_of(&pods),
    );
    assert_eq!(
        counted["status"]["used"],
        json!({"count/pods": "3", "pods": "2"})
    );
}

/// A sum takes its first non-zero operand's format (`Quantity.Add`).
#[test]
pub(super) fn a_sum_prints_in_the_first_operands_format() {
    let a = pod(
        "a",
        vec![container("app", json!({"cpu": "1", "memory": "64Mi"}))],
    );
    let b = pod(
        "b",
        vec![container("app", json!({"cpu": "250m", "memory": "1024k"}))],
    );
    let q = quota(
        "q",
        json!({"hard": {"limits.memory": "1Gi", "limits.cpu": "4"}}),
    );
    let forward = [a.clone(), b.clone()];
    let backward = [b, a];
    assert_eq!(
        quota_status(MINOR, &q, &pods_of(&forward), &served, None)["used"],
        json!({"limits.cpu": "1250m", "limits.memory": "66536Ki"})
    );
    assert_eq!(
        quota_status(MINOR, &q, &pods_of(&backward), &served, None)["used"],
        json!({"limits.cpu": "1250m", "limits.memory": "68132864"})
    );
}

// ----- scopes

/// A BestEffort-scoped quota counts only pods without cpu/memory.
#[test]
pub(super) fn a_best_effort_quota_counts_only_best_effort_pods() {
    let spec = json!({"hard": {"pods": "1"}, "scopes": ["BestEffort"]});
    let batch = pod("batch-1", vec![bare("worker")]);
    let web = injected(
        "web",
        container("app", json!({"cpu": "100m", "memory": "64Mi"})),
    );
    let objects = [batch, web.clone()];
    let quotas = [synced(quota("besteffort", spec), &pods_of(&objects))];
    assert_eq!(quotas[0]["status"]["used"], json!({"pods": "1"}));

    let next = pod("batch-2", vec![bare("worker")]);
    assert_eq!(
        refusal(admit_pod_create(MINOR, "batch-2", &next, &quotas)),
        "pods \"batch-2\" is forbidden: exceeded quota: besteffort, requested: pods=1, used: pods=1, limited: pods=1"
    );
    // A Burstable pod is out of scope: admitted, nothing charged.
    assert_eq!(admit_pod_create(MINOR, "web", &web, &quotas), Ok(vec![]));
}

/// admission_test.go: "Pod has different priorityclass than configured
/// limited. Covering quota exists for configured limited scope
/// PriorityClassExists." (`forbidden: exceeded quota: quota,
/// requested: memory=20Gi, used: memory=1Gi, limited: memory=10Gi`).
#[test]
pub(super) fn a_priority_class_scoped_quota() {
    let q = json!({"metadata": {"name": "quota"},
        "spec": {"scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "Exists"}]}},
        "status": {"hard": {"memory": "10Gi"}, "used": {"memory": "1Gi"}}});
    let mut p = json!({"metadata": {"name": "not-allowed-pod"}, "spec": {"containers": [
        {"name": "c", "resources": {"requests": {"cpu": "3", "memory": "20Gi"}}}]}});
    p["spec"]["priorityClassName"] = json!("fake-priority");
    assert_eq!(
        refusal(admit_pod_create(MINOR, "not-allowed-pod", &p, std::slice::from_ref(&q))),
        "pods \"not-allowed-pod\" is forbidden: exceeded quota: quota, requested: memory=20Gi, used: memory=1Gi, limited: memory=10Gi"
    );
    // Without a priority class the quota does not apply.
    p["spec"]["priorityClassName"] = json!("");
    assert_eq!(admit_pod_create(MINOR, "x", &p, &[q]), Ok(vec![]));
}

#[test]
pub(super) fn scope_selector_operators() {
    let sel = |op: &str, values: &[&str]| Selector {
        scope: "PriorityClass".into(),
        operator: op.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let high = json!({"spec": {"priorityClassName": "high"}});
    let none = json!({"spec": {}});
    assert!(pod_in_scope(&sel("In", &["high", "low"]), &high, MINOR));
    assert!(!pod_in_scope(&sel("In", &["low"]), &high, MINOR));
    assert!(!pod_in_scope(&sel("In", &["high"]), &none, MINOR));
    assert!(pod_in_scope(&sel("NotIn", &["low"]), &high, MINOR));
    assert!(pod_in_scope(&sel("NotIn", &["low"]), &none, MINOR));
    assert!(pod_in_scope(&sel("DoesNotExist", &[]), &none, MINOR));
    // Invalid requirements match nothing.
    assert!(!pod_in_scope(&sel("In", &[]), &high, MINOR));
    // `Exists` on PriorityClass is answered without parsing the
    // selector (pods.go), so stray values do not matter there.
    assert!(pod_in_scope(&sel("Exists", &["x"]), &high, MINOR));
    assert_eq!(
        requirement_matches(&sel("Exists", &["x"]), Some("high")),
        None
    );
    assert!(!pod_in_scope(&sel("Gt", &["1"]), &high, MINOR));

    let term = |t: Value| {
        json!({"spec": {"affinity": {"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": t}]}}}})
    };
    let cross = Selector {
        scope: "CrossNamespacePodAffinity".into(),
        operator: "Exists".into(),
        values: vec![],
    };
    assert!(pod_in_scope(
        &cross,
        &term(json!({"namespaceSelector": {}})),
        MINOR
    ));
    assert!(pod_in_scope(
        &cross,
        &term(json!({"namespaces": ["a"]})),
        MINOR
    ));
    assert!(!pod_in_scope(
        &cross,
        &term(json!({"namespaces": []})),
        MINOR
    ));

    let terminating = Selector {
        scope: "Terminating".into(),
        operator: "Exists".into(),
        values: vec![],
    };
    assert!(pod_in_scope(
        &terminating,
        &json!({"spec": {"activeDeadlineSeconds": 30}}),
        MINOR
    ));
    assert!(!pod_in_scope(&terminating, &none, MINOR));
}

/// Before v1.37 an empty `spec.resources` made the pod BestEffort
/// whatever its containers asked (qos.go; the fix is v1.37's
/// `PodLevelResourcesFixKubeletQOSClass`).
#[test]
pub(super) fn best_effort_with_empty_pod_level_resources_by_minor() {
    let mut p = pod("p", vec![container("app", json!({"cpu": "100m"}))]);
    p["spec"]["resources"] = json!({});
    assert!(best_effort(&p, 36));
    assert!(!best_effort(&p, 37));
    p["status"]["qosClass"] = json!("Burstable");
    assert!(!best_effort(&p, 36));
}

// ---- what tests read that admission only uses inside ----

/// What an object counts against quota (`Evaluator.Usage`), as quantity
/// text; empty for resources quota ignores (events, reviews, bindings).
pub(super) fn usage(
    minor: u32,
    group: &str,
    resource: &str,
    object: &Value,
    now: Option<&str>,
) -> BTreeMap<String, String> {
    let now = now.and_then(unix_nanos);
    Evaluator::for_resource(group, resource, minor)
        .map(|e| texts(&e.usage(object, now)))
        .unwrap_or_default()
}

/// What a pod UPDATE charges: the growth of each resource from `old` to
/// `new`, never negative, zeros dropped (`SubtractWithNonNegativeResult`).
///
/// The apiserver only charges a pod update that flips the pod in or out of
/// the `Terminating` scope (`activeDeadlineSeconds`) or that goes through
/// the `resize` subresource; other pod updates cannot change what quota
/// counts, so [`admit`] lets them through untouched.
pub(super) fn pod_update_charge(
    minor: u32,
    old: &Value,
    new: &Value,
    now: Option<&str>,
) -> BTreeMap<String, String> {
    let now = now.and_then(unix_nanos);
    let delta = subtract_non_negative(&pod_usage(new, minor, now), &pod_usage(old, minor, now));
    texts(&remove_zeros(delta))
}
