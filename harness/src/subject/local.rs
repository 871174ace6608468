//! The subject of a scenario on this machine's side of the apiserver (the
//! sim, and the kubeconfig backend with the webhook on the host): whichever
//! of the built-in injector, a process or a local container the scenario's
//! header names, driven as one [`Subject`].

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;

use super::builtin::InjectorServer;
use super::container::ContainerSubject;
use super::process::ProcessSubject;
use super::types::Subject;
use crate::scenario::{Scenario, WebhookSpec};

/// The subject of a scenario running on this machine's side of the
/// apiserver (sim, kubeconfig with the webhook on the host).
// One per running scenario, never in a collection: its size is no matter.
#[allow(clippy::large_enum_variant)]
pub enum LocalSubject {
    Builtin(InjectorServer),
    Process(ProcessSubject),
    Image(ContainerSubject),
}

/// `$body` with `$s` bound to whichever subject `$subject` holds.
macro_rules! each {
    ($subject:expr, $s:ident => $body:expr) => {
        match $subject {
            LocalSubject::Builtin($s) => $body,
            LocalSubject::Process($s) => $body,
            LocalSubject::Image($s) => $body,
        }
    };
}

impl LocalSubject {
    /// Starts the scenario's subject; `config` is the built-in injector's
    /// config as this run gives it (see [`crate::isolation::Isolation::config`]),
    /// `run` the run's id (it labels a container). A subject with both a
    /// process and an image runs as the process here.
    pub async fn start(
        scenario: &Scenario,
        config: sidecar_injector::Config,
        run: &str,
    ) -> Result<LocalSubject> {
        let available = scenario.header.injector.available;
        let subject = &scenario.header.subject;
        let dir = || -> Result<std::path::PathBuf> {
            let dir = scenario
                .path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::canonicalize(dir).with_context(|| format!("{}: cannot resolve", dir.display()))
        };
        Ok(match (&subject.process, &subject.image) {
            (Some(spec), _) => {
                LocalSubject::Process(ProcessSubject::process(spec, &dir()?, available).await?)
            }
            (None, Some(spec)) => {
                LocalSubject::Image(ContainerSubject::image(spec, &dir()?, run, available).await?)
            }
            (None, None) => LocalSubject::Builtin(InjectorServer::start(config, available).await?),
        })
    }

    pub async fn stop(self) {
        match self {
            LocalSubject::Builtin(s) => s.stop().await,
            LocalSubject::Process(mut s) => s.halt_now().await,
            LocalSubject::Image(mut s) => s.halt_now().await,
        }
    }
}

impl Subject for LocalSubject {
    fn webhooks(&self, specs: &[WebhookSpec]) -> Vec<MutatingWebhook> {
        each!(self, s => Subject::webhooks(s, specs))
    }
    fn serving(&self) -> bool {
        each!(self, s => Subject::serving(s))
    }
    fn delay(&self) -> Duration {
        each!(self, s => Subject::delay(s))
    }
    async fn halt(&mut self) -> Result<()> {
        each!(self, s => Subject::halt(s).await)
    }
    async fn serve(&mut self) -> Result<()> {
        each!(self, s => Subject::serve(s).await)
    }
    async fn set_delay(&mut self, delay: Duration) -> Result<()> {
        each!(self, s => Subject::set_delay(s, delay).await)
    }
    async fn rotate_cert(&mut self) -> Result<()> {
        each!(self, s => Subject::rotate_cert(s).await)
    }
    async fn decisions(&self) -> Vec<String> {
        each!(self, s => Subject::decisions(s).await)
    }
    async fn logs(&self) -> Vec<String> {
        each!(self, s => Subject::logs(s).await)
    }
    fn into_stop(self) -> crate::cluster::Removal {
        Box::pin(async move {
            self.stop().await;
            Ok(())
        })
    }
}
