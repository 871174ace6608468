//! Offline injection and checks over multi-document YAML, like
//! `istioctl kube-inject`.
//!
//! Every document is read into a [`serde_json::Value`] (key order kept), and
//! the pods in it are found by kind:
//! - `Pod` (and `ReplicationController`'s `spec.template`) in the core group;
//! - `spec.template` of `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`
//!   (`apps` or the old `extensions`) and `Job` (`batch`);
//! - `spec.jobTemplate.spec.template` of a `CronJob` (`batch`);
//! - every entry of `items` in a `List` or a typed list such as `PodList`
//!   (whose entries may leave out their `kind` and `apiVersion`).
//!
//! The group is checked when `apiVersion` is present, so a custom resource
//! that happens to be called `Job` is left alone; a snippet without
//! `apiVersion` is matched by kind. Anything else passes through unchanged.
//!
//! Each pod goes through [`Injector::evaluate`], the very call the webhook
//! makes, and the returned JSON Patch is applied strictly to that pod or
//! template, so offline and webhook injection cannot disagree.
//!
//! The output re-serializes the documents (comments and formatting are not
//! kept). Empty documents (nothing but comments, or a stray `---`) are
//! dropped, as `kubectl apply` ignores them; they still count in the document
//! numbers, which are 0-based positions in the input stream, so a number
//! always points at the same place in the file the user gave.
//!
//! YAML anchors and aliases are expanded; `<<` merge keys are not (they are
//! kept as a literal `<<` key).

use std::fmt::{self, Write as _};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::inject::{Injector, Outcome, PodRef};
use crate::policy::Reason;

/// An input that cannot be injected or checked.
///
/// `origin` names the input and, when the error has a place in the text,
/// its line and column (`file.yaml:12:7`), so editors can jump to it. The
/// message names the document (0-based), the object and the field path.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct WorkloadError {
    pub origin: String,
    pub message: String,
}

/// The verdict for one pod or pod template.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// 0-based index of the YAML document.
    pub document: usize,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Where the pod spec sits, e.g. `spec.template` ("" for a Pod).
    pub path: String,
    pub inject: bool,
    pub reason: Reason,
    pub detail: String,
    pub warnings: Vec<String>,
    pub denied: Option<String>,
}

/// Namespace used by [`check_documents`] for objects that set none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Injects every pod and pod template in `input`; other kinds pass through.
///
/// Each pod is evaluated in its object's `metadata.namespace`, or in
/// `default_namespace` when the object sets none. A pod the injector would
/// deny (a port clash under `onPortConflict: reject`) or cannot read fails
/// the whole input: writing the workload out half-injected would hide it.
pub fn inject_documents(
    injector: &Injector,
    input: &str,
    origin: &str,
    default_namespace: &str,
) -> Result<(String, Vec<Verdict>), WorkloadError> {
    let run = Run {
        injector,
        input,
        origin,
    };
    let mut documents = run.parse()?;
    let mut verdicts = Vec::new();
    for (index, document) in documents.iter_mut().enumerate() {
        for part in run.parts(index, document)? {
            let namespace = part.namespace.as_deref().unwrap_or(default_namespace);
            let outcome = match run.evaluate(document, &part, namespace) {
                Ok(o) => o,
                Err(PartError::Fatal(f) | PartError::Unreadable(f)) => {
                    return Err(run.error(index, Some(&part), f))
                }
            };
            if let Some(message) = &outcome.denied {
                let fault = Fault::new(&part.path, format!("denied: {message}"));
                return Err(run.error(index, Some(&part), fault));
            }
            run.apply(index, document, &part, &outcome)?;
            verdicts.push(verdict(index, &part, namespace, &outcome));
        }
    }
    let mut out = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        if document.is_null() {
            continue;
        }
        out.push(serde_yaml::to_string(document).map_err(|e| WorkloadError {
            origin: origin.to_string(),
            message: format!("document {index}: cannot write YAML: {e}"),
        })?);
    }
    Ok((out.join("---\n"), verdicts))
}

/// Decides for every pod and pod template in `input`, changing nothing.
///
/// `namespace`, when given and not empty, replaces every object's own
/// namespace, to ask what would happen if the workload were deployed there;
/// otherwise an object without one is checked in [`DEFAULT_NAMESPACE`].
/// The verdicts are what the webhook would answer: a pod it would deny,
/// including one whose spec it cannot read ([`Reason::InvalidPod`]), is
/// reported with `denied` set rather than failing the whole input. YAML that does not parse, and objects whose metadata or
/// template is malformed, are errors.
pub fn check_documents(
    injector: &Injector,
    input: &str,
    origin: &str,
    namespace: Option<&str>,
) -> Result<Vec<Verdict>, WorkloadError> {
    let run = Run {
        injector,
        input,
        origin,
    };
    let documents = run.parse()?;
    let mut verdicts = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        for part in run.parts(index, document)? {
            let ns = namespace
                .filter(|n| !n.is_empty())
                .or(part.namespace.as_deref())
                .unwrap_or(DEFAULT_NAMESPACE);
            match run.evaluate(document, &part, ns) {
                Ok(outcome) => verdicts.push(verdict(index, &part, ns, &outcome)),
                Err(PartError::Fatal(f)) => return Err(run.error(index, Some(&part), f)),
                Err(PartError::Unreadable(f)) => {
                    // What the webhook answers for a pod it cannot read.
                    let message = format!("cannot read the pod: {f}");
                    verdicts.push(Verdict {
                        document: index,
                        kind: part.kind.clone(),
                        name: part.name.clone(),
                        namespace: ns.to_string(),
                        path: display_path(&part.path),
                        inject: false,
                        reason: Reason::InvalidPod,
                        detail: message.clone(),
                        warnings: Vec::new(),
                        denied: Some(message),
                    });
                }
            }
        }
    }
    Ok(verdicts)
}

fn verdict(document: usize, part: &Part, namespace: &str, outcome: &Outcome) -> Verdict {
    Verdict {
        document,
        kind: part.kind.clone(),
        name: part.name.clone(),
        namespace: namespace.to_string(),
        path: display_path(&part.path),
        inject: outcome.denied.is_none() && outcome.injected(),
        reason: outcome.decision.reason,
        detail: outcome.decision.detail.clone(),
        warnings: outcome.warnings.clone(),
        denied: outcome.denied.clone(),
    }
}

/// One step of a path inside a document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn key(k: &str) -> Step {
    Step::Key(k.to_string())
}

fn child(path: &[Step], steps: impl IntoIterator<Item = Step>) -> Vec<Step> {
    path.iter().cloned().chain(steps).collect()
}

/// `spec.template`, `items[0].metadata`, `metadata.labels["app.io/name"]`:
/// keys that are not plain words are quoted so the path stays unambiguous.
fn display_path(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
            Step::Key(k)
                if !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Key(k) => {
                let _ = write!(out, "[{k:?}]");
            }
        }
    }
    out
}

fn get<'v>(mut value: &'v Value, path: &[Step]) -> Option<&'v Value> {
    for step in path {
        value = match step {
            Step::Key(k) => value.as_object()?.get(k)?,
            Step::Index(i) => value.as_array()?.get(*i)?,
        };
    }
    Some(value)
}

fn get_mut<'v>(mut value: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    for step in path {
        value = match step {
            Step::Key(k) => value.as_object_mut()?.get_mut(k)?,
            Step::Index(i) => value.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(value)
}

/// Something wrong at a place in one document; the file, line and object are
/// added by [`Run::error`].
#[derive(Debug)]
struct Fault {
    path: Vec<Step>,
    message: String,
}

impl Fault {
    fn new(path: &[Step], message: impl Into<String>) -> Fault {
        Fault {
            path: path.to_vec(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match display_path(&self.path) {
            p if p.is_empty() => f.write_str(&self.message),
            p => write!(f, "{p}: {}", self.message),
        }
    }
}

/// Why a pod could not be evaluated. The webhook refuses an unreadable spec
/// with a denial, so `check` reports it as one; a malformed object around the
/// spec never reaches the webhook as a pod and is always an error.
enum PartError {
    Fatal(Fault),
    Unreadable(Fault),
}

/// A pod or pod template found in a document.
#[derive(Debug)]
struct Part {
    /// From the document root to the pod (`[]` for a Pod document).
    path: Vec<Step>,
    /// The object holding the pod: `Deployment`, `Pod`, ...
    kind: String,
    /// That object's name (or generateName); may be empty.
    name: String,
    /// That object's namespace, when it sets a non-empty one.
    namespace: Option<String>,
}

impl Part {
    fn label(&self) -> String {
        if self.name.is_empty() {
            format!("{} (unnamed)", self.kind)
        } else {
            format!("{} {}", self.kind, self.name)
        }
    }
}

/// Where a kind keeps its pod, if it has one. `api_version` is `None` when
/// the object does not say; the kind alone decides then.
fn template_path(kind: &str, api_version: Option<&str>) -> Option<&'static [&'static str]> {
    const POD: &[&str] = &[];
    const TEMPLATE: &[&str] = &["spec", "template"];
    const JOB_TEMPLATE: &[&str] = &["spec", "jobTemplate", "spec", "template"];
    let (groups, path): (&[&str], _) = match kind {
        "Pod" => (&[""], POD),
        "ReplicationController" => (&[""], TEMPLATE),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            (&["apps", "extensions"], TEMPLATE)
        }
        "Job" => (&["batch"], TEMPLATE),
        "CronJob" => (&["batch"], JOB_TEMPLATE),
        _ => return None,
    };
    match api_version {
        None => Some(path),
        Some(v) => {
            let group = v.rsplit_once('/').map_or("", |(g, _)| g);
            groups.contains(&group).then_some(path)
        }
    }
}

/// Collects the pods in `value` (at `path`). `implied` is the kind and
/// apiVersion a typed list gives entries that leave them out.
fn find_parts(
    value: &Value,
    path: &mut Vec<Step>,
    implied: Option<(&str, Option<&str>)>,
    out: &mut Vec<Part>,
) -> Result<(), Fault> {
    let Some(obj) = value.as_object() else {
        return Ok(());
    };
    let (kind, api_version) = match (obj.get("kind"), implied) {
        (Some(Value::String(k)), _) => (k.as_str(), obj.get("apiVersion").and_then(Value::as_str)),
        (None | Some(Value::Null), Some((k, v))) => {
            (k, obj.get("apiVersion").and_then(Value::as_str).or(v))
        }
        _ => return Ok(()),
    };
    if kind.ends_with("List") {
        if let Some(items) = obj.get("items").and_then(Value::as_array) {
            // A typed list (PodList) names its entries' kind; `List` does not.
            let implied = kind
                .strip_suffix("List")
                .filter(|k| !k.is_empty())
                .map(|k| (k, api_version));
            for (i, item) in items.iter().enumerate() {
                path.push(key("items"));
                path.push(Step::Index(i));
                let found = find_parts(item, path, implied, out);
                path.truncate(path.len() - 2);
                found?;
            }
        }
        return Ok(());
    }
    let Some(template) = template_path(kind, api_version) else {
        return Ok(());
    };
    let (name, namespace) = identity(obj, path)?;
    out.push(Part {
        path: child(path, template.iter().map(|k| key(k))),
        kind: kind.to_string(),
        name,
        namespace,
    });
    Ok(())
}

/// The name and namespace of an object, type-checked.
fn identity(
    obj: &serde_json::Map<String, Value>,
    path: &[Step],
) -> Result<(String, Option<String>), Fault> {
    let meta_path = child(path, [key("metadata")]);
    let meta = match obj.get("metadata") {
        None | Some(Value::Null) => return Ok((String::new(), None)),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Fault::new(&meta_path, "must be a mapping")),
    };
    let text = |field: &str| match meta.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Fault::new(
            &child(&meta_path, [key(field)]),
            "must be a string",
        )),
    };
    let name = match text("name")? {
        Some(n) if !n.is_empty() => n,
        _ => text("generateName")?.unwrap_or_default(),
    };
    let namespace = text("namespace")?.filter(|n| !n.is_empty());
    Ok((name, namespace))
}

/// One pass over one input.
struct Run<'a> {
    injector: &'a Injector,
    input: &'a str,
    origin: &'a str,
}

impl Run<'_> {
    /// Every document of the input, empty ones as `Null`.
    fn parse(&self) -> Result<Vec<Value>, WorkloadError> {
        let mut documents = Vec::new();
        for (index, de) in serde_yaml::Deserializer::from_str(self.input).enumerate() {
            let value = Value::deserialize(de).map_err(|e| self.yaml_error(index, &e))?;
            documents.push(value);
        }
        Ok(documents)
    }

    fn yaml_error(&self, document: usize, err: &serde_yaml::Error) -> WorkloadError {
        let message = err.to_string();
        match err.location() {
            Some(loc) => {
                // serde_yaml repeats the position at the end of its message;
                // it is already in front.
                let tail = format!(" at line {} column {}", loc.line(), loc.column());
                WorkloadError {
                    origin: format!("{}:{}:{}", self.origin, loc.line(), loc.column()),
                    message: format!("document {document}: {}", message.replacen(&tail, "", 1)),
                }
            }
            None => WorkloadError {
                origin: self.origin.to_string(),
                message: format!("document {document}: {message}"),
            },
        }
    }

    /// The error for `fault`, with the line and column of the field it names
    /// (or of the nearest enclosing field present in the text).
    fn error(&self, document: usize, part: Option<&Part>, fault: Fault) -> WorkloadError {
        let origin = match locate(self.input, document, &fault.path) {
            Some((line, column)) => format!("{}:{line}:{column}", self.origin),
            None => self.origin.to_string(),
        };
        let subject = part.map(|p| format!("{}: ", p.label())).unwrap_or_default();
        WorkloadError {
            origin,
            message: format!("document {document}: {subject}{fault}"),
        }
    }

    fn parts(&self, index: usize, document: &Value) -> Result<Vec<Part>, WorkloadError> {
        let mut parts = Vec::new();
        find_parts(document, &mut Vec::new(), None, &mut parts)
            .map_err(|f| self.error(index, None, f))?;
        Ok(parts)
    }

    fn evaluate(
        &self,
        document: &Value,
        part: &Part,
        namespace: &str,
    ) -> Result<Outcome, PartError> {
        let pod = match get(document, &part.path) {
            Some(Value::Object(pod)) => pod,
            Some(Value::Null) | None => {
                return Err(PartError::Fatal(Fault::new(&part.path, "is missing")))
            }
            Some(_) => {
                return Err(PartError::Fatal(Fault::new(
                    &part.path,
                    "must be a mapping",
                )))
            }
        };
        let metadata = match pod.get("metadata") {
            None | Some(Value::Null) => ObjectMeta::default(),
            Some(meta) => serde_path_to_error::deserialize(meta).map_err(|e| {
                let mut path = child(&part.path, [key("metadata")]);
                path.extend(e.path().iter().filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                    _ => None,
                }));
                PartError::Fatal(Fault::new(&path, e.into_inner().to_string()))
            })?,
        };
        let spec = pod.get("spec").unwrap_or(&Value::Null);
        self.injector
            .evaluate(PodRef {
                namespace,
                metadata: &metadata,
                spec,
            })
            .map_err(|e| {
                let path = child(&part.path, e.field.split('.').map(key));
                PartError::Unreadable(Fault::new(&path, e.message))
            })
    }

    /// Applies the engine's patch to the pod, strictly: the patch is what the
    /// apiserver would apply, so a failure here is an engine defect.
    fn apply(
        &self,
        index: usize,
        document: &mut Value,
        part: &Part,
        outcome: &Outcome,
    ) -> Result<(), WorkloadError> {
        let failure = match get_mut(document, &part.path) {
            Some(pod) => match json_patch::patch(pod, &outcome.patch) {
                Ok(()) => return Ok(()),
                Err(e) => format!("the injection patch does not apply (an injector bug): {e}"),
            },
            None => "the pod vanished before its patch was applied (an injector bug)".into(),
        };
        Err(self.error(index, Some(part), Fault::new(&part.path, failure)))
    }
}

/// The line and column (1-based) where the node at `path` starts in document
/// `document` of `input`, or the nearest enclosing node when `path` goes
/// further than the text does.
///
/// The values have lost their positions by now, so the document is read
/// again and walked along `path`; at the end the walk raises an error, to
/// which serde_yaml attaches the position of the node being read.
fn locate(input: &str, document: usize, path: &[Step]) -> Option<(usize, usize)> {
    let de = serde_yaml::Deserializer::from_str(input).nth(document)?;
    let err = Locate(path).deserialize(de).err()?;
    err.location().map(|l| (l.line(), l.column()))
}

/// Walks to a node and fails there (see [`locate`]).
struct Locate<'p>(&'p [Step]);

const HERE: &str = "here";

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if let Some((Step::Key(want), rest)) = self.0.split_first() {
            while let Some(k) = map.next_key::<serde_yaml::Value>()? {
                if k.as_str() == Some(want.as_str()) {
                    return map.next_value_seed(Locate(rest));
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        Err(de::Error::custom(HERE))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some((Step::Index(want), rest)) = self.0.split_first() {
            let mut i = 0;
            while i < *want {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Err(de::Error::custom(HERE));
                }
                i += 1;
            }
            if seq.next_element_seed(Locate(rest))?.is_some() {
                return Ok(());
            }
        }
        Err(de::Error::custom(HERE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, PortConflictPolicy};
    use serde_json::json;

    fn injector() -> Injector {
        Injector::new(Config::builtin())
    }

    fn docs(yaml: &str) -> Vec<Value> {
        serde_yaml::Deserializer::from_str(yaml)
            .map(|d| Value::deserialize(d).unwrap())
            .collect()
    }

    fn inject(yaml: &str) -> (Vec<Value>, Vec<Verdict>) {
        let (out, verdicts) = inject_documents(&injector(), yaml, "in.yaml", "default").unwrap();
        (docs(&out), verdicts)
    }

    fn names(list: &Value) -> Vec<&str> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap_or(""))
            .collect()
    }

    const POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: nginx
";

    #[test]
    fn injects_a_pod() {
        let (out, verdicts) = inject(POD);
        assert_eq!(out.len(), 1);
        assert_eq!(names(&out[0]["spec"]["containers"]), ["web", "envoy"]);
        assert!(out[0]["metadata"]["annotations"]["sidecar-injector.io/status"].is_string());
        assert_eq!(verdicts.len(), 1);
        let v = &verdicts[0];
        assert_eq!(
            (v.document, v.kind.as_str(), v.name.as_str()),
            (0, "Pod", "web")
        );
        assert_eq!((v.path.as_str(), v.namespace.as_str()), ("", "default"));
        assert!(v.inject);
        assert_eq!(v.reason, Reason::PolicyEnabled);
    }

    #[test]
    fn keeps_key_order() {
        let (out, _) = inject(POD);
        let keys: Vec<_> = out[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
    }

    #[test]
    fn injects_a_deployment_template_in_the_objects_namespace() {
        let yaml = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: api:1}]
";
        let (out, verdicts) = inject(yaml);
        let d = &out[0];
        assert_eq!(
            d["metadata"],
            json!({"name": "api", "namespace": "shop", "labels": {"app": "api"}})
        );
        let t = &d["spec"]["template"];
        assert_eq!(names(&t["spec"]["containers"]), ["api", "envoy"]);
        assert_eq!(t["metadata"]["labels"], json!({"app": "api"}));
        assert!(t["metadata"]["annotations"]["sidecar-injector.io/status"].is_string());
        assert_eq!(verdicts[0].path, "spec.template");
        assert_eq!(verdicts[0].namespace, "shop");
        assert_eq!(verdicts[0].kind, "Deployment");
    }

    #[test]
    fn injects_a_cronjob_job_template() {
        let yaml = "\
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: '0 3 * * *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: job, image: job:1}]
";
        let (out, verdicts) = inject(yaml);
        let t = &out[0]["spec"]["jobTemplate"]["spec"]["template"];
        assert_eq!(names(&t["spec"]["containers"]), ["job", "envoy"]);
        assert_eq!(verdicts[0].path, "spec.jobTemplate.spec.template");
        assert_eq!(out[0]["spec"]["schedule"], "0 3 * * *");
    }

    #[test]
    fn walks_a_list_and_leaves_other_kinds_alone() {
        let yaml = "\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a, namespace: team}
  spec: {containers: [{name: a, image: a}]}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: envoy-config}
  data: {envoy.yaml: 'static_resources: {}'}
";
        let input = docs(yaml);
        let (out, verdicts) = inject(yaml);
        assert_eq!(
            names(&out[0]["items"][0]["spec"]["containers"]),
            ["a", "envoy"]
        );
        assert_eq!(
            out[0]["items"][1], input[0]["items"][1],
            "ConfigMap unchanged"
        );
        assert_eq!(verdicts.len(), 1);
        assert_eq!(verdicts[0].path, "items[0]");
        assert_eq!(verdicts[0].namespace, "team");
    }

    #[test]
    fn typed_list_entries_take_the_lists_kind() {
        let yaml = "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: a}\n  spec: {containers: [{name: a, image: a}]}\n";
        let (out, verdicts) = inject(yaml);
        assert_eq!(verdicts[0].kind, "Pod");
        assert_eq!(
            names(&out[0]["items"][0]["spec"]["containers"]),
            ["a", "envoy"]
        );
    }

    #[test]
    fn custom_resources_with_a_workload_name_pass_through() {
        let yaml = "apiVersion: example.com/v1\nkind: Job\nmetadata: {name: j}\nspec: {template: {spec: {containers: [{name: a}]}}}\n";
        let (out, verdicts) = inject(yaml);
        assert!(verdicts.is_empty());
        assert_eq!(out, docs(yaml));
    }

    #[test]
    fn host_network_pod_is_not_injected() {
        let yaml = POD.replace("spec:\n", "spec:\n  hostNetwork: true\n");
        let (out, verdicts) = inject(&yaml);
        assert_eq!(out, docs(&yaml));
        assert!(!verdicts[0].inject);
        assert_eq!(verdicts[0].reason, Reason::HostNetwork);
    }

    #[test]
    fn a_denied_pod_is_an_error_naming_it() {
        let mut config = Config::builtin();
        config.on_port_conflict = PortConflictPolicy::Reject;
        let inj = Injector::new(config);
        let yaml = format!("kind: ConfigMap\n---\n{POD}    ports: [{{containerPort: 10000}}]\n");
        let err = inject_documents(&inj, &yaml, "in.yaml", "default")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("in.yaml:3:1: document 1: Pod web: denied: "),
            "{err}"
        );
        assert!(err.contains("10000/TCP"), "{err}");
        // check reports the same denial without failing.
        let verdicts = check_documents(&inj, &yaml, "in.yaml", None).unwrap();
        assert!(!verdicts[0].inject);
        assert!(verdicts[0].denied.as_deref().unwrap().contains("10000/TCP"));
    }

    #[test]
    fn malformed_yaml_names_line_column_and_document() {
        let yaml = "kind: ConfigMap\n---\nkind: Pod\nmetadata:\n  name: [x\n";
        let err = inject_documents(&injector(), yaml, "in.yaml", "default").unwrap_err();
        let text = err.to_string();
        assert!(err.origin.starts_with("in.yaml:"), "{text}");
        let line: usize = err.origin.split(':').nth(1).unwrap().parse().unwrap();
        assert!((5..=6).contains(&line), "{text}");
        assert!(err.message.starts_with("document 1: "), "{text}");
        let tail = format!(" at line {line} column ");
        assert!(!err.message.contains(&tail), "position said twice: {text}");
        // libyaml's context (where the unclosed sequence began) stays.
        assert!(err.message.contains("at line 5 column 9"), "{text}");
        let err = check_documents(&injector(), "a: b: c\n", "c.yaml", None).unwrap_err();
        assert!(
            err.to_string().starts_with("c.yaml:1:5: document 0: "),
            "{err}"
        );
    }

    #[test]
    fn metadata_of_the_wrong_type_names_field_and_line() {
        let yaml = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    metadata:
      labels:
        app: 1
    spec: {containers: [{name: a, image: a}]}
";
        let err = inject_documents(&injector(), yaml, "d.yaml", "default").unwrap_err();
        assert_eq!(err.origin, "d.yaml:8:14");
        assert!(
            err.message.starts_with(
                "document 0: Deployment api: spec.template.metadata.labels.app: invalid type"
            ),
            "{err}"
        );
        let err = check_documents(&injector(), yaml, "d.yaml", None).unwrap_err();
        assert_eq!(err.origin, "d.yaml:8:14");
    }

    #[test]
    fn a_missing_template_and_an_unreadable_spec_are_named() {
        let yaml =
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  replicas: 1\n";
        let err = inject_documents(&injector(), yaml, "d.yaml", "default").unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.yaml:5:3: document 0: Deployment api: spec.template: is missing"
        );

        let yaml = "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: nope\n";
        let err = inject_documents(&injector(), yaml, "p.yaml", "default").unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.yaml:4:15: document 0: Pod p: spec.containers: must be a list"
        );
        let verdicts = check_documents(&injector(), yaml, "p.yaml", None).unwrap();
        assert_eq!(verdicts[0].reason, Reason::InvalidPod);
        assert_eq!(
            verdicts[0].denied.as_deref(),
            Some("cannot read the pod: spec.containers: must be a list")
        );
    }

    #[test]
    fn a_template_without_metadata_is_injected() {
        let yaml = "\
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: once, image: once}]
";
        let (out, verdicts) = inject(yaml);
        let t = &out[0]["spec"]["template"];
        assert!(t["metadata"]["annotations"]["sidecar-injector.io/status"].is_string());
        assert_eq!(names(&t["spec"]["containers"]), ["once", "envoy"]);
        assert!(verdicts[0].inject);
    }

    #[test]
    fn injecting_the_output_again_changes_nothing() {
        let yaml = format!(
            "{POD}    ports: [{{containerPort: 10000}}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec: {{template: {{spec: {{containers: [{{name: d, image: d}}]}}}}}}\n"
        );
        let (once, first) = inject_documents(&injector(), &yaml, "in.yaml", "default").unwrap();
        assert!(first.iter().all(|v| v.inject));
        let (twice, second) = inject_documents(&injector(), &once, "out.yaml", "default").unwrap();
        assert_eq!(once, twice);
        assert!(second
            .iter()
            .all(|v| !v.inject && v.reason == Reason::AlreadyInjected));
    }

    #[test]
    fn empty_documents_are_dropped_and_counted() {
        let yaml = format!("---\n# only a comment\n---\n{POD}---\n");
        let (out, verdicts) = inject_documents(&injector(), &yaml, "in.yaml", "default").unwrap();
        assert_eq!(docs(&out).len(), 1);
        assert!(!out.starts_with("---"), "{out}");
        assert_eq!(verdicts[0].document, 1);
        let (out, verdicts) = inject_documents(&injector(), "", "empty.yaml", "default").unwrap();
        assert_eq!((out.as_str(), verdicts.len()), ("", 0));
    }

    #[test]
    fn scalar_documents_pass_through() {
        let (out, verdicts) = inject("just text\n");
        assert_eq!(out, [json!("just text")]);
        assert!(verdicts.is_empty());
    }

    #[test]
    fn check_changes_nothing_and_can_override_the_namespace() {
        let yaml = POD.replace("name: web\nspec", "name: web\n  namespace: shop\nspec");
        let v = check_documents(&injector(), &yaml, "in.yaml", None).unwrap();
        assert_eq!((v[0].namespace.as_str(), v[0].inject), ("shop", true));
        let v = check_documents(&injector(), &yaml, "in.yaml", Some("kube-system")).unwrap();
        assert_eq!(v[0].namespace, "kube-system");
        assert_eq!(v[0].reason, Reason::IgnoredNamespace);
        assert!(!v[0].inject);
    }

    #[test]
    fn paths_quote_keys_that_are_not_plain_words() {
        let path = [
            key("metadata"),
            key("labels"),
            key("app.io/name"),
            Step::Index(2),
        ];
        assert_eq!(display_path(&path), "metadata.labels[\"app.io/name\"][2]");
        assert_eq!(display_path(&[]), "");
    }

    #[test]
    fn locate_finds_nodes_and_their_nearest_existing_parent() {
        let yaml = "a: 1\n---\nx:\n  y: [p, q]\n  z: {w: 1}\n";
        assert_eq!(
            locate(yaml, 1, &[key("x"), key("y"), Step::Index(1)]),
            Some((4, 10))
        );
        assert_eq!(
            locate(yaml, 1, &[key("x"), key("z"), key("nope")]),
            Some((5, 6))
        );
        assert_eq!(
            locate(yaml, 1, &[key("x"), key("y"), Step::Index(7)]),
            Some((4, 6))
        );
        assert_eq!(locate(yaml, 5, &[]), None);
    }
}
