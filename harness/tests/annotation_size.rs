//! The apiserver's 256 KiB limit on a pod's annotations (keys plus values),
//! at the boundary: exactly 262144 bytes is admitted, one byte more is
//! refused. The scenario is generated here rather than kept in scenarios/,
//! because its manifests are a quarter of a megabyte.
//!
//! On the sim always; with `--features e2e` and HARNESS_BACKEND=kubeconfig
//! also on the real apiserver, whose result must equal the sim's.

use std::path::{Path, PathBuf};

use injector_harness::cluster::Backend;
use injector_harness::run::{self, ScenarioRun};

const LIMIT: usize = 256 * 1024;
const NAME: &str = "annotation-size";

fn pod(name: &str, annotation_bytes: usize) -> String {
    let key = "example.com/blob";
    let value = "x".repeat(annotation_bytes - key.len());
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NAME}\n  labels: {{app: {name}}}\n  annotations:\n    {key}: {value}\nspec:\n  containers:\n  - name: app\n    image: injector-harness/probe:v1\n    imagePullPolicy: IfNotPresent\n    args: [\"--name\", \"app\", \"--listen\", \"8080\"]\n"
    )
}

/// A scenarios folder holding the base config and the generated scenario.
fn scenario_file(dir: &Path) -> PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/base/injector.yaml");
    std::fs::create_dir_all(dir.join("base")).unwrap();
    std::fs::copy(base, dir.join("base/injector.yaml")).unwrap();
    let header = format!(
        "apiVersion: injector-harness/v1\nkind: Scenario\nname: {NAME}\nwebhooks: []\nexpect:\n  pods:\n  - {{namespace: {NAME}, selector: {{app: at-limit}}, count: 1, ready: 1/1}}\n  rejected:\n  - {{namespace: {NAME}, kind: Pod, name: over-limit, message: \"Pod \\\"over-limit\\\" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes\"}}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAME}\n"
    );
    let text = header + &pod("at-limit", LIMIT) + &pod("over-limit", LIMIT + 1);
    let file = dir.join(format!("{NAME}.yaml"));
    std::fs::write(&file, text).unwrap();
    file
}

fn run_on(backend: Backend, file: &Path) -> ScenarioRun {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let scenario = run::load_scenario(file).unwrap();
    let options = run::RunOptions::for_backend(backend).unwrap();
    runtime
        .block_on(run::run_scenario(&scenario, &options))
        .unwrap_or_else(|e| panic!("{backend:?}: {e:#}"))
}

#[test]
fn annotations_up_to_256_kib_pass_and_one_byte_more_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(dir.path());
    let sim = run_on(Backend::Sim, &file);
    assert!(sim.passed(), "sim:\n{}", sim.report());
    let rejected = sim.snapshot["rejected"].clone();
    assert_eq!(
        rejected,
        serde_json::json!(["Pod annotation-size/over-limit: Pod \"over-limit\" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes"])
    );

    let real = std::env::var("HARNESS_BACKEND").as_deref() == Ok("kubeconfig");
    if cfg!(feature = "e2e") && real {
        let kube = run_on(Backend::Kubeconfig, &file);
        assert!(kube.passed(), "kubeconfig:\n{}", kube.report());
        assert_eq!(
            serde_json::to_string_pretty(&kube.snapshot).unwrap(),
            serde_json::to_string_pretty(&sim.snapshot).unwrap(),
            "the real apiserver and the sim disagree"
        );
    }
}
