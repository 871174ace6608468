//! A process subject under the fault steps, outside any scenario: the
//! harness starts a program, talks TLS to it through its proxy, stops,
//! starts, slows it and rotates its certificate, and says clearly what went
//! wrong when the program does not cooperate. The programs are this
//! workspace's two webhooks, started with `cargo run` as a scenario would.
//!
//! With `--features e2e` (a Docker engine): image subjects off the cluster,
//! as local containers, give what the same webhook gives as a process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use injector_harness::scenario::{ProcessSpec, WebhookSpec};
use injector_harness::subject::{ProcessSubject, Subject};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn spec(command: &[&str], timeout: u32) -> ProcessSpec {
    ProcessSpec {
        command: command.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::new(),
        start_timeout_seconds: timeout,
    }
}

/// The port of the URL the webhooks call.
fn front_port(subject: &ProcessSubject) -> u16 {
    let spec: WebhookSpec = serde_yaml::from_str("{}").unwrap();
    let hooks = subject.webhooks(&[spec]);
    let url = hooks[0].client_config.url.clone().unwrap();
    url.trim_start_matches("https://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// How long a TCP connect plus the first byte back takes through the proxy
/// (a TLS ClientHello gets a ServerHello), or the connect error.
fn round_trip(port: u16) -> std::io::Result<Duration> {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    // A minimal TLS 1.2 ClientHello is more than this needs: any bytes make
    // a TLS server answer (an alert at least).
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00])?;
    let mut buf = [0u8; 1];
    s.read_exact(&mut buf)?;
    Ok(started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_injector_as_a_process_takes_every_fault_step() {
    let injector = spec(
        &[
            "cargo",
            "run",
            "--quiet",
            "-p",
            "sidecar-injector",
            "--",
            "serve",
            "--tls-cert",
            "$(TLS_CERT)",
            "--tls-key",
            "$(TLS_KEY)",
            "--addr",
            "127.0.0.1:$(PORT)",
            "--reload-interval",
            "1",
        ],
        600,
    );
    let mut subject = ProcessSubject::process(&injector, &workspace(), true)
        .await
        .unwrap();
    let port = front_port(&subject);
    assert!(subject.serving());
    assert!(round_trip(port).unwrap() < Duration::from_secs(2));

    subject.halt().await.unwrap();
    let refused = round_trip(port).unwrap_err();
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{refused}"
    );

    subject.serve().await.unwrap();
    assert!(round_trip(port).is_ok());

    subject.set_delay(Duration::from_secs(2)).await.unwrap();
    let slow = round_trip(port).unwrap();
    assert!(slow >= Duration::from_secs(2), "{slow:?}");
    subject.set_delay(Duration::ZERO).await.unwrap();
    assert!(round_trip(port).unwrap() < Duration::from_secs(2));

    // The injector reloads its files: the new certificate is presented.
    subject.rotate_cert().await.unwrap();
    subject.halt().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_that_keeps_its_old_certificate_fails_rotate_cert_saying_so() {
    let swap = spec(
        &[
            "cargo",
            "run",
            "--quiet",
            "-p",
            "image-swap-webhook",
            "--",
            "--tls-cert",
            "$(TLS_CERT)",
            "--tls-key",
            "$(TLS_KEY)",
            "--addr",
            "127.0.0.1:$(PORT)",
            "--config",
            "$(SCENARIO_DIR)/scenarios/subjects/image-swap.yaml",
        ],
        600,
    );
    let mut subject = ProcessSubject::process(&swap, &workspace(), true)
        .await
        .unwrap();
    let e = format!("{:#}", subject.rotate_cert().await.unwrap_err());
    assert!(e.contains("still presents its old certificate"), "{e}");
    assert!(e.contains("does not reload $(TLS_CERT)"), "{e}");
    assert!(e.contains("image-swap-webhook"), "names the command: {e}");
    subject.halt().await.unwrap();
}

#[tokio::test]
async fn a_subject_that_exits_or_never_serves_is_reported_with_its_stderr() {
    let exits = spec(&["sh", "-c", "echo cannot read the config >&2; exit 3"], 10);
    let e = ProcessSubject::process(&exits, &workspace(), true)
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap();
    assert!(e.contains("exited (exit status: 3)"), "{e}");
    assert!(e.contains("cannot read the config"), "{e}");

    let silent = spec(&["sh", "-c", "echo listening soon >&2; exec sleep 30"], 1);
    let started = Instant::now();
    let e = ProcessSubject::process(&silent, &workspace(), true)
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap();
    assert!(e.contains("did not serve TLS"), "{e}");
    assert!(e.contains("within 1 s"), "{e}");
    assert!(e.contains("listening soon"), "{e}");
    // Given up after its timeout, not after the program's 30 s.
    assert!(started.elapsed() < Duration::from_secs(10));

    let missing = spec(&["/nonexistent/webhook"], 1);
    let e = ProcessSubject::process(&missing, &workspace(), true)
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap();
    assert!(
        e.contains("cannot start the subject `/nonexistent/webhook`"),
        "{e}"
    );
}

/// Without a Docker engine an image subject off the cluster fails saying
/// what it needs. (Not with e2e: that binary's other test uses the engine,
/// and the variable is the process's.)
#[cfg(not(feature = "e2e"))]
#[tokio::test]
async fn an_image_subject_without_a_docker_engine_says_what_it_needs() {
    std::env::set_var("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let spec: injector_harness::scenario::ImageSpec =
        serde_yaml::from_str("{name: 'webhook:dev', port: 8443}").unwrap();
    let e = injector_harness::subject::ContainerSubject::image(&spec, &workspace(), "t", true)
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap();
    assert!(
        e.contains("cannot start the subject image `webhook:dev` in the local Docker engine"),
        "{e}"
    );
    assert!(e.contains("kind/docker.sh ensure"), "{e}");
}

/// The scenarios whose subject is given both ways, run on the sim as the
/// process and as the image alone (a container of the local engine, made
/// by `kind/build-images.sh`): the same verdict and snapshot, fault steps
/// included, and no container left behind.
#[cfg(feature = "e2e")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_subject_off_the_cluster_gives_what_its_process_gives() {
    use injector_harness::cluster::Backend;
    use injector_harness::run;

    build_images();
    let options = run::RunOptions::for_backend(Backend::Sim).unwrap();
    for name in [
        "port-remap-10001-process",
        "fault-steps-own-subject",
        "image-swap",
        "image-swap-missing-typemeta",
    ] {
        let path = workspace().join(format!("scenarios/{name}.yaml"));
        let scenario = run::load_scenario(&path).unwrap();
        assert!(
            scenario.header.subject.process.is_some() && scenario.header.subject.image.is_some()
        );
        let as_process = run::run_scenario(&scenario, &options)
            .await
            .unwrap_or_else(|e| panic!("{name} as a process: {e:#}"));
        let mut image_only = scenario.clone();
        image_only.header.subject.process = None;
        let as_image = run::run_scenario(&image_only, &options)
            .await
            .unwrap_or_else(|e| panic!("{name} as an image: {e:#}"));
        assert!(
            as_process.passed(),
            "{name} as a process:\n{}",
            as_process.report()
        );
        assert!(
            as_image.passed(),
            "{name} as an image:\n{}",
            as_image.report()
        );
        assert_eq!(
            as_image.snapshot,
            as_process.snapshot,
            "{name}: {}",
            injector_harness::snapshot::versioned::diff(&as_process.snapshot, &as_image.snapshot)
        );
    }
    let left = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=injector-harness/run={}", options.run_id))
        .output()
        .expect("docker ps");
    assert!(
        left.stdout.is_empty(),
        "containers left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// Builds the images once per test binary (unless HARNESS_BUILD_IMAGES=0
/// says they are there already).
#[cfg(feature = "e2e")]
fn build_images() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var("HARNESS_BUILD_IMAGES").as_deref() == Ok("0") {
            return;
        }
        let status = std::process::Command::new(workspace().join("kind/build-images.sh"))
            .current_dir(workspace())
            .status()
            .expect("running kind/build-images.sh");
        assert!(status.success(), "kind/build-images.sh failed: {status}");
    });
}

/// The containers labelled with run `run`, running or not.
#[cfg(feature = "e2e")]
fn containers_of(run: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=injector-harness/run={run}"))
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// SIGINT to a sim run whose image subject is starting (the probe image
/// listens on the port but never speaks TLS, so the harness waits on it):
/// the run exits 130 and its container is gone, though testcontainers'
/// own removal on drop had no time to run.
#[cfg(feature = "e2e")]
#[test]
fn an_interrupted_run_leaves_no_container() {
    build_images();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("base")).unwrap();
    std::fs::copy(
        workspace().join("scenarios/base/injector.yaml"),
        dir.path().join("base/injector.yaml"),
    )
    .unwrap();
    let scenario = dir.path().join("hang.yaml");
    std::fs::write(
        &scenario,
        "apiVersion: injector-harness/v1\nkind: Scenario\nname: hang\n\
         subject:\n  image:\n    name: injector-harness/probe:v1\n    \
         args: [--name, hang, --listen, \"$(PORT)\"]\n    port: 8443\n\
         ---\napiVersion: v1\nkind: Namespace\nmetadata: {name: hang}\n",
    )
    .unwrap();
    let run = "sigimg";
    assert!(containers_of(run).is_empty(), "left from before");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_injector-harness"))
        .args(["run", "--backend", "sim", "--run-id", run])
        .arg(&scenario)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(50);
    while containers_of(run).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no container of run {run} appeared"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // SAFETY: kill(2) on the child this test spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted; cleaning up"), "{stderr}");
    assert_eq!(containers_of(run), Vec::<String>::new(), "{stderr}");
}
