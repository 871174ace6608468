//! The one error a scenario file gives: which file, which line, which field,
//! and what is wrong, so that `injector-harness` can print
//! `file:line: field: message` and an editor can jump there.

use std::path::Path;

/// A scenario file that cannot be used, with file, line and field.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {field}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ScenarioError {
    pub file: String,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl ScenarioError {
    pub(super) fn new(
        file: &Path,
        line: Option<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ScenarioError {
            file: file.display().to_string(),
            line,
            field: field.into(),
            message: message.into(),
        }
    }
}
