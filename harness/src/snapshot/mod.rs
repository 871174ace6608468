//! The normalized, backend-independent view of a settled scenario: what the
//! insta snapshot holds. Generated names, hashes, uids, IPs, timestamps and
//! resourceVersions become placeholders; pods are sorted by content; the
//! service-account token volume (a built-in plugin's, not the scenario's) is
//! left out. What remains is what a user reviews: pod specs, container
//! states and one READY line per pod.

pub mod check;
pub mod file;
pub mod versioned;

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{json, Map, Value};

use crate::cluster::Observed;
use crate::status;

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

const SA_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Hash-like label values replaced by placeholders, by label key.
const HASH_LABELS: &[(&str, &str)] = &[
    ("pod-template-hash", "<hash>"),
    ("controller-revision-hash", "<revision>"),
    ("controller-uid", "<uid>"),
    ("batch.kubernetes.io/controller-uid", "<uid>"),
];

/// Annotations whose values are times.
const TIME_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/restartedAt"];

/// Replaces every hash-like value found in the pods' labels wherever it
/// occurs in `text` (names, messages).
struct Redactor {
    pairs: Vec<(String, String)>,
    injector: Regex,
    webhook_url: Regex,
    webhook_dial: Regex,
    token: Regex,
}

impl Redactor {
    fn new(observed: &Observed) -> Redactor {
        let mut pairs = Vec::new();
        let objects = observed.pods.iter().chain(observed.workloads.iter());
        for o in objects {
            let labels = crate::object::labels(o);
            let tmpl: BTreeMap<String, String> = o["spec"]["template"]["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            for (key, placeholder) in HASH_LABELS {
                for l in [&labels, &tmpl] {
                    if let Some(v) = l.get(*key) {
                        if v.len() >= 4 {
                            pairs.push((v.clone(), placeholder.to_string()));
                        }
                    }
                }
            }
        }
        // Workloads created from a generateName (a Job `migrate-`): their
        // generated name shows in their pods' names, labels and owners.
        for w in &observed.workloads {
            if let Some(prefix) = name_pattern(w) {
                let name = crate::object::meta_str(w, "name");
                pairs.push((name.to_string(), format!("{prefix}<id>")));
            }
        }
        // Longest first, so a revision `web-<hash>` wins over a bare hash.
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.cmp(b)));
        pairs.dedup();
        Redactor {
            pairs,
            injector: Regex::new(r"127\.0\.0\.1:\d+").unwrap_or_else(|_| unreachable_regex()),
            // In the apiserver's "failed calling webhook" errors, the
            // webhook's address: a URL on the host (sim, real apiserver)
            // or the Service's name and ClusterIP (kind).
            webhook_url: Regex::new(r#"Post "https://[^/"]+/"#)
                .unwrap_or_else(|_| unreachable_regex()),
            webhook_dial: Regex::new(r"dial tcp (\[[0-9a-fA-F:.]+\]|[0-9.]+):\d+")
                .unwrap_or_else(|_| unreachable_regex()),
            token: Regex::new(r"kube-api-access-[a-z0-9]{5}")
                .unwrap_or_else(|_| unreachable_regex()),
        }
    }

    fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (from, to) in &self.pairs {
            if out.contains(from.as_str()) {
                out = out.replace(from.as_str(), to);
            }
        }
        let mut out = self.injector.replace_all(&out, "<injector>").into_owned();
        if out.contains("calling webhook") {
            out = self
                .webhook_url
                .replace_all(&out, r#"Post "https://<injector>/"#)
                .into_owned();
            out = self
                .webhook_dial
                .replace_all(&out, "dial tcp <injector>")
                .into_owned();
        }
        self.token
            .replace_all(&out, "kube-api-access-<id>")
            .into_owned()
    }
}

/// The patterns above are literals; a failure to compile one is a defect
/// caught by the unit tests, never an input error.
fn unreachable_regex() -> Regex {
    Regex::new("$^").expect("trivial regex")
}

fn redact_value(v: &Value, r: &Redactor) -> Value {
    match v {
        Value::String(s) => Value::String(r.text(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| redact_value(x, r)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), redact_value(x, r)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Key order as a canonical form: `name` first, then alphabetical. API
/// servers, the injector and the sim each emit keys in their own order; the
/// snapshot must not depend on which one produced an object.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| {
                (a.as_str() != "name", a.as_str()).cmp(&(b.as_str() != "name", b.as_str()))
            });
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

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

/// What a container is doing, in one line, from its status.
pub fn container_state(s: &Value) -> String {
    let state = &s["state"];
    let last_msg = s["lastState"]["terminated"]["message"]
        .as_str()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    if state["running"].is_object() {
        if s["ready"] == true {
            "Running, ready".into()
        } else {
            "Running, not ready".into()
        }
    } else if let Some(w) = state["waiting"].as_object() {
        let reason = w.get("reason").and_then(Value::as_str).unwrap_or("Waiting");
        match last_msg {
            Some(m) => format!("{reason}: {m}"),
            None => reason.to_string(),
        }
    } else if let Some(t) = state["terminated"].as_object() {
        let reason = t
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("Terminated");
        let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
        format!("{reason} (exit {code})")
    } else {
        "Unknown".into()
    }
}

fn pod_view(pod: &Value) -> Value {
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

/// The characters the apiserver draws generated name suffixes from.
const SUFFIX_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

/// The generateName prefix of an object whose name the apiserver generated
/// from it; its suffix (`-x7k2p`) becomes `<id>`, numbered when several
/// pods share a prefix, in content order so the numbering is stable.
fn name_pattern(object: &Value) -> Option<String> {
    let prefix = object["metadata"]["generateName"].as_str()?;
    let name = object["metadata"]["name"].as_str()?;
    // Only a generated suffix: five characters of the apiserver's alphabet.
    // StatefulSet pods carry a generateName too, but their `-0`, `-1`
    // ordinals are chosen, stable names. A prefix over 58 characters is cut.
    let mut cut = prefix.len().min(58);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    let kept = &prefix[..cut];
    let suffix = name.strip_prefix(kept)?;
    let generated = suffix.len() == 5 && suffix.chars().all(|c| SUFFIX_ALPHABET.contains(c));
    generated.then(|| kept.to_string())
}

/// A refusal of an object created from a generateName is reported under
/// the prefix, and its message names the generated name (`Pod "bad-x7k2p"
/// is invalid`): that name becomes `bad-<id>`.
fn redact_generated(message: &str, prefix: &str) -> String {
    let pattern = format!(
        "{}[{SUFFIX_ALPHABET}]{{5}}([^a-z0-9]|$)",
        regex::escape(prefix)
    );
    match Regex::new(&pattern) {
        Ok(re) => re
            .replace_all(message, |c: &regex::Captures<'_>| {
                format!("{prefix}<id>{}", &c[1])
            })
            .into_owned(),
        Err(_) => message.to_string(),
    }
}

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
            format!(
                "{} {}/{}: {}",
                x.kind,
                x.namespace,
                r.text(&x.name),
                r.text(&redact_generated(&x.message, &x.name))
            )
        })
        .collect();
    rejected.sort();
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

    let mut doc = Map::new();
    doc.insert("ready".into(), Value::Array(ready));
    if !rejected.is_empty() {
        doc.insert("rejected".into(), json!(rejected));
    }
    if !workloads.is_empty() {
        doc.insert("workloads".into(), json!(workloads));
    }
    if !events.is_empty() {
        doc.insert("events".into(), json!(events));
    }
    doc.insert(
        "pods".into(),
        Value::Array(pods.into_iter().map(|(_, _, v, _, _)| v).collect()),
    );
    Value::Object(doc)
}

/// What an `expect` step saw mid-scenario, for the snapshot: its READY
/// lines and the refusals so far, normalized as in [`build`].
pub fn checkpoint(label: &str, observed: &Observed) -> Value {
    let doc = build(observed);
    let mut out = Map::new();
    out.insert("after".into(), json!(label));
    out.insert("ready".into(), doc["ready"].clone());
    if let Some(r) = doc.get("rejected") {
        out.insert("rejected".into(), r.clone());
    }
    Value::Object(out)
}

/// Puts the checkpoints first in a snapshot document (they come first in
/// time); a scenario without `expect` steps keeps its document unchanged.
pub fn with_checkpoints(doc: Value, checkpoints: Vec<Value>) -> Value {
    if checkpoints.is_empty() {
        return doc;
    }
    let mut out = Map::new();
    out.insert("checkpoints".into(), Value::Array(checkpoints));
    if let Value::Object(m) = doc {
        out.extend(m);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
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
    fn the_webhooks_address_reads_the_same_on_every_backend() {
        let on = |host: &str, dial: &str| {
            format!("Internal error occurred: failed calling webhook \"w\": failed to call webhook: Post \"https://{host}/mutate?timeout=10s\": dial tcp {dial}: connect: connection refused")
        };
        let r = Redactor::new(&Observed::default());
        let want = "Internal error occurred: failed calling webhook \"w\": failed to call webhook: Post \"https://<injector>/mutate?timeout=10s\": dial tcp <injector>: connect: connection refused";
        assert_eq!(r.text(&on("127.0.0.1:41234", "127.0.0.1:41234")), want);
        assert_eq!(
            r.text(&on(
                "sidecar-injector.injector-x.svc:443",
                "10.96.163.173:443"
            )),
            want
        );
        assert_eq!(r.text(&on("[::1]:8443", "[::1]:8443")), want);
        // Elsewhere an address is left alone (a probe's pod IP is not the injector).
        let probe = "Get \"http://10.244.0.5:8080/\": dial tcp 10.244.0.5:8080: connect: connection refused";
        assert_eq!(r.text(probe), probe);
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

    #[test]
    fn crash_loop_state_carries_the_cause() {
        let s = json!({"name": "envoy", "ready": false, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                       "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "cannot bind '0.0.0.0:10000': Address already in use\n"}}});
        assert_eq!(
            container_state(&s),
            "CrashLoopBackOff: cannot bind '0.0.0.0:10000': Address already in use"
        );
    }
}
