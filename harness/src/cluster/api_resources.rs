//! Where a kind lives in the API: its group, version, plural and scope.
//! A real cluster answers this through discovery; the sim answers it from
//! the built-in table here and from the CustomResourceDefinitions it
//! stores, and refuses anything else as a client does before sending it
//! (`no matches for kind ...`).

use serde_json::Value;

/// A resource of the API: what a manifest's `apiVersion` and `kind` map to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKind {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

impl ApiKind {
    /// `apiVersion` as a manifest writes it: `v1`, `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind as the apiserver names it in messages: `Pod`,
    /// `Deployment.apps`, `Widget.example.com`.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The resource as the apiserver names it in messages: `pods`,
    /// `deployments.apps`.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// One row of the built-in table.
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    pub kind: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl KindInfo {
    pub fn to_api_kind(self) -> ApiKind {
        ApiKind {
            group: self.group.into(),
            version: self.version.into(),
            kind: self.kind.into(),
            plural: self.plural.into(),
            namespaced: self.namespaced,
        }
    }
}

const fn k(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> KindInfo {
    KindInfo {
        kind,
        group,
        version,
        plural,
        namespaced,
    }
}

/// The GA kinds a Kubernetes 1.34 to 1.37 apiserver serves that a
/// scenario may write, as its discovery lists them. A kind served only at a
/// beta version (off by default) is not here, so the sim refuses it as a
/// default real cluster does.
pub const BUILT_IN: &[KindInfo] = &[
    k("", "v1", "Namespace", "namespaces", false),
    k("", "v1", "ConfigMap", "configmaps", true),
    k("", "v1", "Secret", "secrets", true),
    k("", "v1", "ServiceAccount", "serviceaccounts", true),
    k("", "v1", "Service", "services", true),
    k("", "v1", "Endpoints", "endpoints", true),
    k("", "v1", "LimitRange", "limitranges", true),
    k("", "v1", "ResourceQuota", "resourcequotas", true),
    k(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
    ),
    k("", "v1", "PersistentVolume", "persistentvolumes", false),
    k("", "v1", "Pod", "pods", true),
    k("", "v1", "PodTemplate", "podtemplates", true),
    k(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        true,
    ),
    k("", "v1", "Event", "events", true),
    k("apps", "v1", "Deployment", "deployments", true),
    k("apps", "v1", "ReplicaSet", "replicasets", true),
    k("apps", "v1", "StatefulSet", "statefulsets", true),
    k("apps", "v1", "DaemonSet", "daemonsets", true),
    k(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
    ),
    k("batch", "v1", "Job", "jobs", true),
    k("batch", "v1", "CronJob", "cronjobs", true),
    k(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    k(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    k(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    k(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        false,
    ),
    k("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", false),
    k(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    k("networking.k8s.io", "v1", "Ingress", "ingresses", true),
    k(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        false,
    ),
    k(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
    ),
    k("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    k(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    k(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    k(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    k(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
    ),
    k("coordination.k8s.io", "v1", "Lease", "leases", true),
    k(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
    k(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
    k(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
];

/// The built-in kind `kind` (any group), for code that names built-in
/// kinds alone: `Deployment`, `Pod`.
pub fn built_in_kind(kind: &str) -> Option<ApiKind> {
    BUILT_IN
        .iter()
        .find(|k| k.kind == kind)
        .map(|k| k.to_api_kind())
}

/// The built-in resource `api_version` `kind` names, if there is one.
pub fn built_in(api_version: &str, kind: &str) -> Option<ApiKind> {
    let (group, version) = split_api_version(api_version);
    BUILT_IN
        .iter()
        .find(|k| k.kind == kind && k.group == group && k.version == version)
        .map(|k| k.to_api_kind())
}

/// `apps/v1` as ("apps", "v1"), `v1` as ("", "v1").
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// The kinds a CustomResourceDefinition makes the API serve, one per
/// served version. Empty when the object is not a usable definition.
pub fn defined_by(crd: &Value) -> Vec<ApiKind> {
    let spec = &crd["spec"];
    let (Some(group), Some(kind), Some(plural)) = (
        spec["group"].as_str(),
        spec["names"]["kind"].as_str(),
        spec["names"]["plural"].as_str(),
    ) else {
        return Vec::new();
    };
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool() == Some(true))
        .filter_map(|v| v["name"].as_str())
        .map(|version| ApiKind {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
        })
        .collect()
}

/// What a client says of a kind the API does not serve, before sending
/// anything (apimachinery's `NoKindMatchError`, as kubectl prints it).
pub fn no_match(api_version: &str, kind: &str) -> String {
    format!("no matches for kind {kind:?} in version {api_version:?}")
}

/// Whether `object` is cluster-scoped, as far as the built-in table and the
/// given definitions tell; an unknown kind counts as namespaced.
pub fn cluster_scoped(object: &Value, definitions: &[ApiKind]) -> bool {
    let api_version = object["apiVersion"].as_str().unwrap_or("");
    let kind = object["kind"].as_str().unwrap_or("");
    let (group, version) = split_api_version(api_version);
    built_in(api_version, kind)
        .or_else(|| {
            definitions
                .iter()
                .find(|d| d.kind == kind && d.group == group && d.version == version)
                .cloned()
        })
        .is_some_and(|k| !k.namespaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_definition_serves_each_of_its_served_versions() {
        let crd = json!({"spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true}, {"name": "v1alpha1", "served": false}]}});
        let kinds = defined_by(&crd);
        assert_eq!(kinds.len(), 1);
        assert_eq!(kinds[0].api_version(), "example.com/v1");
        assert_eq!(kinds[0].qualified_kind(), "Widget.example.com");
        assert!(kinds[0].namespaced);
        assert!(defined_by(&json!({"spec": {"group": 3}})).is_empty());
    }

    #[test]
    fn built_in_kinds_are_found_by_group_and_version() {
        assert!(built_in("apps/v1", "Deployment").is_some());
        assert!(built_in("v1", "Deployment").is_none());
        assert!(built_in("extensions/v1beta1", "Deployment").is_none());
        assert!(
            !built_in("rbac.authorization.k8s.io/v1", "ClusterRole")
                .unwrap()
                .namespaced
        );
        assert_eq!(
            no_match("example.com/v1", "Widget"),
            r#"no matches for kind "Widget" in version "example.com/v1""#
        );
    }

    #[test]
    fn scope_comes_from_the_table_or_a_definition() {
        let widget = ApiKind {
            group: "example.com".into(),
            version: "v1".into(),
            kind: "Gadget".into(),
            plural: "gadgets".into(),
            namespaced: false,
        };
        let obj = |av: &str, k: &str| json!({"apiVersion": av, "kind": k});
        assert!(cluster_scoped(
            &obj("scheduling.k8s.io/v1", "PriorityClass"),
            &[]
        ));
        assert!(!cluster_scoped(&obj("v1", "ConfigMap"), &[]));
        assert!(cluster_scoped(
            &obj("example.com/v1", "Gadget"),
            std::slice::from_ref(&widget)
        ));
        assert!(!cluster_scoped(&obj("example.com/v2", "Gadget"), &[widget]));
    }
}
