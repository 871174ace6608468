//! The built-in injector or an image subject as a user runs it: a
//! Deployment behind a Service in the cluster, called by the apiserver
//! through `clientConfig.service` (kind, and kubeconfig with `--webhook
//! in-cluster`). Each scenario gets its own injector namespace with the
//! scenario's config, so scenarios running side by side cannot see each
//! other's injector; [`super::in_cluster_manifests`] says what is in it.
//!
//! Fault steps act on the Deployment: a stop scales it to zero, a start
//! back to one, a delay rolls it out with the injector's own
//! `--review-delay-ms` or the relay's latency ([`super::delay`]), and a
//! rotation writes a new pair into the Secret and waits until every pod
//! presents it.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, ServiceReference, WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Secret};
use k8s_openapi::ByteString;
use kube::api::{ListParams, LogParams, Patch, PatchParams};
use kube::{Api, Client};
use sidecar_injector::manifests::{APP_LABEL, APP_NAME, CONTAINER_PORT, SERVICE_PORT};
use sidecar_injector::{certs, Config};

use super::decisions::Tally;
use super::delay::{injector_args, relay_args, relay_port, RELAY};
use super::handshake::{pem_der, presented_through_portforward};
use super::in_cluster_manifests::{
    apply_builtin, apply_image, namespace_for, remove_namespace, IMAGE_SUBJECT, SERVICE,
};
use super::types::{Subject, CERT_DIR};
use crate::isolation::RunId;
use crate::scenario::{ImageSpec, Scenario, WebhookSpec};
use crate::wait::Wait;

/// How long the injector may take to become an endpoint of its Service.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a stopped injector may take to leave its Service.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a changed pod template may take to replace every old pod.
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a rotated Secret may take to reach the pod (the kubelet's sync
/// period is a minute) and be reloaded.
const ROTATION_TIMEOUT: Duration = Duration::from_secs(150);

/// One scenario's injector, deployed in the cluster.
pub struct InClusterInjector {
    client: Client,
    namespace: String,
    /// The Deployment's and Service's name, and the pods' app label.
    name: String,
    /// Some for an image subject (not the built-in injector): what it
    /// cannot do that the injector can.
    image: Option<String>,
    /// An image subject's own port, behind its relay.
    image_port: Option<i32>,
    /// The CA the webhooks trust; rotations issue from it.
    ca: certs::Ca,
    ca_pem: String,
    serving: bool,
    delay: Duration,
    /// Counters of injector pods that are gone (a stop scales to zero).
    tally: Tally,
}

impl InClusterInjector {
    /// The scenario's subject in the cluster: its image (`subject.image`),
    /// else the built-in injector, running `injector_image` with `config`
    /// (the scenario's, as the run renames it). A process subject runs only
    /// on this machine: the error says so.
    pub async fn for_scenario(
        client: Client,
        scenario: &Scenario,
        run: &RunId,
        injector_image: &str,
        config: &Config,
    ) -> Result<InClusterInjector> {
        let available = scenario.header.injector.available;
        match (&scenario.header.subject.image, scenario.builtin_subject()) {
            (Some(image), _) => {
                let dir = scenario.path.parent().unwrap_or(std::path::Path::new("."));
                Self::deploy_image(client, scenario.name(), run, image, dir, available).await
            }
            (None, true) => {
                Self::deploy(
                    client,
                    scenario.name(),
                    run,
                    injector_image,
                    config,
                    available,
                )
                .await
            }
            (None, false) => Err(anyhow::anyhow!(
                "{}: the subject is a process, which runs on the sim and on the kubeconfig backend with the webhook on the host; in a cluster give it an image too (subject.image)",
                scenario.path.display()
            )),
        }
    }

    /// Deploys the injector with `config`. With `available` false the
    /// Deployment has no replicas, so the Service has no ready endpoints,
    /// which is what the apiserver sees when the injector is down.
    pub async fn deploy(
        client: Client,
        scenario: &str,
        run: &RunId,
        image: &str,
        config: &Config,
        available: bool,
    ) -> Result<InClusterInjector> {
        let namespace = namespace_for(scenario, run);
        let ca =
            apply_builtin(&client, &namespace, scenario, run, image, config, available).await?;
        let injector = InClusterInjector::new(client, namespace, SERVICE, None, ca, available);
        injector.first_endpoint(available).await
    }

    /// Deploys an image subject (`subject.image`): a Deployment of `spec`'s
    /// image behind a Service, with a serving pair from a new CA in a
    /// Secret mounted at [`CERT_DIR`] and the scenario's `files` in a
    /// ConfigMap mounted at [`super::FILES_DIR`]. `scenario_dir` is where
    /// `files` are read from.
    pub async fn deploy_image(
        client: Client,
        scenario: &str,
        run: &RunId,
        spec: &ImageSpec,
        scenario_dir: &std::path::Path,
        available: bool,
    ) -> Result<InClusterInjector> {
        let namespace = namespace_for(scenario, run);
        let ca = apply_image(
            &client,
            &namespace,
            scenario,
            run,
            spec,
            scenario_dir,
            available,
        )
        .await?;
        let subject =
            InClusterInjector::new(client, namespace, IMAGE_SUBJECT, Some(spec), ca, available);
        subject.first_endpoint(available).await
    }

    fn new(
        client: Client,
        namespace: String,
        name: &str,
        image: Option<&ImageSpec>,
        ca: certs::Ca,
        available: bool,
    ) -> InClusterInjector {
        InClusterInjector {
            client,
            namespace,
            name: name.to_string(),
            image: image.map(|s| s.name.clone()),
            image_port: image.map(|s| s.port),
            ca_pem: ca.pem(),
            ca,
            serving: available,
            delay: Duration::ZERO,
            tally: Tally::new(available),
        }
    }

    /// Once deployed: when `available`, waits for its first endpoint, and
    /// removes everything when none comes (nothing of a failed deployment
    /// may stay behind).
    async fn first_endpoint(self, available: bool) -> Result<InClusterInjector> {
        if available {
            if let Err(e) = self.wait_for_endpoint().await {
                let _ = remove_namespace(&self.client, &self.namespace).await;
                return Err(e);
            }
        }
        Ok(self)
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The scenario's webhooks, calling the Service and trusting its CA.
    pub fn webhooks(&self, specs: &[WebhookSpec]) -> Vec<MutatingWebhook> {
        specs
            .iter()
            .map(|w| {
                let mut hook = crate::admission::webhook_from_spec(w);
                hook.client_config = WebhookClientConfig {
                    url: None,
                    service: Some(ServiceReference {
                        namespace: self.namespace.clone(),
                        name: self.name.clone(),
                        path: Some(w.path.clone()),
                        port: Some(SERVICE_PORT),
                    }),
                    ca_bundle: Some(ByteString(self.ca_pem.as_bytes().to_vec())),
                };
                hook
            })
            .collect()
    }

    /// The subject's pods, by their app label.
    fn pods(&self) -> (Api<Pod>, ListParams) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let lp = ListParams::default().labels(&format!("{APP_LABEL}={}", self.name));
        (pods, lp)
    }

    /// Waits until the Service has a ready endpoint, so the first admission
    /// of the scenario reaches a serving injector.
    async fn wait_for_endpoint(&self) -> Result<()> {
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &self.namespace);
        let what = format!(
            "the injector in namespace {} had no ready endpoint",
            self.namespace
        );
        let mut wait = Wait::new(what, ENDPOINT_TIMEOUT, Duration::from_millis(200))
            .backoff_to(Duration::from_secs(2));
        loop {
            let ready = api.get_opt(&self.name).await?.is_some_and(|e| {
                e.subsets
                    .unwrap_or_default()
                    .iter()
                    .any(|s| s.addresses.as_ref().is_some_and(|a| !a.is_empty()))
            });
            if ready {
                return Ok(());
            }
            if let Err(mut timeout) = wait.again().await {
                timeout.detail = format!("\n{}", self.logs().await.join("\n"));
                return Err(timeout.into());
            }
        }
    }

    /// The injector's /metrics, read through the apiserver's service proxy
    /// (the harness cannot reach a ClusterIP from the host).
    pub async fn metrics(&self) -> Result<String> {
        let path = format!(
            "/api/v1/namespaces/{}/services/https:{}:{SERVICE_PORT}/proxy/metrics",
            self.namespace, self.name
        );
        let request = http::Request::get(path).body(Vec::new())?;
        Ok(self.client.request_text(request).await?)
    }

    /// What the injector decided, from its counters (as on the other
    /// backends), those of stopped injector pods included.
    pub async fn decisions(&self) -> Vec<String> {
        // Serving means it has served: the tally says "never ran" only when not.
        let running = if self.serving {
            match self.metrics().await {
                Ok(text) => Some(text),
                Err(e) => return vec![format!("cannot read the injector's metrics: {e}")],
            }
        } else {
            None
        };
        self.tally.lines(running.as_deref())
    }

    /// Scales the injector Deployment; zero leaves the Service without
    /// endpoints, which is how the apiserver sees an injector that is down.
    async fn scale(&self, replicas: i32) -> Result<()> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        api.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("scaling the injector in {} to {replicas}", self.namespace))?;
        Ok(())
    }

    /// Waits until the Service has no endpoint left and no injector pod runs.
    async fn wait_until_down(&self) -> Result<()> {
        let endpoints: Api<Endpoints> = Api::namespaced(self.client.clone(), &self.namespace);
        let (pods, lp) = self.pods();
        let what = format!("the injector in {} did not stop", self.namespace);
        let mut wait = Wait::new(what, STOP_TIMEOUT, Duration::from_millis(300));
        loop {
            let addresses = endpoints.get_opt(&self.name).await?.map_or(0, |e| {
                e.subsets
                    .unwrap_or_default()
                    .iter()
                    .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                    .sum::<usize>()
            });
            if addresses == 0 && pods.list(&lp).await?.items.is_empty() {
                return Ok(());
            }
            wait.again().await?;
        }
    }

    /// Waits until the Deployment's rollout is complete and no old pod is
    /// left, so every admission call reaches the new template.
    async fn wait_for_rollout(&self) -> Result<()> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let (pods, lp) = self.pods();
        let what = format!("the injector in {} did not roll out", self.namespace);
        let mut wait = Wait::new(what, ROLLOUT_TIMEOUT, Duration::from_millis(300));
        loop {
            let d = api.get(&self.name).await?;
            let generation = d.metadata.generation.unwrap_or(0);
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let done = d.status.as_ref().is_some_and(|s| {
                s.observed_generation.unwrap_or(0) >= generation
                    && s.updated_replicas.unwrap_or(0) == want
                    && s.ready_replicas.unwrap_or(0) == want
                    && s.replicas.unwrap_or(0) == want
            });
            if done && pods.list(&lp).await?.items.len() as i32 == want {
                return self.wait_for_endpoint().await;
            }
            wait.again().await?;
        }
    }

    /// Waits until every pod presents `cert_pem` on a TLS handshake made
    /// through a port-forward, verified against the CA as the apiserver
    /// verifies it: what the server serves, not what it logged.
    ///
    /// The kubelet refreshes a mounted Secret when it syncs the pod: on
    /// its periodic sync (a minute, plus jitter) or when the pod object
    /// changes. Touching an annotation makes it sync now, as an operator
    /// would nudge a pod after a rotation; the server still has to find
    /// the new files and reload them by itself. Again every few seconds: a
    /// sync that ran before the kubelet's Secret watch saw the new data
    /// refreshed nothing.
    async fn wait_until_presented(&self, cert_pem: &str) -> Result<()> {
        let want = pem_der(cert_pem)?;
        let server = format!("{}.{}.svc", self.name, self.namespace);
        let port = self.image_port.unwrap_or(CONTAINER_PORT);
        let (what, because) = match &self.image {
            // A subject that never reloads its files fails the step, saying so.
            Some(image) => (
                format!(
                    "the image subject {image} in {} did not present its new certificate",
                    self.namespace
                ),
                Some(format!(
                    ": it does not reload {CERT_DIR}/{} when the file changes",
                    certs::CERT_FILE
                )),
            ),
            None => (
                format!(
                    "the injector in {} did not reload its certificate",
                    self.namespace
                ),
                None,
            ),
        };
        let mut wait = Wait::new(what, ROTATION_TIMEOUT, Duration::from_secs(1));
        let (pods, lp) = self.pods();
        let mut tick = 0u32;
        loop {
            if tick.is_multiple_of(5) {
                self.touch_pods().await?;
            }
            tick += 1;
            let mut last = None;
            for p in pods.list(&lp).await? {
                let name = p.metadata.name.unwrap_or_default();
                match presented_through_portforward(&pods, &name, port, &server, &self.ca_pem).await
                {
                    Ok(got) if got == want => {}
                    Ok(_) => last = Some(format!("pod {name} presents the old one")),
                    Err(e) => last = Some(format!("pod {name}: {e:#}")),
                }
            }
            let Some(last) = last else {
                return Ok(());
            };
            let why = because
                .as_ref()
                .map(|b| format!(" after its Secret changed ({last}){b}"))
                .unwrap_or_default();
            wait.again_because(why).await?;
        }
    }

    /// Sets an annotation on every injector pod (no restart), so the
    /// kubelet syncs them and refreshes their Secret volumes.
    async fn touch_pods(&self) -> Result<()> {
        let (pods, lp) = self.pods();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
            .to_string();
        let patch = serde_json::json!({"metadata": {"annotations": {
            "injector-harness/secret-refresh": stamp,
        }}});
        for p in pods.list(&lp).await? {
            let name = p.metadata.name.unwrap_or_default();
            pods.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .with_context(|| format!("annotating pod {}/{name}", self.namespace))?;
        }
        Ok(())
    }

    /// The injector pods' logs, for failure reports.
    pub async fn logs(&self) -> Vec<String> {
        let (pods, lp) = self.pods();
        let mut out = Vec::new();
        let list = match pods.list(&lp).await {
            Ok(l) => l,
            Err(e) => return vec![format!("cannot list the injector pods: {e}")],
        };
        for p in list.items {
            let name = p.metadata.name.unwrap_or_default();
            // Every container's: an image subject's pod has a relay too.
            let containers: Vec<String> = p
                .spec
                .map(|s| s.containers.into_iter().map(|c| c.name).collect())
                .unwrap_or_default();
            for container in containers {
                let params = LogParams {
                    tail_lines: Some(40),
                    container: Some(container.clone()),
                    ..Default::default()
                };
                match pods.logs(&name, &params).await {
                    Ok(text) => {
                        out.push(format!(
                            "pod {}/{name} container {container}:",
                            self.namespace
                        ));
                        out.extend(text.lines().map(|l| format!("  {l}")));
                    }
                    Err(e) => out.push(format!("pod {name} container {container}: no logs ({e})")),
                }
            }
        }
        out
    }

    /// Every line the injector pods have logged, oldest first in each pod:
    /// a shared injector's report picks a scenario's lines out of them.
    pub async fn full_logs(&self) -> Vec<String> {
        let (pods, lp) = self.pods();
        let list = match pods.list(&lp).await {
            Ok(l) => l,
            Err(e) => return vec![format!("cannot list the injector pods: {e}")],
        };
        let mut out = Vec::new();
        for p in list.items {
            let name = p.metadata.name.unwrap_or_default();
            match pods.logs(&name, &LogParams::default()).await {
                Ok(text) => out.extend(text.lines().map(str::to_string)),
                Err(e) => out.push(format!("pod {name}: no logs ({e})")),
            }
        }
        out
    }

    /// Deletes the injector's namespace (and so everything in it) and waits
    /// until it is gone.
    pub async fn remove(&self) -> Result<()> {
        // Waits until the namespace is gone: a terminating injector pod
        // (5 s of preStop, then its drain) still holds its cpu request on
        // the node, and a `serial` scenario after this one must find the
        // node as the scenario says (seen on kind v1.36.3: `small` of
        // unschedulable-resources Pending for want of cpu).
        remove_namespace(&self.client, &self.namespace).await
    }
}

impl Subject for InClusterInjector {
    fn webhooks(&self, specs: &[WebhookSpec]) -> Vec<MutatingWebhook> {
        InClusterInjector::webhooks(self, specs)
    }

    fn into_stop(self) -> crate::cluster::Removal {
        Box::pin(async move { self.remove().await })
    }

    fn serving(&self) -> bool {
        self.serving
    }

    fn delay(&self) -> Duration {
        self.delay
    }

    async fn halt(&mut self) -> Result<()> {
        if !self.serving {
            return Ok(());
        }
        if let Ok(text) = self.metrics().await {
            self.tally.bank(&text);
        }
        self.scale(0).await?;
        self.wait_until_down().await?;
        self.serving = false;
        Ok(())
    }

    async fn serve(&mut self) -> Result<()> {
        self.scale(1).await?;
        self.wait_for_endpoint().await?;
        self.serving = true;
        self.tally.served();
        Ok(())
    }

    /// Rolls the injector out again with `serve --review-delay-ms` (an
    /// image: its relay with that latency), and waits until only the new
    /// pod serves.
    async fn set_delay(&mut self, delay: Duration) -> Result<()> {
        let (container, args, whose) = match self.image_port {
            // The relay in front of the image gets the delay; rolled out
            // like any change to the pod template.
            Some(port) => (RELAY, relay_args(relay_port(port), port, delay), "relay"),
            None => (APP_NAME, injector_args(delay), "injector"),
        };
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [
            {"name": container, "args": args}
        ]}}}});
        api.patch(
            &self.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .with_context(|| format!("setting the {whose}'s delay in {}", self.namespace))?;
        self.delay = delay;
        if self.serving {
            self.wait_for_rollout().await?;
        }
        Ok(())
    }

    /// Writes a new key pair from the same CA into the TLS Secret and waits
    /// until every pod presents it (the kubelet updates the mounted Secret
    /// within its sync period; the server polls the files).
    async fn rotate_cert(&mut self) -> Result<()> {
        let bundle = self.ca.issue(&self.name, &self.namespace, &[])?;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let secret = format!("{}-certs", self.name);
        let patch = serde_json::json!({"stringData": {
            certs::CERT_FILE: bundle.cert_pem,
            certs::KEY_FILE: bundle.key_pem,
        }});
        secrets
            .patch(&secret, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("updating Secret {}/{secret}", self.namespace))?;
        if !self.serving {
            return Ok(());
        }
        self.wait_until_presented(&bundle.cert_pem).await
    }

    async fn decisions(&self) -> Vec<String> {
        if self.image.is_some() {
            return Vec::new();
        }
        InClusterInjector::decisions(self).await
    }

    async fn logs(&self) -> Vec<String> {
        InClusterInjector::logs(self).await
    }
}
