//! The cluster's one node, as kind names and addresses it. A leaf of its
//! own so that code outside the sim (the fake kubelet) can share the name
//! without depending on the whole simulated apiserver.

/// The node name kind gives a single-node cluster named `injector-harness`.
pub const NODE_NAME: &str = "injector-harness-control-plane";
/// The node's address on kind's docker network, which host-network pods share.
pub(super) const NODE_IP: &str = "172.18.0.2";
