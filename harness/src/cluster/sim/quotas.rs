//! ResourceQuota on the sim: the admission plugin's verdict on a create
//! (the model is `resource_quota`), the usage it charges at once, and the
//! quota controller, which here recounts every quota's status on each
//! turn (the real one resyncs on every change it watches).

use serde_json::Value;

use super::resource_quota::{self, QuotaUpdate, Stored};
use super::store::SimCluster;
use crate::cluster::{api_resources, ApiKind};

impl SimCluster {
    /// The namespace's quotas, by name.
    fn quotas_in(&self, ns: &str) -> Vec<Value> {
        self.objects_of("ResourceQuota")
            .into_iter()
            .filter(|q| q["metadata"]["namespace"] == ns)
            .collect()
    }

    /// The ResourceQuota plugin on the CREATE of `object` (of `kind`,
    /// named `name` by then): the usage it charges is written into the
    /// quotas' status before the object is stored, as the plugin does;
    /// `Err` is the refusal the client sees.
    pub(super) fn quota_admission(
        &mut self,
        kind: &ApiKind,
        name: &str,
        object: &Value,
    ) -> Result<(), String> {
        let ns = crate::object::namespace(object).to_string();
        let quotas = self.quotas_in(&ns);
        if quotas.is_empty() {
            return Ok(());
        }
        let minor = self.minor.number();
        let updates =
            resource_quota::admit_create(minor, &kind.group, &kind.plural, name, object, &quotas)
                .map_err(|r| r.message)?;
        self.charge(&ns, updates);
        Ok(())
    }

    fn charge(&mut self, ns: &str, updates: Vec<QuotaUpdate>) {
        for u in updates {
            if let Some(q) = self.object_mut("ResourceQuota", ns, &u.name) {
                q["status"]["used"] = u.used;
            }
        }
    }

    /// The quota controller's pass: every quota's status recounted from
    /// what its namespace holds. True when a status changed.
    pub(super) fn sync_quotas(&mut self) -> bool {
        let quotas = self.objects_of("ResourceQuota");
        if quotas.is_empty() {
            return false;
        }
        let minor = self.minor.number();
        let mut changed = false;
        for quota in quotas {
            let ns = crate::object::namespace(&quota).to_string();
            let status = {
                let resolved: Vec<(ApiKind, &Value)> = self
                    .objects
                    .values()
                    .filter(|o| o["metadata"]["namespace"] == ns.as_str())
                    .filter_map(|o| Some((self.resolve(o)?, o)))
                    .collect();
                let mut stored: Vec<Stored> = self
                    .pods
                    .iter()
                    .filter(|p| p["metadata"]["namespace"] == ns.as_str())
                    .map(|p| Stored {
                        group: "",
                        resource: "pods",
                        object: p,
                    })
                    .collect();
                stored.extend(resolved.iter().map(|(k, o)| Stored {
                    group: &k.group,
                    resource: &k.plural,
                    object: o,
                }));
                let definitions: Vec<ApiKind> = self
                    .objects_of("CustomResourceDefinition")
                    .iter()
                    .flat_map(api_resources::defined_by)
                    .collect();
                let served = |group: &str, plural: &str| {
                    api_resources::BUILT_IN
                        .iter()
                        .any(|k| k.group == group && k.plural == plural)
                        || definitions
                            .iter()
                            .any(|k| k.group == group && k.plural == plural)
                };
                resource_quota::quota_status(minor, &quota, &stored, &served, None)
            };
            let name = crate::object::meta_str(&quota, "name").to_string();
            if let Some(q) = self.object_mut("ResourceQuota", &ns, &name) {
                if q["status"] != status {
                    q["status"] = status;
                    changed = true;
                }
            }
        }
        changed
    }
}
