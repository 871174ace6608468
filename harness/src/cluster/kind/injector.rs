//! The injector as a user runs it: a Deployment behind a Service in the
//! cluster, from the project's own `certs` and `manifests` code, called by
//! the apiserver through `clientConfig.service`. Each scenario gets its own
//! injector namespace with the scenario's config, so scenarios running side
//! by side cannot see each other's injector.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, ServiceReference, WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Pod, Secret, Service};
use k8s_openapi::ByteString;
use kube::api::{ListParams, LogParams, Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sidecar_injector::manifests::{self, ManifestOptions, APP_LABEL, APP_NAME, SERVICE_PORT};
use sidecar_injector::{certs, Config};

use crate::error::Timeout;
use crate::isolation::{RunId, RUN_LABEL};
use crate::scenario::{ImageSpec, WebhookSpec};
use crate::subject::decisions::Tally;
use crate::subject::{CERT_DIR, FILES_DIR};

const FIELD_MANAGER: &str = "injector-harness";
/// The Service the webhooks call, in the injector's namespace.
pub const SERVICE: &str = "sidecar-injector";
/// An image subject's Deployment, Service and app label.
pub const IMAGE_SUBJECT: &str = "webhook";
/// Labels the injector namespace so an interrupted run can find it.
pub const SCENARIO_LABEL: &str = "injector-harness/scenario";
/// How long the injector may take to become an endpoint of its Service.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
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

/// The injector namespace of a scenario in run `run`: a DNS label of at
/// most 63 bytes that ends with the run id.
pub fn namespace_for(scenario: &str, run: &RunId) -> String {
    let mut ns = format!("injector-{scenario}");
    ns.truncate(63 - run.as_str().len() - 1);
    format!("{}-{run}", ns.trim_end_matches('-'))
}

impl InClusterInjector {
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
        let ca = certs::Ca::generate().context("generating the injector's CA")?;
        let bundle = ca
            .issue(SERVICE, &namespace, &[])
            .context("generating the injector's serving certificate")?;
        let ca_pem = bundle.ca_pem.clone();
        let opts = ManifestOptions {
            namespace: namespace.clone(),
            service: SERVICE.into(),
            image: image.to_string(),
            replicas: i32::from(available),
            failure_policy: "Fail".into(),
            timeout_seconds: 10,
            config: config.clone(),
            certs: bundle,
        };
        let mut m = manifests::build(&opts);
        let labels = m
            .namespace
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new);
        labels.insert(SCENARIO_LABEL.into(), scenario.into());
        labels.insert(RUN_LABEL.into(), run.to_string());
        // The scenario's webhooks are registered by the cluster backend,
        // scoped to the scenario's namespaces; the manifests' own
        // configuration (cluster-wide) and PodDisruptionBudget are not used.
        let ns = namespace.as_str();
        // A namespace left by an interrupted run would keep its old pods
        // (same template, so no rollout): start from nothing.
        remove_namespace(&client, ns).await?;
        apply(Api::<Namespace>::all(client.clone()), &m.namespace).await?;
        apply(Api::<Secret>::namespaced(client.clone(), ns), &m.secret).await?;
        apply(
            Api::<ConfigMap>::namespaced(client.clone(), ns),
            &m.config_map,
        )
        .await?;
        apply(Api::<Service>::namespaced(client.clone(), ns), &m.service).await?;
        apply(
            Api::<Deployment>::namespaced(client.clone(), ns),
            &m.deployment,
        )
        .await?;
        let injector = InClusterInjector {
            client,
            namespace,
            name: SERVICE.into(),
            image: None,
            image_port: None,
            ca,
            ca_pem,
            serving: available,
            delay: Duration::ZERO,
            tally: Tally::new(available),
        };
        if available {
            if let Err(e) = injector.wait_for_endpoint().await {
                // Nothing of a failed deployment may stay behind.
                let _ = remove_namespace(&injector.client, &injector.namespace).await;
                return Err(e);
            }
        }
        Ok(injector)
    }

    /// Deploys an image subject (`subject.image`): a Deployment of `spec`'s
    /// image behind a Service, with a serving pair from a new CA in a
    /// Secret mounted at [`CERT_DIR`] and the scenario's `files` in a
    /// ConfigMap mounted at [`FILES_DIR`]. `scenario_dir` is where `files`
    /// are read from.
    pub async fn deploy_image(
        client: Client,
        scenario: &str,
        run: &RunId,
        spec: &ImageSpec,
        scenario_dir: &std::path::Path,
        available: bool,
    ) -> Result<InClusterInjector> {
        let name = IMAGE_SUBJECT.to_string();
        let namespace = namespace_for(scenario, run);
        let ca = certs::Ca::generate().context("generating the subject's CA")?;
        let bundle = ca
            .issue(&name, &namespace, &[])
            .context("generating the subject's serving certificate")?;
        let files = crate::subject::image_files(spec, scenario_dir)?;
        let args = crate::subject::image_args(spec);
        let relay_port = relay_port(spec.port);
        let labels = BTreeMap::from([(APP_LABEL.to_string(), name.clone())]);
        let ns_labels = BTreeMap::from([
            (SCENARIO_LABEL.to_string(), scenario.to_string()),
            (RUN_LABEL.to_string(), run.to_string()),
        ]);
        let objects = serde_json::json!({
            "namespace": {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": namespace, "labels": ns_labels}},
            "secret": {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("{name}-certs"), "namespace": namespace},
                "stringData": {certs::CERT_FILE: bundle.cert_pem, certs::KEY_FILE: bundle.key_pem, certs::CA_CERT_FILE: bundle.ca_pem}},
            "files": {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("{name}-files"), "namespace": namespace},
                "data": files},
            "service": {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"selector": labels, "ports": [{"port": SERVICE_PORT, "targetPort": relay_port}]}},
            "deployment": {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"replicas": i32::from(available), "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {
                        "containers": [{"name": name, "image": spec.name, "imagePullPolicy": "IfNotPresent",
                            "args": args, "ports": [{"containerPort": spec.port}],
                            "readinessProbe": {"tcpSocket": {"port": spec.port}, "periodSeconds": 1},
                            // Drains like the injector's own Deployment: a
                            // terminating pod (a stop, a rollout) keeps
                            // answering for 5 s after it leaves the
                            // endpoints, so a call in flight is answered, not
                            // cut (seen: an `EOF` refusal on kind when the
                            // relay went at once).
                            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                            "volumeMounts": [
                                {"name": "certs", "mountPath": CERT_DIR, "readOnly": true},
                                {"name": "files", "mountPath": FILES_DIR, "readOnly": true}]},
                            // The Service reaches the subject through this
                            // relay, which `slowWebhook` slows.
                            {"name": RELAY, "image": crate::images::PROBE_IMAGE, "imagePullPolicy": "IfNotPresent",
                             "args": relay_args(relay_port, spec.port, Duration::ZERO),
                             "ports": [{"containerPort": relay_port}],
                             "readinessProbe": {"tcpSocket": {"port": relay_port}, "periodSeconds": 1},
                             "lifecycle": {"preStop": {"sleep": {"seconds": 5}}}}],
                        "volumes": [
                            {"name": "certs", "secret": {"secretName": format!("{name}-certs")}},
                            {"name": "files", "configMap": {"name": format!("{name}-files")}}]}}}}
        });
        let ns = namespace.as_str();
        remove_namespace(&client, ns).await?;
        let typed = |key: &str| objects[key].clone();
        apply(
            Api::<Namespace>::all(client.clone()),
            &serde_json::from_value(typed("namespace"))?,
        )
        .await?;
        apply(
            Api::<Secret>::namespaced(client.clone(), ns),
            &serde_json::from_value(typed("secret"))?,
        )
        .await?;
        apply(
            Api::<ConfigMap>::namespaced(client.clone(), ns),
            &serde_json::from_value(typed("files"))?,
        )
        .await?;
        apply(
            Api::<Service>::namespaced(client.clone(), ns),
            &serde_json::from_value(typed("service"))?,
        )
        .await?;
        apply(
            Api::<Deployment>::namespaced(client.clone(), ns),
            &serde_json::from_value(typed("deployment"))?,
        )
        .await?;
        let subject = InClusterInjector {
            client,
            namespace,
            name,
            image: Some(spec.name.clone()),
            image_port: Some(spec.port),
            ca_pem: ca.pem(),
            ca,
            serving: available,
            delay: Duration::ZERO,
            tally: Tally::new(available),
        };
        if available {
            if let Err(e) = subject.wait_for_endpoint().await {
                let _ = remove_namespace(&subject.client, &subject.namespace).await;
                return Err(e);
            }
        }
        Ok(subject)
    }

    /// Rotates an image subject's pair: a new one from the same CA into its
    /// Secret, then waits until every serving pod presents it on a TLS
    /// handshake made through a port-forward (the harness cannot reach a
    /// pod's address from the host), verified against the CA as the
    /// apiserver verifies it. A subject that never reloads its files fails
    /// the step, saying so.
    async fn rotate_image_cert(&mut self) -> Result<()> {
        let image = self.image.clone().unwrap_or_default();
        let port = self.image_port.unwrap_or(0);
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
        let want = crate::subject::handshake::pem_der(&bundle.cert_pem)?;
        let server = format!("{}.{}.svc", self.name, self.namespace);
        let deadline = tokio::time::Instant::now() + ROTATION_TIMEOUT;
        let mut tick = 0u32;
        loop {
            if tick.is_multiple_of(5) {
                // As for the injector: make the kubelet sync the pod now.
                self.touch_pods().await?;
            }
            tick += 1;
            let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
            let lp = ListParams::default().labels(&format!("{APP_LABEL}={}", self.name));
            let mut all = true;
            let mut last = String::new();
            for p in pods.list(&lp).await? {
                let name = p.metadata.name.unwrap_or_default();
                match presented_through_portforward(&pods, &name, port, &server, &self.ca_pem).await
                {
                    Ok(got) if got == want => {}
                    Ok(_) => {
                        all = false;
                        last = format!("pod {name} presents the old one");
                    }
                    Err(e) => {
                        all = false;
                        last = format!("pod {name}: {e:#}");
                    }
                }
            }
            if all {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the image subject {image} in {} still does not present its new certificate {} s after its Secret changed ({last}): it does not reload {CERT_DIR}/{} when the file changes",
                    self.namespace,
                    ROTATION_TIMEOUT.as_secs(),
                    certs::CERT_FILE
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The port the subject serves on, for its relay (image subjects).
    fn subject_port(&self) -> Option<i32> {
        self.image_port
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

    /// Waits until the Service has a ready endpoint, so the first admission
    /// of the scenario reaches a serving injector.
    async fn wait_for_endpoint(&self) -> Result<()> {
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &self.namespace);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut wait = Duration::from_millis(200);
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
            if tokio::time::Instant::now() > deadline {
                let logs = self.logs().await;
                return Err(Timeout {
                    what: format!(
                        "the injector in namespace {} had no ready endpoint",
                        self.namespace
                    ),
                    limit: READY_TIMEOUT,
                    detail: format!("\n{}", logs.join("\n")),
                }
                .into());
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
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
        // Serving, it has served: the tally says "never ran" only when not.
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
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let lp = ListParams::default().labels(&format!("{APP_LABEL}={}", self.name));
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
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
            if tokio::time::Instant::now() > deadline {
                return Err(Timeout::new(
                    format!("the injector in {} did not stop", self.namespace),
                    READY_TIMEOUT,
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Waits until the Deployment's rollout is complete and no old pod is
    /// left, so every admission call reaches the new template.
    async fn wait_for_rollout(&self) -> Result<()> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let lp = ListParams::default().labels(&format!("{APP_LABEL}={}", self.name));
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
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
            if tokio::time::Instant::now() > deadline {
                return Err(Timeout::new(
                    format!("the injector in {} did not roll out", self.namespace),
                    READY_TIMEOUT,
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Sets an annotation on every injector pod (no restart), so the
    /// kubelet syncs them and refreshes their Secret volumes.
    async fn touch_pods(&self) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let lp = ListParams::default().labels(&format!("{APP_LABEL}={}", self.name));
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

    /// How many times the injector pods have logged a certificate reload.
    async fn reloads(&self) -> usize {
        self.logs()
            .await
            .iter()
            .filter(|l| l.contains("serving certificate reloaded"))
            .count()
    }

    /// The injector pods' logs, for failure reports.
    pub async fn logs(&self) -> Vec<String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let lp = ListParams::default().labels(&format!("{APP_LABEL}={}", self.name));
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
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let lp = ListParams::default().labels(&format!("{APP_LABEL}={}", self.name));
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

impl crate::subject::Subject for InClusterInjector {
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

    /// Rolls the injector out again with `serve --review-delay-ms`, and
    /// waits until only the new pod serves.
    async fn set_delay(&mut self, delay: Duration) -> Result<()> {
        if let Some(port) = self.subject_port() {
            // The relay in front of the image gets the delay; rolled out
            // like any change to the pod template.
            let relay = relay_port(port);
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
            let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [
                {"name": RELAY, "args": relay_args(relay, port, delay)}
            ]}}}});
            api.patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
            .with_context(|| format!("setting the relay's delay in {}", self.namespace))?;
            self.delay = delay;
            if self.serving {
                self.wait_for_rollout().await?;
            }
            return Ok(());
        }
        let mut args = manifests::server_args();
        if !delay.is_zero() {
            args.push("--review-delay-ms".into());
            args.push(delay.as_millis().to_string());
        }
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [
            {"name": APP_NAME, "args": args}
        ]}}}});
        api.patch(
            &self.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .with_context(|| format!("setting the injector's delay in {}", self.namespace))?;
        self.delay = delay;
        if self.serving {
            self.wait_for_rollout().await?;
        }
        Ok(())
    }

    /// Writes a new key pair from the same CA into the TLS Secret and waits
    /// until the injector has reloaded it (the kubelet updates the mounted
    /// Secret within its sync period; the server polls the files).
    async fn rotate_cert(&mut self) -> Result<()> {
        if self.image.is_some() {
            return self.rotate_image_cert().await;
        }
        let bundle = self.ca.issue(SERVICE, &self.namespace, &[])?;
        let before = self.reloads().await;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = format!("{SERVICE}-certs");
        let patch = serde_json::json!({"stringData": {
            certs::CERT_FILE: bundle.cert_pem,
            certs::KEY_FILE: bundle.key_pem,
        }});
        secrets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("updating Secret {}/{name}", self.namespace))?;
        if !self.serving {
            return Ok(());
        }
        // The kubelet refreshes a mounted Secret when it syncs the pod: on
        // its periodic sync (a minute, plus jitter) or when the pod object
        // changes. Touching an annotation makes it sync now, as an operator
        // would nudge a pod after a rotation; the server still has to find
        // the new files and reload them by itself.
        // Again every few seconds: a sync that ran before the kubelet's
        // Secret watch saw the new data refreshed nothing.
        let deadline = tokio::time::Instant::now() + ROTATION_TIMEOUT;
        let mut tick = 0u32;
        while self.reloads().await <= before {
            if tick.is_multiple_of(5) {
                self.touch_pods().await?;
            }
            tick += 1;
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the injector in {} did not reload its certificate within {} s",
                    self.namespace,
                    ROTATION_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(())
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

/// The leaf certificate pod `name` presents on `port`, over a port-forward,
/// verified against `ca_pem` for `server` (the Service's DNS name).
async fn presented_through_portforward(
    pods: &Api<Pod>,
    name: &str,
    port: i32,
    server: &str,
    ca_pem: &str,
) -> Result<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    let port = u16::try_from(port).context("port out of range")?;
    let mut forward = pods
        .portforward(name, &[port])
        .await
        .with_context(|| format!("port-forward to {name}:{port}"))?;
    let stream = forward
        .take_stream(port)
        .context("the port-forward gave no stream")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(sidecar_injector::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(server.to_string())?;
    let tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, stream))
        .await
        .context("TLS handshake timed out")?
        .context("TLS handshake")?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .context("no certificate presented")?;
    drop(tls);
    forward.abort();
    Ok(leaf)
}

/// The relay container in front of an image subject.
const RELAY: &str = "relay";

/// The relay's port: 9443, or 9444 when the subject itself serves on 9443.
fn relay_port(subject: i32) -> i32 {
    if subject == 9443 {
        9444
    } else {
        9443
    }
}

/// The probe's arguments for a relay from `listen` to `target` after `delay`.
fn relay_args(listen: i32, target: i32, delay: Duration) -> Vec<String> {
    vec![
        "--name".into(),
        RELAY.into(),
        "--relay".into(),
        format!("{listen}:{target}"),
        "--delay-ms".into(),
        delay.as_millis().to_string(),
    ]
}

/// Deletes `namespace` if it exists and waits until it is gone.
async fn remove_namespace(client: &Client, namespace: &str) -> Result<()> {
    crate::cluster::namespaces::remove(client, namespace, READY_TIMEOUT).await
}

/// Server-side apply of one typed object through `api`.
async fn apply<K>(api: Api<K>, object: &K) -> Result<()>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    K::DynamicType: Default,
{
    let name = object
        .meta()
        .name
        .clone()
        .context("a manifest without a name")?;
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .with_context(|| format!("applying {} {name}", K::kind(&Default::default())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injector_namespaces_are_dns_labels_ending_with_the_run() {
        let run = RunId::parse("k3x9q").unwrap();
        assert_eq!(
            namespace_for("port-conflict-10000", &run),
            "injector-port-conflict-10000-k3x9q"
        );
        let long = "a".repeat(60);
        let ns = namespace_for(&long, &run);
        assert_eq!(ns.len(), 63);
        assert!(ns.ends_with("a-k3x9q"), "{ns}");
        // Cut right after a dash: the dash is not doubled.
        let dashes = format!("{}-{}", "a".repeat(47), "b".repeat(9));
        let ns = namespace_for(&dashes, &run);
        assert!(!ns.contains("--"), "{ns}");
        assert!(sidecar_injector::config::check_dns1123_label(&ns).is_ok());
    }
}
