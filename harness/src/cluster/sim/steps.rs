//! The steps that change one stored object: a merge patch, admitted as an
//! UPDATE, and a delete, admitted as a DELETE and followed by the garbage
//! collector's removal of what the object owned.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::store::SimCluster;
use super::{metadata, pod_security};
use crate::admission::{Admitted, Attributes, Requester};
use crate::cluster::{api_resources, ApiKind};
use crate::scenario::Target;

impl SimCluster {
    /// The target's kind and its stored object, or the refusal recorded.
    fn find(&mut self, target: &Target) -> Option<(ApiKind, Value)> {
        let Some(kind) = self.resolve(&target.stub()) else {
            let api_version = target.api_version().unwrap_or_default();
            let message = api_resources::no_match(&api_version, &target.kind);
            self.record_rejection(&target.namespace, &target.kind, &target.name, message);
            return None;
        };
        let ns = if kind.namespaced {
            target.namespace.as_str()
        } else {
            ""
        };
        let found = match (kind.group.as_str(), kind.kind.as_str()) {
            ("", "Namespace") => self.namespaces.get(&target.name).cloned(),
            ("", "Pod") => self
                .pods
                .iter()
                .find(|p| {
                    p["metadata"]["namespace"] == ns
                        && p["metadata"]["name"] == target.name.as_str()
                })
                .cloned(),
            _ => self
                .objects
                .get(&(kind.kind.clone(), ns.to_string(), target.name.clone()))
                .cloned(),
        };
        match found {
            Some(object) => Some((kind, object)),
            None => {
                // The apiserver's NotFound, naming the resource.
                let message = format!("{} {:?} not found", kind.qualified_resource(), target.name);
                self.record_rejection(&target.namespace, &target.kind, &target.name, message);
                None
            }
        }
    }

    /// `kubectl patch --type merge`.
    pub(super) async fn patch_object(&mut self, target: &Target, patch: &Value) -> Result<()> {
        let Some((kind, old)) = self.find(target) else {
            return Ok(());
        };
        let mut patched = old.clone();
        json_patch::merge(&mut patched, patch);
        match (kind.group.as_str(), kind.kind.as_str()) {
            ("", "Pod") => self.update_pod(target, &old, patched).await,
            ("", "Namespace") => {
                let errs = metadata::on_update(&patched["metadata"], self.minor);
                if !errs.is_empty() {
                    let message = metadata::invalid_message("Namespace", &target.name, &errs);
                    self.record_rejection("", "Namespace", &target.name, message);
                } else {
                    self.namespaces.insert(target.name.clone(), patched);
                }
                Ok(())
            }
            _ => self.store(patched, &kind).await,
        }
    }

    /// A pod UPDATE: only its metadata may change here. A real apiserver
    /// allows a few spec fields too (images, activeDeadlineSeconds, added
    /// tolerations) and refuses the rest with a long message the sim does
    /// not model, so a step that changes the spec is the scenario's error.
    async fn update_pod(&mut self, target: &Target, old: &Value, mut pod: Value) -> Result<()> {
        if pod["spec"] != old["spec"] {
            bail!(
                "the simulated cluster models pod updates of metadata only; this patch changes pod {}/{}'s spec",
                target.namespace,
                target.name
            );
        }
        let ns = target.namespace.clone();
        let labels = self.namespace_labels(&ns);
        let attrs = Attributes {
            operation: "UPDATE",
            old_object: Some(old),
            user: Requester::Harness,
            ..Attributes::pod_create(&ns, &labels)
        };
        let webhooks = self.webhooks.clone();
        pod = match self.caller.admit(&webhooks, &attrs, pod).await {
            Admitted::Allowed { object, warnings } => {
                self.recorder.extend(warnings);
                object
            }
            Admitted::Rejected { message, warnings } => {
                self.recorder.extend(warnings);
                self.record_rejection(&ns, "Pod", &target.name, message);
                return Ok(());
            }
        };
        if pod["spec"] != old["spec"] {
            let message = format!(
                "Pod {:?} is invalid: spec: Forbidden: pod updates may not change fields other than the allowed ones (a webhook changed the spec on UPDATE)",
                target.name
            );
            self.record_rejection(&ns, "Pod", &target.name, message);
            return Ok(());
        }
        let errs = metadata::on_update(&pod["metadata"], self.minor);
        if !errs.is_empty() {
            let message = metadata::invalid_message("Pod", &target.name, &errs);
            self.record_rejection(&ns, "Pod", &target.name, message);
            return Ok(());
        }
        // PodSecurity skips updates that change no image (this one).
        let namespace = self.namespaces.get(&ns).cloned().unwrap_or_default();
        let minor = u64::from(self.minor.number());
        let security =
            pod_security::admit_pod_update(&pod, old, &target.name, "", &namespace, minor);
        self.recorder.extend(security.warnings);
        if let Some(refusal) = security.refusal {
            self.record_rejection(&ns, "Pod", &target.name, refusal.message);
            return Ok(());
        }
        let n = self.next();
        pod["metadata"]["resourceVersion"] = json!(n.to_string());
        if let Some(slot) = self.pods.iter_mut().find(|p| {
            p["metadata"]["namespace"] == ns.as_str()
                && p["metadata"]["name"] == target.name.as_str()
        }) {
            *slot = pod;
        }
        Ok(())
    }

    /// `kubectl delete`: DELETE admission (the review's object is null,
    /// oldObject the stored one), then the object goes and, in the
    /// background, everything it owned.
    pub(super) async fn delete_object(&mut self, target: &Target) -> Result<()> {
        let Some((kind, old)) = self.find(target) else {
            return Ok(());
        };
        let ns = if kind.namespaced {
            target.namespace.clone()
        } else {
            String::new()
        };
        let labels = self.namespace_labels(&ns);
        let attrs = Attributes {
            operation: "DELETE",
            group: &kind.group,
            version: &kind.version,
            kind: &kind.kind,
            resource: &kind.plural,
            namespace: &ns,
            namespace_labels: &labels,
            user: Requester::Harness,
            old_object: Some(&old),
            dry_run: false,
        };
        let webhooks = self.webhooks.clone();
        match self.caller.admit(&webhooks, &attrs, old.clone()).await {
            Admitted::Allowed { warnings, .. } => self.recorder.extend(warnings),
            Admitted::Rejected { message, warnings } => {
                self.recorder.extend(warnings);
                self.record_rejection(&target.namespace, &target.kind, &target.name, message);
                return Ok(());
            }
        }
        match (kind.group.as_str(), kind.kind.as_str()) {
            ("", "Pod") => self.delete_pod(&ns, &target.name),
            ("", "Namespace") => {
                self.namespaces.remove(&target.name);
                let gone = target.name.clone();
                self.objects.retain(|(_, n, _), _| *n != gone);
                let pods: Vec<String> = self
                    .pods
                    .iter()
                    .filter(|p| p["metadata"]["namespace"] == gone.as_str())
                    .map(|p| crate::object::meta_str(p, "name").to_string())
                    .collect();
                for p in pods {
                    self.delete_pod(&gone, &p);
                }
            }
            _ => {
                self.objects
                    .remove(&(kind.kind.clone(), ns.clone(), target.name.clone()));
                self.collect_garbage();
            }
        }
        Ok(())
    }

    /// The garbage collector: objects and pods whose controlling owner is
    /// gone go too, until nothing more does.
    fn collect_garbage(&mut self) {
        loop {
            let live: std::collections::BTreeSet<String> = self
                .objects
                .values()
                .chain(self.namespaces.values())
                .filter_map(|o| o["metadata"]["uid"].as_str().map(str::to_string))
                .collect();
            let orphaned = |o: &Value| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| {
                        !refs.is_empty()
                            && refs
                                .iter()
                                .all(|r| !live.contains(r["uid"].as_str().unwrap_or("")))
                    })
            };
            let objects_before = self.objects.len();
            self.objects.retain(|_, o| !orphaned(o));
            let pods: Vec<(String, String)> = self
                .pods
                .iter()
                .filter(|p| orphaned(p))
                .map(|p| {
                    (
                        crate::object::namespace(p).to_string(),
                        crate::object::meta_str(p, "name").to_string(),
                    )
                })
                .collect();
            let removed_pods = !pods.is_empty();
            for (ns, name) in pods {
                self.delete_pod(&ns, &name);
            }
            if self.objects.len() == objects_before && !removed_pods {
                return;
            }
        }
    }
}
