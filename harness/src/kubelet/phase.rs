//! The pod's phase and the five conditions the kubelet maintains, from how
//! far the pod got and where its containers are.

use serde_json::{Map, Value};

use super::container::State;
use super::lookup::str_at;
use super::pod::{PodInfo, PodRun, Progress};
use super::spec::{Kind, RestartPolicy};
use super::timestamp::TIMESTAMP;

/// The pod phase, by the kubelet's rules: Pending until init is done and
/// every app container has been started; then Running while anything runs
/// or restarts; Succeeded or Failed once all app containers have exited for
/// good.
pub(super) fn phase(pod: &PodRun, policy: RestartPolicy) -> &'static str {
    match pod.progress {
        Progress::NoSandbox | Progress::Initializing => return "Pending",
        Progress::InitFailed => return "Failed",
        Progress::Started => {}
    }
    let sidecars_running = pod
        .inits
        .iter()
        .filter(|c| c.kind == Kind::Sidecar && c.running())
        .count();
    let mut running = sidecars_running;
    let (mut waiting, mut stopped, mut succeeded) = (0, 0, 0);
    for c in &pod.apps {
        match &c.state {
            State::Running => running += 1,
            State::Waiting { .. } => waiting += 1,
            State::CrashLoop(_) => stopped += 1,
            State::Terminated(e) => {
                stopped += 1;
                succeeded += usize::from(e.code == 0);
            }
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped == 0 {
        "Pending"
    } else if policy == RestartPolicy::Always {
        "Running"
    } else if stopped == succeeded {
        "Succeeded"
    } else if policy == RestartPolicy::Never {
        "Failed"
    } else {
        "Running"
    }
}

/// The five conditions the kubelet maintains, in the order it lists them.
pub(super) fn conditions(info: &PodInfo, pod: &PodRun, phase: &str) -> Vec<Value> {
    let generation = info
        .pod
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let condition = |kind: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let mut c = Map::new();
        c.insert("type".into(), kind.into());
        if let Some(g) = generation {
            c.insert("observedGeneration".into(), g.into());
        }
        c.insert("status".into(), if ok { "True" } else { "False" }.into());
        c.insert("lastProbeTime".into(), Value::Null);
        c.insert("lastTransitionTime".into(), TIMESTAMP.into());
        if let Some(r) = reason {
            c.insert("reason".into(), r.into());
        }
        if let Some(m) = message {
            c.insert("message".into(), m.into());
        }
        Value::Object(c)
    };
    let terminal_reason = match phase {
        "Succeeded" => Some("PodCompleted"),
        "Failed" => Some("PodFailed"),
        _ => None,
    };

    let sandbox = pod.progress != Progress::NoSandbox && terminal_reason.is_none();

    let app_started = pod
        .apps
        .iter()
        .any(|c| matches!(c.state, State::Running | State::Terminated(_)));
    let incomplete: Vec<&str> = pod
        .inits
        .iter()
        .filter(|c| match c.kind {
            Kind::Sidecar => !c.started,
            _ => !c.ready,
        })
        .map(|c| c.name.as_str())
        .collect();
    let initialized = if phase == "Succeeded" {
        condition("Initialized", true, Some("PodCompleted"), None)
    } else if pod.inits.is_empty() || app_started || incomplete.is_empty() {
        condition("Initialized", true, None, None)
    } else {
        let message = format!(
            "containers with incomplete status: [{}]",
            incomplete.join(" ")
        );
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(message),
        )
    };

    let unready: Vec<&str> = pod
        .inits
        .iter()
        .filter(|c| c.kind == Kind::Sidecar)
        .chain(&pod.apps)
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let (containers_ready, ready) = if let Some(reason) = terminal_reason {
        (
            condition("ContainersReady", false, Some(reason), None),
            condition("Ready", false, Some(reason), None),
        )
    } else if !unready.is_empty() {
        let message = format!("containers with unready status: [{}]", unready.join(" "));
        (
            condition(
                "ContainersReady",
                false,
                Some("ContainersNotReady"),
                Some(message.clone()),
            ),
            condition("Ready", false, Some("ContainersNotReady"), Some(message)),
        )
    } else {
        let gates = unmet_readiness_gates(info.pod);
        let ready = if gates.is_empty() {
            condition("Ready", true, None, None)
        } else {
            condition(
                "Ready",
                false,
                Some("ReadinessGatesNotReady"),
                Some(gates.join(", ")),
            )
        };
        (condition("ContainersReady", true, None, None), ready)
    };

    vec![
        condition("PodReadyToStartContainers", sandbox, None, None),
        initialized,
        ready,
        containers_ready,
        condition("PodScheduled", true, None, None),
    ]
}

/// Readiness gates whose condition (set by some controller, so read from the
/// pod's current status) is missing or not True, in the kubelet's words.
fn unmet_readiness_gates(pod: &Value) -> Vec<String> {
    let current = pod.pointer("/status/conditions").and_then(Value::as_array);
    let gates = pod
        .pointer("/spec/readinessGates")
        .and_then(Value::as_array);
    gates
        .into_iter()
        .flatten()
        .filter_map(|g| {
            let kind = str_at(g, "/conditionType");
            let found = current
                .into_iter()
                .flatten()
                .find(|c| str_at(c, "/type") == kind);
            match found.map(|c| str_at(c, "/status")) {
                None => Some(format!(
                    "corresponding condition of pod readiness gate \"{kind}\" does not exist."
                )),
                Some("True") => None,
                Some(status) => Some(format!(
                    "the status of pod readiness gate \"{kind}\" is not \"True\", but {status}"
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kubelet::testing::{condition, container, line, pod, pod_named, probe, run};

    #[test]
    fn failing_job_fails() {
        let pod = pod_named(
            "job-x",
            json!({
                "restartPolicy": "Never",
                "containers": [probe("job", &["--exit-after-ms", "10", "--exit-code", "3"])],
            }),
        );
        let status = run(&pod);
        assert_eq!(status["phase"], "Failed");
        assert_eq!(
            container(&status, "containerStatuses", "job")["state"]["terminated"]["exitCode"],
            3
        );
        assert_eq!(line(&pod, &status), "job-x 0/1 Error");
    }

    #[test]
    fn readiness_gates_hold_ready_but_not_containers_ready() {
        let mut pod = pod(
            json!({"readinessGates": [{"conditionType": "example.com/lb"}],
                                 "containers": [probe("a", &[])]}),
        );
        let status = run(&pod);
        assert_eq!(condition(&status, "ContainersReady")["status"], "True");
        let ready = condition(&status, "Ready");
        assert_eq!(ready["reason"], "ReadinessGatesNotReady");
        assert_eq!(
            ready["message"],
            "corresponding condition of pod readiness gate \"example.com/lb\" does not exist."
        );
        pod["status"] = json!({"conditions": [{"type": "example.com/lb", "status": "True"}]});
        assert_eq!(condition(&run(&pod), "Ready")["status"], "True");
    }
}
