//! The Kubernetes minor a cluster behaves as.
//!
//! The supported versions are the rows of `kind/supported-versions.tsv`, the
//! project's one list (read here at build time). A real cluster says its own
//! version; the simulated cluster models the newest minor unless
//! `HARNESS_K8S_VERSION` names an older one, and models an older minor's
//! differences only where a scenario shows them (scheduler and validation
//! messages; see the callers of [`Minor::at_least`]).

use std::fmt;

const SUPPORTED_VERSIONS: &str = include_str!("../../kind/supported-versions.tsv");

/// The environment variable that picks the sim's minor.
pub const ENV: &str = "HARNESS_K8S_VERSION";

/// A Kubernetes 1.x minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor(u32);

impl Minor {
    pub const fn new(minor: u32) -> Minor {
        Minor(minor)
    }

    /// Reads `v1.34.4`, `1.34.4`, `v1.34` or `1.34` (a git version such as
    /// `v1.34.4+k3s1` too).
    pub fn parse(text: &str) -> Result<Minor, String> {
        let t = text.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let mut parts = t.split(['.', '+', '-']);
        let (major, minor) = (parts.next(), parts.next());
        match (major, minor.map(str::parse::<u32>)) {
            (Some("1"), Some(Ok(m))) => Ok(Minor(m)),
            _ => Err(format!(
                "'{text}' is not a Kubernetes version (want v1.X or v1.X.Y)"
            )),
        }
    }

    pub fn number(self) -> u32 {
        self.0
    }

    /// Whether this minor is `minor` or newer.
    pub fn at_least(self, minor: u32) -> bool {
        self.0 >= minor
    }

    /// `v1.34`: the suffix of a version-specific snapshot.
    pub fn label(self) -> String {
        format!("v1.{}", self.0)
    }
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}", self.0)
    }
}

/// The supported minors, newest first, as `kind/supported-versions.tsv`
/// lists them.
pub fn supported() -> Vec<Minor> {
    SUPPORTED_VERSIONS
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|v| Minor::parse(v).ok())
        .collect()
}

/// The newest supported minor: what the sim models by default.
pub fn newest() -> Minor {
    supported().into_iter().max().unwrap_or(Minor(34))
}

/// `text` as a minor the project supports (`HARNESS_K8S_VERSION`'s value).
pub fn supported_minor(text: &str) -> Result<Minor, String> {
    let m = Minor::parse(text)?;
    if supported().contains(&m) {
        Ok(m)
    } else {
        let list: Vec<String> = supported().iter().map(|m| m.to_string()).collect();
        Err(format!(
            "{m} is not supported (kind/supported-versions.tsv lists {})",
            list.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_versions_come_in() {
        for v in ["v1.34.4", "1.34.4", "v1.34", "1.34", "v1.34.4+k3s1"] {
            assert_eq!(Minor::parse(v), Ok(Minor(34)), "{v}");
        }
        for v in ["", "v2.1", "1", "v1.x", "latest"] {
            assert!(Minor::parse(v).is_err(), "{v}");
        }
    }

    #[test]
    fn the_supported_list_is_the_tables() {
        let s = supported();
        assert!(s.len() >= 4, "{s:?}");
        assert!(s.windows(2).all(|w| w[0] > w[1]), "newest first: {s:?}");
        assert_eq!(newest(), s[0]);
        assert_eq!(newest().label(), format!("v1.{}", newest().number()));
    }
}
