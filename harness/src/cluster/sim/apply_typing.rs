//! What server-side apply refuses before anything else looks at a built-in
//! object: an associative list (`x-kubernetes-list-type: map`) that holds
//! two entries with the same key, in structured-merge-diff's words
//! (`.spec.containers[name="app"].env: duplicate entries for key
//! [name="PORT"]`). Only named objects are applied this way; a POST
//! (generateName) keeps both entries, and the registry then warns about
//! some of them (`registry_warnings.rs`). Modelled for pod specs, the
//! lists and keys of Kubernetes v1.37's OpenAPI; the errors come in the
//! walk's order, fields sorted by name.

use serde_json::Value;

/// A pod spec's associative lists (sorted by field name) and their keys.
const POD_SPEC_LISTS: &[(&str, &[&str])] = &[
    ("containers", &["name"]),
    ("ephemeralContainers", &["name"]),
    ("hostAliases", &["ip"]),
    ("imagePullSecrets", &["name"]),
    ("initContainers", &["name"]),
    ("resourceClaims", &["name"]),
    ("schedulingGates", &["name"]),
    (
        "topologySpreadConstraints",
        &["topologyKey", "whenUnsatisfiable"],
    ),
    ("volumes", &["name"]),
];

/// A container's associative lists (sorted by field name) and their keys.
const CONTAINER_LISTS: &[(&str, &[&str])] = &[
    ("env", &["name"]),
    ("ports", &["containerPort", "protocol"]),
    ("volumeDevices", &["devicePath"]),
    ("volumeMounts", &["mountPath"]),
];

/// Where a kind keeps its pod spec, as structured-merge-diff paths it.
fn pod_spec_path(kind: &str) -> Option<(&'static [&'static str], &'static str)> {
    Some(match kind {
        "Pod" => (&["spec"], ".spec"),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            (&["spec", "template", "spec"], ".spec.template.spec")
        }
        "CronJob" => (
            &["spec", "jobTemplate", "spec", "template", "spec"],
            ".spec.jobTemplate.spec.template.spec",
        ),
        "PodTemplate" => (&["template", "spec"], ".template.spec"),
        _ => return None,
    })
}

/// The errors of typing `object` (a built-in `kind`) for server-side apply.
pub fn duplicate_keys(kind: &str, object: &Value) -> Vec<String> {
    let Some((fields, path)) = pod_spec_path(kind) else {
        return Vec::new();
    };
    let mut spec = object;
    for f in fields {
        spec = &spec[*f];
    }
    let mut errs = Vec::new();
    for (list, keys) in POD_SPEC_LISTS {
        let here = format!("{path}.{list}");
        let entries = items(&spec[*list]);
        duplicates(entries, keys, &here, &mut errs);
        if list.ends_with("ontainers") {
            for item in entries {
                let at = format!("{here}{}", key_text(item, &["name"]));
                for (inner, inner_keys) in CONTAINER_LISTS {
                    duplicates(
                        items(&item[*inner]),
                        inner_keys,
                        &format!("{at}.{inner}"),
                        &mut errs,
                    );
                }
            }
        }
    }
    errs
}

/// Server-side apply's refusal of a named built-in object it cannot type
/// (duplicate keys in an associative list); a POST is not typed so.
pub fn refusal(object: &Value, api_kind: &crate::cluster::ApiKind) -> Option<String> {
    if crate::object::meta_str(object, "name").is_empty() {
        return None;
    }
    let errors = duplicate_keys(&api_kind.kind, object);
    if errors.is_empty() {
        return None;
    }
    let mut sent = object.clone();
    if api_kind.namespaced {
        sent["metadata"]["namespace"] = serde_json::json!(crate::object::namespace(object));
    }
    Some(super::custom_resources::undeclared_refusal(
        &sent, api_kind, &errors,
    ))
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn duplicates(items: &[Value], keys: &[&str], path: &str, errs: &mut Vec<String>) {
    let mut seen: Vec<String> = Vec::new();
    for item in items {
        let key = key_text(item, keys);
        if seen.contains(&key) {
            errs.push(format!("{path}: duplicate entries for key {key}"));
        } else {
            seen.push(key);
        }
    }
}

/// A list entry's key as `PathElement.String()` prints it: fields sorted
/// by name, strings quoted, numbers bare; a port's protocol defaults to
/// TCP, as the schema's key default says.
fn key_text(item: &Value, keys: &[&str]) -> String {
    let mut names: Vec<&str> = keys.to_vec();
    names.sort_unstable();
    let parts: Vec<String> = names
        .iter()
        .map(|k| {
            let v = match (&item[*k], *k) {
                (Value::Null, "protocol") => Value::String("TCP".into()),
                (v, _) => v.clone(),
            };
            let shown = match &v {
                Value::String(s) => format!("{s:?}"),
                Value::Null => "<nil>".to_string(),
                other => other.to_string(),
            };
            format!("{k}={shown}")
        })
        .collect();
    format!("[{}]", parts.join(","))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn duplicate_env_names_are_refused_as_kube_apiserver_words_it() {
        // Seen on kube-apiserver v1.37.2 for scenarios/warnings.yaml.
        let pod = json!({"spec": {"containers": [{"name": "app",
            "env": [{"name": "PORT", "value": "1"}, {"name": "PORT", "value": "2"}]}]}});
        assert_eq!(
            duplicate_keys("Pod", &pod),
            [r#".spec.containers[name="app"].env: duplicate entries for key [name="PORT"]"#]
        );
    }

    #[test]
    fn ports_are_keyed_by_number_and_protocol_with_tcp_by_default() {
        let d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [
            {"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"},
            {"containerPort": 80, "protocol": "UDP"}]}]}}}});
        assert_eq!(
            duplicate_keys("Deployment", &d),
            [
                r#".spec.template.spec.containers[name="a"].ports: duplicate entries for key [containerPort=80,protocol="TCP"]"#
            ]
        );
    }

    #[test]
    fn lists_are_walked_in_field_order_and_other_kinds_are_not_typed() {
        let pod = json!({"spec": {
            "volumes": [{"name": "v"}, {"name": "v"}],
            "containers": [{"name": "a"}, {"name": "a"}],
            "initContainers": [{"name": "i", "volumeMounts": [{"mountPath": "/x"}, {"mountPath": "/x"}]}]}});
        assert_eq!(
            duplicate_keys("Pod", &pod),
            [
                r#".spec.containers: duplicate entries for key [name="a"]"#,
                r#".spec.initContainers[name="i"].volumeMounts: duplicate entries for key [mountPath="/x"]"#,
                r#".spec.volumes: duplicate entries for key [name="v"]"#,
            ]
        );
        assert!(duplicate_keys("ConfigMap", &pod).is_empty());
        assert!(
            duplicate_keys("Pod", &json!({"spec": {"containers": [{"name": "a"}]}})).is_empty()
        );
    }
}
