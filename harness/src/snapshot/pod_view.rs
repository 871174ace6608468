//! The part of a pod a snapshot shows: its identity, owner, labels and
//! annotations with placeholders, spec fields a scenario sets, container
//! states and why the scheduler could not place it. Defaulted and
//! built-in-plugin fields are left out.

use serde_json::{json, Map, Value};

use super::canonical::canonical;
use super::container_state::container_state;
use super::redact::HASH_LABELS;

/// Container fields shown in snapshots.
const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "env",
    "ports",
    "resources",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
    "restartPolicy",
    "volumeMounts",
];

pub(super) const SA_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Annotations whose values are times.
const TIME_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/restartedAt"];

fn container_view(c: &Value) -> Value {
    let mut out = Map::new();
    for f in CONTAINER_FIELDS {
        let Some(v) = c.get(*f) else { continue };
        // Every container has `resources: {}` after defaulting; only what
        // a scenario asks for is worth a line.
        if *f == "resources" && v.as_object().is_some_and(|m| m.is_empty()) {
            continue;
        }
        if *f == "volumeMounts" {
            let mounts: Vec<Value> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["mountPath"] != SA_MOUNT)
                .cloned()
                .collect();
            if !mounts.is_empty() {
                out.insert((*f).into(), canonical(&Value::Array(mounts)));
            }
            continue;
        }
        out.insert((*f).into(), canonical(v));
    }
    Value::Object(out)
}

pub(super) fn pod_view(pod: &Value) -> Value {
    let meta = &pod["metadata"];
    let mut labels = meta["labels"].clone();
    if let Some(m) = labels.as_object_mut() {
        for (key, placeholder) in HASH_LABELS {
            if m.contains_key(*key) {
                m.insert((*key).into(), json!(placeholder));
            }
        }
    }
    let mut annotations = meta["annotations"].clone();
    if let Some(m) = annotations.as_object_mut() {
        for key in TIME_ANNOTATIONS {
            if m.contains_key(*key) {
                m.insert((*key).into(), json!("<timestamp>"));
            }
        }
    }
    let mut view = Map::new();
    view.insert("name".into(), meta["name"].clone());
    view.insert("namespace".into(), meta["namespace"].clone());
    if let Some(owner) = meta["ownerReferences"].as_array().and_then(|o| o.first()) {
        view.insert(
            "owner".into(),
            json!(format!(
                "{}/{}",
                owner["kind"].as_str().unwrap_or(""),
                owner["name"].as_str().unwrap_or("")
            )),
        );
    }
    if labels.as_object().is_some_and(|m| !m.is_empty()) {
        view.insert("labels".into(), canonical(&labels));
    }
    if annotations.as_object().is_some_and(|m| !m.is_empty()) {
        view.insert("annotations".into(), canonical(&annotations));
    }
    // A class the scenario names, with the priority admission gave it.
    if let Some(class) = pod["spec"]["priorityClassName"]
        .as_str()
        .filter(|c| !c.is_empty())
    {
        view.insert("priorityClassName".into(), json!(class));
        view.insert("priority".into(), pod["spec"]["priority"].clone());
    }
    if pod["spec"]["hostNetwork"] == true {
        view.insert("hostNetwork".into(), json!(true));
    }
    if let Some(rp) = pod["spec"]["restartPolicy"]
        .as_str()
        .filter(|rp| *rp != "Always")
    {
        view.insert("restartPolicy".into(), json!(rp));
    }
    for key in ["initContainers", "containers"] {
        if let Some(list) = pod["spec"][key].as_array() {
            view.insert(
                key.into(),
                Value::Array(list.iter().map(container_view).collect()),
            );
        }
    }
    let volumes: Vec<Value> = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| {
            !v["name"]
                .as_str()
                .unwrap_or("")
                .starts_with("kube-api-access-")
        })
        .cloned()
        .collect();
    if !volumes.is_empty() {
        view.insert("volumes".into(), canonical(&Value::Array(volumes)));
    }
    let mut states = Map::new();
    for key in ["initContainerStatuses", "containerStatuses"] {
        for s in pod["status"][key].as_array().into_iter().flatten() {
            if let Some(n) = s["name"].as_str() {
                states.insert(n.into(), json!(container_state(s)));
            }
        }
    }
    if !states.is_empty() {
        view.insert("states".into(), Value::Object(states));
    }
    // A pod the scheduler could not place says why (its PodScheduled
    // condition). Only `Unschedulable` is a state of the scenario: a
    // scheduled pod's condition is True, and `SchedulerError` (a bind retry
    // on a loaded scheduler) passes by itself.
    let scheduled = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "PodScheduled");
    if let Some(c) = scheduled.filter(|c| c["status"] == "False" && c["reason"] == "Unschedulable")
    {
        view.insert(
            "scheduled".into(),
            json!(format!(
                "{} {}: {}",
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            )),
        );
    }
    Value::Object(view)
}
