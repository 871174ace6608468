//! One pass of a run: every scenario once, started in the schedule's order
//! ([`crate::schedule`]), at most `parallel` at a time, a `serial` one
//! alone on the node.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::backend::Environment;
use crate::cluster::Removal;
use crate::error::{Phase, RunError};
use crate::outcome::{Outcome, Progress};
use crate::scenario::Scenario;
use crate::scenario_files::load_scenario;
use crate::schedule;

/// Every scenario once, at most `parallel` at a time (a serial one alone).
pub async fn run_pass(
    paths: &[PathBuf],
    env: &Arc<Environment>,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Vec<(PathBuf, Outcome)> {
    let backend = env.options().backend;
    // At most this many at once (a few thousand would only thrash).
    let width: u32 = env.options().parallel.clamp(1, 1024) as u32;
    let limit = Arc::new(tokio::sync::Semaphore::new(width as usize));
    // Held shared by each pending removal of a finished scenario's objects
    // (on a real cluster), exclusively by a serial scenario: it starts on a
    // node that no earlier scenario's terminating pods still load.
    let node = Arc::new(tokio::sync::RwLock::new(()));
    let scenarios: Vec<Result<Scenario>> = paths.iter().map(|p| load_scenario(p)).collect();
    env.plan(&scenarios).await;
    let jobs: Vec<schedule::Job> = paths
        .iter()
        .zip(&scenarios)
        .map(|(p, s)| schedule::Job {
            name: scenario_name(p),
            serial: s.as_ref().is_ok_and(|s| s.header.serial),
            steps: s.as_ref().map_or(0, |s| s.header.steps.len()),
        })
        .collect();
    let mut durations = schedule::Durations::load(backend);
    let mut slots: Vec<Option<(PathBuf, Result<Scenario>)>> =
        paths.iter().cloned().zip(scenarios).map(Some).collect();
    let mut tasks = Vec::new();
    for i in schedule::order(&jobs, &durations) {
        let Some((path, scenario)) = slots[i].take() else {
            continue;
        };
        // A serial scenario takes every permit: it waits for the running
        // ones to finish, and the ones after it wait for it. Taken here, one
        // scenario after the other, so scenarios start in the schedule's
        // order: tasks spawned at once reach the semaphore in whatever order
        // the runtime first polls them (seen on kind: the longest scenario,
        // first in the order, started 52 s late and ended the suite alone).
        let serial = scenario.as_ref().is_ok_and(|s| s.header.serial);
        let permit = limit
            .clone()
            .acquire_many_owned(if serial { width } else { 1 })
            .await;
        let progress = progress.clone();
        let (env, node) = (env.clone(), node.clone());
        tasks.push((
            i,
            AbortOnDrop(tokio::spawn(async move {
                let alone = if serial {
                    Some(node.clone().write_owned().await)
                } else {
                    None
                };
                let name = scenario_name(&path);
                let started = std::time::Instant::now();
                progress(Progress::Started(name.clone()));
                let room = match alone {
                    Some(_) => env.make_room().await.context(Phase::Setup),
                    None => Ok(()),
                };
                let (mut result, removal) = match (scenario, room) {
                    (Ok(s), Ok(())) => env.run(&s).await,
                    (Err(e), _) | (_, Err(e)) => {
                        let none: Removal = Box::pin(async { Ok(()) });
                        (Err(RunError::classify(e)), none)
                    }
                };
                let (passed, elapsed) = match &mut result {
                    Ok(r) => (r.passed(), r.elapsed),
                    // A scenario that did not run to the end still took
                    // this long (a subject that never served: its limit).
                    Err(e) => {
                        let took = started.elapsed();
                        e.elapsed = Some(took);
                        (false, took)
                    }
                };
                progress(Progress::Finished {
                    name,
                    passed,
                    elapsed,
                });
                let removed = if alone.is_some() {
                    // A serial scenario keeps the node (every permit, the
                    // exclusive hold) until its own objects are gone: its
                    // pods ask for most of the node and hold it while they
                    // terminate (the next scenario's pod showed
                    // FailedScheduling, Insufficient cpu, when they did not).
                    removal.await
                } else {
                    // The shared hold is taken before the permit goes, so a
                    // serial scenario that gets every permit also waits for
                    // this removal.
                    let _pending = node.read_owned().await;
                    drop(permit);
                    removal.await
                };
                if let Err(e) = removed {
                    result = result.and(Err(RunError::classify(e)));
                }
                (path, result)
            })),
        ));
    }
    let mut out: Vec<Option<(PathBuf, Outcome)>> = paths.iter().map(|_| None).collect();
    for (i, mut t) in tasks {
        out[i] = Some(match (&mut t.0).await {
            Ok(r) => r,
            Err(e) => (
                paths[i].clone(),
                Err(RunError::classify(anyhow::anyhow!(
                    "scenario task failed: {e}"
                ))),
            ),
        });
    }
    for (path, run) in out.iter().flatten() {
        if let Ok(run) = run {
            durations.record(&scenario_name(path), run.elapsed);
        }
    }
    durations.save();
    out.into_iter().flatten().collect()
}

/// A scenario's task, aborted when the run is dropped (Ctrl-C, SIGTERM):
/// what it holds (a subject's container, a process) is then dropped while
/// the runtime still runs, so its own cleanup can finish. Left running, it
/// was dropped only as the runtime shut down, and a container's removal on
/// drop waited forever on a runtime that no longer drove its I/O.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A scenario's name as progress lines and the durations file give it: its
/// file's stem.
pub fn scenario_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("?")
        .to_string()
}
