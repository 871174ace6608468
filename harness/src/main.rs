//! `injector-harness`: run scenario files and report, or write a new one.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use injector_harness::cluster::Backend;
use injector_harness::run::{self, Progress};
use injector_harness::{junit, scenario};

#[derive(Parser)]
#[command(
    name = "injector-harness",
    version,
    about = "Run sidecar-injector scenarios on a simulated or real cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios and print a table; exits non-zero when an expectation fails.
    Run {
        /// Scenario files or directories (default: scenarios/).
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Backend::Sim, env = "HARNESS_BACKEND")]
        backend: Backend,
        /// Scenarios run at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// Also write a JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// kind: reuse this existing cluster instead of creating one; it is never deleted.
        #[arg(long, env = "HARNESS_KIND_CLUSTER")]
        kind_cluster: Option<String>,
        /// kind: leave the cluster this run creates up, for debugging.
        #[arg(long, env = "HARNESS_KEEP_CLUSTER")]
        keep_cluster: bool,
        /// kind: the node image (e.g. a stock kindest/node of the pinned minor);
        /// default: the offline one kind/build-node-image.sh builds.
        #[arg(long, env = "KIND_NODE_IMAGE")]
        node_image: Option<String>,
        /// kind: load the injector and probe images Docker already has instead
        /// of building them with kind/build-images.sh.
        #[arg(long)]
        no_image_build: bool,
        /// Run every scenario this many times (on one cluster) and report any
        /// scenario whose snapshot differs between passes, with the lines
        /// that differ: an outcome that depends on timing.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: u32,
        /// kubeconfig: where the webhook runs: `host` (this process, for an
        /// apiserver on this machine) or `in-cluster` (a Deployment and
        /// Service, for any cluster; pods run on its own nodes).
        #[arg(long, value_enum, env = "HARNESS_WEBHOOK")]
        webhook: Option<run::Webhook>,
        /// The injector image an in-cluster webhook runs (default
        /// sidecar-injector:dev, which kind/build-images.sh builds): name an
        /// image in a registry the cluster pulls from.
        #[arg(long, env = "HARNESS_INJECTOR_IMAGE")]
        injector_image: Option<String>,
        /// This run's id (1-8 lowercase letters and digits; default random):
        /// on a real cluster, the suffix of its namespaces and the value of
        /// the injector-harness/run label on what it creates.
        #[arg(long, env = "HARNESS_RUN_ID")]
        run_id: Option<String>,
        /// In a cluster, give every scenario an injector Deployment of its own
        /// (default: scenarios that leave the built-in injector alone share
        /// one per config; HARNESS_SHARE_INJECTORS=0 does the same).
        #[arg(long)]
        injector_per_scenario: bool,
        /// Hold every result to its snapshot `<DIR>/<scenario>.snap` (default:
        /// `snapshots/` in the scenario's directory, or beside it as in this
        /// repository): a new or differing result is written as `.snap.new`
        /// for `cargo insta review`, and fails the run.
        #[arg(long, value_name = "DIR")]
        snapshots: Option<PathBuf>,
        /// Write new and differing results into their snapshot files instead
        /// of failing (as `INSTA_UPDATE=always` does for a test).
        #[arg(long, conflicts_with = "no_snapshots")]
        accept: bool,
        /// Check the expectations only, no snapshot.
        #[arg(long, conflicts_with = "snapshots")]
        no_snapshots: bool,
    },
    /// Write a scenario skeleton to scenarios/NAME.yaml.
    New {
        name: String,
        #[arg(long, default_value = "scenarios")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves when the run is to stop early: SIGINT (Ctrl-C) or SIGTERM (a
/// supervisor or CI timeout signalling this pid), with the exit code a shell
/// gives a process killed by that signal. Dropping the run then deletes a
/// cluster it created and kills the tools it started.
async fn interrupted() -> u8 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => 130,
                _ = term.recv() => 143,
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    130
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    // Errors, and a subject that keeps the run waiting.
                    "error,kube_client=off,injector_harness::subject=info",
                )
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::New { name, dir } => {
            sidecar_injector::config::check_dns1123_label(&name)
                .map_err(|m| anyhow::anyhow!("scenario name: {m}"))?;
            let path = dir.join(format!("{name}.yaml"));
            if path.exists() {
                bail!("{}: already exists", path.display());
            }
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            std::fs::write(&path, scenario::skeleton(&name))
                .with_context(|| format!("{}: cannot write", path.display()))?;
            // The skeleton's subject is the built-in injector with the
            // harness's probe as its sidecar, as every scenario here: a new
            // directory gets the config that makes it pass as written.
            let base = dir.join(run::BASE_CONFIG);
            if !base.exists() {
                std::fs::create_dir_all(base.parent().unwrap_or(&dir))
                    .and_then(|()| std::fs::write(&base, run::PROBE_BASE_CONFIG))
                    .with_context(|| format!("{}: cannot write", base.display()))?;
                println!(
                    "wrote {}, the injector config it starts from",
                    base.display()
                );
            }
            println!(
                "wrote {}; run it with: cargo run -p injector-harness -- run {}",
                path.display(),
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            paths,
            backend,
            parallel,
            junit: junit_path,
            kind_cluster,
            keep_cluster,
            node_image,
            no_image_build,
            repeat,
            webhook,
            injector_image,
            run_id,
            injector_per_scenario,
            snapshots,
            accept,
            no_snapshots,
        } => {
            // The environment first (what `cargo test --features e2e`
            // reads), then the flags over it.
            let mut options = run::RunOptions::for_backend(backend)?;
            options.parallel = parallel;
            options.passes = repeat as usize;
            if let Some(w) = webhook {
                options.webhook = w;
            }
            if let Some(image) = injector_image {
                options.injector_image = image;
            }
            if let Some(id) = run_id {
                options.run_id = injector_harness::isolation::RunId::parse(&id)
                    .map_err(|e| anyhow::anyhow!("--run-id {id:?}: {e}"))?;
            }
            if kind_cluster.is_some() {
                options.kind.cluster = kind_cluster;
            }
            options.kind.keep_cluster |= keep_cluster;
            if node_image.is_some() {
                options.kind.node_image = node_image;
            }
            options.kind.skip_image_build |= no_image_build;
            options.share_injectors &= !injector_per_scenario;
            let run_id = options.run_id.clone();
            if backend != Backend::Sim {
                eprintln!("run id {run_id}: namespaces end in -{run_id}; objects are labelled injector-harness/run={run_id}");
            }
            let paths = if paths.is_empty() {
                vec![PathBuf::from("scenarios")]
            } else {
                paths
            };
            let files = run::expand_paths(&paths)?;
            if files.is_empty() {
                bail!(
                    "no scenario files in {}",
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let passes = options.passes;
            let total = files.len() * passes;
            let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let progress: Arc<dyn Fn(Progress) + Send + Sync> = {
                let done = done.clone();
                Arc::new(move |p| {
                    if let Progress::Finished {
                        name,
                        passed,
                        elapsed,
                    } = p
                    {
                        let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        let mark = if passed { "ok  " } else { "FAIL" };
                        eprintln!(
                            "[{n:>2}/{total}] {mark} {name} ({} ms)",
                            elapsed.as_millis()
                        );
                    }
                })
            };
            let started = std::time::Instant::now();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let results = runtime.block_on(async {
                tokio::select! {
                    results = run::run(&files, &options, progress) => Ok(results),
                    code = interrupted() => Err(code),
                }
            });
            let results = match results {
                Ok(r) => r,
                Err(code) => {
                    // Scenario tasks are abandoned mid-way; remove what they
                    // may have left on a real cluster.
                    eprintln!("interrupted; cleaning up");
                    // A kind cluster this run created was deleted when the
                    // run was dropped; a reused one, and the kubeconfig
                    // backend's cluster, are swept of the scenarios' objects.
                    let scenarios: Vec<_> = files
                        .iter()
                        .filter_map(|f| run::load_scenario(f).ok())
                        .collect();
                    let swept = match (backend, &options.kind.cluster) {
                        (Backend::Kubeconfig, _) => Some(runtime.block_on(
                            injector_harness::cluster::kubeconfig::sweep(&run_id, &scenarios),
                        )),
                        (Backend::Kind, Some(name)) => Some(runtime.block_on(
                            injector_harness::cluster::kind::environment::sweep_reused(
                                name, &run_id, &scenarios,
                            ),
                        )),
                        _ => None,
                    };
                    if let Some(Err(e)) = swept {
                        eprintln!("cleanup failed: {e:#}");
                    }
                    // Image subjects run as local containers on any backend
                    // but kind's.
                    if let Err(e) = runtime
                        .block_on(injector_harness::subject::sweep_containers(run_id.as_str()))
                    {
                        eprintln!("cleanup failed: {e:#}");
                    }
                    // An aborted scenario's task may still be finishing its
                    // own cleanup; give it a moment, not forever.
                    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
                    return Ok(ExitCode::from(code));
                }
            };
            let wall = started.elapsed();

            let mut out = std::io::stdout().lock();
            let mut failed = 0;
            for (i, pass) in results.iter().enumerate() {
                if passes > 1 {
                    writeln!(out, "\n== pass {}/{passes}", i + 1)?;
                }
                let (text, pass_failed) = injector_harness::report::summary(pass, wall, backend);
                out.write_all(text.as_bytes())?;
                failed += pass_failed;
            }
            if passes > 1 {
                let varying = run::nondeterministic(&results);
                out.write_all(injector_harness::report::repeats(&varying, passes).as_bytes())?;
                failed += varying.len();
            }
            if let (false, Some(last)) = (no_snapshots, results.last()) {
                let checked = injector_harness::snapshot::check::check_files(
                    last,
                    snapshots.as_deref(),
                    accept,
                );
                let (text, snapshot_failed) = injector_harness::report::snapshots(&checked);
                write!(out, "\n{text}")?;
                failed += snapshot_failed;
            }
            if let (Some(p), Some(last)) = (junit_path, results.last()) {
                std::fs::write(&p, junit::render(last))
                    .with_context(|| format!("{}: cannot write", p.display()))?;
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
