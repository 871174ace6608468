//! `SimCluster` as a [`Cluster`] backend: the steps a scenario drives
//! (register, apply, label, rollout restart, scale), the settle loop that
//! lets controllers, scheduler and kubelet take turns, and the observation.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use serde_json::{json, Value};

use super::store::SimCluster;
use super::{controllers, metadata};
use crate::cluster::{Cluster, Observed};
use crate::scenario::Target;

impl Cluster for SimCluster {
    async fn register(&mut self, webhooks: Vec<MutatingWebhook>) -> Result<()> {
        // The apiserver validates a configuration before storing it.
        for (i, w) in webhooks.iter().enumerate() {
            if let Err(e) = crate::admission::check_registration(i, w) {
                bail!("the MutatingWebhookConfiguration is invalid: {e}");
            }
        }
        self.webhooks = webhooks;
        Ok(())
    }

    async fn patch(&mut self, target: &Target, patch: &Value) -> Result<()> {
        self.begin_request();
        let result = self.patch_object(target, patch).await;
        self.end_request(&target.namespace, &target.kind, &target.name);
        result
    }

    async fn delete(&mut self, target: &Target) -> Result<()> {
        self.begin_request();
        let result = self.delete_object(target).await;
        self.end_request(&target.namespace, &target.kind, &target.name);
        result
    }

    fn injector_answering(&mut self, answering: bool) {
        if !answering {
            self.caller.forget_connections();
        }
    }

    fn admission_log(&self) -> Vec<String> {
        SimCluster::admission_log(self)
    }

    async fn apply(&mut self, object: &Value) -> Result<()> {
        self.begin_request();
        let result = self.apply_one(object).await;
        let namespace = match self.resolve(object) {
            Some(k) if !k.namespaced => "",
            _ => crate::object::namespace(object),
        };
        let kind = object["kind"].as_str().unwrap_or("");
        self.end_request(namespace, kind, crate::object::written_name(object));
        result
    }

    async fn apply_dry_run(&mut self, object: &Value) -> Result<()> {
        // The whole write path runs, defaulting, webhooks and the built-in
        // plugins included; what it stored or charged is then put back,
        // and only what the client sees stays (a refusal, the warnings).
        let kept = (
            self.namespaces.clone(),
            self.objects.clone(),
            self.pods.clone(),
            self.counter,
        );
        self.dry_run = true;
        let result = self.apply(object).await;
        self.dry_run = false;
        (self.namespaces, self.objects, self.pods, self.counter) = kept;
        result
    }

    async fn label_namespace(
        &mut self,
        name: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        let Some(current) = self.namespaces.get(name) else {
            bail!("namespaces {name:?} not found");
        };
        let mut changed = current.clone();
        json_patch::merge(&mut changed, &json!({"metadata": {"labels": labels}}));
        self.begin_request();
        let security = self.namespace_security(&changed);
        self.end_request("", "Namespace", name);
        if let Err(message) = security {
            // The apiserver refuses the patch: the step fails, as on a
            // real cluster.
            bail!("{message}");
        }
        let Some(ns) = self.namespaces.get_mut(name) else {
            bail!("namespaces {name:?} not found");
        };
        for (k, v) in labels {
            match v {
                Some(v) => ns["metadata"]["labels"][k] = json!(v),
                None => {
                    if let Some(m) = ns["metadata"]["labels"].as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
        Ok(())
    }

    async fn rollout_restart(&mut self, namespace: &str, kind: &str, name: &str) -> Result<()> {
        // What `kubectl rollout restart` patches in, as an UPDATE through
        // the write path (webhooks, PodSecurity, the registry's warnings).
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:05:00Z"}}}}});
        self.controller_step(namespace, kind, name, &patch).await
    }

    async fn scale(
        &mut self,
        namespace: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> Result<()> {
        let patch = json!({"spec": {"replicas": replicas}});
        self.controller_step(namespace, kind, name, &patch).await
    }

    async fn settle(&mut self) -> Result<()> {
        // Controllers and the kubelet take turns until nothing changes. The
        // bound only guards against a modelling bug looping forever.
        self.backing_off.clear();
        for _ in 0..100 {
            let controllers = controllers::reconcile(self).await;
            let scheduler = self.run_scheduler()?;
            let kubelet = self.run_kubelet();
            if !controllers && !scheduler && !kubelet {
                return Ok(());
            }
        }
        bail!("the simulated cluster did not settle after 100 rounds")
    }

    async fn observe(&mut self) -> Result<Observed> {
        let mut workloads = Vec::new();
        for kind in [
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
        ] {
            workloads.extend(self.objects_of(kind));
        }
        let custom: Vec<crate::cluster::ApiKind> = self
            .objects_of("CustomResourceDefinition")
            .iter()
            .flat_map(crate::cluster::api_resources::defined_by)
            .collect();
        let objects = self
            .objects
            .values()
            .filter(|o| {
                custom
                    .iter()
                    .any(|k| o["kind"] == k.kind.as_str() && o["apiVersion"] == k.api_version())
            })
            .cloned()
            .collect();
        Ok(Observed {
            pods: self.pods.clone(),
            workloads,
            objects,
            rejections: self.rejections.clone(),
            warnings: self.warnings.clone(),
            events: self.events.clone(),
            kubernetes: Some(self.minor),
        })
    }
}

impl SimCluster {
    /// The merge patch a rollout restart or scale sends to a workload,
    /// which must exist (the step fails otherwise, as on a real cluster).
    async fn controller_step(
        &mut self,
        namespace: &str,
        kind: &str,
        name: &str,
        patch: &Value,
    ) -> Result<()> {
        if self.object_mut(kind, namespace, name).is_none() {
            bail!("{kind} {namespace}/{name} not found");
        }
        let target = Target {
            api_version: None,
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        self.patch(&target, patch).await
    }

    async fn apply_one(&mut self, object: &Value) -> Result<()> {
        let kind = object["kind"].as_str().unwrap_or("");
        let Some(api_kind) = self.resolve(object) else {
            // The client finds no such kind and sends nothing.
            let api_version = object["apiVersion"].as_str().unwrap_or("");
            let ns = crate::object::namespace(object).to_string();
            let name = crate::object::written_name(object).to_string();
            let message = crate::cluster::api_resources::no_match(api_version, kind);
            self.record_rejection(&ns, kind, &name, message);
            return Ok(());
        };
        match (api_kind.group.as_str(), kind) {
            ("", "Namespace") => {
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let errs = match self.namespaces.contains_key(&name) {
                    true => metadata::on_update(&object["metadata"], self.minor),
                    false => metadata::on_create("Namespace", &object["metadata"], self.minor),
                };
                if !errs.is_empty() {
                    let message = metadata::invalid_message("Namespace", &name, &errs);
                    self.record_rejection("", "Namespace", &name, message);
                    return Ok(());
                }
                if let Err(message) = self.namespace_security(object) {
                    self.record_rejection("", "Namespace", &name, message);
                    return Ok(());
                }
                match self.namespaces.get_mut(&name) {
                    Some(ns) => {
                        for (k, v) in object["metadata"]["labels"]
                            .as_object()
                            .into_iter()
                            .flatten()
                        {
                            ns["metadata"]["labels"][k] = v.clone();
                        }
                    }
                    None => self.create_namespace(object.clone()),
                }
            }
            ("", "Pod") => {
                let ns = crate::object::namespace(object).to_string();
                let name = crate::object::written_name(object).to_string();
                if let Some(message) = super::apply_typing::refusal(object, &api_kind) {
                    self.record_rejection(&ns, "Pod", &name, message);
                    return Ok(());
                }
                if let Err(message) = self.create_pod(object.clone()).await {
                    self.record_rejection(&ns, "Pod", &name, message);
                }
            }
            _ => {
                let built_in =
                    crate::cluster::api_resources::built_in(&api_kind.api_version(), kind);
                match built_in.and_then(|_| super::apply_typing::refusal(object, &api_kind)) {
                    Some(message) => {
                        let ns = match api_kind.namespaced {
                            true => crate::object::namespace(object),
                            false => "",
                        };
                        let name = crate::object::written_name(object);
                        self.record_rejection(ns, kind, name, message);
                    }
                    None => self.store(object.clone(), &api_kind).await?,
                }
            }
        }
        Ok(())
    }
}
