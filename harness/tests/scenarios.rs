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

use injector_harness::cluster::Backend;
use injector_harness::run::{self, ScenarioRun};

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
    let results = runtime.block_on(run::run_all(&files, backend(), 8, Arc::new(|_| {})));
    results
        .into_iter()
        .map(|(p, r)| (p.canonicalize().unwrap(), r))
        .collect()
}

#[test]
fn scenarios() {
    let results = run_everything();
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
            if !run.passed() {
                failed.push(format!("{name}:\n{}", run.report()));
            }
            insta::with_settings!({
                snapshot_path => workspace().join("snapshots"),
                prepend_module_to_snapshot => false,
                snapshot_suffix => "",
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
