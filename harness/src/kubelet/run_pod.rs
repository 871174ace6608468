//! The model's entry point: one pod run on one node, from reading the pod
//! to its settled status. The node's host ports go in and come back out,
//! so hostNetwork pods see what earlier ones bound.

use std::collections::BTreeMap;

use serde_json::Value;

use super::config_sources::volumes_mountable;
use super::netns::Netns;
use super::node_state::Node;
use super::pod::{PodInfo, PodRun, Progress};
use super::run_context::RunContext;
use super::runtime::Runtime;
use super::status::render_status;

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
        images: &node.images,
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

    use crate::kubelet::node_state::Node;
    use crate::kubelet::testing::{
        condition, container, line, node, pod, pod_named, probe, run, run_on, NODE_IP, POD_IP,
    };
    use crate::probe::{bind_error, PROBE_IMAGE};

    #[test]
    fn host_network_pods_clash_on_the_node() {
        let mut node = node();
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

    #[test]
    fn the_nodes_own_daemons_hold_their_ports() {
        let mut node = Node::kind_node("kind-control-plane", NODE_IP, []);
        // A hostNetwork agent that binds the kubelet's port crash-loops.
        let agent = pod_named(
            "agent",
            json!({"hostNetwork": true, "containers": [probe("agent", &["--listen", "10250"])]}),
        );
        let status = run_on(&agent, &mut node, &[]);
        assert_eq!(line(&agent, &status), "agent 0/1 CrashLoopBackOff");
        assert_eq!(
            container(&status, "containerStatuses", "agent")["lastState"]["terminated"]["message"],
            bind_error(10250)
        );
        // Deleting it frees nothing of the node's; a pod network has its own.
        node.release_pod("default", "agent");
        assert_eq!(
            node.host_ports()
                .get(&(10250, "TCP".to_string()))
                .map(String::as_str),
            Some("node/kubelet")
        );
        let ordinary = pod_named(
            "web",
            json!({"containers": [probe("web", &["--listen", "10250"])]}),
        );
        assert_eq!(
            line(&ordinary, &run_on(&ordinary, &mut node, &[])),
            "web 1/1 Running"
        );
    }

    #[test]
    fn an_image_the_node_lacks_backs_off_and_holds_the_pod_pending() {
        let mut sidecar = probe("envoy", &["--listen", "10000"]);
        sidecar["image"] = json!("injector-harness/probe:v2");
        sidecar["imagePullPolicy"] = json!("IfNotPresent");
        let p = pod(json!({"containers": [probe("backend", &["--listen", "8080"]), sidecar]}));
        let status = run(&p);
        // A container that never ran counts as waiting: the pod is Pending
        // although the app runs (the kubelet's getPhase).
        assert_eq!(status["phase"], "Pending");
        assert_eq!(line(&p, &status), "backend-5d8f-abcde 1/2 ImagePullBackOff");
        let envoy = container(&status, "containerStatuses", "envoy");
        assert_eq!(envoy["state"]["waiting"]["reason"], "ImagePullBackOff");
        assert_eq!(envoy["imageID"], "");
        assert_eq!(envoy["restartCount"], 0);
        assert_eq!(envoy["lastState"], json!({}));
        assert_eq!(
            condition(&status, "ContainersReady")["message"],
            "containers with unready status: [envoy]"
        );

        // In an init container it holds every container after it.
        let mut init = probe("setup", &["--exit-after-ms", "1"]);
        init["image"] = json!("busybox:1.36");
        let p = pod(json!({"initContainers": [init], "containers": [probe("app", &[])]}));
        let status = run(&p);
        assert_eq!(
            line(&p, &status),
            "backend-5d8f-abcde 0/1 Init:ImagePullBackOff"
        );
        assert_eq!(
            container(&status, "containerStatuses", "app")["state"]["waiting"]["reason"],
            "PodInitializing"
        );

        // Never with the image absent is a different reason, at once.
        let mut app = probe("app", &[]);
        app["image"] = json!("envoyproxy/envoy:v1.31");
        app["imagePullPolicy"] = json!("Never");
        let p = pod(json!({"containers": [app]}));
        let status = run(&p);
        assert_eq!(
            line(&p, &status),
            "backend-5d8f-abcde 0/1 ErrImageNeverPull"
        );
    }
}
