//! The vocabulary the model reads from a pod spec, shared by the modules
//! that model a container (`container`) and a pod (`pod`), so neither has
//! to reach into the other for it.

use serde_json::Value;

use super::lookup::str_at;

/// Where a container sits in the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A regular init container: runs to completion, one at a time.
    Init,
    /// An init container with `restartPolicy: Always`: started in init
    /// order, then runs next to the app.
    Sidecar,
    /// A regular container.
    App,
}

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The pod's policy; absent (or unknown) is the API's default, Always.
    pub(super) fn of(pod: &Value) -> RestartPolicy {
        match str_at(pod, "/spec/restartPolicy") {
            "Never" => RestartPolicy::Never,
            "OnFailure" => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }
}
