//! The Filter plugins in the default profile's order (NodeUnschedulable,
//! TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit), and the
//! toleration matching the first two share.

use serde_json::Value;

use super::affinity::node_affinity_matches;
use super::fields::{list, str_at};
use super::fit::fit;
use super::ports::{host_ports, HostPort};
use super::status::Status;

/// The filters in the default profile's order; the first failure wins.
pub(super) fn filter(pod: &Value, node: &Value, bound: &[&Value]) -> Option<Status> {
    let tolerations = list(pod, "/spec/tolerations");
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        let unschedulable = json_taint("node.kubernetes.io/unschedulable", "", "NoSchedule");
        if !tolerations.iter().any(|t| tolerates(t, &unschedulable)) {
            return Some(Status::unresolvable("node(s) were unschedulable"));
        }
    }
    let untolerated = list(node, "/spec/taints").iter().any(|taint| {
        matches!(str_at(taint, "/effect"), "NoSchedule" | "NoExecute")
            && !tolerations.iter().any(|t| tolerates(t, taint))
    });
    if untolerated {
        return Some(Status::unresolvable("node(s) had untolerated taint(s)"));
    }
    if !node_affinity_matches(pod, node) {
        return Some(Status::unresolvable(
            "node(s) didn't match Pod's node affinity/selector",
        ));
    }
    let used: Vec<HostPort> = bound.iter().flat_map(|p| host_ports(p)).collect();
    if host_ports(pod)
        .iter()
        .any(|want| used.iter().any(|u| u.conflicts(want)))
    {
        return Some(Status {
            reasons: vec!["node(s) didn't have free ports for the requested pod ports".into()],
            resolvable: true,
        });
    }
    fit(pod, node, bound)
}

fn json_taint(key: &str, value: &str, effect: &str) -> Value {
    serde_json::json!({"key": key, "value": value, "effect": effect})
}

/// Whether toleration `t` tolerates `taint` (key, operator, value, effect).
fn tolerates(t: &Value, taint: &Value) -> bool {
    let effect = str_at(t, "/effect");
    if !effect.is_empty() && effect != str_at(taint, "/effect") {
        return false;
    }
    let key = str_at(t, "/key");
    if !key.is_empty() && key != str_at(taint, "/key") {
        return false;
    }
    match str_at(t, "/operator") {
        "Exists" => true,
        "" | "Equal" => str_at(t, "/value") == str_at(taint, "/value"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::cycle::{schedule, Outcome};
    use super::super::testing::{app, pod, unschedulable, NODE, V34};
    use crate::kubelet::node::node_object;

    #[test]
    fn taints_and_tolerations() {
        let mut node = node_object(NODE);
        let plain = pod("p", json!({"containers": [app(json!({}))]}));
        assert_eq!(schedule(&plain, &node, &[], V34), Outcome::Bind);
        node["spec"]["taints"] =
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
        assert_eq!(
            unschedulable(schedule(&plain, &node, &[], V34)),
            "0/1 nodes are available: 1 node(s) had untolerated taint(s). \
             no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        for (toleration, ok) in [
            (
                json!({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}),
                true,
            ),
            (json!({"key": "dedicated", "value": "gpu"}), true),
            (json!({"key": "dedicated", "operator": "Exists"}), true),
            (json!({"operator": "Exists"}), true),
            (json!({"key": "dedicated", "value": "cpu"}), false),
            (
                json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}),
                false,
            ),
        ] {
            let p = pod(
                "p",
                json!({"tolerations": [toleration], "containers": [app(json!({}))]}),
            );
            assert_eq!(
                schedule(&p, &node, &[], V34) == Outcome::Bind,
                ok,
                "{toleration}"
            );
        }
        // PreferNoSchedule only weighs in scoring.
        node["spec"]["taints"] = json!([{"key": "x", "effect": "PreferNoSchedule"}]);
        assert_eq!(schedule(&plain, &node, &[], V34), Outcome::Bind);
        node["spec"]["taints"] = json!([]);
        node["spec"]["unschedulable"] = json!(true);
        assert!(unschedulable(schedule(&plain, &node, &[], V34))
            .starts_with("0/1 nodes are available: 1 node(s) were unschedulable."));
    }
}
