//! Running scenarios: the entry points a caller uses. [`run`] runs files on
//! one environment, pass after pass, as the CLI does; [`run_until`] does the
//! same but stops at a signal and sweeps what the run left; [`run_scenario`]
//! runs one scenario on an environment of its own, as a webhook author's
//! test does. How: [`crate::backend`] (bring up, run one scenario through
//! the lifecycle, take down), [`crate::pass`] (the schedule of a pass).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::Environment;
use crate::error::RunError;
use crate::pass::run_pass;
use crate::scenario::Scenario;

pub use crate::cluster::Removal;
pub use crate::options::{RunOptions, Webhook};
pub use crate::outcome::{nondeterministic, Nondeterministic, Outcome, Progress, ScenarioRun};
pub use crate::scenario_files::{
    expand_paths, load_scenario, parse_scenario, preload_images, scenario_images, BASE_CONFIG,
    PROBE_BASE_CONFIG,
};

/// Runs the scenario files at `paths` as `options` say, `options.passes`
/// times over on one cluster (a kind cluster is created once, and deleted
/// at the end unless kept): one result list per pass, each in the order of
/// `paths`. Comparing the passes' snapshots shows a scenario whose outcome
/// depends on timing ([`nondeterministic`]).
pub async fn run(
    paths: &[PathBuf],
    options: &RunOptions,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Vec<Vec<(PathBuf, Outcome)>> {
    let env = match Environment::up(&preload_images(paths), options).await {
        Ok(env) => Arc::new(env),
        Err(e) => {
            let e = RunError::classify(e);
            return vec![paths.iter().map(|p| (p.clone(), Err(e.shared()))).collect()];
        }
    };
    let mut out = Vec::new();
    for _ in 0..options.passes.max(1) {
        out.push(run_pass(paths, &env, progress.clone()).await);
    }
    // Every scenario's task has ended, so this is the last handle; were it
    // not, dropping it would still take the environment down.
    if let Ok(env) = Arc::try_unwrap(env) {
        env.down().await;
    }
    out
}

/// [`run`], one pass.
pub async fn run_once(
    paths: &[PathBuf],
    options: &RunOptions,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Vec<(PathBuf, Outcome)> {
    let options = RunOptions {
        passes: 1,
        ..options.clone()
    };
    run(paths, &options, progress)
        .await
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// Runs one scenario, loaded from a file or a string
/// ([`parse_scenario`]), on `options.backend`, with a cluster of its
/// own on kind: what a test of your own webhook calls.
pub async fn run_scenario(scenario: &Scenario, options: &RunOptions) -> Outcome {
    let env = Environment::up(&scenario_images(scenario), options)
        .await
        .map_err(RunError::classify)?;
    let (result, removal) = env.run(scenario).await;
    let removed = removal.await;
    env.down().await;
    let run = result?;
    removed.map_err(RunError::classify)?;
    Ok(run)
}

/// [`run`], until `stop` resolves first: then the run is dropped (a kind
/// cluster it created is deleted, the tools it started are killed) and what
/// its scenarios may have left on a real cluster is swept
/// ([`Environment::sweep`]); the result is `stop`'s value. What the CLI does
/// on Ctrl-C and SIGTERM, for any caller.
pub async fn run_until<T>(
    paths: &[PathBuf],
    options: &RunOptions,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
    stop: impl Future<Output = T>,
) -> Result<Vec<Vec<(PathBuf, Outcome)>>, T> {
    let stopped = tokio::select! {
        results = run(paths, options, progress) => return Ok(results),
        value = stop => value,
    };
    // Scenario tasks were abandoned mid-way; a file that does not load made
    // nothing to sweep.
    let scenarios: Vec<Scenario> = paths.iter().filter_map(|p| load_scenario(p).ok()).collect();
    if let Err(e) = Environment::sweep(options, &scenarios).await {
        eprintln!("cleanup failed: {e:#}");
    }
    Err(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Backend;
    use std::path::Path;
    use std::sync::Mutex;

    fn scenario(dir: &Path, name: &str, serial: bool) -> PathBuf {
        let path = dir.join(format!("{name}.yaml"));
        let text = format!(
            "apiVersion: injector-harness/v1\nkind: Scenario\nname: {name}\nserial: {serial}\n---\n\
             apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_serial_scenario_runs_alone() {
        let dir = tempfile::tempdir().unwrap();
        // Scenarios start from the injector config beside them.
        std::fs::create_dir(dir.path().join("base")).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/base/injector.yaml"),
            dir.path().join("base/injector.yaml"),
        )
        .unwrap();
        let paths: Vec<PathBuf> = ["a", "b", "serial", "c", "d"]
            .iter()
            .map(|n| scenario(dir.path(), n, *n == "serial"))
            .collect();
        let events = Arc::new(Mutex::new(Vec::new()));
        let log = events.clone();
        let options = RunOptions {
            parallel: 4,
            ..RunOptions::for_backend(Backend::Sim).unwrap()
        };
        let results = run_once(
            &paths,
            &options,
            Arc::new(move |p| {
                let e = match p {
                    Progress::Started(n) => format!("start {n}"),
                    Progress::Finished { name, .. } => format!("end {name}"),
                };
                log.lock().unwrap().push(e);
            }),
        )
        .await;
        for (p, r) in &results {
            assert!(
                r.as_ref().is_ok_and(|r| r.passed()),
                "{}: {r:?}",
                p.display()
            );
        }
        let events = events.lock().unwrap().clone();
        let at = events.iter().position(|e| e == "start serial").unwrap();
        // Nothing runs beside it: its end comes next, and everything
        // started before it had ended.
        assert_eq!(events[at + 1], "end serial", "{events:?}");
        for e in &events[..at] {
            if let Some(n) = e.strip_prefix("start ") {
                assert!(events[..at].contains(&format!("end {n}")), "{events:?}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_stopped_early_returns_the_stop_value() {
        let dir = tempfile::tempdir().unwrap();
        let paths = vec![scenario(dir.path(), "never", false)];
        let options = RunOptions::for_backend(Backend::Sim).unwrap();
        let stopped = run_until(&paths, &options, Arc::new(|_| {}), async { 130u8 }).await;
        assert!(matches!(stopped, Err(130)), "{stopped:?}");
    }
}
