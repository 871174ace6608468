//! A deterministic model of the kubelet and container runtime: given a pod
//! spec, the settled `status` a real v1.34 API server would show for it.
//!
//! The simulator has no processes, so it needs to know what the scenario's
//! containers would do. They run [`crate::probe`], whose whole behaviour is
//! in its flags (listen here, maybe exit with this code), so the model can
//! replay it: containers start in the kubelet's order, bind ports in a
//! shared network namespace (the pod's, or the node's under hostNetwork), and
//! the first to bind a port wins while the loser exits 1 with
//! [`bind_error`] and crash-loops. Other images are taken to listen on their
//! declared containerPorts and to run forever (init containers: complete).
//!
//! "Settled" means: what the status looks like once every container has had
//! its first go. There is no clock: timestamps are [`TIMESTAMP`], container
//! IDs `containerd://<name>`, and a crash-looping container has
//! restartCount 1, a stand-in for "some" (snapshots normalize all three).
//!
//! Layout: public API; environment and `$(VAR)` expansion; what a container
//! runs (`Program`); the network namespace (`Netns`); one container's state
//! machine (`Ctr`, `State`); the pod's run (`Runtime`); phase and
//! conditions; JSON rendering; QoS class.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::probe::{bind_error, is_probe_image, ProbeArgs};

/// Every timestamp the model writes.
pub const TIMESTAMP: &str = "2025-01-01T00:00:00Z";

/// Where the kubelet reads a container's termination message by default;
/// `probe` writes only there.
const TERMINATION_LOG: &str = "/dev/termination-log";

/// A listening socket's identity: port and protocol (10000/TCP and
/// 10000/UDP do not clash).
pub type PortKey = (u16, String);

/// A node, as far as ports go: hostNetwork pods bind in its namespace, so two
/// of them on one node clash like two containers of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub ip: String,
    /// Ports held on the node by running hostNetwork containers, with their
    /// owner as `namespace/pod/container`.
    host_ports: BTreeMap<PortKey, String>,
}

impl Node {
    pub fn new(name: impl Into<String>, ip: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            ip: ip.into(),
            host_ports: BTreeMap::new(),
        }
    }

    /// Ports currently held on the node, with their `namespace/pod/container`.
    pub fn host_ports(&self) -> &BTreeMap<PortKey, String> {
        &self.host_ports
    }

    /// Frees what a pod held on the node: call it when the pod is deleted.
    /// ([`run_pod`] does it itself before re-running a pod.)
    pub fn release_pod(&mut self, namespace: &str, name: &str) {
        let prefix = format!("{namespace}/{name}/");
        self.host_ports
            .retain(|_, owner| !owner.starts_with(&prefix));
    }
}

/// What the model may ask of the cluster while running a pod.
pub struct RunContext<'a> {
    /// Whether ConfigMap `name` exists in namespace `ns`.
    pub config_map_exists: &'a dyn Fn(&str, &str) -> bool,
    /// Whether Secret `name` exists in namespace `ns`.
    pub secret_exists: &'a dyn Fn(&str, &str) -> bool,
    /// The IP the pod gets unless it uses the host network.
    pub pod_ip: String,
}

/// Runs `pod` on `node` and returns the settled PodStatus object.
///
/// Re-running a pod is fine: its previous host ports are released first.
/// The returned status replaces the pod's; readiness gates are read from the
/// conditions already in `pod.status`.
pub fn run_pod(pod: &Value, node: &mut Node, ctx: &RunContext) -> Value {
    let info = PodInfo::read(pod, node, ctx);
    node.release_pod(info.namespace, info.name);
    let mut rt = Runtime {
        netns: Netns {
            ports: if info.host_network {
                node.host_ports.clone()
            } else {
                BTreeMap::new()
            },
        },
        info: &info,
        ctx,
    };
    let mut pod_run = PodRun::new(&info);
    pod_run.progress = if volumes_mountable(pod, info.namespace, ctx) {
        rt.run(&mut pod_run)
    } else {
        Progress::NoSandbox
    };
    rt.settle(&mut pod_run);
    if info.host_network {
        node.host_ports = rt.netns.ports;
    }
    render_status(&info, &pod_run)
}

// ---------------------------------------------------------------------------
// Environment.

/// Kubernetes `$(VAR)` expansion, as applied to command, args and env values:
/// a defined `$(VAR)` is replaced, an undefined one kept as written, `$$` is
/// an escaped `$` (so `$$(VAR)` gives the literal `$(VAR)`), and an
/// unterminated `$(` is kept.
pub fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            let Some(end) = inner.find(')') else {
                out.push_str(&rest[i..]);
                return out;
            };
            let name = &inner[..end];
            match env.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A container's environment as the kubelet builds it: entries in order,
/// each `value` expanded against the entries before it, `fieldRef`s resolved
/// from the pod (podIP and hostIP from its status). Other `valueFrom` kinds
/// (ConfigMap and Secret keys, resources) are skipped: their values are not
/// known here.
pub fn container_env(container: &Value, pod: &Value) -> BTreeMap<String, String> {
    env_with(container, pod, &Facts::from_pod(pod))
}

/// Values a fieldRef can ask for that are not in the pod spec.
struct Facts {
    pod_ip: String,
    host_ip: String,
    node_name: String,
}

impl Facts {
    fn from_pod(pod: &Value) -> Facts {
        Facts {
            pod_ip: str_at(pod, "/status/podIP").to_string(),
            host_ip: str_at(pod, "/status/hostIP").to_string(),
            node_name: str_at(pod, "/spec/nodeName").to_string(),
        }
    }
}

fn env_with(container: &Value, pod: &Value, facts: &Facts) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for entry in list(container, "env") {
        let name = str_at(entry, "/name");
        if name.is_empty() {
            continue;
        }
        let value = if let Some(path) = entry.pointer("/valueFrom/fieldRef/fieldPath") {
            match field_ref(pod, path.as_str().unwrap_or(""), facts) {
                Some(v) => v,
                None => continue,
            }
        } else if entry.get("valueFrom").is_some_and(|v| !v.is_null()) {
            continue;
        } else {
            expand(str_at(entry, "/value"), &env)
        };
        env.insert(name.to_string(), value);
    }
    env
}

/// The downward API for env: a known path resolves (to "" when the pod lacks
/// the value, as the kubelet does); an unknown one does not.
fn field_ref(pod: &Value, path: &str, facts: &Facts) -> Option<String> {
    let from_pod = |pointer: &str| Some(str_at(pod, pointer).to_string());
    match path {
        "metadata.name" => from_pod("/metadata/name"),
        "metadata.namespace" => from_pod("/metadata/namespace"),
        "metadata.uid" => from_pod("/metadata/uid"),
        "spec.nodeName" => Some(facts.node_name.clone()),
        "spec.serviceAccountName" => from_pod("/spec/serviceAccountName"),
        "status.podIP" | "status.podIPs" => Some(facts.pod_ip.clone()),
        "status.hostIP" | "status.hostIPs" => Some(facts.host_ip.clone()),
        _ => {
            let (map, key) = subscript(path, "metadata.labels")
                .map(|k| ("labels", k))
                .or_else(|| subscript(path, "metadata.annotations").map(|k| ("annotations", k)))?;
            let value = pod
                .get("metadata")
                .and_then(|m| m.get(map))
                .and_then(|m| m.get(key));
            Some(value.and_then(Value::as_str).unwrap_or("").to_string())
        }
    }
}

/// `metadata.labels['app']` -> `app`.
fn subscript<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let inner = path
        .strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?;
    inner
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

/// The message of the kubelet's CreateContainerConfigError when an env
/// source (ConfigMap or Secret, not optional) does not exist.
fn missing_env_source(container: &Value, namespace: &str, ctx: &RunContext) -> Option<String> {
    let refs = list(container, "env")
        .iter()
        .filter_map(|e| e.get("valueFrom"))
        .flat_map(|v| {
            [
                ("configmap", v.get("configMapKeyRef")),
                ("secret", v.get("secretKeyRef")),
            ]
        })
        .chain(list(container, "envFrom").iter().flat_map(|e| {
            [
                ("configmap", e.get("configMapRef")),
                ("secret", e.get("secretRef")),
            ]
        }));
    for (kind, source) in refs {
        let Some(source) = source.filter(|s| s.is_object()) else {
            continue;
        };
        if optional(source) {
            continue;
        }
        let name = str_at(source, "/name");
        let exists = match kind {
            "configmap" => (ctx.config_map_exists)(namespace, name),
            _ => (ctx.secret_exists)(namespace, name),
        };
        if !exists {
            return Some(format!("{kind} \"{name}\" not found"));
        }
    }
    None
}

/// Whether every ConfigMap and Secret the pod's volumes need exists: the
/// kubelet does not create the sandbox until they are mounted.
fn volumes_mountable(pod: &Value, namespace: &str, ctx: &RunContext) -> bool {
    let config_map =
        |s: &Value| optional(s) || (ctx.config_map_exists)(namespace, str_at(s, "/name"));
    let secret =
        |s: &Value, key: &str| optional(s) || (ctx.secret_exists)(namespace, str_at(s, key));
    list(pod.get("spec").unwrap_or(&Value::Null), "volumes")
        .iter()
        .all(|v| {
            let projected = list(v.get("projected").unwrap_or(&Value::Null), "sources");
            v.get("configMap")
                .filter(|s| s.is_object())
                .is_none_or(config_map)
                && v.get("secret")
                    .filter(|s| s.is_object())
                    .is_none_or(|s| secret(s, "/secretName"))
                && projected.iter().all(|p| {
                    p.get("configMap")
                        .filter(|s| s.is_object())
                        .is_none_or(config_map)
                        && p.get("secret")
                            .filter(|s| s.is_object())
                            .is_none_or(|s| secret(s, "/name"))
                })
        })
}

fn optional(source: &Value) -> bool {
    source.get("optional").and_then(Value::as_bool) == Some(true)
}

// ---------------------------------------------------------------------------
// What a container runs.

/// The part of a container's process the model cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Program {
    /// Exits at once, before binding anything (the probe with bad flags).
    BadArgs { error: String },
    /// Binds `ports`, then runs forever or exits with `exits_with`.
    Serve {
        ports: Vec<PortKey>,
        exits_with: Option<i32>,
        /// Its start and exit lines, for FallbackToLogsOnError.
        log_name: String,
    },
}

impl Program {
    fn of(container: &Value, kind: Kind, env: &BTreeMap<String, String>) -> Program {
        if !is_probe_image(str_at(container, "/image")) {
            return match kind {
                Kind::Init => Program::Serve {
                    ports: Vec::new(),
                    exits_with: Some(0),
                    log_name: String::new(),
                },
                Kind::Sidecar | Kind::App => Program::Serve {
                    ports: declared_ports(container),
                    exits_with: None,
                    log_name: String::new(),
                },
            };
        }
        match ProbeArgs::parse(&probe_argv(container, env)) {
            Ok(args) => Program::Serve {
                ports: args
                    .listen
                    .iter()
                    .map(|p| (*p, "TCP".to_string()))
                    .collect(),
                exits_with: args.exit_after_ms.map(|_| args.exit_code),
                log_name: args.name.unwrap_or_else(|| "unnamed".to_string()),
            },
            Err(error) => Program::BadArgs { error },
        }
    }
}

/// The probe's arguments: the command after the program path, then args,
/// each `$(VAR)`-expanded against the container's environment.
fn probe_argv(container: &Value, env: &BTreeMap<String, String>) -> Vec<String> {
    let words = |key: &str| {
        list(container, key)
            .iter()
            .map(|w| match w {
                Value::String(s) => expand(s, env),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
    };
    let mut argv: Vec<String> = words("command").into_iter().skip(1).collect();
    argv.extend(words("args"));
    argv
}

/// A container's declared ports: what a non-probe image is taken to bind.
fn declared_ports(container: &Value) -> Vec<PortKey> {
    let mut ports = Vec::new();
    for p in list(container, "ports") {
        let Some(port) = p.get("containerPort").and_then(Value::as_u64) else {
            continue;
        };
        let Some(port) = u16::try_from(port).ok().filter(|p| *p != 0) else {
            continue;
        };
        let key = (port, str_or(p, "/protocol", "TCP").to_string());
        if !ports.contains(&key) {
            ports.push(key);
        }
    }
    ports
}

// ---------------------------------------------------------------------------
// The network namespace.

/// Listening sockets in one network namespace, with their owners.
struct Netns {
    ports: BTreeMap<PortKey, String>,
}

impl Netns {
    /// Binds all of `ports` for `owner`, or none: the first taken port (in
    /// order) is the one the process would have failed on.
    fn bind(&mut self, ports: &[PortKey], owner: &str) -> Result<(), u16> {
        if let Some((port, _)) = ports.iter().find(|k| self.ports.contains_key(*k)) {
            return Err(*port);
        }
        for key in ports {
            self.ports.insert(key.clone(), owner.to_string());
        }
        Ok(())
    }

    fn release(&mut self, owner: &str) {
        self.ports.retain(|_, o| o != owner);
    }

    fn listening(&self, port: u16) -> bool {
        self.ports.contains_key(&(port, "TCP".to_string()))
    }
}

// ---------------------------------------------------------------------------
// One container.

/// Where a container sits in the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A regular init container: runs to completion, one at a time.
    Init,
    /// An init container with `restartPolicy: Always`: started in init
    /// order, then runs next to the app.
    Sidecar,
    /// A regular container.
    App,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exit {
    code: i32,
    /// The termination message, as the kubelet would report it.
    message: Option<String>,
}

impl Exit {
    fn reason(&self) -> &'static str {
        if self.code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

/// A container's settled state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Never started.
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running,
    /// Exited and will not be restarted.
    Terminated(Exit),
    /// Exited and being restarted with back-off (CrashLoopBackOff).
    CrashLoop(Exit),
}

/// One container and where it got to.
#[derive(Debug, Clone)]
struct Ctr<'p> {
    spec: &'p Value,
    name: String,
    kind: Kind,
    state: State,
    /// An exit the program will make on its own, after binding its ports.
    pending_exit: Option<Exit>,
    started: bool,
    ready: bool,
}

impl<'p> Ctr<'p> {
    fn new(spec: &'p Value, kind: Kind, waiting_reason: &str) -> Ctr<'p> {
        Ctr {
            spec,
            name: str_at(spec, "/name").to_string(),
            kind,
            state: State::Waiting {
                reason: waiting_reason.to_string(),
                message: None,
            },
            pending_exit: None,
            started: false,
            ready: false,
        }
    }

    fn running(&self) -> bool {
        self.state == State::Running
    }

    /// Whether a process of this container ever ran (it has an ID then).
    fn ever_ran(&self) -> bool {
        !matches!(self.state, State::Waiting { .. })
    }

    fn restart_count(&self) -> i64 {
        i64::from(matches!(self.state, State::CrashLoop(_)))
    }

    /// Whether the kubelet restarts this container after `code`: sidecars
    /// always, init containers until they succeed (unless the pod says
    /// Never), app containers per the pod's restartPolicy.
    fn restarts_after(&self, code: i32, policy: RestartPolicy) -> bool {
        match (self.kind, policy) {
            (Kind::Sidecar, _) => true,
            (_, RestartPolicy::Never) => false,
            (Kind::Init, _) | (Kind::App, RestartPolicy::OnFailure) => code != 0,
            (Kind::App, RestartPolicy::Always) => true,
        }
    }

    /// The termination message the kubelet reports: the termination log if
    /// the program wrote it (probe writes only the default path), else with
    /// FallbackToLogsOnError the log tail of a failed container.
    fn termination_message(&self, file: Option<&str>, logs: &str, code: i32) -> Option<String> {
        let path = str_or(self.spec, "/terminationMessagePath", TERMINATION_LOG);
        if let Some(text) = file.filter(|t| !t.is_empty() && path == TERMINATION_LOG) {
            return Some(text.to_string());
        }
        let fallback = str_at(self.spec, "/terminationMessagePolicy") == "FallbackToLogsOnError";
        (fallback && code != 0 && !logs.is_empty()).then(|| logs.to_string())
    }
}

// ---------------------------------------------------------------------------
// The pod's run.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// What `run_pod` reads from the pod once.
struct PodInfo<'p> {
    pod: &'p Value,
    name: &'p str,
    namespace: &'p str,
    uid: &'p str,
    restart_policy: RestartPolicy,
    host_network: bool,
    facts: Facts,
}

impl<'p> PodInfo<'p> {
    fn read(pod: &'p Value, node: &Node, ctx: &RunContext) -> PodInfo<'p> {
        let host_network = pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true);
        let restart_policy = match str_at(pod, "/spec/restartPolicy") {
            "Never" => RestartPolicy::Never,
            "OnFailure" => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        };
        let node_name = match str_at(pod, "/spec/nodeName") {
            "" => node.name.clone(),
            n => n.to_string(),
        };
        PodInfo {
            pod,
            name: str_at(pod, "/metadata/name"),
            namespace: str_or(pod, "/metadata/namespace", "default"),
            uid: str_at(pod, "/metadata/uid"),
            restart_policy,
            host_network,
            facts: Facts {
                pod_ip: if host_network {
                    node.ip.clone()
                } else {
                    ctx.pod_ip.clone()
                },
                host_ip: node.ip.clone(),
                node_name,
            },
        }
    }

    /// The pod as the kubelet's messages name it: `name_namespace(uid)`.
    fn label(&self) -> String {
        format!("{}_{}({})", self.name, self.namespace, self.uid)
    }

    fn owner(&self, container: &str) -> String {
        format!("{}/{}/{}", self.namespace, self.name, container)
    }
}

/// How far the kubelet got with the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Volumes could not be mounted: no sandbox, nothing started.
    NoSandbox,
    /// An init container (or a sidecar's start) holds the pod back.
    Initializing,
    /// A regular init container failed under restartPolicy Never.
    InitFailed,
    /// Init is done and the app containers were started.
    Started,
}

/// All containers of the pod and how far the pod got.
struct PodRun<'p> {
    inits: Vec<Ctr<'p>>,
    apps: Vec<Ctr<'p>>,
    progress: Progress,
}

impl<'p> PodRun<'p> {
    fn new(info: &PodInfo<'p>) -> PodRun<'p> {
        let spec = info.pod.get("spec").unwrap_or(&Value::Null);
        let init_specs = list(spec, "initContainers");
        // Before a container starts the kubelet reports it waiting with
        // this reason (PodInitializing while the pod has init containers).
        let reason = if init_specs.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let inits = init_specs
            .iter()
            .map(|c| {
                let kind = if str_at(c, "/restartPolicy") == "Always" {
                    Kind::Sidecar
                } else {
                    Kind::Init
                };
                Ctr::new(c, kind, reason)
            })
            .collect();
        let apps = list(spec, "containers")
            .iter()
            .map(|c| Ctr::new(c, Kind::App, reason))
            .collect();
        PodRun {
            inits,
            apps,
            progress: Progress::NoSandbox,
        }
    }
}

/// The kubelet and runtime at work on one pod.
struct Runtime<'a, 'p> {
    info: &'a PodInfo<'p>,
    ctx: &'a RunContext<'a>,
    netns: Netns,
}

impl Runtime<'_, '_> {
    /// Init containers in order, each waited for; then every app container,
    /// in spec order (which decides who gets a contested port); then the
    /// app containers that exit on their own do so.
    fn run(&mut self, pod: &mut PodRun) -> Progress {
        for c in &mut pod.inits {
            self.launch(c);
            let go_on = match c.kind {
                // The kubelet moves on once a sidecar has started; one that
                // later exits on its own crash-loops next to the app.
                Kind::Sidecar => {
                    let up = c.running() && self.probe_passes(c, "startupProbe");
                    if let Some(exit) = c.pending_exit.take() {
                        self.exit(c, exit);
                    }
                    c.started = up;
                    up
                }
                Kind::Init | Kind::App => {
                    if let Some(exit) = c.pending_exit.take() {
                        self.exit(c, exit);
                    }
                    match &c.state {
                        State::Terminated(e) if e.code == 0 => true,
                        State::Terminated(_) => return Progress::InitFailed,
                        _ => false,
                    }
                }
            };
            if !go_on {
                return Progress::Initializing;
            }
        }
        for c in &mut pod.apps {
            self.launch(c);
        }
        for c in &mut pod.apps {
            if let Some(exit) = c.pending_exit.take() {
                self.exit(c, exit);
            }
        }
        Progress::Started
    }

    /// Starts one container: it either cannot be created, fails at once
    /// (bad flags, port taken), or runs with its ports bound.
    fn launch(&mut self, c: &mut Ctr) {
        if let Some(message) = missing_env_source(c.spec, self.info.namespace, self.ctx) {
            c.state = State::Waiting {
                reason: "CreateContainerConfigError".to_string(),
                message: Some(message),
            };
            return;
        }
        let env = env_with(c.spec, self.info.pod, &self.info.facts);
        match Program::of(c.spec, c.kind, &env) {
            Program::BadArgs { error } => {
                let logs = format!("probe: {error}\n");
                let message = c.termination_message(None, &logs, 2);
                self.exit(c, Exit { code: 2, message });
            }
            Program::Serve {
                ports,
                exits_with,
                log_name,
            } => match self.netns.bind(&ports, &self.info.owner(&c.name)) {
                Err(port) => {
                    let text = bind_error(port);
                    let message = c.termination_message(Some(&text), &format!("{text}\n"), 1);
                    self.exit(c, Exit { code: 1, message });
                }
                Ok(()) => {
                    c.state = State::Running;
                    c.pending_exit = exits_with.map(|code| {
                        let listed: Vec<String> = ports.iter().map(|(p, _)| p.to_string()).collect();
                        let listed = if listed.is_empty() {
                            "nothing".to_string()
                        } else {
                            listed.join(",")
                        };
                        let logs = format!(
                            "probe {log_name}: listening on {listed}\nprobe {log_name}: exiting with code {code}\n"
                        );
                        Exit {
                            code,
                            message: c.termination_message(None, &logs, code),
                        }
                    });
                }
            },
        }
    }

    /// The process ended: its ports close, and the kubelet restarts it or not.
    fn exit(&mut self, c: &mut Ctr, exit: Exit) {
        self.netns.release(&self.info.owner(&c.name));
        c.state = if c.restarts_after(exit.code, self.info.restart_policy) {
            State::CrashLoop(exit)
        } else {
            State::Terminated(exit)
        };
    }

    /// The kubelet stops a container of a finished pod; probe (and, the model
    /// assumes, any image) exits 0 on SIGTERM.
    fn stop(&mut self, c: &mut Ctr) {
        self.netns.release(&self.info.owner(&c.name));
        c.state = match std::mem::replace(&mut c.state, State::Running) {
            State::Running => State::Terminated(Exit {
                code: 0,
                message: None,
            }),
            State::CrashLoop(last) => State::Terminated(last),
            other => other,
        };
    }

    /// After the run: a finished pod has its sidecars stopped, then every
    /// container gets its started and ready flags.
    fn settle(&mut self, pod: &mut PodRun) {
        let apps_done = !pod.apps.is_empty()
            && pod
                .apps
                .iter()
                .all(|c| matches!(c.state, State::Terminated(_)));
        let terminal = pod.progress == Progress::InitFailed
            || (pod.progress == Progress::Started
                && apps_done
                && self.info.restart_policy != RestartPolicy::Always);
        if terminal {
            for c in pod.inits.iter_mut().filter(|c| c.kind == Kind::Sidecar) {
                self.stop(c);
            }
        }
        for c in pod.inits.iter_mut().chain(pod.apps.iter_mut()) {
            let (started, ready) = match (c.kind, &c.state) {
                (Kind::Init, State::Running) => (true, false),
                (Kind::Init, State::Terminated(e)) => (false, e.code == 0),
                // A sidecar's start was judged when the kubelet waited on it.
                (Kind::Sidecar, State::Running) => (
                    c.started,
                    c.started && self.probe_passes(c, "readinessProbe"),
                ),
                (Kind::App, State::Running) => {
                    let started = self.probe_passes(c, "startupProbe");
                    (started, started && self.probe_passes(c, "readinessProbe"))
                }
                _ => (false, false),
            };
            c.started = started;
            c.ready = ready;
        }
    }

    /// Whether a container's probe of this kind succeeds now: no probe and
    /// exec probes pass; httpGet, tcpSocket and grpc pass when something
    /// running listens on the (numeric or named) port in the namespace.
    fn probe_passes(&self, c: &Ctr, kind: &str) -> bool {
        let Some(probe) = c.spec.get(kind).filter(|p| p.is_object()) else {
            return true;
        };
        let Some(handler) = ["httpGet", "tcpSocket", "grpc"]
            .iter()
            .find_map(|h| probe.get(*h).filter(|v| v.is_object()))
        else {
            return true;
        };
        probe_port(c.spec, handler).is_some_and(|port| self.netns.listening(port))
    }
}

/// The port a probe handler targets: a number, or the name of one of the
/// container's own ports.
fn probe_port(container: &Value, handler: &Value) -> Option<u16> {
    match handler.get("port")? {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(name) => list(container, "ports")
            .iter()
            .find(|p| str_at(p, "/name") == name)
            .and_then(|p| p.get("containerPort")?.as_u64())
            .and_then(|p| u16::try_from(p).ok()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Phase and conditions.

/// The pod phase, by the kubelet's rules: Pending until init is done and
/// every app container has been started; then Running while anything runs
/// or restarts; Succeeded or Failed once all app containers have exited for
/// good.
fn phase(pod: &PodRun, policy: RestartPolicy) -> &'static str {
    match pod.progress {
        Progress::NoSandbox | Progress::Initializing => return "Pending",
        Progress::InitFailed => return "Failed",
        Progress::Started => {}
    }
    let sidecars_running = pod
        .inits
        .iter()
        .filter(|c| c.kind == Kind::Sidecar && c.running())
        .count();
    let mut running = sidecars_running;
    let (mut waiting, mut stopped, mut succeeded) = (0, 0, 0);
    for c in &pod.apps {
        match &c.state {
            State::Running => running += 1,
            State::Waiting { .. } => waiting += 1,
            State::CrashLoop(_) => stopped += 1,
            State::Terminated(e) => {
                stopped += 1;
                succeeded += usize::from(e.code == 0);
            }
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped == 0 {
        "Pending"
    } else if policy == RestartPolicy::Always {
        "Running"
    } else if stopped == succeeded {
        "Succeeded"
    } else if policy == RestartPolicy::Never {
        "Failed"
    } else {
        "Running"
    }
}

/// The five conditions the kubelet maintains, in the order it lists them.
fn conditions(info: &PodInfo, pod: &PodRun, phase: &str) -> Vec<Value> {
    let generation = info
        .pod
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let condition = |kind: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let mut c = Map::new();
        c.insert("type".into(), kind.into());
        if let Some(g) = generation {
            c.insert("observedGeneration".into(), g.into());
        }
        c.insert("status".into(), if ok { "True" } else { "False" }.into());
        c.insert("lastProbeTime".into(), Value::Null);
        c.insert("lastTransitionTime".into(), TIMESTAMP.into());
        if let Some(r) = reason {
            c.insert("reason".into(), r.into());
        }
        if let Some(m) = message {
            c.insert("message".into(), m.into());
        }
        Value::Object(c)
    };
    let terminal_reason = match phase {
        "Succeeded" => Some("PodCompleted"),
        "Failed" => Some("PodFailed"),
        _ => None,
    };

    let sandbox = pod.progress != Progress::NoSandbox && terminal_reason.is_none();

    let app_started = pod
        .apps
        .iter()
        .any(|c| matches!(c.state, State::Running | State::Terminated(_)));
    let incomplete: Vec<&str> = pod
        .inits
        .iter()
        .filter(|c| match c.kind {
            Kind::Sidecar => !c.started,
            _ => !c.ready,
        })
        .map(|c| c.name.as_str())
        .collect();
    let initialized = if phase == "Succeeded" {
        condition("Initialized", true, Some("PodCompleted"), None)
    } else if pod.inits.is_empty() || app_started || incomplete.is_empty() {
        condition("Initialized", true, None, None)
    } else {
        let message = format!(
            "containers with incomplete status: [{}]",
            incomplete.join(" ")
        );
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(message),
        )
    };

    let unready: Vec<&str> = pod
        .inits
        .iter()
        .filter(|c| c.kind == Kind::Sidecar)
        .chain(&pod.apps)
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let (containers_ready, ready) = if let Some(reason) = terminal_reason {
        (
            condition("ContainersReady", false, Some(reason), None),
            condition("Ready", false, Some(reason), None),
        )
    } else if !unready.is_empty() {
        let message = format!("containers with unready status: [{}]", unready.join(" "));
        (
            condition(
                "ContainersReady",
                false,
                Some("ContainersNotReady"),
                Some(message.clone()),
            ),
            condition("Ready", false, Some("ContainersNotReady"), Some(message)),
        )
    } else {
        let gates = unmet_readiness_gates(info.pod);
        let ready = if gates.is_empty() {
            condition("Ready", true, None, None)
        } else {
            condition(
                "Ready",
                false,
                Some("ReadinessGatesNotReady"),
                Some(gates.join(", ")),
            )
        };
        (condition("ContainersReady", true, None, None), ready)
    };

    vec![
        condition("PodReadyToStartContainers", sandbox, None, None),
        initialized,
        ready,
        containers_ready,
        condition("PodScheduled", true, None, None),
    ]
}

/// Readiness gates whose condition (set by some controller, so read from the
/// pod's current status) is missing or not True, in the kubelet's words.
fn unmet_readiness_gates(pod: &Value) -> Vec<String> {
    let current = pod.pointer("/status/conditions").and_then(Value::as_array);
    let gates = pod
        .pointer("/spec/readinessGates")
        .and_then(Value::as_array);
    gates
        .into_iter()
        .flatten()
        .filter_map(|g| {
            let kind = str_at(g, "/conditionType");
            let found = current
                .into_iter()
                .flatten()
                .find(|c| str_at(c, "/type") == kind);
            match found.map(|c| str_at(c, "/status")) {
                None => Some(format!(
                    "corresponding condition of pod readiness gate \"{kind}\" does not exist."
                )),
                Some("True") => None,
                Some(status) => Some(format!(
                    "the status of pod readiness gate \"{kind}\" is not \"True\", but {status}"
                )),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Rendering.

fn render_status(info: &PodInfo, pod: &PodRun) -> Value {
    let phase = phase(pod, info.restart_policy);
    let mut s = Map::new();
    if let Some(g) = info
        .pod
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
    {
        s.insert("observedGeneration".into(), g.into());
    }
    s.insert("phase".into(), phase.into());
    s.insert("conditions".into(), conditions(info, pod, phase).into());
    s.insert("hostIP".into(), info.facts.host_ip.clone().into());
    s.insert("hostIPs".into(), json!([{"ip": info.facts.host_ip}]));
    // The pod gets its IP with its sandbox.
    if pod.progress != Progress::NoSandbox {
        s.insert("podIP".into(), info.facts.pod_ip.clone().into());
        s.insert("podIPs".into(), json!([{"ip": info.facts.pod_ip}]));
    }
    s.insert("startTime".into(), TIMESTAMP.into());
    let label = info.label();
    if !pod.inits.is_empty() {
        let statuses: Vec<Value> = pod
            .inits
            .iter()
            .map(|c| container_status(c, &label))
            .collect();
        s.insert("initContainerStatuses".into(), statuses.into());
    }
    if !pod.apps.is_empty() {
        let statuses: Vec<Value> = pod
            .apps
            .iter()
            .map(|c| container_status(c, &label))
            .collect();
        s.insert("containerStatuses".into(), statuses.into());
    }
    s.insert("qosClass".into(), qos_class(info.pod).into());
    Value::Object(s)
}

fn container_id(c: &Ctr) -> String {
    format!("containerd://{}", c.name)
}

/// A ContainerStatus, fields in the API's order.
fn container_status(c: &Ctr, pod_label: &str) -> Value {
    let image = str_at(c.spec, "/image");
    let terminated = |e: &Exit| {
        let mut t = Map::new();
        t.insert("exitCode".into(), e.code.into());
        t.insert("reason".into(), e.reason().into());
        if let Some(m) = &e.message {
            t.insert("message".into(), m.clone().into());
        }
        t.insert("startedAt".into(), TIMESTAMP.into());
        t.insert("finishedAt".into(), TIMESTAMP.into());
        t.insert("containerID".into(), container_id(c).into());
        json!({ "terminated": t })
    };
    let state = match &c.state {
        State::Waiting { reason, message } => {
            let mut w = Map::new();
            w.insert("reason".into(), reason.clone().into());
            if let Some(m) = message {
                w.insert("message".into(), m.clone().into());
            }
            json!({ "waiting": w })
        }
        State::Running => json!({"running": {"startedAt": TIMESTAMP}}),
        State::Terminated(e) => terminated(e),
        State::CrashLoop(_) => json!({"waiting": {
            "reason": "CrashLoopBackOff",
            "message": format!("back-off 10s restarting failed container={} pod={pod_label}", c.name),
        }}),
    };
    let last_state = match &c.state {
        State::CrashLoop(e) => terminated(e),
        _ => json!({}),
    };
    let mut s = Map::new();
    s.insert("name".into(), c.name.clone().into());
    s.insert("state".into(), state);
    s.insert("lastState".into(), last_state);
    s.insert("ready".into(), c.ready.into());
    s.insert("restartCount".into(), c.restart_count().into());
    s.insert("image".into(), image.into());
    let image_id = if c.ever_ran() {
        image_id(image)
    } else {
        String::new()
    };
    s.insert("imageID".into(), image_id.into());
    if c.ever_ran() {
        s.insert("containerID".into(), container_id(c).into());
    }
    s.insert("started".into(), c.started.into());
    let mounts = volume_mount_statuses(c.spec);
    if !mounts.is_empty() {
        s.insert("volumeMounts".into(), mounts.into());
    }
    Value::Object(s)
}

/// A placeholder digest reference for a pulled image.
fn image_id(image: &str) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    // Drop a tag (a colon after the last slash; an earlier one is a
    // registry port).
    let repo = match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    };
    format!("{repo}@sha256:{}", "0".repeat(64))
}

/// The kubelet reports each mount back, with how read-only it ended up.
fn volume_mount_statuses(container: &Value) -> Vec<Value> {
    list(container, "volumeMounts")
        .iter()
        .map(|m| {
            let mut s = Map::new();
            s.insert("name".into(), str_at(m, "/name").into());
            s.insert("mountPath".into(), str_at(m, "/mountPath").into());
            if m.get("readOnly").and_then(Value::as_bool) == Some(true) {
                s.insert("readOnly".into(), true.into());
                let recursive = match str_at(m, "/recursiveReadOnly") {
                    "Enabled" | "IfPossible" => "Enabled",
                    _ => "Disabled",
                };
                s.insert("recursiveReadOnly".into(), recursive.into());
            }
            Value::Object(s)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// QoS class.

/// The pod's QoS class, computed from cpu and memory requests and limits
/// like Kubernetes does: nothing set is BestEffort; cpu and memory limits on
/// every container with requests equal to them (a missing request defaults
/// to the limit) is Guaranteed; anything else Burstable. Pod-level
/// `spec.resources`, when set, decides instead of the containers.
pub fn qos_class(pod: &Value) -> &'static str {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let pod_level = spec
        .get("resources")
        .filter(|r| !compute(r, "requests").is_empty() || !compute(r, "limits").is_empty());
    let resources: Vec<&Value> = match pod_level {
        Some(r) => vec![r],
        None => list(spec, "initContainers")
            .iter()
            .chain(list(spec, "containers"))
            .map(|c| c.get("resources").unwrap_or(&Value::Null))
            .collect(),
    };
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for r in resources {
        let own_limits = compute(r, "limits");
        let mut own_requests = compute(r, "requests");
        for (name, value) in &own_limits {
            own_requests.entry(*name).or_insert(*value);
        }
        for (name, value) in own_requests {
            *requests.entry(name).or_default() += value;
        }
        if own_limits.len() < 2 {
            guaranteed = false;
        }
        for (name, value) in own_limits {
            *limits.entry(name).or_default() += value;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        "BestEffort"
    } else if guaranteed && requests == limits {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The non-zero cpu and memory quantities of `resources[field]`, in
/// nano-units.
fn compute<'a>(resources: &'a Value, field: &str) -> BTreeMap<&'a str, i128> {
    let mut out = BTreeMap::new();
    if let Some(map) = resources.get(field).and_then(Value::as_object) {
        for (name, q) in map {
            if name != "cpu" && name != "memory" {
                continue;
            }
            let value = match q {
                Value::String(s) => parse_quantity(s),
                Value::Number(n) => parse_quantity(&n.to_string()),
                _ => None,
            };
            if let Some(v) = value.filter(|v| *v != 0) {
                out.insert(name.as_str(), v);
            }
        }
    }
    out
}

/// A Kubernetes quantity (`100m`, `1.5`, `128Mi`, `1e3`) in nano-units, or
/// None when it does not parse (or overflows).
fn parse_quantity(text: &str) -> Option<i128> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (negative, number) = match number.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole
        .chars()
        .chain(fraction.chars())
        .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // The digits as an integer, and the power of ten they are scaled by.
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let mut exp10 = 9 - i32::try_from(fraction.len()).ok()?;
    let mut factor: i128 = 1;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => factor = 1 << 10,
        "Mi" => factor = 1 << 20,
        "Gi" => factor = 1 << 30,
        "Ti" => factor = 1 << 40,
        "Pi" => factor = 1 << 50,
        "Ei" => factor = 1 << 60,
        s => exp10 = exp10.checked_add(s.strip_prefix(['e', 'E'])?.parse::<i32>().ok()?)?,
    }
    let mut value = digits.checked_mul(factor)?;
    if exp10 >= 0 {
        value = value.checked_mul(10i128.checked_pow(u32::try_from(exp10).ok()?)?)?;
    } else {
        value /= 10i128
            .checked_pow(exp10.unsigned_abs())
            .unwrap_or(i128::MAX);
    }
    Some(if negative { -value } else { value })
}

// ---------------------------------------------------------------------------
// JSON helpers: absent or wrongly typed reads as empty.

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn str_or<'a>(v: &'a Value, pointer: &str, default: &'a str) -> &'a str {
    match str_at(v, pointer) {
        "" => default,
        s => s,
    }
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::PROBE_IMAGE;
    use crate::status::{format_line, pod_line};

    const NODE_IP: &str = "172.18.0.2";
    const POD_IP: &str = "10.244.0.7";

    fn probe(name: &str, args: &[&str]) -> Value {
        json!({"name": name, "image": PROBE_IMAGE, "args": args})
    }

    fn pod_named(name: &str, spec: Value) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "default", "uid": "uid-1", "generation": 1,
                         "labels": {"app": "backend"}},
            "spec": spec,
        })
    }

    fn pod(spec: Value) -> Value {
        pod_named("backend-5d8f-abcde", spec)
    }

    fn run_on(pod: &Value, node: &mut Node, objects: &[&str]) -> Value {
        let exists = |_: &str, name: &str| objects.contains(&name);
        let ctx = RunContext {
            config_map_exists: &exists,
            secret_exists: &exists,
            pod_ip: POD_IP.to_string(),
        };
        run_pod(pod, node, &ctx)
    }

    fn run(pod: &Value) -> Value {
        run_on(pod, &mut Node::new("kind-worker", NODE_IP), &[])
    }

    fn container<'a>(status: &'a Value, list: &str, name: &str) -> &'a Value {
        status[list]
            .as_array()
            .and_then(|l| l.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("no {list} entry {name} in {status:#}"))
    }

    fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .and_then(|l| l.iter().find(|c| c["type"] == kind))
            .unwrap_or_else(|| panic!("no condition {kind}"))
    }

    /// What `kubectl get pods` would print for the pod with this status.
    fn line(pod: &Value, status: &Value) -> String {
        let mut pod = pod.clone();
        pod["status"] = status.clone();
        format_line(&pod_line(&pod))
    }

    /// The injected envoy, running probe: listens on $(PROXY_PORT).
    fn envoy(proxy_port: &str) -> Value {
        json!({
            "name": "envoy",
            "image": PROBE_IMAGE,
            "args": ["--name", "envoy", "--listen", "$(PROXY_PORT)"],
            "env": [
                {"name": "PROXY_PORT", "value": proxy_port},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "ports": [{"name": "proxy", "containerPort": proxy_port.parse::<u16>().unwrap_or(0),
                       "protocol": "TCP"}],
            "readinessProbe": {"tcpSocket": {"port": proxy_port.parse::<u16>().unwrap_or(0)},
                               "periodSeconds": 5},
        })
    }

    // --- the port clash -----------------------------------------------------

    #[test]
    fn sidecar_on_the_apps_port_crash_loops() {
        let pod = pod(json!({"containers": [
            probe("backend", &["--listen", "10000"]),
            envoy("10000"),
        ]}));
        let status = run(&pod);
        assert_eq!(status["phase"], "Running");
        let backend = container(&status, "containerStatuses", "backend");
        assert_eq!(backend["ready"], true);
        assert_eq!(
            backend["state"],
            json!({"running": {"startedAt": TIMESTAMP}})
        );
        assert_eq!(
            container(&status, "containerStatuses", "envoy"),
            &json!({
                "name": "envoy",
                "state": {"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 10s restarting failed container=envoy pod=backend-5d8f-abcde_default(uid-1)",
                }},
                "lastState": {"terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "message": "cannot bind '0.0.0.0:10000': Address already in use",
                    "startedAt": TIMESTAMP,
                    "finishedAt": TIMESTAMP,
                    "containerID": "containerd://envoy",
                }},
                "ready": false,
                "restartCount": 1,
                "image": PROBE_IMAGE,
                "imageID": format!("injector-harness/probe@sha256:{}", "0".repeat(64)),
                "containerID": "containerd://envoy",
                "started": false,
            })
        );
        let ready = condition(&status, "Ready");
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "ContainersNotReady");
        assert_eq!(ready["message"], "containers with unready status: [envoy]");
        assert_eq!(
            line(&pod, &status),
            "backend-5d8f-abcde 1/2 CrashLoopBackOff"
        );
    }

    #[test]
    fn remapped_sidecar_is_ready_next_to_the_app() {
        let pod = pod(json!({"containers": [
            probe("backend", &["--listen", "10000"]),
            envoy("10001"),
        ]}));
        let status = run(&pod);
        assert_eq!(status["phase"], "Running");
        assert_eq!(
            container(&status, "containerStatuses", "envoy")["ready"],
            true
        );
        assert_eq!(condition(&status, "Ready")["status"], "True");
        assert_eq!(condition(&status, "ContainersReady")["status"], "True");
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 2/2 Running");
    }

    #[test]
    fn expanded_args_decide_the_bound_port_not_the_declared_one() {
        // Declares 10000 but PROXY_PORT says 10001: the process binds 10001.
        let mut sidecar = envoy("10000");
        sidecar["env"][0]["value"] = json!("10001");
        sidecar["readinessProbe"]["tcpSocket"]["port"] = json!(10001);
        let pod = pod(json!({"containers": [probe("backend", &["--listen", "10000"]), sidecar]}));
        let status = run(&pod);
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 2/2 Running");
    }

    #[test]
    fn variables_chain_and_escape() {
        let c = json!({
            "name": "envoy", "image": PROBE_IMAGE,
            "command": ["/probe", "--listen", "$(PORT)"],
            "args": ["--name", "$$(PORT)"],
            "env": [{"name": "BASE", "value": "100"}, {"name": "PORT", "value": "$(BASE)01"}],
        });
        let status = run(&pod(
            json!({"containers": [probe("a", &["--listen", "10001"]), c]}),
        ));
        // PORT = 10001, which `a` holds; the name stays the literal "$(PORT)".
        let envoy = container(&status, "containerStatuses", "envoy");
        assert_eq!(
            envoy["lastState"]["terminated"]["message"],
            bind_error(10001)
        );
    }

    #[test]
    fn bad_probe_flags_exit_2_without_a_message() {
        let c = probe("app", &["--listen", "$(UNSET)"]);
        let status = run(&pod(json!({"restartPolicy": "Never", "containers": [c]})));
        let app = container(&status, "containerStatuses", "app");
        assert_eq!(
            app["state"]["terminated"],
            json!({"exitCode": 2, "reason": "Error", "startedAt": TIMESTAMP,
                   "finishedAt": TIMESTAMP, "containerID": "containerd://app"})
        );
        assert_eq!(status["phase"], "Failed");
    }

    #[test]
    fn non_probe_images_bind_their_declared_ports() {
        let app = json!({"name": "app", "image": "nginx:1.27",
                         "ports": [{"containerPort": 10000}]});
        let proxy = json!({"name": "envoy", "image": "envoyproxy/envoy:v1.32-latest",
                           "ports": [{"containerPort": 10000, "protocol": "TCP"}]});
        let status = run(&pod(json!({"containers": [app, proxy]})));
        let envoy = container(&status, "containerStatuses", "envoy");
        assert_eq!(envoy["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(
            envoy["lastState"]["terminated"]["message"],
            bind_error(10000)
        );
        // A UDP port does not clash with a TCP one.
        let dns = json!({"name": "dns", "image": "coredns", "ports": [{"containerPort": 53, "protocol": "UDP"}]});
        let web = json!({"name": "web", "image": "nginx", "ports": [{"containerPort": 53}]});
        let status = run(&pod(json!({"containers": [dns, web]})));
        assert_eq!(status["phase"], "Running");
        assert_eq!(condition(&status, "Ready")["status"], "True");
    }

    #[test]
    fn host_network_pods_clash_on_the_node() {
        let mut node = Node::new("kind-worker", NODE_IP);
        let spec =
            json!({"hostNetwork": true, "containers": [probe("agent", &["--listen", "9100"])]});
        let first = pod_named("agent-a", spec.clone());
        let second = pod_named("agent-b", spec);

        let status = run_on(&first, &mut node, &[]);
        assert_eq!(status["podIP"], NODE_IP);
        assert_eq!(status["podIPs"], json!([{"ip": NODE_IP}]));
        assert_eq!(line(&first, &status), "agent-a 1/1 Running");
        assert_eq!(
            node.host_ports()
                .get(&(9100, "TCP".to_string()))
                .map(String::as_str),
            Some("default/agent-a/agent")
        );

        let status = run_on(&second, &mut node, &[]);
        assert_eq!(line(&second, &status), "agent-b 0/1 CrashLoopBackOff");
        assert_eq!(
            container(&status, "containerStatuses", "agent")["lastState"]["terminated"]["message"],
            bind_error(9100)
        );

        // Re-running the holder is idempotent; deleting it frees the port.
        let again = run_on(&first, &mut node, &[]);
        assert_eq!(line(&first, &again), "agent-a 1/1 Running");
        node.release_pod("default", "agent-a");
        assert!(node.host_ports().is_empty());
        let status = run_on(&second, &mut node, &[]);
        assert_eq!(line(&second, &status), "agent-b 1/1 Running");

        // Pod networks are separate: the same port in an ordinary pod is fine.
        let ordinary = pod_named(
            "web",
            json!({"containers": [probe("web", &["--listen", "9100"])]}),
        );
        let status = run_on(&ordinary, &mut node, &[]);
        assert_eq!(status["podIP"], POD_IP);
        assert_eq!(line(&ordinary, &status), "web 1/1 Running");
        assert_eq!(node.host_ports().len(), 1);
    }

    // --- init containers and native sidecars --------------------------------

    #[test]
    fn native_sidecar_runs_through_init_and_next_to_the_app() {
        let mut sidecar = envoy("10000");
        sidecar["restartPolicy"] = json!("Always");
        let pod = pod(json!({
            "initContainers": [sidecar, probe("migrate", &["--exit-after-ms", "10"])],
            "containers": [probe("backend", &["--listen", "8080"])],
        }));
        let status = run(&pod);
        assert_eq!(status["phase"], "Running");
        let envoy = container(&status, "initContainerStatuses", "envoy");
        assert_eq!(
            (&envoy["ready"], &envoy["started"]),
            (&json!(true), &json!(true))
        );
        let migrate = container(&status, "initContainerStatuses", "migrate");
        assert_eq!(migrate["state"]["terminated"]["reason"], "Completed");
        assert_eq!(
            (&migrate["ready"], &migrate["started"]),
            (&json!(true), &json!(false))
        );
        assert_eq!(condition(&status, "Initialized")["status"], "True");
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 2/2 Running");
    }

    #[test]
    fn native_sidecar_wins_the_port_over_the_app() {
        let mut sidecar = envoy("10000");
        sidecar["restartPolicy"] = json!("Always");
        let pod = pod(json!({
            "initContainers": [sidecar],
            "containers": [probe("backend", &["--listen", "10000"])],
        }));
        let status = run(&pod);
        assert_eq!(
            line(&pod, &status),
            "backend-5d8f-abcde 1/2 CrashLoopBackOff"
        );
        assert_eq!(
            container(&status, "containerStatuses", "backend")["lastState"]["terminated"]
                ["message"],
            bind_error(10000)
        );
    }

    #[test]
    fn crash_looping_native_sidecar_holds_back_the_pod() {
        let mut first = probe("first", &["--listen", "80"]);
        first["restartPolicy"] = json!("Always");
        let mut second = probe("second", &["--listen", "80"]);
        second["restartPolicy"] = json!("Always");
        let pod = pod(json!({
            "restartPolicy": "Never",
            "initContainers": [first, second, probe("setup", &["--exit-after-ms", "1"])],
            "containers": [probe("app", &[])],
        }));
        let status = run(&pod);
        assert_eq!(status["phase"], "Pending");
        let second = container(&status, "initContainerStatuses", "second");
        // Sidecars restart whatever the pod's policy.
        assert_eq!(second["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(second["restartCount"], 1);
        let setup = container(&status, "initContainerStatuses", "setup");
        assert_eq!(
            setup["state"],
            json!({"waiting": {"reason": "PodInitializing"}})
        );
        assert_eq!(setup["imageID"], "");
        assert!(setup.get("containerID").is_none());
        let app = container(&status, "containerStatuses", "app");
        assert_eq!(app["state"]["waiting"]["reason"], "PodInitializing");
        let initialized = condition(&status, "Initialized");
        assert_eq!(initialized["status"], "False");
        assert_eq!(
            initialized["message"],
            "containers with incomplete status: [second setup]"
        );
        assert_eq!(
            line(&pod, &status),
            "backend-5d8f-abcde 1/3 Init:CrashLoopBackOff"
        );
    }

    #[test]
    fn regular_init_container_that_never_exits_keeps_the_pod_in_init() {
        let pod = pod(json!({
            "initContainers": [probe("wait", &["--listen", "9000"])],
            "containers": [probe("app", &["--listen", "9000"])],
        }));
        let status = run(&pod);
        assert_eq!(status["phase"], "Pending");
        let wait = container(&status, "initContainerStatuses", "wait");
        assert_eq!(wait["state"], json!({"running": {"startedAt": TIMESTAMP}}));
        assert_eq!(
            (&wait["ready"], &wait["started"]),
            (&json!(false), &json!(true))
        );
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 0/1 Init:0/1");
    }

    #[test]
    fn init_container_releases_its_ports_on_exit() {
        let pod = pod(json!({
            "initContainers": [probe("warm", &["--listen", "9000", "--exit-after-ms", "5"])],
            "containers": [probe("app", &["--listen", "9000"])],
        }));
        assert_eq!(line(&pod, &run(&pod)), "backend-5d8f-abcde 1/1 Running");
    }

    #[test]
    fn failing_init_container_by_restart_policy() {
        let spec = |policy: &str| {
            pod(json!({
                "restartPolicy": policy,
                "initContainers": [probe("setup", &["--exit-after-ms", "1", "--exit-code", "4"])],
                "containers": [probe("app", &[])],
            }))
        };
        let retried = spec("OnFailure");
        let status = run(&retried);
        assert_eq!(status["phase"], "Pending");
        let setup = container(&status, "initContainerStatuses", "setup");
        assert_eq!(setup["lastState"]["terminated"]["exitCode"], 4);
        assert_eq!(
            line(&retried, &status),
            "backend-5d8f-abcde 0/1 Init:CrashLoopBackOff"
        );

        let failed = spec("Never");
        let status = run(&failed);
        assert_eq!(status["phase"], "Failed");
        assert_eq!(condition(&status, "Ready")["reason"], "PodFailed");
        assert_eq!(
            condition(&status, "PodReadyToStartContainers")["status"],
            "False"
        );
        assert_eq!(line(&failed, &status), "backend-5d8f-abcde 0/1 Init:Error");
    }

    // --- exits and phases ---------------------------------------------------

    #[test]
    fn job_with_native_sidecar_succeeds_and_stops_the_sidecar() {
        let mut sidecar = envoy("10000");
        sidecar["restartPolicy"] = json!("Always");
        let pod = pod_named(
            "job-x",
            json!({
                "restartPolicy": "Never",
                "initContainers": [sidecar],
                "containers": [probe("job", &["--exit-after-ms", "10"])],
            }),
        );
        let status = run(&pod);
        assert_eq!(status["phase"], "Succeeded");
        let envoy = container(&status, "initContainerStatuses", "envoy");
        assert_eq!(
            envoy["state"],
            json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": TIMESTAMP,
                                  "finishedAt": TIMESTAMP, "containerID": "containerd://envoy"}})
        );
        assert_eq!(
            (&envoy["ready"], &envoy["started"]),
            (&json!(false), &json!(false))
        );
        let job = container(&status, "containerStatuses", "job");
        assert_eq!(job["state"]["terminated"]["reason"], "Completed");
        let initialized = condition(&status, "Initialized");
        assert_eq!(
            (&initialized["status"], &initialized["reason"]),
            (&json!("True"), &json!("PodCompleted"))
        );
        let ready = condition(&status, "Ready");
        assert_eq!(
            (&ready["status"], &ready["reason"]),
            (&json!("False"), &json!("PodCompleted"))
        );
        assert!(ready.get("message").is_none());
        assert_eq!(
            condition(&status, "PodReadyToStartContainers")["status"],
            "False"
        );
        assert_eq!(line(&pod, &status), "job-x 0/2 Completed");
    }

    #[test]
    fn failing_job_fails() {
        let pod = pod_named(
            "job-x",
            json!({
                "restartPolicy": "Never",
                "containers": [probe("job", &["--exit-after-ms", "10", "--exit-code", "3"])],
            }),
        );
        let status = run(&pod);
        assert_eq!(status["phase"], "Failed");
        assert_eq!(
            container(&status, "containerStatuses", "job")["state"]["terminated"]["exitCode"],
            3
        );
        assert_eq!(line(&pod, &status), "job-x 0/1 Error");
    }

    #[test]
    fn exits_under_each_restart_policy() {
        let spec = |policy: &str, code: &str| {
            pod(json!({"restartPolicy": policy, "containers": [
                probe("app", &["--exit-after-ms", "1", "--exit-code", code])]}))
        };
        // Always restarts even a clean exit.
        let status = run(&spec("Always", "0"));
        let app = container(&status, "containerStatuses", "app");
        assert_eq!(app["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(app["lastState"]["terminated"]["reason"], "Completed");
        assert_eq!(status["phase"], "Running");
        // OnFailure: a clean exit is final, a failure restarts.
        assert_eq!(run(&spec("OnFailure", "0"))["phase"], "Succeeded");
        let status = run(&spec("OnFailure", "1"));
        assert_eq!(status["phase"], "Running");
        assert_eq!(
            container(&status, "containerStatuses", "app")["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
        // Never with one container still running: Running.
        let pod = pod(json!({"restartPolicy": "Never", "containers": [
            probe("a", &["--exit-after-ms", "1", "--exit-code", "1"]), probe("b", &[])]}));
        let status = run(&pod);
        assert_eq!(status["phase"], "Running");
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 1/2 Error");
    }

    #[test]
    fn an_exiting_container_holds_its_ports_while_the_others_start() {
        let pod = pod(json!({"containers": [
            probe("a", &["--listen", "80", "--exit-after-ms", "1"]),
            probe("b", &["--listen", "80"]),
        ]}));
        let status = run(&pod);
        let b = container(&status, "containerStatuses", "b");
        assert_eq!(b["lastState"]["terminated"]["message"], bind_error(80));
    }

    // --- volumes and env sources --------------------------------------------

    #[test]
    fn missing_config_map_volume_blocks_the_sandbox() {
        let spec = json!({
            "containers": [probe("backend", &["--listen", "8080"]), envoy("10000")],
            "volumes": [{"name": "envoy-config", "configMap": {"name": "envoy-config", "defaultMode": 420}}],
        });
        let pod = pod(spec);
        let status = run(&pod);
        assert_eq!(status["phase"], "Pending");
        assert!(status.get("podIP").is_none());
        assert_eq!(status["hostIP"], NODE_IP);
        let envoy = container(&status, "containerStatuses", "envoy");
        assert_eq!(
            envoy,
            &json!({"name": "envoy", "state": {"waiting": {"reason": "ContainerCreating"}},
                    "lastState": {}, "ready": false, "restartCount": 0, "image": PROBE_IMAGE,
                    "imageID": "", "started": false})
        );
        assert_eq!(
            condition(&status, "PodReadyToStartContainers")["status"],
            "False"
        );
        assert_eq!(condition(&status, "Initialized")["status"], "True");
        assert_eq!(
            condition(&status, "Ready")["message"],
            "containers with unready status: [backend envoy]"
        );
        assert_eq!(
            line(&pod, &status),
            "backend-5d8f-abcde 0/2 ContainerCreating"
        );

        let status = run_on(&pod, &mut Node::new("n", NODE_IP), &["envoy-config"]);
        assert_eq!(status["phase"], "Running");
    }

    #[test]
    fn volume_sources_checked_like_the_kubelet() {
        let with =
            |volume: Value| pod(json!({"containers": [probe("a", &[])], "volumes": [volume]}));
        let phase = |volume: Value| run(&with(volume))["phase"].clone();
        assert_eq!(
            phase(json!({"name": "v", "configMap": {"name": "x", "optional": true}})),
            "Running"
        );
        assert_eq!(
            phase(json!({"name": "v", "secret": {"secretName": "x"}})),
            "Pending"
        );
        assert_eq!(
            phase(json!({"name": "v", "secret": {"secretName": "x", "optional": true}})),
            "Running"
        );
        assert_eq!(phase(json!({"name": "v", "emptyDir": {}})), "Running");
        assert_eq!(
            phase(json!({"name": "v", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token"}}, {"downwardAPI": {"items": []}}]}})),
            "Running"
        );
        assert_eq!(
            phase(json!({"name": "v", "projected": {"sources": [{"configMap": {"name": "x"}}]}})),
            "Pending"
        );
        assert_eq!(
            phase(json!({"name": "v", "projected": {"sources": [{"secret": {"name": "x"}}]}})),
            "Pending"
        );
        // With init containers the kubelet says PodInitializing instead.
        let pod = pod(
            json!({"initContainers": [probe("i", &[])], "containers": [probe("a", &[])],
                             "volumes": [{"name": "v", "configMap": {"name": "x"}}]}),
        );
        let status = run(&pod);
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 0/1 Init:0/1");
    }

    #[test]
    fn missing_env_source_is_a_config_error() {
        let mut c = probe("app", &[]);
        c["envFrom"] = json!([{"configMapRef": {"name": "settings"}}]);
        let pod = pod(json!({"containers": [c]}));
        let status = run(&pod);
        assert_eq!(
            container(&status, "containerStatuses", "app")["state"],
            json!({"waiting": {"reason": "CreateContainerConfigError",
                               "message": "configmap \"settings\" not found"}})
        );
        assert_eq!(status["phase"], "Pending");
        assert_eq!(
            line(&pod, &status),
            "backend-5d8f-abcde 0/1 CreateContainerConfigError"
        );
        let status = run_on(&pod, &mut Node::new("n", NODE_IP), &["settings"]);
        assert_eq!(status["phase"], "Running");

        let mut c = probe("app", &[]);
        c["env"] =
            json!([{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]);
        let status = run(&pod_named("p", json!({"containers": [c.clone()]})));
        assert_eq!(
            container(&status, "containerStatuses", "app")["state"]["waiting"]["message"],
            "secret \"s\" not found"
        );
        c["env"][0]["valueFrom"]["secretKeyRef"]["optional"] = json!(true);
        assert_eq!(
            run(&pod_named("p", json!({"containers": [c]})))["phase"],
            "Running"
        );
    }

    // --- probes -------------------------------------------------------------

    #[test]
    fn readiness_probe_on_a_port_nobody_binds() {
        let mut app = probe("app", &["--listen", "8080"]);
        app["readinessProbe"] = json!({"httpGet": {"path": "/", "port": 9090}});
        let pod = pod(json!({"containers": [app]}));
        let status = run(&pod);
        let app = container(&status, "containerStatuses", "app");
        assert_eq!(app["state"], json!({"running": {"startedAt": TIMESTAMP}}));
        assert_eq!(
            (&app["ready"], &app["started"]),
            (&json!(false), &json!(true))
        );
        assert_eq!(status["phase"], "Running");
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 0/1 Running");
    }

    #[test]
    fn probes_by_name_exec_and_from_a_neighbour() {
        let mut app = probe("app", &["--listen", "8080"]);
        app["ports"] = json!([{"name": "http", "containerPort": 8080}]);
        app["readinessProbe"] = json!({"httpGet": {"port": "http"}});
        app["startupProbe"] = json!({"exec": {"command": ["true"]}});
        // Probes hit the pod IP: a port bound by another container counts.
        let mut watcher = probe("watcher", &[]);
        watcher["readinessProbe"] = json!({"grpc": {"port": 8080}});
        let mut lost = probe("lost", &[]);
        lost["readinessProbe"] = json!({"tcpSocket": {"port": "nope"}});
        let pod = pod(json!({"containers": [app, watcher, lost]}));
        let status = run(&pod);
        assert_eq!(
            container(&status, "containerStatuses", "app")["ready"],
            true
        );
        assert_eq!(
            container(&status, "containerStatuses", "watcher")["ready"],
            true
        );
        assert_eq!(
            container(&status, "containerStatuses", "lost")["ready"],
            false
        );
    }

    #[test]
    fn startup_probe_gates_started_and_a_sidecars_successors() {
        let mut app = probe("app", &[]);
        app["startupProbe"] = json!({"tcpSocket": {"port": 7000}});
        let status = run(&pod(json!({"containers": [app]})));
        let app = container(&status, "containerStatuses", "app");
        assert_eq!(
            (&app["ready"], &app["started"]),
            (&json!(false), &json!(false))
        );

        let mut sidecar = probe("envoy", &["--listen", "10000"]);
        sidecar["restartPolicy"] = json!("Always");
        sidecar["startupProbe"] = json!({"tcpSocket": {"port": 10001}});
        let pod = pod(json!({"initContainers": [sidecar], "containers": [probe("app", &[])]}));
        let status = run(&pod);
        assert_eq!(status["phase"], "Pending");
        let envoy = container(&status, "initContainerStatuses", "envoy");
        assert_eq!(envoy["state"], json!({"running": {"startedAt": TIMESTAMP}}));
        assert_eq!(envoy["started"], false);
        assert_eq!(line(&pod, &status), "backend-5d8f-abcde 0/2 Init:0/1");
    }

    #[test]
    fn readiness_gates_hold_ready_but_not_containers_ready() {
        let mut pod = pod(
            json!({"readinessGates": [{"conditionType": "example.com/lb"}],
                                 "containers": [probe("a", &[])]}),
        );
        let status = run(&pod);
        assert_eq!(condition(&status, "ContainersReady")["status"], "True");
        let ready = condition(&status, "Ready");
        assert_eq!(ready["reason"], "ReadinessGatesNotReady");
        assert_eq!(
            ready["message"],
            "corresponding condition of pod readiness gate \"example.com/lb\" does not exist."
        );
        pod["status"] = json!({"conditions": [{"type": "example.com/lb", "status": "True"}]});
        assert_eq!(condition(&run(&pod), "Ready")["status"], "True");
    }

    // --- termination messages -----------------------------------------------

    #[test]
    fn termination_message_follows_path_and_policy() {
        let clash = |extra: Value| {
            let mut b = probe("b", &["--listen", "80"]);
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let status = run(&pod(
                json!({"containers": [probe("a", &["--listen", "80"]), b]}),
            ));
            container(&status, "containerStatuses", "b")["lastState"]["terminated"]
                .get("message")
                .cloned()
        };
        assert_eq!(clash(json!({})), Some(json!(bind_error(80))));
        // The probe writes /dev/termination-log only.
        assert_eq!(clash(json!({"terminationMessagePath": "/tmp/msg"})), None);
        assert_eq!(
            clash(json!({"terminationMessagePath": "/tmp/msg",
                         "terminationMessagePolicy": "FallbackToLogsOnError"})),
            Some(json!(format!("{}\n", bind_error(80))))
        );
        // A plain failing exit leaves only logs behind.
        let mut c = probe(
            "job",
            &["--name", "j", "--exit-after-ms", "1", "--exit-code", "5"],
        );
        c["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
        let status = run(&pod(json!({"restartPolicy": "Never", "containers": [c]})));
        assert_eq!(
            container(&status, "containerStatuses", "job")["state"]["terminated"]["message"],
            "probe j: listening on nothing\nprobe j: exiting with code 5\n"
        );
    }

    // --- the whole status ---------------------------------------------------

    #[test]
    fn full_status_shape() {
        let mut app = probe("app", &["--listen", "8080"]);
        app["volumeMounts"] = json!([
            {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
             "readOnly": true},
            {"name": "data", "mountPath": "/data"},
        ]);
        app["resources"] = json!({"limits": {"cpu": "100m", "memory": "64Mi"}});
        let status = run(&pod(json!({"containers": [app]})));
        let condition = |kind: &str| {
            json!({"type": kind, "observedGeneration": 1, "status": "True", "lastProbeTime": null,
                   "lastTransitionTime": TIMESTAMP})
        };
        let expected = json!({
            "observedGeneration": 1,
            "phase": "Running",
            "conditions": [condition("PodReadyToStartContainers"), condition("Initialized"),
                           condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "podIP": POD_IP,
            "podIPs": [{"ip": POD_IP}],
            "startTime": TIMESTAMP,
            "containerStatuses": [{
                "name": "app",
                "state": {"running": {"startedAt": TIMESTAMP}},
                "lastState": {},
                "ready": true,
                "restartCount": 0,
                "image": PROBE_IMAGE,
                "imageID": format!("injector-harness/probe@sha256:{}", "0".repeat(64)),
                "containerID": "containerd://app",
                "started": true,
                "volumeMounts": [
                    {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                     "readOnly": true, "recursiveReadOnly": "Disabled"},
                    {"name": "data", "mountPath": "/data"},
                ],
            }],
            "qosClass": "Guaranteed",
        });
        assert_eq!(status, expected);
        // Key order matters to readers of YAML snapshots too.
        let keys: Vec<&String> = status.as_object().unwrap().keys().collect();
        let want: Vec<&String> = expected.as_object().unwrap().keys().collect();
        assert_eq!(keys, want);
    }

    #[test]
    fn arbitrary_json_does_not_panic() {
        let odd = [
            json!(null),
            json!("pod"),
            json!({"spec": null}),
            json!({"metadata": 3, "spec": {"containers": "x", "initContainers": {}, "volumes": 1}}),
            json!({"spec": {"containers": [null, 1, {"name": 2, "image": [], "args": [1, null, true],
                                                     "ports": [{"containerPort": -1}, {"containerPort": 70000}, 5],
                                                     "env": [null, {"name": "A", "valueFrom": {"fieldRef": 1}}],
                                                     "envFrom": [{"configMapRef": "x"}],
                                                     "readinessProbe": {"tcpSocket": {"port": 1.5}}}],
                            "restartPolicy": 7, "hostNetwork": "yes",
                            "volumes": [{"configMap": null}, {"projected": {"sources": "x"}}],
                            "readinessGates": [1, {"conditionType": 2}],
                            "resources": {"limits": {"cpu": "lots"}}},
                   "status": {"conditions": "x"}}),
            json!({"spec": {"containers": [{"name": "a", "image": PROBE_IMAGE,
                                            "command": [], "args": ["--listen"]}]}}),
        ];
        for pod in odd {
            let status = run(&pod);
            assert!(status["phase"].is_string());
            if pod.is_object() {
                let _ = line(&pod, &status);
            }
        }
    }

    // --- expansion and env --------------------------------------------------

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion_rules() {
        let env = vars(&[("PORT", "10001"), ("EMPTY", "")]);
        let cases = [
            ("$(PORT)", "10001"),
            ("--listen=$(PORT)", "--listen=10001"),
            ("$(PORT)$(PORT)", "1000110001"),
            ("$(MISSING)", "$(MISSING)"),
            ("$(EMPTY)x", "x"),
            ("$$(PORT)", "$(PORT)"),
            ("$$$(PORT)", "$10001"),
            ("$$", "$"),
            ("$", "$"),
            ("a$b", "a$b"),
            ("$(PORT", "$(PORT"),
            ("x $( y", "x $( y"),
            ("$()", "$()"),
            ("$(PO$(PORT))", "$(PO$(PORT))"),
            ("ünï$(PORT)çødé", "ünï10001çødé"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &env), want, "{input}");
        }
    }

    #[test]
    fn env_in_order_with_field_refs() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-9",
                         "labels": {"app": "web"}, "annotations": {"team": "core"}},
            "spec": {"nodeName": "kind-worker", "serviceAccountName": "web"},
            "status": {"podIP": "10.0.0.9", "hostIP": "172.18.0.3"},
        });
        let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
        let c = json!({"env": [
            {"name": "LATER", "value": "$(PORT)"},
            {"name": "PORT", "value": "10000"},
            {"name": "URL", "value": "http://$(POD_IP):$(PORT)"},
            {"name": "POD_IP", "valueFrom": field("status.podIP")},
            {"name": "NAME", "valueFrom": field("metadata.name")},
            {"name": "NS", "valueFrom": field("metadata.namespace")},
            {"name": "UID", "valueFrom": field("metadata.uid")},
            {"name": "NODE", "valueFrom": field("spec.nodeName")},
            {"name": "SA", "valueFrom": field("spec.serviceAccountName")},
            {"name": "HOST", "valueFrom": field("status.hostIP")},
            {"name": "APP", "valueFrom": field("metadata.labels['app']")},
            {"name": "TEAM", "valueFrom": field("metadata.annotations['team']")},
            {"name": "NOLABEL", "valueFrom": field("metadata.labels['nope']")},
            {"name": "ODD", "valueFrom": field("spec.containers")},
            {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            {"name": "PORT", "value": "$(PORT)1"},
        ]});
        let env = container_env(&c, &pod);
        let want = vars(&[
            ("LATER", "$(PORT)"),
            ("PORT", "100001"),
            ("URL", "http://$(POD_IP):10000"),
            ("POD_IP", "10.0.0.9"),
            ("NAME", "web-1"),
            ("NS", "shop"),
            ("UID", "u-9"),
            ("NODE", "kind-worker"),
            ("SA", "web"),
            ("HOST", "172.18.0.3"),
            ("APP", "web"),
            ("TEAM", "core"),
            ("NOLABEL", ""),
        ]);
        assert_eq!(env, want);
    }

    #[test]
    fn run_pod_resolves_ips_from_the_node_and_context() {
        let c = json!({"name": "app", "image": PROBE_IMAGE,
                       "args": ["--listen", "$(PORT)"],
                       "env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                               {"name": "PORT", "value": "$(IP)"}]});
        // PORT becomes the pod IP, which is no port: the probe refuses.
        let status = run(&pod(json!({"restartPolicy": "Never", "containers": [c]})));
        assert_eq!(
            container(&status, "containerStatuses", "app")["state"]["terminated"]["exitCode"],
            2
        );
    }

    // --- QoS ----------------------------------------------------------------

    #[test]
    fn qos_classes() {
        let with = |resources: &[Value]| {
            let containers: Vec<Value> = resources
                .iter()
                .enumerate()
                .map(|(i, r)| json!({"name": format!("c{i}"), "resources": r}))
                .collect();
            qos_class(&json!({"spec": {"containers": containers}}))
        };
        assert_eq!(with(&[json!({})]), "BestEffort");
        assert_eq!(with(&[json!({"requests": {"cpu": "0"}})]), "BestEffort");
        assert_eq!(
            with(&[json!({"requests": {"ephemeral-storage": "1Gi"}})]),
            "BestEffort"
        );
        assert_eq!(with(&[json!({"requests": {"cpu": "10m"}})]), "Burstable");
        // The injected envoy: requests and a memory limit only.
        assert_eq!(
            with(&[
                json!({"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}})
            ]),
            "Burstable"
        );
        assert_eq!(
            with(&[json!({"limits": {"cpu": "1", "memory": "1Gi"}})]),
            "Guaranteed"
        );
        assert_eq!(
            with(&[json!({"requests": {"cpu": "1000m", "memory": "1024Mi"},
                          "limits": {"cpu": 1, "memory": "1Gi"}})]),
            "Guaranteed"
        );
        assert_eq!(
            with(&[json!({"requests": {"cpu": "500m", "memory": "1Gi"},
                          "limits": {"cpu": "1", "memory": "1Gi"}})]),
            "Burstable"
        );
        assert_eq!(
            with(&[json!({"limits": {"cpu": "1", "memory": "1Gi"}}), json!({})]),
            "Burstable"
        );
        let pod_level = json!({"spec": {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                                        "containers": [{"name": "a"}]}});
        assert_eq!(qos_class(&pod_level), "Guaranteed");
        let init = json!({"spec": {"initContainers": [{"name": "i", "resources": {"requests": {"memory": "1Mi"}}}],
                                   "containers": [{"name": "a"}]}});
        assert_eq!(qos_class(&init), "Burstable");
    }

    #[test]
    fn quantities() {
        let n = 1_000_000_000i128;
        assert_eq!(parse_quantity("1"), Some(n));
        assert_eq!(parse_quantity("100m"), Some(n / 10));
        assert_eq!(parse_quantity("0.1"), Some(n / 10));
        assert_eq!(parse_quantity(".5"), Some(n / 2));
        assert_eq!(parse_quantity("1Ki"), Some(1024 * n));
        assert_eq!(parse_quantity("128Mi"), Some(128 * (1 << 20) * n));
        assert_eq!(parse_quantity("1k"), Some(1000 * n));
        assert_eq!(parse_quantity("1e3"), Some(1000 * n));
        assert_eq!(parse_quantity("1E"), Some(1_000_000_000_000_000_000 * n));
        assert_eq!(parse_quantity("5n"), Some(5));
        assert_eq!(parse_quantity("-1"), Some(-n));
        for bad in [
            "",
            "-",
            "m",
            "1.2.3",
            "1x",
            "1e",
            "1e99999999999",
            "1e2147483647",
            "9".repeat(60).as_str(),
        ] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }
}
