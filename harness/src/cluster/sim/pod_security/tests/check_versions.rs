//! Checks that change with the minor, and single checks ported from
//! policy/*_test.go.

use serde_json::{json, Value};

use super::*;

// ---- version-dependent checks ----

#[test]
fn sysctls_allowed_from_1_37() {
    // check_sysctls.go: tcp_slow_start_after_idle joins the safe set in 1.37 (absent in v0.36.3).
    let p = pod(
        "s",
        json!({"securityContext": {"sysctls": [
        {"name": "net.ipv4.tcp_slow_start_after_idle", "value": "0"}, {"name": "kernel.msgmax", "value": "1"}]},
        "containers": [{"name": "c"}]}),
    );
    let base = |v| lv(Level::Baseline, v);
    assert_eq!(
        details(base(Version::Latest), &p, 37),
        "forbidden sysctls (kernel.msgmax)"
    );
    assert_eq!(
        details(base(Version::Latest), &p, 36),
        "forbidden sysctls (net.ipv4.tcp_slow_start_after_idle, kernel.msgmax)"
    );
    assert_eq!(
        details(base(Version::Minor(36)), &p, 37),
        "forbidden sysctls (net.ipv4.tcp_slow_start_after_idle, kernel.msgmax)"
    );
    // tcp_rmem from 1.32, tcp_keepalive_time from 1.29, ip_local_reserved_ports from 1.27.
    let q = pod(
        "s",
        json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem"},
        {"name": "net.ipv4.tcp_keepalive_time"}, {"name": "net.ipv4.ip_local_reserved_ports"}]}}),
    );
    assert_eq!(
        details(base(Version::Minor(31)), &q, 37),
        "forbidden sysctls (net.ipv4.tcp_rmem)"
    );
    assert_eq!(
        details(base(Version::Minor(26)), &q, 37),
        "forbidden sysctls (net.ipv4.tcp_rmem, net.ipv4.tcp_keepalive_time, net.ipv4.ip_local_reserved_ports)"
    );
}

fn user_namespace_pod() -> Value {
    pod(
        "userns",
        json!({"hostUsers": false, "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}, "procMount": "Unmasked", "runAsUser": 0}}]}),
    )
}

#[test]
fn user_namespace_pods_are_relaxed_from_1_35() {
    // check_procMount_baseline.go, check_procMount_restricted.go, check_runAsNonRoot.go,
    // check_runAsUser.go (v0.35.4+); v0.34.4 gates the relaxation off by default.
    let p = user_namespace_pod();
    let restricted = |v| lv(Level::Restricted, v);
    let baseline = |v| lv(Level::Baseline, v);
    assert_eq!(
        details(restricted(Version::Latest), &p, 35),
        r#"procMount (container "app" must not set securityContext.procMount to "Unmasked")"#
    );
    let before = r#"procMount (container "app" must not set securityContext.procMount to "Unmasked"), runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), runAsUser=0 (container "app" must not set runAsUser=0)"#;
    assert_eq!(details(restricted(Version::Latest), &p, 34), before);
    assert_eq!(details(restricted(Version::Minor(34)), &p, 37), before);
    assert_eq!(details(baseline(Version::Latest), &p, 35), "");
    assert_eq!(
        details(baseline(Version::Minor(34)), &p, 37),
        r#"procMount (container "app" must not set securityContext.procMount to "Unmasked")"#
    );
    // In the restricted level, procMount now sits among the restricted checks.
    let mut q = p.clone();
    q["spec"]["containers"][0]["securityContext"]["capabilities"] =
        json!({"drop": ["ALL"], "add": ["SYS_ADMIN"]});
    assert_eq!(
        details(restricted(Version::Latest), &q, 37),
        r#"unrestricted capabilities (container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add), procMount (container "app" must not set securityContext.procMount to "Unmasked")"#
    );
}

#[test]
fn old_restricted_versions_run_old_checks() {
    // Before 1.19 seccomp is the alpha annotation (check_seccompProfile_baseline.go), before
    // 1.22 capabilities are baseline's, runAsUser starts in 1.23.
    let mut p = pod(
        "old",
        json!({"containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": false,
            "runAsNonRoot": true, "runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN"]}}}]}),
    );
    p["metadata"]["annotations"] =
        json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"});
    let restricted = |n| lv(Level::Restricted, Version::Minor(n));
    assert_eq!(
        details(restricted(18), &p, MINOR),
        r#"non-default capabilities (container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add), seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")"#
    );
    assert_eq!(
        details(restricted(22), &p, MINOR),
        r#"unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]; container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add), seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    assert_eq!(
        details(restricted(23), &p, MINOR),
        r#"unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]; container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add), runAsUser=0 (container "app" must not set runAsUser=0), seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    // allowPrivilegeEscalation starts in 1.8.
    let q = pod(
        "old",
        json!({"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "app"}]}),
    );
    assert_eq!(details(restricted(7), &q, MINOR), "");
    assert_eq!(
        details(restricted(8), &q, MINOR),
        r#"allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false)"#
    );
}

#[test]
fn windows_pods_are_exempt_from_linux_checks_from_1_25() {
    let p = pod(
        "win",
        json!({"os": {"name": "windows"}, "containers": [{"name": "app"}]}),
    );
    let restricted = |v| lv(Level::Restricted, v);
    assert_eq!(
        details(restricted(Version::Latest), &p, MINOR),
        r#"runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true)"#
    );
    assert_eq!(
        details(restricted(Version::Minor(24)), &p, MINOR),
        r#"allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
}

#[test]
fn probe_hosts_are_checked_from_1_34() {
    // check_hostProbesAndhostLifecycle.go (new in v0.34).
    let p = pod(
        "probe",
        json!({"containers": [
            {"name": "b", "livenessProbe": {"httpGet": {"path": "/", "port": 80, "host": "10.0.0.1"}},
                "lifecycle": {"preStop": {"tcpSocket": {"port": 80, "host": "localhost"}}}},
            {"name": "a", "readinessProbe": {"tcpSocket": {"port": 80, "host": "10.0.0.1"}}}
        ]}),
    );
    let baseline = |v| lv(Level::Baseline, v);
    assert_eq!(
        details(baseline(Version::Latest), &p, 34),
        r#"probe or lifecycle host (containers "a", "b" use probe or lifecycle hosts "10.0.0.1", "localhost")"#
    );
    assert_eq!(details(baseline(Version::Minor(33)), &p, 37), "");
}

#[test]
fn se_linux_container_engine_t_is_allowed_from_1_31() {
    let p = pod(
        "se",
        json!({"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}),
    );
    assert_eq!(
        details(lv(Level::Baseline, Version::Minor(30)), &p, MINOR),
        r#"seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "container_engine_t")"#
    );
    assert_eq!(details(lv(Level::Baseline, Version::Latest), &p, MINOR), "");
}

// ---- single checks, ported from policy/*_test.go ----

fn restricted_latest(spec: Value, meta: Value) -> Vec<Violation> {
    evaluate(lv(Level::Restricted, Version::Latest), &meta, &spec, MINOR)
}

fn only(violations: Vec<Violation>, id: &str) -> (&'static str, String) {
    let v = violations.into_iter().find(|v| v.check == id).expect(id);
    (v.reason, v.detail)
}

#[test]
fn app_armor_annotations() {
    // check_appArmorProfile_test.go "multiple containers".
    let meta = json!({"annotations": {
        "container.apparmor.security.beta.kubernetes.io/": "bogus",
        "container.apparmor.security.beta.kubernetes.io/a": "",
        "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
        "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
        "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
        "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
        "container.apparmor.security.beta.kubernetes.io/f": "unknown",
    }});
    assert_eq!(
        only(restricted_latest(json!({}), meta), "appArmorProfile"),
        (
            "forbidden AppArmor profiles",
            r#"annotations must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/="bogus"", "container.apparmor.security.beta.kubernetes.io/e="unconfined"", "container.apparmor.security.beta.kubernetes.io/f="unknown"""#.to_string()
        )
    );
    let spec = json!({"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{"name": "bar", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}],
        "containers": [{"name": "foo"}]});
    assert_eq!(
        only(restricted_latest(spec, json!({})), "appArmorProfile"),
        (
            "forbidden AppArmor profile",
            r#"container "bar" must not set AppArmor profile type to "Unconfined""#.to_string()
        )
    );
}

#[test]
fn restricted_volume_types() {
    // check_restrictedVolumes_test.go.
    let mut volumes: Vec<Value> = [
        "emptyDir",
        "secret",
        "persistentVolumeClaim",
        "downwardAPI",
        "configMap",
        "projected",
        "csi",
        "ephemeral",
        "image",
    ]
    .iter()
    .enumerate()
    .map(|(i, s)| json!({"name": format!("a{}", i + 1), *s: {}}))
    .collect();
    let restricted = [
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "nfs",
        "iscsi",
        "glusterfs",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "fc",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
    ];
    volumes.extend(
        restricted
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"name": format!("b{}", i + 1), *s: {}})),
    );
    volumes.push(json!({"name": "c1"}));
    assert_eq!(
        only(restricted_latest(json!({"volumes": volumes}), json!({})), "restrictedVolumes"),
        (
            "restricted volume types",
            concat!(
                r#"volumes "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "b10", "b11", "b12", "b13", "b14", "b15", "b16", "b17", "b18", "b19", "b20", "b21", "c1""#,
                r#" use restricted volume types "#,
                r#""awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "#,
                r#""hostPath", "iscsi", "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "unknown", "vsphereVolume""#
            )
            .to_string()
        )
    );
}

#[test]
fn host_ports_capabilities_se_linux_and_host_process() {
    // check_hostPorts_test.go.
    let spec = json!({"containers": [
        {"name": "a", "ports": [{"hostPort": 0}]},
        {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 20}]},
        {"name": "c", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 30}]}]});
    assert_eq!(
        only(restricted_latest(spec, json!({})), "hostPorts"),
        (
            "hostPort",
            r#"containers "b", "c" use hostPorts 10, 20, 30"#.to_string()
        )
    );
    // check_capabilities_restricted_test.go.
    let spec = json!({"containers": [
        {"name": "a", "securityContext": {"capabilities": {"add": ["FOO", "BAR"]}}},
        {"name": "b", "securityContext": {"capabilities": {"add": ["BAR", "BAZ"], "drop": ["NET_RAW"]}}},
        {"name": "c", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL", "FOO"]}}}]});
    assert_eq!(
        only(restricted_latest(spec, json!({})), "capabilities_restricted"),
        ("unrestricted capabilities", r#"containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; containers "a", "b", "c" must not include "BAR", "BAZ", "CHOWN", "FOO" in securityContext.capabilities.add"#.to_string())
    );
    // check_seLinuxOptions_test.go.
    let spec = json!({"securityContext": {"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}},
        "containers": [
            {"name": "a", "securityContext": {"seLinuxOptions": {}}},
            {"name": "e", "securityContext": {"seLinuxOptions": {"type": "bar"}}},
            {"name": "f", "securityContext": {"seLinuxOptions": {"user": "bar"}}},
            {"name": "g", "securityContext": {"seLinuxOptions": {"role": "baz"}}}]});
    assert_eq!(
        only(restricted_latest(spec, json!({})), "seLinuxOptions"),
        ("seLinuxOptions", r#"pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set"#.to_string())
    );
    // check_windowsHostProcess_test.go.
    let hp = json!({"windowsOptions": {"hostProcess": true}});
    let spec = json!({"securityContext": hp, "containers": [
        {"name": "d", "securityContext": {"windowsOptions": {"hostProcess": false}}},
        {"name": "e", "securityContext": hp}, {"name": "f", "securityContext": hp}]});
    assert_eq!(
        only(restricted_latest(spec, json!({})), "windowsHostProcess"),
        ("hostProcess", r#"pod and containers "e", "f" must not set securityContext.windowsOptions.hostProcess=true"#.to_string())
    );
}

#[test]
fn malformed_specs_are_just_values() {
    for spec in [
        json!(null),
        json!("x"),
        json!([1, 2]),
        json!({"containers": "x", "volumes": [null, 3], "securityContext": [1]}),
        json!({"containers": [null, 1, {"name": 5, "securityContext": "x", "ports": [{"hostPort": "80"}]}],
            "hostNetwork": "yes", "os": "windows", "hostUsers": "false"}),
    ] {
        for level in [Level::Baseline, Level::Restricted] {
            for minor in [0, 18, 34, 35, 37, 99] {
                let _ = evaluate(lv(level, Version::Minor(minor)), &json!(7), &spec, MINOR);
                let _ = evaluate(lv(level, Version::Latest), &spec, &spec, minor);
            }
        }
        let p = json!({"metadata": "x", "spec": spec});
        let _ = admit_pod_create(&p, "p", &restricted_ns(), MINOR);
        let _ = admit_pod_update(&p, &json!(1), "p", "", &restricted_ns(), MINOR);
        let _ = admit_pod_controller("CronJob", &p, &restricted_ns(), MINOR);
        let _ = admit_namespace_update(
            &restricted_ns(),
            &json!(1),
            &[p.clone(), json!(null)],
            MINOR,
        );
    }
    let _ = NamespacePolicy::from_labels(&json!({"pod-security.kubernetes.io/enforce": 3}));
}
