//! Open-loop load over TLS against the real `sidecar-injector serve` binary.
//!
//! It generates certificates, starts the server as a child process (so its
//! memory is measured alone), sends AdmissionReviews at a fixed rate for a
//! fixed time, and reports latency percentiles, throughput and the server's
//! resident memory. The sender never waits for responses (each request is
//! its own task), so a slow server cannot slow the offered load; latency is
//! measured from the moment each request is dispatched. How late the
//! dispatches were against their schedule (tokio's timer has a 1 ms
//! granularity) is reported separately, so it is not mistaken for server time.
//!
//! cargo build --release -p sidecar-injector && \
//!   cargo run --release -p sidecar-injector --example loadgen -- --rate 2000 --seconds 10

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::json;
use tokio::sync::Mutex;

#[derive(Parser)]
struct Args {
    /// Requests per second to send.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Environment variables in the app container of each pod.
    #[arg(long, default_value_t = 0)]
    env: usize,
    /// Requests allowed in flight before the run counts as overloaded.
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Use HTTP/1.1 connections instead of one multiplexed HTTP/2 connection.
    #[arg(long)]
    http1: bool,
    /// The server binary (default: the release build next to this example).
    #[arg(long)]
    server: Option<std::path::PathBuf>,
}

fn body(env: usize) -> Vec<u8> {
    let env: Vec<_> = (0..env)
        .map(|i| json!({"name": format!("VAR_{i}"), "value": format!("v{i}")}))
        .collect();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "backend-6bdf5d484b-", "namespace": "default", "labels": {"app": "backend"}},
        "spec": {"containers": [{"name": "backend", "image": "backend-service:v1",
            "ports": [{"containerPort": 10000, "protocol": "TCP"}], "env": env}]}
    });
    serde_json::to_vec(&sidecar_injector::admission::pod_create_review(
        "load", "default", pod,
    ))
    .unwrap_or_default()
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

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let server_bin = match args.server {
        Some(p) => p,
        None => {
            let exe = std::env::current_exe()?;
            // target/release/examples/loadgen -> target/release/sidecar-injector
            exe.parent()
                .and_then(|p| p.parent())
                .map(|p| p.join("sidecar-injector"))
                .context("cannot locate the server binary; pass --server")?
        }
    };
    if !server_bin.exists() {
        bail!(
            "{}: not built (cargo build --release -p sidecar-injector)",
            server_bin.display()
        );
    }

    let dir = tempfile::tempdir()?;
    let bundle =
        sidecar_injector::certs::generate("sidecar-injector", "load", &["127.0.0.1".into()])?;
    bundle.write_to(dir.path())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = Command::new(&server_bin)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.path().join("tls.key"))
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", server_bin.display()))?;
    let pid = child.id();

    let mut builder = reqwest::Client::builder();
    if args.http1 {
        builder = builder.http1_only();
    }
    let client = builder
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(bundle.ca_pem.as_bytes())?)
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(5))
        .build()?;
    let url = format!("https://127.0.0.1:{port}/mutate");
    let ready = Instant::now();
    loop {
        if client
            .get(url.replace("/mutate", "/readyz"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        if ready.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            bail!("server did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_idle = rss_kib(pid, "VmRSS:");
    let payload = axum::body::Bytes::from(body(args.env));

    // Warm the connection pool before measuring.
    for _ in 0..200 {
        let _ = client
            .post(&url)
            .header("content-type", "application/json")
            .body(payload.clone())
            .send()
            .await;
    }

    let latencies = Arc::new(Mutex::new(Vec::with_capacity(
        (args.rate * args.seconds) as usize,
    )));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let total = args.rate * args.seconds;
    let period = Duration::from_secs_f64(1.0 / args.rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let mut overloaded = false;
    let mut lag = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let dispatched = Instant::now();
        lag.push(dispatched.saturating_duration_since(scheduled));
        if in_flight.load(std::sync::atomic::Ordering::Relaxed) >= args.max_in_flight {
            overloaded = true;
        }
        let (client, url, payload) = (client.clone(), url.clone(), payload.clone());
        let (latencies, errors, in_flight) = (latencies.clone(), errors.clone(), in_flight.clone());
        in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tasks.push(tokio::spawn(async move {
            let ok = match client
                .post(&url)
                .header("content-type", "application/json")
                .body(payload)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            };
            let took = dispatched.elapsed();
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            if ok {
                latencies.lock().await.push(took);
            } else {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let wall = start.elapsed();
    let rss = rss_kib(pid, "VmRSS:");
    let hwm = rss_kib(pid, "VmHWM:");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();

    let mut l = latencies.lock().await.clone();
    l.sort();
    let ok = l.len() as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "requests: {total} sent at {} req/s for {} s over {}, env vars per pod: {}",
        args.rate,
        args.seconds,
        if args.http1 { "HTTP/1.1" } else { "HTTP/2" },
        args.env
    );
    println!(
        "ok: {} errors: {} wall: {:.2} s achieved: {:.0} req/s",
        l.len(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        wall.as_secs_f64(),
        ok / wall.as_secs_f64()
    );
    println!(
        "latency ms: p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
        ms(percentile(&l, 0.50)),
        ms(percentile(&l, 0.90)),
        ms(percentile(&l, 0.99)),
        ms(percentile(&l, 0.999)),
        ms(percentile(&l, 1.0))
    );
    lag.sort();
    println!(
        "dispatch lag behind schedule ms: p50 {:.3} p99 {:.3} max {:.3}",
        ms(percentile(&lag, 0.50)),
        ms(percentile(&lag, 0.99)),
        ms(percentile(&lag, 1.0))
    );
    let mib = |k: Option<u64>| k.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0));
    println!(
        "server RSS MiB: idle {} after {} peak {}",
        mib(rss_idle),
        mib(rss),
        mib(hwm)
    );
    if overloaded {
        println!(
            "note: more than {} requests were in flight at some point",
            args.max_in_flight
        );
    }
    Ok(())
}
