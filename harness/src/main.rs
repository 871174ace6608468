//! `injector-harness`: run scenario files and report, or write a new one.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use injector_harness::cluster::Backend;
use injector_harness::options::RunFlags;
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
        #[command(flatten)]
        flags: RunFlags,
        /// Also write a JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
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
            flags,
            junit: junit_path,
            snapshots,
            accept,
            no_snapshots,
        } => {
            // The environment first (what `cargo test --features e2e`
            // reads), then the flags over it.
            let options = flags.options()?;
            let backend = options.backend;
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
            // Said when the signal comes, before the sweep that follows it.
            let stop = async {
                let code = interrupted().await;
                eprintln!("interrupted; cleaning up");
                code
            };
            let results = runtime.block_on(run::run_until(&files, &options, progress, stop));
            let results = match results {
                Ok(r) => r,
                Err(code) => {
                    // The run was dropped and what it left swept; an aborted
                    // scenario's task may still be finishing its own
                    // cleanup: give it a moment, not forever.
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
