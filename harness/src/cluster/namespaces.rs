//! Removing namespaces from a real cluster, and waiting until they are gone.
//!
//! Left to itself, kube-controller-manager's namespace controller takes 10
//! to 30 s to remove a namespace that had running pods: it first waits 5 s
//! (its grace for HA apiservers), deletes the content, and while pods are
//! still terminating it looks again only after half their grace period plus
//! a second (16 s for the default 30 s). A suite removes one or two
//! namespaces per scenario, and a `serial` scenario waits for every pending
//! removal, so that wait was a large part of a suite on kind.
//!
//! Here the pods are deleted at once (the namespace is terminating, so no
//! controller can make new ones), and once none is left the namespace is
//! touched: an update makes the controller look again within its 5 s grace
//! instead of at its own later time. Nothing is forced: pods still get
//! their grace period and preStop hooks, and the namespace controller still
//! removes everything else.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};

use crate::wait::Wait;

/// How often the wait looks again.
const POLL: Duration = Duration::from_millis(500);
/// How long after the last touch a namespace still there is touched again
/// (the controller's own grace is 5 s).
const TOUCH_AGAIN: Duration = Duration::from_secs(6);
/// The annotation whose change makes the namespace controller look again.
const TOUCH_ANNOTATION: &str = "injector-harness/removal";

/// Deletes `namespace` if it exists and waits until it is gone, at most
/// `limit`.
pub async fn remove(client: &Client, namespace: &str, limit: Duration) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match namespaces
        .delete(namespace, &DeleteParams::background())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("deleting namespace {namespace}")),
    }
    // Graceful, as the namespace controller would delete them, only sooner.
    pods.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await
        .with_context(|| format!("deleting the pods of namespace {namespace}"))?;
    let what = format!("namespace {namespace} was not deleted (still terminating)");
    let mut wait = Wait::new(what, limit, POLL);
    let mut touched: Option<tokio::time::Instant> = None;
    loop {
        if namespaces.get_opt(namespace).await?.is_none() {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        let due = touched.is_none_or(|t| now.duration_since(t) >= TOUCH_AGAIN);
        if due
            && pods
                .list(&ListParams::default().limit(1))
                .await?
                .items
                .is_empty()
        {
            touch(&namespaces, namespace).await;
            touched = Some(now);
        }
        wait.again().await?;
    }
}

/// Changes an annotation on a terminating namespace, so the namespace
/// controller looks at it again. Best effort: a namespace that went
/// meanwhile, or a refused update, only leaves the controller to its own
/// time.
async fn touch(namespaces: &Api<Namespace>, namespace: &str) {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
        .to_string();
    let patch = serde_json::json!({"metadata": {"annotations": {TOUCH_ANNOTATION: stamp}}});
    let _ = namespaces
        .patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
        .await;
}
