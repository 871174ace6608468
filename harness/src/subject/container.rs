//! An `image` subject off the cluster: on the sim and on the kubeconfig
//! backend with the webhook on the host, the image runs as a container of
//! the local Docker engine (testcontainers), with the same paths, arguments
//! and files it gets in a cluster, published on 127.0.0.1.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sidecar_injector::certs;
use testcontainers::bollard::models::{HostConfig, PortBinding};
use testcontainers::core::{AccessMode, ContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, CopyDataSource, CopyTargetOptions, GenericImage, ImageExt};
use tokio::io::AsyncBufReadExt;

use super::certs::CertFiles;
use super::program::{LogTail, Program, ProgramSubject};
use super::types::{CERT_DIR, FILES_DIR};
use crate::isolation::RUN_LABEL;
use crate::scenario::ImageSpec;

/// How long a local image may take to serve TLS once its container runs.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// An image subject in a local container, the harness's proxy in front.
pub type ContainerSubject = ProgramSubject<Container>;

impl ProgramSubject<Container> {
    /// Makes its certificates and, when `available`, starts its container.
    pub async fn image(
        spec: &ImageSpec,
        scenario_dir: &Path,
        run: &str,
        available: bool,
    ) -> Result<ContainerSubject> {
        let certs = CertFiles::shared()?;
        let program = Container::new(spec, scenario_dir, run)?;
        ProgramSubject::start(program, certs, available).await
    }
}

/// `args` with the paths and port the image gets, in a cluster or not.
pub fn image_args(spec: &ImageSpec) -> Vec<String> {
    let values = [
        ("TLS_CERT", format!("{CERT_DIR}/{}", certs::CERT_FILE)),
        ("TLS_KEY", format!("{CERT_DIR}/{}", certs::KEY_FILE)),
        ("CA_CERT", format!("{CERT_DIR}/{}", certs::CA_CERT_FILE)),
        ("PORT", spec.port.to_string()),
        ("FILES", FILES_DIR.to_string()),
    ];
    spec.args
        .iter()
        .map(|a| super::placeholders::substitute(a, &values))
        .collect()
}

/// `files`, read from beside the scenario, by the name they have under
/// `$(FILES)`.
pub fn image_files(spec: &ImageSpec, scenario_dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for f in &spec.files {
        let path = scenario_dir.join(f);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("subject.image.files: {}: cannot read", path.display()))?;
        let Some(key) = path.file_name().and_then(|n| n.to_str()) else {
            bail!("subject.image.files: {f}: names no file");
        };
        if files.insert(key.to_string(), text).is_some() {
            bail!("subject.image.files: two files are named {key} under $(FILES)");
        }
    }
    Ok(files)
}

/// `subject.image` as a container of the local Docker engine.
pub struct Container {
    name: String,
    tag: String,
    args: Vec<String>,
    port: u16,
    files: BTreeMap<String, String>,
    run: String,
    running: Option<ContainerAsync<GenericImage>>,
}

impl Container {
    pub fn new(spec: &ImageSpec, scenario_dir: &Path, run: &str) -> Result<Container> {
        let (name, tag) = split_reference(&spec.name)?;
        let port = u16::try_from(spec.port)
            .ok()
            .filter(|p| *p > 0)
            .with_context(|| format!("subject.image.port: {} is not a port", spec.port))?;
        Ok(Container {
            name,
            tag,
            args: image_args(spec),
            port,
            files: image_files(spec, scenario_dir)?,
            run: run.to_string(),
            running: None,
        })
    }
}

/// Removes the containers run `run` started (labelled
/// `injector-harness/run=<run>`), returning how many. A run that ends
/// normally removes its own; an interrupted one drops them, and the
/// removal testcontainers then starts may not finish before the process
/// exits. No engine answering means none to remove.
pub async fn sweep_containers(run: &str) -> Result<usize> {
    use testcontainers::bollard::query_parameters::{
        ListContainersOptions, RemoveContainerOptions,
    };
    let Ok(docker) = testcontainers::bollard::Docker::connect_with_defaults() else {
        return Ok(0);
    };
    let filters = HashMap::from([("label".to_string(), vec![format!("{RUN_LABEL}={run}")])]);
    let listed = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await;
    // An engine that does not answer has started nothing of this run.
    let Ok(containers) = listed else {
        return Ok(0);
    };
    let mut removed = 0;
    for id in containers.into_iter().filter_map(|c| c.id) {
        let result = docker
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
        match result {
            Ok(()) => removed += 1,
            // Gone already, or going: the dropped subject's own removal
            // got there first.
            Err(testcontainers::bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("removing container {id} of run {run}"))
            }
        }
    }
    Ok(removed)
}

/// `name:tag` apart (tag `latest` when none is given, as Docker reads it).
fn split_reference(reference: &str) -> Result<(String, String)> {
    if reference.contains('@') {
        bail!("subject.image.name: {reference}: a digest reference cannot be run locally; name the image by its tag");
    }
    // A ':' after the last '/' starts the tag; one before it is a port.
    let last = reference.rsplit('/').next().unwrap_or(reference);
    Ok(match last.rfind(':') {
        Some(i) => {
            let at = reference.len() - last.len() + i;
            (reference[..at].to_string(), reference[at + 1..].to_string())
        }
        None => (reference.to_string(), "latest".to_string()),
    })
}

/// Copies a container's output into `log` as it comes, each line marked
/// with its stream.
fn follow(
    stream: std::pin::Pin<Box<dyn tokio::io::AsyncBufRead + Send>>,
    log: LogTail,
    mark: &'static str,
) {
    tokio::spawn(async move {
        let mut lines = stream.lines();
        while let Ok(Some(line)) = lines.next_line().await {
            log.push(format!("{mark}{line}"));
        }
    });
}

impl Program for Container {
    fn describe(&self) -> String {
        format!("image `{}:{}`", self.name, self.tag)
    }

    async fn launch(&mut self, certs: &CertFiles, log: &LogTail) -> Result<u16> {
        let port = self.port;
        let mut request = GenericImage::new(&self.name, &self.tag)
            .with_exposed_port(ContainerPort::Tcp(port))
            .with_cmd(self.args.clone())
            .with_label(RUN_LABEL, self.run.clone())
            // The directory, not the files: a rotation swaps its `..data`
            // link, and the container sees the new pair as a pod sees an
            // updated Secret.
            .with_mount(
                Mount::bind_mount(certs.dir().display().to_string(), CERT_DIR)
                    .with_access_mode(AccessMode::ReadOnly),
            )
            // Published on 127.0.0.1 only: the webhook is for this machine.
            .with_host_config_modifier(move |hc: &mut HostConfig| {
                hc.publish_all_ports = Some(false);
                hc.port_bindings = Some(HashMap::from([(
                    format!("{port}/tcp"),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )]));
            });
        for (file, text) in &self.files {
            request = request.with_copy_to(
                CopyTargetOptions::new(format!("{FILES_DIR}/{file}")).with_mode(0o444),
                CopyDataSource::Data(text.clone().into_bytes()),
            );
        }
        let container = request.start().await.with_context(|| {
            format!(
                "cannot start the subject {} in the local Docker engine (off the cluster an image subject runs as a container: is an engine running, `kind/docker.sh ensure`, and is the image in it, `docker image inspect {}:{}`?)",
                self.describe(),
                self.name,
                self.tag
            )
        })?;
        follow(container.stdout(true), log.clone(), "");
        follow(container.stderr(true), log.clone(), "");
        let published = container.get_host_port_ipv4(port).await.with_context(|| {
            format!(
                "the subject {}: Docker published no host port for {port}",
                self.describe()
            )
        })?;
        self.running = Some(container);
        Ok(published)
    }

    async fn exited(&mut self) -> Option<String> {
        let container = self.running.as_ref()?;
        if container.is_running().await.unwrap_or(true) {
            return None;
        }
        let code = container.exit_code().await.ok().flatten();
        if let Some(c) = self.running.take() {
            let _ = c.rm().await;
        }
        Some(match code {
            Some(c) => format!("exited (exit code {c})"),
            None => "exited".to_string(),
        })
    }

    async fn stop(&mut self) {
        if let Some(container) = self.running.take() {
            // As a pod's termination grace: SIGTERM, SIGKILL after 5 s.
            let _ = container.stop_with_timeout(Some(5)).await;
            let _ = container.rm().await;
        }
    }

    fn start_timeout(&self) -> (Duration, String) {
        (
            START_TIMEOUT,
            "the harness's limit for a local image".into(),
        )
    }

    fn serving_at(&self, port: u16) -> String {
        format!(
            "127.0.0.1:{port} (its port {}, subject.image.port)",
            self.port
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_name_and_tag_as_docker_reads_them() {
        let split = |r: &str| split_reference(r).unwrap();
        assert_eq!(
            split("sidecar-injector:dev"),
            ("sidecar-injector".into(), "dev".into())
        );
        assert_eq!(split("webhook"), ("webhook".into(), "latest".into()));
        assert_eq!(
            split("localhost:5000/team/webhook:v2"),
            ("localhost:5000/team/webhook".into(), "v2".into())
        );
        assert_eq!(
            split("localhost:5000/team/webhook"),
            ("localhost:5000/team/webhook".into(), "latest".into())
        );
        let e = split_reference("webhook@sha256:abc")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("subject.image.name") && e.contains("digest"),
            "{e}"
        );
    }

    #[test]
    fn args_get_the_paths_and_port_the_image_has_in_a_cluster() {
        let spec: ImageSpec = serde_yaml::from_str(
            "{name: w, port: 8443, args: [--cert, $(TLS_CERT), --addr, '0.0.0.0:$(PORT)', --config, $(FILES)/c.yaml, $(OTHER)]}",
        )
        .unwrap();
        assert_eq!(
            image_args(&spec),
            [
                "--cert",
                "/etc/webhook/certs/tls.crt",
                "--addr",
                "0.0.0.0:8443",
                "--config",
                "/etc/webhook/files/c.yaml",
                "$(OTHER)"
            ]
        );
    }
}
