//! A fake kubelet for a real apiserver, in the manner of KWOK: it registers
//! a Node, keeps its Lease and Ready condition fresh, watches the pods bound
//! to it, and writes their status through the API. What the containers do
//! is decided by the same runtime model as the simulated cluster
//! ([`crate::kubelet`]), so READY counts come from real Pod objects while the
//! behaviour matches the sim.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node as NodeObject, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::Client;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::kubelet::{self, Node};

/// The node name the simulated cluster uses too, so snapshots agree.
pub const NODE_NAME: &str = crate::cluster::sim::node::NODE_NAME;
const NODE_IP: &str = "172.18.0.2";
const FIELD_MANAGER: &str = "injector-harness-kubelet";

/// A running fake kubelet; dropping it stops it.
pub struct FakeKubelet {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn node_status() -> Value {
    let t = crate::object::now();
    json!({
        "addresses": [
            {"type": "InternalIP", "address": NODE_IP},
            {"type": "Hostname", "address": NODE_NAME}
        ],
        // The same node the simulated scheduler filters on.
        "capacity": kubelet::node::resources(),
        "allocatable": kubelet::node::resources(),
        "conditions": [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "fake kubelet", "lastHeartbeatTime": t, "lastTransitionTime": t},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "fake kubelet", "lastHeartbeatTime": t, "lastTransitionTime": t},
            {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "fake kubelet", "lastHeartbeatTime": t, "lastTransitionTime": t},
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "fake kubelet is posting ready status", "lastHeartbeatTime": t, "lastTransitionTime": t}
        ],
        "nodeInfo": {
            "architecture": "amd64", "operatingSystem": "linux", "osImage": "injector-harness fake node",
            "kernelVersion": "", "containerRuntimeVersion": "fake://0", "kubeletVersion": "v1.34.4",
            "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""
        },
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
    })
}

/// Registers the node and starts the heartbeat and pod loops. The node
/// holds the harness's images and `preload_images` (every scenario's of the
/// run, as `kind load` leaves them on a real node).
pub async fn start(client: Client, preload_images: &[String]) -> Result<FakeKubelet> {
    let nodes: Api<NodeObject> = Api::all(client.clone());
    // Labels and spec (no taints) as the simulated scheduler sees them.
    let mut node = kubelet::node::node_object(NODE_NAME);
    if let Some(o) = node.as_object_mut() {
        o.remove("status");
    }
    nodes
        .patch(
            NODE_NAME,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&node),
        )
        .await
        .context("registering the fake node")?;
    nodes
        .patch_status(
            NODE_NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": node_status()})),
        )
        .await
        .context("posting the fake node's status")?;
    // The node's own pods (kind's control plane, CoreDNS, kube-proxy), so
    // that the real scheduler counts them against the node as on kind.
    let system: Api<Pod> = Api::namespaced(client.clone(), kubelet::node::NODE_PODS_NAMESPACE);
    for pod in kubelet::node::node_pods(NODE_NAME, crate::probe::PROBE_IMAGE) {
        let name = crate::object::meta_str(&pod, "name").to_string();
        system
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&pod),
            )
            .await
            .with_context(|| {
                format!(
                    "creating the node's own pod {}/{name}",
                    kubelet::node::NODE_PODS_NAMESPACE
                )
            })?;
    }

    let mut tasks = Vec::new();
    {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                if let Err(e) = heartbeat(&client).await {
                    tracing::warn!(error = %e, "fake kubelet heartbeat failed");
                }
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        }));
    }
    let state = Arc::new(Mutex::new(Runtime {
        node: Node::kind_node(
            NODE_NAME,
            NODE_IP,
            preload_images.iter().map(String::as_str),
        ),
        started: BTreeSet::new(),
        next_ip: 5,
    }));
    tasks.push(tokio::spawn(async move {
        if let Err(e) = pod_loop(client, state).await {
            tracing::error!(error = %e, "fake kubelet pod loop stopped");
        }
    }));
    Ok(FakeKubelet { tasks })
}

/// Renews the node Lease and the Ready heartbeat, as the kubelet does, so the
/// node lifecycle controller never taints the node unreachable.
async fn heartbeat(client: &Client) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let t = crate::object::now().replace('Z', ".000000Z");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": NODE_NAME, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": NODE_NAME, "leaseDurationSeconds": 40, "renewTime": t}
    });
    leases
        .patch(
            NODE_NAME,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&lease),
        )
        .await?;
    let nodes: Api<NodeObject> = Api::all(client.clone());
    nodes
        .patch_status(
            NODE_NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": node_status()})),
        )
        .await?;
    Ok(())
}

struct Runtime {
    node: Node,
    /// Pods (by uid) whose containers were started.
    started: BTreeSet<String>,
    next_ip: u32,
}

async fn pod_loop(client: Client, state: Arc<Mutex<Runtime>>) -> Result<()> {
    let pods: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={NODE_NAME}"));
    let mut stream = watcher(pods, config).boxed();
    while let Some(event) = stream.try_next().await.transpose() {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                // The watcher re-lists by itself; note it and carry on.
                tracing::warn!(error = %e, "fake kubelet watch error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                if let Err(e) = handle_pod(&client, &state, pod).await {
                    tracing::warn!(error = %e, "fake kubelet could not update a pod");
                }
            }
            watcher::Event::Delete(pod) => {
                let v = serde_json::to_value(&pod).unwrap_or(Value::Null);
                let mut st = state.lock().await;
                st.node.release_pod(
                    crate::object::namespace(&v),
                    crate::object::meta_str(&v, "name"),
                );
                st.started.remove(crate::object::meta_str(&v, "uid"));
            }
            _ => {}
        }
    }
    Ok(())
}

async fn names_in<K>(client: &Client, ns: &str) -> Result<BTreeSet<String>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    Ok(api
        .list_metadata(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .collect())
}

async fn handle_pod(client: &Client, state: &Arc<Mutex<Runtime>>, pod: Pod) -> Result<()> {
    let v = serde_json::to_value(&pod)?;
    let ns = crate::object::namespace(&v).to_string();
    let name = crate::object::meta_str(&v, "name").to_string();
    let uid = crate::object::meta_str(&v, "uid").to_string();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    if v["metadata"]["deletionTimestamp"].is_string() {
        // The containers "stop" at once; confirm the deletion as the kubelet
        // does, with a zero grace period.
        state.lock().await.node.release_pod(&ns, &name);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let _ = api.delete(&name, &dp).await;
        return Ok(());
    }
    if state.lock().await.started.contains(&uid) {
        return Ok(());
    }
    let config_maps = names_in::<ConfigMap>(client, &ns).await?;
    let secrets = names_in::<Secret>(client, &ns).await?;
    let status = {
        let mut st = state.lock().await;
        if !st.started.insert(uid.clone()) {
            return Ok(());
        }
        let host_network = v["spec"]["hostNetwork"] == true;
        let pod_ip = if host_network {
            NODE_IP.to_string()
        } else {
            st.next_ip += 1;
            format!("10.244.0.{}", st.next_ip % 250 + 2)
        };
        let cm = |n: &str, name: &str| n == ns && config_maps.contains(name);
        let secret = |n: &str, name: &str| n == ns && secrets.contains(name);
        let ctx = kubelet::RunContext {
            config_map_exists: &cm,
            secret_exists: &secret,
            pod_ip,
        };
        kubelet::run_pod(&v, &mut st.node, &ctx)
    };
    let status = restamp(status, &crate::object::now());
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .with_context(|| format!("writing the status of pod {ns}/{name}"))?;
    Ok(())
}

/// The model stamps a fixed placeholder time; a real API object gets now.
fn restamp(v: Value, t: &str) -> Value {
    match v {
        Value::String(s) if s == kubelet::TIMESTAMP => Value::String(t.to_string()),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| restamp(x, t)).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, x)| (k, restamp(x, t))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restamp_replaces_only_the_placeholder() {
        let v = json!({"a": kubelet::TIMESTAMP, "b": ["x", kubelet::TIMESTAMP]});
        assert_eq!(restamp(v, "T"), json!({"a": "T", "b": ["x", "T"]}));
    }
}
