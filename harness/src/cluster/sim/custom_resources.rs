//! CustomResourceDefinitions and their objects, as the apiextensions
//! apiserver treats them: a definition's name must be its plural and group,
//! it is Established at once (the sim has no controller to wait for), and
//! an object of a served version is pruned to its structural schema,
//! defaulted from it and checked against its types and required fields
//! before it is stored.

use serde_json::{json, Value};

use crate::cluster::ApiKind;

/// What the apiserver checks first of a definition: that its name is
/// `<plural>.<group>`. `Err` holds the field error.
pub fn check_definition(crd: &Value) -> Result<(), String> {
    let name = crd["metadata"]["name"].as_str().unwrap_or("");
    let spec = &crd["spec"];
    let plural = spec["names"]["plural"].as_str().unwrap_or("");
    let group = spec["group"].as_str().unwrap_or("");
    if name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
        ));
    }
    Ok(())
}

/// The status the apiextensions controllers give an accepted definition:
/// its names accepted and the definition Established.
pub fn establish(crd: &mut Value) {
    let names = &crd["spec"]["names"];
    let kind = names["kind"].as_str().unwrap_or("");
    let mut accepted = names.clone();
    if accepted["singular"].as_str().unwrap_or("").is_empty() {
        accepted["singular"] = json!(kind.to_lowercase());
    }
    if accepted["listKind"].as_str().unwrap_or("").is_empty() {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    let condition = |type_: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": "True", "reason": reason, "message": message,
               "lastTransitionTime": "2025-01-01T00:00:00Z"})
    };
    crd["status"] = json!({
        "acceptedNames": accepted,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": crd["spec"]["versions"].as_array().into_iter().flatten()
            .filter(|v| v["storage"] == true).filter_map(|v| v["name"].as_str()).collect::<Vec<_>>(),
    });
}

/// The schema of `kind`'s version in `crd`, if it has one.
pub fn schema<'a>(crd: &'a Value, kind: &ApiKind) -> Option<&'a Value> {
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == kind.version.as_str())
        .map(|v| &v["schema"]["openAPIV3Schema"])
        .filter(|s| s.is_object())
}

/// Prunes a custom object to its schema and fills its defaults, as the
/// apiserver does when it decodes one (a request body, a webhook's patch).
pub fn decode(object: &mut Value, schema: &Value) {
    let Some(root) = object.as_object_mut() else {
        return;
    };
    let properties = schema["properties"].as_object();
    let keep_unknown = schema["x-kubernetes-preserve-unknown-fields"] == true;
    root.retain(|k, _| {
        matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
            || keep_unknown
            || properties.is_some_and(|p| p.contains_key(k))
    });
    for (k, sub) in properties.into_iter().flatten() {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match root.get_mut(k) {
            Some(v) => prune_and_default(v, sub),
            None => {
                if let Some(d) = sub.get("default") {
                    root.insert(k.clone(), d.clone());
                }
            }
        }
    }
}

/// The fields of `object` its schema does not declare, as server-side
/// apply names them (`.spec.shape`, `.spec.parts[0].weight`), sorted. A
/// server-side apply that has any is refused; a POST has them pruned.
pub fn undeclared(object: &Value, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(root) = object.as_object() {
        for (k, v) in root {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            walk_undeclared(k, v, schema, &format!(".{k}"), &mut out);
        }
    }
    out.sort();
    out
}

fn walk_undeclared(key: &str, value: &Value, parent: &Value, path: &str, out: &mut Vec<String>) {
    if parent["x-kubernetes-preserve-unknown-fields"] == true {
        return;
    }
    let schema = match parent["properties"].get(key) {
        Some(s) => s,
        None if parent["additionalProperties"].is_object() => &parent["additionalProperties"],
        None => {
            out.push(format!("{path}: field not declared in schema"));
            return;
        }
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                walk_undeclared(k, v, schema, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(map) = item.as_object() {
                    for (k, v) in map {
                        walk_undeclared(k, v, &schema["items"], &format!("{path}[{i}].{k}"), out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The warnings a POST of `object` gets for the fields pruning drops: the
/// apiserver's default field validation (`Warn`) reports each as
/// `unknown field "spec.parts[0].weight"`.
pub fn unknown_field_warnings(object: &Value, schema: &Value) -> Vec<String> {
    undeclared(object, schema)
        .iter()
        .filter_map(|f| f.strip_suffix(": field not declared in schema"))
        .map(|path| format!("unknown field {:?}", path.trim_start_matches('.')))
        .collect()
}

/// Server-side apply's refusal of an object with undeclared fields.
pub fn undeclared_refusal(object: &Value, kind: &ApiKind, fields: &[String]) -> String {
    let errors = match fields {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    format!(
        "failed to create typed patch object ({}/{}; {}/{}, Kind={}): {errors}",
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        object["metadata"]["name"].as_str().unwrap_or(""),
        kind.group,
        kind.version,
        kind.kind
    )
}

/// The field errors of a decoded custom object against its schema.
pub fn validate(object: &Value, schema: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check_fields(object, schema, "", &mut errs);
    errs
}

/// Drops what the schema does not name (unless it keeps unknown fields)
/// and fills absent fields that have a default.
fn prune_and_default(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                if schema["x-kubernetes-preserve-unknown-fields"] != true {
                    map.retain(|k, _| properties.contains_key(k));
                }
                for (k, sub) in properties {
                    match map.get_mut(k) {
                        Some(v) => prune_and_default(v, sub),
                        None => {
                            if let Some(d) = sub.get("default") {
                                map.insert(k.clone(), d.clone());
                            }
                        }
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for v in map.values_mut() {
                    prune_and_default(v, &schema["additionalProperties"]);
                }
            } else if schema["x-kubernetes-preserve-unknown-fields"] != true
                && schema["type"] == "object"
            {
                map.clear();
            }
        }
        Value::Array(items) => {
            for item in items {
                prune_and_default(item, &schema["items"]);
            }
        }
        _ => {}
    }
}

/// Type and required-field errors, in the apiserver's form.
fn check_fields(value: &Value, schema: &Value, path: &str, errs: &mut Vec<String>) {
    let here = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(expected) = schema["type"].as_str() {
        if !path.is_empty() && !value.is_null() && !has_type(value, expected) {
            errs.push(format!(
                "{path}: Invalid value: {:?}: {path} in body must be of type {expected}: {:?}",
                json_type(value),
                json_type(value)
            ));
            return;
        }
    }
    if let Some(map) = value.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            if let Some(r) = r.as_str() {
                if !map.contains_key(r) {
                    errs.push(format!("{}: Required value", here(r)));
                }
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (k, sub) in properties {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(v) = map.get(k) {
                    check_fields(v, sub, &here(k), errs);
                }
            }
        }
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            check_fields(item, &schema["items"], &format!("{path}[{i}]"), errs);
        }
    }
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => true,
    }
}

/// The JSON type of a value as OpenAPI names it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer"},
                "color": {"type": "string", "default": "blue"},
                "parts": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}})
    }

    #[test]
    fn unknown_fields_go_and_defaults_come() {
        let mut w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 3, "shape": "round", "parts": [{"name": "a", "weight": 2}], "extra": {"any": 1}},
            "other": true});
        decode(&mut w, &widget_schema());
        assert!(validate(&w, &widget_schema()).is_empty());
        assert_eq!(
            w,
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                "spec": {"size": 3, "color": "blue", "parts": [{"name": "a"}], "extra": {"any": 1}}})
        );
    }

    #[test]
    fn server_side_apply_names_undeclared_fields() {
        let w = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "ns"},
            "spec": {"size": 3, "shape": "round", "parts": [{"name": "a", "weight": 2}], "extra": {"any": 1}},
            "other": true});
        let fields = undeclared(&w, &widget_schema());
        let kind = ApiKind {
            group: "example.com".into(),
            version: "v1".into(),
            kind: "Widget".into(),
            plural: "widgets".into(),
            namespaced: true,
        };
        // As kube-apiserver v1.37.2 worded it for custom-resources.yaml.
        assert_eq!(
            undeclared_refusal(&w, &kind, &fields),
            "failed to create typed patch object (ns/w; example.com/v1, Kind=Widget): errors:\n  .other: field not declared in schema\n  .spec.parts[0].weight: field not declared in schema\n  .spec.shape: field not declared in schema"
        );
        assert_eq!(
            undeclared_refusal(&w, &kind, &fields[..1]),
            "failed to create typed patch object (ns/w; example.com/v1, Kind=Widget): .other: field not declared in schema"
        );
    }

    #[test]
    fn a_post_is_warned_of_each_field_pruning_drops() {
        let w = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"generateName": "w-", "namespace": "ns"},
            "spec": {"size": 3, "shape": "round", "parts": [{"name": "a", "weight": 2}], "extra": {"any": 1}},
            "other": true});
        assert_eq!(
            unknown_field_warnings(&w, &widget_schema()),
            [
                "unknown field \"other\"",
                "unknown field \"spec.parts[0].weight\"",
                "unknown field \"spec.shape\"",
            ]
        );
    }

    #[test]
    fn types_and_required_fields_are_checked() {
        let mut w = json!({"kind": "Widget", "metadata": {}, "spec": {"color": 7}});
        decode(&mut w, &widget_schema());
        let errs = validate(&w, &widget_schema());
        assert_eq!(
            errs,
            vec![
                "spec.size: Required value".to_string(),
                r#"spec.color: Invalid value: "integer": spec.color in body must be of type string: "integer""#.to_string(),
            ]
        );
    }

    #[test]
    fn a_definition_is_named_for_its_plural_and_group() {
        let crd = json!({"metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"}}});
        assert!(check_definition(&crd).is_ok());
        let wrong = json!({"metadata": {"name": "widget"},
            "spec": {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"}}});
        assert_eq!(
            check_definition(&wrong).unwrap_err(),
            r#"metadata.name: Invalid value: "widget": must be spec.names.plural+"."+spec.group"#
        );
    }
}
