//! The one timestamp the model writes. It has no clock: every
//! `startTime`, `startedAt`, `finishedAt` and `lastTransitionTime` is this
//! value, so a status depends only on the pod and the node. Snapshots
//! normalize timestamps, and the fake kubelet swaps this one for the time
//! of day before a real API server sees it.

/// Every timestamp the model writes.
pub const TIMESTAMP: &str = "2025-01-01T00:00:00Z";
