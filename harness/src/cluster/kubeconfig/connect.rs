//! Reaching the cluster in KUBECONFIG, once, before any scenario.

use kube::Client;

use crate::error::Unreachable;

/// The innermost error of a chain: the one that says what actually failed.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A client for the cluster in KUBECONFIG (or ~/.kube/config), checked to
/// answer: a dead cluster fails here, once, rather than mid-scenario.
pub async fn connect_client() -> std::result::Result<Client, Unreachable> {
    let file = match std::env::var_os("KUBECONFIG") {
        Some(p) if !p.is_empty() => format!("KUBECONFIG={}", p.to_string_lossy()),
        _ => "~/.kube/config (KUBECONFIG is not set)".to_string(),
    };
    let config = kube::Config::infer().await.map_err(|e| Unreachable {
        tried: file.clone(),
        cause: root_cause(&e),
    })?;
    let tried = format!("{} ({file})", config.cluster_url);
    let client = Client::try_from(config).map_err(|e| Unreachable {
        tried: tried.clone(),
        cause: root_cause(&e),
    })?;
    client.apiserver_version().await.map_err(|e| Unreachable {
        tried,
        cause: match &e {
            kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
            other => root_cause(other),
        },
    })?;
    Ok(client)
}
