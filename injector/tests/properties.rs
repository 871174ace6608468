//! Properties of the engine over generated pods: whatever the pod looks like,
//! the patch applies strictly, adds no duplicate names, leaves the app's own
//! containers and metadata alone, keeps sidecar ports off the app's ports
//! under `remap`, records exactly what it added, and a second pass is a no-op.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use serde_json::{json, Value};
use sidecar_injector::config::PortConflictPolicy;
use sidecar_injector::inject::InjectionStatus;
use sidecar_injector::{Config, Injector, PodRef};

const STATUS: &str = "sidecar-injector.io/status";

/// Injects a plain init container, a native sidecar and a regular sidecar,
/// so prepending, native-sidecar ports and two sidecars' ports are exercised.
const NATIVE_CONFIG: &str = r#"
portRules:
- {container: proxy, port: 15001, env: PROXY_PORT}
- {container: envoy, port: 10000, env: ENVOY_PORT}
initContainers:
- name: proxy-init
  image: init
  ports: [{containerPort: 10000}]
- name: proxy
  image: proxy
  restartPolicy: Always
  env: [{name: PROXY_PORT, value: "15001"}]
  ports: [{containerPort: 15001}, {containerPort: 10000, protocol: UDP}]
containers:
- name: envoy
  image: envoy
  env: [{name: ENVOY_PORT, value: "10000"}]
  ports: [{containerPort: 10000}]
  readinessProbe: {tcpSocket: {port: 10000}}
  volumeMounts: [{name: envoy-config, mountPath: /etc/envoy}]
volumes:
- {name: envoy-config, configMap: {name: envoy-config}}
imagePullSecrets:
- {name: registry}
"#;

/// The engines under test and whether their config remaps port clashes.
static INJECTORS: LazyLock<Vec<(&'static str, Injector, bool)>> = LazyLock::new(|| {
    let mut keep = Config::builtin();
    keep.on_port_conflict = PortConflictPolicy::Keep;
    let native = Config::from_yaml(NATIVE_CONFIG, "native").unwrap_or_else(|e| panic!("{e}"));
    vec![
        ("builtin", Injector::new(Config::builtin()), true),
        ("keep", Injector::new(keep), false),
        ("native", Injector::new(native), true),
    ]
});

fn dns_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z]([a-z0-9-]{0,6}[a-z0-9])?",
        // The names the configs inject, to force collisions.
        1 => prop_oneof![Just("envoy"), Just("proxy"), Just("proxy-init")].prop_map(String::from),
    ]
}

fn port() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        2 => prop_oneof![Just(10000), Just(10001), Just(10002), Just(15001), Just(15002)],
        1 => 1..=65535i32,
    ];
    let protocol = prop_oneof![3 => Just(None), 1 => Just(Some("TCP")), 1 => Just(Some("UDP"))];
    (number, protocol).prop_map(|(n, p)| {
        let mut v = json!({"containerPort": n});
        if let Some(p) = p {
            v["protocol"] = json!(p);
        }
        v
    })
}

/// (initContainers, containers) with names unique across both.
fn containers() -> impl Strategy<Value = (Vec<Value>, Vec<Value>)> {
    btree_set(dns_name(), 1..6)
        .prop_flat_map(|names| {
            let n = names.len();
            let names: Vec<String> = names.into_iter().collect();
            let body = (vec(port(), 0..3), any::<bool>(), "[a-z]{1,8}(:[0-9]{1,2})?");
            (Just(names).prop_shuffle(), vec(body, n), 0..n)
        })
        .prop_map(|(names, bodies, split)| {
            let (mut init, mut main) = (Vec::new(), Vec::new());
            for (i, (name, (ports, native, image))) in names.into_iter().zip(bodies).enumerate() {
                let mut c = json!({"name": name, "image": image});
                if !ports.is_empty() {
                    c["ports"] = Value::Array(ports);
                }
                if i < split {
                    if native {
                        c["restartPolicy"] = json!("Always");
                    }
                    init.push(c);
                } else {
                    main.push(c);
                }
            }
            (init, main)
        })
}

fn volumes() -> impl Strategy<Value = Option<Vec<Value>>> {
    let name = prop_oneof![3 => "[a-z]{1,8}", 1 => Just("envoy-config".to_string())];
    proptest::option::of(btree_set(name, 0..4).prop_map(|names| {
        names
            .into_iter()
            .map(|n| json!({"name": n, "emptyDir": {}}))
            .collect()
    }))
}

/// Label or annotation maps, with '/', '.' and '~' in keys, and now and then
/// the keys the policy reads.
fn string_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop_oneof![
        4 => "[a-z]{1,5}(\\.[a-z]{1,3})?(/[a-z~]{1,5})?",
        1 => Just("sidecar-injector.io/inject".to_string()),
        1 => Just(STATUS.to_string()),
    ];
    let value = prop_oneof![
        "[a-z0-9 ]{0,6}",
        Just("true".to_string()),
        Just("false".to_string()),
        Just("maybe".to_string()),
    ];
    btree_map(key, value, 0..4)
}

fn metadata() -> impl Strategy<Value = Option<Value>> {
    proptest::option::weighted(
        0.85,
        (
            proptest::option::of("[a-z]{1,8}"),
            proptest::option::of(string_map()),
            proptest::option::of(string_map()),
        )
            .prop_map(|(name, labels, annotations)| {
                let mut m = serde_json::Map::new();
                if let Some(n) = name {
                    m.insert("name".into(), json!(n));
                }
                if let Some(l) = labels {
                    m.insert("labels".into(), json!(l));
                }
                if let Some(a) = annotations {
                    m.insert("annotations".into(), json!(a));
                }
                Value::Object(m)
            }),
    )
}

fn pod() -> impl Strategy<Value = Value> {
    (
        metadata(),
        containers(),
        any::<bool>(),
        volumes(),
        proptest::option::weighted(0.2, any::<bool>()),
    )
        .prop_map(
            |(meta, (init, main), empty_init_list, volumes, host_network)| {
                let mut spec = serde_json::Map::new();
                if !init.is_empty() || empty_init_list {
                    spec.insert("initContainers".into(), Value::Array(init));
                }
                spec.insert("containers".into(), Value::Array(main));
                if let Some(v) = volumes {
                    spec.insert("volumes".into(), Value::Array(v));
                }
                if let Some(h) = host_network {
                    spec.insert("hostNetwork".into(), json!(h));
                }
                let mut pod = json!({"apiVersion": "v1", "kind": "Pod"});
                if let Some(m) = meta {
                    pod["metadata"] = m;
                }
                pod["spec"] = Value::Object(spec);
                pod
            },
        )
}

fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("default".to_string()),
        1 => Just("kube-system".to_string()),
        2 => "[a-z]([a-z0-9-]{0,6}[a-z0-9])?",
    ]
}

fn list<'v>(pod: &'v Value, field: &str) -> &'v [Value] {
    pod["spec"][field]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn name(c: &Value) -> &str {
    c["name"].as_str().unwrap_or("")
}

fn meta_of(pod: &Value) -> ObjectMeta {
    match pod.get("metadata") {
        Some(m) => serde_json::from_value(m.clone()).expect("generated metadata is valid"),
        None => ObjectMeta::default(),
    }
}

fn is_native(c: &Value) -> bool {
    c["restartPolicy"] == "Always"
}

/// The (port, protocol) pairs a container declares.
fn ports(c: &Value) -> Vec<(i64, String)> {
    c["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP").to_string();
            (p["containerPort"].as_i64().unwrap_or(0), proto)
        })
        .collect()
}

fn running(pod: &Value) -> impl Iterator<Item = &Value> {
    list(pod, "initContainers")
        .iter()
        .filter(|c| is_native(c))
        .chain(list(pod, "containers"))
}

fn added_names<'v>(before: &[Value], after: &'v [Value]) -> Vec<&'v str> {
    let old: BTreeSet<&str> = before.iter().map(name).collect();
    after
        .iter()
        .map(name)
        .filter(|n| !old.contains(n))
        .collect()
}

fn check(
    injector: &Injector,
    remap: bool,
    namespace: &str,
    pod: &Value,
) -> Result<(), TestCaseError> {
    let meta = meta_of(pod);
    let outcome = injector
        .evaluate(PodRef {
            namespace,
            metadata: &meta,
            spec: &pod["spec"],
        })
        .map_err(|e| TestCaseError::fail(format!("generated pod unreadable: {e}")))?;
    prop_assert!(outcome.denied.is_none(), "denied: {:?}", outcome.denied);

    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &outcome.patch)
        .map_err(|e| TestCaseError::fail(format!("patch does not apply strictly: {e}")))?;
    if !outcome.injected() {
        prop_assert!(outcome.patch.0.is_empty());
        return Ok(());
    }

    // Unique container and volume names.
    let mut seen = BTreeSet::new();
    for c in list(&patched, "initContainers")
        .iter()
        .chain(list(&patched, "containers"))
    {
        prop_assert!(seen.insert(name(c)), "container {} twice", name(c));
    }
    let mut seen = BTreeSet::new();
    for v in list(&patched, "volumes") {
        prop_assert!(seen.insert(name(v)), "volume {} twice", name(v));
    }

    // The app's containers keep their order and content: sidecars come
    // before its init containers and after its containers.
    let (init_before, init_after) = (
        list(pod, "initContainers"),
        list(&patched, "initContainers"),
    );
    prop_assert!(init_after.ends_with(init_before));
    let (main_before, main_after) = (list(pod, "containers"), list(&patched, "containers"));
    prop_assert!(main_after.starts_with(main_before));
    let (vol_before, vol_after) = (list(pod, "volumes"), list(&patched, "volumes"));
    prop_assert!(vol_after.starts_with(vol_before));
    if pod["spec"].get("hostNetwork").is_some() {
        prop_assert_eq!(&patched["spec"]["hostNetwork"], &pod["spec"]["hostNetwork"]);
    }

    // The pod's own labels and annotations are kept.
    for field in ["labels", "annotations"] {
        if let Some(map) = pod["metadata"][field].as_object() {
            for (k, v) in map {
                prop_assert_eq!(&patched["metadata"][field][k], v, "{}.{} changed", field, k);
            }
        }
    }

    // The status annotation records exactly what was added.
    let status_json = patched["metadata"]["annotations"][STATUS]
        .as_str()
        .unwrap_or("");
    let status: InjectionStatus = serde_json::from_str(status_json)
        .map_err(|e| TestCaseError::fail(format!("status annotation: {e}: {status_json}")))?;
    prop_assert_eq!(
        &status.init_containers,
        &added_names(init_before, init_after)
    );
    prop_assert_eq!(&status.containers, &added_names(main_before, main_after));
    prop_assert_eq!(&status.volumes, &added_names(vol_before, vol_after));

    // Under remap no sidecar port is held by the app or by another sidecar.
    if remap {
        let ours: BTreeSet<&str> = status
            .init_containers
            .iter()
            .chain(&status.containers)
            .map(String::as_str)
            .collect();
        let app: BTreeSet<(i64, String)> = running(pod).flat_map(ports).collect();
        let mut sidecar_ports = BTreeSet::new();
        for c in running(&patched).filter(|c| ours.contains(name(c))) {
            for p in ports(c) {
                prop_assert!(
                    !app.contains(&p),
                    "sidecar {} on the app's port {:?}",
                    name(c),
                    p
                );
                prop_assert!(
                    sidecar_ports.insert(p.clone()),
                    "sidecar port {:?} twice",
                    p
                );
            }
        }
    }

    // A second pass changes nothing.
    let again = injector
        .evaluate(PodRef {
            namespace,
            metadata: &meta_of(&patched),
            spec: &patched["spec"],
        })
        .map_err(|e| TestCaseError::fail(format!("patched pod unreadable: {e}")))?;
    prop_assert!(
        again.patch.0.is_empty(),
        "second pass patched: {:?}",
        again.patch
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn injection_is_sound(pod in pod(), namespace in namespace()) {
        for (config, injector, remap) in INJECTORS.iter() {
            check(injector, *remap, &namespace, &pod)
                .map_err(|e| TestCaseError::fail(format!("config {config}: {e}")))?;
        }
    }
}
