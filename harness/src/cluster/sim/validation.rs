//! Pod validation after admission, with the apiserver's field paths and
//! wording: the object's metadata (`metadata.rs`), then the mistakes an
//! injector can make: duplicate container or volume names, invalid names,
//! mounts of volumes that do not exist, bad ports, misplaced restart
//! policies.

use std::collections::BTreeSet;

use serde_json::Value;

use super::metadata;

const LABEL_HELP: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// The sim's own check, not the injector's: a bug in the injector's name
/// helper must not pass here too.
fn is_label(name: &str) -> bool {
    metadata::dns1123_label(name).is_empty()
}

/// Checks a pod; `Err` carries the apiserver's message for the whole pod.
pub fn pod(pod: &Value, minor: crate::version::Minor) -> Result<(), String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let mut errs = metadata::on_create("Pod", &pod["metadata"], minor);
    let spec = &pod["spec"];
    let containers = spec["containers"].as_array();
    if containers.is_none_or(|c| c.is_empty()) {
        errs.push("spec.containers: Required value".to_string());
    }
    let volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["name"].as_str().unwrap_or(""))
        .collect();
    let mut seen_volumes = BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        if !is_label(v) {
            errs.push(format!(
                "spec.volumes[{i}].name: Invalid value: {v:?}: {LABEL_HELP}"
            ));
        } else if !seen_volumes.insert(*v) {
            errs.push(format!("spec.volumes[{i}].name: Duplicate value: {v:?}"));
        }
    }
    let mut seen_names = BTreeSet::new();
    for field in ["initContainers", "containers"] {
        for (i, c) in spec[field].as_array().into_iter().flatten().enumerate() {
            let path = format!("spec.{field}[{i}]");
            let cname = c["name"].as_str().unwrap_or("");
            if cname.is_empty() {
                errs.push(format!("{path}.name: Required value"));
            } else if !is_label(cname) {
                errs.push(format!(
                    "{path}.name: Invalid value: {cname:?}: {LABEL_HELP}"
                ));
            } else if !seen_names.insert(cname.to_string()) {
                errs.push(format!("{path}.name: Duplicate value: {cname:?}"));
            }
            if c["image"].as_str().unwrap_or("").trim().is_empty() {
                errs.push(format!("{path}.image: Required value"));
            }
            match (field, c["restartPolicy"].as_str()) {
                (_, None) => {}
                ("initContainers", Some("Always")) => {}
                ("initContainers", Some(other)) => errs.push(format!(
                    "{path}.restartPolicy: Unsupported value: {other:?}: supported values: \"Always\""
                )),
                (_, Some(_)) => errs.push(format!("{path}.restartPolicy: Forbidden: may not be set for non-init containers")),
            }
            let mut port_names = BTreeSet::new();
            for (j, p) in c["ports"].as_array().into_iter().flatten().enumerate() {
                let n = p["containerPort"].as_i64().unwrap_or(0);
                if !(1..=65535).contains(&n) {
                    errs.push(format!(
                        "{path}.ports[{j}].containerPort: Invalid value: {n}: must be between 1 and 65535, inclusive"
                    ));
                }
                if let Some(pn) = p["name"].as_str() {
                    if !port_names.insert(pn.to_string()) {
                        errs.push(format!("{path}.ports[{j}].name: Duplicate value: {pn:?}"));
                    }
                }
            }
            for (j, m) in c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let mname = m["name"].as_str().unwrap_or("");
                if !volumes.contains(&mname) {
                    errs.push(format!(
                        "{path}.volumeMounts[{j}].name: Not found: {mname:?}"
                    ));
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(metadata::invalid_message("Pod", name, &errs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The minor these tests were written against.
    const V34: crate::version::Minor = crate::version::Minor::new(34);
    use serde_json::json;

    #[test]
    fn a_valid_pod_passes() {
        let p = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {
            "containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
            "volumes": [{"name": "v", "emptyDir": {}}]}});
        assert_eq!(pod(&p, V34), Ok(()));
    }

    #[test]
    fn duplicates_and_dangling_mounts_are_reported_like_the_apiserver() {
        let p = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {
            "containers": [{"name": "envoy", "image": "x"}, {"name": "envoy", "image": "y", "volumeMounts": [{"name": "cfg", "mountPath": "/c"}]}]}});
        assert_eq!(
            pod(&p, V34),
            Err("Pod \"p\" is invalid: [spec.containers[1].name: Duplicate value: \"envoy\", spec.containers[1].volumeMounts[0].name: Not found: \"cfg\"]".into())
        );
        let p = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"initContainers": [{"name": "a", "image": "x"}], "containers": [{"name": "a", "image": "x"}]}});
        assert_eq!(
            pod(&p, V34),
            Err("Pod \"p\" is invalid: spec.containers[0].name: Duplicate value: \"a\"".into())
        );
    }

    #[test]
    fn restart_policy_rules() {
        let p = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [{"name": "a", "image": "x", "restartPolicy": "Always"}]}});
        assert!(pod(&p, V34)
            .unwrap_err()
            .contains("may not be set for non-init containers"));
        let p = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"initContainers": [{"name": "i", "image": "x", "restartPolicy": "Never"}], "containers": [{"name": "a", "image": "x"}]}});
        assert!(pod(&p, V34)
            .unwrap_err()
            .contains("Unsupported value: \"Never\""));
    }
}
