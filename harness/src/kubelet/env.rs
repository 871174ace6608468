//! A container's environment: Kubernetes `$(VAR)` expansion, and the env
//! entries the kubelet resolves (values and the downward API's fieldRefs).

use std::collections::BTreeMap;

use serde_json::Value;

use super::lookup::{list, str_at};

/// Kubernetes `$(VAR)` expansion, as applied to command, args and env values:
/// a defined `$(VAR)` is replaced, an undefined one kept as written, `$$` is
/// an escaped `$` (so `$$(VAR)` gives the literal `$(VAR)`), and an
/// unterminated `$(` is kept.
pub fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            let Some(end) = inner.find(')') else {
                out.push_str(&rest[i..]);
                return out;
            };
            let name = &inner[..end];
            match env.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A container's environment as the kubelet builds it: entries in order,
/// each `value` expanded against the entries before it, `fieldRef`s resolved
/// from the pod (podIP and hostIP from its status). Other `valueFrom` kinds
/// (ConfigMap and Secret keys, resources) are skipped: their values are not
/// known here.
pub fn container_env(container: &Value, pod: &Value) -> BTreeMap<String, String> {
    env_with(container, pod, &Facts::from_pod(pod))
}

/// Values a fieldRef can ask for that are not in the pod spec.
pub(super) struct Facts {
    pub(super) pod_ip: String,
    pub(super) host_ip: String,
    pub(super) node_name: String,
}

impl Facts {
    fn from_pod(pod: &Value) -> Facts {
        Facts {
            pod_ip: str_at(pod, "/status/podIP").to_string(),
            host_ip: str_at(pod, "/status/hostIP").to_string(),
            node_name: str_at(pod, "/spec/nodeName").to_string(),
        }
    }
}

pub(super) fn env_with(container: &Value, pod: &Value, facts: &Facts) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for entry in list(container, "env") {
        let name = str_at(entry, "/name");
        if name.is_empty() {
            continue;
        }
        let value = if let Some(path) = entry.pointer("/valueFrom/fieldRef/fieldPath") {
            match field_ref(pod, path.as_str().unwrap_or(""), facts) {
                Some(v) => v,
                None => continue,
            }
        } else if entry.get("valueFrom").is_some_and(|v| !v.is_null()) {
            continue;
        } else {
            expand(str_at(entry, "/value"), &env)
        };
        env.insert(name.to_string(), value);
    }
    env
}

/// The downward API for env: a known path resolves (to "" when the pod lacks
/// the value, as the kubelet does); an unknown one does not.
fn field_ref(pod: &Value, path: &str, facts: &Facts) -> Option<String> {
    let from_pod = |pointer: &str| Some(str_at(pod, pointer).to_string());
    match path {
        "metadata.name" => from_pod("/metadata/name"),
        "metadata.namespace" => from_pod("/metadata/namespace"),
        "metadata.uid" => from_pod("/metadata/uid"),
        "spec.nodeName" => Some(facts.node_name.clone()),
        "spec.serviceAccountName" => from_pod("/spec/serviceAccountName"),
        "status.podIP" | "status.podIPs" => Some(facts.pod_ip.clone()),
        "status.hostIP" | "status.hostIPs" => Some(facts.host_ip.clone()),
        _ => {
            let (map, key) = subscript(path, "metadata.labels")
                .map(|k| ("labels", k))
                .or_else(|| subscript(path, "metadata.annotations").map(|k| ("annotations", k)))?;
            let value = pod
                .get("metadata")
                .and_then(|m| m.get(map))
                .and_then(|m| m.get(key));
            Some(value.and_then(Value::as_str).unwrap_or("").to_string())
        }
    }
}

/// `metadata.labels['app']` -> `app`.
fn subscript<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let inner = path
        .strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?;
    inner
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kubelet::testing::{container, pod, run};
    use crate::probe::PROBE_IMAGE;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion_rules() {
        let env = vars(&[("PORT", "10001"), ("EMPTY", "")]);
        let cases = [
            ("$(PORT)", "10001"),
            ("--listen=$(PORT)", "--listen=10001"),
            ("$(PORT)$(PORT)", "1000110001"),
            ("$(MISSING)", "$(MISSING)"),
            ("$(EMPTY)x", "x"),
            ("$$(PORT)", "$(PORT)"),
            ("$$$(PORT)", "$10001"),
            ("$$", "$"),
            ("$", "$"),
            ("a$b", "a$b"),
            ("$(PORT", "$(PORT"),
            ("x $( y", "x $( y"),
            ("$()", "$()"),
            ("$(PO$(PORT))", "$(PO$(PORT))"),
            ("ünï$(PORT)çødé", "ünï10001çødé"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &env), want, "{input}");
        }
    }

    #[test]
    fn env_in_order_with_field_refs() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-9",
                         "labels": {"app": "web"}, "annotations": {"team": "core"}},
            "spec": {"nodeName": "kind-worker", "serviceAccountName": "web"},
            "status": {"podIP": "10.0.0.9", "hostIP": "172.18.0.3"},
        });
        let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
        let c = json!({"env": [
            {"name": "LATER", "value": "$(PORT)"},
            {"name": "PORT", "value": "10000"},
            {"name": "URL", "value": "http://$(POD_IP):$(PORT)"},
            {"name": "POD_IP", "valueFrom": field("status.podIP")},
            {"name": "NAME", "valueFrom": field("metadata.name")},
            {"name": "NS", "valueFrom": field("metadata.namespace")},
            {"name": "UID", "valueFrom": field("metadata.uid")},
            {"name": "NODE", "valueFrom": field("spec.nodeName")},
            {"name": "SA", "valueFrom": field("spec.serviceAccountName")},
            {"name": "HOST", "valueFrom": field("status.hostIP")},
            {"name": "APP", "valueFrom": field("metadata.labels['app']")},
            {"name": "TEAM", "valueFrom": field("metadata.annotations['team']")},
            {"name": "NOLABEL", "valueFrom": field("metadata.labels['nope']")},
            {"name": "ODD", "valueFrom": field("spec.containers")},
            {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            {"name": "PORT", "value": "$(PORT)1"},
        ]});
        let env = container_env(&c, &pod);
        let want = vars(&[
            ("LATER", "$(PORT)"),
            ("PORT", "100001"),
            ("URL", "http://$(POD_IP):10000"),
            ("POD_IP", "10.0.0.9"),
            ("NAME", "web-1"),
            ("NS", "shop"),
            ("UID", "u-9"),
            ("NODE", "kind-worker"),
            ("SA", "web"),
            ("HOST", "172.18.0.3"),
            ("APP", "web"),
            ("TEAM", "core"),
            ("NOLABEL", ""),
        ]);
        assert_eq!(env, want);
    }

    #[test]
    fn run_pod_resolves_ips_from_the_node_and_context() {
        let c = json!({"name": "app", "image": PROBE_IMAGE,
                       "args": ["--listen", "$(PORT)"],
                       "env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                               {"name": "PORT", "value": "$(IP)"}]});
        // PORT becomes the pod IP, which is no port: the probe refuses.
        let status = run(&pod(json!({"restartPolicy": "Never", "containers": [c]})));
        assert_eq!(
            container(&status, "containerStatuses", "app")["state"]["terminated"]["exitCode"],
            2
        );
    }
}
