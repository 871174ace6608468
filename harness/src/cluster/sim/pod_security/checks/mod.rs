//! The Pod Security Standards checks, one function per check version, with
//! the wording of `policy/check_*.go` (v0.34.4 to v0.37.2; a check's older
//! versions are unchanged in newer releases, so one table serves every
//! minor once "latest" is capped at the apiserver's minor).
//!
//! A pod is read as Go decodes it: a field of the wrong JSON type, or
//! `null`, counts as absent; a list element that is not an object is a
//! container or volume with every field absent.

use serde_json::Value;

mod baseline;
mod read;
mod restricted;

use baseline::*;
use read::{Outcome, Pod};
use restricted::*;

use super::policy::{Level, Policy};

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
#[cfg(test)]
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
