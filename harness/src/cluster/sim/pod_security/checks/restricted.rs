//! The restricted checks (`policy/check_*.go` of the restricted level).

use serde_json::Value;

use super::read::*;

/// check_allowPrivilegeEscalation.go (1.8+): it must be set to false.
pub(super) fn allow_privilege_escalation(p: &Pod) -> Outcome {
    let bad: Vec<&str> = containers(p.spec)
        .filter(|c| {
            security_context(c).and_then(|sc| flag(sc, "allowPrivilegeEscalation")) != Some(false)
        })
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    Some((
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    ))
}

pub(super) fn allow_privilege_escalation_1_25(p: &Pod) -> Outcome {
    if is_windows(p.spec) {
        return None;
    }
    allow_privilege_escalation(p)
}

/// check_capabilities_restricted.go (1.22+): drop ALL, add at most
/// NET_BIND_SERVICE.
pub(super) fn capabilities_restricted(p: &Pod) -> Outcome {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut added = Vec::new();
    for c in containers(p.spec) {
        let Some(caps) = context_field(c, "capabilities") else {
            missing_drop.push(name(c));
            continue;
        };
        if !strings(caps, "drop").any(|d| d == "ALL") {
            missing_drop.push(name(c));
        }
        let before = added.len();
        added.extend(strings(caps, "add").filter(|a| *a != "NET_BIND_SERVICE"));
        if added.len() > before {
            adding.push(name(c));
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            r#"{} must set securityContext.capabilities.drop=["ALL"]"#,
            containers_phrase(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&sorted_set(added))
        ));
    }
    if details.is_empty() {
        return None;
    }
    Some(("unrestricted capabilities", details.join("; ")))
}

pub(super) fn capabilities_restricted_1_25(p: &Pod) -> Outcome {
    if is_windows(p.spec) {
        return None;
    }
    capabilities_restricted(p)
}

/// Volume sources the restricted level allows.
pub(super) const ALLOWED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The other sources, in the order PSA names the first one it finds.
pub(super) const RESTRICTED_VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

/// check_restrictedVolumes.go: only the allowed inline sources; a volume
/// with no known source is of type "unknown".
pub(super) fn restricted_volumes(p: &Pod) -> Outcome {
    let mut bad_volumes = Vec::new();
    let mut types = Vec::new();
    for vol in items(p.spec, "volumes") {
        if ALLOWED_VOLUME_SOURCES.iter().any(|s| obj(vol, s).is_some()) {
            continue;
        }
        bad_volumes.push(name(vol));
        let source = RESTRICTED_VOLUME_SOURCES
            .iter()
            .find(|s| obj(vol, s).is_some());
        types.push(source.copied().unwrap_or("unknown"));
    }
    if bad_volumes.is_empty() {
        return None;
    }
    let types = sorted_set(types);
    Some((
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            plural("volume", "volumes", bad_volumes.len()),
            join_quote(&bad_volumes),
            plural("uses", "use", bad_volumes.len()),
            plural(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    ))
}

/// check_runAsNonRoot.go: true on the pod or on every container; an
/// explicit false anywhere is reported first.
pub(super) fn run_as_non_root(p: &Pod) -> Outcome {
    let mut setters = Vec::new();
    let pod_value = security_context(p.spec).and_then(|sc| flag(sc, "runAsNonRoot"));
    if pod_value == Some(false) {
        setters.push("pod".to_string());
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(p.spec) {
        match security_context(c).and_then(|sc| flag(sc, "runAsNonRoot")) {
            Some(false) => explicit.push(name(c)),
            Some(true) => {}
            None if pod_value != Some(true) => implicit.push(name(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return Some((
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        ));
    }
    if implicit.is_empty() {
        return None;
    }
    Some((
        "runAsNonRoot != true",
        format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_phrase(&implicit)
        ),
    ))
}

/// From 1.35 a user-namespace pod may run as root.
pub(super) fn run_as_non_root_1_35(p: &Pod) -> Outcome {
    if in_user_namespace(p.spec) {
        return None;
    }
    run_as_non_root(p)
}

/// check_runAsUser.go (1.23+): no explicit runAsUser 0.
pub(super) fn run_as_user(p: &Pod) -> Outcome {
    let is_root = |v: &Value| security_context(v).and_then(|sc| int(sc, "runAsUser")) == Some(0);
    let mut setters = Vec::new();
    if is_root(p.spec) {
        setters.push("pod".to_string());
    }
    let bad: Vec<&str> = containers(p.spec)
        .filter(|c| is_root(c))
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    Some((
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    ))
}

pub(super) fn run_as_user_1_35(p: &Pod) -> Outcome {
    if in_user_namespace(p.spec) {
        return None;
    }
    run_as_user(p)
}
