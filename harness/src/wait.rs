//! Waiting for something to happen on a cluster or in a subject: one pace
//! and one deadline for every wait of the harness, ending in a [`Timeout`]
//! that says what did not happen and how long it had, so a run reports it
//! as a timeout (not as a failed step) whatever it waited for.
//!
//! A wait is the caller's own loop: look, and when not done yet,
//! `wait.again().await?`, which pauses until the next look or, past the
//! deadline, is the timeout. The loop stays the caller's so a look may
//! borrow and change what the caller holds (a program it stops, a tick
//! counter) and the future stays `Send` for the runtime.
//!
//! It looks, pauses and looks again rather than watching (kube's
//! `await_condition`): most waits look at more than one object (a rollout:
//! the Deployment and its pods), act between looks (a terminating namespace
//! is touched, pods are nudged to sync a rotated Secret), or ask what no
//! object records (which certificate a TLS handshake presents).

use std::time::Duration;

use tokio::time::Instant;

/// Something that did not happen in the time it had. Its own error type,
/// so a run tells it from a failed step wherever it sits in the chain
/// ([`crate::error::RunError::classify`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} within {} s{detail}", limit.as_secs())]
pub struct Timeout {
    /// What did not happen ("the injector in X did not roll out").
    pub what: String,
    pub limit: Duration,
    /// What helps find why (a log tail), from its own line; may be empty.
    pub detail: String,
}

impl Timeout {
    pub fn new(what: impl Into<String>, limit: Duration) -> Timeout {
        Timeout {
            what: what.into(),
            limit,
            detail: String::new(),
        }
    }
}

/// One wait: what it waits for, how long it may take, how often it looks.
#[derive(Debug, Clone)]
pub struct Wait {
    /// The timeout's sentence, "X did not happen" ("within N s" follows).
    what: String,
    limit: Duration,
    deadline: Instant,
    /// The next pause.
    pause: Duration,
    /// Each pause doubles, up to this; none: every pause is the first.
    backoff_to: Option<Duration>,
}

impl Wait {
    /// A wait of at most `limit` from now, looking again after `every`.
    /// `what` says what did not happen should time run out ("the injector
    /// in X did not roll out").
    pub fn new(what: impl Into<String>, limit: Duration, every: Duration) -> Wait {
        Wait {
            what: what.into(),
            limit,
            deadline: Instant::now() + limit,
            pause: every,
            backoff_to: None,
        }
    }

    /// Pauses from `every` doubling up to `max`: for what usually happens
    /// at once but may take long.
    pub fn backoff_to(mut self, max: Duration) -> Wait {
        self.backoff_to = Some(max);
        self
    }

    /// Ends at `deadline` instead: the rest of a limit that an earlier wait
    /// started (the timeout still names `limit`).
    pub fn ending_at(mut self, deadline: Instant) -> Wait {
        self.deadline = deadline;
        self
    }

    /// After a look that did not find it done: the [`Timeout`] once the
    /// deadline is past, else a pause until the next look.
    pub async fn again(&mut self) -> Result<(), Timeout> {
        self.again_because(String::new()).await
    }

    /// [`Wait::again`], saying in the timeout what the last look found.
    /// `why` follows "... within N s" ("; pod x presents the old one").
    pub async fn again_because(&mut self, why: impl Into<String>) -> Result<(), Timeout> {
        if Instant::now() > self.deadline {
            return Err(Timeout {
                what: self.what.clone(),
                limit: self.limit,
                detail: why.into(),
            });
        }
        tokio::time::sleep(self.pause).await;
        if let Some(max) = self.backoff_to {
            self.pause = (self.pause * 2).min(max);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn a_wait_pauses_between_looks_until_done() {
        let started = Instant::now();
        let mut wait = Wait::new("x did not happen", 5000 * MS, 20 * MS);
        let mut looks = 0;
        while looks < 3 {
            looks += 1;
            if looks < 3 {
                wait.again().await.unwrap();
            }
        }
        assert!(started.elapsed() >= 40 * MS);
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_is_a_timeout_with_the_last_looks_words() {
        let started = Instant::now();
        let mut wait = Wait::new("the thing did not appear", 200 * MS, 10 * MS).backoff_to(40 * MS);
        let mut looks = 0;
        let timeout = loop {
            looks += 1;
            if let Err(t) = wait.again_because(format!(" (look {looks})")).await {
                break t;
            }
        };
        assert!(started.elapsed() > 200 * MS);
        // 10, 20, then 40 ms pauses: not one look per 10 ms.
        assert!(looks < 12, "{looks}");
        assert_eq!(timeout.limit, 200 * MS);
        let e = anyhow::Error::new(timeout);
        assert_eq!(
            e.to_string(),
            format!("the thing did not appear within 0 s (look {looks})")
        );
        assert_eq!(
            crate::error::RunError::classify(e).kind,
            crate::error::ErrorKind::Timeout
        );
    }

    #[tokio::test]
    async fn a_wait_ending_at_an_earlier_deadline_names_its_limit() {
        let mut wait = Wait::new(
            "the account did not appear",
            Duration::from_secs(180),
            10 * MS,
        )
        .ending_at(Instant::now() + 30 * MS);
        let timeout = loop {
            if let Err(t) = wait.again().await {
                break t;
            }
        };
        assert_eq!(
            timeout.to_string(),
            "the account did not appear within 180 s"
        );
    }
}
