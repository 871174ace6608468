//! The kubelet and container runtime at work on one pod: containers start
//! in the kubelet's order, bind ports in the namespace, exit, restart or
//! get stopped, and are probed for started and ready.

use std::collections::BTreeSet;

use serde_json::Value;

use super::config_sources::missing_env_source;
use super::container::{Ctr, Exit, State};
use super::env::env_with;
use super::lookup::{list, str_at};
use super::netns::Netns;
use super::pod::{PodInfo, PodRun, Progress};
use super::program::Program;
use super::pull::ensure_image;
use super::run_context::RunContext;
use super::spec::{Kind, RestartPolicy};
use crate::probe::bind_error;

/// The kubelet and runtime at work on one pod.
pub(super) struct Runtime<'a, 'p> {
    pub(super) info: &'a PodInfo<'p>,
    pub(super) ctx: &'a RunContext<'a>,
    pub(super) netns: Netns,
    /// What the node's runtime holds (full names).
    pub(super) images: &'a BTreeSet<String>,
}

impl Runtime<'_, '_> {
    /// Init containers in order, each waited for; then every app container,
    /// in spec order (which decides who gets a contested port); then the
    /// app containers that exit on their own do so.
    pub(super) fn run(&mut self, pod: &mut PodRun) -> Progress {
        for c in &mut pod.inits {
            self.launch(c);
            let go_on = match c.kind {
                // The kubelet moves on once a sidecar has started; one that
                // later exits on its own crash-loops next to the app.
                Kind::Sidecar => {
                    let up = c.running() && self.probe_passes(c, "startupProbe");
                    if let Some(exit) = c.pending_exit.take() {
                        self.exit(c, exit);
                    }
                    c.started = up;
                    up
                }
                Kind::Init | Kind::App => {
                    if let Some(exit) = c.pending_exit.take() {
                        self.exit(c, exit);
                    }
                    match &c.state {
                        State::Terminated(e) if e.code == 0 => true,
                        State::Terminated(_) => return Progress::InitFailed,
                        _ => false,
                    }
                }
            };
            if !go_on {
                return Progress::Initializing;
            }
        }
        for c in &mut pod.apps {
            self.launch(c);
        }
        for c in &mut pod.apps {
            if let Some(exit) = c.pending_exit.take() {
                self.exit(c, exit);
            }
        }
        Progress::Started
    }

    /// Starts one container: its image cannot be had, it cannot be
    /// created, it fails at once (bad flags, port taken), or it runs with
    /// its ports bound.
    fn launch(&mut self, c: &mut Ctr) {
        // The image comes first: the kubelet pulls before it builds the
        // container's config.
        if let Err(failure) = ensure_image(c.spec, self.images) {
            c.state = State::Waiting {
                reason: failure.reason.to_string(),
                message: Some(failure.message),
            };
            return;
        }
        if let Some(message) = missing_env_source(c.spec, self.info.namespace, self.ctx) {
            c.state = State::Waiting {
                reason: "CreateContainerConfigError".to_string(),
                message: Some(message),
            };
            return;
        }
        let env = env_with(c.spec, self.info.pod, &self.info.facts);
        match Program::of(c.spec, c.kind, &env) {
            Program::BadArgs { error } => {
                let logs = format!("probe: {error}\n");
                let message = c.termination_message(None, &logs, 2);
                self.exit(c, Exit { code: 2, message });
            }
            Program::Serve {
                ports,
                exits_with,
                log_name,
            } => match self.netns.bind(&ports, &self.info.owner(&c.name)) {
                Err(port) => {
                    let text = bind_error(port);
                    let message = c.termination_message(Some(&text), &format!("{text}\n"), 1);
                    self.exit(c, Exit { code: 1, message });
                }
                Ok(()) => {
                    c.state = State::Running;
                    c.pending_exit = exits_with.map(|code| {
                        let listed: Vec<String> = ports.iter().map(|(p, _)| p.to_string()).collect();
                        let listed = if listed.is_empty() {
                            "nothing".to_string()
                        } else {
                            listed.join(",")
                        };
                        let logs = format!(
                            "probe {log_name}: listening on {listed}\nprobe {log_name}: exiting with code {code}\n"
                        );
                        Exit {
                            code,
                            message: c.termination_message(None, &logs, code),
                        }
                    });
                }
            },
        }
    }

    /// The process ended: its ports close, and the kubelet restarts it or not.
    fn exit(&mut self, c: &mut Ctr, exit: Exit) {
        self.netns.release(&self.info.owner(&c.name));
        c.state = if c.restarts_after(exit.code, self.info.restart_policy) {
            State::CrashLoop(exit)
        } else {
            State::Terminated(exit)
        };
    }

    /// The kubelet stops a container of a finished pod; probe (and, the model
    /// assumes, any image) exits 0 on SIGTERM.
    fn stop(&mut self, c: &mut Ctr) {
        self.netns.release(&self.info.owner(&c.name));
        c.state = match std::mem::replace(&mut c.state, State::Running) {
            State::Running => State::Terminated(Exit {
                code: 0,
                message: None,
            }),
            State::CrashLoop(last) => State::Terminated(last),
            other => other,
        };
    }

    /// After the run: a finished pod has its sidecars stopped, then every
    /// container gets its started and ready flags.
    pub(super) fn settle(&mut self, pod: &mut PodRun) {
        let apps_done = !pod.apps.is_empty()
            && pod
                .apps
                .iter()
                .all(|c| matches!(c.state, State::Terminated(_)));
        let terminal = pod.progress == Progress::InitFailed
            || (pod.progress == Progress::Started
                && apps_done
                && self.info.restart_policy != RestartPolicy::Always);
        if terminal {
            for c in pod.inits.iter_mut().filter(|c| c.kind == Kind::Sidecar) {
                self.stop(c);
            }
        }
        for c in pod.inits.iter_mut().chain(pod.apps.iter_mut()) {
            let (started, ready) = match (c.kind, &c.state) {
                (Kind::Init, State::Running) => (true, false),
                (Kind::Init, State::Terminated(e)) => (false, e.code == 0),
                // A sidecar's start was judged when the kubelet waited on it.
                (Kind::Sidecar, State::Running) => (
                    c.started,
                    c.started && self.probe_passes(c, "readinessProbe"),
                ),
                (Kind::App, State::Running) => {
                    let started = self.probe_passes(c, "startupProbe");
                    (started, started && self.probe_passes(c, "readinessProbe"))
                }
                _ => (false, false),
            };
            c.started = started;
            c.ready = ready;
        }
    }

    /// Whether a container's probe of this kind succeeds now: no probe and
    /// exec probes pass; httpGet, tcpSocket and grpc pass when something
    /// running listens on the (numeric or named) port in the namespace.
    fn probe_passes(&self, c: &Ctr, kind: &str) -> bool {
        let Some(probe) = c.spec.get(kind).filter(|p| p.is_object()) else {
            return true;
        };
        let Some(handler) = ["httpGet", "tcpSocket", "grpc"]
            .iter()
            .find_map(|h| probe.get(*h).filter(|v| v.is_object()))
        else {
            return true;
        };
        probe_port(c.spec, handler).is_some_and(|port| self.netns.listening(port))
    }
}

/// The port a probe handler targets: a number, or the name of one of the
/// container's own ports.
fn probe_port(container: &Value, handler: &Value) -> Option<u16> {
    match handler.get("port")? {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(name) => list(container, "ports")
            .iter()
            .find(|p| str_at(p, "/name") == name)
            .and_then(|p| p.get("containerPort")?.as_u64())
            .and_then(|p| u16::try_from(p).ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kubelet::testing::{condition, container, envoy, line, pod, pod_named, probe, run};
    use crate::kubelet::timestamp::TIMESTAMP;
    use crate::probe::bind_error;

    #[test]
    fn native_sidecar_runs_through_init_and_next_to_the_app() {
        let mut sidecar = envoy("10000");
        sidecar["restartPolicy"] = json!("Always");
        let pod = pod(json!({
            "initContainers": [sidecar, probe("migrate", &["--exit-after-ms", "10"])],
            "containers": [probe("backend", &["--listen", "8080"])],
        }));
        let status = run(&pod);
        assert_eq!(status["phase"], "Running");
        let envoy = container(&status, "initContainerStatuses", "envoy");
        assert_eq!(
            (&envoy["ready"], &envoy["started"]),
            (&json!(true), &json!(true))
        );
        let migrate = container(&status, "initContainerStatuses", "migrate");
        assert_eq!(migrate["state"]["terminated"]["reason"], "Completed");
        assert_eq!(
            (&migrate["ready"], &migrate["started"]),
            (&json!(true), &json!(false))
        );
        assert_eq!(condition(&status, "Initialized")["status"], "True");
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 2/2 Running");
    }

    #[test]
    fn native_sidecar_wins_the_port_over_the_app() {
        let mut sidecar = envoy("10000");
        sidecar["restartPolicy"] = json!("Always");
        let pod = pod(json!({
            "initContainers": [sidecar],
            "containers": [probe("backend", &["--listen", "10000"])],
        }));
        let status = run(&pod);
        assert_eq!(
            line(&pod, &status),
            "backend-5d8f-abcde 1/2 CrashLoopBackOff"
        );
        assert_eq!(
            container(&status, "containerStatuses", "backend")["lastState"]["terminated"]
                ["message"],
            bind_error(10000)
        );
    }

    #[test]
    fn crash_looping_native_sidecar_holds_back_the_pod() {
        let mut first = probe("first", &["--listen", "80"]);
        first["restartPolicy"] = json!("Always");
        let mut second = probe("second", &["--listen", "80"]);
        second["restartPolicy"] = json!("Always");
        let pod = pod(json!({
            "restartPolicy": "Never",
            "initContainers": [first, second, probe("setup", &["--exit-after-ms", "1"])],
            "containers": [probe("app", &[])],
        }));
        let status = run(&pod);
        assert_eq!(status["phase"], "Pending");
        let second = container(&status, "initContainerStatuses", "second");
        // Sidecars restart whatever the pod's policy.
        assert_eq!(second["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(second["restartCount"], 1);
        let setup = container(&status, "initContainerStatuses", "setup");
        assert_eq!(
            setup["state"],
            json!({"waiting": {"reason": "PodInitializing"}})
        );
        assert_eq!(setup["imageID"], "");
        assert!(setup.get("containerID").is_none());
        let app = container(&status, "containerStatuses", "app");
        assert_eq!(app["state"]["waiting"]["reason"], "PodInitializing");
        let initialized = condition(&status, "Initialized");
        assert_eq!(initialized["status"], "False");
        assert_eq!(
            initialized["message"],
            "containers with incomplete status: [second setup]"
        );
        assert_eq!(
            line(&pod, &status),
            "backend-5d8f-abcde 1/3 Init:CrashLoopBackOff"
        );
    }

    #[test]
    fn regular_init_container_that_never_exits_keeps_the_pod_in_init() {
        let pod = pod(json!({
            "initContainers": [probe("wait", &["--listen", "9000"])],
            "containers": [probe("app", &["--listen", "9000"])],
        }));
        let status = run(&pod);
        assert_eq!(status["phase"], "Pending");
        let wait = container(&status, "initContainerStatuses", "wait");
        assert_eq!(wait["state"], json!({"running": {"startedAt": TIMESTAMP}}));
        assert_eq!(
            (&wait["ready"], &wait["started"]),
            (&json!(false), &json!(true))
        );
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 0/1 Init:0/1");
    }

    #[test]
    fn init_container_releases_its_ports_on_exit() {
        let pod = pod(json!({
            "initContainers": [probe("warm", &["--listen", "9000", "--exit-after-ms", "5"])],
            "containers": [probe("app", &["--listen", "9000"])],
        }));
        assert_eq!(line(&pod, &run(&pod)), "backend-5d8f-abcde 1/1 Running");
    }

    #[test]
    fn failing_init_container_by_restart_policy() {
        let spec = |policy: &str| {
            pod(json!({
                "restartPolicy": policy,
                "initContainers": [probe("setup", &["--exit-after-ms", "1", "--exit-code", "4"])],
                "containers": [probe("app", &[])],
            }))
        };
        let retried = spec("OnFailure");
        let status = run(&retried);
        assert_eq!(status["phase"], "Pending");
        let setup = container(&status, "initContainerStatuses", "setup");
        assert_eq!(setup["lastState"]["terminated"]["exitCode"], 4);
        assert_eq!(
            line(&retried, &status),
            "backend-5d8f-abcde 0/1 Init:CrashLoopBackOff"
        );

        let failed = spec("Never");
        let status = run(&failed);
        assert_eq!(status["phase"], "Failed");
        assert_eq!(condition(&status, "Ready")["reason"], "PodFailed");
        assert_eq!(
            condition(&status, "PodReadyToStartContainers")["status"],
            "False"
        );
        assert_eq!(line(&failed, &status), "backend-5d8f-abcde 0/1 Init:Error");
    }

    #[test]
    fn job_with_native_sidecar_succeeds_and_stops_the_sidecar() {
        let mut sidecar = envoy("10000");
        sidecar["restartPolicy"] = json!("Always");
        let pod = pod_named(
            "job-x",
            json!({
                "restartPolicy": "Never",
                "initContainers": [sidecar],
                "containers": [probe("job", &["--exit-after-ms", "10"])],
            }),
        );
        let status = run(&pod);
        assert_eq!(status["phase"], "Succeeded");
        let envoy = container(&status, "initContainerStatuses", "envoy");
        assert_eq!(
            envoy["state"],
            json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": TIMESTAMP,
                                  "finishedAt": TIMESTAMP, "containerID": "containerd://envoy"}})
        );
        assert_eq!(
            (&envoy["ready"], &envoy["started"]),
            (&json!(false), &json!(false))
        );
        let job = container(&status, "containerStatuses", "job");
        assert_eq!(job["state"]["terminated"]["reason"], "Completed");
        let initialized = condition(&status, "Initialized");
        assert_eq!(
            (&initialized["status"], &initialized["reason"]),
            (&json!("True"), &json!("PodCompleted"))
        );
        let ready = condition(&status, "Ready");
        assert_eq!(
            (&ready["status"], &ready["reason"]),
            (&json!("False"), &json!("PodCompleted"))
        );
        assert!(ready.get("message").is_none());
        assert_eq!(
            condition(&status, "PodReadyToStartContainers")["status"],
            "False"
        );
        assert_eq!(line(&pod, &status), "job-x 0/2 Completed");
    }

    #[test]
    fn an_exiting_container_holds_its_ports_while_the_others_start() {
        let pod = pod(json!({"containers": [
            probe("a", &["--listen", "80", "--exit-after-ms", "1"]),
            probe("b", &["--listen", "80"]),
        ]}));
        let status = run(&pod);
        let b = container(&status, "containerStatuses", "b");
        assert_eq!(b["lastState"]["terminated"]["message"], bind_error(80));
    }

    #[test]
    fn readiness_probe_on_a_port_nobody_binds() {
        let mut app = probe("app", &["--listen", "8080"]);
        app["readinessProbe"] = json!({"httpGet": {"path": "/", "port": 9090}});
        let pod = pod(json!({"containers": [app]}));
        let status = run(&pod);
        let app = container(&status, "containerStatuses", "app");
        assert_eq!(app["state"], json!({"running": {"startedAt": TIMESTAMP}}));
        assert_eq!(
            (&app["ready"], &app["started"]),
            (&json!(false), &json!(true))
        );
        assert_eq!(status["phase"], "Running");
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 0/1 Running");
    }

    #[test]
    fn probes_by_name_exec_and_from_a_neighbour() {
        let mut app = probe("app", &["--listen", "8080"]);
        app["ports"] = json!([{"name": "http", "containerPort": 8080}]);
        app["readinessProbe"] = json!({"httpGet": {"port": "http"}});
        app["startupProbe"] = json!({"exec": {"command": ["true"]}});
        // Probes hit the pod IP: a port bound by another container counts.
        let mut watcher = probe("watcher", &[]);
        watcher["readinessProbe"] = json!({"grpc": {"port": 8080}});
        let mut lost = probe("lost", &[]);
        lost["readinessProbe"] = json!({"tcpSocket": {"port": "nope"}});
        let pod = pod(json!({"containers": [app, watcher, lost]}));
        let status = run(&pod);
        assert_eq!(
            container(&status, "containerStatuses", "app")["ready"],
            true
        );
        assert_eq!(
            container(&status, "containerStatuses", "watcher")["ready"],
            true
        );
        assert_eq!(
            container(&status, "containerStatuses", "lost")["ready"],
            false
        );
    }

    #[test]
    fn startup_probe_gates_started_and_a_sidecars_successors() {
        let mut app = probe("app", &[]);
        app["startupProbe"] = json!({"tcpSocket": {"port": 7000}});
        let status = run(&pod(json!({"containers": [app]})));
        let app = container(&status, "containerStatuses", "app");
        assert_eq!(
            (&app["ready"], &app["started"]),
            (&json!(false), &json!(false))
        );

        let mut sidecar = probe("envoy", &["--listen", "10000"]);
        sidecar["restartPolicy"] = json!("Always");
        sidecar["startupProbe"] = json!({"tcpSocket": {"port": 10001}});
        let pod = pod(json!({"initContainers": [sidecar], "containers": [probe("app", &[])]}));
        let status = run(&pod);
        assert_eq!(status["phase"], "Pending");
        let envoy = container(&status, "initContainerStatuses", "envoy");
        assert_eq!(envoy["state"], json!({"running": {"startedAt": TIMESTAMP}}));
        assert_eq!(envoy["started"], false);
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 0/2 Init:0/1");
    }
}
