//! The documented config reference is a test input: the fenced YAML block
//! under "## Config reference" in docs/injector.md must load with the real
//! loader, say the real defaults, and name every field, so the documentation
//! cannot drift from the code. (The file is named for the README, where the
//! reference was before docs/ held it.)

use std::collections::BTreeSet;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, LocalObjectReference, Volume};
use serde_json::Value;
use sidecar_injector::config::{Policy, PortRule};
use sidecar_injector::Config;

/// The doc that holds the config reference, relative to the workspace root.
const DOC: &str = "docs/injector.md";

/// The config reference block and the line of the doc its first YAML line is on.
fn reference_block() -> (String, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(DOC);
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let lines: Vec<&str> = doc.lines().collect();
    let heading = lines
        .iter()
        .position(|l| l.trim() == "## Config reference")
        .unwrap_or_else(|| panic!("{DOC} has a \"## Config reference\" section"));
    let open = (heading..lines.len())
        .find(|&i| lines[i].trim() == "```yaml")
        .unwrap_or_else(|| panic!("the config reference section of {DOC} has a ```yaml block"));
    let close = (open + 1..lines.len())
        .find(|&i| lines[i].trim() == "```")
        .unwrap_or_else(|| panic!("the ```yaml block of {DOC} is closed"));
    (lines[open + 1..close].join("\n"), open + 2)
}

fn load_reference() -> Config {
    let (block, first_line) = reference_block();
    // Pad with the lines before the block so an error's line number is the
    // doc's own line.
    let text = "\n".repeat(first_line - 1) + &block;
    Config::from_yaml(&text, DOC).unwrap_or_else(|e| panic!("{e}"))
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
