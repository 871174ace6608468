//! Registering a scenario's webhooks, scoped to its namespaces, and the
//! canary that shows when the apiserver has them in force.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use super::resources::{api_error_message, is_unreachable_webhook, FIELD_MANAGER};
use super::state::KubeconfigCluster;
use crate::isolation::{RunId, RUN_LABEL};

/// How long a new webhook configuration may take to reach the apiserver.
const CANARY_TIMEOUT: Duration = Duration::from_secs(30);

/// The webhook that shows when the apiserver has a scenario's configuration
/// in force: `first`'s client config on the injector's canary path, for
/// pods in `scope` labelled as this run's canary of `scenario`.
fn canary_webhook(
    first: MutatingWebhook,
    scope: LabelSelectorRequirement,
    scenario: &str,
    run: &RunId,
) -> MutatingWebhook {
    // The canary only matches pods labelled for it; the injector answers
    // its path with 404, so a dry-run create fails naming the canary
    // exactly when the apiserver calls this configuration's webhooks.
    let mut canary = first;
    canary.name = "canary.injector-harness.io".into();
    canary.failure_policy = Some("Fail".into());
    canary.reinvocation_policy = Some("Never".into());
    // Called for a dry-run create: a webhook with side effects would be
    // refused one without being called. And called whatever the
    // scenario's own webhook's conditions say of a canary pod.
    canary.side_effects = "None".into();
    canary.match_conditions = None;
    // It is asked about a pod, whatever the scenario's webhooks are for
    // (the image-swap subject's are for Deployments).
    canary.rules = Some(vec![
        k8s_openapi::api::admissionregistration::v1::RuleWithOperations {
            operations: Some(vec!["CREATE".into()]),
            api_groups: Some(vec!["".into()]),
            api_versions: Some(vec!["v1".into()]),
            resources: Some(vec!["pods".into()]),
            scope: Some("*".into()),
        },
    ]);
    canary.namespace_selector = Some(LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![scope]),
    });
    // Only this run's canary: two runs of one scenario on a shared
    // cluster make canaries alike in the same namespace (kube-system),
    // and another run's injector answering for this one's canary let
    // this run go on before its own injector was reachable (the pod
    // then met "connection refused").
    canary.object_selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([
            ("injector-harness/canary".into(), scenario.to_string()),
            (RUN_LABEL.into(), run.to_string()),
        ])),
        match_expressions: None,
    });
    if let Some(url) = canary.client_config.url.as_mut() {
        if let Some(i) = url.rfind('/') {
            url.truncate(i);
        }
        url.push_str("/injector-harness-canary");
    }
    if let Some(service) = canary.client_config.service.as_mut() {
        service.path = Some("/injector-harness-canary".into());
    }
    canary
}

/// The dry-run pod [`canary_webhook`] is called for.
fn canary_pod(namespace: &str, scenario: &str, run: &RunId) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "injector-harness-canary-", "namespace": namespace,
                     "labels": {"injector-harness/canary": scenario, RUN_LABEL: run.as_str()}},
        "spec": {"containers": [{"name": "canary", "image": crate::probe::PROBE_IMAGE}]}
    })
}

impl KubeconfigCluster {
    /// Restricts each webhook to this scenario's namespaces, on top of its
    /// own namespaceSelector, and registers them with a canary webhook that
    /// shows when the apiserver has the configuration in force.
    pub(super) async fn register_scoped(&mut self, webhooks: Vec<MutatingWebhook>) -> Result<()> {
        let scope = LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".into(),
            operator: "In".into(),
            values: Some(self.namespaces.iter().cloned().collect()),
        };
        let mut hooks: Vec<MutatingWebhook> = webhooks
            .into_iter()
            .map(|mut w| {
                let mut sel = w.namespace_selector.take().unwrap_or_default();
                sel.match_expressions
                    .get_or_insert_with(Vec::new)
                    .push(scope.clone());
                w.namespace_selector = Some(sel);
                w
            })
            .collect();
        let Some(first) = hooks.first().cloned() else {
            return Ok(());
        };
        hooks.push(canary_webhook(first, scope, &self.scenario, &self.run));
        let names: Vec<String> = hooks
            .iter()
            .map(|h| format!("failed calling webhook \"{}\"", h.name))
            .collect();
        let config = MutatingWebhookConfiguration {
            metadata: kube::api::ObjectMeta {
                name: Some(self.config_name()),
                labels: Some(BTreeMap::from([
                    ("injector-harness/scenario".into(), self.scenario.clone()),
                    (RUN_LABEL.into(), self.run.to_string()),
                ])),
                ..Default::default()
            },
            webhooks: Some(hooks),
        };
        let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        api.patch(
            &self.config_name(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&config),
        )
        .await
        .context("registering the scenario's MutatingWebhookConfiguration")?;
        self.registered = true;
        self.wait_for_canary(&names).await
    }

    /// Dry-run creates a canary pod until one of this configuration's
    /// webhooks is called for it (the canary's always fails, and a
    /// scenario's own may fail first when its injector is down).
    async fn wait_for_canary(&self, called: &[String]) -> Result<()> {
        let ns = self
            .namespaces
            .iter()
            .next()
            .cloned()
            .unwrap_or_else(|| "default".into());
        self.ensure_namespace(&ns).await?;
        let pods: Api<DynamicObject> = self.api("Pod", Some(&ns))?;
        let canary = canary_pod(&ns, &self.scenario, &self.run);
        let obj: DynamicObject = serde_json::from_value(canary)?;
        let pp = PostParams {
            dry_run: true,
            field_manager: Some(FIELD_MANAGER.into()),
        };
        let mut wait = crate::wait::Wait::new(
            "the apiserver did not start calling the scenario's webhooks",
            CANARY_TIMEOUT,
            Duration::from_millis(20),
        )
        .backoff_to(Duration::from_millis(500));
        loop {
            match pods.create(&pp, &obj).await {
                Err(e)
                    if called
                        .iter()
                        .any(|c| api_error_message(&e).contains(c.as_str()))
                        && !(self.require_reachable
                            && is_unreachable_webhook(&api_error_message(&e))) =>
                {
                    return Ok(())
                }
                // The webhook configuration reaches the apiserver through an
                // informer; no event tells a client when, so back off briefly.
                _ => wait.again().await?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_canary_webhook_is_called_for_its_own_canary_only() {
        // Two runs of one scenario, canaries in the same namespace: each
        // run's canary webhook must answer for its own canary alone, or
        // one run's injector vouches for another's.
        let scope = LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".into(),
            operator: "In".into(),
            values: Some(vec!["kube-system".into()]),
        };
        let (a, b) = (RunId::parse("a").unwrap(), RunId::parse("b").unwrap());
        let first = MutatingWebhook {
            name: "sidecar-injector.harness.io".into(),
            ..Default::default()
        };
        let hook_a = canary_webhook(first.clone(), scope.clone(), "ignored-namespace", &a);
        let hook_b = canary_webhook(first, scope, "ignored-namespace", &b);
        let ns_labels = BTreeMap::from([(
            "kubernetes.io/metadata.name".to_string(),
            "kube-system".to_string(),
        )]);
        let attrs = crate::admission::Attributes::pod_create("kube-system", &ns_labels);
        let (pod_a, pod_b) = (
            canary_pod("kube-system", "ignored-namespace", &a),
            canary_pod("kube-system", "ignored-namespace", &b),
        );
        let called =
            |h: &MutatingWebhook, p: &Value| crate::admission::webhook_matches(h, &attrs, p);
        assert!(called(&hook_a, &pod_a) && called(&hook_b, &pod_b));
        assert!(!called(&hook_a, &pod_b) && !called(&hook_b, &pod_a));
    }
}
