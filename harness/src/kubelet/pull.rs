//! Image pulls, as the kubelet's image manager decides them before a
//! container is created: an image the node holds is used as it is (unless
//! the policy is Always), anything else is pulled, and a pull fails, since no
//! registry answers a test cluster. The kubelet reports the first failure as
//! `ErrImagePull` and, from its next sync on, backs off: `ImagePullBackOff`,
//! retried with a growing delay. That back-off is where the model settles,
//! as settling on a real kubelet does (`crate::cluster::settled`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::lookup::str_at;
use crate::images::{default_pull_policy, full_name};

/// Why a container cannot start for want of its image: the waiting reason
/// and message the kubelet reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PullFailure {
    pub(super) reason: &'static str,
    pub(super) message: String,
}

/// What the node's runtime says when asked for an image it has to fetch.
/// The real text comes from the registry client and depends on the network
/// (a DNS error offline, `not found` online); this one says plainly where it
/// comes from, in the runtime's frame.
fn pull_error(full: &str) -> String {
    format!(
        "rpc error: code = Unknown desc = failed to pull and unpack image \"{full}\": \
         failed to resolve reference \"{full}\": no registry answers this cluster \
         (the harness's simulated node)"
    )
}

/// Whether the container's image is there to run, given the node's images
/// (in [`full_name`] form); `Err` is how the kubelet reports it otherwise.
pub(super) fn ensure_image(
    container: &Value,
    node_images: &BTreeSet<String>,
) -> Result<(), PullFailure> {
    let image = str_at(container, "/image");
    let full = full_name(image);
    // The kubelet names the image as written when it has a tag or digest,
    // else with the default tag applied (which spells it in full).
    let shown = if image.contains('@') || has_tag(image) {
        image.to_string()
    } else {
        full.clone()
    };
    let policy = match str_at(container, "/imagePullPolicy") {
        "" => default_pull_policy(image),
        p => p,
    };
    let present = node_images.contains(&full);
    match policy {
        "Never" if present => Ok(()),
        "Never" => Err(PullFailure {
            reason: "ErrImageNeverPull",
            message: format!(
                "Container image \"{shown}\" is not present with pull policy of Never"
            ),
        }),
        "IfNotPresent" if present => Ok(()),
        // Always, or IfNotPresent without the image: a pull, which fails.
        _ => Err(PullFailure {
            reason: "ImagePullBackOff",
            message: format!(
                "Back-off pulling image \"{shown}\": ErrImagePull: {}",
                pull_error(&full)
            ),
        }),
    }
}

fn has_tag(image: &str) -> bool {
    image.rfind(':').is_some_and(|i| !image[i..].contains('/'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::images::{HARNESS_IMAGES, PROBE_IMAGE};

    fn node() -> BTreeSet<String> {
        HARNESS_IMAGES.iter().map(|i| full_name(i)).collect()
    }

    fn with(image: &str, policy: &str) -> Value {
        let mut c = json!({"name": "c", "image": image});
        if !policy.is_empty() {
            c["imagePullPolicy"] = json!(policy);
        }
        c
    }

    #[test]
    fn a_held_image_runs_unless_the_policy_is_always() {
        let images = node();
        assert_eq!(
            ensure_image(&with(PROBE_IMAGE, "IfNotPresent"), &images),
            Ok(())
        );
        assert_eq!(ensure_image(&with(PROBE_IMAGE, "Never"), &images), Ok(()));
        // The same image under the name containerd gives it.
        let spelled = "docker.io/injector-harness/probe:v1";
        assert_eq!(
            ensure_image(&with(spelled, "IfNotPresent"), &images),
            Ok(())
        );
        // Always pulls even what the node holds (kind's `kind load` gotcha).
        let always = ensure_image(&with(PROBE_IMAGE, "Always"), &images).unwrap_err();
        assert_eq!(always.reason, "ImagePullBackOff");
        assert!(
            always.message.starts_with(
                "Back-off pulling image \"injector-harness/probe:v1\": ErrImagePull: "
            ),
            "{}",
            always.message
        );
    }

    #[test]
    fn a_missing_image_fails_to_pull_or_is_never_pulled() {
        let images = node();
        let typo =
            ensure_image(&with("injector-harness/probe:v2", "IfNotPresent"), &images).unwrap_err();
        assert_eq!(typo.reason, "ImagePullBackOff");
        assert!(typo
            .message
            .contains("\"docker.io/injector-harness/probe:v2\""));
        let never = ensure_image(&with("envoyproxy/envoy:v1.31", "Never"), &images).unwrap_err();
        assert_eq!(
            never,
            PullFailure {
                reason: "ErrImageNeverPull",
                message: "Container image \"envoyproxy/envoy:v1.31\" is not present with pull policy of Never"
                    .into()
            }
        );
        // No policy written: `latest` (or no tag) defaults to Always.
        let latest = ensure_image(&with("busybox", ""), &images).unwrap_err();
        assert!(
            latest
                .message
                .starts_with("Back-off pulling image \"docker.io/library/busybox:latest\""),
            "{}",
            latest.message
        );
    }
}
