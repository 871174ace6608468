//! The pod as the runtime sees it: what is read from it once (`PodInfo`),
//! and its containers with how far the kubelet got (`PodRun`, `Progress`).

use serde_json::Value;

use super::container::Ctr;
use super::env::Facts;
use super::lookup::{list, str_at, str_or};
use super::node_state::Node;
use super::run_context::RunContext;
use super::spec::{Kind, RestartPolicy};

/// What `run_pod` reads from the pod once.
pub(super) struct PodInfo<'p> {
    pub(super) pod: &'p Value,
    pub(super) name: &'p str,
    pub(super) namespace: &'p str,
    uid: &'p str,
    pub(super) restart_policy: RestartPolicy,
    pub(super) host_network: bool,
    pub(super) facts: Facts,
}

impl<'p> PodInfo<'p> {
    pub(super) fn read(pod: &'p Value, node: &Node, ctx: &RunContext) -> PodInfo<'p> {
        let host_network = pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true);
        let restart_policy = RestartPolicy::of(pod);
        let node_name = match str_at(pod, "/spec/nodeName") {
            "" => node.name.clone(),
            n => n.to_string(),
        };
        PodInfo {
            pod,
            name: str_at(pod, "/metadata/name"),
            namespace: str_or(pod, "/metadata/namespace", "default"),
            uid: str_at(pod, "/metadata/uid"),
            restart_policy,
            host_network,
            facts: Facts {
                pod_ip: if host_network {
                    node.ip.clone()
                } else {
                    ctx.pod_ip.clone()
                },
                host_ip: node.ip.clone(),
                node_name,
            },
        }
    }

    /// The pod as the kubelet's messages name it: `name_namespace(uid)`.
    pub(super) fn label(&self) -> String {
        format!("{}_{}({})", self.name, self.namespace, self.uid)
    }

    pub(super) fn owner(&self, container: &str) -> String {
        format!("{}/{}/{}", self.namespace, self.name, container)
    }
}

/// How far the kubelet got with the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Progress {
    /// Volumes could not be mounted: no sandbox, nothing started.
    NoSandbox,
    /// An init container (or a sidecar's start) holds the pod back.
    Initializing,
    /// A regular init container failed under restartPolicy Never.
    InitFailed,
    /// Init is done and the app containers were started.
    Started,
}

/// All containers of the pod and how far the pod got.
pub(super) struct PodRun<'p> {
    pub(super) inits: Vec<Ctr<'p>>,
    pub(super) apps: Vec<Ctr<'p>>,
    pub(super) progress: Progress,
}

impl<'p> PodRun<'p> {
    pub(super) fn new(info: &PodInfo<'p>) -> PodRun<'p> {
        let spec = info.pod.get("spec").unwrap_or(&Value::Null);
        let init_specs = list(spec, "initContainers");
        // Before a container starts the kubelet reports it waiting with
        // this reason (PodInitializing while the pod has init containers).
        let reason = if init_specs.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let inits = init_specs
            .iter()
            .map(|c| {
                let kind = if str_at(c, "/restartPolicy") == "Always" {
                    Kind::Sidecar
                } else {
                    Kind::Init
                };
                Ctr::new(c, kind, reason)
            })
            .collect();
        let apps = list(spec, "containers")
            .iter()
            .map(|c| Ctr::new(c, Kind::App, reason))
            .collect();
        PodRun {
            inits,
            apps,
            progress: Progress::NoSandbox,
        }
    }
}
