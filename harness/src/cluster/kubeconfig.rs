//! The `kubeconfig` backend: scenarios on the cluster in KUBECONFIG, through
//! kube-rs. The webhook runs either in the harness process on 127.0.0.1,
//! registered by `url` (the apiserver must then run on this host: the local
//! control plane, `kind/local-cluster.sh`), or in the cluster as a
//! Deployment behind a Service (`HARNESS_WEBHOOK=in-cluster`, as on kind),
//! which any cluster can call. Each scenario gets its own
//! MutatingWebhookConfiguration, scoped to the scenario's namespaces, so
//! scenarios can run side by side, and each run its own names
//! ([`crate::isolation`]), so runs can share a cluster. Objects are applied
//! server-side; waiting is driven by watch events with a quiet period and a
//! timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::{stream, StreamExt};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::core::GroupVersionKind;
use kube::runtime::watcher;
use kube::Client;
use serde_json::{json, Value};

use super::{Cluster, ObjectEvent, Observed, Rejection, FAILED_SCHEDULING};
use crate::error::Timeout;
use crate::isolation::{Isolation, RunId, RUN_LABEL};

const FIELD_MANAGER: &str = "injector-harness";
/// Namespaces a scenario may use but never deletes.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];
/// How long nothing may change before a scenario counts as settled.
const QUIET: Duration = Duration::from_millis(1500);
/// The longest a scenario may take to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a new webhook configuration may take to reach the apiserver.
const CANARY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a scenario's namespaces may take to go.
const NAMESPACE_REMOVAL: Duration = Duration::from_secs(60);

/// The API resource of a kind the harness applies (or reads: Events).
pub fn api_resource(kind: &str) -> Option<(ApiResource, bool)> {
    let info = match kind {
        "Event" => super::KindInfo {
            kind: "Event",
            group: "",
            version: "v1",
            plural: "events",
            namespaced: true,
        },
        other => *super::kind_info(other)?,
    };
    let gvk = GroupVersionKind::gvk(info.group, info.version, info.kind);
    Some((
        ApiResource::from_gvk_with_plural(&gvk, info.plural),
        info.namespaced,
    ))
}

const WORKLOAD_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
];

pub struct KubeconfigCluster {
    client: Client,
    scenario: String,
    /// The run whose objects these are (see [`crate::isolation`]).
    run: RunId,
    namespaces: BTreeSet<String>,
    /// Objects created in namespaces the scenario does not own.
    foreign: Vec<(String, String, String)>,
    rejections: Vec<Rejection>,
    registered: bool,
    kubelet: Kubelet,
    /// Whether the injector answers webhook calls in time (fault steps).
    injector_answering: bool,
    /// Registration waits until the apiserver actually reaches the injector,
    /// not only calls it: on kind a Service's endpoint can be ready before
    /// kube-proxy routes its ClusterIP (seen: "connect: connection refused").
    require_reachable: bool,
    /// Probe containers (by container ID) whose log said they serve, or
    /// whose log could not be read; see [`crate::cluster::settled::unheard_probes`].
    heard: std::collections::HashSet<String>,
}

/// Which kubelet runs the cluster's pods; it decides when a pod is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kubelet {
    /// The harness's fake kubelet: a pod it has started is final.
    Fake,
    /// Real kubelets (kind): containers start, probes run, crashes back off.
    Real,
}

/// No cluster answered: what was tried, why it failed, and what to do, in
/// one line. kube-rs nests the same cause several times over; only the
/// innermost one is kept.
#[derive(Debug, thiserror::Error)]
#[error("no cluster reachable at {tried}: {cause}; start the local control plane with `kind/local-cluster.sh up`, then `eval \"$(kind/local-cluster.sh env)\"`")]
pub struct Unreachable {
    /// The KUBECONFIG path, and the server URL once the file was read.
    pub tried: String,
    /// The innermost error.
    pub cause: String,
}

/// The innermost error of a chain: the one that says what actually failed.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A client for the cluster in KUBECONFIG (or ~/.kube/config), checked to
/// answer: a dead cluster fails here, once, rather than mid-scenario.
pub async fn connect_client() -> std::result::Result<Client, Unreachable> {
    let file = match std::env::var_os("KUBECONFIG") {
        Some(p) if !p.is_empty() => format!("KUBECONFIG={}", p.to_string_lossy()),
        _ => "~/.kube/config (KUBECONFIG is not set)".to_string(),
    };
    let config = kube::Config::infer().await.map_err(|e| Unreachable {
        tried: file.clone(),
        cause: root_cause(&e),
    })?;
    let tried = format!("{} ({file})", config.cluster_url);
    let client = Client::try_from(config).map_err(|e| Unreachable {
        tried: tried.clone(),
        cause: root_cause(&e),
    })?;
    client.apiserver_version().await.map_err(|e| Unreachable {
        tried,
        cause: match &e {
            kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
            other => root_cause(other),
        },
    })?;
    Ok(client)
}

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

pub fn api_error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

impl KubeconfigCluster {
    /// A scenario of run `run` on the cluster `client` talks to.
    /// `namespaces` are the ones it uses, as the cluster names them; they
    /// scope its webhooks.
    pub fn with_client(
        client: Client,
        scenario: &str,
        run: &RunId,
        namespaces: BTreeSet<String>,
        kubelet: Kubelet,
    ) -> KubeconfigCluster {
        KubeconfigCluster {
            client,
            scenario: scenario.to_string(),
            run: run.clone(),
            namespaces,
            foreign: Vec::new(),
            rejections: Vec::new(),
            registered: false,
            kubelet,
            injector_answering: true,
            require_reachable: false,
            heard: Default::default(),
        }
    }

    /// See [`KubeconfigCluster::require_reachable`]: registration then waits
    /// for the injector's own answer to the canary.
    pub fn require_reachable(mut self, yes: bool) -> KubeconfigCluster {
        self.require_reachable = yes;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn config_name(&self) -> String {
        format!("injector-harness-{}-{}", self.scenario, self.run)
    }

    fn api(&self, kind: &str, ns: Option<&str>) -> Result<Api<DynamicObject>> {
        let (ar, namespaced) =
            api_resource(kind).ok_or_else(|| anyhow!("the harness cannot apply a {kind}"))?;
        Ok(match (namespaced, ns) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            (true, None) => Api::all_with(self.client.clone(), &ar),
            (false, _) => Api::all_with(self.client.clone(), &ar),
        })
    }

    /// Restricts each webhook to this scenario's namespaces, on top of its
    /// own namespaceSelector, and registers them with a canary webhook that
    /// shows when the apiserver has the configuration in force.
    async fn register_scoped(&mut self, webhooks: Vec<MutatingWebhook>) -> Result<()> {
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

    async fn ensure_namespace(&self, name: &str) -> Result<()> {
        let api = self.api("Namespace", None)?;
        if api.get_opt(name).await?.is_none() {
            let ns: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": {RUN_LABEL: self.run.as_str()}},
            }))?;
            match api.create(&PostParams::default(), &ns).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Pods need the namespace's default ServiceAccount (admission) and
        // the kube-root-ca.crt ConfigMap (the token volume), both made by
        // the controller-manager shortly after the namespace.
        self.wait_for::<k8s_openapi::api::core::v1::ServiceAccount>(name, "default")
            .await?;
        self.wait_for::<k8s_openapi::api::core::v1::ConfigMap>(name, "kube-root-ca.crt")
            .await
    }

    async fn wait_for<K>(&self, ns: &str, object: &str) -> Result<()>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + 'static,
    {
        let api = Api::<K>::namespaced(self.client.clone(), ns);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let config = watcher::Config::default().fields(&format!("metadata.name={object}"));
        let mut stream = watcher(api, config).boxed();
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(watcher::Event::Apply(_) | watcher::Event::InitApply(_)))) => return Ok(()),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => bail!(
                    "namespace {ns} has no {} {object} after 30 s (is kube-controller-manager running?)",
                    K::kind(&())
                ),
            }
        }
    }

    /// Whether every object the scenario can see is in a state from which
    /// nothing more happens without time passing.
    async fn is_settled(&mut self) -> Result<bool> {
        let mut done = true;
        for ns in self.namespaces.clone() {
            let ns = &ns;
            let events = self.scheduling_events(ns).await?;
            for kind in [
                "Pod",
                "Deployment",
                "ReplicaSet",
                "StatefulSet",
                "DaemonSet",
                "Job",
            ] {
                let list = self
                    .api(kind, Some(ns))?
                    .list(&ListParams::default())
                    .await?;
                for o in list.items {
                    let v = serde_json::to_value(&o)?;
                    if !self.owned_by_scenario(ns, kind, &v) {
                        continue;
                    }
                    done &= match (kind, self.kubelet) {
                        // A real kubelet's pod must also have settled
                        // in itself (crash loops backed off, probes run).
                        ("Pod", Kubelet::Real) => {
                            self.hear_probes(ns, &v).await;
                            crate::cluster::settled::real_pod(
                                &v,
                                std::time::SystemTime::now(),
                                &self.heard,
                            ) && settled(kind, &v, &events, self.injector_answering)
                        }
                        _ => settled(kind, &v, &events, self.injector_answering),
                    };
                }
            }
        }
        Ok(done)
    }

    /// Reads the log of each running probe container of `pod` not yet
    /// heard, once per container ID, and records those that say they serve.
    /// A log that cannot be read (an apiserver that cannot reach the
    /// kubelet) counts as heard: settling then falls back to the uptime
    /// rule instead of hanging.
    async fn hear_probes(&mut self, ns: &str, pod: &Value) {
        let name = crate::object::meta_str(pod, "name");
        let api = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(self.client.clone(), ns);
        for (container, id) in crate::cluster::settled::unheard_probes(pod, &self.heard) {
            let params = kube::api::LogParams {
                container: Some(container.clone()),
                ..Default::default()
            };
            match api.logs(name, &params).await {
                Ok(log) if !injector_probe::says_serving(&log) => continue,
                Ok(_) => {}
                Err(e) => tracing::debug!(
                    "log of {ns}/{name} {container} unreadable ({e}); settling by uptime"
                ),
            }
            self.heard.insert(id);
        }
    }

    fn owned_by_scenario(&self, ns: &str, kind: &str, object: &Value) -> bool {
        // In namespaces the harness does not own (kube-system), only objects
        // it created count (not kind's CoreDNS Deployment, say); elsewhere
        // every object does.
        !SYSTEM_NAMESPACES.contains(&ns)
            || self.foreign.iter().any(|(k, n, name)| {
                k == kind && n == ns && name == crate::object::meta_str(object, "name")
            })
    }

    /// The scheduler's FailedScheduling events in `ns` that say no node fits,
    /// with the uid of the pod each is about.
    async fn scheduling_events(&self, ns: &str) -> Result<Vec<(String, ObjectEvent)>> {
        let events = self
            .api("Event", Some(ns))?
            .list(&ListParams::default().fields(&format!("reason={FAILED_SCHEDULING}")))
            .await?;
        let mut out = Vec::new();
        for e in events.items {
            let v = serde_json::to_value(&e)?;
            if !super::is_fit_error(v["message"].as_str().unwrap_or("")) {
                continue;
            }
            let involved = &v["involvedObject"];
            let text = |x: &Value| x.as_str().unwrap_or("").to_string();
            out.push((
                text(&involved["uid"]),
                ObjectEvent {
                    namespace: ns.to_string(),
                    kind: text(&involved["kind"]),
                    name: text(&involved["name"]),
                    reason: text(&v["reason"]),
                    message: text(&v["message"]),
                },
            ));
        }
        Ok(out)
    }

    async fn failed_creates(&self) -> Result<Vec<Rejection>> {
        let mut out = Vec::new();
        for ns in &self.namespaces {
            let events = self
                .api("Event", Some(ns))?
                .list(&ListParams::default())
                .await?;
            for e in events.items {
                let v = serde_json::to_value(&e)?;
                if v["reason"] != "FailedCreate" {
                    continue;
                }
                let kind = v["involvedObject"]["kind"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let name = v["involvedObject"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let (kind, name) = self.top_owner(ns, &kind, &name).await;
                let message = v["message"].as_str().unwrap_or("").to_string();
                let r = Rejection {
                    namespace: ns.clone(),
                    kind,
                    name,
                    message,
                };
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// The workload the scenario applied that owns `kind/name`.
    async fn top_owner(&self, ns: &str, kind: &str, name: &str) -> (String, String) {
        let (mut kind, mut name) = (kind.to_string(), name.to_string());
        for _ in 0..4 {
            let Ok(api) = self.api(&kind, Some(ns)) else {
                break;
            };
            let Ok(Some(obj)) = api.get_opt(&name).await else {
                break;
            };
            let v = serde_json::to_value(&obj).unwrap_or(Value::Null);
            match v["metadata"]["ownerReferences"]
                .as_array()
                .and_then(|o| o.first())
            {
                Some(r) => {
                    kind = r["kind"].as_str().unwrap_or("").to_string();
                    name = r["name"].as_str().unwrap_or("").to_string();
                }
                None => break,
            }
        }
        (kind, name)
    }

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
        for (kind, ns, name) in std::mem::take(&mut self.foreign) {
            if let Ok(api) = self.api(&kind, Some(&ns)) {
                let dp = DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::background()
                };
                let _ = api.delete(&name, &dp).await;
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
            .map(|ns| super::namespaces::remove(&self.client, ns, NAMESPACE_REMOVAL));
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

/// Whether an apiserver message says a webhook could not be reached or did
/// not answer in time: the failures a retry cures once the injector is back.
pub fn is_unreachable_webhook(message: &str) -> bool {
    message.contains("failed calling webhook")
        && (message.contains("connect: connection refused")
            || message.contains("no endpoints available for service")
            || message.contains("context deadline exceeded"))
}

/// Whether an object is in a state that will not change by itself.
/// `events` are the namespace's FailedScheduling events with their pod's uid.
/// `injector_answering`: whether webhook calls succeed now; a ReplicaSet
/// whose last pod creation failed because the injector was unreachable
/// is then still to recover (the controller retries with back-off).
fn settled(
    kind: &str,
    v: &Value,
    events: &[(String, ObjectEvent)],
    injector_answering: bool,
) -> bool {
    match kind {
        // The fake kubelet has run the pod, or the scheduler has given up
        // on it for now: PodScheduled=False (Unschedulable) and the
        // FailedScheduling event with the same message are both written.
        // The scheduler retries only when the cluster changes (or after
        // minutes), as a crash-looping container restarts only after a
        // back-off. A terminating pod is not done.
        "Pod" => {
            let started = v["status"]["startTime"].is_string();
            let unschedulable = v["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "PodScheduled")
                .filter(|c| c["status"] == "False" && c["reason"] == "Unschedulable")
                .and_then(|c| c["message"].as_str())
                .is_some_and(|message| {
                    events.iter().any(|(uid, e)| {
                        uid == crate::object::meta_str(v, "uid")
                            && e.kind == "Pod"
                            && e.message == message
                    })
                });
            (started || unschedulable) && v["metadata"]["deletionTimestamp"].is_null()
        }
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            let generation = v["metadata"]["generation"].as_i64().unwrap_or(0);
            let observed = v["status"]["observedGeneration"].as_i64().unwrap_or(0) >= generation
                || kind == "Job";
            // The controller sets ReplicaFailure when a sync fails to create
            // pods and clears it on the next successful sync.
            let waiting_for_retry = injector_answering
                && v["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c["type"] == "ReplicaFailure"
                            && c["status"] == "True"
                            && is_unreachable_webhook(c["message"].as_str().unwrap_or(""))
                    });
            observed && !waiting_for_retry
        }
        _ => true,
    }
}

impl Cluster for KubeconfigCluster {
    async fn register(&mut self, webhooks: Vec<MutatingWebhook>) -> Result<()> {
        self.register_scoped(webhooks).await
    }

    async fn apply(&mut self, object: &Value) -> Result<()> {
        let kind = object["kind"].as_str().unwrap_or("").to_string();
        let name = crate::object::meta_str(object, "name").to_string();
        let (api, ns) = if kind == "Namespace" {
            (self.api(&kind, None)?, String::new())
        } else {
            let ns = crate::object::namespace(object).to_string();
            self.ensure_namespace(&ns).await?;
            (self.api(&kind, Some(&ns))?, ns)
        };
        let mut obj = object.clone();
        if kind != "Namespace" {
            obj["metadata"]["namespace"] = json!(ns);
        }
        // Server-side apply needs a name; an object with only generateName
        // is created as `kubectl create` does, by POST, and the apiserver
        // picks its name. Its refusals are reported under the prefix.
        let result = if name.is_empty() {
            let generate_name = crate::object::meta_str(object, "generateName").to_string();
            let dynamic: DynamicObject = serde_json::from_value(obj)
                .with_context(|| format!("{kind} {generate_name}: not an object"))?;
            let pp = PostParams {
                dry_run: false,
                field_manager: Some(FIELD_MANAGER.into()),
            };
            api.create(&pp, &dynamic)
                .await
                .map(|created| (created.metadata.name.unwrap_or_default(), generate_name))
        } else {
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&obj),
            )
            .await
            .map(|_| (name.clone(), name.clone()))
        };
        match result {
            Ok((created, _)) => {
                if SYSTEM_NAMESPACES.contains(&ns.as_str()) {
                    self.foreign.push((kind.clone(), ns.clone(), created));
                }
                Ok(())
            }
            // The apiserver's refusal (admission, validation) is a result.
            Err(kube::Error::Api(status)) => {
                self.rejections.push(Rejection {
                    namespace: ns,
                    kind,
                    name: crate::object::written_name(object).to_string(),
                    message: status.message.clone(),
                });
                Ok(())
            }
            Err(e) => Err(e).with_context(|| {
                format!("applying {kind} {}", crate::object::written_name(object))
            }),
        }
    }

    async fn label_namespace(
        &mut self,
        name: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        let api = self.api("Namespace", None)?;
        let patch = json!({"metadata": {"labels": labels}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn rollout_restart(&mut self, namespace: &str, kind: &str, name: &str) -> Result<()> {
        let api = self.api(kind, Some(namespace))?;
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": crate::fake_kubelet::now()}}}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn scale(
        &mut self,
        namespace: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> Result<()> {
        let api = self.api(kind, Some(namespace))?;
        let patch = json!({"spec": {"replicas": replicas}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    fn injector_answering(&mut self, answering: bool) {
        self.injector_answering = answering;
    }

    async fn settle(&mut self) -> Result<()> {
        // Any change to a watched object restarts the quiet period; the
        // scenario has settled when a quiet period passes with every object
        // in a state that does not change by itself.
        let mut streams = Vec::new();
        for ns in &self.namespaces {
            for kind in [
                "Pod",
                "ReplicaSet",
                "Deployment",
                "StatefulSet",
                "DaemonSet",
                "Job",
                "Event",
            ] {
                let api = self.api(kind, Some(ns))?;
                streams.push(watcher(api, watcher::Config::default()).map(|_| ()).boxed());
            }
        }
        let mut events = stream::select_all(streams);
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            match tokio::time::timeout(QUIET, events.next()).await {
                Ok(Some(())) => {
                    if tokio::time::Instant::now() > deadline {
                        return Err(Timeout::new(
                            format!("scenario {} did not settle", self.scenario),
                            SETTLE_TIMEOUT,
                        )
                        .into());
                    }
                }
                Ok(None) => bail!("watches ended unexpectedly"),
                Err(_) => {
                    if self.is_settled().await? {
                        return Ok(());
                    }
                    if tokio::time::Instant::now() > deadline {
                        return Err(Timeout::new(
                            format!("scenario {} did not settle", self.scenario),
                            SETTLE_TIMEOUT,
                        )
                        .into());
                    }
                }
            }
        }
    }

    async fn diagnostics(&mut self) -> Vec<String> {
        let namespaces: Vec<String> = self.namespaces.iter().cloned().collect();
        let mut out = Vec::new();
        // The fake kubelet runs no containers, so has no logs to give.
        if self.kubelet == Kubelet::Real {
            let pods = match self.observe().await {
                Ok(o) => o.pods,
                Err(_) => Vec::new(),
            };
            out.extend(
                crate::cluster::kind::diagnostics::failing_container_logs(&self.client, &pods)
                    .await,
            );
        }
        out.extend(crate::cluster::kind::diagnostics::events(&self.client, &namespaces).await);
        out
    }

    fn into_cleanup(mut self) -> super::Removal {
        Box::pin(async move { self.cleanup().await })
    }

    async fn observe(&mut self) -> Result<Observed> {
        let mut pods = Vec::new();
        let mut workloads = Vec::new();
        for ns in &self.namespaces {
            for o in self
                .api("Pod", Some(ns))?
                .list(&ListParams::default())
                .await?
                .items
            {
                let mut v = serde_json::to_value(&o)?;
                if self.owned_by_scenario(ns, "Pod", &v) {
                    if self.kubelet == Kubelet::Real {
                        crate::cluster::settled::as_backing_off(&mut v);
                    }
                    pods.push(v);
                }
            }
            for kind in WORKLOAD_KINDS {
                for o in self
                    .api(kind, Some(ns))?
                    .list(&ListParams::default())
                    .await?
                    .items
                {
                    let mut v = serde_json::to_value(&o)?;
                    if !self.owned_by_scenario(ns, kind, &v) {
                        continue;
                    }
                    v["kind"] = json!(kind);
                    workloads.push(v);
                }
            }
        }
        let mut rejections = self.rejections.clone();
        for r in self.failed_creates().await? {
            if !rejections.contains(&r) {
                rejections.push(r);
            }
        }
        let mut events = Vec::new();
        for ns in &self.namespaces {
            for (_, e) in self.scheduling_events(ns).await? {
                // In a shared namespace, only the scenario's own pods count.
                let foreign = SYSTEM_NAMESPACES.contains(&ns.as_str())
                    && !self
                        .foreign
                        .iter()
                        .any(|(k, n, name)| k == "Pod" && n == ns && *name == e.name);
                if !foreign && !events.contains(&e) {
                    events.push(e);
                }
            }
        }
        let kubernetes = self
            .client
            .apiserver_version()
            .await
            .ok()
            .and_then(|v| crate::version::Minor::parse(&v.git_version).ok());
        Ok(Observed {
            pods,
            workloads,
            rejections,
            events,
            kubernetes,
        })
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
            let ns = crate::object::namespace(&m.object);
            let Some((_, _, renamed)) = names
                .shared_objects()
                .find(|(n, name, _)| *n == ns && *name == m.name())
            else {
                continue;
            };
            if let Some((ar, _)) = api_resource(m.kind()) {
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
                let _ = api.delete(renamed, &background_now).await;
            }
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

    fn pending(uid: &str, message: &str) -> Value {
        json!({"metadata": {"name": "second", "namespace": "demo", "uid": uid},
               "status": {"phase": "Pending", "conditions": [
                   {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}})
    }

    fn event(uid: &str, message: &str) -> (String, ObjectEvent) {
        (
            uid.to_string(),
            ObjectEvent {
                namespace: "demo".into(),
                kind: "Pod".into(),
                name: "second".into(),
                reason: FAILED_SCHEDULING.into(),
                message: message.into(),
            },
        )
    }

    #[test]
    fn an_unschedulable_pod_with_its_event_is_settled() {
        let m = "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.";
        let pod = pending("u1", m);
        assert!(settled("Pod", &pod, &[event("u1", m)], true));
        // Not yet: the event is missing, is about another pod (a deleted
        // one of the same name), or carries an older message.
        assert!(!settled("Pod", &pod, &[], true));
        assert!(!settled("Pod", &pod, &[event("u0", m)], true));
        assert!(!settled(
            "Pod",
            &pod,
            &[event("u1", "0/1 nodes are available: 1 Insufficient cpu.")],
            true
        ));
        // A pod the scheduler has not looked at yet is not settled.
        let fresh = json!({"metadata": {"name": "p", "uid": "u2"}, "status": {"phase": "Pending"}});
        assert!(!settled("Pod", &fresh, &[], true));
        // A terminating pod is never settled.
        let mut deleting = pod.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        assert!(!settled("Pod", &deleting, &[event("u1", m)], true));
        // A pod the kubelet ran is settled as before.
        let ran =
            json!({"metadata": {"name": "p"}, "status": {"startTime": "2025-01-01T00:00:00Z"}});
        assert!(settled("Pod", &ran, &[], true));
    }

    fn replica_set(condition: Option<&str>) -> Value {
        let mut rs = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2}});
        if let Some(message) = condition {
            rs["status"]["conditions"] = json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}]);
        }
        rs
    }

    #[test]
    fn a_replicaset_failed_on_an_unreachable_injector_waits_for_its_retry_once_it_answers() {
        let refused = "Internal error occurred: failed calling webhook \"w\": failed to call webhook: Post \"https://127.0.0.1:1/mutate?timeout=10s\": dial tcp 127.0.0.1:1: connect: connection refused";
        let timed_out = "Internal error occurred: failed calling webhook \"w\": failed to call webhook: Post \"https://127.0.0.1:1/mutate?timeout=1s\": context deadline exceeded";
        for message in [refused, timed_out] {
            let rs = replica_set(Some(message));
            assert!(
                settled("ReplicaSet", &rs, &[], false),
                "final while the injector is down"
            );
            assert!(
                !settled("ReplicaSet", &rs, &[], true),
                "a retry will succeed: {message}"
            );
        }
        // A denial does not change by retrying, whatever the injector does.
        let denied = replica_set(Some(
            "admission webhook \"w\" denied the request: port clash",
        ));
        assert!(settled("ReplicaSet", &denied, &[], true));
        assert!(settled("ReplicaSet", &replica_set(None), &[], true));
        let mut behind = replica_set(None);
        behind["status"]["observedGeneration"] = json!(1);
        assert!(!settled("ReplicaSet", &behind, &[], true));
    }
}
