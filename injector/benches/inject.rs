//! In-process cost of one injection: decision plus patch (`evaluate`), and
//! the whole AdmissionReview round (decode, evaluate, encode) for reference.
//!
//! cargo bench -p sidecar-injector --bench inject

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};
use sidecar_injector::{admission, Config, Injector, PodRef};

fn pod(env_vars: usize) -> Value {
    let env: Vec<Value> = (0..env_vars)
        .map(|i| json!({"name": format!("VAR_{i}"), "value": format!("value-{i}")}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "backend-6bdf5d484b-",
            "namespace": "default",
            "labels": {"app": "backend", "pod-template-hash": "6bdf5d484b"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-12-29T14:58:19Z"}
        },
        "spec": {
            "containers": [{
                "name": "backend",
                "image": "backend-service:v1",
                "ports": [{"containerPort": 10000, "protocol": "TCP"}],
                "env": env,
                "resources": {}
            }],
            "restartPolicy": "Always"
        }
    })
}

fn review(pod: &Value) -> Vec<u8> {
    serde_json::to_vec(&admission::pod_create_review(
        "bench",
        "default",
        pod.clone(),
    ))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let injector = Injector::new(Config::builtin());
    let mut group = c.benchmark_group("evaluate");
    for (label, env) in [("small_pod", 0usize), ("env_2000", 2000)] {
        let p = pod(env);
        let meta: ObjectMeta = serde_json::from_value(p["metadata"].clone()).unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(label), &p, |b, p| {
            b.iter(|| {
                let out = injector
                    .evaluate(PodRef {
                        namespace: "default",
                        metadata: &meta,
                        spec: &p["spec"],
                    })
                    .unwrap();
                assert!(out.injected());
                out
            })
        });
    }
    group.finish();

    // For reference: only parsing the body into a serde_json::Value.
    let mut group = c.benchmark_group("parse_only");
    for (label, env) in [("small_pod", 0usize), ("env_2000", 2000)] {
        let body = review(&pod(env));
        group.bench_with_input(BenchmarkId::from_parameter(label), &body, |b, body| {
            b.iter(|| serde_json::from_slice::<Value>(body).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("review");
    for (label, env) in [("small_pod", 0usize), ("env_2000", 2000)] {
        let body = review(&pod(env));
        group.bench_with_input(BenchmarkId::from_parameter(label), &body, |b, body| {
            b.iter(|| {
                let r = admission::review(&injector, body).unwrap();
                admission::encode(&r.review)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
