//! The apiserver's validation of `metadata`, for every kind the sim stores:
//! names and generateName (a DNS-1123 subdomain, DNS-1123 label or DNS-1035
//! label, as each resource's validation chooses), label keys and values,
//! annotation keys and their total size, finalizers and ownerReferences.
//!
//! Written from the rules and messages of Kubernetes v1.34 (apimachinery's
//! object-meta validation and the core API's finalizer check), so that a
//! refusal reads byte for byte as a real apiserver's; where a later minor
//! changed a rule or message (see the `*_SINCE` constants) the cluster's
//! [`Minor`] decides. It is the sim's own
//! implementation on purpose: nothing here comes from the injector, so a
//! bug in the injector's name or selector helpers cannot hide behind it.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{json, Value};

use crate::version::Minor;

/// The minors from which the apiserver's metadata validation changed, as the
/// version matrix showed (kind/matrix.sh; the snapshots of
/// `metadata-validation` for each minor): label values "must be no more
/// than 63 bytes" (was "characters"), Service names as DNS-1123 labels, and
/// ownerReferences errors naming the entry.
pub const LABEL_VALUE_BYTES_SINCE: u32 = 35;
pub const RELAXED_SERVICE_NAMES_SINCE: u32 = 36;
pub const INDEXED_OWNER_REFERENCES_SINCE: u32 = 37;

/// Longest annotation keys plus values, in bytes, on one object (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";

/// Finalizers the core API knows without a domain prefix.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

fn anchored(fmt: &str) -> Regex {
    // The formats above are constants; a typo in one is caught by the tests.
    Regex::new(&format!("^{fmt}$")).unwrap_or_else(|_| Regex::new("$^").expect("trivial regex"))
}

static QUALIFIED_NAME: LazyLock<Regex> = LazyLock::new(|| anchored(QUALIFIED_NAME_FMT));
static LABEL_VALUE: LazyLock<Regex> = LazyLock::new(|| anchored(LABEL_VALUE_FMT));
static DNS1123_LABEL: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_LABEL_FMT));
static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_SUBDOMAIN_FMT));
static DNS1035_LABEL: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1035_LABEL_FMT));

/// "msg (e.g. 'a',  or 'b', regex used for validation is 'fmt')", the
/// apiserver's wording, double space included.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// Problems with `value` as a DNS-1123 label (at most 63 characters).
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len(63));
    }
    if !DNS1123_LABEL.is_match(value) {
        if DNS1123_SUBDOMAIN.is_match(value) {
            errs.push("must not contain dots".into());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Problems with `value` as a DNS-1123 subdomain (at most 253 characters).
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len(253));
    }
    if !DNS1123_SUBDOMAIN.is_match(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Problems with `value` as a DNS-1035 label (Service names).
pub fn dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len(63));
    }
    if !DNS1035_LABEL.is_match(value) {
        errs.push(regex_error(
            DNS1035_LABEL_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Problems with `value` as a qualified name: `[prefix/]name`, the prefix a
/// DNS subdomain, the name at most 63 alphanumerics, '-', '_' or '.'.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".into());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len(63)));
    }
    if !QUALIFIED_NAME.is_match(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Problems with `value` as a label value (empty is fine).
pub fn label_value(value: &str, minor: Minor) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        // v1.35 says what it counts (seen on v1.35.4 to v1.37.2).
        errs.push(if minor.at_least(LABEL_VALUE_BYTES_SINCE) {
            "must be no more than 63 bytes".to_string()
        } else {
            max_len(63)
        });
    }
    if !LABEL_VALUE.is_match(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// How a resource's names are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Dns1123Subdomain,
    Dns1123Label,
    Dns1035Label,
}

impl NameRule {
    /// The rule the apiserver applies to `kind`'s names: Namespaces and
    /// StatefulSets (whose pods' hostnames derive from it) take a label,
    /// Services a DNS-1035 label (a DNS-1123 label since v1.36), everything
    /// else here a subdomain.
    pub fn of(kind: &str, minor: Minor) -> NameRule {
        match kind {
            "Namespace" | "StatefulSet" => NameRule::Dns1123Label,
            // v1.36 relaxed Service names to DNS-1123 labels (`1st-service`
            // is refused by v1.34 and v1.35, accepted by v1.36.3 and v1.37.2).
            "Service" if minor.at_least(RELAXED_SERVICE_NAMES_SINCE) => NameRule::Dns1123Label,
            "Service" => NameRule::Dns1035Label,
            _ => NameRule::Dns1123Subdomain,
        }
    }

    /// Problems with a name, or with a generateName when `prefix` (whose
    /// trailing dash is then allowed: the apiserver checks the prefix with
    /// its last two characters replaced by one letter).
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && name.len() > 1 && name.ends_with('-') {
            // Byte-wise, as the apiserver does; cutting into a multi-byte
            // character leaves something no name rule accepts.
            masked = match name.get(..name.len() - 2) {
                Some(head) => format!("{head}a"),
                None => "\u{fffd}".to_string(),
            };
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::Dns1123Subdomain => dns1123_subdomain(name),
            NameRule::Dns1123Label => dns1123_label(name),
            NameRule::Dns1035Label => dns1035_label(name),
        }
    }
}

/// A string as Go's `%q` prints it.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn invalid(field: &str, value: &str, detail: &str) -> String {
    format!("{field}: Invalid value: {}: {detail}", go_quote(value))
}

/// JSON as Go's encoding/json writes it: no spaces, and `<`, `>`, `&`
/// escaped for HTML.
fn go_json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// An owner reference as the apiserver's struct marshals it: its fields in
/// declaration order, the optional flags only when set.
fn owner_json(r: &Value) -> Value {
    let mut m = serde_json::Map::new();
    for f in ["apiVersion", "kind", "name", "uid"] {
        m.insert(f.into(), json!(r[f].as_str().unwrap_or("")));
    }
    for f in ["controller", "blockOwnerDeletion"] {
        if let Some(b) = r[f].as_bool() {
            m.insert(f.into(), json!(b));
        }
    }
    Value::Object(m)
}

fn string_entries(v: &Value) -> Vec<(&str, &str)> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect()
}

fn owner_references(refs: &Value, minor: Minor, errs: &mut Vec<String>) {
    const LIST: &str = "metadata.ownerReferences";
    let list = refs.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut first_controller: Option<String> = None;
    for (i, r) in list.iter().enumerate() {
        // v1.37 names the entry (`ownerReferences[0]`) and reports an
        // empty kind as a missing value (seen on v1.37.2; v1.36.3 and
        // older name the list).
        let indexed = minor.at_least(INDEXED_OWNER_REFERENCES_SINCE);
        let entry = if indexed {
            format!("{LIST}[{i}]")
        } else {
            LIST.to_string()
        };
        let entry = entry.as_str();
        let api_version = r["apiVersion"].as_str().unwrap_or("");
        let kind = r["kind"].as_str().unwrap_or("");
        // group/version: "v1" is the core group; more than one '/' parses
        // as no version at all.
        let version = match api_version.matches('/').count() {
            0 => api_version,
            1 => api_version.split_once('/').map_or("", |(_, v)| v),
            _ => "",
        };
        let group = match api_version.matches('/').count() {
            1 => api_version.split_once('/').map_or("", |(g, _)| g),
            _ => "",
        };
        if version.is_empty() {
            errs.push(invalid(
                &format!("{entry}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            if indexed {
                errs.push(format!("{entry}.kind: Required value: must not be empty"));
            } else {
                errs.push(invalid(&format!("{entry}.kind"), kind, "must not be empty"));
            }
        }
        for f in ["name", "uid"] {
            let v = r[f].as_str().unwrap_or("");
            if v.is_empty() {
                errs.push(invalid(&format!("{entry}.{f}"), v, "must not be empty"));
            }
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(format!(
                "{entry}: Invalid value: {}: /v1, Kind=Event is disallowed from being an owner",
                go_json(&owner_json(r))
            ));
        }
        if r["controller"] == true {
            let this = format!("{kind}/{}", r["name"].as_str().unwrap_or(""));
            match &first_controller {
                Some(first) => errs.push(format!(
                    "{LIST}: Invalid value: {}: Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}",
                    go_json(&Value::Array(list.iter().map(owner_json).collect()))
                )),
                None => first_controller = Some(this),
            }
        }
    }
}

fn finalizers(list: &Value, errs: &mut Vec<String>) {
    let names: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f.as_str().unwrap_or(""))
        .collect();
    for f in &names {
        for m in qualified_name(f) {
            errs.push(invalid("metadata.finalizers", f, &m));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        errs.push(format!(
            "metadata.finalizers: Invalid value: {}: finalizer orphan and foregroundDeletion cannot be both set",
            go_json(&json!(names))
        ));
    }
    // The core API's own rule, after the generic ones: without a domain,
    // only the standard finalizers are allowed.
    for (i, f) in names.iter().enumerate() {
        if !f.contains('/') && !STANDARD_FINALIZERS.contains(f) {
            errs.push(invalid(
                &format!("metadata.finalizers[{i}]"),
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

/// Labels, annotations and ownerReferences: what is checked on create and
/// again on every update.
fn labels_annotations_owners(meta: &Value, minor: Minor, errs: &mut Vec<String>) {
    for (k, v) in string_entries(&meta["labels"]) {
        for m in qualified_name(k) {
            errs.push(invalid("metadata.labels", k, &m));
        }
        for m in label_value(v, minor) {
            errs.push(invalid("metadata.labels", v, &m));
        }
    }
    let annotations = string_entries(&meta["annotations"]);
    for (k, _) in &annotations {
        // Annotation keys are checked lowercased, and reported as written.
        for m in qualified_name(&k.to_lowercase()) {
            errs.push(invalid("metadata.annotations", k, &m));
        }
    }
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(format!(
            "metadata.annotations: Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"
        ));
    }
    owner_references(&meta["ownerReferences"], minor, errs);
}

/// Every problem with a new object's metadata, as `field: detail` in the
/// apiserver's order. `kind` chooses the name rule; namespaced kinds need a
/// namespace, Namespaces may not have one.
pub fn on_create(kind: &str, meta: &Value, minor: Minor) -> Vec<String> {
    on_create_scoped(kind, meta, minor, kind != "Namespace")
}

/// [`on_create`] for a kind of the given scope: a cluster-scoped object's
/// namespace was cleared before validation, as the apiserver clears it.
pub fn on_create_scoped(kind: &str, meta: &Value, minor: Minor, namespaced: bool) -> Vec<String> {
    let rule = NameRule::of(kind, minor);
    let mut errs = Vec::new();
    let generate_name = meta["generateName"].as_str().unwrap_or("");
    if !generate_name.is_empty() {
        for m in rule.check(generate_name, true) {
            errs.push(invalid("metadata.generateName", generate_name, &m));
        }
    }
    let name = meta["name"].as_str().unwrap_or("");
    if name.is_empty() {
        errs.push("metadata.name: Required value: name or generateName is required".into());
    } else {
        for m in rule.check(name, false) {
            errs.push(invalid("metadata.name", name, &m));
        }
    }
    let namespace = meta["namespace"].as_str().unwrap_or("");
    if kind == "Namespace" {
        if !namespace.is_empty() {
            errs.push("metadata.namespace: Forbidden: not allowed on this type".into());
        }
    } else if !namespaced {
    } else if namespace.is_empty() {
        errs.push("metadata.namespace: Required value".into());
    } else {
        for m in NameRule::Dns1123Label.check(namespace, false) {
            errs.push(invalid("metadata.namespace", namespace, &m));
        }
    }
    labels_annotations_owners(meta, minor, &mut errs);
    finalizers(&meta["finalizers"], &mut errs);
    errs
}

/// Problems with an updated object's metadata (the name is fixed by then).
pub fn on_update(meta: &Value, minor: Minor) -> Vec<String> {
    let mut errs = Vec::new();
    labels_annotations_owners(meta, minor, &mut errs);
    let mut finalizer_errs = Vec::new();
    finalizers(&meta["finalizers"], &mut finalizer_errs);
    // Updates only re-run the core API's finalizer-name rule.
    errs.extend(
        finalizer_errs
            .into_iter()
            .filter(|e| e.starts_with("metadata.finalizers[")),
    );
    errs
}

/// The kind as the apiserver names it in messages: `Pod`, `Deployment.apps`.
pub fn qualified_kind(kind: &str) -> String {
    match crate::cluster::kind_info(kind) {
        Some(k) if !k.group.is_empty() => format!("{kind}.{}", k.group),
        _ => kind.to_string(),
    }
}

/// The apiserver's "is invalid" message for a list of field errors:
/// duplicates dropped, one error bare, several in brackets.
pub fn invalid_message(kind: &str, name: &str, errs: &[String]) -> String {
    let mut seen = BTreeSet::new();
    let unique: Vec<&str> = errs
        .iter()
        .filter(|e| seen.insert(e.as_str()))
        .map(String::as_str)
        .collect();
    let kind = qualified_kind(kind);
    match unique.as_slice() {
        [] => format!("{kind} {} is invalid", go_quote(name)),
        [one] => format!("{kind} {} is invalid: {one}", go_quote(name)),
        many => format!(
            "{kind} {} is invalid: [{}]",
            go_quote(name),
            many.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The minor these tests were written against.
    const V34: crate::version::Minor = crate::version::Minor::new(34);

    const SUBDOMAIN_HELP: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    #[test]
    fn names_follow_each_kinds_rule() {
        assert!(NameRule::of("Pod", V34).check("a.b", false).is_empty());
        assert_eq!(
            NameRule::of("StatefulSet", V34).check("a.b", false),
            vec!["must not contain dots"]
        );
        assert_eq!(NameRule::of("Service", V34).check("1abc", false).len(), 1);
        assert!(NameRule::of("Pod", V34).check("1abc", false).is_empty());
        assert_eq!(
            NameRule::of("Pod", V34).check("Bad_Name", false),
            vec![SUBDOMAIN_HELP]
        );
        assert_eq!(
            NameRule::of("Pod", V34).check(&"a".repeat(254), false),
            vec!["must be no more than 253 characters"]
        );
        assert_eq!(
            NameRule::of("Namespace", V34).check(&"a".repeat(64), false),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn generate_name_may_end_in_a_dash_but_is_otherwise_a_name() {
        assert!(NameRule::of("Pod", V34).check("web-", true).is_empty());
        assert!(!NameRule::of("Pod", V34).check("web-", false).is_empty());
        assert!(!NameRule::of("Pod", V34).check("Web-", true).is_empty());
        // The apiserver replaces the last two characters, not just the dash.
        assert!(NameRule::of("Pod", V34).check("a.-", true).is_empty());
    }

    #[test]
    fn qualified_names_report_each_part() {
        assert!(qualified_name("example.com/My_Name.1").is_empty());
        assert_eq!(
            qualified_name("bad key"),
            vec!["name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]
        );
        assert_eq!(qualified_name("/x"), vec!["prefix part must be non-empty"]);
        assert_eq!(
            qualified_name("Example.com/x"),
            vec![format!("prefix part {SUBDOMAIN_HELP}")]
        );
        let empty = qualified_name("a/");
        assert_eq!(empty.len(), 2, "{empty:?}");
        assert_eq!(empty[0], "name part must be non-empty");
        assert!(qualified_name("a/b/c")[0].starts_with("a qualified name must consist"));
        assert_eq!(
            qualified_name(&"x".repeat(64)),
            vec!["name part must be no more than 63 characters"]
        );
    }

    #[test]
    fn metadata_errors_read_as_the_apiservers() {
        let meta = json!({"name": "x", "namespace": "demo", "annotations": {"bad key": "v", "Fine.Example/Key": "v"}});
        let errs = on_create("Pod", &meta, V34);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            invalid_message("Pod", "x", &errs),
            "Pod \"x\" is invalid: metadata.annotations: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        let meta = json!({"name": "x", "namespace": "demo", "labels": {"app": "not valid!"}});
        assert_eq!(
            on_create("Deployment", &meta, V34),
            vec!["metadata.labels: Invalid value: \"not valid!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]
        );
        assert!(
            invalid_message("Deployment", "x", &["e".into()]).starts_with("Deployment.apps \"x\"")
        );
        assert!(invalid_message("Job", "x", &["e".into()]).starts_with("Job.batch \"x\""));
    }

    #[test]
    fn annotation_size_is_limited_in_total() {
        let at_limit = "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT - 2);
        let meta = json!({"name": "x", "namespace": "d", "annotations": {"ab": at_limit}});
        assert_eq!(on_create("Pod", &meta, V34), Vec::<String>::new());
        let meta = json!({"name": "x", "namespace": "d", "annotations": {"ab": at_limit, "c": ""}});
        assert_eq!(
            on_create("Pod", &meta, V34),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }

    #[test]
    fn finalizers_and_owner_references() {
        let meta = json!({"name": "x", "namespace": "d", "finalizers": ["my-finalizer"]});
        assert_eq!(
            on_create("Pod", &meta, V34),
            vec!["metadata.finalizers[0]: Invalid value: \"my-finalizer\": name is neither a standard finalizer name nor is it fully qualified"]
        );
        let meta =
            json!({"name": "x", "namespace": "d", "finalizers": ["orphan", "foregroundDeletion"]});
        assert_eq!(
            on_create("Pod", &meta, V34),
            vec!["metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set"]
        );
        let meta = json!({"name": "x", "namespace": "d", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": true}]});
        assert_eq!(
            on_create("Pod", &meta, V34),
            vec!["metadata.ownerReferences: Invalid value: [{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"a\",\"uid\":\"1\",\"controller\":true},{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"b\",\"uid\":\"2\",\"controller\":true}]: Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/a and ReplicaSet/b"]
        );
        let meta = json!({"name": "x", "namespace": "d", "ownerReferences": [{"apiVersion": "apps/", "kind": "", "name": "a", "uid": "1"}]});
        assert_eq!(
            on_create("Pod", &meta, V34),
            vec![
                "metadata.ownerReferences.apiVersion: Invalid value: \"apps/\": version must not be empty",
                "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty"
            ]
        );
        let meta = json!({"name": "x", "namespace": "d", "ownerReferences": [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"}]});
        assert_eq!(
            on_create("Pod", &meta, V34),
            vec!["metadata.ownerReferences: Invalid value: {\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"1\"}: /v1, Kind=Event is disallowed from being an owner"]
        );
    }

    #[test]
    fn duplicate_errors_are_reported_once() {
        let errs = vec!["a".to_string(), "b".into(), "a".into()];
        assert_eq!(
            invalid_message("Pod", "p", &errs),
            "Pod \"p\" is invalid: [a, b]"
        );
    }
}
