//! The injection engine: decision, port pass and patch for one pod.
//!
//! The pod is read as JSON, never rebuilt through typed structs (which would
//! drop fields the types do not know); what comes out is a JSON Patch against
//! the pod as it arrived. The webhook and the offline `inject` command both go
//! through [`Injector::evaluate`], so they cannot disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use json_patch::Patch;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Config, NameConflictPolicy, PortConflictPolicy};
use crate::patch::PatchBuilder;
use crate::policy::{self, shorten, Decision, PodFacts, Reason};
use crate::ports::{self, Remap};

/// What the injector records on an injected pod, in the status annotation.
/// It names exactly what was added, so a later pass can tell what is ours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InjectionStatus {
    pub init_containers: Vec<String>,
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub image_pull_secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remapped_ports: Vec<Remap>,
}

/// The result for one pod.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub decision: Decision,
    /// Empty when nothing is injected.
    pub patch: Patch,
    /// Short messages for the user (admission warnings).
    pub warnings: Vec<String>,
    /// Set when the pod must be refused (port clash under `reject`).
    pub denied: Option<String>,
    /// What was injected, when something was.
    pub status: Option<InjectionStatus>,
}

impl Outcome {
    pub fn injected(&self) -> bool {
        self.status.is_some()
    }
}

/// A pod object that cannot be read (wrong JSON types in the fields the
/// injector needs). The apiserver would reject it too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PodError {
    pub field: String,
    pub message: String,
}

/// A pod as the engine sees it: its namespace, metadata and raw spec.
#[derive(Debug, Clone, Copy)]
pub struct PodRef<'a> {
    pub namespace: &'a str,
    pub metadata: &'a ObjectMeta,
    pub spec: &'a Value,
}

/// The engine, built once per config and shared by every request.
#[derive(Debug)]
pub struct Injector {
    config: Arc<Config>,
    own_namespace: Option<String>,
    templates: Templates,
}

/// The config's objects pre-rendered as JSON once, not per request.
#[derive(Debug)]
struct Templates {
    init_containers: Vec<Value>,
    containers: Vec<Value>,
    volumes: Vec<Value>,
    image_pull_secrets: Vec<Value>,
}

/// Renders config objects as JSON with `name` (and `image`) first, as people
/// write them; the Kubernetes types serialize fields alphabetically.
fn to_values<T: Serialize>(items: &[T]) -> Vec<Value> {
    items
        .iter()
        .map(|i| match serde_json::to_value(i) {
            Ok(Value::Object(m)) => {
                let mut out = serde_json::Map::new();
                for key in ["name", "image"] {
                    if let Some(v) = m.get(key) {
                        out.insert(key.to_string(), v.clone());
                    }
                }
                for (k, v) in m {
                    if !out.contains_key(&k) {
                        out.insert(k, v);
                    }
                }
                Value::Object(out)
            }
            Ok(other) => other,
            Err(_) => Value::Null,
        })
        .collect()
}

fn name_of(v: &Value) -> &str {
    v.get("name").and_then(Value::as_str).unwrap_or("")
}

impl Injector {
    pub fn new(config: Config) -> Injector {
        let templates = Templates {
            init_containers: to_values(&config.init_containers),
            containers: to_values(&config.containers),
            volumes: to_values(&config.volumes),
            image_pull_secrets: to_values(&config.image_pull_secrets),
        };
        Injector {
            config: Arc::new(config),
            own_namespace: None,
            templates,
        }
    }

    /// The namespace the injector runs in; it is never injected.
    pub fn with_own_namespace(mut self, namespace: Option<String>) -> Injector {
        self.own_namespace = namespace.filter(|n| !n.is_empty());
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn own_namespace(&self) -> Option<&str> {
        self.own_namespace.as_deref()
    }

    /// Decides for `pod` and, when it is to be injected, builds the patch.
    pub fn evaluate(&self, pod: PodRef<'_>) -> Result<Outcome, PodError> {
        let spec = SpecView::read(pod.spec)?;
        let empty = BTreeMap::new();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
        let decision = policy::decide(
            &self.config.policy,
            self.own_namespace.as_deref(),
            PodFacts {
                namespace: pod.namespace,
                labels,
                annotations,
                host_network: spec.host_network,
            },
        );
        let mut warnings = decision.warnings.clone();
        if !decision.inject() {
            return Ok(Outcome {
                decision,
                patch: Patch(Vec::new()),
                warnings,
                denied: None,
                status: None,
            });
        }

        // Names: a container or volume the pod already has under a sidecar's
        // name means the pod is not injected at all (see NameConflictPolicy).
        let clashes = self.name_clashes(&spec);
        if !clashes.is_empty() {
            let what = format!("the pod already has {}", clashes.join(", "));
            let decision = Decision {
                reason: Reason::NameConflict,
                detail: format!("{what}, which the sidecar injects"),
                warnings: decision.warnings,
            };
            return Ok(match self.config.on_name_conflict {
                NameConflictPolicy::Skip => {
                    warnings.push(shorten(&format!(
                        "not injected: {what} (onNameConflict: skip)"
                    )));
                    Outcome {
                        decision,
                        patch: Patch(Vec::new()),
                        warnings,
                        denied: None,
                        status: None,
                    }
                }
                NameConflictPolicy::Reject => {
                    let message =
                        format!("{what}, which the sidecar injects (onNameConflict: reject)");
                    Self::deny(decision, warnings, message)
                }
            });
        }
        let mut init = self.templates.init_containers.clone();
        let mut main = self.templates.containers.clone();

        // Ports: sidecars that run next to the app (native sidecars first,
        // as they start first, then regular sidecars).
        let mut taken_ports = ports::ports_in_use(pod.spec);
        let mut running: Vec<&mut Value> = init
            .iter_mut()
            .filter(|c| ports::is_native_sidecar(c))
            .chain(main.iter_mut())
            .collect();
        let policy = self.config.on_port_conflict;
        let plan = ports::resolve(
            policy,
            &self.config.port_rules,
            &mut taken_ports,
            &mut running,
        );
        for r in &plan.remapped {
            warnings.push(shorten(&format!(
                "sidecar {} port {} is taken in the pod; moved to {}",
                r.container, r.from, r.to
            )));
        }
        for c in &plan.unresolved {
            let what = format!(
                "sidecar {} port {}/{} clashes with container {}",
                c.sidecar, c.port, c.protocol, c.owner
            );
            match policy {
                PortConflictPolicy::Keep => {
                    warnings.push(shorten(&format!("{what}; kept (onPortConflict: keep)")))
                }
                PortConflictPolicy::Reject => {
                    return Ok(Self::deny(
                        Self::port_conflict(decision, &what),
                        warnings,
                        format!("{what} (onPortConflict: reject)"),
                    ))
                }
                PortConflictPolicy::Remap => {
                    return Ok(Self::deny(
                        Self::port_conflict(decision, &what),
                        warnings,
                        format!("{what}; no free port above it"),
                    ))
                }
            }
        }

        // A regular sidecar never exits, so a Job's pod would never complete;
        // native sidecars (init containers with restartPolicy Always) are
        // stopped by the kubelet once the main containers are done.
        if matches!(spec.restart_policy, Some("Never" | "OnFailure")) {
            for c in &main {
                warnings.push(shorten(&format!(
                    "sidecar {} keeps a run-to-completion pod running; use a native sidecar",
                    name_of(c)
                )));
            }
        }

        let volumes = self.templates.volumes.clone();
        let existing_secrets: BTreeSet<&str> = spec.pull_secret_names().collect();
        let secrets: Vec<Value> = self
            .templates
            .image_pull_secrets
            .iter()
            .filter(|s| !existing_secrets.contains(name_of(s)))
            .cloned()
            .collect();

        let status = InjectionStatus {
            init_containers: init.iter().map(|c| name_of(c).to_string()).collect(),
            containers: main.iter().map(|c| name_of(c).to_string()).collect(),
            volumes: volumes.iter().map(|v| name_of(v).to_string()).collect(),
            image_pull_secrets: secrets.iter().map(|s| name_of(s).to_string()).collect(),
            remapped_ports: plan.remapped,
        };

        let mut patch = PatchBuilder::new();
        self.patch_metadata(&mut patch, pod.metadata, &status);
        patch.prepend("/spec/initContainers", spec.init_containers, init);
        patch.append("/spec/containers", spec.containers, main);
        patch.append("/spec/volumes", spec.volumes, volumes);
        patch.append("/spec/imagePullSecrets", spec.image_pull_secrets, secrets);

        Ok(Outcome {
            decision,
            patch: patch.build(),
            warnings,
            denied: None,
            status: Some(status),
        })
    }

    /// "container envoy", "volume envoy-config": every injected name the pod
    /// already uses, containers (init or not) first, in config order.
    fn name_clashes(&self, spec: &SpecView<'_>) -> Vec<String> {
        let containers: BTreeSet<&str> = spec.container_names().collect();
        let volumes: BTreeSet<&str> = spec.volume_names().collect();
        let t = &self.templates;
        let containers = t
            .init_containers
            .iter()
            .chain(&t.containers)
            .map(name_of)
            .filter(|n| containers.contains(n))
            .map(|n| format!("container {n}"));
        let volumes = t
            .volumes
            .iter()
            .map(name_of)
            .filter(|n| volumes.contains(n))
            .map(|n| format!("volume {n}"));
        containers.chain(volumes).collect()
    }

    /// A denial for a port clash is counted and audited as `port_conflict`,
    /// not under the reason that said "inject" (which would make
    /// `denied_total{reason="policy_enabled"}` read as a policy refusal).
    fn port_conflict(decision: Decision, what: &str) -> Decision {
        Decision {
            reason: Reason::PortConflict,
            detail: what.to_string(),
            warnings: decision.warnings,
        }
    }

    fn deny(decision: Decision, warnings: Vec<String>, message: String) -> Outcome {
        Outcome {
            decision,
            patch: Patch(Vec::new()),
            warnings,
            denied: Some(message),
            status: None,
        }
    }

    /// Status annotation, extra annotations and labels. A key the pod already
    /// sets is the user's and is left alone; the status is always ours.
    fn patch_metadata(
        &self,
        patch: &mut PatchBuilder,
        meta: &ObjectMeta,
        status: &InjectionStatus,
    ) {
        let status_key = self.config.policy.status_annotation.as_str();
        let status_json = serde_json::to_string(status).unwrap_or_default();
        let has = |map: &Option<BTreeMap<String, String>>, k: &str| {
            map.as_ref().is_some_and(|m| m.contains_key(k))
        };
        let annotations: Vec<(&str, String)> = std::iter::once((status_key, status_json))
            .chain(
                self.config
                    .annotations
                    .iter()
                    .filter(|(k, _)| !has(&meta.annotations, k))
                    .map(|(k, v)| (k.as_str(), v.clone())),
            )
            .collect();
        let labels: Vec<(&str, String)> = self
            .config
            .labels
            .iter()
            .filter(|(k, _)| !has(&meta.labels, k))
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();

        if *meta == ObjectMeta::default() {
            // Metadata may be absent altogether (a bare pod template). An
            // empty metadata holds nothing to lose, so adding it whole is
            // correct whether it exists or not.
            let mut m = serde_json::Map::new();
            let to_map = |entries: Vec<(&str, String)>| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), Value::String(v)))
                        .collect(),
                )
            };
            m.insert("annotations".into(), to_map(annotations));
            if !labels.is_empty() {
                m.insert("labels".into(), to_map(labels));
            }
            patch.add("/metadata", Value::Object(m));
            return;
        }
        patch.merge_map(
            "/metadata/annotations",
            meta.annotations.is_some(),
            annotations,
        );
        patch.merge_map("/metadata/labels", meta.labels.is_some(), labels);
    }
}

/// The parts of a pod spec the engine reads, type-checked once.
struct SpecView<'a> {
    host_network: bool,
    restart_policy: Option<&'a str>,
    containers: Option<&'a Vec<Value>>,
    init_containers: Option<&'a Vec<Value>>,
    volumes: Option<&'a Vec<Value>>,
    image_pull_secrets: Option<&'a Vec<Value>>,
}

impl<'a> SpecView<'a> {
    fn read(spec: &'a Value) -> Result<SpecView<'a>, PodError> {
        let bad = |field: &str, message: &str| PodError {
            field: format!("spec.{field}"),
            message: message.to_string(),
        };
        let Some(obj) = spec.as_object() else {
            return Err(PodError {
                field: "spec".into(),
                message: "must be an object".into(),
            });
        };
        let list = |field: &str| -> Result<Option<&'a Vec<Value>>, PodError> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(a)) => {
                    if a.iter().all(Value::is_object) {
                        Ok(Some(a))
                    } else {
                        Err(bad(field, "every entry must be an object"))
                    }
                }
                Some(_) => Err(bad(field, "must be a list")),
            }
        };
        let host_network = match obj.get("hostNetwork") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("hostNetwork", "must be true or false")),
        };
        Ok(SpecView {
            host_network,
            restart_policy: obj.get("restartPolicy").and_then(Value::as_str),
            containers: list("containers")?,
            init_containers: list("initContainers")?,
            volumes: list("volumes")?,
            image_pull_secrets: list("imagePullSecrets")?,
        })
    }

    fn container_names(&self) -> impl Iterator<Item = &'a str> {
        self.init_containers
            .into_iter()
            .flatten()
            .chain(self.containers.into_iter().flatten())
            .map(name_of)
    }

    fn volume_names(&self) -> impl Iterator<Item = &'a str> {
        self.volumes.into_iter().flatten().map(name_of)
    }

    fn pull_secret_names(&self) -> impl Iterator<Item = &'a str> {
        self.image_pull_secrets.into_iter().flatten().map(name_of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(config: &Config, ns: &str, pod: &Value) -> (Outcome, Value) {
        let meta: ObjectMeta =
            serde_json::from_value(pod.get("metadata").cloned().unwrap_or(json!({}))).unwrap();
        let inj = Injector::new(config.clone());
        let out = inj
            .evaluate(PodRef {
                namespace: ns,
                metadata: &meta,
                spec: &pod["spec"],
            })
            .unwrap();
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &out.patch).expect("patch applies strictly");
        (out, patched)
    }

    /// The built-in config's sidecar, to be extended by a test.
    const DEFAULT_NAME_CONFLICT_TEST_CONFIG: &str = "containers: [{name: envoy, image: e}]\n";

    fn backend_pod(port: i32) -> Value {
        json!({
            "metadata": {"name": "backend", "labels": {"app": "backend"}},
            "spec": {"containers": [{"name": "backend", "image": "backend:v1", "ports": [{"containerPort": port}]}]}
        })
    }

    #[test]
    fn injects_the_default_sidecar_into_a_bare_pod() {
        let (out, pod) = run(&Config::builtin(), "default", &backend_pod(8080));
        assert_eq!(out.decision.reason, Reason::PolicyEnabled);
        let names: Vec<_> = pod["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(name_of)
            .collect();
        assert_eq!(names, ["backend", "envoy"]);
        assert_eq!(pod["spec"]["volumes"][0]["name"], "envoy-config");
        let status: InjectionStatus = serde_json::from_str(
            pod["metadata"]["annotations"]["sidecar-injector.io/status"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(status.containers, ["envoy"]);
        assert_eq!(status.volumes, ["envoy-config"]);
        assert_eq!(
            pod["metadata"]["labels"],
            json!({"app": "backend"}),
            "labels untouched"
        );
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }

    #[test]
    fn port_10000_clash_is_remapped_to_10001() {
        let (out, pod) = run(&Config::builtin(), "default", &backend_pod(10000));
        let envoy = &pod["spec"]["containers"][1];
        assert_eq!(envoy["ports"][0]["containerPort"], 10001);
        assert_eq!(
            envoy["env"][0],
            json!({"name": "PROXY_PORT", "value": "10001"})
        );
        assert_eq!(envoy["readinessProbe"]["tcpSocket"]["port"], 10001);
        assert_eq!(out.warnings.len(), 1);
        assert!(
            out.warnings[0].contains("moved to 10001"),
            "{:?}",
            out.warnings
        );
        assert!(out.warnings[0].len() < 120);
    }

    #[test]
    fn keep_injects_the_clash_and_warns() {
        let mut c = Config::builtin();
        c.on_port_conflict = PortConflictPolicy::Keep;
        let (out, pod) = run(&c, "default", &backend_pod(10000));
        assert_eq!(
            pod["spec"]["containers"][1]["ports"][0]["containerPort"],
            10000
        );
        assert!(out.warnings[0].contains("kept"), "{:?}", out.warnings);
        assert!(out.denied.is_none());
    }

    #[test]
    fn reject_denies_with_a_message() {
        let mut c = Config::builtin();
        c.on_port_conflict = PortConflictPolicy::Reject;
        let (out, pod) = run(&c, "default", &backend_pod(10000));
        assert!(out.patch.0.is_empty());
        assert_eq!(pod, backend_pod(10000));
        let msg = out.denied.unwrap();
        assert!(
            msg.contains("10000/TCP") && msg.contains("backend"),
            "{msg}"
        );
    }

    fn pod_with(containers: Value, volumes: Value) -> Value {
        json!({
            "metadata": {"name": "p", "annotations": {}},
            "spec": {"containers": containers, "volumes": volumes}
        })
    }

    /// A skipped pod: nothing added, no status annotation, reason name_conflict.
    fn assert_skipped_for_names(out: &Outcome, patched: &Value, pod: &Value, names: &[&str]) {
        assert_eq!(out.decision.reason.as_str(), "name_conflict");
        assert!(!out.decision.inject());
        assert!(out.patch.0.is_empty(), "{:?}", out.patch);
        assert_eq!(patched, pod);
        assert!(
            out.status.is_none(),
            "counted as injected: {:?}",
            out.status
        );
        assert!(out.denied.is_none());
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        for n in names {
            assert!(out.warnings[0].contains(n), "{n} in {:?}", out.warnings);
            assert!(out.decision.detail.contains(n), "{}", out.decision.detail);
        }
        assert!(
            out.warnings[0].contains("not injected"),
            "{:?}",
            out.warnings
        );
    }

    #[test]
    fn a_container_name_conflict_skips_the_pod() {
        let pod = pod_with(
            json!([{"name": "app", "image": "a"}, {"name": "envoy", "image": "my-envoy"}]),
            json!([{"name": "envoy-config", "emptyDir": {}}]),
        );
        let (out, patched) = run(&Config::builtin(), "default", &pod);
        assert_skipped_for_names(
            &out,
            &patched,
            &pod,
            &["container envoy", "volume envoy-config"],
        );
    }

    #[test]
    fn a_volume_name_conflict_alone_skips_the_pod_too() {
        // The sidecar would mount the pod's volume instead of its own config:
        // as wrong as a second container of the same name.
        let pod = pod_with(
            json!([{"name": "app", "image": "a"}]),
            json!([{"name": "envoy-config", "emptyDir": {}}]),
        );
        let (out, patched) = run(&Config::builtin(), "default", &pod);
        assert_skipped_for_names(&out, &patched, &pod, &["volume envoy-config"]);
    }

    #[test]
    fn an_init_container_name_conflicts_with_an_injected_container() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "envoy", "image": "e"}], "containers": [{"name": "app", "image": "a"}]}
        });
        let (out, patched) = run(&Config::builtin(), "default", &pod);
        assert_skipped_for_names(&out, &patched, &pod, &["container envoy"]);
    }

    #[test]
    fn reject_denies_a_name_conflict_naming_it() {
        let mut text = DEFAULT_NAME_CONFLICT_TEST_CONFIG.to_string();
        text.push_str("onNameConflict: reject\n");
        let c = Config::from_yaml(&text, "t").unwrap_or_else(|e| panic!("{e}"));
        let pod = pod_with(
            json!([{"name": "app", "image": "a"}, {"name": "envoy", "image": "my-envoy"}]),
            json!([]),
        );
        let (out, patched) = run(&c, "default", &pod);
        assert_eq!(out.decision.reason.as_str(), "name_conflict");
        assert_eq!(patched, pod);
        assert!(out.status.is_none());
        let msg = out.denied.expect("denied");
        assert!(msg.contains("container envoy"), "{msg}");
        assert!(msg.contains("onNameConflict: reject"), "{msg}");
    }

    #[test]
    fn a_denied_port_clash_has_its_own_reason() {
        // Before: the denial kept the reason that said "inject", so metrics
        // counted it as denied_total{reason="policy_enabled"}.
        let mut c = Config::builtin();
        c.on_port_conflict = PortConflictPolicy::Reject;
        let pod = pod_with(
            json!([{"name": "app", "image": "a", "ports": [{"containerPort": 10000}]}]),
            json!([]),
        );
        let (out, patched) = run(&c, "default", &pod);
        assert_eq!(out.decision.reason.as_str(), "port_conflict");
        assert!(!out.decision.inject());
        assert!(
            out.decision.detail.contains("port 10000/TCP"),
            "{:?}",
            out.decision
        );
        assert_eq!(patched, pod);
        let msg = out.denied.expect("denied");
        assert!(msg.contains("onPortConflict: reject"), "{msg}");
    }

    #[test]
    fn a_name_conflict_is_decided_before_a_port_conflict() {
        let mut c = Config::builtin();
        c.on_port_conflict = PortConflictPolicy::Reject;
        let pod = pod_with(
            json!([{"name": "envoy", "image": "e", "ports": [{"containerPort": 10000}]}]),
            json!([]),
        );
        let (out, _) = run(&c, "default", &pod);
        assert_eq!(out.decision.reason.as_str(), "name_conflict");
        assert!(out.denied.is_none(), "{:?}", out.denied);
    }

    #[test]
    fn a_pull_secret_the_pod_already_lists_is_not_a_conflict() {
        // Same name, same Secret: nothing clashes, it is just not listed twice.
        let c = Config::from_yaml(
            "containers: [{name: s, image: s}]\nimagePullSecrets: [{name: registry}]\n",
            "t",
        )
        .unwrap();
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app", "image": "a"}], "imagePullSecrets": [{"name": "registry"}]}
        });
        let (out, patched) = run(&c, "default", &pod);
        assert_eq!(out.decision.reason, Reason::PolicyEnabled);
        assert!(out.injected());
        assert_eq!(
            patched["spec"]["imagePullSecrets"],
            json!([{"name": "registry"}])
        );
        assert_eq!(out.status.unwrap().containers, ["s"]);
    }

    #[test]
    fn native_sidecars_go_before_the_pods_init_containers() {
        let c = Config::from_yaml(
            "initContainers:\n- {name: proxy-init, image: i}\n- {name: proxy, image: p, restartPolicy: Always, ports: [{containerPort: 15001}]}\n",
            "t",
        )
        .unwrap();
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "migrate", "image": "m"}], "containers": [{"name": "app", "image": "a"}]}
        });
        let (_, patched) = run(&c, "default", &pod);
        let names: Vec<_> = patched["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(name_of)
            .collect();
        assert_eq!(names, ["proxy-init", "proxy", "migrate"]);
    }

    #[test]
    fn second_pass_is_a_no_op() {
        let (_, once) = run(&Config::builtin(), "default", &backend_pod(10000));
        let (out, twice) = run(&Config::builtin(), "default", &once);
        assert_eq!(out.decision.reason, Reason::AlreadyInjected);
        assert!(out.patch.0.is_empty());
        assert_eq!(once, twice);
    }

    #[test]
    fn empty_metadata_is_created_whole() {
        let pod = json!({"spec": {"containers": [{"name": "app", "image": "a"}]}});
        let (_, patched) = run(&Config::builtin(), "default", &pod);
        assert!(patched["metadata"]["annotations"]["sidecar-injector.io/status"].is_string());
    }

    #[test]
    fn user_annotations_and_labels_win_over_config_extras() {
        let c = Config::from_yaml(
            "containers: [{name: s, image: s}]\nannotations: {team.io/owner: mesh, extra.io/x: y}\nlabels: {mesh: 'on'}\n",
            "t",
        )
        .unwrap();
        let pod = json!({
            "metadata": {"name": "p", "annotations": {"team.io/owner": "app-team"}, "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "app", "image": "a"}]}
        });
        let (_, patched) = run(&c, "default", &pod);
        let a = &patched["metadata"]["annotations"];
        assert_eq!(a["team.io/owner"], "app-team");
        assert_eq!(a["extra.io/x"], "y");
        assert_eq!(
            patched["metadata"]["labels"],
            json!({"app": "a", "mesh": "on"})
        );
    }

    #[test]
    fn regular_sidecars_in_run_to_completion_pods_are_warned_about() {
        let mut pod = backend_pod(8080);
        pod["spec"]["restartPolicy"] = json!("Never");
        let (out, _) = run(&Config::builtin(), "default", &pod);
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert!(out.warnings[0].contains("native sidecar"));
    }

    #[test]
    fn malformed_spec_names_the_field() {
        let meta = ObjectMeta::default();
        let inj = Injector::new(Config::builtin());
        for (spec, field) in [
            (json!("nope"), "spec"),
            (json!({"containers": {}}), "spec.containers"),
            (json!({"containers": [1]}), "spec.containers"),
            (json!({"hostNetwork": "yes"}), "spec.hostNetwork"),
        ] {
            let err = inj
                .evaluate(PodRef {
                    namespace: "default",
                    metadata: &meta,
                    spec: &spec,
                })
                .unwrap_err();
            assert_eq!(err.field, field);
        }
    }

    #[test]
    fn skipped_pods_get_no_patch() {
        let mut pod = backend_pod(80);
        pod["spec"]["hostNetwork"] = json!(true);
        let (out, patched) = run(&Config::builtin(), "default", &pod);
        assert_eq!(out.decision.reason, Reason::HostNetwork);
        assert!(out.patch.0.is_empty());
        assert_eq!(patched, pod);
        let (out, _) = run(&Config::builtin(), "kube-system", &backend_pod(80));
        assert_eq!(out.decision.reason, Reason::IgnoredNamespace);
    }
}
