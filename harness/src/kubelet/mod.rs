//! A deterministic model of the kubelet and container runtime: given a pod
//! spec, the settled `status` a real API server (v1.34 to v1.37, which
//! agree here) would show for it.
//!
//! The simulator has no processes, so it needs to know what the scenario's
//! containers would do. They run [`crate::probe`], whose whole behaviour is
//! in its flags (listen here, maybe exit with this code), so the model can
//! replay it: containers start in the kubelet's order, bind ports in a
//! shared network namespace (the pod's, or the node's under hostNetwork), and
//! the first to bind a port wins while the loser exits 1 with
//! [`bind_error`](crate::probe::bind_error) and crash-loops. Other images
//! are taken to listen on their declared containerPorts and to run forever
//! (init containers: complete).
//!
//! "Settled" means: what the status looks like once every container has had
//! its first go. There is no clock: timestamps are [`TIMESTAMP`], container
//! IDs `containerd://<name>`, and a crash-looping container has
//! restartCount 1, a stand-in for "some" (snapshots normalize all three).
//!
//! Layout: this file holds the public API (`Node`, `RunContext`, `run_pod`);
//! `env` the environment and `$(VAR)` expansion; `config_sources` the
//! ConfigMaps and Secrets a pod waits for; `program` what a container runs;
//! `netns` the network namespace; `container` one container's state
//! (`Ctr`, `State`); `pod` what is read from the pod and how far it got;
//! `runtime` the pod's run; `phase` phase and conditions; `status` the
//! PodStatus JSON; `qos` the QoS class; `lookup` lenient JSON reads; `node`
//! the Node object the kubelet registers (labels, taints, allocatable).

use std::collections::BTreeMap;

use serde_json::Value;

use config_sources::volumes_mountable;
use netns::Netns;
use pod::{PodInfo, PodRun, Progress};
use runtime::Runtime;
use status::render_status;

mod config_sources;
mod container;
mod env;
mod lookup;
mod netns;
pub mod node;
mod phase;
mod pod;
mod program;
mod qos;
mod runtime;
mod status;
#[cfg(test)]
mod testing;

pub use env::{container_env, expand};
pub use qos::{parse_quantity, qos_class};

/// Every timestamp the model writes.
pub const TIMESTAMP: &str = "2025-01-01T00:00:00Z";

/// A listening socket's identity: port and protocol (10000/TCP and
/// 10000/UDP do not clash).
pub type PortKey = (u16, String);

/// A node, as far as ports go: hostNetwork pods bind in its namespace, so two
/// of them on one node clash like two containers of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub ip: String,
    /// Ports held on the node by running hostNetwork containers, with their
    /// owner as `namespace/pod/container`.
    host_ports: BTreeMap<PortKey, String>,
}

impl Node {
    pub fn new(name: impl Into<String>, ip: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            ip: ip.into(),
            host_ports: BTreeMap::new(),
        }
    }

    /// Ports currently held on the node, with their `namespace/pod/container`.
    pub fn host_ports(&self) -> &BTreeMap<PortKey, String> {
        &self.host_ports
    }

    /// Frees what a pod held on the node: call it when the pod is deleted.
    /// ([`run_pod`] does it itself before re-running a pod.)
    pub fn release_pod(&mut self, namespace: &str, name: &str) {
        let prefix = format!("{namespace}/{name}/");
        self.host_ports
            .retain(|_, owner| !owner.starts_with(&prefix));
    }
}

/// What the model may ask of the cluster while running a pod.
pub struct RunContext<'a> {
    /// Whether ConfigMap `name` exists in namespace `ns`.
    pub config_map_exists: &'a dyn Fn(&str, &str) -> bool,
    /// Whether Secret `name` exists in namespace `ns`.
    pub secret_exists: &'a dyn Fn(&str, &str) -> bool,
    /// The IP the pod gets unless it uses the host network.
    pub pod_ip: String,
}

/// Runs `pod` on `node` and returns the settled PodStatus object.
///
/// Re-running a pod is fine: its previous host ports are released first.
/// The returned status replaces the pod's; readiness gates are read from the
/// conditions already in `pod.status`.
pub fn run_pod(pod: &Value, node: &mut Node, ctx: &RunContext) -> Value {
    let info = PodInfo::read(pod, node, ctx);
    node.release_pod(info.namespace, info.name);
    let mut rt = Runtime {
        netns: Netns {
            ports: if info.host_network {
                node.host_ports.clone()
            } else {
                BTreeMap::new()
            },
        },
        info: &info,
        ctx,
    };
    let mut pod_run = PodRun::new(&info);
    pod_run.progress = if volumes_mountable(pod, info.namespace, ctx) {
        rt.run(&mut pod_run)
    } else {
        Progress::NoSandbox
    };
    rt.settle(&mut pod_run);
    if info.host_network {
        node.host_ports = rt.netns.ports;
    }
    render_status(&info, &pod_run)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kubelet::testing::{
        container, line, pod_named, probe, run, run_on, NODE_IP, POD_IP,
    };
    use crate::probe::{bind_error, PROBE_IMAGE};

    #[test]
    fn host_network_pods_clash_on_the_node() {
        let mut node = Node::new("kind-worker", NODE_IP);
        let spec =
            json!({"hostNetwork": true, "containers": [probe("agent", &["--listen", "9100"])]});
        let first = pod_named("agent-a", spec.clone());
        let second = pod_named("agent-b", spec);

        let status = run_on(&first, &mut node, &[]);
        assert_eq!(status["podIP"], NODE_IP);
        assert_eq!(status["podIPs"], json!([{"ip": NODE_IP}]));
        assert_eq!(line(&first, &status), "agent-a 1/1 Running");
        assert_eq!(
            node.host_ports()
                .get(&(9100, "TCP".to_string()))
                .map(String::as_str),
            Some("default/agent-a/agent")
        );

        let status = run_on(&second, &mut node, &[]);
        assert_eq!(line(&second, &status), "agent-b 0/1 CrashLoopBackOff");
        assert_eq!(
            container(&status, "containerStatuses", "agent")["lastState"]["terminated"]["message"],
            bind_error(9100)
        );

        // Re-running the holder is idempotent; deleting it frees the port.
        let again = run_on(&first, &mut node, &[]);
        assert_eq!(line(&first, &again), "agent-a 1/1 Running");
        node.release_pod("default", "agent-a");
        assert!(node.host_ports().is_empty());
        let status = run_on(&second, &mut node, &[]);
        assert_eq!(line(&second, &status), "agent-b 1/1 Running");

        // Pod networks are separate: the same port in an ordinary pod is fine.
        let ordinary = pod_named(
            "web",
            json!({"containers": [probe("web", &["--listen", "9100"])]}),
        );
        let status = run_on(&ordinary, &mut node, &[]);
        assert_eq!(status["podIP"], POD_IP);
        assert_eq!(line(&ordinary, &status), "web 1/1 Running");
        assert_eq!(node.host_ports().len(), 1);
    }

    #[test]
    fn arbitrary_json_does_not_panic() {
        let odd = [
            json!(null),
            json!("pod"),
            json!({"spec": null}),
            json!({"metadata": 3, "spec": {"containers": "x", "initContainers": {}, "volumes": 1}}),
            json!({"spec": {"containers": [null, 1, {"name": 2, "image": [], "args": [1, null, true],
                                                     "ports": [{"containerPort": -1}, {"containerPort": 70000}, 5],
                                                     "env": [null, {"name": "A", "valueFrom": {"fieldRef": 1}}],
                                                     "envFrom": [{"configMapRef": "x"}],
                                                     "readinessProbe": {"tcpSocket": {"port": 1.5}}}],
                            "restartPolicy": 7, "hostNetwork": "yes",
                            "volumes": [{"configMap": null}, {"projected": {"sources": "x"}}],
                            "readinessGates": [1, {"conditionType": 2}],
                            "resources": {"limits": {"cpu": "lots"}}},
                   "status": {"conditions": "x"}}),
            json!({"spec": {"containers": [{"name": "a", "image": PROBE_IMAGE,
                                            "command": [], "args": ["--listen"]}]}}),
        ];
        for pod in odd {
            let status = run(&pod);
            assert!(status["phase"].is_string());
            if pod.is_object() {
                let _ = line(&pod, &status);
            }
        }
    }
}
