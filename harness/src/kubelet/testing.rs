//! Helpers shared by the kubelet model's tests: pods of probe containers,
//! running them on a node, and reading the status back.

use serde_json::{json, Value};

use super::node_state::Node;
use super::run_context::RunContext;
use super::run_pod::run_pod;
use crate::probe::PROBE_IMAGE;
use crate::status::{format_line, pod_line};

pub(super) const NODE_IP: &str = "172.18.0.2";
pub(super) const POD_IP: &str = "10.244.0.7";

pub(super) fn probe(name: &str, args: &[&str]) -> Value {
    json!({"name": name, "image": PROBE_IMAGE, "args": args})
}

pub(super) fn pod_named(name: &str, spec: Value) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "default", "uid": "uid-1", "generation": 1,
                     "labels": {"app": "backend"}},
        "spec": spec,
    })
}

pub(super) fn pod(spec: Value) -> Value {
    pod_named("backend-5d8f-abcde", spec)
}

pub(super) fn run_on(pod: &Value, node: &mut Node, objects: &[&str]) -> Value {
    let exists = |_: &str, name: &str| objects.contains(&name);
    let ctx = RunContext {
        config_map_exists: &exists,
        secret_exists: &exists,
        pod_ip: POD_IP.to_string(),
    };
    run_pod(pod, node, &ctx)
}

/// Images the tests' node holds besides the harness's own.
pub(super) const TEST_IMAGES: &[&str] = &[
    "nginx:1.27",
    "envoyproxy/envoy:v1.32-latest",
    "coredns/coredns:v1.12.1",
];

/// A node with nothing bound, holding the harness's images and
/// [`TEST_IMAGES`].
pub(super) fn node() -> Node {
    Node::new("kind-worker", NODE_IP)
        .with_images(crate::images::HARNESS_IMAGES)
        .with_images(TEST_IMAGES.iter().copied())
}

pub(super) fn run(pod: &Value) -> Value {
    run_on(pod, &mut node(), &[])
}

pub(super) fn container<'a>(status: &'a Value, list: &str, name: &str) -> &'a Value {
    status[list]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {list} entry {name} in {status:#}"))
}

pub(super) fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no condition {kind}"))
}

/// What `kubectl get pods` would print for the pod with this status.
pub(super) fn line(pod: &Value, status: &Value) -> String {
    let mut pod = pod.clone();
    pod["status"] = status.clone();
    format_line(&pod_line(&pod))
}

/// The injected envoy, running probe: listens on $(PROXY_PORT).
pub(super) fn envoy(proxy_port: &str) -> Value {
    json!({
        "name": "envoy",
        "image": PROBE_IMAGE,
        "args": ["--name", "envoy", "--listen", "$(PROXY_PORT)"],
        "env": [
            {"name": "PROXY_PORT", "value": proxy_port},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "ports": [{"name": "proxy", "containerPort": proxy_port.parse::<u16>().unwrap_or(0),
                   "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": proxy_port.parse::<u16>().unwrap_or(0)},
                           "periodSeconds": 5},
    })
}
