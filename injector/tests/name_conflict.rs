//! A pod that already has a container or volume named like the sidecar's is
//! not injected: through the webhook it is skipped (default) or denied
//! (`onNameConflict: reject`) with the reason `name_conflict`, which the
//! metrics carry as their reason label.

use std::sync::Arc;

use serde_json::{json, Value};
use sidecar_injector::admission::pod_create_review;
use sidecar_injector::server::{self, AppState};
use sidecar_injector::Config;
use tower::ServiceExt;

async fn call(state: &Arc<AppState>, method: &str, path: &str, body: Vec<u8>) -> Vec<u8> {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = server::router(state.clone(), server::DEFAULT_BODY_LIMIT)
        .oneshot(request)
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

async fn review(state: &Arc<AppState>, pod: Value) -> Value {
    let body = serde_json::to_vec(&pod_create_review("u-1", "default", pod)).unwrap();
    serde_json::from_slice(&call(state, "POST", "/mutate", body).await).unwrap()
}

async fn metrics(state: &Arc<AppState>) -> String {
    String::from_utf8(call(state, "GET", "/metrics", Vec::new()).await).unwrap()
}

fn own_envoy() -> Value {
    json!({
        "metadata": {"name": "own-envoy"},
        "spec": {"containers": [
            {"name": "app", "image": "a"},
            {"name": "envoy", "image": "my-envoy"}
        ]}
    })
}

fn own_volume() -> Value {
    json!({
        "metadata": {"name": "own-volume"},
        "spec": {
            "containers": [{"name": "app", "image": "a"}],
            "volumes": [{"name": "envoy-config", "emptyDir": {}}]
        }
    })
}

#[tokio::test]
async fn a_clash_is_skipped_with_a_warning_and_counted_as_name_conflict() {
    let state = AppState::new(Config::builtin(), None);
    for pod in [own_envoy(), own_volume()] {
        let answer = review(&state, pod).await;
        let response = &answer["response"];
        assert_eq!(response["allowed"], true, "{answer}");
        assert!(response.get("patch").is_none(), "patched: {answer}");
        assert_eq!(response["auditAnnotations"]["decision"], "name_conflict");
        let warning = response["warnings"][0].as_str().unwrap_or_default();
        assert!(warning.contains("not injected"), "{answer}");
    }
    let text = metrics(&state).await;
    assert!(
        text.contains("sidecar_injector_skipped_total{reason=\"name_conflict\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("sidecar_injector_injections_total 0"),
        "{text}"
    );
}

#[tokio::test]
async fn under_reject_a_clash_is_denied_naming_it() {
    let mut text = sidecar_injector::config::DEFAULT_CONFIG_YAML.to_string();
    text.push_str("onNameConflict: reject\n");
    let config = Config::from_yaml(&text, "reject").unwrap_or_else(|e| panic!("{e}"));
    let state = AppState::new(config, None);
    let answer = review(&state, own_envoy()).await;
    let response = &answer["response"];
    assert_eq!(response["allowed"], false, "{answer}");
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("container envoy"), "{message}");
    assert!(message.contains("onNameConflict: reject"), "{message}");
    let text = metrics(&state).await;
    assert!(
        text.contains("sidecar_injector_denied_total{reason=\"name_conflict\"} 1"),
        "{text}"
    );
}
