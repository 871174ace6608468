//! A quota's scope selector terms, and how one term matches a value.

use super::lists::is_label_value;

/// A scope selector term: `spec.scopes` entries become `Exists` terms,
/// followed by `spec.scopeSelector.matchExpressions`.
#[derive(Debug, Clone)]
pub(super) struct Selector {
    pub(super) scope: String,
    pub(super) operator: String,
    pub(super) values: Vec<String>,
}

/// A label requirement on the one label a scope offers
/// (`ScopedResourceSelectorRequirementsAsSelector`); `None` when
/// `labels.NewRequirement` would refuse it.
pub(super) fn requirement_matches(selector: &Selector, value: Option<&str>) -> Option<bool> {
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
