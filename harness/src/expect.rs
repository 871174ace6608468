//! Checking a scenario's expectations against what the cluster shows. The
//! cluster never sees these; only the harness compares.

use serde_json::Value;

use crate::cluster::Observed;
use crate::scenario::{Expectations, PodExpectation, Scenario};
use crate::snapshot::container_state;
use crate::status;

/// The short state word of a container: Running, a waiting reason
/// (CrashLoopBackOff, PodInitializing, ...) or a terminated reason
/// (Completed, Error).
pub fn state_word(s: &Value) -> String {
    let st = &s["state"];
    if st["running"].is_object() {
        "Running".into()
    } else if let Some(r) = st["waiting"]["reason"].as_str() {
        r.into()
    } else if let Some(r) = st["terminated"]["reason"].as_str() {
        r.into()
    } else {
        "Unknown".into()
    }
}

fn names(pod: &Value, key: &str) -> Vec<String> {
    pod["spec"][key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect()
}

fn describe(e: &PodExpectation) -> String {
    let sel: Vec<String> = e.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if sel.is_empty() {
        format!("pods in {}", e.namespace)
    } else {
        format!("pods in {} with {}", e.namespace, sel.join(","))
    }
}

/// Every unmet expectation, as a sentence naming what was expected and seen.
/// At the end of a scenario a refusal nobody listed is a failure too.
pub fn check(scenario: &Scenario, observed: &Observed) -> Vec<String> {
    let mut failures = check_listed(scenario, &scenario.header.expect, observed);
    // Unexpected refusals are failures too: a scenario lists the ones it wants.
    for r in &observed.rejections {
        let expected = scenario.header.expect.rejected.iter().any(|e| {
            e.namespace == r.namespace
                && e.kind == r.kind
                && e.name == r.name
                && e.applies_to(observed.kubernetes)
        });
        if !expected {
            failures.push(format!(
                "{} {}/{} was unexpectedly rejected: {}",
                r.kind, r.namespace, r.name, r.message
            ));
        }
    }
    failures
}

/// The unmet expectations among those `expect` lists (an `expect` step's
/// checkpoint, or the scenario's own), without the unexpected-refusal rule.
pub fn check_listed(
    scenario: &Scenario,
    expect: &Expectations,
    observed: &Observed,
) -> Vec<String> {
    let mut failures = Vec::new();
    let status_key = scenario.injected_annotation();
    for e in &expect.pods {
        let what = describe(e);
        let pods: Vec<&Value> = observed
            .pods
            .iter()
            .filter(|p| p["metadata"]["namespace"] == e.namespace.as_str())
            .filter(|p| {
                let l = crate::object::labels(p);
                e.selector.iter().all(|(k, v)| l.get(k) == Some(v))
            })
            .collect();
        match e.count {
            Some(n) if pods.len() != n => {
                failures.push(format!("{what}: expected {n} pod(s), found {}", pods.len()))
            }
            None if pods.is_empty() => {
                failures.push(format!("{what}: expected at least one pod, found none"))
            }
            _ => {}
        }
        for p in pods {
            let name = p["metadata"]["name"].as_str().unwrap_or("?");
            let line = status::pod_line(p);
            if let Some(want) = e.injected {
                let got = p["metadata"]["annotations"][status_key].is_string();
                if got != want {
                    failures.push(format!(
                        "{name}: expected {}injected, but it {} the {status_key} annotation",
                        if want { "" } else { "not " },
                        if got { "has" } else { "lacks" }
                    ));
                }
            }
            if let Some(want) = &e.ready {
                if &line.ready != want {
                    failures.push(format!(
                        "{name}: expected READY {want}, got {} ({})",
                        line.ready, line.status
                    ));
                }
            }
            if let Some(want) = &e.status {
                if &line.status != want {
                    failures.push(format!(
                        "{name}: expected STATUS {want}, got {}",
                        line.status
                    ));
                }
            }
            for (key, want) in [
                ("containers", &e.containers),
                ("initContainers", &e.init_containers),
            ] {
                if let Some(want) = want {
                    let got = names(p, key);
                    if &got != want {
                        failures.push(format!("{name}: expected {key} {want:?}, got {got:?}"));
                    }
                }
            }
            for (container, want) in &e.states {
                let statuses = p["status"]["containerStatuses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(
                        p["status"]["initContainerStatuses"]
                            .as_array()
                            .into_iter()
                            .flatten(),
                    );
                let Some(s) = statuses.clone().find(|s| s["name"] == container.as_str()) else {
                    failures.push(format!(
                        "{name}: expected container {container} {}, but it has no status",
                        want.state()
                    ));
                    continue;
                };
                let word = state_word(s);
                if word != want.state() {
                    failures.push(format!(
                        "{name}: expected container {container} {}, got {}",
                        want.state(),
                        container_state(s)
                    ));
                }
                if let Some(sub) = want.message() {
                    let full = container_state(s);
                    let msg = format!(
                        "{full} {}",
                        s["state"]["waiting"]["message"].as_str().unwrap_or("")
                    );
                    if !msg.contains(sub) {
                        failures.push(format!("{name}: expected container {container}'s message to contain {sub:?}, got {full:?}"));
                    }
                }
            }
        }
    }
    for e in expect
        .rejected
        .iter()
        .filter(|e| e.applies_to(observed.kubernetes))
    {
        // An object may be refused more than once, for different reasons
        // (a controller's retries while a webhook is down, then too slow):
        // any of its refusals may hold the expected words.
        let refusals: Vec<&str> = observed
            .rejections
            .iter()
            .filter(|r| r.namespace == e.namespace && r.kind == e.kind && r.name == e.name)
            .map(|r| r.message.as_str())
            .collect();
        if refusals.is_empty() {
            failures.push(format!(
                "expected {} {}/{} to be rejected, but it was not",
                e.kind, e.namespace, e.name
            ));
        } else if !refusals.iter().any(|m| m.contains(&e.message)) {
            failures.push(format!(
                "{} {}/{} was rejected, but the message lacks {:?}: {}",
                e.kind,
                e.namespace,
                e.name,
                e.message,
                refusals.join(" | ")
            ));
        }
    }
    for e in expect
        .warned
        .iter()
        .filter(|e| e.applies_to(observed.kubernetes))
    {
        let warnings: Vec<&str> = observed
            .warnings
            .iter()
            .filter(|w| w.namespace == e.namespace && w.kind == e.kind && w.name == e.name)
            .map(|w| w.message.as_str())
            .collect();
        if warnings.is_empty() {
            failures.push(format!(
                "expected a warning for {} {}/{}, but none came",
                e.kind, e.namespace, e.name
            ));
        } else if !warnings.iter().any(|m| m.contains(&e.message)) {
            failures.push(format!(
                "{} {}/{} was warned, but no warning has {:?}: {}",
                e.kind,
                e.namespace,
                e.name,
                e.message,
                warnings.join(" | ")
            ));
        }
    }
    for e in &expect.workloads {
        let w = observed.workloads.iter().find(|w| {
            w["kind"] == e.kind.as_str()
                && w["metadata"]["namespace"] == e.namespace.as_str()
                // A workload created from a generateName is named by it.
                && (w["metadata"]["name"] == e.name.as_str()
                    || w["metadata"]["generateName"] == e.name.as_str())
        });
        match w {
            None => failures.push(format!(
                "expected {} {}/{} to exist",
                e.kind, e.namespace, e.name
            )),
            Some(w) => {
                let got: Vec<String> = w["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["name"].as_str().map(String::from))
                    .collect();
                if got != e.containers {
                    failures.push(format!(
                        "{} {}/{}: expected template containers {:?}, got {got:?}",
                        e.kind, e.namespace, e.name, e.containers
                    ));
                }
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Rejection;

    fn scenario(expect: &str) -> Scenario {
        let text =
            format!("apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nexpect:\n{expect}");
        let base: serde_json::Value =
            serde_yaml::from_str(sidecar_injector::config::DEFAULT_CONFIG_YAML).unwrap();
        crate::scenario::parse(std::path::Path::new("scenarios/x.yaml"), &text, &base).unwrap()
    }

    fn refused(message: &str) -> Rejection {
        Rejection {
            namespace: "d".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            message: message.into(),
        }
    }

    #[test]
    fn any_refusal_of_an_object_may_hold_the_expected_words() {
        let s = scenario(
            "  rejected:\n  - {namespace: d, kind: Deployment, name: web, message: deadline exceeded}\n",
        );
        let mut observed = Observed {
            rejections: vec![refused("connect: connection refused")],
            ..Default::default()
        };
        let failures = check(&s, &observed);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("lacks \"deadline exceeded\": connect: connection refused"));
        // Refused a second time, for the expected reason: met.
        observed
            .rejections
            .push(refused("context deadline exceeded"));
        assert_eq!(check(&s, &observed), Vec::<String>::new());
        // Not refused at all.
        observed.rejections.clear();
        assert!(check(&s, &observed)[0].contains("to be rejected, but it was not"));
    }

    #[test]
    fn a_listed_warning_must_come_and_an_unlisted_one_is_no_failure() {
        let s = scenario(
            "  warned:\n  - {namespace: d, kind: Pod, name: web, message: duplicate port}\n",
        );
        let warning = |message: &str| crate::cluster::Warning {
            namespace: "d".into(),
            kind: "Pod".into(),
            name: "web".into(),
            message: message.into(),
        };
        let mut observed = Observed::default();
        assert!(check(&s, &observed)[0].contains("expected a warning for Pod d/web, but none came"));
        observed.warnings.push(warning("would violate PodSecurity"));
        assert!(check(&s, &observed)[0]
            .contains("no warning has \"duplicate port\": would violate PodSecurity"));
        observed.warnings.push(warning(
            "spec.containers[1].ports[0]: duplicate port definition with spec.containers[0].ports[0]",
        ));
        assert_eq!(check(&s, &observed), Vec::<String>::new());
    }
}
