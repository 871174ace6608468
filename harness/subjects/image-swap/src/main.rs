//! `image-swap-webhook`: the mutating webhook of seed 002, written here as a
//! second subject for the harness, different from the sidecar injector in
//! what it registers for and what it changes.
//!
//! Registered for `apps/v1` `deployments` (its rules say so; nothing here
//! checks), it rewrites the images of a workload's containers by a map from
//! its config file, the way the seed swaps an application image for an
//! empty one to debug in place:
//!
//! ```yaml
//! images:
//!   knative:latest: empty-container:latest
//! annotation: image-swap.harness.io/swapped   # optional: marks the pod template
//! ```
//!
//! The patch replaces `/spec/template/spec/containers/N/image` (or
//! `/spec/containers/N/image` for a Pod) and, when `annotation` is set,
//! records the swapped containers' names on the pod template, so pods show
//! what was done to them.
//!
//! `--omit-type-meta` reproduces the seed's bug: the answer has no
//! `apiVersion` and `kind`, which the apiserver refuses ("expected webhook
//! response of admission.k8s.io/v1, Kind=AdmissionReview, got /, Kind=").

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use clap::Parser;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "image-swap-webhook",
    version,
    about = "Swap container images of workloads at admission"
)]
struct Cli {
    /// The serving certificate (PEM).
    #[arg(long)]
    tls_cert: PathBuf,
    /// Its key (PEM).
    #[arg(long)]
    tls_key: PathBuf,
    /// The image map and the annotation (YAML).
    #[arg(long)]
    config: PathBuf,
    #[arg(long, default_value = "0.0.0.0:8443")]
    addr: SocketAddr,
    /// Answer without apiVersion and kind, as seed 002's first version did.
    #[arg(long)]
    omit_type_meta: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Image as written in the workload -> image to run instead.
    images: BTreeMap<String, String>,
    /// Set on the pod template (value: the swapped containers' names).
    #[serde(default)]
    annotation: Option<String>,
}

fn load_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| match e.location() {
        Some(at) => anyhow::anyhow!("{}:{}:{}: {e}", path.display(), at.line(), at.column()),
        None => anyhow::anyhow!("{}: {e}", path.display()),
    })
}

struct Webhook {
    config: Config,
    omit_type_meta: bool,
}

/// RFC 6901: `~` and `/` inside one key of a JSON Pointer.
fn pointer_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Webhook {
    /// The JSON Patch for `object` of `kind`, and a line saying what it does.
    fn patch(&self, kind: &str, object: &Value) -> (Vec<Value>, Vec<String>) {
        let (spec_path, meta_path) = if kind == "Pod" {
            ("/spec", "/metadata")
        } else {
            ("/spec/template/spec", "/spec/template/metadata")
        };
        let pointer = |p: &str| object.pointer(p).cloned().unwrap_or(Value::Null);
        let spec = pointer(spec_path);
        let mut ops = Vec::new();
        let mut swapped = Vec::new();
        for list in ["initContainers", "containers"] {
            for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
                let Some(to) = c["image"]
                    .as_str()
                    .and_then(|from| self.config.images.get(from))
                else {
                    continue;
                };
                ops.push(json!({"op": "replace", "path": format!("{spec_path}/{list}/{i}/image"), "value": to}));
                swapped.push(format!(
                    "{} {} -> {to}",
                    c["name"].as_str().unwrap_or("?"),
                    c["image"].as_str().unwrap_or("")
                ));
            }
        }
        if let (Some(key), false) = (&self.config.annotation, swapped.is_empty()) {
            let names: Vec<&str> = swapped
                .iter()
                .map(|s| s.split(' ').next().unwrap_or(""))
                .collect();
            let value = Value::String(names.join(","));
            let meta = pointer(meta_path);
            if meta.is_null() {
                ops.push(json!({"op": "add", "path": meta_path, "value": {"annotations": {key.as_str(): value}}}));
            } else if meta["annotations"].is_object() {
                ops.push(json!({"op": "add", "path": format!("{meta_path}/annotations/{}", pointer_key(key)), "value": value}));
            } else {
                ops.push(json!({"op": "add", "path": format!("{meta_path}/annotations"), "value": {key.as_str(): value}}));
            }
        }
        (ops, swapped)
    }

    fn review(&self, body: &[u8]) -> Result<Value, String> {
        let review: Value =
            serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
        let request = &review["request"];
        let uid = request["uid"]
            .as_str()
            .ok_or("request.uid is missing")?
            .to_string();
        let kind = request["kind"]["kind"].as_str().unwrap_or("");
        let object = &request["object"];
        let (ops, swapped) = self.patch(kind, object);
        let name = object["metadata"]["name"]
            .as_str()
            .or(object["metadata"]["generateName"].as_str())
            .unwrap_or("");
        let namespace = request["namespace"].as_str().unwrap_or("");
        if swapped.is_empty() {
            eprintln!("{kind} {namespace}/{name}: nothing to swap");
        } else {
            eprintln!("{kind} {namespace}/{name}: {}", swapped.join("; "));
        }
        let mut response = json!({"uid": uid, "allowed": true});
        if !ops.is_empty() {
            let patch = serde_json::to_vec(&ops).map_err(|e| e.to_string())?;
            response["patchType"] = json!("JSONPatch");
            response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(patch));
        }
        Ok(if self.omit_type_meta {
            json!({"response": response})
        } else {
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
        })
    }
}

async fn mutate(State(hook): State<Arc<Webhook>>, body: Bytes) -> Response {
    match hook.review(&body) {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(message) => {
            eprintln!("bad request: {message}");
            (StatusCode::BAD_REQUEST, message).into_response()
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let config = load_config(&cli.config)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cli.tls_cert, &cli.tls_key)
        .await
        .with_context(|| {
            format!(
                "loading {} and {}",
                cli.tls_cert.display(),
                cli.tls_key.display()
            )
        })?;
    let hook = Arc::new(Webhook {
        config,
        omit_type_meta: cli.omit_type_meta,
    });
    let app = Router::new()
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(hook);
    eprintln!("serving on https://{}", cli.addr);
    // SIGTERM (a pod's deletion, `docker stop`) or Ctrl-C: stop taking
    // connections and give calls in flight 5 s. As PID 1 of a container a
    // program that installs no handler ignores SIGTERM and is killed at the
    // end of the grace period instead.
    let handle = axum_server::Handle::new();
    tokio::spawn({
        let handle = handle.clone();
        async move {
            stop_signal().await;
            eprintln!("stopping");
            handle.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        }
    });
    axum_server::bind_rustls(cli.addr, tls)
        .handle(handle)
        .serve(app.into_make_service())
        .await
        .with_context(|| format!("serving on {}", cli.addr))
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(annotation: Option<&str>, omit: bool) -> Webhook {
        Webhook {
            config: Config {
                images: BTreeMap::from([(
                    "knative:latest".into(),
                    "empty-container:latest".into(),
                )]),
                annotation: annotation.map(str::to_string),
            },
            omit_type_meta: omit,
        }
    }

    fn deployment(template_meta: Value) -> Value {
        let mut d = json!({"metadata": {"name": "test"}, "spec": {"template": {"spec": {"containers": [
            {"name": "keep", "image": "nginx"},
            {"name": "test", "image": "knative:latest"}
        ]}}}});
        if !template_meta.is_null() {
            d["spec"]["template"]["metadata"] = template_meta;
        }
        d
    }

    fn apply(object: &Value, ops: &[Value]) -> Value {
        let mut out = object.clone();
        for op in ops {
            let path = op["path"].as_str().unwrap();
            let (parent, key) = path.rsplit_once('/').unwrap();
            let key = key.replace("~1", "/").replace("~0", "~");
            let target = if parent.is_empty() {
                &mut out
            } else {
                out.pointer_mut(parent).unwrap()
            };
            match target {
                Value::Array(a) => a[key.parse::<usize>().unwrap()] = op["value"].clone(),
                Value::Object(m) => {
                    if op["op"] == "replace" {
                        assert!(m.contains_key(&key), "replace of a missing {path}");
                    }
                    m.insert(key, op["value"].clone());
                }
                other => panic!("{path}: parent is {other}"),
            }
        }
        out
    }

    #[test]
    fn only_mapped_images_are_swapped_and_the_template_is_marked() {
        let h = hook(Some("image-swap.harness.io/swapped"), false);
        for meta in [
            Value::Null,
            json!({"labels": {"a": "b"}}),
            json!({"annotations": {"x": "y"}}),
        ] {
            let d = deployment(meta);
            let (ops, swapped) = h.patch("Deployment", &d);
            assert_eq!(swapped, ["test knative:latest -> empty-container:latest"]);
            let after = apply(&d, &ops);
            let containers = &after["spec"]["template"]["spec"]["containers"];
            assert_eq!(containers[0]["image"], "nginx");
            assert_eq!(containers[1]["image"], "empty-container:latest");
            assert_eq!(
                after["spec"]["template"]["metadata"]["annotations"]
                    ["image-swap.harness.io/swapped"],
                "test"
            );
        }
    }

    #[test]
    fn nothing_mapped_means_no_patch() {
        let h = hook(Some("a/b"), false);
        let mut d = deployment(Value::Null);
        d["spec"]["template"]["spec"]["containers"][1]["image"] = json!("nginx");
        let review = json!({"request": {"uid": "u1", "kind": {"kind": "Deployment"}, "object": d}});
        let answer = h.review(&serde_json::to_vec(&review).unwrap()).unwrap();
        assert_eq!(answer["response"], json!({"uid": "u1", "allowed": true}));
        assert_eq!(answer["kind"], "AdmissionReview");
    }

    #[test]
    fn the_seeds_bug_drops_the_type_meta() {
        let h = hook(None, true);
        let review = json!({"request": {"uid": "u2", "kind": {"kind": "Deployment"}, "object": deployment(Value::Null)}});
        let answer = h.review(&serde_json::to_vec(&review).unwrap()).unwrap();
        assert!(answer.get("apiVersion").is_none() && answer.get("kind").is_none());
        assert_eq!(answer["response"]["uid"], "u2");
        assert!(h.review(b"{").unwrap_err().contains("not JSON"));
        assert!(h.review(b"{}").unwrap_err().contains("request.uid"));
    }

    #[test]
    fn a_config_error_names_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("image-swap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.yaml");
        std::fs::write(&path, "images: {}\nannotaton: x\n").unwrap();
        let e = load_config(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:2:", path.display())), "{e}");
        assert!(e.contains("annotaton"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
