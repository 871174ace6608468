//! What a container runs, as far as the model cares: the ports it binds
//! and whether it exits. The probe image says so in its (expanded) flags;
//! other images bind their declared ports and run forever.

use std::collections::BTreeMap;

use serde_json::Value;

use super::env::expand;
use super::lookup::{list, str_at, str_or};
use super::netns::PortKey;
use super::spec::Kind;
use crate::probe::{is_probe_image, ProbeArgs};

/// The part of a container's process the model cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Program {
    /// Exits at once, before binding anything (the probe with bad flags).
    BadArgs { error: String },
    /// Binds `ports`, then runs forever or exits with `exits_with`.
    Serve {
        ports: Vec<PortKey>,
        exits_with: Option<i32>,
        /// Its start and exit lines, for FallbackToLogsOnError.
        log_name: String,
    },
}

impl Program {
    pub(super) fn of(container: &Value, kind: Kind, env: &BTreeMap<String, String>) -> Program {
        if !is_probe_image(str_at(container, "/image")) {
            return match kind {
                Kind::Init => Program::Serve {
                    ports: Vec::new(),
                    exits_with: Some(0),
                    log_name: String::new(),
                },
                Kind::Sidecar | Kind::App => Program::Serve {
                    ports: declared_ports(container),
                    exits_with: None,
                    log_name: String::new(),
                },
            };
        }
        match ProbeArgs::parse(&probe_argv(container, env)) {
            Ok(args) => Program::Serve {
                ports: args
                    .listen
                    .iter()
                    .map(|p| (*p, "TCP".to_string()))
                    .collect(),
                exits_with: args.exit_after_ms.map(|_| args.exit_code),
                log_name: args.name.unwrap_or_else(|| "unnamed".to_string()),
            },
            Err(error) => Program::BadArgs { error },
        }
    }
}

/// The probe's arguments: the command after the program path, then args,
/// each `$(VAR)`-expanded against the container's environment.
fn probe_argv(container: &Value, env: &BTreeMap<String, String>) -> Vec<String> {
    let words = |key: &str| {
        list(container, key)
            .iter()
            .map(|w| match w {
                Value::String(s) => expand(s, env),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
    };
    let mut argv: Vec<String> = words("command").into_iter().skip(1).collect();
    argv.extend(words("args"));
    argv
}

/// A container's declared ports: what a non-probe image is taken to bind.
fn declared_ports(container: &Value) -> Vec<PortKey> {
    let mut ports = Vec::new();
    for p in list(container, "ports") {
        let Some(port) = p.get("containerPort").and_then(Value::as_u64) else {
            continue;
        };
        let Some(port) = u16::try_from(port).ok().filter(|p| *p != 0) else {
            continue;
        };
        let key = (port, str_or(p, "/protocol", "TCP").to_string());
        if !ports.contains(&key) {
            ports.push(key);
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kubelet::testing::{condition, container, envoy, line, pod, probe, run};
    use crate::kubelet::timestamp::TIMESTAMP;
    use crate::probe::{bind_error, PROBE_IMAGE};

    #[test]
    fn expanded_args_decide_the_bound_port_not_the_declared_one() {
        // Declares 10000 but PROXY_PORT says 10001: the process binds 10001.
        let mut sidecar = envoy("10000");
        sidecar["env"][0]["value"] = json!("10001");
        sidecar["readinessProbe"]["tcpSocket"]["port"] = json!(10001);
        let pod = pod(json!({"containers": [probe("backend", &["--listen", "10000"]), sidecar]}));
        let status = run(&pod);
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 2/2 Running");
    }

    #[test]
    fn variables_chain_and_escape() {
        let c = json!({
            "name": "envoy", "image": PROBE_IMAGE,
            "command": ["/probe", "--listen", "$(PORT)"],
            "args": ["--name", "$$(PORT)"],
            "env": [{"name": "BASE", "value": "100"}, {"name": "PORT", "value": "$(BASE)01"}],
        });
        let status = run(&pod(
            json!({"containers": [probe("a", &["--listen", "10001"]), c]}),
        ));
        // PORT = 10001, which `a` holds; the name stays the literal "$(PORT)".
        let envoy = container(&status, "containerStatuses", "envoy");
        assert_eq!(
            envoy["lastState"]["terminated"]["message"],
            bind_error(10001)
        );
    }

    #[test]
    fn bad_probe_flags_exit_2_without_a_message() {
        let c = probe("app", &["--listen", "$(UNSET)"]);
        let status = run(&pod(json!({"restartPolicy": "Never", "containers": [c]})));
        let app = container(&status, "containerStatuses", "app");
        assert_eq!(
            app["state"]["terminated"],
            json!({"exitCode": 2, "reason": "Error", "startedAt": TIMESTAMP,
                   "finishedAt": TIMESTAMP, "containerID": "containerd://app"})
        );
        assert_eq!(status["phase"], "Failed");
    }

    #[test]
    fn non_probe_images_bind_their_declared_ports() {
        let app = json!({"name": "app", "image": "nginx:1.27",
                         "ports": [{"containerPort": 10000}]});
        let proxy = json!({"name": "envoy", "image": "envoyproxy/envoy:v1.32-latest",
                           "ports": [{"containerPort": 10000, "protocol": "TCP"}]});
        let status = run(&pod(json!({"containers": [app, proxy]})));
        let envoy = container(&status, "containerStatuses", "envoy");
        assert_eq!(envoy["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(
            envoy["lastState"]["terminated"]["message"],
            bind_error(10000)
        );
        // A UDP port does not clash with a TCP one.
        let dns = json!({"name": "dns", "image": "coredns/coredns:v1.12.1", "ports": [{"containerPort": 53, "protocol": "UDP"}]});
        let web = json!({"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 53}]});
        let status = run(&pod(json!({"containers": [dns, web]})));
        assert_eq!(status["phase"], "Running");
        assert_eq!(condition(&status, "Ready")["status"], "True");
    }
}
