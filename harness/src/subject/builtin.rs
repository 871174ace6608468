//! The built-in injector as a subject on this machine: the injector's own
//! server, started in the harness process on 127.0.0.1 with a serving pair
//! from the injector's own `certs` code (the sim, and the kubeconfig
//! backend with the webhook on the host).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, WebhookClientConfig};
use k8s_openapi::ByteString;
use sidecar_injector::server::{self, ConfigSource, RunningServer, ServerOptions};
use sidecar_injector::Config;

use super::certs::CertFiles;
use super::decisions::Tally;
use super::delay::Delay;
use super::ports::free_port;
use super::types::{Subject, ROTATION_TIMEOUT};
use crate::scenario::WebhookSpec;

/// How often the injector polls its cert files here: fast, so a rotation
/// step does not wait the production default of a second.
const RELOAD_INTERVAL: Duration = Duration::from_millis(100);

/// The injector, started in-process on 127.0.0.1 with certificates from the
/// injector's own `certs` code. Fault steps act on it: it can be stopped
/// and started again at the same address, slowed down, and given a new
/// serving certificate from the same CA while it runs.
pub struct InjectorServer {
    /// The CA and the serving pair on disk.
    certs: CertFiles,
    addr: SocketAddr,
    config: Config,
    server: Option<RunningServer>,
    /// How long every admission request waits before it is reviewed.
    delay: Delay,
    /// Counters of instances already stopped, so a restart loses nothing.
    tally: Tally,
}

impl InjectorServer {
    /// Starts a server with `config`. With `available` false nothing listens
    /// at the address (a port that was bound once and released), so calls
    /// fail the way they do when the injector is down, until [`Self::serve`].
    pub async fn start(config: Config, available: bool) -> anyhow::Result<InjectorServer> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut injector = InjectorServer {
            certs: CertFiles::new()?,
            addr,
            config,
            server: None,
            delay: Delay::new(),
            tally: Tally::new(false),
        };
        if available {
            injector.serve().await?;
        }
        Ok(injector)
    }

    /// Starts serving at the injector's address (again, after [`Self::halt`]).
    pub async fn serve(&mut self) -> anyhow::Result<()> {
        if self.server.is_some() {
            return Ok(());
        }
        let mut opts = ServerOptions::new(self.addr, self.certs.cert_path(), self.certs.key_path());
        opts.config = ConfigSource::Inline(Box::new(self.config.clone()));
        opts.shutdown_grace = Duration::from_secs(1);
        opts.reload_interval = RELOAD_INTERVAL;
        let delay = &self.delay;
        let server = server::start_with(opts, |routes| delay.hold_reviews(routes))
            .await
            // The port was free while the injector was down; something else
            // may have taken it, and the registered URL names it, so say so.
            .with_context(|| format!("starting the injector at {}", self.addr))?;
        self.server = Some(server);
        self.tally.served();
        Ok(())
    }

    /// Stops serving: open connections are closed and nothing listens at
    /// the address, so calls are refused until [`Self::serve`].
    pub async fn halt(&mut self) {
        if let Some(s) = self.server.take() {
            self.tally.bank(&s.state().metrics.render());
            let _ = s.shutdown().await;
        }
    }

    /// Whether the injector is serving.
    pub fn serving(&self) -> bool {
        self.server.is_some()
    }

    /// Makes every admission request wait `delay` before it is reviewed
    /// (zero: no wait). Takes effect for the next request.
    pub fn set_delay(&self, delay: Duration) {
        self.delay.set(delay);
    }

    pub fn delay(&self) -> Duration {
        self.delay.get()
    }

    /// Rotates the serving certificate: a new key and cert from the same CA
    /// (the webhooks' caBundle stays valid), projected atomically. When the
    /// injector is serving, returns once a new TLS handshake presents the
    /// new certificate, verified against the caBundle.
    pub async fn rotate_cert(&mut self) -> anyhow::Result<()> {
        self.certs.rotate()?;
        if !self.serving() {
            return Ok(());
        }
        Ok(self
            .certs
            .wait_until_presented(self.addr, "the injector", ROTATION_TIMEOUT)
            .await??)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ca_pem(&self) -> &str {
        self.certs.ca_pem()
    }

    /// The URL a webhook registration uses for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Builds the MutatingWebhook objects a scenario registers, calling
    /// this server by `url`.
    pub fn webhooks(&self, specs: &[WebhookSpec]) -> Vec<MutatingWebhook> {
        specs
            .iter()
            .map(|w| {
                let mut hook = crate::admission::webhook_from_spec(w);
                hook.client_config = WebhookClientConfig {
                    url: Some(self.url(&w.path)),
                    ca_bundle: Some(ByteString(self.ca_pem().as_bytes().to_vec())),
                    service: None,
                };
                hook
            })
            .collect()
    }

    /// The injector's metrics text, while it runs.
    pub fn metrics(&self) -> Option<String> {
        self.server.as_ref().map(|s| s.state().metrics.render())
    }

    /// What the injector decided, from its own counters (summed over every
    /// time it ran): one line per non-zero injection, skip reason, denial,
    /// error or cert reload. Works whichever cluster called it.
    pub fn decisions(&self) -> Vec<String> {
        self.tally.lines(self.metrics().as_deref())
    }

    pub async fn stop(mut self) {
        self.halt().await;
    }
}

impl Subject for InjectorServer {
    fn webhooks(&self, specs: &[WebhookSpec]) -> Vec<MutatingWebhook> {
        InjectorServer::webhooks(self, specs)
    }
    fn serving(&self) -> bool {
        InjectorServer::serving(self)
    }
    fn delay(&self) -> Duration {
        InjectorServer::delay(self)
    }
    async fn halt(&mut self) -> anyhow::Result<()> {
        InjectorServer::halt(self).await;
        Ok(())
    }
    async fn serve(&mut self) -> anyhow::Result<()> {
        InjectorServer::serve(self).await
    }
    async fn set_delay(&mut self, delay: Duration) -> anyhow::Result<()> {
        InjectorServer::set_delay(self, delay);
        Ok(())
    }
    async fn rotate_cert(&mut self) -> anyhow::Result<()> {
        InjectorServer::rotate_cert(self).await
    }
    async fn decisions(&self) -> Vec<String> {
        InjectorServer::decisions(self)
    }
    async fn logs(&self) -> Vec<String> {
        // Its log lines go to the harness's own tracing output.
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::*;
    use crate::admission::{Admitted, Attributes, WebhookCaller};
    use crate::subject::handshake::{pem_der, presented_cert};

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "demo", "labels": {"app": "a"}},
               "spec": {"containers": [{"name": "app", "image": "a", "ports": [{"containerPort": 80}]}]}})
    }

    fn enabled() -> BTreeMap<String, String> {
        BTreeMap::from([("sidecar-injector".to_string(), "enabled".to_string())])
    }

    #[tokio::test]
    async fn a_stopped_injector_refuses_until_started_again_at_the_same_address() {
        let mut inj = InjectorServer::start(Config::builtin(), true)
            .await
            .unwrap();
        let hooks = inj.webhooks(&[WebhookSpec::default()]);
        let labels = enabled();
        let attrs = Attributes::pod_create("demo", &labels);
        let mut caller = WebhookCaller::new();
        let injected = |out: &Admitted| matches!(out, Admitted::Allowed { object, .. } if object["spec"]["containers"][1]["name"] == "envoy");
        assert!(injected(&caller.admit(&hooks, &attrs, pod()).await));
        let addr = inj.addr();
        inj.halt().await;
        assert!(!inj.serving());
        let out = caller.admit(&hooks, &attrs, pod()).await;
        assert!(
            matches!(&out, Admitted::Rejected { message: m, .. } if m.ends_with(&format!("dial tcp {addr}: connect: connection refused"))),
            "{out:?}"
        );
        inj.serve().await.unwrap();
        assert_eq!(inj.addr(), addr, "the registered URL stays valid");
        // The same caller (and its pooled client) reconnects.
        assert!(injected(&caller.admit(&hooks, &attrs, pod()).await));
        assert!(
            inj.decisions().contains(&"injections_total 2".to_string()),
            "counters survive a restart: {:?}",
            inj.decisions()
        );
        inj.stop().await;
    }

    #[tokio::test]
    async fn a_rotated_cert_is_served_and_trusted_by_the_same_bundle() {
        let mut inj = InjectorServer::start(Config::builtin(), true)
            .await
            .unwrap();
        let hooks = inj.webhooks(&[WebhookSpec::default()]);
        let labels = enabled();
        // A blocking handshake, off the runtime thread the server runs on.
        let served = |inj: &InjectorServer| {
            let (addr, ca) = (inj.addr(), inj.ca_pem().to_string());
            tokio::task::spawn_blocking(move || presented_cert(addr, &ca).unwrap())
        };
        let before = served(&inj).await.unwrap();
        inj.rotate_cert().await.unwrap();
        let after = served(&inj).await.unwrap();
        assert_ne!(before, after, "new handshakes see the new certificate");
        assert_eq!(after, pem_der(inj.certs.cert_pem()).unwrap());
        // Registered before the rotation, still trusted after it.
        let out = WebhookCaller::new()
            .admit(&hooks, &Attributes::pod_create("demo", &labels), pod())
            .await;
        assert!(matches!(out, Admitted::Allowed { .. }), "{out:?}");
        assert!(
            inj.decisions()
                .iter()
                .any(|d| d.starts_with("cert_reloads_total{result=\"success\"}")),
            "{:?}",
            inj.decisions()
        );
        inj.stop().await;
    }
}
