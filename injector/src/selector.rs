//! Label selectors with the apiserver's semantics: `matchLabels` and every
//! `matchExpressions` entry must hold; an empty selector matches everything.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// Whether `labels` satisfy `selector`. Call [`validate`] first: an invalid
/// operator never matches here.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    labels_ok
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|req| requirement_matches(req, labels))
}

fn requirement_matches(req: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&req.key);
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Checks a selector the way the apiserver does when it stores one.
pub fn validate(selector: &LabelSelector) -> Result<(), String> {
    for (i, req) in selector.match_expressions.iter().flatten().enumerate() {
        let n = req.values.as_ref().map_or(0, Vec::len);
        match req.operator.as_str() {
            "In" | "NotIn" if n == 0 => {
                return Err(format!(
                    "matchExpressions[{i}]: operator {} needs at least one value",
                    req.operator
                ))
            }
            "Exists" | "DoesNotExist" if n > 0 => {
                return Err(format!(
                    "matchExpressions[{i}]: operator {} takes no values",
                    req.operator
                ))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Err(format!(
                    "matchExpressions[{i}].operator: {other:?} is not In, NotIn, Exists or DoesNotExist"
                ))
            }
        }
        if req.key.is_empty() {
            return Err(format!("matchExpressions[{i}].key: a key is required"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(yaml: &str) -> LabelSelector {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(matches(&sel("{}"), &labels(&[])));
        assert!(matches(&sel("{}"), &labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_and_expressions_all_must_hold() {
        let s = sel("{matchLabels: {app: web}, matchExpressions: [{key: tier, operator: In, values: [a, b]}]}");
        assert!(matches(&s, &labels(&[("app", "web"), ("tier", "b")])));
        assert!(!matches(&s, &labels(&[("app", "web"), ("tier", "c")])));
        assert!(!matches(&s, &labels(&[("app", "db"), ("tier", "a")])));
        assert!(!matches(&s, &labels(&[("tier", "a")])));
    }

    #[test]
    fn operators() {
        let l = labels(&[("env", "prod")]);
        let notin = sel("{matchExpressions: [{key: env, operator: NotIn, values: [dev]}]}");
        assert!(matches(&notin, &l));
        assert!(matches(&notin, &labels(&[])), "NotIn matches an absent key");
        let notin_prod = sel("{matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}");
        assert!(!matches(&notin_prod, &l));
        let exists = sel("{matchExpressions: [{key: env, operator: Exists}]}");
        assert!(matches(&exists, &l));
        assert!(!matches(&exists, &labels(&[])));
        let dne = sel("{matchExpressions: [{key: env, operator: DoesNotExist}]}");
        assert!(!matches(&dne, &l));
        assert!(matches(&dne, &labels(&[("other", "x")])));
    }

    #[test]
    fn validation() {
        assert!(validate(&sel("{matchExpressions: [{key: a, operator: In}]}")).is_err());
        assert!(validate(&sel(
            "{matchExpressions: [{key: a, operator: Exists, values: [x]}]}"
        ))
        .is_err());
        assert!(validate(&sel(
            "{matchExpressions: [{key: a, operator: Like, values: [x]}]}"
        ))
        .is_err());
        assert!(validate(&sel(
            "{matchExpressions: [{key: a, operator: NotIn, values: [x]}]}"
        ))
        .is_ok());
    }
}
