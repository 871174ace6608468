//! What the built-in injector decided, read from its own Prometheus
//! counters, wherever it runs (in this process or in a cluster) and however
//! often it was stopped and started again during a scenario.

use std::collections::BTreeMap;

/// The counters `decisions` reports.
const DECISION_COUNTERS: &[&str] = &[
    "injections_total",
    "skipped_total",
    "denied_total",
    "errors_total",
    "cert_reloads_total",
];

/// What the report says of an injector that never served.
const NEVER_RAN: &str = "injector never ran (scenario has injector.available: false)";

/// The injector's decisions over a scenario: the counters of its instances
/// already stopped, added to those of the one running. A stop loses an
/// instance's counters, so each is banked as it stops.
#[derive(Debug, Default)]
pub struct Tally {
    past: BTreeMap<String, f64>,
    ever_served: bool,
}

impl Tally {
    /// A tally for an injector that serves from the start (`served`) or not.
    pub fn new(served: bool) -> Tally {
        Tally {
            past: BTreeMap::new(),
            ever_served: served,
        }
    }

    /// An instance started serving.
    pub fn served(&mut self) {
        self.ever_served = true;
    }

    /// Keeps the counters of an instance about to stop, from its metrics text.
    pub fn bank(&mut self, metrics: &str) {
        for (k, v) in counters(metrics) {
            *self.past.entry(k).or_default() += v;
        }
    }

    /// One line per non-zero injection, skip reason, denial, error or cert
    /// reload, summed over every instance; `running` is the metrics text of
    /// the instance serving now, if one does.
    pub fn lines(&self, running: Option<&str>) -> Vec<String> {
        if !self.ever_served {
            return vec![NEVER_RAN.into()];
        }
        let mut all = self.past.clone();
        for (k, v) in running.map(counters).unwrap_or_default() {
            *all.entry(k).or_default() += v;
        }
        all.into_iter()
            .filter(|(_, n)| *n > 0.0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect()
    }
}

/// The injector's decisions from its Prometheus text: one line per non-zero
/// injection, skip reason, denial or error counter.
pub fn decisions_from_metrics(text: &str) -> Vec<String> {
    counters(text)
        .into_iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect()
}

/// The non-zero decision counters in a metrics text, by name and labels.
fn counters(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            let n: f64 = value.parse().ok()?;
            let wanted = DECISION_COUNTERS
                .iter()
                .any(|m| name.starts_with(&format!("sidecar_injector_{m}")));
            (wanted && n > 0.0)
                .then(|| (name.trim_start_matches("sidecar_injector_").to_string(), n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# HELP sidecar_injector_injections_total pods injected\n\
        sidecar_injector_injections_total 2\n\
        sidecar_injector_skipped_total{reason=\"disabled\"} 1\n\
        sidecar_injector_denied_total 0\n\
        sidecar_injector_review_seconds_count 3\n";

    #[test]
    fn the_tally_adds_stopped_instances_to_the_running_one() {
        let mut tally = Tally::new(true);
        tally.bank(METRICS);
        assert_eq!(
            tally.lines(Some("sidecar_injector_injections_total 1\n")),
            ["injections_total 3", "skipped_total{reason=\"disabled\"} 1"]
        );
        assert_eq!(tally.lines(None), decisions_from_metrics(METRICS));
    }

    #[test]
    fn an_injector_that_never_served_says_so() {
        let mut tally = Tally::new(false);
        assert_eq!(tally.lines(None), [NEVER_RAN]);
        tally.served();
        assert!(tally.lines(None).is_empty());
    }
}
