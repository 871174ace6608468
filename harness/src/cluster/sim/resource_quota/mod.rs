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

use crate::quantity::Quantity;

mod lists;
mod objects;
mod pods;
mod quota;
mod request;
mod selector;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_objects;

use lists::*;
use quota::*;

pub use request::{Operation, Request};

// ---------------------------------------------------------------------------
// Public API.

/// A refusal, as the client reads it: always HTTP 403, reason `Forbidden`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
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
#[cfg(test)]
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
