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
use injector_harness::versioned_snapshots::{self, OlderMinor};

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

/// The snapshot suffix for a result from a real cluster of `minor`: the
/// minor's label when it is older than the newest and a versioned snapshot
/// exists, or when HARNESS_SNAPSHOT_VERSIONED lists the scenario (comma-
/// separated names: to record one from a real cluster); else none, the
/// shared snapshot.
fn real_cluster_suffix(name: &str, minor: Option<Minor>) -> String {
    let Some(minor) = minor.filter(|m| *m != version::newest()) else {
        return String::new();
    };
    let versioned = versioned_snapshots::versioned_file(&snapshots_dir(), name, minor).exists();
    let asked = std::env::var("HARNESS_SNAPSHOT_VERSIONED")
        .map(|v| v.split(',').any(|n| n.trim() == name))
        .unwrap_or(false);
    if versioned || asked {
        minor.label()
    } else {
        String::new()
    }
}

fn snapshots_dir() -> PathBuf {
    workspace().join("snapshots")
}

/// Whether insta writes snapshots instead of comparing (`INSTA_UPDATE=always`).
fn recording() -> bool {
    std::env::var("INSTA_UPDATE").as_deref() == Ok("always")
}

/// Checks every result: its expectations, then its snapshot. `reference`
/// holds the newest minor's results on the sim, against which an older
/// minor's are judged (see `versioned_snapshots`).
fn check(results: Results, reference: Option<&Results>) {
    let mut failed = Vec::new();
    // insta's glob panics at its end when any snapshot differs; catch that,
    // so unmet expectations are reported alongside a snapshot diff rather
    // than hidden behind it.
    let snapshots = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        insta::glob!("../../scenarios", "*.yaml", |path| {
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let key = path.canonicalize().unwrap();
            let run = match results.get(&key) {
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
            let older = minor.filter(|m| *m != version::newest());
            let newest_run = reference
                .and_then(|r| r.get(&key))
                .and_then(|r| r.as_ref().ok());
            let suffix = match (older, newest_run) {
                (Some(m), Some(newest_run)) => {
                    match versioned_snapshots::older_minor(
                        &snapshots_dir(),
                        &name,
                        m,
                        &run.snapshot,
                        &newest_run.snapshot,
                    ) {
                        OlderMinor::SameAsNewest => return,
                        OlderMinor::Versioned { suffix } => {
                            let file =
                                versioned_snapshots::versioned_file(&snapshots_dir(), &name, m);
                            if !file.exists() && !recording() {
                                failed.push(format!(
                                    "{name} on {m} differs from {} (the shared snapshot's minor); if {m} really behaves so, \
                                     record {} with INSTA_UPDATE=always cargo test -p injector-harness --test scenarios \
                                     (insta left it as .snap.new for review):\n{}",
                                    version::newest(),
                                    file.display(),
                                    versioned_snapshots::diff(&newest_run.snapshot, &run.snapshot)
                                ));
                            }
                            suffix
                        }
                        OlderMinor::Stale { file } => {
                            if recording() {
                                std::fs::remove_file(&file).unwrap_or_else(|e| {
                                    panic!("{}: cannot remove: {e}", file.display())
                                });
                            } else {
                                failed.push(format!(
                                    "{}: {m} now gives the same result as {}; delete it (INSTA_UPDATE=always does)",
                                    file.display(),
                                    version::newest()
                                ));
                            }
                            return;
                        }
                    }
                }
                _ => real_cluster_suffix(&name, minor),
            };
            insta::with_settings!({
                snapshot_path => snapshots_dir(),
                prepend_module_to_snapshot => false,
                snapshot_suffix => suffix,
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
