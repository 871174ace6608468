//! One container: where it sits in the pod (`Kind`), its settled state
//! (`State`, `Exit`), and the kubelet's rules for restarts and
//! termination messages (`Ctr`).

use serde_json::Value;

use super::lookup::{str_at, str_or};
use super::spec::{Kind, RestartPolicy};

/// Where the kubelet reads a container's termination message by default;
/// `probe` writes only there.
const TERMINATION_LOG: &str = "/dev/termination-log";

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Exit {
    pub(super) code: i32,
    /// The termination message, as the kubelet would report it.
    pub(super) message: Option<String>,
}

impl Exit {
    pub(super) fn reason(&self) -> &'static str {
        if self.code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

/// A container's settled state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    /// Never started.
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running,
    /// Exited and will not be restarted.
    Terminated(Exit),
    /// Exited and being restarted with back-off (CrashLoopBackOff).
    CrashLoop(Exit),
}

/// One container and where it got to.
#[derive(Debug, Clone)]
pub(super) struct Ctr<'p> {
    pub(super) spec: &'p Value,
    pub(super) name: String,
    pub(super) kind: Kind,
    pub(super) state: State,
    /// An exit the program will make on its own, after binding its ports.
    pub(super) pending_exit: Option<Exit>,
    pub(super) started: bool,
    pub(super) ready: bool,
}

impl<'p> Ctr<'p> {
    pub(super) fn new(spec: &'p Value, kind: Kind, waiting_reason: &str) -> Ctr<'p> {
        Ctr {
            spec,
            name: str_at(spec, "/name").to_string(),
            kind,
            state: State::Waiting {
                reason: waiting_reason.to_string(),
                message: None,
            },
            pending_exit: None,
            started: false,
            ready: false,
        }
    }

    pub(super) fn running(&self) -> bool {
        self.state == State::Running
    }

    /// Whether a process of this container ever ran (it has an ID then).
    pub(super) fn ever_ran(&self) -> bool {
        !matches!(self.state, State::Waiting { .. })
    }

    pub(super) fn restart_count(&self) -> i64 {
        i64::from(matches!(self.state, State::CrashLoop(_)))
    }

    /// Whether the kubelet restarts this container after `code`: sidecars
    /// always, init containers until they succeed (unless the pod says
    /// Never), app containers per the pod's restartPolicy.
    pub(super) fn restarts_after(&self, code: i32, policy: RestartPolicy) -> bool {
        match (self.kind, policy) {
            (Kind::Sidecar, _) => true,
            (_, RestartPolicy::Never) => false,
            (Kind::Init, _) | (Kind::App, RestartPolicy::OnFailure) => code != 0,
            (Kind::App, RestartPolicy::Always) => true,
        }
    }

    /// The termination message the kubelet reports: the termination log if
    /// the program wrote it (probe writes only the default path), else with
    /// FallbackToLogsOnError the log tail of a failed container.
    pub(super) fn termination_message(
        &self,
        file: Option<&str>,
        logs: &str,
        code: i32,
    ) -> Option<String> {
        let path = str_or(self.spec, "/terminationMessagePath", TERMINATION_LOG);
        if let Some(text) = file.filter(|t| !t.is_empty() && path == TERMINATION_LOG) {
            return Some(text.to_string());
        }
        let fallback = str_at(self.spec, "/terminationMessagePolicy") == "FallbackToLogsOnError";
        (fallback && code != 0 && !logs.is_empty()).then(|| logs.to_string())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::kubelet::testing::{container, line, pod, probe, run};
    use crate::probe::bind_error;

    #[test]
    fn exits_under_each_restart_policy() {
        let spec = |policy: &str, code: &str| {
            pod(json!({"restartPolicy": policy, "containers": [
                probe("app", &["--exit-after-ms", "1", "--exit-code", code])]}))
        };
        // Always restarts even a clean exit.
        let status = run(&spec("Always", "0"));
        let app = container(&status, "containerStatuses", "app");
        assert_eq!(app["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(app["lastState"]["terminated"]["reason"], "Completed");
        assert_eq!(status["phase"], "Running");
        // OnFailure: a clean exit is final, a failure restarts.
        assert_eq!(run(&spec("OnFailure", "0"))["phase"], "Succeeded");
        let status = run(&spec("OnFailure", "1"));
        assert_eq!(status["phase"], "Running");
        assert_eq!(
            container(&status, "containerStatuses", "app")["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
        // Never with one container still running: Running.
        let pod = pod(json!({"restartPolicy": "Never", "containers": [
            probe("a", &["--exit-after-ms", "1", "--exit-code", "1"]), probe("b", &[])]}));
        let status = run(&pod);
        assert_eq!(status["phase"], "Running");
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 1/2 Error");
    }

    #[test]
    fn termination_message_follows_path_and_policy() {
        let clash = |extra: Value| {
            let mut b = probe("b", &["--listen", "80"]);
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let status = run(&pod(
                json!({"containers": [probe("a", &["--listen", "80"]), b]}),
            ));
            container(&status, "containerStatuses", "b")["lastState"]["terminated"]
                .get("message")
                .cloned()
        };
        assert_eq!(clash(json!({})), Some(json!(bind_error(80))));
        // The probe writes /dev/termination-log only.
        assert_eq!(clash(json!({"terminationMessagePath": "/tmp/msg"})), None);
        assert_eq!(
            clash(json!({"terminationMessagePath": "/tmp/msg",
                         "terminationMessagePolicy": "FallbackToLogsOnError"})),
            Some(json!(format!("{}\n", bind_error(80))))
        );
        // A plain failing exit leaves only logs behind.
        let mut c = probe(
            "job",
            &["--name", "j", "--exit-after-ms", "1", "--exit-code", "5"],
        );
        c["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
        let status = run(&pod(json!({"restartPolicy": "Never", "containers": [c]})));
        assert_eq!(
            container(&status, "containerStatuses", "job")["state"]["terminated"]["message"],
            "probe j: listening on nothing\nprobe j: exiting with code 5\n"
        );
    }
}
