//! The kind cluster a run uses: created from `kind/cluster.yaml` (and torn
//! down at the end, on failure and on Ctrl-C, unless kept), or an existing
//! one reused by name (never deleted). The project's images are built with
//! `kind/build-images.sh` and loaded into the nodes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Api, Client};

use super::ownership::{self, Claim};
use super::tools;
use crate::error::Timeout;
use crate::images::HARNESS_IMAGES;
use crate::options::KindOptions;
use crate::wait::Wait;

/// The name of a cluster the harness creates.
pub const DEFAULT_CLUSTER: &str = "injector-harness";
/// How long nodes and the default ServiceAccount may take after creation.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// The workspace root, where `kind/` lives: HARNESS_WORKSPACE, or the
/// checkout this harness was built from.
pub fn workspace() -> PathBuf {
    crate::options::workspace()
}

/// A kind cluster that is up, with the project's images loaded.
pub struct KindEnvironment {
    name: String,
    kind: PathBuf,
    /// Whether this run created the cluster (and so deletes it).
    created: bool,
    keep: bool,
    client: Client,
    /// The lock and record that mark a created cluster as this run's, so a
    /// later run can tell a leftover of a killed run from a cluster in use.
    ownership: Option<ownership::Ownership>,
    /// Holds the cluster's kubeconfig, apart from the user's ~/.kube/config.
    _state: tempfile::TempDir,
}

impl KindEnvironment {
    /// Creates or reuses the cluster, builds and loads the images, and waits
    /// until the nodes are Ready and pods can be admitted.
    /// `preload_images` (the scenarios' `preloadImages`) are loaded next to
    /// the harness's own; Docker must have them.
    pub async fn up(opts: &KindOptions, preload_images: &[String]) -> Result<KindEnvironment> {
        let root = workspace();
        let kind = kind_binary(&root).await?;
        if opts.cluster.is_none() {
            // Creating a cluster needs a Docker engine: the script starts
            // one when none answers (a reused cluster implies one runs).
            tools::output(&root.join("kind/docker.sh"), &["ensure"], Some(&root))
                .await
                .context("a Docker engine is needed to create a kind cluster")?;
        }
        let existing = clusters(&kind).await?;
        let state = tempfile::Builder::new()
            .prefix("injector-harness-kind-")
            .tempdir()?;
        let kubeconfig = state.path().join("kubeconfig");
        let kubeconfig_arg = kubeconfig.display().to_string();

        let mut ownership = None;
        let (name, created) = match &opts.cluster {
            Some(name) => {
                if !existing.contains(name) {
                    bail!(
                        "kind cluster {name:?} does not exist (clusters: {}); drop --kind-cluster to create one",
                        list_or_none(&existing)
                    );
                }
                (name.clone(), false)
            }
            None => {
                let held = claim_default(&kind, &existing).await?;
                ownership = Some(held);
                (DEFAULT_CLUSTER.to_string(), true)
            }
        };
        // From here on, a failure must still delete what was created.
        let mut env = KindEnvironment {
            name: name.clone(),
            kind: kind.clone(),
            created,
            keep: opts.keep_cluster,
            client: placeholder_client()?,
            ownership,
            _state: state,
        };
        if created {
            let image = match &opts.node_image {
                Some(i) => {
                    tools::notice(&format!(
                        "injector-harness: node image: {i} (--node-image / KIND_NODE_IMAGE)"
                    ));
                    i.clone()
                }
                None => node_image(&root).await?,
            };
            if let Some(o) = &env.ownership {
                o.record_creation(&image)?;
            }
            let config = root.join("kind/cluster.yaml").display().to_string();
            tracing::info!(cluster = %name, %image, "creating kind cluster");
            tools::output(
                &kind,
                &[
                    "create",
                    "cluster",
                    "--name",
                    &name,
                    "--config",
                    &config,
                    "--image",
                    &image,
                    "--kubeconfig",
                    &kubeconfig_arg,
                    "--wait",
                    "120s",
                ],
                Some(&root),
            )
            .await?;
        } else {
            let text = tools::output(&kind, &["get", "kubeconfig", "--name", &name], None).await?;
            std::fs::write(&kubeconfig, text)
                .with_context(|| format!("{}: cannot write", kubeconfig.display()))?;
        }
        env.client = client_for(&kubeconfig).await?;
        if !opts.skip_image_build {
            tools::output(&root.join("kind/build-images.sh"), &[], Some(&root)).await?;
        }
        let mut load = vec!["load", "docker-image", "--name", name.as_str()];
        load.extend(HARNESS_IMAGES);
        load.extend(preload_images.iter().map(String::as_str));
        let loaded = tools::output(&kind, &load, None).await;
        if !preload_images.is_empty() {
            loaded.with_context(|| {
                format!(
                    "loading the scenarios' preloadImages ({}) into the node: each must be in the local Docker engine (`docker pull` or `docker tag` it first)",
                    preload_images.join(", ")
                )
            })?;
        } else {
            loaded?;
        }
        wait_until_ready(&env.client).await?;
        Ok(env)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the cluster will be deleted when this run ends.
    pub fn deletes_cluster(&self) -> bool {
        self.created && !self.keep
    }

    /// Deletes the cluster if this run created it and was not told to keep it.
    pub async fn down(mut self) -> Result<()> {
        let result = if self.deletes_cluster() {
            let (kind, name) = (self.kind.clone(), self.name.clone());
            tokio::task::spawn_blocking(move || delete_until_gone(&kind, &name))
                .await
                .context("deleting the kind cluster")?
        } else {
            Ok(())
        };
        if result.is_ok() && self.deletes_cluster() {
            if let Some(o) = &self.ownership {
                o.clear();
            }
        }
        // Done: the Drop below must not delete it a second time.
        self.created = false;
        result
    }
}

impl Drop for KindEnvironment {
    /// The path taken on a panic or when the run is abandoned (Ctrl-C):
    /// nothing may be left running that the harness created.
    fn drop(&mut self) {
        if self.deletes_cluster() {
            eprintln!("deleting kind cluster {}", self.name);
            match delete_until_gone(&self.kind, &self.name) {
                Ok(()) => {
                    if let Some(o) = &self.ownership {
                        o.clear();
                    }
                }
                Err(e) => eprintln!("{e:#}"),
            }
        }
    }
}

/// `kind delete cluster`, repeated until `kind get nodes` lists no node
/// container of the cluster (at most 10 tries, a second apart).
///
/// One delete is not always enough when creation was cut short: SIGTERM to
/// the harness while `kind create cluster` had just made the node container
/// left it behind in state `created` although `kind delete` had reported
/// it deleted (harness/tests/signals.rs, 2026-12-05): the Docker engine
/// finishes a request whose client was killed.
fn delete_until_gone(kind: &Path, name: &str) -> Result<()> {
    let run = |args: &[&str]| {
        std::process::Command::new(kind)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
    };
    let mut left = String::new();
    for attempt in 0..10 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        let deleted = run(&["delete", "cluster", "--name", name])
            .with_context(|| format!("cannot run {} delete cluster", kind.display()))?;
        if !deleted.status.success() {
            left = String::from_utf8_lossy(&deleted.stderr).trim().to_string();
            continue;
        }
        let nodes = run(&["get", "nodes", "--name", name])
            .with_context(|| format!("cannot run {} get nodes", kind.display()))?;
        left = String::from_utf8_lossy(&nodes.stdout).trim().to_string();
        if nodes.status.success() && left.is_empty() {
            return Ok(());
        }
    }
    bail!("kind cluster {name:?} is still there after 10 deletes: {left}")
}

/// Takes the default cluster name for this run. A cluster of that name left
/// by a harness run that died (its lock is free, its record is there) is
/// deleted; one in use by a live run, or made by anyone else, is an error.
async fn claim_default(kind: &Path, existing: &[String]) -> Result<ownership::Ownership> {
    let dir = ownership::state_dir();
    let (held, previous) = match ownership::claim(&dir, DEFAULT_CLUSTER)? {
        Claim::Held {
            ownership,
            previous,
        } => (ownership, previous),
        Claim::InUse(record) => bail!(
            "the kind cluster {DEFAULT_CLUSTER:?} is in use by another harness run ({}); \
             wait for it to finish, or run against it with --kind-cluster {DEFAULT_CLUSTER} \
             (HARNESS_KIND_CLUSTER)",
            record.map_or_else(|| "no details recorded".into(), |r| r.describe())
        ),
    };
    if !existing.iter().any(|c| c == DEFAULT_CLUSTER) {
        return Ok(held);
    }
    let previous = match previous {
        Some(p) if p.by.as_deref() != Some(ownership::BY_SCRIPT) => p,
        by_script => bail!(
            "a kind cluster named {DEFAULT_CLUSTER:?} already exists{}; reuse it with \
             --kind-cluster {DEFAULT_CLUSTER} (HARNESS_KIND_CLUSTER), or delete it with `{}`",
            if by_script.is_some() {
                " (made by kind/kind-cluster.sh up)"
            } else {
                " and no harness run recorded making it"
            },
            if by_script.is_some() {
                "kind/kind-cluster.sh down".to_string()
            } else {
                format!("kind delete cluster --name {DEFAULT_CLUSTER}")
            }
        ),
    };
    eprintln!(
        "deleting kind cluster {DEFAULT_CLUSTER}, left by a harness run that did not finish ({})",
        previous.describe()
    );
    tools::output(
        kind,
        &["delete", "cluster", "--name", DEFAULT_CLUSTER],
        None,
    )
    .await
    .context("could not delete the leftover cluster")?;
    held.clear();
    Ok(held)
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The kind CLI `kind/build-kind.sh` chooses (KIND, else `kind` on PATH of
/// a supported version, else the pinned build), built only if that is the
/// choice. The choice and its reason are one line on stderr.
async fn kind_binary(root: &Path) -> Result<PathBuf> {
    let script = root.join("kind/build-kind.sh");
    announce_choice("kind", &script, root).await?;
    let out = tools::output(&script, &[], Some(root)).await?;
    tools::last_line(&out)
        .map(PathBuf::from)
        .context("kind/build-kind.sh printed no path")
}

/// The node image `kind/build-node-image.sh` chooses (KIND_NODE_IMAGE, else
/// a local stock kindest/node of the pinned version, else the offline
/// build), built only if that is the choice.
async fn node_image(root: &Path) -> Result<String> {
    let script = root.join("kind/build-node-image.sh");
    announce_choice("node image", &script, root).await?;
    let out = tools::output(&script, &[], Some(root)).await?;
    tools::last_line(&out).context("kind/build-node-image.sh printed no image tag")
}

/// Says which `what` a script of `kind/` will use and why, before a build
/// that can take minutes begins (`SCRIPT --choose` prints "CHOICE<TAB>WHY").
async fn announce_choice(what: &str, script: &Path, root: &Path) -> Result<()> {
    let out = tools::output(script, &["--choose"], Some(root)).await?;
    let line = tools::last_line(&out).unwrap_or_default();
    let (chosen, why) = line.split_once('\t').unwrap_or((line.as_str(), ""));
    tools::notice(&format!("injector-harness: {what}: {chosen} ({why})"));
    Ok(())
}

async fn clusters(kind: &Path) -> Result<Vec<String>> {
    let out = tools::output(kind, &["get", "clusters"], None).await?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("No kind clusters"))
        .map(str::to_string)
        .collect())
}

async fn client_for(kubeconfig: &Path) -> Result<Client> {
    let config = Kubeconfig::read_from(kubeconfig).with_context(|| {
        format!(
            "{}: cannot read the cluster's kubeconfig",
            kubeconfig.display()
        )
    })?;
    let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("{}: unusable kubeconfig", kubeconfig.display()))?;
    Ok(Client::try_from(config)?)
}

/// A client that is never used: the environment owns a real one as soon as
/// the cluster answers, but must exist earlier so a failure tears it down.
fn placeholder_client() -> Result<Client> {
    let config = kube::Config::new("https://127.0.0.1:1".parse()?);
    Ok(Client::try_from(config)?)
}

/// Every node Ready and the default namespace's ServiceAccount present (the
/// controller-manager makes it; pods cannot be created before).
async fn wait_until_ready(client: &Client) -> Result<()> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let nodes: Api<Node> = Api::all(client.clone());
    let mut stream = watcher(nodes.clone(), watcher::Config::default()).boxed();
    loop {
        let all_ready = nodes.list(&Default::default()).await.map(|l| {
            !l.items.is_empty()
                && l.items.iter().all(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
        });
        if matches!(all_ready, Ok(true)) {
            break;
        }
        if tokio::time::timeout_at(deadline, stream.next())
            .await
            .is_err()
        {
            return Err(Timeout::new("the kind nodes were not Ready", READY_TIMEOUT).into());
        }
    }
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    // The rest of the same limit.
    let mut wait = Wait::new(
        "the default ServiceAccount did not appear",
        READY_TIMEOUT,
        Duration::from_millis(500),
    )
    .ending_at(deadline);
    loop {
        if sa.get_opt("default").await?.is_some() {
            return Ok(());
        }
        wait.again().await?;
    }
}

/// After an interrupted run on a reused cluster: removes run `run`'s
/// objects and injectors from it (the cluster and other runs' objects stay).
pub async fn sweep_reused(
    name: &str,
    run: &crate::isolation::RunId,
    scenarios: &[crate::scenario::Scenario],
) -> Result<()> {
    let root = workspace();
    let kind = kind_binary(&root).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    let text = tools::output(&kind, &["get", "kubeconfig", "--name", name], None).await?;
    std::fs::write(&kubeconfig, text)?;
    let client = client_for(&kubeconfig).await?;
    crate::cluster::kubeconfig::sweep_with(client, run, scenarios).await
}
