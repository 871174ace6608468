//! NodePorts: the host ports a pod holds on the node and when two of them
//! collide.

use serde_json::Value;

use super::fields::{list, str_at};

/// A host port a pod holds on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostPort {
    ip: String,
    protocol: String,
    port: i64,
}

impl HostPort {
    /// 0.0.0.0 overlaps every address; other addresses only themselves.
    pub(super) fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// Ports with a hostPort, from the containers and the native sidecars (the
/// only init containers that run for the pod's whole life).
pub(super) fn host_ports(pod: &Value) -> Vec<HostPort> {
    let sidecars = list(pod, "/spec/initContainers")
        .iter()
        .filter(|c| str_at(c, "/restartPolicy") == "Always");
    sidecars
        .chain(list(pod, "/spec/containers"))
        .flat_map(|c| list(c, "/ports"))
        .filter_map(|p| {
            let port = p
                .get("hostPort")
                .and_then(Value::as_i64)
                .filter(|p| *p > 0)?;
            let or = |s: &str, d: &str| {
                if s.is_empty() {
                    d.to_string()
                } else {
                    s.to_string()
                }
            };
            Some(HostPort {
                ip: or(str_at(p, "/hostIP"), "0.0.0.0"),
                protocol: or(str_at(p, "/protocol"), "TCP"),
                port,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::cycle::{schedule, Outcome};
    use super::super::testing::{app, pod, unschedulable, NODE, V34};
    use crate::kubelet::node::node_object;

    #[test]
    fn host_port_conflict_is_resolvable_but_has_no_victims() {
        let node = node_object(NODE);
        let spec = json!({"containers": [app(json!({"ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}]}))]});
        let first = pod("first", spec.clone());
        assert_eq!(schedule(&first, &node, &[], V34), Outcome::Bind);
        assert_eq!(
            unschedulable(schedule(&pod("second", spec), &node, &[&first], V34)),
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. \
             no new claims to deallocate, preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        // Another protocol or another host IP on the same port is free.
        let udp = pod(
            "udp",
            json!({"containers": [app(json!({"ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}))]}),
        );
        assert_eq!(schedule(&udp, &node, &[&first], V34), Outcome::Bind);
        let a = pod(
            "a",
            json!({"containers": [app(json!({"ports": [{"containerPort": 1, "hostPort": 9, "hostIP": "10.0.0.1"}]}))]}),
        );
        let b = pod(
            "b",
            json!({"containers": [app(json!({"ports": [{"containerPort": 1, "hostPort": 9, "hostIP": "10.0.0.2"}]}))]}),
        );
        let any = pod(
            "any",
            json!({"containers": [app(json!({"ports": [{"containerPort": 1, "hostPort": 9}]}))]}),
        );
        assert_eq!(schedule(&b, &node, &[&a], V34), Outcome::Bind);
        assert!(matches!(
            schedule(&any, &node, &[&a], V34),
            Outcome::Unschedulable(_)
        ));
        // A plain init container's host port is not held; a sidecar's is.
        let init = pod(
            "init",
            json!({"initContainers": [app(json!({"ports": [{"containerPort": 80, "hostPort": 8080}]}))], "containers": [app(json!({}))]}),
        );
        assert_eq!(schedule(&init, &node, &[&first], V34), Outcome::Bind);
        let sidecar = pod(
            "sc",
            json!({"initContainers": [app(json!({"restartPolicy": "Always", "ports": [{"containerPort": 80, "hostPort": 8080}]}))], "containers": [app(json!({}))]}),
        );
        assert!(matches!(
            schedule(&sidecar, &node, &[&first], V34),
            Outcome::Unschedulable(_)
        ));
    }
}
