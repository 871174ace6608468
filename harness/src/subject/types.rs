//! What every subject is to the harness: the [`Subject`] trait the fault
//! steps drive, and the paths and limits the subjects share. A leaf of its
//! own, so that each subject names it without going through `mod.rs`.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;

use crate::scenario::WebhookSpec;

/// Where an image subject finds its serving pair and CA (`$(TLS_CERT)`,
/// `$(TLS_KEY)`, `$(CA_CERT)` name files here), in a pod or a container.
pub const CERT_DIR: &str = "/etc/webhook/certs";
/// Where an image subject finds the scenario's `files` (`$(FILES)`).
pub const FILES_DIR: &str = "/etc/webhook/files";

/// The longest a rotation on this machine may take to reach new handshakes.
pub(super) const ROTATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiting step on this machine looks again.
pub(super) const POLL: Duration = Duration::from_millis(100);
/// How often a subject that is not serving yet is said to be awaited.
pub(super) const WAIT_WORD_EVERY: Duration = Duration::from_secs(5);

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
    /// Stopping and removing it, done when it is gone; not started until
    /// awaited. By default dropping it is enough (a program's process group
    /// is killed, a container removed).
    fn into_stop(self) -> crate::cluster::Removal
    where
        Self: Sized,
    {
        Box::pin(async { Ok(()) })
    }
}
