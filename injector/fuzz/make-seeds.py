#!/usr/bin/env python3
"""Writes the seed corpus from the golden inputs in injector/tests/testdata.

Run from anywhere; rewrites corpus/{config_load,patch_apply,review_decode}.
Needs PyYAML. The first byte of a patch_apply or review_decode input picks
the config ('0'..'4' as ASCII keeps the files readable).
"""
import json
import pathlib
import shutil

import yaml

here = pathlib.Path(__file__).resolve().parent
testdata = here.parent / "tests" / "testdata"
corpus = here / "corpus"

def reset(name):
    d = corpus / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d

d = reset("config_load")
for f in sorted((testdata / "configs").glob("*.yaml")):
    shutil.copy(f, d / f.name)
shutil.copy(here.parent / "src" / "default-config.yaml", d / "default-config.yaml")

def pods(doc):
    """Pods, and pod templates of workloads as pods."""
    if not isinstance(doc, dict):
        return
    kind = doc.get("kind")
    if kind == "Pod":
        yield doc
    elif kind in ("List", "PodList"):
        for item in doc.get("items") or []:
            yield from pods(item)
    else:
        spec = doc.get("spec") or {}
        if kind == "CronJob":
            spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        tpl = spec.get("template")
        if isinstance(tpl, dict):
            pod = {"apiVersion": "v1", "kind": "Pod", **tpl}
            pod.setdefault("metadata", {})
            pod["metadata"].setdefault("namespace", (doc.get("metadata") or {}).get("namespace", "default"))
            yield pod

all_pods = []
for f in sorted((testdata / "inject").glob("*.yaml")):
    for i, doc in enumerate(yaml.safe_load_all(f.read_text())):
        for j, pod in enumerate(pods(doc)):
            all_pods.append((f"{f.stem}-{i}-{j}", pod))

def review(uid, ns, pod, operation="CREATE", kind="Pod"):
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": ns, "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod, "oldObject": None, "dryRun": False,
        },
    }

pa = reset("patch_apply")
rd = reset("review_decode")
for n, (name, pod) in enumerate(all_pods):
    body = json.dumps(pod, separators=(",", ":"))
    for pick in range(5):
        (pa / f"{name}-{pick}.json").write_text(f"{pick}{body}")
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    rev = json.dumps(review(f"uid-{n}", ns, pod), separators=(",", ":"))
    (rd / f"{name}.json").write_text(f"{n % 5}{rev}")
# The paths that return before the engine: not a pod, not a CREATE.
name, pod = all_pods[0]
(rd / "update.json").write_text("0" + json.dumps(review("u", "default", pod, operation="UPDATE")))
(rd / "configmap.json").write_text("0" + json.dumps(review("c", "default", pod, kind="ConfigMap")))
print(len(all_pods), "pods")
