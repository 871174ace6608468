//! Port conflicts between the sidecar and the pod.
//!
//! All containers of a pod share one network namespace, so a sidecar that
//! listens on a port the application already uses dies with `address already
//! in use` (the envoy-on-10000 case). The injector finds such clashes from the
//! declared containerPorts and, under `remap`, moves the sidecar to the next
//! free port and rewrites every place the sidecar learns that port from.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::{PortConflictPolicy, PortRule};

/// A port and its protocol: 10000/TCP and 10000/UDP do not clash.
pub type PortKey = (i32, String);

/// A sidecar port equal to a port something else in the pod declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    pub sidecar: String,
    pub port: i32,
    pub protocol: String,
    /// The container that declares the port first.
    pub owner: String,
}

/// A sidecar port moved to resolve a clash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remap {
    pub container: String,
    pub from: i32,
    pub to: i32,
    pub protocol: String,
}

/// What the port pass did to the sidecars about to be injected.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PortPlan {
    /// Clashes moved away (`remap`).
    pub remapped: Vec<Remap>,
    /// Clashes left in place (`keep`), or that made the pod be denied
    /// (`reject`, or `remap` with no free port left).
    pub unresolved: Vec<Clash>,
}

fn protocol_of(port: &Value) -> String {
    port.get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP")
        .to_string()
}

fn container_ports(c: &Value) -> impl Iterator<Item = (i32, String)> + '_ {
    c.get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let n = p.get("containerPort")?.as_i64()?;
            Some((i32::try_from(n).ok()?, protocol_of(p)))
        })
}

/// Whether an init container keeps running next to the app (a native
/// sidecar), and so holds its ports while the app runs.
pub fn is_native_sidecar(c: &Value) -> bool {
    c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

/// Ports held while the application runs: those of regular containers and of
/// native-sidecar init containers, with the name of the container holding each.
pub fn ports_in_use(spec: &Value) -> BTreeMap<PortKey, String> {
    let mut taken = BTreeMap::new();
    let init = spec.get("initContainers").and_then(Value::as_array);
    let main = spec.get("containers").and_then(Value::as_array);
    let running = init
        .into_iter()
        .flatten()
        .filter(|c| is_native_sidecar(c))
        .chain(main.into_iter().flatten());
    for c in running {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
        for key in container_ports(c) {
            taken.entry(key).or_insert_with(|| name.to_string());
        }
    }
    taken
}

/// Checks each sidecar's ports against `taken` and applies `policy`. Under
/// `remap` the sidecar values are rewritten in place. Sidecars are processed
/// in order and each one's final ports are added to `taken`, so two sidecars
/// cannot clash with each other either.
pub fn resolve(
    policy: PortConflictPolicy,
    rules: &[PortRule],
    taken: &mut BTreeMap<PortKey, String>,
    sidecars: &mut [&mut Value],
) -> PortPlan {
    let mut plan = PortPlan::default();
    for sidecar in sidecars.iter_mut() {
        let name = sidecar
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let ports: Vec<_> = container_ports(sidecar).collect();
        for (port, protocol) in ports {
            let key = (port, protocol.clone());
            let Some(owner) = taken.get(&key).cloned() else {
                taken.insert(key, name.clone());
                continue;
            };
            let clash = Clash {
                sidecar: name.clone(),
                port,
                protocol: protocol.clone(),
                owner,
            };
            match policy {
                PortConflictPolicy::Keep | PortConflictPolicy::Reject => {
                    plan.unresolved.push(clash)
                }
                PortConflictPolicy::Remap => match next_free(port, &protocol, taken) {
                    Some(to) => {
                        rewrite_port(sidecar, rules, port, to, &protocol);
                        taken.insert((to, protocol.clone()), name.clone());
                        plan.remapped.push(Remap {
                            container: name.clone(),
                            from: port,
                            to,
                            protocol,
                        });
                    }
                    None => plan.unresolved.push(clash),
                },
            }
        }
    }
    plan
}

/// The first port above `port` that nothing in the pod holds.
fn next_free(port: i32, protocol: &str, taken: &BTreeMap<PortKey, String>) -> Option<i32> {
    (port.saturating_add(1)..=65535).find(|p| !taken.contains_key(&(*p, protocol.to_string())))
}

/// Moves a sidecar from `from` to `to`: its containerPort, the environment
/// variable a port rule names for it (which Kubernetes expands as `$(VAR)` in
/// args), and any probe aimed at the old port.
fn rewrite_port(sidecar: &mut Value, rules: &[PortRule], from: i32, to: i32, protocol: &str) {
    let name = sidecar
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(ports) = sidecar.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if p.get("containerPort").and_then(Value::as_i64) == Some(from.into())
                && protocol_of(p) == protocol
            {
                p["containerPort"] = to.into();
            }
        }
    }
    let vars: Vec<&str> = rules
        .iter()
        .filter(|r| r.container == name && r.port == from)
        .map(|r| r.env.as_str())
        .collect();
    if let Some(env) = sidecar.get_mut("env").and_then(Value::as_array_mut) {
        for e in env {
            let named = e
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| vars.contains(&n));
            if named {
                e["value"] = Value::String(to.to_string());
            }
        }
    }
    if protocol == "TCP" {
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
            for handler in ["httpGet", "tcpSocket", "grpc"] {
                if let Some(p) = sidecar.pointer_mut(&format!("/{probe}/{handler}/port")) {
                    if p.as_i64() == Some(from.into()) {
                        *p = to.into();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Vec<PortRule> {
        vec![PortRule {
            container: "envoy".into(),
            port: 10000,
            env: "PROXY_PORT".into(),
        }]
    }

    fn envoy() -> Value {
        json!({
            "name": "envoy",
            "args": ["--port", "$(PROXY_PORT)"],
            "env": [{"name": "PROXY_PORT", "value": "10000"}, {"name": "OTHER", "value": "10000"}],
            "ports": [{"containerPort": 10000}],
            "readinessProbe": {"tcpSocket": {"port": 10000}},
        })
    }

    fn backend(ports: &[i32]) -> Value {
        json!({"containers": [{"name": "backend", "ports": ports.iter().map(|p| json!({"containerPort": p})).collect::<Vec<_>>()}]})
    }

    #[test]
    fn remap_moves_to_the_next_free_port_and_rewrites_env_and_probe() {
        let spec = backend(&[10000, 10001]);
        let mut taken = ports_in_use(&spec);
        let mut e = envoy();
        let plan = resolve(
            PortConflictPolicy::Remap,
            &rules(),
            &mut taken,
            &mut [&mut e],
        );
        assert_eq!(
            plan.remapped,
            vec![Remap {
                container: "envoy".into(),
                from: 10000,
                to: 10002,
                protocol: "TCP".into()
            }]
        );
        assert!(plan.unresolved.is_empty());
        assert_eq!(e["ports"][0]["containerPort"], 10002);
        assert_eq!(e["env"][0]["value"], "10002");
        assert_eq!(
            e["env"][1]["value"], "10000",
            "only the rule's variable moves"
        );
        assert_eq!(e["readinessProbe"]["tcpSocket"]["port"], 10002);
        assert_eq!(e["args"][1], "$(PROXY_PORT)", "args keep the reference");
    }

    #[test]
    fn liveness_and_startup_probes_on_the_old_port_move_too() {
        let mut e = envoy();
        e["livenessProbe"] = json!({"httpGet": {"path": "/ready", "port": 10000}});
        e["startupProbe"] = json!({"grpc": {"port": 10000}});
        // A probe on another port (envoy's admin) is not the moved port.
        e["readinessProbe"] = json!({"httpGet": {"path": "/ready", "port": 9901}});
        let mut taken = ports_in_use(&backend(&[10000]));
        let plan = resolve(
            PortConflictPolicy::Remap,
            &rules(),
            &mut taken,
            &mut [&mut e],
        );
        assert_eq!(plan.remapped.len(), 1);
        assert_eq!(e["livenessProbe"]["httpGet"]["port"], 10001);
        assert_eq!(e["livenessProbe"]["httpGet"]["path"], "/ready");
        assert_eq!(e["startupProbe"]["grpc"]["port"], 10001);
        assert_eq!(e["readinessProbe"]["httpGet"]["port"], 9901);
    }

    #[test]
    fn keep_and_reject_leave_the_sidecar_alone() {
        for policy in [PortConflictPolicy::Keep, PortConflictPolicy::Reject] {
            let mut taken = ports_in_use(&backend(&[10000]));
            let mut e = envoy();
            let plan = resolve(policy, &rules(), &mut taken, &mut [&mut e]);
            assert_eq!(plan.unresolved.len(), 1);
            assert_eq!(plan.unresolved[0].owner, "backend");
            assert_eq!(e, envoy());
        }
    }

    #[test]
    fn no_clash_no_change() {
        let mut taken = ports_in_use(&backend(&[8080]));
        let mut e = envoy();
        let plan = resolve(
            PortConflictPolicy::Remap,
            &rules(),
            &mut taken,
            &mut [&mut e],
        );
        assert_eq!(plan, PortPlan::default());
        assert_eq!(e, envoy());
        assert_eq!(
            taken.get(&(10000, "TCP".into())).map(String::as_str),
            Some("envoy")
        );
    }

    #[test]
    fn other_protocol_does_not_clash() {
        let spec = json!({"containers": [{"name": "dns", "ports": [{"containerPort": 10000, "protocol": "UDP"}]}]});
        let mut taken = ports_in_use(&spec);
        let mut e = envoy();
        let plan = resolve(
            PortConflictPolicy::Remap,
            &rules(),
            &mut taken,
            &mut [&mut e],
        );
        assert!(plan.remapped.is_empty());
    }

    #[test]
    fn native_sidecars_hold_ports_but_plain_init_containers_do_not() {
        let spec = json!({
            "initContainers": [
                {"name": "setup", "ports": [{"containerPort": 9000}]},
                {"name": "agent", "restartPolicy": "Always", "ports": [{"containerPort": 9001}]},
            ],
            "containers": [],
        });
        let taken = ports_in_use(&spec);
        assert!(!taken.contains_key(&(9000, "TCP".into())));
        assert_eq!(taken[&(9001, "TCP".into())], "agent");
    }

    #[test]
    fn two_sidecars_do_not_clash_with_each_other() {
        let mut taken = ports_in_use(&backend(&[]));
        let mut a = json!({"name": "a", "ports": [{"containerPort": 15000}]});
        let mut b = json!({"name": "b", "ports": [{"containerPort": 15000}]});
        let plan = resolve(
            PortConflictPolicy::Remap,
            &[],
            &mut taken,
            &mut [&mut a, &mut b],
        );
        assert_eq!(plan.remapped.len(), 1);
        assert_eq!(b["ports"][0]["containerPort"], 15001);
    }

    #[test]
    fn no_free_port_left_is_unresolved() {
        let mut taken = ports_in_use(&backend(&[65535]));
        let mut s = json!({"name": "s", "ports": [{"containerPort": 65535}]});
        let plan = resolve(PortConflictPolicy::Remap, &[], &mut taken, &mut [&mut s]);
        assert_eq!(plan.unresolved.len(), 1);
        assert!(plan.remapped.is_empty());
    }
}
