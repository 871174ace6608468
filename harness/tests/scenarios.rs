//! Every scenario in `scenarios/`, on the simulated cluster, through the real
//! injector over TLS: expectations must hold and the normalized result must
//! match its snapshot in `snapshots/`.
//!
//! With `--features e2e` the scenarios run on a kind cluster (created and
//! deleted by the run), or on the backend HARNESS_BACKEND names (sim, kind or
//! kubeconfig); the snapshots are the same files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use injector_harness::cluster::kind::KindOptions;
use injector_harness::cluster::Backend;
use injector_harness::run::{self, ScenarioRun};
use injector_harness::version::{self, Minor};

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
fn run_everything() -> BTreeMap<PathBuf, anyhow::Result<ScenarioRun>> {
    run_everything_as(None)
}

/// [`run_everything`] with the sim as Kubernetes `sim_minor` (default: the
/// newest supported, or HARNESS_K8S_VERSION).
fn run_everything_as(sim_minor: Option<Minor>) -> BTreeMap<PathBuf, anyhow::Result<ScenarioRun>> {
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
    let results = runtime.block_on(run::run_all_as(
        &files,
        backend(),
        8,
        &KindOptions::from_env(),
        sim_minor,
        Arc::new(|_| {}),
    ));
    results
        .into_iter()
        .map(|(p, r)| (p.canonicalize().unwrap(), r))
        .collect()
}

#[test]
fn scenarios() {
    check(run_everything());
}

/// The sim as each older supported minor: every scenario against that
/// minor's snapshot where the minor behaves differently (a versioned file
/// `snapshots/<scenario>@v1.<minor>.snap`, recorded from a real cluster of
/// that minor by `kind/matrix.sh`), else against the shared one.
#[test]
#[cfg(not(feature = "e2e"))]
fn scenarios_on_older_minors_in_the_sim() {
    let newest = version::newest();
    for minor in version::supported() {
        if minor == newest {
            continue;
        }
        check(run_everything_as(Some(minor)));
    }
}

/// The snapshot suffix for a scenario's result on Kubernetes `minor`: the
/// minor's label when it is older than the newest and a versioned snapshot
/// exists, or when HARNESS_SNAPSHOT_VERSIONED lists the scenario (comma-
/// separated names: to record one); else none, the shared snapshot.
fn snapshot_suffix(name: &str, minor: Option<Minor>) -> String {
    let Some(minor) = minor.filter(|m| *m != version::newest()) else {
        return String::new();
    };
    let label = minor.label();
    let versioned = workspace()
        .join("snapshots")
        .join(format!("{name}@{label}.snap"))
        .exists();
    let asked = std::env::var("HARNESS_SNAPSHOT_VERSIONED")
        .map(|v| v.split(',').any(|n| n.trim() == name))
        .unwrap_or(false);
    if versioned || asked {
        label
    } else {
        String::new()
    }
}

fn check(results: BTreeMap<PathBuf, anyhow::Result<ScenarioRun>>) {
    let mut failed = Vec::new();
    // insta's glob panics at its end when any snapshot differs; catch that,
    // so unmet expectations are reported alongside a snapshot diff rather
    // than hidden behind it.
    let snapshots = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        insta::glob!("../../scenarios", "*.yaml", |path| {
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let run = match results.get(&path.canonicalize().unwrap()) {
                Some(Ok(run)) => run,
                Some(Err(e)) => {
                    failed.push(format!("{name}: {e:#}"));
                    return;
                }
                None => panic!("{name} was not run"),
            };
            let minor = run.observed.kubernetes;
            let on = minor.map(|m| format!(" on {m}")).unwrap_or_default();
            if !run.passed() {
                failed.push(format!("{name}{on}:\n{}", run.report()));
            }
            insta::with_settings!({
                snapshot_path => workspace().join("snapshots"),
                prepend_module_to_snapshot => false,
                snapshot_suffix => snapshot_suffix(&name, minor),
                input_file => path,
                description => format!("scenario {name}: pods, READY and refusals after settling"),
                omit_expression => true,
            }, {
                insta::assert_yaml_snapshot!(name.as_str(), run.snapshot);
            });
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
