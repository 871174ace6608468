//! The `kubectl get pods` line of a pod: `NAME READY STATUS RESTARTS`.
//!
//! Scenario snapshots assert on what an operator would see
//! (`backend-7d9f-x2x 1/2 CrashLoopBackOff`), computed from the Pod object
//! alone so the same code reads pods from the simulator and from a real
//! apiserver. The rules follow kubectl's pod printer: READY counts regular
//! containers plus native sidecars (restartable init containers), and STATUS
//! is the phase overridden by the first unfinished init container, then by
//! the last regular container with a waiting or terminated reason.
//!
//! Pods are arbitrary JSON here: a missing or wrongly typed field reads as
//! absent, never as a panic.

use serde_json::Value;

/// One row of `kubectl get pods`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PodLine {
    pub name: String,
    /// `ready/total`, e.g. `2/2`.
    pub ready: String,
    pub status: String,
    /// Summed like kubectl does (kept out of [`format_line`]: restart counts
    /// depend on how long the pod has been crashing).
    pub restarts: i64,
}

/// `NAME READY STATUS`, single-spaced; RESTARTS is left out because it is
/// time-dependent.
pub fn format_line(line: &PodLine) -> String {
    format!("{} {} {}", line.name, line.ready, line.status)
}

/// Computes the `kubectl get pods` row of `pod`.
pub fn pod_line(pod: &Value) -> PodLine {
    let status = pod.get("status");
    let phase = text(status, "phase");
    let mut reason = match text(status, "reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let conditions = list(status, "conditions");
    let gated = conditions.iter().any(|c| {
        text(Some(c), "type") == "PodScheduled" && text(Some(c), "reason") == "SchedulingGated"
    });
    if gated {
        reason = "SchedulingGated".to_string();
    }

    let spec = pod.get("spec");
    let init_specs = list(spec, "initContainers");
    let sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| text(Some(c), "name") == name && text(Some(c), "restartPolicy") == "Always")
    };
    let sidecars = init_specs
        .iter()
        .filter(|c| text(Some(c), "restartPolicy") == "Always")
        .count();
    let total = list(spec, "containers").len() + sidecars;
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;

    // Init containers, in order, up to the first one still holding the pod
    // back: it names the status.
    let mut initializing = false;
    for (i, c) in list(status, "initContainerStatuses").iter().enumerate() {
        let count = int(Some(c), "restartCount");
        restarts += count;
        let is_sidecar = sidecar(text(Some(c), "name"));
        if is_sidecar {
            sidecar_restarts += count;
        }
        let state = c.get("state");
        let terminated = state
            .and_then(|s| s.get("terminated"))
            .filter(|t| t.is_object());
        let waiting = state
            .and_then(|s| s.get("waiting"))
            .filter(|w| w.is_object());
        if terminated.is_some_and(|t| int(Some(t), "exitCode") == 0) {
            continue;
        }
        if is_sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
            if flag(c, "ready") {
                ready += 1;
            }
            continue;
        }
        reason = match (terminated, waiting.map(|w| text(Some(w), "reason"))) {
            (Some(t), _) => format!("Init:{}", exit_reason(t)),
            (None, Some(r)) if !r.is_empty() && r != "PodInitializing" => format!("Init:{r}"),
            _ => format!("Init:{i}/{}", init_specs.len()),
        };
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .any(|c| text(Some(c), "type") == "Initialized" && text(Some(c), "status") == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        let mut has_running = false;
        for c in list(status, "containerStatuses").iter().rev() {
            restarts += int(Some(c), "restartCount");
            let state = c.get("state");
            let waiting = state
                .and_then(|s| s.get("waiting"))
                .filter(|w| w.is_object());
            let terminated = state
                .and_then(|s| s.get("terminated"))
                .filter(|t| t.is_object());
            let running = state
                .and_then(|s| s.get("running"))
                .is_some_and(Value::is_object);
            match (waiting.map(|w| text(Some(w), "reason")), terminated) {
                (Some(r), _) if !r.is_empty() => reason = r.to_string(),
                (_, Some(t)) => reason = exit_reason(t),
                _ if running && flag(c, "ready") => {
                    has_running = true;
                    ready += 1;
                }
                _ => {}
            }
        }
        // A finished container next to running ones does not make the pod
        // "Completed" (a Job's app exited while its sidecar still runs).
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| text(Some(c), "type") == "Ready" && text(Some(c), "status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = pod
        .get("metadata")
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|t| !t.is_null());
    if deleting && text(status, "reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    PodLine {
        name: text(pod.get("metadata"), "name").to_string(),
        ready: format!("{ready}/{total}"),
        status: reason,
        restarts,
    }
}

/// A terminated state's reason, or kubectl's stand-in when it has none.
fn exit_reason(terminated: &Value) -> String {
    match text(Some(terminated), "reason") {
        "" => match int(Some(terminated), "signal") {
            0 => format!("ExitCode:{}", int(Some(terminated), "exitCode")),
            signal => format!("Signal:{signal}"),
        },
        r => r.to_string(),
    }
}

fn text<'a>(v: Option<&'a Value>, key: &str) -> &'a str {
    v.and_then(|v| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn int(v: Option<&Value>, key: &str) -> i64 {
    v.and_then(|v| v.get(key))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn list<'a>(v: Option<&'a Value>, key: &str) -> &'a [Value] {
    v.and_then(|v| v.get(key))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn running(name: &str, ready: bool) -> Value {
        json!({"name": name, "ready": ready, "started": ready, "restartCount": 0,
               "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}})
    }

    fn crashing(name: &str, restarts: i64) -> Value {
        json!({"name": name, "ready": false, "started": false, "restartCount": restarts,
               "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
               "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}})
    }

    fn terminated(name: &str, code: i64, reason: &str) -> Value {
        json!({"name": name, "ready": false, "started": false, "restartCount": 0,
               "state": {"terminated": {"exitCode": code, "reason": reason}}})
    }

    fn waiting(name: &str, reason: &str) -> Value {
        json!({"name": name, "ready": false, "started": false, "restartCount": 0,
               "state": {"waiting": {"reason": reason}}})
    }

    fn cond(kind: &str, status: bool) -> Value {
        json!({"type": kind, "status": if status { "True" } else { "False" }})
    }

    fn line(pod: Value) -> String {
        format_line(&pod_line(&pod))
    }

    #[test]
    fn plain_running_pod() {
        let pod = json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"phase": "Running", "conditions": [cond("Ready", true)],
                       "containerStatuses": [running("app", true)]}
        });
        assert_eq!(line(pod), "web 1/1 Running");
    }

    #[test]
    fn native_sidecar_counts_towards_ready() {
        let pod = json!({
            "metadata": {"name": "backend-5d8f-abcde"},
            "spec": {"initContainers": [{"name": "envoy", "restartPolicy": "Always"}],
                     "containers": [{"name": "backend"}]},
            "status": {"phase": "Running",
                       "conditions": [cond("Initialized", true), cond("Ready", true)],
                       "initContainerStatuses": [running("envoy", true)],
                       "containerStatuses": [running("backend", true)]}
        });
        assert_eq!(line(pod), "backend-5d8f-abcde 2/2 Running");
    }

    #[test]
    fn crash_looping_sidecar_container() {
        let pod = json!({
            "metadata": {"name": "backend-5d8f-abcde"},
            "spec": {"containers": [{"name": "backend"}, {"name": "envoy"}]},
            "status": {"phase": "Running", "conditions": [cond("Ready", false)],
                       "containerStatuses": [running("backend", true), crashing("envoy", 4)]}
        });
        let l = pod_line(&pod);
        assert_eq!(format_line(&l), "backend-5d8f-abcde 1/2 CrashLoopBackOff");
        assert_eq!(l.restarts, 4);
    }

    #[test]
    fn the_last_container_with_a_reason_wins() {
        // Containers are read in reverse: the first one listed has the final say.
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                waiting("a", "CreateContainerConfigError"), crashing("b", 1)]}
        });
        assert_eq!(line(pod), "p 0/2 CreateContainerConfigError");
    }

    #[test]
    fn waiting_init_pod() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Pending",
                       "conditions": [cond("Initialized", false)],
                       "initContainerStatuses": [running("setup", false)],
                       "containerStatuses": [waiting("app", "PodInitializing")]}
        });
        assert_eq!(line(pod), "p 0/1 Init:0/1");
    }

    #[test]
    fn second_of_three_init_containers() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                     "containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                terminated("a", 0, "Completed"), waiting("b", "PodInitializing"),
                waiting("c", "PodInitializing")]}
        });
        assert_eq!(line(pod), "p 0/1 Init:1/3");
    }

    #[test]
    fn init_failures() {
        let base = |init: Value| {
            json!({
                "metadata": {"name": "p"},
                "spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "app"}]},
                "status": {"phase": "Pending", "initContainerStatuses": [init],
                           "containerStatuses": [waiting("app", "PodInitializing")]}
            })
        };
        assert_eq!(
            line(base(crashing("setup", 2))),
            "p 0/1 Init:CrashLoopBackOff"
        );
        assert_eq!(
            line(base(terminated("setup", 1, "Error"))),
            "p 0/1 Init:Error"
        );
        assert_eq!(
            line(base(terminated("setup", 3, ""))),
            "p 0/1 Init:ExitCode:3"
        );
        let signalled =
            json!({"name": "setup", "state": {"terminated": {"exitCode": 137, "signal": 9}}});
        assert_eq!(line(base(signalled)), "p 0/1 Init:Signal:9");
        assert_eq!(
            line(base(waiting("setup", "ImagePullBackOff"))),
            "p 0/1 Init:ImagePullBackOff"
        );
    }

    #[test]
    fn init_restarts_count_while_initializing() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [crashing("setup", 3)]}
        });
        assert_eq!(pod_line(&pod).restarts, 3);
    }

    #[test]
    fn crash_looping_native_sidecar_holds_init() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "envoy", "restartPolicy": "Always"}],
                     "containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "conditions": [cond("Initialized", false)],
                       "initContainerStatuses": [crashing("envoy", 1)],
                       "containerStatuses": [waiting("app", "PodInitializing")]}
        });
        assert_eq!(line(pod), "p 0/2 Init:CrashLoopBackOff");
    }

    #[test]
    fn pod_initializing_after_init() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "conditions": [cond("Initialized", true)],
                       "initContainerStatuses": [terminated("setup", 0, "Completed")],
                       "containerStatuses": [waiting("app", "PodInitializing")]}
        });
        assert_eq!(line(pod), "p 0/1 PodInitializing");
    }

    #[test]
    fn completed_job_with_native_sidecar() {
        let pod = json!({
            "metadata": {"name": "job-x"},
            "spec": {"restartPolicy": "Never",
                     "initContainers": [{"name": "envoy", "restartPolicy": "Always"}],
                     "containers": [{"name": "job"}]},
            "status": {"phase": "Succeeded",
                       "conditions": [cond("Initialized", true), cond("Ready", false)],
                       "initContainerStatuses": [terminated("envoy", 0, "Completed")],
                       "containerStatuses": [terminated("job", 0, "Completed")]}
        });
        assert_eq!(line(pod), "job-x 0/2 Completed");
    }

    #[test]
    fn completed_next_to_running_is_running_or_not_ready() {
        let pod = |ready_cond: bool| {
            json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                "status": {"phase": "Running", "conditions": [cond("Ready", ready_cond)],
                           "containerStatuses": [running("a", true), terminated("b", 0, "Completed")]}
            })
        };
        assert_eq!(line(pod(true)), "p 1/2 Running");
        assert_eq!(line(pod(false)), "p 1/2 NotReady");
    }

    #[test]
    fn failed_container_reasons() {
        let pod = |t: Value| {
            json!({
                "metadata": {"name": "p"},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "a"}]},
                "status": {"phase": "Failed", "containerStatuses": [t]}
            })
        };
        assert_eq!(line(pod(terminated("a", 1, "Error"))), "p 0/1 Error");
        assert_eq!(line(pod(terminated("a", 2, ""))), "p 0/1 ExitCode:2");
        let signalled =
            json!({"name": "a", "state": {"terminated": {"exitCode": 143, "signal": 15}}});
        assert_eq!(line(pod(signalled)), "p 0/1 Signal:15");
    }

    #[test]
    fn status_reason_and_scheduling_gates() {
        let evicted = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
                             "status": {"phase": "Failed", "reason": "Evicted"}});
        assert_eq!(line(evicted), "p 0/1 Evicted");
        let gated = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
                           "status": {"phase": "Pending", "conditions": [
                               {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}});
        assert_eq!(line(gated), "p 0/1 SchedulingGated");
    }

    #[test]
    fn deletion() {
        let pod = |phase: &str, reason: &str| {
            json!({"metadata": {"name": "p", "deletionTimestamp": "2025-01-01T00:00:00Z"},
                   "spec": {"containers": [{"name": "a"}]},
                   "status": {"phase": phase, "reason": reason,
                              "containerStatuses": [running("a", true)]}})
        };
        assert_eq!(line(pod("Running", "")), "p 1/1 Terminating");
        assert_eq!(line(pod("Succeeded", "")), "p 1/1 Succeeded");
        assert_eq!(line(pod("Running", "NodeLost")), "p 1/1 Unknown");
    }

    #[test]
    fn restarts_sum_sidecars_and_containers_once_initialized() {
        let mut sidecar = running("envoy", true);
        sidecar["restartCount"] = json!(2);
        let mut app = running("app", true);
        app["restartCount"] = json!(5);
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "setup"}, {"name": "envoy", "restartPolicy": "Always"}],
                     "containers": [{"name": "app"}]},
            "status": {"phase": "Running", "conditions": [cond("Initialized", true), cond("Ready", true)],
                       "initContainerStatuses": [
                           {"name": "setup", "restartCount": 7,
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                           sidecar],
                       "containerStatuses": [app]}
        });
        let l = pod_line(&pod);
        assert_eq!(format_line(&l), "p 2/2 Running");
        // The completed init container's restarts no longer count.
        assert_eq!(l.restarts, 7);
    }

    #[test]
    fn garbage_does_not_panic() {
        for pod in [
            json!(null),
            json!(42),
            json!({"metadata": "x", "spec": [], "status": "y"}),
            json!({"spec": {"containers": "x", "initContainers": [1, null]},
                   "status": {"phase": 3, "initContainerStatuses": [null, {"state": 1}],
                              "containerStatuses": [{"state": {"waiting": 1, "terminated": []}}],
                              "conditions": [null]}}),
        ] {
            let _ = pod_line(&pod);
        }
        let l = pod_line(&json!({}));
        assert_eq!(format_line(&l), " 0/0 ");
    }
}
