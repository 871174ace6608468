//! Where a field of one scenario document is, as a line of the file. The
//! checks that run after serde has read a document name the field they
//! refuse by its path (`webhooks[1].failurePolicy`, `steps[2].scale`,
//! `expect.pods[0].ready`); `sidecar_injector::yaml_position` maps that path
//! to where the text writes it, so the error points at that list item, not
//! at the first line that happens to hold the same key.

use std::path::Path;

use sidecar_injector::yaml_position::Positions;

use super::error::ScenarioError;

/// One `---`-separated document of a scenario file.
pub(super) struct Document<'a> {
    file: &'a Path,
    /// 1-based line of the document's first line in the file.
    first_line: usize,
    text: &'a str,
}

impl<'a> Document<'a> {
    pub(super) fn new(file: &'a Path, first_line: usize, text: &'a str) -> Self {
        Document {
            file,
            first_line,
            text,
        }
    }

    pub(super) fn file(&self) -> &'a Path {
        self.file
    }

    /// The file line where the field at `path` is written, or where its
    /// nearest enclosing field is when the text leaves it out. A field whose
    /// top-level key the document does not write at all is the document's
    /// to answer for: its first line (as it is when the text has no
    /// positions at all).
    fn line(&self, path: &str) -> usize {
        // Read only for an error: a scenario that loads never pays for it.
        let top = path.split(['.', '[']).next().unwrap_or(path);
        let written = serde_yaml::from_str::<serde_yaml::Value>(self.text)
            .is_ok_and(|doc| doc.get(top).is_some());
        if !written {
            return self.first_line;
        }
        Positions::of(self.text)
            .find(path)
            .map_or(self.first_line, |(line, _)| self.first_line + line - 1)
    }

    /// An error about `field`, at the line of the field at `path`.
    pub(super) fn error_at(
        &self,
        path: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::new(self.file, Some(self.line(path)), field, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_the_file_not_the_document() {
        let text = "webhooks:\n- name: a\n- name: b\n  failurePolicy: Sometimes\n";
        let doc = Document::new(Path::new("s.yaml"), 10, text);
        assert_eq!(doc.line("webhooks[1].failurePolicy"), 13);
        assert_eq!(
            doc.line("webhooks[1].timeoutSeconds"),
            12,
            "left out: its item"
        );
        assert_eq!(doc.line("steps[0]"), 10, "not written: the document's");
        let unreadable = Document::new(Path::new("s.yaml"), 10, "a: [1, 2\n");
        assert_eq!(unreadable.line("a"), 10);
    }
}
