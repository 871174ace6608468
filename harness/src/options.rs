//! What steers a run, in one struct read from the environment in one place.
//!
//! `cargo test --features e2e` is steered by environment variables only; the
//! CLI's flags set the same fields over them (a flag wins over its
//! variable). Nothing below [`RunOptions`] reads a run's options from the
//! environment; what is read where it is used are locations: the harness's
//! state directory (`HARNESS_STATE`), its checkout (`HARNESS_WORKSPACE`),
//! and the cluster's `KUBECONFIG` and Docker's `DOCKER_HOST`, through
//! kube's and testcontainers' own loaders.
//!
//! | field | variable | default |
//! | --- | --- | --- |
//! | `backend` | `HARNESS_BACKEND` (sim, kind, kubeconfig) | the caller's |
//! | `sim_minor` | `HARNESS_K8S_VERSION` | the newest supported |
//! | `webhook` | `HARNESS_WEBHOOK` (host, in-cluster) | host |
//! | `injector_image` | `HARNESS_INJECTOR_IMAGE` | `sidecar-injector:dev` |
//! | `fake_kubelet` | `HARNESS_FAKE_KUBELET=0` turns it off | on |
//! | `share_injectors` | `HARNESS_SHARE_INJECTORS=0` turns it off | on |
//! | `run_id` | `HARNESS_RUN_ID` | five random characters |
//! | `kind.cluster` | `HARNESS_KIND_CLUSTER` | a new cluster |
//! | `kind.keep_cluster` | `HARNESS_KEEP_CLUSTER=1` | deleted at the end |
//! | `kind.node_image` | `KIND_NODE_IMAGE` | chosen by `kind/kind-cluster.sh` |
//! | `kind.skip_image_build` | `HARNESS_BUILD_IMAGES=0` | images built |

use crate::cluster::kind::KindOptions;
use crate::cluster::Backend;
use crate::isolation::RunId;
use crate::version::{self, Minor};

/// Where the `kubeconfig` backend runs the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Webhook {
    /// In the harness process on 127.0.0.1: for an apiserver on this host
    /// (the local control plane); pods run on the harness's fake kubelet.
    Host,
    /// As a Deployment and Service in the cluster, called through the
    /// Service (as on kind): for any cluster whose nodes can run the
    /// injector image (`HARNESS_INJECTOR_IMAGE`); pods run on its kubelets.
    InCluster,
}

/// A variable that holds what no run can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?}: {problem}")]
pub struct OptionsError {
    pub variable: &'static str,
    pub value: String,
    pub problem: String,
}

/// Everything a run is steered by.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub backend: Backend,
    /// Scenarios run at once (a `serial` one alone).
    pub parallel: usize,
    /// Every scenario this many times, on one cluster.
    pub passes: usize,
    /// The Kubernetes minor the sim models.
    pub sim_minor: Minor,
    pub webhook: Webhook,
    /// The image an in-cluster built-in injector runs.
    pub injector_image: String,
    /// The kubeconfig backend with the webhook on the host starts the
    /// harness's fake kubelet (a control plane without nodes needs it).
    pub fake_kubelet: bool,
    /// In a cluster, scenarios that leave the built-in injector alone share
    /// one injector Deployment per config ([`crate::subject::shared`]);
    /// off, each scenario deploys its own.
    pub share_injectors: bool,
    /// The run's id: its namespaces' suffix and its label's value.
    pub run_id: RunId,
    pub kind: KindOptions,
}

impl RunOptions {
    /// The options for `backend`, the rest from the environment.
    pub fn for_backend(backend: Backend) -> Result<RunOptions, OptionsError> {
        RunOptions::read(backend, &|k| std::env::var(k).ok())
    }

    /// The options the environment gives, `HARNESS_BACKEND` included
    /// (default: the sim).
    pub fn from_env() -> Result<RunOptions, OptionsError> {
        let backend = match std::env::var("HARNESS_BACKEND")
            .ok()
            .filter(|v| !v.is_empty())
        {
            None => Backend::Sim,
            Some(v) => v.parse().map_err(|problem| OptionsError {
                variable: "HARNESS_BACKEND",
                value: v,
                problem,
            })?,
        };
        RunOptions::for_backend(backend)
    }

    /// The options `var` gives (a lookup of one variable's value).
    pub fn read(
        backend: Backend,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RunOptions, OptionsError> {
        let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let truthy = |k: &str| matches!(set(k).as_deref(), Some("1" | "true" | "yes"));
        let falsy = |k: &str| matches!(set(k).as_deref(), Some("0" | "false" | "no"));
        let sim_minor = match set(version::ENV) {
            None => version::newest(),
            Some(v) => version::supported_minor(&v).map_err(|problem| OptionsError {
                variable: version::ENV,
                value: v,
                problem,
            })?,
        };
        let webhook = match set("HARNESS_WEBHOOK").as_deref() {
            None | Some("host") => Webhook::Host,
            Some("in-cluster") => Webhook::InCluster,
            Some(other) => {
                return Err(OptionsError {
                    variable: "HARNESS_WEBHOOK",
                    value: other.to_string(),
                    problem: "use host or in-cluster".into(),
                })
            }
        };
        let run_id = match set("HARNESS_RUN_ID") {
            None => RunId::random(),
            Some(v) => RunId::parse(&v).map_err(|problem| OptionsError {
                variable: "HARNESS_RUN_ID",
                value: v,
                problem,
            })?,
        };
        Ok(RunOptions {
            backend,
            parallel: 4,
            passes: 1,
            sim_minor,
            webhook,
            injector_image: set("HARNESS_INJECTOR_IMAGE")
                .unwrap_or_else(|| crate::images::INJECTOR_IMAGE.to_string()),
            fake_kubelet: !falsy("HARNESS_FAKE_KUBELET"),
            share_injectors: !falsy("HARNESS_SHARE_INJECTORS"),
            run_id,
            kind: KindOptions {
                cluster: set("HARNESS_KIND_CLUSTER"),
                keep_cluster: truthy("HARNESS_KEEP_CLUSTER"),
                node_image: set("KIND_NODE_IMAGE"),
                skip_image_build: falsy("HARNESS_BUILD_IMAGES"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn read(vars: &[(&str, &str)]) -> Result<RunOptions, OptionsError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RunOptions::read(Backend::Kind, &|k| vars.get(k).cloned())
    }

    #[test]
    fn nothing_set_gives_the_defaults() {
        let o = read(&[]).unwrap();
        assert_eq!(o.sim_minor, version::newest());
        assert_eq!(o.webhook, Webhook::Host);
        assert_eq!(o.injector_image, "sidecar-injector:dev");
        assert!(o.fake_kubelet && o.share_injectors);
        assert_eq!(o.run_id.as_str().len(), 5);
        assert_eq!(o.kind.cluster, None);
        assert!(!o.kind.keep_cluster && !o.kind.skip_image_build);
    }

    #[test]
    fn each_variable_sets_its_field() {
        let oldest = *version::supported().iter().min().unwrap();
        let o = read(&[
            ("HARNESS_K8S_VERSION", &oldest.to_string()),
            ("HARNESS_WEBHOOK", "in-cluster"),
            ("HARNESS_INJECTOR_IMAGE", "localhost:5000/team/injector:v2"),
            ("HARNESS_FAKE_KUBELET", "0"),
            ("HARNESS_SHARE_INJECTORS", "0"),
            ("HARNESS_RUN_ID", "ci7"),
            ("HARNESS_KIND_CLUSTER", "dev"),
            ("HARNESS_KEEP_CLUSTER", "1"),
            ("KIND_NODE_IMAGE", "kindest/node:v1.37.2"),
            ("HARNESS_BUILD_IMAGES", "0"),
        ])
        .unwrap();
        assert_eq!(o.sim_minor, oldest);
        assert_eq!(o.webhook, Webhook::InCluster);
        assert_eq!(o.injector_image, "localhost:5000/team/injector:v2");
        assert!(!o.fake_kubelet && !o.share_injectors);
        assert_eq!(o.run_id.as_str(), "ci7");
        assert_eq!(o.kind.cluster.as_deref(), Some("dev"));
        assert!(o.kind.keep_cluster && o.kind.skip_image_build);
        assert_eq!(o.kind.node_image.as_deref(), Some("kindest/node:v1.37.2"));
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_variable() {
        let e = read(&[("HARNESS_WEBHOOK", "remote")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "HARNESS_WEBHOOK=\"remote\": use host or in-cluster"
        );
        let e = read(&[("HARNESS_RUN_ID", "Run-1")]).unwrap_err();
        assert_eq!(e.variable, "HARNESS_RUN_ID");
        let e = read(&[("HARNESS_K8S_VERSION", "v1.2")]).unwrap_err();
        assert!(
            e.to_string().starts_with("HARNESS_K8S_VERSION=\"v1.2\": "),
            "{e}"
        );
    }
}
