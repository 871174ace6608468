//! One in-cluster injector for every scenario of a run that needs the same
//! one. Most scenarios test the built-in injector with the base config and
//! never touch it: deploying, waiting for and deleting an injector
//! namespace for each of them is most of what a two-core kind node spends on
//! them. A scenario may share when its subject is the built-in injector,
//! available from the start, and no step stops, starts, slows or rotates
//! it; scenarios whose configs are equal (after the run's renaming) share
//! one Deployment. The others keep an injector of their own.
//!
//! A shared injector is removed as soon as the last scenario of the pass
//! that needs it has ended ([`SharedInjectors::plan`] counts them), so its
//! removal overlaps the scenarios still running; what no plan counted goes
//! at the end of the run ([`SharedInjectors::remove`]). Each scenario still
//! registers its own webhooks, scoped to its own namespaces and run, so
//! sharing the Service changes which pod answers, not which calls are made.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use kube::Client;
use tokio::sync::{Mutex, OnceCell};

use super::in_cluster::InClusterInjector;
use super::types::Subject;
use crate::cluster::Removal;
use crate::isolation::{Isolation, RunId};
use crate::scenario::{Scenario, Step, WebhookSpec};

/// The run's shared injectors, one per config, deployed when first asked for.
pub struct SharedInjectors {
    client: Client,
    run: RunId,
    image: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// By config (as JSON).
    by_config: BTreeMap<String, Entry>,
    /// The last number given to an injector's namespace.
    numbered: usize,
}

#[derive(Default)]
struct Entry {
    /// Deployed once, by whichever scenario asks first; emptied when the
    /// injector is removed.
    slot: Slot,
    /// Scenarios of the pass that will still ask for it.
    users_left: usize,
}

type Slot = Arc<OnceCell<Arc<InClusterInjector>>>;

impl SharedInjectors {
    pub fn new(client: Client, run: RunId, image: String) -> SharedInjectors {
        SharedInjectors {
            client,
            run,
            image,
            state: Mutex::new(State::default()),
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

    fn key(&self, scenario: &Scenario) -> Result<String> {
        share_key(&self.run, scenario)
    }

    /// Counts the scenarios of a pass that will share each injector, so
    /// each goes when its last user is done.
    pub async fn plan<'a>(&self, scenarios: impl IntoIterator<Item = &'a Scenario>) {
        let mut state = self.state.lock().await;
        for s in scenarios.into_iter().filter(|s| Self::fits(s)) {
            if let Ok(key) = self.key(s) {
                state.by_config.entry(key).or_default().users_left += 1;
            }
        }
    }

    /// The injector for `scenario`'s config, deployed (and waited for) by
    /// the first scenario that asks; the others wait for that one. A failed
    /// deployment is the asking scenario's error, and the next one tries
    /// again. `namespaces` are the scenario's own, as named on the cluster.
    pub async fn get(
        self: &Arc<Self>,
        scenario: &Scenario,
        namespaces: Vec<String>,
    ) -> Result<SharedInjector> {
        let key = self.key(scenario)?;
        let config = Isolation::for_run(&self.run, scenario).config(&scenario.injector_config);
        let slot = {
            let mut state = self.state.lock().await;
            state.by_config.entry(key.clone()).or_default().slot.clone()
        };
        let inner = slot
            .get_or_try_init(|| async {
                let number = {
                    let mut state = self.state.lock().await;
                    state.numbered += 1;
                    state.numbered
                };
                InClusterInjector::deploy(
                    self.client.clone(),
                    &format!("shared-{number}"),
                    &self.run,
                    &self.image,
                    &config,
                    true,
                )
                .await
                .map(Arc::new)
            })
            .await?
            .clone();
        Ok(SharedInjector {
            inner,
            namespaces,
            pool: self.clone(),
            key,
        })
    }

    /// One user of `key` is done: the last one planned removes the
    /// injector, and the returned removal is done when it is gone.
    async fn release(&self, key: &str) -> Result<()> {
        let injector = {
            let mut state = self.state.lock().await;
            let Some(entry) = state.by_config.get_mut(key) else {
                return Ok(());
            };
            if entry.users_left == 0 {
                // Not planned (a single scenario's run): kept to the end.
                return Ok(());
            }
            entry.users_left -= 1;
            if entry.users_left > 0 {
                return Ok(());
            }
            std::mem::take(&mut entry.slot).get().cloned()
        };
        match injector {
            Some(i) => i.remove().await,
            None => Ok(()),
        }
    }

    /// Deletes every shared injector's namespace and waits until they are
    /// gone: at the end of the run, and before a `serial` scenario, which
    /// must find the node as it says (each injector asks for 50m cpu). The
    /// caller makes sure no scenario uses them meanwhile; the next scenario
    /// that asks deploys its injector again.
    pub async fn remove(&self) -> Result<()> {
        let injectors: Vec<Arc<InClusterInjector>> = {
            let mut state = self.state.lock().await;
            state
                .by_config
                .values_mut()
                .filter_map(|e| std::mem::take(&mut e.slot).get().cloned())
                .collect()
        };
        let removals = injectors.iter().map(|i| i.remove());
        for result in futures::future::join_all(removals).await {
            result?;
        }
        Ok(())
    }
}

/// The key a scenario's injector is shared by in run `run`: its config,
/// renamed for the run, as JSON.
fn share_key(run: &RunId, scenario: &Scenario) -> Result<String> {
    let config = Isolation::for_run(run, scenario).config(&scenario.injector_config);
    serde_json::to_string(&config).context("serializing the injector's config")
}

/// One scenario's use of a shared injector: its webhooks call it; its
/// report reads the injector's log lines about this scenario's namespaces.
pub struct SharedInjector {
    inner: Arc<InClusterInjector>,
    /// The scenario's namespaces as named on the cluster.
    namespaces: Vec<String>,
    pool: Arc<SharedInjectors>,
    key: String,
}

impl SharedInjector {
    /// The injector's log lines about this scenario's namespaces (its own
    /// counters are the whole run's).
    async fn own_lines(&self) -> Vec<String> {
        lines_about(self.inner.full_logs().await, &self.namespaces)
    }
}

/// The injector's log lines about pods in `namespaces` (its text format
/// gives each review's `namespace=<name>` field).
fn lines_about(lines: Vec<String>, namespaces: &[String]) -> Vec<String> {
    lines
        .into_iter()
        .filter(|l| {
            l.split_whitespace().any(|field| {
                field
                    .strip_prefix("namespace=")
                    .is_some_and(|ns| namespaces.iter().any(|n| n == ns))
            })
        })
        .collect()
}

impl Subject for SharedInjector {
    fn webhooks(&self, specs: &[WebhookSpec]) -> Vec<MutatingWebhook> {
        self.inner.webhooks(specs)
    }

    /// The scenario is done with the injector; the last planned user's
    /// removal includes the injector's.
    fn into_stop(self) -> Removal {
        Box::pin(async move { self.pool.release(&self.key).await })
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
    fn a_scenarios_report_takes_the_lines_about_its_own_namespaces() {
        let line = |ns: &str| {
            format!("2026-12-05T14:03:21.563782Z  INFO sidecar_injector::server: admission reviewed uid=0b1c namespace={ns} pod=web-0 operation=CREATE injected=true reason=injected detail= warnings=[] latency_us=410")
        };
        let lines = vec![
            line("web-r1"),
            line("web-r1-other"),
            line("db-r1"),
            "2026-12-05T14:03:20Z  INFO sidecar_injector::server: serving admission webhook over TLS addr=0.0.0.0:8443".to_string(),
        ];
        let mine = lines_about(lines, &["web-r1".to_string()]);
        assert_eq!(mine, vec![line("web-r1")]);
    }

    #[test]
    fn scenarios_share_an_injector_when_their_configs_are_equal() {
        let run = RunId::parse("r1").unwrap();
        let key = |header: &str| share_key(&run, &scenario(header)).unwrap();
        assert_eq!(
            key(""),
            key("steps:\n- rolloutRestart: {namespace: s, kind: Deployment, name: d}\n")
        );
        let patched = key("injector:\n  config: {onPortConflict: reject}\n");
        assert_ne!(key(""), patched);
        assert_eq!(
            patched,
            key("injector:\n  config: {onPortConflict: reject}\n")
        );
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
