//! [`Cluster`] on a real cluster, over the jobs of this folder's modules.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use super::resources::{FIELD_MANAGER, SYSTEM_NAMESPACES};
use super::state::{KubeconfigCluster, Kubelet, Outside};
use crate::cluster::{Cluster, Observed, Rejection};
use crate::scenario::Target;

impl KubeconfigCluster {
    /// The API a step's target is reached through, found by discovery;
    /// `None` when the API does not serve its kind (recorded as refused).
    async fn target_api(&mut self, target: &Target) -> Result<Option<Api<DynamicObject>>> {
        match self.resolve(&target.stub()).await? {
            Ok((resource, true)) => Ok(Some(Api::namespaced_with(
                self.client.clone(),
                &target.namespace,
                &resource,
            ))),
            Ok((resource, false)) => Ok(Some(Api::all_with(self.client.clone(), &resource))),
            Err(message) => {
                self.rejections.push(Rejection {
                    namespace: target.namespace.clone(),
                    kind: target.kind.clone(),
                    name: target.name.clone(),
                    message,
                });
                Ok(None)
            }
        }
    }

    /// The apiserver's refusal of a step is a result; anything else fails it.
    fn step_refused(&mut self, target: &Target, e: kube::Error) -> Result<()> {
        match e {
            kube::Error::Api(status) => {
                self.rejections.push(Rejection {
                    namespace: target.namespace.clone(),
                    kind: target.kind.clone(),
                    name: target.name.clone(),
                    message: status.message,
                });
                Ok(())
            }
            other => Err(other).with_context(|| format!("{} {}", target.kind, target.name)),
        }
    }
}

impl Cluster for KubeconfigCluster {
    async fn register(&mut self, webhooks: Vec<MutatingWebhook>) -> Result<()> {
        self.register_scoped(webhooks).await
    }

    async fn apply(&mut self, object: &Value) -> Result<()> {
        self.write(object, false).await
    }

    async fn apply_dry_run(&mut self, object: &Value) -> Result<()> {
        self.write(object, true).await
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

    async fn patch(&mut self, target: &Target, patch: &Value) -> Result<()> {
        let Some(api) = self.target_api(target).await? else {
            return Ok(());
        };
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        if let Err(e) = api.patch(&target.name, &pp, &Patch::Merge(patch)).await {
            self.step_refused(target, e)?;
        }
        Ok(())
    }

    async fn delete(&mut self, target: &Target) -> Result<()> {
        let Some(api) = self.target_api(target).await? else {
            return Ok(());
        };
        if let Err(e) = api.delete(&target.name, &DeleteParams::background()).await {
            self.step_refused(target, e)?;
        }
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

impl KubeconfigCluster {
    /// Server-side apply of one object (POST for one with only a
    /// generateName), or its dry run, which keeps nothing to clean up.
    async fn write(&mut self, object: &Value, dry_run: bool) -> Result<()> {
        let kind = object["kind"].as_str().unwrap_or("").to_string();
        let name = crate::object::meta_str(object, "name").to_string();
        let written = crate::object::written_name(object).to_string();
        let (resource, namespaced) = match self.resolve(object).await? {
            Ok(found) => found,
            Err(message) => {
                // Refused by the client: nothing is sent.
                let namespace = crate::object::namespace(object).to_string();
                self.rejections.push(Rejection {
                    namespace,
                    kind,
                    name: written,
                    message,
                });
                return Ok(());
            }
        };
        let mut obj = object.clone();
        let (api, ns) = if namespaced {
            let ns = crate::object::namespace(object).to_string();
            self.ensure_namespace(&ns).await?;
            obj["metadata"]["namespace"] = json!(ns);
            (
                Api::<DynamicObject>::namespaced_with(self.client.clone(), &ns, &resource),
                ns,
            )
        } else {
            if let Some(meta) = obj["metadata"].as_object_mut() {
                meta.remove("namespace");
            }
            (
                Api::<DynamicObject>::all_with(self.client.clone(), &resource),
                String::new(),
            )
        };
        // Server-side apply needs a name; an object with only generateName
        // is created as `kubectl create` does, by POST, and the apiserver
        // picks its name. Its refusals are reported under the prefix.
        let result = if name.is_empty() {
            let dynamic: DynamicObject = serde_json::from_value(obj)
                .with_context(|| format!("{kind} {written}: not an object"))?;
            let pp = PostParams {
                dry_run,
                field_manager: Some(FIELD_MANAGER.into()),
            };
            api.create(&pp, &dynamic)
                .await
                .map(|created| created.metadata.name.unwrap_or_default())
        } else {
            let mut pp = PatchParams::apply(FIELD_MANAGER).force();
            pp.dry_run = dry_run;
            api.patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .map(|_| name.clone())
        };
        match result {
            Ok(_) if dry_run => Ok(()),
            Ok(created) => {
                let system = SYSTEM_NAMESPACES.contains(&ns.as_str());
                if system {
                    self.foreign
                        .push((kind.clone(), ns.clone(), created.clone()));
                }
                if system || !namespaced {
                    let namespace = namespaced.then(|| ns.clone());
                    let known = self.outside.iter().any(|o| {
                        o.resource == resource && o.namespace == namespace && o.name == created
                    });
                    if !known {
                        self.outside.push(Outside {
                            resource: resource.clone(),
                            namespace,
                            name: created.clone(),
                        });
                    }
                }
                if resource.group.is_empty() && kind == "ResourceQuota" {
                    self.wait_quota_synced(&ns, &created).await?;
                }
                if resource.group == "apiextensions.k8s.io" && kind == "CustomResourceDefinition" {
                    self.wait_established(&created).await?;
                    for defined in crate::cluster::api_resources::defined_by(object) {
                        let probe =
                            json!({"apiVersion": defined.api_version(), "kind": defined.kind});
                        if let Ok(found) = self.resolve(&probe).await? {
                            if !self.custom_kinds.contains(&found) {
                                self.custom_kinds.push(found);
                            }
                        }
                    }
                }
                Ok(())
            }
            // The apiserver's refusal (admission, validation) is a result.
            Err(kube::Error::Api(status)) => {
                self.rejections.push(Rejection {
                    namespace: ns,
                    kind,
                    name: written,
                    message: status.message.clone(),
                });
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("applying {kind} {written}")),
        }
    }
}
