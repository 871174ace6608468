//! Deployable YAML for the injector.
//!
//! Every object is a typed `k8s-openapi` struct serialized with serde_yaml, so
//! a field name typo is a compile error rather than a silently ignored key,
//! and the output always has the shape the apiserver expects. [`build`] gives
//! the typed objects (for a caller that wants to apply or inspect them);
//! [`render`] gives the multi-document YAML the `manifests` command prints.
//!
//! The pieces are tied together here so they cannot drift apart: the Service
//! selects the Deployment's labels, the container's arguments name the paths
//! where the Secret and the ConfigMap are mounted, and the webhook trusts the
//! CA that signed the Secret's serving certificate.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar,
    EnvVarSource, HTTPGetAction, Lifecycle, LifecycleHandler, Namespace, ObjectFieldSelector,
    PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretVolumeSource, SecurityContext, Service,
    ServicePort, ServiceSpec, SleepAction, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;

use crate::certs::{CertBundle, CA_CERT_FILE, CERT_FILE, KEY_FILE};
use crate::config::Config;

/// The label every object carries and the Deployment's pods are selected by.
pub const APP_LABEL: &str = "app.kubernetes.io/name";
/// The value of [`APP_LABEL`], and the container's name.
pub const APP_NAME: &str = "sidecar-injector";
/// Namespaces opt in to injection with this label set to [`ENABLED`].
pub const NAMESPACE_LABEL: &str = "sidecar-injector";
/// The value of [`NAMESPACE_LABEL`] that turns injection on.
pub const ENABLED: &str = "enabled";
/// The label the apiserver sets on every namespace to its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Where the ConfigMap is mounted. A whole-directory mount (no `subPath`) is
/// what lets ConfigMap edits reach the pod: the kubelet swaps a symlink in the
/// directory, and the server notices and reloads the file.
pub const CONFIG_DIR: &str = "/etc/sidecar-injector/config";
/// The ConfigMap key, and so the file name under [`CONFIG_DIR`].
pub const CONFIG_FILE: &str = "config.yaml";
/// Where the TLS Secret is mounted.
pub const CERTS_DIR: &str = "/etc/sidecar-injector/certs";
/// The port the server listens on inside the pod.
pub const CONTAINER_PORT: i32 = 8443;
/// The name of [`CONTAINER_PORT`], used by the probes.
pub const PORT_NAME: &str = "https";
/// The Service port the apiserver calls.
pub const SERVICE_PORT: i32 = 443;
/// The HTTP path of the admission endpoint.
pub const WEBHOOK_PATH: &str = "/mutate";
/// The user (and group) the server runs as: the distroless `nonroot` user.
pub const RUN_AS_USER: i64 = 65532;

#[derive(Debug, Clone)]
pub struct ManifestOptions {
    pub namespace: String,
    pub service: String,
    pub image: String,
    pub replicas: i32,
    pub failure_policy: String,
    pub timeout_seconds: i32,
    pub config: Config,
    pub certs: CertBundle,
}

/// The typed objects, in the order they are rendered (and should be applied:
/// the namespace first, the webhook last, once something can answer it).
#[derive(Debug, Clone)]
pub struct Manifests {
    pub namespace: Namespace,
    pub secret: Secret,
    pub config_map: ConfigMap,
    pub deployment: Deployment,
    pub service: Service,
    pub pod_disruption_budget: PodDisruptionBudget,
    pub webhook: MutatingWebhookConfiguration,
}

impl Manifests {
    /// Multi-document YAML, each document introduced by `---`.
    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        let docs = [
            serde_yaml::to_string(&self.namespace)?,
            serde_yaml::to_string(&self.secret)?,
            serde_yaml::to_string(&self.config_map)?,
            serde_yaml::to_string(&self.deployment)?,
            serde_yaml::to_string(&self.service)?,
            serde_yaml::to_string(&self.pod_disruption_budget)?,
            serde_yaml::to_string(&self.webhook)?,
        ];
        Ok(docs.iter().map(|doc| format!("---\n{doc}")).collect())
    }
}

/// Multi-document YAML: Namespace, Secret, ConfigMap, Deployment, Service,
/// PodDisruptionBudget, MutatingWebhookConfiguration.
pub fn render(opts: &ManifestOptions) -> String {
    // The k8s-openapi types only hold strings, numbers and string-keyed maps,
    // which serde_yaml always serializes; should that ever change, say so in
    // the output rather than print half a deployment.
    build(opts)
        .to_yaml()
        .unwrap_or_else(|e| format!("# cannot render the manifests: {e}\n"))
}

/// The typed objects behind [`render`].
pub fn build(opts: &ManifestOptions) -> Manifests {
    Manifests {
        namespace: namespace(opts),
        secret: secret(opts),
        config_map: config_map(opts),
        deployment: deployment(opts),
        service: service(opts),
        pod_disruption_budget: pod_disruption_budget(opts),
        webhook: webhook(opts),
    }
}

/// The name of the TLS Secret.
pub fn secret_name(opts: &ManifestOptions) -> String {
    format!("{}-certs", opts.service)
}

/// The name of the config ConfigMap.
pub fn config_map_name(opts: &ManifestOptions) -> String {
    format!("{}-config", opts.service)
}

/// The name of the one webhook in the configuration.
pub fn webhook_name(opts: &ManifestOptions) -> String {
    format!("{}.sidecar-injector.io", opts.service)
}

/// The arguments of the server container, pointing at the mounted files.
pub fn server_args() -> Vec<String> {
    [
        "serve".to_string(),
        "--config".into(),
        format!("{CONFIG_DIR}/{CONFIG_FILE}"),
        "--tls-cert".into(),
        format!("{CERTS_DIR}/{CERT_FILE}"),
        "--tls-key".into(),
        format!("{CERTS_DIR}/{KEY_FILE}"),
        "--addr".into(),
        format!("0.0.0.0:{CONTAINER_PORT}"),
    ]
    .to_vec()
}

fn app_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(APP_LABEL.to_string(), APP_NAME.to_string())])
}

fn app_selector() -> LabelSelector {
    LabelSelector {
        match_labels: Some(app_labels()),
        ..Default::default()
    }
}

fn metadata(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(app_labels()),
        ..Default::default()
    }
}

fn strings<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn namespace(opts: &ManifestOptions) -> Namespace {
    Namespace {
        metadata: metadata(&opts.namespace, None),
        ..Default::default()
    }
}

fn secret(opts: &ManifestOptions) -> Secret {
    let certs = &opts.certs;
    let data = [
        (CERT_FILE, &certs.cert_pem),
        (KEY_FILE, &certs.key_pem),
        (CA_CERT_FILE, &certs.ca_pem),
    ]
    .into_iter()
    .map(|(key, pem)| (key.to_string(), ByteString(pem.as_bytes().to_vec())))
    .collect();
    Secret {
        metadata: metadata(&secret_name(opts), Some(&opts.namespace)),
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    }
}

fn config_map(opts: &ManifestOptions) -> ConfigMap {
    ConfigMap {
        metadata: metadata(&config_map_name(opts), Some(&opts.namespace)),
        data: Some(BTreeMap::from([(
            CONFIG_FILE.to_string(),
            opts.config.to_yaml(),
        )])),
        ..Default::default()
    }
}

fn https_probe(path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String(PORT_NAME.into()),
            scheme: Some("HTTPS".into()),
            ..Default::default()
        }),
        period_seconds: Some(10),
        timeout_seconds: Some(2),
        ..Default::default()
    }
}

/// How long a terminating injector pod keeps serving (its preStop sleep).
const PRE_STOP_SECONDS: i64 = 5;

fn container(opts: &ManifestOptions) -> Container {
    Container {
        name: APP_NAME.into(),
        image: Some(opts.image.clone()),
        args: Some(server_args()),
        env: Some(vec![EnvVar {
            name: "POD_NAMESPACE".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: Some("v1".into()),
                    field_path: "metadata.namespace".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: CONTAINER_PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        // A terminating pod leaves the Service's endpoints at once, but
        // kube-proxy on each node applies that a moment later (seconds on a
        // busy node): until then the apiserver's connections still reach
        // this pod. It keeps serving for PRE_STOP_SECONDS before SIGTERM,
        // then drains in-flight reviews, so a rollout or scale-down never
        // fails an admission (seen on kind: a rollout's first call went to
        // the old pod's address after the pod was gone).
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: PRE_STOP_SECONDS,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        readiness_probe: Some(https_probe("/readyz")),
        liveness_probe: Some(Probe {
            // Liveness restarts the pod: give it more rope than readiness.
            failure_threshold: Some(6),
            ..https_probe("/healthz")
        }),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("50m".into())),
                ("memory".to_string(), Quantity("32Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("64Mi".into()),
            )])),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            run_as_group: Some(RUN_AS_USER),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(strings(["ALL"])),
                ..Default::default()
            }),
            seccomp_profile: Some(runtime_default_seccomp()),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "certs".into(),
                mount_path: CERTS_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            },
        ]),
        ..Default::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..Default::default()
    }
}

fn deployment(opts: &ManifestOptions) -> Deployment {
    let pod = PodSpec {
        containers: vec![container(opts)],
        // The server talks to nobody but the apiserver that calls it.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            run_as_group: Some(RUN_AS_USER),
            // Makes the 0440 Secret files readable by the server's group.
            fs_group: Some(RUN_AS_USER),
            seccomp_profile: Some(runtime_default_seccomp()),
            ..Default::default()
        }),
        // Spread replicas over nodes so one node going away does not take
        // every replica (and, with failurePolicy Fail, all pod creation) along.
        affinity: Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    WeightedPodAffinityTerm {
                        weight: 100,
                        pod_affinity_term: PodAffinityTerm {
                            label_selector: Some(app_selector()),
                            topology_key: "kubernetes.io/hostname".into(),
                            ..Default::default()
                        },
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volumes: Some(vec![
            Volume {
                name: "certs".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret_name(opts)),
                    default_mode: Some(0o440),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: config_map_name(opts),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    Deployment {
        metadata: metadata(&opts.service, Some(&opts.namespace)),
        spec: Some(DeploymentSpec {
            replicas: Some(opts.replicas),
            selector: app_selector(),
            // Bring a new replica up before taking an old one down, so a
            // rollout never leaves the webhook without an endpoint.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app_labels()),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn service(opts: &ManifestOptions) -> Service {
    Service {
        metadata: metadata(&opts.service, Some(&opts.namespace)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(app_labels()),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: SERVICE_PORT,
                target_port: Some(IntOrString::Int(CONTAINER_PORT)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_disruption_budget(opts: &ManifestOptions) -> PodDisruptionBudget {
    // Keep one replica through voluntary disruptions. With a single replica,
    // `minAvailable: 1` would block every node drain forever, so allow that
    // one pod to be evicted instead.
    let (min_available, max_unavailable) = if opts.replicas > 1 {
        (Some(IntOrString::Int(1)), None)
    } else {
        (None, Some(IntOrString::Int(1)))
    };
    PodDisruptionBudget {
        metadata: metadata(&opts.service, Some(&opts.namespace)),
        spec: Some(PodDisruptionBudgetSpec {
            min_available,
            max_unavailable,
            selector: Some(app_selector()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Namespaces the apiserver should not even ask about: the injector's own
/// (its pods must start while the webhook is down, or it could never come
/// back under `failurePolicy: Fail`), then the config's ignored namespaces,
/// which the injector would skip anyway.
fn excluded_namespaces(opts: &ManifestOptions) -> Vec<String> {
    let mut out = vec![opts.namespace.clone()];
    for ns in &opts.config.policy.ignored_namespaces {
        if !out.contains(ns) {
            out.push(ns.clone());
        }
    }
    out
}

fn webhook(opts: &ManifestOptions) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: metadata(&opts.service, None),
        webhooks: Some(vec![MutatingWebhook {
            name: webhook_name(opts),
            client_config: WebhookClientConfig {
                service: Some(ServiceReference {
                    name: opts.service.clone(),
                    namespace: opts.namespace.clone(),
                    path: Some(WEBHOOK_PATH.into()),
                    port: Some(SERVICE_PORT),
                }),
                // ByteString serializes as base64, so this is the PEM itself:
                // the YAML ends up holding `opts.certs.ca_bundle()`.
                ca_bundle: Some(ByteString(opts.certs.ca_pem.as_bytes().to_vec())),
                ..Default::default()
            },
            rules: Some(vec![RuleWithOperations {
                operations: Some(strings(["CREATE"])),
                api_groups: Some(strings([""])),
                api_versions: Some(strings(["v1"])),
                resources: Some(strings(["pods"])),
                scope: Some("Namespaced".into()),
            }]),
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    NAMESPACE_LABEL.to_string(),
                    ENABLED.to_string(),
                )])),
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: NAMESPACE_NAME_LABEL.into(),
                    operator: "NotIn".into(),
                    values: Some(excluded_namespaces(opts)),
                }]),
            }),
            side_effects: "None".into(),
            admission_review_versions: strings(["v1"]),
            timeout_seconds: Some(opts.timeout_seconds),
            failure_policy: Some(opts.failure_policy.clone()),
            reinvocation_policy: Some("Never".into()),
            match_policy: Some("Equivalent".into()),
            ..Default::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde::de::DeserializeOwned;
    use serde::Deserialize as _;
    use serde_json::{json, Value};

    fn opts() -> ManifestOptions {
        ManifestOptions {
            namespace: "injector-system".into(),
            service: "sidecar-injector".into(),
            image: "example.invalid/sidecar-injector:1.2.3".into(),
            replicas: 2,
            failure_policy: "Fail".into(),
            timeout_seconds: 5,
            config: Config::builtin(),
            certs: crate::certs::generate("sidecar-injector", "injector-system", &[]).unwrap(),
        }
    }

    fn documents(yaml: &str) -> Vec<Value> {
        serde_yaml::Deserializer::from_str(yaml)
            .map(|doc| Value::deserialize(doc).unwrap())
            .collect()
    }

    fn rendered() -> (ManifestOptions, Vec<Value>) {
        let o = opts();
        let docs = documents(&render(&o));
        (o, docs)
    }

    fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    }

    fn b64(v: &Value) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }

    #[test]
    fn documents_come_in_apply_order() {
        let (_, docs) = rendered();
        let kinds: Vec<_> = docs
            .iter()
            .map(|d| {
                format!(
                    "{}/{}",
                    d["apiVersion"].as_str().unwrap(),
                    d["kind"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "v1/Namespace",
                "v1/Secret",
                "v1/ConfigMap",
                "apps/v1/Deployment",
                "v1/Service",
                "policy/v1/PodDisruptionBudget",
                "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration",
            ]
        );
    }

    /// Deserializes into the typed struct and checks that nothing was dropped
    /// on the way (the k8s-openapi types ignore unknown fields).
    fn typed<T: DeserializeOwned + serde::Serialize>(doc: &Value) {
        let t: T = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(&serde_json::to_value(&t).unwrap(), doc);
    }

    #[test]
    fn every_document_is_its_typed_object() {
        let (_, docs) = rendered();
        for doc in &docs {
            match doc["kind"].as_str().unwrap() {
                "Namespace" => typed::<Namespace>(doc),
                "Secret" => typed::<Secret>(doc),
                "ConfigMap" => typed::<ConfigMap>(doc),
                "Deployment" => typed::<Deployment>(doc),
                "Service" => typed::<Service>(doc),
                "PodDisruptionBudget" => typed::<PodDisruptionBudget>(doc),
                "MutatingWebhookConfiguration" => typed::<MutatingWebhookConfiguration>(doc),
                other => panic!("unexpected kind {other}"),
            }
        }
    }

    #[test]
    fn namespaced_objects_live_in_the_namespace() {
        let (o, docs) = rendered();
        assert_eq!(docs[0]["metadata"]["name"], o.namespace.as_str());
        assert_eq!(docs[0]["metadata"]["labels"][APP_LABEL], APP_NAME);
        for doc in &docs[1..6] {
            assert_eq!(doc["metadata"]["namespace"], o.namespace.as_str(), "{doc}");
        }
        assert!(docs[6]["metadata"].get("namespace").is_none());
    }

    #[test]
    fn webhook_trusts_the_ca_and_skips_its_own_namespace() {
        let (o, docs) = rendered();
        let config = kind(&docs, "MutatingWebhookConfiguration");
        assert_eq!(config["metadata"]["name"], "sidecar-injector");
        let hooks = config["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), 1);
        let hook = &hooks[0];
        assert_eq!(hook["name"], "sidecar-injector.sidecar-injector.io");

        let ca = &hook["clientConfig"]["caBundle"];
        assert_eq!(b64(ca), o.certs.ca_pem.as_bytes());
        assert_eq!(ca.as_str().unwrap(), o.certs.ca_bundle());
        assert_eq!(
            hook["clientConfig"]["service"],
            json!({"name": "sidecar-injector", "namespace": "injector-system", "path": "/mutate", "port": 443})
        );

        let selector = &hook["namespaceSelector"];
        assert_eq!(
            selector["matchLabels"],
            json!({"sidecar-injector": "enabled"})
        );
        let exprs = selector["matchExpressions"].as_array().unwrap();
        assert_eq!(exprs.len(), 1);
        assert_eq!(exprs[0]["key"], "kubernetes.io/metadata.name");
        assert_eq!(exprs[0]["operator"], "NotIn");
        let values = exprs[0]["values"].as_array().unwrap();
        assert_eq!(values[0], "injector-system");
        assert!(values.contains(&json!("kube-system")));

        assert_eq!(
            hook["rules"],
            json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}])
        );
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(hook["timeoutSeconds"], 5);
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["reinvocationPolicy"], "Never");
        assert_eq!(hook["matchPolicy"], "Equivalent");
    }

    #[test]
    fn own_namespace_is_not_listed_twice() {
        let mut o = opts();
        o.namespace = "kube-system".into();
        let values = webhook(&o).webhooks.unwrap()[0]
            .namespace_selector
            .clone()
            .unwrap()
            .match_expressions
            .unwrap()[0]
            .values
            .clone()
            .unwrap();
        assert_eq!(values.iter().filter(|v| *v == "kube-system").count(), 1);
        assert_eq!(values[0], "kube-system");
    }

    #[test]
    fn service_maps_443_to_8443_on_the_deployment_pods() {
        let (_, docs) = rendered();
        let svc = kind(&docs, "Service");
        assert_eq!(svc["metadata"]["name"], "sidecar-injector");
        assert_eq!(svc["spec"]["ports"][0]["port"], 443);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8443);
        let deploy = kind(&docs, "Deployment");
        assert_eq!(
            svc["spec"]["selector"],
            deploy["spec"]["selector"]["matchLabels"]
        );
        assert_eq!(
            svc["spec"]["selector"],
            deploy["spec"]["template"]["metadata"]["labels"]
        );
        assert_eq!(
            deploy["spec"]["template"]["spec"]["containers"][0]["ports"][0],
            json!({"name": "https", "containerPort": 8443, "protocol": "TCP"})
        );
    }

    #[test]
    fn deployment_is_locked_down() {
        let (_, docs) = rendered();
        let deploy = kind(&docs, "Deployment");
        assert_eq!(deploy["spec"]["replicas"], 2);
        let pod = &deploy["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let c = &pod["containers"][0];
        assert_eq!(c["name"], "sidecar-injector");
        assert_eq!(c["image"], "example.invalid/sidecar-injector:1.2.3");
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["runAsUser"], 65532);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(
            c["resources"],
            json!({"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}})
        );
        assert_eq!(
            c["env"],
            json!([{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}}])
        );
        for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
            let get = &c[probe]["httpGet"];
            assert_eq!(get["scheme"], "HTTPS", "{probe}");
            assert_eq!(get["path"], path, "{probe}");
            assert_eq!(get["port"], "https", "{probe}");
        }
        // Keeps serving while kube-proxy catches up, and the preStop sleep
        // plus the server's drain fit in the pod's grace period (default 30 s).
        assert_eq!(c["lifecycle"]["preStop"], json!({"sleep": {"seconds": 5}}));
        let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
        let drain = crate::server::ServerOptions::new(
            "127.0.0.1:0".parse().unwrap(),
            "c".into(),
            "k".into(),
        )
        .shutdown_grace
        .as_secs() as i64;
        assert!(
            PRE_STOP_SECONDS + drain < grace,
            "{PRE_STOP_SECONDS} + {drain} >= {grace}"
        );
        let anti = &pod["affinity"]["podAntiAffinity"]
            ["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"];
        assert_eq!(anti["topologyKey"], "kubernetes.io/hostname");
        assert_eq!(
            anti["labelSelector"]["matchLabels"],
            json!({"app.kubernetes.io/name": "sidecar-injector"})
        );
    }

    #[test]
    fn args_point_at_read_only_directory_mounts() {
        let (_, docs) = rendered();
        let pod = &kind(&docs, "Deployment")["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(
            c["args"],
            json!([
                "serve",
                "--config",
                "/etc/sidecar-injector/config/config.yaml",
                "--tls-cert",
                "/etc/sidecar-injector/certs/tls.crt",
                "--tls-key",
                "/etc/sidecar-injector/certs/tls.key",
                "--addr",
                "0.0.0.0:8443"
            ])
        );
        let mounts = c["volumeMounts"].as_array().unwrap();
        let volumes = pod["volumes"].as_array().unwrap();
        for (path, source, object) in [
            (CERTS_DIR, "secret", "sidecar-injector-certs"),
            (CONFIG_DIR, "configMap", "sidecar-injector-config"),
        ] {
            let m = mounts.iter().find(|m| m["mountPath"] == path).unwrap();
            assert_eq!(m["readOnly"], true);
            // A subPath mount would never see ConfigMap updates.
            assert!(m.get("subPath").is_none());
            let v = volumes.iter().find(|v| v["name"] == m["name"]).unwrap();
            let name_field = if source == "secret" {
                "secretName"
            } else {
                "name"
            };
            assert_eq!(v[source][name_field], object);
        }
    }

    #[test]
    fn secret_and_config_map_carry_the_inputs() {
        let (o, docs) = rendered();
        let secret = kind(&docs, "Secret");
        assert_eq!(secret["metadata"]["name"], "sidecar-injector-certs");
        assert_eq!(secret["type"], "kubernetes.io/tls");
        assert_eq!(b64(&secret["data"]["tls.crt"]), o.certs.cert_pem.as_bytes());
        assert_eq!(b64(&secret["data"]["tls.key"]), o.certs.key_pem.as_bytes());
        assert_eq!(b64(&secret["data"]["ca.crt"]), o.certs.ca_pem.as_bytes());

        let cm = kind(&docs, "ConfigMap");
        assert_eq!(cm["metadata"]["name"], "sidecar-injector-config");
        let text = cm["data"]["config.yaml"].as_str().unwrap();
        assert_eq!(Config::from_yaml(text, "configmap").unwrap(), o.config);
    }

    #[test]
    fn pdb_keeps_one_replica_without_blocking_a_single_one() {
        let (_, docs) = rendered();
        let pdb = kind(&docs, "PodDisruptionBudget");
        assert_eq!(pdb["spec"]["minAvailable"], 1);
        assert!(pdb["spec"].get("maxUnavailable").is_none());
        assert_eq!(
            pdb["spec"]["selector"]["matchLabels"],
            json!({"app.kubernetes.io/name": "sidecar-injector"})
        );

        let mut o = opts();
        o.replicas = 1;
        let spec = pod_disruption_budget(&o).spec.unwrap();
        assert_eq!(spec.min_available, None);
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
    }

    #[test]
    fn options_flow_through() {
        let mut o = opts();
        o.replicas = 3;
        o.failure_policy = "Ignore".into();
        o.timeout_seconds = 10;
        o.service = "inj".into();
        let docs = documents(&render(&o));
        let deploy = kind(&docs, "Deployment");
        assert_eq!(deploy["spec"]["replicas"], 3);
        assert_eq!(deploy["metadata"]["name"], "inj");
        let hook = &kind(&docs, "MutatingWebhookConfiguration")["webhooks"][0];
        assert_eq!(hook["failurePolicy"], "Ignore");
        assert_eq!(hook["timeoutSeconds"], 10);
        assert_eq!(hook["name"], "inj.sidecar-injector.io");
        assert_eq!(hook["clientConfig"]["service"]["name"], "inj");
        assert_eq!(kind(&docs, "Secret")["metadata"]["name"], "inj-certs");
    }
}
