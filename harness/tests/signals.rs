//! SIGTERM or SIGINT to the harness's pid alone, on the kind backend, at
//! each phase that starts other programs: creating the cluster (kind, its
//! node container), building the images (a script, cargo, rustc) and running
//! a scenario (pods on the node). Afterwards no process the run started is
//! alive and Docker holds no container of the cluster.
//!
//! A process the run started is found by a marker in its environment, which
//! every child inherits; a process that outlived the harness is reparented,
//! so its parent says nothing. Needs Docker and kind as the e2e suite does
//! (`cargo test -p injector-harness --features e2e --test signals`); each
//! case creates the cluster the harness deletes, about a minute apiece.
#![cfg(all(feature = "e2e", unix))]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_injector-harness");
/// The cluster the kind backend creates (it is not configurable).
const CLUSTER: &str = "injector-harness";
const MARK: &str = "INJECTOR_HARNESS_SIGNAL_TEST";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The pids of live processes whose environment holds `MARK=mark`.
fn marked(mark: &str) -> Vec<u32> {
    let needle = format!("{MARK}={mark}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        // A zombie has an empty environ: it runs nothing.
        if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// The names of Docker containers of the cluster, running or not.
fn cluster_containers() -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=io.x-k8s.kind.cluster={CLUSTER}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The kind binary the harness uses, so this test can look into the cluster.
fn kind() -> String {
    let out = Command::new(workspace().join("kind/build-kind.sh"))
        .stderr(Stdio::null())
        .output()
        .expect("kind/build-kind.sh");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether namespace `ns` exists in the cluster (reached through kind's own
/// kubeconfig for it; false while there is no cluster).
fn namespace_exists(kind: &str, kubeconfig: &Path, ns: &str) -> bool {
    let Ok(out) = Command::new(kind)
        .args(["get", "kubeconfig", "--name", CLUSTER])
        .stderr(Stdio::null())
        .output()
    else {
        return false;
    };
    if !out.status.success() || std::fs::write(kubeconfig, &out.stdout).is_err() {
        return false;
    }
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "namespace", ns, "--request-timeout=5s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Polls `ready` until it holds, for at most `limit`; false on timeout or
/// when the run ended first (it must be interrupted mid-way).
fn wait_for(child: &mut Child, limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// The node container exists; `kind create cluster` is running.
    ClusterCreation,
    /// `kind/build-images.sh`'s cargo is compiling (a fresh target dir).
    ImageBuild,
    /// The scenario's injector namespace exists on the cluster.
    Scenario,
}

fn interrupt(phase: Phase, signal: &str, code: i32) {
    assert!(
        cluster_containers().is_empty(),
        "a {CLUSTER} cluster exists already; this test creates its own"
    );
    let mark = format!("{}-{phase:?}-{signal}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    // A scenario's config starts from base/injector.yaml beside it.
    std::fs::create_dir_all(dir.path().join("base")).unwrap();
    std::fs::copy(
        workspace().join("scenarios/base/injector.yaml"),
        dir.path().join("base/injector.yaml"),
    )
    .unwrap();
    let scenario = dir.path().join("held.yaml");
    // The injector holds its one admission for 60 s: the run is surely in
    // its scenario when the signal comes.
    std::fs::write(
        &scenario,
        "apiVersion: injector-harness/v1\nkind: Scenario\nname: held\n\
         steps:\n- slowInjector: {delaySeconds: 60}\n\
         - apply:\n    manifests:\n    - {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: held}, \
         spec: {containers: [{name: a, image: 'injector-harness/probe:v1', imagePullPolicy: IfNotPresent}]}}\n\
         ---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: held\n  labels: {sidecar-injector: enabled}\n",
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--backend", "kind"])
        .arg(&scenario)
        .env(MARK, &mark)
        .env("HARNESS_RUN_ID", "sig")
        .env_remove("HARNESS_KIND_CLUSTER")
        .env_remove("HARNESS_KEEP_CLUSTER")
        .env_remove("HARNESS_BUILD_IMAGES")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if matches!(phase, Phase::ImageBuild) {
        // Nothing built yet there: cargo compiles for minutes.
        cmd.env("CARGO_TARGET_DIR", dir.path().join("target"));
    }
    let mut child = cmd.spawn().unwrap();
    let kind = kind();
    let kubeconfig = dir.path().join("kubeconfig");
    let reached = match phase {
        Phase::ClusterCreation => wait_for(&mut child, Duration::from_secs(300), || {
            !cluster_containers().is_empty()
        }),
        Phase::ImageBuild => wait_for(&mut child, Duration::from_secs(600), || {
            marked(&mark).into_iter().any(|pid| {
                std::fs::read(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with(b"rustc"))
            })
        }),
        Phase::Scenario => wait_for(&mut child, Duration::from_secs(600), || {
            namespace_exists(&kind, &kubeconfig, "injector-held-sig")
        }),
    };
    if !reached {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "the run never reached {phase:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args([&format!("-{signal}"), pid.as_str()])
        .status()
        .unwrap()
        .success());
    let signalled = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{phase:?} {signal}: {stderr}"
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(120),
        "{phase:?} {signal}: took {:?} to stop",
        signalled.elapsed()
    );
    // What the harness started may take a moment to be reaped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marked(&mark).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let left: Vec<String> = marked(&mark)
        .into_iter()
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            )
        })
        .collect();
    assert!(
        left.is_empty(),
        "{phase:?} {signal}: processes left running:\n{}\n{stderr}",
        left.join("\n")
    );
    let containers = cluster_containers();
    assert!(
        containers.is_empty(),
        "{phase:?} {signal}: containers left: {containers:?}\n{stderr}"
    );
}

// One test function runs the cases in turn: each needs the one cluster
// name, and libtest would run separate tests at once.
#[test]
fn a_signal_to_the_harness_leaves_nothing_running() {
    for (phase, signal, code) in [
        (Phase::ClusterCreation, "TERM", 143),
        (Phase::ClusterCreation, "INT", 130),
        (Phase::ImageBuild, "TERM", 143),
        (Phase::ImageBuild, "INT", 130),
        (Phase::Scenario, "TERM", 143),
        (Phase::Scenario, "INT", 130),
    ] {
        eprintln!("signals: {signal} during {phase:?}");
        interrupt(phase, signal, code);
    }
}
