//! Container images: the ones the harness puts on every node, and how a
//! reference is spelled in full, so that two spellings of one image (`x:v1`
//! and `docker.io/library/x:v1`) are found as one, as containerd finds them.
//!
//! Which images a node holds decides whether a container starts at all: a
//! node has the harness's images (built by `kind/build-images.sh` and loaded
//! with `kind load`) and those a scenario preloads (`preloadImages`); any
//! other image has to be pulled, and no registry answers a test cluster here,
//! so the pull fails (`ErrImagePull`, then `ImagePullBackOff`). The kubelet
//! model reads the same list ([`crate::kubelet::Node::with_images`]).

pub use crate::probe::PROBE_IMAGE;

/// The injector's image, as `kind/build-images.sh` tags it.
pub const INJECTOR_IMAGE: &str = "sidecar-injector:dev";

/// The images the harness loads into every node.
pub const HARNESS_IMAGES: [&str; 2] = [INJECTOR_IMAGE, PROBE_IMAGE];

/// The registry a reference without one names (Docker's default, which
/// containerd applies as well).
const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker's older spelling of [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Where single-component names live on the default registry.
const OFFICIAL_PREFIX: &str = "library/";

/// `reference` as the runtime stores it: registry, path and tag in full
/// (`nginx` -> `docker.io/library/nginx:latest`, `localhost:5000/a` ->
/// `localhost:5000/a:latest`, `x@sha256:..` keeps its digest and gets no tag).
///
/// The registry is the first path component when it looks like a host (has a
/// `.` or a `:`, or is `localhost`), as Docker's reference rules say;
/// otherwise it is the default one.
pub fn full_name(reference: &str) -> String {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    // A tag is a colon after the last slash; an earlier one is a port.
    let (name, tag) = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    };
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest.to_string())
        }
        _ => (DEFAULT_DOMAIN, name.to_string()),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path
    };
    let mut out = format!("{domain}/{path}");
    match (tag, digest) {
        (Some(t), _) => {
            out.push(':');
            out.push_str(t);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    out
}

/// The pull policy the apiserver gives a container that states none: Always
/// for a `:latest` or untagged image (without a digest), IfNotPresent
/// otherwise.
pub fn default_pull_policy(reference: &str) -> &'static str {
    let name = reference.split('@').next().unwrap_or(reference);
    let tag = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => Some(&name[i + 1..]),
        _ => None,
    };
    match tag {
        Some("latest") => "Always",
        None if !reference.contains('@') => "Always",
        _ => "IfNotPresent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_spelled_in_full_as_containerd_stores_them() {
        let cases = [
            ("nginx", "docker.io/library/nginx:latest"),
            ("nginx:1.27", "docker.io/library/nginx:1.27"),
            (
                "injector-harness/probe:v1",
                "docker.io/injector-harness/probe:v1",
            ),
            (
                "docker.io/injector-harness/probe:v1",
                "docker.io/injector-harness/probe:v1",
            ),
            (
                "index.docker.io/library/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("docker.io/busybox:1", "docker.io/library/busybox:1"),
            ("localhost/probe:v1", "localhost/probe:v1"),
            ("localhost:5000/team/app", "localhost:5000/team/app:latest"),
            (
                "registry.k8s.io/pause:3.10.1",
                "registry.k8s.io/pause:3.10.1",
            ),
            (
                "sidecar-injector:dev",
                "docker.io/library/sidecar-injector:dev",
            ),
            ("app@sha256:abcd", "docker.io/library/app@sha256:abcd"),
            ("app:v2@sha256:abcd", "docker.io/library/app:v2@sha256:abcd"),
        ];
        for (input, full) in cases {
            assert_eq!(full_name(input), full, "{input}");
        }
        // Two spellings of one image are one image.
        assert_eq!(
            full_name(PROBE_IMAGE),
            full_name("docker.io/injector-harness/probe:v1")
        );
        assert_ne!(
            full_name(PROBE_IMAGE),
            full_name("injector-harness/probe:v2")
        );
    }

    #[test]
    fn pull_policy_defaults_by_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(default_pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(default_pull_policy("nginx@sha256:abcd"), "IfNotPresent");
        assert_eq!(default_pull_policy(PROBE_IMAGE), "IfNotPresent");
    }
}
