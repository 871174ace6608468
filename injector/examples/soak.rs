//! Soak under change: open-loop AdmissionReviews over TLS against the real
//! `sidecar-injector serve` binary while its serving certificate is rotated
//! twice and its config file is replaced once with a good file and once with
//! a broken one.
//!
//! Two clients run side by side:
//! - the load: `--rate` req/s on one HTTP/2 connection, as an apiserver
//!   sends them (open loop: no request waits for another);
//! - the handshake probe: `--probe-rate` req/s over HTTP/1.1 with no
//!   connection reuse, so every request is a new TLS handshake, and the
//!   certificate each handshake got is recorded.
//!
//! The run is cut in six equal phases; each change happens at the start of
//! its phase: steady, cert rotation 1, good config, cert rotation 2, broken
//! config, steady again. Per phase it reports requests, failures, latency
//! percentiles, which config answered (the built-in one remaps the clashing
//! sidecar to 10001, the replacement keeps 10000), and which certificate new
//! handshakes saw. The clients trust all three CAs, as a webhook's caBundle
//! does while a CA is rotated. The server's RSS is sampled every 250 ms.
//! It exits non-zero if any request or handshake failed or a change was not
//! seen to take effect (or, for the broken config, seen to take effect).
//!
//! cargo build --release -p sidecar-injector && \
//!   cargo run --release -p sidecar-injector --example soak -- --rate 2000 --seconds 60

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::Parser;
use serde_json::{json, Value};
use sidecar_injector::certs::{self, CertBundle};

#[derive(Parser)]
struct Args {
    /// Requests per second on the HTTP/2 connection.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// New-connection requests per second (each one a TLS handshake).
    #[arg(long, default_value_t = 50)]
    probe_rate: u64,
    /// Length of the run in seconds (six equal phases).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The server binary (default: the release build next to this example).
    #[arg(long)]
    server: Option<std::path::PathBuf>,
}

const PHASES: [&str; 6] = [
    "steady",
    "cert rotation 1",
    "config replaced (good)",
    "cert rotation 2",
    "config replaced (broken)",
    "steady after changes",
];

/// Which config answered a review: the built-in one moves the sidecar off
/// the app's 10000, the replacement (`onPortConflict: keep`) leaves it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Answer {
    Remapped,
    Kept,
}

#[derive(Default)]
struct Phase {
    latencies: Vec<Duration>,
    failed: u64,
    remapped: u64,
    kept: u64,
    handshakes: [u64; 3],
    handshakes_failed: u64,
    probe_latencies: Vec<Duration>,
}

fn review() -> Vec<u8> {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "backend-6bdf5d484b-", "namespace": "default", "labels": {"app": "backend"}},
        "spec": {"containers": [{"name": "backend", "image": "backend-service:v1",
            "ports": [{"containerPort": 10000, "protocol": "TCP"}]}]}
    });
    serde_json::to_vec(&sidecar_injector::admission::pod_create_review(
        "soak", "default", pod,
    ))
    .unwrap_or_default()
}

/// Reads which config answered from a response body.
fn answer(body: &[u8]) -> Option<Answer> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v["response"]["allowed"] != json!(true) {
        return None;
    }
    let patch = base64::engine::general_purpose::STANDARD
        .decode(v["response"]["patch"].as_str()?)
        .ok()?;
    let text = String::from_utf8(patch).ok()?;
    Some(if text.contains("10001") {
        Answer::Remapped
    } else {
        Answer::Kept
    })
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Replaces `path` by writing a sibling and renaming it over, as a
/// ConfigMap or Secret volume update swaps files.
fn replace(path: &Path, content: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn rotate(dir: &Path, bundle: &CertBundle) -> Result<()> {
    replace(&dir.join("tls.crt"), &bundle.cert_pem)?;
    replace(&dir.join("tls.key"), &bundle.key_pem)
}

fn leaf_der(pem: &str) -> Result<Vec<u8>> {
    let cert = rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .context("no certificate in PEM")??;
    Ok(cert.to_vec())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let server_bin = match args.server {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .and_then(|p| p.parent())
            .map(|p| p.join("sidecar-injector"))
            .context("cannot locate the server binary; pass --server")?,
    };
    if !server_bin.exists() {
        bail!(
            "{}: not built (cargo build --release -p sidecar-injector)",
            server_bin.display()
        );
    }

    let dir = tempfile::tempdir()?;
    let bundles: Vec<CertBundle> = (0..3)
        .map(|_| certs::generate("sidecar-injector", "soak", &["127.0.0.1".into()]))
        .collect::<Result<_, _>>()?;
    let leaves: Vec<Vec<u8>> = bundles
        .iter()
        .map(|b| leaf_der(&b.cert_pem))
        .collect::<Result<_>>()?;
    bundles[0].write_to(dir.path())?;
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, sidecar_injector::config::DEFAULT_CONFIG_YAML)?;
    let good = sidecar_injector::config::DEFAULT_CONFIG_YAML
        .replace("onPortConflict: remap", "onPortConflict: keep");
    if good == sidecar_injector::config::DEFAULT_CONFIG_YAML {
        bail!("the built-in config no longer says onPortConflict: remap");
    }
    let log_path = dir.path().join("server.log");

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = Command::new(&server_bin)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(&config)
        .arg("--tls-cert")
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.path().join("tls.key"))
        .args(["--reload-interval", "0.5", "--log-format", "json"])
        // info: one line per review would be 2,000 lines a second; the
        // reload lines are what this run reads back.
        .env("RUST_LOG", "warn,sidecar_injector::server=warn")
        .stderr(std::fs::File::create(&log_path)?)
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", server_bin.display()))?;
    let pid = child.id();

    let mut roots = Vec::new();
    for b in &bundles {
        roots.push(reqwest::Certificate::from_pem(b.ca_pem.as_bytes())?);
    }
    let build = |b: reqwest::ClientBuilder| -> Result<reqwest::Client> {
        let mut b = b.tls_built_in_root_certs(false);
        for r in &roots {
            b = b.add_root_certificate(r.clone());
        }
        Ok(b.timeout(Duration::from_secs(5)).build()?)
    };
    let load = build(reqwest::Client::builder().http2_prior_knowledge())?;
    let probe = build(
        reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(0)
            .tls_info(true),
    )?;
    let base = format!("https://127.0.0.1:{port}");
    let url = format!("{base}/mutate");
    let ready = Instant::now();
    while load.get(format!("{base}/readyz")).send().await.is_err() {
        if ready.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            bail!("server did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let payload = axum::body::Bytes::from(review());
    for _ in 0..200 {
        let _ = load
            .post(&url)
            .header("content-type", "application/json")
            .body(payload.clone())
            .send()
            .await;
    }

    let phase_len = Duration::from_secs_f64(args.seconds as f64 / PHASES.len() as f64);
    let phases: Arc<Vec<Mutex<Phase>>> =
        Arc::new((0..PHASES.len()).map(|_| Mutex::default()).collect());
    let start = Instant::now();
    let phase_of = move |at: Instant| -> usize {
        ((at.saturating_duration_since(start).as_secs_f64() / phase_len.as_secs_f64()) as usize)
            .min(PHASES.len() - 1)
    };
    let rss_start = rss_kib(pid, "VmRSS:");

    // The changes, each at the start of its phase.
    let changes = {
        let (dir, config, bundles) = (dir.path().to_path_buf(), config.clone(), bundles.clone());
        let good = good.clone();
        tokio::spawn(async move {
            let mut done = Vec::new();
            for phase in 1..PHASES.len() - 1 {
                tokio::time::sleep_until((start + phase_len * phase as u32).into()).await;
                let result = match phase {
                    1 => rotate(&dir, &bundles[1]),
                    2 => replace(&config, &good),
                    3 => rotate(&dir, &bundles[2]),
                    _ => replace(&config, "onPortConflict: [broken\n"),
                };
                done.push((phase, start.elapsed(), result.is_ok()));
            }
            done
        })
    };

    // Memory, every 250 ms.
    let rss_samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let samples = rss_samples.clone();
        let end = start + Duration::from_secs(args.seconds);
        tokio::spawn(async move {
            while Instant::now() < end {
                if let Some(k) = rss_kib(pid, "VmRSS:") {
                    samples.lock().unwrap().push(k);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    // The handshake probe.
    let prober = {
        let (phases, url, payload, leaves) =
            (phases.clone(), url.clone(), payload.clone(), leaves.clone());
        let total = args.probe_rate * args.seconds;
        let period = Duration::from_secs_f64(1.0 / args.probe_rate.max(1) as f64);
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for i in 0..total {
                let scheduled = start + period.mul_f64(i as f64);
                tokio::time::sleep_until(scheduled.into()).await;
                let dispatched = Instant::now();
                let (probe, url, payload, phases, leaves) = (
                    probe.clone(),
                    url.clone(),
                    payload.clone(),
                    phases.clone(),
                    leaves.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let result = probe
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(payload)
                        .send()
                        .await;
                    let mut p = phases[phase_of(dispatched)].lock().unwrap();
                    match result {
                        Ok(r) if r.status().is_success() => {
                            let served = r
                                .extensions()
                                .get::<reqwest::tls::TlsInfo>()
                                .and_then(|t| t.peer_certificate())
                                .and_then(|der| leaves.iter().position(|l| l == der));
                            match served {
                                Some(i) => p.handshakes[i] += 1,
                                None => p.handshakes_failed += 1,
                            }
                            p.probe_latencies.push(dispatched.elapsed());
                        }
                        _ => p.handshakes_failed += 1,
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };

    // The load.
    let total = args.rate * args.seconds;
    let period = Duration::from_secs_f64(1.0 / args.rate as f64);
    let unreadable = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let dispatched = Instant::now();
        let (load, url, payload, phases, unreadable) = (
            load.clone(),
            url.clone(),
            payload.clone(),
            phases.clone(),
            unreadable.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = match load
                .post(&url)
                .header("content-type", "application/json")
                .body(payload)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => r.bytes().await.ok(),
                _ => None,
            };
            let took = dispatched.elapsed();
            let mut p = phases[phase_of(dispatched)].lock().unwrap();
            match body.as_deref().map(answer) {
                Some(Some(a)) => {
                    p.latencies.push(took);
                    match a {
                        Answer::Remapped => p.remapped += 1,
                        Answer::Kept => p.kept += 1,
                    }
                }
                Some(None) => {
                    unreadable.fetch_add(1, Ordering::Relaxed);
                    p.failed += 1;
                }
                None => p.failed += 1,
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let _ = prober.await;
    let _ = sampler.await;
    let changes = changes.await?;
    let wall = start.elapsed();
    let rss_end = rss_kib(pid, "VmRSS:");
    let hwm = rss_kib(pid, "VmHWM:");
    let metrics = load
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();

    println!(
        "soak: {} s, {} req/s on one HTTP/2 connection + {} req/s each on a new TLS connection; server {}",
        args.seconds,
        args.rate,
        args.probe_rate,
        server_bin.display()
    );
    for (phase, at, ok) in &changes {
        println!(
            "  at {:5.1} s: {}{}",
            at.as_secs_f64(),
            PHASES[*phase],
            if *ok { "" } else { " (FAILED to write)" }
        );
    }
    println!(
        "{:<26} {:>7} {:>6} {:>8} {:>8} {:>8} {:>9} {:>7} {:>11} {:>9} {:>12}",
        "phase",
        "ok",
        "failed",
        "p50 ms",
        "p99 ms",
        "max ms",
        "remapped",
        "kept",
        "handshakes",
        "hs failed",
        "served certs"
    );
    let mut problems = Vec::new();
    let (mut all_ok, mut all_failed, mut all_hs, mut all_hs_failed) = (0, 0, 0, 0);
    let mut all = Vec::new();
    for (i, p) in phases.iter().enumerate() {
        let mut p = p.lock().unwrap();
        p.latencies.sort();
        let hs: u64 = p.handshakes.iter().sum();
        println!(
            "{:<26} {:>7} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>9} {:>7} {:>11} {:>9} {:>12}",
            PHASES[i],
            p.latencies.len(),
            p.failed,
            ms(percentile(&p.latencies, 0.50)),
            ms(percentile(&p.latencies, 0.99)),
            ms(percentile(&p.latencies, 1.0)),
            p.remapped,
            p.kept,
            hs,
            p.handshakes_failed,
            format!("{:?}", p.handshakes)
        );
        all_ok += p.latencies.len();
        all_failed += p.failed;
        all_hs += hs;
        all_hs_failed += p.handshakes_failed;
        all.extend_from_slice(&p.latencies);
        // What each phase must show once its change is in (the first
        // second of a phase may still see the previous state: the files are
        // polled every 0.5 s).
        match i {
            0 | 1 if p.kept > 0 => problems.push(format!(
                "{}: answered by a config not yet written",
                PHASES[i]
            )),
            0 if p.handshakes[1] + p.handshakes[2] > 0 => {
                problems.push(format!("{}: served a cert not yet written", PHASES[i]))
            }
            1 if p.handshakes[1] == 0 => problems.push(format!(
                "{}: the first new certificate was never served",
                PHASES[i]
            )),
            2 if p.kept == 0 => {
                problems.push(format!("{}: the good config never took effect", PHASES[i]))
            }
            3 if p.handshakes[2] == 0 => problems.push(format!(
                "{}: the second new certificate was never served",
                PHASES[i]
            )),
            4 | 5 if p.remapped > 0 => problems.push(format!(
                "{}: the broken config undid the good one",
                PHASES[i]
            )),
            _ => {}
        }
        if i >= 3 && p.handshakes[0] > 0 {
            problems.push(format!("{}: the first certificate came back", PHASES[i]));
        }
    }
    all.sort();
    println!(
        "{:<26} {:>7} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>9} {:>7} {:>11} {:>9}",
        "whole run",
        all_ok,
        all_failed,
        ms(percentile(&all, 0.50)),
        ms(percentile(&all, 0.99)),
        ms(percentile(&all, 1.0)),
        "",
        "",
        all_hs,
        all_hs_failed
    );
    println!(
        "achieved: {:.0} req/s over {:.1} s",
        all_ok as f64 / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    let samples = rss_samples.lock().unwrap().clone();
    let mib = |k: Option<u64>| k.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0));
    println!(
        "server RSS MiB: start {} peak sampled {} end {} (VmHWM {})",
        mib(rss_start),
        mib(samples.iter().copied().max()),
        mib(rss_end),
        mib(hwm)
    );
    let reloads: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("_reloads_total{"))
        .collect();
    println!("server reload counters: {}", reloads.join("; "));

    if all_failed > 0 {
        problems.push(format!(
            "{all_failed} failed requests ({} answered but unreadable)",
            unreadable.load(Ordering::Relaxed)
        ));
    }
    if all_hs_failed > 0 {
        problems.push(format!("{all_hs_failed} failed handshakes"));
    }
    if !metrics.contains("sidecar_injector_config_reloads_total{result=\"failure\"} 1") {
        problems.push("the broken config was not reported as a failed reload".into());
    }
    if problems.is_empty() {
        println!("result: ok");
        Ok(())
    } else {
        for p in &problems {
            println!("problem: {p}");
        }
        println!(
            "server log: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        bail!("{} problems", problems.len())
    }
}
