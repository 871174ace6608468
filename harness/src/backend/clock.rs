//! Where a scenario's time goes, phase by phase.

use std::time::Instant;

/// Where a scenario's time goes, logged phase by phase at info level
/// (`RUST_LOG=injector_harness=info`): what to read when a suite is slow.
pub(super) struct PhaseClock {
    scenario: String,
    last: Instant,
}

impl PhaseClock {
    /// A clock whose first lap (the subject's start) began at `started`.
    pub(super) fn new(scenario: &str, started: Instant) -> PhaseClock {
        PhaseClock {
            scenario: scenario.to_string(),
            last: started,
        }
    }

    pub(super) fn lap(&mut self, phase: &str) {
        let now = Instant::now();
        let ms = u64::try_from((now - self.last).as_millis()).unwrap_or(u64::MAX);
        tracing::info!(scenario = %self.scenario, phase, ms, "phase done");
        self.last = now;
    }
}
