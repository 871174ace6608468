//! The harness as a library, from a test of your own webhook: a scenario
//! written inline, run on the sim with the webhook as a process, its
//! expectations checked and its snapshot asserted with insta
//! (`harness/tests/snapshots/`). This is the example `docs/harness.md`
//! points a webhook author to.

use std::path::{Path, PathBuf};

use injector_harness::{parse_scenario, run_scenario, Backend, RunOptions};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The image-swap webhook (harness/subjects/image-swap) swaps an image no
/// node has for one every node has, in a Deployment's template.
const SCENARIO: &str = r#"
apiVersion: injector-harness/v1
kind: Scenario
name: library-image-swap
subject:
  process:
    startTimeoutSeconds: 300   # cargo run may compile first
    command: [cargo, run, --quiet, -p, image-swap-webhook, --,
      --tls-cert, $(TLS_CERT), --tls-key, $(TLS_KEY), --addr, "127.0.0.1:$(PORT)",
      --config, $(SCENARIO_DIR)/subjects/image-swap.yaml]
  injectedAnnotation: image-swap.harness.io/swapped
webhooks:
- name: image-swap.harness.io
  rules: [{operations: [CREATE], apiGroups: [apps], apiVersions: [v1], resources: [deployments]}]
expect:
  pods:
  - namespace: library
    selector: {app: web}
    count: 2
    injected: true
    ready: 1/1
---
apiVersion: v1
kind: Namespace
metadata: {name: library}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: library}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      # IfNotPresent: a :latest image defaults to Always, and the API
      # server defaults it before the webhook swaps the image.
      - {name: web, image: "knative:latest", imagePullPolicy: IfNotPresent,
         args: [--name, web, --listen, "8080"]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_authors_own_test() {
    // The path names the scenario (its file name is its name) and the
    // directory its process runs in and reads `subjects/` from; the text
    // need not be in a file.
    let path = workspace().join("scenarios/library-image-swap.yaml");
    let s = parse_scenario(&path, SCENARIO).unwrap_or_else(|e| panic!("{e:#}"));
    let options = RunOptions::for_backend(Backend::Sim).unwrap();
    let result = run_scenario(&s, &options).await;
    // Relative to this crate, as insta's own snapshots are.
    injector_harness::check_scenario_snapshot!(result, "tests/snapshots")
        .unwrap_or_else(|e| panic!("{e}"));
    // The webhook did swap: every pod runs the image it was given for
    // knative:latest.
    let run = result.unwrap();
    assert_eq!(run.injected_count(), 2);
    for pod in &run.observed.pods {
        assert_eq!(
            pod["spec"]["containers"][0]["image"],
            "injector-harness/probe:v1"
        );
    }
}

#[test]
fn a_scenario_with_a_mistake_is_refused_naming_its_line_and_field() {
    let text = SCENARIO.replace("    count: 2", "    cuont: 2");
    let e = parse_scenario(Path::new("library-image-swap.yaml"), &text).unwrap_err();
    let message = format!("{e:#}");
    assert!(message.starts_with("library-image-swap.yaml:"), "{message}");
    assert!(message.contains("cuont"), "{message}");
}
