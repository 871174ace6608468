//! The one lifecycle every backend shares once its cluster and subject are
//! up: register the webhooks, apply the manifests, run the steps (settling
//! after each), look at the cluster, check the expectations, gather what
//! the cluster and the subject can say about a failure, and hand back the
//! removal of both, unawaited.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::clock::PhaseClock;
use crate::cluster::{Cluster, Observed, Removal};
use crate::expect;
use crate::isolation::{Isolated, Isolation};
use crate::outcome::ScenarioRun;
use crate::scenario::{Scenario, Step};
use crate::snapshot;
use crate::subject::Subject;

/// A removal with nothing to remove: a scenario that stopped before it
/// made anything.
pub(super) fn nothing_to_remove() -> Removal {
    Box::pin(async { Ok(()) })
}

/// What an `expect` step saw.
struct Checkpoint {
    /// The step it looks after, e.g. `steps[2] scale`.
    label: String,
    observed: Observed,
    failures: Vec<String>,
}

/// Whether the injector answers webhook calls within every webhook's
/// timeout, given what the fault steps did to it.
fn answering(scenario: &Scenario, injector: &impl Subject) -> bool {
    let shortest = scenario
        .header
        .webhooks
        .iter()
        .map(|w| Duration::from_secs(w.timeout_seconds.max(0) as u64))
        .min()
        .unwrap_or(Duration::from_secs(10));
    injector.serving() && injector.delay() < shortest
}

async fn drive<C: Cluster, I: Subject>(
    cluster: &mut C,
    scenario: &Scenario,
    injector: &mut I,
    checkpoints: &mut Vec<Checkpoint>,
    clock: &mut PhaseClock,
) -> Result<()> {
    cluster
        .register(injector.webhooks(&scenario.header.webhooks))
        .await?;
    clock.lap("register");
    cluster.injector_answering(answering(scenario, injector));
    for m in &scenario.manifests {
        cluster.apply(&m.object).await.with_context(|| {
            format!(
                "{}:{}: applying {} {}",
                scenario.path.display(),
                m.line,
                m.kind(),
                m.name()
            )
        })?;
    }
    clock.lap("apply");
    cluster.settle().await?;
    clock.lap("settle");
    for (i, step) in scenario.header.steps.iter().enumerate() {
        let ctx = || format!("{}: steps[{i}] {}", scenario.path.display(), step.name());
        match step {
            Step::LabelNamespace { name, labels } => cluster
                .label_namespace(name, labels)
                .await
                .with_context(ctx)?,
            Step::RolloutRestart {
                namespace,
                kind,
                name,
            } => cluster
                .rollout_restart(namespace, kind, name)
                .await
                .with_context(ctx)?,
            Step::Apply { manifests, dry_run } => {
                for m in manifests {
                    match dry_run {
                        true => cluster.apply_dry_run(m).await.with_context(ctx)?,
                        false => cluster.apply(m).await.with_context(ctx)?,
                    }
                }
            }
            Step::Scale {
                namespace,
                kind,
                name,
                replicas,
            } => cluster
                .scale(namespace, kind, name, *replicas)
                .await
                .with_context(ctx)?,
            Step::Patch { target, patch } => {
                cluster.patch(target, patch).await.with_context(ctx)?
            }
            Step::Delete { target } => cluster.delete(target).await.with_context(ctx)?,
            Step::StopInjector => injector.halt().await.with_context(ctx)?,
            Step::StartInjector => injector.serve().await.with_context(ctx)?,
            Step::SlowInjector { delay_seconds } => injector
                .set_delay(Duration::from_secs(u64::from(*delay_seconds)))
                .await
                .with_context(ctx)?,
            Step::RotateCert => injector.rotate_cert().await.with_context(ctx)?,
            Step::Expect(expect) => {
                // The previous step has settled; look, do not change.
                let observed = cluster.observe().await.with_context(ctx)?;
                let label = match i.checked_sub(1).map(|p| &scenario.header.steps[p]) {
                    Some(prev) => format!("steps[{}] {}", i - 1, prev.name()),
                    None => "the manifests".to_string(),
                };
                let failures = expect::check_listed(scenario, expect, &observed)
                    .into_iter()
                    .map(|f| format!("steps[{i}] expect (after {label}): {f}"))
                    .collect();
                checkpoints.push(Checkpoint {
                    label,
                    observed,
                    failures,
                });
                continue;
            }
        }
        cluster.injector_answering(answering(scenario, injector));
        cluster.settle().await?;
        clock.lap(&format!("steps[{i}] {}", step.name()));
    }
    Ok(())
}

/// The one lifecycle every backend shares, once its cluster and subject
/// are up: the steps, a look at the cluster, the expectations; on an error
/// or a failure, what the cluster and the subject can say (gathered before
/// anything is deleted); then the removal of both, side by side, returned
/// unawaited.
pub(super) async fn run_with<C, S>(
    scenario: &Scenario,
    mut cluster: C,
    mut subject: S,
    names: Option<&Isolation>,
    started: Instant,
) -> (Result<ScenarioRun>, Removal)
where
    C: Cluster,
    S: Subject,
{
    let mut checkpoints = Vec::new();
    let mut clock = PhaseClock::new(scenario.name(), started);
    clock.lap("subject");
    let (result, observed, admission_log) = match names {
        Some(names) => {
            let mut isolated = Isolated {
                inner: &mut cluster,
                names,
            };
            let result = drive(
                &mut isolated,
                scenario,
                &mut subject,
                &mut checkpoints,
                &mut clock,
            )
            .await;
            let observed = match &result {
                Ok(()) => isolated.observe().await,
                Err(_) => Ok(Observed::default()),
            };
            (result, observed, isolated.admission_log())
        }
        None => {
            let result = drive(
                &mut cluster,
                scenario,
                &mut subject,
                &mut checkpoints,
                &mut clock,
            )
            .await;
            let observed = match &result {
                Ok(()) => cluster.observe().await,
                Err(_) => Ok(Observed::default()),
            };
            (result, observed, cluster.admission_log())
        }
    };
    clock.lap("observe");
    let decisions = subject.decisions().await;
    let failures = match &observed {
        Ok(o) if result.is_ok() => failures_of(scenario, &checkpoints, o),
        _ => Vec::new(),
    };
    let mut diagnostics = Vec::new();
    if result.is_err() || observed.is_err() || !failures.is_empty() {
        diagnostics.extend(cluster.diagnostics().await);
        diagnostics.extend(subject.logs().await);
    }
    clock.lap("report");
    let (cleanup, stop) = (cluster.into_cleanup(), subject.into_stop());
    let removal: Removal = Box::pin(async move {
        // Both wait until what they made is gone (terminating pods still
        // hold the node's resources); side by side, that takes half as long.
        let (cleaned, stopped) = tokio::join!(cleanup, stop);
        clock.lap("removal");
        cleaned.and(stopped)
    });
    let observed = match (result, observed) {
        (Err(e), _) | (Ok(()), Err(e)) => return (Err(with_diagnostics(e, &diagnostics)), removal),
        (Ok(()), Ok(observed)) => observed,
    };
    let run = finished(
        scenario,
        observed,
        &checkpoints,
        failures,
        decisions,
        admission_log,
        diagnostics,
        started,
    );
    (Ok(run), removal)
}

/// `e` with what the cluster and the subject said, when they said anything.
fn with_diagnostics(e: anyhow::Error, diagnostics: &[String]) -> anyhow::Error {
    if diagnostics.is_empty() {
        e
    } else {
        e.context(diagnostics.join("\n"))
    }
}

/// The expectations a finished scenario failed, at its checkpoints and at
/// the end.
fn failures_of(
    scenario: &Scenario,
    checkpoints: &[Checkpoint],
    observed: &Observed,
) -> Vec<String> {
    let mut failures: Vec<String> = checkpoints
        .iter()
        .flat_map(|c| c.failures.iter().cloned())
        .collect();
    failures.extend(expect::check(scenario, observed));
    failures
}

/// The outcome of a scenario that ran to the end on any backend: the
/// snapshot is the settled cluster with the checkpoints seen on the way.
#[allow(clippy::too_many_arguments)]
fn finished(
    scenario: &Scenario,
    observed: Observed,
    checkpoints: &[Checkpoint],
    failures: Vec<String>,
    decisions: Vec<String>,
    admission_log: Vec<String>,
    diagnostics: Vec<String>,
    started: Instant,
) -> ScenarioRun {
    let snapshot = snapshot::with_checkpoints(
        snapshot::build(&observed),
        checkpoints
            .iter()
            .map(|c| snapshot::checkpoint(&c.label, &c.observed))
            .collect(),
    );
    ScenarioRun {
        name: scenario.name().to_string(),
        path: scenario.path.clone(),
        snapshot,
        observed,
        failures,
        admission_log,
        decisions,
        status_annotation: scenario.injected_annotation().to_string(),
        builtin_subject: scenario.builtin_subject(),
        diagnostics,
        elapsed: started.elapsed(),
    }
}
