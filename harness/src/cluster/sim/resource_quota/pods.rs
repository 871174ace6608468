//! What a pod uses, and whether it is in a quota's scope.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::quantity::Quantity;

use super::lists::*;
use super::selector::*;

// ---------------------------------------------------------------------------
// Versions. The minors where a rule changed; minors outside 34..=37 take the
// nearest one's rules.

/// From v1.35 a container's `deviceclass.resource.kubernetes.io/…` request
/// is charged as `requests.deviceclass.resource.kubernetes.io/…`
/// (`schedutil.IsDRAExtendedResourceName`).
pub(super) const DEVICE_CLASS_REQUESTS_SINCE: u32 = 35;
/// From v1.37 (`PodLevelResourcesFixKubeletQOSClass`, beta) an empty
/// `spec.resources` no longer decides the pod's QoS class.
pub(super) const POD_LEVEL_QOS_FIX_SINCE: u32 = 37;
/// From v1.37 a resized pod is charged the larger of the sums of spec,
/// allocated and actuated resources, not the sum of each container's larger.
pub(super) const AGGREGATED_STATUS_RESOURCES_SINCE: u32 = 37;

/// The resources whose use every container must state when a quota
/// tracks them (`validationSet`, a backward-compatibility wart).
pub(super) const MUST_SPECIFY: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// The prefix of resources claimed through a DRA device class.
pub(super) const DEVICE_CLASS_PREFIX: &str = "deviceclass.resource.kubernetes.io/";

// ---------------------------------------------------------------------------
// Pods (pods.go, and k8s.io/component-helpers/resource for the sums).

/// What a pod uses (`PodUsageFunc`): always `count/pods`; the rest only
/// while the pod is live.
pub(super) fn pod_usage(pod: &Value, minor: u32, now: Option<i128>) -> List {
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
pub(super) fn charged(pod: &Value, now: Option<i128>) -> bool {
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
pub(super) fn compute_usage(requests: &List, limits: &List, minor: u32) -> List {
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
pub(super) fn pod_constraints(
    required: &BTreeSet<String>,
    pod: &Value,
    minor: u32,
) -> Result<(), String> {
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
pub(super) enum Slot {
    Container,
    /// An init container with `restartPolicy: Always`.
    Sidecar,
    Init,
}

/// The sidecar-aware sum over a pod's containers
/// (`aggregateContainerResourcesByFn`): regular containers and sidecars
/// add up; each plain init container needs its own plus the sidecars
/// started before it; the pod needs the larger of the two, per resource.
pub(super) fn aggregate(
    pod: &Value,
    per_container: impl Fn(&Value, Option<&Value>, Slot) -> List,
) -> List {
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
pub(super) fn pod_requests(pod: &Value, minor: u32) -> List {
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
pub(super) fn pod_limits(pod: &Value, minor: u32) -> List {
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
pub(super) fn container_status<'a>(pod: &'a Value, container: &Value) -> Option<&'a Value> {
    let name = container["name"].as_str()?;
    array(&pod["status"]["containerStatuses"])
        .chain(array(&pod["status"]["initContainerStatuses"]))
        .find(|s| s["name"].as_str() == Some(name))
}

/// `IsPodResizeInfeasible`: the first `PodResizePending` condition says
/// `Infeasible`.
pub(super) fn resize_infeasible(pod: &Value) -> bool {
    array(&pod["status"]["conditions"])
        .find(|c| c["type"] == "PodResizePending")
        .is_some_and(|c| c["reason"] == "Infeasible")
}

/// cpu, memory and hugepages can be set for the whole pod.
pub(super) fn pod_level_resource(name: &str) -> bool {
    name == "cpu" || name == "memory" || name.starts_with("hugepages-")
}

pub(super) fn pod_level_set(list: &Value) -> bool {
    list.as_object()
        .is_some_and(|m| m.keys().any(|k| pod_level_resource(k)))
}

/// `IsPodLevelResourcesSet`.
pub(super) fn pod_level_resources_set(spec: &Value) -> bool {
    let r = &spec["resources"];
    r.is_object() && (pod_level_set(&r["requests"]) || pod_level_set(&r["limits"]))
}

/// `IsTerminating`: the pod has an `activeDeadlineSeconds`.
pub(super) fn is_terminating(pod: &Value) -> bool {
    pod["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .is_some_and(|s| s >= 0)
}

/// Whether the pod's QoS class is BestEffort (`qos.GetPodQOS`): the
/// status's class when set, else computed. Before v1.37 any
/// `spec.resources` object, even empty, decides alone.
pub(super) fn best_effort(pod: &Value, minor: u32) -> bool {
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
pub(super) fn cross_namespace_affinity(pod: &Value) -> bool {
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
pub(super) fn pod_in_scope(selector: &Selector, pod: &Value, minor: u32) -> bool {
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

/// Extended resources a container's request charges as `requests.<name>`.
pub(super) fn extended_in_pod(name: &str, minor: u32) -> bool {
    is_extended_resource_name(name)
        || (minor >= DEVICE_CLASS_REQUESTS_SINCE && name.starts_with(DEVICE_CLASS_PREFIX))
}

/// `isExtendedResourceNameForQuota`: `requests.<extended resource>`.
pub(super) fn extended_for_quota(name: &str, minor: u32) -> bool {
    let implicit = minor >= DEVICE_CLASS_REQUESTS_SINCE
        && name.starts_with(&format!("requests.{DEVICE_CLASS_PREFIX}"));
    (!is_native_resource(name) || implicit) && name.starts_with("requests.")
}

/// `IsNativeResource`: unprefixed, or under `kubernetes.io/`.
pub(super) fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `IsExtendedResourceName`.
pub(super) fn is_extended_resource_name(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}"))
}
