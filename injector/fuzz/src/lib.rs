//! What the fuzz targets share: the configs they inject with, a strict JSON
//! Patch applier, and an independent reference for the pruned decoder.

use std::sync::LazyLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use sidecar_injector::{Config, Injector, PodRef};

/// The configs of the golden tests, plus the built-in one: remap, keep,
/// reject, native sidecars with init containers, selectors with labels and
/// annotations. A fuzz input picks one with its first byte.
pub static INJECTORS: LazyLock<Vec<Injector>> = LazyLock::new(|| {
    let mut out = vec![Injector::new(Config::builtin())];
    for (name, text) in [
        (
            "keep.yaml",
            include_str!("../../tests/testdata/configs/keep.yaml"),
        ),
        (
            "native.yaml",
            include_str!("../../tests/testdata/configs/native.yaml"),
        ),
        (
            "reject.yaml",
            include_str!("../../tests/testdata/configs/reject.yaml"),
        ),
        (
            "selectors.yaml",
            include_str!("../../tests/testdata/configs/selectors.yaml"),
        ),
    ] {
        let config = Config::from_yaml(text, name).unwrap_or_else(|e| panic!("{e}"));
        out.push(Injector::new(config));
    }
    out
});

/// A pod's parts as the engine takes them; None when the metadata is not
/// an ObjectMeta (the apiserver would not send such a pod).
pub fn pod_parts(pod: &Value) -> Option<(String, ObjectMeta)> {
    let meta: ObjectMeta = match pod.get("metadata") {
        Some(m) => serde_json::from_value(m.clone()).ok()?,
        None => ObjectMeta::default(),
    };
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    Some((namespace, meta))
}

/// Shapes a pod's metadata as an apiserver sends it to a webhook: decoded
/// into the typed object (unknown fields dropped) and with the request's
/// namespace set, which the apiserver fills in before admission. Without
/// this, metadata holding only unknown fields reads as absent and the
/// engine adds `/metadata` whole over it; no apiserver sends such a pod.
/// Returns false when the metadata is not an ObjectMeta at all.
pub fn as_the_apiserver_sends(pod: &mut Value) -> bool {
    let Some((namespace, mut meta)) = pod_parts(pod) else {
        return false;
    };
    meta.namespace = Some(namespace);
    match (pod.as_object_mut(), serde_json::to_value(meta)) {
        (Some(obj), Ok(m)) => {
            obj.insert("metadata".into(), m);
            true
        }
        _ => false,
    }
}

/// Evaluates `pod` with `injector`, reading the spec whole.
pub fn evaluate(
    injector: &Injector,
    namespace: &str,
    meta: &ObjectMeta,
    pod: &Value,
) -> Result<sidecar_injector::Outcome, sidecar_injector::inject::PodError> {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    injector.evaluate(PodRef {
        namespace,
        metadata: meta,
        spec,
    })
}

/// Applies a JSON Patch more strictly than RFC 6902 asks: besides what
/// json-patch checks (parents exist, indexes in range, `test` holds), an
/// `add` may not replace an object member that exists, since the injector
/// must never overwrite what the pod already has. Ops are applied one at a
/// time so each is checked against the document it will change.
pub fn apply_strictly(doc: &mut Value, patch: &json_patch::Patch) -> Result<(), String> {
    for (i, op) in patch.0.iter().enumerate() {
        if let json_patch::PatchOperation::Add(add) = op {
            let path = add.path.to_string();
            if let Some((parent, last)) = path.rsplit_once('/') {
                let parent = doc.pointer(parent);
                let last = last.replace("~1", "/").replace("~0", "~");
                if let Some(Value::Object(map)) = parent {
                    if map.contains_key(&last) {
                        return Err(format!("op {i}: add {path} replaces an existing member"));
                    }
                }
            }
        }
        json_patch::patch(doc, std::slice::from_ref(op)).map_err(|e| format!("op {i}: {e}"))?;
    }
    Ok(())
}

/// What [`sidecar_injector::pruned::PrunedSpec`] must keep of a spec,
/// computed from the whole decoded value: written apart from the streaming
/// pruner, so the two check each other.
pub fn reference_prune(spec: &Value) -> Value {
    fn keep_names(list: &Value, fields: &[&str]) -> Value {
        match list {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| match item {
                        Value::Object(m) => Value::Object(
                            m.iter()
                                .filter(|(k, _)| fields.contains(&k.as_str()))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        ),
                        other => other.clone(),
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let Value::Object(m) = spec else {
        return spec.clone();
    };
    let mut out = serde_json::Map::new();
    for (k, v) in m {
        let kept = match k.as_str() {
            "hostNetwork" | "restartPolicy" => v.clone(),
            "containers" | "initContainers" => keep_names(v, &["name", "ports", "restartPolicy"]),
            "volumes" | "imagePullSecrets" => keep_names(v, &["name"]),
            _ => continue,
        };
        out.insert(k.clone(), kept);
    }
    Value::Object(out)
}
