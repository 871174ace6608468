//! The LimitRanger admission plugin, for pods, as kube-apiserver runs it
//! (on by default): a LimitRange's `Container` items default the resources
//! a container leaves out and bound the ones it states.
//!
//! When it runs matters to a sidecar injector. The mutating half runs
//! before the webhooks, and again after them whenever a webhook changed the
//! pod (the apiserver then re-runs the whole mutating chain, built-in
//! plugins included), so an injected sidecar gets the namespace's defaults
//! too, and the pod's `kubernetes.io/limit-ranger` annotation is rewritten
//! to name only what the second run set. The validating half runs after
//! every mutation, so a sidecar above a `max` gets the pod refused.
//!
//! Not modelled: `Pod` and `PersistentVolumeClaim` items, and the
//! LimitRange's own validation (min ≤ default ≤ max).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::quantity::Quantity;

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// API defaulting of a LimitRange on decode: for a `Container` item, a
/// missing `default` takes `max`, a missing `defaultRequest` takes
/// `default`, then `min`.
pub fn defaults(limit_range: &mut Value) {
    let Some(items) = limit_range
        .pointer_mut("/spec/limits")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for item in items.iter_mut().filter_map(Value::as_object_mut) {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        let list = |item: &Map<String, Value>, key: &str| -> Map<String, Value> {
            item.get(key)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let mut default = list(item, "default");
        for (k, v) in list(item, "max") {
            default.entry(k).or_insert(v);
        }
        let mut request = list(item, "defaultRequest");
        for source in [&default, &list(item, "min")] {
            for (k, v) in source {
                request.entry(k.clone()).or_insert(v.clone());
            }
        }
        item.insert("default".into(), Value::Object(default));
        item.insert("defaultRequest".into(), Value::Object(request));
    }
}

/// The `Container` items of the namespace's LimitRanges, in order.
fn container_items(ranges: &[Value]) -> impl Iterator<Item = &Value> {
    ranges
        .iter()
        .flat_map(|r| r.pointer("/spec/limits").and_then(Value::as_array))
        .flatten()
        .filter(|i| i["type"] == "Container")
}

/// The mutating half: each container (then each init container) gets the
/// default limits and requests it lacks, and the pod's annotation says what
/// was set. Later LimitRanges' defaults win over earlier ones, as the
/// apiserver merges them into one set.
pub fn admit(pod: &mut Value, ranges: &[Value]) {
    let mut limits = Map::new();
    let mut requests = Map::new();
    for item in container_items(ranges) {
        for (key, into) in [("default", &mut limits), ("defaultRequest", &mut requests)] {
            for (k, v) in item[key].as_object().into_iter().flatten() {
                into.insert(k.clone(), v.clone());
            }
        }
    }
    if limits.is_empty() && requests.is_empty() {
        return;
    }
    let mut said = Vec::new();
    for (key, what) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        for c in pod
            .pointer_mut(&format!("/spec/{key}"))
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let name = c["name"].as_str().unwrap_or("").to_string();
            let set_requests = fill(c, "requests", &requests);
            let set_limits = fill(c, "limits", &limits);
            if !set_requests.is_empty() {
                said.push(format!(
                    "{} request for {what} {name}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                said.push(format!("{} limit for {what} {name}", set_limits.join(", ")));
            }
        }
    }
    if !said.is_empty() {
        let meta = &mut pod["metadata"];
        if !meta["annotations"].is_object() {
            meta["annotations"] = json!({});
        }
        meta["annotations"][ANNOTATION] =
            json!(format!("LimitRanger plugin set: {}", said.join("; ")));
    }
}

/// Sets each entry of `defaults` missing from the container's
/// `resources.<key>`; returns the names set, sorted.
fn fill(container: &mut Value, key: &str, defaults: &Map<String, Value>) -> Vec<String> {
    let has = |k: &String| container["resources"][key].get(k).is_some();
    if defaults.keys().all(has) {
        // Nothing to set: the apiserver's empty list is not written out.
        return Vec::new();
    }
    if !container["resources"].is_object() {
        container["resources"] = json!({});
    }
    let resources = &mut container["resources"];
    if !resources[key].is_object() {
        resources[key] = json!({});
    }
    let mut set = Vec::new();
    if let Some(list) = resources[key].as_object_mut() {
        for (k, v) in defaults {
            if !list.contains_key(k) {
                list.insert(k.clone(), v.clone());
                set.push(k.clone());
            }
        }
    }
    set.sort();
    set
}

/// The validating half, after every mutation: `Err` is the refusal's
/// reason, to follow `pods "<name>" is forbidden: `. Several violations
/// are listed as the apiserver aggregates errors (`[a, b]`); within one
/// bound the apiserver's order follows Go's map iteration, which is
/// random, so here it is by resource name.
pub fn validate(pod: &Value, ranges: &[Value]) -> Result<(), String> {
    let mut errors: Vec<String> = Vec::new();
    for item in container_items(ranges) {
        for key in ["containers", "initContainers"] {
            for c in pod["spec"][key].as_array().into_iter().flatten() {
                let requests = list(&c["resources"]["requests"]);
                let limits = list(&c["resources"]["limits"]);
                for (bound, check) in [
                    ("min", (|r, e, q, l| bound(Bound::Min, r, e, q, l)) as Check),
                    ("max", |r, e, q, l| bound(Bound::Max, r, e, q, l)),
                    ("maxLimitRequestRatio", ratio as Check),
                ] {
                    for (resource, enforced) in list(&item[bound]) {
                        let (req, lim) = (requests.get(&resource), limits.get(&resource));
                        if let Err(e) = check(&resource, &enforced, req, lim) {
                            // The aggregate drops repeats.
                            if !errors.contains(&e) {
                                errors.push(e);
                            }
                        }
                    }
                }
            }
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

type Check = fn(&str, &Quantity, Option<&Quantity>, Option<&Quantity>) -> Result<(), String>;

/// A resource list's quantities, by name; entries that do not parse (the
/// decoder has refused those already) are left out.
fn list(v: &Value) -> BTreeMap<String, Quantity> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), crate::quantity::from_json(v)?.ok()?)))
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Bound {
    Min,
    Max,
}

/// A min or a max: the apiserver's two checks are mirror images. A min
/// needs a request and checks it first; a max needs a limit and checks it
/// first; then the other value, if stated, is held to the same bound.
fn bound(
    which: Bound,
    resource: &str,
    enforced: &Quantity,
    req: Option<&Quantity>,
    lim: Option<&Quantity>,
) -> Result<(), String> {
    let (word, [(first, needed), (second, other)]) = match which {
        Bound::Min => ("minimum", [("request", req), ("limit", lim)]),
        Bound::Max => ("maximum", [("limit", lim), ("request", req)]),
    };
    let head = format!(
        "{word} {resource} usage per Container is {}",
        enforced.canonical()
    );
    let beyond = |q: &Quantity| match which {
        Bound::Min => q.nanos() < enforced.nanos(),
        Bound::Max => q.nanos() > enforced.nanos(),
    };
    let Some(needed) = needed else {
        return Err(format!("{head}.  No {first} is specified"));
    };
    for (what, q) in [(first, Some(needed)), (second, other)] {
        if let Some(q) = q.filter(|q| beyond(q)) {
            return Err(format!("{head}, but {what} is {}", q.canonical()));
        }
    }
    Ok(())
}

/// `maxLimitRequestRatio`: the apiserver compares in milli units and shows
/// the observed ratio with Go's `%f`.
fn ratio(
    resource: &str,
    enforced: &Quantity,
    req: Option<&Quantity>,
    lim: Option<&Quantity>,
) -> Result<(), String> {
    let e = enforced.canonical();
    let milli = |q: Option<&Quantity>| q.map_or(0, |q| q.nanos() / 1_000_000);
    let (r, l) = (milli(req), milli(lim));
    if r == 0 {
        return Err(format!("{resource} max limit to request ratio per Container is {e}, but no request is specified or request is 0"));
    }
    if l == 0 {
        return Err(format!("{resource} max limit to request ratio per Container is {e}, but no limit is specified or limit is 0"));
    }
    let observed = l as f64 / r as f64;
    if observed * 1000.0 > (enforced.nanos() / 1_000_000) as f64 {
        return Err(format!("{resource} max limit to request ratio per Container is {e}, but provided ratio is {observed:.6}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limits: Value) -> Value {
        let mut r = json!({"kind": "LimitRange", "spec": {"limits": limits}});
        defaults(&mut r);
        r
    }

    #[test]
    fn defaults_fill_from_max_then_default_then_min() {
        let r = range(
            json!([{"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "16Mi"}},
                             {"type": "Pod", "max": {"cpu": "2"}}]),
        );
        let item = &r["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "1"}));
        assert_eq!(
            item["defaultRequest"],
            json!({"cpu": "1", "memory": "16Mi"})
        );
        // Pod items get no container defaults.
        assert!(r["spec"]["limits"][1].get("default").is_none());
    }

    #[test]
    fn admit_fills_what_each_container_lacks_and_says_so() {
        let r = range(json!([{"type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]));
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "app", "resources": {"limits": {"cpu": "1"}}}, {"name": "envoy"}],
            "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "10m", "memory": "1Mi"}}}]}});
        admit(&mut pod, std::slice::from_ref(&r));
        let app = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(app["limits"], json!({"cpu": "1", "memory": "256Mi"}));
        assert_eq!(app["requests"], json!({"cpu": "100m", "memory": "128Mi"}));
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container app; memory limit for container app; \
             cpu, memory request for container envoy; cpu, memory limit for container envoy; \
             cpu, memory limit for init container init"
        );
        // A second run (after a webhook) sets nothing new for these, and
        // rewrites the annotation only when it sets something.
        let before = pod.clone();
        admit(&mut pod, std::slice::from_ref(&r));
        assert_eq!(pod, before);
        pod["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar"}));
        admit(&mut pod, &[r]);
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container sidecar; cpu, memory limit for container sidecar"
        );
    }

    #[test]
    fn validate_quotes_the_apiservers_words() {
        let r = range(
            json!([{"type": "Container", "max": {"cpu": "200m"}, "min": {"memory": "64Mi"}}]),
        );
        let pod = |resources: Value| json!({"spec": {"containers": [{"name": "a", "resources": resources}]}});
        assert_eq!(
            validate(
                &pod(json!({"limits": {"cpu": "100m"}, "requests": {"memory": "64Mi"}})),
                std::slice::from_ref(&r)
            ),
            Ok(())
        );
        assert_eq!(
            validate(
                &pod(json!({"limits": {"cpu": "1"}, "requests": {"memory": "64Mi"}})),
                std::slice::from_ref(&r)
            ),
            Err("maximum cpu usage per Container is 200m, but limit is 1".into())
        );
        assert_eq!(
            validate(
                &pod(json!({"requests": {"memory": "64Mi"}})),
                std::slice::from_ref(&r)
            ),
            Err("maximum cpu usage per Container is 200m.  No limit is specified".into())
        );
        assert_eq!(
            validate(&pod(json!({"limits": {"cpu": "1"}, "requests": {"memory": "1Mi"}})), &[r]),
            Err("[minimum memory usage per Container is 64Mi, but request is 1Mi, maximum cpu usage per Container is 200m, but limit is 1]".into())
        );
    }

    #[test]
    fn each_side_of_a_bound_is_checked_in_the_apiservers_order() {
        let r =
            range(json!([{"type": "Container", "max": {"cpu": "200m"}, "min": {"cpu": "100m"}}]));
        let check = |resources: Value| {
            validate(
                &json!({"spec": {"containers": [{"name": "a", "resources": resources}]}}),
                std::slice::from_ref(&r),
            )
        };
        assert_eq!(
            check(json!({"limits": {"cpu": "200m"}})),
            Err("minimum cpu usage per Container is 100m.  No request is specified".into())
        );
        assert_eq!(
            check(json!({"limits": {"cpu": "50m"}, "requests": {"cpu": "100m"}})),
            Err("minimum cpu usage per Container is 100m, but limit is 50m".into())
        );
        assert_eq!(
            check(json!({"limits": {"cpu": "150m"}, "requests": {"cpu": "300m"}})),
            Err("maximum cpu usage per Container is 200m, but request is 300m".into())
        );
        assert_eq!(
            check(json!({"limits": {"cpu": "150m"}, "requests": {"cpu": "100m"}})),
            Ok(())
        );
    }

    #[test]
    fn the_ratio_is_shown_as_go_prints_it() {
        let r = range(json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]));
        let pod = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "300m"}}}]}});
        assert_eq!(
            validate(&pod, std::slice::from_ref(&r)),
            Err(
                "cpu max limit to request ratio per Container is 2, but provided ratio is 3.333333"
                    .into()
            )
        );
        let none = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(
            validate(&none, &[r]),
            Err("cpu max limit to request ratio per Container is 2, but no request is specified or request is 0".into())
        );
    }
}
