//! The apiserver's write path: how a pod or any other object is decoded,
//! defaulted, run through the built-in admission plugins and the mutating
//! webhooks (the real injector among them), named, validated and stored.
//! `Err` and recorded rejections carry the apiserver's refusal text.

use anyhow::Result;
use serde_json::{json, Value};

use super::store::SimCluster;
use super::{defaults, limit_ranger, metadata, quantities, validation};
use crate::admission::{Admitted, Attributes};
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
        let token_volume = format!("kube-api-access-{}", self.names.suffix());
        built_in_mutations(&mut pod, &limit_ranges, &token_volume)?;

        let labels = self.namespace_labels(&ns);
        let attrs = Attributes::pod_create(&ns, &labels);
        let webhooks = self.webhooks.clone();
        let before = pod.clone();
        let (mut pod, warnings) = match self.caller.admit(&webhooks, &attrs, pod).await {
            Admitted::Allowed { object, warnings } => (object, warnings),
            Admitted::Rejected(message) => return Err(message),
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
            built_in_mutations(&mut pod, &limit_ranges, &token_volume)?;
        }

        self.generate_name(&mut pod);
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        // Validation comes before storage, so an invalid pod is refused as
        // invalid even when its name is taken.
        validation::pod(&pod, self.minor)?;
        // Validating admission runs on the stored object, so a refusal
        // names the generated name, not the generateName prefix.
        if let Err(reason) = limit_ranger::validate(&pod, &limit_ranges) {
            return Err(format!("pods {name:?} is forbidden: {reason}"));
        }
        if self
            .pods
            .iter()
            .any(|p| p["metadata"]["namespace"] == ns && p["metadata"]["name"] == name)
        {
            return Err(format!("pods {name:?} already exists"));
        }
        for w in warnings {
            self.warnings.push((format!("{ns}/{name}"), w));
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
    /// apiserver does: decode (quantities), the namespace's existence, the
    /// kind's defaults, mutating webhooks whose rules name the kind (the
    /// image-swap webhook's `apps/v1 deployments`), then name and metadata
    /// validation.
    pub(super) async fn store(&mut self, mut object: Value) -> Result<()> {
        let kind = object["kind"].as_str().unwrap_or("").to_string();
        let ns = crate::object::namespace(&object).to_string();
        // A refusal names the object as the scenario wrote it.
        let written = crate::object::written_name(&object).to_string();
        let sent = object.clone();
        if let Err(e) = quantities::workload(&mut object) {
            self.record_rejection(&ns, &kind, &written, quantities::refusal(&sent, &e));
            return Ok(());
        }
        if !self.namespaces.contains_key(&ns) {
            self.record_rejection(&ns, &kind, &written, format!("namespaces {ns:?} not found"));
            return Ok(());
        }
        object["metadata"]["namespace"] = json!(ns);
        match kind.as_str() {
            "Deployment" => defaults::deployment(&mut object),
            "LimitRange" => limit_ranger::defaults(&mut object),
            "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => defaults::template(&mut object),
            _ => {}
        }
        let written_name = crate::object::meta_str(&object, "name").to_string();
        let updating = !written_name.is_empty()
            && self
                .objects
                .contains_key(&(kind.clone(), ns.clone(), written_name));
        if let Some(info) = crate::cluster::kind_info(&kind) {
            let labels = self.namespace_labels(&ns);
            let attrs = Attributes {
                operation: if updating { "UPDATE" } else { "CREATE" },
                group: info.group,
                version: info.version,
                kind: info.kind,
                resource: info.plural,
                namespace: &ns,
                namespace_labels: &labels,
            };
            let webhooks = self.webhooks.clone();
            match self.caller.admit(&webhooks, &attrs, object).await {
                Admitted::Allowed {
                    object: admitted,
                    warnings,
                } => {
                    object = admitted;
                    for w in warnings {
                        self.warnings.push((format!("{ns}/{written}"), w));
                    }
                }
                Admitted::Rejected(message) => {
                    self.record_rejection(&ns, &kind, &written, message);
                    return Ok(());
                }
            }
        }
        self.generate_name(&mut object);
        let name = crate::object::meta_str(&object, "name").to_string();
        let exists = self
            .objects
            .contains_key(&(kind.clone(), ns.clone(), name.clone()));
        let errs = if exists {
            metadata::on_update(&object["metadata"], self.minor)
        } else {
            metadata::on_create(&kind, &object["metadata"], self.minor)
        };
        if !errs.is_empty() {
            let message = metadata::invalid_message(&kind, &name, &errs);
            self.record_rejection(&ns, &kind, &written, message);
            return Ok(());
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
        self.objects.insert(key, object);
        Ok(())
    }
}

/// The built-in mutating admission plugins a pod meets on CREATE, in the
/// apiserver's order: LimitRanger, ServiceAccount, DefaultTolerationSeconds,
/// Priority. `Err` is the apiserver's refusal.
fn built_in_mutations(
    pod: &mut Value,
    limit_ranges: &[Value],
    token_volume: &str,
) -> Result<(), String> {
    limit_ranger::admit(pod, limit_ranges);
    defaults::service_account(pod, token_volume);
    defaults::tolerations_and_priority(pod);
    defaults::priority(pod).map_err(|reason| {
        // A mutating plugin runs before the name is generated.
        let name = pod["metadata"]["name"]
            .as_str()
            .or(pod["metadata"]["generateName"].as_str())
            .unwrap_or("");
        format!("pods {name:?} is forbidden: {reason}")
    })
}
