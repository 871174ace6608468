//! The `kind` backend: boots a kind cluster and runs scenarios on it.
//!
//! Not built yet: it needs a container runtime and node images, which a later
//! issue provides. Selecting it fails with this message rather than silently
//! running something else.

pub const NOT_BUILT: &str =
    "the kind backend is not built yet; run with --backend sim (the default)";
