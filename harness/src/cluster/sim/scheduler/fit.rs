//! NodeResourcesFit: what a pod requests, in the scheduler's units, against
//! the node's allocatable minus what its bound pods request.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fields::{list, str_at};
use super::status::Status;
use crate::kubelet::parse_quantity;

/// NodeResourcesFit's Filter: every shortfall is a reason; one beyond the
/// node's whole allocatable makes the status unresolvable.
pub(super) fn fit(pod: &Value, node: &Value, bound: &[&Value]) -> Option<Status> {
    let allocatable = |r: &str| {
        node.pointer("/status/allocatable")
            .and_then(|a| a.get(r))
            .and_then(quantity)
            .map(|q| units(r, q))
            .unwrap_or(0)
    };
    let mut reasons = Vec::new();
    let mut resolvable = true;
    if bound.len() as i128 + 1 > allocatable("pods") {
        reasons.push("Too many pods".to_string());
    }
    let want = requests(pod);
    let mut used: BTreeMap<String, i128> = BTreeMap::new();
    for p in bound {
        for (r, q) in requests(p) {
            *used.entry(r).or_default() += q;
        }
    }
    // cpu, memory and ephemeral-storage first, in that order, then the
    // scalar resources.
    let order = |r: &str| match r {
        "cpu" => 0,
        "memory" => 1,
        "ephemeral-storage" => 2,
        _ => 3,
    };
    let mut names: Vec<&String> = want.keys().collect();
    names.sort_by_key(|r| (order(r), (*r).clone()));
    for r in names {
        let q = want[r];
        let free = allocatable(r) - used.get(r).copied().unwrap_or(0);
        if q > 0 && q > free {
            reasons.push(format!("Insufficient {r}"));
            resolvable &= q <= allocatable(r);
        }
    }
    (!reasons.is_empty()).then_some(Status {
        reasons,
        resolvable,
    })
}

/// What the pod asks of the node, per resource, in the scheduler's units
/// (cpu in millicores, everything else in whole units, rounded up): app
/// containers and native sidecars add up; an init container needs its own
/// request plus the sidecars started before it; the larger of the two
/// counts; pod-level requests replace the containers' cpu and memory;
/// overhead is added.
fn requests(pod: &Value) -> BTreeMap<String, i128> {
    let container = |c: &Value| -> BTreeMap<String, i128> {
        let mut out = BTreeMap::new();
        for field in ["limits", "requests"] {
            // A request left out defaults to the limit, so limits go in
            // first and explicit requests overwrite them.
            for (r, q) in c
                .pointer(&format!("/resources/{field}"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(q) = quantity(q) {
                    out.insert(r.clone(), units(r, q));
                }
            }
        }
        out
    };
    let add = |into: &mut BTreeMap<String, i128>, from: &BTreeMap<String, i128>| {
        for (r, q) in from {
            *into.entry(r.clone()).or_default() += q;
        }
    };
    let mut total = BTreeMap::new();
    for c in list(pod, "/spec/containers") {
        add(&mut total, &container(c));
    }
    let mut sidecars = BTreeMap::new();
    let mut init_peak: BTreeMap<String, i128> = BTreeMap::new();
    for c in list(pod, "/spec/initContainers") {
        let own = container(c);
        let need = if str_at(c, "/restartPolicy") == "Always" {
            add(&mut total, &own);
            add(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut need = own;
            add(&mut need, &sidecars);
            need
        };
        for (r, q) in need {
            let peak = init_peak.entry(r).or_default();
            *peak = (*peak).max(q);
        }
    }
    for (r, q) in init_peak {
        let t = total.entry(r).or_default();
        *t = (*t).max(q);
    }
    let pod_level = pod.pointer("/spec/resources").unwrap_or(&Value::Null);
    for r in ["cpu", "memory"] {
        let q = pod_level
            .pointer(&format!("/requests/{r}"))
            .or_else(|| pod_level.pointer(&format!("/limits/{r}")))
            .and_then(quantity);
        if let Some(q) = q {
            total.insert(r.to_string(), units(r, q));
        }
    }
    for (r, q) in pod
        .pointer("/spec/overhead")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(q) = quantity(q) {
            *total.entry(r.clone()).or_default() += units(r, q);
        }
    }
    total
}

/// A quantity in nano-units.
fn quantity(q: &Value) -> Option<i128> {
    match q {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => parse_quantity(&n.to_string()),
        _ => None,
    }
}

/// Nano-units to the scheduler's unit for resource `r`, rounded up.
fn units(r: &str, nano: i128) -> i128 {
    let per = if r == "cpu" { 1_000_000 } else { 1_000_000_000 };
    (nano + per - 1).div_euclid(per)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::cycle::{schedule, Outcome};
    use super::super::testing::{app, pod, unschedulable, NODE, V34};
    use super::*;
    use crate::kubelet::node::node_object;

    #[test]
    fn resources_against_allocatable() {
        let node = node_object(NODE);
        let asking = |name: &str, requests: Value| {
            pod(
                name,
                json!({"containers": [app(json!({"resources": {"requests": requests}}))]}),
            )
        };
        // Beyond the whole node: preemption cannot help.
        assert_eq!(
            unschedulable(schedule(
                &asking("big", json!({"cpu": "3", "memory": "64Gi"})),
                &node,
                &[]
            , V34)),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. \
             no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            unschedulable(schedule(
                &asking("gpu", json!({"example.com/gpu": "1"})),
                &node,
                &[]
            , V34)),
            "0/1 nodes are available: 1 Insufficient example.com/gpu. \
             no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        // Within the node but taken by a bound pod: resolvable, no victims.
        let first = asking("first", json!({"cpu": "1200m"}));
        assert_eq!(schedule(&first, &node, &[], V34), Outcome::Bind);
        assert_eq!(
            unschedulable(schedule(
                &asking("second", json!({"cpu": "1200m"})),
                &node,
                &[&first]
            , V34)),
            "0/1 nodes are available: 1 Insufficient cpu. \
             no new claims to deallocate, preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        assert_eq!(
            schedule(
                &asking("third", json!({"cpu": "800m"})),
                &node,
                &[&first],
                V34
            ),
            Outcome::Bind
        );
        // A lower-priority pod in the way would be preempted: not modelled.
        let mut urgent = asking("urgent", json!({"cpu": "1200m"}));
        urgent["spec"]["priority"] = json!(1000);
        assert_eq!(
            schedule(&urgent, &node, &[&first], V34),
            Outcome::Preempts(vec!["demo/first".into()])
        );
        urgent["spec"]["preemptionPolicy"] = json!("Never");
        assert!(unschedulable(schedule(&urgent, &node, &[&first], V34))
            .ends_with("no new claims to deallocate, preemption: not eligible due to preemptionPolicy=Never."));
    }

    #[test]
    fn pod_requests_follow_the_scheduler() {
        // Limits stand in for missing requests; sidecars add up; a plain
        // init container counts with the sidecars before it.
        let p = pod(
            "p",
            json!({
                "initContainers": [
                    {"name": "sc", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
                    {"name": "init", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                ],
                "containers": [{"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "1Mi"}}},
                               {"name": "b", "resources": {"requests": {"cpu": "0.25"}}}],
                "overhead": {"cpu": "10m"},
            }),
        );
        let r = requests(&p);
        assert_eq!(r["cpu"], 1100 + 10);
        assert_eq!(r["memory"], 1 << 30);
        let pod_level = pod(
            "p",
            json!({"resources": {"requests": {"cpu": "2"}},
                                         "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}),
        );
        assert_eq!(requests(&pod_level)["cpu"], 2000);
        // Too many pods: the node holds 110.
        let node = node_object(NODE);
        let others: Vec<Value> = (0..110).map(|i| pod(&format!("p{i}"), json!({}))).collect();
        let refs: Vec<&Value> = others.iter().collect();
        assert!(
            unschedulable(schedule(&pod("x", json!({})), &node, &refs, V34))
                .starts_with("0/1 nodes are available: 1 Too many pods.")
        );
    }
}
