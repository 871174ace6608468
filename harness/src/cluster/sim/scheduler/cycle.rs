//! One scheduling cycle for one pod: PreFilter, the filters, then the
//! PostFilter plugins (DynamicResources, DefaultPreemption), and the
//! FailedScheduling message their reasons make.

use serde_json::Value;

use super::affinity::pre_filter;
use super::filters::filter;
use super::preemption::preempt;
use super::status::NO_NODE;
use crate::version::Minor;

/// DynamicResources' PostFilter reason for a pod without resource claims.
const NO_CLAIMS: &str = "no new claims to deallocate";

/// The first minor whose DynamicResources PostFilter is silent for a pod
/// without claims.
const DRA_QUIET_SINCE: u32 = 37;

/// What the scheduler does with a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It fits: bind it to the node.
    Bind,
    /// It does not fit and preemption cannot help: the message of the
    /// FailedScheduling event and of the PodScheduled condition.
    Unschedulable(String),
    /// Evicting these lower-priority pods (`namespace/name`) would make room.
    Preempts(Vec<String>),
}

/// Decides where `pod` goes, given the node and the pods bound to it that
/// have not terminated (the scheduler's cache leaves out Succeeded and
/// Failed pods).
pub fn schedule(pod: &Value, node: &Value, bound: &[&Value], minor: Minor) -> Outcome {
    let status = match pre_filter(pod, node) {
        Err(message) => {
            // A PreFilter failure names itself once, without a per-node
            // histogram. The PreFilters after the failing one never ran, so
            // DynamicResources' PostFilter finds no state of its own and
            // fails with the store's "not found", ending the PostFilters.
            return Outcome::Unschedulable(format!("{NO_NODE} {message}. not found"));
        }
        Ok(Some(status)) => status,
        Ok(None) => match filter(pod, node, bound) {
            None => return Outcome::Bind,
            Some(status) => status,
        },
    };
    // FitError: each reason counted over the nodes (one here), sorted.
    let mut histogram: Vec<String> = status.reasons.iter().map(|r| format!("1 {r}")).collect();
    histogram.sort();
    let fit_error = format!("{NO_NODE} {}.", histogram.join(", "));
    let post_filter = match preempt(pod, node, bound, &status) {
        Ok(message) => message,
        Err(victims) => return Outcome::Preempts(victims),
    };
    // Since v1.37, DynamicResources' PostFilter says nothing about a pod
    // without resource claims (seen on kube-scheduler v1.37.2; v1.34.4 to
    // v1.36.3 say "no new claims to deallocate").
    if minor.at_least(DRA_QUIET_SINCE) {
        Outcome::Unschedulable(format!("{fit_error} preemption: {post_filter}"))
    } else {
        Outcome::Unschedulable(format!(
            "{fit_error} {NO_CLAIMS}, preemption: {post_filter}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{NODE, V34};
    use super::*;
    use crate::kubelet::node::node_object;

    #[test]
    fn garbage_does_not_panic() {
        let node = node_object(NODE);
        for p in [
            json!(null),
            json!({"spec": 1}),
            json!({"spec": {"containers": [{"ports": [{"hostPort": "x"}], "resources": {"requests": {"cpu": []}}}],
                  "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": "x"}}},
                  "nodeSelector": [1], "tolerations": {}}}),
        ] {
            let _ = schedule(&p, &node, &[&p], V34);
        }
    }
}
