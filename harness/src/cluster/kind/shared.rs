//! One in-cluster injector for every scenario of a run that needs the same
//! one. Most scenarios test the built-in injector with the base config and
//! never touch it: deploying, waiting for and deleting an injector
//! namespace for each of them is most of what a two-core kind node spends on
//! them. A scenario may share when its subject is the built-in injector,
//! available from the start, and no step stops, starts, slows or rotates
//! it; scenarios whose configs are equal (after the run's renaming) share
//! one Deployment. The others keep an injector of their own.
//!
//! A shared injector lives until the run ends ([`SharedInjectors::remove`]);
//! each scenario still registers its own webhooks, scoped to its own
//! namespaces and run, so sharing the Service changes which pod answers,
//! not which calls are made.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use kube::Client;
use sidecar_injector::Config;
use tokio::sync::{Mutex, OnceCell};

use super::injector::InClusterInjector;
use crate::isolation::RunId;
use crate::scenario::{Scenario, Step, WebhookSpec};
use crate::subject::Subject;

/// The run's shared injectors, one per config, deployed when first asked for.
pub struct SharedInjectors {
    client: Client,
    run: RunId,
    image: String,
    /// By config (as JSON): its number in the run, and its injector.
    by_config: Mutex<BTreeMap<String, (usize, Slot)>>,
}

/// A config's injector: deployed once, by whichever scenario asks first.
type Slot = Arc<OnceCell<Arc<InClusterInjector>>>;

impl SharedInjectors {
    pub fn new(client: Client, run: RunId, image: String) -> SharedInjectors {
        SharedInjectors {
            client,
            run,
            image,
            by_config: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether `scenario` may run against a shared injector.
    pub fn fits(scenario: &Scenario) -> bool {
        scenario.builtin_subject()
            && scenario.header.injector.available
            && !scenario.header.steps.iter().any(|s| {
                matches!(
                    s,
                    Step::StopInjector
                        | Step::StartInjector
                        | Step::SlowInjector { .. }
                        | Step::RotateCert
                )
            })
    }

    /// The injector serving `config`, deployed (and waited for) by the
    /// first scenario that asks; the others wait for that one. A failed
    /// deployment is the asking scenario's error, and the next one tries
    /// again.
    pub async fn get(&self, config: &Config, namespaces: Vec<String>) -> Result<SharedInjector> {
        let key = serde_json::to_string(config).context("serializing the injector's config")?;
        let (number, cell) = {
            let mut by_config = self.by_config.lock().await;
            let next = by_config.len() + 1;
            let (number, cell) = by_config
                .entry(key)
                .or_insert_with(|| (next, Arc::default()));
            (*number, cell.clone())
        };
        let inner = cell
            .get_or_try_init(|| async {
                let name = format!("shared-{number}");
                InClusterInjector::deploy(
                    self.client.clone(),
                    &name,
                    &self.run,
                    &self.image,
                    config,
                    true,
                )
                .await
                .map(Arc::new)
            })
            .await?
            .clone();
        Ok(SharedInjector { inner, namespaces })
    }

    /// Deletes every shared injector's namespace and waits until they are
    /// gone: at the end of the run, and before a `serial` scenario, which
    /// must find the node as it says (each injector asks for 50m cpu). The
    /// caller makes sure no scenario uses them meanwhile; the next scenario
    /// that asks deploys its injector again.
    pub async fn remove(&self) -> Result<()> {
        let cells: Vec<_> = std::mem::take(&mut *self.by_config.lock().await)
            .into_values()
            .map(|(_, cell)| cell)
            .collect();
        let injectors: Vec<Arc<InClusterInjector>> = cells
            .iter()
            .filter_map(|cell| cell.get().cloned())
            .collect();
        let removals = injectors.iter().map(|i| i.remove());
        for result in futures::future::join_all(removals).await {
            result?;
        }
        Ok(())
    }
}

/// One scenario's use of a shared injector: its webhooks call it; its
/// report reads the injector's log lines about this scenario's namespaces.
pub struct SharedInjector {
    inner: Arc<InClusterInjector>,
    /// The scenario's namespaces as named on the cluster.
    namespaces: Vec<String>,
}

impl SharedInjector {
    /// The injector's log lines about this scenario's namespaces (its own
    /// counters are the whole run's).
    async fn own_lines(&self) -> Vec<String> {
        self.inner
            .full_logs()
            .await
            .into_iter()
            .filter(|l| {
                self.namespaces
                    .iter()
                    .any(|ns| l.contains(&format!("namespace={ns} ")))
            })
            .collect()
    }
}

impl Subject for SharedInjector {
    fn webhooks(&self, specs: &[WebhookSpec]) -> Vec<MutatingWebhook> {
        self.inner.webhooks(specs)
    }

    fn serving(&self) -> bool {
        true
    }

    fn delay(&self) -> Duration {
        Duration::ZERO
    }

    async fn halt(&mut self) -> Result<()> {
        bail!(not_for_steps())
    }

    async fn serve(&mut self) -> Result<()> {
        bail!(not_for_steps())
    }

    async fn set_delay(&mut self, _delay: Duration) -> Result<()> {
        bail!(not_for_steps())
    }

    async fn rotate_cert(&mut self) -> Result<()> {
        bail!(not_for_steps())
    }

    async fn decisions(&self) -> Vec<String> {
        let mut out = vec![format!(
            "(injector shared by the run's scenarios with this config, in {}: its reviews of this scenario's namespaces)",
            self.inner.namespace()
        )];
        out.extend(self.own_lines().await);
        out
    }

    async fn logs(&self) -> Vec<String> {
        let mut out = vec![format!(
            "shared injector in {}, its lines about this scenario's namespaces:",
            self.inner.namespace()
        )];
        out.extend(self.own_lines().await.into_iter().map(|l| format!("  {l}")));
        out
    }
}

fn not_for_steps() -> &'static str {
    "a shared injector takes no fault steps (scenarios with stopWebhook, startWebhook, slowWebhook or rotateCert get an injector of their own)"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(header: &str) -> Scenario {
        let text = format!(
            "apiVersion: injector-harness/v1\nkind: Scenario\nname: s\n{header}expect: {{pods: []}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: s}}\n"
        );
        let base: serde_json::Value =
            serde_yaml::from_str(sidecar_injector::config::DEFAULT_CONFIG_YAML).unwrap();
        crate::scenario::parse(std::path::Path::new("s.yaml"), &text, &base).unwrap()
    }

    #[test]
    fn only_the_built_in_injector_left_alone_by_the_steps_is_shared() {
        assert!(SharedInjectors::fits(&scenario("")));
        assert!(SharedInjectors::fits(&scenario(
            "steps:\n- rolloutRestart: {namespace: s, kind: Deployment, name: d}\n"
        )));
        for steps in [
            "steps:\n- stopWebhook\n",
            "steps:\n- slowWebhook: {delaySeconds: 3}\n",
            "steps:\n- rotateCert\n",
        ] {
            assert!(!SharedInjectors::fits(&scenario(steps)), "{steps}");
        }
        assert!(!SharedInjectors::fits(&scenario(
            "injector: {available: false}\nsteps:\n- startWebhook\n"
        )));
        assert!(!SharedInjectors::fits(&scenario(
            "subject:\n  image: {name: 'example/webhook:v1', port: 8443}\nwebhooks:\n- name: w.example.com\n"
        )));
    }
}
