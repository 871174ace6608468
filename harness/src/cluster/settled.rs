//! When a pod on a real kubelet has settled: nothing more will happen to it
//! without time passing. A crash-looping container counts once it has
//! restarted and waits in back-off; an unschedulable pod once the scheduler
//! has said so; a container that runs but never becomes ready once it has
//! had time to pass its probes.
//!
//! A crash loop's back-off shows in two ways. The kubelet writes `waiting:
//! CrashLoopBackOff` only when it syncs the pod during the back-off; a pod
//! that nothing syncs (one container, no probes) keeps showing the exit,
//! `terminated`, until the sync just before the restart (on kind v1.37.2:
//! 13 s and 21 s of `terminated`, then `CrashLoopBackOff` for about 0.1 s).
//! Settling counts both as the back-off, and [`as_backing_off`] rewrites the
//! second into the first, so a snapshot shows one state whichever was seen.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde_json::Value;

/// How long a running container may stay not ready before that counts as
/// its steady state (a readiness probe that keeps failing).
pub const NOT_READY_GRACE: Duration = Duration::from_secs(20);

/// How long a container must have run before running counts as its steady
/// state. One that fails at once (a bind error) shows `running`, ready when
/// it has no probe, until the kubelet's next relist (every second) and
/// status write report the exit: on kind v1.37.2 with 8 scenarios at once
/// that took longer than the 1.5 s quiet period, and hostnetwork-crashloop
/// was snapshotted `Running, ready` (CI check, 2026-12-05).
pub const MIN_UPTIME: Duration = Duration::from_secs(4);

/// Waiting reasons a container stays in until something outside it changes.
/// `ErrImagePull` is not one: it is the first failed pull, which the
/// kubelet's next sync turns into `ImagePullBackOff` (and each retry turns
/// back for a moment); the back-off is the steady state, as
/// `CrashLoopBackOff` is for a crash, so a snapshot shows one state.
const STUCK_WAITING: &[&str] = &[
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Whether `pod`, as a real kubelet reports it, is settled at `now`.
/// `heard` holds the container IDs of running probe containers whose log
/// says they serve (see [`unheard_probes`]); the caller also puts there the
/// ones whose log it could not read, so that settling falls back to the
/// uptime rule rather than waiting for ever.
pub fn real_pod(pod: &Value, now: SystemTime, heard: &HashSet<String>) -> bool {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return false;
    }
    let status = &pod["status"];
    if matches!(status["phase"].as_str(), Some("Succeeded" | "Failed")) {
        return true;
    }
    let unschedulable = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["type"] == "PodScheduled" && c["status"] == "False" && c["reason"] == "Unschedulable"
        });
    if unschedulable {
        return true;
    }
    if !status["startTime"].is_string() {
        return false;
    }
    let spec = &pod["spec"];
    let pod_restarts = spec["restartPolicy"].as_str().unwrap_or("Always");
    let init_specs = spec["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let inits = status["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let regulars = status["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if inits.len() < init_specs.len() {
        return false;
    }
    for s in &inits {
        let name = s["name"].as_str().unwrap_or("");
        let native_sidecar = init_specs
            .iter()
            .any(|c| c["name"] == name && c["restartPolicy"] == "Always");
        let policy = if native_sidecar {
            "Always"
        } else {
            init_policy(pod_restarts)
        };
        if stuck(s) || backing_off(s, policy) {
            // The containers after it never start: the pod stays here.
            return true;
        }
        let ok = if native_sidecar {
            container_done(s, "Always", now) && !unheard(&spec["initContainers"], s, heard)
        } else {
            s["state"]["terminated"]["exitCode"] == 0
        };
        if !ok {
            return false;
        }
    }
    let expected = spec["containers"].as_array().map_or(0, Vec::len);
    if regulars.len() < expected || regulars.is_empty() {
        return false;
    }
    if regulars.iter().all(|s| exited_for_good(s, pod_restarts)) {
        // Every app container has finished and none will restart: the
        // kubelet stops the native sidecars and then writes the pod's
        // terminal phase, checked above. Until it has, the pod still
        // changes by itself (a Job pod with an injected native sidecar was
        // snapshotted with the sidecar running, once in CI).
        return false;
    }
    regulars.iter().all(|s| {
        container_done(s, pod_restarts, now)
            && !will_exit(&spec["containers"], s)
            && !unheard(&spec["containers"], s, heard)
    })
}

/// A container that exited and that `restart_policy` does not restart.
fn exited_for_good(s: &Value, restart_policy: &str) -> bool {
    s["state"]["terminated"].as_object().is_some_and(|t| {
        !restarts(
            restart_policy,
            t.get("exitCode").and_then(Value::as_i64).unwrap_or(1),
        )
    })
}

/// The spec of the container `s` reports on, when it runs the harness's
/// probe program with the probe's own arguments.
fn probe_spec<'a>(specs: &'a Value, s: &Value) -> Option<&'a Value> {
    let c = specs
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == s["name"])?;
    let image = c["image"].as_str().unwrap_or("");
    (c["command"].is_null() && injector_probe::is_probe_image(image)).then_some(c)
}

/// The running probe containers of `pod` that are not in `heard`, as
/// (container name, container ID): the ones whose log the caller should
/// read with [`injector_probe::says_serving`] before [`real_pod`] can
/// count them as settled.
///
/// A probe whose bind fails shows `running`, and ready when it has no
/// readiness probe, until the kubelet's next relist and status write report
/// the exit. On a loaded node that took longer than [`MIN_UPTIME`]
/// (port-conflict-10000 snapshotted `2/2 Running`, in CI). The probe's own
/// log does not wait for the kubelet: it says "listening" only once every
/// port is bound.
pub fn unheard_probes(pod: &Value, heard: &HashSet<String>) -> Vec<(String, String)> {
    let spec = &pod["spec"];
    let mut out = Vec::new();
    for (statuses, specs) in [
        ("initContainerStatuses", "initContainers"),
        ("containerStatuses", "containers"),
    ] {
        for s in pod["status"][statuses].as_array().into_iter().flatten() {
            if unheard(&spec[specs], s, heard) {
                out.push((
                    s["name"].as_str().unwrap_or("").to_string(),
                    s["containerID"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    out
}

/// A running probe container whose serving line has not been heard.
fn unheard(specs: &Value, s: &Value, heard: &HashSet<String>) -> bool {
    if s["state"]["running"].is_null() || probe_spec(specs, s).is_none() {
        return false;
    }
    s["containerID"]
        .as_str()
        .is_some_and(|id| !heard.contains(id))
}

/// A running container of the harness's own probe program that was told to
/// exit (`--exit-after-ms`): its exit is the next thing the kubelet will
/// report, and it reports it up to a PLEG relist plus a status sync later,
/// which on a loaded node outlasted the quiet period (generate-name's Job
/// pod, 200 ms of life, was snapshotted Running, ready, once in a kind run
/// of all scenarios 8 at a time). Other programs' plans are unknown.
fn will_exit(specs: &Value, s: &Value) -> bool {
    if s["state"]["running"].is_null() {
        return false;
    }
    let Some(c) = probe_spec(specs, s) else {
        return false;
    };
    let args: Vec<String> = c["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    injector_probe::ProbeArgs::parse(&args).is_ok_and(|a| a.exit_after_ms.is_some())
}

/// A container waiting where only a change outside it would move it on,
/// including crash-loop back-off after at least one restart.
fn stuck(s: &Value) -> bool {
    let reason = s["state"]["waiting"]["reason"].as_str().unwrap_or("");
    (reason == "CrashLoopBackOff" && s["restartCount"].as_i64().unwrap_or(0) >= 1)
        || STUCK_WAITING.contains(&reason)
}

/// The restart policy a regular init container runs under: restarted on
/// failure unless the pod says Never.
fn init_policy(pod_restarts: &str) -> &'static str {
    if pod_restarts == "Never" {
        "Never"
    } else {
        "OnFailure"
    }
}

/// Whether the kubelet restarts a container that exited with `code`.
fn restarts(restart_policy: &str, code: i64) -> bool {
    match restart_policy {
        "Never" => false,
        "OnFailure" => code != 0,
        _ => true,
    }
}

/// A container that exited after at least one restart and will be
/// restarted: the kubelet is backing off, though it reports the exit until
/// it next syncs the pod (see the module doc).
fn backing_off(s: &Value, restart_policy: &str) -> bool {
    let Some(t) = s["state"]["terminated"].as_object() else {
        return false;
    };
    let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(1);
    s["restartCount"].as_i64().unwrap_or(0) >= 1 && restarts(restart_policy, code)
}

/// Rewrites each container of `pod` that [`backing_off`] as the kubelet
/// reports it at its next sync: waiting in `CrashLoopBackOff`, the exit as
/// its last state.
pub fn as_backing_off(pod: &mut Value) {
    let spec = pod["spec"].clone();
    let pod_restarts = spec["restartPolicy"]
        .as_str()
        .unwrap_or("Always")
        .to_string();
    for (key, specs) in [
        ("initContainerStatuses", "initContainers"),
        ("containerStatuses", "containers"),
    ] {
        let Some(statuses) = pod
            .pointer_mut(&format!("/status/{key}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for s in statuses {
            let name = s["name"].clone();
            let policy = if key == "containerStatuses" {
                pod_restarts.as_str()
            } else if spec[specs]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["name"] == name && c["restartPolicy"] == "Always")
            {
                "Always"
            } else {
                init_policy(&pod_restarts)
            };
            if backing_off(s, policy) {
                let exit = s["state"].take();
                s["lastState"] = exit;
                s["state"] = serde_json::json!({"waiting": {"reason": "CrashLoopBackOff"}});
            }
        }
    }
}

fn container_done(s: &Value, restart_policy: &str, now: SystemTime) -> bool {
    if stuck(s) || backing_off(s, restart_policy) {
        return true;
    }
    let state = &s["state"];
    if let Some(running) = state["running"].as_object() {
        let up = running
            .get("startedAt")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| now.duration_since(SystemTime::from(t)).unwrap_or_default());
        if s["ready"] == true {
            return up.is_some_and(|up| up >= MIN_UPTIME);
        }
        return up.is_some_and(|up| up >= NOT_READY_GRACE);
    }
    if let Some(t) = state["terminated"].as_object() {
        // Under `Always` the kubelet restarts it; under `OnFailure` only a
        // failure is restarted.
        let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(1);
        return match restart_policy {
            "Never" => true,
            "OnFailure" => code == 0,
            _ => false,
        };
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_probe_told_to_exit_is_not_settled_while_it_runs() {
        let now = at("2026-01-01T00:01:00Z");
        let running = json!([{"name": "job", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2026-01-01T00:00:50Z"}}}]);
        let spec = |args: Value| json!([{"name": "job", "image": injector_probe::PROBE_IMAGE, "args": args}]);
        let exits = spec(json!(["--exit-after-ms", "200", "--exit-code", "0"]));
        let serves = spec(json!(["--listen", "8080"]));
        assert!(!real_pod(
            &pod(exits.clone(), running.clone()),
            now,
            &none()
        ));
        assert!(real_pod(&pod(serves, running.clone()), now, &none()));
        // Another image's plans are unknown: running and ready is settled.
        let other = json!([{"name": "job", "image": "example.test/job:1", "args": ["--exit-after-ms", "200"]}]);
        assert!(real_pod(&pod(other, running), now, &none()));
        // Once it has exited, the exit settles it as before.
        let mut done = pod(
            exits,
            json!([{"name": "job", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]),
        );
        done["spec"]["restartPolicy"] = json!("Never");
        // ... once the kubelet has written the pod's phase.
        assert!(!real_pod(&done, now, &none()));
        done["status"]["phase"] = json!("Succeeded");
        assert!(real_pod(&done, now, &none()));
    }

    fn none() -> HashSet<String> {
        HashSet::new()
    }

    /// What CI saw on kind: the probe that lost the bind for 10000 reported
    /// running and ready, up 50 s by the kubelet's word, while its log
    /// already said `cannot bind`.
    #[test]
    fn a_running_probe_is_settled_only_once_its_log_says_it_serves() {
        let now = at("2026-01-01T00:01:00Z");
        let spec = json!([{"name": "envoy", "image": injector_probe::PROBE_IMAGE, "args": ["--listen", "10000"]}]);
        let running = |id: &str| {
            json!([{"name": "envoy", "ready": true, "restartCount": 0, "containerID": id,
                "state": {"running": {"startedAt": "2026-01-01T00:00:10Z"}}}])
        };
        let p = pod(spec.clone(), running("containerd://one"));
        assert_eq!(
            unheard_probes(&p, &none()),
            vec![("envoy".to_string(), "containerd://one".to_string())]
        );
        assert!(!real_pod(&p, now, &none()));
        let heard: HashSet<String> = ["containerd://one".to_string()].into();
        assert!(unheard_probes(&p, &heard).is_empty());
        assert!(real_pod(&p, now, &heard));
        // A restarted container is a new instance: the earlier one's log
        // does not count for it.
        let again = pod(spec, running("containerd://two"));
        assert!(!real_pod(&again, now, &heard));
        // Other images, and the probe image running another command, keep
        // the uptime rule.
        let other = json!([{"name": "envoy", "image": "example.test/envoy:1"}]);
        assert!(real_pod(
            &pod(other, running("containerd://three")),
            now,
            &none()
        ));
        let command = json!([{"name": "envoy", "image": injector_probe::PROBE_IMAGE, "command": ["/bin/true"]}]);
        assert!(real_pod(
            &pod(command, running("containerd://four")),
            now,
            &none()
        ));
    }

    #[test]
    fn a_native_sidecar_probe_must_be_heard_too() {
        let now = at("2026-01-01T00:01:00Z");
        let mut p = pod(
            json!([{"name": "app"}]),
            json!([{"name": "app", "ready": true, "restartCount": 0, "containerID": "c://app",
                "state": {"running": {"startedAt": "2026-01-01T00:00:10Z"}}}]),
        );
        p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always",
            "image": injector_probe::PROBE_IMAGE, "args": ["--listen", "15001"]}]);
        p["status"]["initContainerStatuses"] = json!([{"name": "proxy", "ready": true, "restartCount": 0,
            "containerID": "c://proxy", "state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}}}]);
        assert_eq!(
            unheard_probes(&p, &none()),
            vec![("proxy".to_string(), "c://proxy".to_string())]
        );
        assert!(!real_pod(&p, now, &none()));
        assert!(real_pod(&p, now, &["c://proxy".to_string()].into()));
    }

    fn at(rfc3339: &str) -> SystemTime {
        SystemTime::from(rfc3339.parse::<jiff::Timestamp>().unwrap())
    }

    fn pod(containers: Value, statuses: Value) -> Value {
        json!({
            "metadata": {"name": "p"},
            "spec": {"containers": containers},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z", "containerStatuses": statuses}
        })
    }

    #[test]
    fn a_crash_loop_is_settled_only_after_a_restart() {
        let c = json!([{"name": "app"}, {"name": "envoy"}]);
        let ready = json!({"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}});
        let first_crash = json!({"name": "envoy", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "reason": "Error"}}});
        let backing_off = json!({"name": "envoy", "ready": false, "restartCount": 1,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}});
        let now = at("2026-01-01T00:00:05Z");
        assert!(!real_pod(
            &pod(c.clone(), json!([ready, first_crash])),
            now,
            &none()
        ));
        assert!(real_pod(&pod(c, json!([ready, backing_off])), now, &none()));
    }

    /// What kind v1.37.2 showed for a one-container pod with no probes whose
    /// container fails at once: `terminated` through the back-off.
    #[test]
    fn a_crash_loop_reported_as_its_exit_is_the_back_off() {
        let c = json!([{"name": "agent"}]);
        let exited = |restarts: i64| {
            json!([{"name": "agent", "ready": false, "restartCount": restarts,
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "first"}},
                "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "cannot bind"}}}])
        };
        let now = at("2026-01-01T00:00:05Z");
        // The first exit is restarted at once: not yet backing off.
        assert!(!real_pod(&pod(c.clone(), exited(0)), now, &none()));
        let mut p = pod(c.clone(), exited(1));
        assert!(real_pod(&p, now, &none()));
        as_backing_off(&mut p);
        let s = &p["status"]["containerStatuses"][0];
        assert_eq!(
            s["state"],
            json!({"waiting": {"reason": "CrashLoopBackOff"}})
        );
        assert_eq!(s["lastState"]["terminated"]["message"], "cannot bind");
        assert_eq!(
            crate::snapshot::container_state(s),
            "CrashLoopBackOff: cannot bind"
        );
        assert_eq!(crate::status::pod_line(&p).status, "CrashLoopBackOff");

        // Under Never the exit is final, and nothing is rewritten.
        let mut done = pod(c, exited(1));
        done["spec"]["restartPolicy"] = json!("Never");
        let before = done.clone();
        as_backing_off(&mut done);
        assert_eq!(done, before);
    }

    #[test]
    fn an_image_pull_failure_is_settled_once_the_kubelet_backs_off() {
        let c = json!([{"name": "app"}, {"name": "envoy"}]);
        let ready = json!({"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}});
        let waiting = |reason: &str| {
            json!({"name": "envoy", "ready": false, "restartCount": 0,
                   "state": {"waiting": {"reason": reason, "message": "..."}}})
        };
        let now = at("2026-01-01T00:00:05Z");
        let first_failure = pod(c.clone(), json!([ready.clone(), waiting("ErrImagePull")]));
        assert!(!real_pod(&first_failure, now, &none()));
        let backing_off = pod(
            c.clone(),
            json!([ready.clone(), waiting("ImagePullBackOff")]),
        );
        assert!(real_pod(&backing_off, now, &none()));
        let never = pod(c, json!([ready, waiting("ErrImageNeverPull")]));
        assert!(real_pod(&never, now, &none()));
    }

    #[test]
    fn a_starting_pod_is_not_settled() {
        let c = json!([{"name": "app"}]);
        let creating = json!({"name": "app", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}});
        let now = at("2026-01-01T00:00:05Z");
        assert!(!real_pod(&pod(c.clone(), json!([creating])), now, &none()));
        // Fewer statuses than containers: the kubelet has not reported yet.
        assert!(!real_pod(&pod(c, json!([])), now, &none()));
        let no_start = json!({"metadata": {}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}});
        assert!(!real_pod(&no_start, now, &none()));
    }

    #[test]
    fn a_container_that_just_started_is_not_settled_yet() {
        let c = json!([{"name": "agent"}]);
        let running = json!([{"name": "agent", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]);
        assert!(!real_pod(
            &pod(c.clone(), running.clone()),
            at("2026-01-01T00:00:01Z"),
            &none()
        ));
        assert!(!real_pod(
            &pod(c.clone(), running.clone()),
            at("2026-01-01T00:00:03Z"),
            &none()
        ));
        assert!(real_pod(
            &pod(c.clone(), running.clone()),
            at("2026-01-01T00:00:04Z"),
            &none()
        ));
        // Without a start time it never counts as settled by uptime.
        let unknown =
            json!([{"name": "agent", "ready": true, "restartCount": 0, "state": {"running": {}}}]);
        assert!(!real_pod(
            &pod(c, unknown),
            at("2026-01-01T00:01:00Z"),
            &none()
        ));
    }

    #[test]
    fn not_ready_counts_as_settled_after_the_grace_period() {
        let c = json!([{"name": "app"}]);
        let running = json!([{"name": "app", "ready": false, "restartCount": 0,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]);
        assert!(!real_pod(
            &pod(c.clone(), running.clone()),
            at("2026-01-01T00:00:10Z"),
            &none()
        ));
        assert!(real_pod(
            &pod(c, running),
            at("2026-01-01T00:00:21Z"),
            &none()
        ));
    }

    #[test]
    fn unschedulable_and_finished_pods_are_settled_and_terminating_ones_are_not() {
        let now = at("2026-01-01T00:00:05Z");
        let pending = json!({"metadata": {}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}});
        assert!(real_pod(&pending, now, &none()));
        let done = json!({"metadata": {}, "spec": {}, "status": {"phase": "Succeeded"}});
        assert!(real_pod(&done, now, &none()));
        let deleting = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:04Z"}, "spec": {}, "status": {"phase": "Succeeded"}});
        assert!(!real_pod(&deleting, now, &none()));
    }

    #[test]
    fn init_containers_gate_the_pod() {
        let now = at("2026-01-01T00:00:05Z");
        let mut p = pod(
            json!([{"name": "app"}]),
            json!([{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]),
        );
        p["spec"]["initContainers"] =
            json!([{"name": "init"}, {"name": "proxy", "restartPolicy": "Always"}]);
        // The first init container crash-loops: nothing after it will start.
        p["status"]["initContainerStatuses"] = json!([
            {"name": "init", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            {"name": "proxy", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
        ]);
        assert!(real_pod(&p, now, &none()));
        // The init container still runs: not settled.
        p["status"]["initContainerStatuses"][0] = json!({"name": "init", "ready": false, "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:04Z"}}});
        assert!(!real_pod(&p, now, &none()));
    }

    #[test]
    fn a_job_pod_that_completed_is_settled_under_never_but_not_under_always() {
        let now = at("2026-01-01T00:00:05Z");
        let statuses = json!([{"name": "app", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
        let mut p = pod(json!([{"name": "app"}]), statuses);
        p["spec"]["restartPolicy"] = json!("Never");
        // The app has finished, but the kubelet has not yet written the
        // pod's phase (it stops native sidecars first): still changing.
        assert!(!real_pod(&p, now, &none()));
        p["status"]["phase"] = json!("Succeeded");
        assert!(real_pod(&p, now, &none()));
        p["status"]["phase"] = json!("Running");
        p["spec"]["restartPolicy"] = json!("Always");
        assert!(!real_pod(&p, now, &none()));
    }
}
