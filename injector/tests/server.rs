//! The webhook over real TLS on 127.0.0.1, called the way an apiserver calls
//! it: HTTPS, trusting only the CA in the caBundle.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use sidecar_injector::certs::{self, CertBundle};
use sidecar_injector::server::{self, ConfigSource, RunningServer, ServerOptions};

struct Fixture {
    dir: tempfile::TempDir,
    bundle: CertBundle,
    server: RunningServer,
}

fn bundle() -> CertBundle {
    certs::generate(
        "sidecar-injector",
        "test",
        &["127.0.0.1".into(), "localhost".into()],
    )
    .unwrap()
}

async fn start_with(config: ConfigSource, dir: tempfile::TempDir) -> Fixture {
    let bundle = bundle();
    bundle.write_to(dir.path()).unwrap();
    let mut opts = ServerOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
    );
    opts.config = config;
    opts.reload_interval = Duration::from_millis(50);
    opts.shutdown_grace = Duration::from_secs(2);
    let server = server::start(opts).await.unwrap();
    Fixture {
        dir,
        bundle,
        server,
    }
}

async fn start() -> Fixture {
    start_with(ConfigSource::Builtin, tempfile::tempdir().unwrap()).await
}

fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!(
            "https://localhost:{}{path}",
            self.server.local_addr().port()
        )
    }
    fn client(&self) -> reqwest::Client {
        client(&self.bundle.ca_pem)
    }
}

fn review(port: i64) -> Value {
    sidecar_injector::admission::pod_create_review(
        "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
        "default",
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "backend-6bdf5d484b-", "namespace": "default", "labels": {"app": "backend"}},
            "spec": {"containers": [{"name": "backend", "image": "backend-service:v1", "ports": [{"containerPort": port, "protocol": "TCP"}]}]}
        }),
    )
}

/// Posts a review and returns the patched pod's sidecar port.
async fn sidecar_port(fx: &Fixture, body: &Value) -> i64 {
    let resp: Value = fx
        .client()
        .post(fx.url("/mutate"))
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let patch = base64::engine::general_purpose::STANDARD
        .decode(resp["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    let mut pod = body["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).unwrap();
    pod["spec"]["containers"][1]["ports"][0]["containerPort"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn review_over_tls_returns_a_patch() {
    let fx = start().await;
    let resp = fx
        .client()
        .post(fx.url("/mutate"))
        .json(&review(10000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(body["kind"], "AdmissionReview");
    assert_eq!(
        body["response"]["uid"],
        "0df28fbd-5f5f-11e8-bc74-36e6bb280816"
    );
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(body["response"]["patchType"], "JSONPatch");
    assert!(body["response"]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("10001"));
    assert_eq!(sidecar_port(&fx, &review(10000)).await, 10001);
    // /inject is the same handler.
    let resp = fx
        .client()
        .post(fx.url("/inject"))
        .json(&review(80))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    fx.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_requests_get_415_413_and_400() {
    let fx = start().await;
    let c = fx.client();
    let resp = c
        .post(fx.url("/mutate"))
        .header("content-type", "text/plain")
        .body(serde_json::to_vec(&review(80)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    assert!(resp.text().await.unwrap().contains("application/json"));

    let resp = c.post(fx.url("/mutate")).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 415, "no Content-Type at all");

    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(7 * 1024 * 1024));
    let resp = c
        .post(fx.url("/mutate"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    let resp = c
        .post(fx.url("/mutate"))
        .header("content-type", "application/json; charset=utf-8")
        .body("{\"apiVersion\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("not an AdmissionReview") && text.contains("line 1"),
        "{text}"
    );

    let resp = c
        .post(fx.url("/mutate"))
        .json(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("request: is missing"));

    let metrics = c
        .get(fx.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "sidecar_injector_requests_total{path=\"/mutate\",code=\"415\"} 2",
        "sidecar_injector_requests_total{path=\"/mutate\",code=\"413\"} 1",
        "sidecar_injector_requests_total{path=\"/mutate\",code=\"400\"} 2",
        "sidecar_injector_errors_total{kind=\"bad_json\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    fx.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let fx = start().await;
    let c = fx.client();
    assert_eq!(
        c.get(fx.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(c.get(fx.url("/readyz")).send().await.unwrap().status(), 200);
    c.post(fx.url("/mutate"))
        .json(&review(80))
        .send()
        .await
        .unwrap();
    let mut host = review(80);
    host["request"]["object"]["spec"]["hostNetwork"] = json!(true);
    c.post(fx.url("/mutate")).json(&host).send().await.unwrap();
    let resp = c.get(fx.url("/metrics")).send().await.unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = resp.text().await.unwrap();
    for line in [
        "sidecar_injector_injections_total 1",
        "sidecar_injector_skipped_total{reason=\"host_network\"} 1",
        "sidecar_injector_requests_total{path=\"/mutate\",code=\"200\"} 2",
        "sidecar_injector_review_duration_seconds_count 2",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    fx.server.state().set_ready(false);
    assert_eq!(c.get(fx.url("/readyz")).send().await.unwrap().status(), 503);
    fx.server.shutdown().await.unwrap();
}

fn write_bundle(b: &CertBundle, dir: &Path) {
    // Write to temporaries and rename, as a Secret volume update would swap
    // files rather than truncate them in place.
    for (name, pem) in [("tls.crt", &b.cert_pem), ("tls.key", &b.key_pem)] {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, pem).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
}

#[tokio::test]
async fn rotated_certificate_is_served_to_new_handshakes_without_dropping_connections() {
    let fx = start().await;
    let old = fx.client();
    // Open a keep-alive connection with the old certificate.
    assert_eq!(
        old.get(fx.url("/healthz")).send().await.unwrap().status(),
        200
    );

    let next = bundle();
    write_bundle(&next, fx.dir.path());
    let new = client(&next.ca_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if new.get(fx.url("/healthz")).send().await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The pooled connection made before the rotation still works...
    assert_eq!(
        old.get(fx.url("/healthz")).send().await.unwrap().status(),
        200
    );
    // ...but a fresh handshake trusting only the old CA now fails.
    let fresh_old = client(&fx.bundle.ca_pem);
    assert!(fresh_old.get(fx.url("/healthz")).send().await.is_err());
    let metrics = new
        .get(fx.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sidecar_injector_cert_reloads_total{result=\"success\"}"),
        "{metrics}"
    );
    fx.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn config_reload_takes_good_files_and_survives_broken_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    let keep = sidecar_injector::config::DEFAULT_CONFIG_YAML
        .replace("onPortConflict: remap", "onPortConflict: keep");
    std::fs::write(&path, &keep).unwrap();
    let fx = start_with(ConfigSource::File(path.clone()), dir).await;
    assert_eq!(
        sidecar_port(&fx, &review(10000)).await,
        10000,
        "keep: the clash stays"
    );

    let tmp = fx.dir.path().join(".config.tmp");
    std::fs::write(&tmp, sidecar_injector::config::DEFAULT_CONFIG_YAML).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sidecar_port(&fx, &review(10000)).await != 10001 {
        assert!(
            Instant::now() < deadline,
            "the new config never took effect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    std::fs::write(&path, "onPortConflict: [broken\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = fx
            .client()
            .get(fx.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains("sidecar_injector_config_reloads_total{result=\"failure\"} 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken config was never noticed:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sidecar_port(&fx, &review(10000)).await,
        10001,
        "the last good config stays"
    );
    assert_eq!(
        fx.client()
            .get(fx.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    fx.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn startup_fails_clearly_on_missing_certs_and_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ServerOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().join("nope.crt"),
        dir.path().join("nope.key"),
    );
    let err = server::start(opts).await.unwrap_err().to_string();
    assert!(
        err.contains("nope.crt") && err.contains("cannot read"),
        "{err}"
    );

    bundle().write_to(dir.path()).unwrap();
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(
        &cfg,
        "containers:\n- name: x\n  image: y\n  ports: [{containerPort: high}]\n",
    )
    .unwrap();
    let mut opts = ServerOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
    );
    opts.config = ConfigSource::File(cfg);
    let err = server::start(opts).await.unwrap_err().to_string();
    assert!(
        err.contains("bad.yaml:4:") && err.contains("containers[0].ports[0].containerPort"),
        "{err}"
    );
}

#[tokio::test]
async fn shutdown_stops_accepting_connections() {
    let fx = start().await;
    let addr = fx.server.local_addr();
    fx.server.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Sends `body` as one HTTP/2 POST to /mutate on a fresh TLS connection
/// (ALPN h2 only, so HTTP/1.1 cannot stand in). Returns the response status
/// and text, and how the upload ended: Ok once every byte went out with
/// END_STREAM, or the error that cut it (a RST_STREAM from the server).
async fn h2_post(fx: &Fixture, body: Vec<u8>) -> (u16, String, Result<(), String>) {
    use bytes::Bytes;

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut fx.bundle.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(sidecar_injector::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(fx.server.local_addr())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (client, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();

    let request = http::Request::post(fx.url("/mutate"))
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(())
        .unwrap();
    let (response, mut upload) = client.send_request(request, false).unwrap();
    let sender = tokio::spawn(async move {
        let mut rest = Bytes::from(body);
        while !rest.is_empty() {
            upload.reserve_capacity(rest.len().min(16 * 1024));
            let granted = match std::future::poll_fn(|cx| upload.poll_capacity(cx)).await {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("stream closed while uploading".to_string()),
            };
            let chunk = rest.split_to(granted.min(rest.len()));
            let last = rest.is_empty();
            upload.send_data(chunk, last).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("no response within 10 s")
        .expect("the response never arrived: the stream failed");
    let status = response.status().as_u16();
    let mut recv = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.expect("response body cut off");
        let _ = recv.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    let upload = tokio::time::timeout(Duration::from_secs(10), sender)
        .await
        .expect("upload still running after 10 s")
        .unwrap();
    (status, String::from_utf8_lossy(&text).into_owned(), upload)
}

#[tokio::test]
async fn http2_body_over_the_limit_gets_413_and_a_clean_end_of_stream() {
    let fx = start().await;

    // 8 MiB against the default 6 MiB limit: more than the server's 1 MiB
    // stream window past the limit, so the upload can only finish if the
    // server keeps reading after its 413. It must: clients that cannot take
    // a reset in the middle of their upload (curl) would never show the 413.
    let over = format!("{{\"pad\":\"{}\"}}", "x".repeat(8 * 1024 * 1024));
    let (status, text, upload) = h2_post(&fx, over.into_bytes()).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("limit"), "{text}");
    assert_eq!(upload, Ok(()), "the stream did not end cleanly");

    // A body under the limit on the same server still works over HTTP/2.
    let (status, text, upload) = h2_post(&fx, serde_json::to_vec(&review(80)).unwrap()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(upload, Ok(()));

    let metrics = fx
        .client()
        .get(fx.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sidecar_injector_requests_total{path=\"/mutate\",code=\"413\"} 1"),
        "{metrics}"
    );
    fx.server.shutdown().await.unwrap();
}

/// A TLS 1.2 ClientHello whose server_name extension carries `sni` as a
/// host_name, whatever it holds: what a load tool that puts `host:port` (or
/// an IP address) there sends. rustls's client refuses to build one, so the
/// bytes are laid out here.
fn client_hello(sni: &str) -> Vec<u8> {
    fn u16be(n: usize) -> [u8; 2] {
        (n as u16).to_be_bytes()
    }
    fn ext(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut e = kind.to_be_bytes().to_vec();
        e.extend(u16be(body.len()));
        e.extend(body);
        e
    }
    let mut name = vec![0u8]; // host_name
    name.extend(u16be(sni.len()));
    name.extend(sni.as_bytes());
    let mut server_name = u16be(name.len()).to_vec();
    server_name.extend(name);
    let mut extensions = ext(0x0000, &server_name);
    extensions.extend(ext(0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17])); // x25519, P-256
    extensions.extend(ext(0x000b, &[1, 0])); // uncompressed points
    extensions.extend(ext(0x000d, &[0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01])); // ECDSA, RSA-PSS, RSA
    let mut hello = vec![0x03, 0x03]; // TLS 1.2
    hello.extend([7u8; 32]); // random
    hello.push(0); // no session id
    hello.extend([0, 4, 0xc0, 0x2b, 0xc0, 0x2f]); // ECDHE-ECDSA/RSA-AES128-GCM-SHA256
    hello.extend([1, 0]); // null compression
    hello.extend(u16be(extensions.len()));
    hello.extend(extensions);
    let mut handshake = vec![1u8, 0]; // client_hello, 24-bit length
    handshake.extend(u16be(hello.len()));
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(u16be(handshake.len()));
    record.extend(handshake);
    record
}

/// The first TLS record the server answers `hello` with: its content type
/// and the first bytes of its body.
async fn first_record(addr: std::net::SocketAddr, hello: &[u8]) -> (u8, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(hello).await.unwrap();
    let mut header = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut header))
        .await
        .expect("no answer within 5 s")
        .unwrap();
    let len = u16::from_be_bytes([header[3], header[4]]) as usize;
    let mut body = vec![0u8; len.min(4)];
    s.read_exact(&mut body).await.unwrap();
    (header[0], body)
}

/// What the server does with a server name that is not a DNS name. An IP
/// address there is ignored and the handshake goes on, as Go's and nginx's
/// servers do. Anything else that is not a DNS name (`127.0.0.1:443`) is
/// refused with a fatal illegal_parameter alert: rustls 0.23 has no setting
/// to ignore it (0.24 adds one), and an apiserver never sends such a name
/// (Go's client sends the URL's host name, and none for an IP address).
/// Pinned here so a rustls upgrade that changes either shows up.
#[tokio::test]
async fn a_server_name_that_is_not_a_dns_name() {
    let fx = start().await;
    let addr = fx.server.local_addr();
    const HANDSHAKE: u8 = 0x16;
    const ALERT: u8 = 0x15;
    let (kind, body) = first_record(addr, &client_hello("localhost")).await;
    assert_eq!(
        (kind, body[0]),
        (HANDSHAKE, 2),
        "a ServerHello for a DNS name"
    );
    let (kind, body) = first_record(addr, &client_hello("127.0.0.1")).await;
    assert_eq!((kind, body[0]), (HANDSHAKE, 2), "an IP address is ignored");
    let (kind, body) = first_record(addr, &client_hello("127.0.0.1:443")).await;
    // fatal (2), illegal_parameter (47)
    assert_eq!(
        (kind, &body[..2]),
        (ALERT, &[2u8, 47][..]),
        "host:port is refused"
    );
    // The server is still there for the next client.
    let health = fx.client().get(fx.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    fx.server.shutdown().await.unwrap();
}
