//! What the model keeps of a node from one pod to the next: the ports
//! hostNetwork pods and the node's daemons hold in its network namespace,
//! and the images its runtime has. The Node object the API server shows is
//! in `node`; this is the runtime's side of the same node.

use std::collections::{BTreeMap, BTreeSet};

use super::netns::PortKey;
use super::node::LISTENERS;

/// A node, as far as the runtime goes: hostNetwork pods bind in its network
/// namespace, so two of them on one node clash like two containers of one
/// pod; and its images decide which containers start without a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub ip: String,
    /// Ports held on the node by running hostNetwork containers, with their
    /// owner as `namespace/pod/container`, and by the node's own daemons
    /// (owner `node/<daemon>`, never released).
    pub(super) host_ports: BTreeMap<PortKey, String>,
    /// The images its runtime holds, spelled in full
    /// ([`crate::images::full_name`]).
    pub(super) images: BTreeSet<String>,
}

impl Node {
    /// A node with nothing bound and no images.
    pub fn new(name: impl Into<String>, ip: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            ip: ip.into(),
            host_ports: BTreeMap::new(),
            images: BTreeSet::new(),
        }
    }

    /// The node a scenario runs on: a kind node, its own daemons listening
    /// in its network namespace ([`LISTENERS`]), holding the harness's
    /// images and `extra` ones.
    pub fn kind_node<'a>(
        name: impl Into<String>,
        ip: impl Into<String>,
        extra: impl IntoIterator<Item = &'a str>,
    ) -> Node {
        let mut n = Node::new(name, ip)
            .with_images(crate::images::HARNESS_IMAGES)
            .with_images(extra);
        for (port, daemon) in LISTENERS {
            n.host_ports
                .insert((*port, "TCP".to_string()), format!("node/{daemon}"));
        }
        n
    }

    /// The node with `images` added to what its runtime holds.
    pub fn with_images<'a>(mut self, images: impl IntoIterator<Item = &'a str>) -> Node {
        self.add_images(images);
        self
    }

    /// Adds `images` to what the node's runtime holds (`kind load`).
    pub fn add_images<'a>(&mut self, images: impl IntoIterator<Item = &'a str>) {
        self.images
            .extend(images.into_iter().map(crate::images::full_name));
    }

    /// Ports currently held on the node, with their `namespace/pod/container`.
    pub fn host_ports(&self) -> &BTreeMap<PortKey, String> {
        &self.host_ports
    }

    /// Frees what a pod held on the node: call it when the pod is deleted.
    /// (`run_pod` does it itself before re-running a pod.)
    pub fn release_pod(&mut self, namespace: &str, name: &str) {
        let prefix = format!("{namespace}/{name}/");
        self.host_ports
            .retain(|_, owner| !owner.starts_with(&prefix));
    }
}
