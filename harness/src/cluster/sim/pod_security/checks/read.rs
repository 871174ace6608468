//! The pod as Go would decode it, and the pieces of the checks' messages
//! (`policy/helpers.go`).

use serde_json::Value;

pub(super) struct Pod<'a> {
    pub(super) meta: &'a Value,
    pub(super) spec: &'a Value,
}

/// A failed check's reason and detail; `None` when it passes.
pub(super) type Outcome = Option<(&'static str, String)>;

/// A pointer field Go would decode as non-nil: present, an object.
pub(super) fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| x.is_object())
}

pub(super) fn flag(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

pub(super) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

pub(super) fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The strings of a string list (other elements skipped).
pub(super) fn strings<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    items(v, key).iter().filter_map(Value::as_str)
}

/// `visitContainers`: init containers, containers, ephemeral containers.
pub(super) fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    items(spec, "initContainers")
        .iter()
        .chain(items(spec, "containers"))
        .chain(items(spec, "ephemeralContainers"))
}

pub(super) fn name(container: &Value) -> &str {
    text(container, "name")
}

pub(super) fn security_context(v: &Value) -> Option<&Value> {
    obj(v, "securityContext")
}

/// A container's (or the pod's) securityContext sub-object `key`.
pub(super) fn context_field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    security_context(v).and_then(|sc| obj(sc, key))
}

/// Windows pods are exempt from the Linux-only restricted checks from 1.25.
pub(super) fn is_windows(spec: &Value) -> bool {
    obj(spec, "os").is_some_and(|os| text(os, "name") == "windows")
}

/// `hostUsers: false`: the pod runs in a user namespace, relaxed from 1.35.
pub(super) fn in_user_namespace(spec: &Value) -> bool {
    flag(spec, "hostUsers") == Some(false)
}

// ---- message pieces, as policy/helpers.go ----

pub(super) fn plural(one: &'static str, many: &'static str, n: usize) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `joinQuote`: `"a", "b"`, without escaping.
pub(super) fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

/// `container "a"` / `containers "a", "b"`.
pub(super) fn containers_phrase<S: AsRef<str>>(names: &[S]) -> String {
    format!(
        "{} {}",
        plural("container", "containers", names.len()),
        join_quote(names)
    )
}

/// A Go `sets.String` turned into its sorted list.
pub(super) fn sorted_set<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut v: Vec<String> = values.into_iter().map(Into::into).collect();
    v.sort();
    v.dedup();
    v
}
