//! The workload controllers, reduced to what a scenario can see: which pods
//! exist, with which names, labels and owners, and the FailedCreate events
//! when the apiserver refuses them.

use serde_json::{json, Value};

use super::names::{fnv32a, safe_encode};
use super::node::NODE_NAME;
use super::store::SimCluster;
use crate::object::meta_str;

/// One pass of every controller; true when anything changed.
pub(super) async fn reconcile(c: &mut SimCluster) -> bool {
    let mut changed = deployments(c);
    changed |= replicasets(c).await;
    changed |= statefulsets(c).await;
    changed |= daemonsets(c).await;
    changed |= jobs(c).await;
    changed |= c.sync_quotas();
    changed
}

fn owner_ref(owner: &Value) -> Value {
    json!([{
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true
    }])
}

/// The hash of a pod template, as the Deployment and revision machinery
/// name things with it.
fn template_hash(template: &Value) -> String {
    safe_encode(fnv32a(
        serde_json::to_string(template)
            .unwrap_or_default()
            .as_bytes(),
    ))
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// A pod from a workload's template, before admission.
fn pod_from_template(template: &Value, owner: &Value, namespace: &str) -> Value {
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    meta["namespace"] = json!(namespace);
    meta["ownerReferences"] = owner_ref(owner);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"].clone()})
}

/// Deployment -> ReplicaSet named `<deployment>-<template hash>`. A rollout
/// brings the new ReplicaSet up first and retires the old ones only once
/// the new pods are ready (maxUnavailable rounds down to zero here).
fn deployments(c: &mut SimCluster) -> bool {
    let mut changed = false;
    for d in c.objects_of("Deployment") {
        let ns = meta_str(&d, "namespace").to_string();
        let name = meta_str(&d, "name").to_string();
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let hash = template_hash(&d["spec"]["template"]);
        let rs_name = format!("{name}-{hash}");
        if !c.exists("ReplicaSet", &ns, &rs_name) {
            let mut template = d["spec"]["template"].clone();
            template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let has_old = c
                .objects_of("ReplicaSet")
                .iter()
                .any(|rs| meta_str(rs, "namespace") == ns && is_owned_by(rs, &d));
            // Surge one pod at a time while old pods still serve.
            let start = if has_old { replicas.min(1) } else { replicas };
            let mut annotations = json!({"deployment.kubernetes.io/desired-replicas": replicas.to_string(), "deployment.kubernetes.io/max-replicas": (replicas + 1).to_string(), "deployment.kubernetes.io/revision": "1"});
            if has_old {
                annotations["deployment.kubernetes.io/revision"] = json!("2");
            }
            let rs = json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name,
                    "namespace": ns,
                    "labels": template["metadata"]["labels"],
                    "annotations": annotations,
                    "ownerReferences": owner_ref(&d)
                },
                "spec": {"replicas": start, "selector": selector, "template": template}
            });
            c.insert_object(rs);
            changed = true;
            continue;
        }
        // Not rolling (no old ReplicaSet still has pods): a scale sets the
        // ReplicaSet's replicas at once, as the deployment controller does.
        let rolling = c.objects_of("ReplicaSet").iter().any(|rs| {
            meta_str(rs, "namespace") == ns
                && is_owned_by(rs, &d)
                && meta_str(rs, "name") != rs_name
                && rs["spec"]["replicas"].as_i64().unwrap_or(0) > 0
        });
        if !rolling {
            if let Some(rs) = c.object_mut("ReplicaSet", &ns, &rs_name) {
                if rs["spec"]["replicas"].as_i64() != Some(replicas) {
                    rs["spec"]["replicas"] = json!(replicas);
                    changed = true;
                }
            }
            continue;
        }
        // Roll forward once the new ReplicaSet's pods are all ready.
        let new_pods: Vec<bool> = c
            .pods_owned_by("ReplicaSet", &ns, &rs_name)
            .iter()
            .map(|p| is_ready(p))
            .collect();
        let current = c
            .object_mut("ReplicaSet", &ns, &rs_name)
            .and_then(|rs| rs["spec"]["replicas"].as_i64())
            .unwrap_or(0);
        let all_ready =
            !new_pods.is_empty() && new_pods.iter().all(|r| *r) && new_pods.len() as i64 == current;
        if all_ready {
            if current < replicas {
                if let Some(rs) = c.object_mut("ReplicaSet", &ns, &rs_name) {
                    rs["spec"]["replicas"] = json!((current + 1).min(replicas));
                }
                changed = true;
            }
            for old in c.objects_of("ReplicaSet") {
                let old_name = meta_str(&old, "name").to_string();
                if meta_str(&old, "namespace") == ns
                    && is_owned_by(&old, &d)
                    && old_name != rs_name
                    && old["spec"]["replicas"].as_i64() != Some(0)
                {
                    if let Some(rs) = c.object_mut("ReplicaSet", &ns, &old_name) {
                        rs["spec"]["replicas"] = json!(0);
                    }
                    changed = true;
                }
            }
        }
    }
    changed
}

fn is_owned_by(child: &Value, owner: &Value) -> bool {
    child["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| o.iter().any(|r| r["uid"] == owner["metadata"]["uid"]))
}

/// The workload a scenario applied that owns `object` (itself if none),
/// so FailedCreate on a Deployment's ReplicaSet is reported on the Deployment.
fn top_owner(c: &SimCluster, object: &Value) -> (String, String) {
    let ns = meta_str(object, "namespace");
    if let Some(r) = object["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.first())
    {
        let kind = r["kind"].as_str().unwrap_or("");
        let name = r["name"].as_str().unwrap_or("");
        if let Some(owner) = c
            .objects_of(kind)
            .into_iter()
            .find(|o| meta_str(o, "namespace") == ns && meta_str(o, "name") == name)
        {
            return top_owner(c, &owner);
        }
    }
    (
        object["kind"].as_str().unwrap_or("").to_string(),
        meta_str(object, "name").to_string(),
    )
}

async fn replicasets(c: &mut SimCluster) -> bool {
    let mut changed = false;
    for rs in c.objects_of("ReplicaSet") {
        let ns = meta_str(&rs, "namespace").to_string();
        let name = meta_str(&rs, "name").to_string();
        if c.backing_off.contains(&(ns.clone(), name.clone())) {
            continue;
        }
        let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let have: Vec<String> = c
            .pods_owned_by("ReplicaSet", &ns, &name)
            .iter()
            .map(|p| meta_str(p, "name").to_string())
            .collect();
        if have.len() > want {
            for pod in have.iter().rev().take(have.len() - want) {
                c.delete_pod(&ns, pod);
            }
            changed = true;
            continue;
        }
        for _ in have.len()..want {
            let mut pod = pod_from_template(&rs["spec"]["template"], &rs, &ns);
            pod["metadata"]["generateName"] = json!(format!("{name}-"));
            match c.create_pod(pod).await {
                Ok(_) => changed = true,
                Err(message) => {
                    let (kind, owner) = top_owner(c, &rs);
                    c.record_rejection(&ns, &kind, &owner, format!("Error creating: {message}"));
                    // The real controller retries with back-off; the answer
                    // will not change before the next step, so stop here.
                    c.backing_off.insert((ns.clone(), name.clone()));
                    break;
                }
            }
        }
    }
    changed
}

/// StatefulSet: pods `<name>-0..n-1`, each created only once the previous
/// one is running and ready (OrderedReady), unless podManagementPolicy is
/// Parallel.
async fn statefulsets(c: &mut SimCluster) -> bool {
    let mut changed = false;
    for s in c.objects_of("StatefulSet") {
        let ns = meta_str(&s, "namespace").to_string();
        let name = meta_str(&s, "name").to_string();
        let replicas = s["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
        let parallel = s["spec"]["podManagementPolicy"] == "Parallel";
        let revision = format!("{name}-{}", template_hash(&s["spec"]["template"]));
        for i in 0..replicas {
            let pod_name = format!("{name}-{i}");
            let existing = c
                .pods()
                .iter()
                .find(|p| meta_str(p, "namespace") == ns && meta_str(p, "name") == pod_name)
                .cloned();
            if let Some(p) = existing {
                if !parallel && !is_ready(&p) {
                    break;
                }
                continue;
            }
            let mut pod = pod_from_template(&s["spec"]["template"], &s, &ns);
            // The controller sets both; the name wins.
            pod["metadata"]["generateName"] = json!(format!("{name}-"));
            pod["metadata"]["name"] = json!(pod_name);
            for (k, v) in [
                ("apps.kubernetes.io/pod-index", i.to_string()),
                ("controller-revision-hash", revision.clone()),
                ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
            ] {
                pod["metadata"]["labels"][k] = json!(v);
            }
            pod["spec"]["hostname"] = json!(pod_name);
            if let Some(svc) = s["spec"]["serviceName"].as_str() {
                pod["spec"]["subdomain"] = json!(svc);
            }
            match c.create_pod(pod).await {
                Ok(_) => changed = true,
                Err(message) => {
                    c.record_rejection(
                        &ns,
                        "StatefulSet",
                        &name,
                        format!(
                            "create Pod {pod_name} in StatefulSet {name} failed error: {message}"
                        ),
                    );
                    break;
                }
            }
            if !parallel {
                break;
            }
        }
    }
    changed
}

/// DaemonSet: one pod on the one node.
async fn daemonsets(c: &mut SimCluster) -> bool {
    let mut changed = false;
    for d in c.objects_of("DaemonSet") {
        let ns = meta_str(&d, "namespace").to_string();
        let name = meta_str(&d, "name").to_string();
        if !c.pods_owned_by("DaemonSet", &ns, &name).is_empty()
            || c.rejected(&ns, "DaemonSet", &name)
        {
            continue;
        }
        let mut pod = pod_from_template(&d["spec"]["template"], &d, &ns);
        pod["metadata"]["generateName"] = json!(format!("{name}-"));
        pod["metadata"]["labels"]["controller-revision-hash"] =
            json!(template_hash(&d["spec"]["template"]));
        pod["metadata"]["labels"]["pod-template-generation"] = json!("1");
        pod["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [NODE_NAME]}]}]}}});
        match c.create_pod(pod).await {
            Ok(_) => changed = true,
            Err(message) => c.record_rejection(
                &ns,
                "DaemonSet",
                &name,
                format!("Error creating: {message}"),
            ),
        }
    }
    changed
}

/// Job: one pod (completions and parallelism 1), labelled with the job's
/// controller uid; the Job completes when the pod succeeds.
async fn jobs(c: &mut SimCluster) -> bool {
    let mut changed = false;
    for j in c.objects_of("Job") {
        let ns = meta_str(&j, "namespace").to_string();
        let name = meta_str(&j, "name").to_string();
        let pods: Vec<Value> = c
            .pods_owned_by("Job", &ns, &name)
            .into_iter()
            .cloned()
            .collect();
        if let Some(p) = pods.first() {
            let phase = p["status"]["phase"].as_str().unwrap_or("");
            if phase == "Succeeded" && j["status"]["succeeded"].as_i64() != Some(1) {
                if let Some(job) = c.object_mut("Job", &ns, &name) {
                    job["status"] = json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]});
                }
                changed = true;
            }
            continue;
        }
        if c.rejected(&ns, "Job", &name) {
            continue;
        }
        let uid = meta_str(&j, "uid").to_string();
        let mut pod = pod_from_template(&j["spec"]["template"], &j, &ns);
        pod["metadata"]["generateName"] = json!(format!("{name}-"));
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", uid.as_str()),
            ("batch.kubernetes.io/job-name", name.as_str()),
            ("controller-uid", uid.as_str()),
            ("job-name", name.as_str()),
        ] {
            pod["metadata"]["labels"][k] = json!(v);
        }
        match c.create_pod(pod).await {
            Ok(_) => changed = true,
            Err(message) => {
                c.record_rejection(&ns, "Job", &name, format!("Error creating: {message}"))
            }
        }
    }
    changed
}

impl SimCluster {
    fn rejected(&self, ns: &str, kind: &str, name: &str) -> bool {
        self.rejections
            .iter()
            .any(|r| r.namespace == ns && r.kind == kind && r.name == name)
    }
}
