//! Reading what a scenario made: its pods and workloads, refusals (its own
//! and its controllers'), and the scheduler's verdicts.

use anyhow::Result;
use kube::api::ListParams;
use serde_json::{json, Value};

use super::resources::{SYSTEM_NAMESPACES, WORKLOAD_KINDS};
use super::state::{KubeconfigCluster, Kubelet};
use crate::cluster::{Observed, Rejection};

impl KubeconfigCluster {
    /// [`crate::cluster::Cluster::observe`] on a real cluster.
    pub(super) async fn observed(&mut self) -> Result<Observed> {
        let mut pods = Vec::new();
        let mut workloads = Vec::new();
        for ns in &self.namespaces {
            for o in self
                .api("Pod", Some(ns))?
                .list(&ListParams::default())
                .await?
                .items
            {
                let mut v = serde_json::to_value(&o)?;
                if self.owned_by_scenario(ns, "Pod", &v) {
                    if self.kubelet == Kubelet::Real {
                        crate::cluster::settled::as_backing_off(&mut v);
                    }
                    pods.push(v);
                }
            }
            for kind in WORKLOAD_KINDS {
                for o in self
                    .api(kind, Some(ns))?
                    .list(&ListParams::default())
                    .await?
                    .items
                {
                    let mut v = serde_json::to_value(&o)?;
                    if !self.owned_by_scenario(ns, kind, &v) {
                        continue;
                    }
                    v["kind"] = json!(kind);
                    workloads.push(v);
                }
            }
        }
        let mut objects = Vec::new();
        for (resource, namespaced) in &self.custom_kinds {
            let lists: Vec<kube::Api<kube::api::DynamicObject>> = if *namespaced {
                self.namespaces
                    .iter()
                    .map(|ns| kube::Api::namespaced_with(self.client.clone(), ns, resource))
                    .collect()
            } else {
                vec![kube::Api::all_with(self.client.clone(), resource)]
            };
            let mine = ListParams::default().labels(&format!(
                "{}={}",
                crate::isolation::RUN_LABEL,
                self.run
            ));
            for api in lists {
                for o in api.list(&mine).await?.items {
                    let mut v = serde_json::to_value(&o)?;
                    v["apiVersion"] = json!(resource.api_version);
                    v["kind"] = json!(resource.kind);
                    objects.push(v);
                }
            }
        }
        let mut rejections = self.rejections.clone();
        for r in self.failed_creates().await? {
            if !rejections.contains(&r) {
                rejections.push(r);
            }
        }
        let mut events = Vec::new();
        for ns in &self.namespaces {
            for (_, e) in self.scheduling_events(ns).await? {
                // In a shared namespace, only the scenario's own pods count.
                let foreign = SYSTEM_NAMESPACES.contains(&ns.as_str())
                    && !self
                        .foreign
                        .iter()
                        .any(|(k, n, name)| k == "Pod" && n == ns && *name == e.name);
                if !foreign && !events.contains(&e) {
                    events.push(e);
                }
            }
        }
        let kubernetes = self
            .client
            .apiserver_version()
            .await
            .ok()
            .and_then(|v| crate::version::Minor::parse(&v.git_version).ok());
        Ok(Observed {
            pods,
            workloads,
            objects,
            rejections,
            warnings: self.warnings.clone(),
            events,
            kubernetes,
        })
    }

    async fn failed_creates(&self) -> Result<Vec<Rejection>> {
        let mut out = Vec::new();
        for ns in &self.namespaces {
            let events = self
                .api("Event", Some(ns))?
                .list(&ListParams::default())
                .await?;
            for e in events.items {
                let v = serde_json::to_value(&e)?;
                if v["reason"] != "FailedCreate" {
                    continue;
                }
                let kind = v["involvedObject"]["kind"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let name = v["involvedObject"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let (kind, name) = self.top_owner(ns, &kind, &name).await;
                // The event recorder folds a burst of like events into
                // one, saying so first; the refusal is the same.
                let message = v["message"].as_str().unwrap_or("");
                let message = message
                    .strip_prefix("(combined from similar events): ")
                    .unwrap_or(message)
                    .to_string();
                let r = Rejection {
                    namespace: ns.clone(),
                    kind,
                    name,
                    message,
                };
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// The workload the scenario applied that owns `kind/name`.
    async fn top_owner(&self, ns: &str, kind: &str, name: &str) -> (String, String) {
        let (mut kind, mut name) = (kind.to_string(), name.to_string());
        for _ in 0..4 {
            let Ok(api) = self.api(&kind, Some(ns)) else {
                break;
            };
            let Ok(Some(obj)) = api.get_opt(&name).await else {
                break;
            };
            let v = serde_json::to_value(&obj).unwrap_or(Value::Null);
            match v["metadata"]["ownerReferences"]
                .as_array()
                .and_then(|o| o.first())
            {
                Some(r) => {
                    kind = r["kind"].as_str().unwrap_or("").to_string();
                    name = r["name"].as_str().unwrap_or("").to_string();
                }
                None => break,
            }
        }
        (kind, name)
    }
}
