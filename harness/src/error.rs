//! Why a scenario did not run to its end, typed at the run boundary.
//!
//! A failed expectation is not an error: the scenario ran, and
//! [`crate::outcome::ScenarioRun::failures`] says what did not hold. An error
//! means it could not be judged, and the reader's next move depends on why:
//! fix the file, start the cluster, look at the webhook's output, give the
//! cluster more time, or clean up by hand. [`RunError::kind`] tells these
//! apart for the report and for JUnit (`<error type="...">`).
//!
//! Code deep down says what it was doing with [`Phase`] as an `anyhow`
//! context, or fails with [`Timeout`]; [`RunError::classify`] reads them
//! back once, where a scenario's result is made.

use std::fmt;

/// A wait's end, defined with the waits ([`crate::wait`]), named here too
/// as the kind of error it is.
pub use crate::wait::Timeout;

/// What the harness was doing for a scenario when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Bringing up the cluster (kind cluster, fake kubelet, a client).
    Cluster,
    /// Starting or deploying the webhook under test, registering it.
    Setup,
    /// Applying the manifests and running the steps.
    Steps,
    /// Deleting what the scenario made.
    Cleanup,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Cluster => "bringing up the cluster",
            Phase::Setup => "setting up the webhook under test",
            Phase::Steps => "running the scenario",
            Phase::Cleanup => "cleaning up",
        })
    }
}

/// The kinds of [`RunError`], as reports and JUnit name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The scenario file does not load: fix it (file, line and field are
    /// in the message).
    InvalidScenario,
    /// No cluster answered.
    ClusterUnreachable,
    /// The cluster, or the webhook under test, could not be set up.
    Setup,
    /// Something waited for did not happen in time; the message says what.
    Timeout,
    /// A manifest or step failed in a way no expectation covers.
    Step,
    /// The scenario ran, but what it made could not all be deleted.
    Cleanup,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidScenario => "invalid-scenario",
            ErrorKind::ClusterUnreachable => "cluster-unreachable",
            ErrorKind::Setup => "setup",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Step => "step",
            ErrorKind::Cleanup => "cleanup",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scenario that could not be run to its end.
#[derive(Debug)]
pub struct RunError {
    pub kind: ErrorKind,
    /// The phase a timeout happened in, when it is known.
    pub phase: Option<Phase>,
    pub error: anyhow::Error,
    /// How long the scenario ran before it stopped, once known (a subject
    /// that never served took its start limit).
    pub elapsed: Option<std::time::Duration>,
}

impl RunError {
    /// Reads what `error` carries: a [`Timeout`], an unreachable cluster, a
    /// scenario file's error, or the [`Phase`] it happened in (a step when
    /// none is said).
    pub fn classify(error: anyhow::Error) -> RunError {
        let phase = error.downcast_ref::<Phase>().copied();
        let kind = if error
            .downcast_ref::<crate::scenario::ScenarioError>()
            .is_some()
        {
            ErrorKind::InvalidScenario
        } else if error.downcast_ref::<Unreachable>().is_some() {
            ErrorKind::ClusterUnreachable
        } else if error.downcast_ref::<Timeout>().is_some() {
            ErrorKind::Timeout
        } else {
            match phase {
                Some(Phase::Cluster | Phase::Setup) => ErrorKind::Setup,
                Some(Phase::Cleanup) => ErrorKind::Cleanup,
                Some(Phase::Steps) | None => ErrorKind::Step,
            }
        };
        RunError {
            kind,
            phase,
            error,
            elapsed: None,
        }
    }

    /// The same error, for each of several scenarios a suite-wide failure
    /// stops (anyhow errors do not clone).
    pub fn shared(&self) -> RunError {
        RunError {
            kind: self.kind,
            phase: self.phase,
            error: anyhow::anyhow!("{:#}", self.error),
            elapsed: self.elapsed,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for RunError {}

impl From<anyhow::Error> for RunError {
    fn from(error: anyhow::Error) -> RunError {
        RunError::classify(error)
    }
}

/// No cluster answered: what was tried, why it failed, and what to do, in
/// one line. kube-rs nests the same cause several times over; only the
/// innermost one is kept.
#[derive(Debug, thiserror::Error)]
#[error("no cluster reachable at {tried}: {cause}; start the local control plane with `kind/local-cluster.sh up`, then `eval \"$(kind/local-cluster.sh env)\"`")]
pub struct Unreachable {
    /// The KUBECONFIG path, and the server URL once the file was read.
    pub tried: String,
    /// The innermost error.
    pub cause: String,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use anyhow::Context as _;

    fn kind(e: anyhow::Error) -> ErrorKind {
        RunError::classify(e).kind
    }

    #[test]
    fn each_cause_gets_its_kind_wherever_it_sits_in_the_chain() {
        let scenario = crate::scenario::parse(
            std::path::Path::new("s.yaml"),
            "kind: Nonsense\n",
            &serde_json::json!({}),
        )
        .unwrap_err();
        assert_eq!(
            kind(anyhow::Error::new(scenario)),
            ErrorKind::InvalidScenario
        );

        let unreachable = Unreachable {
            tried: "https://127.0.0.1:6443".into(),
            cause: "connection refused".into(),
        };
        let e = anyhow::Error::new(unreachable).context(Phase::Cluster);
        assert_eq!(kind(e), ErrorKind::ClusterUnreachable);

        let timeout = Timeout::new("the injector did not roll out", Duration::from_secs(120));
        let e = anyhow::Error::new(timeout)
            .context("deploying")
            .context(Phase::Setup);
        let classified = RunError::classify(e);
        assert_eq!(classified.kind, ErrorKind::Timeout);
        assert_eq!(classified.phase, Some(Phase::Setup));
        assert!(
            classified
                .to_string()
                .ends_with("deploying: the injector did not roll out within 120 s"),
            "{classified}"
        );

        let e: anyhow::Result<()> = Err(anyhow::anyhow!("image not found")).context(Phase::Setup);
        assert_eq!(kind(e.unwrap_err()), ErrorKind::Setup);
        let e = anyhow::anyhow!("namespace stuck").context(Phase::Cleanup);
        assert_eq!(kind(e), ErrorKind::Cleanup);
        assert_eq!(kind(anyhow::anyhow!("apply refused")), ErrorKind::Step);
    }
}
