//! A subject the harness starts itself, on this machine: a program
//! ([`super::process::HostProcess`]) or an image run as a container
//! ([`super::container::Container`]), with a serving pair the harness
//! makes and the harness's proxy in front.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, WebhookClientConfig};
use k8s_openapi::ByteString;

use super::certs::CertFiles;
use super::delay::Delay;
use super::handshake::presented_cert;
use super::ports::free_port;
use super::proxy::Proxy;
use super::types::{Subject, POLL, ROTATION_TIMEOUT, WAIT_WORD_EVERY};
use crate::scenario::WebhookSpec;
use crate::wait::Wait;

/// Lines of a subject's output kept for the failure report.
const LOG_LINES: usize = 200;

/// The last lines a subject wrote, over every start; shared with the
/// tasks that read its output.
#[derive(Clone, Default)]
pub struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    pub fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            if lines.len() == LOG_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The last `n` lines, indented for a report.
    fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How a subject the harness starts runs: what differs between a program
/// and a container. [`ProgramSubject`] does the rest the same way for both.
#[allow(async_fn_in_trait)]
pub trait Program {
    /// How a report names it: "`cargo run ...`", "image `webhook:dev`".
    fn describe(&self) -> String;
    /// Starts it, its output going to `log`: the port on 127.0.0.1 where it
    /// will serve TLS with the pair in `certs`.
    async fn launch(&mut self, certs: &CertFiles, log: &LogTail) -> Result<u16>;
    /// Why it is gone, once it stopped by itself ("exited (exit status: 3)").
    async fn exited(&mut self) -> Option<String>;
    /// Stops it: SIGTERM, then SIGKILL after a grace period.
    async fn stop(&mut self);
    /// How long it may take to serve TLS after [`Program::launch`], and the
    /// scenario field that says so.
    fn start_timeout(&self) -> (Duration, String);
    /// Where it serves, in the scenario's words ("127.0.0.1:4711 ($(PORT))").
    fn serving_at(&self, port: u16) -> String;
}

/// Any webhook the harness starts on this machine.
///
/// The webhooks call it through a TCP proxy the harness owns (TLS passes
/// through untouched, so the apiserver sees the subject's certificate).
/// The proxy is how fault steps reach a subject that has no flag for them:
/// `stopWebhook` stops it and closes the proxy's port (calls are refused),
/// `slowWebhook` delays every byte sent to it.
pub struct ProgramSubject<P: Program> {
    program: P,
    certs: CertFiles,
    /// Where it serves while it runs (the proxy's target).
    serving: Option<u16>,
    /// The proxy's port, which the webhooks name.
    front: u16,
    /// The proxy's delay, read by every connection for each chunk.
    delay: Delay,
    proxy: Option<Proxy>,
    log: LogTail,
    // Dropped, the proxy's task is aborted and the program stops what
    // still runs (see each Program).
}

impl<P: Program> ProgramSubject<P> {
    /// Takes `program` with its serving pair and, when `available`, starts it.
    pub async fn start(program: P, certs: CertFiles, available: bool) -> Result<ProgramSubject<P>> {
        let mut subject = ProgramSubject {
            program,
            certs,
            serving: None,
            front: free_port()?,
            delay: Delay::new(),
            proxy: None,
            log: LogTail::default(),
        };
        if available {
            subject.serve_now().await?;
        }
        Ok(subject)
    }

    pub fn program(&self) -> &P {
        &self.program
    }

    /// Starts it, waits until it answers TLS with its certificate, then
    /// opens the proxy. A subject that exits or never serves is stopped and
    /// reported with its last output.
    async fn serve_now(&mut self) -> Result<()> {
        let port = self.program.launch(&self.certs, &self.log).await?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let (limit, field) = self.program.start_timeout();
        let (describe, at) = (self.program.describe(), self.program.serving_at(port));
        let started = tokio::time::Instant::now();
        let mut next_word = started + WAIT_WORD_EVERY;
        let what = format!("the subject {describe} did not serve TLS with $(TLS_CERT) on {at}");
        let mut wait = Wait::new(what, limit, POLL);
        // Ready once a handshake verified against our CA succeeds: then it
        // serves TLS with the pair we gave it, where we told it to.
        loop {
            if let Some(why) = self.program.exited().await {
                self.program.stop().await;
                bail!(
                    "the subject {describe} {why} before it served TLS on {at}; its output:\n{}",
                    self.log.tail(20)
                );
            }
            let ca = self.certs.ca_pem().to_string();
            let answered = tokio::task::spawn_blocking(move || presented_cert(addr, &ca)).await?;
            if answered.is_ok() {
                break;
            }
            if tokio::time::Instant::now() >= next_word {
                next_word += WAIT_WORD_EVERY;
                tracing::info!(
                    "waiting for the subject {describe} to serve TLS on {at}: {} s of {} s ({field})",
                    started.elapsed().as_secs(),
                    limit.as_secs()
                );
            }
            if let Err(mut timeout) = wait.again().await {
                self.program.stop().await;
                timeout.detail = format!(" ({field}); its output:\n{}", self.log.tail(20));
                return Err(timeout.into());
            }
        }
        self.serving = Some(port);
        self.proxy = Some(Proxy::open(self.front, port, self.delay.watch()).await?);
        Ok(())
    }

    /// Closes the proxy, then stops the subject.
    pub async fn halt_now(&mut self) {
        if let Some(proxy) = self.proxy.take() {
            proxy.close().await;
        }
        if self.serving.take().is_some() {
            self.program.stop().await;
        }
    }
}

impl<P: Program> Subject for ProgramSubject<P> {
    fn webhooks(&self, specs: &[WebhookSpec]) -> Vec<MutatingWebhook> {
        specs
            .iter()
            .map(|w| {
                let mut hook = crate::admission::webhook_from_spec(w);
                hook.client_config = WebhookClientConfig {
                    url: Some(format!("https://127.0.0.1:{}{}", self.front, w.path)),
                    ca_bundle: Some(ByteString(self.certs.ca_pem().as_bytes().to_vec())),
                    service: None,
                };
                hook
            })
            .collect()
    }
    fn serving(&self) -> bool {
        self.serving.is_some()
    }
    fn delay(&self) -> Duration {
        self.delay.get()
    }
    async fn halt(&mut self) -> Result<()> {
        self.halt_now().await;
        Ok(())
    }
    async fn serve(&mut self) -> Result<()> {
        if self.serving.is_none() {
            self.serve_now().await?;
        }
        Ok(())
    }
    async fn set_delay(&mut self, delay: Duration) -> Result<()> {
        self.delay.set(delay);
        Ok(())
    }
    async fn rotate_cert(&mut self) -> Result<()> {
        self.certs.rotate()?;
        let Some(port) = self.serving else {
            return Ok(());
        };
        let server = format!("the subject {}", self.program.describe());
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        match self
            .certs
            .wait_until_presented(addr, &server, ROTATION_TIMEOUT)
            .await?
        {
            Ok(()) => Ok(()),
            Err(mut timeout) => {
                timeout.detail.push_str(": it does not reload $(TLS_CERT) and $(TLS_KEY) when they change, so it cannot take a rotateCert step");
                Err(timeout.into())
            }
        }
    }
    async fn decisions(&self) -> Vec<String> {
        Vec::new()
    }
    async fn logs(&self) -> Vec<String> {
        self.log
            .lines()
            .into_iter()
            .map(|l| format!("subject: {l}"))
            .collect()
    }
}
