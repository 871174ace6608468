//! The model's one window on the cluster: whether the ConfigMaps and
//! Secrets a pod names exist, and the pod IP to hand out. The simulated
//! cluster answers from its object store, the fake kubelet from what it
//! lists on the API server, so the model itself reads no cluster.

/// What the model may ask of the cluster while running a pod.
pub struct RunContext<'a> {
    /// Whether ConfigMap `name` exists in namespace `ns`.
    pub config_map_exists: &'a dyn Fn(&str, &str) -> bool,
    /// Whether Secret `name` exists in namespace `ns`.
    pub secret_exists: &'a dyn Fn(&str, &str) -> bool,
    /// The IP the pod gets unless it uses the host network.
    pub pod_ip: String,
}
