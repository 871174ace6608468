//! Scenario files as a run finds them: named on the command line (a
//! directory stands for its `*.yaml`), loaded with the injector config
//! beside them, and the images they put on a node.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::scenario::{self, Scenario};

/// Loads a scenario with the base config from `<scenarios dir>/base/`, or,
/// where that directory holds none (a directory of a webhook author's own,
/// whose subject is not the built-in injector), the injector's built-in
/// default config.
pub fn load_scenario(path: &Path) -> Result<Scenario> {
    Ok(scenario::load(path, &base_config_for(path)?)?)
}

/// A scenario written inline: `text`, as if it were the file at `path`
/// (which names it and decides where its base config and subject files are
/// read from, as [`load_scenario`] does).
pub fn parse_scenario(path: &Path, text: &str) -> Result<Scenario> {
    Ok(scenario::parse(path, text, &base_config_for(path)?)?)
}

/// The base injector config a scenario at `path` starts from.
fn base_config_for(path: &Path) -> Result<Value> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let base_file = dir.join(BASE_CONFIG);
    if base_file.exists() {
        Ok(scenario::load_base_config(&base_file)?)
    } else {
        serde_yaml::from_str(sidecar_injector::config::DEFAULT_CONFIG_YAML)
            .context("the injector's built-in default config")
    }
}

/// Scenario files named on the command line: files as given, directories
/// expanded to their `*.yaml`.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.extend(
                scenario::discover(p).with_context(|| format!("{}: cannot list", p.display()))?,
            );
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("{}: no such scenario file or directory", p.display());
        }
    }
    Ok(out)
}

/// Every image the scenarios at `paths` preload, once each: a real node
/// gets them all at the start of the run. A file that does not load adds
/// none (its own run reports why).
pub fn preload_images(paths: &[PathBuf]) -> Vec<String> {
    let mut images: Vec<String> = paths
        .iter()
        .filter_map(|p| load_scenario(p).ok())
        .flat_map(|s| scenario_images(&s))
        .collect();
    images.sort();
    images.dedup();
    images
}

/// The images one scenario puts on the nodes: those it preloads and its
/// subject's.
pub fn scenario_images(s: &Scenario) -> Vec<String> {
    let subject = s.header.subject.image.as_ref().map(|i| i.name.clone());
    s.header
        .preload_images
        .iter()
        .cloned()
        .chain(subject)
        .collect()
}

/// Where the base injector config sits, relative to the scenarios folder.
pub const BASE_CONFIG: &str = "base/injector.yaml";
/// This repository's base config (the built-in sidecar running the probe),
/// which `new` writes into a directory that has none.
pub const PROBE_BASE_CONFIG: &str = include_str!("../../scenarios/base/injector.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(dir: &Path, name: &str, serial: bool) -> PathBuf {
        let path = dir.join(format!("{name}.yaml"));
        let text = format!(
            "apiVersion: injector-harness/v1\nkind: Scenario\nname: {name}\nserial: {serial}\n---\n\
             apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_scenario_with_no_base_beside_it_starts_from_the_builtin_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = scenario(dir.path(), "alone", false);
        let s = load_scenario(&path).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            s.injector_config,
            sidecar_injector::config::Config::builtin()
        );
        // A base beside it that is broken is an error naming the file, not
        // a silent fallback.
        std::fs::create_dir(dir.path().join("base")).unwrap();
        std::fs::write(dir.path().join(BASE_CONFIG), "sidecar: [").unwrap();
        let e = format!("{:#}", load_scenario(&path).unwrap_err());
        assert!(e.contains("base/injector.yaml"), "{e}");
    }
}
