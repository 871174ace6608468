//! The default scheduler (kube-scheduler v1.34 to v1.37, default profile; the
//! one difference is `DRA_QUIET_SINCE`) as far as a
//! one-node cluster can tell: whether a pod fits the node, and if not, the
//! message the scheduler writes into the FailedScheduling event and the
//! pod's `PodScheduled=False` condition.
//!
//! Modelled, in the scheduler's filter order (the first filter that fails
//! names the reason, as in the framework):
//!
//! 1. NodeAffinity's PreFilter: required terms that pin `metadata.name`.
//! 2. NodeUnschedulable: `spec.unschedulable` without the matching toleration.
//! 3. TaintToleration: a NoSchedule or NoExecute taint no toleration matches.
//! 4. NodeAffinity: `nodeSelector` and required node affinity.
//! 5. NodePorts: a hostPort (with protocol and hostIP) already used on the node.
//! 6. NodeResourcesFit: pod count, cpu, memory, ephemeral-storage and
//!    extended resources against allocatable minus what bound pods request.
//!
//! Then the PostFilter plugins, whose reasons are joined with ", ":
//! DynamicResources (DRA is on by default in v1.34) says "no new claims to
//! deallocate" for a pod without resource claims, then DefaultPreemption: a
//! node rejected by an unresolvable filter is "not helpful"; otherwise
//! victims are the node's pods of lower priority, and without any the answer
//! is "No preemption victims found". When a PreFilter fails, DynamicResources
//! never stored its state and its PostFilter errors with "not found", which
//! is all the message gets. Actually preempting (evicting victims) is not
//! modelled: [`Outcome::Preempts`] says so, and the cluster refuses to settle
//! rather than guess.
//!
//! The real scheduler corrected two guesses: the DynamicResources reason
//! (absent from the first version) and the PreFilter-failure message (both
//! seen on kube-scheduler v1.34.4 against the fake kubelet's node).
//!
//! Written from the scheduler's documented behaviour and messages; it shares
//! no code with the injector.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::kubelet::parse_quantity;
use crate::version::Minor;

/// `NoNodeAvailableMsg` with the one node this cluster has.
const NO_NODE: &str = "0/1 nodes are available:";
const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
/// DynamicResources' PostFilter reason for a pod without resource claims.
const NO_CLAIMS: &str = "no new claims to deallocate";

/// The first minor whose DynamicResources PostFilter is silent for a pod
/// without claims.
const DRA_QUIET_SINCE: u32 = 37;

/// What the scheduler does with a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It fits: bind it to the node.
    Bind,
    /// It does not fit and preemption cannot help: the message of the
    /// FailedScheduling event and of the PodScheduled condition.
    Unschedulable(String),
    /// Evicting these lower-priority pods (`namespace/name`) would make room.
    Preempts(Vec<String>),
}

/// A filter's verdict on the node: its reasons, and whether preemption
/// could change it (`Unschedulable`) or not (`UnschedulableAndUnresolvable`).
#[derive(Debug)]
struct Status {
    reasons: Vec<String>,
    resolvable: bool,
}

impl Status {
    fn unresolvable(reason: &str) -> Status {
        Status {
            reasons: vec![reason.to_string()],
            resolvable: false,
        }
    }
}

/// Decides where `pod` goes, given the node and the pods bound to it that
/// have not terminated (the scheduler's cache leaves out Succeeded and
/// Failed pods).
pub fn schedule(pod: &Value, node: &Value, bound: &[&Value], minor: Minor) -> Outcome {
    let status = match pre_filter(pod, node) {
        Err(message) => {
            // A PreFilter failure names itself once, without a per-node
            // histogram. The PreFilters after the failing one never ran, so
            // DynamicResources' PostFilter finds no state of its own and
            // fails with the store's "not found", ending the PostFilters.
            return Outcome::Unschedulable(format!("{NO_NODE} {message}. not found"));
        }
        Ok(Some(status)) => status,
        Ok(None) => match filter(pod, node, bound) {
            None => return Outcome::Bind,
            Some(status) => status,
        },
    };
    // FitError: each reason counted over the nodes (one here), sorted.
    let mut histogram: Vec<String> = status.reasons.iter().map(|r| format!("1 {r}")).collect();
    histogram.sort();
    let fit_error = format!("{NO_NODE} {}.", histogram.join(", "));
    let post_filter = match preempt(pod, node, bound, &status) {
        Ok(message) => message,
        Err(victims) => return Outcome::Preempts(victims),
    };
    // Since v1.37, DynamicResources' PostFilter says nothing about a pod
    // without resource claims (seen on kube-scheduler v1.37.2; v1.34.4 to
    // v1.36.3 say "no new claims to deallocate").
    if minor.at_least(DRA_QUIET_SINCE) {
        Outcome::Unschedulable(format!("{fit_error} preemption: {post_filter}"))
    } else {
        Outcome::Unschedulable(format!(
            "{fit_error} {NO_CLAIMS}, preemption: {post_filter}"
        ))
    }
}

/// DefaultPreemption's PostFilter message, or the victims it would evict.
fn preempt(
    pod: &Value,
    node: &Value,
    bound: &[&Value],
    status: &Status,
) -> Result<String, Vec<String>> {
    if str_at(pod, "/spec/preemptionPolicy") == "Never" {
        return Ok("not eligible due to preemptionPolicy=Never.".into());
    }
    if !status.resolvable {
        return Ok(format!("{NO_NODE} 1 {NOT_HELPFUL}."));
    }
    let priority = priority(pod);
    let (victims, kept): (Vec<&Value>, Vec<&Value>) =
        bound.iter().partition(|p| self::priority(p) < priority);
    if victims.is_empty() || filter(pod, node, &kept).is_some() {
        return Ok(format!("{NO_NODE} 1 {NO_VICTIMS}."));
    }
    Err(victims
        .iter()
        .map(|v| {
            format!(
                "{}/{}",
                str_at(v, "/metadata/namespace"),
                str_at(v, "/metadata/name")
            )
        })
        .collect())
}

fn priority(pod: &Value) -> i64 {
    pod.pointer("/spec/priority")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// NodeAffinity's PreFilter: when every required term pins node names with
/// `metadata.name In [...]`, only those nodes are considered. `Err` fails
/// the whole cycle; `Ok(Some)` rejects this node before any filter runs.
fn pre_filter(pod: &Value, node: &Value) -> Result<Option<Status>, String> {
    let terms = list(pod, "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms");
    if terms.is_empty() {
        return Ok(None);
    }
    let mut allowed: Option<Vec<String>> = None;
    for term in terms {
        let mut pinned: Option<Vec<String>> = None;
        for r in list(term, "/matchFields") {
            if str_at(r, "/key") != "metadata.name" || str_at(r, "/operator") != "In" {
                continue;
            }
            let values = strings(r, "/values");
            pinned = Some(match pinned {
                None => values,
                Some(p) => p.into_iter().filter(|n| values.contains(n)).collect(),
            });
        }
        // A term without a name pin allows every node (terms are ORed).
        let Some(pinned) = pinned else {
            return Ok(None);
        };
        allowed.get_or_insert_with(Vec::new).extend(pinned);
    }
    match allowed {
        Some(names) if names.is_empty() => Err("pod affinity terms conflict".into()),
        Some(names) if !names.iter().any(|n| n == str_at(node, "/metadata/name")) => Ok(Some(
            Status::unresolvable("node(s) didn't satisfy plugin(s) [NodeAffinity]"),
        )),
        _ => Ok(None),
    }
}

/// The filters in the default profile's order; the first failure wins.
fn filter(pod: &Value, node: &Value, bound: &[&Value]) -> Option<Status> {
    let tolerations = list(pod, "/spec/tolerations");
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        let unschedulable = json_taint("node.kubernetes.io/unschedulable", "", "NoSchedule");
        if !tolerations.iter().any(|t| tolerates(t, &unschedulable)) {
            return Some(Status::unresolvable("node(s) were unschedulable"));
        }
    }
    let untolerated = list(node, "/spec/taints").iter().any(|taint| {
        matches!(str_at(taint, "/effect"), "NoSchedule" | "NoExecute")
            && !tolerations.iter().any(|t| tolerates(t, taint))
    });
    if untolerated {
        return Some(Status::unresolvable("node(s) had untolerated taint(s)"));
    }
    if !node_affinity_matches(pod, node) {
        return Some(Status::unresolvable(
            "node(s) didn't match Pod's node affinity/selector",
        ));
    }
    let used: Vec<HostPort> = bound.iter().flat_map(|p| host_ports(p)).collect();
    if host_ports(pod)
        .iter()
        .any(|want| used.iter().any(|u| u.conflicts(want)))
    {
        return Some(Status {
            reasons: vec!["node(s) didn't have free ports for the requested pod ports".into()],
            resolvable: true,
        });
    }
    fit(pod, node, bound)
}

fn json_taint(key: &str, value: &str, effect: &str) -> Value {
    serde_json::json!({"key": key, "value": value, "effect": effect})
}

/// Whether toleration `t` tolerates `taint` (key, operator, value, effect).
fn tolerates(t: &Value, taint: &Value) -> bool {
    let effect = str_at(t, "/effect");
    if !effect.is_empty() && effect != str_at(taint, "/effect") {
        return false;
    }
    let key = str_at(t, "/key");
    if !key.is_empty() && key != str_at(taint, "/key") {
        return false;
    }
    match str_at(t, "/operator") {
        "Exists" => true,
        "" | "Equal" => str_at(t, "/value") == str_at(taint, "/value"),
        _ => false,
    }
}

/// `spec.nodeSelector` and the required node affinity, both against the
/// node's labels (and name, for matchFields).
fn node_affinity_matches(pod: &Value, node: &Value) -> bool {
    let labels = node.pointer("/metadata/labels").and_then(Value::as_object);
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let selector_ok = pod
        .pointer("/spec/nodeSelector")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k).is_some() && label(k) == v.as_str());
    if !selector_ok {
        return false;
    }
    let required =
        pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution");
    let Some(required) = required.filter(|r| r.is_object()) else {
        return true;
    };
    let name = str_at(node, "/metadata/name");
    list(required, "/nodeSelectorTerms").iter().any(|term| {
        let expressions = list(term, "/matchExpressions");
        let fields = list(term, "/matchFields");
        // An empty term selects nothing.
        (!expressions.is_empty() || !fields.is_empty())
            && expressions
                .iter()
                .all(|r| requirement(r, label(str_at(r, "/key"))))
            && fields
                .iter()
                .all(|r| str_at(r, "/key") == "metadata.name" && requirement(r, Some(name)))
    })
}

/// One NodeSelectorRequirement against a label's value (None: absent).
fn requirement(r: &Value, value: Option<&str>) -> bool {
    let values = strings(r, "/values");
    let number = |s: &str| s.parse::<i64>().ok();
    match str_at(r, "/operator") {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(have), [bound]) = (value.and_then(number), values.as_slice()) else {
                return false;
            };
            let Some(bound) = number(bound) else {
                return false;
            };
            if op == "Gt" {
                have > bound
            } else {
                have < bound
            }
        }
        _ => false,
    }
}

/// A host port a pod holds on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPort {
    ip: String,
    protocol: String,
    port: i64,
}

impl HostPort {
    /// 0.0.0.0 overlaps every address; other addresses only themselves.
    fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// Ports with a hostPort, from the containers and the native sidecars (the
/// only init containers that run for the pod's whole life).
fn host_ports(pod: &Value) -> Vec<HostPort> {
    let sidecars = list(pod, "/spec/initContainers")
        .iter()
        .filter(|c| str_at(c, "/restartPolicy") == "Always");
    sidecars
        .chain(list(pod, "/spec/containers"))
        .flat_map(|c| list(c, "/ports"))
        .filter_map(|p| {
            let port = p
                .get("hostPort")
                .and_then(Value::as_i64)
                .filter(|p| *p > 0)?;
            let or = |s: &str, d: &str| {
                if s.is_empty() {
                    d.to_string()
                } else {
                    s.to_string()
                }
            };
            Some(HostPort {
                ip: or(str_at(p, "/hostIP"), "0.0.0.0"),
                protocol: or(str_at(p, "/protocol"), "TCP"),
                port,
            })
        })
        .collect()
}

/// NodeResourcesFit's Filter: every shortfall is a reason; one beyond the
/// node's whole allocatable makes the status unresolvable.
fn fit(pod: &Value, node: &Value, bound: &[&Value]) -> Option<Status> {
    let allocatable = |r: &str| {
        node.pointer("/status/allocatable")
            .and_then(|a| a.get(r))
            .and_then(quantity)
            .map(|q| units(r, q))
            .unwrap_or(0)
    };
    let mut reasons = Vec::new();
    let mut resolvable = true;
    if bound.len() as i128 + 1 > allocatable("pods") {
        reasons.push("Too many pods".to_string());
    }
    let want = requests(pod);
    let mut used: BTreeMap<String, i128> = BTreeMap::new();
    for p in bound {
        for (r, q) in requests(p) {
            *used.entry(r).or_default() += q;
        }
    }
    // cpu, memory and ephemeral-storage first, in that order, then the
    // scalar resources.
    let order = |r: &str| match r {
        "cpu" => 0,
        "memory" => 1,
        "ephemeral-storage" => 2,
        _ => 3,
    };
    let mut names: Vec<&String> = want.keys().collect();
    names.sort_by_key(|r| (order(r), (*r).clone()));
    for r in names {
        let q = want[r];
        let free = allocatable(r) - used.get(r).copied().unwrap_or(0);
        if q > 0 && q > free {
            reasons.push(format!("Insufficient {r}"));
            resolvable &= q <= allocatable(r);
        }
    }
    (!reasons.is_empty()).then_some(Status {
        reasons,
        resolvable,
    })
}

/// What the pod asks of the node, per resource, in the scheduler's units
/// (cpu in millicores, everything else in whole units, rounded up): app
/// containers and native sidecars add up; an init container needs its own
/// request plus the sidecars started before it; the larger of the two
/// counts; pod-level requests replace the containers' cpu and memory;
/// overhead is added.
fn requests(pod: &Value) -> BTreeMap<String, i128> {
    let container = |c: &Value| -> BTreeMap<String, i128> {
        let mut out = BTreeMap::new();
        for field in ["limits", "requests"] {
            // A request left out defaults to the limit, so limits go in
            // first and explicit requests overwrite them.
            for (r, q) in c
                .pointer(&format!("/resources/{field}"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(q) = quantity(q) {
                    out.insert(r.clone(), units(r, q));
                }
            }
        }
        out
    };
    let add = |into: &mut BTreeMap<String, i128>, from: &BTreeMap<String, i128>| {
        for (r, q) in from {
            *into.entry(r.clone()).or_default() += q;
        }
    };
    let mut total = BTreeMap::new();
    for c in list(pod, "/spec/containers") {
        add(&mut total, &container(c));
    }
    let mut sidecars = BTreeMap::new();
    let mut init_peak: BTreeMap<String, i128> = BTreeMap::new();
    for c in list(pod, "/spec/initContainers") {
        let own = container(c);
        let need = if str_at(c, "/restartPolicy") == "Always" {
            add(&mut total, &own);
            add(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut need = own;
            add(&mut need, &sidecars);
            need
        };
        for (r, q) in need {
            let peak = init_peak.entry(r).or_default();
            *peak = (*peak).max(q);
        }
    }
    for (r, q) in init_peak {
        let t = total.entry(r).or_default();
        *t = (*t).max(q);
    }
    let pod_level = pod.pointer("/spec/resources").unwrap_or(&Value::Null);
    for r in ["cpu", "memory"] {
        let q = pod_level
            .pointer(&format!("/requests/{r}"))
            .or_else(|| pod_level.pointer(&format!("/limits/{r}")))
            .and_then(quantity);
        if let Some(q) = q {
            total.insert(r.to_string(), units(r, q));
        }
    }
    for (r, q) in pod
        .pointer("/spec/overhead")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(q) = quantity(q) {
            *total.entry(r.clone()).or_default() += units(r, q);
        }
    }
    total
}

/// A quantity in nano-units.
fn quantity(q: &Value) -> Option<i128> {
    match q {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => parse_quantity(&n.to_string()),
        _ => None,
    }
}

/// Nano-units to the scheduler's unit for resource `r`, rounded up.
fn units(r: &str, nano: i128) -> i128 {
    let per = if r == "cpu" { 1_000_000 } else { 1_000_000_000 };
    (nano + per - 1).div_euclid(per)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn strings(v: &Value, pointer: &str) -> Vec<String> {
    list(v, pointer)
        .iter()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The minor these tests were written against.
    const V34: crate::version::Minor = crate::version::Minor::new(34);
    use crate::kubelet::node::node_object;

    const NODE: &str = "injector-harness-control-plane";

    fn pod(name: &str, spec: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "demo"}, "spec": spec})
    }

    fn app(extra: Value) -> Value {
        let mut c = json!({"name": "app", "image": "probe"});
        if let Some(m) = extra.as_object() {
            for (k, v) in m {
                c[k] = v.clone();
            }
        }
        c
    }

    fn unschedulable(outcome: Outcome) -> String {
        match outcome {
            Outcome::Unschedulable(m) => m,
            other => panic!("expected Unschedulable, got {other:?}"),
        }
    }

    #[test]
    fn host_port_conflict_is_resolvable_but_has_no_victims() {
        let node = node_object(NODE);
        let spec = json!({"containers": [app(json!({"ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}]}))]});
        let first = pod("first", spec.clone());
        assert_eq!(schedule(&first, &node, &[], V34), Outcome::Bind);
        assert_eq!(
            unschedulable(schedule(&pod("second", spec), &node, &[&first], V34)),
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. \
             no new claims to deallocate, preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        // Another protocol or another host IP on the same port is free.
        let udp = pod(
            "udp",
            json!({"containers": [app(json!({"ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}))]}),
        );
        assert_eq!(schedule(&udp, &node, &[&first], V34), Outcome::Bind);
        let a = pod(
            "a",
            json!({"containers": [app(json!({"ports": [{"containerPort": 1, "hostPort": 9, "hostIP": "10.0.0.1"}]}))]}),
        );
        let b = pod(
            "b",
            json!({"containers": [app(json!({"ports": [{"containerPort": 1, "hostPort": 9, "hostIP": "10.0.0.2"}]}))]}),
        );
        let any = pod(
            "any",
            json!({"containers": [app(json!({"ports": [{"containerPort": 1, "hostPort": 9}]}))]}),
        );
        assert_eq!(schedule(&b, &node, &[&a], V34), Outcome::Bind);
        assert!(matches!(
            schedule(&any, &node, &[&a], V34),
            Outcome::Unschedulable(_)
        ));
        // A plain init container's host port is not held; a sidecar's is.
        let init = pod(
            "init",
            json!({"initContainers": [app(json!({"ports": [{"containerPort": 80, "hostPort": 8080}]}))], "containers": [app(json!({}))]}),
        );
        assert_eq!(schedule(&init, &node, &[&first], V34), Outcome::Bind);
        let sidecar = pod(
            "sc",
            json!({"initContainers": [app(json!({"restartPolicy": "Always", "ports": [{"containerPort": 80, "hostPort": 8080}]}))], "containers": [app(json!({}))]}),
        );
        assert!(matches!(
            schedule(&sidecar, &node, &[&first], V34),
            Outcome::Unschedulable(_)
        ));
    }

    #[test]
    fn node_selector_and_affinity() {
        let node = node_object(NODE);
        let not_helpful =
            "no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
        let affinity = |m: &str| {
            format!(
                "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. {m}"
            )
        };
        let selector = |sel: Value| {
            pod(
                "p",
                json!({"nodeSelector": sel, "containers": [app(json!({}))]}),
            )
        };
        assert_eq!(
            schedule(
                &selector(json!({"kubernetes.io/os": "linux"})),
                &node,
                &[],
                V34
            ),
            Outcome::Bind
        );
        assert_eq!(
            unschedulable(schedule(
                &selector(json!({"disktype": "ssd"})),
                &node,
                &[],
                V34
            )),
            affinity(not_helpful)
        );
        let required = |terms: Value| {
            pod(
                "p",
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}},
                            "containers": [app(json!({}))]}),
            )
        };
        let expr = |key: &str, op: &str, values: Value| json!({"key": key, "operator": op, "values": values});
        for (terms, fits) in [
            (
                json!([{"matchExpressions": [expr("kubernetes.io/arch", "In", json!(["amd64"]))]}]),
                true,
            ),
            (
                json!([{"matchExpressions": [expr("kubernetes.io/arch", "NotIn", json!(["amd64"]))]}]),
                false,
            ),
            (
                json!([{"matchExpressions": [expr("gpu", "NotIn", json!(["a"]))]}]),
                true,
            ),
            (
                json!([{"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}]),
                true,
            ),
            (
                json!([{"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]}]),
                false,
            ),
            // Terms are ORed.
            (
                json!([{"matchExpressions": [expr("gpu", "In", json!(["a"]))]},
                    {"matchExpressions": [expr("kubernetes.io/os", "In", json!(["linux"]))]}]),
                true,
            ),
            (json!([{}]), false),
            (
                json!([{"matchExpressions": [expr("kubernetes.io/os", "Gt", json!(["1"]))]}]),
                false,
            ),
            (
                json!([{"matchFields": [expr("metadata.name", "NotIn", json!(["other"]))]}]),
                true,
            ),
        ] {
            let outcome = schedule(&required(terms.clone()), &node, &[], V34);
            if fits {
                assert_eq!(outcome, Outcome::Bind, "{terms}");
            } else {
                assert_eq!(unschedulable(outcome), affinity(not_helpful), "{terms}");
            }
        }
        // Pinned to another node by name: rejected before the filters.
        let pinned =
            required(json!([{"matchFields": [expr("metadata.name", "In", json!(["other"]))]}]));
        assert_eq!(
            unschedulable(schedule(&pinned, &node, &[], V34)),
            format!("0/1 nodes are available: 1 node(s) didn't satisfy plugin(s) [NodeAffinity]. {not_helpful}")
        );
        let pinned_here =
            required(json!([{"matchFields": [expr("metadata.name", "In", json!([NODE]))]}]));
        assert_eq!(schedule(&pinned_here, &node, &[], V34), Outcome::Bind);
        let conflict = required(
            json!([{"matchFields": [expr("metadata.name", "In", json!(["a"])),
                                                         expr("metadata.name", "In", json!(["b"]))]}]),
        );
        assert_eq!(
            unschedulable(schedule(&conflict, &node, &[], V34)),
            "0/1 nodes are available: pod affinity terms conflict. not found"
        );
    }

    #[test]
    fn taints_and_tolerations() {
        let mut node = node_object(NODE);
        let plain = pod("p", json!({"containers": [app(json!({}))]}));
        assert_eq!(schedule(&plain, &node, &[], V34), Outcome::Bind);
        node["spec"]["taints"] =
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
        assert_eq!(
            unschedulable(schedule(&plain, &node, &[], V34)),
            "0/1 nodes are available: 1 node(s) had untolerated taint(s). \
             no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        for (toleration, ok) in [
            (
                json!({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}),
                true,
            ),
            (json!({"key": "dedicated", "value": "gpu"}), true),
            (json!({"key": "dedicated", "operator": "Exists"}), true),
            (json!({"operator": "Exists"}), true),
            (json!({"key": "dedicated", "value": "cpu"}), false),
            (
                json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}),
                false,
            ),
        ] {
            let p = pod(
                "p",
                json!({"tolerations": [toleration], "containers": [app(json!({}))]}),
            );
            assert_eq!(
                schedule(&p, &node, &[], V34) == Outcome::Bind,
                ok,
                "{toleration}"
            );
        }
        // PreferNoSchedule only weighs in scoring.
        node["spec"]["taints"] = json!([{"key": "x", "effect": "PreferNoSchedule"}]);
        assert_eq!(schedule(&plain, &node, &[], V34), Outcome::Bind);
        node["spec"]["taints"] = json!([]);
        node["spec"]["unschedulable"] = json!(true);
        assert!(unschedulable(schedule(&plain, &node, &[], V34))
            .starts_with("0/1 nodes are available: 1 node(s) were unschedulable."));
    }

    #[test]
    fn resources_against_allocatable() {
        let node = node_object(NODE);
        let asking = |name: &str, requests: Value| {
            pod(
                name,
                json!({"containers": [app(json!({"resources": {"requests": requests}}))]}),
            )
        };
        // Beyond the whole node: preemption cannot help.
        assert_eq!(
            unschedulable(schedule(
                &asking("big", json!({"cpu": "3", "memory": "64Gi"})),
                &node,
                &[]
            , V34)),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. \
             no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            unschedulable(schedule(
                &asking("gpu", json!({"example.com/gpu": "1"})),
                &node,
                &[]
            , V34)),
            "0/1 nodes are available: 1 Insufficient example.com/gpu. \
             no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        // Within the node but taken by a bound pod: resolvable, no victims.
        let first = asking("first", json!({"cpu": "1200m"}));
        assert_eq!(schedule(&first, &node, &[], V34), Outcome::Bind);
        assert_eq!(
            unschedulable(schedule(
                &asking("second", json!({"cpu": "1200m"})),
                &node,
                &[&first]
            , V34)),
            "0/1 nodes are available: 1 Insufficient cpu. \
             no new claims to deallocate, preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        assert_eq!(
            schedule(
                &asking("third", json!({"cpu": "800m"})),
                &node,
                &[&first],
                V34
            ),
            Outcome::Bind
        );
        // A lower-priority pod in the way would be preempted: not modelled.
        let mut urgent = asking("urgent", json!({"cpu": "1200m"}));
        urgent["spec"]["priority"] = json!(1000);
        assert_eq!(
            schedule(&urgent, &node, &[&first], V34),
            Outcome::Preempts(vec!["demo/first".into()])
        );
        urgent["spec"]["preemptionPolicy"] = json!("Never");
        assert!(unschedulable(schedule(&urgent, &node, &[&first], V34))
            .ends_with("no new claims to deallocate, preemption: not eligible due to preemptionPolicy=Never."));
    }

    #[test]
    fn pod_requests_follow_the_scheduler() {
        // Limits stand in for missing requests; sidecars add up; a plain
        // init container counts with the sidecars before it.
        let p = pod(
            "p",
            json!({
                "initContainers": [
                    {"name": "sc", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
                    {"name": "init", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                ],
                "containers": [{"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "1Mi"}}},
                               {"name": "b", "resources": {"requests": {"cpu": "0.25"}}}],
                "overhead": {"cpu": "10m"},
            }),
        );
        let r = requests(&p);
        assert_eq!(r["cpu"], 1100 + 10);
        assert_eq!(r["memory"], 1 << 30);
        let pod_level = pod(
            "p",
            json!({"resources": {"requests": {"cpu": "2"}},
                                         "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}),
        );
        assert_eq!(requests(&pod_level)["cpu"], 2000);
        // Too many pods: the node holds 110.
        let node = node_object(NODE);
        let others: Vec<Value> = (0..110).map(|i| pod(&format!("p{i}"), json!({}))).collect();
        let refs: Vec<&Value> = others.iter().collect();
        assert!(
            unschedulable(schedule(&pod("x", json!({})), &node, &refs, V34))
                .starts_with("0/1 nodes are available: 1 Too many pods.")
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        let node = node_object(NODE);
        for p in [
            json!(null),
            json!({"spec": 1}),
            json!({"spec": {"containers": [{"ports": [{"hostPort": "x"}], "resources": {"requests": {"cpu": []}}}],
                  "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": "x"}}},
                  "nodeSelector": [1], "tolerations": {}}}),
        ] {
            let _ = schedule(&p, &node, &[&p], V34);
        }
    }
}
