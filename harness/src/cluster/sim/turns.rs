//! The node's side of a settle round: the scheduler binds pending pods
//! (or records why it cannot) and the kubelet starts the bound ones.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::node::{NODE_IP, NODE_NAME};
use super::scheduler;
use super::store::SimCluster;
use crate::cluster::{ObjectEvent, FAILED_SCHEDULING};
use crate::kubelet;

impl SimCluster {
    /// The scheduler's turn: each pod not yet bound, in creation order
    /// (the queue's order for pods of equal priority), is bound to the node
    /// or marked unschedulable with the scheduler's message and event. An
    /// unschedulable pod is tried again each round, as the scheduler retries
    /// it when pods go away. `Ok(true)` when anything changed.
    pub(super) fn run_scheduler(&mut self) -> Result<bool> {
        let mut changed = false;
        for i in 0..self.pods.len() {
            if self.pods[i]["spec"]["nodeName"].is_string() {
                continue;
            }
            let outcome = {
                let bound: Vec<&Value> = self
                    .node_pods
                    .iter()
                    .chain(self.pods.iter())
                    .filter(|p| p["spec"]["nodeName"] == NODE_NAME)
                    .filter(|p| {
                        !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
                    })
                    .collect();
                scheduler::schedule(&self.pods[i], &self.node_object, &bound, self.minor)
            };
            let pod = &mut self.pods[i];
            match outcome {
                scheduler::Outcome::Bind => {
                    pod["spec"]["nodeName"] = json!(NODE_NAME);
                    changed = true;
                }
                scheduler::Outcome::Unschedulable(message) => {
                    let mut condition = json!([{
                        "type": "PodScheduled",
                        "status": "False",
                        "lastProbeTime": null,
                        "lastTransitionTime": kubelet::TIMESTAMP,
                        "reason": "Unschedulable",
                        "message": message,
                    }]);
                    // The scheduler reports which generation it looked at.
                    if let Some(g) = pod["metadata"]["generation"].as_i64() {
                        condition[0]["observedGeneration"] = json!(g);
                    }
                    if pod["status"]["conditions"] == condition {
                        continue;
                    }
                    pod["status"]["conditions"] = condition;
                    let event = ObjectEvent {
                        namespace: crate::object::namespace(pod).to_string(),
                        kind: "Pod".into(),
                        name: crate::object::meta_str(pod, "name").to_string(),
                        reason: FAILED_SCHEDULING.into(),
                        message,
                    };
                    if !self.events.contains(&event) {
                        self.events.push(event);
                    }
                    changed = true;
                }
                scheduler::Outcome::Preempts(victims) => bail!(
                    "pod {}/{} would preempt {}; the simulated scheduler does not model preemption",
                    crate::object::namespace(pod),
                    crate::object::meta_str(pod, "name"),
                    victims.join(", ")
                ),
            }
        }
        Ok(changed)
    }

    /// Runs the kubelet on bound pods it has not started yet, in creation
    /// order.
    pub(super) fn run_kubelet(&mut self) -> bool {
        let mut changed = false;
        for i in 0..self.pods.len() {
            if self.pods[i]["status"]["startTime"].is_string()
                || self.pods[i]["spec"]["nodeName"] != NODE_NAME
            {
                continue;
            }
            let ns = self.pods[i]["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let objects = &self.objects;
            let cm = |n: &str, name: &str| {
                objects.contains_key(&("ConfigMap".into(), n.into(), name.into()))
            };
            let secret = |n: &str, name: &str| {
                objects.contains_key(&("Secret".into(), n.into(), name.into()))
            };
            let host_network = self.pods[i]["spec"]["hostNetwork"] == true;
            let pod_ip = if host_network {
                NODE_IP.to_string()
            } else {
                format!("10.244.0.{}", i + 5)
            };
            let ctx = kubelet::RunContext {
                config_map_exists: &cm,
                secret_exists: &secret,
                pod_ip,
            };
            let _ = &ns;
            let status = kubelet::run_pod(&self.pods[i], &mut self.node, &ctx);
            self.pods[i]["status"] = status;
            changed = true;
        }
        changed
    }
}
