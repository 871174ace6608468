//! The one key order every object in a snapshot is written in.

use serde_json::Value;

/// Key order as a canonical form: `name` first, then alphabetical. API
/// servers, the injector and the sim each emit keys in their own order; the
/// snapshot must not depend on which one produced an object.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| {
                (a.as_str() != "name", a.as_str()).cmp(&(b.as_str() != "name", b.as_str()))
            });
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}
