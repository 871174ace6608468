//! What an in-cluster subject is made of, applied server-side: its own
//! namespace (labelled so an interrupted run finds it), a Secret with its
//! serving pair, its config or files, a Service and a Deployment. The
//! built-in injector's come from the project's own `manifests` code; an
//! image subject's are written here, with the probe's relay in front of it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sidecar_injector::manifests::{self, ManifestOptions, APP_LABEL, SERVICE_PORT};
use sidecar_injector::{certs, Config};

use super::delay::{relay_args, relay_port, RELAY};
use super::types::{CERT_DIR, FILES_DIR};
use crate::isolation::{RunId, RUN_LABEL};
use crate::scenario::ImageSpec;

const FIELD_MANAGER: &str = "injector-harness";
/// The Service the webhooks call, in the injector's namespace.
pub const SERVICE: &str = "sidecar-injector";
/// An image subject's Deployment, Service and app label.
pub const IMAGE_SUBJECT: &str = "webhook";
/// Labels the injector namespace so an interrupted run can find it.
pub const SCENARIO_LABEL: &str = "injector-harness/scenario";
/// How long a subject's namespace may take to be gone.
pub(super) const REMOVAL_TIMEOUT: Duration = Duration::from_secs(120);

/// The injector namespace of a scenario in run `run`: a DNS label of at
/// most 63 bytes that ends with the run id.
pub fn namespace_for(scenario: &str, run: &RunId) -> String {
    let mut ns = format!("injector-{scenario}");
    ns.truncate(63 - run.as_str().len() - 1);
    format!("{}-{run}", ns.trim_end_matches('-'))
}

/// Applies the built-in injector's objects in `namespace` (made afresh),
/// with a serving pair from a new CA, which it returns, and `available`
/// deciding whether the Deployment has a replica.
pub(super) async fn apply_builtin(
    client: &Client,
    namespace: &str,
    scenario: &str,
    run: &RunId,
    image: &str,
    config: &Config,
    available: bool,
) -> Result<certs::Ca> {
    let ca = certs::Ca::generate().context("generating the injector's CA")?;
    let bundle = ca
        .issue(SERVICE, namespace, &[])
        .context("generating the injector's serving certificate")?;
    let opts = ManifestOptions {
        namespace: namespace.to_string(),
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
    let ns = namespace;
    // A namespace left by an interrupted run would keep its old pods
    // (same template, so no rollout): start from nothing.
    remove_namespace(client, ns).await?;
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
    Ok(ca)
}

/// Applies an image subject's objects (`subject.image`) in `namespace`
/// (made afresh): a Deployment of `spec`'s image behind a Service, with a
/// serving pair from a new CA, which it returns, in a Secret mounted at
/// [`CERT_DIR`] and the scenario's `files` (read from `scenario_dir`) in a
/// ConfigMap mounted at [`FILES_DIR`].
pub(super) async fn apply_image(
    client: &Client,
    namespace: &str,
    scenario: &str,
    run: &RunId,
    spec: &ImageSpec,
    scenario_dir: &Path,
    available: bool,
) -> Result<certs::Ca> {
    let name = IMAGE_SUBJECT.to_string();
    let ca = certs::Ca::generate().context("generating the subject's CA")?;
    let bundle = ca
        .issue(&name, namespace, &[])
        .context("generating the subject's serving certificate")?;
    let files = super::container::image_files(spec, scenario_dir)?;
    let args = super::container::image_args(spec);
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
    let ns = namespace;
    remove_namespace(client, ns).await?;
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
    Ok(ca)
}

/// Deletes `namespace` if it exists and waits until it is gone.
pub(super) async fn remove_namespace(client: &Client, namespace: &str) -> Result<()> {
    crate::cluster::namespaces::remove(client, namespace, REMOVAL_TIMEOUT).await
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
