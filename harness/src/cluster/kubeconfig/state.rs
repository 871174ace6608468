//! The handle on one scenario's part of a real cluster: the client, the
//! namespaces it owns, what it created elsewhere and what was refused.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::runtime::watcher;
use kube::Client;
use serde_json::{json, Value};

use super::resources::{api_resource, SYSTEM_NAMESPACES};
use crate::cluster::{Rejection, Warning};
use crate::isolation::{RunId, RUN_LABEL};

/// One scenario's view of a real cluster, and what it made there.
pub struct KubeconfigCluster {
    pub(super) client: Client,
    pub(super) scenario: String,
    /// The run whose objects these are (see [`crate::isolation`]).
    pub(super) run: RunId,
    pub(super) namespaces: BTreeSet<String>,
    /// Objects created in namespaces the scenario does not own.
    pub(super) foreign: Vec<(String, String, String)>,
    /// What cleanup deletes one by one, since no namespace of the scenario
    /// holds it: objects in system namespaces and cluster-scoped objects.
    pub(super) outside: Vec<Outside>,
    /// The kinds the scenario's CustomResourceDefinitions serve, for
    /// observing their objects.
    pub(super) custom_kinds: Vec<(ApiResource, bool)>,
    /// Kinds discovery has found, by (apiVersion, kind).
    pub(super) discovered: std::collections::HashMap<(String, String), (ApiResource, bool)>,
    pub(super) rejections: Vec<Rejection>,
    /// Warnings the apiserver returned to the scenario's writes.
    pub(super) warnings: Vec<Warning>,
    pub(super) registered: bool,
    pub(super) kubelet: Kubelet,
    /// Whether the injector answers webhook calls in time (fault steps).
    pub(super) injector_answering: bool,
    /// Registration waits until the apiserver actually reaches the injector,
    /// not only calls it: on kind a Service's endpoint can be ready before
    /// kube-proxy routes its ClusterIP (seen: "connect: connection refused").
    pub(super) require_reachable: bool,
    /// Probe containers (by container ID) whose log said they serve, or
    /// whose log could not be read; see [`crate::cluster::settled::unheard_probes`].
    pub(super) heard: std::collections::HashSet<String>,
}

/// An object cleanup deletes by name: its resource, its namespace (none
/// when cluster-scoped) and its name.
#[derive(Debug, Clone)]
pub struct Outside {
    pub resource: ApiResource,
    pub namespace: Option<String>,
    pub name: String,
}

/// Which kubelet runs the cluster's pods; it decides when a pod is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kubelet {
    /// The harness's fake kubelet: a pod it has started is final.
    Fake,
    /// Real kubelets (kind): containers start, probes run, crashes back off.
    Real,
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
            outside: Vec::new(),
            discovered: Default::default(),
            custom_kinds: Vec::new(),
            rejections: Vec::new(),
            warnings: Vec::new(),
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

    pub(super) fn config_name(&self) -> String {
        format!("injector-harness-{}-{}", self.scenario, self.run)
    }

    pub(super) fn api(&self, kind: &str, ns: Option<&str>) -> Result<Api<DynamicObject>> {
        let (ar, namespaced) =
            api_resource(kind).ok_or_else(|| anyhow!("the harness cannot apply a {kind}"))?;
        Ok(match (namespaced, ns) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            (true, None) => Api::all_with(self.client.clone(), &ar),
            (false, _) => Api::all_with(self.client.clone(), &ar),
        })
    }

    /// Where `object` goes in the API, found by discovery as a client
    /// finds it (cached once found): the resource and whether it is
    /// namespaced. The inner `Err` is the client's words for a kind the API
    /// does not serve, recorded as the object's refusal.
    pub(super) async fn resolve(
        &mut self,
        object: &Value,
    ) -> Result<std::result::Result<(ApiResource, bool), String>> {
        let api_version = object["apiVersion"].as_str().unwrap_or("").to_string();
        let kind = object["kind"].as_str().unwrap_or("").to_string();
        let key = (api_version.clone(), kind.clone());
        if let Some(found) = self.discovered.get(&key) {
            return Ok(Ok(found.clone()));
        }
        let (group, version) = crate::cluster::api_resources::split_api_version(&api_version);
        let gvk = kube::core::GroupVersionKind::gvk(group, version, &kind);
        match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok((ar, caps)) => {
                let found = (ar, caps.scope == kube::discovery::Scope::Namespaced);
                self.discovered.insert(key, found.clone());
                Ok(Ok(found))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Err(
                crate::cluster::api_resources::no_match(&api_version, &kind),
            )),
            Err(kube::Error::Discovery(_)) => Ok(Err(crate::cluster::api_resources::no_match(
                &api_version,
                &kind,
            ))),
            Err(e) => Err(e).with_context(|| format!("discovering {kind} in {api_version}")),
        }
    }

    /// Waits until the CustomResourceDefinition `name` is Established, so
    /// the documents after it that are its objects can be sent (kubectl
    /// users `kubectl wait --for condition=established`). Discovery of its
    /// kinds starts afresh.
    pub(super) async fn wait_established(&mut self, name: &str) -> Result<()> {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let mut wait = crate::wait::Wait::new(
            format!("CustomResourceDefinition {name} was not Established"),
            Duration::from_secs(30),
            Duration::from_millis(100),
        )
        .backoff_to(Duration::from_secs(1));
        loop {
            let established = api.get_opt(name).await?.is_some_and(|crd| {
                crd.status
                    .and_then(|s| s.conditions)
                    .into_iter()
                    .flatten()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                self.discovered.clear();
                return Ok(());
            }
            wait.again().await?;
        }
    }

    /// Waits until the quota controller has given the ResourceQuota
    /// `ns/name` its status: until then admission enforces nothing of it
    /// (it reads `status.hard`), so the objects after it would race the
    /// controller.
    pub(super) async fn wait_quota_synced(&self, ns: &str, name: &str) -> Result<()> {
        use k8s_openapi::api::core::v1::ResourceQuota;
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), ns);
        let mut wait = crate::wait::Wait::new(
            format!("ResourceQuota {ns}/{name} got no status from the quota controller"),
            Duration::from_secs(30),
            Duration::from_millis(100),
        )
        .backoff_to(Duration::from_secs(1));
        loop {
            let synced = api.get_opt(name).await?.is_some_and(|q| {
                let hard = q.spec.and_then(|s| s.hard).unwrap_or_default();
                let status = q.status.unwrap_or_default();
                let (status_hard, used) = (
                    status.hard.unwrap_or_default(),
                    status.used.unwrap_or_default(),
                );
                hard.keys()
                    .all(|k| status_hard.contains_key(k) && used.contains_key(k))
            });
            if synced {
                return Ok(());
            }
            wait.again().await?;
        }
    }

    pub(super) async fn ensure_namespace(&self, name: &str) -> Result<()> {
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

    pub(super) fn owned_by_scenario(&self, ns: &str, kind: &str, object: &Value) -> bool {
        // In namespaces the harness does not own (kube-system), only objects
        // it created count (not kind's CoreDNS Deployment, say); elsewhere
        // every object does.
        !SYSTEM_NAMESPACES.contains(&ns)
            || self.foreign.iter().any(|(k, n, name)| {
                k == kind && n == ns && name == crate::object::meta_str(object, "name")
            })
    }
}
