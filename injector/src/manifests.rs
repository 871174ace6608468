//! STUB: being written. Deployable YAML for the injector.
use crate::certs::CertBundle;
use crate::config::Config;

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

/// Multi-document YAML: Namespace, Secret, ConfigMap, Deployment, Service,
/// PodDisruptionBudget, MutatingWebhookConfiguration.
pub fn render(opts: &ManifestOptions) -> String {
    let _ = opts;
    String::new()
}
