//! Properties of the engine over generated pods: whatever the pod looks like,
//! the decision and any denial are what an oracle written here from the
//! generated inputs predicts (not by calling the engine's own policy code),
//! the patch applies strictly, adds no duplicate names, leaves the app's own
//! containers and metadata alone, keeps sidecar ports off the app's ports
//! under `remap` and moves each remapped port everywhere the sidecar reads it
//! (containerPort, the portRules env var, probes), records exactly what it
//! added, and a second pass is a no-op.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use serde_json::{json, Value};
use sidecar_injector::config::{NameConflictPolicy, PortConflictPolicy};
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
  livenessProbe: {grpc: {port: 15001}}
containers:
- name: envoy
  image: envoy
  env: [{name: ENVOY_PORT, value: "10000"}, {name: ADMIN_PORT, value: "9901"}]
  ports: [{containerPort: 10000}]
  readinessProbe: {tcpSocket: {port: 10000}}
  livenessProbe: {httpGet: {path: /ready, port: 10000}}
  startupProbe: {httpGet: {path: /ready, port: 9901}}
  volumeMounts: [{name: envoy-config, mountPath: /etc/envoy}]
volumes:
- {name: envoy-config, configMap: {name: envoy-config}}
imagePullSecrets:
- {name: registry}
"#;

/// The engines under test, each with the config it was built from (the
/// oracle reads the config as input data).
static INJECTORS: LazyLock<Vec<(&'static str, Injector, Config)>> = LazyLock::new(|| {
    let native = Config::from_yaml(NATIVE_CONFIG, "native").unwrap_or_else(|e| panic!("{e}"));
    let mut keep = Config::builtin();
    keep.on_port_conflict = PortConflictPolicy::Keep;
    // Both conflicts denied.
    let mut reject = Config::builtin();
    reject.on_port_conflict = PortConflictPolicy::Reject;
    reject.on_name_conflict = NameConflictPolicy::Reject;
    // Port clashes denied, name clashes skipped.
    let mut native_reject = native.clone();
    native_reject.on_port_conflict = PortConflictPolicy::Reject;
    [
        ("builtin", Config::builtin()),
        ("keep", keep),
        ("native", native),
        ("reject", reject),
        ("native-reject", native_reject),
    ]
    .into_iter()
    .map(|(label, config)| (label, Injector::new(config.clone()), config))
    .collect()
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
        Just(" On ".to_string()),
        Just("NO".to_string()),
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

/// What the injector should answer, computed here from the generated pod
/// and the config's own fields, independently of the engine's code.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    reason: &'static str,
    denied: bool,
}

/// `sidecar-injector.io/inject` values, as documented (any case, trimmed).
fn flag(value: &str) -> Option<bool> {
    let v = value.trim().to_lowercase();
    if ["true", "y", "yes", "on"].contains(&v.as_str()) {
        Some(true)
    } else if ["false", "n", "no", "off"].contains(&v.as_str()) {
        Some(false)
    } else {
        None
    }
}

fn json_list<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items
        .iter()
        .map(|i| serde_json::to_value(i).unwrap())
        .collect()
}

/// The sidecars that run next to the app, as the config declares them:
/// native-sidecar init containers first, then containers.
fn config_running(config: &Config) -> Vec<Value> {
    json_list(&config.init_containers)
        .into_iter()
        .filter(is_native)
        .chain(json_list(&config.containers))
        .collect()
}

fn oracle(config: &Config, namespace: &str, pod: &Value) -> Expected {
    let skip = |reason| Expected {
        reason,
        denied: false,
    };
    let policy = &config.policy;
    if pod["spec"]["hostNetwork"] == json!(true) {
        return skip("host_network");
    }
    if policy.ignored_namespaces.iter().any(|n| n == namespace) {
        return skip("ignored_namespace");
    }
    let annotations = &pod["metadata"]["annotations"];
    if annotations.get(&policy.status_annotation).is_some() {
        return skip("already_injected");
    }
    let reason = match annotations[&policy.inject_annotation]
        .as_str()
        .and_then(flag)
    {
        Some(true) => "annotation_enabled",
        Some(false) => return skip("annotation_disabled"),
        // The configs under test have no selectors and inject by default.
        None => "policy_enabled",
    };
    assert!(policy.enabled && policy.never_inject_selector.is_empty());

    // Names: any injected container or volume name the pod already has.
    let pod_containers: BTreeSet<&str> = list(pod, "initContainers")
        .iter()
        .chain(list(pod, "containers"))
        .map(name)
        .collect();
    let pod_volumes: BTreeSet<&str> = list(pod, "volumes").iter().map(name).collect();
    let name_clash = config
        .all_containers()
        .any(|c| pod_containers.contains(c.name.as_str()))
        || config
            .volumes
            .iter()
            .any(|v| pod_volumes.contains(v.name.as_str()));
    if name_clash {
        return Expected {
            reason: "name_conflict",
            denied: config.on_name_conflict == NameConflictPolicy::Reject,
        };
    }

    // Ports: under reject, any running sidecar port held by the app or by
    // another sidecar denies the pod.
    let mut held: BTreeSet<(i64, String)> = running(pod).flat_map(ports).collect();
    let mut port_clash = false;
    for c in config_running(config) {
        for p in ports(&c) {
            port_clash |= !held.insert(p);
        }
    }
    // A denied clash is audited and counted under its own reason.
    let denied = port_clash && config.on_port_conflict == PortConflictPolicy::Reject;
    Expected {
        reason: if denied { "port_conflict" } else { reason },
        denied,
    }
}

/// A probe's integer port per (probe, handler), e.g. ("livenessProbe", "httpGet").
fn probe_ports(c: &Value) -> BTreeMap<(&'static str, &'static str), i64> {
    let mut out = BTreeMap::new();
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        for handler in ["httpGet", "tcpSocket", "grpc"] {
            if let Some(p) = c[probe][handler]["port"].as_i64() {
                out.insert((probe, handler), p);
            }
        }
    }
    out
}

fn env_values(c: &Value) -> BTreeMap<String, Value> {
    c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (name(e).to_string(), e["value"].clone()))
        .collect()
}

/// Under remap, each injected sidecar against its config template: a port
/// that moved went to the next port nothing else holds, the status records
/// the move, the portRules env var carries the new port, and TCP probes on
/// the old port follow; everything that did not move is as configured.
fn check_remaps(
    config: &Config,
    pod: &Value,
    patched: &Value,
    status: &InjectionStatus,
) -> Result<(), TestCaseError> {
    let app: BTreeSet<(i64, String)> = running(pod).flat_map(ports).collect();
    let sidecars: Vec<&Value> = running(patched)
        .filter(|c| {
            status
                .containers
                .iter()
                .chain(&status.init_containers)
                .any(|n| n == name(c))
        })
        .collect();
    let all_sidecar_ports: BTreeSet<(i64, String)> =
        sidecars.iter().flat_map(|c| ports(c)).collect();
    let templates = json_list(&config.init_containers)
        .into_iter()
        .chain(json_list(&config.containers));
    let mut moves = Vec::new();
    for template in templates {
        let Some(injected) = sidecars.iter().find(|c| name(c) == name(&template)) else {
            continue;
        };
        let (before, after) = (ports(&template), ports(injected));
        prop_assert_eq!(before.len(), after.len());
        let mut moved: BTreeMap<(i64, String), i64> = BTreeMap::new();
        for ((from, proto), (to, proto_after)) in before.into_iter().zip(after) {
            prop_assert_eq!(&proto, &proto_after);
            if from == to {
                continue;
            }
            prop_assert!(to > from, "{} moved down: {from} -> {to}", name(&template));
            for between in from + 1..to {
                let key = (between, proto.clone());
                prop_assert!(
                    app.contains(&key) || all_sidecar_ports.contains(&key),
                    "{} skipped free port {between} ({from} -> {to})",
                    name(&template)
                );
            }
            moves.push((name(&template).to_string(), from, to, proto.clone()));
            moved.insert((from, proto), to);
        }
        // The env var a portRule names holds the new port; others as configured.
        let mut want_env = env_values(&template);
        for rule in config
            .port_rules
            .iter()
            .filter(|r| r.container == name(&template))
        {
            if let Some(to) = moved
                .iter()
                .find(|((from, _), _)| *from == i64::from(rule.port))
                .map(|(_, to)| *to)
            {
                want_env.insert(rule.env.clone(), json!(to.to_string()));
            }
        }
        prop_assert_eq!(env_values(injected), want_env, "env of {}", name(&template));
        // Probes on a moved TCP port follow it; others stay.
        let want_probes: BTreeMap<_, _> = probe_ports(&template)
            .into_iter()
            .map(|(k, p)| (k, moved.get(&(p, "TCP".to_string())).copied().unwrap_or(p)))
            .collect();
        prop_assert_eq!(
            probe_ports(injected),
            want_probes,
            "probes of {}",
            name(&template)
        );
    }
    let recorded: Vec<_> = status
        .remapped_ports
        .iter()
        .map(|r| {
            (
                r.container.clone(),
                i64::from(r.from),
                i64::from(r.to),
                r.protocol.clone(),
            )
        })
        .collect();
    let (mut recorded, mut moves) = (recorded, moves);
    recorded.sort();
    moves.sort();
    prop_assert_eq!(recorded, moves, "status remappedPorts");
    Ok(())
}

fn check(
    injector: &Injector,
    config: &Config,
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
    let expected = oracle(config, namespace, pod);
    prop_assert_eq!(
        Expected {
            reason: outcome.decision.reason.as_str(),
            denied: outcome.denied.is_some(),
        },
        expected,
        "decision {:?}, denied {:?}",
        outcome.decision,
        outcome.denied
    );

    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &outcome.patch)
        .map_err(|e| TestCaseError::fail(format!("patch does not apply strictly: {e}")))?;
    if !outcome.injected() {
        // Skipped or denied: nothing at all changes.
        prop_assert!(outcome.patch.0.is_empty());
        return Ok(());
    }
    prop_assert!(outcome.decision.reason.injects());

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

    // Under remap no sidecar port is held by the app or by another sidecar,
    // and every move is carried everywhere the sidecar reads the port.
    if config.on_port_conflict == PortConflictPolicy::Remap {
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
        check_remaps(config, pod, &patched, &status)?;
    } else {
        prop_assert!(status.remapped_ports.is_empty());
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
        for (label, injector, config) in INJECTORS.iter() {
            check(injector, config, &namespace, &pod)
                .map_err(|e| TestCaseError::fail(format!("config {label}: {e}")))?;
        }
    }
}
