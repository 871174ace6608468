//! What the scenario module's tests share: the base injector config and a
//! parse of a scenario written inline, named as if it were a file.

use std::path::Path;

use serde_json::Value;

use super::error::ScenarioError;
use super::model::Scenario;
use super::parse::parse;

fn base() -> Value {
    serde_yaml::from_str(sidecar_injector::config::DEFAULT_CONFIG_YAML).unwrap()
}

pub(super) fn parse_text(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
    parse(Path::new(&format!("scenarios/{name}.yaml")), text, &base())
}
