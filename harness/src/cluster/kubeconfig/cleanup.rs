//! Removing what a scenario made, and sweeping what an interrupted run left.

use std::time::Duration;

use anyhow::{bail, Result};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::Client;

use super::connect::connect_client;
use super::resources::{api_resource, SYSTEM_NAMESPACES};
use super::state::KubeconfigCluster;
use crate::isolation::{Isolation, RunId, RUN_LABEL};

/// How long a scenario's namespaces may take to go.
const NAMESPACE_REMOVAL: Duration = Duration::from_secs(60);

impl KubeconfigCluster {
    /// Deletes what the scenario made: its namespaces (waiting until they
    /// are gone), objects it put in system namespaces, and its webhook
    /// configuration. Runs after success and after failure.
    pub async fn cleanup(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        if self.registered {
            let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
            if let Err(e) = api
                .delete(&self.config_name(), &DeleteParams::default())
                .await
            {
                if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                    errors.push(format!("webhook configuration: {e}"));
                }
            }
        }
        self.foreign.clear();
        // Custom resources go with their definition; the rest one by one.
        for o in std::mem::take(&mut self.outside) {
            let api: Api<DynamicObject> = match &o.namespace {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &o.resource),
                None => Api::all_with(self.client.clone(), &o.resource),
            };
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::background()
            };
            if let Err(e) = api.delete(&o.name, &dp).await {
                if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                    errors.push(format!("{} {}: {e}", o.resource.kind, o.name));
                }
            }
        }
        let owned: Vec<String> = self
            .namespaces
            .iter()
            .filter(|n| !SYSTEM_NAMESPACES.contains(&n.as_str()))
            .cloned()
            .collect();
        // Gone before this returns, so a rerun can create them afresh and a
        // serial scenario finds the node free.
        let removals = owned
            .iter()
            .map(|ns| crate::cluster::namespaces::remove(&self.client, ns, NAMESPACE_REMOVAL));
        for result in futures::future::join_all(removals).await {
            if let Err(e) = result {
                errors.push(format!("{e:#}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            bail!(
                "cleanup of scenario {}: {}",
                self.scenario,
                errors.join("; ")
            )
        }
    }
}

/// Removes what run `run` may have left on the cluster: its namespaces and
/// webhook configurations (by [`RUN_LABEL`]), with the pods in them at once,
/// and the objects its scenarios put into shared namespaces. Another run's
/// objects are not touched. The Ctrl-C path, when scenario tasks are
/// abandoned mid-way.
pub async fn sweep(run: &RunId, scenarios: &[crate::scenario::Scenario]) -> Result<()> {
    sweep_with(connect_client().await?, run, scenarios).await
}

/// [`sweep`] on the cluster `client` talks to.
pub async fn sweep_with(
    client: Client,
    run: &RunId,
    scenarios: &[crate::scenario::Scenario],
) -> Result<()> {
    let mine = ListParams::default().labels(&format!("{RUN_LABEL}={run}"));
    let hooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    for h in hooks.list(&mine).await?.items {
        if let Some(name) = h.metadata.name {
            let _ = hooks.delete(&name, &DeleteParams::default()).await;
        }
    }
    let background_now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::background()
    };
    for scenario in scenarios {
        let names = Isolation::for_run(run, scenario);
        for m in &scenario.manifests {
            let (group, version) =
                crate::cluster::api_resources::split_api_version(m.api_version());
            let gvk = kube::core::GroupVersionKind::gvk(group, version, m.kind());
            let Ok((ar, caps)) = kube::discovery::pinned_kind(&client, &gvk).await else {
                continue;
            };
            if caps.scope != kube::discovery::Scope::Namespaced {
                // Cluster-scoped: keeps its name; this run's if it has the
                // run's label.
                let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
                if let Ok(Some(o)) = api.get_opt(m.name()).await {
                    if o.metadata.labels.unwrap_or_default().get(RUN_LABEL)
                        == Some(&run.to_string())
                    {
                        let _ = api.delete(m.name(), &background_now).await;
                    }
                }
                continue;
            }
            let ns = crate::object::namespace(&m.object);
            let Some((_, _, renamed)) = names
                .shared_objects()
                .find(|(n, name, _)| *n == ns && *name == m.name())
            else {
                continue;
            };
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
            let _ = api.delete(renamed, &background_now).await;
        }
    }
    if let (Some((ns_ar, _)), Some((pod_ar, _))) = (api_resource("Namespace"), api_resource("Pod"))
    {
        let namespaces: Api<DynamicObject> = Api::all_with(client.clone(), &ns_ar);
        for ns in namespaces.list(&mine).await?.items {
            let Some(name) = ns.metadata.name else {
                continue;
            };
            // No kubelet may be left to confirm pod deletions (the fake one
            // lived in this process), so remove pods at once.
            let pods: Api<DynamicObject> = Api::namespaced_with(client.clone(), &name, &pod_ar);
            let _ = pods
                .delete_collection(&background_now, &ListParams::default())
                .await;
            let _ = namespaces.delete(&name, &DeleteParams::background()).await;
        }
    }
    Ok(())
}
