//! Reading Kubernetes objects held as JSON, where every field may be absent
//! or of the wrong type.

use std::collections::BTreeMap;

use serde_json::Value;

/// A string map such as labels or annotations; non-string values are skipped.
pub fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The current time as the API writes times: RFC 3339 in UTC, whole
/// seconds (`2026-12-07T12:00:00Z`).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `metadata.labels` of an object.
pub fn labels(object: &Value) -> BTreeMap<String, String> {
    string_map(&object["metadata"]["labels"])
}

/// `metadata.<field>` as a string, "" when absent.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object["metadata"][field].as_str().unwrap_or("")
}

/// The name a scenario gave an object: its name, or for one created with
/// `generateName`, that prefix (refusals are reported under it).
pub fn written_name(object: &Value) -> &str {
    match meta_str(object, "name") {
        "" => meta_str(object, "generateName"),
        name => name,
    }
}

/// `metadata.namespace`, "default" when absent (as kubectl applies it).
pub fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_what_the_api_writes() {
        let t = now();
        // 2026-12-07T12:00:00Z: whole seconds, UTC, parsed back exactly.
        assert_eq!(t.len(), 20, "{t}");
        let parsed: jiff::Timestamp = t.parse().unwrap();
        assert_eq!(parsed.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(), t);
    }
    use serde_json::json;

    #[test]
    fn tolerates_missing_and_odd_fields() {
        let o = json!({"metadata": {"labels": {"a": "1", "n": 2}}});
        assert_eq!(
            labels(&o),
            BTreeMap::from([("a".to_string(), "1".to_string())])
        );
        assert!(labels(&json!("x")).is_empty());
        assert_eq!(meta_str(&o, "name"), "");
        assert_eq!(namespace(&o), "default");
    }
}
