//! How long a subject holds each admission review before it answers
//! (`slowWebhook`): one live value per subject, and the four ways it
//! reaches what serves.
//!
//! - The built-in injector in this process: a middleware in front of its
//!   routes holds every POST (admission) and lets health and metrics
//!   through, read for each request, so a change applies to the next one.
//! - A program or a local container: the harness's TCP proxy
//!   ([`super::proxy`]) holds every chunk the client sends. TLS passes
//!   through it unread, so it cannot see where a request starts.
//! - The built-in injector in a cluster: its own `--review-delay-ms`, the
//!   same POST-only hold as the middleware, rolled out with the pod.
//! - An image in a cluster: the probe's relay in front of it
//!   (`--relay --delay-ms`), the same per-chunk latency as the proxy, rolled
//!   out with the pod.
//!
//! The middleware and `--review-delay-ms` are one behaviour in two places
//! (this process and the injector's binary), as are the proxy and the
//! probe's relay (tokio here; std-only in the probe, whose image stays
//! small). They do not share code: the per-request hold needs an HTTP
//! server in front of the reviews, which only the injector has, and the
//! probe is its own crate with no async runtime.

use std::time::Duration;

use sidecar_injector::manifests;
use tokio::sync::watch;

/// The delay in force for one subject, read by whatever serves it.
pub(super) struct Delay(watch::Sender<Duration>);

impl Delay {
    /// No delay.
    pub(super) fn new() -> Delay {
        Delay(watch::Sender::new(Duration::ZERO))
    }

    pub(super) fn get(&self) -> Duration {
        *self.0.borrow()
    }

    /// Takes effect for the next request (or chunk) read.
    pub(super) fn set(&self, delay: Duration) {
        self.0.send_replace(delay);
    }

    /// For a reader that looks at the delay each time it holds something.
    pub(super) fn watch(&self) -> watch::Receiver<Duration> {
        self.0.subscribe()
    }

    /// `routes` with every admission call (POST) held for the delay in force
    /// when it arrives; health and metrics stay fast, as in a slow but live
    /// injector.
    pub(super) fn hold_reviews(&self, routes: axum::Router) -> axum::Router {
        let delay = self.watch();
        routes.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let held = *delay.borrow();
                async move {
                    if !held.is_zero() && request.method() == axum::http::Method::POST {
                        tokio::time::sleep(held).await;
                    }
                    next.run(request).await
                }
            },
        ))
    }
}

/// The built-in injector's arguments in a cluster, holding each review
/// `delay` (`serve --review-delay-ms`; none when zero).
pub(super) fn injector_args(delay: Duration) -> Vec<String> {
    let mut args = manifests::server_args();
    if !delay.is_zero() {
        args.push("--review-delay-ms".into());
        args.push(delay.as_millis().to_string());
    }
    args
}

/// The relay container in front of an image subject in a cluster.
pub(super) const RELAY: &str = "relay";

/// The relay's port: 9443, or 9444 when the subject itself serves on 9443.
pub(super) fn relay_port(subject: i32) -> i32 {
    if subject == 9443 {
        9444
    } else {
        9443
    }
}

/// The probe's arguments for a relay from `listen` to `target` after `delay`.
pub(super) fn relay_args(listen: i32, target: i32, delay: Duration) -> Vec<String> {
    vec![
        "--name".into(),
        RELAY.into(),
        "--relay".into(),
        format!("{listen}:{target}"),
        "--delay-ms".into(),
        delay.as_millis().to_string(),
    ]
}
