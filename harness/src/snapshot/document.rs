//! The snapshot document for one settled scenario: pods sorted by content
//! and numbered where their placeholder names collide, one READY line per
//! pod, refusals, the warnings returned to the scenario's requests,
//! top-level workloads and events.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::generated_names::{name_pattern, redact_generated};
use super::pod_view::pod_view;
use super::redact::{redact_value, Redactor};
use crate::cluster::Observed;
use crate::status;

/// Builds the snapshot document for one scenario.
pub fn build(observed: &Observed) -> Value {
    let r = Redactor::new(observed);
    // (namespace, sort key, view, READY line, real name)
    let mut pods: Vec<(String, String, Value, String, String)> = observed
        .pods
        .iter()
        .map(|p| {
            let line = status::pod_line(p);
            let prefix = name_pattern(p).map(|x| r.text(&x));
            let mut view = redact_value(&pod_view(p), &r);
            if let Some(prefix) = &prefix {
                view["name"] = json!(format!("{prefix}<id>"));
            }
            let ns = p["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let key = serde_json::to_string(&view).unwrap_or_default();
            let real = p["metadata"]["name"].as_str().unwrap_or("").to_string();
            (
                ns,
                key,
                view,
                format!("{} {}", line.ready, line.status),
                real,
            )
        })
        .collect();
    pods.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    // Number pods that ended up with the same placeholder name.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, v, _, _) in &pods {
        *counts
            .entry(format!("{}/{}", v["namespace"], v["name"]))
            .or_default() += 1;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (_, _, v, _, _) in pods.iter_mut() {
        let key = format!("{}/{}", v["namespace"], v["name"]);
        if counts[&key] > 1 {
            let n = seen.entry(key).or_default();
            *n += 1;
            // Only the pod's own suffix, the last one (a Job's generated
            // name before it stays as it is).
            let mut name = v["name"].as_str().unwrap_or("").to_string();
            if let Some(i) = name.rfind("<id>") {
                name.replace_range(i..i + 4, &format!("<id{n}>"));
            }
            v["name"] = json!(name);
        }
    }
    // Events name pods by their real names; show them as the pods are shown.
    let shown: BTreeMap<(String, String), String> = pods
        .iter()
        .map(|(ns, _, v, _, real)| {
            let name = v["name"].as_str().unwrap_or("").to_string();
            ((ns.clone(), real.clone()), name)
        })
        .collect();
    let mut events: Vec<String> = observed
        .events
        .iter()
        .map(|e| {
            let key = (e.namespace.clone(), e.name.clone());
            let name = match (e.kind.as_str(), shown.get(&key)) {
                ("Pod", Some(n)) => n.clone(),
                _ => r.text(&e.name),
            };
            format!(
                "{} {}/{} {}: {}",
                e.kind,
                e.namespace,
                name,
                e.reason,
                r.text(&e.message)
            )
        })
        .collect();
    events.sort();
    events.dedup();
    let ready: Vec<Value> = pods
        .iter()
        .map(|(ns, _, v, line, _)| {
            json!(format!("{ns}/{} {line}", v["name"].as_str().unwrap_or("")))
        })
        .collect();
    let mut rejected: Vec<String> = observed
        .rejections
        .iter()
        .map(|x| {
            let name = r.text(&x.name);
            let message = r.text(&redact_generated(&x.message, &x.name));
            // A Deployment's pods are named `<name>-<hash>-<id>`: each
            // retry of a refused creation names another, so they are one
            // refusal.
            let message = redact_generated(&message, &format!("{name}-<hash>-"));
            format!("{} {}/{}: {}", x.kind, x.namespace, name, message)
        })
        .collect();
    rejected.sort();
    rejected.dedup();
    // What kubectl would print as `Warning: ...` for each request, sorted:
    // the order of one request's warnings follows map iteration in parts
    // of the apiserver, and a repeated request's are the same.
    let mut warnings: Vec<String> = observed
        .warnings
        .iter()
        .map(|w| {
            let name = r.text(&w.name);
            let message = r.text(&redact_generated(&w.message, &w.name));
            format!("{} {}/{}: {}", w.kind, w.namespace, name, message)
        })
        .collect();
    warnings.sort();
    warnings.dedup();
    let mut workloads: Vec<String> = observed
        .workloads
        .iter()
        .filter(|w| {
            w["metadata"]["ownerReferences"]
                .as_array()
                .is_none_or(|o| o.is_empty())
        })
        .map(|w| {
            let names: Vec<&str> = w["spec"]["template"]["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str())
                .collect();
            format!(
                "{} {}/{}: template containers [{}]",
                w["kind"].as_str().unwrap_or(""),
                w["metadata"]["namespace"].as_str().unwrap_or(""),
                r.text(w["metadata"]["name"].as_str().unwrap_or("")),
                names.join(", ")
            )
        })
        .collect();
    workloads.sort();
    let mut objects: Vec<Value> = observed
        .objects
        .iter()
        .map(|o| redact_value(&object_view(o), &r))
        .collect();
    objects.sort_by_key(|o| {
        (
            o["kind"].as_str().unwrap_or("").to_string(),
            o["namespace"].as_str().unwrap_or("").to_string(),
            o["name"].as_str().unwrap_or("").to_string(),
        )
    });

    let mut doc = Map::new();
    doc.insert("ready".into(), Value::Array(ready));
    if !rejected.is_empty() {
        doc.insert("rejected".into(), json!(rejected));
    }
    if !warnings.is_empty() {
        doc.insert("warnings".into(), json!(warnings));
    }
    if !workloads.is_empty() {
        doc.insert("workloads".into(), json!(workloads));
    }
    if !events.is_empty() {
        doc.insert("events".into(), json!(events));
    }
    if !objects.is_empty() {
        doc.insert("objects".into(), Value::Array(objects));
    }
    doc.insert(
        "pods".into(),
        Value::Array(pods.into_iter().map(|(_, _, v, _, _)| v).collect()),
    );
    Value::Object(doc)
}

/// A custom object as the snapshot shows it: what it is and its name,
/// labels and annotations, then every field of its own but the status
/// (which its controller, if any, writes in its own time).
fn object_view(o: &Value) -> Value {
    let mut view = Map::new();
    for (key, value) in [
        ("apiVersion", &o["apiVersion"]),
        ("kind", &o["kind"]),
        ("namespace", &o["metadata"]["namespace"]),
        ("name", &o["metadata"]["name"]),
        ("labels", &o["metadata"]["labels"]),
        ("annotations", &o["metadata"]["annotations"]),
    ] {
        if !value.is_null() {
            view.insert(key.into(), super::canonical::canonical(value));
        }
    }
    // A name the apiserver generated differs from run to run.
    if let Some(prefix) = o["metadata"]["generateName"].as_str() {
        view.insert("name".into(), json!(format!("{prefix}<id>")));
    }
    for (key, value) in o.as_object().into_iter().flatten() {
        if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "status") {
            view.insert(key.clone(), super::canonical::canonical(value));
        }
    }
    Value::Object(view)
}

#[cfg(test)]
mod tests {
    use super::super::pod_view::SA_MOUNT;
    use super::*;
    use crate::cluster::Rejection;

    fn pod(name: &str, hash: &str, ready: bool) -> Value {
        json!({
            "metadata": {"name": name, "generateName": format!("web-{hash}-"), "namespace": "demo",
                         "labels": {"app": "web", "pod-template-hash": hash},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": format!("web-{hash}")}]},
            "spec": {"containers": [{"name": "web", "image": "probe", "terminationMessagePath": "/dev/termination-log",
                                      "volumeMounts": [{"name": "kube-api-access-abcde", "mountPath": SA_MOUNT}]}],
                     "volumes": [{"name": "kube-api-access-abcde", "projected": {}}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                       "containerStatuses": [{"name": "web", "ready": ready, "restartCount": 0, "state": {"running": {}}}]}
        })
    }

    #[test]
    fn generated_names_hashes_and_token_volumes_are_normalized() {
        let observed = Observed {
            pods: vec![pod("web-6bdf5d484b-x7k2p", "6bdf5d484b", true), pod("web-6bdf5d484b-q9zzr", "6bdf5d484b", true)],
            workloads: vec![],
            rejections: vec![Rejection {
                namespace: "demo".into(),
                kind: "Deployment".into(),
                name: "web".into(),
                message: "Error creating: Post \"https://127.0.0.1:40123/mutate\": dial tcp 127.0.0.1:40123: connect: connection refused".into(),
            }],
            ..Default::default()
        };
        let doc = build(&observed);
        let text = serde_yaml::to_string(&doc).unwrap();
        assert!(!text.contains("6bdf5d484b"), "{text}");
        assert!(
            !text.contains("x7k2p") && !text.contains("abcde") && !text.contains("40123"),
            "{text}"
        );
        assert_eq!(doc["ready"][0], "demo/web-<hash>-<id1> 1/1 Running");
        assert_eq!(doc["ready"][1], "demo/web-<hash>-<id2> 1/1 Running");
        assert_eq!(doc["pods"][0]["labels"]["pod-template-hash"], "<hash>");
        assert!(doc["pods"][0].get("volumes").is_none());
        assert!(doc["pods"][0]["containers"][0]
            .get("volumeMounts")
            .is_none());
        assert!(doc["pods"][0]["containers"][0]
            .get("terminationMessagePath")
            .is_none());
        assert_eq!(doc["pods"][0]["states"]["web"], "Running, ready");
        assert!(
            doc["rejected"][0]
                .as_str()
                .unwrap()
                .contains("dial tcp <injector>: connect"),
            "{text}"
        );
    }

    #[test]
    fn same_content_in_any_order_gives_the_same_snapshot() {
        let a = pod("web-h1-bcdfg", "h1", true);
        let b = pod("web-h1-hjklm", "h1", false);
        let one = build(&Observed {
            pods: vec![a.clone(), b.clone()],
            ..Default::default()
        });
        let two = build(&Observed {
            pods: vec![b, a],
            ..Default::default()
        });
        assert_eq!(one, two);
    }

    #[test]
    fn generated_workload_and_pod_names_are_normalized() {
        let job = json!({"kind": "Job", "metadata": {"name": "migrate-q9zzr", "generateName": "migrate-", "namespace": "demo"},
                         "spec": {"template": {"spec": {"containers": [{"name": "m"}]}}}});
        let mut p = pod("migrate-q9zzr-x7k2p", "h1", true);
        p["metadata"]["generateName"] = json!("migrate-q9zzr-");
        p["metadata"]["labels"] = json!({"job-name": "migrate-q9zzr"});
        p["metadata"]["ownerReferences"] = json!([{"kind": "Job", "name": "migrate-q9zzr"}]);
        let mut bare = pod("debug-bcdfg", "h1", true);
        bare["metadata"]["generateName"] = json!("debug-");
        bare["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences");
        let doc = build(&Observed {
            pods: vec![p, bare],
            workloads: vec![job],
            rejections: vec![Rejection {
                namespace: "demo".into(),
                kind: "Pod".into(),
                name: "bad-".into(),
                message: "Pod \"bad-x2k4z\" is invalid: metadata.name: Invalid value: \"bad-x2k4z\": nope; not bad-abc".into(),
            }],
            ..Default::default()
        });
        let text = serde_yaml::to_string(&doc).unwrap();
        for generated in ["q9zzr", "x7k2p", "bcdfg", "x2k4z"] {
            assert!(!text.contains(generated), "{generated}: {text}");
        }
        assert_eq!(doc["ready"][0], "demo/debug-<id> 1/1 Running");
        assert_eq!(doc["ready"][1], "demo/migrate-<id>-<id> 1/1 Running");
        assert_eq!(doc["pods"][1]["owner"], "Job/migrate-<id>");
        assert_eq!(doc["pods"][1]["labels"]["job-name"], "migrate-<id>");
        assert_eq!(
            doc["workloads"][0],
            "Job demo/migrate-<id>: template containers [m]"
        );
        assert_eq!(
            doc["rejected"][0],
            "Pod demo/bad-: Pod \"bad-<id>\" is invalid: metadata.name: Invalid value: \"bad-<id>\": nope; not bad-abc"
        );
    }

    #[test]
    fn unschedulable_pods_show_why_and_their_events_use_shown_names() {
        let message = "0/1 nodes are available: 1 Insufficient cpu.";
        let mut pending = pod("web-6bdf5d484b-x7k2p", "6bdf5d484b", false);
        pending["status"] = json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]});
        let running = pod("web-6bdf5d484b-q9zzr", "6bdf5d484b", true);
        let event = |name: &str| crate::cluster::ObjectEvent {
            namespace: "demo".into(),
            kind: "Pod".into(),
            name: name.into(),
            reason: "FailedScheduling".into(),
            message: message.into(),
        };
        let doc = build(&Observed {
            pods: vec![running.clone(), pending],
            // The same event seen twice (a real recorder repeats it) is one line.
            events: vec![event("web-6bdf5d484b-x7k2p"), event("web-6bdf5d484b-x7k2p")],
            ..Default::default()
        });
        let pending_view = doc["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p.get("scheduled").is_some())
            .unwrap();
        assert_eq!(
            pending_view["scheduled"],
            format!("False Unschedulable: {message}")
        );
        let name = pending_view["name"].as_str().unwrap();
        assert!(name.starts_with("web-<hash>-<id"), "{name}");
        assert_eq!(
            doc["events"],
            json!([format!("Pod demo/{name} FailedScheduling: {message}")])
        );
        assert!(doc["ready"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("demo/{name} 0/1 Pending"))));
        // A scheduled pod shows neither.
        let plain = build(&Observed {
            pods: vec![running],
            ..Default::default()
        });
        assert!(plain.get("events").is_none());
        assert!(plain["pods"][0].get("scheduled").is_none());
    }

    #[test]
    fn a_scheduler_error_is_not_shown_as_unschedulable() {
        // A loaded real scheduler retries a bind and says so for a moment.
        let mut retrying = pod("web-6bdf5d484b-x7k2p", "6bdf5d484b", false);
        retrying["status"] = json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulerError",
             "message": "pod web-6bdf5d484b-x7k2p is already assigned to node \"kind\""}]});
        let doc = build(&Observed {
            pods: vec![retrying],
            ..Default::default()
        });
        assert!(doc["pods"][0].get("scheduled").is_none(), "{doc:#}");
    }
}
