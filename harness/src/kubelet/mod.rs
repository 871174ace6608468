//! A deterministic model of the kubelet and container runtime: given a pod
//! spec, the settled `status` a real API server (v1.34 to v1.37, which
//! agree here) would show for it.
//!
//! The simulator has no processes, so it needs to know what the scenario's
//! containers would do. They run [`crate::probe`], whose whole behaviour is
//! in its flags (listen here, maybe exit with this code), so the model can
//! replay it: containers start in the kubelet's order, bind ports in a
//! shared network namespace (the pod's, or the node's under hostNetwork), and
//! the first to bind a port wins while the loser exits 1 with
//! [`bind_error`](crate::probe::bind_error) and crash-loops. Other images
//! are taken to listen on their declared containerPorts and to run forever
//! (init containers: complete).
//!
//! "Settled" means: what the status looks like once every container has had
//! its first go. There is no clock: timestamps are [`TIMESTAMP`], container
//! IDs `containerd://<name>`, and a crash-looping container has
//! restartCount 1, a stand-in for "some" (snapshots normalize all three).
//!
//! Layout: this file only declares the modules and re-exports the public
//! API; the modules import each other directly, never through here, so no
//! module depends on the folder that contains it. `run_pod` is the entry
//! point (one pod on one node); `node_state` the runtime's `Node` (host
//! ports, images); `run_context` what the model may ask of the cluster
//! (`RunContext`); `timestamp` the one timestamp it writes; `env` the
//! environment and `$(VAR)` expansion; `config_sources` the ConfigMaps and
//! Secrets a pod waits for; `program` what a container runs; `netns` the
//! network namespace (`PortKey`); `spec` what is read from a pod spec
//! (`Kind`, `RestartPolicy`); `container` one container's state (`Ctr`,
//! `State`); `pull` image pulls (they fail: no registry answers); `pod` what is
//! read from the pod and how far it got; `runtime` the pod's run; `phase`
//! phase and conditions; `status` the PodStatus JSON; `qos` the QoS class;
//! `lookup` lenient JSON reads; `node` the Node object the kubelet
//! registers (labels, taints, allocatable).

mod config_sources;
mod container;
mod env;
mod lookup;
mod netns;
pub mod node;
mod node_state;
mod phase;
mod pod;
mod program;
mod pull;
mod qos;
mod run_context;
mod run_pod;
mod runtime;
mod spec;
mod status;
#[cfg(test)]
mod testing;
mod timestamp;

pub use env::{container_env, expand};
pub use netns::PortKey;
pub use node_state::Node;
pub use qos::{parse_quantity, qos_class};
pub use run_context::RunContext;
pub use run_pod::run_pod;
pub use timestamp::TIMESTAMP;
