//! What a scenario gave: its result when it ran to the end ([`ScenarioRun`],
//! whose failures are the unmet expectations), else the error that stopped
//! it; and, over repeated passes, the scenarios whose snapshot changed.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::Observed;
use crate::error::RunError;

/// What one scenario gave: it ran to its end (its expectations may still
/// have failed), or an error of a [`crate::error::ErrorKind`] stopped it.
pub type Outcome = std::result::Result<ScenarioRun, RunError>;

/// The outcome of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    pub name: String,
    pub path: PathBuf,
    pub observed: Observed,
    /// The normalized document the snapshot holds.
    pub snapshot: Value,
    /// Unmet expectations; empty means passed.
    pub failures: Vec<String>,
    /// One line per webhook call, with the injector's decision (sim).
    pub admission_log: Vec<String>,
    /// The injector's own counters: injections, skips by reason, denials.
    pub decisions: Vec<String>,
    /// The annotation that marks an injected pod in this scenario's config.
    pub status_annotation: String,
    /// Whether the webhook under test was the built-in injector, whose
    /// counters `decisions` holds.
    pub builtin_subject: bool,
    /// What a real cluster adds to a failure report: failing containers'
    /// logs, events, the injector's logs (kind).
    pub diagnostics: Vec<String>,
    pub elapsed: Duration,
}

impl ScenarioRun {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// Pods carrying the injector's status annotation.
    pub fn injected_count(&self) -> usize {
        let key = self.status_annotation.as_str();
        self.observed
            .pods
            .iter()
            .filter(|p| p["metadata"]["annotations"][key].is_string())
            .count()
    }
}

/// Progress of a parallel run, for the live display.
#[derive(Debug, Clone)]
pub enum Progress {
    Started(String),
    Finished {
        name: String,
        passed: bool,
        elapsed: Duration,
    },
}

/// A scenario whose snapshot was not the same in every pass: its name and
/// the differing lines between the first pass and the first that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nondeterministic {
    pub name: String,
    /// 1-based: the pass that differs from pass 1.
    pub pass: usize,
    pub diff: String,
}

/// The scenarios whose snapshots differ between passes (a scenario that
/// failed to run in some pass is not compared there).
pub fn nondeterministic(passes: &[Vec<(PathBuf, Outcome)>]) -> Vec<Nondeterministic> {
    let Some((first, rest)) = passes.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, (_, result)) in first.iter().enumerate() {
        let Ok(base) = result else { continue };
        let differs = rest
            .iter()
            .enumerate()
            .find_map(|(k, pass)| match pass.get(i) {
                Some((_, Ok(other))) if other.snapshot != base.snapshot => Some((k + 2, other)),
                _ => None,
            });
        if let Some((pass, other)) = differs {
            out.push(Nondeterministic {
                name: base.name.clone(),
                pass,
                diff: crate::snapshot::versioned::diff(&base.snapshot, &other.snapshot),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(name: &str, snapshot: Value) -> (PathBuf, Outcome) {
        let run = ScenarioRun {
            name: name.to_string(),
            path: PathBuf::from(format!("{name}.yaml")),
            observed: Observed::default(),
            snapshot,
            failures: Vec::new(),
            admission_log: Vec::new(),
            decisions: Vec::new(),
            status_annotation: String::new(),
            builtin_subject: true,
            diagnostics: Vec::new(),
            elapsed: Duration::ZERO,
        };
        (run.path.clone(), Ok(run))
    }

    #[test]
    fn a_snapshot_that_changes_between_passes_is_named_with_its_lines() {
        let steady = serde_json::json!({"ready": ["ns/a 1/1 Running"]});
        let before = serde_json::json!({"ready": ["ns/web-0 1/2 CrashLoopBackOff"]});
        let after = serde_json::json!({"ready": ["ns/web-0 1/2 CrashLoopBackOff", "ns/web-1 1/2 CrashLoopBackOff"]});
        let passes = vec![
            vec![
                run_with("steady", steady.clone()),
                run_with("racy", before.clone()),
            ],
            vec![run_with("steady", steady.clone()), run_with("racy", before)],
            vec![run_with("steady", steady), run_with("racy", after)],
        ];
        let varying = nondeterministic(&passes);
        assert_eq!(varying.len(), 1, "{varying:?}");
        assert_eq!((varying[0].name.as_str(), varying[0].pass), ("racy", 3));
        assert!(
            varying[0].diff.contains("+- ns/web-1 1/2 CrashLoopBackOff"),
            "{}",
            varying[0].diff
        );
        // A scenario that could not run in a pass is not compared there.
        let failed = vec![
            vec![run_with("x", serde_json::json!(1))],
            vec![(
                PathBuf::from("x.yaml"),
                Err(RunError::classify(anyhow::anyhow!("boom"))),
            )],
        ];
        assert!(nondeterministic(&failed).is_empty());
    }
}
