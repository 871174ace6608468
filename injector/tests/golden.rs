//! Golden tests: every file in `testdata/inject` is injected offline and the
//! result snapshotted, then every pod in it is sent through the webhook path
//! (AdmissionReview in, base64 JSON Patch out) and the patched pod must equal
//! the offline result. The two paths share the engine; this proves the
//! plumbing around it (walk, namespaces, wire encoding) agrees too.
//!
//! A file may start with `# config: NAME` to use `testdata/configs/NAME.yaml`
//! instead of the built-in config.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};
use sidecar_injector::admission;
use sidecar_injector::workload::{self, Verdict};
use sidecar_injector::{Config, Injector};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata")
}

/// The config named on the first line, or the built-in one.
fn config_for(input: &str) -> (String, Config) {
    let first = input.lines().next().unwrap_or("");
    match first.strip_prefix("# config:") {
        Some(name) => {
            let name = name.trim();
            let path = testdata().join("configs").join(format!("{name}.yaml"));
            let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            (name.to_string(), config)
        }
        None => ("builtin".to_string(), Config::builtin()),
    }
}

/// A verdict as it appears in the snapshot.
#[derive(Debug, PartialEq, Serialize)]
struct VerdictView {
    document: usize,
    kind: String,
    name: String,
    namespace: String,
    path: String,
    inject: bool,
    reason: String,
    detail: String,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    denied: Option<String>,
}

impl From<&Verdict> for VerdictView {
    fn from(v: &Verdict) -> Self {
        VerdictView {
            document: v.document,
            kind: v.kind.clone(),
            name: v.name.clone(),
            namespace: v.namespace.clone(),
            path: v.path.clone(),
            inject: v.inject,
            reason: v.reason.as_str().to_string(),
            detail: v.detail.clone(),
            warnings: v.warnings.clone(),
            denied: v.denied.clone(),
        }
    }
}

#[derive(Serialize)]
struct Golden {
    config: String,
    /// Set when offline injection fails; the verdicts then come from `check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    documents: Vec<Value>,
    verdicts: Vec<VerdictView>,
}

fn parse_all(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML parses"))
        .collect()
}

/// Follows a verdict path such as `items[1].spec.template`.
fn at<'v>(value: &'v Value, path: &str) -> &'v Value {
    let mut v = value;
    for segment in path.replace('[', ".[").split('.').filter(|s| !s.is_empty()) {
        v = match segment.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(i) => &v[i.parse::<usize>().expect("index")],
            None => &v[segment],
        };
    }
    v
}

/// Sends `part` (a pod or pod template) through the webhook as a Pod.
/// Returns the decoded response and the pod with the response's patch
/// applied.
fn through_webhook(injector: &Injector, part: &Value, verdict: &Verdict) -> (Value, Value) {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod"});
    for field in ["metadata", "spec"] {
        if let Some(v) = part.get(field) {
            pod[field] = v.clone();
        }
    }
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0e3e5a8c-1c4b-4f7e-9a51-golden",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": verdict.name,
            "namespace": verdict.namespace,
            "operation": "CREATE",
            "userInfo": {"username": "golden"},
            "object": pod,
            "dryRun": false
        }
    });
    let reviewed = admission::review(injector, &serde_json::to_vec(&body).unwrap())
        .expect("the webhook accepts the review");
    let answer: Value = serde_json::from_slice(&admission::encode(&reviewed.review))
        .expect("the wire form is JSON");
    let response = answer["response"].clone();
    assert_eq!(response["uid"], body["request"]["uid"]);
    if let Some(encoded) = response.get("patch") {
        assert_eq!(response["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("patch is a base64 string"))
            .expect("patch is base64");
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("patch is JSON Patch");
        json_patch::patch(&mut pod, &patch).expect("the webhook patch applies strictly");
    }
    (response, pod)
}

fn warnings_of(response: &Value) -> Vec<String> {
    response
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|w| w.as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn inject() {
    insta::glob!("testdata/inject/*.yaml", |path| {
        let input = std::fs::read_to_string(path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let (config_name, config) = config_for(&input);
        let injector = Injector::new(config);
        let inputs = parse_all(&input);

        let golden = match workload::inject_documents(&injector, &input, &file, "default") {
            Ok((output, verdicts)) => {
                let documents = parse_all(&output);
                // `check` walks the same way and decides the same.
                let checked = workload::check_documents(&injector, &input, &file, None).unwrap();
                let views: Vec<VerdictView> = verdicts.iter().map(VerdictView::from).collect();
                let checked: Vec<VerdictView> = checked.iter().map(VerdictView::from).collect();
                assert_eq!(views, checked, "{file}: check and inject disagree");

                // Injecting the output again changes nothing.
                let (again, _) =
                    workload::inject_documents(&injector, &output, &file, "default").unwrap();
                assert_eq!(again, output, "{file}: second injection changed the output");

                for v in &verdicts {
                    // Empty documents are dropped from the output.
                    let out_index = inputs[..v.document].iter().filter(|d| !d.is_null()).count();
                    let original = at(&inputs[v.document], &v.path);
                    let offline = at(&documents[out_index], &v.path);
                    let (response, webhook) = through_webhook(&injector, original, v);
                    let what = format!("{file}: document {} {}", v.document, v.path);
                    assert_eq!(response["allowed"], true, "{what}");
                    assert_eq!(response.get("patch").is_some(), v.inject, "{what}");
                    assert_eq!(webhook.get("metadata"), offline.get("metadata"), "{what}");
                    assert_eq!(webhook.get("spec"), offline.get("spec"), "{what}");
                    assert_eq!(warnings_of(&response), v.warnings, "{what}");
                }
                Golden {
                    config: config_name,
                    error: None,
                    documents,
                    verdicts: views,
                }
            }
            Err(error) => {
                let verdicts = workload::check_documents(&injector, &input, &file, None).unwrap();
                assert!(
                    verdicts.iter().any(|v| v.denied.is_some()),
                    "{file}: {error}"
                );
                for v in &verdicts {
                    let original = at(&inputs[v.document], &v.path);
                    let (response, _) = through_webhook(&injector, original, v);
                    let what = format!("{file}: document {} {}", v.document, v.path);
                    match &v.denied {
                        Some(message) => {
                            assert_eq!(response["allowed"], false, "{what}");
                            assert_eq!(response["status"]["message"], json!(message), "{what}");
                        }
                        None => assert_eq!(response["allowed"], true, "{what}"),
                    }
                }
                Golden {
                    config: config_name,
                    error: Some(error.to_string()),
                    documents: Vec::new(),
                    verdicts: verdicts.iter().map(VerdictView::from).collect(),
                }
            }
        };
        insta::assert_yaml_snapshot!(golden);
    });
}
