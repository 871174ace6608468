//! The webhook under test: what a scenario's webhooks call, and what its
//! fault steps act on.
//!
//! A scenario names its subject in its header (`subject:`); absent, it is
//! the built-in injector ([`crate::admission::InjectorServer`] in this
//! process, [`crate::cluster::kind::InClusterInjector`] in a cluster). A
//! `process` subject is any program that serves admission over HTTPS: the
//! harness makes it a CA and a serving pair, starts it with the paths and a
//! port put into its command line, and registers the scenario's webhooks
//! with that CA. An `image` subject runs in the cluster on kind (and on
//! kubeconfig with `--webhook in-cluster`), and as a local container
//! elsewhere. Every backend drives a subject through [`Subject`].
//!
//! - [`certs`]: the serving pair on disk, rotated as a Secret volume is.
//! - [`proxy`]: the TCP proxy in front of a subject the harness starts.
//! - [`program`]: what a process and a container subject share.
//! - [`process`], [`container`]: how each of them runs.

mod certs;
mod container;
mod process;
mod program;
mod proxy;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhook;

use crate::admission::InjectorServer;
use crate::scenario::{Scenario, WebhookSpec};

pub use certs::CertFiles;
pub use container::{image_args, image_files, sweep_containers, Container, ContainerSubject};
pub use process::{HostProcess, ProcessSubject};
pub use program::{LogTail, Program, ProgramSubject};

/// Where an image subject finds its serving pair and CA (`$(TLS_CERT)`,
/// `$(TLS_KEY)`, `$(CA_CERT)` name files here), in a pod or a container.
pub const CERT_DIR: &str = "/etc/webhook/certs";
/// Where an image subject finds the scenario's `files` (`$(FILES)`).
pub const FILES_DIR: &str = "/etc/webhook/files";

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

/// The longest a rotation may take to reach new handshakes.
const ROTATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiting step looks again.
const POLL: Duration = Duration::from_millis(100);
/// How often a subject that is not serving yet is said to be awaited.
const WAIT_WORD_EVERY: Duration = Duration::from_secs(5);

/// A port on 127.0.0.1 that was free a moment ago, below the kernel's
/// ephemeral range. A webhook's port is bound, released and bound again
/// (a stop and a start keep its address); a port from `bind(:0)` is an
/// ephemeral one, which the kernel may meanwhile give to any outgoing
/// connection as its local port (seen in CI: "Address already in use" when
/// the injector of one scenario started while other tests made calls).
pub fn free_port() -> Result<u16> {
    let (low, _) = ephemeral_range();
    let floor: u16 = 20_000;
    if low > floor + 1000 {
        let span = u64::from(low - floor);
        let mut seed = {
            use std::hash::{BuildHasher, Hasher};
            // std seeds each RandomState from the OS's random source.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            h.finish()
        };
        for _ in 0..64 {
            let port = floor + (seed % span) as u16;
            seed = seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The kernel's ephemeral port range (Linux's default when unreadable).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// `text` with `$(NAME)` replaced by its value for each pair; any other
/// `$(...)` stays as written.
fn substitute(text: &str, values: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("$({name})"), value);
    }
    out
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn a_free_port_is_below_the_ephemeral_range_and_bindable() {
        let (low, _) = super::ephemeral_range();
        for _ in 0..20 {
            let port = super::free_port().unwrap();
            if low > 21_000 {
                assert!(
                    (20_000..low).contains(&port),
                    "{port} (ephemeral from {low})"
                );
            }
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }
}
