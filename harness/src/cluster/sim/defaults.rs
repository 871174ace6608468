//! The defaults a created pod shows, applied the way the apiserver does:
//! API defaulting on decode (again after each webhook patch, since the
//! patched JSON is decoded anew), and the built-in admission plugins that run
//! before webhooks (ServiceAccount, DefaultTolerationSeconds, Priority).
//! Every function here is idempotent.

use serde_json::{json, Map, Value};

fn obj(v: &mut Value) -> Option<&mut Map<String, Value>> {
    v.as_object_mut()
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

/// API defaulting for a pod (what decoding into the internal type adds).
pub fn pod(pod: &mut Value) {
    if let Some(spec) = pod.get_mut("spec") {
        requests_from_limits(spec);
        pod_spec(spec);
    }
}

/// A container's limit stands in for a request it leaves out. Pods only:
/// the apiserver does not do this for workload templates. (Pod-level
/// `spec.resources` defaulting is not modelled.)
fn requests_from_limits(spec: &mut Value) {
    for key in ["initContainers", "containers"] {
        for c in spec
            .get_mut(key)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(limits) = c
                .pointer("/resources/limits")
                .and_then(Value::as_object)
                .cloned()
            else {
                continue;
            };
            let Some(resources) = c.get_mut("resources").and_then(obj) else {
                continue;
            };
            let requests = resources.entry("requests").or_insert_with(|| json!({}));
            if let Some(requests) = obj(requests) {
                for (k, v) in limits {
                    requests.entry(k).or_insert(v);
                }
            }
        }
    }
}

/// API defaulting for a pod spec, also used for workload templates.
pub fn pod_spec(spec: &mut Value) {
    let Some(s) = obj(spec) else { return };
    set_default(s, "restartPolicy", json!("Always"));
    set_default(s, "terminationGracePeriodSeconds", json!(30));
    set_default(s, "dnsPolicy", json!("ClusterFirst"));
    set_default(s, "securityContext", json!({}));
    set_default(s, "schedulerName", json!("default-scheduler"));
    set_default(s, "enableServiceLinks", json!(true));
    // serviceAccount mirrors serviceAccountName (deprecated, still set).
    if let Some(sa) = s
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        set_default(s, "serviceAccount", json!(sa));
    }
    let host_network = s.get("hostNetwork") == Some(&Value::Bool(true));
    for key in ["initContainers", "containers"] {
        if let Some(list) = s.get_mut(key).and_then(Value::as_array_mut) {
            for c in list {
                container(c);
                // On the host network a container port is a host port.
                if host_network {
                    for p in c
                        .get_mut("ports")
                        .and_then(Value::as_array_mut)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(port) = p.get("containerPort").cloned() {
                            if let Some(m) = p.as_object_mut() {
                                set_default(m, "hostPort", port);
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(vols) = s.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in vols {
            volume(v);
        }
    }
}

fn container(c: &mut Value) {
    let Some(m) = obj(c) else { return };
    let image = m.get("image").and_then(Value::as_str).unwrap_or("");
    let pull = crate::images::default_pull_policy(image);
    set_default(m, "imagePullPolicy", json!(pull));
    set_default(m, "resources", json!({}));
    set_default(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(m, "terminationMessagePolicy", json!("File"));
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(obj) {
            set_default(p, "protocol", json!("TCP"));
        }
    }
    if let Some(env) = m.get_mut("env").and_then(Value::as_array_mut) {
        for e in env {
            if let Some(f) = e.pointer_mut("/valueFrom/fieldRef").and_then(obj) {
                set_default(f, "apiVersion", json!("v1"));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(probe).and_then(obj) {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            if let Some(h) = p.get_mut("httpGet").and_then(obj) {
                set_default(h, "scheme", json!("HTTP"));
            }
        }
    }
}

fn volume(v: &mut Value) {
    let Some(m) = obj(v) else { return };
    // A volume that names no source is an emptyDir (the API's
    // SetDefaults_Volume).
    if m.keys().all(|k| k == "name") {
        m.insert("emptyDir".into(), json!({}));
    }
    for source in ["configMap", "secret"] {
        if let Some(s) = m.get_mut(source).and_then(obj) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(p) = m.get_mut("projected").and_then(obj) {
        set_default(p, "defaultMode", json!(420));
    }
}

/// The ServiceAccount admission plugin: the service account name and its
/// projected token volume, mounted into every container that lacks it. It
/// runs again after a webhook changed the pod, so an injected container
/// gets the mount too.
pub fn service_account(pod: &mut Value, token_volume: &str) {
    let Some(spec) = pod.get_mut("spec").and_then(obj) else {
        return;
    };
    set_default(spec, "serviceAccountName", json!("default"));
    set_default(spec, "serviceAccount", json!("default"));
    if spec.get("automountServiceAccountToken") == Some(&Value::Bool(false)) {
        return;
    }
    let mount_path = "/var/run/secrets/kubernetes.io/serviceaccount";
    let vols = spec.entry("volumes").or_insert_with(|| json!([]));
    if let Some(vols) = vols.as_array_mut() {
        if !vols.iter().any(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("kube-api-access-"))
        }) {
            vols.push(json!({
                "name": token_volume,
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                    ]
                }
            }));
        }
    }
    for key in ["initContainers", "containers"] {
        if let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for c in list.iter_mut().filter_map(obj) {
                let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
                if let Some(mounts) = mounts.as_array_mut() {
                    if !mounts.iter().any(|m| m["mountPath"] == mount_path) {
                        mounts.push(json!({"name": token_volume, "readOnly": true, "mountPath": mount_path}));
                    }
                }
            }
        }
    }
}

/// The DefaultTolerationSeconds admission plugin.
pub fn tolerations_and_priority(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(obj) else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if let Some(list) = tolerations.as_array_mut() {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            if !list.iter().any(|t| t["key"] == key) {
                list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
}

/// The Priority admission plugin on CREATE: the priority and preemption
/// policy come from the pod's PriorityClass, or with none named from the
/// global default class (lowest value if several), whose name the pod then
/// gets; with no default class, 0 and PreemptLowerPriority. A pod may not
/// state other values itself. `classes` are the stored PriorityClasses
/// besides the two system ones every cluster has. `Err` is the refusal's
/// reason, to follow `pods "<name>" is forbidden: `.
pub fn priority(pod: &mut Value, classes: &[Value]) -> Result<(), String> {
    let Some(spec) = pod.get_mut("spec").and_then(obj) else {
        return Ok(());
    };
    let class = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let policy_of = |c: &Value| {
        c["preemptionPolicy"]
            .as_str()
            .unwrap_or("PreemptLowerPriority")
            .to_string()
    };
    let (name, value, policy): (String, i64, String) = match class.as_str() {
        "" => {
            let default = classes
                .iter()
                .filter(|c| c["globalDefault"] == true)
                .min_by_key(|c| c["value"].as_i64().unwrap_or(0));
            match default {
                Some(c) => (
                    crate::object::meta_str(c, "name").to_string(),
                    c["value"].as_i64().unwrap_or(0),
                    policy_of(c),
                ),
                None => (String::new(), 0, "PreemptLowerPriority".into()),
            }
        }
        "system-cluster-critical" => (class.clone(), 2_000_000_000, "PreemptLowerPriority".into()),
        "system-node-critical" => (class.clone(), 2_000_001_000, "PreemptLowerPriority".into()),
        other => match classes
            .iter()
            .find(|c| crate::object::meta_str(c, "name") == other)
        {
            Some(c) => (
                class.clone(),
                c["value"].as_i64().unwrap_or(0),
                policy_of(c),
            ),
            None => return Err(format!("no PriorityClass with name {other} was found")),
        },
    };
    if !name.is_empty() {
        spec.insert("priorityClassName".into(), json!(name));
    }
    if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
        if given != value {
            return Err(format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"));
        }
    }
    if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str) {
        if given != policy {
            return Err(format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"));
        }
    }
    spec.insert("priority".into(), json!(value));
    spec.insert("preemptionPolicy".into(), json!(policy));
    Ok(())
}

/// Defaults of a Deployment (apps/v1) and its template.
pub fn deployment(d: &mut Value) {
    if let Some(spec) = d.get_mut("spec").and_then(obj) {
        set_default(spec, "replicas", json!(1));
        set_default(spec, "revisionHistoryLimit", json!(10));
        set_default(spec, "progressDeadlineSeconds", json!(600));
        set_default(
            spec,
            "strategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
        );
    }
    template(d);
}

/// Defaults shared by every workload's pod template.
pub fn template(w: &mut Value) {
    if let Some(spec) = w.pointer_mut("/spec/template/spec") {
        pod_spec(spec);
    }
    if let Some(spec) = w.pointer_mut("/spec/jobTemplate/spec/template/spec") {
        pod_spec(spec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults_are_idempotent_and_kubernetes_like() {
        let mut p = json!({"spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}], "readinessProbe": {"httpGet": {"port": 80}}},
            {"name": "b", "image": "probe:v1", "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}
        ], "volumes": [{"name": "c", "configMap": {"name": "c"}}]}});
        pod(&mut p);
        let once = p.clone();
        pod(&mut p);
        assert_eq!(p, once);
        let a = &p["spec"]["containers"][0];
        assert_eq!(a["imagePullPolicy"], "Always");
        assert_eq!(a["ports"][0]["protocol"], "TCP");
        assert_eq!(a["readinessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(a["readinessProbe"]["failureThreshold"], 3);
        let b = &p["spec"]["containers"][1];
        assert_eq!(b["imagePullPolicy"], "IfNotPresent");
        assert_eq!(b["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(p["spec"]["volumes"][0]["configMap"]["defaultMode"], 420);
        assert_eq!(p["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn host_network_ports_default_their_host_port() {
        let mut p = json!({"spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 9100}]}]}});
        pod(&mut p);
        assert_eq!(p["spec"]["containers"][0]["ports"][0]["hostPort"], 9100);
    }

    #[test]
    fn service_account_mounts_only_existing_containers() {
        let mut p = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        service_account(&mut p, "kube-api-access-abcde");
        service_account(&mut p, "kube-api-access-zzzzz");
        assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 1);
        assert_eq!(
            p["spec"]["containers"][0]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(p["spec"]["serviceAccountName"], "default");
    }
}
