//! Snapshot tests of scenario results with insta, for this repository's
//! tests and for a user's own `#[test]`:
//!
//! ```no_run
//! use injector_harness::{cluster::Backend, run, scenario, snapshot_test};
//! # async fn example() -> anyhow::Result<()> {
//! let text = std::fs::read_to_string("scenarios/my-webhook.yaml")?;
//! let base = scenario::load_base_config("scenarios/base/injector.yaml".as_ref())?;
//! let s = scenario::parse("scenarios/my-webhook.yaml".as_ref(), &text, &base)?;
//! let result = run::run_scenario(&s, &run::RunOptions::for_backend(Backend::Sim)?).await;
//! snapshot_test::check_one(&result, "snapshots".as_ref(), None).map_err(anyhow::Error::msg)?;
//! # Ok(()) }
//! ```
//!
//! A result is held to `<snapshots>/<scenario>.snap`, or to a versioned
//! file on an older Kubernetes minor where that minor behaves differently
//! ([`crate::versioned_snapshots`]). Expectations are checked first and
//! reported with the snapshot's diff, not hidden behind it.

use std::path::Path;

use crate::run::{Outcome, ScenarioRun};
use crate::version;
use crate::versioned_snapshots::{self, OlderMinor};

/// Whether insta writes snapshots instead of comparing (`INSTA_UPDATE=always`).
pub fn recording() -> bool {
    std::env::var("INSTA_UPDATE").as_deref() == Ok("always")
}

/// Scenarios to record a versioned snapshot for even without one on disk
/// (`HARNESS_SNAPSHOT_VERSIONED`, comma-separated names): how a real
/// cluster of an older minor records its own.
fn asked_versioned(name: &str) -> bool {
    std::env::var("HARNESS_SNAPSHOT_VERSIONED")
        .map(|v| v.split(',').any(|n| n.trim() == name))
        .unwrap_or(false)
}

/// Which file holds a result: `None` when none needs asserting (an older
/// minor that gave the newest minor's result), else the suffix (empty: the
/// shared file). `Err` is a problem to report: a versioned file that is
/// missing or stale.
fn suffix_for(
    snapshots: &Path,
    run: &ScenarioRun,
    newest: Option<&ScenarioRun>,
) -> Result<Option<String>, String> {
    let name = run.name.as_str();
    let minor = run.observed.kubernetes;
    let Some(older) = minor.filter(|m| *m != version::newest()) else {
        return Ok(Some(String::new()));
    };
    let Some(newest) = newest else {
        // A real cluster of an older minor, with nothing to compare with:
        // its versioned file where one exists or is asked for.
        let versioned = versioned_snapshots::versioned_file(snapshots, name, older).exists();
        return Ok(Some(if versioned || asked_versioned(name) {
            older.label()
        } else {
            String::new()
        }));
    };
    match versioned_snapshots::older_minor(snapshots, name, older, &run.snapshot, &newest.snapshot)
    {
        OlderMinor::SameAsNewest => Ok(None),
        OlderMinor::Versioned { suffix } => {
            let file = versioned_snapshots::versioned_file(snapshots, name, older);
            if !file.exists() && !recording() {
                return Err(format!(
                    "{name} on {older} differs from {} (the shared snapshot's minor); if {older} really behaves so, \
                     record {} with INSTA_UPDATE=always (insta leaves it as .snap.new for review):\n{}",
                    version::newest(),
                    file.display(),
                    versioned_snapshots::diff(&newest.snapshot, &run.snapshot)
                ));
            }
            Ok(Some(suffix))
        }
        OlderMinor::Stale { file } => {
            if recording() {
                std::fs::remove_file(&file)
                    .map_err(|e| format!("{}: cannot remove: {e}", file.display()))?;
                Ok(None)
            } else {
                Err(format!(
                    "{}: {older} now gives the same result as {}; delete it (INSTA_UPDATE=always does)",
                    file.display(),
                    version::newest()
                ))
            }
        }
    }
}

/// Asserts `run`'s snapshot with insta against `<snapshots>/<name><suffix>.snap`.
/// Panics as insta does when it differs (inside `insta::glob!`, at the glob's end).
pub fn assert_snapshot(run: &ScenarioRun, snapshots: &Path, suffix: &str) {
    insta::with_settings!({
        snapshot_path => snapshots,
        prepend_module_to_snapshot => false,
        snapshot_suffix => suffix,
        input_file => &run.path,
        description => format!("scenario {}: pods, READY and refusals after settling", run.name),
        omit_expression => true,
    }, {
        insta::assert_yaml_snapshot!(run.name.as_str(), run.snapshot);
    });
}

/// Checks one scenario's outcome: it ran, its expectations held, and its
/// snapshot matches (asserted with insta, which panics when it differs).
/// `newest` is the same scenario's result on the newest minor, when `result`
/// is the sim's on an older one. `Err` says what failed other than the
/// snapshot; the snapshot is asserted even then.
pub fn check_one(
    result: &Outcome,
    snapshots: &Path,
    newest: Option<&ScenarioRun>,
) -> Result<(), String> {
    let run = match result {
        Ok(run) => run,
        Err(e) => return Err(format!("[{}] {e}", e.kind)),
    };
    let on = run
        .observed
        .kubernetes
        .map(|m| format!(" on {m}"))
        .unwrap_or_default();
    let mut problems = Vec::new();
    if !run.passed() {
        problems.push(format!("{}{on}:\n{}", run.name, run.report()));
    }
    match suffix_for(snapshots, run, newest) {
        Ok(Some(suffix)) => assert_snapshot(run, snapshots, &suffix),
        Ok(None) => {}
        Err(problem) => problems.push(problem),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
