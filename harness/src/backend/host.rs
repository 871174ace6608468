//! A scenario on the cluster in KUBECONFIG, its webhook in this process on
//! 127.0.0.1 (an apiserver on this host can call it), pods on the fake
//! kubelet.

use std::time::Instant;

use anyhow::Result;

use super::lifecycle::{nothing_to_remove, run_with};
use crate::cluster::kubeconfig::{KubeconfigCluster, Kubelet};
use crate::cluster::Removal;
use crate::error::Phase;
use crate::isolation::{Isolation, RunId};
use crate::outcome::ScenarioRun;
use crate::scenario::Scenario;
use crate::subject::LocalSubject;

/// On the cluster in KUBECONFIG, the injector in this process.
pub(super) async fn run_with_host_injector(
    scenario: &Scenario,
    run: &RunId,
) -> (Result<ScenarioRun>, Removal) {
    let started = Instant::now();
    let names = Isolation::for_run(run, scenario);
    let client = match crate::cluster::kubeconfig::connect_client().await {
        Ok(c) => c,
        Err(e) => {
            return (
                Err(anyhow::Error::new(e).context(Phase::Cluster)),
                nothing_to_remove(),
            )
        }
    };
    let config = names.config(&scenario.injector_config);
    let subject = match LocalSubject::start(scenario, config, run.as_str()).await {
        Ok(s) => s,
        Err(e) => return (Err(e.context(Phase::Setup)), nothing_to_remove()),
    };
    let cluster = KubeconfigCluster::with_client(
        client,
        scenario.name(),
        run,
        names.cluster_namespaces(scenario),
        Kubelet::Fake,
    );
    run_with(scenario, cluster, subject, Some(&names), started).await
}
