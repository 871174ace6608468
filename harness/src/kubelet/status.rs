//! Rendering the settled pod as a PodStatus object: phase, conditions, IPs,
//! container statuses and QoS class, fields in the API's order.

use serde_json::{json, Map, Value};

use super::container::{Ctr, Exit, State};
use super::lookup::{list, str_at};
use super::phase::{conditions, phase};
use super::pod::{PodInfo, PodRun, Progress};
use super::qos::qos_class;
use super::timestamp::TIMESTAMP;

pub(super) fn render_status(info: &PodInfo, pod: &PodRun) -> Value {
    let phase = phase(pod, info.restart_policy);
    let mut s = Map::new();
    if let Some(g) = info
        .pod
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
    {
        s.insert("observedGeneration".into(), g.into());
    }
    s.insert("phase".into(), phase.into());
    s.insert("conditions".into(), conditions(info, pod, phase).into());
    s.insert("hostIP".into(), info.facts.host_ip.clone().into());
    s.insert("hostIPs".into(), json!([{"ip": info.facts.host_ip}]));
    // The pod gets its IP with its sandbox.
    if pod.progress != Progress::NoSandbox {
        s.insert("podIP".into(), info.facts.pod_ip.clone().into());
        s.insert("podIPs".into(), json!([{"ip": info.facts.pod_ip}]));
    }
    s.insert("startTime".into(), TIMESTAMP.into());
    let label = info.label();
    if !pod.inits.is_empty() {
        let statuses: Vec<Value> = pod
            .inits
            .iter()
            .map(|c| container_status(c, &label))
            .collect();
        s.insert("initContainerStatuses".into(), statuses.into());
    }
    if !pod.apps.is_empty() {
        // The kubelet sorts app container statuses by name (init container
        // statuses keep the spec's order); seen on kind, where an injected
        // `envoy` comes before `web`.
        let mut statuses: Vec<Value> = pod
            .apps
            .iter()
            .map(|c| container_status(c, &label))
            .collect();
        statuses.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        s.insert("containerStatuses".into(), statuses.into());
    }
    s.insert("qosClass".into(), qos_class(info.pod).into());
    Value::Object(s)
}

fn container_id(c: &Ctr) -> String {
    format!("containerd://{}", c.name)
}

/// A ContainerStatus, fields in the API's order.
fn container_status(c: &Ctr, pod_label: &str) -> Value {
    let image = str_at(c.spec, "/image");
    let terminated = |e: &Exit| {
        let mut t = Map::new();
        t.insert("exitCode".into(), e.code.into());
        t.insert("reason".into(), e.reason().into());
        if let Some(m) = &e.message {
            t.insert("message".into(), m.clone().into());
        }
        t.insert("startedAt".into(), TIMESTAMP.into());
        t.insert("finishedAt".into(), TIMESTAMP.into());
        t.insert("containerID".into(), container_id(c).into());
        json!({ "terminated": t })
    };
    let state = match &c.state {
        State::Waiting { reason, message } => {
            let mut w = Map::new();
            w.insert("reason".into(), reason.clone().into());
            if let Some(m) = message {
                w.insert("message".into(), m.clone().into());
            }
            json!({ "waiting": w })
        }
        State::Running => json!({"running": {"startedAt": TIMESTAMP}}),
        State::Terminated(e) => terminated(e),
        State::CrashLoop(_) => json!({"waiting": {
            "reason": "CrashLoopBackOff",
            "message": format!("back-off 10s restarting failed container={} pod={pod_label}", c.name),
        }}),
    };
    let last_state = match &c.state {
        State::CrashLoop(e) => terminated(e),
        _ => json!({}),
    };
    let mut s = Map::new();
    s.insert("name".into(), c.name.clone().into());
    s.insert("state".into(), state);
    s.insert("lastState".into(), last_state);
    s.insert("ready".into(), c.ready.into());
    s.insert("restartCount".into(), c.restart_count().into());
    s.insert("image".into(), image.into());
    let image_id = if c.ever_ran() {
        image_id(image)
    } else {
        String::new()
    };
    s.insert("imageID".into(), image_id.into());
    if c.ever_ran() {
        s.insert("containerID".into(), container_id(c).into());
    }
    s.insert("started".into(), c.started.into());
    let mounts = volume_mount_statuses(c.spec);
    if !mounts.is_empty() {
        s.insert("volumeMounts".into(), mounts.into());
    }
    Value::Object(s)
}

/// A placeholder digest reference for a pulled image.
fn image_id(image: &str) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    // Drop a tag (a colon after the last slash; an earlier one is a
    // registry port).
    let repo = match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    };
    format!("{repo}@sha256:{}", "0".repeat(64))
}

/// The kubelet reports each mount back, with how read-only it ended up.
fn volume_mount_statuses(container: &Value) -> Vec<Value> {
    list(container, "volumeMounts")
        .iter()
        .map(|m| {
            let mut s = Map::new();
            s.insert("name".into(), str_at(m, "/name").into());
            s.insert("mountPath".into(), str_at(m, "/mountPath").into());
            if m.get("readOnly").and_then(Value::as_bool) == Some(true) {
                s.insert("readOnly".into(), true.into());
                let recursive = match str_at(m, "/recursiveReadOnly") {
                    "Enabled" | "IfPossible" => "Enabled",
                    _ => "Disabled",
                };
                s.insert("recursiveReadOnly".into(), recursive.into());
            }
            Value::Object(s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kubelet::testing::{pod, probe, run, NODE_IP, POD_IP};
    use crate::kubelet::timestamp::TIMESTAMP;
    use crate::probe::PROBE_IMAGE;

    #[test]
    fn full_status_shape() {
        let mut app = probe("app", &["--listen", "8080"]);
        app["volumeMounts"] = json!([
            {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
             "readOnly": true},
            {"name": "data", "mountPath": "/data"},
        ]);
        app["resources"] = json!({"limits": {"cpu": "100m", "memory": "64Mi"}});
        let status = run(&pod(json!({"containers": [app]})));
        let condition = |kind: &str| {
            json!({"type": kind, "observedGeneration": 1, "status": "True", "lastProbeTime": null,
                   "lastTransitionTime": TIMESTAMP})
        };
        let expected = json!({
            "observedGeneration": 1,
            "phase": "Running",
            "conditions": [condition("PodReadyToStartContainers"), condition("Initialized"),
                           condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": TIMESTAMP,
            "containerStatuses": [{
                "name": "app",
                "state": {"running": {"startedAt": TIMESTAMP}},
                "lastState": {},
                "ready": true,
                "restartCount": 0,
                "image": PROBE_IMAGE,
                "imageID": format!("injector-harness/probe@sha256:{}", "0".repeat(64)),
                "containerID": "containerd://app",
                "started": true,
                "volumeMounts": [
                    {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                     "readOnly": true, "recursiveReadOnly": "Disabled"},
                    {"name": "data", "mountPath": "/data"},
                ],
            }],
            "qosClass": "Guaranteed",
        });
        assert_eq!(status, expected);
        // Key order matters to readers of YAML snapshots too.
        let keys: Vec<&String> = status.as_object().unwrap().keys().collect();
        let want: Vec<&String> = expected.as_object().unwrap().keys().collect();
        assert_eq!(keys, want);
    }
}
