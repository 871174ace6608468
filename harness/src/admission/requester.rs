//! Who sends an apiserver request, and what the review says of it:
//! `userInfo` and `options`.

use serde_json::{json, Value};

/// Who an apiserver request comes from, as `userInfo` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// The harness itself, with a kind cluster's admin credentials (what a
    /// user with `kind export kubeconfig` sends), by server-side apply.
    Harness,
    /// A kube-controller-manager controller, with its own service account
    /// token (kind runs it with `--use-service-account-credentials`):
    /// `replicaset-controller`, `statefulset-controller`, ...
    Controller(&'static str),
}

/// The field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "injector-harness";

impl Requester {
    /// The controller that makes a pod owned by `kind`, if one does.
    pub fn for_owner(kind: &str) -> Requester {
        match kind {
            "ReplicaSet" => Requester::Controller("replicaset-controller"),
            "StatefulSet" => Requester::Controller("statefulset-controller"),
            "DaemonSet" => Requester::Controller("daemon-set-controller"),
            "Job" => Requester::Controller("job-controller"),
            "ReplicationController" => Requester::Controller("replication-controller"),
            _ => Requester::Harness,
        }
    }

    /// The request's `userInfo`. A service account's also carries its uid
    /// and token credential id on a real cluster, which the sim cannot
    /// know and leaves out.
    pub fn user_info(self) -> Value {
        match self {
            Requester::Harness => json!({
                "username": "kubernetes-admin",
                "groups": ["kubeadm:cluster-admins", "system:authenticated"],
            }),
            Requester::Controller(name) => json!({
                "username": format!("system:serviceaccount:kube-system:{name}"),
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
            }),
        }
    }

    /// The request's `options`: the operation's options kind, with the
    /// harness's field manager when the harness sends it, and `dryRun:
    /// [All]` on a dry run.
    pub fn options(self, operation: &str, dry_run: bool) -> Value {
        let kind = match operation {
            "UPDATE" => "UpdateOptions",
            "DELETE" => "DeleteOptions",
            _ => "CreateOptions",
        };
        let mut options = json!({"apiVersion": "meta.k8s.io/v1", "kind": kind});
        if self == Requester::Harness && operation != "DELETE" {
            options["fieldManager"] = json!(FIELD_MANAGER);
        }
        if dry_run {
            options["dryRun"] = json!(["All"]);
        }
        options
    }
}
