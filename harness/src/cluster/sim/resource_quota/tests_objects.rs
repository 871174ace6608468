//! Object counts, pod usage, unsynced quotas and robustness.

use serde_json::json;

use super::lists::*;
use super::tests::*;
use super::*;

// ----- object counts and other evaluators

/// A `count/<resource>.<group>` quota on any resource (generic
/// evaluator.go `ObjectCountQuotaResourceNameFor`).
#[test]
fn a_deployment_count_quota() {
    let deployment =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"}});
    let objects = [Stored {
        group: "apps",
        resource: "deployments",
        object: &deployment,
    }];
    let q = quota("objects", json!({"hard": {"count/deployments.apps": "1"}}));
    let quotas = [synced(q.clone(), &objects)];
    assert_eq!(
        quotas[0]["status"]["used"],
        json!({"count/deployments.apps": "1"})
    );

    let web = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    assert_eq!(
        refusal(admit_create(MINOR, "apps", "deployments", "web", &web, &quotas)),
        "deployments.apps \"web\" is forbidden: exceeded quota: objects, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1"
    );
    // Pods and updates do not touch it.
    let p = pod("p", vec![bare("a")]);
    assert_eq!(admit_pod_create(MINOR, "p", &p, &quotas), Ok(vec![]));
    let update = Request {
        minor: MINOR,
        operation: Operation::Update,
        group: "apps",
        resource: "deployments",
        subresource: "",
        name: "api",
        object: &deployment,
        old_object: Some(&deployment),
        now: None,
    };
    assert_eq!(admit(&update, &quotas), Ok(vec![]));
    // An unserved resource is not measured: no `used` at all.
    let nothing = quota_status(MINOR, &q, &objects, &|_, _| false, None);
    assert_eq!(nothing, json!({"hard": {"count/deployments.apps": "1"}}));
}

/// Custom resources and the legacy core names.
#[test]
fn custom_and_legacy_counts() {
    let q = json!({"metadata": {"name": "objects"},
        "status": {"hard": {"count/widgets.example.com": "3", "configmaps": "2", "count/secrets": "5"},
                   "used": {"count/widgets.example.com": "3", "configmaps": "1", "count/secrets": "0"}}});
    let w = json!({"metadata": {"generateName": "w-"}});
    assert_eq!(
        refusal(admit_create(MINOR, "example.com", "widgets", "", &w, std::slice::from_ref(&q))),
        "widgets.example.com \"w-\" is forbidden: exceeded quota: objects, requested: count/widgets.example.com=1, used: count/widgets.example.com=3, limited: count/widgets.example.com=3"
    );
    let cm = json!({"metadata": {"name": "cfg"}});
    let updates = admit_create(
        MINOR,
        "",
        "configmaps",
        "cfg",
        &cm,
        std::slice::from_ref(&q),
    )
    .unwrap();
    assert_eq!(
        updates[0].used,
        json!({"count/widgets.example.com": "3", "configmaps": "2", "count/secrets": "0"})
    );
    // Events are never counted.
    assert_eq!(
        admit_create(MINOR, "", "events", "e", &cm, &[q]),
        Ok(vec![])
    );
}

#[test]
fn services_count_node_ports_and_load_balancers() {
    let q = json!({"metadata": {"name": "svc"},
        "status": {"hard": {"services": "5", "services.nodeports": "1"},
                   "used": {"services": "0", "services.nodeports": "0"}}});
    let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort",
        "ports": [{"port": 80}, {"port": 443}]}});
    assert_eq!(
        refusal(admit_create(MINOR, "", "services", "web", &svc, std::slice::from_ref(&q))),
        "services \"web\" is forbidden: exceeded quota: svc, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1"
    );
    let lb = json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
        "ports": [{"port": 80, "nodePort": 30080}, {"port": 443}]}});
    assert_eq!(
        usage(MINOR, "", "services", &lb, None),
        BTreeMap::from([
            ("count/services".into(), "1".into()),
            ("services".into(), "1".into()),
            ("services.loadbalancers".into(), "1".into()),
            ("services.nodeports".into(), "1".into()),
        ])
    );
}

#[test]
fn claims_charge_storage_per_class() {
    let pvc = json!({"spec": {"storageClassName": "gold",
        "resources": {"requests": {"storage": "1.5"}}},
        "status": {"allocatedResources": {"storage": "1Gi"}}});
    assert_eq!(
        usage(MINOR, "", "persistentvolumeclaims", &pvc, None),
        BTreeMap::from([
            ("count/persistentvolumeclaims".into(), "1".into()),
            (
                "gold.storageclass.storage.k8s.io/persistentvolumeclaims".into(),
                "1".into()
            ),
            (
                "gold.storageclass.storage.k8s.io/requests.storage".into(),
                "1Gi".into()
            ),
            ("persistentvolumeclaims".into(), "1".into()),
            ("requests.storage".into(), "1Gi".into()),
        ])
    );
    let small = json!({"spec": {"resources": {"requests": {"storage": "1.5"}}}});
    assert_eq!(
        usage(MINOR, "", "persistentvolumeclaims", &small, None)["requests.storage"],
        "2"
    );
}

// ----- what a pod uses

/// pods_test.go "init container maximums override sum of containers".
#[test]
fn init_containers_count_by_their_maximum() {
    let res = |rc: &str, rm: &str, d: &str, lc: &str, lm: &str| {
        json!({"resources": {
        "requests": {"cpu": rc, "memory": rm, "example.com/dongle": d},
        "limits": {"cpu": lc, "memory": lm, "example.com/dongle": d}}})
    };
    let p = json!({"spec": {
        "initContainers": [res("4", "100M", "4", "8", "200M"), res("1", "50M", "2", "2", "100M")],
        "containers": [res("1", "50M", "1", "2", "100M"), res("2", "25M", "2", "5", "50M")]}});
    let want: BTreeMap<String, String> = [
        ("count/pods", "1"),
        ("cpu", "4"),
        ("limits.cpu", "8"),
        ("limits.memory", "200M"),
        ("memory", "100M"),
        ("pods", "1"),
        ("requests.cpu", "4"),
        ("requests.example.com/dongle", "4"),
        ("requests.memory", "100M"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(usage(MINOR, "", "pods", &p, None), want);
}

/// pods_test.go "count pod overhead as usage"; and sidecars add up.
#[test]
fn overhead_and_sidecars() {
    let p = json!({"spec": {"overhead": {"cpu": "1"}, "containers": [
        {"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}}]}});
    let u = usage(MINOR, "", "pods", &p, None);
    assert_eq!(
        (u["requests.cpu"].as_str(), u["limits.cpu"].as_str()),
        ("2", "3")
    );

    let p = json!({"spec": {
        "initContainers": [{"name": "proxy", "restartPolicy": "Always",
                            "resources": {"requests": {"cpu": "500m"}}},
                           {"name": "setup", "resources": {"requests": {"cpu": "1"}}}],
        "containers": [{"name": "app", "resources": {"requests": {"cpu": "250m"}}}]}});
    // max(250m + 500m, 1 + 500m) = 1500m.
    assert_eq!(usage(MINOR, "", "pods", &p, None)["requests.cpu"], "1500m");
}

/// pods_test.go "init container implicit extended resources" holds
/// from v1.35; v1.34 does not charge such a request.
#[test]
fn implicit_extended_resources_by_minor() {
    let p = json!({"spec": {"initContainers": [{"resources": {
        "requests": {"deviceclass.resource.kubernetes.io/dongle": "3"},
        "limits": {"deviceclass.resource.kubernetes.io/dongle": "3"}}}]}});
    let name = "requests.deviceclass.resource.kubernetes.io/dongle";
    assert_eq!(
        usage(35, "", "pods", &p, None)
            .get(name)
            .map(String::as_str),
        Some("3")
    );
    assert_eq!(usage(34, "", "pods", &p, None).get(name), None);
}

/// pods_test.go "verify Max(Container.Spec.Requests,
/// ContainerStatus.Resources) for memory resource".
#[test]
fn a_resized_pod_is_charged_the_larger_of_spec_and_status() {
    let p = json!({"spec": {"containers": [{"name": "c", "resources": {
            "requests": {"memory": "200Mi"}, "limits": {"memory": "400Mi"}}}]},
        "status": {"containerStatuses": [{"name": "c", "resources": {"requests": {"memory": "150Mi"}}}]}});
    for minor in [34, 37] {
        let u = usage(minor, "", "pods", &p, None);
        assert_eq!(u["requests.memory"], "200Mi");
        assert_eq!(u["limits.memory"], "400Mi");
    }
    let mut bigger = p.clone();
    bigger["status"]["containerStatuses"][0]["resources"]["requests"]["memory"] = json!("300Mi");
    assert_eq!(
        usage(34, "", "pods", &bigger, None)["requests.memory"],
        "300Mi"
    );
    assert_eq!(
        usage(37, "", "pods", &bigger, None)["requests.memory"],
        "300Mi"
    );
}

#[test]
fn finished_and_long_deleted_pods_are_not_charged() {
    let mut p = pod("p", vec![container("app", json!({"cpu": "1"}))]);
    p["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    let at = |now: &str| usage(MINOR, "", "pods", &p, Some(now)).contains_key("limits.cpu");
    assert!(at("2025-01-01T00:00:30Z"));
    assert!(!at("2025-01-01T00:00:31Z"));
    assert!(usage(MINOR, "", "pods", &p, None).contains_key("limits.cpu"));
}

/// A resize charges only the growth; a plain update changes nothing.
#[test]
fn pod_updates_charge_the_growth() {
    let mut old = pod(
        "web",
        vec![container("app", json!({"cpu": "500m", "memory": "128Mi"}))],
    );
    old["metadata"]["resourceVersion"] = json!("7");
    let mut new = old.clone();
    new["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1", "memory": "64Mi"},
                                                      "requests": {"cpu": "1", "memory": "64Mi"}});
    assert_eq!(
        pod_update_charge(MINOR, &old, &new, None),
        BTreeMap::from([
            ("cpu".into(), "500m".into()),
            ("limits.cpu".into(), "500m".into()),
            ("requests.cpu".into(), "500m".into()),
        ])
    );
    let q = json!({"metadata": {"name": "compute"},
        "status": {"hard": {"limits.cpu": "1", "limits.memory": "1Gi", "pods": "2"},
                   "used": {"limits.cpu": "700m", "limits.memory": "128Mi", "pods": "1"}}});
    let resize = |sub: &'static str| Request {
        minor: MINOR,
        operation: Operation::Update,
        group: "",
        resource: "pods",
        subresource: sub,
        name: "web",
        object: &new,
        old_object: Some(&old),
        now: None,
    };
    assert_eq!(
        refusal(admit(&resize("resize"), std::slice::from_ref(&q))),
        "pods \"web\" is forbidden: exceeded quota: compute, requested: limits.cpu=500m, used: limits.cpu=700m, limited: limits.cpu=1"
    );
    assert_eq!(admit(&resize(""), &[q]), Ok(vec![]));
}

// ----- quotas the controller has not synced

#[test]
fn quotas_without_status() {
    // No status.hard yet: nothing matches, nothing is refused.
    let p = injected("web", bare("app"));
    assert_eq!(admit_pod_create(MINOR, "web", &p, &[compute()]), Ok(vec![]));
    // Hard known, usage not: refused until the controller catches up.
    let mut q = compute();
    q["status"] = json!({"hard": q["spec"]["hard"].clone()});
    let ok = pod(
        "web",
        vec![container("app", json!({"cpu": "1", "memory": "1Gi"}))],
    );
    assert_eq!(
        refusal(admit_pod_create(MINOR, "web", &ok, &[q])),
        "pods \"web\" is forbidden: status unknown for quota: compute, resources: limits.cpu,limits.memory,pods"
    );
}

/// With several quotas, the first (by name) failing one is reported,
/// and a missing limit outranks an exceeded count in any quota.
#[test]
fn the_first_failing_quota_is_reported() {
    let counted = json!({"metadata": {"name": "a-count"},
        "status": {"hard": {"pods": "1"}, "used": {"pods": "1"}}});
    let quotas = [synced(compute(), &[]), counted];
    let bad = injected("web", bare("app"));
    assert_eq!(
        refusal(admit_pod_create(MINOR, "web", &bad, &quotas)),
        "pods \"web\" is forbidden: failed quota: compute: must specify limits.cpu for: app; limits.memory for: app"
    );
    let good = pod(
        "web",
        vec![container("app", json!({"cpu": "1", "memory": "1Gi"}))],
    );
    assert_eq!(
        refusal(admit_pod_create(MINOR, "web", &good, &quotas)),
        "pods \"web\" is forbidden: exceeded quota: a-count, requested: pods=1, used: pods=1, limited: pods=1"
    );
}

// ----- robustness

#[test]
fn garbage_in_is_not_a_panic() {
    let junk = [
        json!(null),
        json!(3),
        json!("x"),
        json!([1, 2]),
        json!({"spec": {"containers": "no", "initContainers": [null, 1, {"resources": 5}],
                        "overhead": {"cpu": "lots"}, "resources": []},
               "status": {"containerStatuses": [{"name": 1}], "conditions": "x"}}),
        json!({"metadata": {"name": 5}, "spec": {"hard": {"pods": true, "cpu": "1e999999"},
               "scopes": [1], "scopeSelector": {"matchExpressions": [{"operator": 1}]}},
               "status": {"hard": {"pods": "zz", "cpu": "1"}, "used": "no"}}),
    ];
    for minor in [0, 34, 35, 36, 37, 99] {
        for object in &junk {
            for now in [None, Some("garbage"), Some("2025-13-01T00:00:00Z")] {
                for resource in [
                    "pods",
                    "services",
                    "persistentvolumeclaims",
                    "deployments",
                    "events",
                ] {
                    let group = if resource == "deployments" {
                        "apps"
                    } else {
                        ""
                    };
                    for op in [Operation::Create, Operation::Update] {
                        let r = Request {
                            minor,
                            operation: op,
                            group,
                            resource,
                            subresource: "",
                            name: "",
                            object,
                            old_object: Some(object),
                            now,
                        };
                        let _ = admit(&r, &junk);
                    }
                    let _ = usage(minor, group, resource, object, now);
                    let stored = [Stored {
                        group,
                        resource,
                        object,
                    }];
                    let _ = quota_status(minor, object, &stored, &|_, _| true, now);
                }
                let _ = pod_update_charge(minor, object, object, now);
            }
        }
    }
    // An unparsable hard value is skipped; the rest still works.
    let q = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "zz", "count/pods": "2"}}});
    assert_eq!(
        quota_status(MINOR, &q, &[], &served, None),
        json!({"hard": {"count/pods": "2"}, "used": {"count/pods": "0"}})
    );
}

#[test]
fn rfc3339_times() {
    assert_eq!(unix_nanos("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        unix_nanos("2025-01-01T00:00:00Z"),
        Some(1_735_689_600 * 1_000_000_000)
    );
    assert_eq!(
        unix_nanos("2025-01-01T01:00:00.5+01:00"),
        Some(1_735_689_600 * 1_000_000_000 + 500_000_000)
    );
    assert_eq!(unix_nanos("2025-01-01 00:00:00Z"), None);
    assert_eq!(unix_nanos("x"), None);
}

#[test]
fn names_are_quoted_as_go_quotes_them() {
    assert_eq!(go_quote("web-1"), "\"web-1\"");
    assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
}
