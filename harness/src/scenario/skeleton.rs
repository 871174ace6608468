//! The scenario `injector-harness new NAME` writes: a header (the injector,
//! webhook and step sections as commented-out examples), one namespace and
//! one Deployment, so that a new scenario starts from one that loads and
//! runs.

use super::model::{API_VERSION, KIND};

/// The skeleton `injector-harness new NAME` writes.
pub fn skeleton(name: &str) -> String {
    format!(
        r#"apiVersion: {API_VERSION}
kind: {KIND}
name: {name}
description: >
  What this scenario shows, in a sentence or two.
# injector:
#   config:               # JSON merge patch over scenarios/base/injector.yaml
#     onPortConflict: keep
#   available: true       # false: nothing answers at the webhook's address
# webhooks:               # default: one webhook gated on sidecar-injector=enabled
# - namespaceSelector: {{matchLabels: {{sidecar-injector: enabled}}}}
#   objectSelector: {{matchLabels: {{inject: "true"}}}}
#   failurePolicy: Fail
# steps:
# - rolloutRestart: {{namespace: {name}, name: app}}
expect:
  pods:
  - namespace: {name}
    selector: {{app: app}}
    count: 1
    injected: true
    ready: 2/2
    status: Running
    containers: [app, envoy]
---
apiVersion: v1
kind: Namespace
metadata:
  name: {name}
  labels:
    sidecar-injector: enabled
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
    spec:
      containers:
      - name: app
        image: {image}
        args: ["--name", "app", "--listen", "8080"]
        ports:
        - containerPort: 8080
"#,
        image = crate::probe::PROBE_IMAGE
    )
}

#[cfg(test)]
mod tests {
    use super::super::model::WebhookSpec;
    use super::super::testing::parse_text;
    use super::skeleton;

    #[test]
    fn skeleton_parses() {
        let s = parse_text("demo", &skeleton("demo")).unwrap();
        assert_eq!(s.name(), "demo");
        assert_eq!(s.manifests.len(), 2);
        assert_eq!(s.manifests[1].kind(), "Deployment");
        // The Deployment document starts on the line after its separator.
        let text = skeleton("demo");
        let deployment_line = text.lines().position(|l| l == "kind: Deployment").unwrap(); // 0-based
        assert_eq!(
            s.manifests[1].line, deployment_line,
            "apiVersion is one line above kind"
        );
        assert_eq!(s.header.webhooks, vec![WebhookSpec::default()]);
        assert_eq!(s.header.expect.pods[0].ready.as_deref(), Some("2/2"));
    }
}
