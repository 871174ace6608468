//! Admission as the apiserver does it: each matching webhook is called over
//! HTTPS with an AdmissionReview, trusting only the webhook's caBundle; the
//! returned JSON Patch is applied strictly, and failures follow the
//! webhook's failurePolicy. This is the apiserver's side only: what answers
//! (the built-in injector, a process, an image) is a [`crate::subject`].

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use serde_json::{json, Value};

use crate::scenario::WebhookSpec;

mod match_conditions;
mod requester;
pub use match_conditions::Verdict;
pub use requester::{Requester, FIELD_MANAGER};

/// The AdmissionReview versions the apiserver sends, in its preference.
pub const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];

/// A scenario's webhook as registered, without its client config (the
/// backend says how the apiserver reaches the injector: `url` or `service`).
pub fn webhook_from_spec(w: &WebhookSpec) -> MutatingWebhook {
    MutatingWebhook {
        name: w.name.clone(),
        admission_review_versions: w.admission_review_versions.clone(),
        client_config: WebhookClientConfig::default(),
        failure_policy: Some(w.failure_policy.clone()),
        match_policy: Some(w.match_policy.clone()),
        namespace_selector: Some(w.namespace_selector.clone().unwrap_or_default()),
        object_selector: Some(w.object_selector.clone().unwrap_or_default()),
        reinvocation_policy: Some(w.reinvocation_policy.clone()),
        rules: Some(w.rules.clone()),
        side_effects: w.side_effects.clone(),
        timeout_seconds: Some(w.timeout_seconds),
        match_conditions: w.match_conditions.clone(),
    }
}

/// Whether the apiserver would store `webhook`, the `index`th of its
/// MutatingWebhookConfiguration, in the words of its validation: of what
/// it checks, what a scenario's webhook can get wrong (the side-effect
/// class, which admissionregistration/v1 limits to two, and the
/// matchConditions).
pub fn check_registration(index: usize, webhook: &MutatingWebhook) -> Result<(), String> {
    if !["None", "NoneOnDryRun"].contains(&webhook.side_effects.as_str()) {
        return Err(format!(
            "webhooks[{index}].sideEffects: Unsupported value: {:?}: supported values: \"None\", \"NoneOnDryRun\"",
            webhook.side_effects
        ));
    }
    match_conditions::check(index, webhook)
}

/// What an admission attempt ended in.
#[derive(Debug, Clone, PartialEq)]
pub enum Admitted {
    /// The (possibly mutated) object, and the warnings webhooks returned.
    Allowed {
        object: Value,
        warnings: Vec<String>,
    },
    /// Refused, with the apiserver's message and the warnings webhooks
    /// returned before the refusal (the apiserver sends those too).
    Rejected {
        message: String,
        warnings: Vec<String>,
    },
}

/// The request being admitted.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    pub operation: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub resource: &'a str,
    pub namespace: &'a str,
    pub namespace_labels: &'a BTreeMap<String, String>,
    /// Who sends the request: the harness, or a controller making pods.
    pub user: Requester,
    /// The stored object an UPDATE changes.
    pub old_object: Option<&'a Value>,
    /// A server-side dry run: nothing the request makes is kept.
    pub dry_run: bool,
}

impl<'a> Attributes<'a> {
    /// A pod's creation in `namespace`, whose labels are `namespace_labels`.
    pub fn pod_create(
        namespace: &'a str,
        namespace_labels: &'a BTreeMap<String, String>,
    ) -> Attributes<'a> {
        Attributes {
            operation: "CREATE",
            group: "",
            version: "v1",
            kind: "Pod",
            resource: "pods",
            namespace,
            namespace_labels,
            user: Requester::Harness,
            old_object: None,
            dry_run: false,
        }
    }
}

/// Calls webhooks the way the apiserver's mutating admission plugin does.
pub struct WebhookCaller {
    clients: BTreeMap<Vec<u8>, reqwest::Client>,
    /// One line per webhook call: what was asked and what came back,
    /// including the injector's decision (its `decision` audit annotation).
    pub log: Vec<String>,
}

impl Default for WebhookCaller {
    fn default() -> Self {
        Self::new()
    }
}

fn rule_matches(rule: &RuleWithOperations, attrs: &Attributes<'_>) -> bool {
    let any = |list: &Option<Vec<String>>, value: &str| {
        list.as_ref()
            .is_some_and(|l| l.iter().any(|v| v == "*" || v == value))
    };
    let scope_ok = match rule.scope.as_deref().unwrap_or("*") {
        "*" => true,
        "Namespaced" => !attrs.namespace.is_empty(),
        "Cluster" => attrs.namespace.is_empty(),
        _ => false,
    };
    any(&rule.operations, attrs.operation)
        && any(&rule.api_groups, attrs.group)
        && any(&rule.api_versions, attrs.version)
        && any(&rule.resources, attrs.resource)
        && scope_ok
}

/// Whether a webhook's label selector holds for `labels` (absent matches
/// everything). Evaluated with kube-core's selector, the ecosystem's, not
/// the injector's own: the injector's selector code is under test, and a
/// bug in it must not be mirrored here. A selector kube-core cannot read
/// (an unknown operator, In without values) matches nothing, as the
/// apiserver would never have accepted the registration.
fn selector_holds(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    match selector {
        None => true,
        Some(s) => Selector::try_from(s.clone()).is_ok_and(|sel| sel.matches(labels)),
    }
}

/// Whether the webhook is called for this request: a rule matches, and the
/// namespace and object selectors hold (absent means match all).
pub fn webhook_matches(w: &MutatingWebhook, attrs: &Attributes<'_>, object: &Value) -> bool {
    let rules_ok = w.rules.iter().flatten().any(|r| rule_matches(r, attrs));
    let ns_ok = selector_holds(w.namespace_selector.as_ref(), attrs.namespace_labels);
    let obj_ok = selector_holds(w.object_selector.as_ref(), &crate::object::labels(object));
    rules_ok && ns_ok && obj_ok
}

/// Why one webhook call failed, in the apiserver's words.
enum CallError {
    /// The webhook could not be called or answered nonsense; subject to the
    /// failure policy.
    Failed(String),
    /// The webhook answered `allowed: false`.
    Denied(String),
}

impl WebhookCaller {
    pub fn new() -> WebhookCaller {
        WebhookCaller {
            clients: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    /// Drops the connections kept open to webhooks. A fault step that
    /// stops or slows the webhook calls this: the server side closes its
    /// connections, which the apiserver's Go client sees at once (its read
    /// loop is always reading) and so dials afresh for the next call. A
    /// kept connection here may not have seen the close yet, and a call on
    /// it failed with "peer closed connection" instead of the refusal.
    pub fn forget_connections(&mut self) {
        self.clients.clear();
    }

    fn client(&mut self, ca: &[u8]) -> Result<reqwest::Client, String> {
        if let Some(c) = self.clients.get(ca) {
            return Ok(c.clone());
        }
        let cert =
            reqwest::Certificate::from_pem(ca).map_err(|e| format!("invalid caBundle: {e}"))?;
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(cert)
            .build()
            .map_err(|e| e.to_string())?;
        self.clients.insert(ca.to_vec(), client.clone());
        Ok(client)
    }

    /// Runs every matching webhook over `object`, in order, then once more
    /// for `IfNeeded` webhooks when a later webhook changed the object (the
    /// apiserver's single reinvocation).
    pub async fn admit(
        &mut self,
        webhooks: &[MutatingWebhook],
        attrs: &Attributes<'_>,
        mut object: Value,
    ) -> Admitted {
        let mut warnings = Vec::new();
        let mut last_changed_by: Option<usize> = None;
        let mut called = Vec::new();
        for (i, w) in webhooks.iter().enumerate() {
            if !webhook_matches(w, attrs, &object) {
                continue;
            }
            match self.conditions(w, attrs, &object) {
                Verdict::Call => {}
                Verdict::Skip { .. } => continue,
                Verdict::Refuse(message) => return Admitted::Rejected { message, warnings },
            }
            called.push(i);
            match self.call_one(w, attrs, &object, &mut warnings).await {
                Ok(Some(new)) => {
                    if new != object {
                        last_changed_by = Some(i);
                    }
                    object = new;
                }
                Ok(None) => {}
                Err(CallError::Denied(message)) => return Admitted::Rejected { message, warnings },
                Err(CallError::Failed(m)) => {
                    if w.failure_policy.as_deref() != Some("Ignore") {
                        return Admitted::Rejected {
                            message: m,
                            warnings,
                        };
                    }
                }
            }
        }
        if let Some(changer) = last_changed_by {
            // Reinvoke IfNeeded webhooks that ran before the last change.
            for &i in called.iter().filter(|&&i| i < changer) {
                let w = &webhooks[i];
                if w.reinvocation_policy.as_deref() != Some("IfNeeded")
                    || !webhook_matches(w, attrs, &object)
                {
                    continue;
                }
                match self.conditions(w, attrs, &object) {
                    Verdict::Call => {}
                    Verdict::Skip { .. } => continue,
                    Verdict::Refuse(message) => return Admitted::Rejected { message, warnings },
                }
                match self.call_one(w, attrs, &object, &mut warnings).await {
                    Ok(Some(new)) => object = new,
                    Ok(None) => {}
                    Err(CallError::Denied(message)) => {
                        return Admitted::Rejected { message, warnings }
                    }
                    Err(CallError::Failed(m)) => {
                        if w.failure_policy.as_deref() != Some("Ignore") {
                            return Admitted::Rejected {
                                message: m,
                                warnings,
                            };
                        }
                    }
                }
            }
        }
        Admitted::Allowed { object, warnings }
    }

    /// `w`'s matchConditions on this request; a refusal in the words of
    /// the apiserver's `NewForbidden` (`pods "web" is forbidden: ...`).
    fn conditions(&self, w: &MutatingWebhook, attrs: &Attributes<'_>, object: &Value) -> Verdict {
        let request = review_request(attrs, object, &uid_for(&w.name, object));
        match match_conditions::evaluate(w, &request) {
            Verdict::Refuse(errors) => {
                let resource = match attrs.group {
                    "" => attrs.resource.to_string(),
                    group => format!("{}.{group}", attrs.resource),
                };
                let name = request["name"].as_str().unwrap_or("");
                Verdict::Refuse(match name {
                    "" => format!("{resource} is forbidden: {errors}"),
                    name => format!("{resource} {name:?} is forbidden: {errors}"),
                })
            }
            verdict => verdict,
        }
    }

    async fn call_one(
        &mut self,
        w: &MutatingWebhook,
        attrs: &Attributes<'_>,
        object: &Value,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Value>, CallError> {
        let before = warnings.len();
        let mut decision = String::new();
        let result = self
            .call_inner(w, attrs, object, warnings, &mut decision)
            .await;
        let pod = format!(
            "{}/{}",
            attrs.namespace,
            object["metadata"]["name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .or(object["metadata"]["generateName"].as_str())
                .unwrap_or("")
        );
        let outcome = match &result {
            Ok(Some(_)) => format!("allowed with a patch (decision {decision})"),
            Ok(None) => format!("allowed unchanged (decision {decision})"),
            Err(CallError::Denied(m)) => format!("denied: {m}"),
            Err(CallError::Failed(m)) => format!(
                "call failed ({}): {m}",
                w.failure_policy.as_deref().unwrap_or("Fail")
            ),
        };
        // The review's version, when it is not the usual v1.
        let version = match review_version(w) {
            Some("v1") | None => String::new(),
            Some(v) => format!(" (admission.k8s.io/{v})"),
        };
        let dry_run = if attrs.dry_run { " (dry run)" } else { "" };
        let mut line = format!(
            "{} {pod}{dry_run} -> {}{version}: {outcome}",
            attrs.operation, w.name
        );
        for warning in &warnings[before..] {
            line.push_str(&format!("; warning: {warning}"));
        }
        self.log.push(line);
        result
    }

    async fn call_inner(
        &mut self,
        w: &MutatingWebhook,
        attrs: &Attributes<'_>,
        object: &Value,
        warnings: &mut Vec<String>,
        decision: &mut String,
    ) -> Result<Option<Value>, CallError> {
        let failed = |detail: String| {
            CallError::Failed(format!(
                "Internal error occurred: failed calling webhook \"{}\": {detail}",
                w.name
            ))
        };
        let timeout = w.timeout_seconds.unwrap_or(10).clamp(1, 30);
        let Some(base) = w.client_config.url.as_deref() else {
            return Err(failed("the harness calls webhooks by url only".into()));
        };
        let url = format!("{base}?timeout={timeout}s");
        let ca = w
            .client_config
            .ca_bundle
            .as_ref()
            .map(|b| b.0.clone())
            .unwrap_or_default();
        let client = self
            .client(&ca)
            .map_err(|e| failed(format!("failed to call webhook: {e}")))?;
        let uid = uid_for(&w.name, object);
        // The first version the webhook lists that the apiserver speaks.
        let Some(review_version) = review_version(w) else {
            return Err(failed(format!(
                "webhook does not accept known AdmissionReview versions: {:?}",
                w.admission_review_versions
            )));
        };
        let review_api_version = format!("admission.k8s.io/{review_version}");
        let review = json!({
            "apiVersion": review_api_version,
            "kind": "AdmissionReview",
            "request": review_request(attrs, object, &uid),
        });
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(timeout as u64))
            .json(&review)
            .send()
            .await
            .map_err(|e| {
                let host = base
                    .trim_start_matches("https://")
                    .split('/')
                    .next()
                    .unwrap_or("");
                failed(format!(
                    "failed to call webhook: Post \"{url}\": {}",
                    go_style_error(&e, host)
                ))
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| failed(format!("failed to call webhook: {e}")))?;
        if !status.is_success() {
            return Err(failed(format!(
                "received invalid webhook response: the server responded with status {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&body).trim()
            )));
        }
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("received invalid webhook response: {e}")))?;
        // In the apiserver's order: a response at all, its uid, then the
        // answer's type.
        let resp = &answer["response"];
        if !resp.is_object() {
            return Err(failed(
                "received invalid webhook response: webhook response was absent".into(),
            ));
        }
        if resp["uid"].as_str() != Some(uid.as_str()) {
            return Err(failed(format!(
                "received invalid webhook response: expected response.uid=\"{uid}\", got \"{}\"",
                resp["uid"].as_str().unwrap_or("")
            )));
        }
        if answer["apiVersion"] != review_api_version.as_str()
            || answer["kind"] != "AdmissionReview"
        {
            // The apiserver prints the answer's GroupVersionKind as Go's
            // `group/version, Kind=kind`: `/, Kind=` when both are missing,
            // `/v1, Kind=...` for a core apiVersion.
            let api_version = answer["apiVersion"].as_str().unwrap_or("");
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            return Err(failed(format!(
                "received invalid webhook response: expected webhook response of {review_api_version}, Kind=AdmissionReview, got {group}/{version}, Kind={}",
                answer["kind"].as_str().unwrap_or("")
            )));
        }
        if let Some(d) = resp["auditAnnotations"]["decision"].as_str() {
            *decision = d.to_string();
        }
        for warning in resp["warnings"].as_array().into_iter().flatten() {
            if let Some(text) = warning.as_str() {
                warnings.push(text.to_string());
            }
        }
        if resp["allowed"] != true {
            let message = resp["status"]["message"].as_str().unwrap_or("");
            return Err(CallError::Denied(format!(
                "admission webhook \"{}\" denied the request: {message}",
                w.name
            )));
        }
        let Some(patch_b64) = resp["patch"].as_str() else {
            return Ok(None);
        };
        if resp["patchType"] != "JSONPatch" {
            return Err(failed(format!(
                "received invalid webhook response: unsupported patch type {:?}",
                resp["patchType"]
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch_b64)
            .map_err(|e| failed(format!("received invalid webhook response: {e}")))?;
        let patch: json_patch::Patch = serde_json::from_slice(&bytes)
            .map_err(|e| CallError::Failed(format!("Internal error occurred: {e}")))?;
        let mut patched = object.clone();
        // Strict application: an operation whose parent is missing fails the
        // whole patch, and the request with it.
        json_patch::patch(&mut patched, &patch)
            .map_err(|e| CallError::Failed(format!("Internal error occurred: {e}")))?;
        Ok(Some(patched))
    }
}

/// The AdmissionRequest the apiserver sends about `object`.
fn review_request(attrs: &Attributes<'_>, object: &Value, uid: &str) -> Value {
    json!({
        "uid": uid,
        "kind": {"group": attrs.group, "version": attrs.version, "kind": attrs.kind},
        "resource": {"group": attrs.group, "version": attrs.version, "resource": attrs.resource},
        "requestKind": {"group": attrs.group, "version": attrs.version, "kind": attrs.kind},
        "requestResource": {"group": attrs.group, "version": attrs.version, "resource": attrs.resource},
        "name": object["metadata"]["name"].as_str().unwrap_or(""),
        "namespace": attrs.namespace,
        "operation": attrs.operation,
        "userInfo": attrs.user.user_info(),
        // A DELETE has no new object; the webhook sees the old one.
        "object": if attrs.operation == "DELETE" { &Value::Null } else { object },
        "oldObject": attrs.old_object,
        "dryRun": attrs.dry_run,
        "options": attrs.user.options(attrs.operation, attrs.dry_run)
    })
}

/// The first AdmissionReview version `w` lists that the apiserver speaks.
fn review_version(w: &MutatingWebhook) -> Option<&str> {
    w.admission_review_versions
        .iter()
        .map(String::as_str)
        .find(|v| REVIEW_VERSIONS.contains(v))
}

/// A stable request uid: the apiserver's are random, but nothing in a
/// snapshot depends on them and stable ones make failures reproducible.
fn uid_for(webhook: &str, object: &Value) -> String {
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in webhook.bytes().chain(name.bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xffff,
        (h >> 48) & 0xffff,
        h & 0xffff_ffff_ffff
    )
}

/// The error as the apiserver's Go HTTP client words it, for the cases a
/// scenario can produce (nothing listening, too slow); others as they come.
fn go_style_error(e: &(dyn std::error::Error + 'static), host: &str) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let text = cur.to_string();
    if text.contains("Connection refused") {
        format!("dial tcp {host}: connect: connection refused")
    } else if e.to_string().contains("timed out") || text.contains("timed out") {
        "context deadline exceeded".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests;
