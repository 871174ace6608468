//! [`Cluster`] on a real cluster, over the jobs of this folder's modules.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::Resource;
use serde_json::{json, Value};

use super::resources::{api_resource, FIELD_MANAGER, SYSTEM_NAMESPACES};
use super::state::{KubeconfigCluster, Kubelet, Outside};
use super::write_request;
use crate::cluster::{Cluster, Observed, Rejection, Warning};
use crate::scenario::Target;

impl KubeconfigCluster {
    /// The resource a step's target is reached through, found by
    /// discovery, and its path; `None` when the API does not serve its
    /// kind (recorded as refused).
    async fn target_request(&mut self, target: &Target) -> Result<Option<kube::core::Request>> {
        match self.resolve(&target.stub()).await? {
            Ok((resource, namespaced)) => Ok(Some(request_for(
                &resource,
                namespaced.then_some(target.namespace.as_str()),
            ))),
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

    /// Sends one of the scenario's writes; the warnings it gets back are
    /// kept under the object as the scenario named it. The outer `Err` is
    /// a request that could not be made or sent.
    async fn send_write(
        &mut self,
        request: std::result::Result<http::Request<Vec<u8>>, kube::core::request::Error>,
        (namespace, kind, name): (&str, &str, &str),
    ) -> Result<std::result::Result<Value, kube::Error>> {
        let request = request.with_context(|| format!("building the request for {kind} {name}"))?;
        let sent = write_request::send(&self.client, request)
            .await
            .with_context(|| format!("sending {kind} {name}"))?;
        for message in sent.warnings {
            self.warnings.push(Warning {
                namespace: namespace.into(),
                kind: kind.into(),
                name: name.into(),
                message,
            });
        }
        Ok(sent.result)
    }

    /// A merge patch of a built-in workload or namespace (a step's
    /// label, rollout restart or scale); a refusal fails the step.
    async fn merge_patch(
        &mut self,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<()> {
        let (resource, namespaced) = api_resource(kind)
            .ok_or_else(|| anyhow::anyhow!("the harness cannot patch a {kind}"))?;
        let ns = if namespaced { ns } else { None };
        let request =
            request_for(&resource, ns).patch(name, &PatchParams::default(), &Patch::Merge(patch));
        self.send_write(request, (ns.unwrap_or(""), kind, name))
            .await?
            .with_context(|| format!("patching {kind} {name}"))?;
        Ok(())
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
        let patch = json!({"metadata": {"labels": labels}});
        self.merge_patch("Namespace", None, name, &patch).await
    }

    async fn rollout_restart(&mut self, namespace: &str, kind: &str, name: &str) -> Result<()> {
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": crate::object::now()}}}}});
        self.merge_patch(kind, Some(namespace), name, &patch).await
    }

    async fn scale(
        &mut self,
        namespace: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> Result<()> {
        let patch = json!({"spec": {"replicas": replicas}});
        self.merge_patch(kind, Some(namespace), name, &patch).await
    }

    async fn patch(&mut self, target: &Target, patch: &Value) -> Result<()> {
        let Some(request) = self.target_request(target).await? else {
            return Ok(());
        };
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let request = request.patch(&target.name, &pp, &Patch::Merge(patch));
        let who = (
            target.namespace.as_str(),
            target.kind.as_str(),
            target.name.as_str(),
        );
        if let Err(e) = self.send_write(request, who).await? {
            self.step_refused(target, e)?;
        }
        Ok(())
    }

    async fn delete(&mut self, target: &Target) -> Result<()> {
        let Some(request) = self.target_request(target).await? else {
            return Ok(());
        };
        let request = request.delete(&target.name, &DeleteParams::background());
        let who = (
            target.namespace.as_str(),
            target.kind.as_str(),
            target.name.as_str(),
        );
        if let Err(e) = self.send_write(request, who).await? {
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
        let ns = if namespaced {
            let ns = crate::object::namespace(object).to_string();
            self.ensure_namespace(&ns).await?;
            obj["metadata"]["namespace"] = json!(ns);
            ns
        } else {
            if let Some(meta) = obj["metadata"].as_object_mut() {
                meta.remove("namespace");
            }
            String::new()
        };
        let api = request_for(&resource, namespaced.then_some(ns.as_str()));
        let who = (ns.as_str(), kind.as_str(), written.as_str());
        // Server-side apply needs a name; an object with only generateName
        // is created as `kubectl create` does, by POST, and the apiserver
        // picks its name. Its refusals are reported under the prefix.
        let result = if name.is_empty() {
            let pp = PostParams {
                dry_run,
                field_manager: Some(FIELD_MANAGER.into()),
            };
            let body = serde_json::to_vec(&obj)?;
            self.send_write(api.create(&pp, body), who)
                .await?
                .map(|created| crate::object::meta_str(&created, "name").to_string())
        } else {
            let mut pp = PatchParams::apply(FIELD_MANAGER).force();
            pp.dry_run = dry_run;
            self.send_write(api.patch(&name, &pp, &Patch::Apply(&obj)), who)
                .await?
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

/// Requests to `resource`, in namespace `ns` when it is namespaced.
fn request_for(resource: &ApiResource, ns: Option<&str>) -> kube::core::Request {
    kube::core::Request::new(DynamicObject::url_path(resource, ns))
}
