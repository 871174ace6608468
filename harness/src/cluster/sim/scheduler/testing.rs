//! What the scheduler's tests share: the minor they were written against,
//! the node's name, and small pod builders.

use serde_json::{json, Value};

use super::cycle::Outcome;

/// The minor these tests were written against.
pub(super) const V34: crate::version::Minor = crate::version::Minor::new(34);

pub(super) const NODE: &str = "injector-harness-control-plane";

pub(super) fn pod(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "demo"}, "spec": spec})
}

pub(super) fn app(extra: Value) -> Value {
    let mut c = json!({"name": "app", "image": "probe"});
    if let Some(m) = extra.as_object() {
        for (k, v) in m {
            c[k] = v.clone();
        }
    }
    c
}

pub(super) fn unschedulable(outcome: Outcome) -> String {
    match outcome {
        Outcome::Unschedulable(m) => m,
        other => panic!("expected Unschedulable, got {other:?}"),
    }
}
