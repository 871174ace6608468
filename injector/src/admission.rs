//! AdmissionReview `admission.k8s.io/v1` in, AdmissionReview out.
//!
//! This is the whole webhook protocol: the HTTP server and the `review`
//! command both call [`review`], so they answer byte for byte alike.

use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, TypeMeta};

use crate::inject::{Injector, PodRef};
use crate::policy::{Decision, Reason};

pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The review versions the injector answers, newest first. `v1beta1` has
/// the same request and response fields as `v1` (what differs is the
/// apiserver's defaults for a registration), so a webhook registered by an
/// older tool that lists only `v1beta1` still gets its answer, in the
/// version it was asked in.
pub const API_VERSIONS: &[&str] = &["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];
pub const KIND: &str = "AdmissionReview";

/// The object of a review, read as far as the injector needs it: typed
/// metadata and the pruned spec. Reading it through `DynamicObject` would
/// buffer the whole object twice (serde's flatten), and keeping the whole
/// spec would allocate every env var; for a pod with thousands of them that
/// dominated the request time.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct PodObject {
    #[serde(default)]
    pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    /// Only what the engine reads (see [`crate::pruned`]).
    #[serde(default)]
    pub spec: crate::pruned::PrunedSpec,
}

impl kube::core::Resource for PodObject {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &mut self.metadata
    }
}

/// The incoming review. kube's `AdmissionReview` flattens its type fields,
/// which makes serde buffer the entire body (object included) before
/// decoding it; reading the two type fields here and the request as kube's
/// `AdmissionRequest` directly decodes it once.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    request: Option<AdmissionRequest<PodObject>>,
}

/// A request body that is not a usable AdmissionReview. The server answers
/// these with 400 and the message.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("body is not an AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON is UTF-8 (RFC 8259). Checked over the whole body up front: the
    /// decoder skips the fields the engine does not read without looking
    /// inside their strings, so it would otherwise accept invalid UTF-8
    /// there (found by fuzzing the pruned decoder against the whole one).
    #[error("body is not an AdmissionReview: invalid UTF-8 at byte {0}")]
    Utf8(usize),
    #[error("{field}: {message}")]
    Envelope {
        field: &'static str,
        message: String,
    },
}

/// What happened to one request, for logs and metrics.
#[derive(Debug, Clone)]
pub struct Summary {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub operation: String,
    pub reason: Reason,
    pub detail: String,
    pub injected: bool,
    /// Set when the pod was refused.
    pub denied: Option<String>,
    pub warnings: Vec<String>,
}

/// The answer to one review.
#[derive(Debug)]
pub struct Reviewed {
    pub review: AdmissionReview<DynamicObject>,
    pub summary: Summary,
}

/// A CREATE review of `pod` in `namespace`, shaped as the apiserver sends
/// it: the input for tests, benchmarks, load runs and the `review` command.
pub fn pod_create_review(uid: &str, namespace: &str, pod: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": null,
            "dryRun": false
        }
    })
}

/// Serializes a response review in its wire form. kube-core keeps the patch
/// as `Vec<u8>`, which serde writes as an array of numbers; the documented
/// form of `response.patch` (a Go `[]byte`) is a base64 string. The review is
/// written straight to bytes through borrowed mirror types: going through a
/// `serde_json::Value` made every patch byte a JSON number first, which was
/// a quarter of the server's CPU per injected pod.
pub fn encode(review: &AdmissionReview<DynamicObject>) -> Vec<u8> {
    let wire = WireReview {
        api_version: &review.types.api_version,
        kind: &review.types.kind,
        request: review.request.as_ref(),
        response: review.response.as_ref().map(|r| WireResponse {
            uid: &r.uid,
            allowed: r.allowed,
            status: &r.result,
            patch: r.patch.as_deref().map(Base64),
            // kube sets the patch type only together with the patch
            // (`with_patch`), and JSON Patch is the only type there is.
            patch_type: r.patch.as_ref().map(|_| "JSONPatch"),
            audit_annotations: &r.audit_annotations,
            warnings: r.warnings.as_ref(),
        }),
    };
    // Sized up front: growing the buffer by doubling while the base64 patch
    // streams in showed up in profiles as reallocation and consolidation.
    let patch_len = review
        .response
        .as_ref()
        .and_then(|r| r.patch.as_ref())
        .map_or(0, Vec::len);
    let mut out = Vec::with_capacity(1024 + patch_len / 3 * 4 + 4);
    match serde_json::to_writer(&mut out, &wire) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// [`AdmissionReview`] as kube-core serializes it, borrowed.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct WireReview<'a> {
    api_version: &'a str,
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<&'a AdmissionRequest<DynamicObject>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<WireResponse<'a>>,
}

/// [`AdmissionResponse`] as kube-core serializes it (field names, order and
/// omissions), with the patch in base64.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse<'a> {
    uid: &'a str,
    allowed: bool,
    status: &'a kube::core::Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<Base64<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "no_entries")]
    audit_annotations: &'a std::collections::HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a Vec<String>>,
}

fn no_entries(map: &&std::collections::HashMap<String, String>) -> bool {
    map.is_empty()
}

/// Bytes written as a standard base64 string, encoded into the output as it
/// is written rather than into a `String` first.
struct Base64<'a>(&'a [u8]);

impl serde::Serialize for Base64<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&base64::display::Base64Display::new(
            self.0,
            &base64::engine::general_purpose::STANDARD,
        ))
    }
}

/// Answers one AdmissionReview body.
pub fn review(injector: &Injector, body: &[u8]) -> Result<Reviewed, ReviewError> {
    let text = std::str::from_utf8(body).map_err(|e| ReviewError::Utf8(e.valid_up_to()))?;
    let review: Envelope = serde_json::from_str(text)?;
    if !API_VERSIONS.contains(&review.api_version.as_str()) {
        return Err(ReviewError::Envelope {
            field: "apiVersion",
            message: format!(
                "must be {}, got {:?}",
                API_VERSIONS.join(" or "),
                review.api_version
            ),
        });
    }
    let asked = review.api_version.clone();
    if review.kind != KIND {
        return Err(ReviewError::Envelope {
            field: "kind",
            message: format!("must be {KIND}, got {:?}", review.kind),
        });
    }
    let Some(mut request) = review.request else {
        return Err(ReviewError::Envelope {
            field: "request",
            message: "is missing".into(),
        });
    };
    request.types = TypeMeta {
        api_version: review.api_version,
        kind: review.kind,
    };
    if request.uid.is_empty() {
        return Err(ReviewError::Envelope {
            field: "request.uid",
            message: "is empty".into(),
        });
    }
    let (response, summary) = respond(injector, &request)?;
    let mut review = response.into_review();
    // The response envelope must carry exactly the version that was asked.
    review.types = TypeMeta {
        api_version: asked,
        kind: KIND.into(),
    };
    Ok(Reviewed { review, summary })
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn respond(
    injector: &Injector,
    request: &AdmissionRequest<PodObject>,
) -> Result<(AdmissionResponse, Summary), ReviewError> {
    let object = request.object.as_ref();
    let namespace = request
        .namespace
        .clone()
        .or_else(|| object.and_then(|o| o.metadata.namespace.clone()))
        .unwrap_or_else(|| "default".into());
    let name = object
        .and_then(|o| {
            o.metadata
                .name
                .clone()
                .or_else(|| o.metadata.generate_name.clone())
        })
        .unwrap_or_else(|| request.name.clone());
    let mut summary = Summary {
        uid: request.uid.clone(),
        namespace,
        name,
        operation: operation_name(&request.operation).into(),
        reason: Reason::NotAPod,
        detail: String::new(),
        injected: false,
        denied: None,
        warnings: Vec::new(),
    };
    let allowed = AdmissionResponse::from(request);

    let is_pod = request.kind.group.is_empty()
        && request.kind.kind == "Pod"
        && request.sub_resource.as_deref().unwrap_or("").is_empty();
    if !is_pod {
        summary.detail = format!(
            "{}{} is not a pod",
            request.kind.kind,
            request
                .sub_resource
                .as_deref()
                .map(|s| format!("/{s}"))
                .unwrap_or_default()
        );
        return Ok((allowed, summary));
    }
    if !matches!(request.operation, Operation::Create) {
        summary.reason = Reason::NotCreate;
        summary.detail = format!(
            "{} leaves pods alone: containers cannot be added after creation",
            summary.operation
        );
        return Ok((allowed, summary));
    }
    let Some(object) = object else {
        return Err(ReviewError::Envelope {
            field: "request.object",
            message: "is missing on a CREATE".into(),
        });
    };
    let pod = PodRef {
        namespace: &summary.namespace,
        metadata: &object.metadata,
        spec: &object.spec.0,
    };
    let outcome = match injector.evaluate(pod) {
        Ok(o) => o,
        Err(e) => {
            // An unreadable pod would be refused by the apiserver as well;
            // say what is wrong rather than pass it on half-understood.
            summary.reason = Reason::InvalidPod;
            let message = format!("sidecar-injector cannot read the pod: object.{e}");
            summary.detail = message.clone();
            summary.denied = Some(message.clone());
            let mut response = allowed.deny(&message);
            response.result.code = 400;
            response.result.reason = "BadRequest".into();
            return Ok((response, summary));
        }
    };
    let Decision { reason, detail, .. } = outcome.decision.clone();
    summary.reason = reason;
    summary.detail = detail;
    summary.warnings = outcome.warnings.clone();
    summary.injected = outcome.injected();

    let mut response = allowed;
    // The decision travels back as audit annotations, so the apiserver's
    // audit log (prefixed with the webhook name) says why a pod was or was
    // not injected without reading the injector's logs.
    response
        .audit_annotations
        .insert("decision".into(), summary.reason.as_str().into());
    if !outcome.warnings.is_empty() {
        response.warnings = Some(outcome.warnings.clone());
    }
    if let Some(message) = outcome.denied {
        summary.denied = Some(message.clone());
        let mut response = response.deny(&message);
        response.result.code = 403;
        response.result.reason = "Forbidden".into();
        return Ok((response, summary));
    }
    if !outcome.patch.0.is_empty() {
        response = response
            .with_patch(outcome.patch)
            .map_err(|e| ReviewError::Envelope {
                field: "response.patch",
                message: e.to_string(),
            })?;
    }
    Ok((response, summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use base64::Engine as _;
    use serde_json::{json, Value};

    fn review_json(operation: &str, kind: &str, object: Value) -> Value {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": kind},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "default",
                "operation": operation,
                "userInfo": {"username": "admin"},
                "object": object,
                "dryRun": false
            }
        })
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 10000}]}]}
        })
    }

    /// The encoding this module had before [`encode`] wrote the wire form
    /// itself: kube-core's own serialization, with the patch's array of
    /// numbers swapped for base64. Kept as the oracle for the mirror types.
    fn encode_through_kube(review: &AdmissionReview<DynamicObject>) -> Value {
        let mut value = serde_json::to_value(review).unwrap();
        if let Some(patch) = review.response.as_ref().and_then(|r| r.patch.as_ref()) {
            value["response"]["patch"] =
                Value::String(base64::engine::general_purpose::STANDARD.encode(patch));
        }
        value
    }

    #[test]
    fn the_wire_form_is_kubes_serialization_with_a_base64_patch() {
        let mut bad = pod();
        bad["spec"]["containers"] = json!("web");
        let mut skipped = pod();
        skipped["spec"]["hostNetwork"] = json!(true);
        let inj = Injector::new(Config::builtin());
        let mut rejecting = Config::builtin();
        rejecting.on_port_conflict = crate::config::PortConflictPolicy::Reject;
        let denied = review(
            &Injector::new(rejecting),
            &serde_json::to_vec(&review_json("CREATE", "Pod", pod())).unwrap(),
        )
        .unwrap();
        assert!(denied.summary.denied.is_some());
        let ours: Value = serde_json::from_slice(&encode(&denied.review)).unwrap();
        assert_eq!(ours, encode_through_kube(&denied.review), "denied");
        for (label, body) in [
            ("injected", review_json("CREATE", "Pod", pod())),
            ("skipped", review_json("CREATE", "Pod", skipped)),
            ("unreadable", review_json("CREATE", "Pod", bad)),
            ("not a pod", review_json("CREATE", "ConfigMap", pod())),
            ("update", review_json("UPDATE", "Pod", pod())),
        ] {
            let r = review(&inj, &serde_json::to_vec(&body).unwrap()).unwrap();
            let ours: Value = serde_json::from_slice(&encode(&r.review)).unwrap();
            assert_eq!(ours, encode_through_kube(&r.review), "{label}");
        }
        // The key order is kube's too, so the bytes match, not only the
        // values (one audit annotation: a HashMap's order is not fixed).
        let r = review(
            &inj,
            &serde_json::to_vec(&review_json("CREATE", "Pod", pod())).unwrap(),
        )
        .unwrap();
        assert_eq!(
            encode(&r.review),
            serde_json::to_vec(&encode_through_kube(&r.review)).unwrap()
        );
    }

    fn answer(body: &Value) -> Value {
        let inj = Injector::new(Config::builtin());
        let r = review(&inj, &serde_json::to_vec(body).unwrap()).unwrap();
        serde_json::from_slice(&encode(&r.review)).unwrap()
    }

    #[test]
    fn create_gets_a_base64_json_patch_and_warning() {
        let out = answer(&review_json("CREATE", "Pod", pod()));
        assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(out["kind"], "AdmissionReview");
        let resp = &out["response"];
        assert_eq!(resp["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(resp["allowed"], true);
        assert_eq!(resp["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(resp["patch"].as_str().unwrap())
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        let mut doc = pod();
        json_patch::patch(&mut doc, &patch).unwrap();
        assert_eq!(
            doc["spec"]["containers"][1]["ports"][0]["containerPort"],
            10001
        );
        assert!(resp["warnings"][0].as_str().unwrap().contains("10001"));
        assert!(out.get("request").is_none());
        assert_eq!(resp["auditAnnotations"]["decision"], "policy_enabled");
    }

    #[test]
    fn update_delete_and_non_pods_pass_untouched() {
        for (op, kind) in [
            ("UPDATE", "Pod"),
            ("DELETE", "Pod"),
            ("CREATE", "ConfigMap"),
        ] {
            let out = answer(&review_json(op, kind, pod()));
            assert_eq!(out["response"]["allowed"], true, "{op} {kind}");
            assert!(out["response"].get("patch").is_none(), "{op} {kind}");
        }
    }

    #[test]
    fn a_v1beta1_review_is_answered_in_v1beta1() {
        let inj = Injector::new(Config::builtin());
        let mut body = review_json("CREATE", "Pod", pod());
        body["apiVersion"] = json!("admission.k8s.io/v1beta1");
        let out = review(&inj, &serde_json::to_vec(&body).unwrap()).unwrap();
        let out = serde_json::to_value(&out.review).unwrap();
        assert_eq!(out["apiVersion"], "admission.k8s.io/v1beta1");
        assert_eq!(out["response"]["allowed"], true);
        assert_eq!(out["response"]["uid"], body["request"]["uid"]);
    }

    #[test]
    fn envelope_errors_name_the_field() {
        let inj = Injector::new(Config::builtin());
        let mut v1alpha1 = review_json("CREATE", "Pod", pod());
        v1alpha1["apiVersion"] = json!("admission.k8s.io/v1alpha1");
        let no_request = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
        let mut no_object = review_json("CREATE", "Pod", Value::Null);
        no_object["request"]
            .as_object_mut()
            .unwrap()
            .remove("object");
        for (body, field) in [
            (v1alpha1, "apiVersion"),
            (no_request, "request"),
            (no_object, "request.object"),
        ] {
            let err = review(&inj, &serde_json::to_vec(&body).unwrap()).unwrap_err();
            assert!(err.to_string().starts_with(field), "{err}");
        }
        let err = review(&inj, b"{not json").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn invalid_utf8_is_refused_even_in_fields_the_engine_skips() {
        // Found by the review_decode fuzz target: a byte that is not UTF-8
        // inside a skipped string (the object's apiVersion) was accepted.
        let inj = Injector::new(Config::builtin());
        let mut body = serde_json::to_vec(&review_json("CREATE", "Pod", pod())).unwrap();
        let needle = br#""apiVersion":"v1""#;
        let at = body
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
            + needle.len()
            - 3;
        body[at] = 0xee;
        assert!(serde_json::from_slice::<Value>(&body).is_err());
        let err = review(&inj, &body).unwrap_err();
        assert!(matches!(err, ReviewError::Utf8(n) if n == at), "{err}");
        assert!(err.to_string().contains("invalid UTF-8"), "{err}");
    }

    #[test]
    fn a_number_past_f64_is_skipped_where_unread_and_refused_where_read() {
        // Found by the review_decode fuzz target: `5e990` is JSON by RFC 8259
        // but past f64, so serde_json's Value refuses the whole body. In a
        // field the engine never reads, the pruned decoder passes over it as
        // Go's encoding/json passes over unknown fields; where the engine
        // reads the value, the body is refused with the place it fails at.
        let inj = Injector::new(Config::builtin());
        let body = serde_json::to_string(&review_json("CREATE", "Pod", pod())).unwrap();
        let unread = body.replace(r#""image":"nginx""#, r#""image":"nginx","weight":5e990"#);
        assert_ne!(unread, body);
        assert!(serde_json::from_str::<Value>(&unread).is_err());
        let r = review(&inj, unread.as_bytes()).unwrap();
        assert!(r.summary.injected, "{:?}", r.summary);

        let read = body.replace(r#""containerPort":10000"#, r#""containerPort":5e990"#);
        assert_ne!(read, body);
        let err = review(&inj, read.as_bytes()).unwrap_err().to_string();
        let column = read.find("5e990").unwrap() + "5e990".len();
        assert!(err.contains("number out of range"), "{err}");
        assert!(err.ends_with(&format!("line 1 column {column}")), "{err}");
    }

    #[test]
    fn malformed_pod_is_denied_with_the_field() {
        let mut bad = pod();
        bad["spec"]["containers"] = json!("web");
        let out = answer(&review_json("CREATE", "Pod", bad));
        assert_eq!(out["response"]["allowed"], false);
        let msg = out["response"]["status"]["message"].as_str().unwrap();
        assert!(msg.contains("spec.containers"), "{msg}");
    }
}
