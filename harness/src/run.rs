//! Running scenarios: start the injector, register its webhooks on a
//! cluster, apply the manifests, run the steps, settle, observe, then check
//! expectations and build the snapshot.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cluster::kind::KindEnvironment;
use crate::cluster::kubeconfig::{KubeconfigCluster, Kubelet};
use crate::cluster::sim::SimCluster;
use crate::cluster::{Backend, Cluster, Observed};
use crate::error::{Phase, RunError};
use crate::isolation::{Isolated, Isolation, RunId, SHARED_NAMESPACES};
pub use crate::options::{RunOptions, Webhook};
use crate::scenario::{self, Scenario, Step};
use crate::subject::{InClusterInjector, LocalSubject, SharedInjectors, Subject};
use crate::version::Minor;
use crate::{expect, snapshot, status};

/// Where the base injector config sits, relative to the scenarios folder.
pub const BASE_CONFIG: &str = "base/injector.yaml";
/// This repository's base config (the built-in sidecar running the probe),
/// which `new` writes into a directory that has none.
pub const PROBE_BASE_CONFIG: &str = include_str!("../../scenarios/base/injector.yaml");

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
    /// The outcome of a scenario that ran to the end on any backend: the
    /// snapshot is the settled cluster with the checkpoints seen on the way.
    #[allow(clippy::too_many_arguments)]
    fn new(
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

    /// What a user needs when it failed: pod states, refusals, and the
    /// admission log with the injector's decisions.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for f in &self.failures {
            out.push_str(&format!("  FAIL {f}\n"));
        }
        out.push_str("  pods:\n");
        if self.observed.pods.is_empty() {
            out.push_str("    (none)\n");
        }
        for p in &self.observed.pods {
            let line = status::pod_line(p);
            out.push_str(&format!(
                "    {}/{} {} {} restarts={}\n",
                p["metadata"]["namespace"].as_str().unwrap_or(""),
                line.name,
                line.ready,
                line.status,
                line.restarts
            ));
            for key in ["initContainerStatuses", "containerStatuses"] {
                for s in p["status"][key].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "      {}: {}\n",
                        s["name"].as_str().unwrap_or(""),
                        snapshot::container_state(s)
                    ));
                }
            }
        }
        if !self.observed.rejections.is_empty() {
            out.push_str("  refused:\n");
            for r in &self.observed.rejections {
                out.push_str(&format!(
                    "    {} {}/{}: {}\n",
                    r.kind, r.namespace, r.name, r.message
                ));
            }
        }
        // Other webhooks' counters are theirs to name; none are read.
        if self.builtin_subject {
            out.push_str("  injector decisions:\n");
            if self.decisions.is_empty() {
                out.push_str("    (none)\n");
            }
            for d in &self.decisions {
                out.push_str(&format!("    {d}\n"));
            }
        }
        out.push_str("  admission log:\n");
        if self.admission_log.is_empty() {
            out.push_str("    (no webhook was called)\n");
        }
        for l in &self.admission_log {
            out.push_str(&format!("    {l}\n"));
        }
        if !self.diagnostics.is_empty() {
            out.push_str("  from the cluster:\n");
            for l in &self.diagnostics {
                out.push_str(&format!("    {l}\n"));
            }
        }
        out
    }
}

/// Loads a scenario with the base config from `<scenarios dir>/base/`, or,
/// where that directory holds none (a directory of a webhook author's own,
/// whose subject is not the built-in injector), the injector's built-in
/// default config.
pub fn load_scenario(path: &Path) -> Result<Scenario> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let base_file = dir.join(BASE_CONFIG);
    let base = if base_file.exists() {
        scenario::load_base_config(&base_file)?
    } else {
        serde_yaml::from_str(sidecar_injector::config::DEFAULT_CONFIG_YAML)
            .context("the injector's built-in default config")?
    };
    Ok(scenario::load(path, &base)?)
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
            Step::Apply { manifests } => {
                for m in manifests {
                    cluster.apply(m).await.with_context(ctx)?;
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

/// Where a scenario's time goes, logged phase by phase at info level
/// (`RUST_LOG=injector_harness=info`): what to read when a suite is slow.
struct PhaseClock {
    scenario: String,
    last: Instant,
}

impl PhaseClock {
    /// A clock whose first lap (the subject's start) began at `started`.
    fn new(scenario: &str, started: Instant) -> PhaseClock {
        PhaseClock {
            scenario: scenario.to_string(),
            last: started,
        }
    }

    fn lap(&mut self, phase: &str) {
        let now = Instant::now();
        let ms = u64::try_from((now - self.last).as_millis()).unwrap_or(u64::MAX);
        tracing::info!(scenario = %self.scenario, phase, ms, "phase done");
        self.last = now;
    }
}

/// Where a scenario's webhook runs, against which cluster.
#[derive(Clone)]
enum Target {
    /// The simulated cluster, modelling this Kubernetes minor.
    Sim(Minor),
    /// The cluster in KUBECONFIG, with the injector in this process on
    /// 127.0.0.1 and the fake kubelet running pods.
    HostInjector,
    /// The cluster `client` talks to, with the injector deployed in it and
    /// real kubelets: kind, or any cluster with `HARNESS_WEBHOOK=in-cluster`.
    /// `shared` holds the run's injectors that scenarios share (none when
    /// every scenario gets its own).
    InCluster {
        client: kube::Client,
        shared: Option<Arc<SharedInjectors>>,
    },
}

impl Target {
    /// Tells the target which scenarios a pass will run, so what they
    /// share goes when the last of them is done.
    async fn plan(&self, scenarios: &[Result<Scenario>]) {
        if let Target::InCluster {
            shared: Some(shared),
            ..
        } = self
        {
            shared.plan(scenarios.iter().flatten()).await;
        }
    }

    /// Frees the node of what the run keeps between scenarios (shared
    /// injectors), for a `serial` scenario, which needs it to itself.
    async fn make_room(&self) -> Result<()> {
        match self {
            Target::InCluster {
                shared: Some(shared),
                ..
            } => shared.remove().await,
            _ => Ok(()),
        }
    }
}

pub use crate::cluster::Removal;

fn nothing_to_remove() -> Removal {
    Box::pin(async { Ok(()) })
}

/// Runs one scenario on `target`. The result comes back with the removal
/// of what the scenario made on a real cluster, not yet awaited: the result
/// is known before its namespaces are gone (several seconds: the injector's
/// 5 s preStop, the pods' grace), and a suite runs the next scenario
/// meanwhile.
async fn run_scenario_on(
    scenario: &Scenario,
    target: &Target,
    options: &RunOptions,
) -> (Outcome, Removal) {
    let (result, removal) = match target {
        Target::Sim(minor) => run_on_sim(scenario, *minor, &options.run_id, None).await,
        Target::HostInjector => run_with_host_injector(scenario, &options.run_id).await,
        Target::InCluster { client, shared } => {
            run_in_cluster(scenario, client, shared.as_ref(), options).await
        }
    };
    let removal: Removal = Box::pin(async move { removal.await.context(Phase::Cleanup) });
    (result.map_err(RunError::classify), removal)
}

/// On the sim; with `names`, through a run's renaming, as on a real
/// cluster (the test that shows the renaming changes no snapshot).
async fn run_on_sim(
    scenario: &Scenario,
    minor: Minor,
    run: &RunId,
    names: Option<&Isolation>,
) -> (Result<ScenarioRun>, Removal) {
    let started = Instant::now();
    let config = match names {
        Some(n) => n.config(&scenario.injector_config),
        None => scenario.injector_config.clone(),
    };
    // The sim renames nothing, but a local container subject carries the
    // run's label, for the sweep of an interrupted run.
    let subject = match LocalSubject::start(scenario, config, run.as_str()).await {
        Ok(s) => s,
        Err(e) => return (Err(e.context(Phase::Setup)), nothing_to_remove()),
    };
    let mut cluster = SimCluster::of_version(scenario.name(), minor);
    cluster.preload_images(&scenario.header.preload_images);
    run_with(scenario, cluster, subject, names, started).await
}

/// On the cluster in KUBECONFIG, the injector in this process.
async fn run_with_host_injector(
    scenario: &Scenario,
    run: &RunId,
) -> (Result<ScenarioRun>, Removal) {
    let started = Instant::now();
    let names = Isolation::for_run(run, scenario);
    let client = match crate::cluster::kubeconfig::connect_client().await {
        Ok(c) => c,
        Err(e) => {
            return (
                Err(anyhow::Error::new(e).context(Phase::Cluster)),
                nothing_to_remove(),
            )
        }
    };
    let config = names.config(&scenario.injector_config);
    let subject = match LocalSubject::start(scenario, config, run.as_str()).await {
        Ok(s) => s,
        Err(e) => return (Err(e.context(Phase::Setup)), nothing_to_remove()),
    };
    let cluster = KubeconfigCluster::with_client(
        client,
        scenario.name(),
        run,
        names.cluster_namespaces(scenario),
        Kubelet::Fake,
    );
    run_with(scenario, cluster, subject, Some(&names), started).await
}

/// The one lifecycle every backend shares, once its cluster and subject
/// are up: the steps, a look at the cluster, the expectations; on an error
/// or a failure, what the cluster and the subject can say (gathered before
/// anything is deleted); then the removal of both, side by side, returned
/// unawaited.
async fn run_with<C, S>(
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
    let run = ScenarioRun::new(
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

/// On the cluster `client` talks to, with real kubelets and its webhooks
/// calling an injector's Service: one of `shared` when the scenario may
/// share one, else a Deployment of its own.
async fn run_in_cluster(
    scenario: &Scenario,
    client: &kube::Client,
    shared: Option<&Arc<SharedInjectors>>,
    options: &RunOptions,
) -> (Result<ScenarioRun>, Removal) {
    let started = Instant::now();
    let run = &options.run_id;
    let names = Isolation::for_run(run, scenario);
    let cluster = || {
        KubeconfigCluster::with_client(
            client.clone(),
            scenario.name(),
            run,
            names.cluster_namespaces(scenario),
            Kubelet::Real,
        )
        .require_reachable(scenario.header.injector.available)
    };
    if let Some(shared) = shared.filter(|_| SharedInjectors::fits(scenario)) {
        let own_namespaces = names
            .cluster_namespaces(scenario)
            .into_iter()
            .filter(|ns| !SHARED_NAMESPACES.contains(&ns.as_str()))
            .collect();
        let subject = match shared.get(scenario, own_namespaces).await {
            Ok(s) => s,
            Err(e) => return (Err(e.context(Phase::Setup)), nothing_to_remove()),
        };
        return run_with(scenario, cluster(), subject, Some(&names), started).await;
    }
    let deployed = InClusterInjector::for_scenario(
        client.clone(),
        scenario,
        run,
        &options.injector_image,
        &names.config(&scenario.injector_config),
    )
    .await;
    let subject = match deployed {
        Ok(i) => i,
        Err(e) => return (Err(e.context(Phase::Setup)), nothing_to_remove()),
    };
    run_with(scenario, cluster(), subject, Some(&names), started).await
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
    let suite = match Suite::up(&preload_images(paths), options).await {
        Ok(s) => s,
        Err(e) => {
            let e = RunError::classify(e);
            return vec![paths.iter().map(|p| (p.clone(), Err(e.shared()))).collect()];
        }
    };
    let mut out = Vec::new();
    for _ in 0..options.passes.max(1) {
        out.push(run_pass(paths, &suite, progress.clone()).await);
    }
    suite.down().await;
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
/// ([`crate::scenario::parse`]), on `options.backend`, with a cluster of its
/// own on kind: what a test of your own webhook calls.
pub async fn run_scenario(scenario: &Scenario, options: &RunOptions) -> Outcome {
    let suite = Suite::up(&scenario_images(scenario), options)
        .await
        .map_err(RunError::classify)?;
    let (result, removal) = run_scenario_on(scenario, &suite.target, &suite.options).await;
    let removed = removal.await;
    suite.down().await;
    let run = result?;
    removed.map_err(RunError::classify)?;
    Ok(run)
}

/// What a run holds for its whole length: a kind cluster it brought up,
/// the fake kubelet it started. Dropped (on Ctrl-C too), they go.
struct Suite {
    target: Target,
    options: RunOptions,
    kind: Option<KindEnvironment>,
    _kubelet: Option<crate::fake_kubelet::FakeKubelet>,
}

impl Suite {
    /// Brings up what `options.backend` needs, with `images` on its nodes.
    async fn up(images: &[String], options: &RunOptions) -> Result<Suite> {
        let started = Instant::now();
        let suite = Suite::bring_up(images, options)
            .await
            .context(Phase::Cluster)?;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(ms, backend = options.backend.as_str(), "cluster up");
        Ok(suite)
    }

    async fn bring_up(images: &[String], options: &RunOptions) -> Result<Suite> {
        let suite = |target, kind, kubelet| Suite {
            target,
            options: options.clone(),
            kind,
            _kubelet: kubelet,
        };
        Ok(match options.backend {
            Backend::Sim => suite(Target::Sim(options.sim_minor), None, None),
            // One cluster for the whole run, torn down at the end (or when
            // this is dropped, on Ctrl-C).
            Backend::Kind => {
                let env = KindEnvironment::up(&options.kind, images).await?;
                suite(in_cluster(env.client().clone(), options), Some(env), None)
            }
            Backend::Kubeconfig => match options.webhook {
                Webhook::InCluster => suite(
                    in_cluster(crate::cluster::kubeconfig::connect_client().await?, options),
                    None,
                    None,
                ),
                // A cluster without nodes of its own needs the fake kubelet,
                // unless the options say one runs already.
                Webhook::Host => {
                    let kubelet = if options.fake_kubelet {
                        Some(start_fake_kubelet(images).await?)
                    } else {
                        None
                    };
                    suite(Target::HostInjector, None, kubelet)
                }
            },
        })
    }

    async fn down(self) {
        let started = Instant::now();
        // Shared injectors go with a cluster the run deletes; on any other,
        // their namespaces are removed first.
        let deleting = self.kind.as_ref().is_some_and(|k| k.deletes_cluster());
        if let Target::InCluster {
            shared: Some(shared),
            ..
        } = &self.target
        {
            if !deleting {
                if let Err(e) = shared.remove().await {
                    eprintln!("removing the shared injectors failed: {e:#}");
                }
            }
        }
        if let Some(env) = self.kind {
            if let Err(e) = env.down().await {
                eprintln!("deleting the kind cluster failed: {e:#}");
            }
        }
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(ms, deleted = deleting, "cluster down");
    }
}

/// The in-cluster target on the cluster `client` talks to.
fn in_cluster(client: kube::Client, options: &RunOptions) -> Target {
    let shared = options.share_injectors.then(|| {
        Arc::new(SharedInjectors::new(
            client.clone(),
            options.run_id.clone(),
            options.injector_image.clone(),
        ))
    });
    Target::InCluster { client, shared }
}

/// Every scenario once, at most `parallel` at a time (a serial one alone).
async fn run_pass(
    paths: &[PathBuf],
    suite: &Suite,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Vec<(PathBuf, Outcome)> {
    let backend = suite.options.backend;
    // At most this many at once (a few thousand would only thrash).
    let width: u32 = suite.options.parallel.clamp(1, 1024) as u32;
    let limit = Arc::new(tokio::sync::Semaphore::new(width as usize));
    // Held shared by each pending removal of a finished scenario's objects
    // (on a real cluster), exclusively by a serial scenario: it starts on a
    // node that no earlier scenario's terminating pods still load.
    let node = Arc::new(tokio::sync::RwLock::new(()));
    let scenarios: Vec<Result<Scenario>> = paths.iter().map(|p| load_scenario(p)).collect();
    suite.target.plan(&scenarios).await;
    let jobs: Vec<crate::schedule::Job> = paths
        .iter()
        .zip(&scenarios)
        .map(|(p, s)| crate::schedule::Job {
            name: scenario_name(p),
            serial: s.as_ref().is_ok_and(|s| s.header.serial),
            steps: s.as_ref().map_or(0, |s| s.header.steps.len()),
        })
        .collect();
    let mut durations = crate::schedule::Durations::load(backend);
    let mut slots: Vec<Option<(PathBuf, Result<Scenario>)>> =
        paths.iter().cloned().zip(scenarios).map(Some).collect();
    let mut tasks = Vec::new();
    for i in crate::schedule::order(&jobs, &durations) {
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
        let (target, node) = (suite.target.clone(), node.clone());
        let options = suite.options.clone();
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
                    Some(_) => target.make_room().await.context(Phase::Setup),
                    None => Ok(()),
                };
                let (mut result, removal) = match (scenario, room) {
                    (Ok(s), Ok(())) => run_scenario_on(&s, &target, &options).await,
                    (Err(e), _) | (_, Err(e)) => (Err(RunError::classify(e)), nothing_to_remove()),
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
fn scenario_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("?")
        .to_string()
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

async fn start_fake_kubelet(preload_images: &[String]) -> Result<crate::fake_kubelet::FakeKubelet> {
    let client = crate::cluster::kubeconfig::connect_client().await?;
    crate::fake_kubelet::start(client, preload_images).await
}

/// Every image the scenarios at `paths` preload, once each: a real node
/// gets them all at the start of the run. A file that does not load adds
/// none (its own run reports why).
fn preload_images(paths: &[PathBuf]) -> Vec<String> {
    let mut images: Vec<String> = paths
        .iter()
        .filter_map(|p| load_scenario(p).ok())
        .flat_map(|s| scenario_images(&s))
        .collect();
    images.sort();
    images.dedup();
    images
}

/// The images one scenario puts on the nodes: those it preloads and its
/// subject's.
fn scenario_images(s: &Scenario) -> Vec<String> {
    let subject = s.header.subject.image.as_ref().map(|i| i.name.clone());
    s.header
        .preload_images
        .iter()
        .cloned()
        .chain(subject)
        .collect()
}

/// Scenario files named on the command line: files as given, directories
/// expanded to their `*.yaml`.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.extend(
                scenario::discover(p).with_context(|| format!("{}: cannot list", p.display()))?,
            );
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("{}: no such scenario file or directory", p.display());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn a_scenario_with_no_base_beside_it_starts_from_the_builtin_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = scenario(dir.path(), "alone", false);
        let s = load_scenario(&path).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            s.injector_config,
            sidecar_injector::config::Config::builtin()
        );
        // A base beside it that is broken is an error naming the file, not
        // a silent fallback.
        std::fs::create_dir(dir.path().join("base")).unwrap();
        std::fs::write(dir.path().join(BASE_CONFIG), "sidecar: [").unwrap();
        let e = format!("{:#}", load_scenario(&path).unwrap_err());
        assert!(e.contains("base/injector.yaml"), "{e}");
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
    async fn a_runs_renaming_changes_no_snapshot() {
        // Every scenario on the sim, as itself and through the renaming a
        // real cluster gets (namespaces with the run's suffix, objects in
        // kube-system renamed, selectors and ignoredNamespaces following):
        // the same snapshot and the same verdict, or the renaming leaks.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let run = crate::isolation::RunId::parse("zq7").unwrap();
        let mut renamed_any = false;
        for path in scenario::discover(&dir).unwrap() {
            let s = load_scenario(&path).unwrap();
            let names = Isolation::for_run(&run, &s);
            renamed_any |= names.namespace(s.namespaces().iter().next().unwrap())
                != *s.namespaces().iter().next().unwrap();
            let minor = crate::version::newest();
            let (plain, removal) = run_on_sim(&s, minor, &run, None).await;
            removal.await.unwrap();
            let (isolated, removal) = run_on_sim(&s, minor, &run, Some(&names)).await;
            removal.await.unwrap();
            match (plain, isolated) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(
                        b.snapshot,
                        a.snapshot,
                        "{}: {}",
                        path.display(),
                        crate::snapshot::versioned::diff(&a.snapshot, &b.snapshot)
                    );
                    assert_eq!(a.failures, b.failures, "{}", path.display());
                }
                (a, b) => panic!(
                    "{}: as itself {:?}, renamed {:?}",
                    path.display(),
                    a.err(),
                    b.err()
                ),
            }
        }
        assert!(renamed_any);
    }

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
