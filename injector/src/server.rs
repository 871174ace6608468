//! The HTTPS webhook server: axum routes over rustls, with the config and the
//! serving certificate reloaded from disk while connections stay up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use http_body_util::BodyExt;

use crate::admission::{self, ReviewError};
use crate::config::{Config, ConfigError};
use crate::inject::Injector;
use crate::metrics::{Metrics, ReasonLabels};
use crate::tls::{self, TlsError};
use crate::watch;

/// The largest AdmissionReview accepted. The apiserver caps objects at about
/// 3 MiB and a review may carry the object twice (object and oldObject).
pub const DEFAULT_BODY_LIMIT: usize = 6 * 1024 * 1024;

/// Where the injection config comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// The embedded default.
    Builtin,
    /// A file, reloaded when its content changes.
    File(PathBuf),
    /// A config built in code (tests, embedding); never reloaded.
    Inline(Box<Config>),
}

impl ConfigSource {
    pub fn load(&self) -> Result<Config, ConfigError> {
        match self {
            ConfigSource::Builtin => Ok(Config::builtin()),
            ConfigSource::File(p) => Config::load(p),
            ConfigSource::Inline(c) => Ok((**c).clone()),
        }
    }
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub addr: SocketAddr,
    pub config: ConfigSource,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The injector's own namespace, never injected.
    pub own_namespace: Option<String>,
    pub body_limit: usize,
    /// How often the config and cert files are checked for changes.
    pub reload_interval: Duration,
    /// How long in-flight requests get to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Fault injection for end-to-end tests: every admission review (POST)
    /// waits this long before it is answered, so a webhook's
    /// `timeoutSeconds` can be exceeded on purpose. Zero (the default) in
    /// any real deployment.
    pub review_delay: Duration,
}

impl ServerOptions {
    pub fn new(addr: SocketAddr, tls_cert: PathBuf, tls_key: PathBuf) -> ServerOptions {
        ServerOptions {
            addr,
            config: ConfigSource::Builtin,
            tls_cert,
            tls_key,
            own_namespace: None,
            body_limit: DEFAULT_BODY_LIMIT,
            reload_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            review_delay: Duration::ZERO,
        }
    }
}

/// An I/O or TLS cause is part of the message and deliberately not exposed
/// as `source()`: printers that walk the chain (anyhow's `{:#}`, as the
/// binary prints errors) would otherwise show it twice.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
}

/// Shared by every request: the current engine, metrics and readiness.
#[derive(Debug)]
pub struct AppState {
    injector: ArcSwap<Injector>,
    own_namespace: Option<String>,
    pub metrics: Metrics,
    ready: AtomicBool,
}

impl AppState {
    pub fn new(config: Config, own_namespace: Option<String>) -> Arc<AppState> {
        let injector = Injector::new(config).with_own_namespace(own_namespace.clone());
        Arc::new(AppState {
            injector: ArcSwap::from_pointee(injector),
            own_namespace,
            metrics: Metrics::new(),
            ready: AtomicBool::new(true),
        })
    }

    /// The engine in force now.
    pub fn injector(&self) -> Arc<Injector> {
        self.injector.load_full()
    }

    /// Puts a new config in force for every later request.
    pub fn swap_config(&self, config: Config) {
        let injector = Injector::new(config).with_own_namespace(self.own_namespace.clone());
        self.injector.store(Arc::new(injector));
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// The routes: `/mutate` and `/inject` (the same handler), `/healthz`,
/// `/readyz`, `/metrics`.
pub fn router(state: Arc<AppState>, body_limit: usize) -> Router {
    let mutate = post(move |state, headers, body| mutate(state, headers, body, body_limit));
    Router::new()
        .route("/mutate", mutate.clone())
        .route("/inject", mutate)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// How long a refused request's body may keep arriving after the answer.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// A request body read up to a limit.
enum BodyRead {
    Complete(Bytes),
    /// Over the limit: how many bytes were read, and the rest, unread.
    TooLarge(usize, Body),
    Failed(String),
}

/// Reads the body, stopping as soon as it is known to exceed `limit` (from
/// Content-Length, or from the bytes seen) instead of buffering it.
async fn read_limited(mut body: Body, limit: usize) -> BodyRead {
    let declared = body.size_hint().lower();
    if declared > limit as u64 {
        return BodyRead::TooLarge(0, body);
    }
    let mut buf = Vec::with_capacity(declared as usize);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > limit {
                        return BodyRead::TooLarge(buf.len() + data.len(), body);
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Err(e) => return BodyRead::Failed(e.to_string()),
        }
    }
    BodyRead::Complete(Bytes::from(buf))
}

/// Reads and discards the rest of a refused request's body in the
/// background, so the answer sent meanwhile is followed by a normal end of
/// stream. At most twice `limit` is read per request in all (`read` bytes
/// were already), and for at most [`DRAIN_TIME`]: a refused body costs no
/// more than two accepted ones.
///
/// Dropping an unread body makes HTTP/2 end the stream with RST_STREAM
/// right after the response. RFC 9113 allows that (NO_ERROR), but clients
/// still uploading may report only the reset: curl says "Stream error in
/// the HTTP/2 framing layer" and never shows the 413. A body that goes past
/// the budget is dropped after all (and reset), so a client cannot make the
/// server read without end.
fn drain(mut body: Body, limit: usize, read: usize) {
    let budget = (2 * limit).saturating_sub(read) as u64;
    if body.is_end_stream() || body.size_hint().lower() > budget {
        return;
    }
    tokio::spawn(async move {
        let read = async {
            let mut left = budget;
            while let Some(Ok(frame)) = body.frame().await {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                match left.checked_sub(len) {
                    Some(l) => left = l,
                    None => break,
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, read).await;
    });
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_ready() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

async fn mutate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
    body_limit: usize,
) -> Response {
    const PATH: &str = "/mutate";
    let m = &state.metrics;
    let fail = |code: StatusCode, kind: &str, message: String| {
        m.request(PATH, code.as_u16());
        m.error(kind);
        tracing::warn!(status = code.as_u16(), error = %message, "admission request refused");
        (code, format!("{message}\n")).into_response()
    };
    if !is_json(&headers) {
        let got = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        drain(body, body_limit, 0);
        return fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be application/json, got {got}"),
        );
    }
    let body = match read_limited(body, body_limit).await {
        BodyRead::Complete(b) => b,
        BodyRead::TooLarge(read, rest) => {
            drain(rest, body_limit, read);
            return fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than the limit of {body_limit} bytes"),
            );
        }
        BodyRead::Failed(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("cannot read the request body: {e}"),
            );
        }
    };

    let started = Instant::now();
    let injector = state.injector();
    let reviewed = match admission::review(&injector, &body) {
        Ok(r) => r,
        Err(e) => {
            let kind = match e {
                ReviewError::Json(_) | ReviewError::Utf8(_) => "bad_json",
                ReviewError::Envelope { .. } => "bad_review",
            };
            return fail(StatusCode::BAD_REQUEST, kind, e.to_string());
        }
    };
    let wire = admission::encode(&reviewed.review);
    let elapsed = started.elapsed();
    m.review_seconds.observe(elapsed.as_secs_f64());
    m.request(PATH, 200);

    let s = &reviewed.summary;
    // The review version the apiserver chose (v1, or v1beta1 for a webhook
    // registered with only that).
    let version = reviewed
        .review
        .types
        .api_version
        .trim_start_matches("admission.k8s.io/");
    let reason = ReasonLabels {
        reason: s.reason.as_str().into(),
    };
    if let Some(message) = &s.denied {
        m.denied.get_or_create(&reason).inc();
        tracing::info!(
            uid = %s.uid, namespace = %s.namespace, pod = %s.name, operation = %s.operation,
            review = version, reason = %s.reason, denied = %message, latency_us = elapsed.as_micros() as u64,
            "pod denied"
        );
    } else {
        if s.injected {
            m.injected.inc();
        } else {
            m.skipped.get_or_create(&reason).inc();
        }
        tracing::info!(
            uid = %s.uid, namespace = %s.namespace, pod = %s.name, operation = %s.operation,
            review = version, injected = s.injected, reason = %s.reason, detail = %s.detail,
            warnings = ?s.warnings, latency_us = elapsed.as_micros() as u64,
            "admission reviewed"
        );
    }
    ([(header::CONTENT_TYPE, "application/json")], wire).into_response()
}

/// A server running in the background.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    handle: Handle<SocketAddr>,
    state: Arc<AppState>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
    grace: Duration,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops taking new connections, marks itself unready, lets in-flight
    /// requests finish within the grace period, then returns.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.state.set_ready(false);
        for w in &self.watchers {
            w.abort();
        }
        self.handle.graceful_shutdown(Some(self.grace));
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// Runs until SIGTERM or Ctrl-C, then shuts down gracefully.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        wait_for_signal().await;
        tracing::info!(grace_s = self.grace.as_secs(), "shutting down");
        self.shutdown().await
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Loads the config and certificate, binds, and serves in the background.
/// Fails before serving if either cannot be loaded (readiness means both are).
pub async fn start(opts: ServerOptions) -> Result<RunningServer, ServerError> {
    start_with(opts, |routes| routes).await
}

/// [`start`], with the routes passed through `wrap` before serving, so an
/// embedder can add middleware around them (the harness adds an injected
/// delay for its fault scenarios). The binary never uses it.
pub async fn start_with(
    opts: ServerOptions,
    wrap: impl FnOnce(Router) -> Router,
) -> Result<RunningServer, ServerError> {
    let config = opts.config.load()?;
    let tls_config = tls::load(&opts.tls_cert, &opts.tls_key)?;
    let state = AppState::new(config, opts.own_namespace.clone());
    let rustls = RustlsConfig::from_config(tls_config);

    let listener = std::net::TcpListener::bind(opts.addr).map_err(|cause| ServerError::Bind {
        addr: opts.addr,
        cause,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|cause| ServerError::Bind {
            addr: opts.addr,
            cause,
        })?;
    let local_addr = listener.local_addr().map_err(|cause| ServerError::Bind {
        addr: opts.addr,
        cause,
    })?;

    let mut watchers = Vec::new();
    if let ConfigSource::File(path) = &opts.config {
        let (path, st) = (path.clone(), state.clone());
        watchers.push(watch::spawn_poll(vec![path.clone()], opts.reload_interval, move || {
            match Config::load(&path) {
                Ok(c) => {
                    st.swap_config(c);
                    Metrics::reload(&st.metrics.config_reloads, true);
                    tracing::info!(path = %path.display(), "config reloaded");
                }
                Err(e) => {
                    Metrics::reload(&st.metrics.config_reloads, false);
                    tracing::error!(error = %e, "config reload failed; the last good config stays in force");
                }
            }
        }));
    }
    {
        let (cert, key, st, rustls) = (
            opts.tls_cert.clone(),
            opts.tls_key.clone(),
            state.clone(),
            rustls.clone(),
        );
        watchers.push(watch::spawn_poll(
            vec![cert.clone(), key.clone()],
            opts.reload_interval,
            move || match tls::load(&cert, &key) {
                Ok(c) => {
                    // Only new handshakes see the new certificate; open
                    // connections keep theirs and are not dropped.
                    rustls.reload_from_config(c);
                    Metrics::reload(&st.metrics.cert_reloads, true);
                    tracing::info!(cert = %cert.display(), "serving certificate reloaded");
                }
                Err(e) => {
                    // A Secret update writes cert and key one after the other;
                    // a mismatched pair is retried on the next change.
                    Metrics::reload(&st.metrics.cert_reloads, false);
                    tracing::warn!(error = %e, "certificate reload failed; keeping the current one");
                }
            },
        ));
    }

    let handle: Handle<SocketAddr> = Handle::new();
    let mut app = wrap(router(state.clone(), opts.body_limit));
    if !opts.review_delay.is_zero() {
        let delay = opts.review_delay;
        tracing::warn!(
            delay_ms = delay.as_millis() as u64,
            "admission reviews are delayed on purpose (--review-delay-ms)"
        );
        app = app.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                // Health, readiness and metrics stay fast: a slow but live injector.
                if request.method() == axum::http::Method::POST {
                    tokio::time::sleep(delay).await;
                }
                next.run(request).await
            },
        ));
    }
    // TCP_NODELAY: a response goes out as several small TLS records (and
    // HTTP/2 frames); without it Nagle's algorithm holds the later ones
    // back until the client acknowledges the first.
    let acceptor = RustlsAcceptor::new(rustls).acceptor(NoDelayAcceptor::new());
    let server = axum_server::from_tcp(listener)
        .map_err(|cause| ServerError::Bind {
            addr: opts.addr,
            cause,
        })?
        .acceptor(acceptor)
        .handle(handle.clone());
    let task = tokio::spawn(server.serve(app.into_make_service()));
    tracing::info!(addr = %local_addr, "serving admission webhook over TLS");
    Ok(RunningServer {
        local_addr,
        handle,
        state,
        task,
        watchers,
        grace: opts.shutdown_grace,
    })
}
