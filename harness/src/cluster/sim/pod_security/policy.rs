//! Levels, versions and policies, and the namespace labels that set them,
//! as `api/helpers.go` reads them; the Go quoting the messages use.

use std::fmt;

use serde_json::Value;

/// The prefix of the namespace labels and of the audit annotations.
pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
pub const AUDIT_LABEL: &str = "pod-security.kubernetes.io/audit";
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
pub const WARN_LABEL: &str = "pod-security.kubernetes.io/warn";
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";

/// A Pod Security Standards level. The order is strictness, as PSA's
/// `CompareLevels`: a namespace update only dry-runs pods when it tightens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// Exact, case-sensitive, as `api.ParseLevel`.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy version: `latest`, or the checks as of Kubernetes `v1.N`.
/// `latest` means the newest checks the apiserver knows, so what it
/// evaluates depends on the apiserver's minor; the text stays `latest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    Latest,
    Minor(u64),
}

impl Version {
    /// As `api.ParseVersion`: `latest` or `v1.N` with no leading zero
    /// (`v1.0` is fine, `v1.05` is not), N within Go's `int`.
    pub fn parse(s: &str) -> Option<Version> {
        if s == "latest" {
            return Some(Version::Latest);
        }
        let digits = s.strip_prefix("v1.")?;
        let well_formed = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !well_formed {
            return None;
        }
        digits.parse::<i64>().ok().map(|n| Version::Minor(n as u64))
    }

    /// The version whose checks run on an apiserver of minor `apiserver_minor`:
    /// a newer (or `latest`) policy falls back to the newest checks that
    /// apiserver has (`policy/registry.go`, `maxVersion`).
    pub fn effective(self, apiserver_minor: u64) -> u64 {
        match self {
            Version::Latest => apiserver_minor,
            Version::Minor(n) => n.min(apiserver_minor),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Minor(n) => write!(f, "v1.{n}"),
        }
    }
}

/// A level at a version, shown as the apiserver shows it in its messages
/// (`restricted:latest`, `baseline:v1.30`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    pub level: Level,
    pub version: Version,
}

impl Policy {
    pub const PRIVILEGED: Policy = Policy {
        level: Level::Privileged,
        version: Version::Latest,
    };

    #[cfg(test)]
    pub fn new(level: Level, version: Version) -> Policy {
        Policy { level, version }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// One invalid PodSecurity label, as the `field.Invalid` PSA reports.
/// Equality matters: a namespace update keeping exactly the same invalid
/// labels is not refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelError {
    pub label: &'static str,
    pub value: String,
    pub detail: &'static str,
}

impl fmt::Display for LabelError {
    /// `field.Error.Error()`: `<path>: Invalid value: <%q value>: <detail>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "metadata.labels[{}]: Invalid value: {}: {}",
            self.label,
            go_quote(&self.value),
            self.detail
        )
    }
}

/// `api.ParseLevel`'s error text.
const LEVEL_ERROR: &str = "must be one of privileged, baseline, restricted";
/// `api.ParseVersion`'s error text.
const VERSION_ERROR: &str = r#"must be "latest" or "v1.x""#;

/// The three policies of a namespace, and what was wrong with its labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespacePolicy {
    pub enforce: Policy,
    pub audit: Policy,
    pub warn: Policy,
}

impl NamespacePolicy {
    /// Reads `metadata.labels` of a namespace object (anything else, or a
    /// missing namespace as `Value::Null`, has no labels).
    pub fn of_namespace(namespace: &Value) -> (NamespacePolicy, Vec<LabelError>) {
        NamespacePolicy::from_labels(&namespace["metadata"]["labels"])
    }

    /// As `api.PolicyToEvaluate` with the default `privileged:latest`
    /// everywhere. An invalid value is still evaluated, in a fixed way:
    /// an invalid enforce level enforces `restricted` (fail closed), an
    /// invalid audit or warn level is `privileged` (fail open), an invalid
    /// version is `latest`. When only the enforce level is set, warn
    /// follows it (level and, unless warn-version is set, version), so
    /// pod controllers get warnings for what pods would be refused for.
    /// A label whose value is not a string is treated as absent.
    pub fn from_labels(labels: &Value) -> (NamespacePolicy, Vec<LabelError>) {
        let mut errors = Vec::new();
        let mut p = NamespacePolicy {
            enforce: Policy::PRIVILEGED,
            audit: Policy::PRIVILEGED,
            warn: Policy::PRIVILEGED,
        };
        // The order of the reads is the order of the errors in a refusal.
        let enforce_level = read_level(labels, ENFORCE_LABEL, Level::Restricted, &mut errors);
        if let Some((level, _)) = enforce_level {
            p.enforce.level = level;
        }
        if let Some(v) = read_version(labels, ENFORCE_VERSION_LABEL, &mut errors) {
            p.enforce.version = v;
        }
        if let Some((level, _)) = read_level(labels, AUDIT_LABEL, Level::Privileged, &mut errors) {
            p.audit.level = level;
        }
        if let Some(v) = read_version(labels, AUDIT_VERSION_LABEL, &mut errors) {
            p.audit.version = v;
        }
        let warn_level = read_level(labels, WARN_LABEL, Level::Privileged, &mut errors);
        if let Some((level, _)) = warn_level {
            p.warn.level = level;
        }
        let warn_version = read_version(labels, WARN_VERSION_LABEL, &mut errors);
        if let Some(v) = warn_version {
            p.warn.version = v;
        }
        // Only a valid enforce level is followed by warn.
        let valid_enforce_level = matches!(enforce_level, Some((_, true)));
        if warn_level.is_none() && valid_enforce_level && p.enforce.level > p.warn.level {
            p.warn.level = p.enforce.level;
            if warn_version.is_none() {
                p.warn.version = p.enforce.version;
            }
        }
        (p, errors)
    }

    /// All three modes privileged: PSA then looks no further at a pod.
    pub fn fully_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn]
            .iter()
            .all(|p| p.level == Level::Privileged)
    }
}

fn label<'a>(labels: &'a Value, key: &str) -> Option<&'a str> {
    labels.get(key).and_then(Value::as_str)
}

/// A level label if present: the level and whether it was valid (an
/// invalid one stands for `fallback`).
fn read_level(
    labels: &Value,
    key: &'static str,
    fallback: Level,
    errors: &mut Vec<LabelError>,
) -> Option<(Level, bool)> {
    let value = label(labels, key)?;
    match Level::parse(value) {
        Some(level) => Some((level, true)),
        None => {
            errors.push(LabelError {
                label: key,
                value: value.to_string(),
                detail: LEVEL_ERROR,
            });
            Some((fallback, false))
        }
    }
}

/// A version label if present; an invalid one stands for `latest`.
fn read_version(
    labels: &Value,
    key: &'static str,
    errors: &mut Vec<LabelError>,
) -> Option<Version> {
    let value = label(labels, key)?;
    Some(Version::parse(value).unwrap_or_else(|| {
        errors.push(LabelError {
            label: key,
            value: value.to_string(),
            detail: VERSION_ERROR,
        });
        Version::Latest
    }))
}

/// Go's `%v` of an error list made by `ErrorList.ToAggregate()`: repeats
/// dropped, one error bare, several as `[a, b]`.
pub(crate) fn aggregate<T: fmt::Display>(errors: &[T]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.len() {
        1 => seen.pop().unwrap_or_default(),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// Go's `%q` (`strconv.Quote`), which the apiserver uses for names, label
/// values and annotation values in its messages. Go escapes what Unicode
/// does not call printable; this approximates that with std's character
/// classes plus the format and private-use ranges (unassigned code points,
/// which Go also escapes, pass through).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_or_private = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xE000..=0xF8FF | 0xFEFF | 0xFFF9..=0xFFFB | 0xFFFE | 0xFFFF
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0001 | 0xE0020..=0xE007F | 0xF0000..=0x10FFFF);
    !format_or_private
}
