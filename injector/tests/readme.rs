//! The README's config reference is a test input: the fenced YAML block
//! under "### Config reference" must load with the real loader, say the real
//! defaults, and name every field, so the documentation cannot drift from
//! the code.

use std::collections::BTreeSet;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, LocalObjectReference, Volume};
use serde_json::Value;
use sidecar_injector::config::{Policy, PortRule};
use sidecar_injector::Config;

/// The config reference block and the README line its first YAML line is on.
fn reference_block() -> (String, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let lines: Vec<&str> = readme.lines().collect();
    let heading = lines
        .iter()
        .position(|l| l.trim() == "### Config reference")
        .expect("README.md has a \"### Config reference\" section");
    let open = (heading..lines.len())
        .find(|&i| lines[i].trim() == "```yaml")
        .expect("the config reference section has a ```yaml block");
    let close = (open + 1..lines.len())
        .find(|&i| lines[i].trim() == "```")
        .expect("the ```yaml block is closed");
    (lines[open + 1..close].join("\n"), open + 2)
}

fn load_reference() -> Config {
    let (block, first_line) = reference_block();
    // Pad with the lines before the block so an error's line number is the
    // README's own line.
    let text = "\n".repeat(first_line - 1) + &block;
    Config::from_yaml(&text, "README.md").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_config_reference_loads() {
    load_reference();
}

#[test]
fn the_config_reference_shows_the_defaults() {
    let documented = load_reference();
    let defaults = Config::from_yaml("{}", "empty").unwrap();
    assert_eq!(documented.policy, Policy::default());
    assert_eq!(documented.policy, defaults.policy);
    assert_eq!(documented.on_port_conflict, defaults.on_port_conflict);
    assert_eq!(documented.on_name_conflict, defaults.on_name_conflict);
}

#[test]
fn the_config_reference_names_every_field() {
    let (block, _) = reference_block();
    let documented: Value = serde_yaml::from_str(&block).unwrap();
    // A config with every collection filled serializes every field the
    // loader knows (empty ones are left out of its YAML).
    let mut full = Config::from_yaml("{}", "empty").unwrap();
    full.port_rules.push(PortRule {
        container: "c".into(),
        port: 1,
        env: "P".into(),
    });
    full.containers.push(Container::default());
    full.init_containers.push(Container::default());
    full.volumes.push(Volume::default());
    full.image_pull_secrets
        .push(LocalObjectReference::default());
    full.annotations.insert("a".into(), "b".into());
    full.labels.insert("a".into(), "b".into());
    full.policy.never_inject_selector.push(Default::default());
    full.policy.always_inject_selector.push(Default::default());
    let full = serde_json::to_value(&full).unwrap();
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(&documented), keys(&full), "top-level fields");
    assert_eq!(
        keys(&documented["policy"]),
        keys(&full["policy"]),
        "policy fields"
    );
}
