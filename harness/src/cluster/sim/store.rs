//! The simulated apiserver's state and storage: the `SimCluster` itself,
//! what every create stamps, the namespaces with the objects their
//! controllers add, and the accessors the write path, the controllers and
//! the node turns go through.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use serde_json::{json, Value};

use super::names::{fnv32a, NameGen};
use super::node::{NODE_IP, NODE_NAME};
use super::warning_recorder::WarningRecorder;
use crate::admission::WebhookCaller;
use crate::cluster::{api_resources, ApiKind, ObjectEvent, Rejection, Warning};
use crate::kubelet::{self, Node};
use crate::version::Minor;

/// Namespaces every cluster starts with.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Key of a stored namespaced object.
type Key = (String, String, String); // kind, namespace, name

pub struct SimCluster {
    pub(super) namespaces: BTreeMap<String, Value>,
    pub(super) objects: BTreeMap<Key, Value>,
    /// Pods in creation order.
    pub(super) pods: Vec<Value>,
    pub(super) webhooks: Vec<MutatingWebhook>,
    pub(super) caller: WebhookCaller,
    pub(super) node: Node,
    /// The Node object the scheduler filters on (the kubelet's registration).
    pub(super) node_object: Value,
    /// The Kubernetes minor whose messages and rules the cluster follows.
    pub(super) minor: Minor,
    /// What the node runs before any scenario (kind's control plane, CoreDNS,
    /// kube-proxy): counted by the scheduler, never shown.
    pub(super) node_pods: Vec<Value>,
    pub(super) rejections: Vec<Rejection>,
    /// The scheduler's FailedScheduling events.
    pub(super) events: Vec<ObjectEvent>,
    /// The warnings of the request being served (a controller's go
    /// nowhere; the scenario's are kept in `warnings` when it ends).
    pub(super) recorder: WarningRecorder,
    /// Warnings returned to the scenario's own requests, in order.
    pub(super) warnings: Vec<Warning>,
    pub(super) names: NameGen,
    pub(super) counter: u64,
    /// ReplicaSets whose pod creation failed during this settle: the real
    /// controller retries them with back-off, and nothing that could change
    /// the answer happens before the next step, so they wait until then.
    pub(crate) backing_off: std::collections::BTreeSet<(String, String)>,
    /// The write in progress is a server-side dry run (webhooks are told).
    pub(super) dry_run: bool,
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
            recorder: WarningRecorder::default(),
            warnings: Vec::new(),
            names: NameGen(u64::from(fnv32a(seed.as_bytes())) | 1),
            counter: 0,
            backing_off: Default::default(),
            dry_run: false,
        };
        for ns in SYSTEM_NAMESPACES {
            c.create_namespace(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            );
        }
        c
    }

    pub(super) fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Stamps what the apiserver stamps on every created object.
    pub(super) fn stamp(&mut self, object: &mut Value) {
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

    pub(super) fn create_namespace(&mut self, mut ns: Value) {
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

    pub(super) fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
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

    /// Where `object` goes in the API: a built-in kind, or one a stored
    /// CustomResourceDefinition serves. `None`: the API does not serve it.
    pub(super) fn resolve(&self, object: &Value) -> Option<ApiKind> {
        let api_version = object["apiVersion"].as_str().unwrap_or("");
        let kind = object["kind"].as_str().unwrap_or("");
        api_resources::built_in(api_version, kind).or_else(|| {
            self.objects_of("CustomResourceDefinition")
                .iter()
                .flat_map(api_resources::defined_by)
                .find(|k| k.kind == kind && k.api_version() == api_version)
        })
    }

    /// The stored definition that serves the custom kind `kind`.
    pub(super) fn definition_of(&self, kind: &ApiKind) -> Option<Value> {
        self.objects_of("CustomResourceDefinition")
            .into_iter()
            .find(|d| api_resources::defined_by(d).contains(kind))
    }

    /// PodSecurity on a Namespace's create or update: bad `pod-security`
    /// labels are refused; a new enforce level that existing pods violate
    /// is warned about.
    pub(super) fn namespace_security(&mut self, new: &Value) -> Result<(), String> {
        let name = crate::object::meta_str(new, "name").to_string();
        let minor = u64::from(self.minor.number());
        let outcome = match self.namespaces.get(&name) {
            None => super::pod_security::admit_namespace_create(new),
            Some(old) => {
                let mut merged = old.clone();
                json_patch::merge(
                    &mut merged,
                    &json!({"metadata": {"labels": new["metadata"]["labels"]}}),
                );
                let pods: Vec<Value> = self
                    .pods
                    .iter()
                    .filter(|p| p["metadata"]["namespace"] == name.as_str())
                    .cloned()
                    .collect();
                super::pod_security::admit_namespace_update(&merged, old, &pods, minor)
            }
        };
        if let Some(refusal) = outcome.refusal {
            return Err(refusal.message);
        }
        self.recorder.extend(outcome.warnings);
        Ok(())
    }

    /// One of the scenario's requests begins: what controllers' requests
    /// recorded reached no client.
    pub(super) fn begin_request(&mut self) {
        self.recorder.take();
    }

    /// It ends: the client receives the warnings recorded, attributed to
    /// the object as the scenario named it.
    pub(super) fn end_request(&mut self, namespace: &str, kind: &str, name: &str) {
        for message in self.recorder.take() {
            self.warnings.push(Warning {
                namespace: namespace.into(),
                kind: kind.into(),
                name: name.into(),
                message,
            });
        }
    }

    pub(crate) fn exists(&self, kind: &str, ns: &str, name: &str) -> bool {
        self.objects
            .contains_key(&(kind.into(), ns.into(), name.into()))
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
