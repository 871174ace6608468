//! The default scheduler (kube-scheduler v1.34 to v1.37, default profile; the
//! one difference is `DRA_QUIET_SINCE`) as far as a
//! one-node cluster can tell: whether a pod fits the node, and if not, the
//! message the scheduler writes into the FailedScheduling event and the
//! pod's `PodScheduled=False` condition.
//!
//! Modelled, in the scheduler's filter order (the first filter that fails
//! names the reason, as in the framework):
//!
//! 1. NodeAffinity's PreFilter: required terms that pin `metadata.name`.
//! 2. NodeUnschedulable: `spec.unschedulable` without the matching toleration.
//! 3. TaintToleration: a NoSchedule or NoExecute taint no toleration matches.
//! 4. NodeAffinity: `nodeSelector` and required node affinity.
//! 5. NodePorts: a hostPort (with protocol and hostIP) already used on the node.
//! 6. NodeResourcesFit: pod count, cpu, memory, ephemeral-storage and
//!    extended resources against allocatable minus what bound pods request.
//!
//! Then the PostFilter plugins, whose reasons are joined with ", ":
//! DynamicResources (DRA is on by default in v1.34) says "no new claims to
//! deallocate" for a pod without resource claims, then DefaultPreemption: a
//! node rejected by an unresolvable filter is "not helpful"; otherwise
//! victims are the node's pods of lower priority, and without any the answer
//! is "No preemption victims found". When a PreFilter fails, DynamicResources
//! never stored its state and its PostFilter errors with "not found", which
//! is all the message gets. Actually preempting (evicting victims) is not
//! modelled: [`Outcome::Preempts`] says so, and the cluster refuses to settle
//! rather than guess.
//!
//! The real scheduler corrected two guesses: the DynamicResources reason
//! (absent from the first version) and the PreFilter-failure message (both
//! seen on kube-scheduler v1.34.4 against the fake kubelet's node).
//!
//! Written from the scheduler's documented behaviour and messages; it shares
//! no code with the injector.
//!
//! One module per step of the cycle ([`cycle`] joins them); this file only
//! declares and re-exports.

mod affinity;
mod cycle;
mod fields;
mod filters;
mod fit;
mod ports;
mod preemption;
mod status;
#[cfg(test)]
mod testing;

pub use cycle::{schedule, Outcome};
