//! The binary, run as a user runs it, on the built-in default config.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_sidecar-injector");

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn review_body() -> Vec<u8> {
    let pod =
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", "image": "a"}]}});
    serde_json::to_vec(&sidecar_injector::admission::pod_create_review(
        "u-1", "default", pod,
    ))
    .unwrap()
}

#[test]
fn review_answers_on_stdout() {
    let out = run(&["review"], &review_body());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["response"]["uid"], "u-1");
    assert_eq!(v["response"]["patchType"], "JSONPatch");
    assert!(v["response"]["patch"].is_string());
}

#[test]
fn review_rejects_what_is_not_an_admission_review_in_one_line() {
    for input in [&b"hello"[..], br#"{"apiVersion":"v1","kind":"Pod"}"#] {
        let out = run(&["review"], input);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<_> = err.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].starts_with("error: "), "{err}");
        assert!(out.stdout.is_empty());
    }
}

/// Runs `review` with info logs on, stderr a pipe (as in a pod's log, a
/// file or CI), and colour not switched off by the environment.
fn review_logs(extra: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .args(extra)
        .arg("review")
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&review_body())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let log = review_logs(&[]);
    assert!(log.contains("admission reviewed"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "escape codes in a non-terminal log: {log:?}"
    );
}

#[test]
fn json_logs_are_one_json_object_per_line() {
    let log = review_logs(&["--log-format", "json"]);
    let lines: Vec<&str> = log.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(v["level"].is_string(), "{line}");
    }
    assert!(log.contains("\"message\":\"admission reviewed\""), "{log}");
    assert!(!log.contains('\x1b'), "{log:?}");
}

#[test]
fn certs_then_manifests_reuse_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(
        &[
            "certs",
            "--service",
            "inj",
            "--namespace",
            "mesh",
            "--out",
            d,
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ca_bundle = String::from_utf8(out.stdout).unwrap().trim().to_string();
    for f in ["ca.crt", "tls.crt", "tls.key"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let out = run(
        &[
            "manifests",
            "--namespace",
            "mesh",
            "--service",
            "inj",
            "--certs-dir",
            d,
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(
        yaml.contains(&ca_bundle),
        "the webhook's caBundle is the CA printed by certs"
    );
}

#[test]
fn bad_config_names_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "policy:\n  enabled: sometimes\n").unwrap();
    let out = run(
        &["review", "--config", cfg.to_str().unwrap()],
        &review_body(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("c.yaml:2:") && err.contains("policy.enabled"),
        "{err}"
    );
}

#[test]
fn inject_reads_stdin_and_check_explains() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: nginx\n    ports:\n    - containerPort: 10000\n";
    let out = run(&["inject", "-f", "-"], pod.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let injected: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(injected["spec"]["containers"][1]["name"], "envoy");
    assert_eq!(
        injected["spec"]["containers"][1]["ports"][0]["containerPort"],
        10001
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("moved to 10001"));

    let out = run(
        &["check", "-f", "-", "--namespace", "kube-system"],
        pod.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ignored_namespace"), "{text}");
}

#[test]
fn check_shows_a_name_conflict_as_not_injected_or_denied() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: own-envoy\nspec:\n  containers:\n  - name: envoy\n    image: my-envoy\n";
    let out = run(&["check", "-f", "-"], pod.as_bytes());
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let row = text.lines().nth(1).unwrap_or_default();
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        columns[..6],
        ["0", "Pod", "own-envoy", "default", "no", "name_conflict"],
        "{text}"
    );
    assert!(text.contains("warning: not injected"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "onNameConflict: reject\ncontainers: [{name: envoy, image: e}]\n",
    )
    .unwrap();
    let out = run(
        &["check", "--config", cfg.to_str().unwrap(), "-f", "-"],
        pod.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let row = text.lines().nth(1).unwrap_or_default();
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(columns[4..6], ["denied", "name_conflict"], "{text}");
    assert!(row.contains("container envoy"), "{text}");
}

/// A directory with a CA and a serving pair for 127.0.0.1 from `certs`.
fn serving_certs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(run(&["certs", "--out", d, "--san", "127.0.0.1"], b"")
        .status
        .success());
    dir
}

#[cfg(unix)]
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = serving_certs();
    let d = dir.path().to_str().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--tls-cert",
            &format!("{d}/tls.crt"),
            "--tls-key",
            &format!("{d}/tls.key"),
            "--addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn serve_on_a_taken_port_says_why_once() {
    let dir = serving_certs();
    let d = dir.path().to_str().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(
        &[
            "serve",
            "--tls-cert",
            &format!("{d}/tls.crt"),
            "--tls-key",
            &format!("{d}/tls.key"),
            "--addr",
            &addr,
        ],
        b"",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {err}"));
    assert!(line.contains(&format!("cannot listen on {addr}")), "{line}");
    // The OS's reason, once (it was printed twice: in the message and again
    // as the error's source).
    assert_eq!(line.matches("Address already in use").count(), 1, "{line}");
}
