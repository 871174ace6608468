//! STUB: being written. Offline injection and checks over multi-document YAML.
use crate::inject::Injector;
use crate::policy::Reason;

#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct WorkloadError {
    pub origin: String,
    pub message: String,
}

/// The verdict for one pod or pod template.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// 0-based index of the YAML document.
    pub document: usize,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Where the pod spec sits, e.g. `spec.template` ("" for a Pod).
    pub path: String,
    pub inject: bool,
    pub reason: Reason,
    pub detail: String,
    pub warnings: Vec<String>,
    pub denied: Option<String>,
}

/// Injects every pod and pod template in `input`; other kinds pass through.
pub fn inject_documents(
    injector: &Injector,
    input: &str,
    origin: &str,
    default_namespace: &str,
) -> Result<(String, Vec<Verdict>), WorkloadError> {
    let _ = (injector, input, default_namespace);
    Err(WorkloadError { origin: origin.into(), message: "not written yet".into() })
}

/// Decides for every pod and pod template in `input`, changing nothing.
pub fn check_documents(
    injector: &Injector,
    input: &str,
    origin: &str,
    namespace: Option<&str>,
) -> Result<Vec<Verdict>, WorkloadError> {
    let _ = (injector, input, namespace);
    Err(WorkloadError { origin: origin.into(), message: "not written yet".into() })
}
