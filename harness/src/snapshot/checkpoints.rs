//! What `expect` steps saw mid-scenario, and where they go in the snapshot.

use serde_json::{json, Map, Value};

use super::document::build;
use crate::cluster::Observed;

/// What an `expect` step saw mid-scenario, for the snapshot: its READY
/// lines and the refusals so far, normalized as in [`build`].
pub fn checkpoint(label: &str, observed: &Observed) -> Value {
    let doc = build(observed);
    let mut out = Map::new();
    out.insert("after".into(), json!(label));
    out.insert("ready".into(), doc["ready"].clone());
    if let Some(r) = doc.get("rejected") {
        out.insert("rejected".into(), r.clone());
    }
    Value::Object(out)
}

/// Puts the checkpoints first in a snapshot document (they come first in
/// time); a scenario without `expect` steps keeps its document unchanged.
pub fn with_checkpoints(doc: Value, checkpoints: Vec<Value>) -> Value {
    if checkpoints.is_empty() {
        return doc;
    }
    let mut out = Map::new();
    out.insert("checkpoints".into(), Value::Array(checkpoints));
    if let Value::Object(m) = doc {
        out.extend(m);
    }
    Value::Object(out)
}
