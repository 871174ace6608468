//! Waiting until a scenario's objects are in states that do not change by
//! themselves: driven by watch events, with a quiet period and a timeout.

use std::time::Duration;

use anyhow::{bail, Result};
use futures::{stream, StreamExt};
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use serde_json::Value;

use super::resources::is_unreachable_webhook;
use super::state::{KubeconfigCluster, Kubelet};
use crate::cluster::{ObjectEvent, FAILED_SCHEDULING};
use crate::error::Timeout;

/// How long nothing may change before a scenario counts as settled.
const QUIET: Duration = Duration::from_millis(1500);
/// The longest a scenario may take to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

impl KubeconfigCluster {
    /// [`crate::cluster::Cluster::settle`] on a real cluster.
    pub(super) async fn settle_quietly(&mut self) -> Result<()> {
        // Any change to a watched object restarts the quiet period; the
        // scenario has settled when a quiet period passes with every object
        // in a state that does not change by itself.
        let mut streams = Vec::new();
        for ns in &self.namespaces {
            for kind in [
                "Pod",
                "ReplicaSet",
                "Deployment",
                "StatefulSet",
                "DaemonSet",
                "Job",
                "Event",
            ] {
                let api = self.api(kind, Some(ns))?;
                streams.push(watcher(api, watcher::Config::default()).map(|_| ()).boxed());
            }
        }
        let mut events = stream::select_all(streams);
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            match tokio::time::timeout(QUIET, events.next()).await {
                Ok(Some(())) => {
                    if tokio::time::Instant::now() > deadline {
                        return Err(Timeout::new(
                            format!("scenario {} did not settle", self.scenario),
                            SETTLE_TIMEOUT,
                        )
                        .into());
                    }
                }
                Ok(None) => bail!("watches ended unexpectedly"),
                Err(_) => {
                    if self.is_settled().await? {
                        return Ok(());
                    }
                    if tokio::time::Instant::now() > deadline {
                        return Err(Timeout::new(
                            format!("scenario {} did not settle", self.scenario),
                            SETTLE_TIMEOUT,
                        )
                        .into());
                    }
                }
            }
        }
    }

    /// Whether every object the scenario can see is in a state from which
    /// nothing more happens without time passing.
    async fn is_settled(&mut self) -> Result<bool> {
        let mut done = true;
        for ns in self.namespaces.clone() {
            let ns = &ns;
            let events = self.scheduling_events(ns).await?;
            for kind in [
                "Pod",
                "Deployment",
                "ReplicaSet",
                "StatefulSet",
                "DaemonSet",
                "Job",
            ] {
                let list = self
                    .api(kind, Some(ns))?
                    .list(&ListParams::default())
                    .await?;
                for o in list.items {
                    let v = serde_json::to_value(&o)?;
                    if !self.owned_by_scenario(ns, kind, &v) {
                        continue;
                    }
                    done &= match (kind, self.kubelet) {
                        // A real kubelet's pod must also have settled
                        // in itself (crash loops backed off, probes run).
                        ("Pod", Kubelet::Real) => {
                            self.hear_probes(ns, &v).await;
                            crate::cluster::settled::real_pod(
                                &v,
                                std::time::SystemTime::now(),
                                &self.heard,
                            ) && settled(kind, &v, &events, self.injector_answering)
                        }
                        _ => settled(kind, &v, &events, self.injector_answering),
                    };
                }
            }
        }
        Ok(done)
    }

    /// Reads the log of each running probe container of `pod` not yet
    /// heard, once per container ID, and records those that say they serve.
    /// A log that cannot be read (an apiserver that cannot reach the
    /// kubelet) counts as heard: settling then falls back to the uptime
    /// rule instead of hanging.
    async fn hear_probes(&mut self, ns: &str, pod: &Value) {
        let name = crate::object::meta_str(pod, "name");
        let api = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(self.client.clone(), ns);
        for (container, id) in crate::cluster::settled::unheard_probes(pod, &self.heard) {
            let params = kube::api::LogParams {
                container: Some(container.clone()),
                ..Default::default()
            };
            match api.logs(name, &params).await {
                Ok(log) if !injector_probe::says_serving(&log) => continue,
                Ok(_) => {}
                Err(e) => tracing::debug!(
                    "log of {ns}/{name} {container} unreadable ({e}); settling by uptime"
                ),
            }
            self.heard.insert(id);
        }
    }

    /// The scheduler's FailedScheduling events in `ns` that say no node fits,
    /// with the uid of the pod each is about.
    pub(super) async fn scheduling_events(&self, ns: &str) -> Result<Vec<(String, ObjectEvent)>> {
        let events = self
            .api("Event", Some(ns))?
            .list(&ListParams::default().fields(&format!("reason={FAILED_SCHEDULING}")))
            .await?;
        let mut out = Vec::new();
        for e in events.items {
            let v = serde_json::to_value(&e)?;
            if !crate::cluster::is_fit_error(v["message"].as_str().unwrap_or("")) {
                continue;
            }
            let involved = &v["involvedObject"];
            let text = |x: &Value| x.as_str().unwrap_or("").to_string();
            out.push((
                text(&involved["uid"]),
                ObjectEvent {
                    namespace: ns.to_string(),
                    kind: text(&involved["kind"]),
                    name: text(&involved["name"]),
                    reason: text(&v["reason"]),
                    message: text(&v["message"]),
                },
            ));
        }
        Ok(out)
    }
}

/// Whether an object is in a state that will not change by itself.
/// `events` are the namespace's FailedScheduling events with their pod's uid.
/// `injector_answering`: whether webhook calls succeed now; a ReplicaSet
/// whose last pod creation failed because the injector was unreachable
/// is then still to recover (the controller retries with back-off).
fn settled(
    kind: &str,
    v: &Value,
    events: &[(String, ObjectEvent)],
    injector_answering: bool,
) -> bool {
    match kind {
        // The fake kubelet has run the pod, or the scheduler has given up
        // on it for now: PodScheduled=False (Unschedulable) and the
        // FailedScheduling event with the same message are both written.
        // The scheduler retries only when the cluster changes (or after
        // minutes), as a crash-looping container restarts only after a
        // back-off. A terminating pod is not done.
        "Pod" => {
            let started = v["status"]["startTime"].is_string();
            let unschedulable = v["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "PodScheduled")
                .filter(|c| c["status"] == "False" && c["reason"] == "Unschedulable")
                .and_then(|c| c["message"].as_str())
                .is_some_and(|message| {
                    events.iter().any(|(uid, e)| {
                        uid == crate::object::meta_str(v, "uid")
                            && e.kind == "Pod"
                            && e.message == message
                    })
                });
            (started || unschedulable) && v["metadata"]["deletionTimestamp"].is_null()
        }
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            let generation = v["metadata"]["generation"].as_i64().unwrap_or(0);
            let observed = v["status"]["observedGeneration"].as_i64().unwrap_or(0) >= generation
                || kind == "Job";
            // The controller sets ReplicaFailure when a sync fails to create
            // pods and clears it on the next successful sync.
            let waiting_for_retry = injector_answering
                && v["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c["type"] == "ReplicaFailure"
                            && c["status"] == "True"
                            && is_unreachable_webhook(c["message"].as_str().unwrap_or(""))
                    });
            observed && !waiting_for_retry
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pending(uid: &str, message: &str) -> Value {
        json!({"metadata": {"name": "second", "namespace": "demo", "uid": uid},
               "status": {"phase": "Pending", "conditions": [
                   {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}})
    }

    fn event(uid: &str, message: &str) -> (String, ObjectEvent) {
        (
            uid.to_string(),
            ObjectEvent {
                namespace: "demo".into(),
                kind: "Pod".into(),
                name: "second".into(),
                reason: FAILED_SCHEDULING.into(),
                message: message.into(),
            },
        )
    }

    #[test]
    fn an_unschedulable_pod_with_its_event_is_settled() {
        let m = "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.";
        let pod = pending("u1", m);
        assert!(settled("Pod", &pod, &[event("u1", m)], true));
        // Not yet: the event is missing, is about another pod (a deleted
        // one of the same name), or carries an older message.
        assert!(!settled("Pod", &pod, &[], true));
        assert!(!settled("Pod", &pod, &[event("u0", m)], true));
        assert!(!settled(
            "Pod",
            &pod,
            &[event("u1", "0/1 nodes are available: 1 Insufficient cpu.")],
            true
        ));
        // A pod the scheduler has not looked at yet is not settled.
        let fresh = json!({"metadata": {"name": "p", "uid": "u2"}, "status": {"phase": "Pending"}});
        assert!(!settled("Pod", &fresh, &[], true));
        // A terminating pod is never settled.
        let mut deleting = pod.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        assert!(!settled("Pod", &deleting, &[event("u1", m)], true));
        // A pod the kubelet ran is settled as before.
        let ran =
            json!({"metadata": {"name": "p"}, "status": {"startTime": "2025-01-01T00:00:00Z"}});
        assert!(settled("Pod", &ran, &[], true));
    }

    fn replica_set(condition: Option<&str>) -> Value {
        let mut rs = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2}});
        if let Some(message) = condition {
            rs["status"]["conditions"] = json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}]);
        }
        rs
    }

    #[test]
    fn a_replicaset_failed_on_an_unreachable_injector_waits_for_its_retry_once_it_answers() {
        let refused = "Internal error occurred: failed calling webhook \"w\": failed to call webhook: Post \"https://127.0.0.1:1/mutate?timeout=10s\": dial tcp 127.0.0.1:1: connect: connection refused";
        let timed_out = "Internal error occurred: failed calling webhook \"w\": failed to call webhook: Post \"https://127.0.0.1:1/mutate?timeout=1s\": context deadline exceeded";
        for message in [refused, timed_out] {
            let rs = replica_set(Some(message));
            assert!(
                settled("ReplicaSet", &rs, &[], false),
                "final while the injector is down"
            );
            assert!(
                !settled("ReplicaSet", &rs, &[], true),
                "a retry will succeed: {message}"
            );
        }
        // A denial does not change by retrying, whatever the injector does.
        let denied = replica_set(Some(
            "admission webhook \"w\" denied the request: port clash",
        ));
        assert!(settled("ReplicaSet", &denied, &[], true));
        assert!(settled("ReplicaSet", &replica_set(None), &[], true));
        let mut behind = replica_set(None);
        behind["status"]["observedGeneration"] = json!(1);
        assert!(!settled("ReplicaSet", &behind, &[], true));
    }
}
