//! What a scenario file says, as types: the header (`kind: Scenario`) with
//! its injector, subject, webhooks, steps and expectations, and the
//! manifests after it. serde reads them; the defaults here are what a
//! scenario that leaves a field out gets. Reading a file into them is
//! `parse.rs`'s job, checking what serde cannot is `validate.rs`'s.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::admissionregistration::v1::{MatchCondition, RuleWithOperations};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sidecar_injector::Config;

pub const API_VERSION: &str = "injector-harness/v1";
pub const KIND: &str = "Scenario";

/// A parsed, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: PathBuf,
    pub header: Header,
    /// The injector config this scenario runs with: the base config with the
    /// header's `injector.config` merged over it.
    pub injector_config: Config,
    pub manifests: Vec<Manifest>,
}

impl Scenario {
    pub fn name(&self) -> &str {
        &self.header.name
    }

    /// The annotation that marks a pod the subject changed.
    pub fn injected_annotation(&self) -> &str {
        self.header
            .subject
            .injected_annotation
            .as_deref()
            .unwrap_or(&self.injector_config.policy.status_annotation)
    }

    /// Whether the webhook under test is the built-in injector.
    pub fn builtin_subject(&self) -> bool {
        self.header.subject.process.is_none() && self.header.subject.image.is_none()
    }

    /// Every object the scenario applies: its manifests, then those of its
    /// `apply` steps.
    pub fn objects(&self) -> impl Iterator<Item = &Value> {
        let stepped = self.header.steps.iter().flat_map(|s| match s {
            Step::Apply { manifests, .. } => manifests.as_slice(),
            _ => &[],
        });
        self.manifests.iter().map(|m| &m.object).chain(stepped)
    }

    /// The kinds the scenario's CustomResourceDefinitions define.
    pub fn definitions(&self) -> Vec<crate::cluster::api_resources::ApiKind> {
        self.objects()
            .filter(|o| {
                o["kind"] == "CustomResourceDefinition"
                    && o["apiVersion"] == "apiextensions.k8s.io/v1"
            })
            .flat_map(crate::cluster::api_resources::defined_by)
            .collect()
    }

    /// Whether `object` is cluster-scoped (a ClusterRole, a PriorityClass,
    /// a CustomResourceDefinition, a custom kind the scenario defines so).
    pub fn is_cluster_scoped(&self, object: &Value) -> bool {
        object["kind"] == "Namespace"
            || crate::cluster::api_resources::cluster_scoped(object, &self.definitions())
    }

    /// Every namespace the scenario touches: its Namespace objects, the
    /// namespaces of its other namespaced objects, steps and expectations.
    pub fn namespaces(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let definitions = self.definitions();
        let mut add = |o: &Value| {
            if o["kind"] != "Namespace"
                && crate::cluster::api_resources::cluster_scoped(o, &definitions)
            {
                return;
            }
            if o["kind"] == "Namespace" {
                if let Some(n) = o["metadata"]["name"].as_str() {
                    out.insert(n.to_string());
                }
            } else {
                out.insert(
                    o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("default")
                        .to_string(),
                );
            }
        };
        for m in &self.manifests {
            add(&m.object);
        }
        for s in &self.header.steps {
            if let Step::Apply { manifests, .. } = s {
                manifests.iter().for_each(&mut add);
            }
        }
        let mut expectations = vec![&self.header.expect];
        for s in &self.header.steps {
            match s {
                Step::LabelNamespace { name, .. } => {
                    out.insert(name.clone());
                }
                Step::RolloutRestart { namespace, .. } | Step::Scale { namespace, .. } => {
                    out.insert(namespace.clone());
                }
                Step::Patch { target, .. } | Step::Delete { target } => {
                    if target.kind == "Namespace" {
                        out.insert(target.name.clone());
                    } else if !target.cluster_scoped(&definitions) {
                        out.insert(target.namespace.clone());
                    }
                }
                Step::Expect(e) => expectations.push(e),
                Step::Apply { .. }
                | Step::StopInjector
                | Step::StartInjector
                | Step::SlowInjector { .. }
                | Step::RotateCert => {}
            }
        }
        for e in expectations {
            out.extend(e.pods.iter().map(|p| p.namespace.clone()));
            out.extend(e.rejected.iter().map(|p| p.namespace.clone()));
            out.extend(e.warned.iter().map(|p| p.namespace.clone()));
            out.extend(e.workloads.iter().map(|p| p.namespace.clone()));
        }
        // A cluster-scoped object's refusal is expected in no namespace.
        out.remove("");
        out
    }
}

/// One manifest document and where it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// 1-based line of the document's first line in the file.
    pub line: usize,
    pub object: Value,
}

impl Manifest {
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or("")
    }
    pub fn api_version(&self) -> &str {
        self.object["apiVersion"].as_str().unwrap_or("")
    }
    /// The name, or the `generateName` prefix of an object that has none.
    pub fn name(&self) -> &str {
        crate::object::written_name(&self.object)
    }
    /// The namespace, "default" when a namespaced object names none.
    pub fn namespace(&self) -> &str {
        self.object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The scenario needs the cluster to itself: it measures something the
    /// scenarios beside it would share (the node's cpu and memory, taken by
    /// their pods and, on kind, their injectors). It runs alone, as
    /// Kubernetes' own e2e tests marked `[Serial]` do.
    #[serde(default)]
    pub serial: bool,
    /// Images the node holds before the scenario starts, besides the
    /// harness's own (the probe and the injector): a pod naming one starts
    /// without a pull. On kind they are loaded from the local Docker engine
    /// (`kind load docker-image`), so Docker must have them; on every backend
    /// they stay on the node for the rest of the run. Any other image fails
    /// to pull (`ErrImagePull`, then `ImagePullBackOff`).
    #[serde(default)]
    pub preload_images: Vec<String>,
    #[serde(default)]
    pub injector: InjectorSpec,
    /// The webhook under test; absent: the built-in injector, configured
    /// by `injector.config`.
    #[serde(default)]
    pub subject: SubjectSpec,
    /// The MutatingWebhookConfiguration's webhooks, all pointing at the
    /// subject. Default: one, gated on `sidecar-injector: enabled`.
    #[serde(default = "default_webhooks")]
    pub webhooks: Vec<WebhookSpec>,
    /// Run after the manifests are applied, in order. Each step is a
    /// one-key map (`- rolloutRestart: {...}`), not a YAML tag.
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub expect: Expectations,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InjectorSpec {
    /// A JSON merge patch (RFC 7386) over `scenarios/base/injector.yaml`.
    #[serde(default)]
    pub config: Value,
    /// False: the webhook is registered but nothing answers at its address.
    #[serde(default = "yes")]
    pub available: bool,
}

impl Default for InjectorSpec {
    fn default() -> Self {
        InjectorSpec {
            config: Value::Null,
            available: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// Which webhook a scenario tests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectSpec {
    /// A program that serves admission over HTTPS, started by the harness
    /// (sim, and kubeconfig with the webhook on the host).
    #[serde(default)]
    pub process: Option<ProcessSpec>,
    /// An image that serves admission over HTTPS, deployed by the harness
    /// in the cluster (kind, and kubeconfig with the webhook in-cluster),
    /// and run as a container of the local Docker engine elsewhere. A
    /// scenario may give both: off the cluster the process runs.
    #[serde(default)]
    pub image: Option<ImageSpec>,
    /// The annotation that marks a pod the subject changed (what
    /// `injected:` in expectations and the table's injected count read);
    /// default: the built-in injector's status annotation.
    #[serde(default)]
    pub injected_annotation: Option<String>,
}

/// A program the harness runs as the webhook under test. In `command` and
/// `env`, `$(TLS_CERT)`, `$(TLS_KEY)` and `$(CA_CERT)` become the paths of
/// the serving pair and CA the harness made for it, `$(PORT)` the port on
/// 127.0.0.1 it must serve on, `$(SCENARIO_DIR)` the scenario file's
/// directory (also the program's working directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessSpec {
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How long it may take to serve TLS after it starts (default 30 s; a
    /// `cargo run` that may compile first needs minutes, and says so).
    #[serde(default = "default_start_timeout")]
    pub start_timeout_seconds: u32,
}

fn default_start_timeout() -> u32 {
    30
}

/// An image the harness deploys as the webhook under test: a Deployment
/// and a Service in a namespace of its own, the serving pair and CA in a
/// Secret mounted at `/etc/webhook/certs` (`$(TLS_CERT)`, `$(TLS_KEY)`,
/// `$(CA_CERT)` in `args`), the scenario's `files` in a ConfigMap mounted
/// at `/etc/webhook/files` (`$(FILES)`), and `$(PORT)` for `port`. The
/// image must be on the nodes: on kind the harness loads it from the local
/// Docker engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageSpec {
    pub name: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// The port it serves HTTPS on inside its pod.
    pub port: i32,
    /// Files beside the scenario (paths relative to its directory) the
    /// subject reads, by file name under `$(FILES)`.
    #[serde(default)]
    pub files: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookSpec {
    #[serde(default = "default_webhook_name")]
    pub name: String,
    #[serde(default = "default_rules")]
    pub rules: Vec<RuleWithOperations>,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub object_selector: Option<LabelSelector>,
    #[serde(default = "default_failure_policy")]
    pub failure_policy: String,
    #[serde(default = "default_reinvocation")]
    pub reinvocation_policy: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: i32,
    /// Path on the injector, `/mutate` or `/inject`.
    #[serde(default = "default_path")]
    pub path: String,
    /// The AdmissionReview versions the webhook accepts, in its order of
    /// preference; the apiserver sends the first it speaks (`v1`,
    /// `v1beta1`).
    #[serde(default = "default_review_versions")]
    pub admission_review_versions: Vec<String>,
    #[serde(default = "default_side_effects")]
    pub side_effects: String,
    /// `Equivalent` or `Exact`.
    #[serde(default = "default_match_policy")]
    pub match_policy: String,
    /// CEL conditions on the request, all of which must hold for the
    /// webhook to be called (`name` and `expression` each).
    #[serde(default)]
    pub match_conditions: Option<Vec<MatchCondition>>,
}

fn default_review_versions() -> Vec<String> {
    vec!["v1".into()]
}
fn default_side_effects() -> String {
    "None".into()
}
fn default_match_policy() -> String {
    "Equivalent".into()
}

pub const DEFAULT_WEBHOOK_NAME: &str = "sidecar-injector.harness.io";

fn default_webhook_name() -> String {
    DEFAULT_WEBHOOK_NAME.into()
}
fn default_failure_policy() -> String {
    "Fail".into()
}
fn default_reinvocation() -> String {
    "Never".into()
}
fn default_timeout() -> i32 {
    10
}
fn default_path() -> String {
    "/mutate".into()
}
fn default_rules() -> Vec<RuleWithOperations> {
    vec![RuleWithOperations {
        operations: Some(vec!["CREATE".into()]),
        api_groups: Some(vec!["".into()]),
        api_versions: Some(vec!["v1".into()]),
        resources: Some(vec!["pods".into()]),
        scope: Some("*".into()),
    }]
}
fn default_webhooks() -> Vec<WebhookSpec> {
    vec![WebhookSpec::default()]
}

impl Default for WebhookSpec {
    fn default() -> Self {
        WebhookSpec {
            name: default_webhook_name(),
            rules: default_rules(),
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "sidecar-injector".into(),
                    "enabled".into(),
                )])),
                match_expressions: None,
            }),
            object_selector: None,
            failure_policy: default_failure_policy(),
            reinvocation_policy: default_reinvocation(),
            timeout_seconds: default_timeout(),
            path: default_path(),
            admission_review_versions: default_review_versions(),
            side_effects: default_side_effects(),
            match_policy: default_match_policy(),
            match_conditions: None,
        }
    }
}

/// Something done to the cluster after the manifests are applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Step {
    /// Set (or, with a null value, remove) labels on a namespace.
    LabelNamespace {
        name: String,
        labels: BTreeMap<String, Option<String>>,
    },
    /// `kubectl rollout restart`: stamps the pod template so new pods roll.
    RolloutRestart {
        #[serde(default = "default_namespace")]
        namespace: String,
        #[serde(default = "default_deployment")]
        kind: String,
        name: String,
    },
    /// Apply more manifests (the documents are given inline). With
    /// `dryRun: true`, as `kubectl apply --dry-run=server`: admitted as an
    /// apply is (webhooks see `dryRun: true`), a refusal recorded, nothing
    /// stored.
    Apply {
        manifests: Vec<Value>,
        #[serde(default, rename = "dryRun", skip_serializing_if = "std::ops::Not::not")]
        dry_run: bool,
    },
    /// `kubectl scale`: set a workload's replicas.
    Scale {
        #[serde(default = "default_namespace")]
        namespace: String,
        #[serde(default = "default_deployment")]
        kind: String,
        name: String,
        replicas: u32,
    },
    /// `kubectl patch --type merge`: a JSON merge patch (RFC 7386) on one
    /// object, which the apiserver admits as an UPDATE (webhooks whose
    /// rules name UPDATE are called, with the stored object as oldObject).
    Patch {
        #[serde(flatten)]
        target: Target,
        patch: Value,
    },
    /// `kubectl delete`: the object goes, and what it owns after it, as
    /// the garbage collector takes it (background propagation); webhooks
    /// whose rules name DELETE are called.
    Delete {
        #[serde(flatten)]
        target: Target,
    },
    /// Stop the webhook under test: its connections close and nothing
    /// listens at its address, so calls are refused (`connect: connection
    /// refused`). `stopInjector` is the older name.
    #[serde(rename = "stopWebhook", alias = "stopInjector")]
    StopInjector,
    /// Start it again at the same address, with the same config.
    #[serde(rename = "startWebhook", alias = "startInjector")]
    StartInjector,
    /// Make every admission request wait `delaySeconds` before the webhook
    /// answers (0 restores). Longer than a webhook's timeoutSeconds, the
    /// apiserver gives up on the call.
    #[serde(rename = "slowWebhook", alias = "slowInjector")]
    SlowInjector {
        #[serde(rename = "delaySeconds")]
        delay_seconds: u32,
    },
    /// Give the running webhook a new serving key and certificate from the
    /// same CA (the caBundle stays valid); done once new handshakes see it.
    RotateCert,
    /// Check expectations at this point (after the previous step settled);
    /// the READY lines and refusals seen here go into the snapshot too.
    Expect(Expectations),
}

impl Step {
    /// The step's name as written in a scenario.
    pub fn name(&self) -> &'static str {
        match self {
            Step::LabelNamespace { .. } => "labelNamespace",
            Step::RolloutRestart { .. } => "rolloutRestart",
            Step::Apply { .. } => "apply",
            Step::Scale { .. } => "scale",
            Step::Patch { .. } => "patch",
            Step::Delete { .. } => "delete",
            Step::StopInjector => "stopWebhook",
            Step::StartInjector => "startWebhook",
            Step::SlowInjector { .. } => "slowWebhook",
            Step::RotateCert => "rotateCert",
            Step::Expect(_) => "expect",
        }
    }

    /// The names a scenario may write the step under: its name, then the
    /// older one it replaced.
    pub fn written_names(&self) -> Vec<&'static str> {
        let older = match self {
            Step::StopInjector => Some("stopInjector"),
            Step::StartInjector => Some("startInjector"),
            Step::SlowInjector { .. } => Some("slowInjector"),
            _ => None,
        };
        std::iter::once(self.name()).chain(older).collect()
    }
}

fn default_namespace() -> String {
    "default".into()
}

/// The object a step acts on. `apiVersion` may be left out for a built-in
/// kind (`Deployment` is `apps/v1`); a custom kind needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    pub api_version: Option<String>,
    pub kind: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub name: String,
}

impl Target {
    /// `apiVersion` as given, else the built-in kind's.
    pub fn api_version(&self) -> Option<String> {
        self.api_version.clone().or_else(|| {
            crate::cluster::api_resources::built_in_kind(&self.kind).map(|k| k.api_version())
        })
    }

    /// The target as a manifest stub (`apiVersion`, `kind`, `metadata`).
    pub fn stub(&self) -> Value {
        serde_json::json!({
            "apiVersion": self.api_version().unwrap_or_default(),
            "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
        })
    }

    pub fn cluster_scoped(&self, definitions: &[crate::cluster::api_resources::ApiKind]) -> bool {
        self.kind == "Namespace"
            || crate::cluster::api_resources::cluster_scoped(&self.stub(), definitions)
    }
}
fn default_deployment() -> String {
    "Deployment".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expectations {
    #[serde(default)]
    pub pods: Vec<PodExpectation>,
    #[serde(default)]
    pub rejected: Vec<RejectionExpectation>,
    /// Warnings the scenario's requests must get back (others may come:
    /// a warning refuses nothing).
    #[serde(default)]
    pub warned: Vec<WarningExpectation>,
    #[serde(default)]
    pub workloads: Vec<WorkloadExpectation>,
}

/// What the pods matching a selector must look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodExpectation {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// matchLabels on the pods; empty matches every pod in the namespace.
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    /// How many pods match. Default: at least one.
    pub count: Option<usize>,
    /// Whether they carry the injector's status annotation.
    pub injected: Option<bool>,
    /// READY as kubectl prints it, e.g. "2/2".
    pub ready: Option<String>,
    /// STATUS as kubectl prints it, e.g. "Running", "CrashLoopBackOff".
    pub status: Option<String>,
    /// spec.containers names, in order.
    pub containers: Option<Vec<String>>,
    /// spec.initContainers names, in order.
    pub init_containers: Option<Vec<String>>,
    /// Per container: its state (Running, Waiting reason such as
    /// CrashLoopBackOff, Terminated reason such as Completed), optionally
    /// with a substring of the message that explains it.
    #[serde(default)]
    pub states: BTreeMap<String, StateExpectation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StateExpectation {
    State(String),
    Detailed {
        state: String,
        #[serde(default)]
        message: Option<String>,
    },
}

impl StateExpectation {
    pub fn state(&self) -> &str {
        match self {
            StateExpectation::State(s) => s,
            StateExpectation::Detailed { state, .. } => state,
        }
    }
    pub fn message(&self) -> Option<&str> {
        match self {
            StateExpectation::State(_) => None,
            StateExpectation::Detailed { message, .. } => message.as_deref(),
        }
    }
}

/// A warning the apiserver returned to the scenario's request for an
/// object, with a substring of its text; `until` as for a refusal.
pub type WarningExpectation = RejectionExpectation;

/// An object the apiserver refused, or a controller could not create pods
/// for (the FailedCreate event), with a substring of the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejectionExpectation {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub message: String,
    /// The newest Kubernetes minor that refuses the object (`v1.35`): a
    /// newer cluster creates it, and then the refusal is neither expected
    /// nor allowed. For rules a release relaxed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

impl RejectionExpectation {
    /// Whether the refusal is expected on a cluster of `minor` (unknown:
    /// yes).
    pub fn applies_to(&self, minor: Option<crate::version::Minor>) -> bool {
        let until = self
            .until
            .as_deref()
            .and_then(|u| crate::version::Minor::parse(u).ok());
        match (until, minor) {
            (Some(until), Some(minor)) => minor <= until,
            _ => true,
        }
    }
}

/// A workload's own pod template, after everything ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadExpectation {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub kind: String,
    pub name: String,
    /// The template's container names.
    pub containers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::super::testing::parse_text;

    #[test]
    fn state_expectations_accept_both_forms() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nexpect:\n  pods:\n  - states:\n      a: Running\n      b: {state: CrashLoopBackOff, message: in use}\n";
        let s = parse_text("x", text).unwrap();
        let st = &s.header.expect.pods[0].states;
        assert_eq!(st["a"].state(), "Running");
        assert_eq!(st["b"].message(), Some("in use"));
    }
}
