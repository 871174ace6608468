//! JSON reads for the model: absent or wrongly typed reads as empty.

use serde_json::Value;

pub(super) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn str_or<'a>(v: &'a Value, pointer: &str, default: &'a str) -> &'a str {
    match str_at(v, pointer) {
        "" => default,
        s => s,
    }
}

pub(super) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}
