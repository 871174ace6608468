//! Lenient accessors into pod and node JSON: a missing or mistyped field
//! reads as empty, as the scheduler treats an absent field, so garbage input
//! never panics.

use serde_json::Value;

pub(super) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(super) fn strings(v: &Value, pointer: &str) -> Vec<String> {
    list(v, pointer)
        .iter()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}
