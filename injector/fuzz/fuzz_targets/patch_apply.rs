//! Patch creation and application. For any pod (JSON after the first byte,
//! which picks the config; metadata shaped as an apiserver sends it), the
//! engine's patch applies strictly to the pod,
//! and a second pass over the patched pod is a no-op: no patch, no denial.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sidecar_injector::Reason;
use sidecar_injector_fuzz::{
    apply_strictly, as_the_apiserver_sends, evaluate, pod_parts, INJECTORS,
};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let injector = &INJECTORS[pick as usize % INJECTORS.len()];
    let Ok(mut pod) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    if !pod.is_object() || !as_the_apiserver_sends(&mut pod) {
        return;
    }
    let Some((ns, meta)) = pod_parts(&pod) else {
        return;
    };
    let Ok(outcome) = evaluate(injector, &ns, &meta, &pod) else {
        return;
    };
    if outcome.denied.is_some() {
        return;
    }
    let mut patched = pod.clone();
    apply_strictly(&mut patched, &outcome.patch).unwrap_or_else(|e| {
        panic!(
            "patch does not apply: {e}\npod: {pod}\npatch: {}",
            serde_json::to_string(&outcome.patch).unwrap()
        )
    });
    if !outcome.injected() {
        assert!(outcome.patch.0.is_empty(), "patch without injection");
        return;
    }
    let (ns, meta) = pod_parts(&patched).expect("patched metadata is an ObjectMeta");
    let second = evaluate(injector, &ns, &meta, &patched)
        .unwrap_or_else(|e| panic!("patched pod unreadable: {e}\n{patched}"));
    assert!(
        second.patch.0.is_empty() && second.denied.is_none(),
        "second pass is not a no-op: {:?} {:?}\npatched: {patched}",
        second.patch,
        second.denied
    );
    assert_eq!(second.decision.reason, Reason::AlreadyInjected);
});
