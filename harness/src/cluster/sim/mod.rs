//! The simulated cluster: an in-process apiserver (store, defaulting,
//! built-in admission, the real injector over HTTPS as a mutating webhook,
//! validation), the workload controllers, and a one-node kubelet model.
//!
//! It behaves like a one-node kind cluster wherever a scenario can see it.
//! It never reads a scenario's expectations. Time is simulated: nothing
//! sleeps, so a scenario settles in milliseconds.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use serde_json::{json, Value};

use super::{Cluster, ObjectEvent, Observed, Rejection, FAILED_SCHEDULING};
use crate::admission::{Admitted, Attributes, WebhookCaller};
use crate::kubelet::{self, Node};
use crate::version::Minor;

mod controllers;
pub mod defaults;
mod limit_ranger;
pub mod metadata;
mod quantities;
pub mod scheduler;
pub mod validation;

/// The node name kind gives a single-node cluster named `injector-harness`.
pub const NODE_NAME: &str = "injector-harness-control-plane";
const NODE_IP: &str = "172.18.0.2";
/// Namespaces every cluster starts with.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Key of a stored namespaced object.
type Key = (String, String, String); // kind, namespace, name

pub struct SimCluster {
    namespaces: BTreeMap<String, Value>,
    objects: BTreeMap<Key, Value>,
    /// Pods in creation order.
    pods: Vec<Value>,
    webhooks: Vec<MutatingWebhook>,
    caller: WebhookCaller,
    node: Node,
    /// The Node object the scheduler filters on (the kubelet's registration).
    node_object: Value,
    /// The Kubernetes minor whose messages and rules the cluster follows.
    minor: Minor,
    /// What the node runs before any scenario (kind's control plane, CoreDNS,
    /// kube-proxy): counted by the scheduler, never shown.
    node_pods: Vec<Value>,
    rejections: Vec<Rejection>,
    /// The scheduler's FailedScheduling events.
    events: Vec<ObjectEvent>,
    /// Admission warnings returned by webhooks, per pod (for reports).
    pub warnings: Vec<(String, String)>,
    names: NameGen,
    counter: u64,
    /// ReplicaSets whose pod creation failed during this settle: the real
    /// controller retries them with back-off, and nothing that could change
    /// the answer happens before the next step, so they wait until then.
    pub(crate) backing_off: std::collections::BTreeSet<(String, String)>,
}

/// Deterministic stand-in for the apiserver's random name suffixes.
struct NameGen(u64);

impl NameGen {
    /// Five characters from the alphabet Kubernetes uses for generated names.
    fn suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                ALPHABET[(self.0 % ALPHABET.len() as u64) as usize] as char
            })
            .collect()
    }
}

/// fnv32a, the hash Kubernetes uses for pod-template and revision hashes.
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= *b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Kubernetes renders template hashes as the decimal hash re-spelled in a
/// vowel-free alphabet, so they never form words (e.g. `6bdf5d484b`).
pub fn safe_encode(n: u32) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    n.to_string()
        .bytes()
        .map(|b| ALPHABET[(b as usize) % ALPHABET.len()] as char)
        .collect()
}

impl SimCluster {
    /// A fresh cluster of the newest supported minor; `seed` makes
    /// generated names reproducible.
    pub fn new(seed: &str) -> SimCluster {
        SimCluster::of_version(seed, crate::version::newest())
    }

    /// A fresh cluster that behaves as Kubernetes `minor` where the
    /// supported minors differ.
    pub fn of_version(seed: &str, minor: Minor) -> SimCluster {
        let mut c = SimCluster {
            minor,
            namespaces: BTreeMap::new(),
            objects: BTreeMap::new(),
            pods: Vec::new(),
            webhooks: Vec::new(),
            caller: WebhookCaller::new(),
            node: Node::kind_node(NODE_NAME, NODE_IP, []),
            node_object: kubelet::node::node_object(NODE_NAME),
            node_pods: kubelet::node::node_pods(NODE_NAME, crate::probe::PROBE_IMAGE),
            rejections: Vec::new(),
            events: Vec::new(),
            warnings: Vec::new(),
            names: NameGen(u64::from(fnv32a(seed.as_bytes())) | 1),
            counter: 0,
            backing_off: Default::default(),
        };
        for ns in SYSTEM_NAMESPACES {
            c.create_namespace(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            );
        }
        c
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Stamps what the apiserver stamps on every created object.
    fn stamp(&mut self, object: &mut Value) {
        let n = self.next();
        let meta = &mut object["metadata"];
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{n:012x}"));
        meta["resourceVersion"] = json!(n.to_string());
        meta["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        if meta.get("generation").is_none()
            && object["kind"] != "Pod"
            && object.get("spec").is_some()
        {
            object["metadata"]["generation"] = json!(1);
        }
    }

    fn create_namespace(&mut self, mut ns: Value) {
        let name = ns["metadata"]["name"].as_str().unwrap_or("").to_string();
        if !ns["metadata"]["labels"].is_object() {
            ns["metadata"]["labels"] = json!({});
        }
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        ns["spec"] = json!({"finalizers": ["kubernetes"]});
        ns["status"] = json!({"phase": "Active"});
        self.stamp(&mut ns);
        self.namespaces.insert(name.clone(), ns);
        // The service-account and root-CA controllers fill every namespace.
        for (kind, obj_name) in [
            ("ServiceAccount", "default"),
            ("ConfigMap", "kube-root-ca.crt"),
        ] {
            let mut o = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": obj_name, "namespace": name}});
            self.stamp(&mut o);
            self.objects
                .insert((kind.into(), name.clone(), obj_name.into()), o);
        }
    }

    fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(ns)
            .and_then(|n| n["metadata"]["labels"].as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Puts `images` on the node (a scenario's `preloadImages`), as `kind
    /// load` does on a real one.
    pub fn preload_images(&mut self, images: &[String]) {
        self.node.add_images(images.iter().map(String::as_str));
    }

    pub(crate) fn exists(&self, kind: &str, ns: &str, name: &str) -> bool {
        self.objects
            .contains_key(&(kind.into(), ns.into(), name.into()))
    }

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

    /// The scheduler's turn: each pod not yet bound, in creation order
    /// (the queue's order for pods of equal priority), is bound to the node
    /// or marked unschedulable with the scheduler's message and event. An
    /// unschedulable pod is tried again each round, as the scheduler retries
    /// it when pods go away. `Ok(true)` when anything changed.
    fn run_scheduler(&mut self) -> Result<bool> {
        let mut changed = false;
        for i in 0..self.pods.len() {
            if self.pods[i]["spec"]["nodeName"].is_string() {
                continue;
            }
            let outcome = {
                let bound: Vec<&Value> = self
                    .node_pods
                    .iter()
                    .chain(self.pods.iter())
                    .filter(|p| p["spec"]["nodeName"] == NODE_NAME)
                    .filter(|p| {
                        !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
                    })
                    .collect();
                scheduler::schedule(&self.pods[i], &self.node_object, &bound, self.minor)
            };
            let pod = &mut self.pods[i];
            match outcome {
                scheduler::Outcome::Bind => {
                    pod["spec"]["nodeName"] = json!(NODE_NAME);
                    changed = true;
                }
                scheduler::Outcome::Unschedulable(message) => {
                    let mut condition = json!([{
                        "type": "PodScheduled",
                        "status": "False",
                        "lastProbeTime": null,
                        "lastTransitionTime": kubelet::TIMESTAMP,
                        "reason": "Unschedulable",
                        "message": message,
                    }]);
                    // The scheduler reports which generation it looked at.
                    if let Some(g) = pod["metadata"]["generation"].as_i64() {
                        condition[0]["observedGeneration"] = json!(g);
                    }
                    if pod["status"]["conditions"] == condition {
                        continue;
                    }
                    pod["status"]["conditions"] = condition;
                    let event = ObjectEvent {
                        namespace: crate::object::namespace(pod).to_string(),
                        kind: "Pod".into(),
                        name: crate::object::meta_str(pod, "name").to_string(),
                        reason: FAILED_SCHEDULING.into(),
                        message,
                    };
                    if !self.events.contains(&event) {
                        self.events.push(event);
                    }
                    changed = true;
                }
                scheduler::Outcome::Preempts(victims) => bail!(
                    "pod {}/{} would preempt {}; the simulated scheduler does not model preemption",
                    crate::object::namespace(pod),
                    crate::object::meta_str(pod, "name"),
                    victims.join(", ")
                ),
            }
        }
        Ok(changed)
    }

    /// Runs the kubelet on bound pods it has not started yet, in creation
    /// order.
    fn run_kubelet(&mut self) -> bool {
        let mut changed = false;
        for i in 0..self.pods.len() {
            if self.pods[i]["status"]["startTime"].is_string()
                || self.pods[i]["spec"]["nodeName"] != NODE_NAME
            {
                continue;
            }
            let ns = self.pods[i]["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let objects = &self.objects;
            let cm = |n: &str, name: &str| {
                objects.contains_key(&("ConfigMap".into(), n.into(), name.into()))
            };
            let secret = |n: &str, name: &str| {
                objects.contains_key(&("Secret".into(), n.into(), name.into()))
            };
            let host_network = self.pods[i]["spec"]["hostNetwork"] == true;
            let pod_ip = if host_network {
                NODE_IP.to_string()
            } else {
                format!("10.244.0.{}", i + 5)
            };
            let ctx = kubelet::RunContext {
                config_map_exists: &cm,
                secret_exists: &secret,
                pod_ip,
            };
            let _ = &ns;
            let status = kubelet::run_pod(&self.pods[i], &mut self.node, &ctx);
            self.pods[i]["status"] = status;
            changed = true;
        }
        changed
    }

    pub(crate) fn pods_owned_by(&self, kind: &str, ns: &str, name: &str) -> Vec<&Value> {
        self.pods
            .iter()
            .filter(|p| {
                p["metadata"]["namespace"] == ns
                    && p["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|o| o.iter().any(|r| r["kind"] == kind && r["name"] == name))
            })
            .collect()
    }

    pub(crate) fn delete_pod(&mut self, ns: &str, name: &str) {
        if let Some(i) = self
            .pods
            .iter()
            .position(|p| p["metadata"]["namespace"] == ns && p["metadata"]["name"] == name)
        {
            self.pods.remove(i);
            self.node.release_pod(ns, name);
        }
    }

    pub(crate) fn record_rejection(
        &mut self,
        namespace: &str,
        kind: &str,
        name: &str,
        message: String,
    ) {
        let r = Rejection {
            namespace: namespace.into(),
            kind: kind.into(),
            name: name.into(),
            message,
        };
        if !self.rejections.contains(&r) {
            self.rejections.push(r);
        }
    }

    /// Creates or updates any object but a Pod or Namespace, as the
    /// apiserver does: decode (quantities), the namespace's existence, the
    /// kind's defaults, mutating webhooks whose rules name the kind (the
    /// image-swap webhook's `apps/v1 deployments`), then name and metadata
    /// validation.
    async fn store(&mut self, mut object: Value) -> Result<()> {
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

    pub(crate) fn objects_of(&self, kind: &str) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, _, _), _)| k == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn object_mut(&mut self, kind: &str, ns: &str, name: &str) -> Option<&mut Value> {
        self.objects.get_mut(&(kind.into(), ns.into(), name.into()))
    }

    pub(crate) fn insert_object(&mut self, object: Value) {
        let key = (
            object["kind"].as_str().unwrap_or("").to_string(),
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            object["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
        let mut object = object;
        if !self.objects.contains_key(&key) {
            self.stamp(&mut object);
        }
        self.objects.insert(key, object);
    }

    pub(crate) fn pods(&self) -> &[Value] {
        &self.pods
    }

    /// One line per webhook call, with the injector's decision.
    pub fn admission_log(&self) -> Vec<String> {
        self.caller.log.clone()
    }

    #[allow(dead_code)]
    pub(crate) fn suffix(&mut self) -> String {
        self.names.suffix()
    }
}

impl Cluster for SimCluster {
    async fn register(&mut self, webhooks: Vec<MutatingWebhook>) -> Result<()> {
        self.webhooks = webhooks;
        Ok(())
    }

    fn injector_answering(&mut self, answering: bool) {
        if !answering {
            self.caller.forget_connections();
        }
    }

    fn admission_log(&self) -> Vec<String> {
        SimCluster::admission_log(self)
    }

    async fn apply(&mut self, object: &Value) -> Result<()> {
        let kind = object["kind"].as_str().unwrap_or("");
        match kind {
            "Namespace" => {
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let errs = match self.namespaces.contains_key(&name) {
                    true => metadata::on_update(&object["metadata"], self.minor),
                    false => metadata::on_create("Namespace", &object["metadata"], self.minor),
                };
                if !errs.is_empty() {
                    let message = metadata::invalid_message("Namespace", &name, &errs);
                    self.record_rejection("", "Namespace", &name, message);
                    return Ok(());
                }
                match self.namespaces.get_mut(&name) {
                    Some(ns) => {
                        for (k, v) in object["metadata"]["labels"]
                            .as_object()
                            .into_iter()
                            .flatten()
                        {
                            ns["metadata"]["labels"][k] = v.clone();
                        }
                    }
                    None => self.create_namespace(object.clone()),
                }
            }
            "Pod" => {
                let ns = crate::object::namespace(object).to_string();
                let name = crate::object::written_name(object).to_string();
                if let Err(message) = self.create_pod(object.clone()).await {
                    self.record_rejection(&ns, "Pod", &name, message);
                }
            }
            "ConfigMap" | "Secret" | "ServiceAccount" | "Service" | "LimitRange" | "Deployment"
            | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
                self.store(object.clone()).await?
            }
            other => bail!("the simulated cluster cannot apply a {other}"),
        }
        Ok(())
    }

    async fn label_namespace(
        &mut self,
        name: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        let Some(ns) = self.namespaces.get_mut(name) else {
            bail!("namespaces {name:?} not found");
        };
        for (k, v) in labels {
            match v {
                Some(v) => ns["metadata"]["labels"][k] = json!(v),
                None => {
                    if let Some(m) = ns["metadata"]["labels"].as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
        Ok(())
    }

    async fn rollout_restart(&mut self, namespace: &str, kind: &str, name: &str) -> Result<()> {
        let Some(w) = self.object_mut(kind, namespace, name) else {
            bail!("{kind} {namespace}/{name} not found");
        };
        // What `kubectl rollout restart` patches in.
        w["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
            json!("2025-01-01T00:05:00Z");
        let generation = w["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        w["metadata"]["generation"] = json!(generation);
        Ok(())
    }

    async fn scale(
        &mut self,
        namespace: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> Result<()> {
        let Some(w) = self.object_mut(kind, namespace, name) else {
            bail!("{kind} {namespace}/{name} not found");
        };
        if w["spec"]["replicas"].as_i64() != Some(i64::from(replicas)) {
            w["spec"]["replicas"] = json!(replicas);
            let generation = w["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            w["metadata"]["generation"] = json!(generation);
        }
        Ok(())
    }

    async fn settle(&mut self) -> Result<()> {
        // Controllers and the kubelet take turns until nothing changes. The
        // bound only guards against a modelling bug looping forever.
        self.backing_off.clear();
        for _ in 0..100 {
            let controllers = controllers::reconcile(self).await;
            let scheduler = self.run_scheduler()?;
            let kubelet = self.run_kubelet();
            if !controllers && !scheduler && !kubelet {
                return Ok(());
            }
        }
        bail!("the simulated cluster did not settle after 100 rounds")
    }

    async fn observe(&mut self) -> Result<Observed> {
        let mut workloads = Vec::new();
        for kind in [
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
        ] {
            workloads.extend(self.objects_of(kind));
        }
        Ok(Observed {
            pods: self.pods.clone(),
            workloads,
            rejections: self.rejections.clone(),
            events: self.events.clone(),
            kubernetes: Some(self.minor),
        })
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
