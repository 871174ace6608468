//! The injection config: what gets injected and when.
//!
//! The file is shaped like the `sidecarconfig.yaml` a ConfigMap mounts in the
//! classic nginx/envoy injector tutorials (top-level `containers` and
//! `volumes`), extended with the injection policy, the annotation keys and the
//! port rules. Container, volume and selector entries are the real
//! `k8s-openapi` types, so anything valid in a pod spec is valid here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, LocalObjectReference, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::selector;

/// The built-in config, used when no `--config` is given: an envoy-like proxy
/// listening on 10000 (carried into its inline bootstrap by `$(PROXY_PORT)`),
/// routing to a cluster from the `envoy-config` ConfigMap.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default-config.yaml");

/// Default annotation that turns injection on or off for one pod.
pub const DEFAULT_INJECT_ANNOTATION: &str = "sidecar-injector.io/inject";
/// Default annotation in which the injector records what it injected.
pub const DEFAULT_STATUS_ANNOTATION: &str = "sidecar-injector.io/status";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// When to inject.
    #[serde(default)]
    pub policy: Policy,
    /// What to do when a sidecar port is already declared by the pod.
    #[serde(default)]
    pub on_port_conflict: PortConflictPolicy,
    /// What to do when the pod already has a container or volume named like
    /// one the config injects.
    #[serde(default)]
    pub on_name_conflict: NameConflictPolicy,
    /// Where each sidecar reads its ports from, so a remap can rewrite them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_rules: Vec<PortRule>,
    /// Sidecar containers, appended to `spec.containers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    /// Init containers (a `restartPolicy: Always` entry is a native sidecar),
    /// placed before the pod's own init containers, in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// Pod volumes the sidecars mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Extra annotations set on injected pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Extra labels set on injected pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// The default when nothing else decides: inject (true) or not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Namespaces never injected, whatever the pod says.
    #[serde(default = "default_ignored_namespaces")]
    pub ignored_namespaces: Vec<String>,
    /// Pods matching any of these are not injected (unless annotated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub never_inject_selector: Vec<LabelSelector>,
    /// Pods matching any of these are injected (unless annotated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub always_inject_selector: Vec<LabelSelector>,
    /// Pod annotation whose true/false value wins over the selectors.
    #[serde(default = "default_inject_annotation")]
    pub inject_annotation: String,
    /// Pod annotation recording what was injected.
    #[serde(default = "default_status_annotation")]
    pub status_annotation: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enabled: true,
            ignored_namespaces: default_ignored_namespaces(),
            never_inject_selector: Vec::new(),
            always_inject_selector: Vec::new(),
            inject_annotation: default_inject_annotation(),
            status_annotation: default_status_annotation(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_ignored_namespaces() -> Vec<String> {
    ["kube-system", "kube-public", "kube-node-lease"]
        .map(String::from)
        .to_vec()
}
fn default_inject_annotation() -> String {
    DEFAULT_INJECT_ANNOTATION.to_string()
}
fn default_status_annotation() -> String {
    DEFAULT_STATUS_ANNOTATION.to_string()
}

/// What to do when a sidecar port equals a port the pod already declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PortConflictPolicy {
    /// Move the sidecar to the next free port and rewrite where it reads it.
    #[default]
    Remap,
    /// Inject as configured; the pod will crash-loop on `address in use`.
    Keep,
    /// Deny the pod with a message naming the clash.
    Reject,
}

impl PortConflictPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PortConflictPolicy::Remap => "remap",
            PortConflictPolicy::Keep => "keep",
            PortConflictPolicy::Reject => "reject",
        }
    }
}

/// What to do when a pod already has a container (or init container) or a
/// volume named like one the config injects. Adding it again would make the
/// apiserver refuse the pod; injecting the rest would leave a sidecar that
/// is not ours, or ours mounting the pod's volume. Either way the pod is not
/// injected, and nothing is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NameConflictPolicy {
    /// Admit the pod untouched, with a warning (reason `name_conflict`).
    #[default]
    Skip,
    /// Deny the pod with a message naming the clash.
    Reject,
}

impl NameConflictPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            NameConflictPolicy::Skip => "skip",
            NameConflictPolicy::Reject => "reject",
        }
    }
}

/// Ties a sidecar port to the environment variable the sidecar reads it from
/// (typically expanded as `$(VAR)` in its args). On a remap the variable is
/// rewritten along with the containerPort and any probe on that port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortRule {
    pub container: String,
    pub port: i32,
    pub env: String,
}

/// An error in a config file. Every variant names the file; parse errors name
/// the line and field, validation errors the field path. An I/O cause is part
/// of the message, not `source()`, so a chain printer shows it once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: cannot read config: {cause}")]
    Read {
        origin: String,
        cause: std::io::Error,
    },
    #[error("{origin}{}: {path}: {message}", location(*line, *column))]
    Parse {
        origin: String,
        path: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("{origin}: invalid config:\n{}", problems.iter().map(|p| format!("  {origin}{}: {p}", location(p.line, p.column))).collect::<Vec<_>>().join("\n"))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// One validation problem: the field path, where that field (or, when it
/// is missing, its nearest ancestor) starts, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::builtin()
    }
}

impl Config {
    /// The embedded default config.
    pub fn builtin() -> Config {
        // The embedded file is validated by a unit test; failing here would be
        // a build defect, not an input error.
        Config::from_yaml(DEFAULT_CONFIG_YAML, "<built-in config>")
            .expect("the built-in config is valid")
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            origin: origin.clone(),
            cause,
        })?;
        Config::from_yaml(&text, &origin)
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let de = serde_yaml::Deserializer::from_str(text);
        let config: Config = match serde_path_to_error::deserialize(de) {
            Ok(c) => c,
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let loc = inner.location();
                let path = if path.is_empty() || path == "." {
                    "(document)".to_string()
                } else {
                    path
                };
                // serde_yaml already prefixes a nested error with its path;
                // the error shows the path once, from its own field.
                let message = strip_location(&inner.to_string());
                let message = message
                    .strip_prefix(&format!("{path}: "))
                    .map(str::to_string)
                    .unwrap_or(message);
                return Err(ConfigError::Parse {
                    origin: origin.to_string(),
                    path,
                    line: loc.as_ref().map(|l| l.line()),
                    column: loc.as_ref().map(|l| l.column()),
                    message,
                });
            }
        };
        let mut problems = Vec::new();
        // The Kubernetes types ignore fields they do not know, so a typo such
        // as `imagePullPolcy` would vanish silently. Compare the raw document
        // with what the typed config keeps to name every dropped field.
        if let Ok(raw) = serde_yaml::from_str::<Value>(text) {
            let kept = serde_json::to_value(&config).unwrap_or(Value::Null);
            dropped_fields(&raw, &kept, "", true, &mut problems);
        }
        config.validate_into(&mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            let positions = crate::yaml_position::Positions::of(text);
            for p in &mut problems {
                if let Some((line, column)) = positions.find(&p.path) {
                    (p.line, p.column) = (Some(line), Some(column));
                }
            }
            Err(ConfigError::Invalid {
                origin: origin.to_string(),
                problems,
            })
        }
    }

    /// Renders the config as YAML, as it would sit in a ConfigMap.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }

    fn validate_into(&self, problems: &mut Vec<Problem>) {
        let mut push = |path: String, message: String| {
            problems.push(Problem {
                path,
                message,
                line: None,
                column: None,
            })
        };

        let mut names = BTreeSet::new();
        let all = self
            .init_containers
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("initContainers[{i}]"), c))
            .chain(
                self.containers
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("containers[{i}]"), c)),
            );
        for (path, c) in all {
            if let Err(m) = check_dns1123_label(&c.name) {
                push(format!("{path}.name"), m);
            }
            if !names.insert(c.name.clone()) {
                push(
                    format!("{path}.name"),
                    format!("duplicate container name {:?}", c.name),
                );
            }
            if c.image.as_deref().unwrap_or("").trim().is_empty() {
                push(format!("{path}.image"), "an image is required".into());
            }
            let mut seen_ports = BTreeSet::new();
            for (j, p) in c.ports.iter().flatten().enumerate() {
                if !(1..=65535).contains(&p.container_port) {
                    push(
                        format!("{path}.ports[{j}].containerPort"),
                        format!("{} is not a port number (1-65535)", p.container_port),
                    );
                }
                let proto = p.protocol.as_deref().unwrap_or("TCP");
                if !matches!(proto, "TCP" | "UDP" | "SCTP") {
                    push(
                        format!("{path}.ports[{j}].protocol"),
                        format!("{proto:?} is not TCP, UDP or SCTP"),
                    );
                }
                if !seen_ports.insert((p.container_port, proto)) {
                    push(
                        format!("{path}.ports[{j}].containerPort"),
                        format!("port {}/{proto} declared twice", p.container_port),
                    );
                }
            }
        }
        for (i, c) in self.containers.iter().enumerate() {
            if c.restart_policy.is_some() {
                push(
                    format!("containers[{i}].restartPolicy"),
                    "only init containers take a restartPolicy (use initContainers for a native sidecar)".into(),
                );
            }
        }
        for (i, c) in self.init_containers.iter().enumerate() {
            if let Some(rp) = c.restart_policy.as_deref() {
                if rp != "Always" {
                    push(
                        format!("initContainers[{i}].restartPolicy"),
                        format!("{rp:?} is not allowed; the only value is \"Always\" (a native sidecar)"),
                    );
                }
            }
        }

        let mut volume_names = BTreeSet::new();
        for (i, v) in self.volumes.iter().enumerate() {
            if let Err(m) = check_dns1123_label(&v.name) {
                push(format!("volumes[{i}].name"), m);
            }
            if !volume_names.insert(v.name.as_str()) {
                push(
                    format!("volumes[{i}].name"),
                    format!("duplicate volume name {:?}", v.name),
                );
            }
        }
        for (path, c) in self.all_containers_with_paths() {
            for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
                if !volume_names.contains(m.name.as_str()) {
                    // The pod may provide it; only a warning-worthy case, but a
                    // typo here is the common failure, so name it at load.
                    push(
                        format!("{path}.volumeMounts[{j}].name"),
                        format!("mounts {:?}, which is not in volumes", m.name),
                    );
                }
            }
        }
        for (i, s) in self.image_pull_secrets.iter().enumerate() {
            if s.name.is_empty() {
                push(
                    format!("imagePullSecrets[{i}].name"),
                    "a name is required".into(),
                );
            }
        }

        for (i, rule) in self.port_rules.iter().enumerate() {
            let path = format!("portRules[{i}]");
            let Some(c) = self.all_containers().find(|c| c.name == rule.container) else {
                push(
                    format!("{path}.container"),
                    format!("no injected container is named {:?}", rule.container),
                );
                continue;
            };
            if !c
                .ports
                .iter()
                .flatten()
                .any(|p| p.container_port == rule.port)
            {
                push(
                    format!("{path}.port"),
                    format!(
                        "container {:?} declares no containerPort {}",
                        c.name, rule.port
                    ),
                );
            }
            match c.env.iter().flatten().find(|e| e.name == rule.env) {
                None => push(
                    format!("{path}.env"),
                    format!("container {:?} has no env var {:?}", c.name, rule.env),
                ),
                Some(e) if e.value.as_deref() != Some(rule.port.to_string().as_str()) => push(
                    format!("{path}.env"),
                    format!(
                        "env var {:?} of container {:?} must have the literal value \"{}\"",
                        rule.env, c.name, rule.port
                    ),
                ),
                Some(_) => {}
            }
        }

        for (key, path) in [
            (&self.policy.inject_annotation, "policy.injectAnnotation"),
            (&self.policy.status_annotation, "policy.statusAnnotation"),
        ] {
            if let Err(m) = check_qualified_name(key) {
                push(path.into(), m);
            }
        }
        if self.policy.inject_annotation == self.policy.status_annotation {
            push(
                "policy.statusAnnotation".into(),
                "must differ from policy.injectAnnotation".into(),
            );
        }
        for (i, ns) in self.policy.ignored_namespaces.iter().enumerate() {
            if let Err(m) = check_dns1123_label(ns) {
                push(format!("policy.ignoredNamespaces[{i}]"), m);
            }
        }
        for (field, list) in [
            (
                "policy.neverInjectSelector",
                &self.policy.never_inject_selector,
            ),
            (
                "policy.alwaysInjectSelector",
                &self.policy.always_inject_selector,
            ),
        ] {
            for (i, sel) in list.iter().enumerate() {
                if let Err(m) = selector::validate(sel) {
                    push(format!("{field}[{i}]"), m);
                }
            }
        }
        for (field, map) in [("annotations", &self.annotations), ("labels", &self.labels)] {
            for key in map.keys() {
                if let Err(m) = check_qualified_name(key) {
                    push(format!("{field}.{key}"), m);
                }
            }
        }
        if self
            .annotations
            .contains_key(&self.policy.status_annotation)
        {
            push(
                format!("annotations.{}", self.policy.status_annotation),
                "is the status annotation, which the injector writes itself".into(),
            );
        }
    }

    /// Every injected container, init containers first.
    pub fn all_containers(&self) -> impl Iterator<Item = &Container> {
        self.init_containers.iter().chain(self.containers.iter())
    }

    fn all_containers_with_paths(&self) -> impl Iterator<Item = (String, &Container)> {
        self.init_containers
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("initContainers[{i}]"), c))
            .chain(
                self.containers
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("containers[{i}]"), c)),
            )
    }
}

/// serde_yaml appends " at line L column C" to its messages; the error
/// already carries the location in front, so drop the repetition.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Pushes a problem for every key present in `raw` but absent from `kept`.
///
/// `own` says the map at `path` is one of this module's structs (the root,
/// `policy`). Those deny unknown fields while parsing, so every key that got
/// this far is known; one missing from `kept` was only left out of the
/// serialization for being empty (`containers: []`, `labels: {}`), which is
/// not an error. Inside the Kubernetes types an empty value is kept as
/// written (`Some(vec![])`), so a missing key there is a dropped typo even
/// when its value is empty.
fn dropped_fields(raw: &Value, kept: &Value, path: &str, own: bool, problems: &mut Vec<Problem>) {
    match (raw, kept) {
        (Value::Object(r), Value::Object(k)) => {
            for (key, rv) in r {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => {
                        let child_own = path.is_empty() && key == "policy";
                        dropped_fields(rv, kv, &child, child_own, problems)
                    }
                    None if rv.is_null() => {}
                    None if own && is_empty_collection(rv) => {}
                    None => problems.push(Problem {
                        path: child,
                        message: "unknown field".into(),
                        line: None,
                        column: None,
                    }),
                }
            }
        }
        (Value::Array(r), Value::Array(k)) => {
            for (i, (rv, kv)) in r.iter().zip(k).enumerate() {
                dropped_fields(rv, kv, &format!("{path}[{i}]"), false, problems);
            }
        }
        _ => {}
    }
}

fn is_empty_collection(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// RFC 1123 label: what Kubernetes requires of container, volume and
/// namespace names.
pub fn check_dns1123_label(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
        ))
    }
}

/// A Kubernetes qualified name (annotation or label key): optional DNS
/// subdomain prefix and a slash, then a name of at most 63 characters.
pub fn check_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty() && p.len() <= 253 && p.split('.').all(|l| check_dns1123_label(l).is_ok())
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!(
            "{key:?} is not a valid qualified name (prefix/name)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_config_is_valid_and_listens_on_10000() {
        let c = Config::from_yaml(DEFAULT_CONFIG_YAML, "default").unwrap();
        assert_eq!(c.containers[0].name, "envoy");
        let port = c.containers[0].ports.as_ref().unwrap()[0].container_port;
        assert_eq!(port, 10000);
        assert_eq!(c.on_port_conflict, PortConflictPolicy::Remap);
        assert!(c.policy.enabled);
        assert_eq!(c.policy.ignored_namespaces.len(), 3);
    }

    #[test]
    fn empty_document_gives_all_defaults() {
        let c = Config::from_yaml("{}", "x").unwrap();
        assert!(c.containers.is_empty());
        assert_eq!(c.policy, Policy::default());
    }

    #[test]
    fn type_error_names_file_line_and_field() {
        let text = "containers:\n- name: envoy\n  image: e\n  ports:\n  - containerPort: lots\n";
        let err = Config::from_yaml(text, "cfg.yaml").unwrap_err().to_string();
        assert!(err.starts_with("cfg.yaml:5:"), "{err}");
        assert!(
            err.contains("containers[0].ports[0].containerPort"),
            "{err}"
        );
        // Once: serde_yaml's message carries the path as well.
        assert_eq!(
            err.matches("containers[0].ports[0].containerPort").count(),
            1,
            "{err}"
        );
    }

    #[test]
    fn unknown_top_level_field_is_named() {
        let err = Config::from_yaml("onPortConflikt: keep\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.yaml:1:"), "{err}");
        assert!(err.contains("onPortConflikt"), "{err}");
    }

    #[test]
    fn typo_inside_a_container_is_named() {
        let text = "containers:\n- name: envoy\n  image: e\n  imagePullPolcy: Always\n";
        let err = Config::from_yaml(text, "c.yaml").unwrap_err().to_string();
        assert!(
            err.contains("c.yaml:4:3: containers[0].imagePullPolcy: unknown field"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_field_points_at_its_parent() {
        let text = "policy:\n  enabled: true\ncontainers:\n- name: envoy\n  ports: []\n";
        let err = Config::from_yaml(text, "c.yaml").unwrap_err().to_string();
        assert!(
            err.contains("c.yaml:4:3: containers[0].image: an image is required"),
            "{err}"
        );
    }

    #[test]
    fn bad_enum_value_is_named() {
        let err = Config::from_yaml("onPortConflict: explode\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("onPortConflict"), "{err}");
        assert!(err.contains("remap"), "{err}");
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let text = r#"
containers:
- name: Envoy
  image: ""
  volumeMounts: [{name: missing, mountPath: /x}]
- name: Envoy
  image: x
  ports: [{containerPort: 70000}]
portRules:
- {container: nobody, port: 1, env: X}
policy:
  neverInjectSelector:
  - matchExpressions: [{key: a, operator: Maybe}]
"#;
        let err = Config::from_yaml(text, "c.yaml").unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "containers[0].name",
            "containers[0].image",
            "containers[0].volumeMounts[0].name",
            "containers[1].name",
            "containers[1].ports[0].containerPort",
            "portRules[0].container",
            "policy.neverInjectSelector[0]",
        ] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
    }

    #[test]
    fn port_rule_env_must_hold_the_port() {
        let text = r#"
containers:
- name: p
  image: x
  env: [{name: PORT, value: "9"}]
  ports: [{containerPort: 10}]
portRules: [{container: p, port: 10, env: PORT}]
"#;
        let err = Config::from_yaml(text, "c.yaml").unwrap_err().to_string();
        assert!(err.contains("portRules[0].env"), "{err}");
    }

    #[test]
    fn qualified_names() {
        assert!(check_qualified_name("sidecar-injector.io/inject").is_ok());
        assert!(check_qualified_name("app").is_ok());
        assert!(check_qualified_name("a/b/c").is_err());
        assert!(check_qualified_name("/x").is_err());
        assert!(check_qualified_name("x/").is_err());
    }

    #[test]
    fn explicitly_empty_lists_and_maps_mean_empty() {
        let text = r#"
policy:
  enabled: false
  ignoredNamespaces: []
  neverInjectSelector: []
  alwaysInjectSelector: []
onPortConflict: keep
portRules: []
containers: []
initContainers: []
volumes: []
imagePullSecrets: []
annotations: {}
labels: {}
"#;
        let c = Config::from_yaml(text, "c.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert!(c.containers.is_empty() && c.init_containers.is_empty());
        assert!(c.volumes.is_empty() && c.image_pull_secrets.is_empty());
        assert!(c.annotations.is_empty() && c.labels.is_empty());
        assert!(c.port_rules.is_empty());
        // Empty is empty, not "the default": no namespace is ignored.
        assert!(c.policy.ignored_namespaces.is_empty());
        assert!(c.policy.never_inject_selector.is_empty());
        assert!(!c.policy.enabled);
    }

    #[test]
    fn empty_lists_inside_injected_objects_load() {
        let text = r#"
containers:
- name: envoy
  image: e
  args: []
  env: []
  ports: []
  volumeMounts: []
  resources: {}
policy:
  neverInjectSelector: [{matchLabels: {}, matchExpressions: []}]
"#;
        let c = Config::from_yaml(text, "c.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.containers[0].env.as_deref(), Some(&[][..]));
    }

    #[test]
    fn an_empty_typo_is_still_an_unknown_field() {
        // Empty values are accepted for fields the config knows, not as a
        // way to slip a misspelt field past the check.
        let text = "containers:\n- name: envoy\n  image: e\n  volumeMount: []\n";
        let err = Config::from_yaml(text, "c.yaml").unwrap_err().to_string();
        assert!(
            err.contains("containers[0].volumeMount: unknown field"),
            "{err}"
        );
        let err = Config::from_yaml("labelz: {}\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("labelz"), "{err}");
    }

    #[test]
    fn yaml_round_trip_is_stable() {
        let c = Config::builtin();
        let again = Config::from_yaml(&c.to_yaml(), "round-trip").unwrap();
        assert_eq!(c, again);
    }
}
