//! The Pod Security Standards checks, one function per check version, with
//! the wording of `policy/check_*.go` (v0.34.4 to v0.37.2; a check's older
//! versions are unchanged in newer releases, so one table serves every
//! minor once "latest" is capped at the apiserver's minor).
//!
//! A pod is read as Go decodes it: a field of the wrong JSON type, or
//! `null`, counts as absent; a list element that is not an object is a
//! container or volume with every field absent.

use serde_json::Value;

use super::{go_quote, Level, Policy};

/// One failed check: the `ForbiddenReason` and `ForbiddenDetail` of PSA's
/// `CheckResult`, and the check's ID (for tests and reports; the apiserver
/// never prints it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub check: &'static str,
    pub reason: &'static str,
    pub detail: String,
}

/// The failed checks of `pod_metadata`/`pod_spec` against `policy` on an
/// apiserver of minor `apiserver_minor`, in PSA's order: baseline checks by
/// ID, then restricted checks by ID (byte order, as `registry.go` sorts).
/// At restricted, a restricted check replaces the baseline check it
/// overrides from the version it has the override.
pub fn evaluate(
    policy: Policy,
    pod_metadata: &Value,
    pod_spec: &Value,
    apiserver_minor: u64,
) -> Vec<Violation> {
    if policy.level == Level::Privileged {
        return Vec::new();
    }
    let version = policy.version.effective(apiserver_minor);
    let active = |def: &Def| def.versions.iter().rev().find(|v| v.since <= version);
    let overridden: Vec<&str> = CHECKS
        .iter()
        .filter(|def| def.level == Level::Restricted && policy.level == Level::Restricted)
        .filter_map(active)
        .flat_map(|v| v.overrides.iter().copied())
        .collect();
    let pod = Pod {
        meta: pod_metadata,
        spec: pod_spec,
    };
    CHECKS
        .iter()
        .filter(|def| def.level <= policy.level && !overridden.contains(&def.id))
        .filter_map(|def| Some((def.id, active(def)?)))
        .filter_map(|(id, v)| {
            let (reason, detail) = (v.check)(&pod)?;
            Some(Violation {
                check: id,
                reason,
                detail,
            })
        })
        .collect()
}

/// [`evaluate`] on a whole pod object (its `metadata` and `spec`).
pub fn evaluate_pod(policy: Policy, pod: &Value, apiserver_minor: u64) -> Vec<Violation> {
    evaluate(policy, &pod["metadata"], &pod["spec"], apiserver_minor)
}

/// `AggregateCheckResult.ForbiddenDetail()`: `reason (detail), reason`,
/// the text after `violates PodSecurity "…": ` in refusals and warnings.
pub fn forbidden_detail(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| match v.detail.is_empty() {
            true => v.reason.to_string(),
            false => format!("{} ({})", v.reason, v.detail),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `AggregateCheckResult.ForbiddenReason()`: the reasons only, as the
/// namespace-update warnings list them per pod.
pub fn forbidden_reason(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| v.reason)
        .collect::<Vec<_>>()
        .join(", ")
}

struct Pod<'a> {
    meta: &'a Value,
    spec: &'a Value,
}

/// A failed check's reason and detail; `None` when it passes.
type Outcome = Option<(&'static str, String)>;
type Check = fn(&Pod) -> Outcome;

/// One version of a check, in force from `v1.{since}` until the next.
struct Versioned {
    since: u64,
    check: Check,
    overrides: &'static [&'static str],
}

struct Def {
    id: &'static str,
    level: Level,
    versions: &'static [Versioned],
}

const fn v(since: u64, check: Check) -> Versioned {
    Versioned {
        since,
        check,
        overrides: &[],
    }
}

const fn over(since: u64, check: Check, overrides: &'static [&'static str]) -> Versioned {
    Versioned {
        since,
        check,
        overrides,
    }
}

/// Every check, baseline then restricted, each group in byte order of ID
/// (a test keeps it so): that order is the order of the messages.
static CHECKS: &[Def] = &[
    Def {
        id: "appArmorProfile",
        level: Level::Baseline,
        versions: &[v(0, app_armor)],
    },
    Def {
        id: "capabilities_baseline",
        level: Level::Baseline,
        versions: &[v(0, capabilities_baseline)],
    },
    Def {
        id: "hostNamespaces",
        level: Level::Baseline,
        versions: &[v(0, host_namespaces)],
    },
    Def {
        id: "hostPathVolumes",
        level: Level::Baseline,
        versions: &[v(0, host_path_volumes)],
    },
    Def {
        id: "hostPorts",
        level: Level::Baseline,
        versions: &[v(0, host_ports)],
    },
    Def {
        id: "hostProbesAndHostLifecycle",
        level: Level::Baseline,
        versions: &[v(34, host_probes_and_lifecycle)],
    },
    Def {
        id: "privileged",
        level: Level::Baseline,
        versions: &[v(0, privileged)],
    },
    Def {
        id: "procMount",
        level: Level::Baseline,
        versions: &[v(0, proc_mount), v(35, proc_mount_1_35)],
    },
    Def {
        id: "seLinuxOptions",
        level: Level::Baseline,
        versions: &[v(0, se_linux_1_0), v(31, se_linux_1_31)],
    },
    Def {
        id: "seccompProfile_baseline",
        level: Level::Baseline,
        versions: &[v(0, seccomp_annotations), v(19, seccomp_baseline)],
    },
    Def {
        id: "sysctls",
        level: Level::Baseline,
        versions: &[
            v(0, sysctls_1_0),
            v(27, sysctls_1_27),
            v(29, sysctls_1_29),
            v(32, sysctls_1_32),
            v(37, sysctls_1_37),
        ],
    },
    Def {
        id: "windowsHostProcess",
        level: Level::Baseline,
        versions: &[v(0, windows_host_process)],
    },
    Def {
        id: "allowPrivilegeEscalation",
        level: Level::Restricted,
        versions: &[
            v(8, allow_privilege_escalation),
            v(25, allow_privilege_escalation_1_25),
        ],
    },
    Def {
        id: "capabilities_restricted",
        level: Level::Restricted,
        versions: &[
            over(22, capabilities_restricted, &["capabilities_baseline"]),
            over(25, capabilities_restricted_1_25, &["capabilities_baseline"]),
        ],
    },
    Def {
        id: "procMount_restricted",
        level: Level::Restricted,
        versions: &[over(35, proc_mount, &["procMount"])],
    },
    Def {
        id: "restrictedVolumes",
        level: Level::Restricted,
        versions: &[over(0, restricted_volumes, &["hostPathVolumes"])],
    },
    Def {
        id: "runAsNonRoot",
        level: Level::Restricted,
        versions: &[v(0, run_as_non_root), v(35, run_as_non_root_1_35)],
    },
    Def {
        id: "runAsUser",
        level: Level::Restricted,
        versions: &[v(23, run_as_user), v(35, run_as_user_1_35)],
    },
    Def {
        id: "seccompProfile_restricted",
        level: Level::Restricted,
        versions: &[
            over(19, seccomp_restricted, &["seccompProfile_baseline"]),
            over(25, seccomp_restricted_1_25, &["seccompProfile_baseline"]),
        ],
    },
];

/// The check IDs in evaluation order (for tests).
#[cfg(test)]
pub(crate) fn check_ids() -> Vec<(&'static str, Level)> {
    CHECKS.iter().map(|d| (d.id, d.level)).collect()
}

// ---- reading the pod as Go would decode it ----

/// A pointer field Go would decode as non-nil: present, an object.
fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| x.is_object())
}

fn flag(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The strings of a string list (other elements skipped).
fn strings<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    items(v, key).iter().filter_map(Value::as_str)
}

/// `visitContainers`: init containers, containers, ephemeral containers.
fn containers<'a>(spec: &'a Value) -> impl Iterator<Item = &'a Value> {
    items(spec, "initContainers")
        .iter()
        .chain(items(spec, "containers"))
        .chain(items(spec, "ephemeralContainers"))
}

fn name(container: &Value) -> &str {
    text(container, "name")
}

fn security_context(v: &Value) -> Option<&Value> {
    obj(v, "securityContext")
}

/// A container's (or the pod's) securityContext sub-object `key`.
fn context_field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    security_context(v).and_then(|sc| obj(sc, key))
}

/// Windows pods are exempt from the Linux-only restricted checks from 1.25.
fn is_windows(spec: &Value) -> bool {
    obj(spec, "os").is_some_and(|os| text(os, "name") == "windows")
}

/// `hostUsers: false`: the pod runs in a user namespace, relaxed from 1.35.
fn in_user_namespace(spec: &Value) -> bool {
    flag(spec, "hostUsers") == Some(false)
}

// ---- message pieces, as policy/helpers.go ----

fn plural(one: &'static str, many: &'static str, n: usize) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `joinQuote`: `"a", "b"`, without escaping.
fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase<S: AsRef<str>>(names: &[S]) -> String {
    format!(
        "{} {}",
        plural("container", "containers", names.len()),
        join_quote(names)
    )
}

/// A Go `sets.String` turned into its sorted list.
fn sorted_set<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut v: Vec<String> = values.into_iter().map(Into::into).collect();
    v.sort();
    v.dedup();
    v
}

// ---- baseline ----

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// check_appArmorProfile.go: profile types other than RuntimeDefault and
/// Localhost, and beta annotations other than empty, runtime/default and
/// localhost/*.
fn app_armor(p: &Pod) -> Outcome {
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
const DEFAULT_CAPABILITIES: &[&str] = &[
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
fn capabilities_baseline(p: &Pod) -> Outcome {
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
fn host_namespaces(p: &Pod) -> Outcome {
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
fn host_path_volumes(p: &Pod) -> Outcome {
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
fn host_ports(p: &Pod) -> Outcome {
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
fn host_probes_and_lifecycle(p: &Pod) -> Outcome {
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
fn privileged(p: &Pod) -> Outcome {
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
fn proc_mount(p: &Pod) -> Outcome {
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
fn proc_mount_1_35(p: &Pod) -> Outcome {
    if in_user_namespace(p.spec) {
        return None;
    }
    proc_mount(p)
}

/// check_seLinuxOptions.go: type outside the allowed set, or any user or role.
fn se_linux(p: &Pod, allowed_types: &[&str]) -> Outcome {
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

fn se_linux_1_0(p: &Pod) -> Outcome {
    se_linux(
        p,
        &["", "container_t", "container_init_t", "container_kvm_t"],
    )
}

/// 1.31 adds `container_engine_t`.
fn se_linux_1_31(p: &Pod) -> Outcome {
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

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// check_seccompProfile_baseline.go before 1.19: the alpha annotations.
/// A present but empty value is forbidden too.
fn seccomp_annotations(p: &Pod) -> Outcome {
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

fn valid_seccomp_type(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// The pod and containers that set a seccompProfile type other than
/// RuntimeDefault or Localhost: (setters, sorted bad types, whether the pod
/// set a valid one, containers that set none).
fn seccomp_fields<'a>(p: &Pod<'a>) -> (Vec<String>, Vec<String>, bool, Vec<&'a str>) {
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

fn seccomp_bad_type(setters: &[String], bad_types: &[String]) -> Outcome {
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
fn seccomp_baseline(p: &Pod) -> Outcome {
    let (setters, bad_types, _, _) = seccomp_fields(p);
    if setters.is_empty() {
        return None;
    }
    seccomp_bad_type(&setters, &bad_types)
}

/// check_seccompProfile_restricted.go: a good type must also be set, on
/// the pod or on every container; a bad type is reported first.
fn seccomp_restricted(p: &Pod) -> Outcome {
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

fn seccomp_restricted_1_25(p: &Pod) -> Outcome {
    if is_windows(p.spec) {
        return None;
    }
    seccomp_restricted(p)
}

const SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];
const SYSCTLS_1_37: &[&str] = &[
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

/// check_sysctls.go: the allowed set grows by version; names are listed in
/// the pod's order, repeats kept.
fn sysctls(p: &Pod, allowed: &[&[&str]]) -> Outcome {
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

fn sysctls_1_0(p: &Pod) -> Outcome {
    sysctls(p, &[SYSCTLS_1_0])
}
fn sysctls_1_27(p: &Pod) -> Outcome {
    sysctls(p, &[SYSCTLS_1_0, SYSCTLS_1_27])
}
fn sysctls_1_29(p: &Pod) -> Outcome {
    sysctls(p, &[SYSCTLS_1_0, SYSCTLS_1_27, SYSCTLS_1_29])
}
fn sysctls_1_32(p: &Pod) -> Outcome {
    sysctls(p, &[SYSCTLS_1_0, SYSCTLS_1_27, SYSCTLS_1_29, SYSCTLS_1_32])
}
fn sysctls_1_37(p: &Pod) -> Outcome {
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
fn windows_host_process(p: &Pod) -> Outcome {
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

// ---- restricted ----

/// check_allowPrivilegeEscalation.go (1.8+): it must be set to false.
fn allow_privilege_escalation(p: &Pod) -> Outcome {
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

fn allow_privilege_escalation_1_25(p: &Pod) -> Outcome {
    if is_windows(p.spec) {
        return None;
    }
    allow_privilege_escalation(p)
}

/// check_capabilities_restricted.go (1.22+): drop ALL, add at most
/// NET_BIND_SERVICE.
fn capabilities_restricted(p: &Pod) -> Outcome {
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

fn capabilities_restricted_1_25(p: &Pod) -> Outcome {
    if is_windows(p.spec) {
        return None;
    }
    capabilities_restricted(p)
}

/// Volume sources the restricted level allows.
const ALLOWED_VOLUME_SOURCES: &[&str] = &[
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
const RESTRICTED_VOLUME_SOURCES: &[&str] = &[
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
fn restricted_volumes(p: &Pod) -> Outcome {
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
fn run_as_non_root(p: &Pod) -> Outcome {
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
fn run_as_non_root_1_35(p: &Pod) -> Outcome {
    if in_user_namespace(p.spec) {
        return None;
    }
    run_as_non_root(p)
}

/// check_runAsUser.go (1.23+): no explicit runAsUser 0.
fn run_as_user(p: &Pod) -> Outcome {
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

fn run_as_user_1_35(p: &Pod) -> Outcome {
    if in_user_namespace(p.spec) {
        return None;
    }
    run_as_user(p)
}
