//! Smoke tests of the two images `kind/build-images.sh` builds, run as plain
//! containers through testcontainers (e2e feature: they need Docker, which
//! the script starts with `kind/docker.sh` when none runs):
//!
//! - the injector image serves `/healthz` and answers an AdmissionReview
//!   over TLS, with its certificates copied in where a Secret would be
//!   mounted;
//! - the probe image fails with "Address already in use" when a second
//!   container in the same network namespace (as in a pod) binds its port.
#![cfg(feature = "e2e")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};
use testcontainers::core::wait::ExitWaitStrategy;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{CopyDataSource, CopyTargetOptions, GenericImage, ImageExt};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the images once per test binary (unless HARNESS_BUILD_IMAGES=0
/// says they are there already).
fn images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var("HARNESS_BUILD_IMAGES").as_deref() == Ok("0") {
            return;
        }
        let status = Command::new(workspace().join("kind/build-images.sh"))
            .current_dir(workspace())
            .status()
            .expect("running kind/build-images.sh");
        assert!(status.success(), "kind/build-images.sh failed: {status}");
    });
}

fn data(bytes: &str) -> CopyDataSource {
    CopyDataSource::Data(bytes.as_bytes().to_vec())
}

#[tokio::test]
async fn the_injector_image_serves_health_and_admission_over_tls() {
    images();
    let bundle = sidecar_injector::certs::generate(
        "sidecar-injector",
        "smoke",
        &["localhost".into(), "127.0.0.1".into()],
    )
    .unwrap();
    // The image's default command reads the certificates where the
    // Deployment mounts its Secret; the server runs as 65532, so the key is
    // copied readable by it as the kubelet's Secret volume would make it.
    let container = GenericImage::new("sidecar-injector", "dev")
        .with_exposed_port(8443.tcp())
        .with_wait_for(WaitFor::message_on_stderr(
            "serving admission webhook over TLS",
        ))
        .with_copy_to(
            CopyTargetOptions::new("/etc/sidecar-injector/certs/tls.crt").with_mode(0o444),
            data(&bundle.cert_pem),
        )
        .with_copy_to(
            CopyTargetOptions::new("/etc/sidecar-injector/certs/tls.key").with_mode(0o444),
            data(&bundle.key_pem),
        )
        .start()
        .await
        .expect("starting sidecar-injector:dev");
    let port = container.get_host_port_ipv4(8443).await.unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(bundle.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "backend", "namespace": "smoke"},
        "spec": {"containers": [{"name": "backend", "image": "backend:v1",
                                 "ports": [{"containerPort": 10000, "protocol": "TCP"}]}]}
    });
    let review = sidecar_injector::admission::pod_create_review("smoke-uid", "smoke", pod);
    let answer: Value = client
        .post(format!("{base}/mutate"))
        .json(&review)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = &answer["response"];
    assert_eq!(response["uid"], "smoke-uid");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        response["patch"].as_str().expect("a patch"),
    )
    .unwrap();
    let patch: Value = serde_json::from_slice(&patch).unwrap();
    // The built-in config injects envoy, moved off the backend's 10000.
    let text = patch.to_string();
    assert!(text.contains("\"name\":\"envoy\""), "{text}");
    assert!(text.contains("10001"), "{text}");
}

#[tokio::test]
async fn the_probe_image_reports_a_port_clash_in_a_shared_network_namespace() {
    images();
    let app = GenericImage::new("injector-harness/probe", "v1")
        .with_wait_for(WaitFor::message_on_either_std(
            "probe app: listening on 10000",
        ))
        .with_cmd(["--name", "app", "--listen", "10000"])
        .start()
        .await
        .expect("starting the first probe");
    let netns = format!("container:{}", app.id());
    let clash = GenericImage::new("injector-harness/probe", "v1")
        .with_wait_for(WaitFor::exit(ExitWaitStrategy::new().with_exit_code(1)))
        .with_cmd(["--name", "envoy", "--listen", "10000"])
        .with_host_config_modifier(move |hc| {
            // Joining another container's network namespace excludes port
            // publishing, which testcontainers turns on by default.
            hc.network_mode = Some(netns.clone());
            hc.publish_all_ports = Some(false);
            hc.port_bindings = None;
        })
        .start()
        .await
        .expect("starting the second probe");
    let stderr = String::from_utf8(clash.stderr_to_vec().await.unwrap()).unwrap();
    assert!(
        stderr.contains("cannot bind '0.0.0.0:10000': Address already in use"),
        "{stderr}"
    );
    // The first one is unharmed.
    assert!(app.is_running().await.unwrap());
}
