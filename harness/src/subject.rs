//! The webhook under test: what a scenario's webhooks call, and what its
//! fault steps act on.
//!
//! A scenario names its subject in its header (`subject:`); absent, it is
//! the built-in injector ([`crate::admission::InjectorServer`] in this
//! process, [`crate::cluster::kind::InClusterInjector`] in a cluster). A
//! `process` subject is any program that serves admission over HTTPS: the
//! harness makes it a CA and a serving pair, starts it with the paths and a
//! port put into its command line, and registers the scenario's webhooks
//! with that CA. Every backend drives a subject through [`Subject`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, WebhookClientConfig};
use k8s_openapi::ByteString;
use sidecar_injector::certs;
use tokio::io::AsyncBufReadExt;

use crate::admission::InjectorServer;
use crate::scenario::{ProcessSpec, Scenario, WebhookSpec};

/// What a scenario's fault steps do to its webhook, however and wherever it
/// runs: in the harness process (sim, kubeconfig) or in the cluster (kind).
#[allow(async_fn_in_trait)]
pub trait Subject {
    /// The scenario's webhooks, pointing at this subject.
    fn webhooks(&self, specs: &[WebhookSpec]) -> Vec<MutatingWebhook>;
    /// Whether it serves now.
    fn serving(&self) -> bool;
    /// How long each admission review waits before it is answered.
    fn delay(&self) -> Duration;
    /// Stops serving: calls fail as when the webhook is down.
    async fn halt(&mut self) -> Result<()>;
    /// Serves again, with the same config and CA, at the same address.
    async fn serve(&mut self) -> Result<()>;
    /// Makes every admission review wait `delay` (zero: none).
    async fn set_delay(&mut self, delay: Duration) -> Result<()>;
    /// A new serving certificate from the same CA, in force when this returns.
    async fn rotate_cert(&mut self) -> Result<()>;
    /// What it decided, from its own counters (the built-in injector's
    /// metrics); nothing for a subject whose metrics the harness cannot read.
    async fn decisions(&self) -> Vec<String>;
    /// Its own output, for a failure report.
    async fn logs(&self) -> Vec<String>;
}

/// The longest a rotation may take to reach new handshakes.
const ROTATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiting step looks again.
const POLL: Duration = Duration::from_millis(100);
/// Lines of a subject's stderr kept for the failure report.
const LOG_LINES: usize = 200;

/// A CA and a serving pair on disk, projected the way the kubelet updates a
/// mounted Secret: each pair goes into a fresh `..<n>` directory, then the
/// `..data` symlink is swapped to it in one rename, so a reader never sees a
/// new certificate with an old key. The pair is for 127.0.0.1 and
/// localhost.
pub struct CertFiles {
    ca: certs::Ca,
    ca_pem: String,
    /// The serving cert in force on disk (PEM).
    cert_pem: String,
    /// How many pairs were written (names the projection dirs).
    generation: u32,
    dir: tempfile::TempDir,
}

impl CertFiles {
    pub fn new() -> Result<CertFiles> {
        let ca = certs::Ca::generate().context("generating a CA")?;
        let mut files = CertFiles {
            ca_pem: ca.pem(),
            ca,
            cert_pem: String::new(),
            generation: 0,
            dir: tempfile::tempdir()?,
        };
        files.rotate()?;
        Ok(files)
    }

    /// Writes a new key and serving certificate from the same CA.
    pub fn rotate(&mut self) -> Result<()> {
        let bundle = self
            .ca
            .issue(
                "webhook",
                "injector-harness",
                &["127.0.0.1".into(), "localhost".into()],
            )
            .context("issuing a serving certificate")?;
        self.generation += 1;
        let dir = self.dir.path();
        let version = format!("..{}", self.generation);
        bundle.write_to(&dir.join(&version))?;
        let tmp = dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&version, &tmp)?;
        std::fs::rename(&tmp, dir.join("..data"))?;
        for file in [certs::CA_CERT_FILE, certs::CERT_FILE, certs::KEY_FILE] {
            let link = dir.join(file);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(file), &link)?;
            }
        }
        if self.generation > 1 {
            let old = dir.join(format!("..{}", self.generation - 1));
            let _ = std::fs::remove_dir_all(old);
        }
        self.cert_pem = bundle.cert_pem;
        Ok(())
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join(certs::CERT_FILE)
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join(certs::KEY_FILE)
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join(certs::CA_CERT_FILE)
    }

    /// Waits until a fresh TLS handshake with `addr`, verified against the
    /// CA, presents the certificate now on disk. The error completes a
    /// sentence about the server ("the injector ...").
    pub async fn wait_until_presented(&self, addr: SocketAddr, limit: Duration) -> Result<()> {
        let want = crate::admission::pem_der(&self.cert_pem)?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let ca = self.ca_pem.clone();
            let got =
                tokio::task::spawn_blocking(move || crate::admission::presented_cert(addr, &ca))
                    .await?;
            if got.as_ref().is_ok_and(|g| *g == want) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "at {addr} still presents its old certificate {} s after the new one was written{}",
                    limit.as_secs(),
                    match got {
                        Err(e) => format!(" (last handshake: {e:#})"),
                        Ok(_) => String::new(),
                    }
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running program: its process group is killed when this is dropped.
struct Running {
    child: tokio::process::Child,
    group: crate::cluster::kind::tools::GroupGuard,
}

/// Any program that serves admission over HTTPS, started by the harness.
///
/// The webhooks call it through a TCP proxy the harness owns (TLS passes
/// through untouched, so the apiserver sees the program's certificate).
/// The proxy is how fault steps reach a program that has no flag for them:
/// `stopWebhook` stops the program and closes the proxy's port (calls are
/// refused), `slowWebhook` holds each new connection for the delay before
/// passing it on.
pub struct ProcessSubject {
    spec: ProcessSpec,
    /// Where `$(SCENARIO_DIR)` points, and the program's working directory.
    scenario_dir: PathBuf,
    certs: CertFiles,
    /// The program's own port (`$(PORT)`).
    port: u16,
    /// The proxy's port, which the webhooks name.
    front: u16,
    /// The proxy's delay; a change also closes the connections it holds.
    delay: tokio::sync::watch::Sender<Duration>,
    proxy: Option<tokio::task::JoinHandle<()>>,
    running: Option<Running>,
    /// The last lines the program wrote to stderr, over every start.
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl ProcessSubject {
    /// Makes its certificates and, when `available`, starts it.
    pub async fn start(
        spec: &ProcessSpec,
        scenario_dir: &Path,
        available: bool,
    ) -> Result<ProcessSubject> {
        let mut subject = ProcessSubject {
            spec: spec.clone(),
            scenario_dir: scenario_dir.to_path_buf(),
            certs: CertFiles::new()?,
            port: free_port()?,
            front: free_port()?,
            delay: tokio::sync::watch::Sender::new(Duration::ZERO),
            proxy: None,
            running: None,
            stderr: Arc::new(Mutex::new(VecDeque::new())),
        };
        if available {
            subject.serve_now().await?;
        }
        Ok(subject)
    }

    /// `text` with the harness's values put in for `$(TLS_CERT)`,
    /// `$(TLS_KEY)`, `$(CA_CERT)`, `$(PORT)` and `$(SCENARIO_DIR)`; any other
    /// `$(...)` stays as written.
    pub fn substitute(&self, text: &str) -> String {
        let values = [
            ("TLS_CERT", self.certs.cert_path().display().to_string()),
            ("TLS_KEY", self.certs.key_path().display().to_string()),
            ("CA_CERT", self.certs.ca_path().display().to_string()),
            ("PORT", self.port.to_string()),
            ("SCENARIO_DIR", self.scenario_dir.display().to_string()),
        ];
        let mut out = text.to_string();
        for (name, value) in values {
            out = out.replace(&format!("$({name})"), &value);
        }
        out
    }

    fn command_line(&self) -> String {
        self.spec
            .command
            .iter()
            .map(|a| self.substitute(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().map(|l| l.clone()).unwrap_or_default();
        let start = lines.len().saturating_sub(20);
        lines
            .iter()
            .skip(start)
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Starts the program, waits until it answers TLS with its certificate,
    /// then opens the proxy.
    async fn serve_now(&mut self) -> Result<()> {
        let Some((program, args)) = self.spec.command.split_first() else {
            bail!("subject.process.command is empty");
        };
        let program = self.substitute(program);
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(args.iter().map(|a| self.substitute(a)))
            .envs(
                self.spec
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), self.substitute(v))),
            )
            .current_dir(&self.scenario_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start the subject `{}`", self.command_line()))?;
        let group = crate::cluster::kind::tools::GroupGuard::new(child.id());
        if let Some(err) = child.stderr.take() {
            let kept = self.stderr.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut k) = kept.lock() {
                        if k.len() == LOG_LINES {
                            k.pop_front();
                        }
                        k.push_back(line);
                    }
                }
            });
        }
        let mut running = Running { child, group };
        // Ready once a handshake verified against our CA succeeds: then it
        // serves TLS with the pair we gave it, on the port we gave it.
        let limit = Duration::from_secs(u64::from(self.spec.start_timeout_seconds));
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = running.child.try_wait()? {
                bail!(
                    "the subject `{}` exited ({status}) before it served TLS on 127.0.0.1:{}; its stderr:\n{}",
                    self.command_line(),
                    self.port,
                    self.stderr_tail()
                );
            }
            let (addr, ca) = (self.addr(), self.certs.ca_pem.clone());
            let answered =
                tokio::task::spawn_blocking(move || crate::admission::presented_cert(addr, &ca))
                    .await?;
            if answered.is_ok() {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the subject `{}` did not serve TLS with $(TLS_CERT) on 127.0.0.1:{} ($(PORT)) within {} s (subject.process.startTimeoutSeconds); its stderr:\n{}",
                    self.command_line(),
                    self.port,
                    limit.as_secs(),
                    self.stderr_tail()
                );
            }
            tokio::time::sleep(POLL).await;
        }
        self.running = Some(running);
        self.proxy = Some(open_proxy(self.front, self.port, self.delay.subscribe()).await?);
        Ok(())
    }

    async fn halt_now(&mut self) {
        if let Some(proxy) = self.proxy.take() {
            // Dropping the task drops the listener and every connection.
            proxy.abort();
            let _ = proxy.await;
        }
        if let Some(mut running) = self.running.take() {
            if let Some(pid) = running.child.id().and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: kill(2) on the process group the spawn made for
                // this program; it touches no memory of ours.
                unsafe {
                    libc::kill(-pid, libc::SIGTERM);
                }
            }
            if tokio::time::timeout(Duration::from_secs(5), running.child.wait())
                .await
                .is_err()
            {
                // The guard's drop sends SIGKILL to the group.
                drop(running);
            } else {
                running.group.disarm();
            }
        }
    }
}

/// Listens on 127.0.0.1:`front` and passes each connection to `port`.
/// Aborting the task closes the listener and the connections it passed on.
///
/// A delay is latency on the way in: every chunk the client sends reaches
/// the subject that long after it arrived, in order. TLS passes through
/// unread, so the proxy cannot see where a request starts; a client keeps
/// connections alive and, over HTTP/2 (the apiserver's), runs requests side
/// by side on one. Latency on every byte holds every request, on new
/// connections and old, from the moment the delay is set.
async fn open_proxy(
    front: u16,
    port: u16,
    delay: tokio::sync::watch::Receiver<Duration>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", front))
        .await
        .with_context(|| {
            format!("the harness's proxy for the subject cannot listen on 127.0.0.1:{front}")
        })?;
    Ok(tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((inbound, _)) = accepted else { continue };
                    connections.spawn(relay(inbound, port, delay.clone()));
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }))
}

/// One proxied connection; see [`open_proxy`].
async fn relay(
    inbound: tokio::net::TcpStream,
    port: u16,
    delay: tokio::sync::watch::Receiver<Duration>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let (mut client_read, mut client_write) = inbound.into_split();
    let (subject_read, mut subject_write) = outbound.into_split();
    // Chunks from the client, each with the time it is due at the subject.
    let (chunks, mut due) =
        tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let read_client = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let at = tokio::time::Instant::now() + *delay.borrow();
                    if chunks.send((at, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    let write_subject = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if subject_write.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = subject_write.shutdown().await;
    };
    let answer = async move {
        let mut subject_read = subject_read;
        let _ = tokio::io::copy(&mut subject_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(read_client, write_subject, answer);
}

impl Drop for ProcessSubject {
    fn drop(&mut self) {
        if let Some(proxy) = self.proxy.take() {
            proxy.abort();
        }
        // Dropping `running` kills the program's group.
    }
}

impl Subject for ProcessSubject {
    fn webhooks(&self, specs: &[WebhookSpec]) -> Vec<MutatingWebhook> {
        specs
            .iter()
            .map(|w| {
                let mut hook = crate::admission::webhook_from_spec(w);
                hook.client_config = WebhookClientConfig {
                    url: Some(format!("https://127.0.0.1:{}{}", self.front, w.path)),
                    ca_bundle: Some(ByteString(self.certs.ca_pem.as_bytes().to_vec())),
                    service: None,
                };
                hook
            })
            .collect()
    }
    fn serving(&self) -> bool {
        self.running.is_some()
    }
    fn delay(&self) -> Duration {
        *self.delay.borrow()
    }
    async fn halt(&mut self) -> Result<()> {
        self.halt_now().await;
        Ok(())
    }
    async fn serve(&mut self) -> Result<()> {
        if self.running.is_none() {
            self.serve_now().await?;
        }
        Ok(())
    }
    async fn set_delay(&mut self, delay: Duration) -> Result<()> {
        self.delay.send_replace(delay);
        Ok(())
    }
    async fn rotate_cert(&mut self) -> Result<()> {
        self.certs.rotate()?;
        if self.running.is_none() {
            return Ok(());
        }
        self.certs
            .wait_until_presented(self.addr(), ROTATION_TIMEOUT)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "the subject `{}` {e:#}: it does not reload $(TLS_CERT) and $(TLS_KEY) when they change, so it cannot take a rotateCert step",
                    self.command_line()
                )
            })
    }
    async fn decisions(&self) -> Vec<String> {
        Vec::new()
    }
    async fn logs(&self) -> Vec<String> {
        let lines = self.stderr.lock().map(|l| l.clone()).unwrap_or_default();
        lines.into_iter().map(|l| format!("subject: {l}")).collect()
    }
}

/// The subject of a scenario running on this machine's side of the
/// apiserver (sim, kubeconfig with the webhook on the host).
pub enum LocalSubject {
    Builtin(InjectorServer),
    Process(ProcessSubject),
}

impl LocalSubject {
    /// Starts the scenario's subject; `config` is the built-in injector's
    /// config as this run gives it (see [`crate::isolation::Isolation::config`]).
    pub async fn start(
        scenario: &Scenario,
        config: sidecar_injector::Config,
    ) -> Result<LocalSubject> {
        let available = scenario.header.injector.available;
        if scenario.header.subject.process.is_none() && scenario.header.subject.image.is_some() {
            bail!(
                "{}: the subject is an image, which runs in a cluster (kind, or kubeconfig with --webhook in-cluster); on this backend give it a process too (subject.process)",
                scenario.path.display()
            );
        }
        Ok(match &scenario.header.subject.process {
            None => LocalSubject::Builtin(InjectorServer::start(config, available).await?),
            Some(spec) => {
                let dir = scenario
                    .path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let dir = std::fs::canonicalize(dir)
                    .with_context(|| format!("{}: cannot resolve", dir.display()))?;
                LocalSubject::Process(ProcessSubject::start(spec, &dir, available).await?)
            }
        })
    }

    pub async fn stop(self) {
        match self {
            LocalSubject::Builtin(s) => s.stop().await,
            LocalSubject::Process(mut s) => s.halt_now().await,
        }
    }
}

impl Subject for LocalSubject {
    fn webhooks(&self, specs: &[WebhookSpec]) -> Vec<MutatingWebhook> {
        match self {
            LocalSubject::Builtin(s) => Subject::webhooks(s, specs),
            LocalSubject::Process(s) => s.webhooks(specs),
        }
    }
    fn serving(&self) -> bool {
        match self {
            LocalSubject::Builtin(s) => Subject::serving(s),
            LocalSubject::Process(s) => s.serving(),
        }
    }
    fn delay(&self) -> Duration {
        match self {
            LocalSubject::Builtin(s) => Subject::delay(s),
            LocalSubject::Process(s) => s.delay(),
        }
    }
    async fn halt(&mut self) -> Result<()> {
        match self {
            LocalSubject::Builtin(s) => Subject::halt(s).await,
            LocalSubject::Process(s) => s.halt().await,
        }
    }
    async fn serve(&mut self) -> Result<()> {
        match self {
            LocalSubject::Builtin(s) => Subject::serve(s).await,
            LocalSubject::Process(s) => s.serve().await,
        }
    }
    async fn set_delay(&mut self, delay: Duration) -> Result<()> {
        match self {
            LocalSubject::Builtin(s) => Subject::set_delay(s, delay).await,
            LocalSubject::Process(s) => s.set_delay(delay).await,
        }
    }
    async fn rotate_cert(&mut self) -> Result<()> {
        match self {
            LocalSubject::Builtin(s) => Subject::rotate_cert(s).await,
            LocalSubject::Process(s) => s.rotate_cert().await,
        }
    }
    async fn decisions(&self) -> Vec<String> {
        match self {
            LocalSubject::Builtin(s) => Subject::decisions(s).await,
            LocalSubject::Process(s) => s.decisions().await,
        }
    }
    async fn logs(&self) -> Vec<String> {
        match self {
            LocalSubject::Builtin(s) => Subject::logs(s).await,
            LocalSubject::Process(s) => s.logs().await,
        }
    }
}
