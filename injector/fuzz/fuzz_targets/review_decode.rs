//! The AdmissionReview decoder. Any body must give an answer or an error
//! (never a panic), and the pruned decoder (`admission::review`, which skips
//! what the engine does not read) must agree with the whole body decoded as
//! JSON: the same pruned spec as a reference pruner computes, and the same
//! decision, patch, warnings and denial as the engine gives on the whole spec.

#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sidecar_injector::admission;
use sidecar_injector::pruned::PrunedSpec;
use sidecar_injector::Reason;
use sidecar_injector_fuzz::{evaluate, pod_parts, reference_prune, INJECTORS};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let injector = &INJECTORS[pick as usize % INJECTORS.len()];
    let pruned = admission::review(injector, body);
    let whole: Result<Value, _> = serde_json::from_slice(body);

    let whole = match whole {
        Ok(whole) => whole,
        Err(e) if beyond_value_limits(&e) => {
            // JSON by RFC 8259, but not something `Value` can hold: a number
            // past f64's range, or nesting past serde_json's 128 levels. In a
            // field the engine skips, the pruned decoder passes over it (as
            // Go's encoding/json does with unknown fields); wherever it is
            // accepted, the answer must still be a well-formed review.
            if let Ok(reviewed) = pruned {
                let wire: Value =
                    serde_json::from_slice(&admission::encode(&reviewed.review)).unwrap();
                let version = wire["apiVersion"].as_str().unwrap_or("");
                assert!(admission::API_VERSIONS.contains(&version), "{version}");
            }
            return;
        }
        Err(_) => {
            // Not JSON at all: the pruned decoder reads the same syntax.
            assert!(
                pruned.is_err(),
                "pruned decoder accepted a body that is not JSON"
            );
            return;
        }
    };

    // The spec, pruned while decoding vs pruned after decoding it whole.
    if let Some(spec) = whole.pointer("/request/object/spec") {
        let text = serde_json::to_vec(spec).unwrap();
        let streamed: PrunedSpec = serde_json::from_slice(&text).expect("a JSON value decodes");
        assert_eq!(streamed.0, reference_prune(spec), "pruned spec differs");
    }

    let Ok(reviewed) = pruned else {
        return;
    };
    // Whatever was decided, the answer is a well-formed review for this uid.
    let wire: Value = serde_json::from_slice(&admission::encode(&reviewed.review)).unwrap();
    assert_eq!(wire["response"]["uid"], whole["request"]["uid"]);
    // Answered in the version it was asked in.
    assert_eq!(wire["apiVersion"], whole["apiVersion"]);

    let s = &reviewed.summary;
    if matches!(s.reason, Reason::NotAPod | Reason::NotCreate) {
        return;
    }
    // The engine on the whole object must decide exactly as on the pruned one.
    let object = &whole["request"]["object"];
    let (_, meta) = pod_parts(object).expect("the pruned decoder read this metadata");
    let full = evaluate(injector, &s.namespace, &meta, object);
    let response = &wire["response"];
    match full {
        Err(e) => {
            assert_eq!(
                s.reason,
                Reason::InvalidPod,
                "whole spec unreadable ({e}), pruned one not"
            );
            assert!(s.detail.ends_with(&e.to_string()), "{} vs {e}", s.detail);
        }
        Ok(outcome) => {
            assert_eq!(s.reason, outcome.decision.reason, "{}", s.detail);
            assert_eq!(s.warnings, outcome.warnings);
            assert_eq!(s.denied, outcome.denied);
            assert_eq!(s.injected, outcome.injected());
            let patch = response["patch"].as_str().map(|p| {
                base64::engine::general_purpose::STANDARD
                    .decode(p)
                    .expect("patch is base64")
            });
            let expected =
                (!outcome.patch.0.is_empty()).then(|| serde_json::to_vec(&outcome.patch).unwrap());
            if outcome.denied.is_none() {
                assert_eq!(patch, expected, "patches differ");
            }
        }
    }
});

/// Errors serde_json gives for valid JSON that its `Value` cannot represent.
/// serde_json classifies both as syntax errors, so the message is the only
/// way to tell them apart.
fn beyond_value_limits(e: &serde_json::Error) -> bool {
    let text = e.to_string();
    text.starts_with("number out of range") || text.starts_with("recursion limit exceeded")
}
