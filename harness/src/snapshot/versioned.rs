//! Which snapshot a scenario's result is held to, per Kubernetes minor.
//!
//! The shared file `snapshots/<scenario>.snap` is the newest supported
//! minor's result. An older minor that behaves differently (a validation or
//! scheduler message changed) keeps `snapshots/<scenario>@v1.<minor>.snap`;
//! one that behaves the same keeps nothing, and is held to the newest
//! minor's result. So recording (`INSTA_UPDATE=always cargo test`) writes
//! the shared file from the newest minor only, and a versioned file only
//! where a minor differs: an older minor never overwrites the shared file.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::version::Minor;

/// What to do with one scenario's result on an older minor, given the
/// newest minor's result for the same scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OlderMinor {
    /// The same as the newest minor's, and no versioned file: the shared
    /// snapshot covers it; nothing to assert or write.
    SameAsNewest,
    /// It differs (or has a versioned file that still differs): assert
    /// against, or record, the versioned snapshot with this suffix.
    Versioned { suffix: String },
    /// A versioned file exists but this minor now gives the newest's
    /// result: the file is stale and should go.
    Stale { file: PathBuf },
}

/// The versioned snapshot's path for `scenario` on `minor`.
pub fn versioned_file(snapshots: &Path, scenario: &str, minor: Minor) -> PathBuf {
    snapshots.join(format!("{scenario}@{}.snap", minor.label()))
}

/// Decides [`OlderMinor`] for `scenario` on `minor` from its result and the
/// newest minor's.
pub fn older_minor(
    snapshots: &Path,
    scenario: &str,
    minor: Minor,
    result: &Value,
    newest: &Value,
) -> OlderMinor {
    let file = versioned_file(snapshots, scenario, minor);
    match (file.exists(), result == newest) {
        (false, true) => OlderMinor::SameAsNewest,
        (true, true) => OlderMinor::Stale { file },
        (_, false) => OlderMinor::Versioned {
            suffix: minor.label(),
        },
    }
}

/// The lines that differ between two snapshot documents, as a unified diff
/// of their YAML (`-` the first, `+` the second), with two lines of context.
pub fn diff(first: &Value, second: &Value) -> String {
    let a = serde_yaml::to_string(first).unwrap_or_else(|e| format!("(not YAML: {e})\n"));
    let b = serde_yaml::to_string(second).unwrap_or_else(|e| format!("(not YAML: {e})\n"));
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(2)
        .to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_older_minor_is_versioned_only_where_it_differs() {
        let dir = tempfile::tempdir().unwrap();
        let v34 = Minor::new(34);
        let newest = json!({"ready": ["a/b 1/1 Running"]});
        let other = json!({"ready": ["a/b 0/1 Pending"]});
        assert_eq!(
            older_minor(dir.path(), "s", v34, &newest, &newest),
            OlderMinor::SameAsNewest
        );
        assert_eq!(
            older_minor(dir.path(), "s", v34, &other, &newest),
            OlderMinor::Versioned {
                suffix: "v1.34".into()
            }
        );
        std::fs::write(versioned_file(dir.path(), "s", v34), "---\n").unwrap();
        assert_eq!(
            older_minor(dir.path(), "s", v34, &other, &newest),
            OlderMinor::Versioned {
                suffix: "v1.34".into()
            }
        );
        assert_eq!(
            older_minor(dir.path(), "s", v34, &newest, &newest),
            OlderMinor::Stale {
                file: dir.path().join("s@v1.34.snap")
            }
        );
    }

    #[test]
    fn diff_shows_the_differing_lines() {
        let d = diff(
            &json!({"ready": ["a/b 1/1 Running", "a/c 1/1 Running"]}),
            &json!({"ready": ["a/b 0/1 Pending", "a/c 1/1 Running"]}),
        );
        assert!(d.contains("-- a/b 1/1 Running"), "{d}");
        assert!(d.contains("+- a/b 0/1 Pending"), "{d}");
        assert!(!d.contains("-- a/c"), "{d}");
        assert_eq!(diff(&json!({"x": 1}), &json!({"x": 1})), "");
    }
}
