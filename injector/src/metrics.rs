//! Prometheus metrics, served as text on `/metrics`.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::policy::Reason;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub path: String,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

/// Every metric the injector exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub injected: Counter,
    pub skipped: Family<ReasonLabels, Counter>,
    pub denied: Family<ReasonLabels, Counter>,
    pub errors: Family<KindLabels, Counter>,
    pub review_seconds: Histogram,
    pub config_reloads: Family<ResultLabels, Counter>,
    pub cert_reloads: Family<ResultLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sidecar_injector");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests to the admission endpoints, by path and status code",
            requests.clone(),
        );
        let injected = Counter::default();
        registry.register(
            "injections",
            "Pods that received the sidecar",
            injected.clone(),
        );
        let skipped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "skipped",
            "Admission requests answered without injection, by reason",
            skipped.clone(),
        );
        let denied = Family::<ReasonLabels, Counter>::default();
        registry.register("denied", "Pods refused, by reason", denied.clone());
        let errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "errors",
            "Requests that could not be reviewed, by kind",
            errors.clone(),
        );
        // 25 µs up to ~0.4 s: in-process reviews take tens of microseconds.
        let review_seconds = Histogram::new(exponential_buckets(0.000_025, 2.0, 15));
        registry.register(
            "review_duration_seconds",
            "Time to decode, decide, patch and encode one AdmissionReview",
            review_seconds.clone(),
        );
        let config_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Config file reloads, by result",
            config_reloads.clone(),
        );
        let cert_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "cert_reloads",
            "Serving certificate reloads, by result",
            cert_reloads.clone(),
        );
        // Pre-create every reason so dashboards see zeros, not gaps.
        for r in Reason::ALL.iter().filter(|r| !r.injects()) {
            let _ = skipped.get_or_create(&ReasonLabels {
                reason: r.as_str().into(),
            });
        }
        Metrics {
            registry,
            requests,
            injected,
            skipped,
            denied,
            errors,
            review_seconds,
            config_reloads,
            cert_reloads,
        }
    }

    pub fn request(&self, path: &str, code: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                path: path.into(),
                code,
            })
            .inc();
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    }

    pub fn reload(family: &Family<ResultLabels, Counter>, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        family
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::new();
        m.request("/mutate", 200);
        m.injected.inc();
        m.skipped
            .get_or_create(&ReasonLabels {
                reason: "host_network".into(),
            })
            .inc();
        m.review_seconds.observe(0.0001);
        let text = m.render();
        assert!(
            text.contains("sidecar_injector_requests_total{path=\"/mutate\",code=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sidecar_injector_injections_total 1"),
            "{text}"
        );
        assert!(
            text.contains("sidecar_injector_skipped_total{reason=\"host_network\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sidecar_injector_skipped_total{reason=\"ignored_namespace\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("sidecar_injector_review_duration_seconds_count 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
