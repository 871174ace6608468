//! What steers a run, read from the environment and the CLI's flags here
//! and nowhere else.
//!
//! `cargo test --features e2e` is steered by environment variables only; the
//! CLI's flags ([`RunFlags`]) set the same fields over them (a flag wins over
//! its variable). The locations the harness uses are read here too:
//! [`state_dir`] (`HARNESS_STATE`), [`workspace`] (`HARNESS_WORKSPACE`), and
//! what snapshot checks are asked ([`recording_snapshots`], `INSTA_UPDATE`;
//! [`versioned_snapshot_asked`], `HARNESS_SNAPSHOT_VERSIONED`). Only the
//! cluster's `KUBECONFIG` and Docker's `DOCKER_HOST` are read elsewhere, by
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

use std::path::{Path, PathBuf};

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

/// How to get a kind cluster. Every field has a flag on `run` and an
/// environment variable, so `cargo test --features e2e` can be steered too.
#[derive(Debug, Clone, Default)]
pub struct KindOptions {
    /// Reuse this existing cluster (HARNESS_KIND_CLUSTER); it is never deleted.
    pub cluster: Option<String>,
    /// Leave a cluster the harness created running (HARNESS_KEEP_CLUSTER=1).
    pub keep_cluster: bool,
    /// The node image (KIND_NODE_IMAGE), e.g. a stock `kindest/node` of the
    /// pinned minor; without it `kind/build-node-image.sh` builds one offline.
    pub node_image: Option<String>,
    /// Skip `kind/build-images.sh` and load the images Docker already has
    /// (HARNESS_BUILD_IMAGES=0).
    pub skip_image_build: bool,
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
        RunOptions::read_backend(&|k| std::env::var(k).ok())
    }

    /// The options `var` gives, `HARNESS_BACKEND` included (default: the sim).
    pub fn read_backend(var: &dyn Fn(&str) -> Option<String>) -> Result<RunOptions, OptionsError> {
        let backend = match var("HARNESS_BACKEND").filter(|v| !v.is_empty()) {
            None => Backend::Sim,
            Some(v) => v.parse().map_err(|problem| OptionsError {
                variable: "HARNESS_BACKEND",
                value: v,
                problem,
            })?,
        };
        RunOptions::read(backend, var)
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

/// The CLI's flags that steer a run, each over its variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunFlags {
    /// sim, kind or kubeconfig [default: HARNESS_BACKEND, else sim].
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Scenarios run at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// kind: reuse this existing cluster instead of creating one; it is
    /// never deleted [HARNESS_KIND_CLUSTER].
    #[arg(long)]
    pub kind_cluster: Option<String>,
    /// kind: leave the cluster this run creates up, for debugging
    /// [HARNESS_KEEP_CLUSTER=1].
    #[arg(long)]
    pub keep_cluster: bool,
    /// kind: the node image (e.g. a stock kindest/node of the pinned minor);
    /// default: the offline one kind/build-node-image.sh builds
    /// [KIND_NODE_IMAGE].
    #[arg(long)]
    pub node_image: Option<String>,
    /// kind: load the injector and probe images Docker already has instead
    /// of building them with kind/build-images.sh [HARNESS_BUILD_IMAGES=0].
    #[arg(long)]
    pub no_image_build: bool,
    /// Run every scenario this many times (on one cluster) and report any
    /// scenario whose snapshot differs between passes, with the lines
    /// that differ: an outcome that depends on timing.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// kubeconfig: where the webhook runs: `host` (this process, for an
    /// apiserver on this machine) or `in-cluster` (a Deployment and
    /// Service, for any cluster; pods run on its own nodes)
    /// [HARNESS_WEBHOOK].
    #[arg(long, value_enum)]
    pub webhook: Option<Webhook>,
    /// The injector image an in-cluster webhook runs (default
    /// sidecar-injector:dev, which kind/build-images.sh builds): name an
    /// image in a registry the cluster pulls from [HARNESS_INJECTOR_IMAGE].
    #[arg(long)]
    pub injector_image: Option<String>,
    /// This run's id (1-8 lowercase letters and digits; default random):
    /// on a real cluster, the suffix of its namespaces and the value of
    /// the injector-harness/run label on what it creates [HARNESS_RUN_ID].
    #[arg(long)]
    pub run_id: Option<String>,
    /// In a cluster, give every scenario an injector Deployment of its own
    /// (default: scenarios that leave the built-in injector alone share
    /// one per config) [HARNESS_SHARE_INJECTORS=0].
    #[arg(long)]
    pub injector_per_scenario: bool,
}

impl RunFlags {
    /// The options the environment gives, with these flags over them.
    pub fn options(&self) -> anyhow::Result<RunOptions> {
        self.over(RunOptions::read_backend(&|k| std::env::var(k).ok())?)
    }

    /// `options` with these flags over them.
    pub fn over(&self, mut options: RunOptions) -> anyhow::Result<RunOptions> {
        if let Some(backend) = self.backend {
            options.backend = backend;
        }
        options.parallel = self.parallel;
        options.passes = self.repeat as usize;
        if let Some(w) = self.webhook {
            options.webhook = w;
        }
        if let Some(image) = &self.injector_image {
            options.injector_image = image.clone();
        }
        if let Some(id) = &self.run_id {
            options.run_id =
                RunId::parse(id).map_err(|e| anyhow::anyhow!("--run-id {id:?}: {e}"))?;
        }
        if self.kind_cluster.is_some() {
            options.kind.cluster = self.kind_cluster.clone();
        }
        options.kind.keep_cluster |= self.keep_cluster;
        if self.node_image.is_some() {
            options.kind.node_image = self.node_image.clone();
        }
        options.kind.skip_image_build |= self.no_image_build;
        options.share_injectors &= !self.injector_per_scenario;
        Ok(options)
    }
}

/// The harness's state directory, `$HARNESS_STATE` (default
/// `/tmp/injector-harness`): kind cluster records, scenario durations.
pub fn state_dir() -> PathBuf {
    std::env::var_os("HARNESS_STATE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/injector-harness"))
}

/// The checkout whose `kind/` scripts build clusters and images,
/// `$HARNESS_WORKSPACE` (default: the one this crate was built in).
pub fn workspace() -> PathBuf {
    std::env::var_os("HARNESS_WORKSPACE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf()
        })
}

/// Whether snapshots are written instead of compared (`INSTA_UPDATE=always`,
/// as insta reads it).
pub fn recording_snapshots() -> bool {
    std::env::var("INSTA_UPDATE").as_deref() == Ok("always")
}

/// Whether a versioned snapshot is asked for scenario `name` even without
/// one on disk (`HARNESS_SNAPSHOT_VERSIONED`, comma-separated names): how a
/// real cluster of an older minor records its own.
pub fn versioned_snapshot_asked(name: &str) -> bool {
    std::env::var("HARNESS_SNAPSHOT_VERSIONED")
        .map(|v| v.split(',').any(|n| n.trim() == name))
        .unwrap_or(false)
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
    fn a_flag_wins_over_its_variable() {
        let env = read(&[
            ("HARNESS_WEBHOOK", "in-cluster"),
            ("HARNESS_RUN_ID", "env1"),
            ("HARNESS_KIND_CLUSTER", "from-env"),
        ])
        .unwrap();
        let flags = RunFlags {
            backend: Some(Backend::Kubeconfig),
            parallel: 2,
            repeat: 3,
            webhook: Some(Webhook::Host),
            run_id: Some("flag1".into()),
            injector_per_scenario: true,
            ..RunFlags::default()
        };
        let o = flags.over(env.clone()).unwrap();
        assert_eq!(o.backend, Backend::Kubeconfig);
        assert_eq!((o.parallel, o.passes), (2, 3));
        assert_eq!(o.webhook, Webhook::Host);
        assert_eq!(o.run_id.as_str(), "flag1");
        assert!(!o.share_injectors);
        // A flag not given leaves its variable's value.
        assert_eq!(o.kind.cluster.as_deref(), Some("from-env"));
        let e = RunFlags {
            run_id: Some("Bad!".into()),
            ..RunFlags::default()
        }
        .over(env)
        .unwrap_err();
        assert!(e.to_string().starts_with("--run-id \"Bad!\": "), "{e}");
    }

    #[test]
    fn the_backend_comes_from_its_variable_else_the_sim() {
        let vars = |b: &'static str| move |k: &str| (k == "HARNESS_BACKEND").then(|| b.to_string());
        assert_eq!(
            RunOptions::read_backend(&vars("")).unwrap().backend,
            Backend::Sim
        );
        assert_eq!(
            RunOptions::read_backend(&vars("kind")).unwrap().backend,
            Backend::Kind
        );
        let e = RunOptions::read_backend(&vars("minikube")).unwrap_err();
        assert_eq!(e.variable, "HARNESS_BACKEND");
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
