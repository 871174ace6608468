//! The built-in config's envoy must listen where the pod spec says it
//! listens, after a remap too. Envoy reads no environment variables in its
//! bootstrap; what reaches it is its args, after Kubernetes has expanded
//! `$(VAR)` references in them from the container's env. So: inject a pod,
//! expand the sidecar's args the way the kubelet does, parse the bootstrap
//! envoy would be given, and compare its listener port with the
//! containerPort and the readiness probe.
//!
//! Envoy itself is not run here (no envoy package on this machine and no
//! container registry); this checks what envoy would be handed.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};
use sidecar_injector::{Config, Injector, PodRef};

/// Expands `$(NAME)` the way the kubelet does for command, args and env
/// (k8s.io/kubernetes third_party/forked/golang/expansion): `$$` is a
/// literal `$`, `$(NAME)` becomes the variable's value when it is defined and
/// stays as written when it is not, any other `$` is kept.
fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(close) => {
                    let name = &body[..close];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&format!("$({name})")),
                    }
                    rest = &body[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The container's environment as the kubelet builds it: in order, each
/// value expanded against the ones before; `fieldRef`s resolved from the
/// pod's metadata.
fn environment(container: &Value, pod_name: &str, namespace: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = if let Some(v) = e["value"].as_str() {
            expand(v, &vars)
        } else {
            match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => pod_name.to_string(),
                Some("metadata.namespace") => namespace.to_string(),
                other => panic!("env {name}: unhandled source {other:?}"),
            }
        };
        vars.insert(name, value);
    }
    vars
}

/// Injects the built-in config into a backend pod listening on `app_port`
/// and returns the envoy container as the apiserver stores it.
fn injected_envoy(app_port: i32) -> Value {
    let mut pod = json!({
        "metadata": {"name": "backend"},
        "spec": {"containers": [{"name": "backend", "image": "b", "ports": [{"containerPort": app_port}]}]}
    });
    let meta: ObjectMeta = serde_json::from_value(pod["metadata"].clone()).unwrap();
    let outcome = Injector::new(Config::builtin())
        .evaluate(PodRef {
            namespace: "shop",
            metadata: &meta,
            spec: &pod["spec"],
        })
        .unwrap();
    assert!(outcome.injected(), "{:?}", outcome.decision);
    json_patch::patch(&mut pod, &outcome.patch).unwrap();
    pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "envoy")
        .expect("envoy injected")
        .clone()
}

/// The args the envoy process receives, and the bootstrap among them.
fn rendered(envoy: &Value) -> (Vec<String>, Value) {
    let vars = environment(envoy, "backend", "shop");
    let args: Vec<String> = envoy["args"]
        .as_array()
        .expect("envoy has args")
        .iter()
        .map(|a| expand(a.as_str().unwrap(), &vars))
        .collect();
    for a in &args {
        assert!(
            !a.contains("$("),
            "a reference the kubelet leaves unexpanded: {a}"
        );
    }
    let at = args
        .iter()
        .position(|a| a == "--config-yaml")
        .expect("the listener reaches envoy through --config-yaml");
    let bootstrap: Value = serde_yaml::from_str(&args[at + 1])
        .unwrap_or_else(|e| panic!("bootstrap is not YAML: {e}\n{}", args[at + 1]));
    (args, bootstrap)
}

fn listener_ports(bootstrap: &Value) -> Vec<Value> {
    bootstrap["static_resources"]["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| l["address"]["socket_address"]["port_value"].clone())
        .collect()
}

fn assert_listens_on(envoy: &Value, port: i64) {
    assert_eq!(envoy["ports"][0]["containerPort"], port);
    assert_eq!(envoy["readinessProbe"]["tcpSocket"]["port"], port);
    let (args, bootstrap) = rendered(envoy);
    assert_eq!(
        listener_ports(&bootstrap),
        [json!(port)],
        "listener port in the bootstrap envoy is given"
    );
    // Nothing else hands envoy a config file with its own listener.
    assert!(
        !args.iter().any(|a| a == "-c" || a == "--config-path"),
        "{args:?}"
    );
    // The node identity comes from the downward API.
    let node = args.iter().position(|a| a == "--service-node").unwrap();
    assert_eq!(args[node + 1], "backend");
}

#[test]
fn without_a_clash_envoy_listens_on_10000() {
    assert_listens_on(&injected_envoy(8080), 10000);
}

#[test]
fn after_a_remap_envoy_listens_on_10001() {
    assert_listens_on(&injected_envoy(10000), 10001);
}

#[test]
fn the_bootstrap_routes_to_the_configmaps_cluster() {
    let (_, bootstrap) = rendered(&injected_envoy(8080));
    let cds = &bootstrap["dynamic_resources"]["cds_config"];
    assert_eq!(cds["path_config_source"]["path"], "/etc/envoy/cds.yaml");
    assert_eq!(cds["resource_api_version"], "V3");
    let hcm = &bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    let routes = &hcm["route_config"];
    // A static route table referring to a CDS cluster only loads unvalidated.
    assert_eq!(routes["validate_clusters"], false);
    assert_eq!(
        routes["virtual_hosts"][0]["routes"][0]["route"]["cluster"],
        "app"
    );
    assert_eq!(hcm["http_filters"][0]["name"], "envoy.filters.http.router");
}

#[test]
fn expansion_follows_the_kubelet() {
    let vars: BTreeMap<String, String> = [("A".to_string(), "1".to_string())].into();
    assert_eq!(expand("x$(A)y", &vars), "x1y");
    assert_eq!(expand("$(B)", &vars), "$(B)");
    assert_eq!(expand("$$(A)", &vars), "$(A)");
    assert_eq!(expand("$A $(A", &vars), "$A $(A");
}
