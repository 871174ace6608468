//! The warnings a registry strategy returns on create and update
//! (`WarningsOnCreate`/`WarningsOnUpdate`, mostly `pkg/api/pod/warnings.go`
//! of Kubernetes v1.37): computed on the object as admitted, so on what the
//! webhooks made of it, after validation passed and before the validating
//! plugins run. A pod's warnings go to whoever created it: for a bare pod
//! the scenario's client, for a controller's pod the controller (and no
//! snapshot). Pod updates warn nothing.
//!
//! Modelled: deprecated node labels (node selector, node affinity, topology
//! spread), null topology spread selectors, deprecated annotations
//! (including seccomp and, in templates, AppArmor), removed volume plugins,
//! duplicate host alias IPs and image pull secrets, fractional byte
//! quantities, env entries that hide an earlier one, duplicate and
//! overlapping ports and port names across containers, a negative grace
//! period, null pod (anti-)affinity selectors, and names that are not DNS
//! labels. Not modelled: overlapping projected paths, IP address formats,
//! label values in preferred node affinity, ephemeral volume claim specs.

use serde_json::{Map, Value};

use super::metadata::dns1123_label;
use crate::quantity::Quantity;

/// `WarningsOnCreate` of a Pod.
pub fn pod_create(pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let name = crate::object::meta_str(pod, "name");
    let msgs = dns1123_label(name);
    if !msgs.is_empty() {
        out.push(format!("metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; a DNS label is recommended: {}", go_list(&msgs)));
    }
    out.extend(pod_spec_and_meta("", &pod["spec"], &pod["metadata"], false));
    out
}

/// `WarningsOnCreate` (`old` is `None`) or `WarningsOnUpdate` of a pod
/// controller; nothing for other kinds. An update warns about the template
/// only when it bumps the generation, which any change of the spec does (a
/// DaemonSet's template generation: a change of the template).
pub fn controller(kind: &str, object: &Value, old: Option<&Value>) -> Vec<String> {
    let template = &object["spec"]["template"];
    let template_warnings = || {
        pod_spec_and_meta(
            "spec.template.",
            &template["spec"],
            &template["metadata"],
            true,
        )
    };
    let changed = match old {
        None => true,
        Some(old) if kind == "DaemonSet" => old["spec"]["template"] != *template,
        Some(old) => old["spec"] != object["spec"],
    };
    let mut out = Vec::new();
    match kind {
        "Deployment" | "ReplicaSet" | "Job" => {
            if old.is_none() {
                let msgs = dns1123_label(crate::object::meta_str(object, "name"));
                if !msgs.is_empty() {
                    out.push(format!("metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: {}", go_list(&msgs)));
                }
            }
            if changed {
                out.extend(template_warnings());
            }
        }
        "DaemonSet" if changed => out.extend(template_warnings()),
        "StatefulSet" => {
            if changed {
                out.extend(template_warnings());
            }
            if object["spec"]["revisionHistoryLimit"]
                .as_i64()
                .is_some_and(|n| n < 0)
            {
                out.push("spec.revisionHistoryLimit: a negative value retains all historical revisions; a value >= 0 is recommended".into());
            }
        }
        _ => {}
    }
    out
}

/// Go's `%v` of a string slice.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

const DEPRECATED_NODE_LABELS: &[(&str, &str)] = &[
    (
        "beta.kubernetes.io/arch",
        r#"deprecated since v1.14; use "kubernetes.io/arch" instead"#,
    ),
    (
        "beta.kubernetes.io/os",
        r#"deprecated since v1.14; use "kubernetes.io/os" instead"#,
    ),
    (
        "failure-domain.beta.kubernetes.io/region",
        r#"deprecated since v1.17; use "topology.kubernetes.io/region" instead"#,
    ),
    (
        "failure-domain.beta.kubernetes.io/zone",
        r#"deprecated since v1.17; use "topology.kubernetes.io/zone" instead"#,
    ),
    (
        "beta.kubernetes.io/instance-type",
        r#"deprecated since v1.17; use "node.kubernetes.io/instance-type" instead"#,
    ),
    ("app.kubernetes.io/created-by", "deprecated since v1.9"),
    (
        "scheduler.alpha.kubernetes.io/preferAvoidPods",
        "deprecated since v1.22; use Taints and Tolerations instead",
    ),
    (
        "node-role.kubernetes.io/master",
        r#"use "node-role.kubernetes.io/control-plane" instead"#,
    ),
];

fn node_label_deprecated(key: &str) -> Option<&'static str> {
    DEPRECATED_NODE_LABELS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, m)| *m)
}

const DEPRECATED_ANNOTATIONS: &[(&str, &str)] = &[
    (
        "scheduler.alpha.kubernetes.io/critical-pod",
        r#"non-functional in v1.16+; use the "priorityClassName" field instead"#,
    ),
    (
        "security.alpha.kubernetes.io/sysctls",
        r#"non-functional in v1.11+; use the "sysctls" field instead"#,
    ),
    (
        "security.alpha.kubernetes.io/unsafe-sysctls",
        r#"non-functional in v1.11+; use the "sysctls" field instead"#,
    ),
];

/// Volume plugins that are gone or going: the field, the name the
/// warning's path gives it, and what is said of it.
const DEPRECATED_VOLUMES: &[(&str, &str, &str)] = &[
    (
        "photonPersistentDisk",
        "photonPersistentDisk",
        "deprecated in v1.11, non-functional in v1.16+",
    ),
    (
        "gitRepo",
        "gitRepo",
        "deprecated in v1.11, and disabled by default in v1.33+",
    ),
    (
        "scaleIO",
        "scaleIO",
        "deprecated in v1.16, non-functional in v1.22+",
    ),
    (
        "flocker",
        "flocker",
        "deprecated in v1.22, non-functional in v1.25+",
    ),
    (
        "storageos",
        "storageOS",
        "deprecated in v1.22, non-functional in v1.25+",
    ),
    (
        "quobyte",
        "quobyte",
        "deprecated in v1.22, non-functional in v1.25+",
    ),
    (
        "glusterfs",
        "glusterfs",
        "deprecated in v1.25, non-functional in v1.26+",
    ),
    (
        "cephfs",
        "cephfs",
        "deprecated in v1.28, non-functional in v1.31+",
    ),
    (
        "rbd",
        "rbd",
        "deprecated in v1.28, non-functional in v1.31+",
    ),
];

const SECCOMP_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";
const APPARMOR_CONTAINER: &str = "container.apparmor.security.beta.kubernetes.io/";

fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The containers of a pod spec with their paths, in the order
/// `VisitContainersWithPath` walks them.
fn containers<'a>(prefix: &str, spec: &'a Value) -> Vec<(String, &'a Value)> {
    let mut out = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, c) in items(&spec[list]).iter().enumerate() {
            out.push((format!("{prefix}spec.{list}[{i}]"), c));
        }
    }
    out
}

/// `warningsForPodSpecAndMeta`: `prefix` is `""` for a pod and
/// `spec.template.` for a template.
fn pod_spec_and_meta(prefix: &str, spec: &Value, meta: &Value, template: bool) -> Vec<String> {
    let mut w = Vec::new();
    let empty = Map::new();
    let annotations = meta["annotations"].as_object().unwrap_or(&empty);

    for key in spec["nodeSelector"].as_object().unwrap_or(&empty).keys() {
        if let Some(msg) = node_label_deprecated(key) {
            w.push(format!("{prefix}spec.nodeSelector[{key}]: {msg}"));
        }
    }
    let node_affinity = &spec["affinity"]["nodeAffinity"];
    let term_warnings = |term: &Value, path: String, w: &mut Vec<String>| {
        for (i, e) in items(&term["matchExpressions"]).iter().enumerate() {
            let key = text(&e["key"]);
            if let Some(msg) = node_label_deprecated(key) {
                w.push(format!("{path}.matchExpressions[{i}].key: {key} is {msg}"));
            }
        }
    };
    for (i, term) in
        items(&node_affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"])
            .iter()
            .enumerate()
    {
        let path = format!("{prefix}spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{i}]");
        term_warnings(term, path, &mut w);
    }
    for (i, p) in items(&node_affinity["preferredDuringSchedulingIgnoredDuringExecution"])
        .iter()
        .enumerate()
    {
        let path = format!("{prefix}spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}].preference");
        term_warnings(&p["preference"], path, &mut w);
    }
    for (i, t) in items(&spec["topologySpreadConstraints"]).iter().enumerate() {
        let path = format!("{prefix}spec.topologySpreadConstraints[{i}]");
        let key = text(&t["topologyKey"]);
        if let Some(msg) = node_label_deprecated(key) {
            w.push(format!("{path}.topologyKey: {key} is {msg}"));
        }
        if t.get("labelSelector").is_none_or(Value::is_null) {
            w.push(format!(
                "{path}.labelSelector: a null labelSelector results in matching no pod"
            ));
        }
    }

    for (key, msg) in DEPRECATED_ANNOTATIONS {
        if annotations.contains_key(*key) {
            w.push(format!("{prefix}metadata.annotations[{key}]: {msg}"));
        }
    }

    for (i, v) in items(&spec["volumes"]).iter().enumerate() {
        for (field, shown, msg) in DEPRECATED_VOLUMES {
            if v.get(*field).is_some_and(|s| !s.is_null()) {
                w.push(format!("{prefix}spec.volumes[{i}].{shown}: {msg}"));
            }
        }
    }

    let mut ips = Vec::new();
    for (i, a) in items(&spec["hostAliases"]).iter().enumerate() {
        let ip = text(&a["ip"]);
        if ips.contains(&ip) {
            w.push(format!(
                "{prefix}spec.hostAliases[{i}].ip: duplicate ip {ip:?}"
            ));
        } else {
            ips.push(ip);
        }
    }
    let secrets = items(&spec["imagePullSecrets"]);
    let mut names = Vec::new();
    for (i, s) in secrets.iter().enumerate() {
        let name = text(&s["name"]);
        if names.contains(&name) {
            w.push(format!(
                "{prefix}spec.imagePullSecrets[{i}].name: duplicate name {name:?}"
            ));
        } else {
            names.push(name);
        }
    }
    for (i, s) in secrets.iter().enumerate() {
        if text(&s["name"]).is_empty() {
            w.push(format!(
                "{prefix}spec.imagePullSecrets[{i}].name: invalid empty name \"\""
            ));
        }
    }

    for resource in ["memory", "ephemeral-storage"] {
        if let Some(q) = fractional_bytes(&spec["overhead"][resource]) {
            w.push(format!("{prefix}spec.overhead[{resource}]: fractional byte value {q:?} is invalid, must be an integer"));
        }
    }

    if spec["securityContext"]["seccompProfile"].is_null() && annotations.contains_key(SECCOMP_POD)
    {
        w.push(format!(
            r#"{prefix}metadata.annotations[{SECCOMP_POD}]: non-functional in v1.27+; use the "seccompProfile" field instead"#
        ));
    }
    let all = containers(prefix, spec);
    for (path, c) in &all {
        let name = text(&c["name"]);
        let seccomp = format!("{SECCOMP_CONTAINER}{name}");
        if c["securityContext"]["seccompProfile"].is_null() && annotations.contains_key(&seccomp) {
            w.push(format!(
                r#"{prefix}metadata.annotations[{seccomp}]: non-functional in v1.27+; use the "seccompProfile" field instead"#
            ));
        }
        // A pod's AppArmor annotations are warned about on the way in
        // (version skew handling), not here; a template's here, unless the
        // pod-level field says the same.
        let apparmor = format!("{APPARMOR_CONTAINER}{name}");
        if template && c["securityContext"]["appArmorProfile"].is_null() {
            if let Some(a) = annotations.get(&apparmor).and_then(Value::as_str) {
                let pod_profile = &spec["securityContext"]["appArmorProfile"];
                if pod_profile.is_null() || *pod_profile != apparmor_field(a) {
                    w.push(format!(
                        r#"{prefix}metadata.annotations[{apparmor}]: deprecated since v1.30; use the "appArmorProfile" field instead"#
                    ));
                }
            }
        }
        for (list, resource) in [
            ("limits", "memory"),
            ("requests", "memory"),
            ("limits", "ephemeral-storage"),
            ("requests", "ephemeral-storage"),
        ] {
            if let Some(q) = fractional_bytes(&c["resources"][list][resource]) {
                w.push(format!("{path}.resources.{list}[{resource}]: fractional byte value {q:?} is invalid, must be an integer"));
            }
        }
        let env = items(&c["env"]);
        let mut seen: Vec<&str> = Vec::new();
        for (i, e) in env.iter().enumerate() {
            let name = text(&e["name"]);
            if !seen.contains(&name) {
                seen.push(name);
                continue;
            }
            // A later entry may build on the earlier (X="$(X):more").
            let reference = format!("$({name})");
            let value = text(&e["value"]);
            let bad = e.get("valueFrom").is_some_and(|v| !v.is_null())
                || value == reference
                || !value.contains(&reference);
            if bad {
                w.push(format!("{path}.env[{i}]: hides previous definition of {name:?}, which may be dropped when using apply"));
            }
        }
    }

    // Ports across every container, keyed by number and protocol.
    let mut by_port: Vec<(String, Vec<(String, &Value)>)> = Vec::new();
    for (path, c) in &all {
        for (i, p) in items(&c["ports"]).iter().enumerate() {
            let here = format!("{path}.ports[{i}]");
            let host_ip = text(&p["hostIP"]);
            let host_port = p["hostPort"].as_i64().unwrap_or(0);
            if !host_ip.is_empty() && host_port == 0 {
                w.push(format!(
                    "{here}: hostIP set without hostPort: {}",
                    go_port(p)
                ));
            }
            let key = format!(
                "{}/{}",
                p["containerPort"].as_i64().unwrap_or(0),
                text(&p["protocol"])
            );
            let slot = match by_port.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    by_port.push((key, Vec::new()));
                    by_port.len() - 1
                }
            };
            for (other_path, other) in &by_port[slot].1 {
                let other_ip = text(&other["hostIP"]);
                let other_port = other["hostPort"].as_i64().unwrap_or(0);
                let (a, b) = (host_ip.is_empty(), other_ip.is_empty());
                if host_ip == other_ip && host_port == other_port {
                    w.push(format!(
                        "{here}: duplicate port definition with {other_path}"
                    ));
                } else if host_port == 0 || other_port == 0 {
                    w.push(format!(
                        "{here}: overlapping port definition with {other_path}"
                    ));
                } else if host_port == other_port && (a || b) && !(a && b) {
                    w.push(format!(
                        "{here}: dangerously ambiguous port definition with {other_path}"
                    ));
                }
            }
            by_port[slot].1.push((here, p));
        }
    }
    let mut port_names: Vec<(&str, String)> = Vec::new();
    for (path, c) in &all {
        for (i, p) in items(&c["ports"]).iter().enumerate() {
            let name = text(&p["name"]);
            if name.is_empty() {
                continue;
            }
            let here = format!("{path}.ports[{i}]");
            match port_names.iter().find(|(n, _)| *n == name) {
                Some((_, other)) => w.push(format!("{here}: duplicate port name {name:?} with {other}, services and probes that select ports by name will use {other}")),
                None => port_names.push((name, here)),
            }
        }
    }

    if spec["terminationGracePeriodSeconds"]
        .as_i64()
        .is_some_and(|n| n < 0)
    {
        w.push(format!("{prefix}spec.terminationGracePeriodSeconds: must be >= 0; negative values are invalid and will be treated as 1"));
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let a = &spec["affinity"][kind];
        let path = format!("{prefix}spec.affinity.{kind}");
        for (i, t) in items(&a["requiredDuringSchedulingIgnoredDuringExecution"])
            .iter()
            .enumerate()
        {
            if t.get("labelSelector").is_none_or(Value::is_null) {
                w.push(format!("{path}.requiredDuringSchedulingIgnoredDuringExecution[{i}].labelSelector: a null labelSelector results in matching no pod"));
            }
        }
        for (i, t) in items(&a["preferredDuringSchedulingIgnoredDuringExecution"])
            .iter()
            .enumerate()
        {
            if t["podAffinityTerm"]
                .get("labelSelector")
                .is_none_or(Value::is_null)
            {
                w.push(format!("{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}].podAffinityTerm.labelSelector: a null labelSelector results in matching no pod"));
            }
        }
    }
    w
}

/// The quantity as the apiserver prints it, when it is not a whole number
/// (`MilliValue() % 1000 != 0`; MilliValue rounds up).
fn fractional_bytes(v: &Value) -> Option<String> {
    let q = Quantity::parse(v.as_str()?).ok()?;
    let nanos = q.nanos();
    let milli = nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) != 0);
    (milli % 1000 != 0).then(|| q.canonical())
}

/// Go's `%+v` of the internal `ContainerPort`.
fn go_port(p: &Value) -> String {
    format!(
        "{{Name:{} HostPort:{} ContainerPort:{} Protocol:{} HostIP:{}}}",
        text(&p["name"]),
        p["hostPort"].as_i64().unwrap_or(0),
        p["containerPort"].as_i64().unwrap_or(0),
        text(&p["protocol"]),
        text(&p["hostIP"])
    )
}

/// The `appArmorProfile` field an AppArmor annotation value stands for.
fn apparmor_field(annotation: &str) -> Value {
    match annotation {
        "runtime/default" => serde_json::json!({"type": "RuntimeDefault"}),
        "unconfined" => serde_json::json!({"type": "Unconfined"}),
        other => match other.strip_prefix("localhost/") {
            Some(profile) => {
                serde_json::json!({"type": "Localhost", "localhostProfile": profile})
            }
            None => Value::Null,
        },
    }
}

#[cfg(test)]
mod tests;
