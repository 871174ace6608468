//! The plugin's decisions, as `admission/admission.go` makes them and the
//! in-tree wrapper hands them to the client: a refusal's message is the
//! Status message, warnings go out as `Warning` headers, audit annotations
//! (prefixed `pod-security.kubernetes.io/`) only reach the audit log.
//!
//! What a client sees, in short: a pod is refused for its enforce level and
//! then gets no warnings at all; an admitted pod gets one warning for its
//! warn level. Pod controllers are never refused and are only checked
//! against the warn level (which follows enforce when unset). Audit never
//! shows.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::checks::{evaluate, forbidden_detail, forbidden_reason};
use super::policy::{
    aggregate, go_quote, LabelError, Level, NamespacePolicy, Policy, LABEL_PREFIX,
};

/// A refusal as the client gets it: HTTP code, Status reason, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

/// What the plugin decided for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `None`: admitted.
    pub refusal: Option<Refusal>,
    /// In the order the apiserver adds them.
    pub warnings: Vec<String>,
    /// Keys with the `pod-security.kubernetes.io/` prefix.
    pub audit_annotations: BTreeMap<String, String>,
}

impl Outcome {
    pub fn allowed(&self) -> bool {
        self.refusal.is_none()
    }

    fn annotate(&mut self, key: &str, value: String) {
        self.audit_annotations
            .insert(format!("{LABEL_PREFIX}{key}"), value);
    }
}

/// Pod subresources PSA lets through unchecked (`ignoredPodSubresources`);
/// any other, `ephemeralcontainers` and `resize` included, is checked.
const IGNORED_POD_SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

/// Namespace-update dry runs check at most this many pods
/// (`defaultNamespaceMaxPodsToCheck`).
const MAX_PODS_TO_CHECK: usize = 3000;

/// A pod CREATE in `namespace` (the Namespace object, or `Value::Null` if
/// it has none). `pod_name` is the final name (a `generateName` already
/// resolved, as the apiserver has it at validating admission).
pub fn admit_pod_create(
    pod: &Value,
    pod_name: &str,
    namespace: &Value,
    apiserver_minor: u64,
) -> Outcome {
    let (policy, errors) = NamespacePolicy::of_namespace(namespace);
    if let Some(done) = privileged_shortcut(&policy, &errors) {
        return done;
    }
    evaluate_pod_like(&policy, &errors, pod, Some(pod_name), apiserver_minor)
}

/// A pod UPDATE (or a write to a pod subresource, `subresource` "" for the
/// pod itself). Updates that change no image and add no container are
/// admitted unchecked ([`is_significant_pod_update`]).
pub fn admit_pod_update(
    new_pod: &Value,
    old_pod: &Value,
    pod_name: &str,
    subresource: &str,
    namespace: &Value,
    apiserver_minor: u64,
) -> Outcome {
    if IGNORED_POD_SUBRESOURCES.contains(&subresource) {
        return Outcome::default();
    }
    let (policy, errors) = NamespacePolicy::of_namespace(namespace);
    if let Some(done) = privileged_shortcut(&policy, &errors) {
        return done;
    }
    if !is_significant_pod_update(new_pod, old_pod) {
        return Outcome::default();
    }
    evaluate_pod_like(&policy, &errors, new_pod, Some(pod_name), apiserver_minor)
}

/// `isSignificantPodUpdate`: the pod is checked again only if the number of
/// containers or init containers changed, an image changed (by position),
/// or an ephemeral container was added or changed its image (by name).
/// The rest of a pod spec is immutable; metadata never counts.
pub fn is_significant_pod_update(new_pod: &Value, old_pod: &Value) -> bool {
    fn list<'a>(spec: &'a Value, key: &str) -> &'a [Value] {
        spec.get(key)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }
    fn field<'a>(c: &'a Value, key: &str) -> &'a str {
        c.get(key).and_then(Value::as_str).unwrap_or("")
    }
    let (new, old) = (&new_pod["spec"], &old_pod["spec"]);
    for key in ["containers", "initContainers"] {
        let (n, o) = (list(new, key), list(old, key));
        if n.len() != o.len()
            || n.iter()
                .zip(o)
                .any(|(a, b)| field(a, "image") != field(b, "image"))
        {
            return true;
        }
    }
    let old_ephemeral = list(old, "ephemeralContainers");
    list(new, "ephemeralContainers").iter().any(|c| {
        match old_ephemeral
            .iter()
            .find(|o| field(o, "name") == field(c, "name"))
        {
            None => true,
            Some(o) => field(o, "image") != field(c, "image"),
        }
    })
}

/// The pod template PSA reads from a pod controller of kind `kind`, or
/// `None` when PSA does not look at the object: not a pod controller, or a
/// ReplicationController without a template. For the other kinds a missing
/// template is an empty one (Go's zero value), which passes every check.
pub fn pod_template<'a>(kind: &str, object: &'a Value) -> Option<&'a Value> {
    match kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            Some(&object["spec"]["template"])
        }
        "CronJob" => Some(&object["spec"]["jobTemplate"]["spec"]["template"]),
        "PodTemplate" => Some(&object["template"]),
        "ReplicationController" => object["spec"].get("template").filter(|t| t.is_object()),
        _ => None,
    }
}

/// A CREATE or UPDATE of a pod controller (Deployment, ReplicaSet,
/// StatefulSet, DaemonSet, Job, CronJob, ReplicationController,
/// PodTemplate; not their subresources). Never refused; one warning
/// `would violate PodSecurity "<warn policy>": …` when the template fails
/// the namespace's warn level. The enforce level is not checked here: it
/// shows only through warn defaulting to it. Other kinds: nothing.
pub fn admit_pod_controller(
    kind: &str,
    object: &Value,
    namespace: &Value,
    apiserver_minor: u64,
) -> Outcome {
    let Some(template) = pod_template(kind, object) else {
        return Outcome::default();
    };
    let (policy, errors) = NamespacePolicy::of_namespace(namespace);
    if errors.is_empty()
        && policy.warn.level == Level::Privileged
        && policy.audit.level == Level::Privileged
    {
        return Outcome::default();
    }
    evaluate_pod_like(&policy, &errors, template, None, apiserver_minor)
}

/// A Namespace CREATE: refused (422 Invalid) if a PodSecurity label has an
/// invalid value; no warnings otherwise (no namespace is exempt).
pub fn admit_namespace_create(namespace: &Value) -> Outcome {
    let (_, errors) = NamespacePolicy::of_namespace(namespace);
    let mut out = Outcome::default();
    if !errors.is_empty() {
        out.refusal = Some(invalid(namespace_name(namespace), &errors));
    }
    out
}

/// A Namespace UPDATE (not `status` or `finalize`). Refused if its labels
/// are invalid, unless the old namespace had exactly the same errors. When
/// the enforce policy tightens (a stricter level, or any change of version
/// to a non-privileged level), the namespace's existing `pods` are checked
/// against it and the violations come back as warnings.
pub fn admit_namespace_update(
    new: &Value,
    old: &Value,
    pods: &[Value],
    apiserver_minor: u64,
) -> Outcome {
    let (new_policy, new_errors) = NamespacePolicy::of_namespace(new);
    let (old_policy, old_errors) = NamespacePolicy::of_namespace(old);
    let mut out = Outcome::default();
    if !new_errors.is_empty() && (old_errors.is_empty() || new_errors != old_errors) {
        out.refusal = Some(invalid(namespace_name(new), &new_errors));
        return out;
    }
    let (new_enforce, old_enforce) = (new_policy.enforce, old_policy.enforce);
    let unchanged = new_enforce == old_enforce;
    let relaxed =
        new_enforce.version == old_enforce.version && new_enforce.level <= old_enforce.level;
    if unchanged || new_enforce.level == Level::Privileged || relaxed {
        return out;
    }
    out.warnings =
        evaluate_pods_in_namespace(namespace_name(new), new_enforce, pods, apiserver_minor);
    out
}

/// `EvaluatePodsInNamespace`: the warnings for existing pods against a new
/// enforce policy. Pods with the same reasons share one warning, named by
/// the lexically first pod plus a count; one pod per controller is checked
/// before the other replicas, and at most 3000 pods in all.
pub fn evaluate_pods_in_namespace(
    namespace_name: &str,
    enforce: Policy,
    pods: &[Value],
    apiserver_minor: u64,
) -> Vec<String> {
    // Prioritise: pods without a controller and the first pod of each
    // controller, in list order, then the other replicas.
    let mut seen_controllers = HashSet::new();
    let (mut first, mut replicas): (Vec<&Value>, Vec<&Value>) = (Vec::new(), Vec::new());
    for pod in pods {
        match controller_uid(pod) {
            Some(uid) if !seen_controllers.insert(uid) => replicas.push(pod),
            _ => first.push(pod),
        }
    }
    first.extend(replicas);
    let total = first.len();
    let checked = &first[..total.min(MAX_PODS_TO_CHECK)];

    let mut order: Vec<String> = Vec::new();
    let mut by_reason: HashMap<String, (String, usize)> = HashMap::new();
    for pod in checked {
        let violations = evaluate(enforce, &pod["metadata"], &pod["spec"], apiserver_minor);
        if violations.is_empty() {
            continue;
        }
        let reason = forbidden_reason(&violations);
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        match by_reason.get_mut(&reason) {
            Some((first_name, count)) => {
                if name < *first_name {
                    *first_name = name;
                }
                *count += 1;
            }
            None => {
                order.push(reason.clone());
                by_reason.insert(reason, (name, 1));
            }
        }
    }

    let mut warnings = Vec::new();
    if checked.len() < total {
        warnings.push(format!(
            "new PodSecurity enforce level only checked against the first {} of {} existing pods",
            checked.len(),
            total
        ));
    }
    if !order.is_empty() {
        warnings.push(format!(
            "existing pods in namespace {} violate the new PodSecurity enforce level {}",
            go_quote(namespace_name),
            go_quote(&enforce.to_string())
        ));
    }
    let mut per_pod: Vec<String> = order
        .iter()
        .map(|reason| {
            let (name, count) = &by_reason[reason];
            match count {
                1 => format!("{name}: {reason}"),
                2 => format!("{name} (and 1 other pod): {reason}"),
                n => format!("{name} (and {} other pods): {reason}", n - 1),
            }
        })
        .collect();
    per_pod.sort();
    warnings.extend(per_pod);
    warnings
}

/// The UID of the pod's controller (the first owner reference with
/// `controller: true`).
fn controller_uid(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| r.get("uid").and_then(Value::as_str).unwrap_or(""))
}

fn namespace_name(namespace: &Value) -> &str {
    namespace["metadata"]["name"].as_str().unwrap_or("")
}

/// A namespace with valid labels and every mode privileged is admitted
/// without looking at the pod.
fn privileged_shortcut(policy: &NamespacePolicy, errors: &[LabelError]) -> Option<Outcome> {
    if !errors.is_empty() || !policy.fully_privileged() {
        return None;
    }
    let mut out = Outcome::default();
    out.annotate("enforce-policy", Policy::PRIVILEGED.to_string());
    Some(out)
}

/// `EvaluatePod`: enforce (pods only, `enforce_as` is the pod's name),
/// audit, then warn unless refused.
fn evaluate_pod_like(
    policy: &NamespacePolicy,
    errors: &[LabelError],
    pod: &Value,
    enforce_as: Option<&str>,
    apiserver_minor: u64,
) -> Outcome {
    let (meta, spec) = (&pod["metadata"], &pod["spec"]);
    let mut out = Outcome::default();
    if !errors.is_empty() {
        out.annotate(
            "error",
            format!("Failed to parse policy: {}", aggregate(errors)),
        );
    }
    if let Some(pod_name) = enforce_as {
        out.annotate("enforce-policy", policy.enforce.to_string());
        let violations = evaluate(policy.enforce, meta, spec, apiserver_minor);
        if !violations.is_empty() {
            let why = format!(
                "violates PodSecurity {}: {}",
                go_quote(&policy.enforce.to_string()),
                forbidden_detail(&violations)
            );
            out.refusal = Some(forbidden(pod_name, &why));
        }
    }
    let audit = evaluate(policy.audit, meta, spec, apiserver_minor);
    if !audit.is_empty() {
        out.annotate("audit-violations", would_violate(policy.audit, &audit));
    }
    if out.allowed() {
        let warn = evaluate(policy.warn, meta, spec, apiserver_minor);
        if !warn.is_empty() {
            out.warnings.push(would_violate(policy.warn, &warn));
        }
    }
    out
}

fn would_violate(policy: Policy, violations: &[super::checks::Violation]) -> String {
    format!(
        "would violate PodSecurity {}: {}",
        go_quote(&policy.to_string()),
        forbidden_detail(violations)
    )
}

/// `apierrors.NewForbidden` for core `pods`.
fn forbidden(pod_name: &str, why: &str) -> Refusal {
    let message = match pod_name {
        "" => format!("pods is forbidden: {why}"),
        name => format!("pods {} is forbidden: {why}", go_quote(name)),
    };
    Refusal {
        code: 403,
        reason: "Forbidden",
        message,
    }
}

/// `apierrors.NewInvalid` for kind `Namespace`.
fn invalid(name: &str, errors: &[LabelError]) -> Refusal {
    Refusal {
        code: 422,
        reason: "Invalid",
        message: format!(
            "Namespace {} is invalid: {}",
            go_quote(name),
            aggregate(errors)
        ),
    }
}
