//! Quotas as admission and the controller read them, and the evaluators
//! that say what an object of each resource uses.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::quantity::Quantity;

use super::lists::*;
use super::objects::*;
use super::pods::*;
use super::request::{Operation, Request};
use super::selector::*;

// ---------------------------------------------------------------------------
// Quotas.

#[derive(Debug, Clone)]
pub(super) struct Quota {
    pub(super) name: String,
    pub(super) selectors: Vec<Selector>,
    pub(super) spec_hard: List,
    /// `status.hard`: what admission enforces.
    pub(super) hard: List,
    /// `status.used`.
    pub(super) used: List,
}

impl Quota {
    pub(super) fn read(v: &Value) -> Quota {
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
pub(super) enum Kind {
    Pod,
    Service,
    Claim,
    Pvc,
    /// `generic.objectCountEvaluator`.
    Count,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Evaluator {
    pub(super) kind: Kind,
    pub(super) group: String,
    pub(super) resource: String,
    /// The legacy name a core count also answers to (`configmaps`).
    pub(super) alias: Option<&'static str>,
    pub(super) minor: u32,
}

/// Resources quota never looks at (`install.DefaultIgnoredResources`).
pub(super) const IGNORED: &[(&str, &str)] = &[
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
pub(super) const ALIASES: &[&str] = &[
    "configmaps",
    "resourcequotas",
    "replicationcontrollers",
    "secrets",
];

/// `podResources`.
pub(super) const POD_RESOURCES: &[&str] = &[
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

pub(super) const SERVICE_RESOURCES: &[&str] = &[
    "count/services",
    "services",
    "services.nodeports",
    "services.loadbalancers",
];

pub(super) const CLAIM_COUNT: &str = "count/resourceclaims.resource.k8s.io";

/// `ObjectCountQuotaResourceNameFor`.
pub(super) fn count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

impl Evaluator {
    pub(super) fn new(kind: Kind, group: &str, resource: &str, minor: u32) -> Evaluator {
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
    pub(super) fn for_resource(group: &str, resource: &str, minor: u32) -> Option<Evaluator> {
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
    pub(super) fn for_quota_name(
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

    pub(super) fn is_for(&self, group: &str, resource: &str) -> bool {
        self.group == group && self.resource == resource
    }

    /// `Handles`: whether the request can change what this resource uses.
    pub(super) fn handles(&self, r: &Request) -> bool {
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
    pub(super) fn matching_resources<'a>(
        &self,
        names: impl Iterator<Item = &'a String>,
    ) -> BTreeSet<String> {
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
    pub(super) fn matches(&self, quota: &Quota, object: &Value) -> bool {
        !self.matching_resources(quota.hard.keys()).is_empty()
            && quota
                .selectors
                .iter()
                .all(|s| self.scope_matches(s, object))
    }

    pub(super) fn scope_matches(&self, selector: &Selector, object: &Value) -> bool {
        match self.kind {
            Kind::Pod => pod_in_scope(selector, object, self.minor),
            Kind::Pvc => pvc_in_scope(selector, object),
            // `MatchesNoScopeFunc`: a scoped quota never counts these.
            _ => false,
        }
    }

    /// `Constraints`: only pods have any (see [`pod_constraints`]).
    pub(super) fn constraints(
        &self,
        required: &BTreeSet<String>,
        object: &Value,
    ) -> Result<(), String> {
        match self.kind {
            Kind::Pod => pod_constraints(required, object, self.minor),
            _ => Ok(()),
        }
    }

    pub(super) fn usage(&self, object: &Value, now: Option<i128>) -> List {
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
