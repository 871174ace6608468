//! `sidecar-injector`: the command line over the library. Everything here is
//! argument parsing, reading and printing; the work is in the library.

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use sidecar_injector::server::{self, AppState, ConfigSource, ServerOptions};
use sidecar_injector::{certs, manifests, workload, Config, Injector};
use tower::ServiceExt;

// mimalloc: an admission allocates and frees many small JSON values on two
// worker threads, and glibc malloc spent about a fifth of the server's CPU on
// that (arena locking, consolidation); with mimalloc the server used 18 %
// less CPU per request (docs/measurements/2026-11-30.md). `no_thp`: with transparent
// huge pages its arenas doubled the peak RSS (22 MB instead of 11).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sidecar-injector",
    version,
    about = "A mutating admission webhook that injects a sidecar proxy into pods"
)]
struct Cli {
    /// Log format (logs go to stderr; RUST_LOG filters them).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the webhook over HTTPS (POST /mutate or /inject, /healthz, /readyz, /metrics).
    Serve {
        /// Injection config (YAML); reloaded when it changes. Default: the built-in config.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serving certificate (PEM); reloaded when it changes.
        #[arg(long)]
        tls_cert: PathBuf,
        /// Serving key (PEM); reloaded when it changes.
        #[arg(long)]
        tls_key: PathBuf,
        #[arg(long, default_value = "0.0.0.0:8443")]
        addr: SocketAddr,
        /// The injector's own namespace, never injected.
        #[arg(long, env = "POD_NAMESPACE")]
        namespace: Option<String>,
        /// Largest accepted request body, in bytes.
        #[arg(long, default_value_t = server::DEFAULT_BODY_LIMIT)]
        body_limit: usize,
        /// Seconds between checks of the config and certificate files.
        #[arg(long, default_value_t = 1.0)]
        reload_interval: f64,
        /// Seconds in-flight requests get to finish on SIGTERM.
        #[arg(long, default_value_t = 10.0)]
        shutdown_grace: f64,
        /// Fault injection for end-to-end tests: delay every admission review
        /// by this many milliseconds (the harness's slowInjector step on kind).
        #[arg(long, default_value_t = 0)]
        review_delay_ms: u64,
    },
    /// Answer one AdmissionReview from stdin on stdout, through the server's handler.
    Review {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The injector's own namespace, never injected.
        #[arg(long, env = "POD_NAMESPACE")]
        namespace: Option<String>,
    },
    /// Inject offline into multi-document YAML (Pods and workloads), like `istioctl kube-inject`.
    Inject {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Input file, or - for stdin.
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// Namespace for objects that name none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
    },
    /// Say, for each pod or pod template, whether it would be injected and why.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Input file, or - for stdin.
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// Evaluate every object as if it were in this namespace.
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// Generate a CA and a serving certificate; print the caBundle.
    Certs {
        /// Service name the apiserver calls.
        #[arg(long, default_value = "sidecar-injector")]
        service: String,
        #[arg(long, default_value = "sidecar-injector")]
        namespace: String,
        /// Output directory for ca.crt, tls.crt and tls.key.
        #[arg(long)]
        out: PathBuf,
        /// Extra subject alternative names (DNS names or IP addresses).
        #[arg(long = "san")]
        sans: Vec<String>,
    },
    /// Print deployable YAML: Namespace, Secret, ConfigMap, Deployment, Service, PDB, webhook.
    Manifests {
        #[arg(long, default_value = "sidecar-injector")]
        namespace: String,
        #[arg(long, default_value = "sidecar-injector:latest")]
        image: String,
        #[arg(long, default_value = "sidecar-injector")]
        service: String,
        /// Injection config to ship in the ConfigMap. Default: the built-in config.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 2)]
        replicas: i32,
        #[arg(long, value_parser = ["Fail", "Ignore"], default_value = "Fail")]
        failure_policy: String,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=30))]
        timeout_seconds: i32,
        /// Use the certificates in this directory (from `certs`) instead of new ones.
        #[arg(long)]
        certs_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The one-shot commands speak through stdout/stderr; only the server
    // logs request by request.
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "error"
    };
    init_logging(cli.log_format, default_level);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour only helps a person at a terminal; in a pod's log, a file
        // or CI the escape codes are noise around every field.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::builtin(),
    })
}

fn read_input(file: &str) -> Result<(String, String)> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading stdin")?;
        Ok((s, "<stdin>".into()))
    } else {
        let s = std::fs::read_to_string(file).with_context(|| format!("{file}: cannot read"))?;
        Ok((s, file.to_string()))
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Serve {
            config,
            tls_cert,
            tls_key,
            addr,
            namespace,
            body_limit,
            reload_interval,
            shutdown_grace,
            review_delay_ms,
        } => {
            let mut opts = ServerOptions::new(addr, tls_cert, tls_key);
            opts.config = config.map_or(ConfigSource::Builtin, ConfigSource::File);
            opts.own_namespace = namespace;
            opts.body_limit = body_limit;
            opts.reload_interval = Duration::from_secs_f64(reload_interval.max(0.05));
            opts.shutdown_grace = Duration::from_secs_f64(shutdown_grace.max(0.0));
            opts.review_delay = Duration::from_millis(review_delay_ms);
            runtime()?.block_on(async {
                let server = server::start(opts).await?;
                server.run_until_signal().await?;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Review { config, namespace } => {
            let state = AppState::new(load_config(config.as_deref())?, namespace);
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .context("reading stdin")?;
            let (status, out) = runtime()?.block_on(async move {
                let request = axum::http::Request::post("/mutate")
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body))?;
                let response = server::router(state, server::DEFAULT_BODY_LIMIT)
                    .oneshot(request)
                    .await?;
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
                anyhow::Ok((status, bytes))
            })?;
            if !status.is_success() {
                bail!("{}", String::from_utf8_lossy(&out).trim());
            }
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&out)?;
            stdout.write_all(b"\n")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inject {
            config,
            file,
            namespace,
        } => {
            let injector = Injector::new(load_config(config.as_deref())?);
            let (input, origin) = read_input(&file)?;
            let (output, verdicts) =
                workload::inject_documents(&injector, &input, &origin, &namespace)?;
            for v in &verdicts {
                for w in &v.warnings {
                    eprintln!("warning: {} {}: {w}", v.kind, v.name);
                }
            }
            std::io::stdout().lock().write_all(output.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            config,
            file,
            namespace,
        } => {
            let injector = Injector::new(load_config(config.as_deref())?);
            let (input, origin) = read_input(&file)?;
            let verdicts =
                workload::check_documents(&injector, &input, &origin, namespace.as_deref())?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<4} {:<12} {:<30} {:<16} {:<7} {:<22} DETAIL",
                "DOC", "KIND", "NAME", "NAMESPACE", "INJECT", "REASON"
            )?;
            for v in &verdicts {
                let inject = if v.denied.is_some() {
                    "denied"
                } else if v.inject {
                    "yes"
                } else {
                    "no"
                };
                let detail = v.denied.clone().unwrap_or_else(|| v.detail.clone());
                writeln!(
                    out,
                    "{:<4} {:<12} {:<30} {:<16} {:<7} {:<22} {}",
                    v.document,
                    v.kind,
                    v.name,
                    v.namespace,
                    inject,
                    v.reason.as_str(),
                    detail
                )?;
                for w in &v.warnings {
                    writeln!(out, "{:<4} warning: {w}", "")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Certs {
            service,
            namespace,
            out,
            sans,
        } => {
            let bundle = certs::generate(&service, &namespace, &sans)?;
            bundle.write_to(&out)?;
            eprintln!(
                "wrote {0}/ca.crt, {0}/tls.crt and {0}/tls.key for {service}.{namespace}.svc",
                out.display()
            );
            println!("{}", bundle.ca_bundle());
            Ok(ExitCode::SUCCESS)
        }
        Command::Manifests {
            namespace,
            image,
            service,
            config,
            replicas,
            failure_policy,
            timeout_seconds,
            certs_dir,
        } => {
            let certs = match certs_dir {
                Some(dir) => certs::CertBundle::read_from(&dir)?,
                None => certs::generate(&service, &namespace, &[])?,
            };
            let opts = manifests::ManifestOptions {
                namespace,
                service,
                image,
                replicas,
                failure_policy,
                timeout_seconds,
                config: load_config(config.as_deref())?,
                certs,
            };
            print!("{}", manifests::render(&opts));
            Ok(ExitCode::SUCCESS)
        }
    }
}
