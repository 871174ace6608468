//! The apiserver's side of admission against a real injector over TLS.
use k8s_openapi::ByteString;
use sidecar_injector::Config;

use super::*;
use crate::subject::InjectorServer;

fn attrs(labels: &BTreeMap<String, String>) -> Attributes<'_> {
    Attributes::pod_create("demo", labels)
}

fn pod(port: i64) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "demo", "labels": {"app": "a"}},
           "spec": {"containers": [{"name": "app", "image": "a", "ports": [{"containerPort": port}]}]}})
}

fn enabled() -> BTreeMap<String, String> {
    BTreeMap::from([("sidecar-injector".to_string(), "enabled".to_string())])
}

#[tokio::test]
async fn calls_the_injector_over_tls_and_applies_the_patch() {
    let inj = InjectorServer::start(Config::builtin(), true)
        .await
        .unwrap();
    let hooks = inj.webhooks(&[WebhookSpec::default()]);
    let labels = enabled();
    let out = WebhookCaller::new()
        .admit(&hooks, &attrs(&labels), pod(10000))
        .await;
    let Admitted::Allowed { object, warnings } = out else {
        panic!("{out:?}")
    };
    assert_eq!(object["spec"]["containers"][1]["name"], "envoy");
    assert_eq!(
        object["spec"]["containers"][1]["ports"][0]["containerPort"],
        10001
    );
    assert_eq!(warnings.len(), 1);
    inj.stop().await;
}

#[tokio::test]
async fn a_v1beta1_only_webhook_is_sent_a_v1beta1_review() {
    let inj = InjectorServer::start(Config::builtin(), true)
        .await
        .unwrap();
    let spec = WebhookSpec {
        admission_review_versions: vec!["v1beta1".into()],
        ..WebhookSpec::default()
    };
    let hooks = inj.webhooks(&[spec]);
    let labels = enabled();
    let mut caller = WebhookCaller::new();
    let out = caller.admit(&hooks, &attrs(&labels), pod(80)).await;
    let Admitted::Allowed { object, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(object["spec"]["containers"][1]["name"], "envoy");
    assert!(
        caller.log[0].contains("(admission.k8s.io/v1beta1): allowed with a patch"),
        "{:?}",
        caller.log
    );
    // A version the apiserver does not speak is the webhook's failure.
    let spec = WebhookSpec {
        admission_review_versions: vec!["v2".into()],
        ..WebhookSpec::default()
    };
    let hooks = inj.webhooks(&[spec]);
    let out = caller.admit(&hooks, &attrs(&labels), pod(80)).await;
    assert!(
        matches!(&out, Admitted::Rejected { message: m, .. } if m.contains("does not accept known AdmissionReview versions")),
        "{out:?}"
    );
    inj.stop().await;
}

#[test]
fn requests_name_who_sends_them() {
    let rs = Requester::for_owner("ReplicaSet");
    assert_eq!(
        rs.user_info()["username"],
        "system:serviceaccount:kube-system:replicaset-controller"
    );
    assert_eq!(
        rs.options("CREATE", false),
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"})
    );
    assert_eq!(
        Requester::Harness.options("UPDATE", false),
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions", "fieldManager": "injector-harness"})
    );
    assert_eq!(
        Requester::Harness.options("CREATE", true),
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "injector-harness", "dryRun": ["All"]})
    );
    assert_eq!(Requester::for_owner(""), Requester::Harness);
}

#[tokio::test]
async fn namespace_selector_gates_the_call() {
    let inj = InjectorServer::start(Config::builtin(), true)
        .await
        .unwrap();
    let hooks = inj.webhooks(&[WebhookSpec::default()]);
    let none = BTreeMap::new();
    let out = WebhookCaller::new()
        .admit(&hooks, &attrs(&none), pod(80))
        .await;
    assert_eq!(
        out,
        Admitted::Allowed {
            object: pod(80),
            warnings: vec![]
        }
    );
    inj.stop().await;
}

#[tokio::test]
async fn failure_policy_decides_when_the_injector_is_down() {
    let inj = InjectorServer::start(Config::builtin(), false)
        .await
        .unwrap();
    let labels = enabled();
    let fail = inj.webhooks(&[WebhookSpec::default()]);
    let out = WebhookCaller::new()
        .admit(&fail, &attrs(&labels), pod(80))
        .await;
    let Admitted::Rejected { message: m, .. } = out else {
        panic!("{out:?}")
    };
    assert!(m.starts_with("Internal error occurred: failed calling webhook \"sidecar-injector.harness.io\": failed to call webhook: Post \"https://127.0.0.1:"), "{m}");
    assert!(m.ends_with("connect: connection refused"), "{m}");
    let ignore = inj.webhooks(&[WebhookSpec {
        failure_policy: "Ignore".into(),
        ..WebhookSpec::default()
    }]);
    let out = WebhookCaller::new()
        .admit(&ignore, &attrs(&labels), pod(80))
        .await;
    assert_eq!(
        out,
        Admitted::Allowed {
            object: pod(80),
            warnings: vec![]
        }
    );
}

#[tokio::test]
async fn a_slow_injector_times_out_with_the_apiservers_message() {
    let inj = InjectorServer::start(Config::builtin(), true)
        .await
        .unwrap();
    let hooks = inj.webhooks(&[WebhookSpec {
        timeout_seconds: 1,
        ..WebhookSpec::default()
    }]);
    let labels = enabled();
    inj.set_delay(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let out = WebhookCaller::new()
        .admit(&hooks, &attrs(&labels), pod(80))
        .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
        "the caller gives up at timeoutSeconds: {waited:?}"
    );
    let Admitted::Rejected { message: m, .. } = out else {
        panic!("{out:?}")
    };
    assert!(
        m.starts_with("Internal error occurred: failed calling webhook \"sidecar-injector.harness.io\": failed to call webhook: Post \"https://127.0.0.1:"),
        "{m}"
    );
    assert!(m.contains("/mutate?timeout=1s\": "), "{m}");
    inj.set_delay(Duration::ZERO);
    let out = WebhookCaller::new()
        .admit(&hooks, &attrs(&labels), pod(80))
        .await;
    assert!(matches!(out, Admitted::Allowed { .. }), "{out:?}");
    inj.stop().await;
}

#[tokio::test]
async fn a_wrong_ca_bundle_fails_the_call() {
    let inj = InjectorServer::start(Config::builtin(), true)
        .await
        .unwrap();
    let mut hooks = inj.webhooks(&[WebhookSpec::default()]);
    let other = sidecar_injector::certs::generate("x", "y", &[]).unwrap();
    hooks[0].client_config.ca_bundle = Some(ByteString(other.ca_pem.into_bytes()));
    let labels = enabled();
    let out = WebhookCaller::new()
        .admit(&hooks, &attrs(&labels), pod(80))
        .await;
    assert!(
        matches!(out, Admitted::Rejected { message: ref m, .. } if m.contains("failed calling webhook")),
        "{out:?}"
    );
    inj.stop().await;
}

#[test]
fn selectors_use_full_set_semantics() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    let req = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    };
    let sel = |reqs: Vec<LabelSelectorRequirement>| LabelSelector {
        match_labels: None,
        match_expressions: Some(reqs),
    };
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let not_in = sel(vec![req("env", "NotIn", &["prod"])]);
    assert!(selector_holds(Some(&not_in), &labels(&[("env", "dev")])));
    assert!(!selector_holds(Some(&not_in), &labels(&[("env", "prod")])));
    assert!(
        selector_holds(Some(&not_in), &labels(&[])),
        "NotIn holds when the key is absent"
    );
    let exists = sel(vec![req("team", "Exists", &[])]);
    assert!(selector_holds(Some(&exists), &labels(&[("team", "")])));
    assert!(!selector_holds(Some(&exists), &labels(&[])));
    let absent = sel(vec![req("skip", "DoesNotExist", &[])]);
    assert!(selector_holds(Some(&absent), &labels(&[("team", "a")])));
    assert!(!selector_holds(Some(&absent), &labels(&[("skip", "yes")])));
    assert!(selector_holds(None, &labels(&[])));
    assert!(selector_holds(
        Some(&LabelSelector::default()),
        &labels(&[])
    ));
    let unknown = sel(vec![req("a", "Near", &["b"])]);
    assert!(!selector_holds(Some(&unknown), &labels(&[("a", "b")])));
}

#[test]
fn rules_match_operations_resources_and_scope() {
    let labels = BTreeMap::new();
    let a = attrs(&labels);
    let rule = |ops: &[&str], res: &str, scope: &str| RuleWithOperations {
        operations: Some(ops.iter().map(|s| s.to_string()).collect()),
        api_groups: Some(vec!["".into()]),
        api_versions: Some(vec!["v1".into()]),
        resources: Some(vec![res.into()]),
        scope: Some(scope.into()),
    };
    assert!(rule_matches(&rule(&["CREATE"], "pods", "*"), &a));
    assert!(rule_matches(&rule(&["*"], "*", "Namespaced"), &a));
    assert!(!rule_matches(&rule(&["UPDATE"], "pods", "*"), &a));
    assert!(!rule_matches(&rule(&["CREATE"], "configmaps", "*"), &a));
    assert!(!rule_matches(&rule(&["CREATE"], "pods", "Cluster"), &a));
}

#[test]
fn a_dry_run_says_so_in_the_request_and_its_options() {
    let labels = BTreeMap::new();
    let pod = json!({"metadata": {"name": "web"}});
    let attrs = Attributes {
        dry_run: true,
        ..Attributes::pod_create("shop", &labels)
    };
    let request = review_request(&attrs, &pod, "uid-1");
    assert_eq!(request["dryRun"], true);
    assert_eq!(request["options"]["dryRun"], json!(["All"]));
    let real = review_request(&Attributes::pod_create("shop", &labels), &pod, "uid-1");
    assert_eq!(real["dryRun"], false);
    assert!(real["options"].get("dryRun").is_none());
}

#[test]
fn registration_allows_only_the_v1_side_effect_classes() {
    let hook = |side_effects: &str| MutatingWebhook {
        side_effects: side_effects.into(),
        ..MutatingWebhook::default()
    };
    assert_eq!(check_registration(0, &hook("None")), Ok(()));
    assert_eq!(check_registration(0, &hook("NoneOnDryRun")), Ok(()));
    assert_eq!(
        check_registration(1, &hook("Some")),
        Err("webhooks[1].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"".into())
    );
}
