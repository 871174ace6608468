//! A scenario on the simulated cluster, its subject on this host.

use std::time::Instant;

use anyhow::Result;

use super::lifecycle::{nothing_to_remove, run_with};
use crate::cluster::sim::SimCluster;
use crate::cluster::Removal;
use crate::error::Phase;
use crate::isolation::{Isolation, RunId};
use crate::outcome::ScenarioRun;
use crate::scenario::Scenario;
use crate::subject::LocalSubject;
use crate::version::Minor;

/// On the sim; with `names`, through a run's renaming, as on a real
/// cluster (the test that shows the renaming changes no snapshot).
pub(super) async fn run_on_sim(
    scenario: &Scenario,
    minor: Minor,
    run: &RunId,
    names: Option<&Isolation>,
) -> (Result<ScenarioRun>, Removal) {
    let started = Instant::now();
    let config = match names {
        Some(n) => n.config(&scenario.injector_config),
        None => scenario.injector_config.clone(),
    };
    // The sim renames nothing, but a local container subject carries the
    // run's label, for the sweep of an interrupted run.
    let subject = match LocalSubject::start(scenario, config, run.as_str()).await {
        Ok(s) => s,
        Err(e) => return (Err(e.context(Phase::Setup)), nothing_to_remove()),
    };
    let mut cluster = SimCluster::of_version(scenario.name(), minor);
    cluster.preload_images(&scenario.header.preload_images);
    run_with(scenario, cluster, subject, names, started).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario_files::load_scenario;
    use std::path::Path;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_runs_renaming_changes_no_snapshot() {
        // Every scenario on the sim, as itself and through the renaming a
        // real cluster gets (namespaces with the run's suffix, objects in
        // kube-system renamed, selectors and ignoredNamespaces following):
        // the same snapshot and the same verdict, or the renaming leaks.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let run = crate::isolation::RunId::parse("zq7").unwrap();
        let mut renamed_any = false;
        for path in crate::scenario::discover(&dir).unwrap() {
            let s = load_scenario(&path).unwrap();
            let names = Isolation::for_run(&run, &s);
            renamed_any |= names.namespace(s.namespaces().iter().next().unwrap())
                != *s.namespaces().iter().next().unwrap();
            let minor = crate::version::newest();
            let (plain, removal) = run_on_sim(&s, minor, &run, None).await;
            removal.await.unwrap();
            let (isolated, removal) = run_on_sim(&s, minor, &run, Some(&names)).await;
            removal.await.unwrap();
            match (plain, isolated) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(
                        b.snapshot,
                        a.snapshot,
                        "{}: {}",
                        path.display(),
                        crate::snapshot::versioned::diff(&a.snapshot, &b.snapshot)
                    );
                    assert_eq!(a.failures, b.failures, "{}", path.display());
                }
                (a, b) => panic!(
                    "{}: as itself {:?}, renamed {:?}",
                    path.display(),
                    a.err(),
                    b.err()
                ),
            }
        }
        assert!(renamed_any);
    }
}
