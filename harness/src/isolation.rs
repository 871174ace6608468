//! Sharing a real cluster between runs.
//!
//! Two harness runs on one cluster (two CI jobs, two developers on one dev
//! cluster) must not see or delete each other's objects. Each run has an id
//! ([`run_id`]); on a real cluster a scenario's namespaces get the id as a
//! suffix (`selectors` becomes `selectors-k3x9q`), objects it puts into the
//! cluster's own namespaces (`kube-system`) get it on their names, and every
//! namespace and webhook configuration the run creates carries the
//! [`RUN_LABEL`]. Cleanup and the Ctrl-C sweep delete by that label only.
//!
//! [`Isolated`] does the renaming in front of any [`Cluster`]: objects and
//! step arguments going in are renamed, and what comes out (pods, workloads,
//! refusals, events) is named back, so expectations, snapshots and the
//! scenario file never see the suffix. The sim runs every scenario through
//! it in a test, which shows the renaming changes no snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use serde_json::Value;
use sidecar_injector::Config;

use crate::cluster::{Cluster, Observed};
use crate::scenario::{Scenario, Target};

/// The label on every namespace and webhook configuration a run creates.
pub const RUN_LABEL: &str = "injector-harness/run";

/// The key the apiserver sets on every namespace to its name; selectors on
/// it name namespaces, so they are renamed with them.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Namespaces every cluster has and no run owns: scenarios share them, so
/// objects in them are renamed instead. (`default` is not among them: a run
/// gets its own, as it gets every other namespace a scenario names.)
pub const SHARED_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// The longest run id: it is added to DNS labels of at most 63 bytes.
const MAX_ID: usize = 8;

/// A run's id: 1 to 8 lowercase letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunId(String);

impl RunId {
    pub fn parse(text: &str) -> Result<RunId, String> {
        if text.is_empty() || text.len() > MAX_ID {
            return Err(format!(
                "run id {text:?}: must be 1 to {MAX_ID} characters long"
            ));
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        {
            return Err(format!(
                "run id {text:?}: {c:?} is not a lowercase letter or digit"
            ));
        }
        Ok(RunId(text.to_string()))
    }

    /// Five random letters and digits (about 60 million ids): two runs that
    /// start together do not pick the same one.
    pub fn random() -> RunId {
        // std seeds each RandomState from the OS's random source.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let mut n = h.finish();
        const DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let id = (0..5)
            .map(|_| {
                let c = DIGITS[(n % 36) as usize] as char;
                n /= 36;
                c
            })
            .collect();
        RunId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `name` with `-<id>` added, cut so the whole stays within `max` bytes.
fn suffixed(name: &str, id: &RunId, max: usize) -> String {
    let room = max.saturating_sub(id.0.len() + 1);
    let mut head = name[..name.len().min(room)].to_string();
    while !name.is_char_boundary(head.len()) {
        head.pop();
    }
    format!("{}-{}", head.trim_end_matches(['-', '.']), id.0)
}

/// How one scenario's names map onto a shared cluster for one run.
#[derive(Debug, Clone)]
pub struct Isolation {
    run: RunId,
    /// Scenario namespace -> the namespace on the cluster.
    namespaces: BTreeMap<String, String>,
    /// (shared namespace, object name) -> the name on the cluster.
    names: BTreeMap<(String, String), String>,
    /// The kinds the scenario's own CustomResourceDefinitions define, for
    /// telling its cluster-scoped objects.
    definitions: Vec<crate::cluster::ApiKind>,
}

impl Isolation {
    /// The names `scenario` gets in run `run`.
    pub fn for_run(run: &RunId, scenario: &Scenario) -> Isolation {
        let namespaces = scenario
            .namespaces()
            .into_iter()
            .filter(|ns| !SHARED_NAMESPACES.contains(&ns.as_str()))
            .map(|ns| {
                let renamed = suffixed(&ns, run, 63);
                (ns, renamed)
            })
            .collect();
        let mut names = BTreeMap::new();
        for object in scenario.objects() {
            if scenario.is_cluster_scoped(object) {
                continue;
            }
            let ns = crate::object::namespace(object);
            let name = crate::object::meta_str(object, "name");
            if SHARED_NAMESPACES.contains(&ns) && !name.is_empty() {
                names.insert((ns.to_string(), name.to_string()), suffixed(name, run, 253));
            }
        }
        Isolation {
            run: run.clone(),
            namespaces,
            names,
            definitions: scenario.definitions(),
        }
    }

    pub fn run(&self) -> &RunId {
        &self.run
    }

    /// The namespace `ns` of the scenario is on the cluster.
    pub fn namespace(&self, ns: &str) -> String {
        self.namespaces
            .get(ns)
            .cloned()
            .unwrap_or_else(|| ns.to_string())
    }

    /// The cluster's names of every namespace the scenario uses.
    pub fn cluster_namespaces(&self, scenario: &Scenario) -> BTreeSet<String> {
        scenario
            .namespaces()
            .iter()
            .map(|ns| self.namespace(ns))
            .collect()
    }

    /// Objects the scenario puts into shared namespaces, as the cluster
    /// names them: (namespace, scenario name, cluster name).
    pub fn shared_objects(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.names
            .iter()
            .map(|((ns, name), renamed)| (ns.as_str(), name.as_str(), renamed.as_str()))
    }

    /// A manifest as this run applies it.
    pub fn object(&self, object: &Value) -> Value {
        let mut out = object.clone();
        if object["kind"] == "Namespace" {
            let name = crate::object::meta_str(object, "name");
            out["metadata"]["name"] = Value::String(self.namespace(name));
            let labels = &mut out["metadata"]["labels"];
            if !labels.is_object() {
                *labels = Value::Object(Default::default());
            }
            labels[RUN_LABEL] = Value::String(self.run.0.clone());
            return out;
        }
        if crate::cluster::api_resources::cluster_scoped(object, &self.definitions) {
            // Cluster-scoped objects keep their names (pods and bindings
            // refer to them by name); the run's label marks them for the
            // sweep.
            self.label(&mut out["metadata"]);
            return out;
        }
        let ns = crate::object::namespace(object);
        let name = crate::object::meta_str(object, "name");
        if let Some(renamed) = self.names.get(&(ns.to_string(), name.to_string())) {
            out["metadata"]["name"] = Value::String(renamed.clone());
        }
        out["metadata"]["namespace"] = Value::String(self.namespace(ns));
        // The run's label goes on the object and on every object a
        // controller makes from it, so [`Isolation::webhooks`] can keep this
        // run's webhooks to this run's objects (see there).
        self.label(&mut out["metadata"]);
        for path in [
            &["spec", "template"][..],
            &["spec", "jobTemplate"],
            &["spec", "jobTemplate", "spec", "template"],
        ] {
            if let Some(template) = path_mut(&mut out, path).filter(|t| t.is_object()) {
                self.label(&mut template["metadata"]);
            }
        }
        out
    }

    fn label(&self, meta: &mut Value) {
        if !meta.is_object() {
            *meta = Value::Object(Default::default());
        }
        let labels = &mut meta["labels"];
        if !labels.is_object() {
            *labels = Value::Object(Default::default());
        }
        labels[RUN_LABEL] = Value::String(self.run.0.clone());
    }

    /// Webhooks whose namespaceSelector names namespaces by the
    /// `kubernetes.io/metadata.name` label, with the names this run uses.
    ///
    /// Each webhook also gets `injector-harness/run In [<id>]` in its
    /// objectSelector. Namespaces keep runs apart everywhere but in the
    /// cluster's own (`kube-system`), which every run's webhooks may take in:
    /// without it, run a's pod in `kube-system` was sent to run b's webhook
    /// too, and refused when b's injector was already gone.
    pub fn webhooks(&self, mut hooks: Vec<MutatingWebhook>) -> Vec<MutatingWebhook> {
        for hook in &mut hooks {
            hook.object_selector
                .get_or_insert_with(Default::default)
                .match_expressions
                .get_or_insert_with(Vec::new)
                .push(LabelSelectorRequirement {
                    key: RUN_LABEL.into(),
                    operator: "In".into(),
                    values: Some(vec![self.run.0.clone()]),
                });
            let exprs = hook
                .namespace_selector
                .iter_mut()
                .flat_map(|s| s.match_expressions.iter_mut().flatten());
            for e in exprs.filter(|e| e.key == NAME_LABEL) {
                for v in e.values.iter_mut().flatten() {
                    *v = self.namespace(v);
                }
            }
            if let Some(labels) = hook
                .namespace_selector
                .as_mut()
                .and_then(|s| s.match_labels.as_mut())
            {
                if let Some(v) = labels.get_mut(NAME_LABEL) {
                    *v = self.namespace(v);
                }
            }
        }
        hooks
    }

    /// The injector config with the namespaces it names renamed.
    pub fn config(&self, config: &Config) -> Config {
        let mut out = config.clone();
        for ns in &mut out.policy.ignored_namespaces {
            *ns = self.namespace(ns);
        }
        out
    }

    /// Text from the cluster with this run's names put back.
    pub fn restore_text(&self, text: &str) -> String {
        // Longest first: a name that contains another is put back whole.
        let mut pairs: Vec<(&str, &str)> = self
            .namespaces
            .iter()
            .map(|(orig, renamed)| (renamed.as_str(), orig.as_str()))
            .chain(
                self.names
                    .iter()
                    .map(|((_, orig), renamed)| (renamed.as_str(), orig.as_str())),
            )
            .filter(|(renamed, orig)| renamed != orig)
            .collect();
        pairs.sort_by_key(|(renamed, _)| std::cmp::Reverse(renamed.len()));
        let mut out = text.to_string();
        for (renamed, orig) in pairs {
            if out.contains(renamed) {
                out = out.replace(renamed, orig);
            }
        }
        out
    }

    fn restore_value(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.restore_text(s),
            Value::Array(items) => items.iter_mut().for_each(|i| self.restore_value(i)),
            Value::Object(map) => {
                let renamed_keys: Vec<String> = map
                    .keys()
                    .filter(|k| self.restore_text(k) != **k)
                    .cloned()
                    .collect();
                for k in renamed_keys {
                    if let Some(value) = map.remove(&k) {
                        map.insert(self.restore_text(&k), value);
                    }
                }
                if let Some(labels) = map.get_mut("labels").and_then(Value::as_object_mut) {
                    labels.remove(RUN_LABEL);
                    // The apiserver omits an empty map: with the run's label
                    // gone, an object that had no labels shows none.
                    if labels.is_empty() {
                        map.remove("labels");
                    }
                }
                map.values_mut().for_each(|i| self.restore_value(i));
            }
            _ => {}
        }
    }

    /// What the cluster shows, in the scenario's names.
    pub fn restore(&self, mut observed: Observed) -> Observed {
        for v in observed
            .pods
            .iter_mut()
            .chain(observed.workloads.iter_mut())
            .chain(observed.objects.iter_mut())
        {
            self.restore_value(v);
        }
        for r in &mut observed.rejections {
            r.namespace = self.restore_text(&r.namespace);
            r.name = self.restore_text(&r.name);
            r.message = self.restore_text(&r.message);
        }
        for w in &mut observed.warnings {
            w.namespace = self.restore_text(&w.namespace);
            w.name = self.restore_text(&w.name);
            w.message = self.restore_text(&w.message);
        }
        for e in &mut observed.events {
            e.namespace = self.restore_text(&e.namespace);
            e.name = self.restore_text(&e.name);
            e.message = self.restore_text(&e.message);
        }
        observed.rejections.sort();
        observed.events.sort();
        observed
    }
}

/// The value at `path` in `v`, if every step on the way is an object.
fn path_mut<'v>(v: &'v mut Value, path: &[&str]) -> Option<&'v mut Value> {
    path.iter()
        .try_fold(v, |v, key| v.as_object_mut()?.get_mut(*key))
}

/// A cluster seen through a run's names: what the scenario says goes in
/// renamed, what the cluster shows comes out in the scenario's names.
pub struct Isolated<'a, C> {
    pub inner: &'a mut C,
    pub names: &'a Isolation,
}

impl<C: Cluster> Cluster for Isolated<'_, C> {
    async fn register(&mut self, webhooks: Vec<MutatingWebhook>) -> anyhow::Result<()> {
        self.inner.register(self.names.webhooks(webhooks)).await
    }

    async fn apply(&mut self, object: &Value) -> anyhow::Result<()> {
        self.inner.apply(&self.names.object(object)).await
    }

    async fn apply_dry_run(&mut self, object: &Value) -> anyhow::Result<()> {
        self.inner.apply_dry_run(&self.names.object(object)).await
    }

    async fn label_namespace(
        &mut self,
        name: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> anyhow::Result<()> {
        let name = self.names.namespace(name);
        self.inner.label_namespace(&name, labels).await
    }

    async fn rollout_restart(
        &mut self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> anyhow::Result<()> {
        let (ns, name) = self.names.target(namespace, name);
        self.inner.rollout_restart(&ns, kind, &name).await
    }

    async fn scale(
        &mut self,
        namespace: &str,
        kind: &str,
        name: &str,
        replicas: u32,
    ) -> anyhow::Result<()> {
        let (ns, name) = self.names.target(namespace, name);
        self.inner.scale(&ns, kind, &name, replicas).await
    }

    async fn patch(&mut self, target: &Target, patch: &Value) -> anyhow::Result<()> {
        let target = self.names.target_of(target);
        self.inner.patch(&target, patch).await
    }

    async fn delete(&mut self, target: &Target) -> anyhow::Result<()> {
        let target = self.names.target_of(target);
        self.inner.delete(&target).await
    }

    fn injector_answering(&mut self, answering: bool) {
        self.inner.injector_answering(answering)
    }

    async fn settle(&mut self) -> anyhow::Result<()> {
        self.inner.settle().await
    }

    async fn observe(&mut self) -> anyhow::Result<Observed> {
        Ok(self.names.restore(self.inner.observe().await?))
    }

    fn admission_log(&self) -> Vec<String> {
        let log = self.inner.admission_log();
        log.iter().map(|l| self.names.restore_text(l)).collect()
    }

    /// In the cluster's names: those are what `kubectl` finds.
    async fn diagnostics(&mut self) -> Vec<String> {
        self.inner.diagnostics().await
    }
}

impl Isolation {
    /// A step's target in the cluster's names.
    fn target_of(&self, target: &Target) -> Target {
        let mut out = target.clone();
        if target.kind == "Namespace" {
            out.name = self.namespace(&target.name);
        } else if !target.cluster_scoped(&self.definitions) {
            (out.namespace, out.name) = self.target(&target.namespace, &target.name);
        }
        out
    }

    /// The cluster's namespace and name of an object a step names.
    fn target(&self, namespace: &str, name: &str) -> (String, String) {
        let renamed = self
            .names
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_else(|| name.to_string());
        (self.namespace(namespace), renamed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scenario(text: &str) -> Scenario {
        let base = serde_json::to_value(Config::builtin()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, text).unwrap();
        crate::scenario::load(&path, &base).unwrap()
    }

    const TWO: &str = "apiVersion: injector-harness/v1\nkind: Scenario\nname: s\n\
        webhooks:\n- namespaceSelector:\n    matchExpressions:\n    - {key: kubernetes.io/metadata.name, operator: In, values: [kube-system, shop]}\n\
        ---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n\
        ---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec: {containers: [{name: web, image: x}]}\n\
        ---\napiVersion: v1\nkind: Pod\nmetadata: {name: agent, namespace: kube-system}\nspec: {containers: [{name: a, image: x}]}\n\
        ---\napiVersion: v1\nkind: Pod\nmetadata: {name: plain}\nspec: {containers: [{name: p, image: x}]}\n";

    #[test]
    fn run_ids_are_short_lowercase_and_checked() {
        for _ in 0..50 {
            let id = RunId::random();
            assert_eq!(RunId::parse(id.as_str()), Ok(id.clone()));
            assert_eq!(id.as_str().len(), 5);
        }
        assert!(RunId::parse("").is_err());
        assert!(RunId::parse("abcdefghi").unwrap_err().contains("1 to 8"));
        assert!(RunId::parse("Ab").unwrap_err().contains("'A'"));
        assert!(RunId::parse("a-b").is_err());
    }

    #[test]
    fn scenario_names_are_renamed_going_in_and_restored_coming_out() {
        let s = scenario(TWO);
        let iso = Isolation::for_run(&RunId::parse("k3x9q").unwrap(), &s);
        let applied: Vec<Value> = s.manifests.iter().map(|m| iso.object(&m.object)).collect();
        assert_eq!(applied[0]["metadata"]["name"], "shop-k3x9q");
        assert_eq!(applied[0]["metadata"]["labels"][RUN_LABEL], "k3x9q");
        assert_eq!(applied[1]["metadata"]["namespace"], "shop-k3x9q");
        assert_eq!(applied[1]["metadata"]["name"], "web");
        // A shared namespace keeps its name; the object in it does not.
        assert_eq!(applied[2]["metadata"]["namespace"], "kube-system");
        assert_eq!(applied[2]["metadata"]["name"], "agent-k3x9q");
        // No namespace means `default`, which a run does not share.
        assert_eq!(applied[3]["metadata"]["namespace"], "default-k3x9q");
        let hooks = iso.webhooks(vec![crate::admission::webhook_from_spec(
            &s.header.webhooks[0],
        )]);
        let values = hooks[0]
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .as_ref()
            .unwrap()[0]
            .values
            .clone()
            .unwrap();
        assert_eq!(values, ["kube-system", "shop-k3x9q"]);

        let mut observed = Observed {
            pods: applied.clone(),
            ..Default::default()
        };
        observed.pods[1]["metadata"]["labels"] = json!({RUN_LABEL: "k3x9q", "app": "web"});
        observed.rejections.push(crate::cluster::Rejection {
            namespace: "shop-k3x9q".into(),
            kind: "Pod".into(),
            name: "web".into(),
            message: "pods \"agent-k3x9q\" in namespace \"shop-k3x9q\" is forbidden".into(),
        });
        let back = iso.restore(observed);
        assert_eq!(back.pods[1]["metadata"]["namespace"], "shop");
        assert_eq!(back.pods[1]["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(back.pods[2]["metadata"]["name"], "agent");
        assert_eq!(back.pods[3]["metadata"]["namespace"], "default");
        assert_eq!(
            back.rejections[0].message,
            "pods \"agent\" in namespace \"shop\" is forbidden"
        );
    }

    #[test]
    fn a_runs_webhooks_take_in_only_its_own_objects_in_shared_namespaces() {
        let s = scenario(TWO);
        let a = Isolation::for_run(&RunId::parse("a").unwrap(), &s);
        let b = Isolation::for_run(&RunId::parse("b").unwrap(), &s);
        let hook = crate::admission::webhook_from_spec(&s.header.webhooks[0]);
        let (hook_a, hook_b) = (
            a.webhooks(vec![hook.clone()]).remove(0),
            b.webhooks(vec![hook]).remove(0),
        );
        let ns_labels = BTreeMap::from([(NAME_LABEL.to_string(), "kube-system".to_string())]);
        let attrs = crate::admission::Attributes::pod_create("kube-system", &ns_labels);
        let agent = &s.manifests[2].object;
        let (agent_a, agent_b) = (a.object(agent), b.object(agent));
        let called = |hook: &MutatingWebhook, pod: &Value| {
            crate::admission::webhook_matches(hook, &attrs, pod)
        };
        assert!(called(&hook_a, &agent_a) && called(&hook_b, &agent_b));
        assert!(!called(&hook_a, &agent_b) && !called(&hook_b, &agent_a));
    }

    #[test]
    fn pod_templates_carry_the_run_label_and_lose_it_coming_back() {
        let s = scenario(TWO);
        let iso = Isolation::for_run(&RunId::parse("k3x9q").unwrap(), &s);
        let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "c", "namespace": "shop"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
                "spec": {"containers": [{"name": "c", "image": "x"}]}}}}}});
        let applied = iso.object(&cron);
        assert_eq!(applied["metadata"]["labels"][RUN_LABEL], "k3x9q");
        assert_eq!(
            applied["spec"]["jobTemplate"]["metadata"]["labels"][RUN_LABEL],
            "k3x9q"
        );
        let template = &applied["spec"]["jobTemplate"]["spec"]["template"];
        assert_eq!(template["metadata"]["labels"][RUN_LABEL], "k3x9q");
        let back = iso.restore(Observed {
            workloads: vec![applied.clone()],
            ..Default::default()
        });
        // Labels that were only the run's are gone, map and all.
        assert_eq!(back.workloads[0]["metadata"].get("labels"), None);
        let template = &back.workloads[0]["spec"]["jobTemplate"]["spec"]["template"];
        assert_eq!(template["metadata"], json!({}));
    }

    #[test]
    fn a_long_namespace_is_cut_to_fit_the_suffix() {
        let long = "n".repeat(62);
        let s = scenario(&format!(
            "apiVersion: injector-harness/v1\nkind: Scenario\nname: s\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {long}}}\n"
        ));
        let iso = Isolation::for_run(&RunId::parse("abcdefgh").unwrap(), &s);
        let renamed = iso.namespace(&long);
        assert_eq!(renamed.len(), 63);
        assert!(renamed.ends_with("n-abcdefgh"));
        assert_eq!(
            iso.restore_text(&format!("ns {renamed}")),
            format!("ns {long}")
        );
    }

    #[test]
    fn ignored_namespaces_follow_the_rename() {
        let s = scenario(TWO);
        let iso = Isolation::for_run(&RunId::parse("q").unwrap(), &s);
        let mut config = Config::builtin();
        config.policy.ignored_namespaces =
            vec!["kube-system".into(), "shop".into(), "elsewhere".into()];
        assert_eq!(
            iso.config(&config).policy.ignored_namespaces,
            ["kube-system", "shop-q", "elsewhere"]
        );
    }
}
