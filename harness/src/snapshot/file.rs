//! Snapshot files in insta's format, read and written without a test
//! runner: a YAML header between two `---` lines, then the snapshot's text.
//! `injector-harness run` holds a scenario directory's results to these, and
//! leaves a differing or new result beside them as `<name>.snap.new`, which
//! `cargo insta review` and `cargo insta accept` find and handle as they do
//! a test's. The text is [`render`]ed the same way for the CLI and for
//! tests asserting with insta, so either may check a file the other wrote.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

/// A snapshot document as the file holds it: YAML, keys in the document's
/// order (the normalized snapshot orders them already).
pub fn render(doc: &Value) -> String {
    // A serde_json::Value always serializes to YAML; the fallback keeps the
    // error visible in the file rather than panicking.
    serde_yaml::to_string(doc).unwrap_or_else(|e| format!("(not YAML: {e})\n"))
}

/// What the header says about a snapshot: where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    /// What produced it: the scenario file, for the CLI.
    pub source: String,
    pub description: String,
    /// The scenario file, relative to the current directory where it can be.
    pub input_file: String,
}

/// `path` as the user would type it from here: relative to the current
/// directory when inside it, else as given.
pub fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.as_deref()
            .map(|c| c.join(path))
            .unwrap_or_else(|| path.into())
    };
    cwd.and_then(|c| abs.strip_prefix(&c).ok().map(Path::to_path_buf))
        .unwrap_or(abs)
        .display()
        .to_string()
}

/// The whole file: header and text.
pub fn contents(header: &Header, text: &str) -> String {
    let header = serde_yaml::to_string(header).unwrap_or_default();
    let mut out = format!("---\n{header}---\n{text}");
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The text of the snapshot file at `path` (everything after its header),
/// or `None` when there is no such file.
pub fn read_text(path: &Path) -> Result<Option<String>, String> {
    let file = match std::fs::read_to_string(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let Some(rest) = file.strip_prefix("---\n").or(file.strip_prefix("---\r\n")) else {
        // insta's oldest files had no header; their whole text is the snapshot.
        return Ok(Some(file));
    };
    match rest.find("\n---\n").or_else(|| rest.find("\n---\r\n")) {
        Some(end) => Ok(Some(
            rest[end + 1..]
                .split_once('\n')
                .map(|(_, t)| t.to_string())
                .unwrap_or_default(),
        )),
        None => Err(format!(
            "{}: not a snapshot file: its header has no closing `---` line",
            path.display()
        )),
    }
}

/// Whether two snapshot texts are the same snapshot: equal but for line
/// endings and trailing blank lines, as insta compares them.
pub fn same_text(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace("\r\n", "\n").trim_end().to_string();
    norm(a) == norm(b)
}

/// The pending file insta's tools review for the snapshot at `snap`.
pub fn pending(snap: &Path) -> PathBuf {
    let mut p = snap.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

/// What holding a result to its snapshot file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The file holds this result.
    Matches,
    /// No file yet; the result is in `<file>.new` for review.
    New { file: PathBuf },
    /// The file holds something else; the result is in `<file>.new`, and
    /// `diff` is a unified diff from the file's text to the result's.
    Differs { file: PathBuf, diff: String },
    /// Written to the file directly (accepting).
    Written { file: PathBuf },
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Matches | Verdict::Written { .. })
    }
}

/// Holds `text` to the snapshot file `snap`. A match removes a stale
/// `.snap.new`; a difference or a missing file writes one, unless `accept`,
/// which writes `snap` itself (and removes the pending file).
pub fn check(snap: &Path, header: &Header, text: &str, accept: bool) -> Result<Verdict, String> {
    let new = pending(snap);
    let existing = read_text(snap)?;
    if existing.as_deref().is_some_and(|old| same_text(old, text)) {
        remove_if_present(&new)?;
        return Ok(Verdict::Matches);
    }
    if let Some(dir) = snap.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    }
    let write = |path: &Path| {
        std::fs::write(path, contents(header, text))
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))
    };
    if accept {
        write(snap)?;
        remove_if_present(&new)?;
        return Ok(Verdict::Written { file: snap.into() });
    }
    write(&new)?;
    Ok(match existing {
        None => Verdict::New { file: snap.into() },
        Some(old) => Verdict::Differs {
            file: snap.into(),
            diff: similar::TextDiff::from_lines(&old, &text.to_string())
                .unified_diff()
                .context_radius(2)
                .header(&display_path(snap), &display_path(&new))
                .to_string(),
        },
    })
}

fn remove_if_present(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: cannot remove: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn header() -> Header {
        Header {
            source: "scenarios/x.yaml".into(),
            description: "scenario x: pods, READY and refusals after settling".into(),
            input_file: "scenarios/x.yaml".into(),
        }
    }

    #[test]
    fn a_new_result_waits_for_review_then_matches_once_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("snapshots/x.snap");
        let text = render(&json!({"ready": ["x/web 2/2 Running"]}));

        let v = check(&snap, &header(), &text, false).unwrap();
        assert_eq!(v, Verdict::New { file: snap.clone() });
        assert!(!snap.exists());
        let pending_file = std::fs::read_to_string(pending(&snap)).unwrap();
        assert_eq!(
            pending_file,
            "---\nsource: scenarios/x.yaml\ndescription: 'scenario x: pods, READY and refusals after settling'\n\
             input_file: scenarios/x.yaml\n---\nready:\n- x/web 2/2 Running\n"
        );

        // What `cargo insta accept` does: the pending file becomes the snapshot.
        std::fs::rename(pending(&snap), &snap).unwrap();
        assert_eq!(read_text(&snap).unwrap().as_deref(), Some(text.as_str()));
        assert_eq!(
            check(&snap, &header(), &text, false).unwrap(),
            Verdict::Matches
        );
    }

    #[test]
    fn a_changed_result_fails_with_a_diff_and_accept_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("x.snap");
        let before = render(&json!({"ready": ["x/web 2/2 Running", "x/db 1/1 Running"]}));
        let after = render(&json!({"ready": ["x/web 1/2 Running", "x/db 1/1 Running"]}));
        std::fs::write(&snap, contents(&header(), &before)).unwrap();

        let Verdict::Differs { diff, .. } = check(&snap, &header(), &after, false).unwrap() else {
            panic!("expected a difference")
        };
        assert!(
            diff.contains("-- x/web 2/2 Running\n+- x/web 1/2 Running\n"),
            "{diff}"
        );
        assert!(pending(&snap).exists());
        // The file itself is untouched until accepted.
        assert_eq!(read_text(&snap).unwrap().as_deref(), Some(before.as_str()));

        let v = check(&snap, &header(), &after, true).unwrap();
        assert_eq!(v, Verdict::Written { file: snap.clone() });
        assert!(!pending(&snap).exists());
        assert_eq!(read_text(&snap).unwrap().as_deref(), Some(after.as_str()));
    }

    #[test]
    fn a_match_removes_a_stale_pending_file() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("x.snap");
        let text = render(&json!({"a": 1}));
        std::fs::write(&snap, contents(&header(), &text)).unwrap();
        std::fs::write(pending(&snap), "old").unwrap();
        assert_eq!(
            check(&snap, &header(), &text, false).unwrap(),
            Verdict::Matches
        );
        assert!(!pending(&snap).exists());
    }

    #[test]
    fn an_insta_written_file_is_read_past_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("x.snap");
        std::fs::write(
            &snap,
            "---\nsource: harness/tests/scenarios.rs\ndescription: \"scenario x\"\n---\na: 1\n",
        )
        .unwrap();
        assert_eq!(read_text(&snap).unwrap().as_deref(), Some("a: 1\n"));
        assert!(same_text("a: 1\n", "a: 1\r\n\n"));
        std::fs::write(&snap, "---\nsource: x\n").unwrap();
        let e = read_text(&snap).unwrap_err();
        assert!(
            e.ends_with("x.snap: not a snapshot file: its header has no closing `---` line"),
            "{e}"
        );
        assert_eq!(read_text(&dir.path().join("none.snap")).unwrap(), None);
    }

    #[test]
    fn rendered_text_reads_back_as_the_same_document() {
        // YAML 1.2, as serde_yaml reads it: `yes` and `no` stay strings
        // unquoted; strings that would read as numbers or booleans are quoted.
        let doc = json!({
            "labels": {"fits": "yes", "inject": "no", "port": "10000", "flag": "true"},
            "n": 10000,
            "message": "a: b\nsecond line",
        });
        let text = render(&doc);
        assert!(text.contains("fits: yes\n"), "{text}");
        assert!(text.contains("port: '10000'\n"), "{text}");
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, doc);
    }
}
