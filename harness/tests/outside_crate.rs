//! The library example of docs/harness.md ("From your own test"), built as
//! a webhook author's crate outside this workspace builds it: its
//! `Cargo.toml` dependencies and its test are read from the document, so
//! the document cannot drift from what compiles. The crate's first
//! `cargo test` must fail with the scenario's snapshot left as `.snap.new`
//! (its header naming the scenario), and pass once that is accepted.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The fenced block after the `<!-- outside-crate: NAME ... -->` marker.
fn block(doc: &str, name: &str) -> String {
    let marker = format!("<!-- outside-crate: {name}");
    let at = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/harness.md has no {marker} marker"));
    let rest = &doc[at..];
    let open = rest.find("```").expect("a fenced block after the marker");
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("\n```").expect("the block's end")].to_string() + "\n"
}

/// `cargo test` in the outside crate, sharing this workspace's target
/// directory and lock file so that nothing already built is built again.
fn cargo_test(krate: &Path, insta_update: &str) -> std::process::Output {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // What cargo set for this test's own package must not leak into the
    // outside crate's build.
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" {
            cmd.env_remove(k);
        }
    }
    cmd.args(["test", "--offline", "-q", "--test", "scenarios"])
        .current_dir(krate)
        .env("CARGO_TARGET_DIR", workspace().join("target"))
        .env("INSTA_UPDATE", insta_update)
        .env_remove("CI")
        .env_remove("HARNESS_BACKEND")
        .env_remove("HARNESS_K8S_VERSION");
    cmd.output().unwrap()
}

#[test]
fn the_documented_example_builds_and_runs_as_an_outside_crate() {
    let doc = std::fs::read_to_string(workspace().join("docs/harness.md")).unwrap();
    let manifest = block(&doc, "Cargo.toml")
        .replace("/path/to/this/repository", workspace().to_str().unwrap());
    let test = block(&doc, "tests/scenarios.rs");

    // Outside this workspace, so cargo treats it as a crate of its own.
    let krate = tempfile::tempdir().unwrap();
    let root = krate.path();
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"my-webhook\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [workspace]\n\n{manifest}"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/lib.rs"), "").unwrap();
    std::fs::create_dir_all(root.join("tests")).unwrap();
    std::fs::write(root.join("tests/scenarios.rs"), test).unwrap();
    // The same versions as this workspace: nothing to resolve or fetch.
    std::fs::copy(workspace().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    // One scenario, as `new` writes it (with the base config it needs).
    let out = Command::new(env!("CARGO_BIN_EXE_injector-harness"))
        .args(["new", "demo", "--dir"])
        .arg(root.join("scenarios"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // First run: the snapshot is new, so the test fails and leaves it for
    // review, as insta does.
    let out = cargo_test(root, "new");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{stdout}{stderr}");
    let pending = root.join("snapshots/demo.snap.new");
    let text = std::fs::read_to_string(&pending)
        .unwrap_or_else(|e| panic!("{}: {e}\n{stdout}{stderr}", pending.display()));
    // insta's pending files also say the assertion's line, which the
    // accepted file drops.
    let header_end = "description: \"scenario demo: pods, READY and refusals after settling\"\n\
                      input_file: scenarios/demo.yaml\n---\nready:\n- demo/app-<hash>-<id> 2/2 Running\n";
    assert!(
        text.starts_with("---\nsource: tests/scenarios.rs\nassertion_line: ")
            && text.contains(header_end),
        "{text}"
    );

    // Accepted (what `cargo insta accept` does), the next run passes.
    std::fs::rename(&pending, root.join("snapshots/demo.snap")).unwrap();
    let out = cargo_test(root, "no");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
