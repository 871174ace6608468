//! [`Cluster`] on a real cluster, over the jobs of this folder's modules.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use super::resources::{FIELD_MANAGER, SYSTEM_NAMESPACES};
use super::state::{KubeconfigCluster, Kubelet};
use crate::cluster::{Cluster, Observed, Rejection};

impl Cluster for KubeconfigCluster {
    async fn register(&mut self, webhooks: Vec<MutatingWebhook>) -> Result<()> {
        self.register_scoped(webhooks).await
    }

    async fn apply(&mut self, object: &Value) -> Result<()> {
        let kind = object["kind"].as_str().unwrap_or("").to_string();
        let name = crate::object::meta_str(object, "name").to_string();
        let (api, ns) = if kind == "Namespace" {
            (self.api(&kind, None)?, String::new())
        } else {
            let ns = crate::object::namespace(object).to_string();
            self.ensure_namespace(&ns).await?;
            (self.api(&kind, Some(&ns))?, ns)
        };
        let mut obj = object.clone();
        if kind != "Namespace" {
            obj["metadata"]["namespace"] = json!(ns);
        }
        // Server-side apply needs a name; an object with only generateName
        // is created as `kubectl create` does, by POST, and the apiserver
        // picks its name. Its refusals are reported under the prefix.
        let result = if name.is_empty() {
            let generate_name = crate::object::meta_str(object, "generateName").to_string();
            let dynamic: DynamicObject = serde_json::from_value(obj)
                .with_context(|| format!("{kind} {generate_name}: not an object"))?;
            let pp = PostParams {
                dry_run: false,
                field_manager: Some(FIELD_MANAGER.into()),
            };
            api.create(&pp, &dynamic)
                .await
                .map(|created| (created.metadata.name.unwrap_or_default(), generate_name))
        } else {
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&obj),
            )
            .await
            .map(|_| (name.clone(), name.clone()))
        };
        match result {
            Ok((created, _)) => {
                if SYSTEM_NAMESPACES.contains(&ns.as_str()) {
                    self.foreign.push((kind.clone(), ns.clone(), created));
                }
                Ok(())
            }
            // The apiserver's refusal (admission, validation) is a result.
            Err(kube::Error::Api(status)) => {
                self.rejections.push(Rejection {
                    namespace: ns,
                    kind,
                    name: crate::object::written_name(object).to_string(),
                    message: status.message.clone(),
                });
                Ok(())
            }
            Err(e) => Err(e).with_context(|| {
                format!("applying {kind} {}", crate::object::written_name(object))
            }),
        }
    }

    async fn label_namespace(
        &mut self,
        name: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        let api = self.api("Namespace", None)?;
        let patch = json!({"metadata": {"labels": labels}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn rollout_restart(&mut self, namespace: &str, kind: &str, name: &str) -> Result<()> {
        let api = self.api(kind, Some(namespace))?;
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": crate::object::now()}}}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn scale(
        &mut self,
        namespace: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> Result<()> {
        let api = self.api(kind, Some(namespace))?;
        let patch = json!({"spec": {"replicas": replicas}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    fn injector_answering(&mut self, answering: bool) {
        self.injector_answering = answering;
    }

    async fn settle(&mut self) -> Result<()> {
        self.settle_quietly().await
    }

    async fn observe(&mut self) -> Result<Observed> {
        self.observed().await
    }

    async fn diagnostics(&mut self) -> Vec<String> {
        let namespaces: Vec<String> = self.namespaces.iter().cloned().collect();
        let mut out = Vec::new();
        // The fake kubelet runs no containers, so has no logs to give.
        if self.kubelet == Kubelet::Real {
            let pods = match self.observe().await {
                Ok(o) => o.pods,
                Err(_) => Vec::new(),
            };
            out.extend(super::diagnostics::failing_container_logs(&self.client, &pods).await);
        }
        out.extend(super::diagnostics::events(&self.client, &namespaces).await);
        out
    }

    fn into_cleanup(mut self) -> crate::cluster::Removal {
        Box::pin(async move { self.cleanup().await })
    }
}
