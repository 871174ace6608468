//! The config loader. Any text must load or give an error that names the
//! file (never a panic). A config that loads must survive its own YAML
//! rendering (what `manifests` puts in the ConfigMap) unchanged, and inject
//! a plain pod with a patch that applies strictly and a second pass that is
//! a no-op.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sidecar_injector::{Config, Injector};
use sidecar_injector_fuzz::{apply_strictly, evaluate, pod_parts};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::from_yaml(text, "fuzz.yaml") {
        Ok(c) => c,
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with("fuzz.yaml"),
                "error without the file: {message}"
            );
            return;
        }
    };
    let rendered = config.to_yaml();
    let again = Config::from_yaml(&rendered, "rendered.yaml").unwrap_or_else(|e| {
        panic!("a loaded config does not reload from its own YAML: {e}\n{rendered}")
    });
    assert_eq!(
        config, again,
        "the config changed through its YAML:\n{rendered}"
    );

    let injector = Injector::new(config);
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "backend", "namespace": "default", "labels": {"app": "backend"},
                     "annotations": {"team": "a"}},
        "spec": {"containers": [{"name": "backend", "image": "backend:v1",
                                 "ports": [{"containerPort": 10000}, {"containerPort": 15001}]}],
                 "volumes": [{"name": "data", "emptyDir": {}}]}
    });
    let (ns, meta) = pod_parts(&pod).unwrap();
    let outcome = evaluate(&injector, &ns, &meta, &pod).expect("a plain pod is readable");
    if outcome.denied.is_some() {
        return;
    }
    let mut patched = pod.clone();
    apply_strictly(&mut patched, &outcome.patch)
        .unwrap_or_else(|e| panic!("patch does not apply: {e}\n{:?}", outcome.patch));
    let (ns, meta) = pod_parts(&patched).expect("patched metadata is an ObjectMeta");
    let second = evaluate(&injector, &ns, &meta, &patched).expect("patched pod is readable");
    assert!(
        second.patch.0.is_empty(),
        "second pass patches again: {:?}",
        second.patch
    );
});
