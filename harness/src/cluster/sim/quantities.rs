//! Quantities as the apiserver stores them: every quantity field of a pod
//! spec (and of a workload's pod template) is decoded and written back in
//! canonical form ([`crate::quantity`]), resource lists rounded up to milli
//! units as defaulting does. A quantity that does not parse makes the whole
//! object undecodable, which the apiserver refuses before any admission.

use serde_json::Value;

use crate::quantity::{self, QuantityError};

/// Canonicalizes the quantities of a pod spec in place; `Err` is the first
/// one that does not parse.
pub fn pod_spec(spec: &mut Value) -> Result<(), QuantityError> {
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in items(spec, list) {
            requirements(c.get_mut("resources"))?;
        }
    }
    resource_list(spec.get_mut("overhead"))?;
    requirements(spec.get_mut("resources"))?;
    for v in items(spec, "volumes") {
        if let Some(limit) = v.pointer_mut("/emptyDir/sizeLimit") {
            lone(limit)?;
        }
        requirements(v.pointer_mut("/ephemeral/volumeClaimTemplate/spec/resources"))?;
    }
    Ok(())
}

/// The same for a workload: its pod template and, for a StatefulSet, its
/// volume claim templates.
pub fn workload(object: &mut Value) -> Result<(), QuantityError> {
    if let Some(spec) = object.pointer_mut("/spec/template/spec") {
        pod_spec(spec)?;
    }
    if let Some(spec) = object.get_mut("spec") {
        for claim in items(spec, "volumeClaimTemplates") {
            requirements(claim.pointer_mut("/spec/resources"))?;
        }
        // A LimitRange's bounds and defaults are resource lists too.
        for item in items(spec, "limits") {
            for key in [
                "max",
                "min",
                "default",
                "defaultRequest",
                "maxLimitRequestRatio",
            ] {
                resource_list(item.get_mut(key))?;
            }
        }
    }
    Ok(())
}

/// The apiserver's answer to `object` with a bad quantity, as the harness
/// sends it: a named object by server-side apply, whose merged result fails
/// to convert to the typed object; one with only a generateName by POST,
/// whose body fails to decode (`transformDecodeError`). Both read so on a
/// v1.37.2 apiserver.
pub fn refusal(object: &Value, error: &QuantityError) -> String {
    let kind = object["kind"].as_str().unwrap_or("");
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let name = crate::object::meta_str(object, "name");
    if name.is_empty() {
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        return format!("{kind} in version \"{version}\" cannot be handled as a {kind}: {error}");
    }
    let namespace = crate::object::namespace(object);
    // A core-group version prints with an empty group: `/v1, Kind=Pod`.
    let group_version = if api_version.contains('/') {
        api_version.to_string()
    } else {
        format!("/{api_version}")
    };
    format!(
        "failed to convert new object ({namespace}/{name}; {group_version}, Kind={kind}) to proper version: \
         unable to convert unstructured object to {group_version}, Kind={kind}: {error}"
    )
}

fn items<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// `limits` and `requests` of a ResourceRequirements.
fn requirements(r: Option<&mut Value>) -> Result<(), QuantityError> {
    let Some(r) = r else { return Ok(()) };
    resource_list(r.get_mut("limits"))?;
    resource_list(r.get_mut("requests"))
}

/// Every entry of a ResourceList, rounded up to milli units.
fn resource_list(list: Option<&mut Value>) -> Result<(), QuantityError> {
    let Some(map) = list.and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for v in map.values_mut() {
        rewrite(v, true)?;
    }
    Ok(())
}

fn lone(v: &mut Value) -> Result<(), QuantityError> {
    rewrite(v, false)
}

fn rewrite(v: &mut Value, milli: bool) -> Result<(), QuantityError> {
    match quantity::from_json(v) {
        Some(Ok(mut q)) => {
            if milli {
                q.round_up_to_milli();
            }
            *v = Value::String(q.canonical());
            Ok(())
        }
        // Beyond the model's arithmetic: left as written.
        Some(Err(QuantityError::TooLarge)) | None => Ok(()),
        Some(Err(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pod_quantities_are_stored_canonical() {
        let mut spec = json!({
            "containers": [{"name": "a", "resources": {
                "requests": {"cpu": "0.5", "memory": "1024Mi", "ephemeral-storage": 1000000},
                "limits": {"cpu": 1, "memory": "1.5Gi"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "0.0001"}}}],
            "overhead": {"cpu": "1000"},
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "0.0001"}}],
        });
        pod_spec(&mut spec).unwrap();
        assert_eq!(
            spec["containers"][0]["resources"],
            json!({"requests": {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1M"},
                   "limits": {"cpu": "1", "memory": "1536Mi"}})
        );
        // Resource lists round to milli; a lone quantity does not.
        assert_eq!(
            spec["initContainers"][0]["resources"]["requests"]["cpu"],
            "1m"
        );
        assert_eq!(spec["volumes"][0]["emptyDir"]["sizeLimit"], "100u");
        assert_eq!(spec["overhead"]["cpu"], "1k");
    }

    #[test]
    fn templates_and_claims_too_and_bad_quantities_are_refused() {
        let mut sts = json!({"kind": "StatefulSet", "spec": {
            "template": {"spec": {"containers": [{"name": "a", "resources": {"limits": {"memory": "2048Mi"}}}]}},
            "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": "1000Mi"}}}}]}});
        workload(&mut sts).unwrap();
        assert_eq!(
            sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
            "2Gi"
        );
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "1000Mi"
        );
        let mut bad =
            json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "lots"}}}]});
        let e = pod_spec(&mut bad).unwrap_err();
        let rule = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
        // As kubectl showed them from a v1.37.2 apiserver.
        let applied = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "badq", "namespace": "default"}});
        assert_eq!(
            refusal(&applied, &e),
            format!("failed to convert new object (default/badq; /v1, Kind=Pod) to proper version: unable to convert unstructured object to /v1, Kind=Pod: {rule}")
        );
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "badq", "namespace": "default"}});
        assert_eq!(
            refusal(&deployment, &e),
            format!("failed to convert new object (default/badq; apps/v1, Kind=Deployment) to proper version: unable to convert unstructured object to apps/v1, Kind=Deployment: {rule}")
        );
        let posted = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generateName": "badq-", "namespace": "default"}});
        assert_eq!(
            refusal(&posted, &e),
            format!("Deployment in version \"v1\" cannot be handled as a Deployment: {rule}")
        );
    }
}
