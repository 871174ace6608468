//! A network namespace: who listens on which port. Containers of a pod
//! share one; hostNetwork pods share the node's.

use std::collections::BTreeMap;

/// A listening socket's identity: port and protocol (10000/TCP and
/// 10000/UDP do not clash).
pub type PortKey = (u16, String);

/// Listening sockets in one network namespace, with their owners.
pub(super) struct Netns {
    pub(super) ports: BTreeMap<PortKey, String>,
}

impl Netns {
    /// Binds all of `ports` for `owner`, or none: the first taken port (in
    /// order) is the one the process would have failed on.
    pub(super) fn bind(&mut self, ports: &[PortKey], owner: &str) -> Result<(), u16> {
        if let Some((port, _)) = ports.iter().find(|k| self.ports.contains_key(*k)) {
            return Err(*port);
        }
        for key in ports {
            self.ports.insert(key.clone(), owner.to_string());
        }
        Ok(())
    }

    pub(super) fn release(&mut self, owner: &str) {
        self.ports.retain(|_, o| o != owner);
    }

    pub(super) fn listening(&self, port: u16) -> bool {
        self.ports.contains_key(&(port, "TCP".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kubelet::testing::{condition, container, envoy, line, pod, probe, run};
    use crate::kubelet::timestamp::TIMESTAMP;
    use crate::probe::PROBE_IMAGE;

    #[test]
    fn sidecar_on_the_apps_port_crash_loops() {
        let pod = pod(json!({"containers": [
            probe("backend", &["--listen", "10000"]),
            envoy("10000"),
        ]}));
        let status = run(&pod);
        assert_eq!(status["phase"], "Running");
        let backend = container(&status, "containerStatuses", "backend");
        assert_eq!(backend["ready"], true);
        assert_eq!(
            backend["state"],
            json!({"running": {"startedAt": TIMESTAMP}})
        );
        assert_eq!(
            container(&status, "containerStatuses", "envoy"),
            &json!({
                "name": "envoy",
                "state": {"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 10s restarting failed container=envoy pod=backend-5d8f-abcde_default(uid-1)",
                }},
                "lastState": {"terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "message": "cannot bind '0.0.0.0:10000': Address already in use",
                    "startedAt": TIMESTAMP,
                    "finishedAt": TIMESTAMP,
                    "containerID": "containerd://envoy",
                }},
                "ready": false,
                "restartCount": 1,
                "image": PROBE_IMAGE,
                "imageID": format!("injector-harness/probe@sha256:{}", "0".repeat(64)),
                "containerID": "containerd://envoy",
                "started": false,
            })
        );
        let ready = condition(&status, "Ready");
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "ContainersNotReady");
        assert_eq!(ready["message"], "containers with unready status: [envoy]");
        assert_eq!(
            line(&pod, &status),
            "backend-5d8f-abcde 1/2 CrashLoopBackOff"
        );
    }

    #[test]
    fn remapped_sidecar_is_ready_next_to_the_app() {
        let pod = pod(json!({"containers": [
            probe("backend", &["--listen", "10000"]),
            envoy("10001"),
        ]}));
        let status = run(&pod);
        assert_eq!(status["phase"], "Running");
        assert_eq!(
            container(&status, "containerStatuses", "envoy")["ready"],
            true
        );
        assert_eq!(condition(&status, "Ready")["status"], "True");
        assert_eq!(condition(&status, "ContainersReady")["status"], "True");
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 2/2 Running");
    }
}
