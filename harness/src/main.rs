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

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,kube_client=off")),
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
        } => {
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
            let total = files.len();
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
                    results = run::run_all(&files, backend, parallel, progress) => Ok(results),
                    _ = tokio::signal::ctrl_c() => Err(()),
                }
            });
            let results = match results {
                Ok(r) => r,
                Err(()) => {
                    // Scenario tasks are abandoned mid-way; remove what they
                    // may have left on a real cluster.
                    eprintln!("interrupted; cleaning up");
                    if backend == Backend::Kubeconfig {
                        let scenarios: Vec<_> = files
                            .iter()
                            .filter_map(|f| run::load_scenario(f).ok())
                            .collect();
                        if let Err(e) = runtime
                            .block_on(injector_harness::cluster::kubeconfig::sweep(&scenarios))
                        {
                            eprintln!("cleanup failed: {e:#}");
                        }
                    }
                    return Ok(ExitCode::from(130));
                }
            };
            let wall = started.elapsed();

            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "\n{:<28} {:>4} {:<22} {:>8} {:<6} {:>7}",
                "SCENARIO", "PODS", "READY", "INJECTED", "RESULT", "TIME"
            )?;
            let mut failed = 0;
            for (path, r) in &results {
                match r {
                    Ok(run) => {
                        let status_key = sidecar_injector::config::DEFAULT_STATUS_ANNOTATION;
                        let ready: Vec<String> = run
                            .observed
                            .pods
                            .iter()
                            .map(|p| injector_harness::status::pod_line(p).ready)
                            .collect();
                        let mut ready_summary = ready.join(" ");
                        if ready_summary.len() > 22 {
                            ready_summary.truncate(19);
                            ready_summary.push_str("...");
                        }
                        if !run.passed() {
                            failed += 1;
                        }
                        writeln!(
                            out,
                            "{:<28} {:>4} {:<22} {:>8} {:<6} {:>5}ms",
                            run.name,
                            run.observed.pods.len(),
                            ready_summary,
                            run.injected_count(status_key),
                            if run.passed() { "pass" } else { "FAIL" },
                            run.elapsed.as_millis()
                        )?;
                    }
                    Err(_) => {
                        failed += 1;
                        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
                        writeln!(
                            out,
                            "{name:<28} {:>4} {:<22} {:>8} {:<6} {:>7}",
                            "-", "-", "-", "ERROR", "-"
                        )?;
                    }
                }
            }
            writeln!(
                out,
                "\n{} scenarios, {} passed, {} failed in {} ms ({} backend)",
                results.len(),
                results.len() - failed,
                failed,
                wall.as_millis(),
                backend.as_str()
            )?;
            for (path, r) in &results {
                match r {
                    Ok(run) if !run.passed() => {
                        writeln!(
                            out,
                            "\n{} ({}):\n{}",
                            run.name,
                            path.display(),
                            run.report()
                        )?;
                    }
                    Err(e) => writeln!(out, "\n{}: {e:#}", path.display())?,
                    _ => {}
                }
            }
            if let Some(p) = junit_path {
                std::fs::write(&p, junit::render(&results))
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
