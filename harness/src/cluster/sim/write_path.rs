//! The apiserver's write path: how a pod or any other object is decoded,
//! defaulted, run through the built-in admission plugins and the mutating
//! webhooks (the real injector among them), named, validated and stored.
//! `Err` and recorded rejections carry the apiserver's refusal text.

use anyhow::Result;
use serde_json::{json, Value};

use super::store::SimCluster;
use super::{
    custom_resources, defaults, limit_ranger, metadata, pod_security, quantities,
    registry_warnings, validation,
};
use crate::admission::{Admitted, Attributes, Requester};
use crate::cluster::{api_resources, ApiKind};
use crate::kubelet;

impl SimCluster {
    /// Creates a pod the way the apiserver does: defaulting, built-in
    /// admission, mutating webhooks (re-defaulting after each), name
    /// generation, validation, then storage. `Err` is the apiserver's refusal.
    pub(crate) async fn create_pod(&mut self, mut pod: Value) -> Result<String, String> {
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        pod["metadata"]["namespace"] = json!(ns);
        pod["apiVersion"] = json!("v1");
        pod["kind"] = json!("Pod");
        // Decoding the body: quantities are read (and later written back)
        // in canonical form, or the request is refused before admission.
        let written = pod.clone();
        if let Some(spec) = pod.get_mut("spec") {
            quantities::pod_spec(spec).map_err(|e| quantities::refusal(&written, &e))?;
        }
        if !self.namespaces.contains_key(&ns) {
            return Err(format!("namespaces {ns:?} not found"));
        }
        let sa = pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        if !self.exists("ServiceAccount", &ns, &sa) {
            return Err(format!(
                "pods {:?} is forbidden: error looking up service account {ns}/{sa}: serviceaccount {sa:?} not found",
                pod["metadata"]["name"].as_str().or(pod["metadata"]["generateName"].as_str()).unwrap_or("")
            ));
        }
        defaults::pod(&mut pod);
        let limit_ranges: Vec<Value> = self
            .objects_of("LimitRange")
            .into_iter()
            .filter(|r| r["metadata"]["namespace"] == ns)
            .collect();
        let priority_classes = self.objects_of("PriorityClass");
        let token_volume = format!("kube-api-access-{}", self.names.suffix());
        built_in_mutations(&mut pod, &limit_ranges, &priority_classes, &token_volume)?;

        let labels = self.namespace_labels(&ns);
        // A controller's pod comes with its service account's identity.
        let owner = pod["metadata"]["ownerReferences"]
            .as_array()
            .and_then(|o| o.iter().find(|r| r["controller"] == true))
            .and_then(|r| r["kind"].as_str())
            .unwrap_or("");
        let attrs = Attributes {
            user: Requester::for_owner(owner),
            dry_run: self.dry_run,
            ..Attributes::pod_create(&ns, &labels)
        };
        let webhooks = self.webhooks.clone();
        let before = pod.clone();
        // A webhook's warnings reach the client even when it refuses.
        let mut pod = match self.caller.admit(&webhooks, &attrs, pod).await {
            Admitted::Allowed { object, warnings } => {
                self.recorder.extend(warnings);
                object
            }
            Admitted::Rejected { message, warnings } => {
                self.recorder.extend(warnings);
                return Err(message);
            }
        };
        // The patched object is decoded anew, which reads its quantities
        // and applies defaults again.
        let patched = pod.clone();
        if let Some(spec) = pod.get_mut("spec") {
            quantities::pod_spec(spec).map_err(|e| quantities::refusal(&patched, &e))?;
        }
        defaults::pod(&mut pod);
        if pod != before {
            // A webhook changed the pod: the apiserver runs the mutating
            // chain once more, built-in plugins included, so containers a
            // webhook added get the token mount and LimitRange defaults.
            // (The apiserver re-runs them before the webhooks it
            // reinvokes; here they follow, which differs only for a
            // reinvoked webhook that reads what they set.)
            built_in_mutations(&mut pod, &limit_ranges, &priority_classes, &token_volume)?;
        }

        self.generate_name(&mut pod);
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        // Validation comes before storage, so an invalid pod is refused as
        // invalid even when its name is taken.
        validation::pod(&pod, self.minor)?;
        // The registry's warnings, once the pod is valid.
        self.recorder.extend(registry_warnings::pod_create(&pod));
        // Validating admission runs on the stored object, so a refusal
        // names the generated name, not the generateName prefix.
        if let Err(reason) = limit_ranger::validate(&pod, &limit_ranges) {
            return Err(format!("pods {name:?} is forbidden: {reason}"));
        }
        // PodSecurity, for the namespace's enforce level (its warn level's
        // verdict goes back as warnings).
        let namespace = self.namespaces.get(&ns).cloned().unwrap_or_default();
        let security =
            pod_security::admit_pod_create(&pod, &name, &namespace, u64::from(self.minor.number()));
        if let Some(refusal) = security.refusal {
            return Err(refusal.message);
        }
        self.recorder.extend(security.warnings);
        // ResourceQuota is the last validating plugin.
        let pods = crate::cluster::kind_info("Pod").map(|k| k.to_api_kind());
        if let Some(pods) = &pods {
            self.quota_admission(pods, &name, &pod)?;
        }
        if self
            .pods
            .iter()
            .any(|p| p["metadata"]["namespace"] == ns && p["metadata"]["name"] == name)
        {
            return Err(format!("pods {name:?} already exists"));
        }
        self.stamp(&mut pod);
        // The apiserver sets the QoS class; the scheduler binds it later.
        pod["status"] = json!({"phase": "Pending", "qosClass": kubelet::qos_class(&pod)});
        self.pods.push(pod);
        Ok(name)
    }

    /// Fills `metadata.name` from `generateName` as the apiserver does on
    /// create: the prefix (cut to 58 characters) and five random characters.
    fn generate_name(&mut self, object: &mut Value) {
        let meta = &object["metadata"];
        if !meta["name"].as_str().unwrap_or("").is_empty() {
            return;
        }
        let Some(prefix) = meta["generateName"].as_str().filter(|p| !p.is_empty()) else {
            return;
        };
        let mut cut = prefix.len().min(58);
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        let name = format!("{}{}", &prefix[..cut], self.names.suffix());
        object["metadata"]["name"] = json!(name);
    }

    /// Creates or updates any object but a Pod or Namespace, as the
    /// apiserver does: decode (quantities; a custom object pruned and
    /// defaulted by its schema), the namespace's existence, the kind's
    /// defaults, mutating webhooks whose rules name the kind (the
    /// image-swap webhook's `apps/v1 deployments`), then name, metadata and
    /// schema validation. A cluster-scoped object has no namespace.
    pub(super) async fn store(&mut self, mut object: Value, api_kind: &ApiKind) -> Result<()> {
        let kind = api_kind.kind.clone();
        let ns = if api_kind.namespaced {
            crate::object::namespace(&object).to_string()
        } else {
            String::new()
        };
        // A refusal names the object as the scenario wrote it.
        let written = crate::object::written_name(&object).to_string();
        let sent = object.clone();
        if let Err(e) = quantities::workload(&mut object) {
            self.record_rejection(&ns, &kind, &written, quantities::refusal(&sent, &e));
            return Ok(());
        }
        if api_kind.namespaced {
            if !self.namespaces.contains_key(&ns) {
                self.record_rejection(&ns, &kind, &written, format!("namespaces {ns:?} not found"));
                return Ok(());
            }
            object["metadata"]["namespace"] = json!(ns);
        } else if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
        let schema = if api_resources::built_in(&api_kind.api_version(), &kind).is_some() {
            None
        } else {
            self.definition_of(api_kind)
                .and_then(|d| custom_resources::schema(&d, api_kind).cloned())
        };
        if let Some(schema) = &schema {
            // Server-side apply (a named object) types the whole object
            // first and refuses what the schema does not declare; a POST
            // (generateName) prunes it.
            let fields = custom_resources::undeclared(&object, schema);
            if !fields.is_empty() && !written_name_of(&object).is_empty() {
                let message = custom_resources::undeclared_refusal(&object, api_kind, &fields);
                self.record_rejection(&ns, &kind, &written, message);
                return Ok(());
            }
            // Decoding reports what it drops, before admission.
            self.recorder
                .extend(custom_resources::unknown_field_warnings(&object, schema));
            custom_resources::decode(&mut object, schema);
        }
        match (api_kind.group.as_str(), kind.as_str()) {
            ("apps", "Deployment") => defaults::deployment(&mut object),
            ("", "LimitRange") => limit_ranger::defaults(&mut object),
            ("apps", "StatefulSet" | "DaemonSet" | "ReplicaSet") | ("batch", "Job") => {
                defaults::template(&mut object)
            }
            _ => {}
        }
        let written_name = crate::object::meta_str(&object, "name").to_string();
        let old = self
            .objects
            .get(&(kind.clone(), ns.clone(), written_name))
            .cloned();
        let updating = old.is_some();
        let labels = self.namespace_labels(&ns);
        let attrs = Attributes {
            operation: if updating { "UPDATE" } else { "CREATE" },
            group: &api_kind.group,
            version: &api_kind.version,
            kind: &api_kind.kind,
            resource: &api_kind.plural,
            namespace: &ns,
            namespace_labels: &labels,
            user: Requester::Harness,
            old_object: old.as_ref(),
            dry_run: self.dry_run,
        };
        let webhooks = self.webhooks.clone();
        match self.caller.admit(&webhooks, &attrs, object).await {
            Admitted::Allowed {
                object: admitted,
                warnings,
            } => {
                object = admitted;
                self.recorder.extend(warnings);
            }
            Admitted::Rejected { message, warnings } => {
                self.recorder.extend(warnings);
                self.record_rejection(&ns, &kind, &written, message);
                return Ok(());
            }
        }
        self.generate_name(&mut object);
        let name = crate::object::meta_str(&object, "name").to_string();
        let exists = self
            .objects
            .contains_key(&(kind.clone(), ns.clone(), name.clone()));
        let mut errs = if exists {
            metadata::on_update(&object["metadata"], self.minor)
        } else {
            metadata::on_create_scoped(&kind, &object["metadata"], self.minor, api_kind.namespaced)
        };
        if let Some(schema) = &schema {
            // What a webhook returned is decoded again.
            custom_resources::decode(&mut object, schema);
            errs.extend(custom_resources::validate(&object, schema));
        }
        let definition = (api_kind.group == "apiextensions.k8s.io"
            && kind == "CustomResourceDefinition")
            .then_some(());
        if definition.is_some() {
            if let Err(e) = custom_resources::check_definition(&object) {
                errs.push(e);
            }
        }
        if !errs.is_empty() {
            let message = metadata::invalid_message(&api_kind.qualified_kind(), &name, &errs);
            self.record_rejection(&ns, &kind, &written, message);
            return Ok(());
        }
        // The registry's warnings, once the object is valid.
        let stored = self.objects.get(&(kind.clone(), ns.clone(), name.clone()));
        if api_resources::built_in(&api_kind.api_version(), &kind).is_some() {
            let old = stored.cloned();
            self.recorder
                .extend(registry_warnings::controller(&kind, &object, old.as_ref()));
        }
        if api_kind.group == "apps" || api_kind.group == "batch" || api_kind.group.is_empty() {
            // PodSecurity warns about a pod controller's template and never
            // refuses it.
            let namespace = self.namespaces.get(&ns).cloned().unwrap_or_default();
            let security = pod_security::admit_pod_controller(
                &kind,
                &object,
                &namespace,
                u64::from(self.minor.number()),
            );
            self.recorder.extend(security.warnings);
        }
        if !exists {
            if let Err(message) = self.quota_admission(api_kind, &name, &object) {
                self.record_rejection(&ns, &kind, &written, message);
                return Ok(());
            }
        }
        if definition.is_some() {
            custom_resources::establish(&mut object);
        }
        let key = (kind, ns, name);
        match self.objects.get(&key) {
            Some(old) => {
                // An update: keep identity, bump generation on spec change.
                let meta = old["metadata"].clone();
                let changed = old.get("spec") != object.get("spec");
                let generation = meta["generation"].as_i64().unwrap_or(1) + i64::from(changed);
                let n = self.next();
                for k in ["uid", "creationTimestamp"] {
                    object["metadata"][k] = meta[k].clone();
                }
                object["metadata"]["resourceVersion"] = json!(n.to_string());
                object["metadata"]["generation"] = json!(generation);
            }
            None => self.stamp(&mut object),
        }
        let quota = key.0 == "ResourceQuota";
        self.objects.insert(key, object);
        if quota {
            // The controller gives a new quota its status before anything
            // after it is admitted (the harness waits for that on a real
            // cluster).
            self.sync_quotas();
        }
        Ok(())
    }
}

/// The name an object was sent with (none: it has only a generateName).
fn written_name_of(object: &Value) -> &str {
    crate::object::meta_str(object, "name")
}

/// The built-in mutating admission plugins a pod meets on CREATE, in the
/// apiserver's order: LimitRanger, ServiceAccount, DefaultTolerationSeconds,
/// Priority. `Err` is the apiserver's refusal.
fn built_in_mutations(
    pod: &mut Value,
    limit_ranges: &[Value],
    priority_classes: &[Value],
    token_volume: &str,
) -> Result<(), String> {
    limit_ranger::admit(pod, limit_ranges);
    defaults::service_account(pod, token_volume);
    defaults::tolerations_and_priority(pod);
    defaults::priority(pod, priority_classes).map_err(|reason| {
        // A mutating plugin runs before the name is generated.
        let name = pod["metadata"]["name"]
            .as_str()
            .or(pod["metadata"]["generateName"].as_str())
            .unwrap_or("");
        format!("pods {name:?} is forbidden: {reason}")
    })
}
