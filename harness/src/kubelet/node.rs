//! The Node object the kubelet registers: what the scheduler filters on
//! (labels, taints, allocatable). One definition serves the simulated
//! cluster's scheduler and the fake kubelet a real apiserver sees, so both
//! clusters offer the same node.
//!
//! It is the node a one-node kind cluster (v0.32, Kubernetes v1.34) shows on
//! this project's machine:
//!
//! - labels: the kubelet's own (`kubernetes.io/hostname`, `kubernetes.io/os`,
//!   `kubernetes.io/arch` and the deprecated `beta.kubernetes.io/os` and
//!   `beta.kubernetes.io/arch` it still sets) plus kubeadm's
//!   `node-role.kubernetes.io/control-plane`. kubeadm also labels the node
//!   `node.kubernetes.io/exclude-from-external-load-balancers`, which kind
//!   removes again on a one-node cluster.
//! - taints: none. kubeadm taints a control-plane node
//!   `node-role.kubernetes.io/control-plane:NoSchedule`; kind removes that
//!   taint when the cluster has one node, so ordinary pods run on it.
//! - capacity = allocatable: kind's kubelet config reserves nothing for the
//!   system and sets `evictionHard` to `nodefs.available: 0%`,
//!   `nodefs.inodesFree: 0%`, `imagefs.available: 0%` only; a kubelet
//!   config that sets evictionHard replaces the default `memory.available:
//!   100Mi` instead of merging it, so nothing is subtracted. cpu is the
//!   host's core count, memory its MemTotal, ephemeral-storage the size of
//!   the filesystem under the node container (measured on the 2-core VM:
//!   `nproc` = 2, MemTotal 24684092 kB, `df -k /` 264212084 blocks).

use serde_json::{json, Value};

/// What the node offers, in the kubelet's units. A kind node reports the
/// same list as capacity and allocatable (see the module doc).
pub const ALLOCATABLE: &[(&str, &str)] = &[
    ("cpu", "2"),
    ("ephemeral-storage", "264212084Ki"),
    ("hugepages-1Gi", "0"),
    ("hugepages-2Mi", "0"),
    ("memory", "24684092Ki"),
    ("pods", "110"),
];

/// The pods a fresh one-node kind cluster runs on its node, in kube-system:
/// name, priority class, cpu request, memory request, memory limit.
/// kubeadm's static pods are system-node-critical, CoreDNS (two replicas)
/// system-cluster-critical, so no scenario pod can preempt them.
const NODE_PODS: &[(&str, &str, &str, &str, &str)] = &[
    ("coredns-1", CLUSTER_CRITICAL, "100m", "70Mi", "170Mi"),
    ("coredns-2", CLUSTER_CRITICAL, "100m", "70Mi", "170Mi"),
    ("etcd", NODE_CRITICAL, "100m", "100Mi", ""),
    ("kube-apiserver", NODE_CRITICAL, "250m", "", ""),
    ("kube-controller-manager", NODE_CRITICAL, "200m", "", ""),
    ("kube-proxy", NODE_CRITICAL, "", "", ""),
    ("kube-scheduler", NODE_CRITICAL, "100m", "", ""),
];

/// The TCP ports the node's own daemons listen on, in the node's network
/// namespace (which hostNetwork pods share): kubeadm's static pods run with
/// the host network, and so do the kubelet and kube-proxy. A hostNetwork
/// container binding one of them fails as on a real node (`ss -ltn` in a
/// kind node shows them).
pub const LISTENERS: &[(u16, &str)] = &[
    (2379, "etcd"),
    (2380, "etcd"),
    (2381, "etcd"),
    (6443, "kube-apiserver"),
    (10248, "kubelet"),
    (10249, "kube-proxy"),
    (10250, "kubelet"),
    (10256, "kube-proxy"),
    (10257, "kube-controller-manager"),
    (10259, "kube-scheduler"),
];

const NODE_CRITICAL: &str = "system-node-critical";
const CLUSTER_CRITICAL: &str = "system-cluster-critical";

/// The namespace of the node's own pods.
pub const NODE_PODS_NAMESPACE: &str = "kube-system";

/// The label that marks a pod as one of the node's own (not a scenario's).
pub const NODE_POD_LABEL: &str = "injector-harness/node-pod";

/// The node's own pods (see the module doc), bound to `node`, as pod
/// objects: what the scheduler counts against the node, and what a fake
/// kubelet creates so a real scheduler counts them too. Names are
/// `<component>-<node>`, as kubeadm's static pods are named.
pub fn node_pods(node: &str, image: &str) -> Vec<Value> {
    NODE_PODS
        .iter()
        .map(|(name, class, cpu, memory, memory_limit)| {
            let mut requests = serde_json::Map::new();
            let mut limits = serde_json::Map::new();
            if !cpu.is_empty() {
                requests.insert("cpu".into(), json!(cpu));
            }
            if !memory.is_empty() {
                requests.insert("memory".into(), json!(memory));
            }
            if !memory_limit.is_empty() {
                limits.insert("memory".into(), json!(memory_limit));
            }
            let priority = if *class == NODE_CRITICAL {
                2_000_001_000
            } else {
                2_000_000_000
            };
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": format!("{name}-{node}"),
                    "namespace": NODE_PODS_NAMESPACE,
                    "labels": {NODE_POD_LABEL: "true"},
                },
                "spec": {
                    "nodeName": node,
                    // kubeadm's static pods and kube-proxy share the node's
                    // network; CoreDNS has its own.
                    "hostNetwork": !name.starts_with("coredns"),
                    "priorityClassName": class,
                    "priority": priority,
                    "containers": [{
                        "name": name.trim_end_matches(|c: char| c == '-' || c.is_ascii_digit()),
                        "image": image,
                        "args": ["--name", name],
                        "resources": {"requests": requests, "limits": limits},
                    }],
                },
            })
        })
        .collect()
}

/// The node's labels, as the kubelet and kubeadm (after kind) leave them.
pub fn labels(name: &str) -> Value {
    json!({
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node-role.kubernetes.io/control-plane": "",
    })
}

/// The resource list the node reports as capacity and as allocatable.
pub fn resources() -> Value {
    Value::Object(
        ALLOCATABLE
            .iter()
            .map(|(k, v)| ((*k).to_string(), json!(v)))
            .collect(),
    )
}

/// The Node object as the scheduler reads it: metadata, spec (no taints)
/// and the resource part of its status.
pub fn node_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels(name)},
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
        "status": {"capacity": resources(), "allocatable": resources()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_pods_take_what_kind_shows_allocated() {
        let pods = node_pods("n", "probe");
        assert_eq!(pods.len(), 7);
        let sum = |resource: &str, unit: &str| -> u64 {
            pods.iter()
                .filter_map(|p| {
                    p["spec"]["containers"][0]["resources"]["requests"][resource].as_str()
                })
                .map(|q| q.trim_end_matches(unit).parse::<u64>().unwrap())
                .sum()
        };
        assert_eq!(sum("cpu", "m"), 850);
        assert_eq!(sum("memory", "Mi"), 240);
        assert!(pods.iter().all(|p| p["spec"]["nodeName"] == "n"));
        assert_eq!(pods[0]["spec"]["containers"][0]["name"], "coredns");
    }

    #[test]
    fn capacity_equals_allocatable_and_no_taints() {
        let node = node_object("n");
        assert_eq!(node["status"]["capacity"], node["status"]["allocatable"]);
        assert_eq!(node["status"]["allocatable"]["cpu"], "2");
        assert_eq!(node["status"]["allocatable"]["pods"], "110");
        assert!(node["spec"].get("taints").is_none());
        assert_eq!(node["metadata"]["labels"]["kubernetes.io/hostname"], "n");
    }
}
