//! Holding scenario results to their snapshot files: which file a result
//! is held to (the shared one, or a minor's own, [`super::versioned`]), and
//! the two ways of holding it: with insta, from a test
//! ([`check_scenario_snapshot!`](crate::check_scenario_snapshot)), or
//! without a test runner, from the CLI ([`check_file`]). Both render the
//! result alike ([`super::file::render`]), so either checks what the other
//! wrote. Expectations are checked first and reported with the snapshot's
//! diff, not hidden behind it.

use std::path::{Path, PathBuf};

use super::file::{self, Header, Verdict};
use super::versioned::{self as versioned_snapshots, OlderMinor};
use crate::outcome::{Outcome, ScenarioRun};
use crate::version;

/// Whether insta writes snapshots instead of comparing (`INSTA_UPDATE=always`).
pub fn recording() -> bool {
    crate::options::recording_snapshots()
}

/// Scenarios to record a versioned snapshot for even without one on disk
/// (`HARNESS_SNAPSHOT_VERSIONED`, comma-separated names): how a real
/// cluster of an older minor records its own.
fn asked_versioned(name: &str) -> bool {
    crate::options::versioned_snapshot_asked(name)
}

/// Which file holds a result: `None` when none needs asserting (an older
/// minor that gave the newest minor's result), else the suffix (empty: the
/// shared file). `Err` is a problem to report: a versioned file that is
/// missing or stale.
fn suffix_for(
    snapshots: &Path,
    run: &ScenarioRun,
    newest: Option<&ScenarioRun>,
    recording: bool,
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
            if !file.exists() && !recording {
                return Err(format!(
                    "{name} on {older} differs from {} (the shared snapshot's minor); if {older} really behaves so, \
                     record {} (INSTA_UPDATE=always, or run --accept; otherwise it is left as .snap.new for review):\n{}",
                    version::newest(),
                    file.display(),
                    versioned_snapshots::diff(&newest.snapshot, &run.snapshot)
                ));
            }
            Ok(Some(suffix))
        }
        OlderMinor::Stale { file } => {
            if recording {
                std::fs::remove_file(&file)
                    .map_err(|e| format!("{}: cannot remove: {e}", file.display()))?;
                Ok(None)
            } else {
                Err(format!(
                    "{}: {older} now gives the same result as {}; delete it (INSTA_UPDATE=always or run --accept does)",
                    file.display(),
                    version::newest()
                ))
            }
        }
    }
}

/// One result's snapshot, ready to be held to its file.
#[derive(Debug, Clone)]
pub struct Assertion {
    /// The scenario's name: the file is `<name><suffix>.snap`.
    pub name: String,
    /// Empty (the shared file) or `@v1.<minor>` (an older minor's own).
    pub suffix: String,
    /// The rendered snapshot.
    pub text: String,
    pub description: String,
    /// The scenario file.
    pub input_file: PathBuf,
}

impl Assertion {
    /// `<dir>/<name><suffix>.snap`: the file insta names for it.
    pub fn file(&self, snapshots: &Path) -> PathBuf {
        let suffix = if self.suffix.is_empty() {
            String::new()
        } else {
            format!("@{}", self.suffix)
        };
        snapshots.join(format!("{}{suffix}.snap", self.name))
    }
}

/// A scenario's outcome, checked but for its snapshot: what went wrong
/// besides it, and the snapshot to assert, if one is to be.
#[derive(Debug)]
pub struct Prepared {
    pub problems: Vec<String>,
    pub assertion: Option<Assertion>,
}

impl Prepared {
    /// `Err` says everything that failed other than the snapshot.
    pub fn finish(self) -> Result<(), String> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems.join("\n"))
        }
    }
}

fn assertion(run: &ScenarioRun, suffix: String) -> Assertion {
    Assertion {
        name: run.name.clone(),
        suffix,
        text: file::render(&run.snapshot),
        description: format!(
            "scenario {}: pods, READY and refusals after settling",
            run.name
        ),
        input_file: run.path.clone(),
    }
}

/// Checks one scenario's outcome: it ran and its expectations held; and
/// decides which snapshot, if any, it is held to in `snapshots`. `newest` is
/// the same scenario's result on the newest minor, when `result` is the
/// sim's on an older one. `recording` (insta's `INSTA_UPDATE=always`, the
/// CLI's `--accept`) lets a new versioned file be written and a stale one
/// be removed.
pub fn prepare(
    result: &Outcome,
    snapshots: &Path,
    newest: Option<&ScenarioRun>,
    recording: bool,
) -> Prepared {
    let run = match result {
        Ok(run) => run,
        Err(e) => {
            return Prepared {
                problems: vec![format!("[{}] {e}", e.kind)],
                assertion: None,
            }
        }
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
    let assertion = match suffix_for(snapshots, run, newest, recording) {
        Ok(suffix) => suffix.map(|suffix| assertion(run, suffix)),
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    Prepared {
        problems,
        assertion,
    }
}

/// Checks a scenario's outcome as a test does (expectations, then its
/// snapshot asserted with insta, which panics at a difference as insta
/// does); `Err` says what failed other than the snapshot. The snapshot
/// directory is relative to the calling crate's manifest directory, as
/// insta users expect, and the header names the scenario and its file.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use injector_harness::{cluster::Backend, run};
/// let s = run::load_scenario("scenarios/my-webhook.yaml".as_ref())?;
/// let result = run::run_scenario(&s, &run::RunOptions::for_backend(Backend::Sim)?).await;
/// injector_harness::check_scenario_snapshot!(result, "snapshots").map_err(anyhow::Error::msg)?;
/// # Ok(()) }
/// ```
///
/// A third argument is the scenario's result on the newest minor, when
/// `result` is the sim's on an older one (this repository's own suite).
#[macro_export]
macro_rules! check_scenario_snapshot {
    ($outcome:expr, $dir:expr $(,)?) => {
        $crate::check_scenario_snapshot!($outcome, $dir, ::core::option::Option::None)
    };
    ($outcome:expr, $dir:expr, $newest:expr $(,)?) => {{
        // Expanded in the caller's crate: its manifest directory, and insta
        // sees the caller's file as the assertion's source.
        let dir = ::std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join($dir);
        let prepared = $crate::snapshot::check::prepare(
            &$outcome,
            &dir,
            $newest,
            $crate::snapshot::check::recording(),
        );
        if let ::core::option::Option::Some(a) = &prepared.assertion {
            $crate::__insta::with_settings!({
                snapshot_path => &dir,
                prepend_module_to_snapshot => false,
                snapshot_suffix => a.suffix.as_str(),
                input_file => &a.input_file,
                description => a.description.as_str(),
                omit_expression => true,
            }, {
                $crate::__insta::assert_snapshot!(a.name.as_str(), a.text.as_str());
            });
        }
        prepared.finish()
    }};
}

/// Holds a scenario's outcome to its snapshot file in `snapshots` without a
/// test runner (the CLI): a difference or a new result is written as
/// `.snap.new` for `cargo insta review`, or, with `accept`, to the file.
/// `None` when nothing is to be held: the scenario did not run to its end,
/// or it needs no file (an older minor that gave the newest's result).
/// Expectations are not checked here; the run's report has them.
pub fn check_file(
    result: &Outcome,
    snapshots: &Path,
    accept: bool,
) -> Option<Result<Verdict, String>> {
    let run = result.as_ref().ok()?;
    let a = match suffix_for(snapshots, run, None, accept) {
        Ok(suffix) => assertion(run, suffix?),
        Err(problem) => return Some(Err(problem)),
    };
    let input = file::display_path(&a.input_file);
    let header = Header {
        source: input.clone(),
        description: a.description.clone(),
        input_file: input,
    };
    Some(file::check(&a.file(snapshots), &header, &a.text, accept))
}

/// The snapshot directory of a scenario file when none is named: the
/// `snapshots/` directory in the scenario's directory if there is one, else
/// the one beside that directory (this repository's `scenarios/` and
/// `snapshots/`), else a new `snapshots/` in the scenario's directory.
pub fn default_dir(scenario: &Path) -> PathBuf {
    let dir = match scenario.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let inside = dir.join("snapshots");
    if inside.is_dir() {
        return inside;
    }
    // Absolute, so that `.` has a parent to look beside.
    let beside = std::path::absolute(dir)
        .ok()
        .and_then(|d| d.parent().map(|p| p.join("snapshots")))
        .filter(|b| b.is_dir());
    beside.unwrap_or(inside)
}

/// One scenario's result held to its snapshot file by [`check_files`].
#[derive(Debug)]
pub struct Checked {
    pub scenario: String,
    /// The directory its snapshot is in.
    pub dir: PathBuf,
    pub verdict: Result<Verdict, String>,
}

/// Holds every result of a run to its snapshot file ([`check_file`]): in
/// `dir`, or in each scenario's [`default_dir`]. Scenarios that did not run
/// to their end are left out; the run's report has their errors.
pub fn check_files(
    results: &[(PathBuf, Outcome)],
    dir: Option<&Path>,
    accept: bool,
) -> Vec<Checked> {
    results
        .iter()
        .filter_map(|(path, outcome)| {
            let dir = dir
                .map(Path::to_path_buf)
                .unwrap_or_else(|| default_dir(path));
            let verdict = check_file(outcome, &dir, accept)?;
            let scenario = outcome.as_ref().ok()?.name.clone();
            Some(Checked {
                scenario,
                dir,
                verdict,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_directory_is_inside_or_beside_the_scenarios() {
        let root = tempfile::tempdir().unwrap();
        let scenarios = root.path().join("scenarios");
        std::fs::create_dir_all(&scenarios).unwrap();
        let file = scenarios.join("x.yaml");
        // Neither: a new one inside.
        assert_eq!(default_dir(&file), scenarios.join("snapshots"));
        // Beside, as in this repository.
        std::fs::create_dir(root.path().join("snapshots")).unwrap();
        assert_eq!(default_dir(&file), root.path().join("snapshots"));
        // Inside wins.
        std::fs::create_dir(scenarios.join("snapshots")).unwrap();
        assert_eq!(default_dir(&file), scenarios.join("snapshots"));
    }
}
