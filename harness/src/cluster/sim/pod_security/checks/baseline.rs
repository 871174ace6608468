//! The baseline checks (`policy/check_*.go` of the baseline level).

use serde_json::Value;

use super::read::*;
use crate::cluster::sim::pod_security::policy::go_quote;

pub(super) const APPARMOR_ANNOTATION_PREFIX: &str =
    "container.apparmor.security.beta.kubernetes.io/";

/// check_appArmorProfile.go: profile types other than RuntimeDefault and
/// Localhost, and beta annotations other than empty, runtime/default and
/// localhost/*.
pub(super) fn app_armor(p: &Pod) -> Outcome {
    let allowed = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let mut setters: Vec<String> = Vec::new();
    let mut bad_values: Vec<String> = Vec::new();
    if let Some(profile) = context_field(p.spec, "appArmorProfile") {
        if !allowed(text(profile, "type")) {
            setters.push("pod".into());
            bad_values.push(text(profile, "type").into());
        }
    }
    let mut bad_containers = Vec::new();
    for c in containers(p.spec) {
        if let Some(profile) = context_field(c, "appArmorProfile") {
            if !allowed(text(profile, "type")) {
                bad_containers.push(name(c));
                bad_values.push(text(profile, "type").into());
            }
        }
    }
    if !bad_containers.is_empty() {
        setters.push(containers_phrase(&bad_containers));
    }
    let mut annotations: Vec<String> = Vec::new();
    if let Some(map) = p.meta.get("annotations").and_then(Value::as_object) {
        for (key, value) in map {
            let Some(value) = value.as_str() else {
                continue;
            };
            let allowed_value =
                value.is_empty() || value == "runtime/default" || value.starts_with("localhost/");
            if key.starts_with(APPARMOR_ANNOTATION_PREFIX) && !allowed_value {
                annotations.push(format!("{key}={}", go_quote(value)));
            }
        }
    }
    let mut values = sorted_set(bad_values);
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(plural("annotation", "annotations", annotations.len()).into());
        values.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    Some((
        plural(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    ))
}

/// The capabilities a container may add at baseline.
pub(super) const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// check_capabilities_baseline.go.
pub(super) fn capabilities_baseline(p: &Pod) -> Outcome {
    let mut bad_containers = Vec::new();
    let mut added = Vec::new();
    for c in containers(p.spec) {
        let Some(caps) = context_field(c, "capabilities") else {
            continue;
        };
        let before = added.len();
        added.extend(strings(caps, "add").filter(|a| !DEFAULT_CAPABILITIES.contains(a)));
        if added.len() > before {
            bad_containers.push(name(c));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Some((
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad_containers),
            join_quote(&sorted_set(added))
        ),
    ))
}

/// check_hostNamespaces.go.
pub(super) fn host_namespaces(p: &Pod) -> Outcome {
    let set: Vec<&str> = [
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
        ("hostIPC", "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(key, _)| flag(p.spec, key) == Some(true))
    .map(|(_, text)| text)
    .collect();
    if set.is_empty() {
        return None;
    }
    Some(("host namespaces", set.join(", ")))
}

/// check_hostPathVolumes.go (baseline; restricted uses restrictedVolumes).
pub(super) fn host_path_volumes(p: &Pod) -> Outcome {
    let names: Vec<&str> = items(p.spec, "volumes")
        .iter()
        .filter(|vol| obj(vol, "hostPath").is_some())
        .map(name)
        .collect();
    if names.is_empty() {
        return None;
    }
    Some((
        "hostPath volumes",
        format!(
            "{} {}",
            plural("volume", "volumes", names.len()),
            join_quote(&names)
        ),
    ))
}

/// check_hostPorts.go. The ports are sorted as strings, as Go's set does.
pub(super) fn host_ports(p: &Pod) -> Outcome {
    let mut bad_containers = Vec::new();
    let mut ports = Vec::new();
    for c in containers(p.spec) {
        let before = ports.len();
        ports.extend(
            items(c, "ports")
                .iter()
                .filter_map(|port| int(port, "hostPort"))
                .filter(|&hp| hp != 0)
                .map(|hp| hp.to_string()),
        );
        if ports.len() > before {
            bad_containers.push(name(c));
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let ports = sorted_set(ports);
    Some((
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad_containers),
            plural("uses", "use", bad_containers.len()),
            plural("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    ))
}

/// check_hostProbesAndhostLifecycle.go (1.34+): a `host` in an httpGet or
/// tcpSocket of a probe or lifecycle handler. Containers and hosts are
/// both sorted sets.
pub(super) fn host_probes_and_lifecycle(p: &Pod) -> Outcome {
    fn hosts<'a>(handler: Option<&'a Value>, out: &mut Vec<&'a str>) {
        let Some(handler) = handler else { return };
        for action in ["httpGet", "tcpSocket"] {
            if let Some(a) = obj(handler, action) {
                if !text(a, "host").is_empty() {
                    out.push(text(a, "host"));
                }
            }
        }
    }
    let mut bad_containers = Vec::new();
    let mut bad_hosts = Vec::new();
    for c in containers(p.spec) {
        let mut found = Vec::new();
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            hosts(obj(c, probe), &mut found);
        }
        if let Some(lifecycle) = obj(c, "lifecycle") {
            hosts(obj(lifecycle, "postStart"), &mut found);
            hosts(obj(lifecycle, "preStop"), &mut found);
        }
        if !found.is_empty() {
            bad_containers.push(name(c));
            bad_hosts.extend(found);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let (containers, hosts) = (sorted_set(bad_containers), sorted_set(bad_hosts));
    Some((
        "probe or lifecycle host",
        format!(
            "{} {} {} {}",
            containers_phrase(&containers),
            plural("uses", "use", containers.len()),
            plural(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                hosts.len()
            ),
            join_quote(&hosts)
        ),
    ))
}

/// check_privileged.go.
pub(super) fn privileged(p: &Pod) -> Outcome {
    let bad: Vec<&str> = containers(p.spec)
        .filter(|c| security_context(c).and_then(|sc| flag(sc, "privileged")) == Some(true))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    Some((
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    ))
}

/// check_procMount_baseline.go `procMount_1_0`, also the restricted
/// `procMount_restricted` from 1.35: any procMount but `Default`.
pub(super) fn proc_mount(p: &Pod) -> Outcome {
    let mut bad_containers = Vec::new();
    let mut types = Vec::new();
    for c in containers(p.spec) {
        let Some(t) = security_context(c)
            .and_then(|sc| sc.get("procMount"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        if t != "Default" {
            bad_containers.push(name(c));
            types.push(t);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Some((
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad_containers),
            join_quote(&sorted_set(types))
        ),
    ))
}

/// Baseline from 1.35: any procMount in a user namespace.
pub(super) fn proc_mount_1_35(p: &Pod) -> Outcome {
    if in_user_namespace(p.spec) {
        return None;
    }
    proc_mount(p)
}

/// check_seLinuxOptions.go: type outside the allowed set, or any user or role.
pub(super) fn se_linux(p: &Pod, allowed_types: &[&str]) -> Outcome {
    let mut bad_types: Vec<String> = Vec::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |opts: &Value| {
        let mut ok = true;
        let t = text(opts, "type");
        if !allowed_types.contains(&t) {
            ok = false;
            bad_types.push(t.to_string());
        }
        if !text(opts, "user").is_empty() {
            ok = false;
            set_user = true;
        }
        if !text(opts, "role").is_empty() {
            ok = false;
            set_role = true;
        }
        ok
    };
    let mut setters: Vec<String> = Vec::new();
    if let Some(opts) = context_field(p.spec, "seLinuxOptions") {
        if !valid(opts) {
            setters.push("pod".into());
        }
    }
    let bad_containers: Vec<&str> = containers(p.spec)
        .filter(|c| context_field(c, "seLinuxOptions").is_some_and(|opts| !valid(opts)))
        .map(name)
        .collect();
    if !bad_containers.is_empty() {
        setters.push(containers_phrase(&bad_containers));
    }
    if setters.is_empty() {
        return None;
    }
    let mut bad_data = Vec::new();
    let bad_types = sorted_set(bad_types);
    if !bad_types.is_empty() {
        bad_data.push(format!(
            "{} {}",
            plural("type", "types", bad_types.len()),
            join_quote(&bad_types)
        ));
    }
    if set_user {
        bad_data.push("user may not be set".into());
    }
    if set_role {
        bad_data.push("role may not be set".into());
    }
    Some((
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            bad_data.join("; ")
        ),
    ))
}

pub(super) fn se_linux_1_0(p: &Pod) -> Outcome {
    se_linux(
        p,
        &["", "container_t", "container_init_t", "container_kvm_t"],
    )
}

/// 1.31 adds `container_engine_t`.
pub(super) fn se_linux_1_31(p: &Pod) -> Outcome {
    se_linux(
        p,
        &[
            "",
            "container_t",
            "container_init_t",
            "container_kvm_t",
            "container_engine_t",
        ],
    )
}

pub(super) const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
pub(super) const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str =
    "container.seccomp.security.alpha.kubernetes.io/";

/// check_seccompProfile_baseline.go before 1.19: the alpha annotations.
/// A present but empty value is forbidden too.
pub(super) fn seccomp_annotations(p: &Pod) -> Outcome {
    let annotation = |key: &str| {
        p.meta
            .get("annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    };
    let allowed =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let mut forbidden = Vec::new();
    let keys = std::iter::once(SECCOMP_POD_ANNOTATION.to_string()).chain(
        containers(p.spec).map(|c| format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", name(c))),
    );
    for key in keys {
        if let Some(value) = annotation(&key) {
            if !allowed(value) {
                forbidden.push(format!("{key}={}", go_quote(value)));
            }
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    let forbidden = sorted_set(forbidden);
    Some((
        "seccompProfile",
        format!(
            "forbidden {} {}",
            plural("annotation", "annotations", forbidden.len()),
            forbidden.join(", ")
        ),
    ))
}

pub(super) fn valid_seccomp_type(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// The pod and containers that set a seccompProfile type other than
/// RuntimeDefault or Localhost: (setters, sorted bad types, whether the pod
/// set a valid one, containers that set none).
pub(super) fn seccomp_fields<'a>(p: &Pod<'a>) -> (Vec<String>, Vec<String>, bool, Vec<&'a str>) {
    let mut setters = Vec::new();
    let mut bad_types = Vec::new();
    let mut pod_set = false;
    if let Some(profile) = context_field(p.spec, "seccompProfile") {
        if valid_seccomp_type(text(profile, "type")) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            bad_types.push(text(profile, "type"));
        }
    }
    let mut explicit = Vec::new();
    let mut unset = Vec::new();
    for c in containers(p.spec) {
        match context_field(c, "seccompProfile") {
            Some(profile) if !valid_seccomp_type(text(profile, "type")) => {
                explicit.push(name(c));
                bad_types.push(text(profile, "type"));
            }
            Some(_) => {}
            None => unset.push(name(c)),
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    (setters, sorted_set(bad_types), pod_set, unset)
}

pub(super) fn seccomp_bad_type(setters: &[String], bad_types: &[String]) -> Outcome {
    Some((
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(bad_types)
        ),
    ))
}

/// check_seccompProfile_baseline.go from 1.19: no bad type where set.
pub(super) fn seccomp_baseline(p: &Pod) -> Outcome {
    let (setters, bad_types, _, _) = seccomp_fields(p);
    if setters.is_empty() {
        return None;
    }
    seccomp_bad_type(&setters, &bad_types)
}

/// check_seccompProfile_restricted.go: a good type must also be set, on
/// the pod or on every container; a bad type is reported first.
pub(super) fn seccomp_restricted(p: &Pod) -> Outcome {
    let (setters, bad_types, pod_set, unset) = seccomp_fields(p);
    if !setters.is_empty() {
        return seccomp_bad_type(&setters, &bad_types);
    }
    if pod_set || unset.is_empty() {
        return None;
    }
    Some((
        "seccompProfile",
        format!(
            r#"pod or {} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#,
            containers_phrase(&unset)
        ),
    ))
}

pub(super) fn seccomp_restricted_1_25(p: &Pod) -> Outcome {
    if is_windows(p.spec) {
        return None;
    }
    seccomp_restricted(p)
}

pub(super) const SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
pub(super) const SYSCTLS_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
pub(super) const SYSCTLS_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
pub(super) const SYSCTLS_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];
pub(super) const SYSCTLS_1_37: &[&str] = &[
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

/// check_sysctls.go: the allowed set grows by version; names are listed in
/// the pod's order, repeats kept.
pub(super) fn sysctls(p: &Pod, allowed: &[&[&str]]) -> Outcome {
    let bad: Vec<&str> = security_context(p.spec)
        .map(|sc| items(sc, "sysctls"))
        .unwrap_or(&[])
        .iter()
        .map(name)
        .filter(|n| !allowed.iter().any(|set| set.contains(n)))
        .collect();
    if bad.is_empty() {
        return None;
    }
    Some(("forbidden sysctls", bad.join(", ")))
}

pub(super) fn sysctls_1_0(p: &Pod) -> Outcome {
    sysctls(p, &[SYSCTLS_1_0])
}
pub(super) fn sysctls_1_27(p: &Pod) -> Outcome {
    sysctls(p, &[SYSCTLS_1_0, SYSCTLS_1_27])
}
pub(super) fn sysctls_1_29(p: &Pod) -> Outcome {
    sysctls(p, &[SYSCTLS_1_0, SYSCTLS_1_27, SYSCTLS_1_29])
}
pub(super) fn sysctls_1_32(p: &Pod) -> Outcome {
    sysctls(p, &[SYSCTLS_1_0, SYSCTLS_1_27, SYSCTLS_1_29, SYSCTLS_1_32])
}
pub(super) fn sysctls_1_37(p: &Pod) -> Outcome {
    sysctls(
        p,
        &[
            SYSCTLS_1_0,
            SYSCTLS_1_27,
            SYSCTLS_1_29,
            SYSCTLS_1_32,
            SYSCTLS_1_37,
        ],
    )
}

/// check_windowsHostProcess.go.
pub(super) fn windows_host_process(p: &Pod) -> Outcome {
    let host_process = |v: &Value| {
        context_field(v, "windowsOptions").and_then(|w| flag(w, "hostProcess")) == Some(true)
    };
    let bad_containers: Vec<&str> = containers(p.spec)
        .filter(|c| host_process(c))
        .map(name)
        .collect();
    let mut setters = Vec::new();
    if host_process(p.spec) {
        setters.push("pod".to_string());
    }
    if !bad_containers.is_empty() {
        setters.push(containers_phrase(&bad_containers));
    }
    if setters.is_empty() {
        return None;
    }
    Some((
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    ))
}
