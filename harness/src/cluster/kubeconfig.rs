//! The `kubeconfig` backend: runs scenarios against the cluster in
//! KUBECONFIG.
//!
//! Not built yet: it arrives with the local control plane. Selecting it fails
//! with this message rather than silently running something else.

pub const NOT_BUILT: &str =
    "the kubeconfig backend is not built yet; run with --backend sim (the default)";
