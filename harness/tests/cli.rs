//! The `injector-harness` binary as a user runs it.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_injector-harness");

/// The binary with the environment these tests assume pinned: no backend or
/// fake-kubelet choice leaks in from the caller's shell (docs/real-clusters.md
/// has users export HARNESS_BACKEND=kubeconfig), and tests that want another
/// backend or cluster say so on the command.
fn harness() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("HARNESS_BACKEND")
        .env_remove("HARNESS_FAKE_KUBELET")
        .env_remove("RUST_LOG")
        .env_remove("HARNESS_KIND_CLUSTER")
        .env_remove("HARNESS_KEEP_CLUSTER")
        .env_remove("KIND_NODE_IMAGE")
        .env_remove("KIND");
    c
}

/// The stdout of a run that must have succeeded (else both streams).
fn succeeded(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn scenarios_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/base/injector.yaml");
    std::fs::create_dir_all(dir.path().join("base")).unwrap();
    std::fs::copy(base, dir.path().join("base/injector.yaml")).unwrap();
    dir
}

#[test]
fn new_writes_a_skeleton_that_runs_and_passes() {
    // An empty directory: `new` writes the base config the skeleton needs.
    let dir = tempfile::tempdir().unwrap();
    let out = harness()
        .args(["new", "demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.path().join("demo.yaml");
    assert!(file.exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("base/injector.yaml")).unwrap(),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/base/injector.yaml")
        )
        .unwrap()
    );
    let again = harness()
        .args(["new", "demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success(), "refuses to overwrite");

    // The first run: the expectations hold, and the result, having no
    // snapshot yet, waits for review beside the scenario as insta's do.
    let junit = dir.path().join("report.xml");
    let out = harness()
        .arg("run")
        .arg(&file)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("demo") && stdout.contains("2/2") && stdout.contains("pass"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 scenarios, 1 passed, 0 failed"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.contains("<testcase name=\"demo\""), "{xml}");
    let snapshots = dir.path().join("snapshots");
    let pending = snapshots.join("demo.snap.new");
    assert!(
        stdout.contains(&format!("new snapshot demo: {}", pending.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("the diffs above are the review; run again with --accept to keep them"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&pending).unwrap();
    let header = format!(
        "---\nsource: {f}\ndescription: 'scenario demo: pods, READY and refusals after settling'\ninput_file: {f}\n---\nready:\n- demo/app-<hash>-<id> 2/2 Running\n",
        f = file.display()
    );
    assert!(text.starts_with(&header), "{text}");
    assert!(!snapshots.join("demo.snap").exists());

    // Accepted, it is the snapshot, and the next run matches it.
    let out = harness()
        .arg("run")
        .arg(&file)
        .arg("--accept")
        .output()
        .unwrap();
    let stdout = succeeded(&out);
    assert!(stdout.contains("snapshots ("), "{stdout}");
    assert!(stdout.contains(": 0 match, 1 written"), "{stdout}");
    assert!(!pending.exists());
    assert_eq!(
        std::fs::read_to_string(snapshots.join("demo.snap")).unwrap(),
        text
    );
    let stdout = succeeded(&harness().arg("run").arg(&file).output().unwrap());
    assert!(stdout.contains(": 1 match\n"), "{stdout}");

    // A changed outcome (one replica more, expected) passes its
    // expectations and fails its snapshot, with the lines that differ.
    let yaml = std::fs::read_to_string(&file).unwrap();
    assert!(
        yaml.contains("replicas: 1") && yaml.contains("count: 1"),
        "{yaml}"
    );
    std::fs::write(
        &file,
        yaml.replace("replicas: 1", "replicas: 2")
            .replace("count: 1", "count: 2"),
    )
    .unwrap();
    let out = harness().arg("run").arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 scenarios, 1 passed, 0 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "snapshot demo differs from {}:",
            snapshots.join("demo.snap").display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(" ready:\n-- demo/app-<hash>-<id> 2/2 Running\n+- demo/app-<hash>-<id1> 2/2 Running\n+- demo/app-<hash>-<id2> 2/2 Running\n"),
        "{stdout}"
    );
    assert!(pending.exists());
}

#[test]
fn a_failed_expectation_exits_non_zero_and_explains() {
    let dir = scenarios_dir();
    let text = injector_harness::scenario::skeleton("wrong").replace("ready: 2/2", "ready: 3/3");
    let file = dir.path().join("wrong.yaml");
    std::fs::write(&file, text).unwrap();
    let out = harness().arg("run").arg(&file).output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("expected READY 3/3, got 2/2"), "{stdout}");
    assert!(
        stdout.contains("admission log:")
            && stdout.contains("decision policy_enabled")
            && stdout.contains("injector decisions:")
            && stdout.contains("injections_total 1"),
        "{stdout}"
    );
}

#[test]
fn a_malformed_scenario_names_file_line_and_field() {
    let dir = scenarios_dir();
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, "apiVersion: injector-harness/v1\nkind: Scenario\nname: broken\nexpect:\n  pods:\n  - ready: lots\n    count: -1\n").unwrap();
    let out = harness().arg("run").arg(&file).output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("broken.yaml:7: expect.pods[0].count"),
        "{stdout}"
    );
}

#[test]
fn the_kind_backend_names_a_missing_cluster_it_was_told_to_reuse() {
    let dir = scenarios_dir();
    let file = dir.path().join("demo.yaml");
    std::fs::write(&file, injector_harness::scenario::skeleton("demo")).unwrap();
    // A stand-in `kind` that knows one cluster, so no Docker is needed.
    let kind = dir.path().join("kind");
    std::fs::write(
        &kind,
        "#!/bin/sh\n[ \"$1 $2\" = \"get clusters\" ] && echo other && exit 0\nexit 9\n",
    )
    .unwrap();
    std::fs::set_permissions(&kind, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = harness()
        .arg("run")
        .arg(&file)
        .args(["--backend", "kind", "--kind-cluster", "nope"])
        .env("KIND", &kind)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("kind cluster \"nope\" does not exist (clusters: other)"),
        "{stdout}"
    );
}

/// The lines of a run's output that report why a scenario could not run.
fn error_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.contains("demo.yaml:"))
        .collect()
}

#[test]
fn the_kubeconfig_backend_without_a_cluster_says_what_is_missing() {
    let dir = scenarios_dir();
    let file = dir.path().join("demo.yaml");
    std::fs::write(&file, injector_harness::scenario::skeleton("demo")).unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let out = harness()
        .arg("run")
        .arg(&file)
        .args(["--backend", "kubeconfig"])
        .env("KUBECONFIG", &missing)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = error_lines(&stdout);
    assert_eq!(lines.len(), 1, "one line says why: {stdout}");
    let line = lines[0];
    assert!(
        line.starts_with("[cluster-unreachable] "),
        "its kind first: {line}"
    );
    assert!(
        line.contains(&format!("KUBECONFIG={}", missing.display()))
            && line.contains("No such file or directory")
            && line.contains("kind/local-cluster.sh up")
            && line.contains("eval \"$(kind/local-cluster.sh env)\""),
        "{line}"
    );
    assert_eq!(
        line.matches("No such file").count(),
        1,
        "the cause once, not nested: {line}"
    );
}

#[test]
fn the_kubeconfig_backend_with_a_dead_server_names_it_once() {
    let dir = scenarios_dir();
    let file = dir.path().join("demo.yaml");
    std::fs::write(&file, injector_harness::scenario::skeleton("demo")).unwrap();
    // A port nothing listens on: bound once, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster: {{server: \"https://127.0.0.1:{port}\"}}\ncontexts:\n- name: dead\n  context: {{cluster: dead, user: u}}\ncurrent-context: dead\nusers:\n- name: u\n  user: {{token: t}}\n"
        ),
    )
    .unwrap();
    let out = harness()
        .arg("run")
        .arg(&file)
        .args(["--backend", "kubeconfig"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = error_lines(&stdout);
    assert_eq!(lines.len(), 1, "one line says why: {stdout}");
    let line = lines[0];
    assert!(
        line.contains(&format!("https://127.0.0.1:{port}/"))
            && line.contains(&format!("KUBECONFIG={}", kubeconfig.display()))
            && line.contains("Connection refused")
            && line.contains("kind/local-cluster.sh up"),
        "{line}"
    );
    assert_eq!(line.matches("Connection refused").count(), 1, "{line}");
}

#[test]
fn repeat_runs_every_pass_and_says_whether_snapshots_agreed() {
    let dir = scenarios_dir();
    let file = dir.path().join("demo.yaml");
    assert!(harness()
        .args(["new", "demo", "--dir"])
        .arg(dir.path())
        .status()
        .unwrap()
        .success());
    // Passes agreeing with each other is the point, not a snapshot file.
    let out = harness()
        .args(["run", "--no-snapshots", "--repeat", "3"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = succeeded(&out);
    assert_eq!(stdout.matches("== pass ").count(), 3, "{stdout}");
    assert!(
        stdout.contains("repeat: every scenario gave the same snapshot in all 3 passes"),
        "{stdout}"
    );
    let zero = harness()
        .args(["run", "--repeat", "0"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!zero.status.success());
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--repeat"));
}

/// SIGTERM to the harness's pid (a supervisor, a CI timeout) stops the run
/// as Ctrl-C does: the cleanup path runs, and the exit code says which
/// signal it was.
#[cfg(unix)]
#[test]
fn sigterm_stops_a_run_through_its_cleanup() {
    let dir = scenarios_dir();
    let file = dir.path().join("slow.yaml");
    std::fs::write(
        &file,
        "apiVersion: injector-harness/v1\nkind: Scenario\nname: slow\n\
         steps:\n- slowInjector: {delaySeconds: 20}\n\
         - apply:\n    manifests:\n    - {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: slow}, \
         spec: {containers: [{name: a, image: 'injector-harness/probe:v1'}]}}\n\
         ---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: slow\n  labels: {sidecar-injector: enabled}\n",
    )
    .unwrap();
    let child = harness()
        .arg("run")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The admission is held for 20 s; signal well inside that.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the run did not stop on SIGTERM"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("interrupted; cleaning up"), "{stderr}");
}
