//! The pod's QoS class, from cpu and memory requests and limits.

use std::collections::BTreeMap;

use serde_json::Value;

use super::lookup::list;

/// The pod's QoS class, computed from cpu and memory requests and limits
/// like Kubernetes does: nothing set is BestEffort; cpu and memory limits on
/// every container with requests equal to them (a missing request defaults
/// to the limit) is Guaranteed; anything else Burstable. Pod-level
/// `spec.resources`, when set, decides instead of the containers.
pub fn qos_class(pod: &Value) -> &'static str {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let pod_level = spec
        .get("resources")
        .filter(|r| !compute(r, "requests").is_empty() || !compute(r, "limits").is_empty());
    let resources: Vec<&Value> = match pod_level {
        Some(r) => vec![r],
        None => list(spec, "initContainers")
            .iter()
            .chain(list(spec, "containers"))
            .map(|c| c.get("resources").unwrap_or(&Value::Null))
            .collect(),
    };
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for r in resources {
        let own_limits = compute(r, "limits");
        let mut own_requests = compute(r, "requests");
        for (name, value) in &own_limits {
            own_requests.entry(*name).or_insert(*value);
        }
        for (name, value) in own_requests {
            *requests.entry(name).or_default() += value;
        }
        if own_limits.len() < 2 {
            guaranteed = false;
        }
        for (name, value) in own_limits {
            *limits.entry(name).or_default() += value;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        "BestEffort"
    } else if guaranteed && requests == limits {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The non-zero cpu and memory quantities of `resources[field]`, in
/// nano-units.
fn compute<'a>(resources: &'a Value, field: &str) -> BTreeMap<&'a str, i128> {
    let mut out = BTreeMap::new();
    if let Some(map) = resources.get(field).and_then(Value::as_object) {
        for (name, q) in map {
            if name != "cpu" && name != "memory" {
                continue;
            }
            let value = match q {
                Value::String(s) => parse_quantity(s),
                Value::Number(n) => parse_quantity(&n.to_string()),
                _ => None,
            };
            if let Some(v) = value.filter(|v| *v != 0) {
                out.insert(name.as_str(), v);
            }
        }
    }
    out
}

/// A Kubernetes quantity (`100m`, `1.5`, `128Mi`, `1e3`) in nano-units, or
/// None when it does not parse ([`crate::quantity`] has the rules).
pub fn parse_quantity(text: &str) -> Option<i128> {
    crate::quantity::Quantity::parse(text.trim())
        .ok()
        .map(|q| q.nanos())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    #[test]
    fn qos_classes() {
        let with = |resources: &[Value]| {
            let containers: Vec<Value> = resources
                .iter()
                .enumerate()
                .map(|(i, r)| json!({"name": format!("c{i}"), "resources": r}))
                .collect();
            qos_class(&json!({"spec": {"containers": containers}}))
        };
        assert_eq!(with(&[json!({})]), "BestEffort");
        assert_eq!(with(&[json!({"requests": {"cpu": "0"}})]), "BestEffort");
        assert_eq!(
            with(&[json!({"requests": {"ephemeral-storage": "1Gi"}})]),
            "BestEffort"
        );
        assert_eq!(with(&[json!({"requests": {"cpu": "10m"}})]), "Burstable");
        // The injected envoy: requests and a memory limit only.
        assert_eq!(
            with(&[
                json!({"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}})
            ]),
            "Burstable"
        );
        assert_eq!(
            with(&[json!({"limits": {"cpu": "1", "memory": "1Gi"}})]),
            "Guaranteed"
        );
        assert_eq!(
            with(&[json!({"requests": {"cpu": "1000m", "memory": "1024Mi"},
                          "limits": {"cpu": 1, "memory": "1Gi"}})]),
            "Guaranteed"
        );
        assert_eq!(
            with(&[json!({"requests": {"cpu": "500m", "memory": "1Gi"},
                          "limits": {"cpu": "1", "memory": "1Gi"}})]),
            "Burstable"
        );
        assert_eq!(
            with(&[json!({"limits": {"cpu": "1", "memory": "1Gi"}}), json!({})]),
            "Burstable"
        );
        let pod_level = json!({"spec": {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                                        "containers": [{"name": "a"}]}});
        assert_eq!(qos_class(&pod_level), "Guaranteed");
        let init = json!({"spec": {"initContainers": [{"name": "i", "resources": {"requests": {"memory": "1Mi"}}}],
                                   "containers": [{"name": "a"}]}});
        assert_eq!(qos_class(&init), "Burstable");
    }

    #[test]
    fn quantities() {
        let n = 1_000_000_000i128;
        assert_eq!(parse_quantity("1"), Some(n));
        assert_eq!(parse_quantity("100m"), Some(n / 10));
        assert_eq!(parse_quantity("0.1"), Some(n / 10));
        assert_eq!(parse_quantity(".5"), Some(n / 2));
        assert_eq!(parse_quantity("1Ki"), Some(1024 * n));
        assert_eq!(parse_quantity("128Mi"), Some(128 * (1 << 20) * n));
        assert_eq!(parse_quantity("1k"), Some(1000 * n));
        assert_eq!(parse_quantity("1e3"), Some(1000 * n));
        assert_eq!(parse_quantity("1E"), Some(1_000_000_000_000_000_000 * n));
        assert_eq!(parse_quantity("5n"), Some(5));
        assert_eq!(parse_quantity("-1"), Some(-n));
        // apimachinery reads a bare sign or suffix as zero.
        assert_eq!(parse_quantity("-"), Some(0));
        assert_eq!(parse_quantity("m"), Some(0));
        for bad in [
            "",
            "1.2.3",
            "1x",
            "1e",
            "1e99999999999",
            "1e2147483647",
            "9".repeat(60).as_str(),
        ] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }
}
