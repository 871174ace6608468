//! Two runs on one cluster at once, and a third interrupted beside them.
//!
//! The cluster is a kind cluster made by `kind/kind-cluster.sh` and reached
//! only through its kubeconfig: the runs use the `kubeconfig` backend with
//! the webhook in the cluster (`--webhook in-cluster`), the images loaded
//! beforehand, as a user with a dev cluster would. Runs `a` and `b` apply
//! the same scenarios (same names, same namespaces in the files) at the same
//! time; run `c` does too and gets SIGINT once its objects are on the
//! cluster. Then `a` and `b` pass with their snapshots' results, and nothing
//! labelled with `c`'s run id is left.
//!
//! Scenarios that use what a node has only once (host ports, the host's
//! network, most of its CPU) collide between runs whatever their names, so
//! the set here has none (see docs/shared-clusters.md).
//! `cargo test -p injector-harness --features e2e --test shared_cluster`
#![cfg(all(feature = "e2e", unix))]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_injector-harness");
const CLUSTER: &str = "injector-harness-shared";
const SCENARIOS: &[&str] = &[
    "ignored-namespace",
    "object-selector",
    "port-conflict-10000",
    "fault-down-fail",
    "native-sidecar",
    "generate-name",
    "annotation-opt-in",
    "selector-operators",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The cluster, deleted when the test ends however it ends.
struct Cluster {
    state: tempfile::TempDir,
}

impl Cluster {
    fn script(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(workspace().join("kind/kind-cluster.sh"));
        cmd.args(args)
            .env("KIND_CLUSTER_NAME", CLUSTER)
            .env("HARNESS_STATE", self.state.path());
        cmd
    }

    fn kubeconfig(&self) -> PathBuf {
        self.state.path().join(format!("kind/{CLUSTER}.kubeconfig"))
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .arg("--request-timeout=10s")
            .output()
            .expect("kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.script(&["down"]).status();
    }
}

fn run_ok(cmd: &mut Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what}: {status}");
}

fn start_run(cluster: &Cluster, id: &str) -> Child {
    let paths: Vec<PathBuf> = SCENARIOS
        .iter()
        .map(|s| workspace().join(format!("scenarios/{s}.yaml")))
        .collect();
    Command::new(BIN)
        // Isolation is the point; the scenarios' snapshots are the matrix's.
        .args([
            "run",
            "--no-snapshots",
            "--backend",
            "kubeconfig",
            "--webhook",
            "in-cluster",
        ])
        .args(["--parallel", "4", "--run-id", id])
        .args(&paths)
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("HARNESS_STATE", cluster.state.path())
        .env_remove("HARNESS_INJECTOR_IMAGE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The names of `kind` objects labelled with run `id` (namespaces: only
/// those not yet being deleted).
fn labelled(cluster: &Cluster, kind: &str, id: &str) -> Vec<String> {
    let template = "{range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}";
    cluster
        .kubectl(&[
            "get",
            kind,
            "-l",
            &format!("injector-harness/run={id}"),
            "-o",
            &format!("jsonpath={template}"),
        ])
        .lines()
        .filter_map(|l| match l.split_once(' ') {
            // Being deleted: its run let go of it.
            Some((_, since)) if !since.trim().is_empty() => None,
            Some((name, _)) => Some(name.to_string()),
            None => Some(l.to_string()).filter(|n| !n.is_empty()),
        })
        .collect()
}

#[test]
fn two_runs_share_a_cluster_and_an_interrupted_one_takes_only_its_own() {
    let cluster = Cluster {
        state: tempfile::tempdir().unwrap(),
    };
    run_ok(&mut cluster.script(&["up"]), "kind/kind-cluster.sh up");
    run_ok(
        &mut Command::new(workspace().join("kind/build-images.sh")),
        "kind/build-images.sh",
    );
    run_ok(
        &mut cluster.script(&[
            "load",
            injector_harness::images::INJECTOR_IMAGE,
            injector_harness::images::PROBE_IMAGE,
        ]),
        "kind/kind-cluster.sh load",
    );

    let a = start_run(&cluster, "sharea");
    let b = start_run(&cluster, "shareb");
    let mut c = start_run(&cluster, "sharec");
    // Interrupt c once it has namespaces on the cluster (its scenarios are
    // applying), a few seconds in so that some have pods.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            c.try_wait().unwrap().is_none(),
            "run c ended before it was interrupted"
        );
        if labelled(&cluster, "namespaces", "sharec").len() >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "run c made no namespaces in 300 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(5));
    run_ok(
        Command::new("kill").args(["-INT", &c.id().to_string()]),
        "kill -INT",
    );
    let c = c.wait_with_output().unwrap();
    assert_eq!(c.status.code(), Some(130), "run c: {}", text(&c));
    assert!(
        text(&c).contains("interrupted; cleaning up"),
        "{}",
        text(&c)
    );
    // The sweep deleted c's webhook configurations and started deleting its
    // namespaces, while a and b were mid-run.
    assert_eq!(
        labelled(&cluster, "mutatingwebhookconfigurations", "sharec"),
        Vec::<String>::new()
    );
    assert_eq!(
        labelled(&cluster, "namespaces", "sharec"),
        Vec::<String>::new()
    );
    let a_live = labelled(&cluster, "namespaces", "sharea").len()
        + labelled(&cluster, "namespaces", "shareb").len();
    assert!(
        a_live > 0,
        "runs a and b had nothing on the cluster when c was swept: the test shows no sharing"
    );

    for (name, run) in [("a", a), ("b", b)] {
        let out = run.wait_with_output().unwrap();
        let all = text(&out);
        assert!(out.status.success(), "run {name}: {all}");
        assert!(
            all.contains(&format!("{n} scenarios, {n} passed", n = SCENARIOS.len())),
            "run {name}: {all}"
        );
    }
    // Each finished run removed its own.
    for id in ["sharea", "shareb"] {
        assert_eq!(
            labelled(&cluster, "mutatingwebhookconfigurations", id),
            Vec::<String>::new()
        );
    }
    eprintln!(
        "after run c's sweep, runs a and b had {a_live} namespaces on the cluster; both passed"
    );
}
