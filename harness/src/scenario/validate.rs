//! What serde cannot check in a scenario: that the header is a scenario
//! header named after its file, that its webhooks, steps, subject and
//! expectations make sense, and that each manifest is one the harness can
//! apply. Each check names the field it refuses by its path and points at
//! the line that writes it (see `document.rs`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::document::Document;
use super::error::ScenarioError;
use super::model::{Expectations, Header, Step, WebhookSpec, API_VERSION, KIND};

/// Every check of the header, in the order the header's fields are read.
pub(super) fn check_header(header: &Header, doc: &Document) -> Result<(), ScenarioError> {
    check_identity(header, doc)?;
    check_rejection_minors(header, doc)?;
    check_webhooks(&header.webhooks, doc)?;
    check_steps(header, doc)?;
    check_subject(header, doc)?;
    check_ready(&header.expect, doc)
}

/// `apiVersion`, `kind`, and a `name` that is the file's.
fn check_identity(header: &Header, doc: &Document) -> Result<(), ScenarioError> {
    if header.api_version != API_VERSION {
        return Err(doc.error_at("apiVersion", "apiVersion", format!("must be {API_VERSION}")));
    }
    if header.kind != KIND {
        return Err(doc.error_at(
            "kind",
            "kind",
            format!("must be {KIND} (the first document is the scenario header)"),
        ));
    }
    let stem = doc
        .file()
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    if header.name != stem {
        return Err(doc.error_at(
            "name",
            "name",
            format!("{:?} must match the file name {stem:?}", header.name),
        ));
    }
    Ok(())
}

/// Every refusal's `until`, at the end and at each checkpoint, is a
/// Kubernetes minor.
fn check_rejection_minors(header: &Header, doc: &Document) -> Result<(), ScenarioError> {
    let at_end = header
        .expect
        .rejected
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("expect.rejected[{i}]"), r));
    let at_steps = header.steps.iter().enumerate().flat_map(|(s, step)| {
        let rejected = match step {
            Step::Expect(e) => e.rejected.as_slice(),
            _ => &[],
        };
        rejected
            .iter()
            .enumerate()
            .map(move |(i, r)| (format!("steps[{s}].expect.rejected[{i}]"), r))
    });
    for (item, r) in at_end.chain(at_steps) {
        if let Some(until) = &r.until {
            let field = format!("{item}.until");
            crate::version::Minor::parse(until).map_err(|m| doc.error_at(&field, &field, m))?;
        }
    }
    Ok(())
}

/// Each webhook's policies, timeout and selectors, then names unique
/// across them.
fn check_webhooks(webhooks: &[WebhookSpec], doc: &Document) -> Result<(), ScenarioError> {
    for (i, w) in webhooks.iter().enumerate() {
        let field = |f: &str| format!("webhooks[{i}].{f}");
        let refuse = |f: &str, message: String| doc.error_at(&field(f), field(f), message);
        if !matches!(w.failure_policy.as_str(), "Fail" | "Ignore") {
            return Err(refuse("failurePolicy", "must be Fail or Ignore".into()));
        }
        if !matches!(w.reinvocation_policy.as_str(), "Never" | "IfNeeded") {
            return Err(refuse(
                "reinvocationPolicy",
                "must be Never or IfNeeded".into(),
            ));
        }
        if !(1..=30).contains(&w.timeout_seconds) {
            return Err(refuse("timeoutSeconds", "must be between 1 and 30".into()));
        }
        for (name, sel) in [
            ("namespaceSelector", &w.namespace_selector),
            ("objectSelector", &w.object_selector),
        ] {
            if let Some(sel) = sel {
                sidecar_injector::selector::validate(sel).map_err(|m| refuse(name, m))?;
            }
        }
    }
    let names: BTreeSet<_> = webhooks.iter().map(|w| &w.name).collect();
    if names.len() != webhooks.len() {
        return Err(doc.error_at("webhooks", "webhooks", "webhook names must be unique"));
    }
    Ok(())
}

/// Fault steps must make sense in order: stop a running webhook, start a
/// stopped one; a delay and a scale must be ones the harness can do.
fn check_steps(header: &Header, doc: &Document) -> Result<(), ScenarioError> {
    let mut serving = header.injector.available;
    for (i, step) in header.steps.iter().enumerate() {
        if let Some(message) = step_problem(step, serving) {
            let field = format!("steps[{i}].{}", step.name());
            return Err(doc.error_at(&field, &field, message));
        }
        match step {
            Step::StopInjector => serving = false,
            Step::StartInjector => serving = true,
            _ => {}
        }
    }
    Ok(())
}

/// What is wrong with `step` when the webhook is `serving` (or not) before
/// it.
fn step_problem(step: &Step, serving: bool) -> Option<String> {
    match step {
        Step::StopInjector if !serving => Some("the webhook is not running here".to_string()),
        Step::StartInjector if serving => Some("the webhook is already running here".into()),
        Step::SlowInjector { delay_seconds } if *delay_seconds > 60 => {
            Some(format!("delaySeconds {delay_seconds} is over 60"))
        }
        Step::Patch { target, .. } | Step::Delete { target } if target.api_version().is_none() => {
            Some(format!(
                "{} is not a built-in kind: give its apiVersion",
                target.kind
            ))
        }
        Step::Patch { patch, .. } if !patch.is_object() => {
            Some("patch must be a map (a JSON merge patch)".to_string())
        }
        Step::Scale { kind, .. }
            if !matches!(kind.as_str(), "Deployment" | "ReplicaSet" | "StatefulSet") =>
        {
            Some(format!(
                "cannot scale a {kind}: Deployment, ReplicaSet or StatefulSet"
            ))
        }
        _ => None,
    }
}

/// A subject of the scenario's own takes no built-in injector config, and
/// names what to run.
fn check_subject(header: &Header, doc: &Document) -> Result<(), ScenarioError> {
    let own_subject = header.subject.process.is_some() || header.subject.image.is_some();
    if own_subject && !header.injector.config.is_null() {
        return Err(doc.error_at(
            "injector",
            "injector.config",
            "configures the built-in injector, but this scenario's subject is its own webhook (subject)",
        ));
    }
    if let Some(image) = &header.subject.image {
        if image.name.is_empty() || !(1..=65535).contains(&image.port) {
            return Err(doc.error_at(
                "subject",
                "subject.image",
                "needs a name and a port from 1 to 65535",
            ));
        }
    }
    if let Some(process) = &header.subject.process {
        if process.command.is_empty() {
            return Err(doc.error_at("subject", "subject.process.command", "names no program"));
        }
    }
    Ok(())
}

/// Each pod expectation's `ready` reads as kubectl's `n/m`.
fn check_ready(expect: &Expectations, doc: &Document) -> Result<(), ScenarioError> {
    for (i, p) in expect.pods.iter().enumerate() {
        if let Some(r) = &p.ready {
            let ok = r
                .split_once('/')
                .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
            if !ok {
                let field = format!("expect.pods[{i}].ready");
                return Err(doc.error_at(&field, &field, format!("{r:?} is not n/m")));
            }
        }
    }
    Ok(())
}

/// A manifest has a kind and an apiVersion and a name the harness can send.
/// Whether the cluster serves its kind is the cluster's call, refused as a
/// client refuses it (`no matches for kind ...`), so a scenario can expect
/// that too.
pub(super) fn check_manifest(object: &Value, doc: &Document) -> Result<(), ScenarioError> {
    let kind = object["kind"].as_str().unwrap_or("");
    if kind.is_empty() {
        return Err(doc.error_at("kind", "kind", "every manifest needs a kind"));
    }
    if object["apiVersion"].as_str().unwrap_or("").is_empty() {
        return Err(doc.error_at(
            "apiVersion",
            "apiVersion",
            format!("the {kind} needs an apiVersion"),
        ));
    }
    if let Err(m) = check_manifest_name(kind, object) {
        // The name as written, else the generateName, else the metadata.
        let written = ["name", "generateName"]
            .into_iter()
            .find(|f| object["metadata"].get(f).is_some())
            .map_or("metadata".to_string(), |f| format!("metadata.{f}"));
        return Err(doc.error_at(&written, "metadata.name", format!("{kind}: {m}")));
    }
    Ok(())
}

/// What the harness itself needs of a manifest's name: one it can send. A
/// name or a `generateName` (created as `kubectl create` does); a
/// Namespace needs its name, since other documents refer to it; a name must
/// be usable as a URL path segment, because it is applied by name. Whether
/// the name is valid for its kind is the cluster's call: the sim checks it
/// as the apiserver does, so a scenario can show the refusal.
fn check_manifest_name(kind: &str, object: &Value) -> Result<(), String> {
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let generate_name = object["metadata"]["generateName"].as_str().unwrap_or("");
    if name.is_empty() {
        if kind == "Namespace" {
            return Err("a Namespace needs a name (other documents refer to it by name)".into());
        }
        if generate_name.is_empty() {
            return Err("name or generateName is required".into());
        }
        return Ok(());
    }
    if name == "." || name == ".." || name.contains('/') || name.contains('%') {
        return Err(format!(
            "{name:?} cannot be sent to a cluster: a name may not be '.' or '..' or contain '/' or '%'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::model::Step;
    use super::super::testing::parse_text;

    #[test]
    fn name_must_match_the_file() {
        let e = parse_text(
            "y",
            "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "name");
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn a_refusal_can_end_at_a_minor() {
        use crate::version::Minor;
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nexpect:\n  rejected:\n  - {kind: Service, name: s, message: m, until: v1.35}\n";
        let s = parse_text("x", text).unwrap();
        let r = &s.header.expect.rejected[0];
        assert!(r.applies_to(Some(Minor::new(34))));
        assert!(r.applies_to(Some(Minor::new(35))));
        assert!(!r.applies_to(Some(Minor::new(36))));
        assert!(
            r.applies_to(None),
            "a cluster of unknown version expects it"
        );
        let bad = text.replace("v1.35", "later");
        let e = parse_text("x", &bad).unwrap_err();
        assert_eq!(e.field, "expect.rejected[0].until", "{e}");
        assert_eq!(e.line, Some(6), "{e}");
        assert!(
            e.to_string()
                .contains("'later' is not a Kubernetes version"),
            "{e}"
        );
    }

    #[test]
    fn webhook_policy_values_are_checked() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nwebhooks:\n- failurePolicy: Sometimes\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.field, "webhooks[0].failurePolicy");
        assert_eq!(e.line, Some(5));
    }

    #[test]
    fn an_error_in_the_second_webhook_points_at_its_own_line() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nwebhooks:\n- name: a\n  failurePolicy: Ignore\n  timeoutSeconds: 5\n- name: b\n  failurePolicy: Sometimes\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.field, "webhooks[1].failurePolicy", "{e}");
        assert_eq!(e.line, Some(9), "{e}");
        // A field the second webhook leaves out is that webhook's to answer.
        let text = text.replace("  failurePolicy: Sometimes\n", "  timeoutSeconds: 90\n");
        let e = parse_text("x", &text).unwrap_err();
        assert_eq!(e.field, "webhooks[1].timeoutSeconds", "{e}");
        assert_eq!(e.line, Some(9), "{e}");
    }

    #[test]
    fn an_error_in_the_third_step_points_at_its_own_line() {
        let head = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n";
        // A comment after a step, or a step in flow style, is still that
        // step.
        let text = format!(
            "{head}steps:\n- stopWebhook   # take it down\n- startWebhook  # and back\n- startWebhook\n"
        );
        let e = parse_text("x", &text).unwrap_err();
        assert_eq!(e.field, "steps[2].startWebhook", "{e}");
        assert_eq!(e.line, Some(7), "{e}");
        let text = format!(
            "{head}steps:\n- scale: {{name: a, replicas: 1}}\n- apply:\n    manifests:\n    - {{kind: Job, metadata: {{name: j}}}}\n- {{scale: {{name: j, kind: Job, replicas: 1}}}}\n"
        );
        let e = parse_text("x", &text).unwrap_err();
        assert_eq!(e.field, "steps[2].scale", "{e}");
        assert_eq!(e.line, Some(9), "{e}");
    }

    #[test]
    fn an_error_in_the_second_refusal_points_at_its_own_line() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nexpect:\n  rejected:\n  - {kind: Service, name: a, message: later, until: v1.35}\n  - {kind: Service, name: b, message: m, until: later}\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.field, "expect.rejected[1].until", "{e}");
        assert_eq!(e.line, Some(7), "{e}");
    }

    #[test]
    fn a_manifest_name_error_points_at_its_metadata_not_a_container_name() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: app\nmetadata:\n  name: a/b\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.field, "metadata.name", "{e}");
        assert_eq!(e.line, Some(11), "{e}");
    }

    #[test]
    fn fault_steps_parse_and_are_checked_in_order() {
        let head = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n";
        let text = format!(
            "{head}steps:\n- stopWebhook\n- scale: {{namespace: d, name: web, replicas: 3}}\n- expect:\n    pods: [{{namespace: d, count: 1}}]\n- startInjector\n- slowWebhook: {{delaySeconds: 3}}\n- rotateCert\n"
        );
        let s = parse_text("x", &text).unwrap();
        assert_eq!(
            s.header.steps.iter().map(Step::name).collect::<Vec<_>>(),
            // The older names (startInjector here) read as the new ones.
            [
                "stopWebhook",
                "scale",
                "expect",
                "startWebhook",
                "slowWebhook",
                "rotateCert"
            ]
        );
        assert!(matches!(
            &s.header.steps[1],
            Step::Scale { kind, replicas: 3, .. } if kind == "Deployment"
        ));
        assert!(s.namespaces().contains("d"), "checkpoint namespaces count");

        let e = parse_text("x", &format!("{head}steps:\n- startInjector\n")).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(5), "steps[0].startWebhook"),
            "{e}"
        );
        assert!(e.message.contains("already running"), "{e}");
        let e = parse_text(
            "x",
            &format!("{head}injector: {{available: false}}\nsteps:\n- stopInjector\n"),
        )
        .unwrap_err();
        assert!(e.message.contains("not running"), "{e}");
        let e = parse_text(
            "x",
            &format!("{head}steps:\n- scale: {{name: j, kind: Job, replicas: 1}}\n"),
        )
        .unwrap_err();
        assert_eq!(e.field, "steps[0].scale", "{e}");
        let e = parse_text(
            "x",
            &format!("{head}steps:\n- stopInjector: {{now: true}}\n"),
        )
        .unwrap_err();
        assert!(e.field.starts_with("steps"), "{e}");
    }

    #[test]
    fn an_error_in_the_third_pod_expectation_points_at_its_own_line() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nexpect:\n  pods:\n  - selector: {app: a}\n    ready: 1/1\n  - selector: {app: b}\n    ready: 2/2\n  - selector: {app: c}\n    count: 1\n    ready: two of two\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.field, "expect.pods[2].ready", "{e}");
        assert_eq!(e.line, Some(12), "{e}");
    }

    #[test]
    fn manifest_errors_name_the_line() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a/b\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(8), "metadata.name"),
            "{e}"
        );
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  labels: {a: b}\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.field, "metadata.name", "{e}");
        assert!(
            e.message.contains("name or generateName is required"),
            "{e}"
        );
        // Any kind parses; whether the API serves it is the cluster's call.
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: v1\nkind: Ingress\nmetadata: {name: a}\n";
        assert!(parse_text("x", text).is_ok());
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\nkind: Ingress\nmetadata: {name: a}\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (Some(5), "apiVersion"), "{e}");
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\nkind: Pod\nmetadata: {name: [a\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.field, "(manifest)", "{e}");
        assert!(e.line.unwrap() >= 5, "{e}");
    }

    #[test]
    fn generate_name_stands_in_for_a_name_except_on_namespaces() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n";
        let s = parse_text("x", text).unwrap();
        assert_eq!(s.manifests[0].name(), "migrate-");
        // A name the apiserver refuses is the cluster's to refuse (and the
        // scenario's to expect), not the parser's.
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\n";
        assert_eq!(
            parse_text("x", text).unwrap().manifests[0].name(),
            "Bad_Name"
        );
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  generateName: ns-\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(8), "metadata.name"),
            "{e}"
        );
    }
}
