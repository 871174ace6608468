//! Every scenario in `scenarios/`, on the simulated cluster, through the real
//! injector over TLS: expectations must hold and the normalized result must
//! match its snapshot in `snapshots/`.
//!
//! With `--features e2e` the scenarios run on a kind cluster (created and
//! deleted by the run), or on the backend HARNESS_BACKEND names (sim, kind or
//! kubeconfig); the snapshots are the same files. HARNESS_JUNIT=FILE also
//! writes the run's JUnit report there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use injector_harness::cluster::Backend;
use injector_harness::run;
use injector_harness::version::{self, Minor};

/// Each scenario file's outcome, by canonical path.
type Results = BTreeMap<PathBuf, run::Outcome>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn backend() -> Backend {
    if cfg!(feature = "e2e") {
        std::env::var("HARNESS_BACKEND")
            .ok()
            .map(|b| b.parse().unwrap_or_else(|e| panic!("HARNESS_BACKEND: {e}")))
            .unwrap_or(Backend::Kind)
    } else {
        Backend::Sim
    }
}

/// Runs all scenarios at once (in parallel), so the snapshot assertions
/// below only look results up.
fn run_everything() -> Results {
    run_everything_as(None)
}

/// [`run_everything`] with the sim as Kubernetes `sim_minor` (default: the
/// newest supported, or HARNESS_K8S_VERSION).
fn run_everything_as(sim_minor: Option<Minor>) -> Results {
    let files = run::expand_paths(&[workspace().join("scenarios")]).unwrap();
    assert!(
        files.len() >= 13,
        "expected at least 13 scenarios, found {}",
        files.len()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut options = run::RunOptions::for_backend(backend()).unwrap_or_else(|e| panic!("{e}"));
    options.parallel = 8;
    if let Some(minor) = sim_minor {
        options.sim_minor = minor;
    }
    let results = runtime.block_on(run::run_once(&files, &options, Arc::new(|_| {})));
    // HARNESS_JUNIT: the run's JUnit report too, so a caller (kind/matrix.sh)
    // gets per-scenario results and the snapshot check from this one pass.
    if sim_minor.is_none() {
        if let Some(file) = std::env::var_os("HARNESS_JUNIT") {
            std::fs::write(&file, injector_harness::junit::render(&results)).unwrap_or_else(|e| {
                panic!(
                    "HARNESS_JUNIT {}: cannot write: {e}",
                    Path::new(&file).display()
                )
            });
        }
    }
    results
        .into_iter()
        .map(|(p, r)| (p.canonicalize().unwrap(), r))
        .collect()
}

#[test]
fn scenarios() {
    let results = run_everything();
    // On the sim as an older minor (HARNESS_K8S_VERSION), the newest
    // minor's results are what that minor is held to where it keeps no
    // versioned snapshot.
    let older_sim = backend() == Backend::Sim
        && run::RunOptions::for_backend(Backend::Sim)
            .is_ok_and(|o| o.sim_minor != version::newest());
    let reference = older_sim.then(|| run_everything_as(Some(version::newest())));
    check(results, reference.as_ref());
}

/// The sim as each older supported minor: every scenario against that
/// minor's versioned snapshot `snapshots/<scenario>@v1.<minor>.snap` where
/// it has one (recorded from a real cluster of that minor by
/// `kind/matrix.sh`, or from the sim), else against the newest minor's
/// result, which the shared snapshot holds.
#[test]
#[cfg(not(feature = "e2e"))]
fn scenarios_on_older_minors_in_the_sim() {
    let newest = version::newest();
    let reference = run_everything_as(Some(newest));
    for minor in version::supported() {
        if minor == newest {
            continue;
        }
        check(run_everything_as(Some(minor)), Some(&reference));
    }
}

fn snapshots_dir() -> PathBuf {
    workspace().join("snapshots")
}

/// Checks every result: it ran, its expectations held, its snapshot
/// matches (`check_scenario_snapshot!`). `reference` holds the newest
/// minor's results on the sim, against which an older minor's are judged.
fn check(results: Results, reference: Option<&Results>) {
    let mut failed = Vec::new();
    // insta's glob panics at its end when any snapshot differs; catch that,
    // so unmet expectations are reported alongside a snapshot diff rather
    // than hidden behind it.
    let snapshots = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        insta::glob!("../../scenarios", "*.yaml", |path| {
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let key = path.canonicalize().unwrap();
            let Some(result) = results.get(&key) else {
                panic!("{name} was not run")
            };
            let newest = reference
                .and_then(|r| r.get(&key))
                .and_then(|r| r.as_ref().ok());
            if let Err(problem) =
                injector_harness::check_scenario_snapshot!(result, snapshots_dir(), newest)
            {
                failed.push(format!("{name}: {problem}"));
            }
        });
    }));
    let snapshot_note = match &snapshots {
        Ok(()) => "",
        Err(_) => " (and snapshots differ: see the diffs above)",
    };
    assert!(
        failed.is_empty(),
        "scenario expectations failed{snapshot_note}:\n{}",
        failed.join("\n")
    );
    if let Err(panic) = snapshots {
        std::panic::resume_unwind(panic);
    }
}
