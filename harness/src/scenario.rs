//! Scenario files: one YAML stream per scenario. The first document is the
//! header (`kind: Scenario`): what the injector and its webhook registration
//! look like, steps to run after applying, and what the user expects. Every
//! following document is a Kubernetes manifest to apply, in order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::admissionregistration::v1::RuleWithOperations;
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

    /// Every namespace the scenario touches: its Namespace objects, the
    /// namespaces of its other objects, steps and expectations.
    pub fn namespaces(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut add = |o: &Value| {
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
            if let Step::Apply { manifests } = s {
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
            out.extend(e.workloads.iter().map(|p| p.namespace.clone()));
        }
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
    /// Apply more manifests (the documents are given inline).
    Apply { manifests: Vec<Value> },
    /// `kubectl scale`: set a workload's replicas.
    Scale {
        #[serde(default = "default_namespace")]
        namespace: String,
        #[serde(default = "default_deployment")]
        kind: String,
        name: String,
        replicas: u32,
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

/// A scenario file that cannot be used, with file, line and field.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {field}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ScenarioError {
    pub file: String,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl ScenarioError {
    fn new(
        file: &Path,
        line: Option<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ScenarioError {
            file: file.display().to_string(),
            line,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The text of each `---`-separated document and its first line (1-based).
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_separator = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_separator {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    // Comment-only or blank documents are not manifests.
    docs.into_iter()
        .filter(|(_, d)| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// Reads the base injector config the scenarios override.
pub fn load_base_config(path: &Path) -> Result<Value, ScenarioError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::new(path, None, "(file)", format!("cannot read: {e}")))?;
    // Validate as a config first, so errors point into the base file.
    Config::from_yaml(&text, &path.display().to_string())
        .map_err(|e| ScenarioError::new(path, None, "(config)", e.to_string()))?;
    serde_yaml::from_str(&text)
        .map_err(|e| ScenarioError::new(path, None, "(config)", e.to_string()))
}

/// Parses a scenario file. `base_config` is the base injector config as JSON.
pub fn load(path: &Path, base_config: &Value) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::new(path, None, "(file)", format!("cannot read: {e}")))?;
    parse(path, &text, base_config)
}

pub fn parse(path: &Path, text: &str, base_config: &Value) -> Result<Scenario, ScenarioError> {
    let docs = split_documents(text);
    let Some((header_line, header_text)) = docs.first() else {
        return Err(ScenarioError::new(
            path,
            Some(1),
            "(document)",
            "empty scenario: a header document is required",
        ));
    };
    let header_line = *header_line;
    let de = serde_yaml::Deserializer::from_str(header_text);
    let header: Header = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.location().map(|l| header_line + l.line() - 1);
        let message = inner.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        ScenarioError::new(
            path,
            line.or(Some(header_line)),
            if field == "." {
                "(header)".into()
            } else {
                field
            },
            message,
        )
    })?;
    let at = |field: &str| {
        find_line(header_text, field)
            .map(|l| header_line + l - 1)
            .or(Some(header_line))
    };
    if header.api_version != API_VERSION {
        return Err(ScenarioError::new(
            path,
            at("apiVersion"),
            "apiVersion",
            format!("must be {API_VERSION}"),
        ));
    }
    if header.kind != KIND {
        return Err(ScenarioError::new(
            path,
            at("kind"),
            "kind",
            format!("must be {KIND} (the first document is the scenario header)"),
        ));
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if header.name != stem {
        return Err(ScenarioError::new(
            path,
            at("name"),
            "name",
            format!("{:?} must match the file name {stem:?}", header.name),
        ));
    }
    let all_rejected = header
        .expect
        .rejected
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("expect.rejected[{i}]"), r))
        .chain(header.steps.iter().enumerate().flat_map(|(s, step)| {
            let rejected = match step {
                Step::Expect(e) => e.rejected.as_slice(),
                _ => &[],
            };
            rejected
                .iter()
                .enumerate()
                .map(move |(i, r)| (format!("steps[{s}].expect.rejected[{i}]"), r))
        }));
    for (field, r) in all_rejected {
        if let Some(until) = &r.until {
            // Block or flow style: the line that holds this value.
            let line = header_text
                .lines()
                .position(|l| l.contains("until:") && l.contains(until.as_str()))
                .map(|i| header_line + i)
                .or(Some(header_line));
            crate::version::Minor::parse(until)
                .map_err(|m| ScenarioError::new(path, line, format!("{field}.until"), m))?;
        }
    }
    for (i, w) in header.webhooks.iter().enumerate() {
        let field = |f: &str| format!("webhooks[{i}].{f}");
        if !matches!(w.failure_policy.as_str(), "Fail" | "Ignore") {
            return Err(ScenarioError::new(
                path,
                at("failurePolicy"),
                field("failurePolicy"),
                "must be Fail or Ignore",
            ));
        }
        if !matches!(w.reinvocation_policy.as_str(), "Never" | "IfNeeded") {
            return Err(ScenarioError::new(
                path,
                at("reinvocationPolicy"),
                field("reinvocationPolicy"),
                "must be Never or IfNeeded",
            ));
        }
        if !(1..=30).contains(&w.timeout_seconds) {
            return Err(ScenarioError::new(
                path,
                at("timeoutSeconds"),
                field("timeoutSeconds"),
                "must be between 1 and 30",
            ));
        }
        for (name, sel) in [
            ("namespaceSelector", &w.namespace_selector),
            ("objectSelector", &w.object_selector),
        ] {
            if let Some(sel) = sel {
                sidecar_injector::selector::validate(sel)
                    .map_err(|m| ScenarioError::new(path, at(name), field(name), m))?;
            }
        }
    }
    if header
        .webhooks
        .iter()
        .map(|w| &w.name)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        != header.webhooks.len()
    {
        return Err(ScenarioError::new(
            path,
            at("webhooks"),
            "webhooks",
            "webhook names must be unique",
        ));
    }
    // Fault steps must make sense in order: stop a running injector, start
    // a stopped one.
    let mut serving = header.injector.available;
    for (i, step) in header.steps.iter().enumerate() {
        let field = format!("steps[{i}].{}", step.name());
        let problem = match step {
            Step::StopInjector if !serving => Some("the webhook is not running here".to_string()),
            Step::StartInjector if serving => Some("the webhook is already running here".into()),
            Step::SlowInjector { delay_seconds } if *delay_seconds > 60 => {
                Some(format!("delaySeconds {delay_seconds} is over 60"))
            }
            Step::Scale { kind, .. }
                if !matches!(kind.as_str(), "Deployment" | "ReplicaSet" | "StatefulSet") =>
            {
                Some(format!(
                    "cannot scale a {kind}: Deployment, ReplicaSet or StatefulSet"
                ))
            }
            _ => None,
        };
        if let Some(message) = problem {
            // The n-th step of this name is the n-th line naming it.
            let nth = header.steps[..i]
                .iter()
                .filter(|s| s.name() == step.name())
                .count();
            let line = find_step_line(header_text, &step.written_names(), nth)
                .map(|l| header_line + l - 1)
                .or(Some(header_line));
            return Err(ScenarioError::new(path, line, field, message));
        }
        match step {
            Step::StopInjector => serving = false,
            Step::StartInjector => serving = true,
            _ => {}
        }
    }
    let own_subject = header.subject.process.is_some() || header.subject.image.is_some();
    if own_subject && !header.injector.config.is_null() {
        return Err(ScenarioError::new(
            path,
            at("injector"),
            "injector.config",
            "configures the built-in injector, but this scenario's subject is its own webhook (subject)",
        ));
    }
    if let Some(image) = &header.subject.image {
        if image.name.is_empty() || !(1..=65535).contains(&image.port) {
            return Err(ScenarioError::new(
                path,
                at("subject"),
                "subject.image",
                "needs a name and a port from 1 to 65535",
            ));
        }
    }
    if let Some(process) = &header.subject.process {
        if process.command.is_empty() {
            return Err(ScenarioError::new(
                path,
                at("subject"),
                "subject.process.command",
                "names no program",
            ));
        }
    }
    // Where a field of the header is, by its full path, so an error in the
    // third pod expectation points at that item, not at the first `ready:`.
    let positions = sidecar_injector::yaml_position::Positions::of(header_text);
    let at_path = |path: &str| {
        positions
            .find(path)
            .map(|(l, _)| header_line + l - 1)
            .or(Some(header_line))
    };
    for (i, p) in header.expect.pods.iter().enumerate() {
        if let Some(r) = &p.ready {
            let ok = r
                .split_once('/')
                .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
            if !ok {
                let field = format!("expect.pods[{i}].ready");
                return Err(ScenarioError::new(
                    path,
                    at_path(&field),
                    field,
                    format!("{r:?} is not n/m"),
                ));
            }
        }
    }

    let mut config = base_config.clone();
    if !header.injector.config.is_null() {
        json_patch::merge(&mut config, &header.injector.config);
    }
    let config_yaml = serde_yaml::to_string(&config).unwrap_or_default();
    let injector_config = Config::from_yaml(&config_yaml, "injector.config").map_err(|e| {
        ScenarioError::new(
            path,
            at("injector"),
            "injector.config",
            format!("the merged config is invalid: {e}"),
        )
    })?;

    let mut manifests = Vec::new();
    for (line, doc) in &docs[1..] {
        let object: Value = serde_yaml::from_str(doc).map_err(|e| {
            let l = e.location().map(|l| line + l.line() - 1).unwrap_or(*line);
            let message = e.to_string();
            ScenarioError::new(
                path,
                Some(l),
                "(manifest)",
                message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_string(),
            )
        })?;
        let at = |field: &str| find_line(doc, field).map(|l| line + l - 1).or(Some(*line));
        let kind = object["kind"].as_str().unwrap_or("");
        if kind.is_empty() {
            return Err(ScenarioError::new(
                path,
                Some(*line),
                "kind",
                "every manifest needs a kind",
            ));
        }
        if object["apiVersion"].as_str().unwrap_or("").is_empty() {
            return Err(ScenarioError::new(
                path,
                Some(*line),
                "apiVersion",
                format!("the {kind} needs an apiVersion"),
            ));
        }
        if crate::cluster::kind_info(kind).is_none() {
            return Err(ScenarioError::new(
                path,
                at("kind"),
                "kind",
                format!(
                    "{kind} is not supported; the harness applies {}",
                    crate::cluster::KINDS
                        .iter()
                        .map(|k| k.kind)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if let Err(m) = check_manifest_name(kind, &object) {
            return Err(ScenarioError::new(
                path,
                ["name", "generateName", "metadata"]
                    .iter()
                    .find_map(|f| find_line(doc, f))
                    .map(|l| line + l - 1)
                    .or(Some(*line)),
                "metadata.name",
                format!("{kind}: {m}"),
            ));
        }
        manifests.push(Manifest {
            line: *line,
            object,
        });
    }
    Ok(Scenario {
        path: path.to_path_buf(),
        header,
        injector_config,
        manifests,
    })
}

/// What the harness itself needs of a manifest's name: one it can send. A
/// name or a `generateName` (created as `kubectl create` does); a
/// Namespace needs its name, since other documents refer to it; a name must
/// be usable as a URL path segment, because it is applied by name. Whether
/// the name is valid for its kind is the cluster's call: the sim checks it
/// as the apiserver does, so a scenario can show the refusal.
fn check_manifest_name(kind: &str, object: &Value) -> Result<(), String> {
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let generate_name = object["metadata"]["generateName"].as_str().unwrap_or("");
    if name.is_empty() {
        if kind == "Namespace" {
            return Err("a Namespace needs a name (other documents refer to it by name)".into());
        }
        if generate_name.is_empty() {
            return Err("name or generateName is required".into());
        }
        return Ok(());
    }
    if name == "." || name == ".." || name.contains('/') || name.contains('%') {
        return Err(format!(
            "{name:?} cannot be sent to a cluster: a name may not be '.' or '..' or contain '/' or '%'"
        ));
    }
    Ok(())
}

/// The first line (1-based, within `doc`) whose key is `field`.
fn find_line(doc: &str, field: &str) -> Option<usize> {
    let key = format!("{field}:");
    doc.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(&key)
        })
        .map(|i| i + 1)
}

/// The line (1-based, within `doc`) of the `nth` (0-based) step item named
/// `name`, written `- name` or `- name: ...`.
fn find_step_line(doc: &str, names: &[&str], nth: usize) -> Option<usize> {
    doc.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            t.strip_prefix("- ").is_some_and(|t| {
                let t = t.trim_end();
                names
                    .iter()
                    .any(|name| t == *name || t.starts_with(&format!("{name}:")))
            })
        })
        .nth(nth)
        .map(|(i, _)| i + 1)
}

/// Every scenario file in a directory (its `*.yaml`), sorted by name.
pub fn discover(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// The skeleton `injector-harness new NAME` writes.
pub fn skeleton(name: &str) -> String {
    format!(
        r#"apiVersion: {API_VERSION}
kind: {KIND}
name: {name}
description: >
  What this scenario shows, in a sentence or two.
# injector:
#   config:               # JSON merge patch over scenarios/base/injector.yaml
#     onPortConflict: keep
#   available: true       # false: nothing answers at the webhook's address
# webhooks:               # default: one webhook gated on sidecar-injector=enabled
# - namespaceSelector: {{matchLabels: {{sidecar-injector: enabled}}}}
#   objectSelector: {{matchLabels: {{inject: "true"}}}}
#   failurePolicy: Fail
# steps:
# - rolloutRestart: {{namespace: {name}, name: app}}
expect:
  pods:
  - namespace: {name}
    selector: {{app: app}}
    count: 1
    injected: true
    ready: 2/2
    status: Running
    containers: [app, envoy]
---
apiVersion: v1
kind: Namespace
metadata:
  name: {name}
  labels:
    sidecar-injector: enabled
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
    spec:
      containers:
      - name: app
        image: {image}
        args: ["--name", "app", "--listen", "8080"]
        ports:
        - containerPort: 8080
"#,
        image = crate::probe::PROBE_IMAGE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        serde_yaml::from_str(sidecar_injector::config::DEFAULT_CONFIG_YAML).unwrap()
    }

    fn parse_text(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
        parse(Path::new(&format!("scenarios/{name}.yaml")), text, &base())
    }

    #[test]
    fn skeleton_parses() {
        let s = parse_text("demo", &skeleton("demo")).unwrap();
        assert_eq!(s.name(), "demo");
        assert_eq!(s.manifests.len(), 2);
        assert_eq!(s.manifests[1].kind(), "Deployment");
        // The Deployment document starts on the line after its separator.
        let text = skeleton("demo");
        let deployment_line = text.lines().position(|l| l == "kind: Deployment").unwrap(); // 0-based
        assert_eq!(
            s.manifests[1].line, deployment_line,
            "apiVersion is one line above kind"
        );
        assert_eq!(s.header.webhooks, vec![WebhookSpec::default()]);
        assert_eq!(s.header.expect.pods[0].ready.as_deref(), Some("2/2"));
    }

    #[test]
    fn header_type_error_names_line_and_field() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nexpect:\n  pods:\n  - count: many\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert_eq!(e.field, "expect.pods[0].count", "{e}");
    }

    #[test]
    fn an_error_in_the_third_pod_expectation_points_at_its_own_line() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nexpect:\n  pods:\n  - selector: {app: a}\n    ready: 1/1\n  - selector: {app: b}\n    ready: 2/2\n  - selector: {app: c}\n    count: 1\n    ready: two of two\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.field, "expect.pods[2].ready", "{e}");
        assert_eq!(e.line, Some(12), "{e}");
    }

    #[test]
    fn a_refusal_can_end_at_a_minor() {
        use crate::version::Minor;
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nexpect:\n  rejected:\n  - {kind: Service, name: s, message: m, until: v1.35}\n";
        let s = parse_text("x", text).unwrap();
        let r = &s.header.expect.rejected[0];
        assert!(r.applies_to(Some(Minor::new(34))));
        assert!(r.applies_to(Some(Minor::new(35))));
        assert!(!r.applies_to(Some(Minor::new(36))));
        assert!(
            r.applies_to(None),
            "a cluster of unknown version expects it"
        );
        let bad = text.replace("v1.35", "later");
        let e = parse_text("x", &bad).unwrap_err();
        assert_eq!(e.field, "expect.rejected[0].until", "{e}");
        assert_eq!(e.line, Some(6), "{e}");
        assert!(
            e.to_string()
                .contains("'later' is not a Kubernetes version"),
            "{e}"
        );
    }

    #[test]
    fn unknown_header_field_is_refused() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nwebhook: {}\n";
        let e = parse_text("x", text).unwrap_err();
        assert!(e.to_string().contains("webhook"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
    }

    #[test]
    fn name_must_match_the_file() {
        let e = parse_text(
            "y",
            "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "name");
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn injector_overrides_merge_and_are_validated() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\ninjector:\n  config:\n    onPortConflict: keep\n";
        let s = parse_text("x", text).unwrap();
        assert_eq!(
            s.injector_config.on_port_conflict,
            sidecar_injector::config::PortConflictPolicy::Keep
        );
        assert_eq!(
            s.injector_config.containers[0].name, "envoy",
            "the rest of the base stays"
        );
        let bad = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\ninjector:\n  config:\n    onPortConflict: sometimes\n";
        let e = parse_text("x", bad).unwrap_err();
        assert_eq!(e.field, "injector.config");
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn manifest_errors_name_the_line() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a/b\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(8), "metadata.name"),
            "{e}"
        );
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  labels: {a: b}\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.field, "metadata.name", "{e}");
        assert!(
            e.message.contains("name or generateName is required"),
            "{e}"
        );
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: v1\nkind: Ingress\nmetadata: {name: a}\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\nkind: Pod\nmetadata: {name: [a\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.field, "(manifest)", "{e}");
        assert!(e.line.unwrap() >= 5, "{e}");
    }

    #[test]
    fn generate_name_stands_in_for_a_name_except_on_namespaces() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n";
        let s = parse_text("x", text).unwrap();
        assert_eq!(s.manifests[0].name(), "migrate-");
        // A name the apiserver refuses is the cluster's to refuse (and the
        // scenario's to expect), not the parser's.
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\n";
        assert_eq!(
            parse_text("x", text).unwrap().manifests[0].name(),
            "Bad_Name"
        );
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  generateName: ns-\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(8), "metadata.name"),
            "{e}"
        );
    }

    #[test]
    fn webhook_policy_values_are_checked() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nwebhooks:\n- failurePolicy: Sometimes\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.field, "webhooks[0].failurePolicy");
        assert_eq!(e.line, Some(5));
    }

    #[test]
    fn fault_steps_parse_and_are_checked_in_order() {
        let head = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n";
        let text = format!(
            "{head}steps:\n- stopWebhook\n- scale: {{namespace: d, name: web, replicas: 3}}\n- expect:\n    pods: [{{namespace: d, count: 1}}]\n- startInjector\n- slowWebhook: {{delaySeconds: 3}}\n- rotateCert\n"
        );
        let s = parse_text("x", &text).unwrap();
        assert_eq!(
            s.header.steps.iter().map(Step::name).collect::<Vec<_>>(),
            // The older names (startInjector here) read as the new ones.
            [
                "stopWebhook",
                "scale",
                "expect",
                "startWebhook",
                "slowWebhook",
                "rotateCert"
            ]
        );
        assert!(matches!(
            &s.header.steps[1],
            Step::Scale { kind, replicas: 3, .. } if kind == "Deployment"
        ));
        assert!(s.namespaces().contains("d"), "checkpoint namespaces count");

        let e = parse_text("x", &format!("{head}steps:\n- startInjector\n")).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(5), "steps[0].startWebhook"),
            "{e}"
        );
        assert!(e.message.contains("already running"), "{e}");
        let e = parse_text(
            "x",
            &format!("{head}injector: {{available: false}}\nsteps:\n- stopInjector\n"),
        )
        .unwrap_err();
        assert!(e.message.contains("not running"), "{e}");
        let e = parse_text(
            "x",
            &format!("{head}steps:\n- scale: {{name: j, kind: Job, replicas: 1}}\n"),
        )
        .unwrap_err();
        assert_eq!(e.field, "steps[0].scale", "{e}");
        let e = parse_text(
            "x",
            &format!("{head}steps:\n- stopInjector: {{now: true}}\n"),
        )
        .unwrap_err();
        assert!(e.field.starts_with("steps"), "{e}");
    }

    #[test]
    fn state_expectations_accept_both_forms() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nexpect:\n  pods:\n  - states:\n      a: Running\n      b: {state: CrashLoopBackOff, message: in use}\n";
        let s = parse_text("x", text).unwrap();
        let st = &s.header.expect.pods[0].states;
        assert_eq!(st["a"].state(), "Running");
        assert_eq!(st["b"].message(), Some("in use"));
    }
}
