//! ResourceQuota, as kube-apiserver's `ResourceQuota` admission plugin
//! enforces it and as kube-controller-manager's resource quota controller
//! reports it, for pods, services, claims and object counts. A real
//! cluster's refusals are compared with the simulated one's byte for byte,
//! so the wording, the order of checks and the printing of quantities
//! follow the Go code of v1.34 to v1.37:
//!
//! - admission: `k8s.io/apiserver/pkg/admission/plugin/resourcequota/controller.go`
//!   (`CheckRequest`, `prettyPrint`) and `pkg/admission/errors.go`
//!   (`NewForbidden`: `pods "web" is forbidden: …`);
//! - what an object uses: `k8s.io/kubernetes/pkg/quota/v1/evaluator/core/`
//!   (`pods.go`, `services.go`, `persistent_volume_claims.go`,
//!   `registry.go`) and `k8s.io/apiserver/pkg/quota/v1/generic/evaluator.go`
//!   (`count/<resource>.<group>`);
//! - the controller: `k8s.io/kubernetes/pkg/controller/resourcequota/resource_quota_controller.go`
//!   (`syncResourceQuota`) and `k8s.io/apiserver/pkg/quota/v1/resources.go`
//!   (`CalculateUsage`, `Add`, `Mask`).
//!
//! How it behaves, in short:
//!
//! - Admission reads a quota's `status` (`hard` and `used`), never its
//!   spec: a quota the controller has not synced yet (no `status.hard`)
//!   matches nothing and refuses nothing.
//! - Quotas are checked one at a time and the first failure is the answer.
//!   First, for every matching quota: the containers must state what the
//!   quota tracks (`failed quota: …: must specify …`) and the quota must
//!   have usage for it (`status unknown for quota: …`). Then, for every
//!   matching quota, the new usage must fit (`exceeded quota: …`), every
//!   resource over its limit listed, sorted. The real apiserver walks the
//!   quotas in its informer's order, which is a Go map's (random); this
//!   model walks them by name so a scenario always sees the same quota
//!   named.
//! - A sum prints as `resource.Quantity.Add` leaves it: the first
//!   non-zero operand's format, canonical text (`500m + 500m` is `1`,
//!   `0 + 64Mi` is `64Mi`), while a single value keeps the text it was
//!   stored with.
//!
//! Not modelled: the admission configuration's `limitedResources` (off by
//! default: none of the `insufficient quota to …` refusals), device-class
//! usage of ResourceClaims (only `count/resourceclaims.resource.k8s.io`),
//! extended resources backed by DRA device classes, and dry-run (the
//! caller simply does not apply the returned usage). A quantity that does not parse is skipped:
//! the apiserver refuses such an object at decode, before any admission
//! (see `quantities.rs`), so only hand-made input can hold one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::quantity::{self, Quantity};

/// Resource name to quantity, sorted as Go's `prettyPrint` sorts its keys.
type List = BTreeMap<String, Quantity>;

// ---------------------------------------------------------------------------
// Versions. The minors where a rule changed; minors outside 34..=37 take the
// nearest one's rules.

/// From v1.35 a container's `deviceclass.resource.kubernetes.io/…` request
/// is charged as `requests.deviceclass.resource.kubernetes.io/…`
/// (`schedutil.IsDRAExtendedResourceName`).
const DEVICE_CLASS_REQUESTS_SINCE: u32 = 35;
/// From v1.37 (`PodLevelResourcesFixKubeletQOSClass`, beta) an empty
/// `spec.resources` no longer decides the pod's QoS class.
const POD_LEVEL_QOS_FIX_SINCE: u32 = 37;
/// From v1.37 a resized pod is charged the larger of the sums of spec,
/// allocated and actuated resources, not the sum of each container's larger.
const AGGREGATED_STATUS_RESOURCES_SINCE: u32 = 37;

// ---------------------------------------------------------------------------
// Public API.

/// The admission operations quota looks at (`Handler(Create, Update)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
}

/// One write as the ResourceQuota plugin sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The apiserver's minor version (34 to 37).
    pub minor: u32,
    pub operation: Operation,
    /// The API group of the object's resource (`""` for core, `apps`).
    pub group: &'a str,
    /// The resource's plural (`pods`, `deployments`).
    pub resource: &'a str,
    /// `""`, or `resize` / `status` for those subresources.
    pub subresource: &'a str,
    /// The request's name; when empty, the object's name, then its
    /// `generateName`, then `Unknown`, as `NewForbidden` picks.
    pub name: &'a str,
    /// The object after every mutation (defaulting, webhooks, LimitRanger).
    pub object: &'a Value,
    /// On an update, the stored object.
    pub old_object: Option<&'a Value>,
    /// The apiserver's clock (RFC 3339), for pods past their deletion grace
    /// period; `None` charges them as live.
    pub now: Option<&'a str>,
}

/// A refusal, as the client reads it: always HTTP 403, reason `Forbidden`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
}

impl Refusal {
    pub const CODE: u16 = 403;
    pub const REASON: &'static str = "Forbidden";
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// A quota whose `status.used` the admitted request changed: the plugin
/// writes `used` (a JSON object of quantity strings) before the object is
/// stored, so the next request sees it at once.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaUpdate {
    pub name: String,
    pub used: Value,
}

/// One object of the namespace, with its resource's group and plural, as
/// the quota controller lists it.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub object: &'a Value,
}

/// The ResourceQuota plugin's verdict on `request`, given every quota of
/// the namespace: the quotas whose usage grows, or the refusal.
pub fn admit(request: &Request, quotas: &[Value]) -> Result<Vec<QuotaUpdate>, Refusal> {
    let Some(evaluator) = Evaluator::for_resource(request.group, request.resource, request.minor)
    else {
        return Ok(Vec::new());
    };
    if !evaluator.handles(request) {
        return Ok(Vec::new());
    }
    let mut quotas: Vec<Quota> = quotas.iter().map(Quota::read).collect();
    quotas.sort_by(|a, b| a.name.cmp(&b.name));
    check(request, &evaluator, &quotas)
}

/// A pod CREATE: [`admit`] for `pods`.
pub fn admit_pod_create(
    minor: u32,
    name: &str,
    pod: &Value,
    quotas: &[Value],
) -> Result<Vec<QuotaUpdate>, Refusal> {
    admit_create(minor, "", "pods", name, pod, quotas)
}

/// Any object's CREATE: [`admit`] for the object's resource (`count/…`
/// quotas for any resource, custom ones included).
pub fn admit_create(
    minor: u32,
    group: &str,
    resource: &str,
    name: &str,
    object: &Value,
    quotas: &[Value],
) -> Result<Vec<QuotaUpdate>, Refusal> {
    admit(
        &Request {
            minor,
            operation: Operation::Create,
            group,
            resource,
            subresource: "",
            name,
            object,
            old_object: None,
            now: None,
        },
        quotas,
    )
}

/// What an object counts against quota (`Evaluator.Usage`), as quantity
/// text; empty for resources quota ignores (events, reviews, bindings).
pub fn usage(
    minor: u32,
    group: &str,
    resource: &str,
    object: &Value,
    now: Option<&str>,
) -> BTreeMap<String, String> {
    let now = now.and_then(unix_nanos);
    Evaluator::for_resource(group, resource, minor)
        .map(|e| texts(&e.usage(object, now)))
        .unwrap_or_default()
}

/// What a pod UPDATE charges: the growth of each resource from `old` to
/// `new`, never negative, zeros dropped (`SubtractWithNonNegativeResult`).
///
/// The apiserver only charges a pod update that flips the pod in or out of
/// the `Terminating` scope (`activeDeadlineSeconds`) or that goes through
/// the `resize` subresource; other pod updates cannot change what quota
/// counts, so [`admit`] lets them through untouched.
pub fn pod_update_charge(
    minor: u32,
    old: &Value,
    new: &Value,
    now: Option<&str>,
) -> BTreeMap<String, String> {
    let now = now.and_then(unix_nanos);
    let delta = subtract_non_negative(&pod_usage(new, minor, now), &pod_usage(old, minor, now));
    texts(&remove_zeros(delta))
}

/// The `status` the quota controller writes for `quota`: `hard` is
/// `spec.hard`, `used` the usage of every resource of `hard` it can
/// measure (`0` when nothing uses it) among `objects`, honouring
/// `spec.scopes` and `spec.scopeSelector`; a resource it cannot measure
/// keeps its previous `used`, if any.
///
/// `served(group, plural)` says whether the cluster serves a resource; the
/// controller only counts `count/<plural>.<group>` for served ones (its
/// discovery), the built-in evaluators' resources always. Objects are
/// summed in the order given (creation order, please): the real controller
/// sums in its informer's order, and the first non-zero value picks the
/// sum's format (`64Mi + 1024k` prints `66536Ki`, `1024k + 64Mi`
/// `68132864`).
pub fn quota_status(
    minor: u32,
    quota: &Value,
    objects: &[Stored],
    served: &dyn Fn(&str, &str) -> bool,
    now: Option<&str>,
) -> Value {
    let quota = Quota::read(quota);
    let now = now.and_then(unix_nanos);
    let hard = &quota.spec_hard;
    let mut used = quota.used.clone();

    // Each measurable resource of `hard`, under the evaluator measuring it.
    let mut measured: Vec<(Evaluator, BTreeSet<String>)> = Vec::new();
    for name in hard.keys() {
        let Some(evaluator) = Evaluator::for_quota_name(name, minor, served) else {
            continue;
        };
        match measured.iter_mut().find(|(e, _)| *e == evaluator) {
            Some((_, names)) => {
                names.insert(name.clone());
            }
            None => measured.push((evaluator, BTreeSet::from([name.clone()]))),
        }
    }
    for (evaluator, names) in &measured {
        let mut sums: List = names
            .iter()
            .map(|n| (n.clone(), Quantity::zero()))
            .collect();
        for stored in objects {
            if !evaluator.is_for(stored.group, stored.resource) {
                continue;
            }
            let in_scope = quota
                .selectors
                .iter()
                .all(|s| evaluator.scope_matches(s, stored.object));
            if in_scope {
                add_tracked(&mut sums, &evaluator.usage(stored.object, now));
            }
        }
        used.extend(sums);
    }
    used.retain(|k, _| hard.contains_key(k));

    let mut status = Map::new();
    if !hard.is_empty() {
        status.insert("hard".into(), list_json(hard));
    }
    if !used.is_empty() {
        status.insert("used".into(), list_json(&used));
    }
    Value::Object(status)
}

// ---------------------------------------------------------------------------
// Admission (`CheckRequest` in the plugin's controller.go).

fn check(
    request: &Request,
    evaluator: &Evaluator,
    quotas: &[Quota],
) -> Result<Vec<QuotaUpdate>, Refusal> {
    let object = request.object;
    let refuse = |reason: String| Refusal {
        message: forbidden_message(request, &reason),
    };

    // The quotas that apply, each one first checked for what the object
    // must state and for known usage.
    let mut interesting = Vec::new();
    for (i, quota) in quotas.iter().enumerate() {
        if !evaluator.matches(quota, object) {
            continue;
        }
        let restricted = evaluator.matching_resources(quota.hard.keys());
        if let Err(missing) = evaluator.constraints(&restricted, object) {
            return Err(refuse(format!("failed quota: {}: {missing}", quota.name)));
        }
        if restricted.iter().any(|r| !quota.used.contains_key(r)) {
            return Err(refuse(format!(
                "status unknown for quota: {}, resources: {}",
                quota.name,
                join_names(restricted.iter())
            )));
        }
        interesting.push(i);
    }

    let now = request.now.and_then(unix_nanos);
    let input = evaluator.usage(object, now);
    let negative: Vec<&String> = input
        .iter()
        .filter(|(_, q)| q.signum() < 0)
        .map(|(k, _)| k)
        .collect();
    if !negative.is_empty() {
        return Err(refuse(format!(
            "quota usage is negative for resource(s): {}",
            join_names(negative.into_iter())
        )));
    }

    // What each quota is charged: the whole usage, or on an update of a
    // stored object the growth, for quotas the old object matched too.
    let mut charges: BTreeMap<usize, List> =
        interesting.iter().map(|&i| (i, input.clone())).collect();
    if request.operation == Operation::Update {
        let Some(old) = request.old_object else {
            return Err(refuse(
                "unable to get previous usage since prior version of object was not found".into(),
            ));
        };
        let stored = old["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|v| !v.is_empty());
        if stored {
            let delta = subtract_non_negative(&input, &evaluator.usage(old, now));
            for &i in &interesting {
                if evaluator.matches(&quotas[i], old) {
                    charges.insert(i, delta.clone());
                }
            }
        }
    }
    let charges: BTreeMap<usize, List> = charges
        .into_iter()
        .map(|(i, l)| (i, remove_zeros(l)))
        .filter(|(_, l)| !l.is_empty())
        .collect();

    let mut updates = Vec::new();
    for &i in &interesting {
        let Some(charge) = charges.get(&i) else {
            continue;
        };
        let quota = &quotas[i];
        let requested = mask(charge, |k| quota.hard.contains_key(k));
        let new_used = add_lists(&quota.used, &requested);
        if request.subresource != "status" {
            let exceeded: BTreeSet<&String> = quota
                .hard
                .iter()
                .filter(|(k, limit)| {
                    requested.contains_key(*k)
                        && new_used.get(*k).is_some_and(|u| u.cmp_value(limit).is_gt())
                })
                .map(|(k, _)| k)
                .collect();
            if !exceeded.is_empty() {
                let only = |l: &List| mask(l, |k| exceeded.contains(k));
                return Err(refuse(format!(
                    "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                    quota.name,
                    pretty(&only(&requested)),
                    pretty(&only(&quota.used)),
                    pretty(&only(&quota.hard)),
                )));
            }
        }
        if !same_values(&new_used, &quota.used) {
            updates.push(QuotaUpdate {
                name: quota.name.clone(),
                used: list_json(&new_used),
            });
        }
    }
    Ok(updates)
}

/// `NewForbidden`'s text: `<resource>[.<group>] "<name>" is forbidden: …`.
fn forbidden_message(request: &Request, reason: &str) -> String {
    if request.group.is_empty() && request.resource.is_empty() {
        return format!("forbidden: {reason}");
    }
    let resource = if request.group.is_empty() {
        request.resource.to_string()
    } else {
        format!("{}.{}", request.resource, request.group)
    };
    let meta = &request.object["metadata"];
    let name = [
        request.name,
        str_at(meta, "name"),
        str_at(meta, "generateName"),
    ]
    .into_iter()
    .find(|n| !n.is_empty())
    .unwrap_or("Unknown");
    format!("{resource} {} is forbidden: {reason}", go_quote(name))
}

/// `prettyPrint`: `name=value` pairs, sorted by name, joined by commas.
fn pretty(list: &List) -> String {
    list.iter()
        .map(|(k, q)| format!("{k}={}", q.canonical()))
        .collect::<Vec<_>>()
        .join(",")
}

/// `prettyPrintResourceNames`: sorted, joined by commas.
fn join_names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let sorted: BTreeSet<&String> = names.collect();
    sorted
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Go's `%q` for a name (object names are plain ASCII; the rest is escaped
/// as `strconv.Quote` does for ASCII).
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// Quotas.

/// A scope selector term: `spec.scopes` entries become `Exists` terms,
/// followed by `spec.scopeSelector.matchExpressions`.
#[derive(Debug, Clone)]
struct Selector {
    scope: String,
    operator: String,
    values: Vec<String>,
}

#[derive(Debug, Clone)]
struct Quota {
    name: String,
    selectors: Vec<Selector>,
    spec_hard: List,
    /// `status.hard`: what admission enforces.
    hard: List,
    /// `status.used`.
    used: List,
}

impl Quota {
    fn read(v: &Value) -> Quota {
        let mut selectors: Vec<Selector> = array(&v["spec"]["scopes"])
            .filter_map(Value::as_str)
            .map(|s| Selector {
                scope: s.to_string(),
                operator: "Exists".into(),
                values: Vec::new(),
            })
            .collect();
        selectors.extend(
            array(&v["spec"]["scopeSelector"]["matchExpressions"]).map(|e| Selector {
                scope: str_at(e, "scopeName").to_string(),
                operator: str_at(e, "operator").to_string(),
                values: array(&e["values"])
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect(),
            }),
        );
        Quota {
            name: str_at(&v["metadata"], "name").to_string(),
            selectors,
            spec_hard: list(&v["spec"]["hard"]),
            hard: list(&v["status"]["hard"]),
            used: list(&v["status"]["used"]),
        }
    }
}

// ---------------------------------------------------------------------------
// Evaluators (`quota.Evaluator` implementations in the core registry).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pod,
    Service,
    Claim,
    Pvc,
    /// `generic.objectCountEvaluator`.
    Count,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Evaluator {
    kind: Kind,
    group: String,
    resource: String,
    /// The legacy name a core count also answers to (`configmaps`).
    alias: Option<&'static str>,
    minor: u32,
}

/// Resources quota never looks at (`install.DefaultIgnoredResources`).
const IGNORED: &[(&str, &str)] = &[
    ("", "bindings"),
    ("", "componentstatuses"),
    ("authentication.k8s.io", "tokenreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
    ("authorization.k8s.io", "subjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "localsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("", "events"),
    ("events.k8s.io", "events"),
];

/// Core counts kept under their pre-`count/` names too
/// (`legacyObjectCountAliases`).
const ALIASES: &[&str] = &[
    "configmaps",
    "resourcequotas",
    "replicationcontrollers",
    "secrets",
];

/// `podResources`.
const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

/// The resources whose use every container must state when a quota
/// tracks them (`validationSet`, a backward-compatibility wart).
const MUST_SPECIFY: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

const SERVICE_RESOURCES: &[&str] = &[
    "count/services",
    "services",
    "services.nodeports",
    "services.loadbalancers",
];

const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";
const CLAIM_COUNT: &str = "count/resourceclaims.resource.k8s.io";
const DEVICE_CLASS_PREFIX: &str = "deviceclass.resource.kubernetes.io/";

/// `ObjectCountQuotaResourceNameFor`.
fn count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

impl Evaluator {
    fn new(kind: Kind, group: &str, resource: &str, minor: u32) -> Evaluator {
        Evaluator {
            kind,
            group: group.to_string(),
            resource: resource.to_string(),
            alias: None,
            minor,
        }
    }

    /// The evaluator admission uses for a resource: a built-in one, or a
    /// plain object count (the plugin makes one on first sight of a
    /// resource); `None` for ignored resources.
    fn for_resource(group: &str, resource: &str, minor: u32) -> Option<Evaluator> {
        if IGNORED.contains(&(group, resource)) {
            return None;
        }
        let kind = match (group, resource) {
            ("", "pods") => Kind::Pod,
            ("", "services") => Kind::Service,
            ("", "persistentvolumeclaims") => Kind::Pvc,
            ("resource.k8s.io", "resourceclaims") => Kind::Claim,
            _ => Kind::Count,
        };
        let mut evaluator = Evaluator::new(kind, group, resource, minor);
        if group.is_empty() {
            evaluator.alias = ALIASES.iter().copied().find(|a| *a == resource);
        }
        Some(evaluator)
    }

    /// The evaluator the controller measures a quota's resource name with,
    /// if it has one.
    fn for_quota_name(
        name: &str,
        minor: u32,
        served: &dyn Fn(&str, &str) -> bool,
    ) -> Option<Evaluator> {
        let builtin = [
            ("", "pods"),
            ("", "services"),
            ("", "persistentvolumeclaims"),
            ("resource.k8s.io", "resourceclaims"),
        ];
        for (group, resource) in builtin {
            let e = Evaluator::for_resource(group, resource, minor)?;
            if !e.matching_resources([name.to_string()].iter()).is_empty() {
                return Some(e);
            }
        }
        if let Some(alias) = ALIASES.iter().find(|a| **a == name) {
            return Evaluator::for_resource("", alias, minor);
        }
        let rest = name.strip_prefix("count/")?;
        let (resource, group) = rest.split_once('.').unwrap_or((rest, ""));
        let e = Evaluator::for_resource(group, resource, minor)?;
        let builtin_count = e.kind != Kind::Count || e.alias.is_some();
        (builtin_count || served(group, resource)).then_some(e)
    }

    fn is_for(&self, group: &str, resource: &str) -> bool {
        self.group == group && self.resource == resource
    }

    /// `Handles`: whether the request can change what this resource uses.
    fn handles(&self, r: &Request) -> bool {
        let is_object = |v: Option<&Value>| v.is_some_and(Value::is_object);
        match self.kind {
            Kind::Pod => match r.subresource {
                "" => match r.operation {
                    Operation::Create => true,
                    Operation::Update => {
                        is_object(Some(r.object))
                            && is_object(r.old_object)
                            && r.old_object
                                .is_some_and(|old| is_terminating(old) != is_terminating(r.object))
                    }
                },
                "resize" => r.operation == Operation::Update,
                _ => false,
            },
            Kind::Service | Kind::Claim => r.subresource.is_empty(),
            // A status update always counts: `RequiresQuotaReplenish`
            // compares two freshly allocated `Storage()` pointers, which
            // always differ.
            Kind::Pvc => match r.subresource {
                "" => true,
                "status" => is_object(Some(r.object)) && is_object(r.old_object),
                _ => false,
            },
            Kind::Count => r.subresource.is_empty() && r.operation == Operation::Create,
        }
    }

    /// `MatchingResources`: which of a quota's resource names this
    /// evaluator accounts for.
    fn matching_resources<'a>(&self, names: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
        let minor = self.minor;
        names
            .filter(|n| match self.kind {
                Kind::Pod => {
                    POD_RESOURCES.contains(&n.as_str())
                        || n.starts_with("hugepages-")
                        || n.starts_with("requests.hugepages-")
                        || extended_for_quota(n, minor)
                }
                Kind::Service => SERVICE_RESOURCES.contains(&n.as_str()),
                Kind::Pvc => {
                    [
                        "count/persistentvolumeclaims",
                        "persistentvolumeclaims",
                        "requests.storage",
                    ]
                    .contains(&n.as_str())
                        || n.ends_with(&format!("{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"))
                        || n.ends_with(&format!("{STORAGE_CLASS_SUFFIX}requests.storage"))
                }
                Kind::Claim => n.as_str() == CLAIM_COUNT,
                Kind::Count => {
                    **n == count_name(&self.group, &self.resource) || Some(n.as_str()) == self.alias
                }
            })
            .cloned()
            .collect()
    }

    /// `Matches`: the quota enforces something of this resource and the
    /// object is in every one of its scopes.
    fn matches(&self, quota: &Quota, object: &Value) -> bool {
        !self.matching_resources(quota.hard.keys()).is_empty()
            && quota
                .selectors
                .iter()
                .all(|s| self.scope_matches(s, object))
    }

    fn scope_matches(&self, selector: &Selector, object: &Value) -> bool {
        match self.kind {
            Kind::Pod => pod_in_scope(selector, object, self.minor),
            Kind::Pvc => pvc_in_scope(selector, object),
            // `MatchesNoScopeFunc`: a scoped quota never counts these.
            _ => false,
        }
    }

    /// `Constraints`: only pods have any (see [`pod_constraints`]).
    fn constraints(&self, required: &BTreeSet<String>, object: &Value) -> Result<(), String> {
        match self.kind {
            Kind::Pod => pod_constraints(required, object, self.minor),
            _ => Ok(()),
        }
    }

    fn usage(&self, object: &Value, now: Option<i128>) -> List {
        let one = || Quantity::from_int(1);
        match self.kind {
            Kind::Pod => pod_usage(object, self.minor, now),
            Kind::Service => service_usage(object),
            Kind::Pvc => pvc_usage(object),
            Kind::Claim => List::from([(CLAIM_COUNT.to_string(), one())]),
            Kind::Count => {
                let mut usage = List::from([(count_name(&self.group, &self.resource), one())]);
                if let Some(alias) = self.alias {
                    usage.insert(alias.to_string(), one());
                }
                usage
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Pods (pods.go, and k8s.io/component-helpers/resource for the sums).

/// What a pod uses (`PodUsageFunc`): always `count/pods`; the rest only
/// while the pod is live.
fn pod_usage(pod: &Value, minor: u32, now: Option<i128>) -> List {
    let mut usage = List::from([("count/pods".to_string(), Quantity::from_int(1))]);
    if !charged(pod, now) {
        return usage;
    }
    let requests = pod_requests(pod, minor);
    let limits = pod_limits(pod, minor);
    for (k, q) in compute_usage(&requests, &limits, minor) {
        usage.entry(k).or_insert(q);
    }
    usage
}

/// `QuotaV1Pod`: terminal pods, and pods past their deletion grace period,
/// are not charged.
fn charged(pod: &Value, now: Option<i128>) -> bool {
    if matches!(
        pod["status"]["phase"].as_str(),
        Some("Failed" | "Succeeded")
    ) {
        return false;
    }
    let meta = &pod["metadata"];
    let deleted = meta["deletionTimestamp"].as_str().and_then(unix_nanos);
    let grace = meta["deletionGracePeriodSeconds"].as_i64();
    match (now, deleted, grace) {
        (Some(now), Some(deleted), Some(grace)) => {
            now <= deleted.saturating_add(i128::from(grace) * 1_000_000_000)
        }
        _ => true,
    }
}

/// `podComputeUsageHelper`: the quota names a pod's (or a container's)
/// requests and limits fill.
fn compute_usage(requests: &List, limits: &List, minor: u32) -> List {
    let mut usage = List::from([("pods".to_string(), Quantity::from_int(1))]);
    for resource in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(resource) {
            usage.insert(resource.to_string(), q.clone());
            usage.insert(format!("requests.{resource}"), q.clone());
        }
        if let Some(q) = limits.get(resource) {
            usage.insert(format!("limits.{resource}"), q.clone());
        }
    }
    for (name, q) in requests {
        if name.starts_with("hugepages-") {
            usage.insert(name.clone(), q.clone());
            usage.insert(format!("requests.{name}"), q.clone());
        }
        if extended_in_pod(name, minor) {
            usage.insert(format!("requests.{name}"), q.clone());
        }
    }
    usage
}

/// `Constraints`: when a quota tracks cpu or memory (any of
/// [`MUST_SPECIFY`]), every container and init container must state it,
/// unless the pod sets pod-level resources. The message lists each missing
/// resource (sorted) with the containers lacking it (sorted, deduplicated):
/// `must specify limits.cpu for: envoy; limits.memory for: app,envoy`.
fn pod_constraints(required: &BTreeSet<String>, pod: &Value, minor: u32) -> Result<(), String> {
    if pod_level_resources_set(&pod["spec"]) {
        return Ok(());
    }
    let required: BTreeSet<&String> = required
        .iter()
        .filter(|r| MUST_SPECIFY.contains(&r.as_str()))
        .collect();
    let mut missing: BTreeMap<&String, BTreeSet<&str>> = BTreeMap::new();
    let containers = array(&pod["spec"]["containers"]).chain(array(&pod["spec"]["initContainers"]));
    for c in containers {
        let states = compute_usage(
            &list(&c["resources"]["requests"]),
            &list(&c["resources"]["limits"]),
            minor,
        );
        for r in &required {
            if !states.contains_key(*r) {
                missing.entry(r).or_default().insert(str_at(c, "name"));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            let names: Vec<&str> = names.iter().copied().collect();
            format!("{r} for: {}", names.join(","))
        })
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

/// Which list of a container a sum reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Container,
    /// An init container with `restartPolicy: Always`.
    Sidecar,
    Init,
}

/// The sidecar-aware sum over a pod's containers
/// (`aggregateContainerResourcesByFn`): regular containers and sidecars
/// add up; each plain init container needs its own plus the sidecars
/// started before it; the pod needs the larger of the two, per resource.
fn aggregate(pod: &Value, per_container: impl Fn(&Value, Option<&Value>, Slot) -> List) -> List {
    let spec = &pod["spec"];
    let mut total = List::new();
    for c in array(&spec["containers"]) {
        add_into(
            &mut total,
            &per_container(c, container_status(pod, c), Slot::Container),
        );
    }
    let mut sidecars = List::new();
    let mut init_peak = List::new();
    for c in array(&spec["initContainers"]) {
        let sidecar = c["restartPolicy"] == "Always";
        let slot = if sidecar { Slot::Sidecar } else { Slot::Init };
        let own = per_container(c, container_status(pod, c), slot);
        let during = if sidecar {
            add_into(&mut total, &own);
            add_into(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut combined = own;
            add_into(&mut combined, &sidecars);
            combined
        };
        max_into(&mut init_peak, &during);
    }
    max_into(&mut total, &init_peak);
    total
}

/// `PodRequests` as quota calls it: container requests (a resized pod's
/// status counted as the minor does), then pod-level requests, then the
/// overhead.
fn pod_requests(pod: &Value, minor: u32) -> List {
    let infeasible = resize_infeasible(pod);
    let spec_requests = |c: &Value| list(&c["resources"]["requests"]);
    let mut requests = if minor >= AGGREGATED_STATUS_RESOURCES_SINCE {
        let spec = aggregate(pod, |c, _, _| spec_requests(c));
        let allocated_of = |c: &Value, cs: Option<&Value>| match cs
            .and_then(|s| object_at(s, "allocatedResources"))
        {
            Some(a) => list(a),
            None if infeasible => List::new(),
            None => spec_requests(c),
        };
        let allocated = aggregate(pod, |c, cs, _| allocated_of(c, cs));
        let actuated = aggregate(pod, |c, cs, _| {
            match cs
                .and_then(|s| object_at(s, "resources"))
                .and_then(|r| object_at(r, "requests"))
            {
                Some(r) => list(r),
                None => allocated_of(c, cs),
            }
        });
        if infeasible {
            max_of(&actuated, &[&allocated])
        } else {
            max_of(&spec, &[&actuated, &allocated])
        }
    } else {
        aggregate(pod, |c, cs, slot| {
            let spec = spec_requests(c);
            let reported = cs.and_then(|s| object_at(s, "resources"));
            match (slot, reported) {
                (Slot::Container | Slot::Sidecar, Some(reported)) => {
                    let actuated = list(&reported["requests"]);
                    let allocated = cs
                        .map(|s| list(&s["allocatedResources"]))
                        .unwrap_or_default();
                    if infeasible {
                        max_of(&actuated, &[&allocated])
                    } else {
                        max_of(&spec, &[&actuated, &allocated])
                    }
                }
                _ => spec,
            }
        })
    };
    let spec = &pod["spec"];
    if pod_level_set(&spec["resources"]["requests"]) {
        for (k, q) in list(&spec["resources"]["requests"]) {
            if pod_level_resource(&k) {
                requests.insert(k, q);
            }
        }
    }
    add_into(&mut requests, &list(&spec["overhead"]));
    requests
}

/// `PodLimits` as quota calls it: container limits, pod-level limits, and
/// the overhead added to each non-zero limit it names.
fn pod_limits(pod: &Value, minor: u32) -> List {
    let infeasible = resize_infeasible(pod);
    let spec_limits = |c: &Value| list(&c["resources"]["limits"]);
    let mut limits = if minor >= AGGREGATED_STATUS_RESOURCES_SINCE {
        let spec = aggregate(pod, |c, _, _| spec_limits(c));
        let actuated = aggregate(pod, |c, cs, _| {
            match cs
                .and_then(|s| object_at(s, "resources"))
                .and_then(|r| object_at(r, "limits"))
            {
                Some(l) => list(l),
                None if infeasible => List::new(),
                None => spec_limits(c),
            }
        });
        if infeasible {
            actuated
        } else {
            max_of(&spec, &[&actuated])
        }
    } else {
        aggregate(pod, |c, cs, slot| {
            let spec = spec_limits(c);
            match (slot, cs.and_then(|s| object_at(s, "resources"))) {
                (Slot::Container | Slot::Sidecar, Some(reported)) => {
                    let actuated = list(&reported["limits"]);
                    if infeasible {
                        actuated
                    } else {
                        max_of(&spec, &[&actuated])
                    }
                }
                _ => spec,
            }
        })
    };
    let spec = &pod["spec"];
    if pod_level_resources_set(spec) {
        for (k, q) in list(&spec["resources"]["limits"]) {
            if pod_level_resource(&k) {
                limits.insert(k, q);
            }
        }
    }
    for (k, extra) in list(&spec["overhead"]) {
        if let Some(limit) = limits.get_mut(&k) {
            if !limit.is_zero() {
                if let Some(sum) = limit.checked_add(&extra) {
                    *limit = sum;
                }
            }
        }
    }
    limits
}

/// The status entry of a container, by name: `status.containerStatuses`
/// first, then `status.initContainerStatuses`.
fn container_status<'a>(pod: &'a Value, container: &Value) -> Option<&'a Value> {
    let name = container["name"].as_str()?;
    array(&pod["status"]["containerStatuses"])
        .chain(array(&pod["status"]["initContainerStatuses"]))
        .find(|s| s["name"].as_str() == Some(name))
}

/// `IsPodResizeInfeasible`: the first `PodResizePending` condition says
/// `Infeasible`.
fn resize_infeasible(pod: &Value) -> bool {
    array(&pod["status"]["conditions"])
        .find(|c| c["type"] == "PodResizePending")
        .is_some_and(|c| c["reason"] == "Infeasible")
}

/// cpu, memory and hugepages can be set for the whole pod.
fn pod_level_resource(name: &str) -> bool {
    name == "cpu" || name == "memory" || name.starts_with("hugepages-")
}

fn pod_level_set(list: &Value) -> bool {
    list.as_object()
        .is_some_and(|m| m.keys().any(|k| pod_level_resource(k)))
}

/// `IsPodLevelResourcesSet`.
fn pod_level_resources_set(spec: &Value) -> bool {
    let r = &spec["resources"];
    r.is_object() && (pod_level_set(&r["requests"]) || pod_level_set(&r["limits"]))
}

/// `IsTerminating`: the pod has an `activeDeadlineSeconds`.
fn is_terminating(pod: &Value) -> bool {
    pod["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .is_some_and(|s| s >= 0)
}

/// Whether the pod's QoS class is BestEffort (`qos.GetPodQOS`): the
/// status's class when set, else computed. Before v1.37 any
/// `spec.resources` object, even empty, decides alone.
fn best_effort(pod: &Value, minor: u32) -> bool {
    if let Some(class) = pod["status"]["qosClass"].as_str().filter(|c| !c.is_empty()) {
        return class == "BestEffort";
    }
    let spec = &pod["spec"];
    // No cpu or memory in a set of requirements: before v1.37 no positive
    // value; from v1.37 requests equal to limits and zero, which differs
    // only for (invalid) negative values.
    let quiet = |r: &Value| {
        ["requests", "limits"].iter().all(|key| {
            let l = list(&r[*key]);
            ["cpu", "memory"].iter().all(|res| match l.get(*res) {
                None => true,
                Some(q) if minor >= POD_LEVEL_QOS_FIX_SINCE => q.is_zero(),
                Some(q) => q.signum() <= 0,
            })
        })
    };
    let pod_level = spec["resources"].is_object()
        && (minor < POD_LEVEL_QOS_FIX_SINCE || pod_level_resources_set(spec));
    if pod_level {
        return quiet(&spec["resources"]);
    }
    array(&spec["containers"])
        .chain(array(&spec["initContainers"]))
        .all(|c| quiet(&c["resources"]))
}

/// `usesCrossNamespacePodAffinity`: an affinity or anti-affinity term
/// naming namespaces or selecting them.
fn cross_namespace_affinity(pod: &Value) -> bool {
    let affinity = &pod["spec"]["affinity"];
    let crosses =
        |t: &Value| array(&t["namespaces"]).next().is_some() || t["namespaceSelector"].is_object();
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let a = &affinity[*kind];
        array(&a["requiredDuringSchedulingIgnoredDuringExecution"]).any(crosses)
            || array(&a["preferredDuringSchedulingIgnoredDuringExecution"])
                .any(|w| crosses(&w["podAffinityTerm"]))
    })
}

/// `podMatchesScopeFunc`. The operator only matters for `PriorityClass`
/// (validation keeps the others at `Exists`/`DoesNotExist`, which the Go
/// code does not tell apart). An invalid selector, which validation
/// refuses on the quota, matches nothing here (the apiserver would answer
/// 500 with the selector's parse error).
fn pod_in_scope(selector: &Selector, pod: &Value, minor: u32) -> bool {
    match selector.scope.as_str() {
        "Terminating" => is_terminating(pod),
        "NotTerminating" => !is_terminating(pod),
        "BestEffort" => best_effort(pod, minor),
        "NotBestEffort" => !best_effort(pod, minor),
        "PriorityClass" => {
            let class = pod["spec"]["priorityClassName"]
                .as_str()
                .filter(|c| !c.is_empty());
            if selector.operator == "Exists" {
                class.is_some()
            } else {
                requirement_matches(selector, class).unwrap_or(false)
            }
        }
        "CrossNamespacePodAffinity" => cross_namespace_affinity(pod),
        _ => false,
    }
}

/// A label requirement on the one label a scope offers
/// (`ScopedResourceSelectorRequirementsAsSelector`); `None` when
/// `labels.NewRequirement` would refuse it.
fn requirement_matches(selector: &Selector, value: Option<&str>) -> Option<bool> {
    let values = &selector.values;
    let listed = || value.is_some_and(|v| values.iter().any(|x| x == v));
    match selector.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() || !values.iter().all(|v| is_label_value(v)) {
                return None;
            }
            Some((selector.operator == "In") == listed())
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                return None;
            }
            Some((selector.operator == "Exists") == value.is_some())
        }
        _ => None,
    }
}

/// Extended resources a container's request charges as `requests.<name>`.
fn extended_in_pod(name: &str, minor: u32) -> bool {
    is_extended_resource_name(name)
        || (minor >= DEVICE_CLASS_REQUESTS_SINCE && name.starts_with(DEVICE_CLASS_PREFIX))
}

/// `isExtendedResourceNameForQuota`: `requests.<extended resource>`.
fn extended_for_quota(name: &str, minor: u32) -> bool {
    let implicit = minor >= DEVICE_CLASS_REQUESTS_SINCE
        && name.starts_with(&format!("requests.{DEVICE_CLASS_PREFIX}"));
    (!is_native_resource(name) || implicit) && name.starts_with("requests.")
}

/// `IsNativeResource`: unprefixed, or under `kubernetes.io/`.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `IsExtendedResourceName`.
fn is_extended_resource_name(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}"))
}

// ---------------------------------------------------------------------------
// Services and claims.

/// `serviceEvaluator.Usage`: one service; its ports as node ports for a
/// NodePort or LoadBalancer service (only the allocated ones when a load
/// balancer skips node ports); one load balancer.
fn service_usage(svc: &Value) -> List {
    let spec = &svc["spec"];
    let ports = array(&spec["ports"]).count() as i64;
    let (node_ports, balancers) = match spec["type"].as_str() {
        Some("NodePort") => (ports, 0),
        Some("LoadBalancer") => {
            let allocated = if spec["allocateLoadBalancerNodePorts"] == Value::Bool(false) {
                array(&spec["ports"])
                    .filter(|p| p["nodePort"].as_i64().is_some_and(|n| n != 0))
                    .count() as i64
            } else {
                ports
            };
            (allocated, 1)
        }
        _ => (0, 0),
    };
    List::from([
        ("count/services".to_string(), Quantity::from_int(1)),
        ("services".to_string(), Quantity::from_int(1)),
        (
            "services.nodeports".to_string(),
            Quantity::from_int(node_ports),
        ),
        (
            "services.loadbalancers".to_string(),
            Quantity::from_int(balancers),
        ),
    ])
}

/// `pvcEvaluator.Usage`: one claim, overall and per storage class, and
/// its storage, overall and per class.
fn pvc_usage(pvc: &Value) -> List {
    let mut usage = List::from([
        ("persistentvolumeclaims".to_string(), Quantity::from_int(1)),
        (
            "count/persistentvolumeclaims".to_string(),
            Quantity::from_int(1),
        ),
    ]);
    // `GetPersistentVolumeClaimClass`: the beta annotation first.
    let class = pvc["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"]
        .as_str()
        .or_else(|| pvc["spec"]["storageClassName"].as_str())
        .unwrap_or("");
    if !class.is_empty() {
        usage.insert(
            format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            Quantity::from_int(1),
        );
    }
    if let Some(storage) = pvc_storage(pvc) {
        if !class.is_empty() {
            usage.insert(
                format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"),
                storage.clone(),
            );
        }
        usage.insert("requests.storage".into(), storage);
    }
    usage
}

/// The storage a claim is charged (`getStorageUsage`): its request, or
/// the larger allocation a failed expansion left, rounded up to whole
/// bytes.
fn pvc_storage(pvc: &Value) -> Option<Quantity> {
    let round = |q: &Quantity| {
        let mut r = q.clone();
        r.round_up_to_units();
        r
    };
    let mut storage = round(list(&pvc["spec"]["resources"]["requests"]).get("storage")?);
    if let Some(allocated) = list(&pvc["status"]["allocatedResources"]).get("storage") {
        if allocated.cmp_value(&storage).is_gt() {
            storage = round(allocated);
        }
    }
    Some(storage)
}

/// `pvcMatchesScopeFunc`: only `VolumeAttributesClass`, over the classes
/// the claim names in its spec and status.
fn pvc_in_scope(selector: &Selector, pvc: &Value) -> bool {
    if selector.scope != "VolumeAttributesClass" {
        return false;
    }
    let names: BTreeSet<&str> = [
        &pvc["spec"]["volumeAttributesClassName"],
        &pvc["status"]["currentVolumeAttributesClassName"],
        &pvc["status"]["modifyVolumeStatus"]["targetVolumeAttributesClassName"],
    ]
    .into_iter()
    .filter_map(Value::as_str)
    .filter(|n| !n.is_empty())
    .collect();
    if selector.operator == "Exists" {
        return !names.is_empty();
    }
    if names.is_empty() {
        return requirement_matches(selector, None).unwrap_or(false);
    }
    names
        .iter()
        .any(|n| requirement_matches(selector, Some(n)).unwrap_or(false))
}

// ---------------------------------------------------------------------------
// Resource lists (`quota/v1/resources.go`, `addResourceList`, `max`).

/// A resource list from JSON, each entry rounded up to milli units as the
/// apiserver's defaulting left it; wrong types and unparsable entries are
/// absent.
fn list(v: &Value) -> List {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let mut q = quantity::from_json(v)?.ok()?;
            q.round_up_to_milli();
            Some((k.clone(), q))
        })
        .collect()
}

fn list_json(l: &List) -> Value {
    Value::Object(
        l.iter()
            .map(|(k, q)| (k.clone(), Value::String(q.canonical())))
            .collect(),
    )
}

fn texts(l: &List) -> BTreeMap<String, String> {
    l.iter().map(|(k, q)| (k.clone(), q.canonical())).collect()
}

/// `addResourceList`: a new entry keeps its text, a sum is printed anew.
/// (A sum beyond the model's 128-bit range, which no cluster accepts,
/// leaves the entry as it was.)
fn add_into(into: &mut List, new: &List) {
    for (k, q) in new {
        match into.get_mut(k) {
            None => {
                into.insert(k.clone(), q.clone());
            }
            Some(v) => {
                if let Some(sum) = v.checked_add(q) {
                    *v = sum;
                }
            }
        }
    }
}

/// `quota.Add(sums, usage)` restricted to the resources being summed.
fn add_tracked(sums: &mut List, usage: &List) {
    for (k, v) in sums.iter_mut() {
        if let Some(sum) = usage.get(k).and_then(|q| v.checked_add(q)) {
            *v = sum;
        }
    }
}

/// `quota.Add`.
fn add_lists(a: &List, b: &List) -> List {
    let mut out = a.clone();
    add_into(&mut out, b);
    out
}

/// `maxResourceList`: an entry is replaced only by a strictly larger one.
fn max_into(into: &mut List, new: &List) {
    for (k, q) in new {
        let larger = into.get(k).is_none_or(|v| q.cmp_value(v).is_gt());
        if larger {
            into.insert(k.clone(), q.clone());
        }
    }
}

fn max_of(first: &List, rest: &[&List]) -> List {
    let mut out = first.clone();
    for l in rest {
        max_into(&mut out, l);
    }
    out
}

/// `SubtractWithNonNegativeResult`.
fn subtract_non_negative(a: &List, b: &List) -> List {
    let mut out = List::new();
    for (k, v) in a {
        let diff = match b.get(k) {
            Some(other) => v.checked_sub(other).unwrap_or_else(|| v.clone()),
            None => v.clone(),
        };
        let kept = if diff.signum() > 0 {
            diff
        } else {
            Quantity::zero()
        };
        out.insert(k.clone(), kept);
    }
    for k in b.keys() {
        out.entry(k.clone()).or_insert_with(Quantity::zero);
    }
    out
}

fn remove_zeros(l: List) -> List {
    l.into_iter().filter(|(_, q)| !q.is_zero()).collect()
}

fn mask(l: &List, keep: impl Fn(&String) -> bool) -> List {
    l.iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, q)| (k.clone(), q.clone()))
        .collect()
}

/// `quota.Equals`: the same names with equal values.
fn same_values(a: &List, b: &List) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, q)| b.get(k).is_some_and(|o| q.cmp_value(o).is_eq()))
}

// ---------------------------------------------------------------------------
// Small helpers.

fn array(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// A field that Go would decode as a non-nil map or struct.
fn object_at<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|f| f.is_object())
}

/// `validation.IsQualifiedName`: `[prefix/]name`, the prefix a DNS
/// subdomain, the name at most 63 alphanumerics, `-`, `_`, `.`.
fn is_qualified_name(v: &str) -> bool {
    let name = match v.split('/').collect::<Vec<_>>().as_slice() {
        [name] => *name,
        [prefix, name] if is_dns_subdomain(prefix) => *name,
        _ => return false,
    };
    !name.is_empty() && name.len() <= 63 && alnum_ends(name) && name.bytes().all(name_byte)
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn alnum_ends(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// `validation.IsValidLabelValue`.
fn is_label_value(v: &str) -> bool {
    v.is_empty() || (v.len() <= 63 && alnum_ends(v) && v.bytes().all(name_byte))
}

/// `validation.IsDNS1123Subdomain`.
fn is_dns_subdomain(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|label| {
            let b = label.as_bytes();
            let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            b.first().is_some_and(edge)
                && b.last().is_some_and(edge)
                && b.iter().all(|c| edge(c) || *c == b'-')
        })
}

/// Nanoseconds since the epoch of an RFC 3339 time (as `metav1.Time`
/// holds it), or `None`.
fn unix_nanos(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    let digits = |from: usize, to: usize| -> Option<i64> {
        let s = text.get(from..to)?;
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut pos = 19;
    let mut nanos: i128 = 0;
    if at(pos, b".") {
        let start = pos + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        let frac = &text[start..end.min(start + 9)];
        nanos = frac.parse::<i128>().ok()? * 10i128.pow(9 - frac.len() as u32);
        pos = end;
    }
    let offset = match text.get(pos..)? {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && (at(pos, b"+-")) && at(pos + 3, b":") => {
            let minutes = digits(pos + 1, pos + 3)? * 60 + digits(pos + 4, pos + 6)?;
            if at(pos, b"-") {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset * 60;
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const MINOR: u32 = 37;

    // ----- fixtures

    fn container(name: &str, limits: Value) -> Value {
        // As stored: defaulting copied the limits into the requests.
        json!({"name": name, "image": "img", "resources": {"limits": limits, "requests": limits}})
    }

    fn bare(name: &str) -> Value {
        json!({"name": name, "image": "img", "resources": {}})
    }

    fn pod(name: &str, containers: Vec<Value>) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": "shop"},
               "spec": {"containers": containers}})
    }

    /// A pod after sidecar injection: `app` as written plus `envoy` with
    /// its own limits.
    fn injected(name: &str, app: Value) -> Value {
        pod(
            name,
            vec![
                app,
                container("envoy", json!({"cpu": "500m", "memory": "64Mi"})),
            ],
        )
    }

    fn quota(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ResourceQuota",
               "metadata": {"name": name, "namespace": "shop"}, "spec": spec})
    }

    fn compute() -> Value {
        quota(
            "compute",
            json!({"hard": {"limits.cpu": "1", "limits.memory": "1Gi", "pods": "2"}}),
        )
    }

    fn served(group: &str, resource: &str) -> bool {
        (group, resource) == ("apps", "deployments")
    }

    fn pods_of(pods: &[Value]) -> Vec<Stored<'_>> {
        pods.iter()
            .map(|p| Stored {
                group: "",
                resource: "pods",
                object: p,
            })
            .collect()
    }

    /// The quota as the controller syncs it over `objects`.
    fn synced(mut q: Value, objects: &[Stored]) -> Value {
        q["status"] = quota_status(MINOR, &q, objects, &served, None);
        q
    }

    /// Applies what admission wrote to the quotas.
    fn apply(quotas: &mut [Value], updates: Vec<QuotaUpdate>) {
        for u in updates {
            for q in quotas.iter_mut() {
                if q["metadata"]["name"] == u.name.as_str() {
                    q["status"]["used"] = u.used.clone();
                }
            }
        }
    }

    fn refusal(r: Result<Vec<QuotaUpdate>, Refusal>) -> String {
        r.expect_err("should be refused").message
    }

    // ----- the sidecar scenario

    /// A fresh quota's status: hard as written, every tracked resource
    /// used `0` (`CalculateUsageStats` starts from
    /// `Quantity{Format: DecimalSI}`).
    #[test]
    fn a_new_quota_reports_zero_usage() {
        let q = synced(compute(), &[]);
        assert_eq!(
            q["status"],
            json!({"hard": {"limits.cpu": "1", "limits.memory": "1Gi", "pods": "2"},
                   "used": {"limits.cpu": "0", "limits.memory": "0", "pods": "0"}})
        );
    }

    /// The app states no limits, the injected envoy does: the quota
    /// tracks limits.cpu and limits.memory, so every container must state
    /// them (pods.go `Constraints`; controller.go `failed quota: %s: %v`;
    /// errors.go `NewForbidden`).
    #[test]
    fn an_injected_pod_whose_app_lacks_limits_is_refused() {
        let quotas = [synced(compute(), &[])];
        let web = injected("web", bare("app"));
        assert_eq!(
            refusal(admit_pod_create(MINOR, "web", &web, &quotas)),
            "pods \"web\" is forbidden: failed quota: compute: must specify limits.cpu for: app; limits.memory for: app"
        );
    }

    /// Containers lacking a resource are listed sorted and joined by `,`,
    /// resources sorted and joined by `; ` (pods_test.go
    /// `TestPodConstraintsFunc`, "container resource missing multiple").
    #[test]
    fn missing_resources_are_listed_per_resource_and_container() {
        let q = synced(
            quota("q", json!({"hard": {"cpu": "4", "memory": "4Gi"}})),
            &[],
        );
        let p = pod("p", vec![bare("foo"), bare("bar")]);
        assert_eq!(
            refusal(admit_pod_create(MINOR, "p", &p, std::slice::from_ref(&q))),
            "pods \"p\" is forbidden: failed quota: q: must specify cpu for: bar,foo; memory for: bar,foo"
        );
        // Init containers too ("init container resource missing").
        let mut p = pod(
            "p",
            vec![container("app", json!({"cpu": "1", "memory": "1Gi"}))],
        );
        p["spec"]["initContainers"] = json!([{"name": "dummy", "resources": {
            "requests": {"cpu": "1m"}, "limits": {"cpu": "2m"}}}]);
        assert_eq!(
            refusal(admit_pod_create(MINOR, "p", &p, std::slice::from_ref(&q))),
            "pods \"p\" is forbidden: failed quota: q: must specify memory for: dummy"
        );
        // Pod-level resources lift the requirement.
        let mut p = pod("p", vec![bare("foo")]);
        p["spec"]["resources"] = json!({"requests": {"cpu": "1m", "memory": "1Mi"}});
        assert!(admit_pod_create(MINOR, "p", &p, &[q]).is_ok());
    }

    /// Only the cpu/memory names of `validationSet` must be stated: a
    /// quota on `pods` alone or on ephemeral storage asks nothing.
    #[test]
    fn other_resources_need_not_be_stated() {
        let q = synced(
            quota(
                "q",
                json!({"hard": {"pods": "5", "requests.ephemeral-storage": "1Gi"}}),
            ),
            &[],
        );
        let p = injected("web", bare("app"));
        let updates = admit_pod_create(MINOR, "web", &p, &[q]).unwrap();
        assert_eq!(
            updates,
            [QuotaUpdate {
                name: "q".into(),
                used: json!({"pods": "1", "requests.ephemeral-storage": "0"})
            }]
        );
    }

    /// 500m used, the injected pod asks 100m + 500m: over the limit of 1.
    /// Only the exceeded resource is printed (controller.go
    /// `exceeded quota: %s, requested: %s, used: %s, limited: %s`).
    #[test]
    fn a_pod_over_the_cpu_limit_is_refused() {
        let mut quotas = [synced(compute(), &[])];
        let first = pod(
            "web-1",
            vec![container("app", json!({"cpu": "500m", "memory": "128Mi"}))],
        );
        let updates = admit_pod_create(MINOR, "web-1", &first, &quotas).unwrap();
        assert_eq!(
            updates[0].used,
            json!({"limits.cpu": "500m", "limits.memory": "128Mi", "pods": "1"})
        );
        apply(&mut quotas, updates);

        let second = injected(
            "web-2",
            container("app", json!({"cpu": "100m", "memory": "64Mi"})),
        );
        assert_eq!(
            refusal(admit_pod_create(MINOR, "web-2", &second, &quotas)),
            "pods \"web-2\" is forbidden: exceeded quota: compute, requested: limits.cpu=600m, used: limits.cpu=500m, limited: limits.cpu=1"
        );
    }

    /// The count: `pods=1` requested, two used, two allowed.
    #[test]
    fn a_third_pod_is_refused_by_the_pod_count() {
        let mut quotas = [synced(compute(), &[])];
        for (name, cpu) in [("web-1", "500m"), ("web-2", "200m")] {
            let p = pod(
                name,
                vec![container("app", json!({"cpu": cpu, "memory": "128Mi"}))],
            );
            let updates = admit_pod_create(MINOR, name, &p, &quotas).unwrap();
            apply(&mut quotas, updates);
        }
        assert_eq!(
            quotas[0]["status"]["used"],
            json!({"limits.cpu": "700m", "limits.memory": "256Mi", "pods": "2"})
        );
        let third = pod(
            "web-3",
            vec![container("app", json!({"cpu": "100m", "memory": "64Mi"}))],
        );
        assert_eq!(
            refusal(admit_pod_create(MINOR, "web-3", &third, &quotas)),
            "pods \"web-3\" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"
        );
    }

    /// Several resources over: all of them, sorted by name.
    #[test]
    fn every_exceeded_resource_is_listed() {
        let q = json!({"metadata": {"name": "compute"},
            "status": {"hard": {"limits.cpu": "1", "limits.memory": "1Gi", "pods": "2"},
                       "used": {"limits.cpu": "900m", "limits.memory": "1000Mi", "pods": "2"}}});
        let p = injected(
            "web",
            container("app", json!({"cpu": "100m", "memory": "64Mi"})),
        );
        assert_eq!(
            refusal(admit_pod_create(MINOR, "web", &p, &[q])),
            "pods \"web\" is forbidden: exceeded quota: compute, requested: limits.cpu=600m,limits.memory=128Mi,pods=1, used: limits.cpu=900m,limits.memory=1000Mi,pods=2, limited: limits.cpu=1,limits.memory=1Gi,pods=2"
        );
    }

    /// The controller's status after two pods; a finished pod and other
    /// objects do not count.
    #[test]
    fn status_after_two_pods() {
        let mut done = pod(
            "job",
            vec![container("app", json!({"cpu": "1", "memory": "1Gi"}))],
        );
        done["status"]["phase"] = json!("Succeeded");
        let pods = [
            pod(
                "web-1",
                vec![container("app", json!({"cpu": "500m", "memory": "128Mi"}))],
            ),
            done,
            injected(
                "web-2",
                container("app", json!({"cpu": "100m", "memory": "64Mi"})),
            ),
        ];
        let q = synced(compute(), &pods_of(&pods));
        assert_eq!(
            q["status"]["used"],
            json!({"limits.cpu": "1100m", "limits.memory": "256Mi", "pods": "2"})
        );
        // count/pods counts every stored pod, finished ones too.
        let counted = synced(
            quota("n", json!({"hard": {"count/pods": "10", "pods": "10"}})),
            &pods_of(&pods),
        );
        assert_eq!(
            counted["status"]["used"],
            json!({"count/pods": "3", "pods": "2"})
        );
    }

    /// A sum takes its first non-zero operand's format (`Quantity.Add`).
    #[test]
    fn a_sum_prints_in_the_first_operands_format() {
        let a = pod(
            "a",
            vec![container("app", json!({"cpu": "1", "memory": "64Mi"}))],
        );
        let b = pod(
            "b",
            vec![container("app", json!({"cpu": "250m", "memory": "1024k"}))],
        );
        let q = quota(
            "q",
            json!({"hard": {"limits.memory": "1Gi", "limits.cpu": "4"}}),
        );
        let forward = [a.clone(), b.clone()];
        let backward = [b, a];
        assert_eq!(
            quota_status(MINOR, &q, &pods_of(&forward), &served, None)["used"],
            json!({"limits.cpu": "1250m", "limits.memory": "66536Ki"})
        );
        assert_eq!(
            quota_status(MINOR, &q, &pods_of(&backward), &served, None)["used"],
            json!({"limits.cpu": "1250m", "limits.memory": "68132864"})
        );
    }

    // ----- scopes

    /// A BestEffort-scoped quota counts only pods without cpu/memory.
    #[test]
    fn a_best_effort_quota_counts_only_best_effort_pods() {
        let spec = json!({"hard": {"pods": "1"}, "scopes": ["BestEffort"]});
        let batch = pod("batch-1", vec![bare("worker")]);
        let web = injected(
            "web",
            container("app", json!({"cpu": "100m", "memory": "64Mi"})),
        );
        let objects = [batch, web.clone()];
        let quotas = [synced(quota("besteffort", spec), &pods_of(&objects))];
        assert_eq!(quotas[0]["status"]["used"], json!({"pods": "1"}));

        let next = pod("batch-2", vec![bare("worker")]);
        assert_eq!(
            refusal(admit_pod_create(MINOR, "batch-2", &next, &quotas)),
            "pods \"batch-2\" is forbidden: exceeded quota: besteffort, requested: pods=1, used: pods=1, limited: pods=1"
        );
        // A Burstable pod is out of scope: admitted, nothing charged.
        assert_eq!(admit_pod_create(MINOR, "web", &web, &quotas), Ok(vec![]));
    }

    /// admission_test.go: "Pod has different priorityclass than configured
    /// limited. Covering quota exists for configured limited scope
    /// PriorityClassExists." (`forbidden: exceeded quota: quota,
    /// requested: memory=20Gi, used: memory=1Gi, limited: memory=10Gi`).
    #[test]
    fn a_priority_class_scoped_quota() {
        let q = json!({"metadata": {"name": "quota"},
            "spec": {"scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "Exists"}]}},
            "status": {"hard": {"memory": "10Gi"}, "used": {"memory": "1Gi"}}});
        let mut p = json!({"metadata": {"name": "not-allowed-pod"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "3", "memory": "20Gi"}}}]}});
        p["spec"]["priorityClassName"] = json!("fake-priority");
        assert_eq!(
            refusal(admit_pod_create(MINOR, "not-allowed-pod", &p, std::slice::from_ref(&q))),
            "pods \"not-allowed-pod\" is forbidden: exceeded quota: quota, requested: memory=20Gi, used: memory=1Gi, limited: memory=10Gi"
        );
        // Without a priority class the quota does not apply.
        p["spec"]["priorityClassName"] = json!("");
        assert_eq!(admit_pod_create(MINOR, "x", &p, &[q]), Ok(vec![]));
    }

    #[test]
    fn scope_selector_operators() {
        let sel = |op: &str, values: &[&str]| Selector {
            scope: "PriorityClass".into(),
            operator: op.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let high = json!({"spec": {"priorityClassName": "high"}});
        let none = json!({"spec": {}});
        assert!(pod_in_scope(&sel("In", &["high", "low"]), &high, MINOR));
        assert!(!pod_in_scope(&sel("In", &["low"]), &high, MINOR));
        assert!(!pod_in_scope(&sel("In", &["high"]), &none, MINOR));
        assert!(pod_in_scope(&sel("NotIn", &["low"]), &high, MINOR));
        assert!(pod_in_scope(&sel("NotIn", &["low"]), &none, MINOR));
        assert!(pod_in_scope(&sel("DoesNotExist", &[]), &none, MINOR));
        // Invalid requirements match nothing.
        assert!(!pod_in_scope(&sel("In", &[]), &high, MINOR));
        // `Exists` on PriorityClass is answered without parsing the
        // selector (pods.go), so stray values do not matter there.
        assert!(pod_in_scope(&sel("Exists", &["x"]), &high, MINOR));
        assert_eq!(
            requirement_matches(&sel("Exists", &["x"]), Some("high")),
            None
        );
        assert!(!pod_in_scope(&sel("Gt", &["1"]), &high, MINOR));

        let term = |t: Value| {
            json!({"spec": {"affinity": {"podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": t}]}}}})
        };
        let cross = Selector {
            scope: "CrossNamespacePodAffinity".into(),
            operator: "Exists".into(),
            values: vec![],
        };
        assert!(pod_in_scope(
            &cross,
            &term(json!({"namespaceSelector": {}})),
            MINOR
        ));
        assert!(pod_in_scope(
            &cross,
            &term(json!({"namespaces": ["a"]})),
            MINOR
        ));
        assert!(!pod_in_scope(
            &cross,
            &term(json!({"namespaces": []})),
            MINOR
        ));

        let terminating = Selector {
            scope: "Terminating".into(),
            operator: "Exists".into(),
            values: vec![],
        };
        assert!(pod_in_scope(
            &terminating,
            &json!({"spec": {"activeDeadlineSeconds": 30}}),
            MINOR
        ));
        assert!(!pod_in_scope(&terminating, &none, MINOR));
    }

    /// Before v1.37 an empty `spec.resources` made the pod BestEffort
    /// whatever its containers asked (qos.go; the fix is v1.37's
    /// `PodLevelResourcesFixKubeletQOSClass`).
    #[test]
    fn best_effort_with_empty_pod_level_resources_by_minor() {
        let mut p = pod("p", vec![container("app", json!({"cpu": "100m"}))]);
        p["spec"]["resources"] = json!({});
        assert!(best_effort(&p, 36));
        assert!(!best_effort(&p, 37));
        p["status"]["qosClass"] = json!("Burstable");
        assert!(!best_effort(&p, 36));
    }

    // ----- object counts and other evaluators

    /// A `count/<resource>.<group>` quota on any resource (generic
    /// evaluator.go `ObjectCountQuotaResourceNameFor`).
    #[test]
    fn a_deployment_count_quota() {
        let deployment =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"}});
        let objects = [Stored {
            group: "apps",
            resource: "deployments",
            object: &deployment,
        }];
        let q = quota("objects", json!({"hard": {"count/deployments.apps": "1"}}));
        let quotas = [synced(q.clone(), &objects)];
        assert_eq!(
            quotas[0]["status"]["used"],
            json!({"count/deployments.apps": "1"})
        );

        let web =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        assert_eq!(
            refusal(admit_create(MINOR, "apps", "deployments", "web", &web, &quotas)),
            "deployments.apps \"web\" is forbidden: exceeded quota: objects, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1"
        );
        // Pods and updates do not touch it.
        let p = pod("p", vec![bare("a")]);
        assert_eq!(admit_pod_create(MINOR, "p", &p, &quotas), Ok(vec![]));
        let update = Request {
            minor: MINOR,
            operation: Operation::Update,
            group: "apps",
            resource: "deployments",
            subresource: "",
            name: "api",
            object: &deployment,
            old_object: Some(&deployment),
            now: None,
        };
        assert_eq!(admit(&update, &quotas), Ok(vec![]));
        // An unserved resource is not measured: no `used` at all.
        let nothing = quota_status(MINOR, &q, &objects, &|_, _| false, None);
        assert_eq!(nothing, json!({"hard": {"count/deployments.apps": "1"}}));
    }

    /// Custom resources and the legacy core names.
    #[test]
    fn custom_and_legacy_counts() {
        let q = json!({"metadata": {"name": "objects"},
            "status": {"hard": {"count/widgets.example.com": "3", "configmaps": "2", "count/secrets": "5"},
                       "used": {"count/widgets.example.com": "3", "configmaps": "1", "count/secrets": "0"}}});
        let w = json!({"metadata": {"generateName": "w-"}});
        assert_eq!(
            refusal(admit_create(MINOR, "example.com", "widgets", "", &w, std::slice::from_ref(&q))),
            "widgets.example.com \"w-\" is forbidden: exceeded quota: objects, requested: count/widgets.example.com=1, used: count/widgets.example.com=3, limited: count/widgets.example.com=3"
        );
        let cm = json!({"metadata": {"name": "cfg"}});
        let updates = admit_create(
            MINOR,
            "",
            "configmaps",
            "cfg",
            &cm,
            std::slice::from_ref(&q),
        )
        .unwrap();
        assert_eq!(
            updates[0].used,
            json!({"count/widgets.example.com": "3", "configmaps": "2", "count/secrets": "0"})
        );
        // Events are never counted.
        assert_eq!(
            admit_create(MINOR, "", "events", "e", &cm, &[q]),
            Ok(vec![])
        );
    }

    #[test]
    fn services_count_node_ports_and_load_balancers() {
        let q = json!({"metadata": {"name": "svc"},
            "status": {"hard": {"services": "5", "services.nodeports": "1"},
                       "used": {"services": "0", "services.nodeports": "0"}}});
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort",
            "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(
            refusal(admit_create(MINOR, "", "services", "web", &svc, std::slice::from_ref(&q))),
            "services \"web\" is forbidden: exceeded quota: svc, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1"
        );
        let lb = json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
            "ports": [{"port": 80, "nodePort": 30080}, {"port": 443}]}});
        assert_eq!(
            usage(MINOR, "", "services", &lb, None),
            BTreeMap::from([
                ("count/services".into(), "1".into()),
                ("services".into(), "1".into()),
                ("services.loadbalancers".into(), "1".into()),
                ("services.nodeports".into(), "1".into()),
            ])
        );
    }

    #[test]
    fn claims_charge_storage_per_class() {
        let pvc = json!({"spec": {"storageClassName": "gold",
            "resources": {"requests": {"storage": "1.5"}}},
            "status": {"allocatedResources": {"storage": "1Gi"}}});
        assert_eq!(
            usage(MINOR, "", "persistentvolumeclaims", &pvc, None),
            BTreeMap::from([
                ("count/persistentvolumeclaims".into(), "1".into()),
                (
                    "gold.storageclass.storage.k8s.io/persistentvolumeclaims".into(),
                    "1".into()
                ),
                (
                    "gold.storageclass.storage.k8s.io/requests.storage".into(),
                    "1Gi".into()
                ),
                ("persistentvolumeclaims".into(), "1".into()),
                ("requests.storage".into(), "1Gi".into()),
            ])
        );
        let small = json!({"spec": {"resources": {"requests": {"storage": "1.5"}}}});
        assert_eq!(
            usage(MINOR, "", "persistentvolumeclaims", &small, None)["requests.storage"],
            "2"
        );
    }

    // ----- what a pod uses

    /// pods_test.go "init container maximums override sum of containers".
    #[test]
    fn init_containers_count_by_their_maximum() {
        let res = |rc: &str, rm: &str, d: &str, lc: &str, lm: &str| {
            json!({"resources": {
            "requests": {"cpu": rc, "memory": rm, "example.com/dongle": d},
            "limits": {"cpu": lc, "memory": lm, "example.com/dongle": d}}})
        };
        let p = json!({"spec": {
            "initContainers": [res("4", "100M", "4", "8", "200M"), res("1", "50M", "2", "2", "100M")],
            "containers": [res("1", "50M", "1", "2", "100M"), res("2", "25M", "2", "5", "50M")]}});
        let want: BTreeMap<String, String> = [
            ("count/pods", "1"),
            ("cpu", "4"),
            ("limits.cpu", "8"),
            ("limits.memory", "200M"),
            ("memory", "100M"),
            ("pods", "1"),
            ("requests.cpu", "4"),
            ("requests.example.com/dongle", "4"),
            ("requests.memory", "100M"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(usage(MINOR, "", "pods", &p, None), want);
    }

    /// pods_test.go "count pod overhead as usage"; and sidecars add up.
    #[test]
    fn overhead_and_sidecars() {
        let p = json!({"spec": {"overhead": {"cpu": "1"}, "containers": [
            {"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}}]}});
        let u = usage(MINOR, "", "pods", &p, None);
        assert_eq!(
            (u["requests.cpu"].as_str(), u["limits.cpu"].as_str()),
            ("2", "3")
        );

        let p = json!({"spec": {
            "initContainers": [{"name": "proxy", "restartPolicy": "Always",
                                "resources": {"requests": {"cpu": "500m"}}},
                               {"name": "setup", "resources": {"requests": {"cpu": "1"}}}],
            "containers": [{"name": "app", "resources": {"requests": {"cpu": "250m"}}}]}});
        // max(250m + 500m, 1 + 500m) = 1500m.
        assert_eq!(usage(MINOR, "", "pods", &p, None)["requests.cpu"], "1500m");
    }

    /// pods_test.go "init container implicit extended resources" holds
    /// from v1.35; v1.34 does not charge such a request.
    #[test]
    fn implicit_extended_resources_by_minor() {
        let p = json!({"spec": {"initContainers": [{"resources": {
            "requests": {"deviceclass.resource.kubernetes.io/dongle": "3"},
            "limits": {"deviceclass.resource.kubernetes.io/dongle": "3"}}}]}});
        let name = "requests.deviceclass.resource.kubernetes.io/dongle";
        assert_eq!(
            usage(35, "", "pods", &p, None)
                .get(name)
                .map(String::as_str),
            Some("3")
        );
        assert_eq!(usage(34, "", "pods", &p, None).get(name), None);
    }

    /// pods_test.go "verify Max(Container.Spec.Requests,
    /// ContainerStatus.Resources) for memory resource".
    #[test]
    fn a_resized_pod_is_charged_the_larger_of_spec_and_status() {
        let p = json!({"spec": {"containers": [{"name": "c", "resources": {
                "requests": {"memory": "200Mi"}, "limits": {"memory": "400Mi"}}}]},
            "status": {"containerStatuses": [{"name": "c", "resources": {"requests": {"memory": "150Mi"}}}]}});
        for minor in [34, 37] {
            let u = usage(minor, "", "pods", &p, None);
            assert_eq!(u["requests.memory"], "200Mi");
            assert_eq!(u["limits.memory"], "400Mi");
        }
        let mut bigger = p.clone();
        bigger["status"]["containerStatuses"][0]["resources"]["requests"]["memory"] =
            json!("300Mi");
        assert_eq!(
            usage(34, "", "pods", &bigger, None)["requests.memory"],
            "300Mi"
        );
        assert_eq!(
            usage(37, "", "pods", &bigger, None)["requests.memory"],
            "300Mi"
        );
    }

    #[test]
    fn finished_and_long_deleted_pods_are_not_charged() {
        let mut p = pod("p", vec![container("app", json!({"cpu": "1"}))]);
        p["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        let at = |now: &str| usage(MINOR, "", "pods", &p, Some(now)).contains_key("limits.cpu");
        assert!(at("2025-01-01T00:00:30Z"));
        assert!(!at("2025-01-01T00:00:31Z"));
        assert!(usage(MINOR, "", "pods", &p, None).contains_key("limits.cpu"));
    }

    /// A resize charges only the growth; a plain update changes nothing.
    #[test]
    fn pod_updates_charge_the_growth() {
        let mut old = pod(
            "web",
            vec![container("app", json!({"cpu": "500m", "memory": "128Mi"}))],
        );
        old["metadata"]["resourceVersion"] = json!("7");
        let mut new = old.clone();
        new["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1", "memory": "64Mi"},
                                                          "requests": {"cpu": "1", "memory": "64Mi"}});
        assert_eq!(
            pod_update_charge(MINOR, &old, &new, None),
            BTreeMap::from([
                ("cpu".into(), "500m".into()),
                ("limits.cpu".into(), "500m".into()),
                ("requests.cpu".into(), "500m".into()),
            ])
        );
        let q = json!({"metadata": {"name": "compute"},
            "status": {"hard": {"limits.cpu": "1", "limits.memory": "1Gi", "pods": "2"},
                       "used": {"limits.cpu": "700m", "limits.memory": "128Mi", "pods": "1"}}});
        let resize = |sub: &'static str| Request {
            minor: MINOR,
            operation: Operation::Update,
            group: "",
            resource: "pods",
            subresource: sub,
            name: "web",
            object: &new,
            old_object: Some(&old),
            now: None,
        };
        assert_eq!(
            refusal(admit(&resize("resize"), std::slice::from_ref(&q))),
            "pods \"web\" is forbidden: exceeded quota: compute, requested: limits.cpu=500m, used: limits.cpu=700m, limited: limits.cpu=1"
        );
        assert_eq!(admit(&resize(""), &[q]), Ok(vec![]));
    }

    // ----- quotas the controller has not synced

    #[test]
    fn quotas_without_status() {
        // No status.hard yet: nothing matches, nothing is refused.
        let p = injected("web", bare("app"));
        assert_eq!(admit_pod_create(MINOR, "web", &p, &[compute()]), Ok(vec![]));
        // Hard known, usage not: refused until the controller catches up.
        let mut q = compute();
        q["status"] = json!({"hard": q["spec"]["hard"].clone()});
        let ok = pod(
            "web",
            vec![container("app", json!({"cpu": "1", "memory": "1Gi"}))],
        );
        assert_eq!(
            refusal(admit_pod_create(MINOR, "web", &ok, &[q])),
            "pods \"web\" is forbidden: status unknown for quota: compute, resources: limits.cpu,limits.memory,pods"
        );
    }

    /// With several quotas, the first (by name) failing one is reported,
    /// and a missing limit outranks an exceeded count in any quota.
    #[test]
    fn the_first_failing_quota_is_reported() {
        let counted = json!({"metadata": {"name": "a-count"},
            "status": {"hard": {"pods": "1"}, "used": {"pods": "1"}}});
        let quotas = [synced(compute(), &[]), counted];
        let bad = injected("web", bare("app"));
        assert_eq!(
            refusal(admit_pod_create(MINOR, "web", &bad, &quotas)),
            "pods \"web\" is forbidden: failed quota: compute: must specify limits.cpu for: app; limits.memory for: app"
        );
        let good = pod(
            "web",
            vec![container("app", json!({"cpu": "1", "memory": "1Gi"}))],
        );
        assert_eq!(
            refusal(admit_pod_create(MINOR, "web", &good, &quotas)),
            "pods \"web\" is forbidden: exceeded quota: a-count, requested: pods=1, used: pods=1, limited: pods=1"
        );
    }

    // ----- robustness

    #[test]
    fn garbage_in_is_not_a_panic() {
        let junk = [
            json!(null),
            json!(3),
            json!("x"),
            json!([1, 2]),
            json!({"spec": {"containers": "no", "initContainers": [null, 1, {"resources": 5}],
                            "overhead": {"cpu": "lots"}, "resources": []},
                   "status": {"containerStatuses": [{"name": 1}], "conditions": "x"}}),
            json!({"metadata": {"name": 5}, "spec": {"hard": {"pods": true, "cpu": "1e999999"},
                   "scopes": [1], "scopeSelector": {"matchExpressions": [{"operator": 1}]}},
                   "status": {"hard": {"pods": "zz", "cpu": "1"}, "used": "no"}}),
        ];
        for minor in [0, 34, 35, 36, 37, 99] {
            for object in &junk {
                for now in [None, Some("garbage"), Some("2025-13-01T00:00:00Z")] {
                    for resource in [
                        "pods",
                        "services",
                        "persistentvolumeclaims",
                        "deployments",
                        "events",
                    ] {
                        let group = if resource == "deployments" {
                            "apps"
                        } else {
                            ""
                        };
                        for op in [Operation::Create, Operation::Update] {
                            let r = Request {
                                minor,
                                operation: op,
                                group,
                                resource,
                                subresource: "",
                                name: "",
                                object,
                                old_object: Some(object),
                                now,
                            };
                            let _ = admit(&r, &junk);
                        }
                        let _ = usage(minor, group, resource, object, now);
                        let stored = [Stored {
                            group,
                            resource,
                            object,
                        }];
                        let _ = quota_status(minor, object, &stored, &|_, _| true, now);
                    }
                    let _ = pod_update_charge(minor, object, object, now);
                }
            }
        }
        // An unparsable hard value is skipped; the rest still works.
        let q =
            json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "zz", "count/pods": "2"}}});
        assert_eq!(
            quota_status(MINOR, &q, &[], &served, None),
            json!({"hard": {"count/pods": "2"}, "used": {"count/pods": "0"}})
        );
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(unix_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_nanos("2025-01-01T00:00:00Z"),
            Some(1_735_689_600 * 1_000_000_000)
        );
        assert_eq!(
            unix_nanos("2025-01-01T01:00:00.5+01:00"),
            Some(1_735_689_600 * 1_000_000_000 + 500_000_000)
        );
        assert_eq!(unix_nanos("2025-01-01 00:00:00Z"), None);
        assert_eq!(unix_nanos("x"), None);
    }

    #[test]
    fn names_are_quoted_as_go_quotes_them() {
        assert_eq!(go_quote("web-1"), "\"web-1\"");
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }
}
