//! The webhook under test: what a scenario's webhooks call, and what its
//! fault steps act on.
//!
//! A scenario names its subject in its header (`subject:`); absent, it is
//! the built-in injector ([`InjectorServer`] in this process,
//! [`InClusterInjector`] in a cluster). A
//! `process` subject is any program that serves admission over HTTPS: the
//! harness makes it a CA and a serving pair, starts it with the paths and a
//! port put into its command line, and registers the scenario's webhooks
//! with that CA. An `image` subject runs in the cluster on kind (and on
//! kubeconfig with `--webhook in-cluster`), and as a local container
//! elsewhere. Every backend drives a subject through [`Subject`].
//!
//! - [`types`]: the [`Subject`] trait, and the paths and limits subjects share.
//! - [`local`]: the subject on this machine, whichever it is.
//! - [`builtin`]: the built-in injector in this process.
//! - [`in_cluster`], [`in_cluster_manifests`]: the built-in injector or an
//!   image in a cluster, and what it is made of there.
//! - [`shared`]: one in-cluster injector for the scenarios that leave it alone.
//! - [`program`]: what a process and a container subject share.
//! - [`process`], [`container`]: how each of them runs.
//! - [`proxy`]: the TCP proxy in front of a subject the harness starts.
//! - [`certs`]: the serving pair on disk, rotated as a Secret volume is.
//! - [`handshake`]: which certificate a server presents.
//! - [`decisions`]: the built-in injector's decisions, from its counters.
//! - [`delay`]: how a subject is made to answer late.
//! - [`ports`], [`placeholders`]: a subject's port and command line.

mod builtin;
mod certs;
mod container;
mod decisions;
mod delay;
mod handshake;
mod in_cluster;
pub mod in_cluster_manifests;
mod local;
mod placeholders;
mod ports;
mod process;
mod program;
mod proxy;
pub mod shared;
mod types;

pub use builtin::InjectorServer;
pub use certs::CertFiles;
pub use container::{image_args, image_files, sweep_containers, Container, ContainerSubject};
pub use decisions::decisions_from_metrics;
pub use in_cluster::InClusterInjector;
pub use local::LocalSubject;
pub use ports::free_port;
pub use process::{HostProcess, ProcessSubject};
pub use program::{LogTail, Program, ProgramSubject};
pub use shared::{SharedInjector, SharedInjectors};
pub use types::{Subject, CERT_DIR, FILES_DIR};
