//! Each warning in the words of `pkg/api/pod/warnings.go` (v1.37.2).

use serde_json::json;

use super::*;

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "web"}, "spec": spec})
}

#[test]
fn a_plain_pod_warns_nothing() {
    let p = pod(json!({"containers": [{"name": "app", "image": "x",
        "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}));
    assert!(pod_create(&p).is_empty());
}

#[test]
fn ports_shared_across_containers_are_duplicate_or_overlapping() {
    // An injected proxy on the app's port: the port conflict of the seeds.
    let p = pod(json!({"containers": [
        {"name": "app", "ports": [{"name": "http", "containerPort": 10000, "protocol": "TCP"}]},
        {"name": "envoy", "ports": [
            {"name": "http", "containerPort": 10000, "protocol": "TCP"},
            {"containerPort": 10000, "protocol": "TCP", "hostPort": 10000},
            {"containerPort": 10000, "protocol": "UDP"}]}
    ]}));
    assert_eq!(
        pod_create(&p),
        [
            "spec.containers[1].ports[0]: duplicate port definition with spec.containers[0].ports[0]",
            "spec.containers[1].ports[1]: overlapping port definition with spec.containers[0].ports[0]",
            "spec.containers[1].ports[1]: overlapping port definition with spec.containers[1].ports[0]",
            "spec.containers[1].ports[0]: duplicate port name \"http\" with spec.containers[0].ports[0], services and probes that select ports by name will use spec.containers[0].ports[0]",
        ]
    );
}

#[test]
fn same_host_port_with_and_without_host_ip_is_dangerously_ambiguous() {
    let p = pod(json!({"containers": [{"name": "a", "ports": [
        {"containerPort": 80, "protocol": "TCP", "hostPort": 8080},
        {"containerPort": 80, "protocol": "TCP", "hostPort": 8080, "hostIP": "10.0.0.1"},
        {"containerPort": 81, "protocol": "TCP", "hostIP": "10.0.0.1"}]}]}));
    assert_eq!(
        pod_create(&p),
        [
            "spec.containers[0].ports[1]: dangerously ambiguous port definition with spec.containers[0].ports[0]",
            "spec.containers[0].ports[2]: hostIP set without hostPort: {Name: HostPort:0 ContainerPort:81 Protocol:TCP HostIP:10.0.0.1}",
        ]
    );
}

#[test]
fn init_containers_come_first_in_paths_and_order() {
    let p = pod(json!({
        "initContainers": [{"name": "proxy", "restartPolicy": "Always",
            "ports": [{"containerPort": 15001, "protocol": "TCP"}]}],
        "containers": [{"name": "app", "ports": [{"containerPort": 15001, "protocol": "TCP"}]}]}));
    assert_eq!(
        pod_create(&p),
        ["spec.containers[0].ports[0]: duplicate port definition with spec.initContainers[0].ports[0]"]
    );
}

#[test]
fn env_that_hides_an_earlier_entry_unless_it_builds_on_it() {
    let p = pod(json!({"containers": [{"name": "a", "env": [
        {"name": "PATH", "value": "/bin"},
        {"name": "PATH", "value": "$(PATH):/usr/bin"},
        {"name": "PORT", "value": "1"},
        {"name": "PORT", "value": "2"},
        {"name": "X", "value": "1"},
        {"name": "X", "value": "$(X)"}]}]}));
    assert_eq!(
        pod_create(&p),
        [
            "spec.containers[0].env[3]: hides previous definition of \"PORT\", which may be dropped when using apply",
            "spec.containers[0].env[5]: hides previous definition of \"X\", which may be dropped when using apply",
        ]
    );
}

#[test]
fn fractional_bytes_are_named_in_canonical_form() {
    let p = pod(json!({"containers": [{"name": "a", "resources": {
        "limits": {"memory": "1500m", "cpu": "1500m"},
        "requests": {"memory": "1Gi", "ephemeral-storage": "0.5"}}}]}));
    assert_eq!(
        pod_create(&p),
        [
            "spec.containers[0].resources.limits[memory]: fractional byte value \"1500m\" is invalid, must be an integer",
            "spec.containers[0].resources.requests[ephemeral-storage]: fractional byte value \"500m\" is invalid, must be an integer",
        ]
    );
}

#[test]
fn a_name_with_dots_is_not_a_dns_label() {
    let mut p = pod(json!({"containers": [{"name": "a"}]}));
    p["metadata"]["name"] = json!("web.v1");
    assert_eq!(
        pod_create(&p),
        ["metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; a DNS label is recommended: [must not contain dots]"]
    );
}

#[test]
fn deprecated_labels_annotations_volumes_and_selectors() {
    let p = json!({
        "metadata": {"name": "web", "annotations": {
            "scheduler.alpha.kubernetes.io/critical-pod": "",
            "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
            "container.seccomp.security.alpha.kubernetes.io/a": "runtime/default"}},
        "spec": {
            "nodeSelector": {"beta.kubernetes.io/os": "linux"},
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "failure-domain.beta.kubernetes.io/zone", "operator": "Exists"}]}]}},
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname"}]}},
            "topologySpreadConstraints": [{"topologyKey": "kubernetes.io/hostname", "maxSkew": 1}],
            "volumes": [{"name": "v", "storageos": {"volumeName": "x"}}],
            "imagePullSecrets": [{"name": "r"}, {"name": "r"}, {"name": ""}],
            "hostAliases": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.1"}],
            "terminationGracePeriodSeconds": -1,
            "containers": [{"name": "a"}]}});
    assert_eq!(
        pod_create(&p),
        [
            "spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use \"kubernetes.io/os\" instead",
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key: failure-domain.beta.kubernetes.io/zone is deprecated since v1.17; use \"topology.kubernetes.io/zone\" instead",
            "spec.topologySpreadConstraints[0].labelSelector: a null labelSelector results in matching no pod",
            "metadata.annotations[scheduler.alpha.kubernetes.io/critical-pod]: non-functional in v1.16+; use the \"priorityClassName\" field instead",
            "spec.volumes[0].storageOS: deprecated in v1.22, non-functional in v1.25+",
            "spec.hostAliases[1].ip: duplicate ip \"10.0.0.1\"",
            "spec.imagePullSecrets[1].name: duplicate name \"r\"",
            "spec.imagePullSecrets[2].name: invalid empty name \"\"",
            "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: non-functional in v1.27+; use the \"seccompProfile\" field instead",
            "metadata.annotations[container.seccomp.security.alpha.kubernetes.io/a]: non-functional in v1.27+; use the \"seccompProfile\" field instead",
            "spec.terminationGracePeriodSeconds: must be >= 0; negative values are invalid and will be treated as 1",
            "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector: a null labelSelector results in matching no pod",
        ]
    );
}

#[test]
fn a_template_warns_under_its_path_and_about_apparmor_annotations() {
    let d = json!({"metadata": {"name": "web", "generation": 1}, "spec": {"template": {
        "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "runtime/default"}},
        "spec": {"containers": [{"name": "a", "ports": [
            {"containerPort": 80, "protocol": "TCP"}, {"containerPort": 80, "protocol": "TCP"}]}]}}}});
    let expected = [
        "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/a]: deprecated since v1.30; use the \"appArmorProfile\" field instead",
        "spec.template.spec.containers[0].ports[1]: duplicate port definition with spec.template.spec.containers[0].ports[0]",
    ];
    assert_eq!(controller("Deployment", &d, None), expected);
    // The pod-level field that says the same silences the annotation.
    let mut same = d.clone();
    same["spec"]["template"]["spec"]["securityContext"] =
        json!({"appArmorProfile": {"type": "RuntimeDefault"}});
    assert_eq!(controller("Deployment", &same, None), expected[1..]);
    // An update that leaves the spec (so the generation) warns nothing
    // about the template; one that scales it does.
    assert!(controller("Deployment", &d, Some(&d)).is_empty());
    let mut scaled = d.clone();
    scaled["spec"]["replicas"] = json!(2);
    assert_eq!(controller("Deployment", &scaled, Some(&d)), expected);
    assert!(controller("DaemonSet", &scaled, Some(&d)).is_empty());
    assert!(controller("ConfigMap", &d, None).is_empty());
}

#[test]
fn controller_names_and_history_limits() {
    let d = json!({"metadata": {"name": "web.v1"}, "spec": {"revisionHistoryLimit": -1,
        "template": {"spec": {"containers": [{"name": "a"}]}}}});
    let name = "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [must not contain dots]";
    assert_eq!(controller("ReplicaSet", &d, None), [name]);
    assert_eq!(controller("Job", &d, None), [name]);
    assert!(controller("DaemonSet", &d, None).is_empty());
    assert_eq!(
        controller("StatefulSet", &d, None),
        ["spec.revisionHistoryLimit: a negative value retains all historical revisions; a value >= 0 is recommended"]
    );
}
