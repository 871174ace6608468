//! The environment a run's scenarios meet: one type for every backend, with
//! one lifecycle. [`Environment::up`] brings up what the backend needs (a
//! kind cluster, the fake kubelet, a client); [`Environment::plan`] is told
//! which scenarios a pass runs; [`Environment::run`] runs one of them;
//! [`Environment::down`] takes down what `up` brought; and
//! [`Environment::sweep`] removes what an interrupted run left behind.
//! What differs by backend is which cluster and which subject a scenario
//! gets: [`Place`], matched once, in [`Environment::run`].

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use super::{host, in_cluster, sim};
use crate::cluster::kind::KindEnvironment;
use crate::cluster::{Backend, Removal};
use crate::error::{Phase, RunError};
use crate::fake_kubelet::FakeKubelet;
use crate::options::{RunOptions, Webhook};
use crate::outcome::Outcome;
use crate::scenario::Scenario;
use crate::subject::SharedInjectors;
use crate::version::Minor;

/// Where a scenario's webhook runs, against which cluster.
enum Place {
    /// The simulated cluster, modelling this Kubernetes minor.
    Sim(Minor),
    /// The cluster in KUBECONFIG, with the injector in this process on
    /// 127.0.0.1 and the fake kubelet running pods.
    Host,
    /// The cluster `client` talks to, with the injector deployed in it and
    /// real kubelets: kind, or any cluster with `HARNESS_WEBHOOK=in-cluster`.
    /// `shared` holds the run's injectors that scenarios share (none when
    /// every scenario gets its own).
    InCluster {
        client: kube::Client,
        shared: Option<Arc<SharedInjectors>>,
    },
}

/// What a run holds for its whole length: where its scenarios run, and the
/// kind cluster and fake kubelet it brought up. Dropped (on Ctrl-C too),
/// they go.
pub struct Environment {
    place: Place,
    options: RunOptions,
    kind: Option<KindEnvironment>,
    _kubelet: Option<FakeKubelet>,
}

impl Environment {
    /// Brings up what `options.backend` needs, with `images` on its nodes.
    pub async fn up(images: &[String], options: &RunOptions) -> Result<Environment> {
        let started = Instant::now();
        let env = Environment::bring_up(images, options)
            .await
            .context(Phase::Cluster)?;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(ms, backend = options.backend.as_str(), "cluster up");
        Ok(env)
    }

    async fn bring_up(images: &[String], options: &RunOptions) -> Result<Environment> {
        let env = |place, kind, kubelet| Environment {
            place,
            options: options.clone(),
            kind,
            _kubelet: kubelet,
        };
        Ok(match options.backend {
            Backend::Sim => env(Place::Sim(options.sim_minor), None, None),
            // One cluster for the whole run, torn down at the end (or when
            // this is dropped, on Ctrl-C).
            Backend::Kind => {
                let kind = KindEnvironment::up(&options.kind, images).await?;
                env(in_cluster(kind.client().clone(), options), Some(kind), None)
            }
            Backend::Kubeconfig => match options.webhook {
                Webhook::InCluster => env(
                    in_cluster(crate::cluster::kubeconfig::connect_client().await?, options),
                    None,
                    None,
                ),
                // A cluster without nodes of its own needs the fake kubelet,
                // unless the options say one runs already.
                Webhook::Host => {
                    let kubelet = if options.fake_kubelet {
                        let client = crate::cluster::kubeconfig::connect_client().await?;
                        Some(crate::fake_kubelet::start(client, images).await?)
                    } else {
                        None
                    };
                    env(Place::Host, None, kubelet)
                }
            },
        })
    }

    /// The options it was brought up with.
    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// Tells the environment which scenarios a pass will run, so what they
    /// share goes when the last of them is done.
    pub async fn plan(&self, scenarios: &[Result<Scenario>]) {
        if let Place::InCluster {
            shared: Some(shared),
            ..
        } = &self.place
        {
            shared.plan(scenarios.iter().flatten()).await;
        }
    }

    /// Frees the node of what the run keeps between scenarios (shared
    /// injectors), for a `serial` scenario, which needs it to itself.
    pub async fn make_room(&self) -> Result<()> {
        match &self.place {
            Place::InCluster {
                shared: Some(shared),
                ..
            } => shared.remove().await,
            _ => Ok(()),
        }
    }

    /// Runs one scenario. The result comes back with the removal of what the
    /// scenario made on a real cluster, not yet awaited: the result is known
    /// before its namespaces are gone (several seconds: the injector's 5 s
    /// preStop, the pods' grace), and a suite runs the next scenario
    /// meanwhile.
    pub async fn run(&self, scenario: &Scenario) -> (Outcome, Removal) {
        let run_id = &self.options.run_id;
        let (result, removal) = match &self.place {
            Place::Sim(minor) => sim::run_on_sim(scenario, *minor, run_id, None).await,
            Place::Host => host::run_with_host_injector(scenario, run_id).await,
            Place::InCluster { client, shared } => {
                in_cluster::run_in_cluster(scenario, client, shared.as_ref(), &self.options).await
            }
        };
        let removal: Removal = Box::pin(async move { removal.await.context(Phase::Cleanup) });
        (result.map_err(RunError::classify), removal)
    }

    /// Takes down what [`Environment::up`] brought up.
    pub async fn down(self) {
        let started = Instant::now();
        // Shared injectors go with a cluster the run deletes; on any other,
        // their namespaces are removed first.
        let deleting = self.kind.as_ref().is_some_and(|k| k.deletes_cluster());
        if let Place::InCluster {
            shared: Some(shared),
            ..
        } = &self.place
        {
            if !deleting {
                if let Err(e) = shared.remove().await {
                    eprintln!("removing the shared injectors failed: {e:#}");
                }
            }
        }
        if let Some(env) = self.kind {
            if let Err(e) = env.down().await {
                eprintln!("deleting the kind cluster failed: {e:#}");
            }
        }
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(ms, deleted = deleting, "cluster down");
    }

    /// Removes what an interrupted run of `scenarios` with `options` may have
    /// left, once its environment was dropped mid-way: a kind cluster the run
    /// created went with it; a reused one, and the kubeconfig backend's
    /// cluster, are swept of the run's objects; image subjects run as local
    /// containers on every backend but kind, and are swept everywhere.
    pub async fn sweep(options: &RunOptions, scenarios: &[Scenario]) -> Result<()> {
        let run = &options.run_id;
        let cluster = match (options.backend, &options.kind.cluster) {
            (Backend::Kubeconfig, _) => crate::cluster::kubeconfig::sweep(run, scenarios).await,
            (Backend::Kind, Some(name)) => {
                crate::cluster::kind::environment::sweep_reused(name, run, scenarios).await
            }
            _ => Ok(()),
        };
        let containers = crate::subject::sweep_containers(run.as_str()).await;
        match (cluster, containers) {
            (Ok(()), Ok(_)) => Ok(()),
            (Err(e), Ok(_)) | (Ok(()), Err(e)) => Err(e),
            (Err(a), Err(b)) => Err(anyhow::anyhow!("{a:#}; {b:#}")),
        }
    }
}

/// The in-cluster place on the cluster `client` talks to.
fn in_cluster(client: kube::Client, options: &RunOptions) -> Place {
    let shared = options.share_injectors.then(|| {
        Arc::new(SharedInjectors::new(
            client.clone(),
            options.run_id.clone(),
            options.injector_image.clone(),
        ))
    });
    Place::InCluster { client, shared }
}
