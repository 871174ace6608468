//! What services and persistent volume claims use.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::quantity::Quantity;

use super::lists::*;
use super::selector::*;

/// What follows a storage class's name in its per-class quota resources.
pub(super) const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

// ---------------------------------------------------------------------------
// Services and claims.

/// `serviceEvaluator.Usage`: one service; its ports as node ports for a
/// NodePort or LoadBalancer service (only the allocated ones when a load
/// balancer skips node ports); one load balancer.
pub(super) fn service_usage(svc: &Value) -> List {
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
pub(super) fn pvc_usage(pvc: &Value) -> List {
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
pub(super) fn pvc_storage(pvc: &Value) -> Option<Quantity> {
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
pub(super) fn pvc_in_scope(selector: &Selector, pvc: &Value) -> bool {
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
