//! A scenario on a cluster with real kubelets (kind, or any cluster with
//! `HARNESS_WEBHOOK=in-cluster`), its webhook deployed in it and called
//! through a Service.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use super::lifecycle::{nothing_to_remove, run_with};
use crate::cluster::kubeconfig::{KubeconfigCluster, Kubelet};
use crate::cluster::Removal;
use crate::error::Phase;
use crate::isolation::{Isolation, SHARED_NAMESPACES};
use crate::options::RunOptions;
use crate::outcome::ScenarioRun;
use crate::scenario::Scenario;
use crate::subject::{InClusterInjector, SharedInjectors};

/// On the cluster `client` talks to, with real kubelets and its webhooks
/// calling an injector's Service: one of `shared` when the scenario may
/// share one, else a Deployment of its own.
pub(super) async fn run_in_cluster(
    scenario: &Scenario,
    client: &kube::Client,
    shared: Option<&Arc<SharedInjectors>>,
    options: &RunOptions,
) -> (Result<ScenarioRun>, Removal) {
    let started = Instant::now();
    let run = &options.run_id;
    let names = Isolation::for_run(run, scenario);
    let cluster = || {
        KubeconfigCluster::with_client(
            client.clone(),
            scenario.name(),
            run,
            names.cluster_namespaces(scenario),
            Kubelet::Real,
        )
        .require_reachable(scenario.header.injector.available)
    };
    if let Some(shared) = shared.filter(|_| SharedInjectors::fits(scenario)) {
        let own_namespaces = names
            .cluster_namespaces(scenario)
            .into_iter()
            .filter(|ns| !SHARED_NAMESPACES.contains(&ns.as_str()))
            .collect();
        let subject = match shared.get(scenario, own_namespaces).await {
            Ok(s) => s,
            Err(e) => return (Err(e.context(Phase::Setup)), nothing_to_remove()),
        };
        return run_with(scenario, cluster(), subject, Some(&names), started).await;
    }
    let deployed = InClusterInjector::for_scenario(
        client.clone(),
        scenario,
        run,
        &options.injector_image,
        &names.config(&scenario.injector_config),
    )
    .await;
    let subject = match deployed {
        Ok(i) => i,
        Err(e) => return (Err(e.context(Phase::Setup)), nothing_to_remove()),
    };
    run_with(scenario, cluster(), subject, Some(&names), started).await
}
