//! NodeAffinity: its PreFilter (required terms that pin node names) and its
//! Filter (`nodeSelector` and required node affinity against the node's
//! labels and name).

use serde_json::Value;

use super::fields::{list, str_at, strings};
use super::status::Status;

/// NodeAffinity's PreFilter: when every required term pins node names with
/// `metadata.name In [...]`, only those nodes are considered. `Err` fails
/// the whole cycle; `Ok(Some)` rejects this node before any filter runs.
pub(super) fn pre_filter(pod: &Value, node: &Value) -> Result<Option<Status>, String> {
    let terms = list(pod, "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms");
    if terms.is_empty() {
        return Ok(None);
    }
    let mut allowed: Option<Vec<String>> = None;
    for term in terms {
        let mut pinned: Option<Vec<String>> = None;
        for r in list(term, "/matchFields") {
            if str_at(r, "/key") != "metadata.name" || str_at(r, "/operator") != "In" {
                continue;
            }
            let values = strings(r, "/values");
            pinned = Some(match pinned {
                None => values,
                Some(p) => p.into_iter().filter(|n| values.contains(n)).collect(),
            });
        }
        // A term without a name pin allows every node (terms are ORed).
        let Some(pinned) = pinned else {
            return Ok(None);
        };
        allowed.get_or_insert_with(Vec::new).extend(pinned);
    }
    match allowed {
        Some(names) if names.is_empty() => Err("pod affinity terms conflict".into()),
        Some(names) if !names.iter().any(|n| n == str_at(node, "/metadata/name")) => Ok(Some(
            Status::unresolvable("node(s) didn't satisfy plugin(s) [NodeAffinity]"),
        )),
        _ => Ok(None),
    }
}

/// `spec.nodeSelector` and the required node affinity, both against the
/// node's labels (and name, for matchFields).
pub(super) fn node_affinity_matches(pod: &Value, node: &Value) -> bool {
    let labels = node.pointer("/metadata/labels").and_then(Value::as_object);
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let selector_ok = pod
        .pointer("/spec/nodeSelector")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k).is_some() && label(k) == v.as_str());
    if !selector_ok {
        return false;
    }
    let required =
        pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution");
    let Some(required) = required.filter(|r| r.is_object()) else {
        return true;
    };
    let name = str_at(node, "/metadata/name");
    list(required, "/nodeSelectorTerms").iter().any(|term| {
        let expressions = list(term, "/matchExpressions");
        let fields = list(term, "/matchFields");
        // An empty term selects nothing.
        (!expressions.is_empty() || !fields.is_empty())
            && expressions
                .iter()
                .all(|r| requirement(r, label(str_at(r, "/key"))))
            && fields
                .iter()
                .all(|r| str_at(r, "/key") == "metadata.name" && requirement(r, Some(name)))
    })
}

/// One NodeSelectorRequirement against a label's value (None: absent).
fn requirement(r: &Value, value: Option<&str>) -> bool {
    let values = strings(r, "/values");
    let number = |s: &str| s.parse::<i64>().ok();
    match str_at(r, "/operator") {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(have), [bound]) = (value.and_then(number), values.as_slice()) else {
                return false;
            };
            let Some(bound) = number(bound) else {
                return false;
            };
            if op == "Gt" {
                have > bound
            } else {
                have < bound
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::cycle::{schedule, Outcome};
    use super::super::testing::{app, pod, unschedulable, NODE, V34};
    use crate::kubelet::node::node_object;

    #[test]
    fn node_selector_and_affinity() {
        let node = node_object(NODE);
        let not_helpful =
            "no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
        let affinity = |m: &str| {
            format!(
                "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. {m}"
            )
        };
        let selector = |sel: Value| {
            pod(
                "p",
                json!({"nodeSelector": sel, "containers": [app(json!({}))]}),
            )
        };
        assert_eq!(
            schedule(
                &selector(json!({"kubernetes.io/os": "linux"})),
                &node,
                &[],
                V34
            ),
            Outcome::Bind
        );
        assert_eq!(
            unschedulable(schedule(
                &selector(json!({"disktype": "ssd"})),
                &node,
                &[],
                V34
            )),
            affinity(not_helpful)
        );
        let required = |terms: Value| {
            pod(
                "p",
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}},
                            "containers": [app(json!({}))]}),
            )
        };
        let expr = |key: &str, op: &str, values: Value| json!({"key": key, "operator": op, "values": values});
        for (terms, fits) in [
            (
                json!([{"matchExpressions": [expr("kubernetes.io/arch", "In", json!(["amd64"]))]}]),
                true,
            ),
            (
                json!([{"matchExpressions": [expr("kubernetes.io/arch", "NotIn", json!(["amd64"]))]}]),
                false,
            ),
            (
                json!([{"matchExpressions": [expr("gpu", "NotIn", json!(["a"]))]}]),
                true,
            ),
            (
                json!([{"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}]),
                true,
            ),
            (
                json!([{"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]}]),
                false,
            ),
            // Terms are ORed.
            (
                json!([{"matchExpressions": [expr("gpu", "In", json!(["a"]))]},
                    {"matchExpressions": [expr("kubernetes.io/os", "In", json!(["linux"]))]}]),
                true,
            ),
            (json!([{}]), false),
            (
                json!([{"matchExpressions": [expr("kubernetes.io/os", "Gt", json!(["1"]))]}]),
                false,
            ),
            (
                json!([{"matchFields": [expr("metadata.name", "NotIn", json!(["other"]))]}]),
                true,
            ),
        ] {
            let outcome = schedule(&required(terms.clone()), &node, &[], V34);
            if fits {
                assert_eq!(outcome, Outcome::Bind, "{terms}");
            } else {
                assert_eq!(unschedulable(outcome), affinity(not_helpful), "{terms}");
            }
        }
        // Pinned to another node by name: rejected before the filters.
        let pinned =
            required(json!([{"matchFields": [expr("metadata.name", "In", json!(["other"]))]}]));
        assert_eq!(
            unschedulable(schedule(&pinned, &node, &[], V34)),
            format!("0/1 nodes are available: 1 node(s) didn't satisfy plugin(s) [NodeAffinity]. {not_helpful}")
        );
        let pinned_here =
            required(json!([{"matchFields": [expr("metadata.name", "In", json!([NODE]))]}]));
        assert_eq!(schedule(&pinned_here, &node, &[], V34), Outcome::Bind);
        let conflict = required(
            json!([{"matchFields": [expr("metadata.name", "In", json!(["a"])),
                                                         expr("metadata.name", "In", json!(["b"]))]}]),
        );
        assert_eq!(
            unschedulable(schedule(&conflict, &node, &[], V34)),
            "0/1 nodes are available: pod affinity terms conflict. not found"
        );
    }
}
