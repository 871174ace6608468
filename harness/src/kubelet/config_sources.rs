//! The ConfigMaps and Secrets a pod needs before it can start: env sources
//! (else CreateContainerConfigError) and volumes (else no sandbox).

use serde_json::Value;

use super::lookup::{list, str_at};
use super::run_context::RunContext;

/// The message of the kubelet's CreateContainerConfigError when an env
/// source (ConfigMap or Secret, not optional) does not exist.
pub(super) fn missing_env_source(
    container: &Value,
    namespace: &str,
    ctx: &RunContext,
) -> Option<String> {
    let refs = list(container, "env")
        .iter()
        .filter_map(|e| e.get("valueFrom"))
        .flat_map(|v| {
            [
                ("configmap", v.get("configMapKeyRef")),
                ("secret", v.get("secretKeyRef")),
            ]
        })
        .chain(list(container, "envFrom").iter().flat_map(|e| {
            [
                ("configmap", e.get("configMapRef")),
                ("secret", e.get("secretRef")),
            ]
        }));
    for (kind, source) in refs {
        let Some(source) = source.filter(|s| s.is_object()) else {
            continue;
        };
        if optional(source) {
            continue;
        }
        let name = str_at(source, "/name");
        let exists = match kind {
            "configmap" => (ctx.config_map_exists)(namespace, name),
            _ => (ctx.secret_exists)(namespace, name),
        };
        if !exists {
            return Some(format!("{kind} \"{name}\" not found"));
        }
    }
    None
}

/// Whether every ConfigMap and Secret the pod's volumes need exists: the
/// kubelet does not create the sandbox until they are mounted.
pub(super) fn volumes_mountable(pod: &Value, namespace: &str, ctx: &RunContext) -> bool {
    let config_map =
        |s: &Value| optional(s) || (ctx.config_map_exists)(namespace, str_at(s, "/name"));
    let secret =
        |s: &Value, key: &str| optional(s) || (ctx.secret_exists)(namespace, str_at(s, key));
    list(pod.get("spec").unwrap_or(&Value::Null), "volumes")
        .iter()
        .all(|v| {
            let projected = list(v.get("projected").unwrap_or(&Value::Null), "sources");
            v.get("configMap")
                .filter(|s| s.is_object())
                .is_none_or(config_map)
                && v.get("secret")
                    .filter(|s| s.is_object())
                    .is_none_or(|s| secret(s, "/secretName"))
                && projected.iter().all(|p| {
                    p.get("configMap")
                        .filter(|s| s.is_object())
                        .is_none_or(config_map)
                        && p.get("secret")
                            .filter(|s| s.is_object())
                            .is_none_or(|s| secret(s, "/name"))
                })
        })
}

fn optional(source: &Value) -> bool {
    source.get("optional").and_then(Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::kubelet::testing::{
        condition, container, envoy, line, node, pod, pod_named, probe, run, run_on, NODE_IP,
    };
    use crate::probe::PROBE_IMAGE;

    #[test]
    fn missing_config_map_volume_blocks_the_sandbox() {
        let spec = json!({
            "containers": [probe("backend", &["--listen", "8080"]), envoy("10000")],
            "volumes": [{"name": "envoy-config", "configMap": {"name": "envoy-config", "defaultMode": 420}}],
        });
        let pod = pod(spec);
        let status = run(&pod);
        assert_eq!(status["phase"], "Pending");
        assert!(status.get("podIP").is_none());
        assert_eq!(status["hostIP"], NODE_IP);
        let envoy = container(&status, "containerStatuses", "envoy");
        assert_eq!(
            envoy,
            &json!({"name": "envoy", "state": {"waiting": {"reason": "ContainerCreating"}},
                    "lastState": {}, "ready": false, "restartCount": 0, "image": PROBE_IMAGE,
                    "imageID": "", "started": false})
        );
        assert_eq!(
            condition(&status, "PodReadyToStartContainers")["status"],
            "False"
        );
        assert_eq!(condition(&status, "Initialized")["status"], "True");
        assert_eq!(
            condition(&status, "Ready")["message"],
            "containers with unready status: [backend envoy]"
        );
        assert_eq!(
            line(&pod, &status),
            "backend-5d8f-abcde 0/2 ContainerCreating"
        );

        let status = run_on(&pod, &mut node(), &["envoy-config"]);
        assert_eq!(status["phase"], "Running");
    }

    #[test]
    fn volume_sources_checked_like_the_kubelet() {
        let with =
            |volume: Value| pod(json!({"containers": [probe("a", &[])], "volumes": [volume]}));
        let phase = |volume: Value| run(&with(volume))["phase"].clone();
        assert_eq!(
            phase(json!({"name": "v", "configMap": {"name": "x", "optional": true}})),
            "Running"
        );
        assert_eq!(
            phase(json!({"name": "v", "secret": {"secretName": "x"}})),
            "Pending"
        );
        assert_eq!(
            phase(json!({"name": "v", "secret": {"secretName": "x", "optional": true}})),
            "Running"
        );
        assert_eq!(phase(json!({"name": "v", "emptyDir": {}})), "Running");
        assert_eq!(
            phase(json!({"name": "v", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token"}}, {"downwardAPI": {"items": []}}]}})),
            "Running"
        );
        assert_eq!(
            phase(json!({"name": "v", "projected": {"sources": [{"configMap": {"name": "x"}}]}})),
            "Pending"
        );
        assert_eq!(
            phase(json!({"name": "v", "projected": {"sources": [{"secret": {"name": "x"}}]}})),
            "Pending"
        );
        // With init containers the kubelet says PodInitializing instead.
        let pod = pod(
            json!({"initContainers": [probe("i", &[])], "containers": [probe("a", &[])],
                             "volumes": [{"name": "v", "configMap": {"name": "x"}}]}),
        );
        let status = run(&pod);
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 0/1 Init:0/1");
    }

    #[test]
    fn missing_env_source_is_a_config_error() {
        let mut c = probe("app", &[]);
        c["envFrom"] = json!([{"configMapRef": {"name": "settings"}}]);
        let pod = pod(json!({"containers": [c]}));
        let status = run(&pod);
        assert_eq!(
            container(&status, "containerStatuses", "app")["state"],
            json!({"waiting": {"reason": "CreateContainerConfigError",
                               "message": "configmap \"settings\" not found"}})
        );
        assert_eq!(status["phase"], "Pending");
        assert_eq!(
            line(&pod, &status),
            "backend-5d8f-abcde 0/1 CreateContainerConfigError"
        );
        let status = run_on(&pod, &mut node(), &["settings"]);
        assert_eq!(status["phase"], "Running");

        let mut c = probe("app", &[]);
        c["env"] =
            json!([{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]);
        let status = run(&pod_named("p", json!({"containers": [c.clone()]})));
        assert_eq!(
            container(&status, "containerStatuses", "app")["state"]["waiting"]["message"],
            "secret \"s\" not found"
        );
        c["env"][0]["valueFrom"]["secretKeyRef"]["optional"] = json!(true);
        assert_eq!(
            run(&pod_named("p", json!({"containers": [c]})))["phase"],
            "Running"
        );
    }
}
