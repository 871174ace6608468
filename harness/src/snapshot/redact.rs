//! Hiding what differs from run to run and backend to backend: the hash-like
//! label values (wherever they appear in names and messages), the injector's
//! address and the service-account token volume's suffix.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use super::generated_names::name_pattern;
use crate::cluster::Observed;

/// Hash-like label values replaced by placeholders, by label key.
pub(super) const HASH_LABELS: &[(&str, &str)] = &[
    ("pod-template-hash", "<hash>"),
    ("controller-revision-hash", "<revision>"),
    ("controller-uid", "<uid>"),
    ("batch.kubernetes.io/controller-uid", "<uid>"),
];

/// Replaces every hash-like value found in the pods' labels wherever it
/// occurs in `text` (names, messages).
pub(super) struct Redactor {
    pairs: Vec<(String, String)>,
    injector: Regex,
    webhook_url: Regex,
    webhook_dial: Regex,
    token: Regex,
}

impl Redactor {
    pub(super) fn new(observed: &Observed) -> Redactor {
        let mut pairs = Vec::new();
        let objects = observed.pods.iter().chain(observed.workloads.iter());
        for o in objects {
            let labels = crate::object::labels(o);
            let tmpl: BTreeMap<String, String> = o["spec"]["template"]["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            for (key, placeholder) in HASH_LABELS {
                for l in [&labels, &tmpl] {
                    if let Some(v) = l.get(*key) {
                        if v.len() >= 4 {
                            pairs.push((v.clone(), placeholder.to_string()));
                        }
                    }
                }
            }
        }
        // Workloads created from a generateName (a Job `migrate-`): their
        // generated name shows in their pods' names, labels and owners.
        for w in &observed.workloads {
            if let Some(prefix) = name_pattern(w) {
                let name = crate::object::meta_str(w, "name");
                pairs.push((name.to_string(), format!("{prefix}<id>")));
            }
        }
        // Longest first, so a revision `web-<hash>` wins over a bare hash.
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.cmp(b)));
        pairs.dedup();
        Redactor {
            pairs,
            injector: Regex::new(r"127\.0\.0\.1:\d+").unwrap_or_else(|_| unreachable_regex()),
            // In the apiserver's "failed calling webhook" errors, the
            // webhook's address: a URL on the host (sim, real apiserver)
            // or the Service's name and ClusterIP (kind).
            webhook_url: Regex::new(r#"Post "https://[^/"]+/"#)
                .unwrap_or_else(|_| unreachable_regex()),
            webhook_dial: Regex::new(r"dial tcp (\[[0-9a-fA-F:.]+\]|[0-9.]+):\d+")
                .unwrap_or_else(|_| unreachable_regex()),
            token: Regex::new(r"kube-api-access-[a-z0-9]{5}")
                .unwrap_or_else(|_| unreachable_regex()),
        }
    }

    pub(super) fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (from, to) in &self.pairs {
            if out.contains(from.as_str()) {
                out = out.replace(from.as_str(), to);
            }
        }
        let mut out = self.injector.replace_all(&out, "<injector>").into_owned();
        if out.contains("calling webhook") {
            out = self
                .webhook_url
                .replace_all(&out, r#"Post "https://<injector>/"#)
                .into_owned();
            out = self
                .webhook_dial
                .replace_all(&out, "dial tcp <injector>")
                .into_owned();
        }
        self.token
            .replace_all(&out, "kube-api-access-<id>")
            .into_owned()
    }
}

/// The patterns above are literals; a failure to compile one is a defect
/// caught by the unit tests, never an input error.
fn unreachable_regex() -> Regex {
    Regex::new("$^").expect("trivial regex")
}

pub(super) fn redact_value(v: &Value, r: &Redactor) -> Value {
    match v {
        Value::String(s) => Value::String(r.text(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| redact_value(x, r)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), redact_value(x, r)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhooks_address_reads_the_same_on_every_backend() {
        let on = |host: &str, dial: &str| {
            format!("Internal error occurred: failed calling webhook \"w\": failed to call webhook: Post \"https://{host}/mutate?timeout=10s\": dial tcp {dial}: connect: connection refused")
        };
        let r = Redactor::new(&Observed::default());
        let want = "Internal error occurred: failed calling webhook \"w\": failed to call webhook: Post \"https://<injector>/mutate?timeout=10s\": dial tcp <injector>: connect: connection refused";
        assert_eq!(r.text(&on("127.0.0.1:41234", "127.0.0.1:41234")), want);
        assert_eq!(
            r.text(&on(
                "sidecar-injector.injector-x.svc:443",
                "10.96.163.173:443"
            )),
            want
        );
        assert_eq!(r.text(&on("[::1]:8443", "[::1]:8443")), want);
        // Elsewhere an address is left alone (a probe's pod IP is not the injector).
        let probe = "Get \"http://10.244.0.5:8080/\": dial tcp 10.244.0.5:8080: connect: connection refused";
        assert_eq!(r.text(probe), probe);
    }
}
