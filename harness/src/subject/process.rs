//! A `process` subject: any program on this machine that serves admission
//! over HTTPS, started by the harness in a process group of its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::AsyncBufReadExt;

use super::certs::CertFiles;
use super::program::{LogTail, Program, ProgramSubject};
use crate::process_group::GroupGuard;
use crate::scenario::ProcessSpec;

/// A program subject: the harness's proxy in front of a program.
pub type ProcessSubject = ProgramSubject<HostProcess>;

impl ProgramSubject<HostProcess> {
    /// Makes its certificates and, when `available`, starts it.
    pub async fn process(
        spec: &ProcessSpec,
        scenario_dir: &Path,
        available: bool,
    ) -> Result<ProcessSubject> {
        let certs = CertFiles::new()?;
        let program = HostProcess::new(spec, scenario_dir, &certs)?;
        ProgramSubject::start(program, certs, available).await
    }
}

/// A running program: its process group is killed when this is dropped.
struct Running {
    child: tokio::process::Child,
    group: GroupGuard,
}

/// `subject.process`: its command and environment with the harness's
/// values put in.
pub struct HostProcess {
    command: Vec<String>,
    env: Vec<(String, String)>,
    /// Where `$(SCENARIO_DIR)` points, and the program's working directory.
    dir: PathBuf,
    /// `$(PORT)`, the same on every start.
    port: u16,
    start_timeout: Duration,
    running: Option<Running>,
}

impl HostProcess {
    pub fn new(spec: &ProcessSpec, scenario_dir: &Path, certs: &CertFiles) -> Result<HostProcess> {
        if spec.command.is_empty() {
            anyhow::bail!("subject.process.command is empty");
        }
        let port = super::ports::free_port()?;
        let values = [
            ("TLS_CERT", certs.cert_path().display().to_string()),
            ("TLS_KEY", certs.key_path().display().to_string()),
            ("CA_CERT", certs.ca_path().display().to_string()),
            ("PORT", port.to_string()),
            ("SCENARIO_DIR", scenario_dir.display().to_string()),
        ];
        let put = |text: &str| super::placeholders::substitute(text, &values);
        Ok(HostProcess {
            command: spec.command.iter().map(|a| put(a)).collect(),
            env: spec.env.iter().map(|(k, v)| (k.clone(), put(v))).collect(),
            dir: scenario_dir.to_path_buf(),
            port,
            start_timeout: Duration::from_secs(u64::from(spec.start_timeout_seconds)),
            running: None,
        })
    }

    /// The command line as it runs.
    pub fn command_line(&self) -> String {
        self.command.join(" ")
    }
}

/// The variables cargo sets for the package it runs (the harness, under
/// `cargo run` or `cargo test`). They describe the harness, not the subject,
/// and a subject that is itself `cargo run` passes them on to build scripts
/// that watch them: ring's reruns on `CARGO_PKG_NAME` and
/// `CARGO_MANIFEST_DIR`, so every run rebuilt ring and all above it.
fn describes_the_harness_package(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || name.starts_with("CARGO_BIN_")
        || matches!(
            name,
            "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR"
        )
}

impl Program for HostProcess {
    fn describe(&self) -> String {
        format!("`{}`", self.command_line())
    }

    async fn launch(&mut self, _certs: &CertFiles, log: &LogTail) -> Result<u16> {
        let mut cmd = tokio::process::Command::new(&self.command[0]);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(describes_the_harness_package) {
                cmd.env_remove(&name);
            }
        }
        cmd.args(&self.command[1..])
            .envs(self.env.iter().cloned())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start the subject {}", self.describe()))?;
        let group = GroupGuard::new(child.id());
        if let Some(err) = child.stderr.take() {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log.push(line);
                }
            });
        }
        self.running = Some(Running { child, group });
        Ok(self.port)
    }

    async fn exited(&mut self) -> Option<String> {
        let running = self.running.as_mut()?;
        match running.child.try_wait() {
            Ok(Some(status)) => {
                // Dropping the guard kills what the program left in its
                // group (a `cargo run` whose binary lives on).
                self.running = None;
                Some(format!("exited ({status})"))
            }
            _ => None,
        }
    }

    async fn stop(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        if let Some(pid) = running.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) on the process group the spawn made for this
            // program; it touches no memory of ours.
            unsafe {
                libc::kill(-pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), running.child.wait())
            .await
            .is_ok()
        {
            running.group.disarm();
        }
        // Otherwise the guard's drop sends SIGKILL to the group.
    }

    fn start_timeout(&self) -> (Duration, String) {
        (
            self.start_timeout,
            "subject.process.startTimeoutSeconds".into(),
        )
    }

    fn serving_at(&self, port: u16) -> String {
        format!("127.0.0.1:{port} ($(PORT))")
    }
}

#[cfg(test)]
mod tests {
    use super::describes_the_harness_package as harness_only;

    #[test]
    fn cargos_package_variables_stay_with_the_harness_and_the_rest_pass() {
        for name in [
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            assert!(harness_only(name), "{name}");
        }
        // Where cargo and its caches are, and how it builds, are the
        // machine's: a `cargo run` subject needs them as the harness had them.
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_INCREMENTAL",
            "PATH",
            "RUSTUP_TOOLCHAIN",
        ] {
            assert!(!harness_only(name), "{name}");
        }
    }
}
