//! Backends: where a run's scenarios run. One [`Environment`] type for
//! every backend brings it up, runs scenarios on it through one lifecycle
//! (`lifecycle.rs`), takes it down and sweeps an interrupted run; the files
//! beside it say what a scenario gets on each: the sim (`sim.rs`), a cluster
//! with the webhook on this host (`host.rs`), a cluster with the webhook in
//! it (`in_cluster.rs`).

mod clock;
mod environment;
mod host;
mod in_cluster;
mod lifecycle;
mod sim;

pub use environment::Environment;
