//! Building RFC 6902 patches that the apiserver applies strictly.
//!
//! The apiserver fails an `add` whose parent does not exist, so every helper
//! here is told whether the target array or map is present and creates it
//! whole when it is not. Existing maps are extended key by key, never
//! replaced, so annotations set by other webhooks survive.

use json_patch::{AddOperation, Patch, PatchOperation};
use serde_json::{Map, Value};

/// Escapes one JSON Pointer reference token (RFC 6901): `~` then `/`.
pub fn escape(token: &str) -> String {
    if !token.contains(['~', '/']) {
        return token.to_string();
    }
    token.replace('~', "~0").replace('/', "~1")
}

/// An ordered list of patch operations under construction.
#[derive(Debug, Default)]
pub struct PatchBuilder {
    ops: Vec<PatchOperation>,
}

impl PatchBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn build(self) -> Patch {
        Patch(self.ops)
    }

    /// `add` at a pointer; the parent must exist.
    pub fn add(&mut self, path: &str, value: Value) {
        let path = json_patch::jsonptr::PointerBuf::parse(path).unwrap_or_else(|_| {
            // Paths are built here from escaped tokens; an invalid one is a
            // programming error, kept from panicking by falling back to root.
            debug_assert!(false, "invalid JSON pointer {path}");
            Default::default()
        });
        self.ops
            .push(PatchOperation::Add(AddOperation { path, value }));
    }

    /// Appends `items` to the array at `path`, creating it if `existing` is
    /// `None` (absent or null).
    pub fn append(&mut self, path: &str, existing: Option<&Vec<Value>>, items: Vec<Value>) {
        if items.is_empty() {
            return;
        }
        match existing {
            None => self.add(path, Value::Array(items)),
            Some(_) => {
                for item in items {
                    self.add(&format!("{path}/-"), item);
                }
            }
        }
    }

    /// Inserts `items` at the front of the array at `path`, in order.
    pub fn prepend(&mut self, path: &str, existing: Option<&Vec<Value>>, items: Vec<Value>) {
        if items.is_empty() {
            return;
        }
        match existing {
            None => self.add(path, Value::Array(items)),
            Some(_) => {
                for (i, item) in items.into_iter().enumerate() {
                    self.add(&format!("{path}/{i}"), item);
                }
            }
        }
    }

    /// Sets `entries` in the map at `path`, creating it if absent. Keys
    /// already present are overwritten one by one; others are untouched.
    pub fn merge_map<'a>(
        &mut self,
        path: &str,
        exists: bool,
        entries: impl IntoIterator<Item = (&'a str, String)>,
    ) {
        let entries: Vec<_> = entries.into_iter().collect();
        if entries.is_empty() {
            return;
        }
        if exists {
            for (k, v) in entries {
                self.add(&format!("{path}/{}", escape(k)), Value::String(v));
            }
        } else {
            let map: Map<String, Value> = entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::String(v)))
                .collect();
            self.add(path, Value::Object(map));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(doc: &Value, b: PatchBuilder) -> Result<Value, json_patch::PatchError> {
        let mut out = doc.clone();
        json_patch::patch(&mut out, &b.build())?;
        Ok(out)
    }

    #[test]
    fn escapes_slash_and_tilde() {
        assert_eq!(
            escape("sidecar-injector.io/status"),
            "sidecar-injector.io~1status"
        );
        assert_eq!(escape("a~b/c"), "a~0b~1c");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn creates_absent_array_and_map() {
        let doc = json!({"metadata": {}, "spec": {"containers": [{"name": "a"}]}});
        let mut b = PatchBuilder::new();
        b.append("/spec/volumes", None, vec![json!({"name": "v"})]);
        b.merge_map(
            "/metadata/annotations",
            false,
            [("x.io/y", "1".to_string())],
        );
        let out = apply(&doc, b).unwrap();
        assert_eq!(out["spec"]["volumes"], json!([{"name": "v"}]));
        assert_eq!(out["metadata"]["annotations"], json!({"x.io/y": "1"}));
    }

    #[test]
    fn extends_existing_map_without_replacing_it() {
        let doc = json!({"metadata": {"annotations": {"keep": "me"}}});
        let mut b = PatchBuilder::new();
        b.merge_map("/metadata/annotations", true, [("x.io/y", "1".to_string())]);
        let out = apply(&doc, b).unwrap();
        assert_eq!(
            out["metadata"]["annotations"],
            json!({"keep": "me", "x.io/y": "1"})
        );
    }

    #[test]
    fn prepend_keeps_order_before_existing_items() {
        let doc = json!({"spec": {"initContainers": [{"name": "app-init"}]}});
        let mut b = PatchBuilder::new();
        let existing = doc["spec"]["initContainers"].as_array();
        b.prepend(
            "/spec/initContainers",
            existing,
            vec![json!({"name": "a"}), json!({"name": "b"})],
        );
        let out = apply(&doc, b).unwrap();
        let names: Vec<_> = out["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "app-init"]);
    }

    #[test]
    fn a_strict_apply_fails_on_a_missing_parent() {
        // The property the builder exists for: appending with "-" to an
        // absent array is an error, exactly as in the apiserver.
        let doc = json!({"spec": {}});
        let mut b = PatchBuilder::new();
        b.append("/spec/volumes", Some(&vec![]), vec![json!({"name": "v"})]);
        assert!(apply(&doc, b).is_err());
    }

    #[test]
    fn empty_inputs_add_nothing() {
        let mut b = PatchBuilder::new();
        b.append("/spec/volumes", None, vec![]);
        b.prepend("/spec/initContainers", None, vec![]);
        b.merge_map("/metadata/labels", false, []);
        assert!(b.is_empty());
    }
}
