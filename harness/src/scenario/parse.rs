//! Reading scenario files: finding them in a directory, splitting a file
//! into its `---`-separated documents, reading the header and each manifest
//! with serde, and merging the header's injector config over the base one.
//! What serde cannot check is `validate.rs`'s; `parse` runs those checks in
//! the order a reader meets the fields, so the first error is the first one
//! in the file.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sidecar_injector::Config;

use super::document::Document;
use super::error::ScenarioError;
use super::model::{Header, Manifest, Scenario};
use super::validate;

/// Every scenario file in a directory (its `*.yaml`), sorted by name.
pub fn discover(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Reads the base injector config the scenarios override.
pub fn load_base_config(path: &Path) -> Result<Value, ScenarioError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::new(path, None, "(file)", format!("cannot read: {e}")))?;
    // Validate as a config first, so errors point into the base file.
    Config::from_yaml(&text, &path.display().to_string())
        .map_err(|e| ScenarioError::new(path, None, "(config)", e.to_string()))?;
    serde_yaml::from_str(&text)
        .map_err(|e| ScenarioError::new(path, None, "(config)", e.to_string()))
}

/// Parses a scenario file. `base_config` is the base injector config as JSON.
pub fn load(path: &Path, base_config: &Value) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::new(path, None, "(file)", format!("cannot read: {e}")))?;
    parse(path, &text, base_config)
}

/// Parses and validates a scenario's text; `path` names it in errors and
/// its file stem must be the scenario's name.
pub fn parse(path: &Path, text: &str, base_config: &Value) -> Result<Scenario, ScenarioError> {
    let docs = split_documents(text);
    let Some(((header_line, header_text), manifest_docs)) = docs.split_first() else {
        return Err(ScenarioError::new(
            path,
            Some(1),
            "(document)",
            "empty scenario: a header document is required",
        ));
    };
    let header = read_header(path, *header_line, header_text)?;
    let header_doc = Document::new(path, *header_line, header_text);
    validate::check_header(&header, &header_doc)?;
    let injector_config = merge_injector_config(&header, base_config, &header_doc)?;
    let manifests = manifest_docs
        .iter()
        .map(|(line, text)| read_manifest(path, *line, text))
        .collect::<Result<_, _>>()?;
    Ok(Scenario {
        path: path.to_path_buf(),
        header,
        injector_config,
        manifests,
    })
}

/// The text of each `---`-separated document and its first line (1-based).
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_separator = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_separator {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    // Comment-only or blank documents are not manifests.
    docs.into_iter()
        .filter(|(_, d)| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// The header as serde reads it; an error names the field by its path and
/// the line serde stopped at.
fn read_header(path: &Path, header_line: usize, text: &str) -> Result<Header, ScenarioError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.location().map(|l| header_line + l.line() - 1);
        ScenarioError::new(
            path,
            line.or(Some(header_line)),
            if field == "." {
                "(header)".into()
            } else {
                field
            },
            without_position(&inner.to_string()),
        )
    })
}

/// The base config with the header's `injector.config` merged over it, read
/// as the injector reads its own.
fn merge_injector_config(
    header: &Header,
    base_config: &Value,
    header_doc: &Document,
) -> Result<Config, ScenarioError> {
    let mut config = base_config.clone();
    if !header.injector.config.is_null() {
        json_patch::merge(&mut config, &header.injector.config);
    }
    let config_yaml = serde_yaml::to_string(&config).unwrap_or_default();
    Config::from_yaml(&config_yaml, "injector.config").map_err(|e| {
        header_doc.error_at(
            "injector",
            "injector.config",
            format!("the merged config is invalid: {e}"),
        )
    })
}

/// One manifest document, read and checked.
fn read_manifest(path: &Path, line: usize, text: &str) -> Result<Manifest, ScenarioError> {
    let object: Value = serde_yaml::from_str(text).map_err(|e| {
        let l = e.location().map(|l| line + l.line() - 1).unwrap_or(line);
        ScenarioError::new(
            path,
            Some(l),
            "(manifest)",
            without_position(&e.to_string()),
        )
    })?;
    validate::check_manifest(&object, &Document::new(path, line, text))?;
    Ok(Manifest { line, object })
}

/// serde_yaml's message without the ` at line L column C` it ends with: the
/// line is the error's own, counted from the file rather than the document.
fn without_position(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::super::testing::parse_text;

    #[test]
    fn header_type_error_names_line_and_field() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nexpect:\n  pods:\n  - count: many\n";
        let e = parse_text("x", text).unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert_eq!(e.field, "expect.pods[0].count", "{e}");
    }

    #[test]
    fn unknown_header_field_is_refused() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\nwebhook: {}\n";
        let e = parse_text("x", text).unwrap_err();
        assert!(e.to_string().contains("webhook"), "{e}");
        assert_eq!(e.line, Some(4), "{e}");
    }

    #[test]
    fn injector_overrides_merge_and_are_validated() {
        let text = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\ninjector:\n  config:\n    onPortConflict: keep\n";
        let s = parse_text("x", text).unwrap();
        assert_eq!(
            s.injector_config.on_port_conflict,
            sidecar_injector::config::PortConflictPolicy::Keep
        );
        assert_eq!(
            s.injector_config.containers[0].name, "envoy",
            "the rest of the base stays"
        );
        let bad = "apiVersion: injector-harness/v1\nkind: Scenario\nname: x\ninjector:\n  config:\n    onPortConflict: sometimes\n";
        let e = parse_text("x", bad).unwrap_err();
        assert_eq!(e.field, "injector.config");
        assert_eq!(e.line, Some(4));
    }
}
